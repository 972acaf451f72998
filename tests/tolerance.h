/*
 * tolerance.h - THE one place for the tolerances fp32 backends (CPU, CUDA) must meet against the
 * REFERENCE backend (double accumulation), and the compare helper every test uses.
 *
 * A value x matches its reference r when |x - r| <= atol + rtol * |r| (llm.c validator style);
 * NaN must match NaN and an infinity must match the same infinity.
 *
 * Why these numbers. The reference rounds to float only once, at the end, so its error is
 * <= eps/2 (eps = FLT_EPSILON = 1.19e-7). An fp32 backend accumulates in float:
 *   - Scores. A naive fp32 loop over k terms has error <= k * eps * sum|terms| in the worst case
 *     and about sqrt(k) * eps * sum|terms| in practice (rounding errors behave like a random
 *     walk); blocked/GEMM summation is no worse. So the absolute score error ds is bounded by
 *     ATTN_TOL_SAFETY * sqrt(k) * eps * sum_k |q_k a_k|, which depends on the magnitude of the
 *     terms, not of the score (cancellation): scores in the thousands have ds ~ 1e-4 .. 1e-3.
 *   - Weights. w_j = exp(s_j - max) / sum: exp turns an absolute score error into a relative
 *     weight error, rel_err(w) ~ |ds_j - ds_max| <= 2 ds, plus ~ log2(n) eps from the sum.
 *   - Context. c = sum_j w_j v_j with sum_j w_j = 1: the weight error moves c by at most
 *     rel_err(w) * max|v|, plus the k-term summation error ~ sqrt(n) eps max|v|.
 *   - lse = max + log(sum): absolute error ~ ds + n eps.
 * ATTN_TOL_RTOL = 1e-4 covers the summation part for k up to ~10^5 terms in practice
 * (sqrt(1e5) * 1.2e-7 = 4e-5) and for k up to ~800 in the worst case (800 * 1.2e-7 = 1e-4);
 * ATTN_TOL_ATOL = 1e-6 absorbs values that should be 0 but land at a few ulps of 1e-7-sized
 * sums. attn_tols() adds the score-error part, derived from the problem's magnitudes.
 */
#ifndef ATTN_TESTS_TOLERANCE_H
#define ATTN_TESTS_TOLERANCE_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#define ATTN_TOL_RTOL   1e-4
#define ATTN_TOL_ATOL   1e-6
#define ATTN_TOL_SAFETY 4.0 /* margin over the sqrt(k) estimate of the score error */

typedef struct attn_tol {
  double atol, rtol;
} attn_tol_t;

/* Tolerances for each output of one problem. */
typedef struct attn_tols {
  attn_tol_t scores, weights, context, lse;
} attn_tols_t;

/* The plain tolerance, for O(1) results of O(1) inputs. */
static inline attn_tol_t attn_tol_default(void) {
  attn_tol_t t = {ATTN_TOL_ATOL, ATTN_TOL_RTOL};
  return t;
}

/* The expected absolute fp32 error of a k-term sum whose terms have absolute sum `abs_sum`. */
static inline double attn_tol_sum_error(int64_t k, double abs_sum) {
  return ATTN_TOL_SAFETY * sqrt((double)(k > 1 ? k : 1)) * FLT_EPSILON * abs_sum;
}

/* Tolerances for a problem where:
 *   k:         terms in one score (d for dot / scaled dot, d * d for general, h * d for additive),
 *   score_abs: a bound on sum_k |term_k| of one score (for dot: max_j sum_i |q_i a_ji|; for
 *              additive: sum_h |v_h| * (1 + sum_i |W_q q|_i + |W_a a|_i) is safe),
 *   n:         the longest annotation set,
 *   value_abs: max |v| over the values (the annotations when there are none). */
static inline attn_tols_t attn_tols(int64_t k, double score_abs, int64_t n, double value_abs) {
  attn_tols_t t;
  double ds = attn_tol_sum_error(k, score_abs);
  double nsum = sqrt((double)(n > 1 ? n : 1)) * FLT_EPSILON * ATTN_TOL_SAFETY;
  double wrel = ATTN_TOL_RTOL + 2.0 * ds + nsum;
  t.scores.atol = ATTN_TOL_ATOL + ds;
  t.scores.rtol = ATTN_TOL_RTOL;
  t.weights.atol = ATTN_TOL_ATOL;
  t.weights.rtol = wrel;
  t.context.atol = ATTN_TOL_ATOL + (wrel + nsum) * value_abs;
  t.context.rtol = ATTN_TOL_RTOL;
  t.lse.atol = ATTN_TOL_ATOL + ds + nsum;
  t.lse.rtol = ATTN_TOL_RTOL;
  return t;
}

/* 1 when x matches ref within tol (NaN == NaN, inf == same inf), else 0. */
static inline int attn_tol_match(float x, float ref, attn_tol_t tol) {
  if (isnan(ref) || isnan(x)) return isnan(ref) && isnan(x);
  if (isinf(ref) || isinf(x)) return x == ref;
  return fabs((double)x - (double)ref) <= tol.atol + tol.rtol * fabs((double)ref);
}

/* Compares a rows x cols matrix x (leading dimension ldx) with ref (ldr). Prints the first 10
 * mismatches as "name[row][col]: x vs ref" and returns how many entries mismatch. */
static inline int64_t attn_compare(const char *name, const float *x, int64_t ldx, const float *ref,
                                   int64_t ldr, int64_t rows, int64_t cols, attn_tol_t tol) {
  int64_t bad = 0;
  for (int64_t i = 0; i < rows; i++) {
    for (int64_t j = 0; j < cols; j++) {
      float xv = x[i * ldx + j], rv = ref[i * ldr + j];
      if (attn_tol_match(xv, rv, tol)) continue;
      if (bad < 10) {
        fprintf(stderr, "%s[%lld][%lld]: %.9g vs reference %.9g (|diff| %.3g > %.3g)\n", name,
                (long long)i, (long long)j, (double)xv, (double)rv, fabs((double)xv - (double)rv),
                tol.atol + tol.rtol * fabs((double)rv));
      }
      bad++;
    }
  }
  if (bad > 10) fprintf(stderr, "%s: ... %lld mismatches in all\n", name, (long long)bad);
  return bad;
}

/* A packed vector (e.g. lse) of count entries. */
static inline int64_t attn_compare_vec(const char *name, const float *x, const float *ref,
                                       int64_t count, attn_tol_t tol) {
  return attn_compare(name, x, 1, ref, 1, count, 1, tol);
}

#endif
