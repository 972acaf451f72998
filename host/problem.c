/*
 * problem.c - per-set views of a validated problem: uniform batches by strides, variable-length
 * batches by prefix-sum offsets. Every host backend walks sets through attn_problem_set().
 */
#include "problem.h"

#include <stddef.h>

/* Element offset of set b's first row in a matrix with this ld / stride. */
static int64_t set_offset(const attn_problem_t *p, int64_t b, int64_t ld, int64_t stride,
                          const int32_t *offsets) {
  if (!p->query_offsets) return b * stride;
  /* A set with no rows on this side is never read or written. Its pointer stays at the matrix's
   * start: offsets[b] * ld, with offsets[b] the row count, is past what the checks bound (the
   * last row, (rows - 1) ld), and may overflow for a large ld. */
  if (offsets[b + 1] == offsets[b]) return 0;
  return (int64_t)offsets[b] * ld;
}

static const float *in_at(const attn_problem_t *p, int64_t b, attn_const_matrix_t x,
                          const int32_t *offsets) {
  return x.data ? x.data + set_offset(p, b, x.ld, x.stride, offsets) : NULL;
}

static float *out_at(const attn_problem_t *p, int64_t b, attn_matrix_t x, const int32_t *offsets) {
  return x.data ? x.data + set_offset(p, b, x.ld, x.stride, offsets) : NULL;
}

void attn_problem_set(const attn_problem_t *p, int64_t b, attn_set_t *set) {
  const int32_t *qo = p->query_offsets, *ao = p->annotation_offsets;
  if (qo) {
    set->m = (int64_t)qo[b + 1] - qo[b];
    set->n = (int64_t)ao[b + 1] - ao[b];
  } else {
    set->m = p->m;
    set->n = p->n;
  }
  set->valid = p->lengths ? p->lengths[b] : set->n;
  set->queries = in_at(p, b, p->queries, qo);
  set->annotations = in_at(p, b, p->annotations, ao);
  set->values = in_at(p, b, p->values, ao);
  set->scores_in = in_at(p, b, p->scores_in, qo);
  set->weights_in = in_at(p, b, p->weights_in, qo);
  set->scores = out_at(p, b, p->scores, qo);
  set->weights = out_at(p, b, p->weights, qo);
  set->context = out_at(p, b, p->context, qo);
  set->lse = p->lse ? p->lse + (qo ? (int64_t)qo[b] : b * p->m) : NULL;
}

int64_t attn_problem_max_set_n(const attn_problem_t *p) {
  if (!p->annotation_offsets) return p->n;
  int64_t best = 0;
  for (int64_t b = 0; b < p->batch; b++) {
    int64_t nb = (int64_t)p->annotation_offsets[b + 1] - p->annotation_offsets[b];
    if (nb > best) best = nb;
  }
  return best;
}
