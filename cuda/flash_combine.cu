/*
 * flash_combine.cu - the flash forward's combine kernel: the span partials (M, S, X) of a split
 * call, which the BLOCK, TILE, TC, WARP and STREAM kernels write for their spans, folded in order
 * into the context and the lse (flash.cu's "total").
 *
 * A warp per (query row, group of 32 NC context columns): lane e takes columns col0 + 32 c of
 * the group, col0 = 32 NC g + e (the row's lse: g = 0, e = 0). The spans come W at a time, lane
 * e holding span u0 + e's (m, l); see flash_combine_kernel for W and NC.
 *
 * A fold's factors depend only on the chain of maxima, M_u = nanmax(M_{u-1}, m_u), and nanmax
 * (the larger, a later one on ties, the earliest NaN) is associative bit for bit, NaN payloads
 * and zero signs included. So a prefix nanmax across the lanes gives each lane the M_{u-1} the
 * sequential fold has before its span, and each lane takes its span's two exps at once; only
 * the folds of S and X, which round at every step, then run in order, a multiply and an add a
 * span. (Before: a block per row, every thread taking both exps of every span itself, 14.9 us
 * for the long shape's 128 spans of 16 rows on an H200, 16 blocks busy.)
 */
#include "flash_kernels.cuh"

/* Column groups of a row: 32 NC columns each. */
template <int NC> static __host__ __device__ __forceinline__ int64_t combine_groups(int64_t dv) {
  return (dv + 32 * NC - 1) / (32 * NC);
}

template <int W> static __device__ __forceinline__ int combine_count(int64_t left) {
  return left < W ? (int)left : W;
}

/* Lane e's part of spans [u0, u0 + cnt) (cnt <= W): m and l of span u0 + e, and x[j][c] = its
 * column col0 + 32 c of span u0 + j (0 past cnt or past dv). */
template <int W, int NC>
static __device__ __forceinline__ void combine_load(const float *part, int64_t dv, int64_t u0,
                                                    int cnt, int lane, int64_t col0, float &m,
                                                    float &l, float (&x)[W][NC]) {
  const float *p = part + (u0 + lane) * (dv + 2);
  m = lane < cnt ? p[0] : -INFINITY;
  l = lane < cnt ? p[1] : 0.0f;
#pragma unroll
  for (int j = 0; j < W; j++)
#pragma unroll
    for (int c = 0; c < NC; c++)
      x[j][c] =
          j < cnt && col0 + 32 * c < dv ? part[(u0 + j) * (dv + 2) + 2 + col0 + 32 * c] : 0.0f;
}

/* Folds spans [u0, u0 + cnt) (1 <= cnt <= W, warp-uniform) into (M, S, X), every lane the same M
 * and S; m, l and x as combine_load leaves them. The factors go through the warp's float4s of
 * shared memory (fac), which the folds read as broadcasts: shuffles inside `j < cnt` would make
 * the compiler wrap each in a warp-collective sequence. */
template <int W, int NC>
static __device__ __forceinline__ void combine_spans(int cnt, int lane, float m, float l,
                                                     const float (&x)[W][NC], float4 *fac, float &M,
                                                     float &S, float (&X)[NC]) {
  float run = m; /* nanmax of m over lanes 0 .. lane (for lane < W) */
#pragma unroll
  for (int o = 1; o < W; o <<= 1) {
    const float t = __shfl_up_sync(0xffffffffu, run, o);
    if (lane >= o) run = attn_cu_nanmax(t, run);
  }
  const float before = __shfl_up_sync(0xffffffffu, run, 1);
  float mn, al, be;
  flash_coeffs(lane == 0 ? M : attn_cu_nanmax(M, before), m, &mn, &al, &be);
  __syncwarp(); /* the previous group's folds have read fac */
  fac[lane] = make_float4(al, be, l, 0.0f);
  __syncwarp();
#pragma unroll
  for (int j = 0; j < W; j++)
    if (j < cnt) {
      const float4 f = fac[j];
      S = flash_mix(S, f.x, f.z, f.y);
#pragma unroll
      for (int c = 0; c < NC; c++)
        X[c] = flash_mix(X[c], f.x, x[j][c], f.y);
    }
  M = __shfl_sync(0xffffffffu, mn, cnt - 1);
}

