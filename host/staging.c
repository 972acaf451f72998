/*
 * staging.c - the host-array convenience layer's copies. A problem whose arrays are host memory
 * runs directly on a host backend; on any other backend every array is copied into one block of
 * backend memory, the problem runs there, and the outputs come back. Outputs are uploaded too,
 * so that elements the call does not write (ld gaps, entries past a set's n) keep their values,
 * and they are downloaded into a host block first and copied out only once everything worked:
 * a failure leaves the caller's outputs untouched.
 */
#include "check.h"
#include "context.h"
#include "dispatch.h"

#include <stdlib.h>
#include <string.h>

#define STAGE_ALIGN   256
#define STAGE_MAX_OUT 8

typedef struct stage_out {
  void *user;     /* the caller's host output */
  size_t bytes;   /* its extent */
  size_t dev_off; /* where it lives in the backend block */
  size_t host_off;
} stage_out_t;

typedef struct stage {
  attn_context_t *ctx;
  int copying;      /* 0: measuring the block; 1: copying into it */
  int overflow;     /* a size did not fit in size_t */
  size_t dev_bytes; /* running offset in the backend block */
  size_t out_bytes; /* running offset in the host output block */
  char *dev;
  attn_status_t status;
  stage_out_t outs[STAGE_MAX_OUT];
  int nouts;
} stage_t;

static size_t reserve_bytes(stage_t *s, size_t *total, size_t bytes) {
  size_t at = *total;
  size_t padded = bytes + (STAGE_ALIGN - bytes % STAGE_ALIGN) % STAGE_ALIGN;
  if (padded < bytes || padded > SIZE_MAX - at) {
    s->overflow = 1;
    return at;
  }
  *total = at + padded;
  return at;
}

/* Stages one array of `bytes` at host pointer `host`; returns its backend pointer (NULL for
 * NULL). Inputs and outputs are both uploaded; outputs are remembered for the way back. */
static void *stage_array(stage_t *s, const void *host, size_t bytes, void *output) {
  if (!host) return NULL;
  size_t off = reserve_bytes(s, &s->dev_bytes, bytes);
  size_t host_off = output ? reserve_bytes(s, &s->out_bytes, bytes) : 0;
  if (!s->copying || s->overflow) return NULL;
  char *dev = s->dev + off;
  if (s->status == ATTN_OK && bytes > 0)
    s->status = s->ctx->ops->copy_to_backend(s->ctx, dev, host, bytes);
  if (output && s->nouts < STAGE_MAX_OUT)
    s->outs[s->nouts++] = (stage_out_t){output, bytes, off, host_off};
  return dev;
}

static size_t matrix_bytes(const attn_problem_t *p, int64_t stride, int64_t rows, int64_t ld,
                           int64_t width) {
  int64_t elements = 0;
  int64_t sets = p->query_offsets ? 1 : p->batch;
  attn_matrix_extent(sets, stride, rows, ld, width, &elements); /* checked by check.c */
  return (size_t)elements * sizeof(float);
}

static attn_const_matrix_t stage_in(stage_t *s, const attn_problem_t *p, attn_const_matrix_t x,
                                    int64_t rows, int64_t width) {
  x.data = stage_array(s, x.data, matrix_bytes(p, x.stride, rows, x.ld, width), NULL);
  return x;
}

static attn_matrix_t stage_out(stage_t *s, const attn_problem_t *p, attn_matrix_t x, int64_t rows,
                               int64_t width) {
  x.data = stage_array(s, x.data, matrix_bytes(p, x.stride, rows, x.ld, width), x.data);
  return x;
}

