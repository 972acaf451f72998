#!/usr/bin/env bash
# bench/gpu-vs-torch.sh - attn's CUDA backend against PyTorch on the same GPU, in one run, beside
# the same run's device copy bandwidth and cuBLAS sgemm rate (bench/README.md, GPU section).
#
# Usage: bench/gpu-vs-torch.sh [reps]   (>= 10, default 20; every figure is a median of reps)
#
# It builds bench/gpu_bench (a CUDA Release build in build-gpu-bench/ without tests, samples
# and tools, unless ATTN_BENCH_BUILD names another build folder), runs it (every attn algorithm
# on the four shapes, with cuBLAS and the copy), runs bench/torch_attn.py (PyTorch fp32, TF32
# off, matmul and scaled_dot_product_attention), and prints one table with attn-to-PyTorch
# ratios and the hardware ratios, then the summary lines and the issue's targets.
#
# Environment: ATTN_BENCH_BUILD (build folder), ATTN_BENCH_OUT (where the two runs' tables and
# JSON are kept; default <build>/gpu-vs-torch), ATTN_BENCH_SMALL=1 (gpu_bench --small and the
# same shapes for PyTorch: a quick run, not issue 6's shapes), ATTN_BENCH_FLUSH=read|write (the
# L2 flush of both programs, --flush: read by default), PYTHON (default python3).
# Exit status: 0 done, every attn check passed; 1 a failure (build, a wrong attn result, an
# error); 77 skipped: no PyTorch with CUDA, or no usable CUDA device.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${ATTN_BENCH_BUILD:-$root/build-gpu-bench}
out=${ATTN_BENCH_OUT:-$build/gpu-vs-torch}
reps=${1:-20}
python=${PYTHON:-python3}
small=()
if [ "${ATTN_BENCH_SMALL:-0}" = 1 ]; then small=(--small); fi
flush=${ATTN_BENCH_FLUSH:-read}

say() { printf 'gpu-vs-torch: %s\n' "$*" >&2; }

case $reps in
'' | *[!0-9]*)
  say "reps must be an integer >= 10, not '$reps'"
  exit 2
  ;;
esac
if [ "$reps" -lt 10 ]; then
  say "reps must be >= 10, not $reps"
  exit 2
fi
case $flush in
read | write) ;;
*)
  say "ATTN_BENCH_FLUSH must be read or write, not '$flush'"
  exit 2
  ;;
esac

# 1. PyTorch with CUDA (checked first: it needs no build).
if ! command -v "$python" >/dev/null 2>&1; then
  say "skipped: no Python interpreter '$python', so no PyTorch (set PYTHON)"
  exit 77
fi
if ! "$python" -c 'import torch' >/dev/null 2>&1; then
  say "skipped: PyTorch is not installed for $(command -v "$python") (set PYTHON to an" \
    "interpreter that has it; $build/bench/gpu_bench alone measures attn without PyTorch)"
  exit 77
fi
if ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
  >/dev/null 2>&1; then
  say "skipped: PyTorch sees no CUDA device (no GPU, no driver, or a CPU-only PyTorch)"
  exit 77
fi

# 2. Build gpu_bench.
mkdir -p "$build" "$out" || exit 1
if [ ! -f "$build/CMakeCache.txt" ]; then
  say "configuring a CUDA Release build in $build"
  if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DATTN_CUDA=ON \
    -DATTN_BUILD_TESTS=OFF -DATTN_BUILD_SAMPLES=OFF -DATTN_BUILD_TOOLS=OFF \
    >"$out/configure.log" 2>&1; then
    say "configuring failed (the CUDA toolkit is needed): see $out/configure.log"
    exit 1
  fi
fi
if ! cmake --build "$build" -j "$(nproc 2>/dev/null || echo 4)" --target gpu_bench \
  >"$out/build.log" 2>&1; then
  say "building gpu_bench failed (is $build configured with CUDA?): see $out/build.log"
  exit 1
fi

# 3. attn.
say "running $build/bench/gpu_bench (output in $out/attn.md)"
"$build/bench/gpu_bench" --reps "$reps" --flush "$flush" ${small[@]+"${small[@]}"} \
  --json "$out/attn.json" >"$out/attn.md"
attn_rc=$?
if [ "$attn_rc" -eq 77 ]; then
  cat "$out/attn.md" >&2
  say "skipped: attn finds no usable CUDA device"
  exit 77
fi
if [ "$attn_rc" -ne 0 ] && [ "$attn_rc" -ne 1 ] || [ ! -s "$out/attn.json" ]; then
  cat "$out/attn.md" >&2
  say "gpu_bench failed (exit $attn_rc)"
  exit 1
fi

# 4. PyTorch.
say "running bench/torch_attn.py (output in $out/torch.md)"
"$python" "$root/bench/torch_attn.py" --reps "$reps" --flush "$flush" ${small[@]+"${small[@]}"} \
  --json "$out/torch.json" >"$out/torch.md"
torch_rc=$?
if [ "$torch_rc" -eq 77 ]; then
  cat "$out/torch.md" >&2
  exit 77
fi
torch_json=$out/torch.json
if [ "$torch_rc" -ne 0 ]; then
  say "torch_attn.py failed (exit $torch_rc); see $out/torch.md"
  [ -s "$torch_json" ] || torch_json=
fi

# 5. One table.
"$python" "$root/bench/torch_attn.py" --merge "$out/attn.json" ${torch_json:+"$torch_json"} |
  tee "$out/gpu-vs-torch.md"
merge_rc=${PIPESTATUS[0]}
echo
echo "attn's table (every algorithm, cuBLAS, checks): $out/attn.md; PyTorch's: $out/torch.md"
if [ "$attn_rc" -ne 0 ]; then
  say "gpu_bench reported a failure (a wrong result or an error): see $out/attn.md"
fi
[ "$attn_rc" -eq 0 ] && [ "$torch_rc" -eq 0 ] && [ "$merge_rc" -eq 0 ]
