#!/usr/bin/env bash
# Builds bench/bench_planning.cpp against the static libraries of a CMake build directory and
# runs it. Usage: bench/run_planning.sh [BUILD_DIR] [benchmark flags...]
#   BUILD_DIR defaults to build (must hold libnef_core.a, libnef_backend_cpu.a, libnef_ir.a:
#   `ninja -C BUILD_DIR nef_core`). Example: bench/run_planning.sh build --benchmark_filter=cold
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
shift || true
out="$build/bench/bench_planning"
mkdir -p "$build/bench"
libs=("$build/libnef_core.a" "$build/libnef_backend_cpu.a" "$build/libnef_ir.a")
need_build=0
[[ -x "$out" ]] || need_build=1
for f in "$root/bench/bench_planning.cpp" "${libs[@]}"; do
  [[ "$f" -nt "$out" ]] && need_build=1
done
if [[ $need_build == 1 ]]; then
  # Same flags as the library's Release build (-O3, asserts kept).
  g++ -std=gnu++20 -O3 -fopenmp -I"$root/include" -I"$root/src" "$root/bench/bench_planning.cpp" \
    "${libs[@]}" -lhwy -lbenchmark -lpthread -fopenmp -ldl -o "$out"
fi
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$out" --benchmark_counters_tabular=true "$@"
