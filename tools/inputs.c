/*
 * inputs.c - the attention problem read from .npy files: every file is read strictly (npy.c),
 * converted to float32 / int32, and checked against the others, so that a shape that disagrees
 * between files is reported with both file names before the library is called.
 *
 * Layouts accepted (C order):
 *   queries      [d] (one query), [m, d], or [batch, m, d] for a uniform batch
 *   annotations  [n, d] (shared by every set), or [batch, n, d]
 *   values       like the annotations, with dv columns
 *   lengths      [batch] valid annotations per set
 *   offsets      [batch + 1] each (variable-length batch; queries [rows, d], annotations [rows, d])
 *   --w [d, d]; --wq [h, d], --wa [h, d], --v [h]
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* malloc of count elements of size bytes (at least one element), NULL on overflow or failure. */
static void *alloc_array(int64_t count, size_t size) {
  if (count < 1) count = 1;
  if ((uint64_t)count > SIZE_MAX / size) return NULL;
  return malloc((size_t)count * size);
}

static int load(const char *path, npy_array_t *a) {
  char err[NPY_MESSAGE_SIZE];
  if (npy_read_file(path, a, err, sizeof err) == 0) return 0;
  cli_error("%s", err);
  return CLI_EXIT_INPUT;
}

/* Reads a float array and converts it to float32 (the array keeps nothing). */
static int load_float(const char *path, const char *what, npy_array_t *a, float **out) {
  if (load(path, a)) return CLI_EXIT_INPUT;
  if (a->dtype == NPY_I4 || a->dtype == NPY_I8) {
    cli_error("%s: %s must be float32 or float64, not %s", path, what, npy_dtype_name(a->dtype));
    return CLI_EXIT_INPUT;
  }
  float *f = alloc_array(a->count, sizeof *f);
  if (!f) {
    cli_error("%s: out of memory", path);
    return CLI_EXIT_RUNTIME;
  }
  if (a->dtype == NPY_F8) {
    const double *src = a->data;
    for (int64_t i = 0; i < a->count; i++)
      f[i] = (float)src[i];
    fprintf(stderr, "attn: note: %s: float64 %s converted to float32\n", path, what);
  } else if (a->count) {
    memcpy(f, a->data, (size_t)a->count * sizeof *f);
  }
  free(a->data);
  a->data = NULL;
  *out = f;
  return 0;
}

/* Reads an integer array and converts it to int32, checking every value fits. */
static int load_int(const char *path, const char *what, npy_array_t *a, int32_t **out) {
  if (load(path, a)) return CLI_EXIT_INPUT;
  if (a->dtype == NPY_F4 || a->dtype == NPY_F8) {
    cli_error("%s: %s must be int32 or int64, not %s", path, what, npy_dtype_name(a->dtype));
    return CLI_EXIT_INPUT;
  }
  int32_t *v = alloc_array(a->count, sizeof *v);
  if (!v) {
    cli_error("%s: out of memory", path);
    return CLI_EXIT_RUNTIME;
  }
  if (a->dtype == NPY_I8) {
    const int64_t *src = a->data;
    for (int64_t i = 0; i < a->count; i++) {
      if (src[i] < INT32_MIN || src[i] > INT32_MAX) {
        cli_error("%s: %s[%lld] = %lld does not fit in int32", path, what, (long long)i,
                  (long long)src[i]);
        free(v);
        return CLI_EXIT_INPUT;
      }
      v[i] = (int32_t)src[i];
    }
  } else if (a->count) {
    memcpy(v, a->data, (size_t)a->count * sizeof *v);
  }
  free(a->data);
  a->data = NULL;
  *out = v;
  return 0;
}

static int bad_ndim(const char *path, const char *what, const char *expected, int ndim) {
  cli_error("%s: %s must be %s, not %d-D", path, what, expected, ndim);
  return CLI_EXIT_INPUT;
}

