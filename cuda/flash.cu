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
 *           Where k, dv <= 4 and no set has more than 8 annotations, the short-set kernel:
 *           a thread takes 4 rows of a group of 128 and, where those lie in one set, reads each
 *           annotation and value row once for the 4 (one chunk, so the folds come down to an
 *           add a column); 3 wide where k, dv <= 3. Its grid is one wave of resident blocks,
 *           each warp looping over groups and copying the next group's q' into shared memory
 *           (cp.async) while it computes the current one.
 *   BLOCK   a block of 128 threads per tile of 1 or 8 queries of one set. Each stage of 128
 *           annotation rows goes through shared memory in slices of 32 columns (float4 loads
 *           when the rows are 16-byte aligned); thread j scores row j against every query of
 *           the tile, a warp per chunk turns the scores into weights, one thread per query
 *           folds the chunks, and thread col accumulates context column col for every query,
 *           reading each value once per tile. The span accumulators live in shared memory,
 *           the running total in C itself. With plan.spans > 1 (few tiles, long sets), block
 *           (tile, u) does span u alone and writes its (M, S, X) to the workspace; the
 *           combine kernel folds them in order.
 *   TILE    a block of 128 threads per tile of 64 queries of one set (uniform batches,
 *           dot-like scores), register-blocked like an SGEMM so that each annotation and value
 *           read from shared memory feeds 8 queries: per span, thread (g, h) scores an 8 x 8
 *           block of (query, row) pairs in two 128-row stages (q' and a' slices of 16 columns,
 *           double-buffered through shared memory), the span's weights P [256 x 64] stay in
 *           shared memory, and the context runs in blocks of 64 columns, each thread an 8 x 4
 *           block, over value rows that cp.async brings in while the previous rows are used.
 *           Spans split across blocks as in BLOCK. Any dv: the context is never held whole.
 *           TILE<16>, for sets of fewer than 48 queries, or calls whose tiles of 64 would
 *           leave most multiprocessors idle, is the same code on tiles of 16: 8 x 4 scores a
 *           thread in one 256-row stage, P [256 x 16], and 8 x 2 outputs of 128-column blocks
 *           (tile_cfg). TILE<32> (forced only, until a GPU sweep places it) keeps TILE<64>'s
 *           8 x 8 scores and 8 x 4 outputs a thread on half the queries: twice the blocks, for
 *           calls whose tiles of 64 fill only one block a multiprocessor.
 *   WARP    a warp per query row (dv at most 256), everything in registers and no block
 *           barrier: lane j scores row j of each chunk (its chain over t, read straight from
 *           global memory with float4 loads), the chunk max is a butterfly, and the weights go
 *           to every lane by shuffle, each lane running the sum's chain (so all lanes hold the
 *           same bits) and the context chains of its 4 or 8 columns. Sets of few queries
 *           where STREAM cannot run (dv > 128, additive scores, unaligned rows). With
 *           plan.spans > 1 the warps of block (x, u) run span u. (An L2 prefetch of each
 *           warp's next chunk is gone: on the H100, whose 50 MiB L2 cannot hold 16 warps x
 *           132 SMs x 2 chunks x 16 KiB, decode read about twice its bytes from DRAM, 1.72 ms
 *           against BLOCK<1>'s 1.31.)
 *   STREAM  WARP's arithmetic and lanes, with each chunk's rows copied once into the warp's
 *           shared memory by cp.async while the previous chunk is used (dot-like scores, d <=
 *           256, dv <= 128, 16-byte aligned rows): a' read once from DRAM for both passes,
 *           and the copies, not the warps, keep the loads in flight. AUTO's choice for sets
 *           of few queries where it can run (the H100 sweep: 1.44x WARP on decode).
 *   TC      the exception to the fixed arithmetic above, run only when ATTN_CU_FLASH forces it
 *           (plans tc, splittc): TILE<64>'s spans, chunks, weights, folds and combine, with the
 *           scores' and the context's products on the tensor cores in 3xTF32 (see the TC
 *           section), so that a GPU run can say what the tensor cores are worth on the shared
 *           shape before an arithmetic chosen by the set's shape is designed around them.
 * No atomics anywhere: deterministic run to run.
 */
#include "flash.cuh"
#include "flash_plans.h"
#include "validate.cuh"

#include <cuda_pipeline.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLASH_THREADS 128
#define FLASH_CHUNK   ATTN_CU_FLASH_CHUNK
#define FLASH_SPAN    ATTN_CU_FLASH_SPAN
#define FLASH_STAGE   128 /* BLOCK: annotation rows per stage (4 chunks, one per thread) */
#define FLASH_CHUNKS  (FLASH_STAGE / FLASH_CHUNK)
#define FLASH_SLICE   32 /* BLOCK: columns of a' per shared-memory slice */
#define FLASH_SMALL   16 /* THREAD: largest k and dv */
#define FLASH_WARPS   (FLASH_THREADS / 32)
#define FLASH_WARP_DV 256 /* WARP: largest dv (8 columns a lane) */
/* The plan's thresholds. Measured on an H100 (80 GB HBM3, 132 SMs) by bench/gpu-sweep.sh, every
 * plan forced on 34 shapes (the second of two runs, commit 687a5b1: bench/README.md has its
 * table; medians in ms of each plan itself, "split" the plan with its spans on blocks of their
 * own), where an earlier H200 sweep had placed them elsewhere:
 *   - THREAD beats TILE while a thread's walk over the annotations is short: with k, dv <= 4
 *     (THREAD<4>) at n = 4 (0.0163 against 0.476) and n = 32 (0.0555 against 0.365); the
 *     16-wide THREAD at n = 16 (1 x 200000 x 16 x 16: 0.0821 against 0.141) and n = 32 (1 x
 *     200000 x 32 x 16: 0.108 against 0.163) but not at n = 64 (1 x 20000 x 64 x 8: 0.0461
 *     against 0.0338).
 *   - TILE, split when needed, beats every other plan from 16 queries a set (but WARP split on
 *     1 x 2000 x 64 x 8, a call too small to fill the GPU: 0.0112 against TILE<16>'s 0.0149,
 *     left as it is), and from 4 where the sets are long: 128 sets of 8 x 1024 x 128 TILE<16> split
 * 0.106 against BLOCK<8> split 0.166 and WARP split 0.190; 256 sets of 4 x 1024: 0.179 against WARP
 * split 0.191 and STREAM split 0.220. On short sets it loses (4096 sets of 4 x 64 x 64: 0.251
 * against STREAM 0.106), and at 2 queries a set WARP leads (2048 x 2 x 1024 x 256: 1.58 against
 *     2.37). Lengths between 64 and 1024 are not measured.
 *   - TILE<16> beats TILE<64> wherever the set has fewer than 48 queries (64 sets of 32:
 *     0.0861 against 0.104; at 48, 0.119 against 0.108) and where TILE<64> would run at most half
 *     as many blocks as the GPU has multiprocessors: 1 x 64 x 4096 x 128 (16 blocks) 0.0318
 *     against 0.0674, 1 x 256 x 4096 x 128 (64) 0.0425 against 0.0681, 1 x 4096 x 256 x 16 (64)
 *     0.0290 against 0.0349, 1 x 2000 x 64 x 8 (32) 0.0149 against 0.0170; from 96 blocks
 *     TILE<64> leads (1 x 6144 x 256 x 64: 0.0392 against 0.0657; 128, 1 x 2048 x 1024 x 256:
 *     0.108 against 0.133; 256, 1 x 1024 x 4096 x 128: 0.102 against 0.144).
 *   - STREAM, split, beats WARP and BLOCK<1> below 4 queries a set (or 16 on short sets) from 2
 *     query rows a call: decode 4096 x 1 x 1024 x 128 0.804 against WARP 1.16 and BLOCK<1> split
 *     1.31 (unsplit STREAM 0.839); 1024 x 1 x 4096 x 128 0.808 against 1.16 and 1.38; 4096 x 1
 *     x 256 x 128 0.230 against 0.300 and 0.337; 4 x 1 x 32768 x 128 0.0505 against 0.0652 and
 *     0.0769; 2 x 1 x 32768 x 128 0.0448 against 0.0594 and 0.0465. With one row (1 x 1 x
 *     262144 x 128) BLOCK<1> split leads, 0.133 against 0.142. But where STREAM's warps (rows
 *     times spans) need more than one wave of its blocks (three a multiprocessor at d = dv =
 *     128 with the values the annotations, one with values of their own: its shared memory)
 *     and WARP's fit in one (16 a multiprocessor), WARP leads: 256 x 1 x 1024 x 128 (1024
 *     warps against 792 and 2112 places), WARP split 0.0801 against STREAM split 0.0916. (The
 *     estimate takes both as split into every span; where a split does not happen, at
 *     exactly 16 warps a multiprocessor or past the partials' 128 MiB, it may keep STREAM
 *     where WARP would fit.)
 *   - Where STREAM cannot run (dv > 128, other score forms, unaligned rows), WARP from 64 query
 *     rows a call, else BLOCK<1> (H100: decode WARP 1.16 against BLOCK<1> split 1.31, 2048 x 2
 *     x 1024 x 256 1.58 against 2.30, but 4096 x 1 x 1024 x 256 WARP 3.35 (split 3.24) against
 *     BLOCK<1> split 2.98, left as it is; H200, 4 x 1 x 32768 x 128: 0.086 against 0.079).
 *   - BLOCK<8> from 8 queries a set where TILE does not run (additive scores, query offsets,
 *     short sets). */
#define FLASH_THREAD4_MAX_N 32 /* THREAD<4> first: sets of at most this many annotations */
#define FLASH_THREAD_MAX_N  32 /* the 16-wide THREAD first: likewise */
/* THREAD<4> on sets of at most FLASH_SHORT_N annotations: FLASH_SHORT_ROWS query rows a thread
 * where a warp's rows share a set; an instance for sets of at most FLASH_SHORT_N4 (the
 * walkthrough's 4) holds half the weights. */
#define FLASH_SHORT_N           8
#define FLASH_SHORT_N4          4
#define FLASH_SHORT_ROWS        4
#define FLASH_TILE_MIN_Q        16   /* TILE: queries a set from which it runs ... */
#define FLASH_TILE_LONG_MIN_Q   4    /* ... or from this many where ... */
#define FLASH_TILE_LONG_MIN_N   1024 /* ... the sets have this many annotations */
#define FLASH_BLOCK8_MIN_Q      8    /* BLOCK<8>: queries a set from which it runs */
#define FLASH_TILE64_MIN_Q      48   /* TILE<64> from here, TILE<16> below */
#define FLASH_TILE64_MIN_BLOCKS 2    /* ... and where TILE<64> has more blocks than SMs / this */
#define FLASH_STREAM_MIN_ROWS   2    /* STREAM (split) instead of WARP or BLOCK<1> from here */
#define FLASH_STREAM_MAX_BLOCKS 8  /* STREAM's blocks a multiprocessor, at most, in the estimate */
#define FLASH_WARP_MIN_ROWS     64 /* WARP instead of BLOCK<1> from this many query rows a call */
/* Splitting: below 4 tiles (BLOCK, TILE) or 16 warps (WARP) a multiprocessor; STREAM always (see
 * above). WARP on the H200: 4096 x 1 x 1024 x 128 unsplit 0.976 against 0.989 split; 1024 x 1 x
 * 4096 x 128 split 0.975 against 1.162 unsplit. */
/* Blocks per multiprocessor the register allocation must allow: THREAD (and combine) 4, so at
 * most 128 registers a thread, and 5 for THREAD<4> (at most 102: it takes 89 to 96, and
 * unbounded the dot-like one takes 121, a block fewer a multiprocessor than it ran with on the
 * H200); the short-set kernel 4 (the additive ones take up to 120 registers on sm_90, and the
 * 4-wide dot-like one on sets of up to 8, which took 96 before it loaded q' a turn ahead and
 * spills at 96 since), 5 for the 3-wide dot-like one on sets of up to 8 (96), and 6 for the
 * dot-like ones on sets of up to 4 (79 and 80 registers on sm_90; the H100's profile of the
 * walkthrough at 5 blocks: 31% theoretical occupancy, 1.4 eligible warps a scheduler, about half
 * the SM's issue rate; at 8 blocks it spills); WARP 4 (on sm_90 WARP<1> 118
 * with batches of 8 loads, 106 with 4; capped at 64 or 80 it spills); BLOCK and TILE 2 (BLOCK<1>
 * takes about 155 registers, so 3 fit; BLOCK<8> about 210, TILE<64> 229, TILE<32> 231, TILE<16>
 * 207, TC 248 on sm_90 (254 on sm_80: at the edge)). */
#define FLASH_THREAD_MIN_BLOCKS  4
#define FLASH_THREAD4_MIN_BLOCKS 5
#define FLASH_SHORT4_MIN_BLOCKS  6
#define FLASH_WARP_MIN_BLOCKS    4
#define FLASH_BLOCK_MIN_BLOCKS   2
/* BLOCK: dynamic shared memory for the span accumulators [tile x dv] (the static part is about
 * 19 KiB; the sum stays under the 48 KiB every launch may use without opting in). */
#define FLASH_ACC_BYTES (24 * 1024)
/* Largest workspace for span partials, in floats (128 MiB: the 8192-query, 4-span split of the
 * benchmark's shared-annotation shape with dv = 512 needs 64.2 MiB). */
#define FLASH_MAX_PARTIAL_FLOATS ((size_t)1 << 25)

struct flash_args {
  attn_cu_score_in si;
  int64_t dv;
  attn_cuda_cmat_t V;
  attn_cuda_mat_t C;
  float *lse;
  int64_t tiles;  /* BLOCK, TILE: tiles of queries */
  int64_t spans;  /* BLOCK, TILE, WARP: grid spans (1: walk them) */
  float *partial; /* [query rows x spans x (dv + 2)] when spans > 1 */
  bool vec;       /* a' rows can be read as float4 */
  bool vec_q;     /* TILE, WARP: q' rows can be read as float4 */
  bool vec_v;     /* TILE, WARP: value rows can be read as float4 */
};

/* ---------------------------------------------------------------------------------------- */
/* The arithmetic every variant shares                                                       */
/* ---------------------------------------------------------------------------------------- */

/* Fold factors of merging a part with max mp into a state with max M. The exps are taken either
 * way (for x = -inf they are NaN, then discarded) so that the choice is a select: a branch
 * around them would keep the exps of consecutive folds from overlapping. */
static __device__ __forceinline__ void flash_coeffs(float M, float mp, float *mn, float *alpha,
                                                    float *beta) {
  const float x = attn_cu_nanmax(M, mp);
  const float ea = expf(M - x), eb = expf(mp - x);
  *mn = x;
  *alpha = x == -INFINITY ? 1.0f : ea;
  *beta = x == -INFINITY ? 1.0f : eb;
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
/* A chunk weight before normalisation. The exp is taken either way (exp(s + inf) is inf or NaN,
 * then discarded) so that the choice is a select, not a branch around the exp. */
static __device__ __forceinline__ float flash_p(float s, float mc) {
  const float e = expf(s - mc);
  return mc == -INFINITY ? 0.0f : e;
}
static __device__ __forceinline__ float flash_out(float x, float M, float S) {
  const float c = attn_cu_weight(x, S);
  return M == -INFINITY ? 0.0f : c;
}
static __device__ __forceinline__ float flash_lse(float M, float S) {
  return M == -INFINITY ? -INFINITY : __fadd_rn(M, logf(S));
}
static __device__ __forceinline__ int64_t flash_spans_of(int64_t valid) {
  return (valid + FLASH_SPAN - 1) / FLASH_SPAN;
}

/* The spans [*lo, *hi) of a set of nspans spans that this block runs, false when none. In a
 * split call (a.spans > 1) block y runs span y alone (*split: its state goes to the partials),
 * and a set of at most one span is finished by block 0; otherwise the block walks them all. */
static __device__ __forceinline__ bool flash_span_range(const flash_args &a, int64_t nspans,
                                                        int64_t *lo, int64_t *hi, bool *split) {
  *lo = 0;
  *hi = nspans;
  *split = a.spans > 1 && nspans > 1;
  if (*split) {
    if ((int64_t)blockIdx.y >= nspans) return false;
    *lo = blockIdx.y;
    *hi = *lo + 1;
    return true;
  }
  return a.spans <= 1 || blockIdx.y == 0;
}

/* Query row r's set and index, and the spans of it this block runs (flash_span_range); false
 * when it runs none (WARP and STREAM, a warp a row). */
static __device__ __forceinline__ bool flash_row_spans(const flash_args &a, int64_t r,
                                                       attn_cu_set *s, int64_t *i, int64_t *lo,
                                                       int64_t *hi, bool *split) {
  return attn_cu_query_row(a.si.l, r, s, i) &&
         flash_span_range(a, flash_spans_of(s->valid), lo, hi, split);
}

/* A float4's four floats into out[0 .. 3]. */
static __device__ __forceinline__ void flash_unpack4(float4 x, float *out) {
  out[0] = x.x;
  out[1] = x.y;
  out[2] = x.z;
  out[3] = x.w;
}

/* Four consecutive floats of a row, of which the first n (0 .. 4) exist; vec: 16-byte aligned
 * and n is 0 or 4. */
static __device__ __forceinline__ void flash_load4(const float *p, int n, bool vec, float *out) {
  if (vec) {
    float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (n > 0) x = *(const float4 *)p;
    flash_unpack4(x, out);
    return;
  }
#pragma unroll
  for (int e = 0; e < 4; e++)
    out[e] = e < n ? p[e] : 0.0f;
}
static __device__ __forceinline__ int flash_count4(int64_t left) {
  return left <= 0 ? 0 : left >= 4 ? 4 : (int)left;
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

/* flash_fold_regs from the empty state (-inf, 0, 0), with its factors worked out instead of
 * computed: M' = m, and a = exp(-inf - m), b = exp(m - m) are 0 and 1 for finite m, 1 and 1 for
 * m = -inf, and b is NaN for m = +inf or NaN. So S' = 0 a + l b = 0 + l b and X' = 0 + x b with
 * b = 1 or NaN: the same bits as the fold (0 a only matters when it is NaN, where b is NaN too),
 * for two adds and a multiply a column instead of two exps. (b is NaN only where l is NaN
 * already, a part's max being +inf or NaN only when one of its weights is NaN; it is kept so
 * that the equality with the fold holds without that argument.) The first chunk of every span and
 * the first span of every total start this way. */
template <int K>
static __device__ __forceinline__ void flash_first(float &M, float &S, float (&X)[K], float m,
                                                   float l, const float (&x)[K]) {
  const float b = m == -INFINITY ? 1.0f : __fadd_rn(__fsub_rn(m, m), 1.0f);
  M = m;
  S = __fadd_rn(0.0f, __fmul_rn(l, b));
#pragma unroll
  for (int t = 0; t < K; t++)
    X[t] = __fadd_rn(0.0f, __fmul_rn(x[t], b));
}

/* The fold of a part into a state, by flash_first where the state is still the empty one. */
template <int K>
static __device__ __forceinline__ void flash_fold_into(bool first, float &M, float &S,
                                                       float (&X)[K], float m, float l,
                                                       const float (&x)[K]) {
  if (first)
    flash_first<K>(M, S, X, m, l, x);
  else
    flash_fold_regs<K>(M, S, X, m, l, x);
}

/* ADD: additive scores (si.additive), a template argument so that the dot-like kernel carries
 * no branch on it around every term of every row (the walkthrough's kernel is bound by the
 * instructions it issues). */
template <int K, bool ADD>
static __global__ void __launch_bounds__(FLASH_THREADS, K <= 4 ? FLASH_THREAD4_MIN_BLOCKS
                                                               : FLASH_THREAD_MIN_BLOCKS)
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
        /* The row loops are unrolled for the registers of p. With K = 4 (the walkthrough's
         * sets of 4) a short chunk leaves them at its last row instead of testing the 28
         * others; with K = 16 that costs registers (spills), so those loops test every row. */
        float p[FLASH_CHUNK];
        float mc = -INFINITY;
#pragma unroll
        for (int jj = 0; jj < FLASH_CHUNK; jj++) {
          if (K <= 4 && jj >= cnt) break;
          p[jj] = 0.0f;
          if (jj < cnt) {
            const float *ar = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, c0 + jj);
            float acc = 0.0f;
#pragma unroll
            for (int t = 0; t < K; t++)
              if (t < si.k) acc = flash_term(ADD, q[t], ar[t], ADD ? si.v[t] : 0.0f, acc);
            p[jj] = flash_score(ADD, si.scale, acc);
            mc = attn_cu_nanmax(mc, p[jj]);
          }
        }
        float lc = 0.0f, cx[K];
#pragma unroll
        for (int t = 0; t < K; t++)
          cx[t] = 0.0f;
#pragma unroll
        for (int jj = 0; jj < FLASH_CHUNK; jj++) {
          if (K <= 4 && jj >= cnt) break;
          if (jj < cnt) {
            const float pj = flash_p(p[jj], mc);
            lc = __fadd_rn(lc, pj);
            const float *vr = attn_cu_arow(a.V.data, a.V.ld, a.V.stride, si.l, s, c0 + jj);
#pragma unroll
            for (int t = 0; t < K; t++)
              if (t < a.dv) cx[t] = __fmaf_rn(pj, vr[t], cx[t]);
          }
        }
        /* The chunk into the span (flash_first where it starts it; not with K = 16, where
         * the second copy of the fold costs spills). */
        flash_fold_into<K>(K <= 4 && c0 == u0, sm, sl, sx, mc, lc, cx);
      }
      flash_fold_into<K>(K <= 4 && u0 == 0, tm, tl, tx, sm, sl, sx); /* the span into the total */
    }
    float *c = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, si.l, s, i);
