/*
 * check.c - the one place where arguments of compute calls are checked (DESIGN.md, "Errors and
 * bad input"): NULL pointers, sizes, leading dimensions and strides, offsets and lengths,
 * size_t overflow, alignment, and pointers on the wrong side. Every backend relies on it.
 */
#include "check.h"
#include "context.h"
#include "problem.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef long long ll;

/* One matrix argument: what it is called, where it lives and how big one set of it is. */
typedef struct mat_arg {
  const char *name;
  const void *data;
  int64_t ld, stride;
  int64_t rows;  /* rows per set (uniform) or total rows (varlen) */
  int64_t width; /* columns; -1: the longest set's n, known only when offsets are readable */
  const char *width_name;
  int output;
} mat_arg_t;

int attn_matrix_extent(int64_t sets, int64_t stride, int64_t rows, int64_t ld, int64_t width,
                       int64_t *elements) {
  /* The backends form the address of every set and row even where nothing is read there
   * (m == 0, n == 0): the last one's offset must be a valid byte count whatever the width. */
  int64_t last = 0, t = 0;
  if ((sets > 1 && __builtin_mul_overflow(sets - 1, stride, &last)) ||
      (rows > 1 && __builtin_mul_overflow(rows - 1, ld, &t)) ||
      __builtin_add_overflow(last, t, &last) || (uint64_t)last > SIZE_MAX / sizeof(float))
    return -1;
  int64_t e = 0;
  if (sets > 0 && rows > 0 && width > 0 && __builtin_add_overflow(last, width, &e)) return -1;
  if ((uint64_t)e > SIZE_MAX / sizeof(float)) return -1;
  *elements = e;
  return 0;
}

/* Set per call: whether this call's pointers are host memory (the *_host layer, or a host
 * backend) or backend memory. The context is used by one thread at a time, so it lives there. */
static attn_status_t check_pointer(attn_context_t *ctx, const void *ptr, size_t align,
                                   const char *name) {
  if ((uintptr_t)ptr % align != 0)
    return attn_fail(ctx, ATTN_ERR_MISALIGNED, "%s: %p is not aligned to %zu bytes", name, ptr,
                     align);
  if (ctx->pointers_unread) return ATTN_OK; /* attn_context_reserve: never dereferenced */
  if (ctx->checking_host_memory) return attn_host_check_pointer(ctx, ptr, name);
  return ctx->ops->check_pointer(ctx, ptr, name);
}

static int is_varlen(const attn_problem_t *p) {
  return p->query_offsets != NULL;
}

/* ld, stride, overflow, alignment and side of one matrix whose data is not NULL. */
static attn_status_t check_matrix(attn_context_t *ctx, const attn_problem_t *p,
                                  const mat_arg_t *a) {
  int64_t width = a->width >= 0 ? a->width : p->max_set_n;
  if (a->ld < 0 || (width >= 0 && a->ld < width))
    return attn_fail(ctx, ATTN_ERR_INVALID_LD, "%s.ld: %lld < %s %lld", a->name, (ll)a->ld,
                     a->width_name, (ll)(width < 0 ? 0 : width));
  int uniform_sets = !is_varlen(p) && p->batch > 1;
  if (uniform_sets && a->stride < 0)
    return attn_fail(ctx, ATTN_ERR_INVALID_LD, "%s.stride: %lld is negative", a->name,
                     (ll)a->stride);
  int64_t one_set = 0;
  if (width < 0) width = 0; /* varlen on the device: the extent is checked there */
  if (attn_matrix_extent(1, 0, a->rows, a->ld, width, &one_set) != 0)
    return attn_fail(ctx, ATTN_ERR_OVERFLOW, "%s: %lld rows x ld %lld overflows size_t", a->name,
                     (ll)a->rows, (ll)a->ld);
  if (uniform_sets && a->output && a->stride < one_set)
    return attn_fail(ctx, ATTN_ERR_INVALID_LD,
                     "%s.stride: %lld overlaps the previous set (one set spans %lld)", a->name,
                     (ll)a->stride, (ll)one_set);
  int64_t all = 0;
  if (attn_matrix_extent(uniform_sets ? p->batch : 1, a->stride, a->rows, a->ld, width, &all) != 0)
    return attn_fail(ctx, ATTN_ERR_OVERFLOW, "%s: %lld sets x stride %lld overflows size_t",
                     a->name, (ll)p->batch, (ll)a->stride);
  return check_pointer(ctx, a->data, sizeof(float), a->name);
}

