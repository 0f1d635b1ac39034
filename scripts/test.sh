#!/usr/bin/env bash
# Runs the whole test suite on this machine, installing what it needs first:
#   1. a -Wall -Wextra -Werror build and the unit tests (no services)
#   2. the GitHub simulator's own tests
#   3. the integration tests: the real binaries on a real Kafka broker and a
#      real Postgres server (started in temporary directories), the GraphQL
#      document against GitHub's published schema, messages against schemas/,
#      the web page in headless Chromium, and the compose stack on Docker
#      Engine (tests/compose: dockerd, Compose v2 and base images it makes
#      and caches under ~/.cache/backfill and Docker's own image store)
#   4. the same unit and integration tests built with AddressSanitizer and
#      UndefinedBehaviorSanitizer; the worker's tests with 4 jobs per worker
#      built with ThreadSanitizer, the credentials' and the web API's tests
#      too; and the unit
#      tests under valgrind
#   5. each libFuzzer target of tests/fuzz (clang, ASan + UBSan) for
#      BACKFILL_FUZZ_SECONDS (default 60) from its corpus; any crash, leak
#      or timeout fails the suite (the input is kept under build-fuzz/crashes)
# Set KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL to use existing services.
# KAFKA_VERSION=3.9.1 runs the integration tests against Kafka 3.9.1 instead
# of 4.4.0 (by default step 3 ends with a smoke run on 3.9.1).
# BACKFILL_SKIP_SANITIZE=1 skips step 4, BACKFILL_SKIP_FUZZ=1 step 5 (for a
# quick local run).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
start=$SECONDS
py=$root/.cache/venv/bin/python
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - start)); }

step "installing dependencies"
bash scripts/install-deps.sh

step "build with -Werror"
bash scripts/build.sh build   # the same script the Dockerfile builds with

step "unit tests"
ctest --test-dir build -L unit --output-on-failure

step "layers call downward only (no circle of calls between C files)"
"$py" tests/check_layers.py build

step "GitHub simulator tests"
"$py" -m pytest -q -p no:cacheprovider tests/sim

step "integration tests (real Kafka ${KAFKA_VERSION:-4.4.0}, real Postgres)"
BACKFILL_BIN=$root/build/bin "$py" -m pytest -q -p no:cacheprovider -rA tests/integration

if [[ -z ${KAFKA_VERSION:-} && -z ${KAFKA_BOOTSTRAP_SERVERS:-} ]]; then
    step "smoke run on Kafka 3.9.1 (for clusters not yet on 4.x)"
    KAFKA_VERSION=3.9.1 BACKFILL_BIN=$root/build/bin "$py" -m pytest -q -p no:cacheprovider \
        tests/integration/test_01_pipeline.py::test_ten_repositories_end_to_end \
        tests/integration/test_04_stock_kafka.py
fi

