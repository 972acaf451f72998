#!/usr/bin/env bash
# bench/cpu-vs-numpy.sh - attn's CPU backend against numpy on the same machine, in one run, with
# OpenBLAS sgemm throughput and memory copy bandwidth measured alongside (bench/README.md).
#
# Usage: bench/cpu-vs-numpy.sh [reps]   (>= 5, default 7; every figure is a median of reps runs)
# Environment: ATTN_BENCH_BUILD (build folder, default build-bench), PYTHON (default: Debian's
# /usr/bin/python3 with python3-numpy), ATTN_BENCH_THREADS (threads for every contender: attn's
# cpu_threads and OPENBLAS_NUM_THREADS for sgemm and numpy; default: every core).
set -euo pipefail

# Every contender runs with OpenBLAS's own CPU detection and cache sizes.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE

if [ -n "${ATTN_BENCH_THREADS:-}" ]; then
  export ATTN_BENCH_THREADS OPENBLAS_NUM_THREADS=$ATTN_BENCH_THREADS
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ATTN_BENCH_BUILD:-$root/build-bench}
reps=${1:-7}
python=${PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=python3

if [ ! -f "$build/CMakeCache.txt" ]; then # a fresh folder: a CPU-only Release build
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DATTN_CUDA=OFF >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target cpu_bench >/dev/null

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, ${ATTN_BENCH_THREADS:-$(nproc)} threads;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
"$build/bench/cpu_bench" "$reps" >"$out"
"$python" "$root/bench/numpy_attn.py" "$reps" "$out"
