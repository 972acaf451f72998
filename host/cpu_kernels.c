/*
 * cpu_kernels.c - the CPU backend's vector inner loops (dot, axpy, scal, max, NaN test, exp+sum)
 * in three builds: AVX-512, AVX2+FMA and portable C, chosen once at run time (cpu_kernels.h).
 *
 * The AVX builds are single functions compiled with GCC/Clang target attributes, so the rest of
 * the library stays baseline x86-64. Tails are handled with masks, so the arithmetic applied to
 * element k depends only on k and n, never on where the data sits.
 *
 * exp: Cody-Waite reduction x = i*ln2 + r, |r| <= ln2/2, and the Cephes degree-6 polynomial for
 * e^r (about 1 ulp on the softmax range x <= 0). Results below FLT_MIN are flushed to 0, so the
 * weights never carry denormals into the context GEMM; -inf gives 0 and NaN stays NaN.
 */
#include "cpu_kernels.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Portable C: attn_cpu_scalar_kernels, the inline scalar loops of cpu_kernels.h. */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define ATTN_ALWAYS_INLINE __attribute__((always_inline))

/* dots()'s prefetch for row j of a (cpu_kernels.h): rows below limit are readable. Always
 * inline: as a plain inline function GCC 12 dropped the prefetch from the always-inline
 * dots_axpy forms. */
ATTN_ALWAYS_INLINE static inline void dots_prefetch(const float *a, int64_t lda, int64_t d,
                                                    int64_t j, int64_t step, int64_t limit) {
  int64_t r = j + ATTN_CPU_PREFETCH_PAGES * step;
  if (j % step == 0 && r < limit)
    for (int64_t l = 0; l < d; l += 16)
      __builtin_prefetch(a + r * lda + l, 0, 2); /* prefetcht1 */
}

/* ------------------------------------------------------------------------------------------ */
/* AVX-512                                                                                    */
/* ------------------------------------------------------------------------------------------ */

#define AVX512 __attribute__((target("avx512f,fma")))

AVX512 static inline __mmask16 avx512_tail(int64_t left) {
  return (__mmask16)(left >= 16 ? 0xffff : left <= 0 ? 0 : ((1u << left) - 1u));
}

AVX512 static inline float avx512_dot(const float *x, const float *y, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= n; k += 64) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k), _mm512_loadu_ps(y + k), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(y + k + 16), a1);
    a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 32), _mm512_loadu_ps(y + k + 32), a2);
    a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 48), _mm512_loadu_ps(y + k + 48), a3);
  }
  for (; k < n; k += 16) {
    __mmask16 mk = avx512_tail(n - k);
    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, x + k), _mm512_maskz_loadu_ps(mk, y + k), a0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

AVX512 static void avx512_axpy(float *y, float a, const float *x, int64_t n) {
  __m512 va = _mm512_set1_ps(a);
  for (int64_t k = 0; k < n; k += 16) {
    __mmask16 mk = avx512_tail(n - k);
    __m512 vy = _mm512_maskz_loadu_ps(mk, y + k);
    _mm512_mask_storeu_ps(y + k, mk, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(mk, x + k), vy));
  }
}

AVX512 static void avx512_dots(const float *u, const float *a, int64_t lda, int64_t count,
                               int64_t d, float scale, float *s, int64_t ahead) {
  const int64_t step = attn_cpu_prefetch_rows(lda);
  for (int64_t j = 0; j < count; j++) {
    dots_prefetch(a, lda, d, j, step, count + ahead);
    s[j] = scale * avx512_dot(u, a + j * lda, d);
  }
}