#pragma unroll
    for (int t = 0; t < K; t++)
      if (t < a.dv) c[t] = flash_out(tx[t], tm, tl);
    if (a.lse) a.lse[r] = flash_lse(tm, tl);
  }
}

/* The rows of a thread that lie below `rows`: r0 + 32 rho for rho < flash_short_live. */
template <int R> static __device__ __forceinline__ int flash_short_live(int64_t r0, int64_t rows) {
  return rows - r0 >= 32 * (R - 1) + 1 ? R : (int)((rows - r0 + 31) / 32);
}

/* f(rho, t, in, p) for each element (rho, t) of the q' of the thread's rows r0 + 32 rho of set
 * s: in, whether it exists (its row below `rows` and t < k), and p, its address where it does.
 * The flag, not a null p, says which: a test of p would be a 64-bit compare of an address the
 * compiler cannot prove non-null, and a reader of shared memory that needs no addresses would
 * still compute them all for it (flash_short_read: about 150 instructions a turn on sm_90). */
template <int K, int R, class F>
static __device__ __forceinline__ void flash_short_each_q(const flash_args &a, const attn_cu_set &s,
                                                          int64_t r0, int64_t rows, F f) {
  const attn_cu_score_in &si = a.si;
  const int live = flash_short_live<R>(r0, rows), k = (int)si.k;
  const float *qp = attn_cu_score_q(si, s, r0 - s.r0);
#pragma unroll
  for (int rho = 0; rho < R; rho++)
#pragma unroll
    for (int t = 0; t < K; t++)
      f(rho, t, rho < live && t < k, qp + 32 * rho * si.q.ld + t);
}

