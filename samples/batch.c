/*
 * batch.c - batch scoring: thousands of random decoder states against a batch of annotation
 * sets, on the best backend, checked against the REFERENCE backend.
 *
 * Two problems:
 *   uniform: 64 sets x 64 queries x 200 annotations, d = 64, dot score (4096 decoder states);
 *   varlen:  64 sets of random sizes (0..128 queries, 0..400 annotations, one set with no
 *            queries and one with no annotations), per-set valid lengths, scaled dot score.
 * The data lives in buffers on the context's backend (device memory on CUDA), as in a pipeline:
 * attn_forward is timed with attn_context_synchronize after it, median of 5 runs after one
 * warm-up. The context and lse are then downloaded and compared with attn_forward_host on a
 * REFERENCE context, within tests/tolerance.h's tolerances. Exits 1 when any value is out of
 * tolerance, so CTest runs it as a test.
 *
 * Usage: batch [auto|cuda|cpu|reference]   (default auto)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attn.h"
#include "tolerance.h"

enum { RUNS = 5 };

/* --- Small helpers ---------------------------------------------------------------------------- */

/* Exits with a message when an attn call fails: samples are programs, the library never exits. */
static void require_ok(attn_status_t status, const attn_context_t *ctx, const char *call) {
  if (status == ATTN_OK) return;
  fprintf(stderr, "%s failed: %s\n  %s\n", call, attn_status_string(status),
          ctx ? attn_context_last_error(ctx) : attn_create_error());
  exit(1);
}

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (p == NULL) {
    fprintf(stderr, "out of host memory (%zu bytes)\n", bytes);
    exit(1);
  }
  return p;
}