AVX512 static void avx512_axpy_rows(float *y, const float *p, const float *v, int64_t ldv,
                                    int64_t count, int64_t n) {
  int64_t c = 0;
  for (; c + 64 <= n; c += 64) {
    __m512 y0 = _mm512_loadu_ps(y + c), y1 = _mm512_loadu_ps(y + c + 16);
    __m512 y2 = _mm512_loadu_ps(y + c + 32), y3 = _mm512_loadu_ps(y + c + 48);
    for (int64_t j = 0; j < count; j++) {
      const float *vj = v + j * ldv + c;
      __m512 pj = _mm512_set1_ps(p[j]);
      y0 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj), y0);
      y1 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 16), y1);
      y2 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 32), y2);
      y3 = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 48), y3);
    }
    _mm512_storeu_ps(y + c, y0);
    _mm512_storeu_ps(y + c + 16, y1);
    _mm512_storeu_ps(y + c + 32, y2);
    _mm512_storeu_ps(y + c + 48, y3);
  }
  for (; c < n; c += 16) {
    __mmask16 mk = avx512_tail(n - c);
    __m512 yc = _mm512_maskz_loadu_ps(mk, y + c);
    for (int64_t j = 0; j < count; j++)
      yc = _mm512_fmadd_ps(_mm512_set1_ps(p[j]), _mm512_maskz_loadu_ps(mk, v + j * ldv + c), yc);
    _mm512_mask_storeu_ps(y + c, mk, yc);
  }
}

/* avx512_dot(u, a, d) for d <= 128, u's nb = ceil(d / 16) vectors already in registers (u[b]:
 * lanes 16b .. 16b+15, zero past d), straight-line code for a fixed nb and full (the blocks of
 * avx512_dot's 64-wide loop, 4 * (d / 64)): the same accumulators, order and masks as
 * avx512_dot, so the same bits, with half its loads and none of its loop branches, which lets
 * more rows be in flight from memory. */
