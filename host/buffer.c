/*
 * buffer.c - memory on the context's backend (device memory for CUDA, host memory for the CPU
 * backends), with upload, download and the raw pointer for compute calls.
 */
#include "context.h"

#include <stdlib.h>

struct attn_buffer {
  void *data;
  size_t bytes;
  const attn_context_t *owner;
};

attn_status_t attn_buffer_alloc(attn_context_t *ctx, size_t bytes, attn_buffer_t **buf) {
  if (!ctx) return ATTN_ERR_NULL_POINTER;
  attn_clear_error(ctx);
  if (!buf) return attn_fail(ctx, ATTN_ERR_NULL_POINTER, "buf: NULL");
  if (bytes == 0) return attn_fail(ctx, ATTN_ERR_INVALID_SIZE, "bytes: 0 must be > 0");
  attn_buffer_t *b = malloc(sizeof *b);
  if (!b) return attn_fail(ctx, ATTN_ERR_ALLOC, "buf: out of host memory for the handle");
  attn_status_t st = ctx->ops->mem_alloc(ctx, bytes, &b->data);
  if (st != ATTN_OK) {
    free(b);
    return st;
  }
  b->bytes = bytes;
  b->owner = ctx;
  *buf = b;
  return ATTN_OK;
}

static attn_status_t check_owner(attn_context_t *ctx, const attn_buffer_t *buf) {
  if (buf->owner != ctx)
    return attn_fail(ctx, ATTN_ERR_INVALID_ARG, "buf: allocated from another context");
  return ATTN_OK;
}

attn_status_t attn_buffer_free(attn_context_t *ctx, attn_buffer_t *buf) {
  if (!ctx) return ATTN_ERR_NULL_POINTER;
  attn_clear_error(ctx);
  if (!buf) return ATTN_OK;
  attn_status_t st = check_owner(ctx, buf);
  if (st != ATTN_OK) return st;
  ctx->ops->mem_free(ctx, buf->data);
  free(buf);
  return ATTN_OK;
}

/* The checks upload and download share: pointers present, range inside the buffer. */
static attn_status_t check_copy(attn_context_t *ctx, const attn_buffer_t *buf, size_t offset,
                                const void *host, const char *host_name, size_t bytes) {
  if (!buf) return attn_fail(ctx, ATTN_ERR_NULL_POINTER, "buf: NULL");
  attn_status_t st = check_owner(ctx, buf);
  if (st != ATTN_OK) return st;
  if (!host && bytes > 0) return attn_fail(ctx, ATTN_ERR_NULL_POINTER, "%s: NULL", host_name);
  if (offset > buf->bytes || bytes > buf->bytes - offset)
    return attn_fail(ctx, ATTN_ERR_INVALID_SIZE,
                     "bytes: offset %zu + %zu bytes runs past the buffer's %zu bytes", offset,
                     bytes, buf->bytes);
  return ATTN_OK;
}

attn_status_t attn_buffer_upload(attn_context_t *ctx, attn_buffer_t *buf, size_t offset,
                                 const void *src, size_t bytes) {
  if (!ctx) return ATTN_ERR_NULL_POINTER;
  attn_clear_error(ctx);
  attn_status_t st = check_copy(ctx, buf, offset, src, "src", bytes);
  if (st != ATTN_OK || bytes == 0) return st;
  return ctx->ops->copy_to_backend(ctx, (char *)buf->data + offset, src, bytes);
}

attn_status_t attn_buffer_download(attn_context_t *ctx, const attn_buffer_t *buf, size_t offset,
                                   void *dst, size_t bytes) {
  if (!ctx) return ATTN_ERR_NULL_POINTER;
  attn_clear_error(ctx);
  attn_status_t st = check_copy(ctx, buf, offset, dst, "dst", bytes);
  if (st != ATTN_OK || bytes == 0) return st;
  return ctx->ops->copy_to_host(ctx, dst, (const char *)buf->data + offset, bytes);
}

void *attn_buffer_data(const attn_buffer_t *buf) {
  return buf ? buf->data : NULL;
}

size_t attn_buffer_size(const attn_buffer_t *buf) {
  return buf ? buf->bytes : 0;
}