/* The arrays read so far, with their shapes (data moved into cli_problem_t). */
typedef struct files {
  npy_array_t q, a, v, len, qo, ao, w, wq, wa, vv;
} files_t;

static void set_output(cli_output_shape_t *o, int ndim, int64_t d0, int64_t d1, int64_t d2) {
  int64_t dims[3] = {d0, d1, d2};
  o->ndim = ndim;
  o->count = 1;
  for (int i = 0; i < ndim; i++) {
    o->shape[i] = dims[i];
    o->count *= dims[i];
  }
}

/* Queries, annotations and values: layout, batch and widths. */
static int load_data(const cli_input_args_t *args, files_t *f, cli_problem_t *p) {
  int rc;
  if ((rc = load_float(args->queries, "queries", &f->q, &p->queries))) return rc;
  if (f->q.ndim < 1 || f->q.ndim > 3)
    return bad_ndim(args->queries, "queries", "[d], [m, d] or [batch, m, d]", f->q.ndim);
  if ((rc = load_float(args->annotations, "annotations", &f->a, &p->annotations))) return rc;
  if (f->a.ndim < 2 || f->a.ndim > 3)
    return bad_ndim(args->annotations, "annotations", "[n, d] or [batch, n, d]", f->a.ndim);
  int64_t d = f->q.shape[f->q.ndim - 1];
  if (f->a.shape[f->a.ndim - 1] != d) {
    cli_error("%s: annotation width %lld differs from the query width %lld of %s",
              args->annotations, (long long)f->a.shape[f->a.ndim - 1], (long long)d, args->queries);
    return CLI_EXIT_INPUT;
  }
  if (f->a.ndim == 3 && (f->q.ndim != 3 || f->q.shape[0] != f->a.shape[0])) {
    cli_error("%s: %lld annotation sets, but %s holds %s", args->annotations,
              (long long)f->a.shape[0], args->queries,
              f->q.ndim == 3 ? "a different number of query sets" : "no batch dimension");
    return CLI_EXIT_INPUT;
  }
  p->shape.d = d;
  p->shape.dv = d;
  if (!args->values) return 0;
  if ((rc = load_float(args->values, "values", &f->v, &p->values))) return rc;
  if (f->v.ndim != f->a.ndim) {
    cli_error("%s: values are %d-D but the annotations (%s) are %d-D", args->values, f->v.ndim,
              args->annotations, f->a.ndim);
    return CLI_EXIT_INPUT;
  }
  for (int i = 0; i < f->a.ndim - 1; i++) {
    if (f->v.shape[i] != f->a.shape[i]) {
      cli_error("%s: dimension %d is %lld but %lld in the annotations (%s)", args->values, i,
                (long long)f->v.shape[i], (long long)f->a.shape[i], args->annotations);
      return CLI_EXIT_INPUT;
    }
  }
  p->shape.dv = f->v.shape[f->v.ndim - 1];
  return 0;
}

