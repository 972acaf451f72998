/*
 * flash.cu - the one-pass forward for calls that want only the context (and maybe the lse):
 * an online softmax over the annotations, read once, with long sets split across blocks and
 * merged by a combine kernel (flash-decoding).
 *
 * The arithmetic is fixed, so that every variant, tiling and split gives the same bits (which is
 * what lets the dispatcher choose among them by shape without breaking batch invariance). For a
 * query q of set b with valid annotations 0 .. L-1:
 *
 *   score  s_j = scale * fma-chain over t of q'_t a'_jt       (t in order; additive: the chain
 *                                                             of v_t tanh(q'_t + a'_jt), no scale)
 *   chunk  rows [32 c, 32 c + 32) of a span: m = max_j s_j, p_j = exp(s_j - m) (0 when m = -inf),
 *          l = sum_j p_j (j in order) and x_col = fma-chain over j of p_j v_j,col (j in order)
 *   span   rows [256 u, 256 u + 256) of the set: the chunks folded in order into (-inf, 0, 0)
 *   total  the spans folded in order into (-inf, 0, 0)
 *   fold   (M, S, X) with (m, l, x): M' = max(M, m); a = exp(M - M'), b = exp(m - M') (both 1
 *          when M' = -inf); S' = S a + l b; X' = X a + x b, each product rounded on its own
 *   output c_col = X_col / S and lse = M + log S; zero context and lse = -inf when M = -inf.
 *
 * NaN in a score makes M NaN and so the whole row NaN; +inf gives NaN as in the reference.
 * Annotations past a set's valid length are never read.
 *
 * Variants (see flash.cuh for the plan that picks them):
 *   THREAD  a thread per query row, q', the chunk's scores and the three accumulators in
 *           registers (k and dv at most 16): the walkthrough's shapes, millions of tiny queries.
 *   BLOCK   a block of 128 threads per tile of 1 or 8 queries of one set. Each stage of 128
 *           annotation rows goes through shared memory in slices of 32 columns (float4 loads
 *           when the rows are 16-byte aligned); thread j scores row j against every query of
 *           the tile, a warp per chunk turns the scores into weights, one thread per query
 *           folds the chunks, and thread col accumulates context column col for every query,
 *           reading each value once per tile. The span accumulators live in shared memory,
 *           the running total in C itself. With plan.spans > 1 (few tiles, long sets), block
 *           (tile, u) does span u alone and writes its (M, S, X) to the workspace; the
 *           combine kernel folds them in order.
 * No atomics anywhere: deterministic run to run.
 */
#include "flash.cuh"
#include "validate.cuh"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FLASH_THREADS 128
#define FLASH_CHUNK   ATTN_CU_FLASH_CHUNK
#define FLASH_SPAN    ATTN_CU_FLASH_SPAN
#define FLASH_STAGE   128 /* BLOCK: annotation rows per stage (4 chunks, one per thread) */
#define FLASH_CHUNKS  (FLASH_STAGE / FLASH_CHUNK)
#define FLASH_SLICE   32 /* BLOCK: columns of a' per shared-memory slice */
#define FLASH_SMALL   16 /* THREAD: largest k and dv */
/* Blocks per multiprocessor the register allocation must allow: THREAD (and combine) 4, so at
 * most 128 registers a thread; BLOCK 2 (it needs about 150 to 180 without spilling). Not tuned
 * on a GPU yet. */
#define FLASH_THREAD_MIN_BLOCKS 4
#define FLASH_BLOCK_MIN_BLOCKS  2
/* BLOCK: dynamic shared memory for the span accumulators [tile x dv] (the static part is about
 * 19 KiB; the sum stays under the 48 KiB every launch may use without opting in). */
#define FLASH_ACC_BYTES (24 * 1024)
/* Largest workspace for span partials, in floats (64 MiB). */
#define FLASH_MAX_PARTIAL_FLOATS ((size_t)1 << 24)