/* That q' into registers (zeros where it does not exist). */
template <int K, int R>
static __device__ __forceinline__ void flash_short_q(const flash_args &a, const attn_cu_set &s,
                                                     int64_t r0, int64_t rows, float (&q)[R][K]) {
  flash_short_each_q<K, R>(
      a, s, r0, rows, [&](int rho, int t, bool in, const float *p) { q[rho][t] = in ? *p : 0.0f; });
}

/* flash_short_q's loads as copies into shared memory that fly while the thread computes (cp.async,
 * 4 bytes each: no registers held): element (rho, t) of the thread goes to qs[(rho K + t) T]
 * (T = FLASH_THREADS; qs is the thread's first slot, so that a warp's copies and reads of one
 * element are 32 consecutive words); nothing where it does not exist (flash_short_read makes
 * those zeros). The caller commits and waits. */
template <int K, int R>
static __device__ __forceinline__ void flash_short_fetch(const flash_args &a, const attn_cu_set &s,
                                                         int64_t r0, int64_t rows, float *qs) {
  flash_short_each_q<K, R>(a, s, r0, rows, [&](int rho, int t, bool in, const float *p) {
    if (in) __pipeline_memcpy_async(qs + (rho * K + t) * FLASH_THREADS, p, sizeof(float));
  });
}
/* The q' flash_short_fetch copied (same s, r0 and rows), once the thread has waited for it. */
template <int K, int R>
static __device__ __forceinline__ void flash_short_read(const flash_args &a, const attn_cu_set &s,
                                                        int64_t r0, int64_t rows, const float *qs,
                                                        float (&q)[R][K]) {
  flash_short_each_q<K, R>(a, s, r0, rows, [&](int rho, int t, bool in, const float *) {
    q[rho][t] = in ? qs[(rho * K + t) * FLASH_THREADS] : 0.0f;
  });
}

