/*
 * test_properties.c - properties of attention over seeded random inputs with deliberate outliers,
 * and every backend compared with the REFERENCE over a grid of shapes.
 *
 * The grid has the awkward shapes: n = 1 and d = 1, d not a multiple of 4, n larger than one block
 * (> 1000), a varlen batch with a set with no queries and a set with no annotations, lengths masks,
 * ld gaps and set gaps, shared annotations, separate values, and scores in the thousands. Every
 * shape runs with all four score functions, on every usable backend through every API path (the
 * *_host calls, buffers, direct calls, and the *_host calls forced to stage through backend memory
 * with ATTN_TEST_FORCE_STAGING=1), with every combination of optional outputs.
 *
 * Properties (each on every backend): weights >= 0 and summing to 1 on every valid row; adding a
 * constant to a row's scores changes no weight; permuting the annotations permutes the weights and
 * leaves the context unchanged; general with W = I equals dot; scaled dot equals dot on scaled
 * queries; a varlen batch equals its sets run one by one; values = annotations equals no values;
 * the three steps chained equal forward.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"

/* ------------------------------------------------------------------------------------------ */
/* The grid                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static const int32_t VARLEN_M[4] = {3, 0, 2, 4};      /* set 1 has no queries */
static const int32_t VARLEN_N[4] = {5, 4, 0, 1100};   /* set 2 has no annotations */
static const int32_t VARLEN_LEN[4] = {5, 2, 0, 1037}; /* masks inside sets 1 and 3 */
static const int32_t UNIFORM_LEN[3] = {0, 3, 9};      /* set 0 fully masked */
static const int32_t VARLEN2_M[3] = {1, 5, 2};
static const int32_t VARLEN2_N[3] = {1, 17, 1};
static const int32_t GEMM_LEN[2] = {300, 257};
static const int32_t VARLEN3_M[4] = {64, 1, 33, 5};
static const int32_t VARLEN3_N[4] = {100, 40, 0, 64};

#define GRID_SIZE 13

static attn_test_spec_t grid_spec(int i) {
  attn_test_spec_t s;
  switch (i) {
  case 0: /* the smallest: n = 1, d = 1 */
    s = attn_test_spec(1, 1, 1, 1);
    break;
  case 1: /* n = 1 with several queries */
    s = attn_test_spec(1, 4, 1, 5);
    break;
  case 2: /* d = 1 */
    s = attn_test_spec(3, 5, 7, 1);
    break;
  case 3: /* d not a multiple of 4, ld and set gaps */
    s = attn_test_spec(2, 3, 13, 7);
    s.ld_gap = 3;
    s.set_gap = 5;
    break;
  case 4: /* n larger than a block */
    s = attn_test_spec(2, 2, 1500, 6);
    break;
  case 5: /* one annotation set shared by every set of the batch */
    s = attn_test_spec(4, 3, 9, 8);
    s.shared_annotations = 1;
    break;
  case 6: /* varlen with an empty query set, an empty annotation set, masks, a long set */
    s = attn_test_spec(4, 0, 0, 5);
    s.set_m = VARLEN_M;
    s.set_n = VARLEN_N;
    s.lengths = VARLEN_LEN;
    s.ld_gap = 2;
    break;
  case 7: /* uniform with lengths masks, one set fully masked */
    s = attn_test_spec(3, 2, 9, 4);
    s.lengths = UNIFORM_LEN;
    break;
  case 8: /* scores in the thousands (and outliers beyond) */
    s = attn_test_spec(2, 3, 11, 5);
    s.q_scale = 30.0f;
    s.a_scale = 30.0f;
    break;
  case 9: /* separate values, dv != d */
    s = attn_test_spec(2, 3, 6, 3);
    s.separate_values = 1;
    s.dv = 5;
    s.ld_gap = 1;
    s.set_gap = 2;
    break;
  case 10: /* varlen with separate values and single-annotation sets */
    s = attn_test_spec(3, 0, 0, 9);
    s.set_m = VARLEN2_M;
    s.set_n = VARLEN2_N;
    s.separate_values = 1;
    s.dv = 2;
    break;
  case 11: /* GEMM-shaped: many queries per set, d and dv >= 32, masks */
    s = attn_test_spec(2, 40, 300, 48);
    s.separate_values = 1;
    s.dv = 40;
    s.lengths = GEMM_LEN;
    s.ld_gap = 5;
    break;
  default: /* GEMM-shaped varlen, d not a multiple of 4, an empty set */
    s = attn_test_spec(4, 0, 0, 33);
    s.set_m = VARLEN3_M;
    s.set_n = VARLEN3_N;
    break;
  }
  s.outliers = 0.02;
  s.seed = 1000 + (uint64_t)i;
  return s;
}

