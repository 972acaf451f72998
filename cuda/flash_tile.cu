/*
 * flash_tile.cu - the flash forward's register-blocked kernels, TILE and TC (flash.cu: the fixed
 * arithmetic TILE computes, and the plan; flash_kernels.cuh: what the kernels share).
 *
 * TILE: a block of 128 threads per tile of 64 queries of one set (uniform batches, dot-like
 * scores), register-blocked like an SGEMM so that each annotation and value read from shared memory
 * feeds 8 queries: per span, thread (g, h) scores an 8 x 8 block of (query, row) pairs in two
 * 128-row stages (q' and a' slices of 16 columns, double-buffered through shared memory), the
 * span's weights P [256 x 64] stay in shared memory, and the context runs in blocks of 64 columns,
 * each thread an 8 x 4 block, over value rows that cp.async brings in while the previous rows are
 * used. Spans split across blocks as in BLOCK. Any dv: the context is never held whole. TILE<16>,
 * for sets of at most 16 queries and the calls neither larger tile takes, is the same code on
 * tiles of 16: 8 x 4 scores a thread in one 256-row stage, P [256 x 16], and 8 x 2 outputs of
 * 128-column blocks (tile_cfg). TILE<32>, for sets of 17 to 32 queries (one tile where TILE<16>
 * takes two) and larger sets whose tiles of 64 would not give every multiprocessor a block (at k
 * <= 64, more than half), where its own blocks reach every multiprocessor, keeps TILE<64>'s 8 x 8
 * scores and 8 x 4 outputs a thread on half the queries (flash.cu has the plan's rule and its
 * measurements).
 *
 * TC: the exception to flash.cu's fixed arithmetic, run only when ATTN_CU_FLASH forces it (plans
 * tc, splittc): TILE<64>'s spans, chunks, weights, folds and combine, with the scores' and the
 * context's products on the tensor cores in 3xTF32 (see the TC section), so that a GPU run can say
 * what the tensor cores are worth on the shared shape before an arithmetic chosen by the set's
 * shape is designed around them.
 */
#include "flash_kernels.cuh"

#include <cuda_pipeline.h>

/* ---------------------------------------------------------------------------------------- */
/* TILE: a block per tile of 64, 32 or 16 queries of one set, register-blocked             */
/* ---------------------------------------------------------------------------------------- */

#define TILE_K      16          /* columns of q' and a' per shared-memory slice */
#define TILE_VROWS  FLASH_CHUNK /* value rows per shared-memory slice: a chunk */
#define TILE_CHUNKS (FLASH_SPAN / FLASH_CHUNK)
/* The chunk fold factors of a query in shared memory: a neutral (1, 0) before the span's chunks,
 * so that the context can fold "chunk -1" (tile_context) without a branch. */
#define TILE_FOLDS (TILE_CHUNKS + 1)
static __device__ __forceinline__ int tile_fold_at(int q, int c) {
  return q * TILE_FOLDS + 1 + c;
}

/* The three tilings of 128 threads. Thread (g, h) = (tid / H, tid % H) owns 8 queries, q(g, 0)
 * .. q(g, 7); for the scores, SR rows r(h, 0) .. r(h, SR - 1) of each stage of ROWS annotation
 * rows; for the context, columns h NC .. h NC + NC - 1 of each block of COLS columns. Weight
 * (row, query) of a span lives in P at p(row, query): row-major, QT queries a row, with the
 * row's 4-query groups permuted by an XOR of (row / 4) so that the score stage's 16-byte stores
 * spread over the banks (TILE<64>, TILE<32>: no conflict; TILE<16>, whose rows are 16 floats:
 * 2 ways), while a group stays 16 contiguous bytes and a row is still read whole.
 *   TILE<64>: 8 x 16 threads; queries g*4 .. g*4+3 and 32+g*4 .. 32+g*4+3; 8 x 8 scores
 *             (rows h*4 .. h*4+3 and 64+h*4 .. 64+h*4+3 of a 128-row stage, half a span) and
 *             8 x 4 outputs of 64-column blocks; groups XOR (row / 4) % 8.
 *   TILE<32>: 4 x 32 threads; queries g*8 .. g*8+7; 8 x 8 scores (rows h*4 .. h*4+3 and
 *             128+h*4 .. 128+h*4+3 of a 256-row stage, the whole span) and 8 x 4 outputs of
 *             128-column blocks; groups XOR (row / 4) % 8. A thread's arithmetic is TILE<64>'s
 *             on half the tile: twice the blocks (the shared shape's 128 tiles of 64 leave one
 *             block on most multiprocessors unless split; its 256 tiles of 32 put two on 124 of
 *             132), each reading the annotations and values once for 32 queries instead of 64.
 *             A warp shares g, so its q' and weight reads are broadcasts and its a' and value
 *             reads 512 contiguous bytes.
 *   TILE<16>: 2 x 64 threads; queries g*8 .. g*8+7; 8 x 4 scores (rows h*4 .. h*4+3 of a
 *             256-row stage, the whole span) and 8 x 2 outputs of 128-column blocks; groups
 *             XOR (row / 4) % 4. A set of 16 queries (the long shape) keeps every thread's
 *             queries real, where TILE<64> computes 48 of its 64 on zeros. */
template <int QT> struct tile_cfg;
template <> struct tile_cfg<64> {
  static constexpr int H = 16, ROWS = 128, SR = 8, COLS = 64, NC = 4;
  static __device__ __forceinline__ int q(int g, int i) { return (i < 4 ? 0 : 32) + g * 4 + i % 4; }
  static __device__ __forceinline__ int r(int h, int j) { return (j < 4 ? 0 : 64) + h * 4 + j % 4; }
  static __device__ __forceinline__ int p(int row, int q) {
    return row * 64 + (q ^ (((row >> 2) & 7) << 2));
  }
};
template <> struct tile_cfg<32> {
  static constexpr int H = 32, ROWS = 256, SR = 8, COLS = 128, NC = 4;
  static __device__ __forceinline__ int q(int g, int i) { return g * 8 + i; }
  static __device__ __forceinline__ int r(int h, int j) {
    return (j < 4 ? 0 : 128) + h * 4 + j % 4;
  }
  static __device__ __forceinline__ int p(int row, int q) {
    return row * 32 + (q ^ (((row >> 2) & 7) << 2));
  }
};
template <> struct tile_cfg<16> {
  static constexpr int H = 64, ROWS = 256, SR = 4, COLS = 128, NC = 2;
  static __device__ __forceinline__ int q(int g, int i) { return g * 8 + i; }
  static __device__ __forceinline__ int r(int h, int j) { return h * 4 + j; }
  static __device__ __forceinline__ int p(int row, int q) {
    return row * 16 + (q ^ (((row >> 2) & 3) << 2));
  }
};

/* Dynamic shared memory, in floats: the span's weights P[row][query], the staging buffers (q'
 * and a' slices, double-buffered; the value slices reuse them), the chunk fold factors and the
 * span and total states. */