struct flash_args {
  attn_cu_score_in si;
  int64_t dv;
  attn_cuda_cmat_t V;
  attn_cuda_mat_t C;
  float *lse;
  int64_t tiles;  /* BLOCK: tiles of queries */
  int64_t spans;  /* BLOCK: grid spans (1: walk them) */
  float *partial; /* [query rows x spans x (dv + 2)] when spans > 1 */
  bool vec;       /* a' rows can be read as float4 */
};

/* ---------------------------------------------------------------------------------------- */
/* The arithmetic every variant shares                                                       */
/* ---------------------------------------------------------------------------------------- */

/* Fold factors of merging a part with max mp into a state with max M. */
static __device__ __forceinline__ void flash_coeffs(float M, float mp, float *mn, float *alpha,
                                                    float *beta) {
  const float x = attn_cu_nanmax(M, mp);
  *mn = x;
  if (x == -INFINITY) {
    *alpha = 1.0f;
    *beta = 1.0f;
    return;
  }
  *alpha = expf(M - x);
  *beta = expf(mp - x);
}

/* x a + y b with each product rounded on its own: never contracted into an fma, so it gives the
 * same bits wherever it is compiled. */
static __device__ __forceinline__ float flash_mix(float x, float a, float y, float b) {
  return __fadd_rn(__fmul_rn(x, a), __fmul_rn(y, b));
}

/* One step of a score's chain over t. */
static __device__ __forceinline__ float flash_term(bool additive, float q, float a, float v,
                                                   float acc) {
  return additive ? __fmaf_rn(v, tanhf(__fadd_rn(q, a)), acc) : __fmaf_rn(q, a, acc);
}
static __device__ __forceinline__ float flash_score(bool additive, float scale, float acc) {
  return additive ? acc : __fmul_rn(scale, acc);
}
/* A chunk weight before normalisation. */
static __device__ __forceinline__ float flash_p(float s, float mc) {
  return mc == -INFINITY ? 0.0f : expf(s - mc);
}
static __device__ __forceinline__ float flash_out(float x, float M, float S) {
  return M == -INFINITY ? 0.0f : attn_cu_weight(x, S);
}
static __device__ __forceinline__ float flash_lse(float M, float S) {
  return M == -INFINITY ? -INFINITY : __fadd_rn(M, logf(S));
}
static __device__ __forceinline__ int64_t flash_spans_of(int64_t valid) {
  return (valid + FLASH_SPAN - 1) / FLASH_SPAN;
}

/* ---------------------------------------------------------------------------------------- */
/* THREAD: a thread per query row                                                            */
/* ---------------------------------------------------------------------------------------- */

/* (M, S, X) folded with (m, l, x), all in registers. */
template <int K>
static __device__ __forceinline__ void flash_fold_regs(float &M, float &S, float (&X)[K], float m,
                                                       float l, const float (&x)[K]) {
  float mn, al, be;
  flash_coeffs(M, m, &mn, &al, &be);
  M = mn;
  S = flash_mix(S, al, l, be);
#pragma unroll
  for (int t = 0; t < K; t++)
    X[t] = flash_mix(X[t], al, x[t], be);
}

