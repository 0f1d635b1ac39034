# One image with every backfill binary: backfill-producer, backfill-consumer,
# backfill-sink, backfill-tail, backfill-status, backfill-web (compose.yaml picks one per
# service with `entrypoint`).
#
# build:   Debian 12, librdkafka 2.14.2 built from Debian's source tarball
#          (pinned by SHA-256) by the same scripts/librdkafka.sh the tests
#          use, then the same scripts/build.sh the test suite runs (-Werror),
#          the unit tests, and `cmake --install` into /opt/backfill.
# runtime: debian slim with only the shared libraries the binaries link
#          (that librdkafka and what it links, libcurl, jansson, libpq,
#          libmicrohttpd) and
#          CA certificates for api.github.com, running as an unprivileged user.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config curl ca-certificates python3 \
        libjansson-dev libcurl4-openssl-dev libpq-dev libmicrohttpd-dev \
        libssl-dev libsasl2-dev zlib1g-dev libzstd-dev liblz4-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# librdkafka first, in a layer of its own: it changes only with its pin.
COPY scripts/librdkafka.sh scripts/
RUN bash scripts/librdkafka.sh install /opt/librdkafka
COPY . .
RUN bash scripts/build.sh build -DRDKAFKA_PREFIX=/opt/librdkafka \
 && ctest --test-dir build -L unit --output-on-failure \
 && cmake --install build --prefix /opt/backfill

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libcurl4 libjansson4 libpq5 libmicrohttpd12 ca-certificates \
        libssl3 libsasl2-2 zlib1g libzstd1 liblz4-1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 backfill \
 && useradd --system --uid 10001 --gid backfill --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin backfill
COPY --from=build /opt/librdkafka/lib/librdkafka.so.1 /usr/local/lib/
RUN ldconfig
COPY --from=build /opt/backfill/bin/ /usr/local/bin/
# for services that read compose secrets: copies them for uid 10001, then
# runs the binary as 10001 (compose.yaml's consumer starts it as root)
COPY scripts/backfill-as-user /usr/local/bin/
USER 10001:10001
# Each compose service sets its own entrypoint; alone, the image explains itself.
CMD ["backfill-tail", "--help"]