template <int QT> struct tile_smem {
  /* Registers a thread fetches a slice into: its float4s of q' (QT x 4 of them over the threads)
   * and of a' (a row of 4 for each 128 rows of a stage). */
  static constexpr int RQ = (QT * 4 + FLASH_THREADS - 1) / FLASH_THREADS * 4;
  static constexpr int RA = tile_cfg<QT>::ROWS / FLASH_THREADS * 16;
  static constexpr int P = FLASH_SPAN * QT;
  static constexpr int QA = TILE_K * (QT + tile_cfg<QT>::ROWS);
  static constexpr int STAT = 2 * QT * TILE_FOLDS + 6 * QT;
  static constexpr size_t BYTES = (size_t)(P + 2 * QA + STAT) * sizeof(float);
  static_assert(TILE_VROWS * tile_cfg<QT>::COLS <= QA, "value slices fit the staging buffers");
  static_assert(TILE_VROWS % 32 == 0, "value groups start where p's XOR pattern starts over");
  static_assert(FLASH_THREADS / tile_cfg<QT>::H * 8 == QT &&
                    tile_cfg<QT>::H * tile_cfg<QT>::SR == tile_cfg<QT>::ROWS &&
                    tile_cfg<QT>::H * tile_cfg<QT>::NC == tile_cfg<QT>::COLS &&
                    FLASH_SPAN % tile_cfg<QT>::ROWS == 0,
                "the thread grid covers a stage's QT x ROWS scores and QT x COLS outputs");
};

/* One column t of a thread's outer-product block: its 8 x operands and NY y operands. */
template <int NY> struct tile_frag { float x[8], y[NY]; };

/* Zeros in every operand (a held column before there is one: tile_scores, tile_context). */
template <int NY> static __device__ __forceinline__ void tile_zero(tile_frag<NY> &f) {
#pragma unroll
  for (int i = 0; i < 8; i++)
    f.x[i] = 0.0f;
#pragma unroll
  for (int j = 0; j < NY; j++)
    f.y[j] = 0.0f;
}

/* Column t's operands for the thread's 8 x NY block: x0 and x1 point at its first and last four
 * x operands, y at its first NY (NY = 2 or 4) or four y operands (NY = 8: the other four lie
 * ygap floats on). */
template <int NY>
static __device__ __forceinline__ void tile_load(const float *x0p, const float *x1p, const float *y,
                                                 int ygap, tile_frag<NY> &f) {
  flash_unpack4(*(const float4 *)x0p, f.x);
  flash_unpack4(*(const float4 *)x1p, f.x + 4);
  if constexpr (NY == 2) {
    const float2 y0 = *(const float2 *)y;
    f.y[0] = y0.x;
    f.y[1] = y0.y;
  } else {
    flash_unpack4(*(const float4 *)y, f.y);
    if constexpr (NY == 8) flash_unpack4(*(const float4 *)(y + ygap), f.y + 4);
  }
}

/* acc[i][j] = fma(x_i, y_j, acc[i][j]) for column f of the thread's 8 x NY block. */
template <int NY>
static __device__ __forceinline__ void tile_fma(const tile_frag<NY> &f, float (&acc)[8][NY]) {
#pragma unroll
  for (int i = 0; i < 8; i++)
#pragma unroll
    for (int j = 0; j < NY; j++)
      acc[i][j] = __fmaf_rn(f.x[i], f.y[j], acc[i][j]);
}

/* Both: one column of the block from shared memory (tile_load's pointers). */
template <int NY>
static __device__ __forceinline__ void tile_outer(const float *x0p, const float *x1p,
                                                  const float *y, int ygap, float (&acc)[8][NY]) {
  tile_frag<NY> f;
  tile_load<NY>(x0p, x1p, y, ygap, f);
  tile_fma<NY>(f, acc);
}

/* Slice [k0, k0 + TILE_K) of the tile's q' rows (QT x 4 float4s over the threads) and of a' rows
 * [0, rows) of the stage (4 float4s a row, a row a thread for each 128 rows) into registers,
 * from the thread's pointers made once a stage: qp[i] to the q' row and column of its float4 i,
 * ap[rr] to its a' row of each 128.
 * Neighbouring threads take neighbouring rows, so that the transposed stores into shared memory
 * (Qs[t][query], As[t][row]) hit 32 different banks; a row's other 4-column groups follow in
 * the next loads, from L1. */
template <int QT>
static __device__ __forceinline__ void
tile_fetch_qa(const flash_args &a, const float *const (&qp)[tile_smem<QT>::RQ / 4],
              const float *const (&ap)[tile_cfg<QT>::ROWS / FLASH_THREADS], int qn, int rows,
              int64_t k0, float (&rq)[tile_smem<QT>::RQ], float (&ra)[tile_smem<QT>::RA]) {
  const attn_cu_score_in &si = a.si;
  const int tid = threadIdx.x;
#pragma unroll
  for (int i = 0; i < tile_smem<QT>::RQ / 4; i++) {
    const int idx = tid + FLASH_THREADS * i, qi = idx % QT, t = idx / QT * 4;
    const int n = idx < QT * 4 && qi < qn ? flash_count4(si.k - k0 - t) : 0;
    flash_load4(qp[i] + k0, n, a.vec_q, rq + 4 * i);
  }
#pragma unroll
  for (int rr = 0; rr < tile_cfg<QT>::ROWS / FLASH_THREADS; rr++)
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int n = tid + FLASH_THREADS * rr < rows ? flash_count4(si.k - k0 - 4 * i) : 0;
      flash_load4(ap[rr] + k0 + 4 * i, n, a.vec, ra + 16 * rr + 4 * i);
    }
}

/* tile_fetch_qa where every load of the slice exists and the rows are 16-byte aligned (full
 * tiles and stages, all of the slice within k): from per-thread row pointers made once a stage,
 * so that a slice costs its loads and not their counts, branches and addresses. */
template <int QT>
static __device__ __forceinline__ void
tile_fetch_full(const float *const (&qp)[tile_smem<QT>::RQ / 4],
                const float *const (&ap)[tile_cfg<QT>::ROWS / FLASH_THREADS], int64_t k0,
                float (&rq)[tile_smem<QT>::RQ], float (&ra)[tile_smem<QT>::RA]) {
#pragma unroll
  for (int i = 0; i < tile_smem<QT>::RQ / 4; i++)
    flash_load4(qp[i] + k0, threadIdx.x + FLASH_THREADS * i < QT * 4 ? 4 : 0, true, rq + 4 * i);
#pragma unroll
  for (int rr = 0; rr < tile_cfg<QT>::ROWS / FLASH_THREADS; rr++)
#pragma unroll
    for (int i = 0; i < 4; i++)
      flash_load4(ap[rr] + k0 + 4 * i, 4, true, ra + 16 * rr + 4 * i);
}

/* The thread's q' and a' row pointers for a stage's fetches (tile_fetch_qa, tile_fetch_full):
 * qbase the tile's first q' row, abase the stage's first a' row. */
template <int QT>
static __device__ __forceinline__ void
tile_row_ptrs(const attn_cu_score_in &si, const float *qbase, const float *abase,
              const float *(&qp)[tile_smem<QT>::RQ / 4],
              const float *(&ap)[tile_cfg<QT>::ROWS / FLASH_THREADS]) {
  const int tid = threadIdx.x;
#pragma unroll
  for (int i = 0; i < tile_smem<QT>::RQ / 4; i++) {
    const int idx = tid + FLASH_THREADS * i;
    qp[i] = qbase + idx % QT * si.q.ld + idx / QT * 4;
  }
#pragma unroll
  for (int rr = 0; rr < tile_cfg<QT>::ROWS / FLASH_THREADS; rr++)
    ap[rr] = abase + (tid + FLASH_THREADS * rr) * si.a.ld;
}

