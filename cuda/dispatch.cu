/*
 * dispatch.cu - runs one call: sizes the workspace, queues the device-side validation, and
 * picks the implementation of each step.
 *
 * What AUTO runs:
 *   - attn_forward without scores or weights: the flash kernels (flash.cu: the plan; flash_*.cu:
 *     the kernels), one pass over the annotations with an online softmax, long sets split across
 *     blocks. Their plan (a thread or a warp per query, or a block per 1, 8, 16, 32 or 64 queries,
 *     split or not) changes no result bit, so it is chosen freely from the shape: see
 *     attn_cu_flash_plan_of. The TILE variant, register-blocked like an SGEMM (tiles of 64 queries
 *     from 33 a set, of 32 from 17, else of 16; a larger tile only where its blocks reach every
 *     multiprocessor, or more than half of them for TILE<64> at k <= 64), takes the GEMM-shaped
 *     calls (sets of 16 queries or more, or 4 on sets of 1024 annotations or more, dot-like scores,
 *     batches without query and annotation offsets) and any dv; only a dv above 6144 that TILE
 *     cannot take (additive scores, offsets) sends a call to ROWS.
 *   - everything else (the three steps, and attn_forward asking for scores or weights): the
 *     ROWS kernels, a block per query row for scores and weighted sums, a warp or block per
 *     row for the softmax, and for attn_forward the three-pass row kernel (forward.cu).
 * Variable lengths and masks run there too: their sizes are known only on the device.
 *
 * AUTO never picks cuBLAS, because attn promises batch invariance (README.md, "Backends and
 * fallback"; attn.h): a query's bits must not depend on the other queries of its call, and cuBLAS
 * chooses its kernel (tile shape, split-K) from m, so the same query can round differently in a
 * batch of 1 and a batch of 64. The flash and ROWS kernels compute each row in an order that
 * depends only on that row's set. On the GEMM-shaped case (thousands of queries sharing one large
 * set) the flash TILE variant is the invariant answer; cuBLAS may still be faster there, and a
 * caller who wants it and can give up invariance forces ATTN_ALGO_GEMM (on an H100, 8192 x 1024 x
 * 512: cuBLAS's two products 0.37 ms, the forced GEMM call 0.42, TILE 0.67).
 * The flash plan's thresholds were measured on an H100 with bench/gpu-sweep.sh (every plan forced
 * on 29, then 34 shapes, 41 in the fourth run; the numbers are in flash.cu and bench/README.md, and
 * tests/gpu/test_flash_plan.c pins the choices): THREAD for sets of at most 32 annotations when k
 * and dv are at most 16, TILE from 16 queries a set (4 on sets of 1024 annotations or more; its
 * tiles as above), BLOCK<8> from 8 where TILE does not run (additive scores, offsets, short sets),
 * below that STREAM (split) where it can run (dot-like scores, d <= 256, dv <= 128, 16-byte aligned
 * rows) and the call has 2 query rows, unless its warps would need a second wave that WARP's would
 * not, else WARP when dv <= 256 and the call has 64 query rows or more, else BLOCK<1>; splitting
 * below 4 tiles (16 warps) a multiprocessor, STREAM always.
 *
 * Forced algorithms: SIMPLE runs the thread-per-row baseline of every step; ROWS the row
 * kernels; FUSED (ATTN_CUDA_ALGO_FLASH) as AUTO; GEMM runs cuBLAS wherever the batch allows it
 * (uniform, no lengths, sizes within int) and ROWS elsewhere: the scores (dot, scaled dot,
 * general after its q^T W projection) and the weighted sum are strided-batched SGEMMs, the
 * softmax runs in between on the score matrix, and additive scores use cuBLAS projections and
 * the ROWS score kernel. GEMM is deterministic run to run but not batch-invariant.
 */
#include "blas.cuh"
#include "flash.cuh"
#include "forward.cuh"
#include "scores.cuh"
#include "softmax.cuh"
#include "validate.cuh"
#include "weighted_sum.cuh"

#include <stdio.h>

/* Whether cuBLAS may run p: uniform, unmasked, non-empty, sizes within int. with_lds: also
 * check the leading dimensions of the matrices p has (attn_cuda_reserve has none). */