static attn_status_t require(attn_context_t *ctx, const void *ptr, const char *name) {
  if (!ptr) return attn_fail(ctx, ATTN_ERR_NULL_POINTER, "%s: NULL", name);
  return ATTN_OK;
}

/* Sizes, the offsets pair, and the offsets/lengths arrays (their pointers always; their values
 * when host_readable). uses_d / uses_dv: whether the call reads d / dv. */
static attn_status_t check_shape(attn_context_t *ctx, int host_readable, const attn_shape_t *s,
                                 int uses_d, int uses_dv, attn_problem_t *p) {
  ctx->checking_host_memory = host_readable;
  attn_status_t st = require(ctx, s, "shape");
  if (st != ATTN_OK) return st;
  if (s->batch < 1)
    return attn_fail(ctx, ATTN_ERR_INVALID_SIZE, "shape->batch: %lld must be >= 1", (ll)s->batch);
  if (s->m < 0)
    return attn_fail(ctx, ATTN_ERR_INVALID_SIZE, "shape->m: %lld is negative", (ll)s->m);
  if (s->n < 0)
    return attn_fail(ctx, ATTN_ERR_INVALID_SIZE, "shape->n: %lld is negative", (ll)s->n);
  if (uses_d && s->d < 1)
    return attn_fail(ctx, ATTN_ERR_INVALID_SIZE, "shape->d: %lld must be >= 1", (ll)s->d);
  if (uses_dv && s->dv < 1)
    return attn_fail(ctx, ATTN_ERR_INVALID_SIZE, "shape->dv: %lld must be >= 1", (ll)s->dv);
  if ((s->query_offsets == NULL) != (s->annotation_offsets == NULL))
    return attn_fail(ctx, ATTN_ERR_INVALID_ARG, "%s: NULL while %s is given",
                     s->query_offsets ? "shape->annotation_offsets" : "shape->query_offsets",
                     s->query_offsets ? "shape->query_offsets" : "shape->annotation_offsets");
  int varlen = s->query_offsets != NULL;
  if (varlen && (s->m > INT32_MAX || s->n > INT32_MAX))
    return attn_fail(ctx, ATTN_ERR_INVALID_SIZE,
                     "shape->%s: %lld rows exceed the int32 range of the offsets",
                     s->m > INT32_MAX ? "m" : "n", (ll)(s->m > INT32_MAX ? s->m : s->n));
  int64_t offsets_len = s->batch + 1;
  if ((uint64_t)offsets_len > SIZE_MAX / sizeof(int32_t))
    return attn_fail(ctx, ATTN_ERR_OVERFLOW, "shape->batch: %lld sets overflow size_t",
                     (ll)s->batch);
  if (varlen) {
    st = check_pointer(ctx, s->query_offsets, sizeof(int32_t), "shape->query_offsets");
    if (st == ATTN_OK)
      st = check_pointer(ctx, s->annotation_offsets, sizeof(int32_t), "shape->annotation_offsets");
    if (st != ATTN_OK) return st;
  }
  if (s->lengths) {
    st = check_pointer(ctx, s->lengths, sizeof(int32_t), "shape->lengths");
    if (st != ATTN_OK) return st;
  }

  p->batch = s->batch;
  p->m = s->m;
  p->n = s->n;
  /* A width the call does not use may hold anything (attn_softmax: "may be 0"); the backends
   * size scratch and work from d and dv, so they get 0 rather than the caller's value. */
  p->d = uses_d ? s->d : 0;
  p->dv = uses_dv ? s->dv : 0;
  p->query_offsets = s->query_offsets;
  p->annotation_offsets = s->annotation_offsets;
  p->lengths = s->lengths;
  p->max_set_n = varlen ? -1 : s->n;
  if (!host_readable) return ATTN_OK;

  if (varlen) {
    const struct {
      const int32_t *off;
      int64_t total;
      const char *name, *total_name;
    } arrays[2] = {{s->query_offsets, s->m, "shape->query_offsets", "m"},
                   {s->annotation_offsets, s->n, "shape->annotation_offsets", "n"}};
    for (int k = 0; k < 2; k++) {
      const int32_t *off = arrays[k].off;
      if (off[0] < 0)
        return attn_fail(ctx, ATTN_ERR_INVALID_OFFSETS, "%s[0]: %d is negative", arrays[k].name,
                         (int)off[0]);
      for (int64_t b = 1; b <= s->batch; b++)
        if (off[b] < off[b - 1])
          return attn_fail(ctx, ATTN_ERR_INVALID_OFFSETS, "%s[%lld]: %d < previous %d",
                           arrays[k].name, (ll)b, (int)off[b], (int)off[b - 1]);
      if (off[s->batch] > arrays[k].total)
        return attn_fail(ctx, ATTN_ERR_INVALID_OFFSETS, "%s[%lld]: %d runs past %s %lld",
                         arrays[k].name, (ll)s->batch, (int)off[s->batch], arrays[k].total_name,
                         (ll)arrays[k].total);
    }
    p->max_set_n = attn_problem_max_set_n(p);
  }
  if (s->lengths) {
    for (int64_t b = 0; b < s->batch; b++) {
      int64_t nb = varlen ? (int64_t)s->annotation_offsets[b + 1] - s->annotation_offsets[b] : s->n;
      if (s->lengths[b] < 0 || s->lengths[b] > nb)
        return attn_fail(ctx, ATTN_ERR_INVALID_LENGTH, "shape->lengths[%lld]: %d not in [0, %lld]",
                         (ll)b, (int)s->lengths[b], (ll)nb);
    }
  }
  return ATTN_OK;
}