/* A fetched slice into shared memory, transposed: Qs[t QT + query], As[t ROWS + row]. */
template <int QT>
static __device__ __forceinline__ void tile_store_qa(const float (&rq)[tile_smem<QT>::RQ],
                                                     const float (&ra)[tile_smem<QT>::RA],
                                                     float *Qs, float *As) {
  constexpr int qld = QT, ald = tile_cfg<QT>::ROWS;
  const int tid = threadIdx.x;
#pragma unroll
  for (int i = 0; i < tile_smem<QT>::RQ / 4; i++) {
    const int idx = tid + FLASH_THREADS * i, qi = idx % QT, t = idx / QT * 4;
    if (idx < QT * 4)
#pragma unroll
      for (int e = 0; e < 4; e++)
        Qs[(t + e) * qld + qi] = rq[4 * i + e];
  }
#pragma unroll
  for (int rr = 0; rr < tile_cfg<QT>::ROWS / FLASH_THREADS; rr++)
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int j = tid + FLASH_THREADS * rr, t = 4 * i;
#pragma unroll
      for (int e = 0; e < 4; e++)
        As[(t + e) * ald + j] = ra[16 * rr + 4 * i + e];
    }
}

/* Scores of rows [j0, j0 + rows) of set s (a span: rows <= FLASH_SPAN) against the tile's
 * queries i0 .. i0 + qn - 1 into P[row][query], in stages of ROWS rows. Each score is the
 * fma chain over t in order (the slices are walked in order and a partial slice stops at k). */
template <int QT>
static __device__ void tile_scores(const flash_args &a, const attn_cu_set &s, int64_t i0, int qn,
                                   int64_t j0, int rows, float *P, float *stage) {
  using C = tile_cfg<QT>;
  constexpr int QA = tile_smem<QT>::QA, RQ = tile_smem<QT>::RQ;
  const attn_cu_score_in &si = a.si;
  const int tid = threadIdx.x, g = tid / C::H, h = tid % C::H;
  const float *qbase = attn_cu_score_q(si, s, i0);
  int buf = 0;
  for (int r0 = 0; r0 < rows; r0 += C::ROWS) {
    const int srows = rows - r0 < C::ROWS ? rows - r0 : C::ROWS;
    const float *abase = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, j0 + r0);
    float acc[8][C::SR], rq[RQ], ra[tile_smem<QT>::RA];
    /* A full slice's last column, loaded before the next slice's stores and barrier and
     * computed after it, while the next slice's first shared loads fly: the H100's profile of
     * the shared shape found 8% of TILE<64>'s stall samples on the first fma after those loads
     * (short scoreboard). Each score's chain over t keeps its order. Zeros before the first
     * slice: fma(0, 0, +0) leaves the fresh accumulators' +0 as it is. */
    tile_frag<C::SR> hold;
    tile_zero<C::SR>(hold);
    bool held = false;
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
      for (int j = 0; j < C::SR; j++)
        acc[i][j] = 0.0f;
    /* The thread's q' and a' row pointers for both fetches; full tiles and stages of float4
     * rows load their slices by tile_fetch_full (but a last part slice of k). */
    const bool whole = a.vec && a.vec_q && qn == QT && srows == C::ROWS;
    const float *qp[RQ / 4], *ap[C::ROWS / FLASH_THREADS];
    tile_row_ptrs<QT>(si, qbase, abase, qp, ap);
    if (whole && TILE_K <= si.k)
      tile_fetch_full<QT>(qp, ap, 0, rq, ra);
    else
      tile_fetch_qa<QT>(a, qp, ap, qn, srows, 0, rq, ra);
    for (int64_t k0 = 0; k0 < si.k; k0 += TILE_K) {
      /* Double-buffered: the slice stored here was last read two slices ago, before every
       * thread passed the previous barrier. */
      float *Qs = stage + buf * QA, *As = Qs + TILE_K * QT;
      tile_store_qa<QT>(rq, ra, Qs, As);
      __syncthreads();
      if (whole && k0 + 2 * TILE_K <= si.k)
        tile_fetch_full<QT>(qp, ap, k0 + TILE_K, rq, ra);
      else if (k0 + TILE_K < si.k)
        tile_fetch_qa<QT>(a, qp, ap, qn, srows, k0 + TILE_K, rq, ra);
      const int kw = (int)(si.k - k0 < TILE_K ? si.k - k0 : TILE_K);
      const float *x0 = Qs + C::q(g, 0), *x1 = Qs + C::q(g, 4), *y = As + C::r(h, 0);
      const int ygap = C::SR == 8 ? C::r(h, 4) - C::r(h, 0) : 0;
      /* column 0's loads first (kw >= 1), then the previous slice's last column while they fly */
      tile_frag<C::SR> f0;
      tile_load<C::SR>(x0, x1, y, ygap, f0);
      tile_fma<C::SR>(hold, acc);
      tile_fma<C::SR>(f0, acc);
      held = kw == TILE_K;
      if (held) {
#pragma unroll
        for (int t = 1; t < TILE_K - 1; t++)
          tile_outer<C::SR>(x0 + t * QT, x1 + t * QT, y + t * C::ROWS, ygap, acc);
        const int t = TILE_K - 1;
        tile_load<C::SR>(x0 + t * QT, x1 + t * QT, y + t * C::ROWS, ygap, hold);
      } else { /* a part slice: the last of k */
        for (int t = 1; t < kw; t++)
          tile_outer<C::SR>(x0 + t * QT, x1 + t * QT, y + t * C::ROWS, ygap, acc);
      }
      buf ^= 1;
    }
    if (held) { /* the last slice was whole: its last column */
      tile_fma<C::SR>(hold, acc);
    }
    /* Each 4-query group of a row is one 16-byte store. */
#pragma unroll
    for (int j = 0; j < C::SR; j++)
#pragma unroll
      for (int i = 0; i < 8; i += 4) {
        const float4 v = make_float4(flash_score(false, si.scale, acc[i][j]),
                                     flash_score(false, si.scale, acc[i + 1][j]),
                                     flash_score(false, si.scale, acc[i + 2][j]),
                                     flash_score(false, si.scale, acc[i + 3][j]));
        *(float4 *)(P + C::p(r0 + C::r(h, j), C::q(g, i))) = v;
      }
  }
}

/* Rows [0, vr) of the values from vbase (a set's rows are ld apart), columns [c0, c0 + COLS),
 * into Vs[row DLD + col], zeros past dv: COLS / 4 threads cover a row's contiguous bytes. With
 * vec_v each 4 columns are one asynchronous 16-byte copy (cp.async: no registers held while it
 * flies; the caller commits and waits), else plain loads (the fallback for rows that are not
 * 16-byte aligned). */
template <int QT, int DLD = tile_cfg<QT>::COLS>
static __device__ __forceinline__ void tile_stage_v(const flash_args &a, const float *vbase, int vr,
                                                    int64_t c0, float *Vs) {
  constexpr int COLS = tile_cfg<QT>::COLS, COPIES = TILE_VROWS * COLS / 4 / FLASH_THREADS;
  static_assert(COPIES * 4 * FLASH_THREADS == TILE_VROWS * COLS, "whole copies a thread");
#pragma unroll
  for (int i = 0; i < COPIES; i++) {
    const int idx = threadIdx.x + FLASH_THREADS * i;
    const int j = idx / (COLS / 4), col = idx % (COLS / 4) * 4;
    if (j >= vr) continue;
    const int n = flash_count4(a.dv - c0 - col);
    float *dst = Vs + j * DLD + col;
    const float *src = vbase + j * a.V.ld + c0 + col;
    if (a.vec_v && n == 4) {
      __pipeline_memcpy_async(dst, src, 16);
      continue;
    }
#pragma unroll
    for (int e = 0; e < 4; e++)
      dst[e] = e < n ? src[e] : 0.0f;
  }
}

