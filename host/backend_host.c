/*
 * backend_host.c - memory operations shared by the backends that compute in host memory (CPU and
 * REFERENCE): aligned allocation, plain copies, and the wrong-side pointer check.
 */
#include "context.h"

#include <stdlib.h>
#include <string.h>

#ifdef ATTN_WITH_CUDA
#include "attn_cuda.h"
#endif

#define ATTN_HOST_ALIGNMENT 256

attn_status_t attn_host_mem_alloc(attn_context_t *ctx, size_t bytes, void **ptr) {
  void *p = NULL;
  if (bytes > SIZE_MAX - ATTN_HOST_ALIGNMENT ||
      posix_memalign(&p, ATTN_HOST_ALIGNMENT, bytes ? bytes : 1) != 0)
    return attn_fail(ctx, ATTN_ERR_ALLOC, "bytes: cannot allocate %zu bytes of host memory", bytes);
  *ptr = p;
  return ATTN_OK;
}

void attn_host_mem_free(attn_context_t *ctx, void *ptr) {
  (void)ctx;
  free(ptr);
}

attn_status_t attn_host_copy(attn_context_t *ctx, void *dst, const void *src, size_t bytes) {
  (void)ctx;
  if (bytes) memmove(dst, src, bytes);
  return ATTN_OK;
}

attn_status_t attn_host_check_pointer(attn_context_t *ctx, const void *ptr, const char *name) {
#ifdef ATTN_WITH_CUDA
  /* A device pointer handed to a host backend would crash the loops: refuse it when the CUDA
   * runtime can tell (it cannot without a driver, and then no device pointer can exist). */
  if (attn_cuda_is_device_pointer(ptr))
    return attn_fail(ctx, ATTN_ERR_INVALID_ARG,
                     "%s: device pointer given to a %s context (host memory expected)", name,
                     attn_backend_name(ctx->backend));
#else
  (void)ctx;
  (void)ptr;
  (void)name;
#endif
  return ATTN_OK;
}