if [[ ${BACKFILL_SKIP_SANITIZE:-0} != 1 ]]; then
    step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
    bash scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DBACKFILL_SANITIZE=ON
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    step "unit tests under ASan/UBSan"
    ctest --test-dir build-asan -L unit --output-on-failure
    step "integration tests under ASan/UBSan"
    # (the compose stack runs the image's own build, not these binaries: once is enough;
    # twenty consumers run the same code as one, for 80 s: also once; the
    # Prometheus run scrapes what test_33 and test_34 check here, and runs
    # under TSan below)
    BACKFILL_BIN=$root/build-asan/bin "$py" -m pytest -q -p no:cacheprovider tests/integration \
        --deselect tests/integration/test_24_compose_stack.py \
        --deselect tests/integration/test_35_prometheus.py \
        --deselect tests/integration/test_32_credentials.py::test_twenty_consumers_keep_to_the_secondary_limits
    unset ASAN_OPTIONS UBSAN_OPTIONS
    step "build with ThreadSanitizer"
    bash scripts/build.sh build-tsan -DCMAKE_BUILD_TYPE=Debug -DBACKFILL_TSAN=ON
    step "metrics unit test under ThreadSanitizer"
    # the registry's lock-free updates from 4 threads beside a rendering
    # thread, and the metrics HTTP server's thread
    TSAN_OPTIONS="suppressions=$root/tests/tsan.supp second_deadlock_stack=1" \
        build-tsan/bin/test_metrics >/dev/null
    step "worker tests under ThreadSanitizer, 4 jobs per worker"
    # The pipeline, fatal-error and job-overhead tests with every worker
    # running 4 jobs at once: the main loop and 4 fetcher threads per
    # process, which wake the loop (as librdkafka's threads do) when an
    # answer, a delivery report or a commit result is there.
    BACKFILL_JOBS=4 TSAN_OPTIONS="suppressions=$root/tests/tsan.supp second_deadlock_stack=1" \
        BACKFILL_BIN=$root/build-tsan/bin "$py" -m pytest -q -p no:cacheprovider \
        tests/integration/test_01_pipeline.py tests/integration/test_14_kafka_fatal.py \
        tests/integration/test_36_job_overhead.py
    step "credential tests under ThreadSanitizer"
    # the credentials' agent thread (token file, GET /user, App installations
    # and token renewals) beside the main loop and the fetchers
    TSAN_OPTIONS="suppressions=$root/tests/tsan.supp second_deadlock_stack=1" \
        BACKFILL_BIN=$root/build-tsan/bin "$py" -m pytest -q -p no:cacheprovider \
        tests/integration/test_32_credentials.py -k "renewed or revoked"
    step "web API tests under ThreadSanitizer"
    # backfill-web: a thread per connection, the event follower, the
    # delivery thread and the Postgres pool, all at once.
    TSAN_OPTIONS="suppressions=$root/tests/tsan.supp second_deadlock_stack=1" \
        BACKFILL_BIN=$root/build-tsan/bin "$py" -m pytest -q -p no:cacheprovider \
        tests/integration/test_30_web_api.py
    step "metrics under ThreadSanitizer"
    # every binary's metrics server thread scraped by a real Prometheus while
    # the fetchers, the sink's loop and librdkafka's statistics update it
    TSAN_OPTIONS="suppressions=$root/tests/tsan.supp second_deadlock_stack=1" \
        BACKFILL_BIN=$root/build-tsan/bin "$py" -m pytest -q -p no:cacheprovider \
        tests/integration/test_35_prometheus.py
    step "unit tests under valgrind"
    for t in build/bin/test_*; do
        [[ $(basename "$t") == test_pg_writer ]] && continue
        valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite "$t" >/dev/null
    done
fi

if [[ ${BACKFILL_SKIP_FUZZ:-0} != 1 ]]; then
    step "build the libFuzzer targets (clang, ASan + UBSan)"
    cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DBACKFILL_FUZZ=ON >/dev/null
    cmake --build build-fuzz -j"$(nproc)" --target fuzzers
    # New corpus entries go to a temporary directory, never into tests/.
    fuzz_tmp=$(mktemp -d)
    trap 'rm -rf "$fuzz_tmp"' EXIT
    for bin in build-fuzz/bin/fuzz_*; do
        t=$(basename "$bin")
        step "fuzzing $t for ${BACKFILL_FUZZ_SECONDS:-60}s"
        mkdir -p "$fuzz_tmp/$t" "build-fuzz/crashes/$t"
        if ! "$bin" -max_total_time="${BACKFILL_FUZZ_SECONDS:-60}" -timeout=10 \
            -dict=tests/fuzz/json.dict -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t/" \
            "$fuzz_tmp/$t" "tests/fuzz/corpus/$t" >"$fuzz_tmp/$t.log" 2>&1; then
            tail -n 60 "$fuzz_tmp/$t.log" >&2
            echo "$t failed; reproduce with: $bin build-fuzz/crashes/$t/<file>" >&2
            exit 1
        fi
        grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec)' \
            "$fuzz_tmp/$t.log" || true
    done
fi

step "all tests passed"