static const attn_score_kind_t KINDS[4] = {ATTN_SCORE_DOT, ATTN_SCORE_SCALED_DOT,
                                           ATTN_SCORE_GENERAL, ATTN_SCORE_ADDITIVE};

static void grid_problem(attn_test_problem_t *p, int shape, int kind) {
  attn_test_spec_t s = grid_spec(shape);
  s.kind = KINDS[kind];
  s.seed = s.seed * 4 + (uint64_t)kind;
  attn_test_problem_init(p, &s);
}

/* Every variant, then every forced algorithm of the non-reference backends. */
static int all_variants(attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS]) {
  int n = attn_test_variants(vs);
  return n + attn_test_algo_variants(vs + n);
}

/* The reference's forward with every output, the oracle of a problem. */
static void reference_forward(const attn_test_problem_t *p, attn_test_out_t *ref) {
  attn_test_out_init(ref, p, 1, 1, 1);
  attn_test_run_on(ATTN_BACKEND_REFERENCE, p, ATTN_TEST_FORWARD, ATTN_TEST_DIRECT, NULL, NULL, ref);
}

/* ------------------------------------------------------------------------------------------ */
/* Every backend against the reference                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Forward with each of the 8 combinations of optional outputs, on every variant. */
START_TEST(test_forward_vs_reference) {
  int shape = _i / 4, kind = _i % 4;
  attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS];
  int nv = all_variants(vs);
  attn_test_problem_t p;
  attn_test_out_t ref;
  grid_problem(&p, shape, kind);
  reference_forward(&p, &ref);
  attn_tols_t tols = attn_test_tols(&p);
  for (int i = 0; i < nv; i++) {
    for (int want = 0; want < 8; want++) {
      char what[192];
      attn_test_out_t o;
      attn_test_out_init(&o, &p, want & 1, want & 2, want & 4);
      attn_test_run_variant(&vs[i], &p, ATTN_TEST_FORWARD, NULL, NULL, &o);
      snprintf(what, sizeof what, "shape %d kind %d %s outputs %d", shape, kind, vs[i].name, want);
      ck_assert_msg(attn_test_compare(&p, &o, &ref, &tols, what) == 0, "%s mismatches", what);
      attn_test_out_free(&o);
    }
  }
  attn_test_out_free(&ref);
  attn_test_problem_free(&p);
}
END_TEST

/* Each step alone, on the reference's inputs, against the reference's forward. */
START_TEST(test_steps_vs_reference) {
  int shape = _i / 4, kind = _i % 4;
  attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS];
  int nv = all_variants(vs);
  attn_test_problem_t p;
  attn_test_out_t ref;
  grid_problem(&p, shape, kind);
  reference_forward(&p, &ref);
  attn_tols_t tols = attn_test_tols(&p);
  for (int i = 0; i < nv; i++) {
    char what[192];
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 1, 0, 0);
    attn_test_out_no_context(&o);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_SCORES, NULL, NULL, &o);
    snprintf(what, sizeof what, "shape %d kind %d %s scores step", shape, kind, vs[i].name);
    ck_assert_msg(attn_test_compare(&p, &o, &ref, &tols, what) == 0, "%s mismatches", what);
    attn_test_out_free(&o);

    attn_test_out_init(&o, &p, 0, 1, 1);
    attn_test_out_no_context(&o);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_SOFTMAX, ref.s, NULL, &o);
    snprintf(what, sizeof what, "shape %d kind %d %s softmax step", shape, kind, vs[i].name);
    ck_assert_msg(attn_test_compare(&p, &o, &ref, &tols, what) == 0, "%s mismatches", what);
    attn_test_out_free(&o);

    attn_test_out_init(&o, &p, 0, 0, 0);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_WEIGHTED_SUM, NULL, ref.w, &o);
    snprintf(what, sizeof what, "shape %d kind %d %s weighted-sum step", shape, kind, vs[i].name);
    ck_assert_msg(attn_test_compare(&p, &o, &ref, &tols, what) == 0, "%s mismatches", what);
    attn_test_out_free(&o);
  }
  attn_test_out_free(&ref);
  attn_test_problem_free(&p);
}
END_TEST