/* R query rows of set s, r0 + 32 rho for rho < R (those below `rows`), from their q' (q), whose
 * valid length is at most N <= FLASH_CHUNK: one chunk in one span, so each annotation and value
 * row is read once for the R queries, and the two folds from the empty state (chunk into span,
 * span into total) come down to one add a column. With the chunk's (m, l, x), flash_first's
 * factor b is 1 for m finite or -inf, so the first fold gives (m, 0 + l, 0 + x): 0 + l = l, l
 * being a sum of weights >= +0 begun at +0 (never -0), while 0 + x is kept, because x, an fma
 * chain, is -0 where its last product underflows below zero (p v > -2^-150), and 0 + -0 = +0.
 * The second fold then changes nothing (0 + x is never -0). b is NaN only for m = +inf or NaN,
 * where some weight exp(s - m) is NaN, so l is NaN already and the outputs, x / l and m + log l,
 * are NaN either way. The same arithmetic, in the same order, as flash_thread_kernel. */
template <int K, bool ADD, int R, int N>
static __device__ __forceinline__ void flash_thread_rows(const flash_args &a, const attn_cu_set &s,
                                                         int64_t r0, int64_t rows,
                                                         const float (&q)[R][K]) {
  static_assert(N <= FLASH_CHUNK, "one chunk");
  const attn_cu_score_in &si = a.si;
  const int cnt = (int)s.valid, k = (int)si.k, dv = (int)a.dv; /* cnt <= N; k, dv <= K */
  const int live = flash_short_live<R>(r0, rows);              /* this thread's rows: rho < live */
  const int64_t i0 = r0 - s.r0;
  /* A set's rows are ld apart in both layouts. */
  const float *a0 = attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, 0);
  const float *v0 = attn_cu_arow(a.V.data, a.V.ld, a.V.stride, si.l, s, 0);
  float p[R][N], mc[R];
#pragma unroll
  for (int rho = 0; rho < R; rho++)
    mc[rho] = -INFINITY;
#pragma unroll
  for (int jj = 0; jj < N; jj++) {
    if (jj >= cnt) break;
    const float *ar = a0 + jj * si.a.ld;
    float av[K];
#pragma unroll
    for (int t = 0; t < K; t++)
      av[t] = t < k ? ar[t] : 0.0f;
#pragma unroll
    for (int rho = 0; rho < R; rho++) {
      float acc = 0.0f;
#pragma unroll
      for (int t = 0; t < K; t++)
        if (t < k) acc = flash_term(ADD, q[rho][t], av[t], ADD ? si.v[t] : 0.0f, acc);
      p[rho][jj] = flash_score(ADD, si.scale, acc);
      mc[rho] = attn_cu_nanmax(mc[rho], p[rho][jj]);
    }
  }
  float lc[R], cx[R][K];
#pragma unroll
  for (int rho = 0; rho < R; rho++) {
    lc[rho] = 0.0f;
#pragma unroll
    for (int t = 0; t < K; t++)
      cx[rho][t] = 0.0f;
  }
#pragma unroll
  for (int jj = 0; jj < N; jj++) {
    if (jj >= cnt) break;
    const float *vr = v0 + jj * a.V.ld;
    float vv[K];
#pragma unroll
    for (int t = 0; t < K; t++)
      vv[t] = t < dv ? vr[t] : 0.0f;
#pragma unroll
    for (int rho = 0; rho < R; rho++) {
      const float pj = flash_p(p[rho][jj], mc[rho]);
      lc[rho] = __fadd_rn(lc[rho], pj);
#pragma unroll
      for (int t = 0; t < K; t++)
        if (t < dv) cx[rho][t] = __fmaf_rn(pj, vv[t], cx[rho][t]);
    }
  }
  /* Every column's quotient first, the stores after: the row's divisions then share one
   * reciprocal instead of each sitting behind its column's test. */
  float *c = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, si.l, s, i0);
#pragma unroll
  for (int rho = 0; rho < R; rho++) {
    if (rho >= live) break;
    float out[K];
#pragma unroll
    for (int t = 0; t < K; t++)
      out[t] = flash_out(__fadd_rn(0.0f, cx[rho][t]), mc[rho], lc[rho]);
#pragma unroll
    for (int t = 0; t < K; t++)
      if (t < dv) c[32 * rho * a.C.ld + t] = out[t];
    if (a.lse) a.lse[r0 + 32 * rho] = flash_lse(mc[rho], lc[rho]);
  }
}

/* The index of a short-set kernel instance in attn_cuda_t::short_blocks. */
template <int K, bool ADD, int N> static constexpr int short_index() {
  return (K == 4) * 4 + ADD * 2 + (N == FLASH_SHORT_N);
}

/* Whether the R x 32 query rows from r0 (those below `rows`) lie in one set, then s. */
static __device__ __forceinline__ bool flash_short_whole(const attn_cu_layout &l, int64_t r0,
                                                         int64_t rows, int R, attn_cu_set *s) {
  const int64_t last = (r0 + 32 * R < rows ? r0 + 32 * R : rows) - 1;
  attn_cu_set t;
  int64_t i;
  return attn_cu_query_row(l, r0, s, &i) && attn_cu_query_row(l, last, &t, &i) && s->b == t.b;
}

/* The turns of flash_short_kernel's warp from its first group w (see there). whole_at(r0, &s):
 * whether the group's rows from r0 lie in one set, then s. A warp's q' is copied into shared memory
 * one turn of the loop ahead, before the previous turn's rows run, so that its trip to memory
 * overlaps their arithmetic (the grid is one wave of resident blocks: launch_short). Two buffers
 * (qbuf): the copies a turn issues land in the one its thread read on the turn before. The set of a
 * turn's rows is looked up again on the turn (rather than kept from the copy's) so that it is not
 * held in registers while the rows run. */