template <int K>
static __global__ void __launch_bounds__(FLASH_THREADS, FLASH_THREAD_MIN_BLOCKS)
    flash_thread_kernel(flash_args a, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const attn_cu_score_in &si = a.si;
  const int64_t rows = attn_cu_query_rows(si.l);
  for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    attn_cu_set s;
    int64_t i;
    if (!attn_cu_query_row(si.l, r, &s, &i)) continue;
    const float *qp = attn_cu_score_q(si, s, i);
    float q[K], tx[K];
#pragma unroll
    for (int t = 0; t < K; t++) {
      q[t] = t < si.k ? qp[t] : 0.0f;
      tx[t] = 0.0f;
    }
    float tm = -INFINITY, tl = 0.0f;
    for (int64_t u0 = 0; u0 < s.valid; u0 += FLASH_SPAN) {
      const int64_t uend = u0 + FLASH_SPAN < s.valid ? u0 + FLASH_SPAN : s.valid;
      float sm = -INFINITY, sl = 0.0f, sx[K];
#pragma unroll
      for (int t = 0; t < K; t++)
        sx[t] = 0.0f;
      for (int64_t c0 = u0; c0 < uend; c0 += FLASH_CHUNK) {
        const int cnt = (int)(uend - c0 < FLASH_CHUNK ? uend - c0 : FLASH_CHUNK);
        float p[FLASH_CHUNK];
        float mc = -INFINITY;
#pragma unroll
        for (int jj = 0; jj < FLASH_CHUNK; jj++) {
          p[jj] = 0.0f;
          if (jj < cnt) {
            const float *ar = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, c0 + jj);
            float acc = 0.0f;
#pragma unroll
            for (int t = 0; t < K; t++)
              if (t < si.k)
                acc = flash_term(si.additive, q[t], ar[t], si.additive ? si.v[t] : 0.0f, acc);
            p[jj] = flash_score(si.additive, si.scale, acc);
            mc = attn_cu_nanmax(mc, p[jj]);
          }
        }
        float lc = 0.0f, cx[K];
#pragma unroll
        for (int t = 0; t < K; t++)
          cx[t] = 0.0f;
#pragma unroll
        for (int jj = 0; jj < FLASH_CHUNK; jj++) {
          if (jj < cnt) {
            const float pj = flash_p(p[jj], mc);
            lc = __fadd_rn(lc, pj);
            const float *vr = attn_cu_arow(a.V.data, a.V.ld, a.V.stride, si.l, s, c0 + jj);
#pragma unroll
            for (int t = 0; t < K; t++)
              if (t < a.dv) cx[t] = __fmaf_rn(pj, vr[t], cx[t]);
          }
        }
        flash_fold_regs<K>(sm, sl, sx, mc, lc, cx); /* the chunk into the span */
      }
      flash_fold_regs<K>(tm, tl, tx, sm, sl, sx); /* the span into the total */
    }
    float *c = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, si.l, s, i);
#pragma unroll
    for (int t = 0; t < K; t++)
      if (t < a.dv) c[t] = flash_out(tx[t], tm, tl);
    if (a.lse) a.lse[r] = flash_lse(tm, tl);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* BLOCK: a block per tile of queries (and span, when split)                                 */
/* ---------------------------------------------------------------------------------------- */

template <int QT> struct flash_shared {
  float a[FLASH_STAGE][FLASH_SLICE + 1]; /* a' slice; padded: thread j reads row j */
  float q[QT][FLASH_SLICE];
  float v[FLASH_SLICE];       /* additive: v slice */
  float p[QT][FLASH_STAGE];   /* scores, then chunk weights */
  float cm[QT][FLASH_CHUNKS]; /* chunk max */
  float cl[QT][FLASH_CHUNKS]; /* chunk sum */
  float ca[QT][FLASH_CHUNKS]; /* chunk fold factors: span ... */
  float cb[QT][FLASH_CHUNKS]; /* ... and chunk */
  float sm[QT], sl[QT];       /* span state */
  float tm[QT], tl[QT];       /* total state */
  float ta[QT], tb[QT];       /* span-into-total fold factors */
};