/* softmax in place: weights given exactly as the scores matrix, on every path. */
START_TEST(test_softmax_in_place) {
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_problem_t p;
  attn_test_out_t ref;
  grid_problem(&p, 6, 0);
  reference_forward(&p, &ref);
  attn_tols_t tols = attn_test_tols(&p);
  const size_t bytes = p.s_count * sizeof(float);
  for (int i = 0; i < nv; i++) {
    attn_context_t *ctx = attn_test_variant_context(&vs[i]);
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 0, 1, 0);
    attn_test_out_no_context(&o);
    memcpy(o.w, ref.s, bytes);
    attn_buffer_t *buf = NULL, *sets = NULL;
    float *data = o.w;
    attn_shape_t shape = p.shape;
    if (vs[i].path == ATTN_TEST_BUFFERS) {
      ck_assert_int_eq(attn_buffer_alloc(ctx, bytes, &buf), ATTN_OK);
      ck_assert_int_eq(attn_buffer_upload(ctx, buf, 0, o.w, bytes), ATTN_OK);
      data = attn_buffer_data(buf);
      /* Offsets and lengths live where the context computes, like the data. */
      const size_t nb = (size_t)p.shape.batch, ob = (nb + 1) * sizeof(int32_t);
      ck_assert_int_eq(attn_buffer_alloc(ctx, 3 * ob, &sets), ATTN_OK);
      char *base = attn_buffer_data(sets);
      if (p.qoff) {
        ck_assert_int_eq(attn_buffer_upload(ctx, sets, 0, p.qoff, ob), ATTN_OK);
        ck_assert_int_eq(attn_buffer_upload(ctx, sets, ob, p.aoff, ob), ATTN_OK);
        shape.query_offsets = (const int32_t *)base;
        shape.annotation_offsets = (const int32_t *)(base + ob);
      }
      if (p.lengths) {
        ck_assert_int_eq(attn_buffer_upload(ctx, sets, 2 * ob, p.lengths, nb * sizeof(int32_t)),
                         ATTN_OK);
        shape.lengths = (const int32_t *)(base + 2 * ob);
      }
    }
    attn_const_matrix_t sm = attn_cmat(data, p.lds, p.sts);
    attn_matrix_t w = attn_mat(data, p.lds, p.sts);
    attn_status_t st = vs[i].path == ATTN_TEST_HOST_CALLS
                           ? attn_softmax_host(ctx, &shape, sm, w, NULL)
                           : attn_softmax(ctx, &shape, sm, w, NULL);
    if (st == ATTN_OK) st = attn_context_synchronize(ctx);
    ck_assert_msg(st == ATTN_OK, "%s: %s", vs[i].name, attn_context_last_error(ctx));
    if (buf) {
      ck_assert_int_eq(attn_buffer_download(ctx, buf, 0, o.w, bytes), ATTN_OK);
      ck_assert_int_eq(attn_buffer_free(ctx, buf), ATTN_OK);
      ck_assert_int_eq(attn_buffer_free(ctx, sets), ATTN_OK);
    }
    ck_assert_int_eq(attn_test_compare(&p, &o, &ref, &tols, vs[i].name), 0);
    attn_test_out_free(&o);
    attn_context_destroy(ctx);
  }
  attn_test_out_free(&ref);
  attn_test_problem_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Properties                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* Weights >= 0 on every valid entry, 0 past the valid length, summing to 1 on rows with a valid
 * entry and to 0 on rows without. */
START_TEST(test_weights_distribution) {
  int shape = _i / 4, kind = _i % 4;
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_problem_t p;
  grid_problem(&p, shape, kind);
  attn_tols_t tols = attn_test_tols(&p);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 0, 1, 0);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_FORWARD, NULL, NULL, &o);
    for (int64_t b = 0; b < p.shape.batch; b++) {
      attn_test_set_t t = attn_test_set(&p, b);
      for (int64_t r = 0; r < t.m; r++) {
        const float *w = o.w + t.s + (size_t)(r * p.lds);
        double sum = 0;
        for (int64_t j = 0; j < t.n; j++) {
          if (j < t.valid) {
            ck_assert_msg(w[j] >= 0.0f, "%s set %lld row %lld: w[%lld] = %g < 0", vs[i].name,
                          (long long)b, (long long)r, (long long)j, (double)w[j]);
            sum += w[j];
          } else {
            ck_assert_msg(w[j] == 0.0f, "%s set %lld row %lld: masked w[%lld] = %g", vs[i].name,
                          (long long)b, (long long)r, (long long)j, (double)w[j]);
          }
        }
        double want = t.valid > 0 ? 1.0 : 0.0;
        ck_assert_msg(fabs(sum - want) <= tols.weights.rtol + (double)t.n * FLT_EPSILON,
                      "%s set %lld row %lld: weights sum to %.9g", vs[i].name, (long long)b,
                      (long long)r, sum);
      }
    }
    attn_test_out_free(&o);
  }
  attn_test_problem_free(&p);
}
END_TEST

