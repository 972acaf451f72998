/*
 * flash_warp.cu - the flash forward's kernels that give each query row a warp: WARP, and STREAM,
 * its variant that stages the annotations through shared memory (flash.cu: the fixed arithmetic
 * every variant computes, and the plan; flash_kernels.cuh: what the kernels share).
 *
 * WARP: a warp per query row (dv at most 256), everything in registers and no block barrier: lane j
 * scores row j of each chunk (its chain over t, read straight from global memory with float4
 * loads), the chunk max is a butterfly, and the weights go to every lane by shuffle, each lane
 * running the sum's chain (so all lanes hold the same bits) and the context chains of its 4 or 8
 * columns. Sets of few queries where AUTO does not run STREAM (dv > 128, additive scores,
 * unaligned rows). With plan.spans > 1 the warps of block (x, u) run span u. (An L2 prefetch of
 * each warp's next chunk is gone: on the H100, whose 50 MiB L2 cannot hold 16 warps x 132 SMs x 2
 * chunks x 16 KiB, decode read about twice its bytes from DRAM, 1.72 ms against BLOCK<1>'s 1.31.)
 *
 * STREAM<G>: WARP<G>'s arithmetic and lanes, with each chunk's rows copied once into the warp's
 * shared memory by cp.async while the previous chunk is used (dot-like scores, d <= 256, dv <= 128
 * G, 16-byte aligned rows): a' read once from DRAM for both passes, and the copies, not the warps,
 * keep the loads in flight. AUTO's choice for sets of few queries where STREAM<1> can run (the
 * H100 sweep: 1.44x WARP on decode). STREAM<2> (dv up to 256, one warp a block for its 67.6 KB of
 * stages at d = 256) runs only when forced until a sweep times it: on the dv = 256 decode-like
 * shapes the fastest plans AUTO has read the annotations at about half the copy rate.
 */
#include "flash_kernels.cuh"

#include <cuda_pipeline.h>

/* Query row r's set and index, and the spans of it this block runs (flash_span_range); false
 * when it runs none (WARP and STREAM, a warp a row). */
static __device__ __forceinline__ bool flash_row_spans(const flash_args &a, int64_t r,
                                                       attn_cu_set *s, int64_t *i, int64_t *lo,
                                                       int64_t *hi, bool *split) {
  return attn_cu_query_row(a.si.l, r, s, i) &&
         flash_span_range(a, flash_spans_of(s->valid), lo, hi, split);
}

/* ---------------------------------------------------------------------------------------- */
/* WARP: a warp per query row (and span, when split)                                         */
/* ---------------------------------------------------------------------------------------- */

/* The score of annotation row ar against q': the chain over t in order. vec (dot-like scores, k
 * % 4 == 0, both rows 16-byte aligned): float4 loads, batches of B (then one of 4) of a' in
 * flight ahead of their fmas; q' is the same address in every lane (one transaction, from L1).
 * WARP<G> takes B = WARP_AHEAD / G: 8 for WARP<1>, 4 KiB a warp in flight for the decode shape's
 * 512-byte rows at no cost in occupancy (on sm_90 118 registers of the 128 its 4 blocks a
 * multiprocessor allow, 106 with batches of 4), and 4 for WARP<2>, whose 8 context columns a
 * lane leave no room for 8 (128 registers and a spill). */