/* tile_stage_v for a full group of rows (vr = TILE_VROWS) of a column block that lies within dv,
 * with vec_v: copy i of the thread goes from src0 + i R ld to dst0 + i R DLD, R = the rows a
 * pass of the threads covers (src0, dst0: the thread's first copy, made once a column block). */
template <int QT, int DLD = tile_cfg<QT>::COLS>
static __device__ __forceinline__ void tile_stage_v_full(const float *src0, int64_t ld,
                                                         float *dst0) {
  constexpr int COLS = tile_cfg<QT>::COLS, COPIES = TILE_VROWS * COLS / 4 / FLASH_THREADS;
  constexpr int R = FLASH_THREADS / (COLS / 4);
#pragma unroll
  for (int i = 0; i < COPIES; i++)
    __pipeline_memcpy_async(dst0 + i * R * DLD, src0 + i * R * ld, 16);
}

/* Value group gi of a span (rows gi TILE_VROWS .., at most TILE_VROWS of its `rows`), columns
 * [c0, c0 + COLS), into dst: tile_stage_v_full where the group is whole and full says the block
 * lies within dv with vec_v (vsrc: the thread's first copy's source in group 0, (vj, vc) its row
 * and column of the block), else tile_stage_v. The caller commits. */
template <int QT, int DLD = tile_cfg<QT>::COLS>
static __device__ __forceinline__ void
tile_stage_group(const flash_args &a, const float *vspan, const float *vsrc, int vj, int vc,
                 bool full, int rows, int gi, int64_t c0, float *dst) {
  const int nr = rows - gi * TILE_VROWS;
  const int64_t skip = (int64_t)gi * TILE_VROWS * a.V.ld;
  if (full && nr >= TILE_VROWS)
    tile_stage_v_full<QT, DLD>(vsrc + skip, a.V.ld, dst + vj * DLD + vc);
  else
    tile_stage_v<QT, DLD>(a, vspan + skip, nr < TILE_VROWS ? nr : TILE_VROWS, c0, dst);
}

/* The value groups of a span's column block at c0, through the two staging buffers (QA floats
 * apart, rows DLD floats apart): group gi + 1's copies fly while body(gi, vr, Vs) uses group gi
 * (vr of its rows exist; Vs: its rows in shared memory). Begins with a barrier: the buffers'
 * last readers (the previous columns, or the scores) are done. */
template <int QT, int DLD, int QA, class Body>
static __device__ __forceinline__ void tile_value_groups(const flash_args &a, const float *vspan,
                                                         int64_t c0, int rows, float *stage,
                                                         const Body &body) {
  constexpr int COLS = tile_cfg<QT>::COLS;
  const int groups = (rows + TILE_VROWS - 1) / TILE_VROWS;
  /* Full groups of a column block within dv copy from pointers made here. */
  const bool full = a.vec_v && c0 + COLS <= a.dv;
  const int vj = threadIdx.x / (COLS / 4), vc = threadIdx.x % (COLS / 4) * 4;
  const float *vsrc = vspan + vj * a.V.ld + c0 + vc;
  __syncthreads();
  tile_stage_group<QT, DLD>(a, vspan, vsrc, vj, vc, full, rows, 0, c0, stage);
  __pipeline_commit();
  for (int gi = 0; gi < groups; gi++) {
    const int vr = rows - gi * TILE_VROWS < TILE_VROWS ? rows - gi * TILE_VROWS : TILE_VROWS;
    __pipeline_wait_prior(0);
    __syncthreads(); /* rows gi are in; everyone is done with rows gi - 1 */
    if (gi + 1 < groups) {
      tile_stage_group<QT, DLD>(a, vspan, vsrc, vj, vc, full, rows, gi + 1, c0,
                                stage + ((gi + 1) & 1) * QA);
      __pipeline_commit();
    }
    body(gi, vr, stage + (gi & 1) * QA);
  }
}

/* A span's context x of query qi of the tile (row r of the call, C row crow) and column col:
 * to the partials (split), or folded into C with the total's factors in st, finished after the
 * last span. */
template <int QT>
static __device__ __forceinline__ void tile_put(const flash_args &a, int64_t r, float *crow, int qi,
                                                int64_t col, int64_t u, float x, bool split,
                                                bool first, bool last, const float *st) {
  if (split) {
    a.partial[(r * a.spans + u) * (a.dv + 2) + 2 + col] = x;
    return;
  }
  const float c = flash_mix(first ? 0.0f : crow[col], st[4 * QT + qi], x, st[5 * QT + qi]);
  crow[col] = last ? flash_out(c, st[2 * QT + qi], st[3 * QT + qi]) : c;
}

/* The context of one span: for each block of COLS columns, thread (g, h) accumulates its 8 x NC
 * outputs (queries q(g, .), columns h NC .. h NC + NC - 1) over each chunk's rows in order (a
 * fresh fma chain per chunk), folds the chunk into the span with the factors in ca and cb, and at
 * the end writes the span to the partials (split) or folds it into the running total in C
 * (finishing it after the last span). The value rows pass through shared memory a chunk at a
 * time, double-buffered: the copy of the next chunk flies while the current one is used. */
