/*
 * gpu_util.h - what the GPU suites share: the skip rule (exit 77 when no CUDA device is usable),
 * CUDA contexts with a forced algorithm, and reference results for a test problem.
 */
#ifndef ATTN_TESTS_GPU_UTIL_H
#define ATTN_TESTS_GPU_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

/* The exit code CTest reports as skipped (SKIP_RETURN_CODE 77). */
#define GPU_SKIP 77

/* 1 when a CUDA context can be made; otherwise prints why and returns 0. */
static inline int gpu_usable(void) {
  attn_options_t opts = attn_default_options();
  attn_context_t *ctx = NULL;
  opts.backend = ATTN_BACKEND_CUDA;
  attn_status_t st = attn_context_create(&opts, &ctx);
  if (st == ATTN_OK) {
    attn_context_destroy(ctx);
    return 1;
  }
  printf("skipped: no usable CUDA device (%s: %s)\n", attn_status_string(st), attn_create_error());
  if (st != ATTN_ERR_NO_DEVICE) printf("warning: expected ATTN_ERR_NO_DEVICE\n");
  return 0;
}

/* A CUDA context computing with `algo` (fails the test if it cannot be made). */
static inline attn_context_t *gpu_context(attn_algo_t algo) {
  attn_options_t opts = attn_default_options();
  attn_context_t *ctx = NULL;
  opts.backend = ATTN_BACKEND_CUDA;
  opts.algo = algo;
  attn_status_t st = attn_context_create(&opts, &ctx);
  ck_assert_msg(st == ATTN_OK, "CUDA context (algo %d): %s: %s", (int)algo, attn_status_string(st),
                attn_create_error());
  return ctx;
}

/* The loop indices [*first, *end) that the environment variable `name` selects: FIRST,
 * FIRST-LAST or FIRST- (to the default's last, dflt - 1), with 0 <= FIRST <= LAST < limit;
 * [0, dflt) when it is unset or empty. Returns 0, or -1 (first and end untouched) after printing
 * a message that names the variable: its callers then exit 2, so that a typo cannot run nothing
 * and pass (tests/gpu/test_gpu_util.c). */
static inline int gpu_env_range(const char *name, int dflt, int limit, int *first, int *end) {
  const char *e = getenv(name);
  if (!e || !*e) {
    *first = 0;
    *end = dflt;
    return 0;
  }
  char *rest, *last = NULL;
  const long a = strtol(e, &rest, 10);
  long b = a;
  int ok = rest != e && (*rest == '\0' || *rest == '-');
  if (ok && *rest == '-' && rest[1] == '\0') {
    b = dflt - 1;
  } else if (ok && *rest == '-') {
    b = strtol(rest + 1, &last, 10);
    ok = last != rest + 1 && *last == '\0';
  }
  if (!ok || a < 0 || b < a || b >= limit) {
    fprintf(stderr,
            "%s='%s' is not FIRST, FIRST-LAST or FIRST- (0 <= FIRST <= LAST < %d, FIRST- ending "
            "at %d)\n",
            name, e, limit, dflt - 1);
    return -1;
  }
  *first = (int)a;
  *end = (int)b + 1;
  return 0;
}

/* The REFERENCE backend's outputs of p for op (all optional outputs requested). */
static inline void gpu_reference(const attn_test_problem_t *p, attn_test_op_t op, const float *in_s,
                                 const float *in_w, attn_test_out_t *o) {
  attn_test_out_init(o, p, 1, 1, 1);
  attn_test_run_on(ATTN_BACKEND_REFERENCE, p, op, ATTN_TEST_HOST_CALLS, in_s, in_w, o);
}

#endif
