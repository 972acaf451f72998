/*
 * flash.cuh - the one-pass forward (online softmax, split across blocks for long sets) for calls
 * that want only the context and, optionally, the log-sum-exp.
 */
#ifndef ATTN_CUDA_FLASH_CUH
#define ATTN_CUDA_FLASH_CUH

#include "scores.cuh"

/* The fixed structure of the arithmetic (see flash.cu): a set's valid annotations are cut into
 * spans of ATTN_CU_FLASH_SPAN rows and each span into chunks of ATTN_CU_FLASH_CHUNK rows, counted
 * from the set's first annotation. Changing either changes results in their last bits. */
#define ATTN_CU_FLASH_CHUNK 32
#define ATTN_CU_FLASH_SPAN  256

/* How a call runs; a function of the call's sizes and the device only. None of it changes a
 * result bit: every variant computes the same operations in the same order, but TC, which only
 * ATTN_CU_FLASH runs (flash_plans.h): an arithmetic of its own, on the tensor cores. */
enum attn_cu_flash_variant {
  ATTN_CU_FLASH_THREAD = 0, /* a thread per query row (k and dv at most 16) */
  ATTN_CU_FLASH_BLOCK = 1,  /* a block per tile of 1 or 8 queries of one set and span range */
  ATTN_CU_FLASH_TILE = 2,   /* a block per tile of 64, 32 or 16 queries, register-blocked
                               (uniform batches, dot-like scores) */
  ATTN_CU_FLASH_WARP = 3,   /* a warp per query row and span range (dv at most 256) */
  ATTN_CU_FLASH_STREAM = 4, /* WARP with each chunk staged in shared memory by cp.async
                               (dot-like scores, d <= 256, dv <= 256, 16-byte aligned rows;
                               AUTO's up to dv = 128) */
  ATTN_CU_FLASH_TC = 5      /* TILE<64>'s structure with both products on the tensor cores in
                               3xTF32 (forced only: other bits, see flash_tile.cu) */
};
struct attn_cu_flash_plan {
  attn_cu_flash_variant variant;
  int tile;              /* BLOCK, TILE: queries per block (1, 8; 64, 32, 16); TC: 64; WARP: 1 */
  int64_t spans;         /* 1: a block walks its set's spans; > 1: a block per span, then combine */
  size_t partial_floats; /* workspace for the span partials (0 when spans == 1) */
  size_t smem;           /* dynamic shared memory a block of the kernel takes, in bytes */
};

/* Sets cu up for the flash kernels at context creation: whether the device gives a block the
 * TILE variant's shared memory, and if so, that kernel's opt-in; how much the STREAM variant may
 * take. */
attn_cuda_status_t attn_cu_flash_init(attn_cuda_t *cu);

/* Whether the flash forward can run p (a forward call without scores or weights whose dv fits
 * the block's shared memory, or that the TILE variant takes) on cu's device and, when it can,
 * its plan in *plan. A split whose partial workspace would pass 128 MiB (or overflow) is not
 * planned. ATTN_CU_FLASH (tests only) forces a variant and tiling, named as in flash_plans.h
 * ("thread", "block1", ..., "splitstream"); a forced plan that cannot run p is ignored, unless
 * the name ends in '!' (see attn_cu_flash_check_forced). */
bool attn_cu_flash_plan_of(const attn_cuda_problem_t *p, const attn_cuda_t *cu,
                           attn_cu_flash_plan *plan);

/* Tests only: with ATTN_CU_FLASH set to a plan name and '!' (say "tile!"), a call that the
 * flash kernels could take (a forward without scores or weights, AUTO or FUSED) fails with
 * ATTN_CUDA_ERR_RUNTIME unless that variant and tiling is what runs it (plan; NULL: no flash
 * kernel runs it), so that a test can tell a forced plan ran rather than quietly fell back. */
attn_cuda_status_t attn_cu_flash_check_forced(attn_cuda_t *cu, const attn_cuda_problem_t *p,
                                              const attn_cu_flash_plan *plan);

/* Queues the flash forward of p (scores prepared in si) writing C and, when not NULL, lse.
 * partials: plan->partial_floats floats of workspace. */
attn_cuda_status_t attn_cu_flash_forward(attn_cuda_t *cu, cudaStream_t stream,
                                         const attn_cu_score_in &si, int64_t dv, attn_cuda_cmat_t V,
                                         attn_cuda_mat_t C, float *lse, const int *bad,
                                         const attn_cu_flash_plan &plan, float *partials);

#endif
