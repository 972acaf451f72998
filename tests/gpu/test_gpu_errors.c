/*
 * test_gpu_errors.c - bad input on the CUDA backend: host pointers where device pointers are
 * needed, offsets / lengths / varlen leading dimensions that only the device can check
 * (reported by attn_context_synchronize, outputs untouched), a buffer larger than device memory
 * (ATTN_ERR_ALLOC); after each error the context must still compute correctly. Exits 77
 * without a usable device.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gpu_util.h"

/* Device copy of a host array, as a buffer of ctx. */
static attn_buffer_t *upload(attn_context_t *ctx, const void *host, size_t bytes) {
  attn_buffer_t *buf = NULL;
  ck_assert_int_eq(attn_buffer_alloc(ctx, bytes, &buf), ATTN_OK);
  ck_assert_int_eq(attn_buffer_upload(ctx, buf, 0, host, bytes), ATTN_OK);
  return buf;
}

/* A small varlen problem living in device buffers. */
typedef struct dev_problem {
  attn_context_t *ctx;
  attn_buffer_t *q, *a, *c, *s, *qo, *ao, *len;
  attn_shape_t shape;
  attn_inputs_t in;
  attn_outputs_t out;
} dev_problem_t;

#define DP_BATCH 3
#define DP_M     6 /* query rows in all */
#define DP_N     9 /* annotation rows in all */
#define DP_D     4
#define DP_LD    5 /* scores ld: covers the longest set (5) */

static void dev_problem_init(dev_problem_t *dp, attn_context_t *ctx, const int32_t qo[4],
                             const int32_t ao[4], const int32_t len[3]) {
  float q[DP_M * DP_D], a[DP_N * DP_D], sentinel[DP_M * DP_LD];
  attn_rng_t rng;
  attn_rng_seed(&rng, 7);
  attn_rng_fill(&rng, q, DP_M * DP_D, 1.0f, 0.0);
  attn_rng_fill(&rng, a, DP_N * DP_D, 1.0f, 0.0);
  attn_test_fill_sentinel(sentinel, DP_M * DP_LD);
  memset(dp, 0, sizeof *dp);
  dp->ctx = ctx;
  dp->q = upload(ctx, q, sizeof q);
  dp->a = upload(ctx, a, sizeof a);
  dp->c = upload(ctx, sentinel, DP_M * DP_D * sizeof(float));
  dp->s = upload(ctx, sentinel, sizeof sentinel);
  dp->qo = upload(ctx, qo, 4 * sizeof(int32_t));
  dp->ao = upload(ctx, ao, 4 * sizeof(int32_t));
  dp->len = upload(ctx, len, 3 * sizeof(int32_t));
  attn_shape_t shape = {DP_BATCH,
                        DP_M,
                        DP_N,
                        DP_D,
                        DP_D,
                        attn_buffer_data(dp->qo),
                        attn_buffer_data(dp->ao),
                        attn_buffer_data(dp->len)};
  dp->shape = shape;
  dp->in.queries = attn_cmat(attn_buffer_data(dp->q), DP_D, 0);
  dp->in.annotations = attn_cmat(attn_buffer_data(dp->a), DP_D, 0);
  dp->in.values = attn_cmat(NULL, 0, 0);
  dp->out.context = attn_mat(attn_buffer_data(dp->c), DP_D, 0);
  dp->out.scores = attn_mat(attn_buffer_data(dp->s), DP_LD, 0);
  dp->out.weights = attn_mat(NULL, 0, 0);
  dp->out.lse = NULL;
}

static void dev_problem_free(dev_problem_t *dp) {
  attn_buffer_t *bufs[] = {dp->q, dp->a, dp->c, dp->s, dp->qo, dp->ao, dp->len};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    ck_assert_int_eq(attn_buffer_free(dp->ctx, bufs[i]), ATTN_OK);
}

