/*
 * probe.cu - decides whether CUDA is usable: is there a driver, is it new enough, is there a
 * device at the requested index, and is it compute capability 8.0 or newer. AUTO contexts fall
 * back to the CPU with the reason this file writes.
 */
#include "attn_cuda.h"

#include <cuda_runtime.h>
#include <stdio.h>

static attn_cuda_probe_result_t probe_fail(char *reason, size_t reason_size,
                                           attn_cuda_probe_result_t result, const char *text,
                                           cudaError_t err) {
  if (err == cudaSuccess)
    snprintf(reason, reason_size, "%s", text);
  else
    snprintf(reason, reason_size, "%s (%s)", text, cudaGetErrorName(err));
  return result;
}

extern "C" attn_cuda_probe_result_t attn_cuda_probe(int device, char *reason, size_t reason_size) {
  int driver = 0;
  cudaError_t err = cudaDriverGetVersion(&driver);
  if (err != cudaSuccess || driver == 0)
    return probe_fail(reason, reason_size, ATTN_CUDA_NO_DRIVER, "no CUDA driver", err);
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  if (driver < runtime) {
    snprintf(reason, reason_size, "CUDA driver too old (driver %d.%d < runtime %d.%d)",
             driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
    return ATTN_CUDA_DRIVER_TOO_OLD;
  }
  int count = 0;
  err = cudaGetDeviceCount(&count);
  if (err == cudaErrorInsufficientDriver)
    return probe_fail(reason, reason_size, ATTN_CUDA_DRIVER_TOO_OLD, "CUDA driver too old", err);
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0))
    return probe_fail(reason, reason_size, ATTN_CUDA_NO_DEVICE, "no CUDA device", err);
  if (err != cudaSuccess)
    return probe_fail(reason, reason_size, ATTN_CUDA_ERROR, "cudaGetDeviceCount failed", err);
  if (device < 0 || device >= count) {
    snprintf(reason, reason_size, "CUDA device %d does not exist (%d device%s)", device, count,
             count == 1 ? "" : "s");
    return ATTN_CUDA_BAD_INDEX;
  }
  cudaDeviceProp prop;
  err = cudaGetDeviceProperties(&prop, device);
  if (err != cudaSuccess)
    return probe_fail(reason, reason_size, ATTN_CUDA_ERROR, "cudaGetDeviceProperties failed", err);
  if (prop.major < 8) {
    snprintf(reason, reason_size, "CUDA device %d (%s) is sm_%d%d; attn needs sm_80 or newer",
             device, prop.name, prop.major, prop.minor);
    return ATTN_CUDA_ARCH_TOO_OLD;
  }
  snprintf(reason, reason_size, "CUDA device %d (%s, sm_%d%d) usable", device, prop.name,
           prop.major, prop.minor);
  return ATTN_CUDA_USABLE;
}

/* Whether any CUDA device exists in this process; decided once (C++ guarantees thread-safe
 * initialisation of a function-local static). */
static bool any_device() {
  static const bool present = [] {
    int count = 0;
    bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
    cudaGetLastError(); /* the failure above is not sticky; do not leave it behind */
    return ok;
  }();
  return present;
}

extern "C" int attn_cuda_is_device_pointer(const void *ptr) {
  if (!ptr || !any_device()) return 0;
  cudaPointerAttributes attr;
  if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return attr.type == cudaMemoryTypeDevice;
}
