/*
 * test_walkthrough.c - the walkthrough's golden values, through every step and through forward,
 * on every usable backend and API path (host calls, buffers, direct, forced staging) and with
 * every algorithm forced (SIMPLE, GEMM, FUSED).
 *
 * Decoder state q = [5, 1, 20]; annotations [3, 12, 45], [59, 2, 5], [1, 43, 5], [4, 3, 45.3].
 * The notebook's float128 answers: scores [927, 397, 148, 929], weights [0.1192029, 0, 0,
 * 0.8807971], context [3.8807971, 4.0728263, 45.264239] (and lse = 929 + log(1 + e^-2)).
 *
 * Two checks per value:
 *   - golden: within 1e-5 relative of the float128 value. 45.3 is not a float: rounded, it moves
 *     the exact context by up to 3.5e-6 relative. It moves weight 0 by 1.3e-5 relative (1.6e-6
 *     absolute; d w0 / d s3 = -w0 w3), so weights are held to 1e-5 of the row sum (absolute).
 *   - exact: within 1e-6 relative of a double computation on the float32 inputs of the step,
 *     rounded to float. For forward that holds for the REFERENCE backend (double throughout);
 *     an fp32 backend rounds s3 = 928.9999847 to 929 first, so it is checked against the
 *     reference with tolerance.h instead.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"

static const float Q[3] = {5.0f, 1.0f, 20.0f};
static const float A[4][3] = {{3, 12, 45}, {59, 2, 5}, {1, 43, 5}, {4, 3, 45.3f}};
static const double GOLD_S[4] = {927, 397, 148, 929};
static const double GOLD_W[4] = {0.1192029, 0, 0, 0.8807971};
static const double GOLD_C[3] = {3.8807971, 4.0728263, 45.264239};
#define GOLD_LSE 929.126928 /* 929 + log(1 + e^-2) */

#define GOLD_RTOL  1e-5
#define EXACT_RTOL 1e-6

/* |x - g| <= rtol |g|, reported with the variant and the entry. */
static void check_rel(const char *variant, const char *what, int index, float x, double g,
                      double rtol) {
  ck_assert_msg(fabs((double)x - g) <= rtol * fabs(g), "%s: %s[%d] = %.9g, expected %.9g (rtol %g)",
                variant, what, index, (double)x, g, rtol);
}

/* The walkthrough as a test problem: one set, m = 1, the first n annotations. */
static void walkthrough_problem(attn_test_problem_t *p, int64_t n) {
  attn_test_spec_t spec = attn_test_spec(1, 1, n, 3);
  attn_test_problem_init(p, &spec);
  memcpy(p->q, Q, sizeof Q);
  for (int64_t j = 0; j < n; j++)
    memcpy(p->a + j * p->ma.ld, A[j], sizeof A[j]);
}

/* Every backend and API path, then every forced algorithm of the non-reference backends. */
static int all_variants(attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS]) {
  int n = attn_test_variants(vs);
  return n + attn_test_algo_variants(vs + n);
}

/* Double computations on float inputs. */
static void exact_scores(double s[4]) {
  for (int j = 0; j < 4; j++) {
    s[j] = 0;
    for (int k = 0; k < 3; k++)
      s[j] += (double)Q[k] * (double)A[j][k];
  }
}

static double exact_softmax(const double s[4], double w[4]) {
  double mx = s[0], sum = 0;
  for (int j = 1; j < 4; j++)
    mx = fmax(mx, s[j]);
  for (int j = 0; j < 4; j++)
    sum += (w[j] = exp(s[j] - mx));
  for (int j = 0; j < 4; j++)
    w[j] /= sum;
  return mx + log(sum);
}

static void exact_context(const double w[4], double c[3]) {
  for (int k = 0; k < 3; k++) {
    c[k] = 0;
    for (int j = 0; j < 4; j++)
      c[k] += w[j] * (double)A[j][k];
  }
}

START_TEST(test_single_score) {
  attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS];
  int nv = all_variants(vs);
  attn_test_problem_t p;
  walkthrough_problem(&p, 1);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 1, 0, 0);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_SCORES, NULL, NULL, &o);
    /* 15 + 12 + 900: every product and sum is exact in float. */
    ck_assert_msg(o.s[0] == 927.0f, "%s: score %.9g != 927", vs[i].name, (double)o.s[0]);
    attn_test_out_free(&o);
  }
  attn_test_problem_free(&p);
}
END_TEST

START_TEST(test_scores) {
  attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS];
  int nv = all_variants(vs);
  attn_test_problem_t p;
  double exact[4];
  walkthrough_problem(&p, 4);
  exact_scores(exact);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 1, 0, 0);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_SCORES, NULL, NULL, &o);
    for (int j = 0; j < 4; j++) {
      check_rel(vs[i].name, "scores", j, o.s[j], GOLD_S[j], GOLD_RTOL);
      check_rel(vs[i].name, "scores vs exact", j, o.s[j], (float)exact[j], EXACT_RTOL);
    }
    attn_test_out_free(&o);
  }
  attn_test_problem_free(&p);
}
END_TEST

