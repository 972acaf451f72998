/*
 * cmd_compare.c - `attn compare`: the same inputs on every available backend (reference, cpu, and
 * cuda when a device is usable); each output of each backend against the REFERENCE backend with
 * the tolerances of tests/tolerance.h, the same ones the test suites use.
 *
 * For each output and backend it prints the largest absolute error, the largest relative error
 * (over reference entries that are finite and non-zero) and the worst element: the one whose error
 * uses up the largest share of its allowed error atol + rtol * |ref|. Exit status 1 when any entry
 * is outside its allowance (a non-finite entry must match the reference exactly).
 */
#include "cli.h"
#include "tolerance.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char compare_usage[] =
    "usage: attn compare --queries Q.npy --annotations A.npy [input options of attn run]\n"
    "                    [--device N] [--threads N] [--repeat N] [--context-only] [--exact]\n"
    "\n"
    "Runs the inputs on every available backend and compares each output with the reference\n"
    "backend (tolerances from tests/tolerance.h). --context-only asks for the context and the\n"
    "log-sum-exp alone, so that backends may take their fused path. --exact allows no difference\n"
    "at all (atol = rtol = 0), to see every entry where backends differ. Exit status 1 when a\n"
    "backend is outside the tolerance.\n";

#define MAX_BACKENDS 3

typedef struct backend_run {
  attn_backend_t kind;
  cli_results_t r;
  double seconds; /* median */
} backend_run_t;

/* Column maxima of |a| over finite entries of a rows x cols array. */
static void column_abs_max(const float *a, int64_t rows, int64_t cols, double *amax) {
  for (int64_t j = 0; j < cols; j++)
    amax[j] = 0.0;
  for (int64_t i = 0; i < rows; i++) {
    for (int64_t j = 0; j < cols; j++) {
      double v = fabs((double)a[i * cols + j]);
      if (isfinite(v) && v > amax[j]) amax[j] = v;
    }
  }
}

/* Rows held by the annotation (and value) arrays. */
static int64_t annotation_rows(const cli_problem_t *p) {
  return p->varlen || p->in.annotations.stride == 0 ? p->shape.n : p->shape.batch * p->shape.n;
}

/* Bounds on sum_k |term_k| of one score (see attn_tols in tests/tolerance.h), over all queries. */
static double score_term_bound(const cli_problem_t *p, const double *amax, int64_t *terms) {
  int64_t d = p->shape.d;
  const attn_score_t *s = &p->score;
  double worst = 0.0;
  *terms = s->kind == ATTN_SCORE_GENERAL ? d * d : s->kind == ATTN_SCORE_ADDITIVE ? s->h * d : d;
  for (int64_t r = 0; r < p->rows; r++) {
    const float *q = p->queries + r * d;
    double bound = 0.0;
    if (s->kind == ATTN_SCORE_GENERAL) {
      for (int64_t l = 0; l < d; l++) {
        double u = 0.0;
        for (int64_t k = 0; k < d; k++)
          u += fabs((double)q[k]) * fabs((double)s->w[k * d + l]);
        bound += u * amax[l];
      }
    } else if (s->kind == ATTN_SCORE_ADDITIVE) {
      for (int64_t h = 0; h < s->h; h++) {
        double hq = 0.0, ha = 0.0;
        for (int64_t i = 0; i < d; i++) {
          hq += fabs((double)s->wq[h * d + i]) * fabs((double)q[i]);
          ha += fabs((double)s->wa[h * d + i]) * amax[i];
        }
        bound += fabs((double)s->v[h]) * (1.0 + hq + ha);
      }
    } else {
      for (int64_t i = 0; i < d; i++)
        bound += fabs((double)q[i]) * amax[i];
      if (s->kind == ATTN_SCORE_SCALED_DOT)
        bound *= s->scale != 0.0f ? fabs((double)s->scale) : 1.0 / sqrt((double)d);
    }
    if (isfinite(bound) && bound > worst) worst = bound;
  }
  return worst;
}

