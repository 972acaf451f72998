/*
 * gpu_util.h - what the GPU suites share: the skip rule (exit 77 when no CUDA device is usable),
 * CUDA contexts with a forced algorithm, and reference results for a test problem.
 */
#ifndef ATTN_TESTS_GPU_UTIL_H
#define ATTN_TESTS_GPU_UTIL_H

#include <stdio.h>

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

/* The REFERENCE backend's outputs of p for op (all optional outputs requested). */
static inline void gpu_reference(const attn_test_problem_t *p, attn_test_op_t op, const float *in_s,
                                 const float *in_w, attn_test_out_t *o) {
  attn_test_out_init(o, p, 1, 1, 1);
  attn_test_run_on(ATTN_BACKEND_REFERENCE, p, op, ATTN_TEST_HOST_CALLS, in_s, in_w, o);
}

#endif
