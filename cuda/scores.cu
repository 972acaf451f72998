/*
 * scores.cu - the scores step S = score(Q, A) and the projections of the general and additive
 * score functions (see scores.cuh for how the four functions reduce to two forms).
 *
 * Shapes: Q [m x d] and A [n x d] per set; S [m x n] per set (varlen: row r of S, columns
 * 0 .. n_b-1); projections q' [query rows x k] and a' [annotation rows x k] in the workspace,
 * packed (ld k), indexed by global rows.
 *
 * Versions, all writing -inf past a set's valid length and reading nothing there:
 *   SIMPLE  one thread per query row, a plain loop per score: the baseline the others are
 *           checked against.
 *   ROWS    one block per query row, one warp per score (lanes over k, shuffle reduction):
 *           enough parallelism for few queries and long sets; any layout.
 *   GEMM    cublasSgemmStridedBatched: dot-like scores of uniform batches without lengths.
 */
#include "blas.cuh"
#include "scores.cuh"
#include "validate.cuh"

#define SCORES_ROW_THREADS 256
#define PROJECT_THREADS    256

/* ---------------------------------------------------------------------------------------- */
/* Projections                                                                               */
/* ---------------------------------------------------------------------------------------- */

/* out[r][o] = sum_t x_r[t] * mat[o * so + t * st] for every row r of one side (queries or
 * annotations) that belongs to a set (and, for annotations, is within its valid length).
 * out is [rows x width], packed. */
struct project_args {
  attn_cu_layout l;
  bool annotation_side;
  attn_cuda_cmat_t x;
  const float *mat;
  int64_t so, st;
  int64_t width, depth;
  float *out;
};

static __global__ void __launch_bounds__(PROJECT_THREADS)
    project_kernel(project_args a, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const attn_cu_layout &l = a.l;
  const int64_t rows = a.annotation_side ? attn_cu_annotation_rows(l) : attn_cu_query_rows(l);
  const int64_t total = rows * a.width;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = idx / a.width, o = idx % a.width;
    attn_cu_set s;
    int64_t i;
    const float *x;
    if (a.annotation_side) {
      if (!attn_cu_annotation_row(l, r, &s, &i)) continue;
      x = attn_cu_arow(a.x.data, a.x.ld, a.x.stride, l, s, i);
    } else {
      if (!attn_cu_query_row(l, r, &s, &i)) continue;
      x = attn_cu_qrow(a.x.data, a.x.ld, a.x.stride, l, s, i);
    }
    float acc = 0.0f;
    for (int64_t t = 0; t < a.depth; t++)
      acc += x[t] * a.mat[o * a.so + t * a.st];
    a.out[r * a.width + o] = acc;
  }
}

static attn_cuda_status_t project(attn_cuda_t *cu, cudaStream_t stream, const project_args &a,
                                  const int *bad) {
  const int64_t rows = a.annotation_side ? attn_cu_annotation_rows(a.l) : attn_cu_query_rows(a.l);
  if (rows == 0) return ATTN_CUDA_OK;
  project_kernel<<<attn_cu_blocks(rows * a.width, PROJECT_THREADS), PROJECT_THREADS, 0, stream>>>(
      a, bad);
  ATTN_CU_CHECK(cu, cudaGetLastError());
  return ATTN_CUDA_OK;
}

/* Row-major out [rows x width] (packed, one block of rows per set) = X [rows x d] . M^T per set,
 * with M [width x d] given by (data, ld) when trans_m, or M^T [d x width] when not:
 * column-major out^T = op(M) X^T. */
static attn_cuda_status_t project_gemm(attn_cuda_t *cu, const attn_cuda_problem_t *p,
                                       attn_cuda_cmat_t x, int64_t rows, const float *mat,
                                       int64_t ldm, bool trans_m, int64_t width, float *out) {
  const float one = 1.0f, zero = 0.0f;
  ATTN_CU_CHECK(cu, cublasSgemmStridedBatched(
                        cu->blas, trans_m ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, (int)width,
                        (int)rows, (int)p->d, &one, mat, (int)ldm, 0, x.data, (int)x.ld,
                        attn_cu_set_stride(p->batch, x.stride), &zero, out, (int)width,
                        (long long)(rows * width), (int)p->batch));
  return ATTN_CUDA_OK;
}