template <int K, bool ADD, int N, class W>
static __device__ __forceinline__ void
flash_short_turns(const flash_args &a, int64_t w,
                  float (*qbuf)[FLASH_SHORT_ROWS * K * FLASH_THREADS], W whole_at) {
  const int R = FLASH_SHORT_ROWS;
  const attn_cu_layout &l = a.si.l;
  const int64_t rows = attn_cu_query_rows(l);
  const int64_t warps = (rows + 32 * R - 1) / (32 * R);
  const int lane = (int)(threadIdx.x & 31);
  const int64_t step = (int64_t)gridDim.x * blockDim.x / 32;
  {
    attn_cu_set s;
    if (whole_at(w * 32 * R, &s))
      flash_short_fetch<K, R>(a, s, w * 32 * R + lane, rows, qbuf[0] + threadIdx.x);
    __pipeline_commit();
  }
  for (int turn = 0; w < warps; w += step, turn ^= 1) {
    const int64_t r0 = w * 32 * R; /* the same in every lane: so are the choices below */
    __pipeline_wait_prior(0);      /* this turn's q' is in ... */
    __syncwarp(); /* ... and the reads below stay after the wait (a fence for the compiler, which
                     the wait's asm is not; every choice in this loop is the whole warp's) */
    {
      attn_cu_set sn;
      if (w + step < warps && whole_at(r0 + 32 * R * step, &sn))
        flash_short_fetch<K, R>(a, sn, r0 + 32 * R * step + lane, rows,
                                qbuf[turn ^ 1] + threadIdx.x);
      __pipeline_commit();
    }
    attn_cu_set s;
    if (whole_at(r0, &s)) {
      float q[R][K];
      flash_short_read<K, R>(a, s, r0 + lane, rows, qbuf[turn] + threadIdx.x, q);
      flash_thread_rows<K, ADD, R, N>(a, s, r0 + lane, rows, q);
    } else {
#pragma unroll 1
      for (int rho = 0; rho < R; rho++) {
        const int64_t r = r0 + 32 * rho + lane;
        attn_cu_set t;
        int64_t i;
        if (r < rows && attn_cu_query_row(l, r, &t, &i)) {
          float q1[1][K];
          flash_short_q<K, 1>(a, t, r, rows, q1);
          flash_thread_rows<K, ADD, 1, N>(a, t, r, rows, q1);
        }
      }
    }
  }
}

/* The THREAD variant for sets of at most N annotations (k, dv <= K): group w of query rows is
 * [32 R w, 32 R (w + 1)) with R = FLASH_SHORT_ROWS; the warp that takes it (warp w of the grid,
 * then w + the grid's warps, ...) gives lane l rows 32 R w + 32 rho + l (each load and store
 * instruction of the warp covers 32 consecutive rows). A group whose rows lie in one set runs
 * them together, reading each annotation and value row once for R queries (the walkthrough's
 * 10^6 queries against one set of 4); a group across sets runs its rows one at a time. K = 3 for k,
 * dv <= 3 (the walkthrough's d = 3: a quarter of the fmas and quotients fewer than K = 4 computes
 * with zeros), else 4. The grid is one wave of resident blocks (launch_short) and each warp loops
 * over its groups of rows, copying the next group's q' into shared memory before it runs the
 * current one (flash_short_turns). Before (a block for every 4 warps' rows, each warp one group)
 * a warp's single load of q' waited for DRAM with nothing of its own to overlap: on the H100 the
 * walkthrough's kernel issued at about half the SM's rate with DRAM 28% busy (bench/README.md).
 * On sets of up to FLASH_SHORT_N4 with dot-like scores, a uniform batch of one set (the
 * walkthrough's) has a loop of its own, in which every group is whole and no turn looks its set
 * up: in the general loop the two lookups a turn (the next group's and the current one's, each
 * of its first and last row) cost about 140 instructions a thread on sm_90, a seventh of the
 * walkthrough's turn. The other instances keep one loop: a second one raised the additive
 * 3-wide one on sets of up to 4 from 93 registers to 102 (a block fewer a multiprocessor), and
 * the dot-like 3-wide one on sets of up to 8 spilled on sm_80; their turns have twice the
 * arithmetic (sets of 8) or a tanh a term, beside which the lookups weigh less. Not yet measured
 * on a GPU. */
