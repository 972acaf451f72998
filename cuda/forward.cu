/*
 * forward.cu - attention for each query row in one kernel, the score matrix never stored:
 *
 *     pass 1  s_j = score(q, a_j) for j < valid (written to S if requested), mx = max_j s_j
 *     pass 2  sum = sum_j exp(s_j - mx)               (scores recomputed)
 *     pass 3  w_j = exp(s_j - mx) / sum (written to W if requested), c += w_j v_j
 *
 * This is what runs for variable-length batches and masks that ask for scores or weights (the
 * longest set is known only on the device, so no scratch score matrix can be sized on the host),
 * and for ATTN_ALGO_ROWS. Recomputing the scores costs arithmetic, not memory. The flash kernels
 * (flash.cu: the plan; flash_*.cu: the kernels) are the one pass for calls that want only the
 * context.
 *
 * Shapes: as scores.cu and weighted_sum.cu; C [m x dv] per set; lse packed per query row.
 * A row with no valid entry, or only -inf scores, gets zero weights, a zero context and
 * lse = -inf; a NaN score makes its row NaN (the reference's rules).
 *
 * Versions:
 *   SIMPLE  one thread per query row; the context is accumulated in C itself, j in order.
 *   ROWS    one block per query row: warps compute scores (shuffle reductions), block
 *           reductions for mx and sum in a fixed order; pass 3 goes through the set in tiles of
 *           FWD_TILE weights held in shared memory, each thread accumulating its context columns
 *           in C in order of j. No atomics: deterministic, and a row's result depends only on
 *           its own set.
 */
#include "forward.cuh"
#include "validate.cuh"

#define FWD_THREADS 256
#define FWD_WARPS   (FWD_THREADS / 32)
#define FWD_TILE    256

struct forward_args {
  attn_cu_score_in si;
  int64_t dv;
  attn_cuda_cmat_t V;
  attn_cuda_mat_t S, W, C;
  float *lse;
};

/* Output rows of one query (S and W NULL when not requested). */
struct forward_row {
  attn_cu_set s;
  const float *q;
  float *srow, *wrow, *c, *lse;
};

static __device__ bool find_forward_row(const forward_args &a, int64_t r, forward_row *f) {
  int64_t i;
  if (!attn_cu_query_row(a.si.l, r, &f->s, &i)) return false;
  const attn_cu_layout &l = a.si.l;
  f->q = attn_cu_score_q(a.si, f->s, i);
  f->srow = a.S.data ? attn_cu_qrow(a.S.data, a.S.ld, a.S.stride, l, f->s, i) : NULL;
  f->wrow = a.W.data ? attn_cu_qrow(a.W.data, a.W.ld, a.W.stride, l, f->s, i) : NULL;
  f->c = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, l, f->s, i);
  f->lse = a.lse ? a.lse + r : NULL;
  return true;
}

/* The parts every version writes the same way, by `count` threads of which this is `t`. */
static __device__ void write_masked_tail(const forward_row &f, int64_t t, int64_t count) {
  for (int64_t j = f.s.valid + t; j < f.s.nb; j += count) {
    if (f.srow) f.srow[j] = -INFINITY;
    if (f.wrow) f.wrow[j] = 0.0f;
  }
}
static __device__ void write_empty_row(const forward_row &f, int64_t dv, int64_t t, int64_t count) {
  for (int64_t j = t; j < f.s.valid; j += count)
    if (f.wrow) f.wrow[j] = 0.0f;
  for (int64_t k = t; k < dv; k += count)
    f.c[k] = 0.0f;
  if (t == 0 && f.lse) *f.lse = -INFINITY;
}

/* ---------------------------------------------------------------------------------------- */
/* SIMPLE                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static __global__ void forward_simple_kernel(forward_args a, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const int64_t rows = attn_cu_query_rows(a.si.l);
  for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    forward_row f;
    if (!find_forward_row(a, r, &f)) continue;
    write_masked_tail(f, 0, 1);
    float mx = -INFINITY;
    for (int64_t j = 0; j < f.s.valid; j++) {
      float s = attn_cu_score_thread(a.si, f.s, f.q, j);
      if (f.srow) f.srow[j] = s;
      mx = attn_cu_nanmax(mx, s);
    }
    if (mx == -INFINITY) {
      write_empty_row(f, a.dv, 0, 1);
      continue;
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < f.s.valid; j++)
      sum += expf(attn_cu_score_thread(a.si, f.s, f.q, j) - mx);
    for (int64_t k = 0; k < a.dv; k++)
      f.c[k] = 0.0f;
    for (int64_t j = 0; j < f.s.valid; j++) {
      float w = attn_cu_weight(expf(attn_cu_score_thread(a.si, f.s, f.q, j) - mx), sum);
      if (f.wrow) f.wrow[j] = w;
      const float *v = attn_cu_arow(a.V.data, a.V.ld, a.V.stride, a.si.l, f.s, j);
      for (int64_t k = 0; k < a.dv; k++)
        f.c[k] += w * v[k];
    }
    if (f.lse) *f.lse = mx + logf(sum);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* ROWS                                                                                      */