/* W spans a group and NC columns a lane (columns col0 + 32 c of the warp's 32 NC): W = 8, NC = 4
 * where the call's annotation count allows no row more than 8 spans (n <= 2048; the shared
 * shape's 4: a warp a row and 128 columns, so that fewer warps repeat the row's factors and no
 * load is predicated off for up to 24 absent spans), else W = 32, NC = 1 (the long shape's 128
 * spans: 4 groups, the next group loading during a group's folds). */
template <int W, int NC>
static __global__ void __launch_bounds__(FLASH_THREADS, FLASH_THREAD_MIN_BLOCKS)
    flash_combine_kernel(flash_args a, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const attn_cu_layout &l = a.si.l;
  /* W = 8 runs where the host knows a row has at most 8 spans: nothing to load ahead. */
  constexpr bool AHEAD = W > 8;
  const int64_t rows = attn_cu_query_rows(l), dv = a.dv, groups = combine_groups<NC>(dv);
  const int lane = (int)(threadIdx.x % 32);
  const int64_t warps = (int64_t)gridDim.x * FLASH_WARPS;
  __shared__ float4 fac[FLASH_WARPS][32];
  for (int64_t w = (int64_t)blockIdx.x * FLASH_WARPS + threadIdx.x / 32; w < rows * groups;
       w += warps) {
    const int64_t r = w / groups, col0 = (w % groups) * 32 * NC + lane;
    attn_cu_set s;
    int64_t i;
    if (!attn_cu_query_row(l, r, &s, &i)) continue;
    const int64_t nspans = flash_spans_of(s.valid);
    if (nspans <= 1) continue; /* finished by its block */
    const float *part = a.partial + r * a.spans * (dv + 2);
    float M = -INFINITY, S = 0.0f, X[NC], m, ls, x[W][NC];
#pragma unroll
    for (int c = 0; c < NC; c++)
      X[c] = 0.0f;
    if (!AHEAD) { /* one group in practice: load, fold */
      for (int64_t u0 = 0; u0 < nspans; u0 += W) {
        const int cnt = combine_count<W>(nspans - u0);
        combine_load<W, NC>(part, dv, u0, cnt, lane, col0, m, ls, x);
        combine_spans<W, NC>(cnt, lane, m, ls, x, fac[threadIdx.x / 32], M, S, X);
      }
    } else {
      combine_load<W, NC>(part, dv, 0, combine_count<W>(nspans), lane, col0, m, ls, x);
      for (int64_t u0 = 0; u0 < nspans; u0 += W) {
        /* This group's copy, then the next group's loads, in flight during the folds. */
        const int cnt = combine_count<W>(nspans - u0);
        const float cm = m, cl = ls;
        float cx[W][NC];
#pragma unroll
        for (int j = 0; j < W; j++)
#pragma unroll
          for (int c = 0; c < NC; c++)
            cx[j][c] = x[j][c];
        if (u0 + W < nspans)
          combine_load<W, NC>(part, dv, u0 + W, combine_count<W>(nspans - u0 - W), lane, col0, m,
                              ls, x);
        combine_spans<W, NC>(cnt, lane, cm, cl, cx, fac[threadIdx.x / 32], M, S, X);
      }
    }
    float *crow = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, l, s, i);
#pragma unroll
    for (int c = 0; c < NC; c++)
      if (col0 + 32 * c < dv) crow[col0 + 32 * c] = flash_out(X[c], M, S);
    if (col0 == 0 && a.lse) a.lse[r] = flash_lse(M, S);
  }
}

template <int W, int NC>
static void launch_combine(const flash_args &a, int64_t rows, cudaStream_t stream, const int *bad) {
  flash_combine_kernel<W, NC>
      <<<attn_cu_blocks(rows * combine_groups<NC>(a.dv), FLASH_WARPS), FLASH_THREADS, 0, stream>>>(
          a, bad);
}

void attn_cu_flash_combine(const flash_args &a, cudaStream_t stream, const int *bad) {
  const int64_t rows = attn_cu_query_rows(a.si.l);
  /* a.spans: the most spans a row can have (from n: a varlen call's rows may have fewer) */
  if (a.spans <= 8)
    launch_combine<8, 4>(a, rows, stream, bad);
  else
    launch_combine<32, 1>(a, rows, stream, bad);
}
