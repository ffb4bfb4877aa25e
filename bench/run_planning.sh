#!/usr/bin/env bash
# Builds bench/bench_planning.cpp (the CMake target bench_planning of a build directory configured
# with NEF_BUILD_TESTS, as `make build` does) and runs it.
# Usage: bench/run_planning.sh [BUILD_DIR] [benchmark flags...]
#   BUILD_DIR defaults to build/release. Example: bench/run_planning.sh build/release
#   --benchmark_filter=cold. Times to compare are CPU times (the machine is shared).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build/release}"
shift || true
ninja -C "$build" bench_planning >&2
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$build/bench_planning" --benchmark_counters_tabular=true "$@"
