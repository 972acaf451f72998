/*
 * test_util.h - helpers shared by the Check suites in tests/: the backends to run, seeded random
 * problems with outliers, running a problem through each API path, and comparing two runs.
 *
 * A test problem lives in host memory. attn_test_run() runs one op on a context through one of
 * three paths: the *_host convenience calls, the compute calls on attn_buffer_t memory (device
 * memory on CUDA), or the compute calls on the host arrays themselves (host backends only).
 * Outputs start as a sentinel NaN pattern, so an output never written shows up as a mismatch
 * and gap bytes (ld padding, set strides, varlen columns past a set's size) can be checked
 * untouched bit for bit.
 */
#ifndef ATTN_TESTS_TEST_UTIL_H
#define ATTN_TESTS_TEST_UTIL_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "attn.h"
#include "tolerance.h"

/* ------------------------------------------------------------------------------------------ */
/* Running suites and picking backends                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Runs one suite without fork() (CUDA does not survive it) and returns the process exit code. */
int attn_test_main(Suite *suite);

/* The backends to test: REFERENCE, CPU, and CUDA when a device is usable. Returns the count. */
#define ATTN_TEST_MAX_BACKENDS 3
int attn_test_backends(attn_backend_t out[ATTN_TEST_MAX_BACKENDS]);

/* A context on `backend` (fails the test when it cannot be made). */
attn_context_t *attn_test_context(attn_backend_t backend);

/* malloc that fails the test on NULL; zeroed. */
void *attn_test_calloc(size_t count, size_t size);

/* ------------------------------------------------------------------------------------------ */
/* Seeded random numbers                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct attn_rng {
  uint64_t state;
} attn_rng_t;

void attn_rng_seed(attn_rng_t *rng, uint64_t seed);
double attn_rng_uniform(attn_rng_t *rng);                      /* [0, 1) */
int64_t attn_rng_int(attn_rng_t *rng, int64_t lo, int64_t hi); /* [lo, hi] */
/* Uniform in [-scale, scale]; with probability `outliers` an entry is 30x larger. */
void attn_rng_fill(attn_rng_t *rng, float *x, size_t count, float scale, double outliers);

/* ------------------------------------------------------------------------------------------ */
/* Problems                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* The sentinel bit pattern every output starts with (a quiet NaN with a payload). */
#define ATTN_TEST_SENTINEL 0x7fc5a5a5u
void attn_test_fill_sentinel(float *x, size_t count);

typedef struct attn_test_spec {
  int64_t batch;          /* >= 1 */
  int64_t m, n;           /* per set (uniform); ignored when set_m/set_n are given */
  int64_t d, dv;          /* dv used only with separate values */
  const int32_t *set_m;   /* varlen: [batch] queries per set, or NULL */
  const int32_t *set_n;   /* varlen: [batch] annotations per set, or NULL */
  const int32_t *lengths; /* [batch] valid annotations, or NULL */
  int separate_values;    /* 1: values [n x dv] of their own */
  int64_t ld_gap;         /* extra elements after each row of every matrix */
  int64_t set_gap;        /* extra elements after each set of a uniform batch */
  int shared_annotations; /* uniform: annotation/value stride 0 (one set shared by all) */
  attn_score_kind_t kind; /* score function */
  float scale;            /* SCALED_DOT scale (0 = 1/sqrt(d)) */
  int64_t h;              /* ADDITIVE hidden width */
  float q_scale, a_scale; /* input magnitudes (0 = 1) */
  double outliers;        /* probability of a 30x outlier in queries and annotations */
  uint64_t seed;
} attn_test_spec_t;

/* Fills a spec with defaults: batch 1, dot, magnitudes 1, no outliers, seed 1. */
attn_test_spec_t attn_test_spec(int64_t batch, int64_t m, int64_t n, int64_t d);

typedef struct attn_test_problem {
  attn_test_spec_t spec;
  attn_shape_t shape; /* points into the arrays below */
  attn_score_t score; /* parameters point into the arrays below */
  int varlen;
  int64_t rows_q, rows_a; /* total rows (varlen) or rows per set (uniform) */
  int32_t *qoff, *aoff, *lengths;
  float *q, *a, *v;               /* v == NULL without separate values */
  float *w, *wq, *wa, *hv;        /* score parameters */
  attn_const_matrix_t mq, ma, mv; /* descriptors of q, a, v (mv = ma without values) */
  size_t q_count, a_count, v_count, w_count, wq_count, wa_count, hv_count;
  /* Output layout: S and W share one layout, C another; lse is packed. */
  int64_t lds, sts, ldc, stc;
  size_t s_count, c_count, lse_count;
  int64_t max_n; /* the longest set */
} attn_test_problem_t;

/* Builds a problem from a spec (random data from spec.seed). Free with attn_test_problem_free. */
void attn_test_problem_init(attn_test_problem_t *p, const attn_test_spec_t *spec);
void attn_test_problem_free(attn_test_problem_t *p);

/* Where set b lives: its sizes and the element offset of its first entry in each array. */
typedef struct attn_test_set {
  int64_t m, n, valid;
  size_t q, a, v, s, c, lse;
} attn_test_set_t;
attn_test_set_t attn_test_set(const attn_test_problem_t *p, int64_t b);

