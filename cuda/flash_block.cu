/*
 * flash_block.cu - the flash forward's BLOCK kernel (flash.cu: the fixed arithmetic
 * every variant computes, and the plan; flash_kernels.cuh: what the kernels share).
 *
 * BLOCK: a block of 128 threads per tile of 1 or 8 queries of one set. Each stage of 128 annotation
 * rows goes through shared memory in slices of 32 columns (float4 loads when the rows are 16-byte
 * aligned); thread j scores row j against every query of the tile, a warp per chunk turns the
 * scores into weights, one thread per query folds the chunks, and thread col accumulates context
 * column col for every query, reading each value once per tile. The span accumulators live in
 * shared memory, the running total in C itself. With plan.spans > 1 (few tiles, long sets), block
 * (tile, u) does span u alone and writes its (M, S, X) to the workspace; the combine kernel folds
 * them in order.
 */
#include "flash_kernels.cuh"

#define FLASH_STAGE  128 /* annotation rows per stage (4 chunks, one per thread) */
#define FLASH_CHUNKS (FLASH_STAGE / FLASH_CHUNK)
#define FLASH_SLICE  32 /* columns of a' per shared-memory slice */

template <int QT> struct block_shared {
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
static __device__ void block_load_slice(const flash_args &a, const attn_cu_set &s, int64_t j0,
                                        int rows, int64_t k0, int kw, block_shared<QT> &sh) {
  const attn_cu_score_in &si = a.si;
  const float *base = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, j0) + k0;
  const int64_t ld = si.a.ld; /* a set's rows are ld apart in both layouts */
  if (a.vec) {                /* k % 4 == 0, so a 4-group is all in or all out */
    for (int idx = threadIdx.x; idx < FLASH_STAGE * (FLASH_SLICE / 4); idx += FLASH_THREADS) {
      const int jj = idx / (FLASH_SLICE / 4), t4 = (idx % (FLASH_SLICE / 4)) * 4;
      float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (jj < rows && t4 < kw) x = *(const float4 *)(base + jj * ld + t4);
      flash_unpack4(x, &sh.a[jj][t4]);
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
static __device__ void block_stage_scores(const flash_args &a, const attn_cu_set &s, int64_t i0,
                                          int qn, int64_t j0, int rows, block_shared<QT> &sh) {
  const attn_cu_score_in &si = a.si;
  float acc[QT];
#pragma unroll
  for (int qi = 0; qi < QT; qi++)
    acc[qi] = 0.0f;
  for (int64_t k0 = 0; k0 < si.k; k0 += FLASH_SLICE) {
    const int kw = (int)(si.k - k0 < FLASH_SLICE ? si.k - k0 : FLASH_SLICE);
    block_load_slice(a, s, j0, rows, k0, kw, sh);
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

/* acc[qi] = the fma chain, over the chunk's rows j in order, of weight sh.p[qi][c0 + j] times
 * value v[j * ld]. A full chunk runs with a fixed trip count so that its value loads go out 8 at
 * a time ahead of their fmas instead of one latency a row (same fmas, same order). */
template <int QT>
static __device__ __forceinline__ void block_chunk_context(const float *v, int64_t ld,
                                                           const block_shared<QT> &sh, int c0,
                                                           int cnt, float (&acc)[QT]) {
#pragma unroll
  for (int qi = 0; qi < QT; qi++)
    acc[qi] = 0.0f;
  if (cnt == FLASH_CHUNK) {
#pragma unroll
    for (int j0 = 0; j0 < FLASH_CHUNK; j0 += 8) {
      float vj[8];
#pragma unroll
      for (int j = 0; j < 8; j++)
        vj[j] = v[(j0 + j) * ld];
#pragma unroll
      for (int j = 0; j < 8; j++)
#pragma unroll
        for (int qi = 0; qi < QT; qi++)
          acc[qi] = __fmaf_rn(sh.p[qi][c0 + j0 + j], vj[j], acc[qi]);
    }
    return;
  }
  for (int j = 0; j < cnt; j++) {
    const float vj = v[j * ld];
#pragma unroll
    for (int qi = 0; qi < QT; qi++)
      acc[qi] = __fmaf_rn(sh.p[qi][c0 + j], vj, acc[qi]);
  }
}

/* One span (or, with `walk`, all of them) of queries i0 .. i0 + qn - 1 of set s. */
template <int QT>
static __device__ void block_tile(const flash_args &a, const attn_cu_set &s, int64_t i0, int qn,
                                  block_shared<QT> &sh, float *span_x) {
  const attn_cu_score_in &si = a.si;
  const int64_t dv = a.dv, nspans = flash_spans_of(s.valid);
  const int tid = threadIdx.x;
  float *const crow = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, si.l, s, i0); /* + qi ld */
  int64_t u_lo, u_hi;
  bool split;
  if (!flash_span_range(a, nspans, &u_lo, &u_hi, &split)) return;
  const bool finish = !split;
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
      block_stage_scores(a, s, i0, qn, j0, rows, sh);
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
          block_chunk_context(vcol + c0 * a.V.ld, a.V.ld, sh, c0, cnt, acc);
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
  __shared__ block_shared<QT> sh;
  if (attn_cu_call_is_bad(bad)) return;
  const attn_cu_layout &l = a.si.l;
  for (int64_t tile = blockIdx.x; tile < a.tiles; tile += gridDim.x) {
    if (!l.qo) { /* uniform: tiles never straddle sets */
      const int64_t per_set = (l.m + QT - 1) / QT, i0 = tile % per_set * QT;
      attn_cu_set s;
      attn_cu_set_of(l, tile / per_set, &s);
      block_tile<QT>(a, s, i0, (int)(l.m - i0 < QT ? l.m - i0 : QT), sh, span_x);
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
      block_tile<QT>(a, s, r - s.r0, (int)(end - r), sh, span_x);
      r = end;
    }
  }
}

void attn_cu_flash_block(const flash_args &a, int tile, size_t smem, cudaStream_t stream,
                         const int *bad) {
  const dim3 grid(attn_cu_blocks(a.tiles, 1), (unsigned)a.spans);
  if (tile == 8)
    flash_block_kernel<8><<<grid, FLASH_THREADS, smem, stream>>>(a, bad);
  else
    flash_block_kernel<1><<<grid, FLASH_THREADS, smem, stream>>>(a, bad);
}