#define WARP_AHEAD 8
static __device__ __forceinline__ float warp_dot4(float4 q, float4 a, float acc) {
  acc = __fmaf_rn(q.x, a.x, acc);
  acc = __fmaf_rn(q.y, a.y, acc);
  acc = __fmaf_rn(q.z, a.z, acc);
  return __fmaf_rn(q.w, a.w, acc);
}
/* The chain over columns [t, t + 4 B) of q' and a', the B loads first. */
template <int B>
static __device__ __forceinline__ float warp_dot_batch(const float *q, const float *ar, int64_t t,
                                                       float acc) {
  float4 av[B];
#pragma unroll
  for (int e = 0; e < B; e++)
    av[e] = *(const float4 *)(ar + t + 4 * e);
#pragma unroll
  for (int e = 0; e < B; e++)
    acc = warp_dot4(*(const float4 *)(q + t + 4 * e), av[e], acc);
  return acc;
}
template <int B>
static __device__ __forceinline__ float warp_score(const attn_cu_score_in &si, bool vec,
                                                   const float *q, const float *ar) {
  float acc = 0.0f;
  if (vec) {
    int64_t t = 0;
#pragma unroll 1 /* B loads in flight, not nvcc's 4 x that (registers) */
    for (; t + 4 * B <= si.k; t += 4 * B)
      acc = warp_dot_batch<B>(q, ar, t, acc);
    if (B > 4 && t + 16 <= si.k) {
      acc = warp_dot_batch<4>(q, ar, t, acc);
      t += 16;
    }
#pragma unroll 1
    for (; t < si.k; t += 4)
      acc = warp_dot_batch<1>(q, ar, t, acc);
    return flash_score(false, si.scale, acc);
  }
#pragma unroll 1
  for (int64_t t = 0; t < si.k; t++)
    acc = flash_term(si.additive, q[t], ar[t], si.additive ? si.v[t] : 0.0f, acc);
  return flash_score(si.additive, si.scale, acc);
}

/* A lane's context columns: warp_col(g, lane) + 0 .. 3 for g < G (dv <= 128 G). */
static __device__ __forceinline__ int64_t warp_col(int g, int lane) {
  return 128 * g + 4 * lane;
}

/* A warp's span state (m, l, x) of row r into the partials of span u: lane 0 the scalars, every
 * lane its columns (WARP and STREAM). */
template <int NC>
static __device__ __forceinline__ void warp_write_partial(const flash_args &a, int64_t r, int64_t u,
                                                          float m, float l, const float (&x)[NC]) {
  const int lane = threadIdx.x % 32;
  float *part = a.partial + (r * a.spans + u) * (a.dv + 2);
  if (lane == 0) {
    part[0] = m;
    part[1] = l;
  }
#pragma unroll
  for (int e = 0; e < NC; e++) {
    const int64_t col = warp_col(e / 4, lane) + e % 4;
    if (col < a.dv) part[2 + col] = x[e];
  }
}

/* A warp's total (M, S, X) of row r (query i of set s) into C and lse (WARP and STREAM). */
template <int NC>
static __device__ __forceinline__ void warp_write_out(const flash_args &a, const attn_cu_set &s,
                                                      int64_t i, int64_t r, float M, float S,
                                                      const float (&X)[NC]) {
  const int lane = threadIdx.x % 32;
  float *c = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, a.si.l, s, i);
#pragma unroll
  for (int e = 0; e < NC; e++) {
    const int64_t col = warp_col(e / 4, lane) + e % 4;
    if (col < a.dv) c[col] = flash_out(X[e], M, S);
  }
  if (a.lse && lane == 0) a.lse[r] = flash_lse(M, S);
}

/* A chunk's sum and context, lane p holding the weight of row p (0 past cnt): every lane runs
 * the sum's chain over the rows in order (so every lane has it, with the same bits) and the fma
 * chains of its columns warp_col(g, lane) + e. A full chunk loads 8 / G rows ahead of their
 * fmas. */
template <int G>
static __device__ __forceinline__ void warp_chunk_context(const flash_args &a, const float *v,
                                                          int cnt, float p, float &lc,
                                                          float (&x)[4 * G]) {
  constexpr int B = 8 / G; /* rows a batch */
  const int lane = threadIdx.x % 32;
  const int64_t ld = a.V.ld;
  lc = 0.0f;
#pragma unroll
  for (int e = 0; e < 4 * G; e++)
    x[e] = 0.0f;
  const auto load = [&](const float *vrow, float(&vj)[4 * G]) {
#pragma unroll
    for (int g = 0; g < G; g++)
      flash_load4(vrow + warp_col(g, lane), flash_count4(a.dv - warp_col(g, lane)), a.vec_v,
                  vj + 4 * g);
  };
  const auto row = [&](float pj, const float(&vj)[4 * G]) {
    lc = __fadd_rn(lc, pj);
#pragma unroll
    for (int e = 0; e < 4 * G; e++)
      x[e] = __fmaf_rn(pj, vj[e], x[e]);
  };
  if (cnt == FLASH_CHUNK) {
#pragma unroll 1 /* a batch's loads in flight, not the chunk's (registers) */
    for (int j0 = 0; j0 < FLASH_CHUNK; j0 += B) {
      float vj[B][4 * G];
#pragma unroll
      for (int j = 0; j < B; j++)
        load(v + (j0 + j) * ld, vj[j]);
#pragma unroll
      for (int j = 0; j < B; j++)
        row(__shfl_sync(0xffffffffu, p, j0 + j), vj[j]);
    }
    return;
  }
#pragma unroll 1
  for (int j = 0; j < cnt; j++) {
    float vj[4 * G];
    load(v + j * ld, vj);
    row(__shfl_sync(0xffffffffu, p, j), vj);
  }
}