/* Batch layout: uniform from the array ranks, or variable-length from the offset files. */
static int load_layout(const cli_input_args_t *args, files_t *f, cli_problem_t *p) {
  int rc;
  if (!args->query_offsets != !args->annotation_offsets) {
    cli_error("--query-offsets and --annotation-offsets go together");
    return CLI_EXIT_INPUT;
  }
  if (args->query_offsets) {
    p->varlen = 1;
    if (f->q.ndim != 2 || f->a.ndim != 2) {
      cli_error("%s: with offsets, queries and annotations must be 2-D [rows, d]",
                f->q.ndim != 2 ? args->queries : args->annotations);
      return CLI_EXIT_INPUT;
    }
    if ((rc = load_int(args->query_offsets, "query offsets", &f->qo, &p->query_offsets))) return rc;
    if ((rc = load_int(args->annotation_offsets, "annotation offsets", &f->ao,
                       &p->annotation_offsets)))
      return rc;
    if (f->qo.ndim != 1 || f->qo.shape[0] < 2)
      return bad_ndim(args->query_offsets, "query offsets", "1-D [batch + 1] with batch >= 1",
                      f->qo.ndim);
    if (f->ao.ndim != 1 || f->ao.shape[0] != f->qo.shape[0]) {
      cli_error("%s: annotation offsets must be 1-D with %lld entries like %s",
                args->annotation_offsets, (long long)f->qo.shape[0], args->query_offsets);
      return CLI_EXIT_INPUT;
    }
    p->shape.batch = f->qo.shape[0] - 1;
    p->shape.m = f->q.shape[0];
    p->shape.n = f->a.shape[0];
    p->shape.query_offsets = p->query_offsets;
    p->shape.annotation_offsets = p->annotation_offsets;
    p->rows = p->shape.m;
    /* The longest set sizes the score and weight outputs, so the annotation offsets are
     * checked here, before they do: offsets past the annotations would ask for gigabytes before
     * the library's own check. */
    p->max_set_n = 0;
    for (int64_t b = 0; b < p->shape.batch; b++) {
      const int64_t lo = p->annotation_offsets[b], hi = p->annotation_offsets[b + 1];
      if (lo < 0 || hi < lo || hi > p->shape.n) {
        cli_error("%s: annotation offsets must rise within [0, %lld] (the annotation rows), not "
                  "%lld then %lld at set %lld",
                  args->annotation_offsets, (long long)p->shape.n, (long long)lo, (long long)hi,
                  (long long)b);
        return CLI_EXIT_INPUT;
      }
      if (hi - lo > p->max_set_n) p->max_set_n = hi - lo;
    }
    p->width_sw = p->max_set_n;
  } else {
    p->shape.batch = f->q.ndim == 3 ? f->q.shape[0] : 1;
    p->shape.m = f->q.ndim == 1 ? 1 : f->q.shape[f->q.ndim - 2];
    p->shape.n = f->a.shape[f->a.ndim - 2];
    p->rows = p->shape.batch * p->shape.m;
    p->max_set_n = p->shape.n;
    p->width_sw = p->shape.n;
  }
  p->ld_sw = p->width_sw > 0 ? p->width_sw : 1;
  if (args->lengths) {
    if ((rc = load_int(args->lengths, "lengths", &f->len, &p->lengths))) return rc;
    if (f->len.ndim != 1 || f->len.shape[0] != p->shape.batch) {
      cli_error("%s: lengths must be 1-D with one entry per set (%lld)", args->lengths,
                (long long)p->shape.batch);
      return CLI_EXIT_INPUT;
    }
    p->shape.lengths = p->lengths;
  }
  return 0;
}

static int check_matrix(const char *path, const char *what, const npy_array_t *a, int64_t rows,
                        int64_t cols) {
  if (a->ndim == 2 && a->shape[0] == rows && a->shape[1] == cols) return 0;
  cli_error("%s: %s must be [%lld, %lld] for these queries", path, what, (long long)rows,
            (long long)cols);
  return CLI_EXIT_INPUT;
}

/* Flags score parameters that the chosen score function does not use. */
static int unused_parameter(const cli_input_args_t *args, const char *kind) {
  const char *name = NULL;
  if (args->scale && strcmp(kind, "scaled") != 0) name = "--scale";
  if (args->w && strcmp(kind, "general") != 0) name = "--w";
  if ((args->wq || args->wa || args->v) && strcmp(kind, "additive") != 0) name = "--wq/--wa/--v";
  if (!name) return 0;
  cli_error("%s does not apply to --score %s", name, kind);
  return CLI_EXIT_INPUT;
}

