/*
 * memory.cu - device memory for the context's buffers, copies, the wrong-side pointer check,
 * and the context's workspace (grown on reserve or first use, then reused by every call).
 */
#include "state.cuh"

#include <stdio.h>

extern "C" attn_cuda_status_t attn_cuda_alloc(attn_cuda_t *cu, size_t bytes, void **ptr) {
  ATTN_CU_ON_DEVICE(cu);
  void *p = NULL;
  ATTN_CU_CHECK(cu, cudaMalloc(&p, bytes)); /* 256-byte aligned; failure clears its error */
  *ptr = p;
  return ATTN_CUDA_OK;
}

extern "C" void attn_cuda_free(attn_cuda_t *cu, void *ptr) {
  attn_cu_device_scope scope(cu->device);
  if (!ptr || cudaSetDevice(cu->device) != cudaSuccess) return;
  cudaFree(ptr);
  (void)cudaGetLastError();
}

extern "C" attn_cuda_status_t attn_cuda_copy(attn_cuda_t *cu, void *stream, void *dst,
                                             const void *src, size_t bytes) {
  if (bytes == 0) return ATTN_CUDA_OK;
  cudaStream_t s = (cudaStream_t)stream;
  ATTN_CU_ON_DEVICE(cu);
  ATTN_CU_CHECK(cu, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
  ATTN_CU_CHECK(cu, cudaStreamSynchronize(s));
  return ATTN_CUDA_OK;
}

extern "C" attn_cuda_status_t attn_cuda_check_pointer(attn_cuda_t *cu, const void *ptr) {
  cudaPointerAttributes attr;
  cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    snprintf(cu->message, sizeof cu->message, "not a pointer CUDA knows (%s)",
             cudaGetErrorName(err));
    return ATTN_CUDA_ERR_POINTER;
  }
  switch (attr.type) {
  case cudaMemoryTypeDevice:
    if (attr.device == cu->device) return ATTN_CUDA_OK;
    snprintf(cu->message, sizeof cu->message, "device memory of device %d, not of device %d",
             attr.device, cu->device);
    return ATTN_CUDA_ERR_POINTER;
  case cudaMemoryTypeManaged:
  case cudaMemoryTypeHost: /* registered/pinned: mapped into the device's address space */
    return ATTN_CUDA_OK;
  default:
    snprintf(cu->message, sizeof cu->message,
             "host memory given to a CUDA context (device memory expected)");
    return ATTN_CUDA_ERR_POINTER;
  }
}

attn_cuda_status_t attn_cu_workspace(attn_cuda_t *cu, size_t bytes) {
  if (bytes <= cu->workspace_size) return ATTN_CUDA_OK;
  /* The new one first: when it cannot be had, the old one (and what reserve promised for it)
   * stays. cudaFree then waits for the work that still uses the old one. */
  void *bigger = NULL;
  ATTN_CU_CHECK(cu, cudaMalloc(&bigger, bytes));
  cudaError_t err = cudaFree(cu->workspace);
  cu->workspace = bigger;
  cu->workspace_size = bytes;
  ATTN_CU_CHECK(cu, err);
  return ATTN_CUDA_OK;
}