/* Scores that are multiples of 1/4 below 2^10 plus 4096: the shifted scores are exact floats, so
 * the weights may move only by the backend's own rounding; lse moves by exactly the shift. */
START_TEST(test_softmax_shift_invariance) {
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_problem_t p;
  attn_rng_t rng;
  const float shift = 4096.0f;
  grid_problem(&p, 6, 0);
  attn_rng_seed(&rng, 77);
  float *s = attn_test_calloc(p.s_count, sizeof(float));
  float *shifted = attn_test_calloc(p.s_count, sizeof(float));
  for (size_t k = 0; k < p.s_count; k++) {
    s[k] = (float)attn_rng_int(&rng, -4000, 4000) * 0.25f;
    shifted[k] = s[k] + shift;
  }
  attn_tols_t tols = attn_tols(1, 0.0, p.max_n, 1.0);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t a, b;
    attn_test_out_init(&a, &p, 0, 1, 1);
    attn_test_out_init(&b, &p, 0, 1, 1);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_SOFTMAX, s, NULL, &a);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_SOFTMAX, shifted, NULL, &b);
    for (size_t r = 0; r < p.lse_count; r++) {
      if (isinf(a.lse[r])) {
        ck_assert_msg(isinf(b.lse[r]) && b.lse[r] < 0, "%s: lse[%zu]", vs[i].name, r);
        continue;
      }
      /* b.lse is rounded at 4096 + lse: allow its ulp on top of the tolerance. */
      double ulp = (double)nextafterf(fabsf(b.lse[r]), INFINITY) - fabs((double)b.lse[r]);
      double diff = fabs((double)b.lse[r] - ((double)a.lse[r] + shift));
      ck_assert_msg(diff <= tols.lse.atol + tols.lse.rtol * fabs((double)a.lse[r]) + ulp,
                    "%s: lse[%zu] %.9g - shift != %.9g", vs[i].name, r, (double)b.lse[r],
                    (double)a.lse[r]);
      b.lse[r] = a.lse[r];
    }
    ck_assert_int_eq(attn_test_compare(&p, &b, &a, &tols, vs[i].name), 0);
    attn_test_out_free(&a);
    attn_test_out_free(&b);
  }
  free(s);
  free(shifted);
  attn_test_problem_free(&p);
}
END_TEST

/* Reverses the annotations (and values) of every set within its valid part: the weights come out
 * reversed and the context is unchanged. */
