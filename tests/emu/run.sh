#!/usr/bin/env bash
# tests/emu/run.sh - builds attn's CUDA backend for the CPU emulator (emu.cpp) and runs the GPU
# suites, and the suites that compare backends, on it: the way to execute the kernels of cuda/
# on a machine without a GPU. Not a substitute for a GPU run (see README.md here).
#
#   tests/emu/run.sh [SUITE...]     default: test_gpu_compute test_gpu_errors test_walkthrough
#                                   test_bad_input gpu_bench (about 10 minutes on 2 cores;
#                                   test_properties adds 5)
# gpu_bench is bench/gpu_bench.c on small shapes of its own with every flash plan forced
# (--dims, --plans): its timing, checking and plan rows, not figures.
# Builds into build-emu/ (EMU_BUILD_DIR to change). Needs x86-64 Linux, g++, gcc, python3 and
# Check (pkg-config check), which scripts/test.sh installs. Exits 77 when the platform cannot run
# it, 1 when a build or a suite fails. EMU_SMS, EMU_OPTIN, EMU_OCCUPANCY, EMU_REVERSE, EMU_FRONT:
# see emu.cpp.
set -euo pipefail

EMU_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$EMU_DIR/../.." && pwd)"
OUT="${EMU_BUILD_DIR:-$ROOT/build-emu}"

if [[ "$(uname -sm)" != "Linux x86_64" ]]; then
  echo "tests/emu/run.sh: the emulator's fibers need x86-64 Linux; skipped" >&2
  exit 77
fi
for tool in g++ gcc python3 pkg-config; do
  if ! command -v "$tool" >/dev/null; then
    echo "tests/emu/run.sh: $tool is missing; skipped" >&2
    exit 77
  fi
done
if ! pkg-config --exists check; then
  echo "tests/emu/run.sh: Check (pkg-config check) is missing; skipped" >&2
  exit 77
fi

SUITES=("$@")
if ((${#SUITES[@]} == 0)); then
  SUITES=(test_gpu_compute test_gpu_errors test_walkthrough test_bad_input gpu_bench)
fi

rm -rf "$OUT/src" "$OUT/obj"
mkdir -p "$OUT/src" "$OUT/obj" "$OUT/bin"
for f in "$ROOT"/cuda/*.cu; do
  python3 "$EMU_DIR/prep.py" "$f" "$OUT/src/$(basename "$f" .cu).cpp"
done
cp "$ROOT"/cuda/*.cuh "$ROOT"/cuda/*.h "$OUT/src/"

# -fsanitize=alignment: a float2 or float4 access off its alignment (a fault on a GPU) stops the
# run with its source line.
SANITIZE=(-fsanitize=alignment -fno-sanitize-recover=alignment)
CXXFLAGS=(-include "$EMU_DIR/shim/cuda_runtime.h" -std=c++17 -O2 -g -fno-omit-frame-pointer "${SANITIZE[@]}"
  -I"$EMU_DIR/shim" -I"$OUT/src" -I"$ROOT/include" -Wall -Wextra -Werror -Wno-unused-function -Wno-unknown-pragmas
  -Wno-unused-parameter)
CFLAGS=(-std=c11 -O1 -g -DATTN_BUILDING -D_POSIX_C_SOURCE=200809L -DATTN_WITH_CUDA=1
  -I"$ROOT/include" -I"$ROOT/host" -I"$ROOT/cuda" -Wall -Wextra -Werror)
JOBS="${ATTN_JOBS:-$(nproc)}"

compile() { # compile COMPILER FLAGS... -- SOURCE OBJECT
  "$@" || {
    echo "tests/emu/run.sh: compile failed: ${*: -3}" >&2
    return 1
  }
}
pids=()
for f in "$OUT"/src/*.cpp "$EMU_DIR/emu.cpp"; do
  compile g++ "${CXXFLAGS[@]}" -c "$f" -o "$OUT/obj/$(basename "$f" .cpp).o" &
  pids+=($!)
  if ((${#pids[@]} >= JOBS)); then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
for f in "$ROOT"/host/*.c; do
  compile gcc "${CFLAGS[@]}" -c "$f" -o "$OUT/obj/host_$(basename "$f" .c).o" &
  pids+=($!)
  if ((${#pids[@]} >= JOBS)); then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p"; done

read -r -a CHECK_LIBS <<<"$(pkg-config --libs check)"
failed=0
for t in "${SUITES[@]}"; do
  if [[ "$t" == gpu_bench ]]; then
    gcc -std=c11 -O1 -g -D_POSIX_C_SOURCE=200809L -I"$EMU_DIR/shim" -I"$ROOT/include" \
      -I"$ROOT/tests" -I"$ROOT/cuda" "$ROOT/bench/gpu_bench.c" "$OUT"/obj/*.o -o "$OUT/bin/$t" \
      -lstdc++ -lm -lpthread "${SANITIZE[@]}"
    echo "==> $t (emulated CUDA)"
    # A TILE<64> shape (two sets of 70 queries), a TILE<16> one (two sets of 20), two
    # decode-like batches (one query a set; AUTO runs both on STREAM, split), two
    # THREAD shapes (d = 3; sets of 9, and of 4 as in the walkthrough: the short-set kernel);
    # every plan forced, those that cannot run a shape show n/a.
    if ! EMU_CUBLAS_ANY_WS=1 "$OUT/bin/$t" --reps 10 --algo auto,gemm \
      --dims 2x70x300x16,2x20x300x16,8x1x600x20,70x1x300x20,1x100x9x3,1x300x4x3 \
      --plans all; then
      failed=1
    fi
    # The walkthrough's kernel and its sibling for sets of up to 8 on 5000 queries: 40 groups
    # of 128 rows for the emulator's 16 resident warps, three turns for some (AUTO and THREAD
    # only: a block a query would take minutes here).
    if ! EMU_CUBLAS_ANY_WS=1 "$OUT/bin/$t" --reps 10 --algo auto --dims 1x5000x4x3,1x5000x8x3 \
      --plans thread; then
      failed=1
    fi
    continue
  fi
  src="$ROOT/tests/$t.c"
  [[ -f "$src" ]] || src="$ROOT/tests/gpu/$t.c"
  gcc -std=c11 -O1 -g -D_POSIX_C_SOURCE=200809L -I"$ROOT/include" -I"$ROOT/tests" \
    -I"$ROOT/tests/gpu" -I"$ROOT/cuda" "$src" "$ROOT/tests/test_util.c" "$OUT"/obj/*.o \
    -o "$OUT/bin/$t" -lstdc++ "${CHECK_LIBS[@]}" -lm -lpthread "${SANITIZE[@]}"
  echo "==> $t (emulated CUDA)"
  if ! "$OUT/bin/$t"; then
    failed=1
  fi
done
exit "$failed"