AVX512 ATTN_ALWAYS_INLINE static inline float
avx512_dot_held(const int nb, const int full, const __m512 *u, const float *a, __mmask16 last) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
#pragma GCC unroll 8
  for (int b = 0; b < nb; b++) {
    if (b < full)
      acc[b & 3] = _mm512_fmadd_ps(u[b], _mm512_loadu_ps(a + 16 * b), acc[b & 3]);
    else
      acc[0] = _mm512_fmadd_ps(u[b], _mm512_maskz_loadu_ps(b == nb - 1 ? last : 0xffff, a + 16 * b),
                               acc[0]);
  }
  return _mm512_reduce_add_ps(
      _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

/* dots and axpy_rows interleaved, y held in nv registers (n <= 16 * nv, the last one masked):
 * per element the same fmadd in the same j order as avx512_axpy_rows, and the same dot and
 * prefetch as avx512_dots. nb > 0: the dot is avx512_dot_held(nb, full), else avx512_dot. */
AVX512 ATTN_ALWAYS_INLINE static inline void
avx512_dots_axpy_nv(const int nv, const int nb, const int full, const float *u, const float *a,
                    int64_t lda, int64_t count, int64_t d, float scale, float *s, int64_t ahead,
                    float *y, const float *p, const float *v, int64_t ldv, int64_t pcount,
                    int64_t n) {
  const __mmask16 last = avx512_tail(n - 16 * (nv - 1)), dlast = avx512_tail(d - 16 * (nb - 1));
  __m512 acc[8], uh[8];
#pragma GCC unroll 8
  for (int c = 0; c < nv; c++)
    acc[c] = _mm512_maskz_loadu_ps(c == nv - 1 ? last : 0xffff, y + 16 * c);
#pragma GCC unroll 8
  for (int b = 0; b < nb; b++)
    uh[b] = _mm512_maskz_loadu_ps(b == nb - 1 ? dlast : 0xffff, u + 16 * b);
  const int64_t steps = count > pcount ? count : pcount;
  const int64_t step = attn_cpu_prefetch_rows(lda);
  for (int64_t j = 0; j < steps; j++) {
    if (j < count) {
      dots_prefetch(a, lda, d, j, step, count + ahead);
      s[j] = scale * (nb ? avx512_dot_held(nb, full, uh, a + j * lda, dlast)
                         : avx512_dot(u, a + j * lda, d));
    }
    if (j < pcount) {
      const float *vj = v + j * ldv;
      __m512 pj = _mm512_set1_ps(p[j]);
#pragma GCC unroll 8
      for (int c = 0; c < nv; c++)
        acc[c] = _mm512_fmadd_ps(
            pj, _mm512_maskz_loadu_ps(c == nv - 1 ? last : 0xffff, vj + 16 * c), acc[c]);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < nv; c++)
    _mm512_mask_storeu_ps(y + 16 * c, c == nv - 1 ? last : 0xffff, acc[c]);
}

AVX512 static void avx512_dots_axpy(const float *u, const float *a, int64_t lda, int64_t count,
                                    int64_t d, float scale, float *s, int64_t ahead, float *y,
                                    const float *p, const float *v, int64_t ldv, int64_t pcount,
                                    int64_t n) {
#define DOTS_AXPY(nv, nb, full)                                                                    \
  avx512_dots_axpy_nv(nv, nb, full, u, a, lda, count, d, scale, s, ahead, y, p, v, ldv, pcount, n)
  const int64_t nv = (n + 15) / 16, nb = (d + 15) / 16;
  if (nv == nb && d <= 128) { /* one straight-line form per d block count */
    switch (nb * 16 + d / 64 * 4) {
    case 16 * 1:
      DOTS_AXPY(1, 1, 0);
      return;
    case 16 * 2:
      DOTS_AXPY(2, 2, 0);
      return;
    case 16 * 3:
      DOTS_AXPY(3, 3, 0);
      return;
    case 16 * 4:
      DOTS_AXPY(4, 4, 0);
      return;
    case 16 * 4 + 4: /* d = 64 */
      DOTS_AXPY(4, 4, 4);
      return;
    case 16 * 5 + 4:
      DOTS_AXPY(5, 5, 4);
      return;
    case 16 * 6 + 4:
      DOTS_AXPY(6, 6, 4);
      return;
    case 16 * 7 + 4:
      DOTS_AXPY(7, 7, 4);
      return;
    case 16 * 8 + 4:
      DOTS_AXPY(8, 8, 4);
      return;
    case 16 * 8 + 8: /* d = 128 */
      DOTS_AXPY(8, 8, 8);
      return;
    default:
      break;
    }
  }
  switch (nv) {
  case 1:
    DOTS_AXPY(1, 0, 0);
    return;
  case 2:
    DOTS_AXPY(2, 0, 0);
    return;
  case 3:
    DOTS_AXPY(3, 0, 0);
    return;
  case 4:
    DOTS_AXPY(4, 0, 0);
    return;
  case 5:
    DOTS_AXPY(5, 0, 0);
    return;
  case 6:
    DOTS_AXPY(6, 0, 0);
    return;
  case 7:
    DOTS_AXPY(7, 0, 0);
    return;
  case 8:
    DOTS_AXPY(8, 0, 0);
    return;
  default: /* wider rows, or n == 0: one call after the other */
    avx512_dots(u, a, lda, count, d, scale, s, ahead);
    avx512_axpy_rows(y, p, v, ldv, pcount, n);
    return;
  }
#undef DOTS_AXPY
}

AVX512 static void avx512_scal(float *y, float a, int64_t n) {
  __m512 va = _mm512_set1_ps(a);
  for (int64_t k = 0; k < n; k += 16) {
    __mmask16 mk = avx512_tail(n - k);
    _mm512_mask_storeu_ps(y + k, mk, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(mk, y + k)));
  }
}

AVX512 static float avx512_max(const float *x, int64_t n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  for (int64_t k = 0; k < n; k += 16) {
    __mmask16 mk = avx512_tail(n - k);
    /* maxps returns its second operand when either is NaN: m stays, so NaN is ignored */
    m = _mm512_mask_max_ps(m, mk, _mm512_maskz_loadu_ps(mk, x + k), m);
  }
  return _mm512_reduce_max_ps(m);
}

AVX512 static int avx512_has_nan(const float *x, int64_t n) {
  for (int64_t k = 0; k < n; k += 16) {
    __mmask16 mk = avx512_tail(n - k);
    __m512 v = _mm512_maskz_loadu_ps(mk, x + k);
    if (_mm512_mask_cmp_ps_mask(mk, v, v, _CMP_UNORD_Q)) return 1;
  }
  return 0;
}

AVX512 static inline __m512 avx512_exp(__m512 x) {
  __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(EXP_LO), _CMP_LT_OQ);
  /* max(lo, x) keeps a NaN x (second operand); min(x, hi) likewise */
  x = _mm512_min_ps(_mm512_set1_ps(EXP_HI), _mm512_max_ps(_mm512_set1_ps(EXP_LO), x));
  __m512 i = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(i, _mm512_set1_ps(LN2_HI), x);
  r = _mm512_fnmadd_ps(i, _mm512_set1_ps(LN2_LO), r);
  __m512 p = _mm512_set1_ps(EXP_P0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P5));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_mov_ps((__mmask16)~tiny, _mm512_scalef_ps(p, i));
}

