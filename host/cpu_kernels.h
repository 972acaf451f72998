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

#include <stdint.h>

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
} attn_cpu_kernels_t;

/* The kernels for this CPU (thread-safe, cheap after the first call). */
const attn_cpu_kernels_t *attn_cpu_kernels(void);

/* exp(x) with the same arithmetic as exp_sum of the chosen kernels (x <= 0 expected). */
float attn_cpu_exp(const attn_cpu_kernels_t *k, float x);

#endif