static int problem_tolerances(const cli_problem_t *p, attn_tols_t *tols) {
  int64_t d = p->shape.d, dv = p->shape.dv, rows = annotation_rows(p);
  double *amax = malloc((size_t)(d > dv ? d : dv) * sizeof *amax);
  if (!amax) {
    cli_error("out of memory");
    return CLI_EXIT_RUNTIME;
  }
  column_abs_max(p->annotations, rows, d, amax);
  int64_t terms;
  double score_abs = score_term_bound(p, amax, &terms);
  column_abs_max(p->values ? p->values : p->annotations, rows, dv, amax);
  double value_abs = 0.0;
  for (int64_t j = 0; j < dv; j++)
    value_abs = fmax(value_abs, amax[j]);
  free(amax);
  *tols = attn_tols(terms, score_abs, p->max_set_n, value_abs);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Runs one backend: a warm-up call, then `repeat` timed calls (median). Returns 0, -1 when the
 * backend is unavailable here (message printed), or an exit status. */
static int run_backend(const cli_problem_t *p, attn_backend_t kind, const attn_options_t *base,
                       int outputs_all, int64_t repeat, backend_run_t *out) {
  attn_options_t opts = *base;
  opts.backend = kind;
  attn_context_t *ctx;
  attn_status_t st = attn_context_create(&opts, &ctx);
  if (st == ATTN_ERR_NO_DEVICE) {
    printf("%-9s  unavailable: %s\n", attn_backend_name(kind), attn_create_error());
    return -1;
  }
  if (st != ATTN_OK) {
    cli_error("cannot create a %s context: %s", attn_backend_name(kind), attn_create_error());
    return cli_exit_for_status(st);
  }
  out->kind = kind;
  int rc = cli_results_alloc(p, outputs_all, outputs_all, 1, &out->r);
  double times[64];
  for (int64_t i = 0; !rc && i <= repeat; i++) {
    double t0 = cli_now();
    rc = cli_forward(ctx, p, &out->r);
    if (i > 0) times[i - 1] = cli_now() - t0; /* call 0 warms up */
  }
  if (!rc) {
    qsort(times, (size_t)repeat, sizeof times[0], cmp_double);
    out->seconds = times[repeat / 2];
    printf("%-9s  %10.4g ms   %s\n", attn_backend_name(kind), out->seconds * 1e3,
           attn_context_backend_reason(ctx));
  }
  attn_context_destroy(ctx);
  if (rc) cli_results_free(&out->r);
  return rc;
}

/* "[i, j]" for flat index k of an array of shape s. */
static void format_index(const cli_output_shape_t *s, int64_t k, char *buf, size_t size) {
  int64_t idx[3] = {0, 0, 0};
  for (int i = s->ndim - 1; i >= 0; i--) {
    idx[i] = s->shape[i] ? k % s->shape[i] : 0;
    k = s->shape[i] ? k / s->shape[i] : 0;
  }
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < s->ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)idx[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

/* Compares one output of one backend with the reference, prints a line; returns mismatches. */
static int64_t compare_output(const char *name, const char *backend, const cli_output_shape_t *s,
                              const float *x, const float *ref, attn_tol_t tol) {
  double max_abs = 0.0, max_rel = 0.0, worst_share = -1.0, worst_diff = -1.0;
  int64_t worst = -1, bad = 0;
  for (int64_t k = 0; k < s->count; k++) {
    double xv = x[k], rv = ref[k], diff = fabs(xv - rv), share;
    int match = attn_tol_match(x[k], ref[k], tol);
    bad += !match;
    if (isfinite(xv) && isfinite(rv)) {
      double allowance = tol.atol + tol.rtol * fabs(rv);
      max_abs = fmax(max_abs, diff);
      if (rv != 0.0) max_rel = fmax(max_rel, diff / fabs(rv));
      share = allowance > 0.0 ? diff / allowance : diff > 0.0 ? INFINITY : 0.0;
    } else {
      diff = share = match ? 0.0 : INFINITY;
      if (!match) max_abs = max_rel = INFINITY;
    }
    /* The largest share of the allowance; among equal shares (--exact) the largest error. */
    if (share > worst_share || (share == worst_share && diff > worst_diff)) {
      worst_share = share;
      worst_diff = diff;
      worst = k;
    }
  }
  char index[64] = "-";
  double value = 0, reference = 0, allowed = 0;
  if (worst >= 0) {
    format_index(s, worst, index, sizeof index);
    value = x[worst];
    reference = ref[worst];
    allowed = tol.atol + tol.rtol * fabs(reference);
  }
  char allowed_text[32] = "exact"; /* a non-finite reference must be matched exactly */
  if (isfinite(allowed)) snprintf(allowed_text, sizeof allowed_text, "%.2e", allowed);
  printf("%-8s %-9s %11.3e %11.3e  %-14s %13.6g %13.6g %10s  %s\n", name, backend, max_abs, max_rel,
         index, value, reference, allowed_text, bad ? "FAIL" : "ok");
  if (bad)
    printf("         %lld of %lld entries outside atol %.3g + rtol %.3g * |ref|\n", (long long)bad,
           (long long)s->count, tol.atol, tol.rtol);
  return bad;
}

static int64_t compare_backend(const cli_problem_t *p, const backend_run_t *b,
                               const backend_run_t *ref, const attn_tols_t *tols) {
  const char *name = attn_backend_name(b->kind);
  int64_t bad = compare_output("context", name, &p->context_shape, b->r.context, ref->r.context,
                               tols->context);
  if (b->r.scores)
    bad += compare_output("scores", name, &p->sw_shape, b->r.scores, ref->r.scores, tols->scores);
  if (b->r.weights)
    bad +=
        compare_output("weights", name, &p->sw_shape, b->r.weights, ref->r.weights, tols->weights);
  bad += compare_output("lse", name, &p->lse_shape, b->r.lse, ref->r.lse, tols->lse);
  return bad;
}

typedef struct compare_args {
  cli_input_args_t in;
  const char *device, *threads, *repeat;
  int context_only, exact, help;
} compare_args_t;

static int compare(const compare_args_t *a, const cli_problem_t *p) {
  attn_options_t opts = attn_default_options();
  int64_t v, repeat = 3;
  int rc;
  if (a->device && (rc = cli_parse_int("device", a->device, 0, 1 << 20, &v))) return rc;
  if (a->device) opts.device = (int)v;
  if (a->threads && (rc = cli_parse_int("threads", a->threads, 0, ATTN_MAX_CPU_THREADS, &v)))
    return rc;
  if (a->threads) opts.cpu_threads = (int)v;
  if (a->repeat && (rc = cli_parse_int("repeat", a->repeat, 1, 64, &repeat))) return rc;
  attn_tols_t tols;
  if ((rc = problem_tolerances(p, &tols))) return rc;
  if (a->exact) memset(&tols, 0, sizeof tols);
  printf("problem: batch %lld, m %lld, n %lld, d %lld, dv %lld, score %s%s\n",
         (long long)p->shape.batch, (long long)p->shape.m, (long long)p->shape.n,
         (long long)p->shape.d, (long long)p->shape.dv, p->score_name,
         p->varlen ? ", variable lengths" : "");
  printf("backend    time (median of %lld)\n", (long long)repeat);
  const attn_backend_t kinds[MAX_BACKENDS] = {ATTN_BACKEND_REFERENCE, ATTN_BACKEND_CPU,
                                              ATTN_BACKEND_CUDA};
  backend_run_t runs[MAX_BACKENDS];
  int count = 0;
  rc = 0;
  for (int i = 0; i < MAX_BACKENDS && !rc; i++) {
    if (kinds[i] == ATTN_BACKEND_CUDA && !attn_built_with_cuda()) {
      printf("%-9s  unavailable: attn was built without CUDA\n", "cuda");
      continue;
    }
    rc = run_backend(p, kinds[i], &opts, !a->context_only, repeat, &runs[count]);
    if (rc == 0) count++;
    if (rc < 0) rc = 0;
  }
  int64_t bad = 0;
  if (!rc) {
    printf("\n%-8s %-9s %11s %11s  %-14s %13s %13s %10s  %s\n", "output", "backend", "max_abs",
           "max_rel", "worst", "value", "reference", "allowed", "result");
    for (int i = 1; i < count; i++)
      bad += compare_backend(p, &runs[i], &runs[0], &tols);
    printf("\ncompare: %s\n", bad ? "FAIL: some backend is outside the tolerance"
                                  : "every backend within the tolerance");
  }
  for (int i = 0; i < count; i++)
    cli_results_free(&runs[i].r);
  return rc ? rc : bad ? CLI_EXIT_MISMATCH : 0;
}

int cli_compare(int argc, char **argv) {
  compare_args_t a;
  memset(&a, 0, sizeof a);
  const cli_option_t opts[] = {CLI_INPUT_OPTIONS(a.in),
                               {"device", &a.device, NULL},
                               {"threads", &a.threads, NULL},
                               {"repeat", &a.repeat, NULL},
                               {"context-only", NULL, &a.context_only},
                               {"exact", NULL, &a.exact}};
  int rc = cli_parse_options(argc, argv, opts, sizeof opts / sizeof opts[0], "compare", &a.help);
  if (rc) return rc;
  if (a.help) {
    fputs(compare_usage, stdout);
    return 0;
  }
  cli_problem_t p;
  if ((rc = cli_problem_load(&a.in, &p))) return rc;
  rc = compare(&a, &p);
  cli_problem_free(&p);
  return rc;
}
