/*
 * backend_cuda.c - the CUDA backend's table: turns validated attn_problem_t calls into the plain
 * C interface of cuda/attn_cuda.h and its statuses into attn_status_t with the message.
 *
 * Pointers of compute calls are device pointers (offsets and lengths included), so this backend
 * is not host_readable: check.c validates everything it can on the host and the rest (offset
 * and length values, varlen leading dimensions) is checked on the device and reported by
 * attn_context_synchronize(). The stream is read from ctx->options at every call, so that
 * attn_context_set_stream() needs nothing from the backend.
 */
#include "attn_cuda.h"
#include "context.h"

#include <string.h>

static attn_cuda_t *state(attn_context_t *ctx) {
  return (attn_cuda_t *)ctx->backend_state;
}

static attn_status_t status_of(attn_cuda_status_t st) {
  switch (st) {
  case ATTN_CUDA_OK:
    return ATTN_OK;
  case ATTN_CUDA_ERR_RUNTIME:
    return ATTN_ERR_CUDA;
  case ATTN_CUDA_ERR_CUBLAS:
    return ATTN_ERR_CUBLAS;
  case ATTN_CUDA_ERR_STICKY:
    return ATTN_ERR_CUDA_STICKY;
  case ATTN_CUDA_ERR_ALLOC:
    return ATTN_ERR_ALLOC;
  case ATTN_CUDA_ERR_OVERFLOW:
    return ATTN_ERR_OVERFLOW;
  case ATTN_CUDA_ERR_POINTER:
    return ATTN_ERR_INVALID_ARG;
  case ATTN_CUDA_ERR_OFFSETS:
    return ATTN_ERR_INVALID_OFFSETS;
  case ATTN_CUDA_ERR_LENGTH:
    return ATTN_ERR_INVALID_LENGTH;
  case ATTN_CUDA_ERR_LD:
    return ATTN_ERR_INVALID_LD;
  }
  return ATTN_ERR_INTERNAL;
}

/* Maps a cuda/ status into the context: the message of a failure goes into ctx->error. */
static attn_status_t finish(attn_context_t *ctx, attn_cuda_status_t st) {
  if (st == ATTN_CUDA_OK) return ATTN_OK;
  return attn_fail(ctx, status_of(st), "%s", attn_cuda_message(state(ctx)));
}

static attn_status_t cuda_init(attn_context_t *ctx) {
  char msg[ATTN_MESSAGE_SIZE];
  attn_cuda_t *cu = NULL;
  attn_cuda_status_t st = attn_cuda_create(ctx->options.device, &cu, msg, sizeof msg);
  if (st != ATTN_CUDA_OK) return attn_fail(ctx, status_of(st), "%s", msg);
  ctx->backend_state = cu;
  return ATTN_OK;
}

static void cuda_fini(attn_context_t *ctx) {
  attn_cuda_destroy(state(ctx));
  ctx->backend_state = NULL;
}

static attn_status_t cuda_mem_alloc(attn_context_t *ctx, size_t bytes, void **ptr) {
  attn_cuda_status_t st = attn_cuda_alloc(state(ctx), bytes, ptr);
  if (st == ATTN_CUDA_ERR_ALLOC)
    return attn_fail(ctx, ATTN_ERR_ALLOC, "bytes: cannot allocate %zu bytes of device memory (%s)",
                     bytes, attn_cuda_message(state(ctx)));
  return finish(ctx, st);
}

static void cuda_mem_free(attn_context_t *ctx, void *ptr) {
  attn_cuda_free(state(ctx), ptr);
}

static attn_status_t cuda_copy(attn_context_t *ctx, void *dst, const void *src, size_t bytes) {
  return finish(ctx, attn_cuda_copy(state(ctx), ctx->options.stream, dst, src, bytes));
}