static bool gemm_possible(const attn_cuda_problem_t *p, bool with_lds) {
  if (p->query_offsets || p->lengths || p->m < 1 || p->n < 1) return false;
  const int64_t sizes[] = {p->batch, p->m, p->n, p->d, p->dv, p->h};
  if (!attn_cu_fits_int(sizes, 6)) return false;
  if (!with_lds) return true;
  const int64_t lds[] = {p->queries.ld,    p->annotations.ld, p->values.ld,  p->scores_in.ld,
                         p->weights_in.ld, p->scores.ld,      p->weights.ld, p->context.ld,
                         p->ldw,           p->ldwq,           p->ldwa};
  return attn_cu_fits_int(lds, 11);
}

static bool use_gemm(const attn_cuda_problem_t *p, bool with_lds) {
  switch (p->algo) {
  case ATTN_CUDA_ALGO_GEMM:
    return gemm_possible(p, with_lds);
  default: /* AUTO, SIMPLE, ROWS: batch-invariant kernels only */
    return false;
  }
}

/* Whether p runs on the flash kernels, and their plan. */
static bool use_flash(const attn_cuda_t *cu, const attn_cuda_problem_t *p,
                      attn_cu_flash_plan *plan) {
  if (p->algo != ATTN_CUDA_ALGO_AUTO && p->algo != ATTN_CUDA_ALGO_FLASH) return false;
  return attn_cu_flash_plan_of(p, cu, plan);
}

/* Workspace floats: projections, then either (forward on cuBLAS without requested weights) a
 * [batch x m x n] score/weight matrix or (flash, split) the span partials. */
static int workspace_floats(const attn_cuda_problem_t *p, bool gemm,
                            const attn_cu_flash_plan *flash, size_t *proj, size_t *total) {
  if (attn_cu_projection_floats(p, proj) != 0) return -1;
  *total = *proj;
  if (flash) {
    if (flash->partial_floats > SIZE_MAX / sizeof(float) - *proj) return -1;
    *total = *proj + flash->partial_floats;
  }
  if (p->op == ATTN_CUDA_OP_FORWARD && gemm && !p->weights.data) {
    int64_t scratch;
    if (__builtin_mul_overflow(p->batch, p->m, &scratch) ||
        __builtin_mul_overflow(scratch, p->n, &scratch) ||
        __builtin_add_overflow((int64_t)*proj, scratch, &scratch))
      return -1;
    *total = (size_t)scratch;
  }
  if (*total > SIZE_MAX / sizeof(float)) return -1;
  return 0;
}

static attn_cuda_status_t overflow(attn_cuda_t *cu) {
  snprintf(cu->message, sizeof cu->message, "cuda: the workspace size overflows size_t");
  return ATTN_CUDA_ERR_OVERFLOW;
}

extern "C" attn_cuda_status_t attn_cuda_reserve(attn_cuda_t *cu, const attn_cuda_problem_t *p) {
  size_t proj, total;
  attn_cu_flash_plan plan;
  const bool flash = use_flash(cu, p, &plan);
  if (workspace_floats(p, !flash && use_gemm(p, false), flash ? &plan : NULL, &proj, &total) != 0)
    return overflow(cu);
  ATTN_CU_ON_DEVICE(cu);
  return attn_cu_workspace(cu, total * sizeof(float));
}