START_TEST(test_permutation) {
  int kind = _i;
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_problem_t p, q;
  grid_problem(&p, 9, kind);
  grid_problem(&q, 9, kind);
  attn_rng_t rng;
  attn_rng_seed(&rng, 5);
  /* q = p with set b's annotations rotated by a random amount and reversed. */
  for (int64_t b = 0; b < p.shape.batch; b++) {
    attn_test_set_t t = attn_test_set(&p, b);
    int64_t rot = attn_rng_int(&rng, 0, t.n - 1);
    for (int64_t j = 0; j < t.n; j++) {
      int64_t k = (t.n - 1 - j + rot) % t.n; /* row j of q is row k of p */
      memcpy(q.a + t.a + (size_t)(j * p.ma.ld), p.a + t.a + (size_t)(k * p.ma.ld),
             (size_t)p.shape.d * sizeof(float));
      memcpy(q.v + t.v + (size_t)(j * p.mv.ld), p.v + t.v + (size_t)(k * p.mv.ld),
             (size_t)p.shape.dv * sizeof(float));
    }
  }
  attn_tols_t tols = attn_test_tols(&p);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t op, oq;
    attn_test_out_init(&op, &p, 1, 1, 1);
    attn_test_out_init(&oq, &q, 1, 1, 1);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_FORWARD, NULL, NULL, &op);
    attn_test_run_variant(&vs[i], &q, ATTN_TEST_FORWARD, NULL, NULL, &oq);
    /* Undo the permutation on q's scores and weights, then everything must match. */
    float *s = attn_test_calloc(p.s_count, sizeof(float)), *w = attn_test_calloc(p.s_count, 4);
    memcpy(s, oq.s, p.s_count * sizeof(float));
    memcpy(w, oq.w, p.s_count * sizeof(float));
    attn_rng_seed(&rng, 5);
    for (int64_t b = 0; b < p.shape.batch; b++) {
      attn_test_set_t t = attn_test_set(&p, b);
      int64_t rot = attn_rng_int(&rng, 0, t.n - 1);
      for (int64_t r = 0; r < t.m; r++) {
        for (int64_t j = 0; j < t.n; j++) {
          int64_t k = (t.n - 1 - j + rot) % t.n;
          size_t row = t.s + (size_t)(r * p.lds);
          s[row + (size_t)k] = oq.s[row + (size_t)j];
          w[row + (size_t)k] = oq.w[row + (size_t)j];
        }
      }
    }
    memcpy(oq.s, s, p.s_count * sizeof(float));
    memcpy(oq.w, w, p.s_count * sizeof(float));
    free(s);
    free(w);
    ck_assert_int_eq(attn_test_compare(&p, &oq, &op, &tols, vs[i].name), 0);
    attn_test_out_free(&op);
    attn_test_out_free(&oq);
  }
  attn_test_problem_free(&p);
  attn_test_problem_free(&q);
}
END_TEST

/* general with W = I gives the dot product's outputs. */
START_TEST(test_general_identity) {
  int shape = _i;
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_problem_t dot, gen;
  grid_problem(&dot, shape, 0);
  attn_test_spec_t s = dot.spec;
  s.kind = ATTN_SCORE_GENERAL;
  attn_test_problem_init(&gen, &s);
  memset(gen.w, 0, gen.w_count * sizeof(float));
  for (int64_t k = 0; k < s.d; k++)
    gen.w[k * gen.score.ldw + k] = 1.0f;
  attn_test_out_t ref;
  reference_forward(&dot, &ref);
  attn_tols_t tols = attn_test_tols(&dot);
  for (int i = 0; i < nv; i++) {
    attn_test_expect_forward(&vs[i], &gen, &ref, &tols);
  }
  attn_test_out_free(&ref);
  attn_test_problem_free(&dot);
  attn_test_problem_free(&gen);
}
END_TEST

/* scaled dot with scale c equals dot on c * q; c = 0.25 (exact) and the default 1/sqrt(d). */
START_TEST(test_scaled_dot) {
  int shape = _i / 2, use_default = _i % 2;
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_problem_t scaled, dot;
  attn_test_spec_t s = grid_spec(shape);
  s.kind = ATTN_SCORE_SCALED_DOT;
  s.scale = use_default ? 0.0f : 0.25f;
  attn_test_problem_init(&scaled, &s);
  s.kind = ATTN_SCORE_DOT;
  attn_test_problem_init(&dot, &s);
  float c = use_default ? (float)(1.0 / sqrt((double)s.d)) : 0.25f;
  for (size_t k = 0; k < dot.q_count; k++)
    dot.q[k] *= c;
  attn_test_out_t ref;
  reference_forward(&dot, &ref);
  attn_tols_t tols = attn_test_tols(&scaled);
  for (int i = 0; i < nv; i++) {
    attn_test_expect_forward(&vs[i], &scaled, &ref, &tols);
  }
  attn_test_out_free(&ref);
  attn_test_problem_free(&scaled);
  attn_test_problem_free(&dot);
}
END_TEST