/* Loads rows [j0, j0 + rows) x columns [k0, k0 + kw) of a' into sh.a (zeros elsewhere). */
template <int QT>
static __device__ void flash_load_slice(const flash_args &a, const attn_cu_set &s, int64_t j0,
                                        int rows, int64_t k0, int kw, flash_shared<QT> &sh) {
  const attn_cu_score_in &si = a.si;
  const float *base = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, j0) + k0;
  const int64_t ld = si.a.ld; /* a set's rows are ld apart in both layouts */
  if (a.vec) {                /* k % 4 == 0, so a 4-group is all in or all out */
    for (int idx = threadIdx.x; idx < FLASH_STAGE * (FLASH_SLICE / 4); idx += FLASH_THREADS) {
      const int jj = idx / (FLASH_SLICE / 4), t4 = (idx % (FLASH_SLICE / 4)) * 4;
      float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (jj < rows && t4 < kw) x = *(const float4 *)(base + jj * ld + t4);
      sh.a[jj][t4] = x.x;
      sh.a[jj][t4 + 1] = x.y;
      sh.a[jj][t4 + 2] = x.z;
      sh.a[jj][t4 + 3] = x.w;
    }
    return;
  }
  for (int idx = threadIdx.x; idx < FLASH_STAGE * FLASH_SLICE; idx += FLASH_THREADS) {
    const int jj = idx / FLASH_SLICE, t = idx % FLASH_SLICE;
    sh.a[jj][t] = jj < rows && t < kw ? base[jj * ld + t] : 0.0f;
  }
}

/* Scores of stage rows [j0, j0 + rows) against queries i0 .. i0 + qn - 1 into sh.p. */
template <int QT>
static __device__ void flash_stage_scores(const flash_args &a, const attn_cu_set &s, int64_t i0,
                                          int qn, int64_t j0, int rows, flash_shared<QT> &sh) {
  const attn_cu_score_in &si = a.si;
  float acc[QT];
#pragma unroll
  for (int qi = 0; qi < QT; qi++)
    acc[qi] = 0.0f;
  for (int64_t k0 = 0; k0 < si.k; k0 += FLASH_SLICE) {
    const int kw = (int)(si.k - k0 < FLASH_SLICE ? si.k - k0 : FLASH_SLICE);
    flash_load_slice(a, s, j0, rows, k0, kw, sh);
    const float *qbase = attn_cu_score_q(si, s, i0) + k0; /* queries of a set: ld apart */
    for (int idx = threadIdx.x; idx < QT * FLASH_SLICE; idx += FLASH_THREADS) {
      const int qi = idx / FLASH_SLICE, t = idx % FLASH_SLICE;
      sh.q[qi][t] = qi < qn && t < kw ? qbase[qi * si.q.ld + t] : 0.0f;
    }
    if (si.additive && threadIdx.x < FLASH_SLICE)
      sh.v[threadIdx.x] = (int)threadIdx.x < kw ? si.v[k0 + threadIdx.x] : 0.0f;
    __syncthreads();
    if ((int)threadIdx.x < rows) {
      const int jj = threadIdx.x;
      for (int t = 0; t < kw; t++) {
        const float x = sh.a[jj][t], v = si.additive ? sh.v[t] : 0.0f;
#pragma unroll
        for (int qi = 0; qi < QT; qi++)
          acc[qi] = flash_term(si.additive, sh.q[qi][t], x, v, acc[qi]);
      }
    }
    __syncthreads(); /* the slice is overwritten next */
  }
  if ((int)threadIdx.x < rows) {
#pragma unroll
    for (int qi = 0; qi < QT; qi++)
      sh.p[qi][threadIdx.x] = flash_score(si.additive, si.scale, acc[qi]);
  }
}