static attn_cuda_status_t run_forward(attn_cuda_t *cu, cudaStream_t stream,
                                      const attn_cuda_problem_t *p, const int *bad, bool gemm,
                                      const attn_cu_flash_plan *flash, float *ws, size_t proj) {
  attn_cu_score_in si;
  ATTN_CU_TRY(attn_cu_prepare_scores(cu, stream, p, bad, gemm, ws, &si));
  if (flash)
    return attn_cu_flash_forward(cu, stream, si, p->dv, p->values, p->context, p->lse, bad, *flash,
                                 ws + proj);
  if (!gemm) {
    attn_cu_forward_impl impl =
        p->algo == ATTN_CUDA_ALGO_SIMPLE ? ATTN_CU_FORWARD_SIMPLE : ATTN_CU_FORWARD_ROWS;
    return attn_cu_forward_rows(cu, stream, si, p->dv, p->values, p->scores, p->weights, p->context,
                                p->lse, bad, impl);
  }
  /* Scores go to S if requested, else straight into W, else the scratch matrix; the softmax
   * then writes W (or works in place in the scratch). */
  const attn_cuda_mat_t scratch = {ws + proj, p->n, p->m * p->n};
  const attn_cuda_mat_t W = p->weights.data ? p->weights : scratch;
  const attn_cuda_mat_t S = p->scores.data ? p->scores : W;
  const attn_cu_layout l = si.l;
  ATTN_CU_TRY(attn_cu_scores(cu, stream, p, &si, S, bad,
                             si.additive ? ATTN_CU_SCORES_ROWS : ATTN_CU_SCORES_GEMM));
  ATTN_CU_TRY(attn_cu_softmax(cu, stream, l, attn_cuda_cmat_t{S.data, S.ld, S.stride}, W, p->lse,
                              bad, ATTN_CU_SOFTMAX_ROWS));
  const attn_cuda_cmat_t Wc = {W.data, W.ld, W.stride};
  ATTN_CU_TRY(attn_cu_weighted_sum(cu, stream, l, p->dv, Wc, p->values, p->context, bad,
                                   ATTN_CU_WSUM_GEMM));
  /* The reference gives a row with only -inf scores a zero context; 0 * inf in V would not. */
  return attn_cu_zero_empty_rows(cu, stream, l, p->dv, Wc, p->context);
}

static attn_cuda_status_t run_op(attn_cuda_t *cu, cudaStream_t stream, const attn_cuda_problem_t *p,
                                 const int *bad, bool gemm, const attn_cu_flash_plan *flash,
                                 float *ws, size_t proj) {
  const bool simple = p->algo == ATTN_CUDA_ALGO_SIMPLE;
  const attn_cu_layout l = attn_cu_layout_of(p);
  switch (p->op) {
  case ATTN_CUDA_OP_SCORES: {
    attn_cu_score_in si;
    ATTN_CU_TRY(attn_cu_prepare_scores(cu, stream, p, bad, gemm, ws, &si));
    attn_cu_scores_impl impl = simple                 ? ATTN_CU_SCORES_SIMPLE
                               : gemm && !si.additive ? ATTN_CU_SCORES_GEMM
                                                      : ATTN_CU_SCORES_ROWS;
    return attn_cu_scores(cu, stream, p, &si, p->scores, bad, impl);
  }
  case ATTN_CUDA_OP_SOFTMAX:
    return attn_cu_softmax(cu, stream, l, p->scores_in, p->weights, p->lse, bad,
                           simple ? ATTN_CU_SOFTMAX_SIMPLE : ATTN_CU_SOFTMAX_ROWS);
  case ATTN_CUDA_OP_WEIGHTED_SUM:
    return attn_cu_weighted_sum(cu, stream, l, p->dv, p->weights_in, p->values, p->context, bad,
                                simple ? ATTN_CU_WSUM_SIMPLE
                                : gemm ? ATTN_CU_WSUM_GEMM
                                       : ATTN_CU_WSUM_ROWS);
  case ATTN_CUDA_OP_FORWARD:
    return run_forward(cu, stream, p, bad, gemm, flash, ws, proj);
  }
  snprintf(cu->message, sizeof cu->message, "cuda: unknown operation %d", (int)p->op);
  return ATTN_CUDA_ERR_RUNTIME;
}

extern "C" attn_cuda_status_t attn_cuda_run(attn_cuda_t *cu, void *stream,
                                            const attn_cuda_problem_t *p) {
  const cudaStream_t s = (cudaStream_t)stream;
  attn_cu_flash_plan plan;
  const bool flash = use_flash(cu, p, &plan);
  ATTN_CU_TRY(attn_cu_flash_check_forced(cu, p, flash ? &plan : NULL));
  const bool gemm = !flash && use_gemm(p, true);
  size_t proj, total;
  if (workspace_floats(p, gemm, flash ? &plan : NULL, &proj, &total) != 0) return overflow(cu);
  ATTN_CU_ON_DEVICE(cu);
  ATTN_CU_TRY(attn_cu_workspace(cu, total * sizeof(float)));
  const int *bad = NULL;
  ATTN_CU_TRY(attn_cu_validate(cu, s, p, &bad));
  return run_op(cu, s, p, bad, gemm, flash ? &plan : NULL, (float *)cu->workspace, proj);
}