/* A varlen batch equals its sets run one by one as uniform batches of one set. */
START_TEST(test_varlen_equals_sets) {
  int shape = _i == 0 ? 6 : 10, kind = 3 - _i; /* additive on one, general on the other */
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_problem_t p;
  grid_problem(&p, shape, kind);
  attn_tols_t tols = attn_test_tols(&p);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t all;
    attn_test_out_init(&all, &p, 1, 1, 1);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_FORWARD, NULL, NULL, &all);
    for (int64_t b = 0; b < p.shape.batch; b++) {
      attn_test_set_t t = attn_test_set(&p, b);
      attn_test_problem_t one;
      attn_test_problem_subset(&p, b, 0, t.m, &one);
      attn_test_out_t o;
      attn_test_out_init(&o, &one, 1, 1, 1);
      attn_test_run_variant(&vs[i], &one, ATTN_TEST_FORWARD, NULL, NULL, &o);
      for (int64_t r = 0; r < t.m; r++) {
        char what[192];
        snprintf(what, sizeof what, "%s set %lld row %lld", vs[i].name, (long long)b, (long long)r);
        ck_assert_int_eq(attn_compare(what, all.c + t.c + (size_t)(r * p.ldc), 1, o.c + r * one.ldc,
                                      1, 1, p.shape.dv, tols.context),
                         0);
        ck_assert_int_eq(attn_compare(what, all.s + t.s + (size_t)(r * p.lds), 1, o.s + r * one.lds,
                                      1, 1, t.n, tols.scores),
                         0);
        ck_assert_int_eq(attn_compare(what, all.w + t.s + (size_t)(r * p.lds), 1, o.w + r * one.lds,
                                      1, 1, t.n, tols.weights),
                         0);
        ck_assert_int_eq(attn_compare_vec(what, all.lse + t.lse + r, o.lse + r, 1, tols.lse), 0);
      }
      attn_test_out_free(&o);
      attn_test_problem_free(&one);
    }
    attn_test_out_free(&all);
  }
  attn_test_problem_free(&p);
}
END_TEST

/* Values given as a copy of the annotations equal no values. */
START_TEST(test_values_equal_annotations) {
  int shape = _i;
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_problem_t p;
  attn_test_spec_t s = grid_spec(shape);
  s.separate_values = 1;
  s.dv = s.d;
  attn_test_problem_init(&p, &s);
  ck_assert_int_eq(p.mv.ld, p.ma.ld);
  ck_assert_uint_eq(p.v_count, p.a_count);
  memcpy(p.v, p.a, p.a_count * sizeof(float));
  attn_test_problem_t none = p; /* the same arrays, without values */
  none.spec.separate_values = 0;
  none.mv = none.ma;
  attn_test_out_t ref;
  reference_forward(&none, &ref);
  attn_tols_t tols = attn_test_tols(&p);
  for (int i = 0; i < nv; i++) {
    attn_test_expect_forward(&vs[i], &p, &ref, &tols);
    attn_test_expect_forward(&vs[i], &none, &ref, &tols);
  }
  attn_test_out_free(&ref);
  attn_test_problem_free(&p);
}
END_TEST

/* scores -> softmax -> weighted sum, each step on the previous step's output of the same
 * backend, equals forward. */
START_TEST(test_steps_chain_equals_forward) {
  int shape = _i / 4, kind = _i % 4;
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_problem_t p;
  grid_problem(&p, shape, kind);
  attn_tols_t tols = attn_test_tols(&p);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t fw, st;
    attn_test_out_init(&fw, &p, 1, 1, 1);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_FORWARD, NULL, NULL, &fw);
    attn_test_out_init(&st, &p, 1, 1, 1);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_SCORES, NULL, NULL, &st);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_SOFTMAX, st.s, NULL, &st);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_WEIGHTED_SUM, NULL, st.w, &st);
    ck_assert_int_eq(attn_test_compare(&p, &st, &fw, &tols, vs[i].name), 0);
    attn_test_out_free(&fw);
    attn_test_out_free(&st);
  }
  attn_test_problem_free(&p);
}
END_TEST

static Suite *make_properties_suite(void) {
  Suite *s = suite_create("properties");
  TCase *tc = tcase_create("versus reference");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_forward_vs_reference, 0, GRID_SIZE * 4);
  tcase_add_loop_test(tc, test_steps_vs_reference, 0, GRID_SIZE * 4);
  tcase_add_test(tc, test_softmax_in_place);
  suite_add_tcase(s, tc);

  tc = tcase_create("properties");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_weights_distribution, 0, GRID_SIZE * 4);
  tcase_add_test(tc, test_softmax_shift_invariance);
  tcase_add_loop_test(tc, test_permutation, 0, 4);
  tcase_add_loop_test(tc, test_general_identity, 0, GRID_SIZE);
  tcase_add_loop_test(tc, test_scaled_dot, 0, GRID_SIZE * 2);
  tcase_add_loop_test(tc, test_varlen_equals_sets, 0, 2);
  tcase_add_loop_test(tc, test_values_equal_annotations, 0, GRID_SIZE);
  tcase_add_loop_test(tc, test_steps_chain_equals_forward, 0, GRID_SIZE * 4);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return attn_test_main(make_properties_suite());
}
