#!/usr/bin/env bash
# The one build command: configures and builds every binary and test with
# -Wall -Wextra -Werror. scripts/test.sh, scripts/demo.sh and the
# Dockerfile's build stage all call this, so the image ships exactly what
# the test suite built and tested.
#
# usage: scripts/build.sh [BUILD_DIR [CMAKE_OPTION...]]
#   BUILD_DIR      default build (relative to the repository root)
#   CMAKE_OPTION   extra -D options, applied after the defaults, e.g.
#                  scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DBACKFILL_SANITIZE=ON
# env: JOBS (parallel jobs, default: nproc)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-build}
(($# == 0)) || shift
[[ $dir == /* ]] || dir=$root/$dir
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBACKFILL_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"${JOBS:-$(nproc)}"