START_TEST(test_softmax) {
  attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS];
  int nv = all_variants(vs);
  attn_test_problem_t p;
  const float scores[4] = {927, 397, 148, 929};
  double s[4], w[4], lse;
  walkthrough_problem(&p, 4);
  for (int j = 0; j < 4; j++)
    s[j] = scores[j];
  lse = exact_softmax(s, w);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 0, 1, 1);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_SOFTMAX, scores, NULL, &o);
    for (int j = 0; j < 4; j++) {
      /* exp(-532) and exp(-781) are below the smallest float: exactly 0. */
      if (GOLD_W[j] == 0) {
        ck_assert_msg(o.w[j] == 0.0f, "%s: weights[%d] = %g != 0", vs[i].name, j, (double)o.w[j]);
      } else {
        check_rel(vs[i].name, "weights", j, o.w[j], GOLD_W[j], GOLD_RTOL);
        check_rel(vs[i].name, "weights vs exact", j, o.w[j], (float)w[j], EXACT_RTOL);
      }
    }
    check_rel(vs[i].name, "lse", 0, o.lse[0], GOLD_LSE, GOLD_RTOL);
    check_rel(vs[i].name, "lse vs exact", 0, o.lse[0], (float)lse, EXACT_RTOL);
    attn_test_out_free(&o);
  }
  attn_test_problem_free(&p);
}
END_TEST

START_TEST(test_weighted_sum) {
  attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS];
  int nv = all_variants(vs);
  attn_test_problem_t p;
  const float weights[4] = {0.11920292f, 0.0f, 0.0f, 0.88079708f};
  double w[4], c[3];
  walkthrough_problem(&p, 4);
  for (int j = 0; j < 4; j++)
    w[j] = weights[j];
  exact_context(w, c);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 0, 0, 0);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_WEIGHTED_SUM, NULL, weights, &o);
    for (int k = 0; k < 3; k++) {
      check_rel(vs[i].name, "context", k, o.c[k], GOLD_C[k], GOLD_RTOL);
      check_rel(vs[i].name, "context vs exact", k, o.c[k], (float)c[k], EXACT_RTOL);
    }
    attn_test_out_free(&o);
  }
  attn_test_problem_free(&p);
}
END_TEST

/* Forward with every output; also compared with the reference through tolerance.h. */
START_TEST(test_forward) {
  attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS];
  int nv = all_variants(vs);
  attn_test_problem_t p;
  double s[4], w[4], c[3], lse;
  walkthrough_problem(&p, 4);
  exact_scores(s);
  lse = exact_softmax(s, w);
  exact_context(w, c);
  attn_test_out_t ref;
  attn_test_out_init(&ref, &p, 1, 1, 1);
  attn_test_run_on(ATTN_BACKEND_REFERENCE, &p, ATTN_TEST_FORWARD, ATTN_TEST_DIRECT, NULL, NULL,
                   &ref);
  attn_tols_t tols = attn_test_tols(&p);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 1, 1, 1);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_FORWARD, NULL, NULL, &o);
    for (int j = 0; j < 4; j++) {
      check_rel(vs[i].name, "scores", j, o.s[j], GOLD_S[j], GOLD_RTOL);
      ck_assert_msg(fabs((double)o.w[j] - GOLD_W[j]) <= GOLD_RTOL, "%s: weights[%d] = %.9g, %.9g",
                    vs[i].name, j, (double)o.w[j], GOLD_W[j]);
    }
    ck_assert_msg(o.w[1] == 0.0f && o.w[2] == 0.0f, "%s: tiny weights not 0", vs[i].name);
    for (int k = 0; k < 3; k++)
      check_rel(vs[i].name, "context", k, o.c[k], GOLD_C[k], GOLD_RTOL);
    check_rel(vs[i].name, "lse", 0, o.lse[0], GOLD_LSE, GOLD_RTOL);
    if (vs[i].backend == ATTN_BACKEND_REFERENCE) {
      for (int j = 0; j < 4; j++) {
        check_rel(vs[i].name, "scores vs exact", j, o.s[j], (float)s[j], EXACT_RTOL);
        check_rel(vs[i].name, "weights vs exact", j, o.w[j], (float)w[j], EXACT_RTOL);
      }
      for (int k = 0; k < 3; k++)
        check_rel(vs[i].name, "context vs exact", k, o.c[k], (float)c[k], EXACT_RTOL);
      check_rel(vs[i].name, "lse vs exact", 0, o.lse[0], (float)lse, EXACT_RTOL);
    }
    ck_assert_int_eq(attn_test_compare(&p, &o, &ref, &tols, vs[i].name), 0);
    attn_test_out_free(&o);
  }
  attn_test_out_free(&ref);
  attn_test_problem_free(&p);
}
END_TEST

/* Forward without the optional outputs gives the same context as with them. */
START_TEST(test_forward_context_only) {
  attn_test_variant_t vs[2 * ATTN_TEST_MAX_VARIANTS];
  int nv = all_variants(vs);
  attn_test_problem_t p;
  walkthrough_problem(&p, 4);
  for (int i = 0; i < nv; i++) {
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 0, 0, 0);
    attn_test_run_variant(&vs[i], &p, ATTN_TEST_FORWARD, NULL, NULL, &o);
    for (int k = 0; k < 3; k++)
      check_rel(vs[i].name, "context", k, o.c[k], GOLD_C[k], GOLD_RTOL);
    attn_test_out_free(&o);
  }
  attn_test_problem_free(&p);
}
END_TEST

static Suite *make_walkthrough_suite(void) {
  Suite *s = suite_create("walkthrough");
  TCase *tc = tcase_create("golden");
  tcase_add_test(tc, test_single_score);
  tcase_add_test(tc, test_scores);
  tcase_add_test(tc, test_softmax);
  tcase_add_test(tc, test_weighted_sum);
  tcase_add_test(tc, test_forward);
  tcase_add_test(tc, test_forward_context_only);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return attn_test_main(make_walkthrough_suite());
}
