/*
 * test_cuda_fallback.c - backend selection with and without a usable CUDA device, in CUDA and
 * CPU-only builds: AUTO picks CUDA exactly when an explicit CUDA context can be made, and
 * otherwise falls back to the CPU with the reason; an explicit CUDA request without a usable
 * device is ATTN_ERR_NO_DEVICE; the fallback context computes the walkthrough correctly.
 * Runs everywhere (label cpu): on this project's GPU-less machines it checks the fallback.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "test_util.h"

static int cuda_context_possible(attn_status_t *status) {
  attn_options_t opts = attn_default_options();
  attn_context_t *ctx = NULL;
  opts.backend = ATTN_BACKEND_CUDA;
  *status = attn_context_create(&opts, &ctx);
  if (*status != ATTN_OK) {
    ck_assert_ptr_null(ctx);
    return 0;
  }
  ck_assert_int_eq(attn_context_backend(ctx), ATTN_BACKEND_CUDA);
  attn_context_destroy(ctx);
  return 1;
}

START_TEST(test_auto_choice) {
  attn_status_t cuda_status;
  int cuda = cuda_context_possible(&cuda_status);
  if (!attn_built_with_cuda()) ck_assert_int_eq(cuda, 0);
  if (!cuda) {
    ck_assert_msg(cuda_status == ATTN_ERR_NO_DEVICE, "explicit CUDA: %s (%s)",
                  attn_status_string(cuda_status), attn_create_error());
    ck_assert_msg(strlen(attn_create_error()) > 0, "no reason for ATTN_ERR_NO_DEVICE");
  }
  attn_context_t *ctx = NULL;
  ck_assert_int_eq(attn_context_create(NULL, &ctx), ATTN_OK);
  const char *reason = attn_context_backend_reason(ctx);
  printf("AUTO: %s (%s)\n", attn_backend_name(attn_context_backend(ctx)), reason);
  if (cuda) {
    ck_assert_int_eq(attn_context_backend(ctx), ATTN_BACKEND_CUDA);
  } else {
    ck_assert_int_eq(attn_context_backend(ctx), ATTN_BACKEND_CPU);
    ck_assert_msg(strncmp(reason, "cpu: ", 5) == 0 && strlen(reason) > 5,
                  "fallback reason '%s' does not say why", reason);
  }
  attn_context_destroy(ctx);
}
END_TEST

/* The walkthrough on whatever AUTO picked. */
START_TEST(test_auto_computes) {
  const float q[3] = {5, 1, 20};
  const float a[12] = {3, 12, 45, 59, 2, 5, 1, 43, 5, 4, 3, 45.3f};
  const float want[3] = {3.8807971f, 4.0728263f, 45.264239f};
  float c[3] = {0, 0, 0};
  attn_context_t *ctx = NULL;
  ck_assert_int_eq(attn_context_create(NULL, &ctx), ATTN_OK);
  attn_shape_t shape = {1, 1, 4, 3, 3, NULL, NULL, NULL};
  attn_inputs_t in = {attn_cmat(q, 3, 0), attn_cmat(a, 3, 0), attn_cmat(NULL, 0, 0)};
  attn_outputs_t out = {attn_mat(c, 3, 0), attn_mat(NULL, 0, 0), attn_mat(NULL, 0, 0), NULL};
  attn_status_t st = attn_forward_host(ctx, &shape, NULL, &in, &out);
  ck_assert_msg(st == ATTN_OK, "%s", attn_context_last_error(ctx));
  for (int k = 0; k < 3; k++)
    ck_assert_msg(fabs((double)c[k] - (double)want[k]) <= 1e-4 * fabs((double)want[k]),
                  "context[%d] = %.9g, want %.9g", k, (double)c[k], (double)want[k]);
  attn_context_destroy(ctx);
}
END_TEST

static Suite *fallback_suite(void) {
  Suite *s = suite_create("cuda_fallback");
  TCase *tc = tcase_create("fallback");
  tcase_add_test(tc, test_auto_choice);
  tcase_add_test(tc, test_auto_computes);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return attn_test_main(fallback_suite());
}