template <int K, bool ADD, int N>
static __global__ void __launch_bounds__(FLASH_THREADS, ADD ? FLASH_THREAD_MIN_BLOCKS
                                                        : N <= FLASH_SHORT_N4
                                                            ? FLASH_SHORT4_MIN_BLOCKS
                                                        : K <= 3 ? FLASH_THREAD4_MIN_BLOCKS
                                                                 : FLASH_THREAD_MIN_BLOCKS)
    flash_short_kernel(flash_args a, const int *bad) {
  if (attn_cu_call_is_bad(bad)) return;
  const int R = FLASH_SHORT_ROWS;
  const attn_cu_layout &l = a.si.l;
  const int64_t rows = attn_cu_query_rows(l);
  const int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  if (w >= (rows + 32 * R - 1) / (32 * R)) return; /* flash_short_turns' warps */
  __shared__ float qbuf[2][R * K * FLASH_THREADS];
  if (!ADD && N <= FLASH_SHORT_N4 && !l.qo && l.batch == 1) {
    flash_short_turns<K, ADD, N>(a, w, qbuf, [&](int64_t, attn_cu_set *s) {
      attn_cu_set_of(l, 0, s);
      return true;
    });
  } else {
    flash_short_turns<K, ADD, N>(a, w, qbuf, [&](int64_t r0, attn_cu_set *s) {
      return flash_short_whole(l, r0, rows, R, s);
    });
  }
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
 * scores (k' = d, a multiple of 4, at most STREAM_MAX_K), dv at most 128 (4 columns a lane),
 * rows that are 16-byte aligned. */
#define STREAM_WARPS   2 /* a block's warps: shared memory, not warps, keeps the copies flying */
#define STREAM_THREADS (32 * STREAM_WARPS)
#define STREAM_MAX_K   256
#define STREAM_MAX_DV  128

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

static __global__ void __launch_bounds__(STREAM_THREADS)
    flash_stream_kernel(flash_args a, const int *bad) {
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
  for (int64_t r = (int64_t)blockIdx.x * STREAM_WARPS + threadIdx.x / 32; r < rows;
       r += (int64_t)gridDim.x * STREAM_WARPS) {
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
    float tm = -INFINITY, tl = 0.0f, tx[4], sm = -INFINITY, sl = 0.0f, sx[4];
#pragma unroll
    for (int e = 0; e < 4; e++) {
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
      float lc = 0.0f, cx[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      const bool mycols = 4 * lane < dv;
#pragma unroll 4
      for (int j = 0; j < cnt; j++) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
        const float4 v = mycols ? *(const float4 *)(Vs + j * sv + 4 * lane)
                                : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        lc = __fadd_rn(lc, pj);
        cx[0] = __fmaf_rn(pj, v.x, cx[0]);
        cx[1] = __fmaf_rn(pj, v.y, cx[1]);
        cx[2] = __fmaf_rn(pj, v.z, cx[2]);
        cx[3] = __fmaf_rn(pj, v.w, cx[3]);
      }
      const int64_t u = c0 / FLASH_SPAN;
      flash_fold_into<4>(c0 % FLASH_SPAN == 0, sm, sl, sx, mc, lc,
                         cx); /* the chunk into the span */
      const int64_t uend = (u + 1) * FLASH_SPAN < j_hi ? (u + 1) * FLASH_SPAN : j_hi;
      if (c0 + FLASH_CHUNK < uend) continue; /* the span goes on */
      if (split) /* the span's state to the partials (u_hi = u_lo + 1) */
        warp_write_partial<4>(a, r, u, sm, sl, sx);
      else /* the span into the total */
        flash_fold_into<4>(u == u_lo, tm, tl, tx, sm, sl, sx);
    }
    if (!split) warp_write_out<4>(a, s, i, r, tm, tl, tx);
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

/* acc[qi] = the fma chain, over the chunk's rows j in order, of weight sh.p[qi][c0 + j] times
 * value v[j * ld]. A full chunk runs with a fixed trip count so that its value loads go out 8 at
 * a time ahead of their fmas instead of one latency a row (same fmas, same order). */
template <int QT>
static __device__ __forceinline__ void flash_chunk_context(const float *v, int64_t ld,
                                                           const flash_shared<QT> &sh, int c0,
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
static __device__ void flash_tile(const flash_args &a, const attn_cu_set &s, int64_t i0, int qn,
                                  flash_shared<QT> &sh, float *span_x) {
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
          flash_chunk_context(vcol + c0 * a.V.ld, a.V.ld, sh, c0, cnt, acc);
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
/* Combine: the span partials of a split call, folded in order                               */
/* ---------------------------------------------------------------------------------------- */

/* A warp per (query row, group of 32 NC context columns): lane e takes columns col0 + 32 c of
 * the group, col0 = 32 NC g + e (the row's lse: g = 0, e = 0). The spans come W at a time, lane
 * e holding span u0 + e's (m, l); see flash_combine_kernel for W and NC.
 *
 * A fold's factors depend only on the chain of maxima, M_u = nanmax(M_{u-1}, m_u), and nanmax
 * (the larger, a later one on ties, the earliest NaN) is associative bit for bit, NaN payloads
 * and zero signs included. So a prefix nanmax across the lanes gives each lane the M_{u-1} the
 * sequential fold has before its span, and each lane takes its span's two exps at once; only
 * the folds of S and X, which round at every step, then run in order, a multiply and an add a
 * span. (Before: a block per row, every thread taking both exps of every span itself, 14.9 us
 * for the long shape's 128 spans of 16 rows on an H200, 16 blocks busy.) */

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

/* ---------------------------------------------------------------------------------------- */
/* Plan and launch                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* Dynamic shared memory of a TILE block of `tile` queries (64, 32 or 16), or a TC block. */
static size_t tile_bytes(attn_cu_flash_variant variant, int tile) {
  return variant == ATTN_CU_FLASH_TC ? tc_smem::BYTES
         : tile == 16                ? tile_smem<16>::BYTES
         : tile == 32                ? tile_smem<32>::BYTES
                                     : tile_smem<64>::BYTES;
}

static int64_t tiles_of(const attn_cu_layout &l, int tile) {
  return l.qo ? (l.m + tile - 1) / tile : l.batch * ((l.m + tile - 1) / tile);
}

/* Whether a 16-byte aligned float4 can read every 4-group of rows of width w that are ld apart
 * (and stride apart between sets, unless the sets are addressed by offsets). */
static bool rows_vec(const float *data, int64_t w, int64_t ld, int64_t stride, bool offsets) {
  return w % 4 == 0 && ld % 4 == 0 && (offsets || stride % 4 == 0) && (uintptr_t)data % 16 == 0;
}

/* The plan ATTN_CU_FLASH forces (tests only): known is false when the variable is unset, empty
 * or names no plan; strict when the name ends in '!'. */
struct flash_forced {
  bool known, strict, split;
  attn_cu_flash_variant variant;
  int tile;
};
/* The plans of flash_plans.h by name: what ATTN_CU_FLASH names, and attn_cuda_flash_plan_name
 * gives. */
static const struct {
  const char *name;
  attn_cu_flash_variant variant;
  int tile;
  bool split;
} flash_plan_rows[] = {
#define FLASH_PLAN_ROW(name, variant, tile, split)                                                 \
  {#name, ATTN_CU_FLASH_##variant, tile, split != 0},
    ATTN_FLASH_PLANS(FLASH_PLAN_ROW) ATTN_FLASH_TC_PLANS(FLASH_PLAN_ROW)
#undef FLASH_PLAN_ROW
};

static flash_forced flash_force() {
  flash_forced f = {false, false, false, ATTN_CU_FLASH_BLOCK, 1};
  const char *e = getenv("ATTN_CU_FLASH");
  char name[16];
  const size_t n = e ? strlen(e) : 0;
  if (n == 0 || n >= sizeof name) return f;
  memcpy(name, e, n + 1);
  f.strict = name[n - 1] == '!';
  if (f.strict) name[n - 1] = '\0';
  for (const auto &plan : flash_plan_rows)
    if (!strcmp(name, plan.name)) {
      f.known = true;
      f.variant = plan.variant;
      f.tile = plan.tile;
      f.split = plan.split;
    }
  return f;
}

attn_cuda_status_t attn_cu_flash_check_forced(attn_cuda_t *cu, const attn_cuda_problem_t *p,
                                              const attn_cu_flash_plan *plan) {
  const flash_forced f = flash_force();
  if (!f.strict || p->op != ATTN_CUDA_OP_FORWARD || p->scores.data || p->weights.data ||
      (p->algo != ATTN_CUDA_ALGO_AUTO && p->algo != ATTN_CUDA_ALGO_FLASH))
    return ATTN_CUDA_OK;
  if (f.known && plan && plan->variant == f.variant &&
      (f.variant == ATTN_CU_FLASH_THREAD || plan->tile == f.tile))
    return ATTN_CUDA_OK;
  snprintf(cu->message, sizeof cu->message,
           "cuda: ATTN_CU_FLASH=%s forces a flash plan that cannot run this call",
           getenv("ATTN_CU_FLASH"));
  return ATTN_CUDA_ERR_RUNTIME;
}

/* Lets `kernel` launch with up to `bytes` of dynamic shared memory and asks for the largest
 * shared-memory carveout; false where the device or driver refuses. */
template <class Kernel> static bool flash_opt_in(Kernel *kernel, size_t bytes) {
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes) !=
      cudaSuccess)
    return false;
  (void)cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                             cudaSharedmemCarveoutMaxShared);
  return true;
}

/* Whether TILE<QT>'s (or TC's) shared memory fits the device's opt-in limit and the kernel
 * opted in. */
template <int QT, bool TC = false> static bool tile_opt_in(int optin) {
  constexpr size_t bytes = tile_kind<QT, TC>::smem::BYTES;
  return optin >= (int)bytes && flash_opt_in(flash_tile_kernel<QT, TC>, bytes);
}

/* Resident blocks a multiprocessor of one short-set kernel instance (0 where the runtime does not
 * say: its launches then take a block for each of their rows' groups). */
template <int K, bool ADD, int N> static void short_occupancy(attn_cuda_t *cu) {
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, flash_short_kernel<K, ADD, N>,
                                                    FLASH_THREADS, 0) != cudaSuccess)
    blocks = 0;
  cu->short_blocks[short_index<K, ADD, N>()] = blocks;
}
template <int K> static void short_occupancies(attn_cuda_t *cu) {
  short_occupancy<K, false, FLASH_SHORT_N4>(cu);
  short_occupancy<K, false, FLASH_SHORT_N>(cu);
  short_occupancy<K, true, FLASH_SHORT_N4>(cu);
  short_occupancy<K, true, FLASH_SHORT_N>(cu);
}

attn_cuda_status_t attn_cu_flash_init(attn_cuda_t *cu) {
  short_occupancies<3>(cu);
  short_occupancies<4>(cu);
  int optin = 0;
  ATTN_CU_CHECK(
      cu, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, cu->device));
  /* The TILE kernels need more than the 48 KiB any launch may use: opt in, and ask for the
   * largest shared-memory carveout so that two blocks fit a multiprocessor. A device or driver
   * that refuses runs the other variants instead. */
  cu->flash.tile = tile_opt_in<64>(optin) && tile_opt_in<32>(optin) && tile_opt_in<16>(optin);
  cu->flash.tc = cu->flash.tile && tile_opt_in<64, true>(optin); /* never gates TILE */
  /* STREAM: as much as its widest call takes (k' = 256, dv = 128 of their own), or the device's
   * limit; a call that needs more than that runs another variant. */
  const size_t stream_max =
      STREAM_WARPS * stream_warp_floats(STREAM_MAX_K, STREAM_MAX_DV, true) * sizeof(float);
  const size_t stream_smem = stream_max < (size_t)optin ? stream_max : (size_t)optin;
  cu->flash.stream_smem = flash_opt_in(flash_stream_kernel, stream_smem) ? stream_smem : 0;
  int per_sm = 0, reserved = 0;
  if (cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, cu->device) !=
          cudaSuccess ||
      cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, cu->device) !=
          cudaSuccess)
    per_sm = reserved = 0; /* unknown: the plan counts one STREAM block a multiprocessor */
  cu->flash.smem_per_sm = (size_t)per_sm;
  cu->flash.smem_reserved = (size_t)reserved;
  (void)cudaGetLastError(); /* a refusal above is an answer, not an error to leave behind */
  return ATTN_CUDA_OK;
}