/* One span (or, with `walk`, all of them) of queries i0 .. i0 + qn - 1 of set s. */
template <int QT>
static __device__ void flash_tile(const flash_args &a, const attn_cu_set &s, int64_t i0, int qn,
                                  flash_shared<QT> &sh, float *span_x) {
  const attn_cu_score_in &si = a.si;
  const int64_t dv = a.dv, nspans = flash_spans_of(s.valid);
  const int tid = threadIdx.x;
  float *const crow = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, si.l, s, i0); /* + qi ld */
  int64_t u_lo = 0, u_hi = nspans;
  bool finish = true;
  if (a.spans > 1 && nspans > 1) { /* split: this block does span blockIdx.y alone */
    if ((int64_t)blockIdx.y >= nspans) return;
    u_lo = blockIdx.y;
    u_hi = u_lo + 1;
    finish = false;
  } else if (a.spans > 1 && blockIdx.y != 0) {
    return; /* a set of at most one span is finished by the first block */
  }
  if (tid < QT) {
    sh.tm[tid] = -INFINITY;
    sh.tl[tid] = 0.0f;
  }
  for (int64_t u = u_lo; u < u_hi; u++) {
    const int64_t uend = (u + 1) * FLASH_SPAN < s.valid ? (u + 1) * FLASH_SPAN : s.valid;
    __syncthreads(); /* the previous span's readers are done */
    if (tid < QT) {
      sh.sm[tid] = -INFINITY;
      sh.sl[tid] = 0.0f;
    }
    for (int64_t x = tid; x < QT * dv; x += FLASH_THREADS)
      span_x[x] = 0.0f;
    for (int64_t j0 = u * FLASH_SPAN; j0 < uend; j0 += FLASH_STAGE) {
      const int rows = (int)(uend - j0 < FLASH_STAGE ? uend - j0 : FLASH_STAGE);
      const int nch = (rows + FLASH_CHUNK - 1) / FLASH_CHUNK;
      __syncthreads(); /* sh.p and the fold factors of the previous stage are consumed */
      flash_stage_scores(a, s, i0, qn, j0, rows, sh);
      __syncthreads();
      /* Chunk weights, max and sum: warp w takes the (query, chunk) pairs w, w + 4, ...; lane j
       * holds row j. The max is exact in any order (its sign of zero never reaches an output:
       * s - 0 and s + 0 agree, and exp(+-0) = 1), so a butterfly gives it; the exps run in
       * parallel; the sum stays the sequential chain of lane 0, as in the THREAD variant. */
      for (int pair = tid / 32; pair < QT * FLASH_CHUNKS; pair += FLASH_THREADS / 32) {
        const int qi = pair / FLASH_CHUNKS, c = pair % FLASH_CHUNKS, c0 = c * FLASH_CHUNK;
        const int cnt = rows - c0 < FLASH_CHUNK ? rows - c0 : FLASH_CHUNK, lane = tid % 32;
        if (qi >= qn || cnt <= 0) continue; /* uniform across the warp */
        const float sj = lane < cnt ? sh.p[qi][c0 + lane] : -INFINITY;
        float mc = sj;
        for (int o = 16; o > 0; o >>= 1)
          mc = attn_cu_nanmax(mc, __shfl_xor_sync(0xffffffffu, mc, o));
        if (lane < cnt) sh.p[qi][c0 + lane] = flash_p(sj, mc);
        __syncwarp();
        if (lane == 0) {
          float lc = 0.0f;
          for (int j = 0; j < cnt; j++)
            lc = __fadd_rn(lc, sh.p[qi][c0 + j]);
          sh.cm[qi][c] = mc;
          sh.cl[qi][c] = lc;
        }
        __syncwarp(); /* lane 0 has read the weights before the warp's next pair */
      }
      __syncthreads();
      /* The chunks fold into the span state in order: thread qi. */
      if (tid < qn) {
        float M = sh.sm[tid], S = sh.sl[tid];
        for (int c = 0; c < nch; c++) {
          float mn, al, be;
          flash_coeffs(M, sh.cm[tid][c], &mn, &al, &be);
          S = flash_mix(S, al, sh.cl[tid][c], be);
          M = mn;
          sh.ca[tid][c] = al;
          sh.cb[tid][c] = be;
        }
        sh.sm[tid] = M;
        sh.sl[tid] = S;
      }
      __syncthreads();
      /* Context: thread col, every query of the tile, each value read once. */
      const float *vstage = attn_cu_arow(a.V.data, a.V.ld, a.V.stride, si.l, s, j0);
      for (int64_t col = tid; col < dv; col += FLASH_THREADS) {
        const float *vcol = vstage + col;
        for (int c = 0; c < nch; c++) {
          const int c0 = c * FLASH_CHUNK;
          const int cnt = rows - c0 < FLASH_CHUNK ? rows - c0 : FLASH_CHUNK;
          float acc[QT];
#pragma unroll
          for (int qi = 0; qi < QT; qi++)
            acc[qi] = 0.0f;
          for (int j = 0; j < cnt; j++) {
            const float v = vcol[(c0 + j) * a.V.ld];
#pragma unroll
            for (int qi = 0; qi < QT; qi++)
              acc[qi] = __fmaf_rn(sh.p[qi][c0 + j], v, acc[qi]);
          }
#pragma unroll
          for (int qi = 0; qi < QT; qi++)
            if (qi < qn)
              span_x[qi * dv + col] =
                  flash_mix(span_x[qi * dv + col], sh.ca[qi][c], acc[qi], sh.cb[qi][c]);
        }
      }
    }
    __syncthreads(); /* the span state is complete */
    if (!finish) {   /* split: the span's state goes to the workspace */
      for (int64_t x = tid; x < (int64_t)qn * (dv + 2); x += FLASH_THREADS) {
        const int qi = (int)(x / (dv + 2));
        const int64_t e = x % (dv + 2);
        const int64_t r = s.r0 + i0 + qi;
        const float val = e == 0 ? sh.sm[qi] : e == 1 ? sh.sl[qi] : span_x[qi * dv + e - 2];
        a.partial[(r * a.spans + u) * (dv + 2) + e] = val;
      }
      __syncthreads(); /* the next tile reuses the shared state */
      return;
    }
    if (tid < qn) {
      float mn, al, be;
      flash_coeffs(sh.tm[tid], sh.sm[tid], &mn, &al, &be);
      sh.tl[tid] = flash_mix(sh.tl[tid], al, sh.sl[tid], be);
      sh.tm[tid] = mn;
      sh.ta[tid] = al;
      sh.tb[tid] = be;
    }
    __syncthreads();
    /* The running total of the context lives in C; the first span starts it from zero. */
    for (int64_t x = tid; x < (int64_t)qn * dv; x += FLASH_THREADS) {
      const int qi = (int)(x / dv);
      float *c = crow + qi * a.C.ld + x % dv;
      *c = flash_mix(u == u_lo ? 0.0f : *c, sh.ta[qi], span_x[x], sh.tb[qi]);
    }
  }
  __syncthreads();
  for (int64_t x = tid; x < (int64_t)qn * dv; x += FLASH_THREADS) {
    const int qi = (int)(x / dv);
    float *c = crow + qi * a.C.ld + x % dv;
    *c = flash_out(u_lo < u_hi ? *c : 0.0f, sh.tm[qi], sh.tl[qi]);
  }
  if (a.lse && tid < qn) a.lse[s.r0 + i0 + tid] = flash_lse(sh.tm[tid], sh.tl[tid]);
  __syncthreads(); /* the next tile reuses the shared state */
}

