/*
 * softmax.cu - w = softmax(s) over each query row's valid entries, max-subtracted:
 *
 *     mx = max_j s_j (a NaN wins),  sum = sum_j exp(s_j - mx),  w_j = exp(s_j - mx) / sum,
 *     lse = mx + log(sum)
 *
 * Entries past the valid length are never read and get weight 0. A row with no valid entry, or
 * whose valid entries are all -inf, gets zero weights and lse = -inf (as the reference).
 *
 * Shapes: S and W [m x n] per set (varlen: row r, columns 0 .. n_b-1); lse packed, one per row.
 *
 * Versions:
 *   SIMPLE  one thread per row, three plain loops: the baseline.
 *   ROWS    blocks of 8 warps take 8 rows at a time. A row with at most ROWS_SHORT valid
 *           entries is done by one warp (shuffle reductions); a longer one by the whole block
 *           (shuffles, then shared memory across warps). The choice depends only on the row's
 *           own length, so a row's result never depends on the other rows of the call.
 * Both are deterministic: fixed reduction orders, no atomics. W may alias S (in place): every
 * entry is read and then written by the same thread, after all reads of the reductions.
 */
#include "softmax.cuh"
#include "validate.cuh"

#define ROWS_THREADS 256
#define ROWS_WARPS   (ROWS_THREADS / 32)
#define ROWS_SHORT   512

/* One row: where it is and what it holds. */
struct row_view {
  const float *s;
  float *w;
  float *lse; /* NULL when not requested */
  int64_t valid, nb;
};

static __device__ __forceinline__ bool find_row(const attn_cu_layout &l, attn_cuda_cmat_t S,
                                                attn_cuda_mat_t W, float *lse, int64_t r,
                                                row_view *v) {
  attn_cu_set s;
  int64_t i;
  if (!attn_cu_query_row(l, r, &s, &i)) return false;
  v->s = attn_cu_qrow(S.data, S.ld, S.stride, l, s, i);
  v->w = attn_cu_qrow(W.data, W.ld, W.stride, l, s, i);
  v->lse = lse ? lse + r : NULL;
  v->valid = s.valid;
  v->nb = s.nb;
  return true;
}

/* ---------------------------------------------------------------------------------------- */
/* SIMPLE                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static __global__ void softmax_simple_kernel(attn_cu_layout l, attn_cuda_cmat_t S,
                                             attn_cuda_mat_t W, float *lse, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const int64_t rows = attn_cu_query_rows(l);
  for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    row_view v;
    if (!find_row(l, S, W, lse, r, &v)) continue;
    float mx = -INFINITY;
    for (int64_t j = 0; j < v.valid; j++)
      mx = attn_cu_nanmax(mx, v.s[j]);
    if (mx == -INFINITY) {
      for (int64_t j = 0; j < v.nb; j++)
        v.w[j] = 0.0f;
      if (v.lse) *v.lse = -INFINITY;
      continue;
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < v.valid; j++)
      sum += expf(v.s[j] - mx);
    for (int64_t j = 0; j < v.valid; j++)
      v.w[j] = attn_cu_weight(expf(v.s[j] - mx), sum);
    for (int64_t j = v.valid; j < v.nb; j++)
      v.w[j] = 0.0f;
    if (v.lse) *v.lse = mx + logf(sum);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* ROWS                                                                                      */
/* ---------------------------------------------------------------------------------------- */

__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1)
    x = attn_cu_nanmax(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1)
    x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

/* Block-wide reductions: every thread gets the result. */
__device__ __forceinline__ float block_max(float x, float *shared) {
  x = warp_max(x);
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = x;
  __syncthreads();
  float r = -INFINITY;
  for (int w = 0; w < ROWS_WARPS; w++)
    r = attn_cu_nanmax(r, shared[w]);
  __syncthreads(); /* shared is reused by the next reduction */
  return r;
}
__device__ __forceinline__ float block_sum(float x, float *shared) {
  x = warp_sum(x);
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = x;
  __syncthreads();
  float r = 0.0f;
  for (int w = 0; w < ROWS_WARPS; w++)
    r += shared[w];
  __syncthreads();
  return r;
}

/* The row by `count` cooperating threads (a warp or the block), this one being `t`. */
template <bool BLOCK>
static __device__ __forceinline__ void softmax_row(const row_view &v, int t, int count,
                                                   float *shared) {
  float mx = -INFINITY;
  for (int64_t j = t; j < v.valid; j += count)
    mx = attn_cu_nanmax(mx, v.s[j]);
  mx = BLOCK ? block_max(mx, shared) : warp_max(mx);
  if (mx == -INFINITY) {
    for (int64_t j = t; j < v.nb; j += count)
      v.w[j] = 0.0f;
    if (t == 0 && v.lse) *v.lse = -INFINITY;
    return;
  }
  float sum = 0.0f;
  for (int64_t j = t; j < v.valid; j += count)
    sum += expf(v.s[j] - mx);
  sum = BLOCK ? block_sum(sum, shared) : warp_sum(sum);
  for (int64_t j = t; j < v.valid; j += count)
    v.w[j] = attn_cu_weight(expf(v.s[j] - mx), sum);
  for (int64_t j = v.valid + t; j < v.nb; j += count)
    v.w[j] = 0.0f;
  if (t == 0 && v.lse) *v.lse = mx + logf(sum);
}

static __global__ void __launch_bounds__(ROWS_THREADS)
    softmax_rows_kernel(attn_cu_layout l, attn_cuda_cmat_t S, attn_cuda_mat_t W, float *lse,
                        const int *bad) {
  __shared__ float shared[ROWS_WARPS];
  if (attn_cu_call_is_bad(bad)) return;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t rows = attn_cu_query_rows(l);
  for (int64_t first = (int64_t)blockIdx.x * ROWS_WARPS; first < rows;
       first += (int64_t)gridDim.x * ROWS_WARPS) {
    row_view v;
    /* Short rows: warp w takes row first + w. */
    if (first + warp < rows && find_row(l, S, W, lse, first + warp, &v) && v.valid <= ROWS_SHORT)
      softmax_row<false>(v, lane, 32, shared);
    /* Long rows: the whole block, one after the other (the branch is uniform per block). */
    for (int w = 0; w < ROWS_WARPS && first + w < rows; w++)
      if (find_row(l, S, W, lse, first + w, &v) && v.valid > ROWS_SHORT)
        softmax_row<true>(v, threadIdx.x, ROWS_THREADS, shared);
  }
}

attn_cuda_status_t attn_cu_softmax(attn_cuda_t *cu, cudaStream_t stream, const attn_cu_layout &l,
                                   attn_cuda_cmat_t S, attn_cuda_mat_t W, float *lse,
                                   const int *bad, attn_cu_softmax_impl impl) {
  const int64_t rows = attn_cu_query_rows(l);
  if (rows == 0) return ATTN_CUDA_OK;
  if (impl == ATTN_CU_SOFTMAX_SIMPLE)
    softmax_simple_kernel<<<attn_cu_blocks(rows, 128), 128, 0, stream>>>(l, S, W, lse, bad);
  else
    softmax_rows_kernel<<<attn_cu_blocks(rows, ROWS_WARPS), ROWS_THREADS, 0, stream>>>(l, S, W, lse,
                                                                                       bad);
  ATTN_CU_CHECK(cu, cudaGetLastError());
  return ATTN_CUDA_OK;
}