/* Every output entry still holds the sentinel. */
static void expect_untouched(dev_problem_t *dp) {
  float c[DP_M * DP_D], s[DP_M * DP_LD], sentinel[DP_M * DP_LD];
  attn_test_fill_sentinel(sentinel, DP_M * DP_LD);
  ck_assert_int_eq(attn_buffer_download(dp->ctx, dp->c, 0, c, sizeof c), ATTN_OK);
  ck_assert_int_eq(attn_buffer_download(dp->ctx, dp->s, 0, s, sizeof s), ATTN_OK);
  ck_assert_msg(memcmp(c, sentinel, sizeof c) == 0, "context written by an invalid call");
  ck_assert_msg(memcmp(s, sentinel, sizeof s) == 0, "scores written by an invalid call");
}

static const int32_t GOOD_QO[4] = {0, 2, 2, 6}, GOOD_AO[4] = {0, 5, 8, 9};
static const int32_t GOOD_LEN[3] = {5, 3, 0};

/* A valid call on ctx gives the reference's context. */
static void expect_works(attn_context_t *ctx) {
  dev_problem_t dp;
  dev_problem_init(&dp, ctx, GOOD_QO, GOOD_AO, GOOD_LEN);
  ck_assert_int_eq(attn_forward(ctx, &dp.shape, NULL, &dp.in, &dp.out), ATTN_OK);
  attn_status_t st = attn_context_synchronize(ctx);
  ck_assert_msg(st == ATTN_OK, "valid call after an error: %s: %s", attn_status_string(st),
                attn_context_last_error(ctx));
  float c[DP_M * DP_D];
  ck_assert_int_eq(attn_buffer_download(ctx, dp.c, 0, c, sizeof c), ATTN_OK);
  for (int i = 0; i < DP_M * DP_D; i++)
    ck_assert_msg(c[i] == c[i], "context[%d] is NaN after a valid call", i);
  dev_problem_free(&dp);
}

/* Device-side checks: each case queues fine and fails at synchronize, writing nothing. */
START_TEST(test_device_side_validation) {
  static const struct {
    int32_t qo[4], ao[4], len[3];
    int64_t lds; /* scores ld */
    attn_status_t want;
    const char *name;
  } cases[] = {
      {{0, 3, 2, 6}, {0, 5, 8, 9}, {5, 3, 0}, DP_LD, ATTN_ERR_INVALID_OFFSETS, "query_offsets"},
      {{-1, 2, 2, 6}, {0, 5, 8, 9}, {5, 3, 0}, DP_LD, ATTN_ERR_INVALID_OFFSETS, "query_offsets"},
      {{0, 2, 2, 6},
       {0, 5, 8, 10},
       {5, 3, 0},
       DP_LD,
       ATTN_ERR_INVALID_OFFSETS,
       "annotation_offsets"},
      {{0, 2, 2, 6}, {0, 5, 8, 9}, {5, 4, 0}, DP_LD, ATTN_ERR_INVALID_LENGTH, "lengths"},
      {{0, 2, 2, 6}, {0, 5, 8, 9}, {5, 3, -1}, DP_LD, ATTN_ERR_INVALID_LENGTH, "lengths"},
      {{0, 2, 2, 6}, {0, 5, 8, 9}, {5, 3, 0}, 4, ATTN_ERR_INVALID_LD, "scores.ld"},
  };
  attn_context_t *ctx = gpu_context(_i % 2 ? ATTN_ALGO_SIMPLE : ATTN_ALGO_AUTO);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    dev_problem_t dp;
    dev_problem_init(&dp, ctx, cases[k].qo, cases[k].ao, cases[k].len);
    dp.out.scores.ld = cases[k].lds;
    ck_assert_int_eq(attn_forward(ctx, &dp.shape, NULL, &dp.in, &dp.out), ATTN_OK);
    attn_status_t st = attn_context_synchronize(ctx);
    ck_assert_msg(st == cases[k].want, "case %zu: %s instead of %s (%s)", k, attn_status_string(st),
                  attn_status_string(cases[k].want), attn_context_last_error(ctx));
    ck_assert_msg(strstr(attn_context_last_error(ctx), cases[k].name) != NULL,
                  "case %zu: message '%s' does not name %s", k, attn_context_last_error(ctx),
                  cases[k].name);
    expect_untouched(&dp);
    /* Reported once: the next synchronize is clean. */
    ck_assert_int_eq(attn_context_synchronize(ctx), ATTN_OK);
    dev_problem_free(&dp);
    expect_works(ctx);
  }
  attn_context_destroy(ctx);
}
END_TEST