int attn_cu_projection_floats(const attn_cuda_problem_t *p, size_t *floats) {
  attn_cu_layout l = attn_cu_layout_of(p);
  int64_t q = 0, a = 0;
  if (p->kind == ATTN_CUDA_SCORE_GENERAL) {
    if (__builtin_mul_overflow(attn_cu_query_rows(l), p->d, &q)) return -1;
  } else if (p->kind == ATTN_CUDA_SCORE_ADDITIVE) {
    if (__builtin_mul_overflow(attn_cu_query_rows(l), p->h, &q) ||
        __builtin_mul_overflow(attn_cu_annotation_rows(l), p->h, &a))
      return -1;
  }
  /* Each part is rounded up to 64 floats (256 bytes) so that both stay aligned. */
  q = (q + 63) / 64 * 64;
  a = (a + 63) / 64 * 64;
  if (__builtin_add_overflow(q, a, &q)) return -1;
  *floats = (size_t)q;
  return 0;
}

attn_cuda_status_t attn_cu_prepare_scores(attn_cuda_t *cu, cudaStream_t stream,
                                          const attn_cuda_problem_t *p, const int *bad,
                                          bool use_gemm, float *ws, attn_cu_score_in *si) {
  attn_cu_layout l = attn_cu_layout_of(p);
  const int64_t qrows = attn_cu_query_rows(l);
  si->l = l;
  si->additive = p->kind == ATTN_CUDA_SCORE_ADDITIVE;
  si->scale = p->kind == ATTN_CUDA_SCORE_SCALED_DOT ? p->scale : 1.0f;
  si->k = p->d;
  si->q = p->queries;
  si->a = p->annotations;
  si->v = p->v;
  if (p->kind == ATTN_CUDA_SCORE_DOT || p->kind == ATTN_CUDA_SCORE_SCALED_DOT) return ATTN_CUDA_OK;

  const int64_t k = si->additive ? p->h : p->d;
  float *qp = ws, *ap = ws + (qrows * k + 63) / 64 * 64;
  si->k = k;
  si->q = attn_cuda_cmat_t{qp, k, p->m * k};
  if (si->additive) si->a = attn_cuda_cmat_t{ap, k, p->n * k};
  if (use_gemm) {
    ATTN_CU_TRY(attn_cu_blas_on(cu, stream));
    if (!si->additive) /* q' = q^T W: out^T = W^T q, and W as stored is W^T to cuBLAS */
      return project_gemm(cu, p, p->queries, p->m, p->w, p->ldw, false, k, qp);
    /* q' = W_q q and a' = W_a a: out^T = W_q Q^T, and W_q as stored is W_q^T to cuBLAS */
    ATTN_CU_TRY(project_gemm(cu, p, p->queries, p->m, p->wq, p->ldwq, true, k, qp));
    return project_gemm(cu, p, p->annotations, p->n, p->wa, p->ldwa, true, k, ap);
  }
  if (!si->additive) /* q'[o] = sum_t q[t] W[t][o] */
    return project(cu, stream, project_args{l, false, p->queries, p->w, 1, p->ldw, k, p->d, qp},
                   bad);
  /* q'[o] = sum_t W_q[o][t] q[t], a'[o] = sum_t W_a[o][t] a[t] */
  ATTN_CU_TRY(
      project(cu, stream, project_args{l, false, p->queries, p->wq, p->ldwq, 1, k, p->d, qp}, bad));
  return project(cu, stream, project_args{l, true, p->annotations, p->wa, p->ldwa, 1, k, p->d, ap},
                 bad);
}

