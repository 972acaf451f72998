/*
 * scores.cuh - scoring: the score of one (query, annotation) pair for all four score functions,
 * the projections they need, and the launcher of the scores step.
 *
 * Every score function is reduced to one of two forms over k-wide rows q' and a':
 *   dot-like:  s = scale * (q' . a')                  dot, scaled dot (q' = q, a' = a) and
 *                                                     general (q' = q^T W [m x d], a' = a)
 *   additive:  s = sum_t v_t tanh(q'_t + a'_t)        q' = W_q q [m x h], a' = W_a a [n x h]
 * The projections q^T W, W_q q and W_a a are computed once per call into the workspace.
 */
#ifndef ATTN_CUDA_SCORES_CUH
#define ATTN_CUDA_SCORES_CUH

#include "layout.cuh"
#include "state.cuh"

/* The scoring inputs of a call after its projections. */
struct attn_cu_score_in {
  attn_cu_layout l;
  bool additive;
  float scale;        /* dot-like only (1 for dot and general) */
  int64_t k;          /* width of q' and a': d, or h for additive */
  attn_cuda_cmat_t q; /* q' indexed by query rows */
  attn_cuda_cmat_t a; /* a' indexed by annotation rows */
  const float *v;     /* additive: v [h] */
};

/* Workspace floats the projections of p need (0 for dot and scaled dot). */
int attn_cu_projection_floats(const attn_cuda_problem_t *p, size_t *floats);

/* Queues p's projections into ws (sized by attn_cu_projection_floats) and fills *si. use_gemm:
 * project with cuBLAS (uniform batches without lengths only), else with a kernel that reads
 * no annotation past its set's valid length. */
attn_cuda_status_t attn_cu_prepare_scores(attn_cuda_t *cu, cudaStream_t stream,
                                          const attn_cuda_problem_t *p, const int *bad,
                                          bool use_gemm, float *ws, attn_cu_score_in *si);

/* The scores step into S: SIMPLE (a thread per query row), ROWS (a block per query row, a warp
 * per score) or GEMM (cuBLAS strided-batched; dot-like scores of uniform batches without
 * lengths only). */
enum attn_cu_scores_impl { ATTN_CU_SCORES_SIMPLE, ATTN_CU_SCORES_ROWS, ATTN_CU_SCORES_GEMM };
attn_cuda_status_t attn_cu_scores(attn_cuda_t *cu, cudaStream_t stream,
                                  const attn_cuda_problem_t *p, const attn_cu_score_in *si,
                                  attn_cuda_mat_t S, const int *bad, attn_cu_scores_impl impl);

/* q' row of query i of set s, and the score against annotation j, by one thread. */
__device__ inline const float *attn_cu_score_q(const attn_cu_score_in &si, const attn_cu_set &s,
                                               int64_t i) {
  return attn_cu_qrow(si.q.data, si.q.ld, si.q.stride, si.l, s, i);
}
__device__ inline float attn_cu_score_thread(const attn_cu_score_in &si, const attn_cu_set &s,
                                             const float *q, int64_t j) {
  const float *a = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, j);
  float acc = 0.0f;
  if (si.additive) {
    for (int64_t t = 0; t < si.k; t++)
      acc += si.v[t] * tanhf(q[t] + a[t]);
    return acc;
  }
  for (int64_t t = 0; t < si.k; t++)
    acc += q[t] * a[t];
  return si.scale * acc;
}

/* The same score by a whole warp (lanes stride over k); every lane gets the same value. */
__device__ inline float attn_cu_score_warp(const attn_cu_score_in &si, const attn_cu_set &s,
                                           const float *q, int64_t j, int lane) {
  const float *a = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, j);
  float acc = 0.0f;
  if (si.additive) {
    for (int64_t t = lane; t < si.k; t += 32)
      acc += si.v[t] * tanhf(q[t] + a[t]);
  } else {
    for (int64_t t = lane; t < si.k; t += 32)
      acc += q[t] * a[t];
  }
  for (int o = 16; o > 0; o >>= 1)
    acc += __shfl_xor_sync(0xffffffffu, acc, o);
  return si.additive ? acc : si.scale * acc;
}

#endif