AVX512 static float avx512_exp_sum(float *x, float shift, int64_t n) {
  __m512 s = _mm512_setzero_ps(), vs = _mm512_set1_ps(shift);
  for (int64_t k = 0; k < n; k += 16) {
    __mmask16 mk = avx512_tail(n - k);
    __m512 e = avx512_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + k), vs));
    e = _mm512_maskz_mov_ps(mk, e);
    _mm512_mask_storeu_ps(x + k, mk, e);
    s = _mm512_add_ps(s, e);
  }
  return _mm512_reduce_add_ps(s);
}

/* The lane kernel: lane r is query r of the group (see attn_cpu_lane_job_t). */
AVX512 static void avx512_lanes(const attn_cpu_lane_job_t *job) {
  const int64_t d = job->d, dv = job->dv, valid = job->valid;
  const __mmask16 live = avx512_tail(job->rows);
  float tmp[ATTN_CPU_LANES] = {0};
  __m512 q[ATTN_CPU_LANE_WIDTH], acc[ATTN_CPU_LANE_WIDTH], s[ATTN_CPU_LANE_CHUNK];
  for (int64_t k = 0; k < d; k++) {
    for (int64_t r = 0; r < job->rows; r++)
      tmp[r] = job->q[r * job->ldq + k];
    q[k] = _mm512_loadu_ps(tmp);
  }
  for (int64_t k = 0; k < dv; k++)
    acc[k] = _mm512_setzero_ps();
  const __m512 scale = _mm512_set1_ps(job->scale), ninf = _mm512_set1_ps(-INFINITY);
  __m512 m = ninf, l = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (int64_t j0 = 0; j0 < valid; j0 += ATTN_CPU_LANE_CHUNK) {
    int64_t count = valid - j0 < ATTN_CPU_LANE_CHUNK ? valid - j0 : ATTN_CPU_LANE_CHUNK;
    __m512 cm = ninf;
    for (int64_t j = 0; j < count; j++) {
      const float *a = job->a + (j0 + j) * job->lda;
      __m512 sj = _mm512_setzero_ps();
      for (int64_t k = 0; k < d; k++)
        sj = _mm512_fmadd_ps(q[k], _mm512_set1_ps(a[k]), sj);
      sj = _mm512_mul_ps(sj, scale);
      nan |= _mm512_cmp_ps_mask(sj, sj, _CMP_UNORD_Q);
      cm = _mm512_max_ps(sj, cm); /* a NaN sj leaves cm */
      s[j] = sj;
    }
    __m512 mnew = _mm512_max_ps(cm, m);
    __mmask16 on = _mm512_cmp_ps_mask(mnew, ninf, _CMP_NEQ_OQ) & live;
    __m512 alpha = _mm512_mask_mov_ps(_mm512_set1_ps(1.0f), on, avx512_exp(_mm512_sub_ps(m, mnew)));
    l = _mm512_mul_ps(l, alpha);
    for (int64_t k = 0; k < dv; k++)
      acc[k] = _mm512_mul_ps(acc[k], alpha);
    for (int64_t j = 0; j < count; j++) {
      const float *v = job->v + (j0 + j) * job->ldv;
      __m512 pj = _mm512_maskz_mov_ps(on, avx512_exp(_mm512_sub_ps(s[j], mnew)));
      l = _mm512_add_ps(l, pj);
      for (int64_t k = 0; k < dv; k++)
        acc[k] = _mm512_fmadd_ps(pj, _mm512_set1_ps(v[k]), acc[k]);
    }
    m = _mm512_mask_mov_ps(m, on, mnew);
  }
  nan |= _mm512_cmp_ps_mask(l, l, _CMP_UNORD_Q);
  __mmask16 empty = _mm512_cmp_ps_mask(m, ninf, _CMP_EQ_OQ) & (__mmask16)~nan;
  __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), l);
  for (int64_t k = 0; k < dv; k++) {
    __m512 ck = _mm512_mul_ps(acc[k], inv);
    ck = _mm512_mask_mov_ps(ck, empty, _mm512_setzero_ps());
    ck = _mm512_mask_mov_ps(ck, nan, _mm512_set1_ps(NAN));
    _mm512_storeu_ps(tmp, ck);
    for (int64_t r = 0; r < job->rows; r++)
      job->c[r * job->ldc + k] = tmp[r];
  }
  if (job->lse) {
    float mm[ATTN_CPU_LANES], ll[ATTN_CPU_LANES];
    _mm512_storeu_ps(mm, m);
    _mm512_storeu_ps(ll, l);
    for (int64_t r = 0; r < job->rows; r++)
      job->lse[r] = (nan >> r) & 1 ? NAN : (empty >> r) & 1 ? -INFINITY : mm[r] + logf(ll[r]);
  }
}

