/*
 * cpu_gemm.h - the two matrix products of the CPU backend's GEMM path (row-major, fp32):
 * OpenBLAS sgemm through CBLAS when the build found it (ATTN_HAVE_OPENBLAS), otherwise blocked
 * loops over the cpu_kernels dot/axpy. Either way each row of C depends only on the same row of
 * A and on B (no split of the inner dimension that depends on the number of rows), which the
 * backend relies on for batch invariance.
 */
#ifndef ATTN_HOST_CPU_GEMM_H
#define ATTN_HOST_CPU_GEMM_H

#include "cpu_kernels.h"

#include <stdint.h>

/* 1 when the products run on OpenBLAS. */
int attn_cpu_gemm_blas(void);
/* "OpenBLAS 0.3.21 (...)" or "built-in loops": for messages and benchmarks. */
const char *attn_cpu_gemm_name(void);

/* C [m x n] = alpha * A [m x k] * B^T, B [n x k]. */
void attn_cpu_gemm_nt(const attn_cpu_kernels_t *kn, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                      int64_t ldc);
/* C [m x n] = A [m x k] * B, B [k x n]. */
void attn_cpu_gemm_nn(const attn_cpu_kernels_t *kn, int64_t m, int64_t n, int64_t k, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc);

/* Brackets a parallel region whose threads call the products: OpenBLAS's own thread count is
 * held at 1 in between (process-wide, reference-counted, restored by the last leave), so the
 * library's threads never stack on OpenBLAS's threads. No-ops without OpenBLAS. */
void attn_cpu_gemm_enter(void);
void attn_cpu_gemm_leave(void);

#endif
