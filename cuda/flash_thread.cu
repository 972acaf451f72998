/*
 * flash_thread.cu - the flash forward's THREAD kernels (flash.cu: the fixed arithmetic
 * every variant computes, and the plan; flash_kernels.cuh: what the kernels share).
 *
 * THREAD: a thread per query row, q', the chunk's scores and the three accumulators in registers (k
 * and dv at most 16): the walkthrough's shapes, millions of tiny queries. Where k, dv <= 4 and no
 * set has more than 8 annotations, the short-set kernel: a thread takes 4 rows of a group of 128
 * and, where those lie in one set, reads each annotation and value row once for the 4 (one chunk,
 * so the folds come down to an add a column); 3 wide where k, dv <= 3. Its grid is at most one
 * wave of resident blocks (attn_cuda_short_grid), each warp looping over groups and copying the
 * next group's q' into shared memory (cp.async) while it computes the current one; where a group
 * fits the 3-wide instance and its rows are packed and aligned (the walkthrough's), a lane's 4 rows
 * are consecutive, so that their q' and context move in 16-byte pieces (flash_short_fetch_packed).
 * A call whose every group but the last fits that way, as the host can tell (short_packed_call: the
 * walkthrough's), runs an instance holding that path alone, at 64 registers and 8 blocks a
 * multiprocessor instead of 80 and 6.
 */
#include "flash_kernels.cuh"

#include <cuda_pipeline.h>

/* THREAD<4> on sets of at most FLASH_SHORT_N annotations: FLASH_SHORT_ROWS query rows a thread
 * where a warp's rows share a set; an instance for sets of at most FLASH_SHORT_N4 (the
 * walkthrough's 4) holds half the weights. */
#define FLASH_SHORT_N    8
#define FLASH_SHORT_N4   4
#define FLASH_SHORT_ROWS 4

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

/* The rows of a thread that lie below `rows`: r0 + 32 rho for rho < flash_short_live. FULL (a
 * turn known to fit: flash_short_turns): all R (in either layout: flash_thread_rows). */
template <int R, bool FULL>
static __device__ __forceinline__ int flash_short_live(int64_t r0, int64_t rows) {
  if (FULL) return R;
  return rows - r0 >= 32 * (R - 1) + 1 ? R : (int)((rows - r0 + 31) / 32);
}

/* f(rho, t, in, p) for each element (rho, t) of the q' of the thread's rows r0 + 32 rho of set
 * s: in, whether it exists (its row below `rows` and t < k), and p, its address where it does.
 * The flag, not a null p, says which: a test of p would be a 64-bit compare of an address the
 * compiler cannot prove non-null, and a reader of shared memory that needs no addresses would
 * still compute them all for it (flash_short_read: about 150 instructions a turn on sm_90). */
template <int K, int R, bool FULL, class F>
static __device__ __forceinline__ void flash_short_each_q(const flash_args &a, const attn_cu_set &s,
                                                          int64_t r0, int64_t rows, F f) {
  const attn_cu_score_in &si = a.si;
  const int live = flash_short_live<R, FULL>(r0, rows), k = FULL ? K : (int)si.k;
  const float *qp = attn_cu_score_q(si, s, r0 - s.r0);
#pragma unroll
  for (int rho = 0; rho < R; rho++)
#pragma unroll
    for (int t = 0; t < K; t++)
      f(rho, t, FULL || (rho < live && t < k), qp + 32 * rho * si.q.ld + t);
}

/* That q' into registers (zeros where it does not exist). */
template <int K, int R>
static __device__ __forceinline__ void flash_short_q(const flash_args &a, const attn_cu_set &s,
                                                     int64_t r0, int64_t rows, float (&q)[R][K]) {
  flash_short_each_q<K, R, false>(
      a, s, r0, rows, [&](int rho, int t, bool in, const float *p) { q[rho][t] = in ? *p : 0.0f; });
}

/* qs's shared-memory address, for flash_copy_async (0 where there is none: before sm_80,
 * tests/emu). */
static __device__ __forceinline__ uint32_t flash_smem_at(const float *qs) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  return (uint32_t)__cvta_generic_to_shared(qs);
#else
  (void)qs;
  return 0;
#endif
}