/* Builds *one: a uniform batch of one set holding queries r0 .. r0 + rows - 1 of set b of p, with
 * the set's annotations, values, valid length and p's score parameters, copied bit for bit. */
void attn_test_problem_subset(const attn_test_problem_t *p, int64_t b, int64_t r0, int64_t rows,
                              attn_test_problem_t *one);

/* Outputs of one run, in host memory, laid out as the problem says. */
typedef struct attn_test_out {
  float *c, *s, *w, *lse;
  size_t s_count, c_count, lse_count;
} attn_test_out_t;

/* Allocates outputs filled with the sentinel. want_*: which optional outputs to request. */
void attn_test_out_init(attn_test_out_t *o, const attn_test_problem_t *p, int want_s, int want_w,
                        int want_lse);
void attn_test_out_free(attn_test_out_t *o);
/* Drops the context output, for the scores and softmax steps (which do not write it). */
void attn_test_out_no_context(attn_test_out_t *o);

/* ------------------------------------------------------------------------------------------ */
/* Running                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef enum attn_test_op {
  ATTN_TEST_FORWARD = 0,
  ATTN_TEST_SCORES = 1,      /* writes o->s */
  ATTN_TEST_SOFTMAX = 2,     /* reads in_scores, writes o->w and o->lse */
  ATTN_TEST_WEIGHTED_SUM = 3 /* reads in_weights, writes o->c */
} attn_test_op_t;

typedef enum attn_test_path {
  ATTN_TEST_HOST_CALLS = 0, /* attn_*_host on the host arrays */
  ATTN_TEST_BUFFERS = 1,    /* compute calls on attn_buffer_t copies, then downloaded */
  ATTN_TEST_DIRECT = 2      /* compute calls on the host arrays (host backends only) */
} attn_test_path_t;

/* Runs op on ctx through path. in_scores / in_weights are the softmax / weighted-sum inputs, in
 * the problem's S/W layout. Returns the call's status (synchronised on CUDA). */
attn_status_t attn_test_run(attn_context_t *ctx, const attn_test_problem_t *p, attn_test_op_t op,
                            attn_test_path_t path, const float *in_scores, const float *in_weights,
                            attn_test_out_t *o);

/* One way of running a problem: a backend, an API path, and whether the *_host calls are forced
 * to stage through backend memory on a host backend (ATTN_TEST_FORCE_STAGING=1 at creation). */
typedef struct attn_test_variant {
  attn_backend_t backend;
  attn_test_path_t path;
  int force_staging;
  attn_algo_t algo; /* ATTN_ALGO_AUTO unless a test forces one */
  char name[48];
} attn_test_variant_t;

/* Every variant to test: for each usable backend the host calls, the buffer path, the direct
 * path (host backends), and forced staging (host backends). Returns the count. */
#define ATTN_TEST_MAX_VARIANTS 12
int attn_test_variants(attn_test_variant_t out[ATTN_TEST_MAX_VARIANTS]);

/* Variants that force each algorithm (SIMPLE, GEMM, FUSED) on every usable backend but the
 * REFERENCE, through the direct path (buffers on CUDA). Returns the count. */
int attn_test_algo_variants(attn_test_variant_t out[ATTN_TEST_MAX_VARIANTS]);

/* A context for a variant (forced staging set through the environment while it is created). */
attn_context_t *attn_test_variant_context(const attn_test_variant_t *v);

/* Runs op as variant v; fails the test if the call fails. The context is made on first use and
 * kept (one per backend, staging and algorithm) until attn_test_main() returns. */
void attn_test_run_variant(const attn_test_variant_t *v, const attn_test_problem_t *p,
                           attn_test_op_t op, const float *in_scores, const float *in_weights,
                           attn_test_out_t *o);

/* Runs forward as variant v with every output requested and fails the test unless every output
 * matches ref within tols. */
void attn_test_expect_forward(const attn_test_variant_t *v, const attn_test_problem_t *p,
                              const attn_test_out_t *ref, const attn_tols_t *tols);

/* Tolerances for p on an fp32 backend (attn_tols() with p's magnitudes). */
attn_tols_t attn_test_tols(const attn_test_problem_t *p);

/* Compares two runs' outputs (x against ref) where both have them: the defined entries within
 * tol, every other entry of the output arrays bit-identical to the sentinel in x. Returns the
 * number of mismatches (printing the first ones). With tols == NULL requires bit equality. */
int64_t attn_test_compare(const attn_test_problem_t *p, const attn_test_out_t *x,
                          const attn_test_out_t *ref, const attn_tols_t *tols, const char *what);

/* Entries of x[count] whose bits differ from y's (printing the first ones under `what`, which may
 * be NULL for silence). nan_matches: a NaN matches any NaN (a NaN's payload means nothing). */
int64_t attn_test_bit_mismatches(const char *what, const float *x, const float *y, size_t count,
                                 int nan_matches);

/* Runs op through path on a fresh context of `backend` and returns its outputs in *o (already
 * initialised by the caller). Fails the test if the call fails. */
void attn_test_run_on(attn_backend_t backend, const attn_test_problem_t *p, attn_test_op_t op,
                      attn_test_path_t path, const float *in_scores, const float *in_weights,
                      attn_test_out_t *o);

#endif
