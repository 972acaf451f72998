/*
 * device.cu - the per-context CUDA state: creation on a device (cuBLAS handle in plain fp32
 * mode, its workspace, the device-side error flag), destruction, and synchronisation, which is
 * where errors found on the device by validate.cu are reported.
 */
#include "flash.cuh"
#include "state.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cuBLAS's own workspace: fixed, so that graph capture never makes it allocate. NVIDIA
 * recommends 32 MiB on Hopper, 4 MiB before it. */
static const size_t ATTN_CU_BLAS_WORKSPACE = (size_t)32 << 20;

static attn_cuda_status_t create_on_device(attn_cuda_t *cu) {
  ATTN_CU_ON_DEVICE(cu);
  ATTN_CU_CHECK(
      cu, cudaDeviceGetAttribute(&cu->flash.sm_count, cudaDevAttrMultiProcessorCount, cu->device));
  ATTN_CU_TRY(attn_cu_flash_init(cu));
  ATTN_CU_CHECK(cu, cudaMalloc((void **)&cu->flag, sizeof *cu->flag));
  ATTN_CU_CHECK(cu, cudaMemset(cu->flag, 0, sizeof *cu->flag));
  ATTN_CU_CHECK(cu, cudaMalloc(&cu->blas_workspace, ATTN_CU_BLAS_WORKSPACE));
  cu->blas_workspace_size = ATTN_CU_BLAS_WORKSPACE;
  ATTN_CU_CHECK(cu, cublasCreate(&cu->blas));
  /* Plain fp32: no TF32 tensor-op math, so cuBLAS stays within the fp32 tolerance. */
  ATTN_CU_CHECK(cu, cublasSetMathMode(cu->blas, CUBLAS_DEFAULT_MATH));
  ATTN_CU_CHECK(cu, cublasSetPointerMode(cu->blas, CUBLAS_POINTER_MODE_HOST));
  ATTN_CU_CHECK(cu, cudaDeviceSynchronize());
  return ATTN_CUDA_OK;
}

extern "C" attn_cuda_status_t attn_cuda_create(int device, attn_cuda_t **out, char *msg,
                                               size_t msg_size) {
  attn_cuda_t *cu = (attn_cuda_t *)calloc(1, sizeof *cu);
  if (!cu) {
    snprintf(msg, msg_size, "cuda: out of host memory for the CUDA state");
    return ATTN_CUDA_ERR_ALLOC;
  }
  cu->device = device;
  attn_cuda_status_t st = create_on_device(cu);
  if (st != ATTN_CUDA_OK) {
    snprintf(msg, msg_size, "%s", cu->message);
    attn_cuda_destroy(cu);
    return st;
  }
  *out = cu;
  return ATTN_CUDA_OK;
}

extern "C" void attn_cuda_destroy(attn_cuda_t *cu) {
  if (!cu) return;
  attn_cu_device_scope scope(cu->device);
  if (cudaSetDevice(cu->device) == cudaSuccess) {
    if (cu->blas) cublasDestroy(cu->blas); /* waits for its work */
    cudaFree(cu->workspace);               /* cudaFree waits for the device */
    cudaFree(cu->blas_workspace);
    cudaFree(cu->flag);
  }
  (void)cudaGetLastError(); /* nothing to report from a destructor; leave no error behind */
  free(cu);
}

extern "C" const char *attn_cuda_message(const attn_cuda_t *cu) {
  return cu ? cu->message : "";
}

/* The name of an attn_cu_arg, as the public API spells it. */
static const char *arg_name(int arg) {
  switch (arg) {
  case ATTN_CU_ARG_QUERY_OFFSETS:
    return "shape->query_offsets";
  case ATTN_CU_ARG_ANNOTATION_OFFSETS:
    return "shape->annotation_offsets";
  case ATTN_CU_ARG_LENGTHS:
    return "shape->lengths";
  case ATTN_CU_ARG_SCORES_LD:
    return "scores.ld";
  default:
    return "weights.ld";
  }
}

/* Turns a recorded device-side failure into a status and a message like check.c's. */
static attn_cuda_status_t report(attn_cuda_t *cu, const attn_cu_flag *f) {
  const char *name = arg_name(f->arg);
  switch (f->code) {
  case ATTN_CU_BAD_NEGATIVE:
    snprintf(cu->message, sizeof cu->message, "%s[0]: %lld is negative (checked on the device)",
             name, f->value);
    return ATTN_CUDA_ERR_OFFSETS;
  case ATTN_CU_BAD_DECREASE:
    snprintf(cu->message, sizeof cu->message,
             "%s[%lld]: %lld < previous %lld (checked on the device)", name, f->index, f->value,
             f->limit);
    return ATTN_CUDA_ERR_OFFSETS;
  case ATTN_CU_BAD_PAST:
    snprintf(cu->message, sizeof cu->message,
             "%s[%lld]: %lld runs past %s %lld (checked on the device)", name, f->index, f->value,
             f->arg == ATTN_CU_ARG_QUERY_OFFSETS ? "m" : "n", f->limit);
    return ATTN_CUDA_ERR_OFFSETS;
  case ATTN_CU_BAD_LENGTH:
    snprintf(cu->message, sizeof cu->message,
             "%s[%lld]: %lld not in [0, %lld] (checked on the device)", name, f->index, f->value,
             f->limit);
    return ATTN_CUDA_ERR_LENGTH;
  default:
    snprintf(cu->message, sizeof cu->message,
             "%s: %lld < set %lld's %lld annotations (checked on the device)", name, f->value,
             f->index, f->limit);
    return ATTN_CUDA_ERR_LD;
  }
}

extern "C" attn_cuda_status_t attn_cuda_synchronize(attn_cuda_t *cu, void *stream) {
  cudaStream_t s = (cudaStream_t)stream;
  ATTN_CU_ON_DEVICE(cu);
  attn_cu_flag f;
  ATTN_CU_CHECK(cu, cudaMemcpyAsync(&f, cu->flag, sizeof f, cudaMemcpyDeviceToHost, s));
  ATTN_CU_CHECK(cu, cudaStreamSynchronize(s));
  if (f.code == ATTN_CU_BAD_NONE) return ATTN_CUDA_OK;
  ATTN_CU_CHECK(cu, cudaMemsetAsync(cu->flag, 0, sizeof *cu->flag, s));
  ATTN_CU_CHECK(cu, cudaStreamSynchronize(s));
  return report(cu, &f);
}
