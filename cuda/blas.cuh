/*
 * blas.cuh - cuBLAS on the context's stream, and the row-major view of its column-major GEMMs.
 *
 * A row-major matrix X [rows x cols] with leading dimension ld is, to cuBLAS, the column-major
 * matrix X^T [cols x rows] with the same ld. So the row-major product C = X Y is computed as the
 * column-major C^T = Y^T X^T: swap the operands and keep each one's own transpose flag.
 */
#ifndef ATTN_CUDA_BLAS_CUH
#define ATTN_CUDA_BLAS_CUH

#include "state.cuh"

#include <limits.h>

/* Points cuBLAS at `stream` and at the context's fixed cuBLAS workspace (cublasSetStream resets
 * the workspace, so the two always go together). Never synchronises. */
static inline attn_cuda_status_t attn_cu_blas_on(attn_cuda_t *cu, cudaStream_t stream) {
  ATTN_CU_CHECK(cu, cublasSetStream(cu->blas, stream));
  ATTN_CU_CHECK(cu, cublasSetWorkspace(cu->blas, cu->blas_workspace, cu->blas_workspace_size));
  return ATTN_CUDA_OK;
}

/* Whether every value fits cuBLAS's int sizes. */
static inline bool attn_cu_fits_int(const int64_t *values, int count) {
  for (int i = 0; i < count; i++)
    if (values[i] < 0 || values[i] > INT_MAX) return false;
  return true;
}

/* A set stride as cuBLAS wants it: ignored (0) for a single set. */
static inline long long attn_cu_set_stride(int64_t batch, int64_t stride) {
  return batch > 1 ? (long long)stride : 0;
}

#endif