template <int QT>
static __device__ void tile_context(const flash_args &a, const attn_cu_set &s, int64_t i0, int qn,
                                    int64_t u, int rows, bool split, bool first, bool last,
                                    const float *P, float *stage, const float *ca, const float *cb,
                                    const float *st) {
  using C = tile_cfg<QT>;
  constexpr int QA = tile_smem<QT>::QA;
  const int tid = threadIdx.x, g = tid / C::H, h = tid % C::H;
  const int64_t dv = a.dv;
  const float *vspan = attn_cu_arow(a.V.data, a.V.ld, a.V.stride, a.si.l, s, u * FLASH_SPAN);
  static_assert(TILE_VROWS == FLASH_CHUNK, "a group of value rows is a chunk");
  const int groups = (rows + TILE_VROWS - 1) / TILE_VROWS;
  for (int64_t c0 = 0; c0 < dv; c0 += C::COLS) {
    float X[8][C::NC], x[8][C::NC];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
      for (int j = 0; j < C::NC; j++) {
        X[i][j] = 0.0f;
        x[i][j] = 0.0f;
      }
    /* Chunk c's x folded into X with the chunk's factors, and x cleared for the next chunk;
     * c = -1 (before group 0, where X and x are still +0) folds with the neutral 1 and 0, which
     * leave +0 as it is: no branch, so that the loads issued before a fold stay ahead of it. */
    const auto fold = [&](int c) {
#pragma unroll
      for (int i = 0; i < 8; i++) {
        const float al = ca[tile_fold_at(C::q(g, i), c)];
        const float be = cb[tile_fold_at(C::q(g, i), c)];
#pragma unroll
        for (int j = 0; j < C::NC; j++) {
          X[i][j] = flash_mix(X[i][j], al, x[i][j], be);
          x[i][j] = 0.0f;
        }
      }
    };
    /* A whole group's last row, loaded before the next group's barrier and computed after it
     * (as tile_scores holds a slice's last column); zeros before the first. */
    tile_frag<C::NC> hold;
    tile_zero<C::NC>(hold);
    bool held = false;
    tile_value_groups<QT, C::COLS, QA>(
        a, vspan, c0, rows, stage, [&](int gi, int vr, const float *Vg) {
          const float *Vs = Vg + h * C::NC;
          /* The group's weights: row0 is a multiple of 32, where p's XOR pattern starts over, so
           * that p(row0 + j, q) = row0 QT + p(j, q). */
          const float *Pg = P + gi * TILE_VROWS * QT;
          const auto load = [&](int j, tile_frag<C::NC> &f) {
            tile_load<C::NC>(Pg + C::p(j, C::q(g, 0)), Pg + C::p(j, C::q(g, 4)), Vs + j * C::COLS,
                             0, f);
          };
          const auto row = [&](int j) {
            tile_frag<C::NC> f;
            load(j, f);
            tile_fma<C::NC>(f, x);
          };
          /* row 0's loads first (vr >= 1), then the previous group's held row (zeros before group
           * 0) and its chunk's fold while they fly, as in tile_scores */
          tile_frag<C::NC> f0;
          load(0, f0);
          tile_fma<C::NC>(hold, x);
          fold(gi - 1);
          tile_fma<C::NC>(f0, x);
          held = vr == TILE_VROWS;
          if (held) { /* unrolled whole: each address a register made once + an offset */
#pragma unroll
            for (int j = 1; j < TILE_VROWS - 1; j++)
              row(j);
            load(TILE_VROWS - 1, hold);
          } else { /* a set's last chunk, a part one (only the last group can be) */
#pragma unroll 4
            for (int j = 1; j < vr; j++)
              row(j);
            fold(gi);
          }
        });
    if (held) { /* the last group was whole: its last row, and its chunk's fold */
      tile_fma<C::NC>(hold, x);
      fold(groups - 1);
    }
#pragma unroll
    for (int i = 0; i < 8; i++) {
      const int qi = C::q(g, i);
      if (qi >= qn) continue;
      const int64_t r = s.r0 + i0 + qi;
      float *crow = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, a.si.l, s, i0 + qi);
#pragma unroll
      for (int j = 0; j < C::NC; j++) {
        const int64_t col = c0 + h * C::NC + j;
        if (col < dv) tile_put<QT>(a, r, crow, qi, col, u, X[i][j], split, first, last, st);
      }
    }
  }
}

/* A span's chunk weights (in place in P), maxima and sums: a thread per (query, chunk), the max
 * in any order (exact), the sum as the sequential chain over the chunk's rows. Then the chunks
 * fold into the span state, and (unless split) the span into the total: a thread per query.
 * C::p places P's weights (tile_cfg<QT>, or tc_cfg). st holds the span max and sum, the total
 * max and sum, and the total's fold factors. */
template <int QT, class C = tile_cfg<QT>>
static __device__ void tile_weights(int qn, int rows, bool split, float *P, float *ca, float *cb,
                                    float *st) {
  const int tid = threadIdx.x, nch = (rows + FLASH_CHUNK - 1) / FLASH_CHUNK;
  for (int pair = tid; pair < QT * nch; pair += FLASH_THREADS) {
    const int qi = pair % QT, c = pair / QT;
    const int cnt = rows - c * FLASH_CHUNK < FLASH_CHUNK ? rows - c * FLASH_CHUNK : FLASH_CHUNK;
    const int r0 = c * FLASH_CHUNK;
    float mc = -INFINITY, lc = 0.0f;
    for (int j = 0; j < cnt; j++)
      mc = attn_cu_nanmax(mc, P[C::p(r0 + j, qi)]);
    for (int j = 0; j < cnt; j++) {
      const float pj = flash_p(P[C::p(r0 + j, qi)], mc);
      P[C::p(r0 + j, qi)] = pj;
      lc = __fadd_rn(lc, pj);
    }
    ca[tile_fold_at(qi, c)] = mc; /* the chunk's max and sum, until the folds below */
    cb[tile_fold_at(qi, c)] = lc;
  }
  __syncthreads();
  if (tid < qn) {
    float M = -INFINITY, S = 0.0f;
    for (int c = 0; c < nch; c++) {
      float mn, al, be;
      flash_coeffs(M, ca[tile_fold_at(tid, c)], &mn, &al, &be);
      S = flash_mix(S, al, cb[tile_fold_at(tid, c)], be);
      M = mn;
      ca[tile_fold_at(tid, c)] = al;
      cb[tile_fold_at(tid, c)] = be;
    }
    st[tid] = M;
    st[QT + tid] = S;
    if (!split) {
      float mn, al, be;
      flash_coeffs(st[2 * QT + tid], M, &mn, &al, &be);
      st[3 * QT + tid] = flash_mix(st[3 * QT + tid], al, S, be);
      st[2 * QT + tid] = mn;
      st[4 * QT + tid] = al;
      st[5 * QT + tid] = be;
    }
  }
  __syncthreads();
}

/* ---------------------------------------------------------------------------------------- */
/* TC: TILE<64>'s structure with both products on the tensor cores (3xTF32)                  */
/* ---------------------------------------------------------------------------------------- */

/* An arithmetic of its own, which only ATTN_CU_FLASH runs (plans tc and splittc), to be measured
 * against TILE on a GPU: TILE's spans, chunks, weights, folds and combine, with the two products
 * as warp-wide mma.sync m16n8k8 on TF32 operands. Each fp32 operand x is split into a TF32 high
 * part hi = rna(x) and a TF32 remainder lo = rna(x - hi) (x - hi is exact), and each 8-term
 * step of a product adds lo hi', then hi lo', then hi hi' to one fp32 accumulator (lo lo' is
 * left out: about 2^-22 of a term): meant to stay within the reference's tolerance as fp32 fma
 * chains do (tc_step says what may not), in other bits, whose order inside an mma is the
 * hardware's. An operand that is infinite or NaN (where x - hi is NaN) takes 0 for both its
 * parts in the two correction products, so that they stay finite and hi hi' alone gives what
 * the fma chain gives (inf, or NaN from inf 0 or inf - inf). Out of this kernel's range, where
 * it differs: a finite |x| within half a TF32 step of FLT_MAX (hi is infinite and x - hi is
 * -inf: NaN against an operand whose remainder is 0; taking finiteness from hi instead costs
 * registers the kernel does not have), a product past about 2^139 (a correction product can
 * overflow against hi hi': NaN where the chain gives inf), a nonzero |x| below 2^-137 (hi is
 * 0) against an infinity (NaN where the chain gives inf), and a NaN whose payload lies in its
 * low 13 bits only, which tensor cores that read an operand's top 19 bits see as an infinity
 * (as cvt.rna made it before). A query's bits do not depend on the other queries of its tile
 * (an mma's row of the result depends only on its row of A), so the plan is deterministic and
 * batch-invariant among its own calls. Its 108 KiB of shared memory a block fit the data-center
 * GPUs (A100: 163 KiB, H100: 227 KiB) and not GA10x or AD10x (99 KiB), where TC does not run
 * (cu->flash.tc) and TILE still does.
 *
 * Block: 4 warps on a tile of 64 queries. Scores: warp w takes queries 32 (w % 2) .. + 31 (two
 * m-tiles of 16) and rows 64 (w / 2) .. + 63 of each 128-row stage (eight n-tiles of 8), from
 * q' and a' slices of 16 columns that cp.async copies row-major into shared memory (rows padded
 * to 20 floats, so that a fragment's 32 loads hit 32 banks). Context: the same queries and
 * columns 32 (w / 2) .. + 31 of each 64-column block, over P (rows padded to 72 floats) and
 * the value rows of a chunk (padded to 72), the chunk's mma products folded into the span as
 * TILE folds its fma chains. */

