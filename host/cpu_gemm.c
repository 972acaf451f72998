/*
 * cpu_gemm.c - the GEMM path's products: OpenBLAS sgemm (CBLAS) or built-in blocked loops.
 *
 * OpenBLAS and the backend's threads: the backend runs its own threads (one block of queries
 * each), and each thread calls sgemm on its block while the score block is in cache. Letting
 * OpenBLAS thread inside those calls would stack its workers on ours (on 2 cores, 2 callers each
 * handing half their product to a pool of 2), so attn_cpu_gemm_enter() holds
 * openblas_set_num_threads(1) for the duration of a GEMM-path call and the last
 * attn_cpu_gemm_leave() restores the caller's value. This is process-wide: another thread's
 * OpenBLAS call that starts meanwhile runs single-threaded. The other arrangement (the library's
 * threads off while OpenBLAS threads each product) measured no faster: the blocked path's
 * single-threaded CPU time equals that of the two bare sgemm calls, and it keeps the softmax
 * parallel and each row's arithmetic independent of the thread count.
 */
#include "cpu_gemm.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#ifdef ATTN_HAVE_OPENBLAS
#include <cblas.h>
#endif

#define GEMM_COL_BLOCK 64 /* fallback: rows of B kept hot across the rows of A */

static int fits_int(int64_t v) {
  return v <= INT_MAX;
}

#ifdef ATTN_HAVE_OPENBLAS
static int blas_ok(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
  return fits_int(m) && fits_int(n) && fits_int(k) && fits_int(lda) && fits_int(ldb) &&
         fits_int(ldc);
}
#endif

int attn_cpu_gemm_blas(void) {
#ifdef ATTN_HAVE_OPENBLAS
  return 1;
#else
  return 0;
#endif
}

const char *attn_cpu_gemm_name(void) {
#ifdef ATTN_HAVE_OPENBLAS
  return openblas_get_config();
#else
  return "built-in loops";
#endif
}

void attn_cpu_gemm_nt(const attn_cpu_kernels_t *kn, int64_t m, int64_t n, int64_t k, float alpha,
                      const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                      int64_t ldc) {
#ifdef ATTN_HAVE_OPENBLAS
  if (blas_ok(m, n, k, lda, ldb, ldc)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda,
                b, (int)ldb, 0.0f, c, (int)ldc);
    return;
  }
#endif
  (void)fits_int;
  for (int64_t j0 = 0; j0 < n; j0 += GEMM_COL_BLOCK) {
    int64_t j1 = j0 + GEMM_COL_BLOCK < n ? j0 + GEMM_COL_BLOCK : n;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = j0; j < j1; j++)
        c[i * ldc + j] = alpha * kn->dot(a + i * lda, b + j * ldb, k);
  }
}

void attn_cpu_gemm_nn(const attn_cpu_kernels_t *kn, int64_t m, int64_t n, int64_t k, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc) {
#ifdef ATTN_HAVE_OPENBLAS
  if (blas_ok(m, n, k, lda, ldb, ldc)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a,
                (int)lda, b, (int)ldb, 0.0f, c, (int)ldc);
    return;
  }
#endif
  for (int64_t i = 0; i < m; i++) {
    float *ci = c + i * ldc;
    memset(ci, 0, (size_t)n * sizeof(float));
    kn->axpy_rows(ci, a + i * lda, b, ldb, k, n);
  }
}

#ifdef ATTN_HAVE_OPENBLAS
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_users;
static int blas_saved_threads;
#endif

void attn_cpu_gemm_enter(void) {
#ifdef ATTN_HAVE_OPENBLAS
  pthread_mutex_lock(&blas_lock);
  if (blas_users++ == 0) {
    blas_saved_threads = openblas_get_num_threads();
    if (blas_saved_threads != 1) openblas_set_num_threads(1);
  }
  pthread_mutex_unlock(&blas_lock);
#endif
}

void attn_cpu_gemm_leave(void) {
#ifdef ATTN_HAVE_OPENBLAS
  pthread_mutex_lock(&blas_lock);
  if (--blas_users == 0 && blas_saved_threads != 1) openblas_set_num_threads(blas_saved_threads);
  pthread_mutex_unlock(&blas_lock);
#endif
}
