/*
 * check.h - argument checking for every compute call, in one place that every backend relies on.
 *
 * Each attn_check_* validates the arguments of the public call of the same name (everything in
 * DESIGN.md's "Errors and bad input") and, on success, fills an attn_problem_t for the backend.
 * On failure it returns the status, leaves the message in ctx, and the caller touches nothing.
 */
#ifndef ATTN_HOST_CHECK_H
#define ATTN_HOST_CHECK_H

#include "backend.h"

/* host_readable: whether offsets and lengths may be read here (they are host memory). */
attn_status_t attn_check_scores(attn_context_t *ctx, int host_readable, const attn_shape_t *shape,
                                const attn_score_t *score, attn_const_matrix_t queries,
                                attn_const_matrix_t annotations, attn_matrix_t scores,
                                attn_problem_t *p);
attn_status_t attn_check_softmax(attn_context_t *ctx, int host_readable, const attn_shape_t *shape,
                                 attn_const_matrix_t scores, attn_matrix_t weights, float *lse,
                                 attn_problem_t *p);
attn_status_t attn_check_weighted_sum(attn_context_t *ctx, int host_readable,
                                      const attn_shape_t *shape, attn_const_matrix_t weights,
                                      attn_const_matrix_t values, attn_matrix_t context,
                                      attn_problem_t *p);
attn_status_t attn_check_forward(attn_context_t *ctx, int host_readable, const attn_shape_t *shape,
                                 const attn_score_t *score, const attn_inputs_t *in,
                                 const attn_outputs_t *out, attn_problem_t *p);
/* attn_context_reserve: the shape and score only; offsets and lengths are never read. */
attn_status_t attn_check_reserve(attn_context_t *ctx, const attn_shape_t *shape,
                                 const attn_score_t *score, attn_problem_t *p);

/* Number of floats a matrix spans: (batch-1)*stride + (rows-1)*ld + width, 0 when empty.
 * Returns 0 on success, -1 on overflow of int64/size_t byte counts, or when the offset of the
 * last set's last row, (sets-1)*stride + (rows-1)*ld, overflows int64 (even when empty). */
int attn_matrix_extent(int64_t sets, int64_t stride, int64_t rows, int64_t ld, int64_t width,
                       int64_t *elements);

#endif