/* A warp per query row: lane j scores row c0 + j of each chunk (its chain over t alone), the
 * chunk's max is a butterfly (exact in any order, as in BLOCK), and the weights go to every lane
 * by shuffle for the sum and the context (lane l owning columns 128 g + 4 l + e, dv <= 128 G).
 * The chunk, span and total states live in registers, the same in every lane; nothing is shared
 * between warps, so there is no block barrier. With plan.spans > 1, the warps of block (x, u)
 * run span u of their rows, and the combine kernel folds the partials. */
template <int G>
static __global__ void __launch_bounds__(FLASH_THREADS, FLASH_WARP_MIN_BLOCKS)
    flash_warp_kernel(flash_args a, const int *bad) {
  constexpr int NC = 4 * G;
  if (attn_cu_call_is_bad(bad)) return;
  const attn_cu_score_in &si = a.si;
  const int lane = threadIdx.x % 32;
  const int64_t rows = attn_cu_query_rows(si.l);
  const bool vec = a.vec && a.vec_q && !si.additive;
  for (int64_t r = (int64_t)blockIdx.x * FLASH_WARPS + threadIdx.x / 32; r < rows;
       r += (int64_t)gridDim.x * FLASH_WARPS) {
    attn_cu_set s;
    int64_t i, u_lo, u_hi;
    bool split;
    if (!flash_row_spans(a, r, &s, &i, &u_lo, &u_hi, &split)) continue;
    const float *q = attn_cu_score_q(si, s, i);
    float tm = -INFINITY, tl = 0.0f, tx[NC];
#pragma unroll
    for (int e = 0; e < NC; e++)
      tx[e] = 0.0f;
    for (int64_t u = u_lo; u < u_hi; u++) {
      const int64_t u0 = u * FLASH_SPAN;
      const int64_t uend = u0 + FLASH_SPAN < s.valid ? u0 + FLASH_SPAN : s.valid;
      float sm = -INFINITY, sl = 0.0f, sx[NC];
      for (int64_t c0 = u0; c0 < uend; c0 += FLASH_CHUNK) {
        const int cnt = (int)(uend - c0 < FLASH_CHUNK ? uend - c0 : FLASH_CHUNK);
        float sc = -INFINITY;
        if (lane < cnt)
          sc = warp_score<WARP_AHEAD / G>(
              si, vec, q, attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, c0 + lane));
        float mc = sc;
        for (int o = 16; o > 0; o >>= 1)
          mc = attn_cu_nanmax(mc, __shfl_xor_sync(0xffffffffu, mc, o));
        float lc, cx[NC];
        warp_chunk_context<G>(a, attn_cu_arow(a.V.data, a.V.ld, a.V.stride, si.l, s, c0), cnt,
                              lane < cnt ? flash_p(sc, mc) : 0.0f, lc, cx);
        flash_fold_into<NC>(c0 == u0, sm, sl, sx, mc, lc, cx); /* the chunk into the span */
      }
      if (split) /* the span's state to the partials (u_hi = u_lo + 1) */
        warp_write_partial<NC>(a, r, u, sm, sl, sx);
      else /* the span into the total */
        flash_fold_into<NC>(u == u_lo, tm, tl, tx, sm, sl, sx);
    }
    if (!split) warp_write_out<NC>(a, s, i, r, tm, tl, tx);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* STREAM: a warp per query row, its annotation chunks staged through shared memory          */
/* ---------------------------------------------------------------------------------------- */

/* WARP's arithmetic and lane roles, with each chunk's rows copied once into the warp's shared
 * memory by cp.async (coalesced: one row, 16 bytes a lane, per copy) while the previous chunk is
 * used, instead of each lane reading its own row from global memory: the rows are read once
 * from DRAM, the score pass and the context pass (when the values are the annotations, or from
 * a second staged copy when they are not) both read shared memory, and a chunk's copies are in
 * flight while the warp computes, so a few warps a multiprocessor keep DRAM busy. For dot-like
 * scores (k' = d, a multiple of 4, at most STREAM_MAX_K), dv at most 128 G (4 G columns a lane),
 * rows that are 16-byte aligned. */
#define STREAM_MAX_K  256
#define STREAM_MAX_DV 256

/* Floats between staged rows of width w (a multiple of 4): w, or w + 4 where w / 4 is even, so
 * that the stride counts an odd number of 16-byte groups: the 8 rows a phase of the score pass's
 * 16-byte loads reads (one row a lane, the same column) then start in 8 different groups of 4
 * banks. */
static __host__ __device__ __forceinline__ int stream_stride(int64_t w) {
  return (int)(w + ((w / 4) % 2 == 0 ? 4 : 0));
}
/* Whether the values of a call are other rows than its annotations' (staged apart, then). */
static __host__ __device__ __forceinline__ bool stream_own_values(const float *a, int64_t a_ld,
                                                                  int64_t a_stride, int64_t k,
                                                                  const float *v, int64_t v_ld,
                                                                  int64_t v_stride, int64_t dv) {
  return v != a || v_ld != a_ld || v_stride != a_stride || dv != k;
}
/* Floats of one stage: 32 a' rows, and 32 value rows when the values are not the annotations. */
static __host__ __device__ __forceinline__ int stream_stage_floats(int64_t k, int64_t dv,
                                                                   bool own_v) {
  return 32 * (stream_stride(k) + (own_v ? stream_stride(dv) : 0));
}
/* Floats of shared memory a warp needs: two stages, and q'. */
static __host__ __device__ __forceinline__ int stream_warp_floats(int64_t k, int64_t dv,
                                                                  bool own_v) {
  return 2 * stream_stage_floats(k, dv, own_v) + stream_stride(k);
}

/* Rows [c0, c0 + cnt) of a matrix whose rows are `ld` apart from `base` (row 0), w floats each,
 * into dst (rows `stride` apart): one 16-byte cp.async a lane and copy, the warp's 32 copies
 * running along the rows (a row per warp-wide copy when w = 128, two when w = 64), so that no
 * lane idles however narrow the rows. The caller commits. */
static __device__ __forceinline__ void stream_stage(const float *base, int64_t ld, int w,
                                                    int64_t c0, int cnt, float *dst, int stride) {
  const int lane = threadIdx.x % 32, groups = w / 4; /* 16-byte groups a row */
  int j = lane / groups, g = lane % groups;
  while (j < cnt) {
    __pipeline_memcpy_async(dst + j * stride + 4 * g, base + (c0 + j) * ld + 4 * g, 16);
    for (g += 32; g >= groups; g -= groups) /* the next copy: 32 groups on */
      j++;
  }
}

template <int G>
static __global__ void __launch_bounds__(32 * stream_warps(G))
    flash_stream_kernel(flash_args a, const int *bad) {
  constexpr int NC = 4 * G, W = stream_warps(G);
  extern __shared__ __align__(16) float stream_smem[]; /* float4 and cp.async targets */
  if (attn_cu_call_is_bad(bad)) return;
  const attn_cu_score_in &si = a.si;
  const int lane = threadIdx.x % 32, k = (int)si.k, dv = (int)a.dv;
  const bool own_v =
      stream_own_values(si.a.data, si.a.ld, si.a.stride, si.k, a.V.data, a.V.ld, a.V.stride, a.dv);
  /* Staged rows: a' sk floats apart, values sv (the a' rows themselves unless own_v). */
  const int sk = stream_stride(k), sv = own_v ? stream_stride(dv) : sk;
  const int stage = stream_stage_floats(si.k, a.dv, own_v);
  float *const mine = stream_smem + (threadIdx.x / 32) * stream_warp_floats(si.k, a.dv, own_v);
  float *const qs = mine + 2 * stage;
  const int64_t rows = attn_cu_query_rows(si.l);
  for (int64_t r = (int64_t)blockIdx.x * W + threadIdx.x / 32; r < rows;
       r += (int64_t)gridDim.x * W) {
    attn_cu_set s;
    int64_t i, u_lo, u_hi;
    bool split;
    if (!flash_row_spans(a, r, &s, &i, &u_lo, &u_hi, &split)) continue;
    const int64_t j_lo = u_lo * FLASH_SPAN;
    const int64_t j_hi = u_hi * FLASH_SPAN < s.valid ? u_hi * FLASH_SPAN : s.valid;
    const float *abase = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, 0);
    const float *vbase = attn_cu_arow(a.V.data, a.V.ld, a.V.stride, si.l, s, 0);
    const float *q = attn_cu_score_q(si, s, i);
    __syncwarp(); /* the previous row is done with qs and the stages */
    for (int t = 4 * lane; t < k; t += 128)
      *(float4 *)(qs + t) = *(const float4 *)(q + t);
    const auto issue = [&](int64_t c0, float *to) {
      const int cnt = (int)(j_hi - c0 < FLASH_CHUNK ? j_hi - c0 : FLASH_CHUNK);
      stream_stage(abase, si.a.ld, k, c0, cnt, to, sk);
      if (own_v) stream_stage(vbase, a.V.ld, dv, c0, cnt, to + 32 * sk, sv);
    };
    if (j_lo < j_hi) issue(j_lo, mine);
    __pipeline_commit();
    float tm = -INFINITY, tl = 0.0f, tx[NC], sm = -INFINITY, sl = 0.0f, sx[NC];
#pragma unroll
    for (int e = 0; e < NC; e++) {
      tx[e] = 0.0f;
      sx[e] = 0.0f;
    }
    int buf = 0;
    for (int64_t c0 = j_lo; c0 < j_hi; c0 += FLASH_CHUNK, buf ^= 1) {
      const int cnt = (int)(j_hi - c0 < FLASH_CHUNK ? j_hi - c0 : FLASH_CHUNK);
      __pipeline_wait_prior(0);
      __syncwarp(); /* chunk c0 (and q') is in for every lane; all are done with the other stage */
      if (c0 + FLASH_CHUNK < j_hi) issue(c0 + FLASH_CHUNK, mine + (buf ^ 1) * stage);
      __pipeline_commit();
      const float *As = mine + buf * stage, *Vs = own_v ? As + 32 * sk : As;
      float sc = -INFINITY;
      if (lane < cnt) {
        const float *ar = As + lane * sk;
        float acc = 0.0f;
#pragma unroll 4
        for (int t = 0; t < k; t += 4)
          acc = warp_dot4(*(const float4 *)(qs + t), *(const float4 *)(ar + t), acc);
        sc = flash_score(false, si.scale, acc);
      }
      float mc = sc;
      for (int o = 16; o > 0; o >>= 1)
        mc = attn_cu_nanmax(mc, __shfl_xor_sync(0xffffffffu, mc, o));
      const float p = lane < cnt ? flash_p(sc, mc) : 0.0f;
      /* WARP<G>'s chains: the sum over the rows in order in every lane, and lane l's columns
       * warp_col(g, l) + 0 .. 3 (dv is a multiple of 4: a group is in or out whole). */
      float lc = 0.0f, cx[NC];
#pragma unroll
      for (int e = 0; e < NC; e++)
        cx[e] = 0.0f;
#pragma unroll 4
      for (int j = 0; j < cnt; j++) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
        lc = __fadd_rn(lc, pj);
#pragma unroll
        for (int g = 0; g < G; g++) {
          const int col = (int)warp_col(g, lane);
          const float4 v =
              col < dv ? *(const float4 *)(Vs + j * sv + col) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          cx[4 * g] = __fmaf_rn(pj, v.x, cx[4 * g]);
          cx[4 * g + 1] = __fmaf_rn(pj, v.y, cx[4 * g + 1]);
          cx[4 * g + 2] = __fmaf_rn(pj, v.z, cx[4 * g + 2]);
          cx[4 * g + 3] = __fmaf_rn(pj, v.w, cx[4 * g + 3]);
        }
      }
      const int64_t u = c0 / FLASH_SPAN;
      flash_fold_into<NC>(c0 % FLASH_SPAN == 0, sm, sl, sx, mc, lc,
                          cx); /* the chunk into the span */
      const int64_t uend = (u + 1) * FLASH_SPAN < j_hi ? (u + 1) * FLASH_SPAN : j_hi;
      if (c0 + FLASH_CHUNK < uend) continue; /* the span goes on */
      if (split) /* the span's state to the partials (u_hi = u_lo + 1) */
        warp_write_partial<NC>(a, r, u, sm, sl, sx);
      else /* the span into the total */
        flash_fold_into<NC>(u == u_lo, tm, tl, tx, sm, sl, sx);
    }
    if (!split) warp_write_out<NC>(a, s, i, r, tm, tl, tx);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Launch                                                                                    */
/* ---------------------------------------------------------------------------------------- */

/* A STREAM block's shared memory for k' = k and dv, values of their own or not. */
static size_t stream_block_bytes(int64_t k, int64_t dv, bool own_v) {
  return (size_t)stream_warps(dv <= 128 ? 1 : 2) * (size_t)stream_warp_floats(k, dv, own_v) *
         sizeof(float);
}

size_t attn_cu_flash_stream_init(int optin) {
  /* the widest calls: STREAM<1>'s (two warps at dv = 128) take more than STREAM<2>'s (one) */
  const size_t narrow = stream_block_bytes(STREAM_MAX_K, 128, true);
  const size_t wide = stream_block_bytes(STREAM_MAX_K, STREAM_MAX_DV, true);
  const size_t stream_max = narrow > wide ? narrow : wide;
  const size_t stream_smem = stream_max < (size_t)optin ? stream_max : (size_t)optin;
  return flash_opt_in(flash_stream_kernel<1>, stream_smem) &&
                 flash_opt_in(flash_stream_kernel<2>, stream_smem)
             ? stream_smem
             : 0;
}

size_t attn_cu_flash_stream_smem(const attn_cuda_problem_t *p) {
  const bool offsets = p->annotation_offsets != NULL;
  const bool own_v =
      stream_own_values(p->annotations.data, p->annotations.ld, p->annotations.stride, p->d,
                        p->values.data, p->values.ld, p->values.stride, p->dv);
  if ((p->kind != ATTN_CUDA_SCORE_DOT && p->kind != ATTN_CUDA_SCORE_SCALED_DOT) ||
      p->d > STREAM_MAX_K || p->dv > STREAM_MAX_DV ||
      !rows_vec(p->queries.data, p->d, p->queries.ld, p->queries.stride,
                p->query_offsets != NULL) ||
      !rows_vec(p->annotations.data, p->d, p->annotations.ld, p->annotations.stride, offsets) ||
      (own_v && !rows_vec(p->values.data, p->dv, p->values.ld, p->values.stride, offsets)))
    return 0;
  return stream_block_bytes(p->d, p->dv, own_v);
}

void attn_cu_flash_stream(const flash_args &a, size_t smem, cudaStream_t stream, const int *bad) {
  const int64_t rows = attn_cu_query_rows(a.si.l);
  if (a.dv <= 128) {
    const dim3 grid(attn_cu_blocks(rows, stream_warps(1)), (unsigned)a.spans);
    flash_stream_kernel<1><<<grid, 32 * stream_warps(1), smem, stream>>>(a, bad);
  } else {
    const dim3 grid(attn_cu_blocks(rows, stream_warps(2)), (unsigned)a.spans);
    flash_stream_kernel<2><<<grid, 32 * stream_warps(2), smem, stream>>>(a, bad);
  }
}

void attn_cu_flash_warp(const flash_args &a, cudaStream_t stream, const int *bad) {
  const dim3 grid(attn_cu_blocks(attn_cu_query_rows(a.si.l), FLASH_WARPS), (unsigned)a.spans);
  if (a.dv <= 128)
    flash_warp_kernel<1><<<grid, FLASH_THREADS, 0, stream>>>(a, bad);
  else
    flash_warp_kernel<2><<<grid, FLASH_THREADS, 0, stream>>>(a, bad);
}
