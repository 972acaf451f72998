/*
 * check.cu - turns CUDA runtime and cuBLAS failures into a message and an attn_cuda_status_t
 * (see check.cuh). A sticky error (the context is corrupted, e.g. cudaErrorIllegalAddress) is
 * reported as ATTN_CUDA_ERR_STICKY: the process must be restarted to use the device again.
 */
#include "check.cuh"

#include <stdio.h>
#include <string.h>

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* Errors after which every later call fails too (CUDA's "sticky" errors). */
static bool is_sticky(cudaError_t err) {
  switch (err) {
  case cudaErrorIllegalAddress:
  case cudaErrorLaunchFailure:
  case cudaErrorHardwareStackError:
  case cudaErrorIllegalInstruction:
  case cudaErrorMisalignedAddress:
  case cudaErrorInvalidAddressSpace:
  case cudaErrorInvalidPc:
  case cudaErrorAssert:
  case cudaErrorECCUncorrectable:
  case cudaErrorLaunchTimeout:
    return true;
  default:
    return false;
  }
}

attn_cuda_status_t attn_cu_fail(char *msg, size_t size, cudaError_t err, attn_cu_site site) {
  /* Clears a non-sticky error; a sticky one stays and shows up again. */
  (void)cudaGetLastError();
  bool sticky = is_sticky(err) || cudaPeekAtLastError() != cudaSuccess;
  snprintf(msg, size, "%s%s failed in %s (%s:%d): %s: %s", sticky ? "sticky CUDA error: " : "",
           site.expr, site.func, base_name(site.file), site.line, cudaGetErrorName(err),
           cudaGetErrorString(err));
  if (sticky) return ATTN_CUDA_ERR_STICKY;
  if (err == cudaErrorMemoryAllocation) return ATTN_CUDA_ERR_ALLOC;
  return ATTN_CUDA_ERR_RUNTIME;
}

attn_cuda_status_t attn_cu_fail(char *msg, size_t size, cublasStatus_t err, attn_cu_site site) {
  snprintf(msg, size, "%s failed in %s (%s:%d): %s: %s", site.expr, site.func, base_name(site.file),
           site.line, cublasGetStatusName(err), cublasGetStatusString(err));
  /* cuBLAS reports a failed kernel launch as EXECUTION_FAILED; the runtime knows if it stuck. */
  cudaError_t pending = cudaPeekAtLastError();
  if (pending != cudaSuccess && is_sticky(pending)) return ATTN_CUDA_ERR_STICKY;
  if (err == CUBLAS_STATUS_ALLOC_FAILED) return ATTN_CUDA_ERR_ALLOC;
  return ATTN_CUDA_ERR_CUBLAS;
}
