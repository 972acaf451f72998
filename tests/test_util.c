/*
 * test_util.c - helpers shared by the Check suites (see test_util.h).
 */
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Suites, backends, memory                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Contexts of attn_test_run_variant, one per (backend, staging, algorithm), kept for the whole
 * run: creating a CUDA context (probe, cuBLAS handle) for every call would dominate the suites'
 * time on a GPU. Reusing them also checks that a context stays correct call after call. */
#define MAX_CACHED 32
static struct {
  attn_test_variant_t key;
  attn_context_t *ctx;
} cached[MAX_CACHED];
static int ncached;

static void free_cached_contexts(void) {
  for (int i = 0; i < ncached; i++)
    attn_context_destroy(cached[i].ctx);
  ncached = 0;
}

int attn_test_main(Suite *suite) {
  SRunner *runner = srunner_create(suite);
  srunner_set_fork_status(runner, CK_NOFORK);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  free_cached_contexts();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int attn_test_backends(attn_backend_t out[ATTN_TEST_MAX_BACKENDS]) {
  static int cuda_usable = -1;
  int count = 0;
  out[count++] = ATTN_BACKEND_REFERENCE;
  out[count++] = ATTN_BACKEND_CPU;
  if (cuda_usable < 0) {
    cuda_usable = 0;
    if (attn_built_with_cuda()) {
      attn_options_t opts = attn_default_options();
      attn_context_t *ctx = NULL;
      opts.backend = ATTN_BACKEND_CUDA;
      if (attn_context_create(&opts, &ctx) == ATTN_OK) {
        cuda_usable = 1;
        attn_context_destroy(ctx);
      }
    }
  }
  if (cuda_usable) out[count++] = ATTN_BACKEND_CUDA;
  return count;
}

attn_context_t *attn_test_context(attn_backend_t backend) {
  attn_options_t opts = attn_default_options();
  attn_context_t *ctx = NULL;
  opts.backend = backend;
  attn_status_t st = attn_context_create(&opts, &ctx);
  ck_assert_msg(st == ATTN_OK && ctx != NULL, "context on %s: %s (%s)", attn_backend_name(backend),
                attn_status_string(st), attn_create_error());
  ck_assert_int_eq(attn_context_backend(ctx), backend);
  return ctx;
}

void *attn_test_calloc(size_t count, size_t size) {
  void *x = calloc(count ? count : 1, size ? size : 1);
  ck_assert_msg(x != NULL, "out of host memory (%zu x %zu)", count, size);
  return x;
}

/* ------------------------------------------------------------------------------------------ */
/* Random numbers: splitmix64, so that every seed gives the same data on every machine         */
/* ------------------------------------------------------------------------------------------ */

void attn_rng_seed(attn_rng_t *rng, uint64_t seed) {
  rng->state = seed;
}

static uint64_t rng_next(attn_rng_t *rng) {
  uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double attn_rng_uniform(attn_rng_t *rng) {
  return (double)(rng_next(rng) >> 11) * 0x1.0p-53;
}

int64_t attn_rng_int(attn_rng_t *rng, int64_t lo, int64_t hi) {
  return lo + (int64_t)(rng_next(rng) % (uint64_t)(hi - lo + 1));
}

void attn_rng_fill(attn_rng_t *rng, float *x, size_t count, float scale, double outliers) {
  for (size_t i = 0; i < count; i++) {
    double u = 2.0 * attn_rng_uniform(rng) - 1.0;
    if (outliers > 0 && attn_rng_uniform(rng) < outliers) u *= 30.0;
    x[i] = (float)(u * scale);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Problems                                                                                   */
/* ------------------------------------------------------------------------------------------ */

void attn_test_fill_sentinel(float *x, size_t count) {
  uint32_t bits = ATTN_TEST_SENTINEL;
  for (size_t i = 0; i < count; i++)
    memcpy(&x[i], &bits, sizeof bits);
}

static int is_sentinel(const float *x) {
  uint32_t bits;
  memcpy(&bits, x, sizeof bits);
  return bits == ATTN_TEST_SENTINEL;
}

attn_test_spec_t attn_test_spec(int64_t batch, int64_t m, int64_t n, int64_t d) {
  attn_test_spec_t s;
  memset(&s, 0, sizeof s);
  s.batch = batch;
  s.m = m;
  s.n = n;
  s.d = d;
  s.dv = d;
  s.kind = ATTN_SCORE_DOT;
  s.h = 8;
  s.q_scale = 1.0f;
  s.a_scale = 1.0f;
  s.seed = 1;
  return s;
}

/* One float of padding past the end, so that tests can pass a misaligned pointer to the array. */
static float *random_array(attn_rng_t *rng, size_t count, float scale, double outliers) {
  float *x = attn_test_calloc(count + 1, sizeof(float));
  attn_rng_fill(rng, x, count, scale, outliers);
  return x;
}

void attn_test_problem_init(attn_test_problem_t *p, const attn_test_spec_t *spec) {
  memset(p, 0, sizeof *p);
  p->spec = *spec;
  const attn_test_spec_t *s = &p->spec;
  int64_t batch = s->batch, d = s->d, gap = s->ld_gap;
  int64_t dv = s->separate_values ? s->dv : d;
  attn_rng_t rng;
  attn_rng_seed(&rng, s->seed);
  float q_scale = s->q_scale > 0 ? s->q_scale : 1.0f;
  float a_scale = s->a_scale > 0 ? s->a_scale : 1.0f;

  p->varlen = s->set_m != NULL;
  int64_t ldq = d + gap, lda = d + gap, ldv = dv + gap, ldc = dv + gap;
  int64_t sq = 0, sa = 0, sv = 0;
  if (p->varlen) {
    p->qoff = attn_test_calloc((size_t)batch + 1, sizeof(int32_t));
    p->aoff = attn_test_calloc((size_t)batch + 1, sizeof(int32_t));
    p->max_n = 0;
    for (int64_t b = 0; b < batch; b++) {
      p->qoff[b + 1] = p->qoff[b] + s->set_m[b];
      p->aoff[b + 1] = p->aoff[b] + s->set_n[b];
      if (s->set_n[b] > p->max_n) p->max_n = s->set_n[b];
    }
    p->rows_q = p->qoff[batch];
    p->rows_a = p->aoff[batch];
    p->q_count = (size_t)(p->rows_q * ldq);
    p->a_count = (size_t)(p->rows_a * lda);
    p->v_count = (size_t)(p->rows_a * ldv);
    p->lds = p->max_n + gap;
    p->sts = 0;
    p->ldc = ldc;
    p->stc = 0;
    p->s_count = (size_t)(p->rows_q * p->lds);
    p->c_count = (size_t)(p->rows_q * ldc);
    p->lse_count = (size_t)p->rows_q;
  } else {
    p->rows_q = s->m;
    p->rows_a = s->n;
    p->max_n = s->n;
    sq = s->m * ldq + s->set_gap;
    sa = s->shared_annotations ? 0 : s->n * lda + s->set_gap;
    sv = s->shared_annotations ? 0 : s->n * ldv + s->set_gap;
    int64_t sets_a = s->shared_annotations ? 1 : batch;
    p->q_count = (size_t)(batch * sq);
    p->a_count = (size_t)(sets_a * (s->n * lda + s->set_gap));
    p->v_count = (size_t)(sets_a * (s->n * ldv + s->set_gap));
    p->lds = s->n + gap;
    p->sts = s->m * p->lds + s->set_gap;
    p->ldc = ldc;
    p->stc = s->m * ldc + s->set_gap;
    p->s_count = (size_t)(batch * p->sts);
    p->c_count = (size_t)(batch * p->stc);
    p->lse_count = (size_t)(batch * s->m);
  }
  if (s->lengths) {
    p->lengths = attn_test_calloc((size_t)batch, sizeof(int32_t));
    memcpy(p->lengths, s->lengths, (size_t)batch * sizeof(int32_t));
  }
  p->q = random_array(&rng, p->q_count, q_scale, s->outliers);
  p->a = random_array(&rng, p->a_count, a_scale, s->outliers);
  p->mq = attn_cmat(p->q, ldq, sq);
  p->ma = attn_cmat(p->a, lda, sa);
  p->mv = p->ma;
  if (s->separate_values) {
    p->v = random_array(&rng, p->v_count, 1.0f, s->outliers);
    p->mv = attn_cmat(p->v, ldv, sv);
  } else {
    p->v_count = 0;
  }

  p->score = attn_score_dot();
  float wscale = (float)(1.0 / sqrt((double)d));
  switch (s->kind) {
  case ATTN_SCORE_DOT:
    break;
  case ATTN_SCORE_SCALED_DOT:
    p->score = attn_score_scaled_dot(s->scale);
    break;
  case ATTN_SCORE_GENERAL:
    p->w_count = (size_t)(d * (d + gap));
    p->w = random_array(&rng, p->w_count, wscale, 0);
    p->score = attn_score_general(p->w, d + gap);
    break;
  case ATTN_SCORE_ADDITIVE:
    p->wq_count = p->wa_count = (size_t)(s->h * (d + gap));
    p->hv_count = (size_t)s->h;
    p->wq = random_array(&rng, p->wq_count, wscale, 0);
    p->wa = random_array(&rng, p->wa_count, wscale, 0);
    p->hv = random_array(&rng, p->hv_count, 1.0f, 0);
    p->score = attn_score_additive(s->h, p->wq, d + gap, p->wa, d + gap, p->hv);
    break;
  }

  p->shape.batch = batch;
  p->shape.m = p->rows_q;
  p->shape.n = p->rows_a;
  p->shape.d = d;
  p->shape.dv = dv;
  p->shape.query_offsets = p->qoff;
  p->shape.annotation_offsets = p->aoff;
  p->shape.lengths = p->lengths;
}

void attn_test_problem_free(attn_test_problem_t *p) {
  free(p->qoff);
  free(p->aoff);
  free(p->lengths);
  free(p->q);
  free(p->a);
  free(p->v);
  free(p->w);
  free(p->wq);
  free(p->wa);
  free(p->hv);
  memset(p, 0, sizeof *p);
}

attn_test_set_t attn_test_set(const attn_test_problem_t *p, int64_t b) {
  attn_test_set_t t;
  if (p->varlen) {
    t.m = p->qoff[b + 1] - p->qoff[b];
    t.n = p->aoff[b + 1] - p->aoff[b];
    t.q = (size_t)(p->qoff[b] * p->mq.ld);
    t.a = (size_t)(p->aoff[b] * p->ma.ld);
    t.v = (size_t)(p->aoff[b] * p->mv.ld);
    t.s = (size_t)(p->qoff[b] * p->lds);
    t.c = (size_t)(p->qoff[b] * p->ldc);
    t.lse = (size_t)p->qoff[b];
  } else {
    t.m = p->rows_q;
    t.n = p->rows_a;
    t.q = (size_t)(b * p->mq.stride);
    t.a = (size_t)(b * p->ma.stride);
    t.v = (size_t)(b * p->mv.stride);
    t.s = (size_t)(b * p->sts);
    t.c = (size_t)(b * p->stc);
    t.lse = (size_t)(b * p->rows_q);
  }
  t.valid = p->lengths ? p->lengths[b] : t.n;
  return t;
}

static void copy_rows(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows,
                      int64_t width) {
  for (int64_t r = 0; r < rows; r++)
    memcpy(dst + r * ldd, src + r * lds, (size_t)width * sizeof(float));
}

void attn_test_problem_subset(const attn_test_problem_t *p, int64_t b, int64_t r0, int64_t rows,
                              attn_test_problem_t *one) {
  attn_test_set_t t = attn_test_set(p, b);
  attn_test_spec_t s = p->spec;
  int32_t len = (int32_t)t.valid;
  ck_assert(r0 >= 0 && r0 + rows <= t.m);
  s.batch = 1;
  s.m = rows;
  s.n = t.n;
  s.set_m = s.set_n = NULL;
  s.lengths = p->lengths ? &len : NULL;
  s.shared_annotations = 0;
  attn_test_problem_init(one, &s);
  copy_rows(one->q, one->mq.ld, p->q + t.q + (size_t)(r0 * p->mq.ld), p->mq.ld, rows, s.d);
  copy_rows(one->a, one->ma.ld, p->a + t.a, p->ma.ld, t.n, s.d);
  if (p->v) copy_rows(one->v, one->mv.ld, p->v + t.v, p->mv.ld, t.n, p->shape.dv);
  if (p->w) memcpy(one->w, p->w, p->w_count * sizeof(float));
  if (p->wq) {
    memcpy(one->wq, p->wq, p->wq_count * sizeof(float));
    memcpy(one->wa, p->wa, p->wa_count * sizeof(float));
    memcpy(one->hv, p->hv, p->hv_count * sizeof(float));
  }
}

void attn_test_out_init(attn_test_out_t *o, const attn_test_problem_t *p, int want_s, int want_w,
                        int want_lse) {
  memset(o, 0, sizeof *o);
  o->c_count = p->c_count;
  o->c = attn_test_calloc(o->c_count, sizeof(float));
  attn_test_fill_sentinel(o->c, o->c_count);
  if (want_s) {
    o->s_count = p->s_count;
    o->s = attn_test_calloc(o->s_count, sizeof(float));
    attn_test_fill_sentinel(o->s, o->s_count);
  }
  if (want_w) {
    o->w = attn_test_calloc(p->s_count, sizeof(float));
    attn_test_fill_sentinel(o->w, p->s_count);
  }
  if (want_lse) {
    o->lse_count = p->lse_count;
    o->lse = attn_test_calloc(o->lse_count, sizeof(float));
    attn_test_fill_sentinel(o->lse, o->lse_count);
  }
}

void attn_test_out_no_context(attn_test_out_t *o) {
  free(o->c);
  o->c = NULL;
  o->c_count = 0;
}

void attn_test_out_free(attn_test_out_t *o) {
  free(o->c);
  free(o->s);
  free(o->w);
  free(o->lse);
  memset(o, 0, sizeof *o);
}

/* ------------------------------------------------------------------------------------------ */
/* Running                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* The buffers of one ATTN_TEST_BUFFERS run. */
#define MAX_STAGED 16
typedef struct staged {
  attn_context_t *ctx;
  attn_buffer_t *buf[MAX_STAGED];
  int count;
} staged_t;

static void *stage(staged_t *st, const void *host, size_t bytes) {
  if (host == NULL) return NULL;
  ck_assert_int_lt(st->count, MAX_STAGED);
  attn_buffer_t *buf = NULL;
  attn_status_t s = attn_buffer_alloc(st->ctx, bytes ? bytes : 4, &buf);
  ck_assert_msg(s == ATTN_OK, "buffer alloc: %s", attn_context_last_error(st->ctx));
  if (bytes) {
    s = attn_buffer_upload(st->ctx, buf, 0, host, bytes);
    ck_assert_msg(s == ATTN_OK, "upload: %s", attn_context_last_error(st->ctx));
  }
  st->buf[st->count++] = buf;
  return attn_buffer_data(buf);
}

static void unstage(staged_t *st, void *host, const void *dev, size_t bytes) {
  if (host == NULL || bytes == 0) return;
  for (int i = 0; i < st->count; i++) {
    if (attn_buffer_data(st->buf[i]) == dev) {
      attn_status_t s = attn_buffer_download(st->ctx, st->buf[i], 0, host, bytes);
      ck_assert_msg(s == ATTN_OK, "download: %s", attn_context_last_error(st->ctx));
      return;
    }
  }
  ck_abort_msg("unstage: no buffer");
}

static void free_staged(staged_t *st) {
  for (int i = 0; i < st->count; i++) {
    ck_assert_int_eq(attn_buffer_free(st->ctx, st->buf[i]), ATTN_OK);
  }
  st->count = 0;
}

static attn_status_t call(attn_context_t *ctx, int host_calls, attn_test_op_t op,
                          const attn_shape_t *shape, const attn_score_t *score,
                          const attn_inputs_t *in, const attn_outputs_t *out,
                          attn_const_matrix_t in_s, attn_const_matrix_t in_w) {
  switch (op) {
  case ATTN_TEST_FORWARD:
    return host_calls ? attn_forward_host(ctx, shape, score, in, out)
                      : attn_forward(ctx, shape, score, in, out);
  case ATTN_TEST_SCORES:
    return host_calls
               ? attn_scores_host(ctx, shape, score, in->queries, in->annotations, out->scores)
               : attn_scores(ctx, shape, score, in->queries, in->annotations, out->scores);
  case ATTN_TEST_SOFTMAX:
    return host_calls ? attn_softmax_host(ctx, shape, in_s, out->weights, out->lse)
                      : attn_softmax(ctx, shape, in_s, out->weights, out->lse);
  case ATTN_TEST_WEIGHTED_SUM:
    return host_calls ? attn_weighted_sum_host(ctx, shape, in_w, in->values, out->context)
                      : attn_weighted_sum(ctx, shape, in_w, in->values, out->context);
  }
  return ATTN_ERR_INTERNAL;
}

attn_status_t attn_test_run(attn_context_t *ctx, const attn_test_problem_t *p, attn_test_op_t op,
                            attn_test_path_t path, const float *in_scores, const float *in_weights,
                            attn_test_out_t *o) {
  attn_shape_t shape = p->shape;
  attn_score_t score = p->score;
  attn_inputs_t in;
  attn_outputs_t out;
  attn_const_matrix_t in_s = attn_cmat(in_scores, p->lds, p->sts);
  attn_const_matrix_t in_w = attn_cmat(in_weights, p->lds, p->sts);
  in.queries = p->mq;
  in.annotations = p->ma;
  in.values = p->spec.separate_values ? p->mv : attn_cmat(NULL, 0, 0);
  out.context = attn_mat(o->c, p->ldc, p->stc);
  out.scores = attn_mat(o->s, p->lds, p->sts);
  out.weights = attn_mat(o->w, p->lds, p->sts);
  out.lse = o->lse;
  /* The weighted-sum step takes the values explicitly (the annotations when there are none). */
  if (op == ATTN_TEST_WEIGHTED_SUM) in.values = p->mv;

  if (path != ATTN_TEST_BUFFERS) {
    attn_status_t s =
        call(ctx, path == ATTN_TEST_HOST_CALLS, op, &shape, &score, &in, &out, in_s, in_w);
    return s != ATTN_OK ? s : attn_context_synchronize(ctx);
  }

  staged_t st;
  memset(&st, 0, sizeof st);
  st.ctx = ctx;
  const size_t f = sizeof(float), nb = (size_t)p->shape.batch;
  shape.query_offsets = stage(&st, p->qoff, (nb + 1) * sizeof(int32_t));
  shape.annotation_offsets = stage(&st, p->aoff, (nb + 1) * sizeof(int32_t));
  shape.lengths = stage(&st, p->lengths, nb * sizeof(int32_t));
  score.w = stage(&st, p->w, p->w_count * f);
  score.wq = stage(&st, p->wq, p->wq_count * f);
  score.wa = stage(&st, p->wa, p->wa_count * f);
  score.v = stage(&st, p->hv, p->hv_count * f);
  in.queries.data = stage(&st, p->q, p->q_count * f);
  in.annotations.data = stage(&st, p->a, p->a_count * f);
  if (in.values.data == p->v) {
    in.values.data = stage(&st, p->v, p->v_count * f);
  } else if (in.values.data == p->a) {
    in.values.data = in.annotations.data;
  }
  in_s.data = stage(&st, in_scores, p->s_count * f);
  in_w.data = stage(&st, in_weights, p->s_count * f);
  out.context.data = stage(&st, o->c, o->c_count * f);
  out.scores.data = stage(&st, o->s, o->s_count * f);
  out.weights.data = stage(&st, o->w, p->s_count * f);
  out.lse = stage(&st, o->lse, o->lse_count * f);

  attn_status_t s = call(ctx, 0, op, &shape, &score, &in, &out, in_s, in_w);
  if (s == ATTN_OK) s = attn_context_synchronize(ctx);
  if (s == ATTN_OK) {
    unstage(&st, o->c, out.context.data, o->c_count * f);
    unstage(&st, o->s, out.scores.data, o->s_count * f);
    unstage(&st, o->w, out.weights.data, p->s_count * f);
    unstage(&st, o->lse, out.lse, o->lse_count * f);
  }
  free_staged(&st);
  return s;
}

void attn_test_run_on(attn_backend_t backend, const attn_test_problem_t *p, attn_test_op_t op,
                      attn_test_path_t path, const float *in_scores, const float *in_weights,
                      attn_test_out_t *o) {
  attn_context_t *ctx = attn_test_context(backend);
  attn_status_t s = attn_test_run(ctx, p, op, path, in_scores, in_weights, o);
  ck_assert_msg(s == ATTN_OK, "%s op %d path %d: %s: %s", attn_backend_name(backend), (int)op,
                (int)path, attn_status_string(s), attn_context_last_error(ctx));
  attn_context_destroy(ctx);
}

static void add_variant(attn_test_variant_t *out, int *count, attn_backend_t backend,
                        attn_test_path_t path, int force_staging) {
  static const char *paths[] = {"host calls", "buffers", "direct"};
  attn_test_variant_t *v = &out[(*count)++];
  v->backend = backend;
  v->path = path;
  v->force_staging = force_staging;
  v->algo = ATTN_ALGO_AUTO;
  snprintf(v->name, sizeof v->name, "%s/%s%s", attn_backend_name(backend), paths[path],
           force_staging ? "/staged" : "");
}

int attn_test_variants(attn_test_variant_t out[ATTN_TEST_MAX_VARIANTS]) {
  attn_backend_t backends[ATTN_TEST_MAX_BACKENDS];
  int nb = attn_test_backends(backends), count = 0;
  for (int i = 0; i < nb; i++) {
    int host = backends[i] != ATTN_BACKEND_CUDA;
    add_variant(out, &count, backends[i], ATTN_TEST_HOST_CALLS, 0);
    add_variant(out, &count, backends[i], ATTN_TEST_BUFFERS, 0);
    if (host) add_variant(out, &count, backends[i], ATTN_TEST_DIRECT, 0);
    if (host) add_variant(out, &count, backends[i], ATTN_TEST_HOST_CALLS, 1);
  }
  return count;
}

int attn_test_algo_variants(attn_test_variant_t out[ATTN_TEST_MAX_VARIANTS]) {
  attn_backend_t backends[ATTN_TEST_MAX_BACKENDS];
  int nb = attn_test_backends(backends), count = 0;
  for (int i = 0; i < nb; i++) {
    if (backends[i] == ATTN_BACKEND_REFERENCE) continue;
    attn_test_path_t path = backends[i] == ATTN_BACKEND_CUDA ? ATTN_TEST_BUFFERS : ATTN_TEST_DIRECT;
    /* ROWS is a path of its own only on CUDA (the CPU runs it as FUSED). */
    int last = backends[i] == ATTN_BACKEND_CUDA ? ATTN_ALGO_ROWS : ATTN_ALGO_FUSED;
    for (int algo = ATTN_ALGO_SIMPLE; algo <= last; algo++) {
      attn_test_variant_t *v = &out[count];
      add_variant(out, &count, backends[i], path, 0);
      v->algo = (attn_algo_t)algo;
      snprintf(v->name, sizeof v->name, "%s/%s", attn_backend_name(backends[i]),
               attn_algo_name((attn_algo_t)algo));
    }
  }
  return count;
}

attn_context_t *attn_test_variant_context(const attn_test_variant_t *v) {
  if (v->force_staging) ck_assert_int_eq(setenv("ATTN_TEST_FORCE_STAGING", "1", 1), 0);
  attn_options_t opts = attn_default_options();
  attn_context_t *ctx = NULL;
  opts.backend = v->backend;
  opts.algo = v->algo;
  attn_status_t st = attn_context_create(&opts, &ctx);
  if (v->force_staging) ck_assert_int_eq(unsetenv("ATTN_TEST_FORCE_STAGING"), 0);
  ck_assert_msg(st == ATTN_OK, "context for %s: %s", v->name, attn_create_error());
  ck_assert_int_eq(attn_context_backend(ctx), v->backend);
  return ctx;
}

void attn_test_run_variant(const attn_test_variant_t *v, const attn_test_problem_t *p,
                           attn_test_op_t op, const float *in_scores, const float *in_weights,
                           attn_test_out_t *o) {
  attn_context_t *ctx = NULL;
  for (int i = 0; i < ncached && !ctx; i++) {
    const attn_test_variant_t *k = &cached[i].key;
    if (k->backend == v->backend && k->force_staging == v->force_staging && k->algo == v->algo)
      ctx = cached[i].ctx;
  }
  if (!ctx) {
    ck_assert_int_lt(ncached, MAX_CACHED);
    ctx = attn_test_variant_context(v);
    cached[ncached].key = *v;
    cached[ncached++].ctx = ctx;
  }
  attn_status_t s = attn_test_run(ctx, p, op, v->path, in_scores, in_weights, o);
  ck_assert_msg(s == ATTN_OK, "%s op %d: %s: %s", v->name, (int)op, attn_status_string(s),
                attn_context_last_error(ctx));
}

void attn_test_expect_forward(const attn_test_variant_t *v, const attn_test_problem_t *p,
                              const attn_test_out_t *ref, const attn_tols_t *tols) {
  attn_test_out_t o;
  attn_test_out_init(&o, p, 1, 1, 1);
  attn_test_run_variant(v, p, ATTN_TEST_FORWARD, NULL, NULL, &o);
  ck_assert_int_eq(attn_test_compare(p, &o, ref, tols, v->name), 0);
  attn_test_out_free(&o);
}

/* ------------------------------------------------------------------------------------------ */
/* Tolerances and comparison                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* sum_k |term_k| of the score of query q against annotation a (as in tolerance.h). */
static double score_abs(const attn_test_problem_t *p, const float *q, const float *a) {
  int64_t d = p->spec.d;
  double sum = 0;
  switch (p->spec.kind) {
  case ATTN_SCORE_DOT:
  case ATTN_SCORE_SCALED_DOT:
    for (int64_t i = 0; i < d; i++)
      sum += fabs((double)q[i] * a[i]);
    if (p->spec.kind == ATTN_SCORE_SCALED_DOT) {
      sum *= p->spec.scale != 0 ? fabs((double)p->spec.scale) : 1.0 / sqrt((double)d);
    }
    break;
  case ATTN_SCORE_GENERAL:
    for (int64_t k = 0; k < d; k++) {
      double row = 0;
      for (int64_t l = 0; l < d; l++)
        row += fabs((double)p->w[k * p->score.ldw + l] * a[l]);
      sum += fabs((double)q[k]) * row;
    }
    break;
  case ATTN_SCORE_ADDITIVE:
    for (int64_t h = 0; h < p->spec.h; h++) {
      double inner = 1.0;
      for (int64_t i = 0; i < d; i++) {
        inner += fabs((double)p->wq[h * p->score.ldwq + i] * q[i]) +
                 fabs((double)p->wa[h * p->score.ldwa + i] * a[i]);
      }
      sum += fabs((double)p->hv[h]) * inner;
    }
    break;
  }
  return sum;
}

attn_tols_t attn_test_tols(const attn_test_problem_t *p) {
  double smax = 0, vmax = 0;
  int64_t d = p->spec.d, k = d;
  if (p->spec.kind == ATTN_SCORE_GENERAL) k = d * d;
  if (p->spec.kind == ATTN_SCORE_ADDITIVE) k = 2 * d + p->spec.h;
  for (int64_t b = 0; b < p->shape.batch; b++) {
    attn_test_set_t t = attn_test_set(p, b);
    for (int64_t j = 0; j < t.valid; j++) {
      const float *a = p->a + t.a + (size_t)(j * p->ma.ld);
      const float *v = p->mv.data + t.v + (size_t)(j * p->mv.ld);
      for (int64_t c = 0; c < p->shape.dv; c++)
        vmax = fmax(vmax, fabs((double)v[c]));
      for (int64_t i = 0; i < t.m; i++) {
        smax = fmax(smax, score_abs(p, p->q + t.q + (size_t)(i * p->mq.ld), a));
      }
    }
  }
  return attn_tols(k, smax, p->max_n, vmax);
}

/* Compares one output array: `defined` marks the entries the call defines; the rest must keep
 * the sentinel in x. */
static int64_t compare_array(const char *name, const float *x, const float *ref, size_t count,
                             const unsigned char *defined, const attn_tol_t *tol) {
  int64_t bad = 0;
  for (size_t i = 0; i < count; i++) {
    int ok;
    if (!defined[i]) {
      ok = is_sentinel(&x[i]);
    } else if (tol) {
      ok = attn_tol_match(x[i], ref[i], *tol);
    } else {
      ok = memcmp(&x[i], &ref[i], sizeof(float)) == 0;
    }
    if (ok) continue;
    if (bad < 10) {
      fprintf(stderr, "%s[%zu]%s: %.9g vs reference %.9g\n", name, i,
              defined[i] ? "" : " (must be untouched)", (double)x[i], (double)ref[i]);
    }
    bad++;
  }
  if (bad > 10) fprintf(stderr, "%s: ... %lld mismatches in all\n", name, (long long)bad);
  return bad;
}

int64_t attn_test_compare(const attn_test_problem_t *p, const attn_test_out_t *x,
                          const attn_test_out_t *ref, const attn_tols_t *tols, const char *what) {
  unsigned char *def_c = attn_test_calloc(p->c_count, 1);
  unsigned char *def_s = attn_test_calloc(p->s_count, 1);
  unsigned char *def_l = attn_test_calloc(p->lse_count, 1);
  for (int64_t b = 0; b < p->shape.batch; b++) {
    attn_test_set_t t = attn_test_set(p, b);
    for (int64_t i = 0; i < t.m; i++) {
      memset(def_c + t.c + (size_t)(i * p->ldc), 1, (size_t)p->shape.dv);
      memset(def_s + t.s + (size_t)(i * p->lds), 1, (size_t)t.n);
      def_l[t.lse + (size_t)i] = 1;
    }
  }
  char name[160];
  int64_t bad = 0;
  if (x->c && ref->c) {
    snprintf(name, sizeof name, "%s context", what);
    bad += compare_array(name, x->c, ref->c, p->c_count, def_c, tols ? &tols->context : NULL);
  }
  if (x->s && ref->s) {
    snprintf(name, sizeof name, "%s scores", what);
    bad += compare_array(name, x->s, ref->s, p->s_count, def_s, tols ? &tols->scores : NULL);
  }
  if (x->w && ref->w) {
    snprintf(name, sizeof name, "%s weights", what);
    bad += compare_array(name, x->w, ref->w, p->s_count, def_s, tols ? &tols->weights : NULL);
  }
  if (x->lse && ref->lse) {
    snprintf(name, sizeof name, "%s lse", what);
    bad += compare_array(name, x->lse, ref->lse, p->lse_count, def_l, tols ? &tols->lse : NULL);
  }
  free(def_c);
  free(def_s);
  free(def_l);
  return bad;
}

int64_t attn_test_bit_mismatches(const char *what, const float *x, const float *y, size_t count,
                                 int nan_matches) {
  int64_t bad = 0;
  for (size_t i = 0; i < count; i++) {
    if (memcmp(&x[i], &y[i], sizeof(float)) == 0) continue;
    if (nan_matches && isnan(x[i]) && isnan(y[i])) continue;
    if (what && bad < 10)
      fprintf(stderr, "%s[%zu]: %.9g vs %.9g (bits differ)\n", what, i, (double)x[i], (double)y[i]);
    bad++;
  }
  return bad;
}
