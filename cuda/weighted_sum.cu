/*
 * weighted_sum.cu - the context C = W V: c_i = sum_{j < valid} w_ij v_j for every query row.
 *
 * Shapes: W [m x n] per set (varlen: row r, columns 0 .. n_b-1), V [n x dv] per set,
 * C [m x dv] per set. Weights and values past a set's valid length are never read (a 0 weight
 * times a NaN value would be NaN), which is why the GEMM version needs a batch without lengths.
 *
 * Versions:
 *   SIMPLE  one thread per query row, a plain loop per context entry: the baseline.
 *   ROWS    one block per query row, one thread per context column (strided), j in order:
 *           coalesced reads of each value row.
 *   GEMM    cublasSgemmStridedBatched, uniform batches without lengths.
 * Every version sums j in increasing order per entry (GEMM: cuBLAS's fixed order).
 */
#include "blas.cuh"
#include "validate.cuh"
#include "weighted_sum.cuh"

#define WSUM_ROW_THREADS 128
#define ZERO_THREADS     256

static __global__ void wsum_simple_kernel(attn_cu_layout l, int64_t dv, attn_cuda_cmat_t W,
                                          attn_cuda_cmat_t V, attn_cuda_mat_t C, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const int64_t rows = attn_cu_query_rows(l);
  for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    attn_cu_set s;
    int64_t i;
    if (!attn_cu_query_row(l, r, &s, &i)) continue;
    const float *w = attn_cu_qrow(W.data, W.ld, W.stride, l, s, i);
    float *c = attn_cu_qrow(C.data, C.ld, C.stride, l, s, i);
    for (int64_t k = 0; k < dv; k++) {
      float acc = 0.0f;
      for (int64_t j = 0; j < s.valid; j++)
        acc += w[j] * attn_cu_arow(V.data, V.ld, V.stride, l, s, j)[k];
      c[k] = acc;
    }
  }
}

static __global__ void __launch_bounds__(WSUM_ROW_THREADS)
    wsum_rows_kernel(attn_cu_layout l, int64_t dv, attn_cuda_cmat_t W, attn_cuda_cmat_t V,
                     attn_cuda_mat_t C, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const int64_t rows = attn_cu_query_rows(l);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    attn_cu_set s;
    int64_t i;
    if (!attn_cu_query_row(l, r, &s, &i)) continue;
    const float *w = attn_cu_qrow(W.data, W.ld, W.stride, l, s, i);
    float *c = attn_cu_qrow(C.data, C.ld, C.stride, l, s, i);
    const float *v0 = attn_cu_arow(V.data, V.ld, V.stride, l, s, 0);
    for (int64_t k = threadIdx.x; k < dv; k += WSUM_ROW_THREADS) {
      float acc = 0.0f;
      for (int64_t j = 0; j < s.valid; j++)
        acc += w[j] * v0[j * V.ld + k];
      c[k] = acc;
    }
  }
}

/* Row-major C = W V per set is column-major C^T = V^T W^T, and V, W as stored are V^T [dv x n]
 * and W^T [n x m] to cuBLAS: both op N. */
static attn_cuda_status_t wsum_gemm(attn_cuda_t *cu, cudaStream_t stream, const attn_cu_layout &l,
                                    int64_t dv, attn_cuda_cmat_t W, attn_cuda_cmat_t V,
                                    attn_cuda_mat_t C) {
  ATTN_CU_TRY(attn_cu_blas_on(cu, stream));
  const float one = 1.0f, zero = 0.0f;
  ATTN_CU_CHECK(cu, cublasSgemmStridedBatched(
                        cu->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)dv, (int)l.m, (int)l.n, &one,
                        V.data, (int)V.ld, attn_cu_set_stride(l.batch, V.stride), W.data, (int)W.ld,
                        attn_cu_set_stride(l.batch, W.stride), &zero, C.data, (int)C.ld,
                        attn_cu_set_stride(l.batch, C.stride), (int)l.batch));
  return ATTN_CUDA_OK;
}

/* One warp per row: a row whose valid weights are all zero had no score above -inf (any other
 * row holds a weight >= 1/n, or NaN), so its context must be zero whatever the values hold, as
 * the reference's is; the GEMM's 0 * inf or 0 * NaN would not be. A normal row stops at its
 * first chunk of 32 weights. */
static __global__ void __launch_bounds__(ZERO_THREADS)
    zero_empty_rows_kernel(attn_cu_layout l, int64_t dv, attn_cuda_cmat_t W, attn_cuda_mat_t C) {
  const int lane = threadIdx.x % 32;
  const int64_t rows = attn_cu_query_rows(l), warps = (int64_t)gridDim.x * (ZERO_THREADS / 32);
  for (int64_t r = (int64_t)blockIdx.x * (ZERO_THREADS / 32) + threadIdx.x / 32; r < rows;
       r += warps) {
    attn_cu_set s;
    int64_t i;
    if (!attn_cu_query_row(l, r, &s, &i)) continue;
    const float *w = attn_cu_qrow(W.data, W.ld, W.stride, l, s, i);
    bool empty = true; /* warp-uniform */
    for (int64_t j0 = 0; j0 < s.valid && empty; j0 += 32) {
      const int64_t j = j0 + lane;
      empty = !__any_sync(0xffffffffu, j < s.valid && w[j] != 0.0f); /* NaN != 0 */
    }
    if (!empty) continue;
    float *c = attn_cu_qrow(C.data, C.ld, C.stride, l, s, i);
    for (int64_t k = lane; k < dv; k += 32)
      c[k] = 0.0f;
  }
}

attn_cuda_status_t attn_cu_zero_empty_rows(attn_cuda_t *cu, cudaStream_t stream,
                                           const attn_cu_layout &l, int64_t dv, attn_cuda_cmat_t W,
                                           attn_cuda_mat_t C) {
  const int64_t rows = attn_cu_query_rows(l);
  if (rows == 0) return ATTN_CUDA_OK;
  zero_empty_rows_kernel<<<attn_cu_blocks(rows, ZERO_THREADS / 32), ZERO_THREADS, 0, stream>>>(
      l, dv, W, C);
  ATTN_CU_CHECK(cu, cudaGetLastError());
  return ATTN_CUDA_OK;
}

attn_cuda_status_t attn_cu_weighted_sum(attn_cuda_t *cu, cudaStream_t stream,
                                        const attn_cu_layout &l, int64_t dv, attn_cuda_cmat_t W,
                                        attn_cuda_cmat_t V, attn_cuda_mat_t C, const int *bad,
                                        attn_cu_wsum_impl impl) {
  const int64_t rows = attn_cu_query_rows(l);
  if (rows == 0) return ATTN_CUDA_OK;
  if (impl == ATTN_CU_WSUM_GEMM) return wsum_gemm(cu, stream, l, dv, W, V, C);
  if (impl == ATTN_CU_WSUM_SIMPLE)
    wsum_simple_kernel<<<attn_cu_blocks(rows, 128), 128, 0, stream>>>(l, dv, W, V, C, bad);
  else
    wsum_rows_kernel<<<attn_cu_blocks(rows, 1), WSUM_ROW_THREADS, 0, stream>>>(l, dv, W, V, C, bad);
  ATTN_CU_CHECK(cu, cudaGetLastError());
  return ATTN_CUDA_OK;
}
