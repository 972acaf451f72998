/*
 * test_gpu_sticky.c - a sticky CUDA error is reported as one. Shapes that promise far more
 * annotations than the buffers hold make the kernel read unmapped device memory (illegal
 * address): the call itself queues fine, attn_context_synchronize() returns
 * ATTN_ERR_CUDA_STICKY with a message naming the failing call, and so does every later call.
 * The fault ruins the process's CUDA context, so this is a suite of its own (label `fault`,
 * which tests/gpu/device-check.sh keeps out of the compute-sanitizer runs). Exits 77 without
 * a usable device.
 */
#include <string.h>

#include "gpu_util.h"

START_TEST(test_sticky_error) {
  attn_context_t *ctx = gpu_context(ATTN_ALGO_SIMPLE);
  attn_buffer_t *q = NULL, *a = NULL, *c = NULL;
  ck_assert_int_eq(attn_buffer_alloc(ctx, 256, &q), ATTN_OK);
  ck_assert_int_eq(attn_buffer_alloc(ctx, 256, &a), ATTN_OK);
  ck_assert_int_eq(attn_buffer_alloc(ctx, 256, &c), ATTN_OK);
  /* 2^28 annotations of ld 2^12: reads reach 4 TiB past a 256-byte buffer. */
  const int64_t n = (int64_t)1 << 28, ld = (int64_t)1 << 12;
  attn_shape_t shape = {1, 1, n, 4, 4, NULL, NULL, NULL};
  attn_inputs_t in = {attn_cmat(attn_buffer_data(q), 4, 0), attn_cmat(attn_buffer_data(a), ld, 0),
                      attn_cmat(NULL, 0, 0)};
  attn_outputs_t out = {attn_mat(attn_buffer_data(c), 4, 0), attn_mat(NULL, 0, 0),
                        attn_mat(NULL, 0, 0), NULL};
  attn_status_t st = attn_forward(ctx, &shape, NULL, &in, &out);
  if (st == ATTN_OK) st = attn_context_synchronize(ctx);
  ck_assert_msg(st == ATTN_ERR_CUDA_STICKY, "%s: %s", attn_status_string(st),
                attn_context_last_error(ctx));
  ck_assert_msg(strstr(attn_context_last_error(ctx), "failed in") != NULL,
                "message does not name the call: %s", attn_context_last_error(ctx));
  st = attn_context_synchronize(ctx);
  ck_assert_msg(st == ATTN_ERR_CUDA_STICKY, "second synchronize: %s: %s", attn_status_string(st),
                attn_context_last_error(ctx));
  attn_context_destroy(ctx); /* must not crash; the buffers die with the process */
}
END_TEST

static Suite *gpu_sticky_suite(void) {
  Suite *s = suite_create("gpu_sticky");
  TCase *tc = tcase_create("sticky");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_sticky_error);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (!gpu_usable()) return GPU_SKIP;
  return attn_test_main(gpu_sticky_suite());
}