static const attn_cpu_kernels_t avx512_kernels = {
    "avx512",       avx512_dot,  avx512_axpy,      avx512_scal,      avx512_max,  avx512_has_nan,
    avx512_exp_sum, avx512_dots, avx512_axpy_rows, avx512_dots_axpy, avx512_lanes};

/* ------------------------------------------------------------------------------------------ */
/* AVX2 + FMA                                                                                 */
/* ------------------------------------------------------------------------------------------ */

#define AVX2 __attribute__((target("avx2,fma")))

/* Lane mask for the last partial vector: lanes < left set. */
AVX2 static inline __m256i avx2_tail(int64_t left) {
  __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int l = left >= 8 ? 8 : (int)left;
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), lanes);
}

AVX2 static inline float avx2_hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

AVX2 static inline float avx2_dot(const float *x, const float *y, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 8), _mm256_loadu_ps(y + k + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 16), _mm256_loadu_ps(y + k + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 24), _mm256_loadu_ps(y + k + 24), a3);
  }
  for (; k < n; k += 8) {
    __m256i mk = avx2_tail(n - k);
    a0 = _mm256_fmadd_ps(_mm256_maskload_ps(x + k, mk), _mm256_maskload_ps(y + k, mk), a0);
  }
  return avx2_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

AVX2 static void avx2_axpy(float *y, float a, const float *x, int64_t n) {
  __m256 va = _mm256_set1_ps(a);
  for (int64_t k = 0; k < n; k += 8) {
    __m256i mk = avx2_tail(n - k);
    __m256 vy = _mm256_maskload_ps(y + k, mk);
    _mm256_maskstore_ps(y + k, mk, _mm256_fmadd_ps(va, _mm256_maskload_ps(x + k, mk), vy));
  }
}

AVX2 static void avx2_dots(const float *u, const float *a, int64_t lda, int64_t count, int64_t d,
                           float scale, float *s, int64_t ahead) {
  const int64_t step = attn_cpu_prefetch_rows(lda);
  for (int64_t j = 0; j < count; j++) {
    dots_prefetch(a, lda, d, j, step, count + ahead);
    s[j] = scale * avx2_dot(u, a + j * lda, d);
  }
}

AVX2 static void avx2_axpy_rows(float *y, const float *p, const float *v, int64_t ldv,
                                int64_t count, int64_t n) {
  int64_t c = 0;
  for (; c + 32 <= n; c += 32) {
    __m256 y0 = _mm256_loadu_ps(y + c), y1 = _mm256_loadu_ps(y + c + 8);
    __m256 y2 = _mm256_loadu_ps(y + c + 16), y3 = _mm256_loadu_ps(y + c + 24);
    for (int64_t j = 0; j < count; j++) {
      const float *vj = v + j * ldv + c;
      __m256 pj = _mm256_set1_ps(p[j]);
      y0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj), y0);
      y1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8), y1);
      y2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 16), y2);
      y3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 24), y3);
    }
    _mm256_storeu_ps(y + c, y0);
    _mm256_storeu_ps(y + c + 8, y1);
    _mm256_storeu_ps(y + c + 16, y2);
    _mm256_storeu_ps(y + c + 24, y3);
  }
  for (; c < n; c += 8) {
    __m256i mk = avx2_tail(n - c);
    __m256 yc = _mm256_maskload_ps(y + c, mk);
    for (int64_t j = 0; j < count; j++)
      yc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_maskload_ps(v + j * ldv + c, mk), yc);
    _mm256_maskstore_ps(y + c, mk, yc);
  }
}