/* A BYTES-byte cp.async (4 or 16, through L1) of src[0 .. BYTES / 4) to qs[i ..] where in
 * (nothing otherwise); qs_at: flash_smem_at(qs). On the GPU the condition is the instruction's
 * predicate, so that the destination is qs_at + 4 i, worked out once for all of a fetch's copies:
 * __pipeline_memcpy_async converts its generic destination pointer to a shared address in every
 * call, and under each copy's own branch the compiler repeats that (on sm_90 a cluster-id read,
 * a move, a shift and two multiplies a copy: about 70 of the walkthrough's 1,000 instructions a
 * turn). Elsewhere (before sm_80, tests/emu) the same copy through cuda_pipeline.h. 16 bytes: both
 * addresses 16-byte aligned; through L1, since the packed layout's lanes are 48 bytes apart, so
 * two of a lane's three copies ask for each 32-byte sector, and the second can find it there
 * (flash_short_fetch_packed). */
template <int BYTES = 4>
static __device__ __forceinline__ void flash_copy_async(float *qs, uint32_t qs_at, int i,
                                                        const float *src, bool in) {
  static_assert(BYTES == 4 || BYTES == 16, "cp.async.ca copies 4, 8 or 16 bytes");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("{\n"
               "  .reg .pred p;\n"
               "  setp.ne.b32 p, %2, 0;\n"
               "  @p cp.async.ca.shared.global [%0], [%1], %3;\n"
               "}\n"
               :
               : "r"(qs_at + 4u * (uint32_t)i), "l"(src), "r"((int)in), "n"(BYTES)
               : "memory");
  (void)qs;
#else
  (void)qs_at;
  if (in) __pipeline_memcpy_async(qs + i, src, BYTES);
#endif
}

/* flash_short_q's loads as copies into shared memory that fly while the thread computes (cp.async,
 * 4 bytes each: no registers held): element (rho, t) of the thread goes to qs[32 (rho K + t)] (qs
 * is the lane's first slot in its warp's part of the buffer, so that a warp's copies and reads of
 * one element are 32 consecutive words); nothing where it does not exist (flash_short_read makes
 * those zeros). The caller commits and waits. */
template <int K, int R, bool FULL>
static __device__ __forceinline__ void flash_short_fetch(const flash_args &a, const attn_cu_set &s,
                                                         int64_t r0, int64_t rows, float *qs) {
  const uint32_t qs_at = flash_smem_at(qs);
  flash_short_each_q<K, R, FULL>(a, s, r0, rows, [&](int rho, int t, bool in, const float *p) {
    flash_copy_async(qs, qs_at, (rho * K + t) * 32, p, in);
  });
}
/* The q' flash_short_fetch copied (same s, r0 and rows), once the thread has waited for it. */
template <int K, int R, bool FULL>
static __device__ __forceinline__ void flash_short_read(const flash_args &a, const attn_cu_set &s,
                                                        int64_t r0, int64_t rows, const float *qs,
                                                        float (&q)[R][K]) {
  flash_short_each_q<K, R, FULL>(a, s, r0, rows, [&](int rho, int t, bool in, const float *) {
    q[rho][t] = in ? qs[(rho * K + t) * 32] : 0.0f;
  });
}

/* The packed layout of a fitted group (flash_short_kernel's `packed`: q' and context rows of K
 * floats, 16-byte aligned): the thread's R rows are consecutive, r0 .. r0 + R - 1 with r0 = the
 * group's first + R lane, so that their q' are R K consecutive floats, 16-byte aligned, copied as
 * R K / 4 16-byte pieces: piece i to qs4 + 128 i (qs4 = the warp's part of the buffer + 4 lane, so
 * that a warp's copies and reads of piece i are 512 consecutive bytes, free of bank conflicts for
 * any K). The interleaved layout (flash_short_fetch: rows 32 apart) takes R K 4-byte copies a
 * turn, as many shared loads and as many stores; this one a quarter of each. Both stay inside the
 * warp's part of the buffer (flash_short_turns), where the warp's own wait and __syncwarp order
 * them: a warp's packed group and another warp's interleaved one at the same turn must not share
 * a slot, as their layouts over a whole block would. */
