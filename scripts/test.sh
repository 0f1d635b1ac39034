#!/usr/bin/env bash
# Runs the whole test suite on this machine, installing what it needs first:
#   1. a -Wall -Wextra -Werror build and the unit tests (no services)
#   2. the GitHub simulator's own tests
#   3. the integration tests: the real binaries on a real Kafka broker and a
#      real Postgres server (started in temporary directories), the GraphQL
#      document against GitHub's published schema, messages against schemas/
#   4. the same unit and integration tests built with AddressSanitizer and
#      UndefinedBehaviorSanitizer, and the unit tests under valgrind
# Set KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL to use existing services.
# BACKFILL_SKIP_SANITIZE=1 skips step 4 (for a quick local run).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
start=$SECONDS
py=$root/.cache/venv/bin/python
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - start)); }

step "installing dependencies"
bash scripts/install-deps.sh

step "build with -Werror"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBACKFILL_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"

step "unit tests"
ctest --test-dir build -L unit --output-on-failure

step "GitHub simulator tests"
"$py" -m pytest -q -p no:cacheprovider tests/sim

step "integration tests (real Kafka, real Postgres)"
BACKFILL_BIN=$root/build/bin "$py" -m pytest -q -p no:cacheprovider -rA tests/integration

if [[ ${BACKFILL_SKIP_SANITIZE:-0} != 1 ]]; then
    step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBACKFILL_SANITIZE=ON >/dev/null
    cmake --build build-asan -j"$(nproc)"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    step "unit tests under ASan/UBSan"
    ctest --test-dir build-asan -L unit --output-on-failure
    step "integration tests under ASan/UBSan"
    BACKFILL_BIN=$root/build-asan/bin "$py" -m pytest -q -p no:cacheprovider tests/integration
    unset ASAN_OPTIONS UBSAN_OPTIONS
    step "unit tests under valgrind"
    for t in build/bin/test_*; do
        [[ $(basename "$t") == test_pg_writer ]] && continue
        valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite "$t" >/dev/null
    done
fi

step "all tests passed"