/* ---------------------------------------------------------------------------------------- */

/* Block-wide reductions over one value per warp, combined in warp order. */
static __device__ float block_max_of_warps(float x, float *shared) {
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = x;
  __syncthreads();
  float r = -INFINITY;
  for (int w = 0; w < FWD_WARPS; w++)
    r = attn_cu_nanmax(r, shared[w]);
  __syncthreads();
  return r;
}
static __device__ float block_sum_of_warps(float x, float *shared) {
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = x;
  __syncthreads();
  float r = 0.0f;
  for (int w = 0; w < FWD_WARPS; w++)
    r += shared[w];
  __syncthreads();
  return r;
}

static __global__ void __launch_bounds__(FWD_THREADS)
    forward_rows_kernel(forward_args a, const int *bad) {
  __shared__ float reduce[FWD_WARPS];
  __shared__ float tile[FWD_TILE];
  if (attn_cu_call_is_bad(bad)) return;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t rows = attn_cu_query_rows(a.si.l);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    forward_row f;
    if (!find_forward_row(a, r, &f)) continue; /* uniform per block */
    write_masked_tail(f, threadIdx.x, FWD_THREADS);

    /* Pass 1: warp w scores j = w, w + 8, ...; each warp keeps its own max. */
    float mx = -INFINITY;
    for (int64_t j = warp; j < f.s.valid; j += FWD_WARPS) {
      float s = attn_cu_score_warp(a.si, f.s, f.q, j, lane);
      if (f.srow && lane == 0) f.srow[j] = s;
      mx = attn_cu_nanmax(mx, s);
    }
    mx = block_max_of_warps(mx, reduce);
    if (mx == -INFINITY) {
      write_empty_row(f, a.dv, threadIdx.x, FWD_THREADS);
      continue;
    }

    /* Pass 2: the same split, each warp summing its scores in order. */
    float sum = 0.0f;
    for (int64_t j = warp; j < f.s.valid; j += FWD_WARPS)
      sum += expf(attn_cu_score_warp(a.si, f.s, f.q, j, lane) - mx);
    sum = block_sum_of_warps(sum, reduce);

    /* Pass 3: weights of a tile into shared memory, then each thread adds them into its
     * context columns, j in order. */
    for (int64_t t0 = 0; t0 < f.s.valid; t0 += FWD_TILE) {
      const int64_t count = f.s.valid - t0 < FWD_TILE ? f.s.valid - t0 : FWD_TILE;
      for (int64_t jj = warp; jj < count; jj += FWD_WARPS) {
        float w = attn_cu_weight(expf(attn_cu_score_warp(a.si, f.s, f.q, t0 + jj, lane) - mx), sum);
        if (lane == 0) {
          tile[jj] = w;
          if (f.wrow) f.wrow[t0 + jj] = w;
        }
      }
      __syncthreads();
      const float *v0 = attn_cu_arow(a.V.data, a.V.ld, a.V.stride, a.si.l, f.s, t0);
      for (int64_t k = threadIdx.x; k < a.dv; k += FWD_THREADS) {
        float acc = t0 == 0 ? 0.0f : f.c[k];
        for (int64_t jj = 0; jj < count; jj++)
          acc += tile[jj] * v0[jj * a.V.ld + k];
        f.c[k] = acc;
      }
      __syncthreads(); /* the tile is overwritten next */
    }
    if (threadIdx.x == 0 && f.lse) *f.lse = mx + logf(sum);
  }
}

attn_cuda_status_t attn_cu_forward_rows(attn_cuda_t *cu, cudaStream_t stream,
                                        const attn_cu_score_in &si, int64_t dv, attn_cuda_cmat_t V,
                                        attn_cuda_mat_t S, attn_cuda_mat_t W, attn_cuda_mat_t C,
                                        float *lse, const int *bad, attn_cu_forward_impl impl) {
  const int64_t rows = attn_cu_query_rows(si.l);
  if (rows == 0) return ATTN_CUDA_OK;
  forward_args a = {si, dv, V, S, W, C, lse};
  if (impl == ATTN_CU_FORWARD_SIMPLE)
    forward_simple_kernel<<<attn_cu_blocks(rows, 128), 128, 0, stream>>>(a, bad);
  else
    forward_rows_kernel<<<attn_cu_blocks(rows, 1), FWD_THREADS, 0, stream>>>(a, bad);
  ATTN_CU_CHECK(cu, cudaGetLastError());
  return ATTN_CUDA_OK;
}