/* A host array given to a compute call of a CUDA context. */
START_TEST(test_host_pointer) {
  attn_context_t *ctx = gpu_context(ATTN_ALGO_AUTO);
  dev_problem_t dp;
  dev_problem_init(&dp, ctx, GOOD_QO, GOOD_AO, GOOD_LEN);
  static float host_q[DP_M * DP_D];
  static int32_t host_len[3] = {5, 3, 0};
  attn_inputs_t in = dp.in;
  in.queries.data = host_q;
  attn_status_t st = attn_forward(ctx, &dp.shape, NULL, &in, &dp.out);
  ck_assert_int_eq(st, ATTN_ERR_INVALID_ARG);
  ck_assert_msg(strstr(attn_context_last_error(ctx), "queries") != NULL, "message: %s",
                attn_context_last_error(ctx));
  attn_shape_t shape = dp.shape;
  shape.lengths = host_len;
  st = attn_forward(ctx, &shape, NULL, &dp.in, &dp.out);
  ck_assert_int_eq(st, ATTN_ERR_INVALID_ARG);
  ck_assert_msg(strstr(attn_context_last_error(ctx), "lengths") != NULL, "message: %s",
                attn_context_last_error(ctx));
  ck_assert_int_eq(attn_context_synchronize(ctx), ATTN_OK);
  expect_untouched(&dp);
  dev_problem_free(&dp);
  expect_works(ctx);
  attn_context_destroy(ctx);
}
END_TEST

/* More than any device has: ATTN_ERR_ALLOC, nothing sticky, the context still works. */
START_TEST(test_alloc_too_large) {
  attn_context_t *ctx = gpu_context(ATTN_ALGO_AUTO);
  attn_buffer_t *buf = NULL;
  attn_status_t st = attn_buffer_alloc(ctx, (size_t)1 << 50, &buf);
  ck_assert_int_eq(st, ATTN_ERR_ALLOC);
  ck_assert_ptr_null(buf);
  ck_assert_msg(attn_context_last_error(ctx)[0] != '\0', "no message");
  expect_works(ctx);
  attn_context_destroy(ctx);
  /* A workspace that cannot be had: a uniform forward on cuBLAS wants batch x m x n floats
   * (forced GEMM: AUTO never takes cuBLAS, and a plain dot needs no workspace there). */
  ctx = gpu_context(ATTN_ALGO_GEMM);
  attn_shape_t huge = {1 << 20, 1 << 10, 1 << 12, 1, 1, NULL, NULL, NULL};
  st = attn_context_reserve(ctx, &huge, NULL);
  ck_assert_msg(st == ATTN_ERR_ALLOC, "reserve of 16 TiB: %s (%s)", attn_status_string(st),
                attn_context_last_error(ctx));
  expect_works(ctx);
  attn_context_destroy(ctx);
}
END_TEST

static Suite *gpu_errors_suite(void) {
  Suite *s = suite_create("gpu_errors");
  TCase *tc = tcase_create("errors");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_device_side_validation, 0, 2);
  tcase_add_test(tc, test_host_pointer);
  tcase_add_test(tc, test_alloc_too_large);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (!gpu_usable()) return GPU_SKIP;
  return attn_test_main(gpu_errors_suite());
}
