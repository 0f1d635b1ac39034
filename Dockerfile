# syntax=docker/dockerfile:1
# One image with every backfill binary: backfill-producer, backfill-consumer,
# backfill-sink, backfill-tail, backfill-status (compose.yaml picks one per
# service with `entrypoint`).
#
# build:   Debian 12 (the distribution the tests run on: librdkafka 2.0.2),
#          the same scripts/build.sh the test suite runs (-Werror), then the
#          unit tests, then `cmake --install` into /opt/backfill.
# runtime: debian slim with only the shared libraries the binaries link
#          (librdkafka, libcurl, jansson, libpq) and CA certificates for
#          api.github.com, running as an unprivileged user.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        librdkafka-dev libjansson-dev libcurl4-openssl-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN bash scripts/build.sh build \
 && ctest --test-dir build -L unit --output-on-failure \
 && cmake --install build --prefix /opt/backfill

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        librdkafka1 libcurl4 libjansson4 libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 backfill \
 && useradd --system --uid 10001 --gid backfill --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin backfill
COPY --from=build /opt/backfill/bin/ /usr/local/bin/
USER 10001:10001
# Each compose service sets its own entrypoint; alone, the image explains itself.
CMD ["backfill-tail", "--help"]
