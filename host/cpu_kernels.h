/*
 * cpu_kernels.h - the CPU backend's vector inner loops, picked once at run time by instruction set.
 *
 * Three builds of the same loops live in cpu_kernels.c: AVX-512 (avx512f/dq), AVX2+FMA and plain
 * x86-64 / portable C. attn_cpu_kernels() picks the widest one the running CPU supports, so one
 * binary runs on any x86-64 and uses AVX-512 where it exists. ATTN_CPU_ISA=avx512|avx2|generic
 * (environment, read once) caps the choice, for tests and benchmarks.
 *
 * Every loop has a fixed evaluation order that depends only on its length (tails are masked, never
 * a different code path by position), so a result depends only on the operands: this is what makes
 * the backend deterministic and batch-invariant.
 */
#ifndef ATTN_HOST_CPU_KERNELS_H
#define ATTN_HOST_CPU_KERNELS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp constants shared by every build (see cpu_kernels.c) */
#define EXP_LO -87.33654f /* log(FLT_MIN): below this exp() is flushed to 0 */
#define EXP_HI 88.0f
#define LOG2E  1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define EXP_P0 1.9875691500E-4f
#define EXP_P1 1.3981999507E-3f
#define EXP_P2 8.3334519073E-3f
#define EXP_P3 4.1665795894E-2f
#define EXP_P4 1.6666665459E-1f
#define EXP_P5 5.0000001201E-1f

/* A group of up to ATTN_CPU_LANES queries of one set for the lane kernel: tiny d and dv
 * (<= ATTN_CPU_LANE_WIDTH), dot-style scores (general scores pass W^T q as q), context and lse
 * only. Each query runs in its own vector lane through a chunked online softmax, so its
 * arithmetic is the same whatever lane it sits in and whatever else is in the group. */
#define ATTN_CPU_LANES      16
#define ATTN_CPU_LANE_WIDTH 8
#define ATTN_CPU_LANE_CHUNK 64
typedef struct attn_cpu_lane_job {
  const float *q; /* [rows x d], leading dimension ldq */
  int64_t ldq, rows, d;
  const float *a; /* [valid x d], leading dimension lda */
  int64_t lda, valid;
  const float *v; /* [valid x dv], leading dimension ldv */
  int64_t ldv, dv;
  float scale;
  float *c; /* [rows x dv], leading dimension ldc */
  int64_t ldc;
  float *lse; /* [rows] or NULL */
} attn_cpu_lane_job_t;

typedef struct attn_cpu_kernels {
  const char *name; /* "avx512", "avx2" or "generic" */
  /* sum_k x[k] * y[k], k < n */
  float (*dot)(const float *x, const float *y, int64_t n);
  /* y[k] += a * x[k] */
  void (*axpy)(float *y, float a, const float *x, int64_t n);
  /* y[k] *= a */
  void (*scal)(float *y, float a, int64_t n);
  /* max_k x[k] ignoring NaN; -inf when n == 0 or every entry is NaN / -inf */
  float (*max)(const float *x, int64_t n);
  /* 1 when some x[k] is NaN */
  int (*has_nan)(const float *x, int64_t n);
  /* x[k] = exp(x[k] - shift) (results below FLT_MIN flushed to 0); returns the sum of the new x */
  float (*exp_sum)(float *x, float shift, int64_t n);
  /* s[j] = scale * dot(u, a_j) for rows j < count of a (leading dimension lda), the same
   * arithmetic as dot; rows count .. count+ahead-1 are readable and may be prefetched
   * (attn_cpu_prefetch_rows). */
  void (*dots)(const float *u, const float *a, int64_t lda, int64_t count, int64_t d, float scale,
               float *s, int64_t ahead);
  /* y[k] += p[j] * v_j[k] for j = 0 .. count-1 in order: the same arithmetic as count axpy
   * calls, with y held in registers. */
  void (*axpy_rows)(float *y, const float *p, const float *v, int64_t ldv, int64_t count,
                    int64_t n);
  /* dots(u, a, lda, count, d, scale, s, ahead) and axpy_rows(y, p, v, ldv, pcount, n) in one
   * pass, row j of each in the same step, so that the context update of one chunk (in cache)
   * overlaps the reads of the next chunk from memory: the same arithmetic as the two calls. */
  void (*dots_axpy)(const float *u, const float *a, int64_t lda, int64_t count, int64_t d,
                    float scale, float *s, int64_t ahead, float *y, const float *p, const float *v,
                    int64_t ldv, int64_t pcount, int64_t n);
  /* The lane kernel (fused forward for tiny d); NULL where this build has none. */
  void (*lanes)(const attn_cpu_lane_job_t *job);
} attn_cpu_kernels_t;

/* Software prefetch of dots(). The hardware streamer follows a run of rows within a 4 KiB page
 * but stops at the page's end, so dots() prefetches (into L2) the lines of one row per page of
 * rows, ATTN_CPU_PREFETCH_PAGES pages ahead: row j + pages * step when j is a multiple of step,
 * the rows per page. Prefetching every row instead measured 5% to 12% slower on the decode
 * shape (4096 sets x 256 x 128): the prefetches hold fill buffers the demand loads need. */