/* A score-function parameter matrix [rows x d]. */
static attn_status_t check_param(attn_context_t *ctx, const attn_problem_t *p, const float *data,
                                 int64_t rows, int64_t ld, const char *name) {
  mat_arg_t a = {name, data, ld, 0, rows, p->d, "d", 0};
  return check_matrix(ctx, p, &a);
}

static attn_status_t check_score(attn_context_t *ctx, const attn_score_t *score,
                                 attn_problem_t *p) {
  /* Only the fields of the score's kind are copied: the others may hold anything (a struct
   * reused from another kind), and the staging layer and the backends must never read them. */
  attn_score_t s;
  memset(&s, 0, sizeof s);
  s.kind = score ? score->kind : ATTN_SCORE_DOT;
  attn_status_t st = ATTN_OK;
  switch (s.kind) {
  case ATTN_SCORE_DOT:
    break;
  case ATTN_SCORE_SCALED_DOT:
    s.scale = score->scale;
    if (!isfinite(s.scale))
      return attn_fail(ctx, ATTN_ERR_INVALID_ARG, "score->scale: %g is not finite",
                       (double)s.scale);
    if (s.scale == 0.0f) s.scale = (float)(1.0 / sqrt((double)p->d));
    break;
  case ATTN_SCORE_GENERAL:
    s.w = score->w;
    s.ldw = score->ldw;
    st = require(ctx, s.w, "score->w");
    if (st == ATTN_OK) st = check_param(ctx, p, s.w, p->d, s.ldw, "score->w");
    break;
  case ATTN_SCORE_ADDITIVE:
    s.h = score->h;
    s.wq = score->wq;
    s.ldwq = score->ldwq;
    s.wa = score->wa;
    s.ldwa = score->ldwa;
    s.v = score->v;
    if (s.h < 1)
      return attn_fail(ctx, ATTN_ERR_INVALID_SIZE, "score->h: %lld must be >= 1", (ll)s.h);
    st = require(ctx, s.wq, "score->wq");
    if (st == ATTN_OK) st = require(ctx, s.wa, "score->wa");
    if (st == ATTN_OK) st = require(ctx, s.v, "score->v");
    if (st == ATTN_OK) st = check_param(ctx, p, s.wq, s.h, s.ldwq, "score->wq");
    if (st == ATTN_OK) st = check_param(ctx, p, s.wa, s.h, s.ldwa, "score->wa");
    if (st == ATTN_OK) {
      mat_arg_t v = {"score->v", s.v, s.h, 0, 1, s.h, "h", 0};
      st = check_matrix(ctx, p, &v);
    }
    break;
  default:
    return attn_fail(ctx, ATTN_ERR_INVALID_ARG, "score->kind: %d is not an attn_score_kind_t",
                     (int)s.kind);
  }
  p->score = s;
  return st;
}