template <int K, int R>
static __device__ __forceinline__ void flash_short_fetch_packed(const float *qp, float *qs4) {
  static_assert(R * K % 4 == 0, "whole 16-byte pieces");
  const uint32_t qs_at = flash_smem_at(qs4);
#pragma unroll
  for (int i = 0; i < R * K / 4; i++)
    flash_copy_async<16>(qs4, qs_at, 4 * i * 32, qp + 4 * i, true);
}
/* flash_short_fetch_packed for a thread of the packed instance's last, part group, whose rows
 * below `rows` number live < R (0 for the lanes past them): the floats of its live rows by 4-byte
 * copies, zeros in the rest of its R K slots (rows that it computes but does not store), so that
 * flash_short_read_packed reads no slot that nobody wrote. */
template <int K, int R>
static __device__ __forceinline__ void flash_short_fetch_packed_part(const float *qp, float *qs4,
                                                                     int live) {
  const uint32_t qs_at = flash_smem_at(qs4);
#pragma unroll
  for (int f = 0; f < R * K; f++) {
    const int slot = f / 4 * 4 * 32 + f % 4;
    if (f < live * K)
      flash_copy_async(qs4, qs_at, slot, qp + f, true);
    else
      qs4[slot] = 0.0f;
  }
}
/* What flash_short_fetch_packed copied, once the thread has waited for it. */
template <int K, int R>
static __device__ __forceinline__ void flash_short_read_packed(const float *qs4, float (&q)[R][K]) {
#pragma unroll
  for (int i = 0; i < R * K / 4; i++) {
    const float4 v = *reinterpret_cast<const float4 *>(qs4 + 4 * i * 32);
    const float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int j = 0; j < 4; j++)
      q[(4 * i + j) / K][(4 * i + j) % K] = e[j];
  }
}

/* R query rows of set s, r0 + 32 rho for rho < R (those below `rows`; with PK, the packed layout
 * of a fitted group, r0 + rho: flash_short_fetch_packed), from their q' (q), whose
 * valid length is at most N <= FLASH_CHUNK: one chunk in one span, so each annotation and value
 * row is read once for the R queries, and the two folds from the empty state (chunk into span,
 * span into total) come down to one add a column. With the chunk's (m, l, x), flash_first's
 * factor b is 1 for m finite or -inf, so the first fold gives (m, 0 + l, 0 + x): 0 + l = l, l
 * being a sum of weights >= +0 begun at +0 (never -0), while 0 + x is kept, because x, an fma
 * chain, is -0 where its last product underflows below zero (p v > -2^-150), and 0 + -0 = +0.
 * The second fold then changes nothing (0 + x is never -0). b is NaN only for m = +inf or NaN,
 * where some weight exp(s - m) is NaN, so l is NaN already and the outputs, x / l and m + log l,
 * are NaN either way. The same arithmetic, in the same order, as flash_thread_kernel. */