/* ---------------------------------------------------------------------------------------- */
/* Scores                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* SIMPLE: thread r writes row r of S. */
static __global__ void scores_simple_kernel(attn_cu_score_in si, attn_cuda_mat_t S,
                                            const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const int64_t rows = attn_cu_query_rows(si.l);
  for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    attn_cu_set s;
    int64_t i;
    if (!attn_cu_query_row(si.l, r, &s, &i)) continue;
    const float *q = attn_cu_score_q(si, s, i);
    float *srow = attn_cu_qrow(S.data, S.ld, S.stride, si.l, s, i);
    for (int64_t j = 0; j < s.valid; j++)
      srow[j] = attn_cu_score_thread(si, s, q, j);
    for (int64_t j = s.valid; j < s.nb; j++)
      srow[j] = -INFINITY;
  }
}

/* ROWS: block per query row, warp per score. */
static __global__ void __launch_bounds__(SCORES_ROW_THREADS)
    scores_rows_kernel(attn_cu_score_in si, attn_cuda_mat_t S, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = SCORES_ROW_THREADS / 32;
  const int64_t rows = attn_cu_query_rows(si.l);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    attn_cu_set s;
    int64_t i;
    if (!attn_cu_query_row(si.l, r, &s, &i)) continue;
    const float *q = attn_cu_score_q(si, s, i);
    float *srow = attn_cu_qrow(S.data, S.ld, S.stride, si.l, s, i);
    for (int64_t j = warp; j < s.valid; j += warps) {
      float v = attn_cu_score_warp(si, s, q, j, lane);
      if (lane == 0) srow[j] = v;
    }
    for (int64_t j = s.valid + threadIdx.x; j < s.nb; j += SCORES_ROW_THREADS)
      srow[j] = -INFINITY;
  }
}

/* GEMM: row-major S = scale * Q' A^T per set, i.e. column-major S^T = scale * A Q'^T, where A as
 * stored is A^T [d x n] to cuBLAS (so op T) and Q' as stored is Q'^T [k x m] (op N). */
static attn_cuda_status_t scores_gemm(attn_cuda_t *cu, cudaStream_t stream,
                                      const attn_cuda_problem_t *p, const attn_cu_score_in *si,
                                      attn_cuda_mat_t S) {
  ATTN_CU_TRY(attn_cu_blas_on(cu, stream));
  const float beta = 0.0f;
  ATTN_CU_CHECK(cu, cublasSgemmStridedBatched(
                        cu->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)p->n, (int)p->m, (int)si->k,
                        &si->scale, si->a.data, (int)si->a.ld,
                        attn_cu_set_stride(p->batch, si->a.stride), si->q.data, (int)si->q.ld,
                        attn_cu_set_stride(p->batch, si->q.stride), &beta, S.data, (int)S.ld,
                        attn_cu_set_stride(p->batch, S.stride), (int)p->batch));
  return ATTN_CUDA_OK;
}

attn_cuda_status_t attn_cu_scores(attn_cuda_t *cu, cudaStream_t stream,
                                  const attn_cuda_problem_t *p, const attn_cu_score_in *si,
                                  attn_cuda_mat_t S, const int *bad, attn_cu_scores_impl impl) {
  const int64_t rows = attn_cu_query_rows(si->l);
  if (rows == 0) return ATTN_CUDA_OK;
  if (impl == ATTN_CU_SCORES_GEMM) {
    if (p->n == 0) return ATTN_CUDA_OK; /* no column to write */
    return scores_gemm(cu, stream, p, si, S);
  }
  if (impl == ATTN_CU_SCORES_SIMPLE)
    scores_simple_kernel<<<attn_cu_blocks(rows, 128), 128, 0, stream>>>(*si, S, bad);
  else
    scores_rows_kernel<<<attn_cu_blocks(rows, 1), SCORES_ROW_THREADS, 0, stream>>>(*si, S, bad);
  ATTN_CU_CHECK(cu, cudaGetLastError());
  return ATTN_CUDA_OK;
}