/* Zeros in a warp's fragments (TC's accumulators). */
template <int A, int B, int N> static __device__ __forceinline__ void tc_zero(float (&x)[A][B][N]) {
#pragma unroll
  for (int i = 0; i < A; i++)
#pragma unroll
    for (int j = 0; j < B; j++)
#pragma unroll
      for (int e = 0; e < N; e++)
        x[i][j][e] = 0.0f;
}

/* A split operand: its high part for hi hi', and the high part (hc) and remainder (lo) the
 * correction products take, both 0 where the operand is not finite. */
template <int N> struct tc_frag { uint32_t hi[N], hc[N], lo[N]; };

/* Element i of f from x, in 9 instructions where the first version's loops spent about 17 (its
 * two cvt.rna.tf32.f32 compiled to 4 each on sm_90, and the rest was the remainder, the NaN
 * tests and the predicate traffic of a kernel at its register limit). The rounding to TF32 is
 * cvt.rna's own, as the compiler builds it on sm_80 and sm_90, without its test for a
 * non-finite x: h = (x's bits + 2^12) & ~(2^13 - 1) is rna(x) for a finite x, and r = x - h is
 * exact, and NaN exactly where x is not finite, which the finiteness test needs anyway; lo =
 * rna(r) the same way. A non-finite x keeps its own bits as hi (h would be wrong for a NaN
 * whose top 10 fraction bits are all set: the addition carries into the sign). The operands are
 * the bits cvt.rna gave, but for a NaN's low 13 payload bits (checked on all 2^32 floats), so
 * TC's results do not change; a finite operand is a TF32 value with its low 13 bits zero, so
 * they do not depend on how the tensor cores treat such bits. */
template <int N> static __device__ __forceinline__ void tc_split(float x, tc_frag<N> &f, int i) {
  const uint32_t u = __float_as_uint(x), h = (u + 0x1000u) & 0xffffe000u;
  const float r = __fsub_rn(x, __uint_as_float(h));
  const bool finite = r == r;
  f.hi[i] = finite ? h : u;
  f.hc[i] = finite ? h : 0u;
  f.lo[i] = finite ? (__float_as_uint(r) + 0x1000u) & 0xffffe000u : 0u;
}

/* The products of one 8-term step of split operands for two 16-row tiles of A and an 8-column
 * tile of B: d[m] += a[m].lo b.hc, then a[m].hc b.lo, then a[m].hi b.hi, each an m16n8k8 TF32
 * mma.sync of the warp. (The tensor cores' own additions into d truncate, as far as published
 * measurements of A100s and H100s say, so a long k gathers errors of one sign; summing each
 * step from zero and adding it to d rounded to nearest would keep them to the step, but takes 8
 * registers that the kernel, at 248 to 254, does not have: it spills. An emulator whose mma sums
 * its terms exactly and then truncates put the worst error of 1 x 128 x 1024 x 512 at 0.00064
 * of the tests' tolerance, rounding to nearest at 0.00013, TILE at 8.3e-5; a GPU has the last
 * word.) Lane (g, t) = (lane / 4, lane % 4) holds A(g, t), A(g + 8, t), A(g, t + 4),
 * A(g + 8, t + 4); B(t, g), B(t + 4, g); and D(g, 2t), D(g, 2t + 1), D(g + 8, 2t),
 * D(g + 8, 2t + 1) (PTX's .tf32 fragments). Every lane of the warp must take part. Before sm_80
 * (and on tests/emu) the same products from the fragments in shared memory, each an fma chain
 * over k per element (products of TF32 operands are exact in fp32): one exchange for the six
 * mmas, slow, and nothing plans it there but a forced test. */
static __device__ __forceinline__ void tc_step(float (&d)[2][4], const tc_frag<4> (&a)[2],
                                               const tc_frag<2> &b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#pragma unroll
  for (int m = 0; m < 2; m++) {
    const uint32_t *const x[3] = {a[m].lo, a[m].hc, a[m].hi}, *const y[3] = {b.hc, b.lo, b.hi};
#pragma unroll
    for (int p = 0; p < 3; p++)
      asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, "
                   "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
                   : "+f"(d[m][0]), "+f"(d[m][1]), "+f"(d[m][2]), "+f"(d[m][3])
                   : "r"(x[p][0]), "r"(x[p][1]), "r"(x[p][2]), "r"(x[p][3]), "r"(y[p][0]),
                     "r"(y[p][1]));
  }
#else
  __shared__ tc_frag<4> xa[FLASH_THREADS][2];
  __shared__ tc_frag<2> xb[FLASH_THREADS];
  const int tid = threadIdx.x, w0 = tid & ~31, g = tid % 32 / 4, t = tid % 4;
  xa[tid][0] = a[0];
  xa[tid][1] = a[1];
  xb[tid] = b;
  __syncwarp();
  const auto f = [](uint32_t u) { return __uint_as_float(u & 0xffffe000u); };
#pragma unroll
  for (int m = 0; m < 2; m++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int col = 2 * t + e % 2; /* row g + 8 (e / 2) */
      float acc = d[m][e];
#pragma unroll
      for (int p = 0; p < 3; p++)
#pragma unroll
        for (int k = 0; k < 8; k++) {
          const tc_frag<4> &x = xa[w0 + g * 4 + k % 4][m];
          const tc_frag<2> &y = xb[w0 + col * 4 + k % 4];
          const int i = e / 2 + 2 * (k / 4), j = k / 4;
          const uint32_t xv = p == 0 ? x.lo[i] : p == 1 ? x.hc[i] : x.hi[i];
          const uint32_t yv = p == 0 ? y.hc[j] : p == 1 ? y.lo[j] : y.hi[j];
          acc = __fmaf_rn(f(xv), f(yv), acc);
        }
      d[m][e] = acc;
    }
  __syncwarp();
#endif
}

/* The tiling: TILE<64>'s stages of 128 rows and 64-column blocks (its value copies run as they
 * are), rows of shared memory padded: P and the value rows by 8 floats, the q' and a' slices'
 * rows of 16 by 4. */
struct tc_cfg {
  static constexpr int QT = 64, ROWS = tile_cfg<64>::ROWS, COLS = tile_cfg<64>::COLS;
  static constexpr int PL = QT + 8, VL = COLS + 8, SL = TILE_K + 4;
  static __device__ __forceinline__ int p(int row, int q) { return row * PL + q; }
};
struct tc_smem {
  static constexpr int P = FLASH_SPAN * tc_cfg::PL;
  static constexpr int QA = (tc_cfg::QT + tc_cfg::ROWS) * tc_cfg::SL;
  static constexpr int STAT = tile_smem<64>::STAT;
  static constexpr size_t BYTES = (size_t)(P + 2 * QA + STAT) * sizeof(float);
  static_assert(TILE_VROWS * tc_cfg::VL <= QA, "value slices fit the staging buffers");
  static_assert(tc_cfg::VL % 4 == 0, "value rows stay 16-byte aligned for cp.async");
};

