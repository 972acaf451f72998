#!/usr/bin/env bash
# bench/gpu-sweep.sh - every flash plan forced on the shapes that decide the dispatcher's
# thresholds (cuda/flash.cu, attn_cu_flash_plan_of), beside AUTO, cuBLAS (GEMM) and the same
# run's copy bandwidth: the measurements the plan's numbers are set from.
#
# Usage: bench/gpu-sweep.sh [GPU_BENCH [JSON]]
#   GPU_BENCH  a CUDA build's bench/gpu_bench (default: build-gpu-bench/bench/gpu_bench, which
#              bench/gpu-vs-torch.sh builds), from commit e087808 on (--plans all)
#   JSON       also write every figure there
# Environment: SWEEP_REPS (timed calls per figure, >= 10, default 10).
# Exit status: gpu_bench's (0 every check passed; 1 a wrong result or an error; 77 no device).
# A plan that cannot run a shape shows n/a and is not a failure.
#
# What the shapes probe (batch x queries a set, annotations, d):
#   - issue 6's four shapes (walkthrough, decode, shared, long);
#   - TILE against BLOCK<8> and BLOCK<1> by queries a set: 1 x {64, 256, 1024, 4096} x 4096 x
#     128, and batches of sets of 32, 64 and 256 queries;
#   - TILE<16> against TILE<64> (AUTO's switch at 48 queries a set until the fourth H100 sweep,
#     at 33 since): sets of 16, 32 and 48 queries (the long shape, 32 x 16 x 4096, 64 x 32 x
#     1024, 64 x 48 x 1024) and the rows above;
#   - TILE<32> (AUTO's for sets of 17 to 32 queries since the third H100 sweep, and since the
#     fourth for larger sets whose tiles of 64 give fewer blocks than multiprocessors, in both
#     cases only where its own blocks reach every multiprocessor; split or not) against both on
#     the same rows, and on the shared shape, where unsplit its 256 tiles put
#     two blocks on most multiprocessors (AUTO's TILE<64> splits its 128 into 512 blocks and
#     folds 64 MiB of partials); since that sweep, its rule's edges: sets of 20 and 24 queries
#     (128 x 20 x 1024 x 128, 64 x 24 x 512 x 64) and of 40 (64 x 40 x 1024 x 128, TILE<16>'s by
#     the third run's rule, TILE<64>'s since the fourth), and TILE<64> at about one block a multiprocessor, where the third sweep had
#     TILE<32> ahead on 1 x 2048 x 1024 x 256 (128 blocks) and behind on 1 x 6144 x 256 x 64
#     (96): 1 x 2048 x 1024 x 128 (128 blocks, split) and 1 x 8192 x 256 x 128 (128, one span);
#   - d other than 128 for TILE: 1 x 8192 x 1024 x 64, 1 x 2048 x 1024 x 256;
#   - splitting spans: 256 sets of one query (fewer tiles than 4 a multiprocessor), 32 x 16 x
#     4096, 4 x 1 x 32768, and one query against 262144 annotations;
#   - THREAD against BLOCK and TILE for small d: 2000 and 20000 queries (around 16 rows a
#     multiprocessor on an H100), 200000 x 16 x 16, 4096 x 256 x 16, and 500000 queries of
#     d = 4 against 8 and 32 annotations (where THREAD stops paying);
#   - BLOCK<1> against BLOCK<8> and TILE for sets of 4 and 8 queries;
#   - WARP against BLOCK<1> on decode-like sets of one or two queries: 4096 x 1 x 256, 1024 x 1
#     x 4096 (split), 2048 x 2 x 1024 with d = 256 (8 columns a lane); the rows above give it
#     against the others;
#   - STREAM (WARP with its chunks staged in shared memory by cp.async) against WARP wherever
#     it runs (d a multiple of 4 up to 256, dv up to 256; AUTO's up to 128): decode and the rows
#     above, the dv = 256 ones for STREAM<2>, forced only until a sweep times it;
#   - the thresholds the first H100 sweep left between its rows: STREAM with two query rows (2
#     x 1 x 32768; that sweep's AUTO took it from 4, BLOCK<1> led with one), the 16-wide THREAD
#     at n = 32 (1 x 200000 x 32 x 16; it took THREAD to 16), TILE on sets of 4 short ones (4096
#     x 4 x 64 x 64), TILE<64> with 96 blocks (1 x 6144 x 256 x 64; at k <= 64 TILE<64> needs
#     more than 66 blocks on 132 SMs, else 132), and WARP against BLOCK<1> where STREAM cannot run (4096 x 1 x 1024 x 256, where
#     BLOCK<1> split led in the second and third sweeps, and since then 1024 x 1 x 4096 x 256
#     and 4096 x 1 x 512 x 256: whether one query a set and dv > 128 is BLOCK<1>'s in general);
#   - since the fourth H100 sweep, the tile rule's unmeasured edges: TILE<32> where TILE<64> has
#     96 blocks at k = 128 (1 x 6144 x 256 x 128; at k = 64 TILE<64> led), and TILE<32> at k = 64
#     with 132 blocks, where TILE<64> has 66 (1 x 4224 x 256 x 64) and in sets of 24 queries (66 x
#     24 x 512 x 64, against 64 sets' 128 blocks, where TILE<16> led).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=${1:-$root/build-gpu-bench/bench/gpu_bench}
json=${2:-}
reps=${SWEEP_REPS:-10}

if [ ! -x "$bench" ]; then
  echo "gpu-sweep: no gpu_bench at $bench: build attn with CUDA (bench/gpu-vs-torch.sh does)" >&2
  exit 1
fi

dims=1x64x4096x128,1x256x4096x128,1x1024x4096x128,1x4096x4096x128
dims=$dims,64x32x1024x128,64x48x1024x128,64x64x1024x128,16x256x1024x128
dims=$dims,1x8192x1024x64,1x2048x1024x256
dims=$dims,256x1x1024x128,32x16x4096x128,4x1x32768x128,1x1x262144x128
dims=$dims,1x2000x64x8,1x20000x64x8,1x200000x16x16,1x4096x256x16
dims=$dims,256x4x1024x128,128x8x1024x128,1x500000x8x4,1x500000x32x4
dims=$dims,4096x1x256x128,1024x1x4096x128,2048x2x1024x256
dims=$dims,2x1x32768x128,1x200000x32x16,4096x4x64x64,1x6144x256x64,4096x1x1024x256
dims=$dims,128x20x1024x128,64x24x512x64,64x40x1024x128,1x2048x1024x128,1x8192x256x128
dims=$dims,1024x1x4096x256,4096x1x512x256
dims=$dims,1x6144x256x128,1x4224x256x64,66x24x512x64

algos=auto,gemm
shapes=walkthrough,decode,shared,long
args=(--reps "$reps" --algo "$algos" --plans all --shape "$shapes" --dims "$dims")
if [ -n "$json" ]; then args+=(--json "$json"); fi
exec "$bench" "${args[@]}"
