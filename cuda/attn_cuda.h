/*
 * attn_cuda.h - the one internal C interface between host/ and cuda/.
 *
 * Plain C: host/ includes it without any CUDA header. cuda/ never includes anything from host/;
 * everything a CUDA function needs arrives through these declarations.
 */
#ifndef ATTN_CUDA_H
#define ATTN_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Outcome of probing for a usable CUDA device. */
typedef enum attn_cuda_probe_result {
  ATTN_CUDA_USABLE = 0,
  ATTN_CUDA_NO_DRIVER = 1,      /* libcuda missing or not loadable */
  ATTN_CUDA_DRIVER_TOO_OLD = 2, /* the driver is older than the runtime attn was built with */
  ATTN_CUDA_NO_DEVICE = 3,      /* a driver but no device (or none visible) */
  ATTN_CUDA_BAD_INDEX = 4,      /* the requested device index does not exist */
  ATTN_CUDA_ARCH_TOO_OLD = 5,   /* compute capability below 8.0 */
  ATTN_CUDA_ERROR = 6           /* any other runtime failure while probing */
} attn_cuda_probe_result_t;

/* Decides whether `device` is usable and writes a one-line reason into reason[reason_size]
 * ("CUDA device 0 (NVIDIA H100 80GB HBM3, sm_90) usable", "no CUDA driver", ...). Never aborts,
 * never leaves a sticky error behind. */
attn_cuda_probe_result_t attn_cuda_probe(int device, char *reason, size_t reason_size);

/* 1 when ptr is device memory the host cannot read (managed memory gives 0). Cheap when no
 * device exists: the runtime is asked once per process whether any device is present. */
int attn_cuda_is_device_pointer(const void *ptr);

#ifdef __cplusplus
}
#endif

#endif
