/*
 * state.cuh - the inside of attn_cuda_t (one per attn context) and the device-side error flag.
 *
 * Deferred validation: offsets and lengths live on the device, so validate.cu checks them in a
 * kernel queued before the call's compute kernels. It writes this call's verdict into
 * flag->bad, which every compute kernel of the call reads first (writing nothing when it is
 * set), and keeps the first failure's details until attn_cuda_synchronize() reports them.
 */
#ifndef ATTN_CUDA_STATE_CUH
#define ATTN_CUDA_STATE_CUH

#include "attn_cuda.h"
#include "check.cuh"

#include <cublas_v2.h>
#include <cuda_runtime.h>

/* Argument codes of attn_cu_flag::arg. */
enum attn_cu_arg {
  ATTN_CU_ARG_QUERY_OFFSETS = 0,
  ATTN_CU_ARG_ANNOTATION_OFFSETS = 1,
  ATTN_CU_ARG_LENGTHS = 2,
  ATTN_CU_ARG_SCORES_LD = 3,
  ATTN_CU_ARG_WEIGHTS_LD = 4
};

/* Problem codes of attn_cu_flag::code (0 = none). */
enum attn_cu_problem {
  ATTN_CU_BAD_NONE = 0,
  ATTN_CU_BAD_NEGATIVE = 1, /* offsets[0] < 0 */
  ATTN_CU_BAD_DECREASE = 2, /* offsets[index] < offsets[index - 1] */
  ATTN_CU_BAD_PAST = 3,     /* offsets[batch] > total rows */
  ATTN_CU_BAD_LENGTH = 4,   /* lengths[index] outside [0, n_index] */
  ATTN_CU_BAD_LD = 5        /* an ld shorter than set index's n */
};

/* Device memory; written by validate.cu, read back by attn_cuda_synchronize(). */
struct attn_cu_flag {
  int bad;  /* this call's verdict: an attn_cu_problem code, 0 when valid */
  int code; /* the first failure since the last synchronize ... */
  int arg;  /* ... which argument (attn_cu_arg) ... */
  int pad;
  long long index; /* ... which entry or set ... */
  long long value; /* ... the offending value ... */
  long long limit; /* ... and what it was compared with */
};

struct attn_cuda {
  int device;
  attn_cuda_flash_device_t flash; /* what the flash plan reads of the device (attn_cuda.h; set by
                                     attn_cuda_create and attn_cu_flash_init) */
  int short_blocks[9]; /* resident blocks a multiprocessor of THREAD's short-set kernel, for each
                          of its instances (flash_thread.cu: short_index; 0: unknown) */
  cublasHandle_t blas;
  void *blas_workspace; /* handed to cuBLAS after every cublasSetStream */
  size_t blas_workspace_size;
  void *workspace; /* projections and scratch scores; grows, never shrinks */
  size_t workspace_size;
  attn_cu_flag *flag;
  char message[512];
};

/* Restores the calling thread's current device when it goes out of scope: a library must not
 * leave its caller on another device. */
struct attn_cu_device_scope {
  int previous, device;
  explicit attn_cu_device_scope(int d) : previous(-1), device(d) {
    if (cudaGetDevice(&previous) != cudaSuccess) {
      (void)cudaGetLastError();
      previous = -1;
    }
  }
  ~attn_cu_device_scope() {
    if (previous >= 0 && previous != device) (void)cudaSetDevice(previous);
  }
  attn_cu_device_scope(const attn_cu_device_scope &) = delete;
  attn_cu_device_scope &operator=(const attn_cu_device_scope &) = delete;
};

/* Makes cu's device current until the end of the enclosing scope (returns on failure). */
#define ATTN_CU_ON_DEVICE(cu)                                                                      \
  attn_cu_device_scope attn_cu_scope_((cu)->device);                                               \
  ATTN_CU_CHECK(cu, cudaSetDevice((cu)->device))
/* Ensures the workspace holds `bytes` (cudaMalloc only when it must grow). */
attn_cuda_status_t attn_cu_workspace(attn_cuda_t *cu, size_t bytes);

#endif
