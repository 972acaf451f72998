/*
 * backend_reference.c - the REFERENCE backend: the oracle every other backend is tested against.
 *
 * Plain loops, one query at a time, every sum accumulated in double, so that its own error is far
 * below the fp32 backends' tolerance. Written to be obviously right, not fast.
 */
#include "context.h"
#include "problem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per-call scratch, sized for the longest set. */
typedef struct scratch {
  double *s;   /* [max_n] one row of scores, then weights */
  double *acc; /* [max(d, dv)] the general score's q^T W, or a context row */
  double *pq;  /* [h] additive: W_q q */
  double *pa;  /* [max_n x h] additive: W_a a_j for every annotation of the set */
  void *block;
} scratch_t;

static int add_size(size_t *total, size_t count) {
  if (count > (SIZE_MAX - *total) / sizeof(double)) return -1;
  *total += count * sizeof(double);
  return 0;
}

static attn_status_t scratch_alloc(attn_context_t *ctx, const attn_problem_t *p, scratch_t *w) {
  size_t max_n = (size_t)p->max_set_n; /* known: host backends read offsets */
  size_t wide = (size_t)(p->d > p->dv ? p->d : p->dv);
  int additive =
      (p->op == ATTN_OP_SCORES || p->op == ATTN_OP_FORWARD) && p->score.kind == ATTN_SCORE_ADDITIVE;
  size_t h = additive ? (size_t)p->score.h : 0, total = 0;
  if (add_size(&total, max_n + 1) || add_size(&total, wide + 1) || add_size(&total, h) ||
      (h && max_n > SIZE_MAX / h) || add_size(&total, max_n * h))
    return attn_fail(ctx, ATTN_ERR_OVERFLOW,
                     "n, score.h: the reference's scratch (n x h doubles) overflows size_t");
  double *block = malloc(total);
  if (!block)
    return attn_fail(ctx, ATTN_ERR_ALLOC, "reference: cannot allocate %zu bytes of scratch", total);
  w->block = block;
  w->s = block;
  w->acc = w->s + max_n + 1;
  w->pq = w->acc + wide + 1;
  w->pa = w->pq + h;
  return ATTN_OK;
}

static double dot(const float *x, const float *y, int64_t d) {
  double sum = 0.0;
  for (int64_t k = 0; k < d; k++)
    sum += (double)x[k] * (double)y[k];
  return sum;
}

/* out[r] = sum_k M[r][k] * x[k] for an [rows x d] matrix with leading dimension ld. */
static void matvec(const float *mat, int64_t ld, int64_t rows, const float *x, int64_t d,
                   double *out) {
  for (int64_t r = 0; r < rows; r++)
    out[r] = dot(mat + r * ld, x, d);
}

/* Work that depends on the set but not on the query: the additive score's W_a a_j. */
static void prepare_set(const attn_problem_t *p, const attn_set_t *set, scratch_t *w) {
  if (p->score.kind != ATTN_SCORE_ADDITIVE) return;
  const attn_score_t *sc = &p->score;
  for (int64_t j = 0; j < set->valid; j++)
    matvec(sc->wa, sc->ldwa, sc->h, set->annotations + j * p->annotations.ld, p->d,
           w->pa + j * sc->h);
}

/* s[j] = score(q, a_j) for the set's valid annotations. */
static void score_row(const attn_problem_t *p, const attn_set_t *set, const float *q,
                      scratch_t *w) {
  const attn_score_t *sc = &p->score;
  const int64_t d = p->d, lda = p->annotations.ld;
  switch (sc->kind) {
  case ATTN_SCORE_DOT:
  case ATTN_SCORE_SCALED_DOT: {
    double scale = sc->kind == ATTN_SCORE_SCALED_DOT ? (double)sc->scale : 1.0;
    for (int64_t j = 0; j < set->valid; j++)
      w->s[j] = scale * dot(q, set->annotations + j * lda, d);
    break;
  }
  case ATTN_SCORE_GENERAL: /* u = q^T W, then s_j = u . a_j */
    for (int64_t l = 0; l < d; l++) {
      double u = 0.0;
      for (int64_t k = 0; k < d; k++)
        u += (double)q[k] * (double)sc->w[k * sc->ldw + l];
      w->acc[l] = u;
    }
    for (int64_t j = 0; j < set->valid; j++) {
      const float *a = set->annotations + j * lda;
      double sum = 0.0;
      for (int64_t l = 0; l < d; l++)
        sum += w->acc[l] * (double)a[l];
      w->s[j] = sum;
    }
    break;
  case ATTN_SCORE_ADDITIVE:
    matvec(sc->wq, sc->ldwq, sc->h, q, d, w->pq);
    for (int64_t j = 0; j < set->valid; j++) {
      const double *pa = w->pa + j * sc->h;
      double sum = 0.0;
      for (int64_t k = 0; k < sc->h; k++)
        sum += (double)sc->v[k] * tanh(w->pq[k] + pa[k]);
      w->s[j] = sum;
    }
    break;
  }
}

/* Turns s[0..count) into softmax weights in place and returns the log-sum-exp. A NaN makes the
 * whole row NaN; a row with no entry above -inf gets zero weights and -inf. */
