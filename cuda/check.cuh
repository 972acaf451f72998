/*
 * check.cuh - the one check macro for CUDA runtime and cuBLAS calls.
 *
 * ATTN_CU_CHECK(cu, expr) evaluates expr (a cudaError_t or a cublasStatus_t); on failure it
 * records "expr failed in function (file:line): name: description" in cu's message and returns
 * an attn_cuda_status_t from the enclosing function. Nothing here exits or aborts.
 */
#ifndef ATTN_CUDA_CHECK_CUH
#define ATTN_CUDA_CHECK_CUH

#include "attn_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

/* Where a failing call was made. */
struct attn_cu_site {
  const char *expr, *func, *file;
  int line;
};

/* Record the failure in msg[size] and classify it. The runtime variant clears a non-sticky
 * error so that it cannot be reported again by a later call. */
attn_cuda_status_t attn_cu_fail(char *msg, size_t size, cudaError_t err, attn_cu_site site);
attn_cuda_status_t attn_cu_fail(char *msg, size_t size, cublasStatus_t err, attn_cu_site site);

static inline attn_cuda_status_t attn_cu_check(char *msg, size_t size, cudaError_t err,
                                               attn_cu_site site) {
  return err == cudaSuccess ? ATTN_CUDA_OK : attn_cu_fail(msg, size, err, site);
}
static inline attn_cuda_status_t attn_cu_check(char *msg, size_t size, cublasStatus_t err,
                                               attn_cu_site site) {
  return err == CUBLAS_STATUS_SUCCESS ? ATTN_CUDA_OK : attn_cu_fail(msg, size, err, site);
}

/* cu: an attn_cuda_t * (its message buffer receives the text). */
#define ATTN_CU_CHECK(cu, expr)                                                                    \
  do {                                                                                             \
    attn_cuda_status_t attn_cu_status_ =                                                           \
        attn_cu_check((cu)->message, sizeof(cu)->message, (expr),                                  \
                      attn_cu_site{#expr, __func__, __FILE__, __LINE__});                          \
    if (attn_cu_status_ != ATTN_CUDA_OK) return attn_cu_status_;                                   \
  } while (0)

/* Propagates a failed attn_cuda_status_t. */
#define ATTN_CU_TRY(call)                                                                          \
  do {                                                                                             \
    attn_cuda_status_t attn_cu_status_ = (call);                                                   \
    if (attn_cu_status_ != ATTN_CUDA_OK) return attn_cu_status_;                                   \
  } while (0)

#endif