static int load_score(const cli_input_args_t *args, files_t *f, cli_problem_t *p) {
  const char *kind = args->score ? args->score : "dot";
  int64_t d = p->shape.d;
  int rc;
  if ((rc = unused_parameter(args, kind))) return rc;
  p->score_name = kind;
  if (strcmp(kind, "dot") == 0) {
    p->score = attn_score_dot();
  } else if (strcmp(kind, "scaled") == 0) {
    float scale = 0.0f;
    if (args->scale && (rc = cli_parse_float("scale", args->scale, &scale))) return rc;
    p->score = attn_score_scaled_dot(scale);
  } else if (strcmp(kind, "general") == 0) {
    if (!args->w) {
      cli_error("--score general needs --w W.npy ([d, d])");
      return CLI_EXIT_INPUT;
    }
    if ((rc = load_float(args->w, "W", &f->w, &p->w))) return rc;
    if ((rc = check_matrix(args->w, "W", &f->w, d, d))) return rc;
    p->score = attn_score_general(p->w, d);
  } else if (strcmp(kind, "additive") == 0) {
    if (!args->wq || !args->wa || !args->v) {
      cli_error("--score additive needs --wq WQ.npy [h, d], --wa WA.npy [h, d] and --v V.npy [h]");
      return CLI_EXIT_INPUT;
    }
    if ((rc = load_float(args->wq, "W_q", &f->wq, &p->wq))) return rc;
    if (f->wq.ndim != 2) return bad_ndim(args->wq, "W_q", "[h, d]", f->wq.ndim);
    int64_t h = f->wq.shape[0];
    if ((rc = check_matrix(args->wq, "W_q", &f->wq, h, d))) return rc;
    if ((rc = load_float(args->wa, "W_a", &f->wa, &p->wa))) return rc;
    if ((rc = check_matrix(args->wa, "W_a", &f->wa, h, d))) return rc;
    if ((rc = load_float(args->v, "v", &f->vv, &p->v))) return rc;
    if (f->vv.ndim != 1 || f->vv.shape[0] != h) {
      cli_error("%s: v must be 1-D [%lld] like the rows of %s", args->v, (long long)h, args->wq);
      return CLI_EXIT_INPUT;
    }
    p->score = attn_score_additive(h, p->wq, d, p->wa, d, p->v);
  } else {
    cli_error("--score: '%s' is not one of dot, scaled, general, additive", kind);
    return CLI_EXIT_INPUT;
  }
  return 0;
}

/* Descriptors for the library: strides of uniform batches, shared 2-D annotations. */
static void describe(const files_t *f, cli_problem_t *p) {
  int64_t m = p->shape.m, n = p->shape.n, d = p->shape.d, dv = p->shape.dv;
  int uniform = !p->varlen, shared = f->a.ndim == 2;
  p->in.queries = attn_cmat(p->queries, d, uniform ? m * d : 0);
  p->in.annotations = attn_cmat(p->annotations, d, uniform && !shared ? n * d : 0);
  p->in.values = attn_cmat(p->values, dv, uniform && !shared ? n * dv : 0);
  if (p->varlen) {
    set_output(&p->context_shape, 2, m, dv, 0);
    set_output(&p->sw_shape, 2, m, p->width_sw, 0);
    set_output(&p->lse_shape, 1, m, 0, 0);
  } else if (f->q.ndim == 1) {
    set_output(&p->context_shape, 1, dv, 0, 0);
    set_output(&p->sw_shape, 1, n, 0, 0);
    set_output(&p->lse_shape, 0, 0, 0, 0);
  } else if (f->q.ndim == 2) {
    set_output(&p->context_shape, 2, m, dv, 0);
    set_output(&p->sw_shape, 2, m, n, 0);
    set_output(&p->lse_shape, 1, m, 0, 0);
  } else {
    int64_t batch = p->shape.batch;
    set_output(&p->context_shape, 3, batch, m, dv);
    set_output(&p->sw_shape, 3, batch, m, n);
    set_output(&p->lse_shape, 2, batch, m, 0);
  }
}

static void free_files(files_t *f) {
  npy_array_t *all[] = {&f->q,  &f->a, &f->v,  &f->len, &f->qo,
                        &f->ao, &f->w, &f->wq, &f->wa,  &f->vv};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    npy_free(all[i]);
}