static attn_status_t cuda_check_pointer(attn_context_t *ctx, const void *ptr, const char *name) {
  attn_cuda_status_t st = attn_cuda_check_pointer(state(ctx), ptr);
  if (st == ATTN_CUDA_OK) return ATTN_OK;
  return attn_fail(ctx, status_of(st), "%s: %s", name, attn_cuda_message(state(ctx)));
}

static attn_cuda_cmat_t cmat(attn_const_matrix_t x) {
  attn_cuda_cmat_t c = {x.data, x.ld, x.stride};
  return c;
}

static attn_cuda_mat_t mat(attn_matrix_t x) {
  attn_cuda_mat_t c = {x.data, x.ld, x.stride};
  return c;
}

static attn_cuda_algo_t algo_of(attn_algo_t algo) {
  switch (algo) {
  case ATTN_ALGO_SIMPLE:
    return ATTN_CUDA_ALGO_SIMPLE;
  case ATTN_ALGO_GEMM:
    return ATTN_CUDA_ALGO_GEMM;
  case ATTN_ALGO_FUSED:
    return ATTN_CUDA_ALGO_FLASH;
  case ATTN_ALGO_ROWS:
    return ATTN_CUDA_ALGO_ROWS;
  case ATTN_ALGO_AUTO:
    break;
  }
  return ATTN_CUDA_ALGO_AUTO;
}

static void convert(const attn_context_t *ctx, const attn_problem_t *p, attn_cuda_problem_t *c) {
  memset(c, 0, sizeof *c);
  c->op = (attn_cuda_op_t)p->op;
  c->algo = algo_of(ctx->options.algo);
  c->batch = p->batch;
  c->m = p->m;
  c->n = p->n;
  c->d = p->d;
  c->dv = p->dv;
  c->query_offsets = p->query_offsets;
  c->annotation_offsets = p->annotation_offsets;
  c->lengths = p->lengths;
  c->kind = (attn_cuda_score_kind_t)p->score.kind;
  c->scale = p->score.kind == ATTN_SCORE_SCALED_DOT ? p->score.scale : 1.0f;
  c->w = p->score.w;
  c->ldw = p->score.ldw;
  c->h = p->score.h;
  c->wq = p->score.wq;
  c->ldwq = p->score.ldwq;
  c->wa = p->score.wa;
  c->ldwa = p->score.ldwa;
  c->v = p->score.v;
  c->queries = cmat(p->queries);
  c->annotations = cmat(p->annotations);
  c->values = cmat(p->values);
  c->scores_in = cmat(p->scores_in);
  c->weights_in = cmat(p->weights_in);
  c->scores = mat(p->scores);
  c->weights = mat(p->weights);
  c->context = mat(p->context);
  c->lse = p->lse;
}

static attn_status_t cuda_run(attn_context_t *ctx, const attn_problem_t *p) {
  attn_cuda_problem_t c;
  convert(ctx, p, &c);
  return finish(ctx, attn_cuda_run(state(ctx), ctx->options.stream, &c));
}

static attn_status_t cuda_reserve(attn_context_t *ctx, const attn_problem_t *p) {
  attn_cuda_problem_t c;
  convert(ctx, p, &c);
  return finish(ctx, attn_cuda_reserve(state(ctx), &c));
}

static attn_status_t cuda_synchronize(attn_context_t *ctx) {
  return finish(ctx, attn_cuda_synchronize(state(ctx), ctx->options.stream));
}

const attn_backend_ops_t attn_cuda_backend_ops = {
    .kind = ATTN_BACKEND_CUDA,
    .host_readable = 0,
    .init = cuda_init,
    .fini = cuda_fini,
    .mem_alloc = cuda_mem_alloc,
    .mem_free = cuda_mem_free,
    .copy_to_backend = cuda_copy,
    .copy_to_host = cuda_copy,
    .check_pointer = cuda_check_pointer,
    .scores = cuda_run,
    .softmax = cuda_run,
    .weighted_sum = cuda_run,
    .forward = cuda_run,
    .reserve = cuda_reserve,
    .synchronize = cuda_synchronize,
};