/* Floats of lse: a query row each (only where lse is given: check_lse checked the product). */
static int64_t lse_count(const attn_problem_t *p) {
  return is_varlen(p) ? p->m : p->batch * p->m;
}

static attn_status_t check_lse(attn_context_t *ctx, const attn_problem_t *p, const float *lse) {
  if (!lse) return ATTN_OK;
  int64_t count = 0;
  if (is_varlen(p)) {
    count = p->m;
  } else if (__builtin_mul_overflow(p->batch, p->m, &count) ||
             (uint64_t)count > SIZE_MAX / sizeof(float)) {
    return attn_fail(ctx, ATTN_ERR_OVERFLOW, "lse: %lld sets x %lld queries overflow size_t",
                     (ll)p->batch, (ll)p->m);
  }
  return check_pointer(ctx, lse, sizeof(float), "lse");
}

static attn_status_t check_matrices(attn_context_t *ctx, const attn_problem_t *p,
                                    const mat_arg_t *args, int count) {
  for (int i = 0; i < count; i++) {
    if (!args[i].data) continue;
    attn_status_t st = check_matrix(ctx, p, &args[i]);
    if (st != ATTN_OK) return st;
  }
  return ATTN_OK;
}

/* Outputs must not be an input or another output (attn.h): an output that starts where one of
 * them starts is refused. Only the same start is detected, not a partial overlap. A matrix with
 * no elements (no rows, or rows of width 0) takes no part: nothing is read or written there.
 * args[0 .. count) are the call's matrices; lse (an output of `lse_floats`), the offsets and
 * lengths arrays and the score's parameter arrays (inputs) join them. */
static int has_elements(const attn_problem_t *p, const mat_arg_t *a) {
  const int64_t width = a->width >= 0 ? a->width : p->max_set_n; /* -1: unknown, maybe some */
  return a->data && a->rows > 0 && width != 0;
}
static attn_status_t check_distinct(attn_context_t *ctx, const attn_problem_t *p,
                                    const mat_arg_t *args, int count, const float *lse,
                                    int64_t lse_floats) {
  enum { MAX_REGIONS = 16 };
  struct {
    const char *name;
    const void *data;
    int output;
  } r[MAX_REGIONS];
  int nr = 0;
  for (int i = 0; i < count && nr < MAX_REGIONS; i++)
    if (has_elements(p, &args[i])) {
      r[nr].name = args[i].name;
      r[nr].data = args[i].data;
      r[nr++].output = args[i].output;
    }
  const struct {
    const char *name;
    const void *data;
  } params[] = {{"lse", lse_floats > 0 ? lse : NULL},
                {"shape->query_offsets", p->query_offsets},
                {"shape->annotation_offsets", p->annotation_offsets},
                {"shape->lengths", p->lengths},
                {"score->w", p->score.w},
                {"score->wq", p->score.wq},
                {"score->wa", p->score.wa},
                {"score->v", p->score.v}};
  for (size_t i = 0; i < sizeof params / sizeof params[0] && nr < MAX_REGIONS; i++)
    if (params[i].data) {
      r[nr].name = params[i].name;
      r[nr].data = params[i].data;
      r[nr++].output = i == 0;
    }
  for (int i = 0; i < nr; i++) {
    if (!r[i].output) continue;
    for (int j = 0; j < nr; j++)
      if (j != i && r[j].data == r[i].data && !(r[j].output && j > i))
        return attn_fail(ctx, ATTN_ERR_INVALID_ARG, "%s: the same memory as %s (%p)", r[i].name,
                         r[j].name, r[i].data);
  }
  return ATTN_OK;
}