/* Shared memory STREAM needs for a call (0: it cannot run it: additive or general scores, d or
 * dv too wide or not a multiple of 4, rows not 16-byte aligned). */
static size_t stream_smem_of(const attn_cuda_problem_t *p) {
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
  return STREAM_WARPS * stream_warp_floats(p->d, p->dv, own_v) * sizeof(float);
}

/* Span partials for `spans` grid spans, or 0 when they do not fit. */
static size_t partial_floats(const attn_cuda_problem_t *p, int64_t spans) {
  int64_t f;
  if (__builtin_mul_overflow(attn_cu_query_rows(attn_cu_layout_of(p)), spans, &f) ||
      __builtin_mul_overflow(f, p->dv + 2, &f) || (size_t)f > FLASH_MAX_PARTIAL_FLOATS)
    return 0;
  return (size_t)f;
}

/* The plan of p on a device described by dev: attn_cu_flash_plan_of's body, which tests reach
 * through attn_cuda_flash_plan_name with a device of their own. */
static bool flash_plan_for(const attn_cuda_problem_t *p, const attn_cuda_flash_device_t &dev,
                           attn_cu_flash_plan *plan) {
  if (p->op != ATTN_CUDA_OP_FORWARD || p->scores.data || p->weights.data) return false;
  const attn_cu_layout l = attn_cu_layout_of(p);
  const int64_t sms = dev.sm_count > 0 ? dev.sm_count : 1;
  const int64_t k = p->kind == ATTN_CUDA_SCORE_ADDITIVE ? p->h : p->d;
  const int64_t rows = attn_cu_query_rows(l);
  const int64_t per_set = l.qo ? (p->batch > 0 ? p->m / p->batch : 0) : p->m;
  const bool small = k <= FLASH_SMALL && p->dv <= FLASH_SMALL;
  const bool block1 = p->dv <= FLASH_ACC_BYTES / (int64_t)sizeof(float);
  const bool block8 = p->dv <= FLASH_ACC_BYTES / (int64_t)(8 * sizeof(float));
  const bool tile = dev.tile && !l.qo && p->kind != ATTN_CUDA_SCORE_ADDITIVE;
  const bool warp = p->dv <= FLASH_WARP_DV; /* implies block1 */
  const size_t stream_smem = stream_smem_of(p);
  const bool stream = stream_smem > 0 && stream_smem <= dev.stream_smem;
  if (!small && !block1 && !tile) return false;

  /* Default plan (thresholds above): THREAD for many small queries against a handful of
   * annotations; TILE where a set has 16 queries or more to share each annotation read, or 4
   * on long sets (and for any dv too wide for BLOCK), in tiles of 16 below 48 queries a set or
   * where tiles of 64 would leave most multiprocessors idle; THREAD for the other small queries
   * TILE cannot run; BLOCK tiles of 8 queries where a set has 8 or more; below that STREAM,
   * split, where it can run and the call has 2 query rows (but WARP where STREAM would take a
   * second wave that WARP does not), else WARP (dv <= 256) when the call has the rows to fill
   * the GPU with warps, else BLOCK tiles of 1; spans split across blocks when the tiles alone
   * would leave most of the GPU idle. */
  const bool many = rows >= 16 * sms;
  const int64_t thread_n = k <= 4 && p->dv <= 4 ? FLASH_THREAD4_MAX_N : FLASH_THREAD_MAX_N;
  const int64_t span_bound = (p->n + FLASH_SPAN - 1) / FLASH_SPAN;
  const bool tile_q = per_set >= FLASH_TILE_MIN_Q ||
                      (per_set >= FLASH_TILE_LONG_MIN_Q && p->n >= FLASH_TILE_LONG_MIN_N);
  const bool warp_rows = warp && rows >= FLASH_WARP_MIN_ROWS;
  const int64_t warp_places = sms * FLASH_WARP_MIN_BLOCKS * FLASH_WARPS;
  bool stream_first = stream && rows >= FLASH_STREAM_MIN_ROWS;
  if (stream_first && warp_rows && rows <= warp_places && span_bound <= 65535) {
    /* the warps STREAM would run (split), against the places its blocks and WARP's leave */
    const int64_t warps = rows * span_bound;
    const size_t per_block = stream_smem + dev.smem_reserved;
    const int64_t fit = (int64_t)(dev.smem_per_sm / per_block);
    const int64_t stream_blocks = fit < 1                         ? 1
                                  : fit > FLASH_STREAM_MAX_BLOCKS ? FLASH_STREAM_MAX_BLOCKS
                                                                  : fit;
    stream_first = warps <= sms * stream_blocks * STREAM_WARPS || warps > warp_places;
  }
  plan->variant = small && many && p->n <= thread_n         ? ATTN_CU_FLASH_THREAD
                  : tile && (tile_q || !block1)             ? ATTN_CU_FLASH_TILE
                  : small && (many || !block1)              ? ATTN_CU_FLASH_THREAD
                  : per_set >= FLASH_BLOCK8_MIN_Q && block8 ? ATTN_CU_FLASH_BLOCK
                  : stream_first                            ? ATTN_CU_FLASH_STREAM
                  : warp_rows                               ? ATTN_CU_FLASH_WARP
                                                            : ATTN_CU_FLASH_BLOCK;
  if (plan->variant == ATTN_CU_FLASH_TILE) {
    /* TILE<64>'s blocks: its tiles, times the spans where it would split them */
    const int64_t tiles64 = tiles_of(l, 64);
    const int64_t blocks64 =
        tiles64 < 4 * sms && span_bound <= 65535 ? tiles64 * span_bound : tiles64;
    plan->tile =
        per_set >= FLASH_TILE64_MIN_Q && blocks64 * FLASH_TILE64_MIN_BLOCKS > sms ? 64 : 16;
  } else {
    plan->tile =
        plan->variant == ATTN_CU_FLASH_BLOCK && per_set >= FLASH_BLOCK8_MIN_Q && block8 ? 8 : 1;
  }

  bool split = false, forced_split = false;
  const flash_forced f = flash_force();
  if (f.known) {
    const bool runs = f.variant == ATTN_CU_FLASH_THREAD   ? small
                      : f.variant == ATTN_CU_FLASH_TILE   ? tile
                      : f.variant == ATTN_CU_FLASH_TC     ? tile && dev.tc
                      : f.variant == ATTN_CU_FLASH_WARP   ? warp
                      : f.variant == ATTN_CU_FLASH_STREAM ? stream
                                                          : block1 && (f.tile == 1 || block8);
    if (runs) {
      plan->variant = f.variant;
      if (f.variant != ATTN_CU_FLASH_THREAD) {
        plan->tile = f.tile;
        forced_split = true;
        split = f.split;
      }
    }
  }
  if (!forced_split)
    split =
        plan->variant == ATTN_CU_FLASH_STREAM ||
        tiles_of(l, plan->tile) < 4 * sms * (plan->variant == ATTN_CU_FLASH_WARP ? FLASH_WARPS : 1);

  plan->smem = plan->variant == ATTN_CU_FLASH_STREAM ? stream_smem
               : plan->variant == ATTN_CU_FLASH_TILE || plan->variant == ATTN_CU_FLASH_TC
                   ? tile_bytes(plan->variant, plan->tile)
               : plan->variant == ATTN_CU_FLASH_BLOCK
                   ? (size_t)plan->tile * (size_t)p->dv * sizeof(float)
                   : 0;
  plan->spans = 1;
  plan->partial_floats = 0;
  if (plan->variant != ATTN_CU_FLASH_THREAD && split && span_bound > 1 && span_bound <= 65535) {
    const size_t floats = partial_floats(p, span_bound);
    if (floats > 0) {
      plan->spans = span_bound;
      plan->partial_floats = floats;
    }
  }
  return true;
}