/* Slice [k0, k0 + TILE_K) of the tile's q' rows and of the stage's a' rows into Qs[query SL + t]
 * and As[row SL + t]: row-major, so that a slice is 64-byte pieces of rows that cp.async copies
 * without registers (a fragment's loads, rows g and columns t of 20 floats, still hit 32 banks).
 * Thread tid copies float4 idx = tid + 128 i of each: row idx / 4, columns 4 (idx % 4). whole
 * (every row of the tile and stage, 16-byte aligned, the slice within k): cp.async, which the
 * caller commits and waits for; else loads and stores, with zeros past k, qn and srows. */
static __device__ __forceinline__ void tc_stage_qa(const flash_args &a, const float *qbase,
                                                   const float *abase, int qn, int srows,
                                                   int64_t k0, bool whole, float *Qs, float *As) {
  const attn_cu_score_in &si = a.si;
  const auto copy = [&](const float *src, float *dst, int n, bool vec) {
    if (whole) {
      __pipeline_memcpy_async(dst, src, 16);
      return;
    }
    float v[4];
    flash_load4(src, n, vec, v);
    *(float4 *)dst = make_float4(v[0], v[1], v[2], v[3]);
  };
#pragma unroll
  for (int i = 0; i < tc_cfg::QT * 4 / FLASH_THREADS; i++) {
    const int idx = threadIdx.x + FLASH_THREADS * i, row = idx / 4, c = idx % 4 * 4;
    copy(qbase + row * si.q.ld + k0 + c, Qs + row * tc_cfg::SL + c,
         row < qn ? flash_count4(si.k - k0 - c) : 0, a.vec_q);
  }
#pragma unroll
  for (int i = 0; i < tc_cfg::ROWS * 4 / FLASH_THREADS; i++) {
    const int idx = threadIdx.x + FLASH_THREADS * i, row = idx / 4, c = idx % 4 * 4;
    copy(abase + row * si.a.ld + k0 + c, As + row * tc_cfg::SL + c,
         row < srows ? flash_count4(si.k - k0 - c) : 0, a.vec);
  }
}

/* tile_scores on the tensor cores: the stage's scores of warp w's 32 queries x 64 rows, the
 * slices double-buffered (the next one's copies fly while the current one is used). */
static __device__ void tc_scores(const flash_args &a, const attn_cu_set &s, int64_t i0, int qn,
                                 int64_t j0, int rows, float *P, float *stage) {
  using T = tc_cfg;
  constexpr int QA = tc_smem::QA;
  const attn_cu_score_in &si = a.si;
  const int tid = threadIdx.x, w = tid / 32, g = tid % 32 / 4, t = tid % 4;
  const int qw = w % 2 * 32, rw = w / 2 * 64;
  const float *qbase = attn_cu_score_q(si, s, i0);
  int buf = 0;
  for (int r0 = 0; r0 < rows; r0 += T::ROWS) {
    const int srows = rows - r0 < T::ROWS ? rows - r0 : T::ROWS;
    const float *abase = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, j0 + r0);
    float acc[8][2][4]; /* [n-tile][m-tile][fragment] */
    tc_zero(acc);
    const bool whole = a.vec && a.vec_q && qn == T::QT && srows == T::ROWS;
    /* The buffer written here was last read two slices ago (or by the previous stage or span),
     * before a barrier every thread has passed since. */
    tc_stage_qa(a, qbase, abase, qn, srows, 0, whole && TILE_K <= si.k, stage + buf * QA,
                stage + buf * QA + T::QT * T::SL);
    __pipeline_commit();
    for (int64_t k0 = 0; k0 < si.k; k0 += TILE_K) {
      const float *Qs = stage + buf * QA, *As = Qs + T::QT * T::SL;
      __pipeline_wait_prior(0);
      __syncthreads(); /* slice k0 is in; everyone is done with slice k0 - TILE_K */
      if (k0 + TILE_K < si.k) {
        float *next = stage + (buf ^ 1) * QA;
        tc_stage_qa(a, qbase, abase, qn, srows, k0 + TILE_K, whole && k0 + 2 * TILE_K <= si.k, next,
                    next + T::QT * T::SL);
        __pipeline_commit();
      }
      /* columns past k are zeros (the copies fill them): a part slice skips a step of them */
      const int steps = si.k - k0 > 8 ? 2 : 1;
#pragma unroll
      for (int kk = 0; kk < 2; kk++) {
        if (kk == steps) break;
        tc_frag<4> fa[2];
#pragma unroll
        for (int mt = 0; mt < 2; mt++) {
          const float *x = Qs + (qw + mt * 16 + g) * T::SL + kk * 8 + t;
          tc_split(x[0], fa[mt], 0);
          tc_split(x[8 * T::SL], fa[mt], 1);
          tc_split(x[4], fa[mt], 2);
          tc_split(x[8 * T::SL + 4], fa[mt], 3);
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
          const float *y = As + (rw + nt * 8 + g) * T::SL + kk * 8 + t;
          tc_frag<2> fb;
          tc_split(y[0], fb, 0);
          tc_split(y[4], fb, 1);
          tc_step(acc[nt], fa, fb);
        }
      }
      buf ^= 1;
    }
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
      for (int nt = 0; nt < 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int q = qw + mt * 16 + g + e / 2 * 8, r = rw + nt * 8 + 2 * t + e % 2;
          P[T::p(r0 + r, q)] = flash_score(false, si.scale, acc[nt][mt][e]);
        }
  }
}

/* tile_context on the tensor cores: warp w's 32 queries x 32 columns of each 64-column block,
 * each chunk's products from zero, then its fold into the span with TILE's factors. */
static __device__ void tc_context(const flash_args &a, const attn_cu_set &s, int64_t i0, int qn,
                                  int64_t u, int rows, bool split, bool first, bool last,
                                  const float *P, float *stage, const float *ca, const float *cb,
                                  const float *st) {
  using T = tc_cfg;
  constexpr int QA = tc_smem::QA;
  const int tid = threadIdx.x, w = tid / 32, g = tid % 32 / 4, t = tid % 4;
  const int qw = w % 2 * 32, cw = w / 2 * 32;
  const int64_t dv = a.dv;
  const float *vspan = attn_cu_arow(a.V.data, a.V.ld, a.V.stride, a.si.l, s, u * FLASH_SPAN);
  for (int64_t c0 = 0; c0 < dv; c0 += T::COLS) {
    float X[2][4][4]; /* [m-tile][n-tile][fragment] */
    tc_zero(X);
    tile_value_groups<64, T::VL, QA>(
        a, vspan, c0, rows, stage, [&](int gi, int vr, const float *Vs) {
          const float *Pg = P + T::p(gi * TILE_VROWS, 0);
          float x[4][2][4]; /* [n-tile][m-tile][fragment] */
          tc_zero(x);
      /* Rows past the chunk's vr (a set's last, part chunk) hold stale weights and values:
       * both operands are zeros there. */
#pragma unroll
          for (int kk = 0; kk < TILE_VROWS / 8; kk++) {
            if (kk * 8 >= vr) break;
            const int j = kk * 8 + t;
            const bool in0 = j < vr, in1 = j + 4 < vr;
            tc_frag<4> fa[2];
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
              const float *pw = Pg + j * T::PL + qw + mt * 16 + g;
              tc_split(in0 ? pw[0] : 0.0f, fa[mt], 0);
              tc_split(in0 ? pw[8] : 0.0f, fa[mt], 1);
              tc_split(in1 ? pw[4 * T::PL] : 0.0f, fa[mt], 2);
              tc_split(in1 ? pw[4 * T::PL + 8] : 0.0f, fa[mt], 3);
            }
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
              const float *y = Vs + j * T::VL + cw + nt * 8 + g;
              tc_frag<2> fb;
              tc_split(in0 ? y[0] : 0.0f, fb, 0);
              tc_split(in1 ? y[4 * T::VL] : 0.0f, fb, 1);
              tc_step(x[nt], fa, fb);
            }
          }
#pragma unroll
          for (int mt = 0; mt < 2; mt++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
              const int q = qw + mt * 16 + g + h * 8;
              const float al = ca[tile_fold_at(q, gi)], be = cb[tile_fold_at(q, gi)];
#pragma unroll
              for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int e = 2 * h; e < 2 * h + 2; e++)
                  X[mt][nt][e] = flash_mix(X[mt][nt][e], al, x[nt][mt][e], be);
            }
        });
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int qi = qw + mt * 16 + g + h * 8;
        if (qi >= qn) continue;
        float *crow = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, a.si.l, s, i0 + qi);
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
          for (int e = 0; e < 2; e++) {
            const int64_t col = c0 + cw + nt * 8 + 2 * t + e;
            if (col < dv)
              tile_put<64>(a, s.r0 + i0 + qi, crow, qi, col, u, X[mt][nt][2 * h + e], split, first,
                           last, st);
          }
      }
  }
}