static mat_arg_t in_arg(const char *name, attn_const_matrix_t x, int64_t rows, int64_t width,
                        const char *width_name) {
  mat_arg_t a = {name, x.data, x.ld, x.stride, rows, width, width_name, 0};
  return a;
}

static mat_arg_t out_arg(const char *name, attn_matrix_t x, int64_t rows, int64_t width,
                         const char *width_name) {
  mat_arg_t a = {name, x.data, x.ld, x.stride, rows, width, width_name, 1};
  return a;
}

/* Width of a score/weight row: n for uniform batches, the longest set for varlen ones. */
static int64_t row_width(const attn_problem_t *p) {
  return is_varlen(p) ? -1 : p->n;
}
static const char *row_width_name(const attn_problem_t *p) {
  return is_varlen(p) ? "longest set n" : "n";
}

static void begin(attn_problem_t *p, attn_op_t op) {
  memset(p, 0, sizeof *p);
  p->op = op;
}

attn_status_t attn_check_scores(attn_context_t *ctx, int host_readable, const attn_shape_t *shape,
                                const attn_score_t *score, attn_const_matrix_t queries,
                                attn_const_matrix_t annotations, attn_matrix_t scores,
                                attn_problem_t *p) {
  begin(p, ATTN_OP_SCORES);
  attn_status_t st = require(ctx, queries.data, "queries.data");
  if (st == ATTN_OK) st = require(ctx, annotations.data, "annotations.data");
  if (st == ATTN_OK) st = require(ctx, scores.data, "scores.data");
  if (st == ATTN_OK) st = check_shape(ctx, host_readable, shape, 1, 0, p);
  if (st == ATTN_OK) st = check_score(ctx, score, p);
  if (st != ATTN_OK) return st;
  mat_arg_t args[] = {in_arg("queries", queries, p->m, p->d, "d"),
                      in_arg("annotations", annotations, p->n, p->d, "d"),
                      out_arg("scores", scores, p->m, row_width(p), row_width_name(p))};
  p->queries = queries;
  p->annotations = annotations;
  p->scores = scores;
  st = check_matrices(ctx, p, args, 3);
  if (st == ATTN_OK) st = check_distinct(ctx, p, args, 3, NULL, 0);
  return st;
}

attn_status_t attn_check_softmax(attn_context_t *ctx, int host_readable, const attn_shape_t *shape,
                                 attn_const_matrix_t scores, attn_matrix_t weights, float *lse,
                                 attn_problem_t *p) {
  begin(p, ATTN_OP_SOFTMAX);
  attn_status_t st = require(ctx, scores.data, "scores.data");
  if (st == ATTN_OK) st = require(ctx, weights.data, "weights.data");
  if (st == ATTN_OK) st = check_shape(ctx, host_readable, shape, 0, 0, p);
  if (st != ATTN_OK) return st;
  mat_arg_t args[] = {in_arg("scores", scores, p->m, row_width(p), row_width_name(p)),
                      out_arg("weights", weights, p->m, row_width(p), row_width_name(p))};
  p->scores_in = scores;
  p->weights = weights;
  p->lse = lse;
  st = check_matrices(ctx, p, args, 2);
  if (st == ATTN_OK) st = check_lse(ctx, p, lse);
  /* weights on scores is in place (checked below); lse must be neither. */
  if (st == ATTN_OK) st = check_distinct(ctx, p, args, 1, lse, lse ? lse_count(p) : 0);
  if (st == ATTN_OK) st = check_distinct(ctx, p, args + 1, 1, lse, lse ? lse_count(p) : 0);
  /* In place means exactly S: a row written with another ld or stride overwrites scores that
   * another row (on another thread) has still to read. Layouts that never come into play
   * (one row, one set) may differ. */
  if (st == ATTN_OK && (const float *)weights.data == scores.data &&
      ((p->m > 1 && weights.ld != scores.ld) ||
       (!is_varlen(p) && p->batch > 1 && p->m > 0 && weights.stride != scores.stride)))
    st = attn_fail(ctx, ATTN_ERR_INVALID_ARG,
                   "weights: in place on scores needs their ld and stride (%lld, %lld), not "
                   "(%lld, %lld)",
                   (ll)scores.ld, (ll)scores.stride, (ll)weights.ld, (ll)weights.stride);
  return st;
}