bool attn_cu_flash_plan_of(const attn_cuda_problem_t *p, const attn_cuda_t *cu,
                           attn_cu_flash_plan *plan) {
  return flash_plan_for(p, cu->flash, plan);
}

extern "C" const char *attn_cuda_flash_plan_name(const attn_cuda_problem_t *p,
                                                 const attn_cuda_flash_device_t *device) {
  attn_cu_flash_plan plan;
  if (!flash_plan_for(p, *device, &plan)) return "";
  for (const auto &row : flash_plan_rows)
    if (plan.variant == row.variant &&
        (plan.variant == ATTN_CU_FLASH_THREAD || plan.tile == row.tile) &&
        (plan.spans > 1) == row.split)
      return row.name;
  return "?"; /* a plan flash_plans.h does not list: the test that asks fails on it */
}

/* One instance of the short-set THREAD kernel: a block for each 128 x FLASH_SHORT_ROWS query
 * rows, but no more than stay resident at once (its warps then loop, each loading its next rows'
 * q' ahead: flash_short_kernel). */
template <int K, bool ADD, int N>
static void launch_short_instance(const attn_cuda_t *cu, const flash_args &a, cudaStream_t stream,
                                  const int *bad) {
  unsigned blocks = attn_cu_blocks(attn_cu_query_rows(a.si.l), FLASH_THREADS * FLASH_SHORT_ROWS);
  const int64_t wave = (int64_t)cu->flash.sm_count * cu->short_blocks[short_index<K, ADD, N>()];
  if (wave > 0 && blocks > wave) blocks = (unsigned)wave;
  flash_short_kernel<K, ADD, N><<<blocks, FLASH_THREADS, 0, stream>>>(a, bad);
}

/* The short-set THREAD kernel of width K for the call's score form and set length. */
template <int K>
static void launch_short(const attn_cuda_t *cu, const flash_args &a, cudaStream_t stream,
                         const int *bad) {
  const bool n4 = a.si.l.n <= FLASH_SHORT_N4;
  if (a.si.additive && n4)
    launch_short_instance<K, true, FLASH_SHORT_N4>(cu, a, stream, bad);
  else if (a.si.additive)
    launch_short_instance<K, true, FLASH_SHORT_N>(cu, a, stream, bad);
  else if (n4)
    launch_short_instance<K, false, FLASH_SHORT_N4>(cu, a, stream, bad);
  else
    launch_short_instance<K, false, FLASH_SHORT_N>(cu, a, stream, bad);
}

/* The THREAD kernel of width K for the call's score form. */
template <int K>
static void launch_thread(const flash_args &a, unsigned blocks, cudaStream_t stream,
                          const int *bad) {
  if (a.si.additive)
    flash_thread_kernel<K, true><<<blocks, FLASH_THREADS, 0, stream>>>(a, bad);
  else
    flash_thread_kernel<K, false><<<blocks, FLASH_THREADS, 0, stream>>>(a, bad);
}

attn_cuda_status_t attn_cu_flash_forward(attn_cuda_t *cu, cudaStream_t stream,
                                         const attn_cu_score_in &si, int64_t dv, attn_cuda_cmat_t V,
                                         attn_cuda_mat_t C, float *lse, const int *bad,
                                         const attn_cu_flash_plan &plan, float *partials) {
  const int64_t rows = attn_cu_query_rows(si.l);
  if (rows == 0) return ATTN_CUDA_OK;
  flash_args a = {si,         dv,       V,     C,     lse,  tiles_of(si.l, plan.tile),
                  plan.spans, partials, false, false, false};
  a.vec = rows_vec(si.a.data, si.k, si.a.ld, si.a.stride, si.l.ao != NULL);
  a.vec_q = rows_vec(si.q.data, si.k, si.q.ld, si.q.stride, si.l.qo != NULL);
  a.vec_v = rows_vec(V.data, dv, V.ld, V.stride, si.l.ao != NULL);
  if (plan.variant == ATTN_CU_FLASH_THREAD) {
    const unsigned blocks = attn_cu_blocks(rows, FLASH_THREADS);
    if (si.k <= 3 && dv <= 3 && si.l.n <= FLASH_SHORT_N)
      launch_short<3>(cu, a, stream, bad);
    else if (si.k <= 4 && dv <= 4 && si.l.n <= FLASH_SHORT_N)
      launch_short<4>(cu, a, stream, bad);
    else if (si.k <= 4 && dv <= 4)
      launch_thread<4>(a, blocks, stream, bad);
    else
      launch_thread<FLASH_SMALL>(a, blocks, stream, bad);
    ATTN_CU_CHECK(cu, cudaGetLastError());
    return ATTN_CUDA_OK;
  }
  if (plan.variant == ATTN_CU_FLASH_STREAM) {
    const dim3 grid(attn_cu_blocks(rows, STREAM_WARPS), (unsigned)plan.spans);
    flash_stream_kernel<<<grid, STREAM_THREADS, plan.smem, stream>>>(a, bad);
  } else if (plan.variant == ATTN_CU_FLASH_WARP) {
    const dim3 grid(attn_cu_blocks(rows, FLASH_WARPS), (unsigned)plan.spans);
    if (dv <= 128)
      flash_warp_kernel<1><<<grid, FLASH_THREADS, 0, stream>>>(a, bad);
    else
      flash_warp_kernel<2><<<grid, FLASH_THREADS, 0, stream>>>(a, bad);
  } else {
    const dim3 grid(attn_cu_blocks(a.tiles, 1), (unsigned)plan.spans);
    if (plan.variant == ATTN_CU_FLASH_TC)
      flash_tile_kernel<64, true><<<grid, FLASH_THREADS, plan.smem, stream>>>(a, bad);
    else if (plan.variant == ATTN_CU_FLASH_TILE && plan.tile == 16)
      flash_tile_kernel<16, false><<<grid, FLASH_THREADS, plan.smem, stream>>>(a, bad);
    else if (plan.variant == ATTN_CU_FLASH_TILE && plan.tile == 32)
      flash_tile_kernel<32, false><<<grid, FLASH_THREADS, plan.smem, stream>>>(a, bad);
    else if (plan.variant == ATTN_CU_FLASH_TILE)
      flash_tile_kernel<64, false><<<grid, FLASH_THREADS, plan.smem, stream>>>(a, bad);
    else if (plan.tile == 8)
      flash_block_kernel<8><<<grid, FLASH_THREADS, plan.smem, stream>>>(a, bad);
    else
      flash_block_kernel<1><<<grid, FLASH_THREADS, plan.smem, stream>>>(a, bad);
  }
  ATTN_CU_CHECK(cu, cudaGetLastError());
  if (plan.spans > 1) {
    /* plan.spans: the most spans a row can have (from n: a varlen call's rows may have fewer) */
    if (plan.spans <= 8)
      launch_combine<8, 4>(a, rows, stream, bad);
    else
      launch_combine<32, 1>(a, rows, stream, bad);
    ATTN_CU_CHECK(cu, cudaGetLastError());
  }
  return ATTN_CUDA_OK;
}