template <int QT>
static __global__ void __launch_bounds__(FLASH_THREADS, FLASH_BLOCK_MIN_BLOCKS)
    flash_block_kernel(flash_args a, const int *bad) {
  extern __shared__ float span_x[]; /* [QT x dv] */
  __shared__ flash_shared<QT> sh;
  if (attn_cu_call_is_bad(bad)) return;
  const attn_cu_layout &l = a.si.l;
  for (int64_t tile = blockIdx.x; tile < a.tiles; tile += gridDim.x) {
    if (!l.qo) { /* uniform: tiles never straddle sets */
      const int64_t per_set = (l.m + QT - 1) / QT, i0 = tile % per_set * QT;
      attn_cu_set s;
      attn_cu_set_of(l, tile / per_set, &s);
      flash_tile<QT>(a, s, i0, (int)(l.m - i0 < QT ? l.m - i0 : QT), sh, span_x);
      continue;
    }
    /* varlen: rows [tile QT, tile QT + QT), one run of rows per set they touch */
    const int64_t r_hi = (tile + 1) * QT < l.m ? (tile + 1) * QT : l.m;
    for (int64_t r = tile * QT; r < r_hi;) {
      const int64_t b = attn_cu_find_set(l.qo, l.batch, r);
      if (b < 0) {
        r++;
        continue;
      }
      attn_cu_set s;
      attn_cu_set_of(l, b, &s);
      const int64_t end = (int64_t)l.qo[b + 1] < r_hi ? (int64_t)l.qo[b + 1] : r_hi;
      flash_tile<QT>(a, s, r - s.r0, (int)(end - r), sh, span_x);
      r = end;
    }
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Combine: the span partials of a split call, folded in order                               */
/* ---------------------------------------------------------------------------------------- */

static __global__ void __launch_bounds__(FLASH_THREADS, FLASH_THREAD_MIN_BLOCKS)
    flash_combine_kernel(flash_args a, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const attn_cu_layout &l = a.si.l;
  const int64_t rows = attn_cu_query_rows(l), dv = a.dv;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    attn_cu_set s;
    int64_t i;
    if (!attn_cu_query_row(l, r, &s, &i)) continue;
    const int64_t nspans = flash_spans_of(s.valid);
    if (nspans <= 1) continue; /* finished by its block */
    const float *part = a.partial + r * a.spans * (dv + 2);
    float *c = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, l, s, i);
    /* Each thread folds the scalars itself (the same operations, so the same bits). */
    for (int64_t col = threadIdx.x; col < dv; col += FLASH_THREADS) {
      float M = -INFINITY, S = 0.0f, X = 0.0f;
      for (int64_t u = 0; u < nspans; u++) {
        const float *pu = part + u * (dv + 2);
        float mn, al, be;
        flash_coeffs(M, pu[0], &mn, &al, &be);
        S = flash_mix(S, al, pu[1], be);
        X = flash_mix(X, al, pu[2 + col], be);
        M = mn;
      }
      c[col] = flash_out(X, M, S);
    }
    if (threadIdx.x == 0 && a.lse) {
      float M = -INFINITY, S = 0.0f;
      for (int64_t u = 0; u < nspans; u++) {
        const float *pu = part + u * (dv + 2);
        float mn, al, be;
        flash_coeffs(M, pu[0], &mn, &al, &be);
        S = flash_mix(S, al, pu[1], be);
        M = mn;
      }
      a.lse[r] = flash_lse(M, S);
    }
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Plan and launch                                                                           */
/* ---------------------------------------------------------------------------------------- */

static int64_t tiles_of(const attn_cu_layout &l, int tile) {
  return l.qo ? (l.m + tile - 1) / tile : l.batch * ((l.m + tile - 1) / tile);
}

/* Span partials for `spans` grid spans, or 0 when they do not fit. */
static size_t partial_floats(const attn_cuda_problem_t *p, int64_t spans) {
  int64_t f;
  if (__builtin_mul_overflow(attn_cu_query_rows(attn_cu_layout_of(p)), spans, &f) ||
      __builtin_mul_overflow(f, p->dv + 2, &f) || (size_t)f > FLASH_MAX_PARTIAL_FLOATS)
    return 0;
  return (size_t)f;
}

bool attn_cu_flash_plan_of(const attn_cuda_problem_t *p, int sm_count, attn_cu_flash_plan *plan) {
  if (p->op != ATTN_CUDA_OP_FORWARD || p->scores.data || p->weights.data) return false;
  const attn_cu_layout l = attn_cu_layout_of(p);
  const int64_t k = p->kind == ATTN_CUDA_SCORE_ADDITIVE ? p->h : p->d;
  const int64_t rows = attn_cu_query_rows(l);
  const int64_t per_set = l.qo ? (p->batch > 0 ? p->m / p->batch : 0) : p->m;
  const bool small = k <= FLASH_SMALL && p->dv <= FLASH_SMALL;
  const bool block1 = p->dv <= FLASH_ACC_BYTES / (int64_t)sizeof(float);
  const bool block8 = p->dv <= FLASH_ACC_BYTES / (int64_t)(8 * sizeof(float));
  if (!small && !block1) return false;

  /* Default plan: the THREAD variant for many small queries; BLOCK tiles of 8 queries where a
   * set has enough of them to share the annotation reads; spans split across blocks when the
   * tiles alone would leave most of the GPU idle. */
  plan->variant = small && (rows >= 16 * (int64_t)sm_count || !block1) ? ATTN_CU_FLASH_THREAD
                                                                       : ATTN_CU_FLASH_BLOCK;
  plan->tile = per_set >= 32 && block8 ? 8 : 1;
  const int64_t span_bound = (p->n + FLASH_SPAN - 1) / FLASH_SPAN;
  bool split = tiles_of(l, plan->tile) < 4 * (int64_t)sm_count;

  const char *force = getenv("ATTN_CU_FLASH");
  if (force && *force) {
    if (!strcmp(force, "thread") && small) {
      plan->variant = ATTN_CU_FLASH_THREAD;
    } else if (!strncmp(force, "block", 5) || !strncmp(force, "split", 5)) {
      const int tile = force[5] == '8' ? 8 : 1;
      if (tile == 1 || block8) {
        plan->variant = ATTN_CU_FLASH_BLOCK;
        plan->tile = tile;
        split = force[0] == 's';
      }
    }
  }

  plan->spans = 1;
  plan->partial_floats = 0;
  if (plan->variant == ATTN_CU_FLASH_BLOCK && split && span_bound > 1 && span_bound <= 65535) {
    const size_t f = partial_floats(p, span_bound);
    if (f > 0) {
      plan->spans = span_bound;
      plan->partial_floats = f;
    }
  }
  return true;
}

attn_cuda_status_t attn_cu_flash_forward(attn_cuda_t *cu, cudaStream_t stream,
                                         const attn_cu_score_in &si, int64_t dv, attn_cuda_cmat_t V,
                                         attn_cuda_mat_t C, float *lse, const int *bad,
                                         const attn_cu_flash_plan &plan, float *partials) {
  const int64_t rows = attn_cu_query_rows(si.l);
  if (rows == 0) return ATTN_CUDA_OK;
  flash_args a = {si, dv, V, C, lse, tiles_of(si.l, plan.tile), plan.spans, partials, false};
  a.vec = si.k % 4 == 0 && si.a.ld % 4 == 0 && (si.l.ao || si.a.stride % 4 == 0) &&
          (uintptr_t)si.a.data % 16 == 0;
  if (plan.variant == ATTN_CU_FLASH_THREAD) {
    const unsigned blocks = attn_cu_blocks(rows, FLASH_THREADS);
    if (si.k <= 4 && dv <= 4)
      flash_thread_kernel<4><<<blocks, FLASH_THREADS, 0, stream>>>(a, bad);
    else
      flash_thread_kernel<FLASH_SMALL><<<blocks, FLASH_THREADS, 0, stream>>>(a, bad);
    ATTN_CU_CHECK(cu, cudaGetLastError());
    return ATTN_CUDA_OK;
  }
  const dim3 grid(attn_cu_blocks(a.tiles, 1), (unsigned)plan.spans);
  const size_t smem = (size_t)plan.tile * (size_t)dv * sizeof(float);
  if (plan.tile == 8)
    flash_block_kernel<8><<<grid, FLASH_THREADS, smem, stream>>>(a, bad);
  else
    flash_block_kernel<1><<<grid, FLASH_THREADS, smem, stream>>>(a, bad);
  ATTN_CU_CHECK(cu, cudaGetLastError());
  if (plan.spans > 1) {
    flash_combine_kernel<<<attn_cu_blocks(rows, 1), FLASH_THREADS, 0, stream>>>(a, bad);
    ATTN_CU_CHECK(cu, cudaGetLastError());
  }
  return ATTN_CUDA_OK;
}