/* TILE<QT>'s kernel, or TC's (QT = 64). */
template <int QT, bool TC> struct tile_kind {
  using cfg = tile_cfg<QT>;
  using smem = tile_smem<QT>;
};
template <> struct tile_kind<64, true> {
  using cfg = tc_cfg;
  using smem = tc_smem;
};

template <int QT, bool TC>
static __global__ void __launch_bounds__(FLASH_THREADS, FLASH_BLOCK_MIN_BLOCKS)
    flash_tile_kernel(flash_args a, const int *bad) {
  extern __shared__ __align__(16) float tile_smem_f[]; /* float4 and cp.async targets */
  using SM = typename tile_kind<QT, TC>::smem;
  if (attn_cu_call_is_bad(bad)) return;
  float *const P = tile_smem_f, *const stage = P + SM::P;
  float *const ca = stage + 2 * SM::QA, *const cb = ca + QT * TILE_FOLDS;
  float *const st = cb + QT * TILE_FOLDS; /* span M, S; total M, S; total fold factors */
  const attn_cu_layout &l = a.si.l;
  const int tid = threadIdx.x;
  const int64_t per_set = (l.m + QT - 1) / QT; /* uniform batches only */
  if (tid < QT) { /* the neutral fold before a span's first chunk (tile_context), set once: the
                     spans' factors never overwrite it, and the tile loop's barriers come first */
    ca[tile_fold_at(tid, -1)] = 1.0f;
    cb[tile_fold_at(tid, -1)] = 0.0f;
  }
  for (int64_t tile = blockIdx.x; tile < a.tiles; tile += gridDim.x) {
    const int64_t i0 = tile % per_set * QT;
    const int qn = (int)(l.m - i0 < QT ? l.m - i0 : QT);
    attn_cu_set s;
    attn_cu_set_of(l, tile / per_set, &s);
    const int64_t nspans = flash_spans_of(s.valid);
    int64_t u_lo, u_hi;
    bool split;
    if (!flash_span_range(a, nspans, &u_lo, &u_hi, &split)) continue;
    __syncthreads(); /* the previous tile's readers of the shared state are done */
    if (tid < QT) {
      st[2 * QT + tid] = -INFINITY;
      st[3 * QT + tid] = 0.0f;
    }
    for (int64_t u = u_lo; u < u_hi; u++) {
      const int rows =
          (int)(s.valid - u * FLASH_SPAN < FLASH_SPAN ? s.valid - u * FLASH_SPAN : FLASH_SPAN);
      __syncthreads(); /* the previous span's context is done with P and the staging buffers */
      if constexpr (TC)
        tc_scores(a, s, i0, qn, u * FLASH_SPAN, rows, P, stage);
      else
        tile_scores<QT>(a, s, i0, qn, u * FLASH_SPAN, rows, P, stage);
      __syncthreads();
      tile_weights<QT, typename tile_kind<QT, TC>::cfg>(qn, rows, split, P, ca, cb, st);
      if constexpr (TC)
        tc_context(a, s, i0, qn, u, rows, split, u == u_lo, u == u_hi - 1, P, stage, ca, cb, st);
      else
        tile_context<QT>(a, s, i0, qn, u, rows, split, u == u_lo, u == u_hi - 1, P, stage, ca, cb,
                         st);
      if (split && tid < qn) {
        float *part = a.partial + ((s.r0 + i0 + tid) * a.spans + u) * (a.dv + 2);
        part[0] = st[tid];
        part[1] = st[QT + tid];
      }
    }
    if (split) continue;
    if (u_lo == u_hi) { /* no valid annotation: zero context */
      for (int64_t x = tid; x < (int64_t)qn * a.dv; x += FLASH_THREADS) {
        float *crow = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, l, s, i0 + x / a.dv);
        crow[x % a.dv] = 0.0f;
      }
    }
    __syncthreads(); /* the total state is complete */
    if (a.lse && tid < qn) a.lse[s.r0 + i0 + tid] = flash_lse(st[2 * QT + tid], st[3 * QT + tid]);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Launch                                                                                    */
/* ---------------------------------------------------------------------------------------- */

size_t attn_cu_flash_tile_bytes(attn_cu_flash_variant variant, int tile) {
  return variant == ATTN_CU_FLASH_TC ? tc_smem::BYTES
         : tile == 16                ? tile_smem<16>::BYTES
         : tile == 32                ? tile_smem<32>::BYTES
                                     : tile_smem<64>::BYTES;
}

/* Whether TILE<QT>'s (or TC's) shared memory fits the device's opt-in limit and the kernel
 * opted in. */
template <int QT, bool TC = false> static bool tile_opt_in(int optin) {
  constexpr size_t bytes = tile_kind<QT, TC>::smem::BYTES;
  return optin >= (int)bytes && flash_opt_in(flash_tile_kernel<QT, TC>, bytes);
}

void attn_cu_flash_tile_init(attn_cuda_t *cu, int optin) {
  cu->flash.tile = tile_opt_in<64>(optin) && tile_opt_in<32>(optin) && tile_opt_in<16>(optin);
  cu->flash.tc = cu->flash.tile && tile_opt_in<64, true>(optin); /* never gates TILE */
}

void attn_cu_flash_tile(const flash_args &a, attn_cu_flash_variant variant, int tile, size_t smem,
                        cudaStream_t stream, const int *bad) {
  const dim3 grid(attn_cu_blocks(a.tiles, 1), (unsigned)a.spans);
  if (variant == ATTN_CU_FLASH_TC)
    flash_tile_kernel<64, true><<<grid, FLASH_THREADS, smem, stream>>>(a, bad);
  else if (tile == 16)
    flash_tile_kernel<16, false><<<grid, FLASH_THREADS, smem, stream>>>(a, bad);
  else if (tile == 32)
    flash_tile_kernel<32, false><<<grid, FLASH_THREADS, smem, stream>>>(a, bad);
  else
    flash_tile_kernel<64, false><<<grid, FLASH_THREADS, smem, stream>>>(a, bad);
}