int cli_problem_load(const cli_input_args_t *args, cli_problem_t *p) {
  memset(p, 0, sizeof *p);
  if (!args->queries || !args->annotations) {
    cli_error("--queries Q.npy and --annotations A.npy are required");
    return CLI_EXIT_INPUT;
  }
  files_t f;
  memset(&f, 0, sizeof f);
  int rc = load_data(args, &f, p);
  if (!rc) rc = load_layout(args, &f, p);
  if (!rc) rc = load_score(args, &f, p);
  if (!rc) describe(&f, p);
  free_files(&f);
  if (rc) cli_problem_free(p);
  return rc;
}

void cli_problem_free(cli_problem_t *p) {
  void *all[] = {
      p->queries,       p->annotations,       p->values, p->w, p->wq, p->wa, p->v, p->lengths,
      p->query_offsets, p->annotation_offsets};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    free(all[i]);
  memset(p, 0, sizeof *p);
}

void cli_problem_set_rows(const cli_problem_t *p, int64_t b, int64_t *row0, int64_t *rows,
                          int64_t *cols) {
  if (p->varlen) {
    *row0 = p->query_offsets[b];
    *rows = (int64_t)p->query_offsets[b + 1] - p->query_offsets[b];
    *cols = (int64_t)p->annotation_offsets[b + 1] - p->annotation_offsets[b];
  } else {
    *row0 = b * p->shape.m;
    *rows = p->shape.m;
    *cols = p->shape.n;
  }
}

/* rows * cols floats filled with `fill`, NULL on overflow or failure. */
static float *alloc_filled(int64_t rows, int64_t cols, float fill) {
  if (rows > 0 && cols > INT64_MAX / rows) return NULL;
  int64_t count = rows * cols;
  float *x = alloc_array(count, sizeof *x);
  if (x)
    for (int64_t i = 0; i < (count > 0 ? count : 1); i++)
      x[i] = fill;
  return x;
}

int cli_results_alloc(const cli_problem_t *p, int scores, int weights, int lse, cli_results_t *r) {
  memset(r, 0, sizeof *r);
  int ok = (r->context = alloc_filled(p->rows, p->shape.dv, 0.0f)) != NULL;
  if (ok && scores) ok = (r->scores = alloc_filled(p->rows, p->ld_sw, -INFINITY)) != NULL;
  if (ok && weights) ok = (r->weights = alloc_filled(p->rows, p->ld_sw, 0.0f)) != NULL;
  if (ok && lse) ok = (r->lse = alloc_filled(p->rows, 1, -INFINITY)) != NULL;
  if (ok) return 0;
  cli_results_free(r);
  cli_error("out of memory for the outputs (%lld query rows x %lld annotations)",
            (long long)p->rows, (long long)p->width_sw);
  return CLI_EXIT_RUNTIME;
}

void cli_results_free(cli_results_t *r) {
  free(r->context);
  free(r->scores);
  free(r->weights);
  free(r->lse);
  memset(r, 0, sizeof *r);
}

int cli_forward(attn_context_t *ctx, const cli_problem_t *p, cli_results_t *r) {
  int64_t m = p->varlen ? 0 : p->shape.m;
  attn_outputs_t out;
  out.context = attn_mat(r->context, p->shape.dv, m * p->shape.dv);
  out.scores = attn_mat(r->scores, p->ld_sw, m * p->ld_sw);
  out.weights = attn_mat(r->weights, p->ld_sw, m * p->ld_sw);
  out.lse = r->lse;
  attn_status_t st = attn_forward_host(ctx, &p->shape, &p->score, &p->in, &out);
  if (st == ATTN_OK) return 0;
  cli_error("%s backend: %s (%s)", attn_backend_name(attn_context_backend(ctx)),
            attn_context_last_error(ctx), attn_status_string(st));
  return cli_exit_for_status(st);
}