#define ATTN_CPU_PREFETCH_PAGES 2
static inline int64_t attn_cpu_prefetch_rows(int64_t lda) {
  /* lda is compared before it is scaled: a one-row matrix may have any ld the checks accept. */
  const int64_t page_floats = 4096 / (int64_t)sizeof(float);
  return lda >= page_floats || lda <= 0 ? 1 : page_floats / lda;
}

/* The kernels for this CPU (thread-safe, cheap after the first call). */
const attn_cpu_kernels_t *attn_cpu_kernels(void);

/* exp(x) with the same arithmetic as exp_sum of the chosen kernels (x <= 0 expected). */
float attn_cpu_exp(const attn_cpu_kernels_t *k, float x);

/* ------------------------------------------------------------------------------------------ */
/* Scalar loops: the portable build, and the backend's inline path for tiny d (a call through  */
/* the table per 3-element dot costs more than the dot).                                       */
/* ------------------------------------------------------------------------------------------ */

static inline float attn_cpu_scalar_dot(const float *x, const float *y, int64_t n) {
  float s = 0.0f;
  for (int64_t k = 0; k < n; k++)
    s += x[k] * y[k];
  return s;
}

static inline void attn_cpu_scalar_axpy(float *y, float a, const float *x, int64_t n) {
  for (int64_t k = 0; k < n; k++)
    y[k] += a * x[k];
}

static inline void attn_cpu_scalar_scal(float *y, float a, int64_t n) {
  for (int64_t k = 0; k < n; k++)
    y[k] *= a;
}

static inline float attn_cpu_scalar_max(const float *x, int64_t n) {
  float m = -INFINITY;
  for (int64_t k = 0; k < n; k++)
    if (x[k] > m) m = x[k];
  return m;
}

static inline int attn_cpu_scalar_has_nan(const float *x, int64_t n) {
  for (int64_t k = 0; k < n; k++)
    if (isnan(x[k])) return 1;
  return 0;
}

/* exp(x), the same reduction and polynomial as the vector builds, without libm calls. */
static inline float attn_cpu_scalar_exp(float x) {
  if (x < EXP_LO) return 0.0f; /* also -inf */
  if (isnan(x)) return x;
  if (x > EXP_HI) x = EXP_HI;
  const float round = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  float i = (x * LOG2E + round) - round;
  float r = x - i * LN2_HI;
  r = r - i * LN2_LO;
  float p = EXP_P0;
  p = p * r + EXP_P1;
  p = p * r + EXP_P2;
  p = p * r + EXP_P3;
  p = p * r + EXP_P4;
  p = p * r + EXP_P5;
  p = p * (r * r) + r + 1.0f;
  uint32_t bits = (uint32_t)((int32_t)i + 127) << 23; /* 2^i, i in [-126, 127] */
  float scale;
  memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

/* No prefetch here (ahead is unused): the portable build leaves it to the hardware. */
static inline void attn_cpu_scalar_dots(const float *u, const float *a, int64_t lda, int64_t count,
                                        int64_t d, float scale, float *s, int64_t ahead) {
  (void)ahead;
  for (int64_t j = 0; j < count; j++)
    s[j] = scale * attn_cpu_scalar_dot(u, a + j * lda, d);
}

static inline void attn_cpu_scalar_axpy_rows(float *y, const float *p, const float *v, int64_t ldv,
                                             int64_t count, int64_t n) {
  for (int64_t j = 0; j < count; j++)
    attn_cpu_scalar_axpy(y, p[j], v + j * ldv, n);
}

static inline float attn_cpu_scalar_exp_sum(float *x, float shift, int64_t n) {
  float s = 0.0f;
  for (int64_t k = 0; k < n; k++) {
    x[k] = attn_cpu_scalar_exp(x[k] - shift);
    s += x[k];
  }
  return s;
}

static inline void attn_cpu_scalar_dots_axpy(const float *u, const float *a, int64_t lda,
                                             int64_t count, int64_t d, float scale, float *s,
                                             int64_t ahead, float *y, const float *p,
                                             const float *v, int64_t ldv, int64_t pcount,
                                             int64_t n) {
  attn_cpu_scalar_dots(u, a, lda, count, d, scale, s, ahead);
  attn_cpu_scalar_axpy_rows(y, p, v, ldv, pcount, n);
}

/* The scalar loops as a table: the portable build's kernels (attn_cpu_kernels() where the CPU has
 * neither AVX2 nor AVX-512), and, static in each file that includes this one, a constant that an
 * always-inline pass can take to have every loop inlined (the backend's path for tiny d). */
static const attn_cpu_kernels_t attn_cpu_scalar_kernels = {"generic",
                                                           attn_cpu_scalar_dot,
                                                           attn_cpu_scalar_axpy,
                                                           attn_cpu_scalar_scal,
                                                           attn_cpu_scalar_max,
                                                           attn_cpu_scalar_has_nan,
                                                           attn_cpu_scalar_exp_sum,
                                                           attn_cpu_scalar_dots,
                                                           attn_cpu_scalar_axpy_rows,
                                                           attn_cpu_scalar_dots_axpy,
                                                           NULL};

#endif