/* Stages every array of p into *dp (pointers replaced, everything else kept). */
static void stage_problem(stage_t *s, const attn_problem_t *p, attn_problem_t *dp) {
  const int64_t width = p->max_set_n; /* host-readable: known */
  const size_t offsets = (size_t)(p->batch + 1) * sizeof(int32_t);
  *dp = *p;
  dp->query_offsets = stage_array(s, p->query_offsets, offsets, NULL);
  dp->annotation_offsets = stage_array(s, p->annotation_offsets, offsets, NULL);
  dp->lengths = stage_array(s, p->lengths, (size_t)p->batch * sizeof(int32_t), NULL);
  const attn_score_t *sc = &p->score;
  if (p->op == ATTN_OP_SCORES || p->op == ATTN_OP_FORWARD) {
    dp->score.w = stage_array(s, sc->w, matrix_bytes(p, 0, p->d, sc->ldw, p->d), NULL);
    dp->score.wq = stage_array(s, sc->wq, matrix_bytes(p, 0, sc->h, sc->ldwq, p->d), NULL);
    dp->score.wa = stage_array(s, sc->wa, matrix_bytes(p, 0, sc->h, sc->ldwa, p->d), NULL);
    dp->score.v = stage_array(s, sc->v, (size_t)sc->h * sizeof(float), NULL);
  }
  dp->queries = stage_in(s, p, p->queries, p->m, p->d);
  dp->annotations = stage_in(s, p, p->annotations, p->n, p->d);
  if (p->op == ATTN_OP_FORWARD && p->values.data == p->annotations.data &&
      p->values.ld == p->annotations.ld && p->values.stride == p->annotations.stride &&
      p->dv == p->d)
    dp->values = dp->annotations;
  else
    dp->values = stage_in(s, p, p->values, p->n, p->dv);
  dp->scores_in = stage_in(s, p, p->scores_in, p->m, width);
  dp->weights_in = stage_in(s, p, p->weights_in, p->m, width);
  dp->scores = stage_out(s, p, p->scores, p->m, width);
  dp->weights = stage_out(s, p, p->weights, p->m, width);
  dp->context = stage_out(s, p, p->context, p->m, p->dv);
  /* batch x m is checked only where there is an lse (check_lse): not computed otherwise */
  const int64_t lse_count = !p->lse ? 0 : p->query_offsets ? p->m : p->batch * p->m;
  dp->lse = stage_array(s, p->lse, (size_t)lse_count * sizeof(float), p->lse);
}

static attn_status_t run_staged(attn_context_t *ctx, const attn_problem_t *p) {
  stage_t s;
  memset(&s, 0, sizeof s);
  s.ctx = ctx;
  attn_problem_t dp;
  stage_problem(&s, p, &dp); /* measure */
  if (s.overflow)
    return attn_fail(ctx, ATTN_ERR_OVERFLOW, "staging: the arrays' total size overflows size_t");

  void *dev = NULL;
  attn_status_t st = ctx->ops->mem_alloc(ctx, s.dev_bytes ? s.dev_bytes : 1, &dev);
  if (st != ATTN_OK) return st;
  char *host_out = malloc(s.out_bytes ? s.out_bytes : 1);
  if (!host_out) {
    ctx->ops->mem_free(ctx, dev);
    return attn_fail(ctx, ATTN_ERR_ALLOC, "staging: cannot allocate %zu bytes of host memory",
                     s.out_bytes);
  }
  s.copying = 1;
  s.dev = dev;
  s.dev_bytes = s.out_bytes = 0;
  stage_problem(&s, p, &dp); /* copy in */
  st = s.status;
  if (st == ATTN_OK) st = attn_run_problem(ctx, &dp);
  if (st == ATTN_OK && ctx->ops->synchronize) st = ctx->ops->synchronize(ctx);
  for (int i = 0; st == ATTN_OK && i < s.nouts; i++)
    if (s.outs[i].bytes)
      st = ctx->ops->copy_to_host(ctx, host_out + s.outs[i].host_off, s.dev + s.outs[i].dev_off,
                                  s.outs[i].bytes);
  for (int i = 0; st == ATTN_OK && i < s.nouts; i++)
    if (s.outs[i].bytes) memcpy(s.outs[i].user, host_out + s.outs[i].host_off, s.outs[i].bytes);
  free(host_out);
  ctx->ops->mem_free(ctx, dev);
  return st;
}

attn_status_t attn_run_host_problem(attn_context_t *ctx, const attn_problem_t *p) {
  if (ctx->ops->host_readable && !ctx->force_staging) return attn_run_problem(ctx, p);
  return run_staged(ctx, p);
}
