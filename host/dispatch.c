/*
 * dispatch.c - the public compute calls: check the arguments once (check.c), then hand the
 * problem to the context's backend. The *_host variants take host arrays on any backend.
 */
#include "dispatch.h"
#include "check.h"
#include "context.h"

attn_status_t attn_run_problem(attn_context_t *ctx, const attn_problem_t *p) {
  const attn_backend_ops_t *ops = ctx->ops;
  switch (p->op) {
  case ATTN_OP_SCORES:
    return ops->scores(ctx, p);
  case ATTN_OP_SOFTMAX:
    return ops->softmax(ctx, p);
  case ATTN_OP_WEIGHTED_SUM:
    return ops->weighted_sum(ctx, p);
  case ATTN_OP_FORWARD:
    return ops->forward(ctx, p);
  }
  return attn_fail(ctx, ATTN_ERR_INTERNAL, "dispatch: unknown operation %d", (int)p->op);
}

/* Every public call starts the same way. */
#define ATTN_BEGIN(ctx)                                                                            \
  do {                                                                                             \
    if (!(ctx)) return ATTN_ERR_NULL_POINTER;                                                      \
    attn_clear_error(ctx);                                                                         \
  } while (0)

attn_status_t attn_scores(attn_context_t *ctx, const attn_shape_t *shape, const attn_score_t *score,
                          attn_const_matrix_t queries, attn_const_matrix_t annotations,
                          attn_matrix_t scores) {
  ATTN_BEGIN(ctx);
  attn_problem_t p;
  attn_status_t st = attn_check_scores(ctx, ctx->ops->host_readable, shape, score, queries,
                                       annotations, scores, &p);
  return st != ATTN_OK ? st : attn_run_problem(ctx, &p);
}

attn_status_t attn_softmax(attn_context_t *ctx, const attn_shape_t *shape,
                           attn_const_matrix_t scores, attn_matrix_t weights, float *lse) {
  ATTN_BEGIN(ctx);
  attn_problem_t p;
  attn_status_t st =
      attn_check_softmax(ctx, ctx->ops->host_readable, shape, scores, weights, lse, &p);
  return st != ATTN_OK ? st : attn_run_problem(ctx, &p);
}

attn_status_t attn_weighted_sum(attn_context_t *ctx, const attn_shape_t *shape,
                                attn_const_matrix_t weights, attn_const_matrix_t values,
                                attn_matrix_t context) {
  ATTN_BEGIN(ctx);
  attn_problem_t p;
  attn_status_t st =
      attn_check_weighted_sum(ctx, ctx->ops->host_readable, shape, weights, values, context, &p);
  return st != ATTN_OK ? st : attn_run_problem(ctx, &p);
}

attn_status_t attn_forward(attn_context_t *ctx, const attn_shape_t *shape,
                           const attn_score_t *score, const attn_inputs_t *in,
                           const attn_outputs_t *out) {
  ATTN_BEGIN(ctx);
  attn_problem_t p;
  attn_status_t st = attn_check_forward(ctx, ctx->ops->host_readable, shape, score, in, out, &p);
  return st != ATTN_OK ? st : attn_run_problem(ctx, &p);
}

attn_status_t attn_context_reserve(attn_context_t *ctx, const attn_shape_t *shape,
                                   const attn_score_t *score) {
  ATTN_BEGIN(ctx);
  attn_problem_t p;
  attn_status_t st = attn_check_reserve(ctx, shape, score, &p);
  if (st != ATTN_OK || !ctx->ops->reserve) return st;
  return ctx->ops->reserve(ctx, &p);
}

attn_status_t attn_scores_host(attn_context_t *ctx, const attn_shape_t *shape,
                               const attn_score_t *score, attn_const_matrix_t queries,
                               attn_const_matrix_t annotations, attn_matrix_t scores) {
  ATTN_BEGIN(ctx);
  attn_problem_t p;
  attn_status_t st = attn_check_scores(ctx, 1, shape, score, queries, annotations, scores, &p);
  return st != ATTN_OK ? st : attn_run_host_problem(ctx, &p);
}

attn_status_t attn_softmax_host(attn_context_t *ctx, const attn_shape_t *shape,
                                attn_const_matrix_t scores, attn_matrix_t weights, float *lse) {
  ATTN_BEGIN(ctx);
  attn_problem_t p;
  attn_status_t st = attn_check_softmax(ctx, 1, shape, scores, weights, lse, &p);
  return st != ATTN_OK ? st : attn_run_host_problem(ctx, &p);
}

attn_status_t attn_weighted_sum_host(attn_context_t *ctx, const attn_shape_t *shape,
                                     attn_const_matrix_t weights, attn_const_matrix_t values,
                                     attn_matrix_t context) {
  ATTN_BEGIN(ctx);
  attn_problem_t p;
  attn_status_t st = attn_check_weighted_sum(ctx, 1, shape, weights, values, context, &p);
  return st != ATTN_OK ? st : attn_run_host_problem(ctx, &p);
}

attn_status_t attn_forward_host(attn_context_t *ctx, const attn_shape_t *shape,
                                const attn_score_t *score, const attn_inputs_t *in,
                                const attn_outputs_t *out) {
  ATTN_BEGIN(ctx);
  attn_problem_t p;
  attn_status_t st = attn_check_forward(ctx, 1, shape, score, in, out, &p);
  return st != ATTN_OK ? st : attn_run_host_problem(ctx, &p);
}