template <int K, bool ADD, int R, int N, bool FULL = false, bool PK = false>
static __device__ __forceinline__ void
flash_thread_rows(const flash_args &a, const attn_cu_set &s, int64_t r0, int64_t rows,
                  const float (&q)[R][K], const float *avs = nullptr, int live_pk = R) {
  static_assert(N <= FLASH_CHUNK, "one chunk");
  static_assert(FULL || !PK, "the packed layout is a fitted group's");
  constexpr int rs = PK ? 1 : 32; /* row rho of the thread: r0 + rs rho */
  const attn_cu_score_in &si = a.si;
  /* cnt <= N; k, dv <= K; FULL: equal (flash_short_fits) */
  const int cnt = FULL ? N : (int)s.valid, k = FULL ? K : (int)si.k, dv = FULL ? K : (int)a.dv;
  /* this thread's rows: rho < live (PK: live_pk, below R only in the packed instance's last,
   * part group, whose rows the thread computes all the same) */
  const int live = PK ? live_pk : flash_short_live<R, FULL>(r0, rows);
  const int64_t i0 = r0 - s.r0;
  /* A set's rows are ld apart in both layouts; FULL: the warp's copy of them in shared memory,
   * avs (flash_short_kernel: K floats a row, the N annotation rows, then the N value rows). */
  const float *a0 = FULL ? avs : attn_cu_arow(si.a.data, si.a.ld, si.a.stride, si.l, s, 0);
  const float *v0 = FULL ? avs + N * K : attn_cu_arow(a.V.data, a.V.ld, a.V.stride, si.l, s, 0);
  const int64_t lda = FULL ? K : si.a.ld, ldv = FULL ? K : a.V.ld;
  float p[R][N], mc[R];
#pragma unroll
  for (int rho = 0; rho < R; rho++)
    mc[rho] = -INFINITY;
#pragma unroll
  for (int jj = 0; jj < N; jj++) {
    if (jj >= cnt) break;
    const float *ar = a0 + jj * lda;
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
    const float *vr = v0 + jj * ldv;
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
   * reciprocal instead of each sitting behind its column's test. PK: the R rows' K columns are
   * consecutive (C's ld is K), stored as R K / 4 16-byte pieces. */
  float *c = attn_cu_qrow(a.C.data, a.C.ld, a.C.stride, si.l, s, i0);
  float out[R][K];
#pragma unroll
  for (int rho = 0; rho < R; rho++) {
    if (rho >= live) break;
#pragma unroll
    for (int t = 0; t < K; t++)
      out[rho][t] = flash_out(__fadd_rn(0.0f, cx[rho][t]), mc[rho], lc[rho]);
    if (!PK) {
#pragma unroll
      for (int t = 0; t < K; t++)
        if (t < dv) c[32 * rho * a.C.ld + t] = out[rho][t];
    }
    if (a.lse) a.lse[r0 + rs * rho] = flash_lse(mc[rho], lc[rho]);
  }
  if (PK && live == R) {
#pragma unroll
    for (int i = 0; i < R * K / 4; i++) {
      const int f = 4 * i;
      reinterpret_cast<float4 *>(c)[i] =
          make_float4(out[f / K][f % K], out[(f + 1) / K][(f + 1) % K],
                      out[(f + 2) / K][(f + 2) % K], out[(f + 3) / K][(f + 3) % K]);
    }
  } else if (PK) { /* the packed instance's last, part group: the live rows' floats */
#pragma unroll
    for (int f = 0; f < R * K; f++)
      if (f < live * K) c[f] = out[f / K][f % K];
  }
}

/* Whether q' and the context are packed rows of K floats, 16-byte aligned: the condition of the
 * packed layout (flash_short_fetch_packed), on the device (flash_short_kernel) and on the host
 * (short_packed_call). */
static __host__ __device__ __forceinline__ bool flash_rows_packed(const flash_args &a, int K) {
  return a.si.q.ld == K && a.C.ld == K &&
         (((uintptr_t)a.si.q.data | (uintptr_t)a.C.data) & 15) == 0;
}

/* The index of a short-set kernel instance in attn_cuda_t::short_blocks (the packed one: 8). */
template <int K, bool ADD, int N, bool PKO = false> static constexpr int short_index() {
  return PKO ? 8 : (K == 4) * 4 + ADD * 2 + (N == FLASH_SHORT_N);
}

/* Whether the R x 32 query rows from r0 (those below `rows`) lie in one set, then s. */
static __device__ __forceinline__ bool flash_short_whole(const attn_cu_layout &l, int64_t r0,
                                                         int64_t rows, int R, attn_cu_set *s) {
  const int64_t last = (r0 + 32 * R < rows ? r0 + 32 * R : rows) - 1;
  attn_cu_set t;
  int64_t i;
  return attn_cu_query_row(l, r0, s, &i) && attn_cu_query_row(l, last, &t, &i) && s->b == t.b;
}

/* Whether the group of rows from r0 (a warp's first) in set s fits the instance exactly: all its
 * 32 FLASH_SHORT_ROWS rows below `rows`, k = dv = K and s's valid length N. Then every
 * condition of flash_short_each_q and flash_thread_rows on live rows, k, dv and the valid length
 * is true, and their FULL instances, which leave those conditions out, give the same bits. */
template <int K, int N>
static __device__ __forceinline__ bool flash_short_fits(const flash_args &a, const attn_cu_set &s,
                                                        int64_t r0, int64_t rows) {
  return r0 + 32 * FLASH_SHORT_ROWS <= rows && a.si.k == K && a.dv == K && s.valid == N;
}

/* The turns of flash_short_kernel's warp from its first group w (see there). whole_at(r0, &s):
 * whether the group's rows from r0 lie in one set, then s. A warp's q' is copied into shared memory
 * one turn of the loop ahead, before the previous turn's rows run, so that its trip to memory
 * overlaps their arithmetic (the grid is at most one wave of resident blocks:
 * attn_cuda_short_grid). Two buffers (qbuf), each split into a part for each warp (R K 32 floats,
 * from wq): the copies a turn issues land in the one its warp read on the turn before. The set of a
 * turn's rows is looked up again on the turn (rather than kept from the copy's) so that it is not
 * held in registers while the rows run (the one-set loop's whole_at returns the set it holds:
 * flash_short_kernel). FIT: the groups that fit the instance (flash_short_fits) take FULL instances
 * of the copies, the reads and the rows, without the tests of each element's row and column (the
 * walkthrough's 10^6 queries, all but the last group; flash_short_kernel says what that saves).
 * avs: the FULL rows' copy of the set's rows. PKO (the packed instance: flash_short_kernel): every
 * group in the packed layout, the last, part one by flash_short_fetch_packed_part. */
template <int K, bool ADD, int N, bool FIT, bool PKO, class W>
static __device__ __forceinline__ void
flash_short_turns(const flash_args &a, int64_t w,
                  float (*qbuf)[FLASH_SHORT_ROWS * K * FLASH_THREADS], W whole_at,
                  const float *avs = nullptr, bool packed = false) {
  static_assert(FIT || !PKO, "the packed instance's groups fit but for the last");
  const int R = FLASH_SHORT_ROWS;
  const attn_cu_layout &l = a.si.l;
  const int64_t rows = attn_cu_query_rows(l);
  const int64_t warps = (rows + 32 * R - 1) / (32 * R);
  const int lane = (int)(threadIdx.x & 31);
  const int wq = (int)(threadIdx.x / 32) * R * K * 32; /* the warp's part of each buffer */
  const int64_t step = (int64_t)gridDim.x * blockDim.x / 32;
  /* PKO: the rows below `rows` of the lane's R from the group's first g0 (R but in the last
   * group) */
  const auto pk_live = [&](int64_t g0) {
    const int64_t left = rows - (g0 + R * lane);
    return left >= R ? R : left > 0 ? (int)left : 0;
  };
  /* group g0's q' (in set s) into buffer b */
  const auto fetch = [&](const attn_cu_set &s, int64_t g0, int b) {
    if constexpr (PKO) {
      const float *qp = attn_cu_score_q(a.si, s, g0 + R * lane - s.r0);
      const int live = pk_live(g0);
      if (live == R)
        flash_short_fetch_packed<K, R>(qp, qbuf[b] + wq + 4 * lane);
      else
        flash_short_fetch_packed_part<K, R>(qp, qbuf[b] + wq + 4 * lane, live);
      return;
    }
    if (FIT && flash_short_fits<K, N>(a, s, g0, rows)) {
      if (packed)
        flash_short_fetch_packed<K, R>(attn_cu_score_q(a.si, s, g0 + R * lane - s.r0),
                                       qbuf[b] + wq + 4 * lane);
      else
        flash_short_fetch<K, R, true>(a, s, g0 + lane, rows, qbuf[b] + wq + lane);
    } else {
      flash_short_fetch<K, R, false>(a, s, g0 + lane, rows, qbuf[b] + wq + lane);
    }
  };
  {
    attn_cu_set s;
    if (whole_at(w * 32 * R, &s)) fetch(s, w * 32 * R, 0);
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
        fetch(sn, r0 + 32 * R * step, turn ^ 1);
      __pipeline_commit();
    }
    attn_cu_set s;
    if constexpr (PKO) {
      whole_at(r0, &s);
      float q[R][K];
      flash_short_read_packed<K, R>(qbuf[turn] + wq + 4 * lane, q);
      flash_thread_rows<K, ADD, R, N, true, true>(a, s, r0 + R * lane, rows, q, avs, pk_live(r0));
    } else if (whole_at(r0, &s)) {
      float q[R][K];
      const bool fits = FIT && flash_short_fits<K, N>(a, s, r0, rows);
      if (fits && packed) {
        flash_short_read_packed<K, R>(qbuf[turn] + wq + 4 * lane, q);
        flash_thread_rows<K, ADD, R, N, true, true>(a, s, r0 + R * lane, rows, q, avs);
      } else if (fits) {
        flash_short_read<K, R, true>(a, s, r0 + lane, rows, qbuf[turn] + wq + lane, q);
        flash_thread_rows<K, ADD, R, N, true>(a, s, r0 + lane, rows, q, avs);
      } else {
        flash_short_read<K, R, false>(a, s, r0 + lane, rows, qbuf[turn] + wq + lane, q);
        flash_thread_rows<K, ADD, R, N>(a, s, r0 + lane, rows, q);
      }
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
 * 10^6 queries against one set of 4); a group across sets runs its rows one at a time. K = 3 for
 * k, dv <= 3 (the walkthrough's d = 3: a quarter of the fmas and quotients fewer than K = 4
 * computes with zeros), else 4. The grid is at most one wave of resident blocks
 * (attn_cuda_short_grid) and each warp loops over its groups of rows, copying the next group's q'
 * into shared memory before it runs the current one (flash_short_turns). Before (a block for every
 * 4 warps' rows, each warp one group) a warp's single load of q' waited for DRAM with nothing of
 * its own to overlap: on the H100 the walkthrough's kernel issued at about half the SM's rate with
 * DRAM 28% busy (bench/README.md). On sets of up to FLASH_SHORT_N4 with dot-like scores, a uniform
 * batch of one set (the walkthrough's) has a loop of its own, in which every group is whole and no
 * turn looks its set up: in the general loop the two lookups a turn (the next group's and the
 * current one's, each of its first and last row) cost about 140 instructions a thread on sm_90, a
 * seventh of the walkthrough's turn. Its set is looked up once, each warp keeps a copy of the set's
 * rows in shared memory, and the groups that fit the instance exactly (flash_short_fits: all 128
 * rows present, k = dv = K, N valid annotations; the walkthrough's all but a last part group) run
 * FULL instances of the copies, reads and rows, which test no element's row or column and read
 * the set's rows from that copy at fixed offsets: a turn of the walkthrough's 3-wide instance
 * went from 943 static sm_90 instructions to 632 (lse's, not run there, included), at 80
 * registers on sm_80 and sm_90. The other instances keep one loop: a second one raised the
 * additive 3-wide one on sets of up to 4 from 93 registers to 102 (a block fewer a
 * multiprocessor), and the dot-like 3-wide one on sets of up to 8 spilled on sm_80; their turns
 * have twice the arithmetic (sets of 8) or a tanh a term, beside which the lookups weigh less. On
 * the H100 (commit 5196610) the walkthrough's kernel took 12.2 us, 5% less than before the loop,
 * with a quarter fewer instructions: latency-bound (bench/README.md). Since, the one-set loop of
 * the 3-wide instance runs the fitted groups of packed, 16-byte aligned rows in the packed layout
 * (flash_short_fetch_packed: 27 fewer memory instructions a turn), and a warp's copy of the set's
 * rows flies with its first q' instead of before it (not yet timed either).
 *
 * PKO, the packed instance (short_packed_call: one set of exactly FLASH_SHORT_N4 annotations
 * without lengths, k = dv = 3, q' and context packed rows of 3 floats, 16-byte aligned: the
 * walkthrough's), holds the packed path alone. Every group but the last fits the instance, as the
 * host knows, and the last, part one runs the same path, its lanes copying only their live rows
 * (flash_short_fetch_packed_part) and storing only those: the same arithmetic on every row, so the
 * same bits. Without the 4-byte and the per-row paths, which the other instances keep for masked
 * sets, k or dv below K and unpacked rows, it fits 64 registers without a spill on sm_80 and sm_90
 * (the 3-wide instance spills at 64: 56 bytes on sm_90), so 8 blocks a multiprocessor instead of 6:
 * on an H100, 32 warps a multiprocessor and 1,056 blocks a wave, where the walkthrough's 7,813
 * groups take 977 blocks (attn_cuda_short_grid) whose warps, all but 3, take 2 turns instead of 3.
 * The H100 profile found this kernel latency-bound (0.58 issued a scheduler and cycle with 5.4
 * warps): more warps, fewer turns. Not yet timed on a GPU. */
template <int K, bool ADD, int N, bool PKO = false>
static __global__ void __launch_bounds__(FLASH_THREADS, PKO   ? FLASH_SHORT_PK_MIN_BLOCKS
                                                        : ADD ? FLASH_THREAD_MIN_BLOCKS
                                                        : N <= FLASH_SHORT_N4
                                                            ? FLASH_SHORT4_MIN_BLOCKS
                                                        : K <= 3 ? FLASH_THREAD4_MIN_BLOCKS
                                                                 : FLASH_THREAD_MIN_BLOCKS)
    flash_short_kernel(flash_args a, const int *bad) {
  static_assert(!PKO || (K == 3 && !ADD && N == FLASH_SHORT_N4), "the packed instance's");
  if (attn_cu_call_is_bad(bad)) return;
  const int R = FLASH_SHORT_ROWS;
  const attn_cu_layout &l = a.si.l;
  const int64_t rows = attn_cu_query_rows(l);
  const int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  if (w >= (rows + 32 * R - 1) / (32 * R)) return; /* flash_short_turns' warps */
  /* float4: the packed layout's 16-byte copies and loads (flash_short_fetch_packed) */
  __shared__ float4 qbuf4[2][R * K * FLASH_THREADS / 4];
  float(*qbuf)[R * K * FLASH_THREADS] = reinterpret_cast<float(*)[R * K * FLASH_THREADS]>(qbuf4);
  __shared__ float avbuf[FLASH_WARPS][2 * FLASH_SHORT_N4 * K];
  if (PKO || (!ADD && N <= FLASH_SHORT_N4 && !l.qo && l.batch == 1)) {
    attn_cu_set s0;
    attn_cu_set_of(l, 0, &s0);
    /* The set's annotation and value rows, K floats each (zeros past k, dv and the valid length),
     * a copy for each warp (no barrier of the block: its warps may have returned above): the
     * fitted turns read them from there (flash_short_turns). N <= FLASH_SHORT_N4 here: avbuf
     * holds them. The copies are cp.async, in the pipeline's group with the first turn's q'
     * (flash_short_turns commits it), which that turn waits for and then syncs the warp: so
     * their trip to memory overlaps q''s instead of delaying its start (with plain loads the warp
     * waited for them before it could ask for its q'). */
    float *avs = avbuf[threadIdx.x / 32];
    const uint32_t avs_at = flash_smem_at(avs);
    for (int i = (int)(threadIdx.x & 31); i < 2 * N * K; i += 32) {
      const bool val = i >= N * K;
      const int jj = i % (N * K) / K, t = i % K;
      const float *row = val ? attn_cu_arow(a.V.data, a.V.ld, a.V.stride, l, s0, jj)
                             : attn_cu_arow(a.si.a.data, a.si.a.ld, a.si.a.stride, l, s0, jj);
      if (jj < s0.valid && t < (val ? a.dv : a.si.k))
        flash_copy_async(avs, avs_at, i, row + t, true);
      else
        avs[i] = 0.0f;
    }
    /* The fitted groups' packed layout where q' and the context are packed rows of K floats,
     * 16-byte aligned (the walkthrough's): flash_short_fetch_packed. Not in the 4-wide
     * instance, where a third path through the turn spills (8 bytes on sm_90, 16 on sm_80). */
    const bool packed = K == 3 && flash_rows_packed(a, K);
    flash_short_turns<K, ADD, N, true, PKO>(
        a, w, qbuf,
        [&](int64_t, attn_cu_set *s) {
          *s = s0;
          return true;
        },
        avs, packed);
  } else if constexpr (!PKO) {
    flash_short_turns<K, ADD, N, false, false>(a, w, qbuf, [&](int64_t r0, attn_cu_set *s) {
      return flash_short_whole(l, r0, rows, R, s);
    });
  }
}

/* The short-set kernel's grid: a block for each 128 x FLASH_SHORT_ROWS query rows (4 groups, a
 * warp each) where they all stay resident at once; else the fewest blocks in which no warp takes
 * more turns than on a whole wave of resident blocks, T = ceil(blocks / wave): ceil(blocks / T),
 * so that every warp takes T turns but fewer than 4 T of them, which take T - 1. A whole wave
 * leaves the last turn to part of its warps: the walkthrough's 7,813 groups on an H100's 792
 * resident blocks (3,168 warps) gave 1,477 warps a third turn while 1,691 stopped after two, so
 * that a multiprocessor ran its last turn with about half its warps. Here 652 blocks (2,608
 * warps) all take 3 turns but 11: at most the same turns a multiprocessor, fewer warps (about 20
 * of 24) through the first two turns and all of them through the last. Worth a few percent at
 * most (in Nsight Compute the busiest multiprocessor was active 12.8% more cycles than the
 * average); not yet timed on a GPU. Which warp runs which group changes no result bit. */
extern "C" unsigned attn_cuda_short_grid(int64_t rows, int sm_count, int resident) {
  const int64_t wave = (int64_t)(sm_count > 0 ? sm_count : 0) * (resident > 0 ? resident : 0);
  const int per = FLASH_THREADS * FLASH_SHORT_ROWS;
  /* uncapped: attn_cu_blocks' cap would make T too small past 2^29 rows */
  const int64_t blocks = rows > 0 ? (rows + per - 1) / per : 1;
  if (wave <= 0 || blocks <= wave) return attn_cu_blocks(rows, per);
  const int64_t turns = (blocks + wave - 1) / wave;
  return (unsigned)((blocks + turns - 1) / turns);
}

/* One instance of the short-set THREAD kernel, on attn_cuda_short_grid's grid (its warps loop,
 * each loading its next rows' q' ahead: flash_short_kernel). */
template <int K, bool ADD, int N, bool PKO = false>
static void launch_short_instance(const attn_cuda_t *cu, const flash_args &a, cudaStream_t stream,
                                  const int *bad) {
  const unsigned blocks = attn_cuda_short_grid(attn_cu_query_rows(a.si.l), cu->flash.sm_count,
                                               cu->short_blocks[short_index<K, ADD, N, PKO>()]);
  flash_short_kernel<K, ADD, N, PKO><<<blocks, FLASH_THREADS, 0, stream>>>(a, bad);
}

/* Whether a call runs the packed instance: dot-like scores on one set of exactly FLASH_SHORT_N4
 * annotations with no lengths (all valid, known here), k = dv = 3, and q' and the context packed
 * rows of 3 floats, 16-byte aligned: the walkthrough's. Its groups all fit the 3-wide instance
 * but a call's last, so that its kernel holds the packed path alone (flash_short_kernel). */
static bool short_packed_call(const flash_args &a) {
  const attn_cu_layout &l = a.si.l;
  return !a.si.additive && l.batch == 1 && !l.qo && !l.lengths && l.n == FLASH_SHORT_N4 &&
         a.si.k == 3 && a.dv == 3 && flash_rows_packed(a, 3);
}

/* The short-set THREAD kernel of width K for the call's score form and set length. */
template <int K>
static void launch_short(const attn_cuda_t *cu, const flash_args &a, cudaStream_t stream,
                         const int *bad) {
  const bool n4 = a.si.l.n <= FLASH_SHORT_N4;
  if (K == 3 && short_packed_call(a))
    launch_short_instance<3, false, FLASH_SHORT_N4, true>(cu, a, stream, bad);
  else if (a.si.additive && n4)
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

void attn_cu_flash_thread(const attn_cuda_t *cu, const flash_args &a, cudaStream_t stream,
                          const int *bad) {
  const attn_cu_score_in &si = a.si;
  const unsigned blocks = attn_cu_blocks(attn_cu_query_rows(si.l), FLASH_THREADS);
  if (si.k <= 3 && a.dv <= 3 && si.l.n <= FLASH_SHORT_N)
    launch_short<3>(cu, a, stream, bad);
  else if (si.k <= 4 && a.dv <= 4 && si.l.n <= FLASH_SHORT_N)
    launch_short<4>(cu, a, stream, bad);
  else if (si.k <= 4 && a.dv <= 4)
    launch_thread<4>(a, blocks, stream, bad);
  else
    launch_thread<FLASH_SMALL>(a, blocks, stream, bad);
}

/* Resident blocks a multiprocessor of one short-set kernel instance (0 where the runtime does not
 * say: its launches then take a block for each of their rows' groups). */
template <int K, bool ADD, int N, bool PKO = false> static void short_occupancy(attn_cuda_t *cu) {
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, flash_short_kernel<K, ADD, N, PKO>,
                                                    FLASH_THREADS, 0) != cudaSuccess)
    blocks = 0;
  cu->short_blocks[short_index<K, ADD, N, PKO>()] = blocks;
}
template <int K> static void short_occupancies(attn_cuda_t *cu) {
  short_occupancy<K, false, FLASH_SHORT_N4>(cu);
  short_occupancy<K, false, FLASH_SHORT_N>(cu);
  short_occupancy<K, true, FLASH_SHORT_N4>(cu);
  short_occupancy<K, true, FLASH_SHORT_N>(cu);
}

void attn_cu_flash_thread_init(attn_cuda_t *cu) {
  short_occupancy<3, false, FLASH_SHORT_N4, true>(cu);
  short_occupancies<3>(cu);
  short_occupancies<4>(cu);
}