static double softmax_row(double *s, int64_t count) {
  double mx = -INFINITY;
  for (int64_t j = 0; j < count; j++) {
    if (isnan(s[j])) {
      mx = NAN;
      break;
    }
    if (s[j] > mx) mx = s[j];
  }
  if (mx == -INFINITY) {
    for (int64_t j = 0; j < count; j++)
      s[j] = 0.0;
    return -INFINITY;
  }
  double sum = 0.0;
  for (int64_t j = 0; j < count; j++) {
    s[j] = exp(s[j] - mx);
    sum += s[j];
  }
  for (int64_t j = 0; j < count; j++)
    s[j] /= sum;
  return mx + log(sum);
}

/* c = sum_j w_j v_j over the set's valid annotations, accumulated in double. */
static void context_row(const attn_problem_t *p, const attn_set_t *set, const double *wts,
                        double *acc, float *c) {
  const int64_t dv = p->dv, ldv = p->values.ld;
  for (int64_t k = 0; k < dv; k++)
    acc[k] = 0.0;
  for (int64_t j = 0; j < set->valid; j++) {
    const float *v = set->values + j * ldv;
    for (int64_t k = 0; k < dv; k++)
      acc[k] += wts[j] * (double)v[k];
  }
  for (int64_t k = 0; k < dv; k++)
    c[k] = (float)acc[k];
}

/* Writes a row of n_b entries: the valid ones from s, `fill` past the valid length. */
static void store_row(float *row, const double *s, int64_t valid, int64_t n, float fill) {
  for (int64_t j = 0; j < valid; j++)
    row[j] = (float)s[j];
  for (int64_t j = valid; j < n; j++)
    row[j] = fill;
}

static void load_row(double *s, const float *row, int64_t valid) {
  for (int64_t j = 0; j < valid; j++)
    s[j] = (double)row[j];
}

static void run_set(const attn_problem_t *p, const attn_set_t *set, scratch_t *w) {
  if (p->op == ATTN_OP_SCORES || p->op == ATTN_OP_FORWARD) prepare_set(p, set, w);
  for (int64_t i = 0; i < set->m; i++) {
    double lse = 0.0;
    switch (p->op) {
    case ATTN_OP_SCORES:
      score_row(p, set, set->queries + i * p->queries.ld, w);
      store_row(set->scores + i * p->scores.ld, w->s, set->valid, set->n, -INFINITY);
      break;
    case ATTN_OP_SOFTMAX:
      load_row(w->s, set->scores_in + i * p->scores_in.ld, set->valid);
      lse = softmax_row(w->s, set->valid);
      store_row(set->weights + i * p->weights.ld, w->s, set->valid, set->n, 0.0f);
      if (set->lse) set->lse[i] = (float)lse;
      break;
    case ATTN_OP_WEIGHTED_SUM:
      load_row(w->s, set->weights_in + i * p->weights_in.ld, set->valid);
      context_row(p, set, w->s, w->acc, set->context + i * p->context.ld);
      break;
    case ATTN_OP_FORWARD:
      score_row(p, set, set->queries + i * p->queries.ld, w);
      if (set->scores)
        store_row(set->scores + i * p->scores.ld, w->s, set->valid, set->n, -INFINITY);
      lse = softmax_row(w->s, set->valid);
      if (set->weights) store_row(set->weights + i * p->weights.ld, w->s, set->valid, set->n, 0.0f);
      if (lse == -INFINITY) /* no valid annotation: a zero context, whatever the values hold */
        memset(set->context + i * p->context.ld, 0, (size_t)p->dv * sizeof(float));
      else
        context_row(p, set, w->s, w->acc, set->context + i * p->context.ld);
      if (set->lse) set->lse[i] = (float)lse;
      break;
    }
  }
}

static attn_status_t run(attn_context_t *ctx, const attn_problem_t *p) {
  scratch_t w = {0}; /* set by scratch_alloc; zero for -O2 -g, which cannot see that */
  attn_status_t st = scratch_alloc(ctx, p, &w);
  if (st != ATTN_OK) return st;
  for (int64_t b = 0; b < p->batch; b++) {
    attn_set_t set;
    attn_problem_set(p, b, &set);
    run_set(p, &set, &w);
  }
  free(w.block);
  return ATTN_OK;
}

attn_status_t attn_reference_scores(attn_context_t *ctx, const attn_problem_t *p) {
  return run(ctx, p);
}
attn_status_t attn_reference_softmax(attn_context_t *ctx, const attn_problem_t *p) {
  return run(ctx, p);
}
attn_status_t attn_reference_weighted_sum(attn_context_t *ctx, const attn_problem_t *p) {
  return run(ctx, p);
}
attn_status_t attn_reference_forward(attn_context_t *ctx, const attn_problem_t *p) {
  return run(ctx, p);
}

const attn_backend_ops_t attn_reference_backend_ops = {
    .kind = ATTN_BACKEND_REFERENCE,
    .host_readable = 1,
    .init = NULL,
    .fini = NULL,
    .mem_alloc = attn_host_mem_alloc,
    .mem_free = attn_host_mem_free,
    .copy_to_backend = attn_host_copy,
    .copy_to_host = attn_host_copy,
    .check_pointer = attn_host_check_pointer,
    .scores = attn_reference_scores,
    .softmax = attn_reference_softmax,
    .weighted_sum = attn_reference_weighted_sum,
    .forward = attn_reference_forward,
    .reserve = NULL,
    .synchronize = NULL,
};