attn_status_t attn_check_weighted_sum(attn_context_t *ctx, int host_readable,
                                      const attn_shape_t *shape, attn_const_matrix_t weights,
                                      attn_const_matrix_t values, attn_matrix_t context,
                                      attn_problem_t *p) {
  begin(p, ATTN_OP_WEIGHTED_SUM);
  attn_status_t st = require(ctx, weights.data, "weights.data");
  if (st == ATTN_OK) st = require(ctx, values.data, "values.data");
  if (st == ATTN_OK) st = require(ctx, context.data, "context.data");
  if (st == ATTN_OK) st = check_shape(ctx, host_readable, shape, 0, 1, p);
  if (st != ATTN_OK) return st;
  mat_arg_t args[] = {in_arg("weights", weights, p->m, row_width(p), row_width_name(p)),
                      in_arg("values", values, p->n, p->dv, "dv"),
                      out_arg("context", context, p->m, p->dv, "dv")};
  p->weights_in = weights;
  p->values = values;
  p->context = context;
  st = check_matrices(ctx, p, args, 3);
  if (st == ATTN_OK) st = check_distinct(ctx, p, args, 3, NULL, 0);
  return st;
}

attn_status_t attn_check_forward(attn_context_t *ctx, int host_readable, const attn_shape_t *shape,
                                 const attn_score_t *score, const attn_inputs_t *in,
                                 const attn_outputs_t *out, attn_problem_t *p) {
  begin(p, ATTN_OP_FORWARD);
  attn_status_t st = require(ctx, in, "in");
  if (st == ATTN_OK) st = require(ctx, out, "out");
  if (st == ATTN_OK) st = require(ctx, in->queries.data, "in->queries.data");
  if (st == ATTN_OK) st = require(ctx, in->annotations.data, "in->annotations.data");
  if (st == ATTN_OK) st = require(ctx, out->context.data, "out->context.data");
  if (st == ATTN_OK) st = check_shape(ctx, host_readable, shape, 1, 1, p);
  if (st != ATTN_OK) return st;
  if (!in->values.data && p->dv != p->d)
    return attn_fail(ctx, ATTN_ERR_INVALID_SIZE,
                     "shape->dv: %lld != d %lld while the values are the annotations", (ll)p->dv,
                     (ll)p->d);
  st = check_score(ctx, score, p);
  if (st != ATTN_OK) return st;
  attn_const_matrix_t values = in->values.data ? in->values : in->annotations;
  mat_arg_t args[] = {in_arg("queries", in->queries, p->m, p->d, "d"),
                      in_arg("annotations", in->annotations, p->n, p->d, "d"),
                      in_arg("values", in->values, p->n, p->dv, "dv"),
                      out_arg("context", out->context, p->m, p->dv, "dv"),
                      out_arg("scores", out->scores, p->m, row_width(p), row_width_name(p)),
                      out_arg("weights", out->weights, p->m, row_width(p), row_width_name(p))};
  p->queries = in->queries;
  p->annotations = in->annotations;
  p->values = values;
  p->context = out->context;
  p->scores = out->scores;
  p->weights = out->weights;
  p->lse = out->lse;
  st = check_matrices(ctx, p, args, 6);
  if (st == ATTN_OK) st = check_lse(ctx, p, out->lse);
  if (st == ATTN_OK) st = check_distinct(ctx, p, args, 6, out->lse, out->lse ? lse_count(p) : 0);
  return st;
}

attn_status_t attn_check_reserve(attn_context_t *ctx, const attn_shape_t *shape,
                                 const attn_score_t *score, attn_problem_t *p) {
  begin(p, ATTN_OP_FORWARD);
  ctx->pointers_unread = 1;
  attn_status_t st = check_shape(ctx, 0, shape, 1, 1, p);
  if (st == ATTN_OK) st = check_score(ctx, score, p);
  ctx->pointers_unread = 0;
  return st;
}