/* splitmix64: a fixed seed gives the same problem on every run and every machine. */
static uint64_t rng_state = 0x5eed2014u;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}
/* Uniform in [0, 1). */
static double rng_uniform(void) {
  return (double)(rng_next() >> 11) * 0x1.0p-53;
}
/* Uniform integer in [lo, hi]. */
static int32_t rng_int(int32_t lo, int32_t hi) {
  return lo + (int32_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* Uniform in [-1, 1), with one value in a hundred an outlier of up to +-4 so that the softmax
 * has peaks to find. Returns max |x|. */
static double fill_random(float *x, int64_t count) {
  double max_abs = 0;
  for (int64_t i = 0; i < count; i++) {
    double v = 2.0 * rng_uniform() - 1.0;
    if (rng_next() % 100 == 0) v *= 4.0;
    x[i] = (float)v;
    max_abs = fabs(v) > max_abs ? fabs(v) : max_abs;
  }
  return max_abs;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The largest |x - ref| over finite pairs, and the largest |x - ref| / (atol + rtol |ref|). */
static void largest_error(const float *x, const float *ref, int64_t count, attn_tol_t tol,
                          double *abs_err, double *tol_ratio) {
  for (int64_t i = 0; i < count; i++) {
    if (!isfinite(ref[i]) || !isfinite(x[i])) continue;
    double err = fabs((double)x[i] - (double)ref[i]);
    double ratio = err / (tol.atol + tol.rtol * fabs((double)ref[i]));
    *abs_err = err > *abs_err ? err : *abs_err;
    *tol_ratio = ratio > *tol_ratio ? ratio : *tol_ratio;
  }
}

/* --- One problem: host arrays, backend buffers, a timed run, the check ------------------------ */

typedef struct problem {
  const char *name;
  attn_shape_t shape;     /* offsets and lengths point at the host arrays below */
  attn_score_t score;     /* no parameter matrices: dot or scaled dot */
  int64_t q_rows;         /* rows of Q and C in all: batch * m (uniform) or m (varlen) */
  int64_t a_rows;         /* rows of A in all: batch * n (uniform) or n (varlen) */
  int64_t longest_n;      /* longest annotation set */
  float *q, *a;           /* Q (q_rows, d), A (a_rows, d), row-major, ld = d, sets back to back */
  int32_t *q_off, *a_off; /* (batch + 1) each, or NULL */
  int32_t *lengths;       /* (batch), or NULL */
  double a_abs;           /* max |a| */
} problem_t;

/* The largest sum_k |q_k a_k| over every query and annotation of a set: how large a score's
 * terms get, which bounds the fp32 score error (tests/tolerance.h, attn_tols). */
static double max_score_terms(const problem_t *p) {
  int64_t d = p->shape.d;
  double best = 0;
  for (int64_t b = 0; b < p->shape.batch; b++) {
    int64_t q0 = p->q_off ? p->q_off[b] : b * p->shape.m;
    int64_t q1 = p->q_off ? p->q_off[b + 1] : q0 + p->shape.m;
    int64_t a0 = p->a_off ? p->a_off[b] : b * p->shape.n;
    int64_t a1 = p->a_off ? p->a_off[b + 1] : a0 + p->shape.n;
    for (int64_t i = q0; i < q1; i++) {
      for (int64_t j = a0; j < a1; j++) {
        double sum = 0;
        for (int64_t k = 0; k < d; k++)
          sum += fabs((double)p->q[i * d + k] * p->a[j * d + k]);
        best = sum > best ? sum : best;
      }
    }
  }
  return best;
}

typedef struct buffers {
  attn_buffer_t *q, *a, *c, *lse, *q_off, *a_off, *lengths;
} buffers_t;

/* Allocates a buffer on the context and uploads bytes from src (when src is not NULL). */
static attn_buffer_t *to_backend(attn_context_t *ctx, const void *src, size_t bytes) {
  attn_buffer_t *buf = NULL;
  if (bytes == 0) return NULL;
  require_ok(attn_buffer_alloc(ctx, bytes, &buf), ctx, "attn_buffer_alloc");
  if (src != NULL) require_ok(attn_buffer_upload(ctx, buf, 0, src, bytes), ctx, "upload");
  return buf;
}

/* Matrix descriptors of a problem for data at q, a, c (host arrays or buffer pointers). */
static attn_inputs_t inputs_of(const problem_t *p, const float *q, const float *a) {
  int64_t d = p->shape.d;
  attn_inputs_t in;
  in.queries = attn_cmat(q, d, p->shape.m * d);     /* stride ignored for varlen */
  in.annotations = attn_cmat(a, d, p->shape.n * d); /* stride ignored for varlen */
  in.values = attn_cmat(NULL, 0, 0);                /* values = annotations */
  return in;
}
static attn_outputs_t outputs_of(const problem_t *p, float *c, float *lse) {
  int64_t dv = p->shape.dv;
  attn_outputs_t out;
  memset(&out, 0, sizeof(out));
  out.context = attn_mat(c, dv, p->shape.m * dv);
  out.lse = lse;
  return out;
}

/* Runs p on ctx from backend buffers, checks it against the REFERENCE context ref. Returns the
 * number of values out of tolerance. */
static int64_t run_problem(attn_context_t *ctx, attn_context_t *ref, const problem_t *p) {
  int64_t d = p->shape.d, dv = p->shape.dv, batch = p->shape.batch;
  size_t q_bytes = (size_t)(p->q_rows * d) * sizeof(float);
  size_t a_bytes = (size_t)(p->a_rows * d) * sizeof(float);
  size_t c_bytes = (size_t)(p->q_rows * dv) * sizeof(float);
  size_t lse_bytes = (size_t)p->q_rows * sizeof(float);

  printf("\n%s: %lld sets, %lld decoder states, %lld annotation rows, d = %lld, %s score%s\n",
         p->name, (long long)batch, (long long)p->q_rows, (long long)p->a_rows, (long long)d,
         p->score.kind == ATTN_SCORE_DOT ? "dot" : "scaled dot",
         p->lengths ? ", per-set valid lengths" : "");

  /* Copies of the inputs where the context computes; offsets and lengths go there too. */
  buffers_t b;
  memset(&b, 0, sizeof(b));
  b.q = to_backend(ctx, p->q, q_bytes);
  b.a = to_backend(ctx, p->a, a_bytes);
  b.c = to_backend(ctx, NULL, c_bytes);
  b.lse = to_backend(ctx, NULL, lse_bytes);
  size_t off_bytes = (size_t)(batch + 1) * sizeof(int32_t);
  attn_shape_t shape = p->shape;
  if (p->q_off != NULL) {
    b.q_off = to_backend(ctx, p->q_off, off_bytes);
    b.a_off = to_backend(ctx, p->a_off, off_bytes);
    shape.query_offsets = attn_buffer_data(b.q_off);
    shape.annotation_offsets = attn_buffer_data(b.a_off);
  }
  if (p->lengths != NULL) {
    b.lengths = to_backend(ctx, p->lengths, (size_t)batch * sizeof(int32_t));
    shape.lengths = attn_buffer_data(b.lengths);
  }
  attn_inputs_t in = inputs_of(p, attn_buffer_data(b.q), attn_buffer_data(b.a));
  attn_outputs_t out = outputs_of(p, attn_buffer_data(b.c), attn_buffer_data(b.lse));

  /* Workspace first, then one warm-up run, then the timed runs. */
  require_ok(attn_context_reserve(ctx, &shape, &p->score), ctx, "attn_context_reserve");
  require_ok(attn_forward(ctx, &shape, &p->score, &in, &out), ctx, "attn_forward");
  require_ok(attn_context_synchronize(ctx), ctx, "attn_context_synchronize");
  double times[RUNS];
  for (int r = 0; r < RUNS; r++) {
    double t0 = now_ms();
    require_ok(attn_forward(ctx, &shape, &p->score, &in, &out), ctx, "attn_forward");
    require_ok(attn_context_synchronize(ctx), ctx, "attn_context_synchronize");
    times[r] = now_ms() - t0;
  }
  qsort(times, RUNS, sizeof(times[0]), compare_double);

  float *c = xmalloc(c_bytes), *lse = xmalloc(lse_bytes);
  require_ok(attn_buffer_download(ctx, b.c, 0, c, c_bytes), ctx, "download context");
  require_ok(attn_buffer_download(ctx, b.lse, 0, lse, lse_bytes), ctx, "download lse");

  /* The oracle: the same problem on host arrays through the REFERENCE backend. */
  float *c_ref = xmalloc(c_bytes), *lse_ref = xmalloc(lse_bytes);
  attn_inputs_t ref_in = inputs_of(p, p->q, p->a);
  attn_outputs_t ref_out = outputs_of(p, c_ref, lse_ref);
  double t0 = now_ms();
  require_ok(attn_forward_host(ref, &p->shape, &p->score, &ref_in, &ref_out), ref,
             "attn_forward_host (reference)");
  double ref_ms = now_ms() - t0;

  double scale = p->score.kind == ATTN_SCORE_SCALED_DOT ? 1.0 / sqrt((double)d) : 1.0;
  attn_tols_t tols = attn_tols(d, scale * max_score_terms(p), p->longest_n, p->a_abs);
  int64_t bad = attn_compare("context", c, dv, c_ref, dv, p->q_rows, dv, tols.context);
  bad += attn_compare_vec("lse", lse, lse_ref, p->q_rows, tols.lse);
  double c_err = 0, c_ratio = 0, l_err = 0, l_ratio = 0;
  largest_error(c, c_ref, p->q_rows * dv, tols.context, &c_err, &c_ratio);
  largest_error(lse, lse_ref, p->q_rows, tols.lse, &l_err, &l_ratio);

  printf("  %s: median %.3f ms of %d runs (min %.3f, max %.3f); reference %.1f ms\n",
         attn_backend_name(attn_context_backend(ctx)), times[RUNS / 2], RUNS, times[0],
         times[RUNS - 1], ref_ms);
  printf("  largest error vs reference: context %.3g (%.3g of its tolerance), lse %.3g (%.3g of "
         "its tolerance)\n",
         c_err, c_ratio, l_err, l_ratio);
  printf("  %s\n", bad ? "OUT OF TOLERANCE" : "within tolerance");

  free(c);
  free(lse);
  free(c_ref);
  free(lse_ref);
  attn_buffer_t *all[] = {b.q, b.a, b.c, b.lse, b.q_off, b.a_off, b.lengths};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    require_ok(attn_buffer_free(ctx, all[i]), ctx, "attn_buffer_free");
  }
  return bad;
}

/* --- The two problems ------------------------------------------------------------------------- */

static problem_t make_uniform(void) {
  problem_t p;
  memset(&p, 0, sizeof(p));
  p.name = "uniform";
  p.shape.batch = 64;
  p.shape.m = 64;
  p.shape.n = 200;
  p.shape.d = 64;
  p.shape.dv = 64;
  p.score = attn_score_dot();
  p.q_rows = p.shape.batch * p.shape.m;
  p.a_rows = p.shape.batch * p.shape.n;
  p.longest_n = p.shape.n;
  p.q = xmalloc((size_t)(p.q_rows * p.shape.d) * sizeof(float));
  p.a = xmalloc((size_t)(p.a_rows * p.shape.d) * sizeof(float));
  fill_random(p.q, p.q_rows * p.shape.d);
  p.a_abs = fill_random(p.a, p.a_rows * p.shape.d);
  return p;
}

static problem_t make_varlen(void) {
  enum { BATCH = 64 };
  problem_t p;
  memset(&p, 0, sizeof(p));
  p.name = "varlen";
  p.q_off = xmalloc((BATCH + 1) * sizeof(int32_t));
  p.a_off = xmalloc((BATCH + 1) * sizeof(int32_t));
  p.lengths = xmalloc(BATCH * sizeof(int32_t));
  p.q_off[0] = p.a_off[0] = 0;
  for (int b = 0; b < BATCH; b++) {
    int32_t m_b = b == 3 ? 0 : rng_int(1, 128);       /* set 3: no queries */
    int32_t n_b = b == 5 ? 0 : rng_int(1, 400);       /* set 5: no annotations */
    int32_t len = b % 4 == 0 ? rng_int(0, n_b) : n_b; /* a quarter of the sets masked */
    p.q_off[b + 1] = p.q_off[b] + m_b;
    p.a_off[b + 1] = p.a_off[b] + n_b;
    p.lengths[b] = len;
    p.longest_n = n_b > p.longest_n ? n_b : p.longest_n;
  }
  p.shape.batch = BATCH;
  p.shape.m = p.q_off[BATCH];
  p.shape.n = p.a_off[BATCH];
  p.shape.d = 64;
  p.shape.dv = 64;
  p.shape.query_offsets = p.q_off;
  p.shape.annotation_offsets = p.a_off;
  p.shape.lengths = p.lengths;
  p.score = attn_score_scaled_dot(0); /* 0: 1/sqrt(d) */
  p.q_rows = p.shape.m;
  p.a_rows = p.shape.n;
  p.q = xmalloc((size_t)(p.q_rows * p.shape.d) * sizeof(float));
  p.a = xmalloc((size_t)(p.a_rows * p.shape.d) * sizeof(float));
  fill_random(p.q, p.q_rows * p.shape.d);
  p.a_abs = fill_random(p.a, p.a_rows * p.shape.d);
  return p;
}

static void free_problem(problem_t *p) {
  free(p->q);
  free(p->a);
  free(p->q_off);
  free(p->a_off);
  free(p->lengths);
}

int main(int argc, char **argv) {
  attn_options_t opts = attn_default_options();
  if (argc > 2 || (argc == 2 && attn_backend_from_name(argv[1], &opts.backend) != ATTN_OK)) {
    fprintf(stderr, "usage: %s [auto|cuda|cpu|reference]\n", argv[0]);
    return 2;
  }
  attn_options_t ref_opts = attn_default_options();
  ref_opts.backend = ATTN_BACKEND_REFERENCE;

  attn_context_t *ctx = NULL, *ref = NULL;
  require_ok(attn_context_create(&opts, &ctx), NULL, "attn_context_create");
  require_ok(attn_context_create(&ref_opts, &ref), NULL, "attn_context_create (reference)");
  printf("attn %s batch scoring\n", attn_version_string());
  printf("backend: %s (%s)\n", attn_backend_name(attn_context_backend(ctx)),
         attn_context_backend_reason(ctx));

  problem_t problems[2];
  problems[0] = make_uniform();
  problems[1] = make_varlen();
  int64_t bad = 0;
  for (int i = 0; i < 2; i++) {
    bad += run_problem(ctx, ref, &problems[i]);
    free_problem(&problems[i]);
  }

  attn_context_destroy(ref);
  attn_context_destroy(ctx);
  if (bad) {
    printf("\nbatch: %lld value(s) out of tolerance\n", (long long)bad);
    return 1;
  }
  printf("\nbatch: every value within tolerance of the reference\n");
  return 0;
}