AVX2 static void avx2_scal(float *y, float a, int64_t n) {
  __m256 va = _mm256_set1_ps(a);
  for (int64_t k = 0; k < n; k += 8) {
    __m256i mk = avx2_tail(n - k);
    _mm256_maskstore_ps(y + k, mk, _mm256_mul_ps(va, _mm256_maskload_ps(y + k, mk)));
  }
}

AVX2 static float avx2_max(const float *x, int64_t n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  for (int64_t k = 0; k < n; k += 8) {
    __m256i mk = avx2_tail(n - k);
    __m256 v = _mm256_blendv_ps(m, _mm256_maskload_ps(x + k, mk), _mm256_castsi256_ps(mk));
    m = _mm256_max_ps(v, m); /* NaN in v: m (second operand) stays */
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

AVX2 static int avx2_has_nan(const float *x, int64_t n) {
  for (int64_t k = 0; k < n; k += 8) {
    __m256i mk = avx2_tail(n - k);
    __m256 v = _mm256_maskload_ps(x + k, mk); /* masked lanes load 0 */
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) return 1;
  }
  return 0;
}

AVX2 static inline __m256 avx2_exp(__m256 x) {
  __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_LO), _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_set1_ps(EXP_HI), _mm256_max_ps(_mm256_set1_ps(EXP_LO), x));
  __m256 i = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(i, _mm256_set1_ps(LN2_HI), x);
  r = _mm256_fnmadd_ps(i, _mm256_set1_ps(LN2_LO), r);
  __m256 p = _mm256_set1_ps(EXP_P0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  /* 2^i for i in [-126, 127]: exponent bits; NaN lanes convert to garbage but p is NaN */
  __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(i), _mm256_set1_epi32(127)), 23);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  return _mm256_andnot_ps(tiny, y);
}

AVX2 static float avx2_exp_sum(float *x, float shift, int64_t n) {
  __m256 s = _mm256_setzero_ps(), vs = _mm256_set1_ps(shift);
  for (int64_t k = 0; k < n; k += 8) {
    __m256i mk = avx2_tail(n - k);
    __m256 e = avx2_exp(_mm256_sub_ps(_mm256_maskload_ps(x + k, mk), vs));
    e = _mm256_and_ps(e, _mm256_castsi256_ps(mk));
    _mm256_maskstore_ps(x + k, mk, e);
    s = _mm256_add_ps(s, e);
  }
  return avx2_hsum(s);
}

static void avx2_dots_axpy(const float *u, const float *a, int64_t lda, int64_t count, int64_t d,
                           float scale, float *s, int64_t ahead, float *y, const float *p,
                           const float *v, int64_t ldv, int64_t pcount, int64_t n) {
  avx2_dots(u, a, lda, count, d, scale, s, ahead);
  avx2_axpy_rows(y, p, v, ldv, pcount, n);
}

static const attn_cpu_kernels_t avx2_kernels = {
    "avx2",       avx2_dot,  avx2_axpy,      avx2_scal,      avx2_max, avx2_has_nan,
    avx2_exp_sum, avx2_dots, avx2_axpy_rows, avx2_dots_axpy, NULL};
#endif /* x86-64 */

/* ------------------------------------------------------------------------------------------ */
/* Run-time choice                                                                            */
/* ------------------------------------------------------------------------------------------ */

static const attn_cpu_kernels_t *pick_kernels(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  const char *cap = getenv("ATTN_CPU_ISA");
  int allow512 = !cap || strcmp(cap, "avx512") == 0;
  int allow2 = allow512 || strcmp(cap, "avx2") == 0;
  __builtin_cpu_init();
  if (allow512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"))
    return &avx512_kernels;
  if (allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return &avx2_kernels;
#endif
  return &attn_cpu_scalar_kernels;
}

static const attn_cpu_kernels_t *chosen_kernels;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose_kernels(void) {
  chosen_kernels = pick_kernels();
}

const attn_cpu_kernels_t *attn_cpu_kernels(void) {
  pthread_once(&chosen_once, choose_kernels);
  return chosen_kernels;
}

float attn_cpu_exp(const attn_cpu_kernels_t *k, float x) {
  float t = x;
  k->exp_sum(&t, 0.0f, 1);
  return t;
}
