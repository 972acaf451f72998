/*
 * test_context.c - contexts, options, backend selection, buffers, streams, versions and statuses.
 *
 * On a machine without a usable GPU: AUTO picks the CPU and says why; an explicit CUDA request
 * fails with ATTN_ERR_NO_DEVICE and attn_create_error() says why ("built without CUDA" in a
 * CPU-only build). On a machine with one: AUTO and explicit CUDA both give a CUDA context.
 */
#include <stdio.h>
#include <string.h>

#include "test_util.h"

START_TEST(test_default_options) {
  attn_options_t o = attn_default_options();
  ck_assert_int_eq(o.backend, ATTN_BACKEND_AUTO);
  ck_assert_int_eq(o.device, 0);
  ck_assert_ptr_null(o.stream);
  ck_assert_int_eq(o.cpu_threads, 0);
  ck_assert_int_eq(o.algo, ATTN_ALGO_AUTO);
}
END_TEST

/* Whether this machine can give a CUDA context. */
static int cuda_usable(void) {
  attn_backend_t b[ATTN_TEST_MAX_BACKENDS];
  int n = attn_test_backends(b);
  for (int i = 0; i < n; i++)
    if (b[i] == ATTN_BACKEND_CUDA) return 1;
  return 0;
}

START_TEST(test_built_with_cuda) {
#ifdef ATTN_WITH_CUDA
  ck_assert_int_eq(attn_built_with_cuda(), 1);
#else
  ck_assert_int_eq(attn_built_with_cuda(), 0);
#endif
}
END_TEST

/* AUTO never fails: CUDA when usable, else the CPU with the reason. NULL options mean AUTO. */
START_TEST(test_auto_never_fails) {
  for (int use_null = 0; use_null < 2; use_null++) {
    attn_options_t o = attn_default_options();
    attn_context_t *ctx = NULL;
    ck_assert_int_eq(attn_context_create(use_null ? NULL : &o, &ctx), ATTN_OK);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_str_eq(attn_create_error(), "");
    const char *reason = attn_context_backend_reason(ctx);
    ck_assert_ptr_nonnull(reason);
    ck_assert_int_gt((int)strlen(reason), 0);
    if (cuda_usable()) {
      ck_assert_int_eq(attn_context_backend(ctx), ATTN_BACKEND_CUDA);
    } else {
      ck_assert_int_eq(attn_context_backend(ctx), ATTN_BACKEND_CPU);
      /* The reason says why CUDA was not picked. */
      if (!attn_built_with_cuda()) ck_assert_ptr_nonnull(strstr(reason, "built without CUDA"));
    }
    attn_context_destroy(ctx);
  }
  /* A device index that does not exist: AUTO still gives a context. */
  attn_options_t o = attn_default_options();
  attn_context_t *ctx = NULL;
  o.device = 4096;
  ck_assert_int_eq(attn_context_create(&o, &ctx), ATTN_OK);
  ck_assert_int_eq(attn_context_backend(ctx), ATTN_BACKEND_CPU);
  ck_assert_int_gt((int)strlen(attn_context_backend_reason(ctx)), 0);
  attn_context_destroy(ctx);
}
END_TEST

START_TEST(test_explicit_backends) {
  static const attn_backend_t host[2] = {ATTN_BACKEND_CPU, ATTN_BACKEND_REFERENCE};
  for (int i = 0; i < 2; i++) {
    attn_options_t o = attn_default_options();
    attn_context_t *ctx = NULL;
    o.backend = host[i];
    ck_assert_int_eq(attn_context_create(&o, &ctx), ATTN_OK);
    ck_assert_int_eq(attn_context_backend(ctx), host[i]);
    ck_assert_int_gt((int)strlen(attn_context_backend_reason(ctx)), 0);
    ck_assert_str_eq(attn_context_last_error(ctx), "");
    attn_context_destroy(ctx);
  }
}
END_TEST

/* Explicit CUDA: a context when a device is usable, else ATTN_ERR_NO_DEVICE and a reason. */
START_TEST(test_explicit_cuda) {
  attn_context_t *const poison = (attn_context_t *)(uintptr_t)0x5a5a5a5a;
  attn_options_t o = attn_default_options();
  attn_context_t *ctx = poison;
  o.backend = ATTN_BACKEND_CUDA;
  attn_status_t st = attn_context_create(&o, &ctx);
  if (cuda_usable()) {
    ck_assert_int_eq(st, ATTN_OK);
    ck_assert_int_eq(attn_context_backend(ctx), ATTN_BACKEND_CUDA);
    attn_context_destroy(ctx);
  } else {
    ck_assert_int_eq(st, ATTN_ERR_NO_DEVICE);
    ck_assert_ptr_eq(ctx, poison);
    const char *why = attn_create_error();
    ck_assert_msg(strstr(why, "CUDA") != NULL, "no reason: '%s'", why);
    if (!attn_built_with_cuda()) ck_assert_ptr_nonnull(strstr(why, "built without CUDA"));
  }
  /* A device index that does not exist is never usable. */
  o.device = 4096;
  ctx = poison;
  ck_assert_int_eq(attn_context_create(&o, &ctx), ATTN_ERR_NO_DEVICE);
  ck_assert_ptr_eq(ctx, poison);
  ck_assert_int_gt((int)strlen(attn_create_error()), 0);
  /* The next successful create clears the message. */
  ctx = attn_test_context(ATTN_BACKEND_CPU);
  ck_assert_str_eq(attn_create_error(), "");
  attn_context_destroy(ctx);
}
END_TEST

/* The documented names, in enum order. */
static const char *const BACKEND_NAMES[] = {"auto", "cuda", "cpu", "reference"};
static const char *const ALGO_NAMES[] = {"auto", "simple", "gemm", "fused", "rows"};

START_TEST(test_backend_names) {
  for (int b = ATTN_BACKEND_AUTO; b <= ATTN_BACKEND_REFERENCE; b++) {
    ck_assert_str_eq(attn_backend_name((attn_backend_t)b), BACKEND_NAMES[b]);
    attn_backend_t got = (attn_backend_t)42;
    ck_assert_int_eq(attn_backend_from_name(BACKEND_NAMES[b], &got), ATTN_OK);
    ck_assert_int_eq((int)got, b);
    ck_assert_str_eq(attn_create_error(), "");
  }
  ck_assert_str_eq(attn_backend_name((attn_backend_t)42), "unknown");
  ck_assert_str_eq(attn_backend_name((attn_backend_t)-1), "unknown");
}
END_TEST

START_TEST(test_algo_names) {
  for (int a = ATTN_ALGO_AUTO; a <= ATTN_ALGO_ROWS; a++) {
    ck_assert_str_eq(attn_algo_name((attn_algo_t)a), ALGO_NAMES[a]);
    attn_algo_t got = (attn_algo_t)42;
    ck_assert_int_eq(attn_algo_from_name(ALGO_NAMES[a], &got), ATTN_OK);
    ck_assert_int_eq((int)got, a);
    ck_assert_str_eq(attn_create_error(), "");
  }
  ck_assert_str_eq(attn_algo_name((attn_algo_t)42), "unknown");
  ck_assert_str_eq(attn_algo_name((attn_algo_t)-1), "unknown");
}
END_TEST

/* A name that is not one leaves *out as it was and says why in attn_create_error(); "unknown",
 * what the name functions give for other values, is not a name; the match is exact. */
START_TEST(test_names_rejected) {
  static const char *const bad[] = {"", "unknown", "CPU", "cpu ", "gpu", "fuse", "rowss"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    attn_backend_t b = (attn_backend_t)42;
    ck_assert_int_eq(attn_backend_from_name(bad[i], &b), ATTN_ERR_INVALID_ARG);
    ck_assert_int_eq((int)b, 42);
    ck_assert_msg(strstr(attn_create_error(), "name:") && strstr(attn_create_error(), "reference"),
                  "'%s': %s", bad[i], attn_create_error());
    attn_algo_t a = (attn_algo_t)42;
    ck_assert_int_eq(attn_algo_from_name(bad[i], &a), ATTN_ERR_INVALID_ARG);
    ck_assert_int_eq((int)a, 42);
    ck_assert_msg(strstr(attn_create_error(), "name:") && strstr(attn_create_error(), "rows"),
                  "'%s': %s", bad[i], attn_create_error());
  }
  attn_backend_t b = (attn_backend_t)42;
  attn_algo_t a = (attn_algo_t)42;
  ck_assert_int_eq(attn_backend_from_name(NULL, &b), ATTN_ERR_NULL_POINTER);
  ck_assert_str_eq(attn_create_error(), "name: NULL");
  ck_assert_int_eq(attn_backend_from_name("cpu", NULL), ATTN_ERR_NULL_POINTER);
  ck_assert_str_eq(attn_create_error(), "out: NULL");
  ck_assert_int_eq(attn_algo_from_name(NULL, &a), ATTN_ERR_NULL_POINTER);
  ck_assert_str_eq(attn_create_error(), "name: NULL");
  ck_assert_int_eq(attn_algo_from_name("gemm", NULL), ATTN_ERR_NULL_POINTER);
  ck_assert_str_eq(attn_create_error(), "out: NULL");
  ck_assert_int_eq((int)b, 42);
  ck_assert_int_eq((int)a, 42);
  /* A long name is cut in the message, not overflowed. */
  char long_name[2000];
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  ck_assert_int_eq(attn_algo_from_name(long_name, &a), ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(attn_create_error(), "is not one of"));
}
END_TEST

/* ATTN_ALGO names the algorithm of AUTO contexts, every documented name; an algorithm given in
 * the options wins over it (an unknown name: test_bad_input). */
START_TEST(test_algo_environment) {
  for (int i = 0; i < 5; i++) {
    attn_options_t o = attn_default_options();
    o.backend = ATTN_BACKEND_CPU;
    ck_assert_int_eq(setenv("ATTN_ALGO", ALGO_NAMES[i], 1), 0);
    attn_context_t *ctx = NULL, *fixed = NULL;
    attn_status_t st = attn_context_create(&o, &ctx);
    o.algo = ATTN_ALGO_SIMPLE;
    attn_status_t st_fixed = attn_context_create(&o, &fixed);
    ck_assert_int_eq(unsetenv("ATTN_ALGO"), 0);
    ck_assert_msg(st == ATTN_OK, "ATTN_ALGO=%s: %s", ALGO_NAMES[i], attn_create_error());
    ck_assert_int_eq(st_fixed, ATTN_OK);
    ck_assert_int_eq((int)attn_context_algo(ctx), i);
    ck_assert_int_eq((int)attn_context_algo(fixed), ATTN_ALGO_SIMPLE);
    attn_context_destroy(ctx);
    attn_context_destroy(fixed);
  }
  for (int algo = ATTN_ALGO_AUTO; algo <= ATTN_ALGO_ROWS; algo++) {
    attn_context_t *ctx = NULL;
    attn_options_t o = attn_default_options();
    o.algo = (attn_algo_t)algo;
    ck_assert_int_eq(attn_context_create(&o, &ctx), ATTN_OK);
    ck_assert_int_eq((int)attn_context_algo(ctx), algo);
    attn_context_destroy(ctx);
  }
  ck_assert_int_eq((int)attn_context_algo(NULL), ATTN_ALGO_AUTO);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Buffers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

START_TEST(test_buffer_round_trip) {
  attn_backend_t backends[ATTN_TEST_MAX_BACKENDS];
  int nb = attn_test_backends(backends);
  for (int i = 0; i < nb; i++) {
    attn_context_t *ctx = attn_test_context(backends[i]);
    static const size_t sizes[3] = {1, 1000, 1 << 20};
    for (int k = 0; k < 3; k++) {
      size_t bytes = sizes[k];
      attn_buffer_t *buf = NULL;
      ck_assert_int_eq(attn_buffer_alloc(ctx, bytes, &buf), ATTN_OK);
      ck_assert_ptr_nonnull(buf);
      ck_assert_uint_eq(attn_buffer_size(buf), bytes);
      ck_assert_ptr_nonnull(attn_buffer_data(buf));
      ck_assert_uint_eq((uintptr_t)attn_buffer_data(buf) % 256, 0);

      unsigned char *src = attn_test_calloc(bytes, 1), *dst = attn_test_calloc(bytes, 1);
      for (size_t j = 0; j < bytes; j++)
        src[j] = (unsigned char)(j * 7 + 3);
      ck_assert_int_eq(attn_buffer_upload(ctx, buf, 0, src, bytes), ATTN_OK);
      ck_assert_int_eq(attn_buffer_download(ctx, buf, 0, dst, bytes), ATTN_OK);
      ck_assert_mem_eq(dst, src, bytes);

      /* Partial copies at offsets, up to the last byte. */
      if (bytes >= 16) {
        unsigned char part[8] = {1, 2, 3, 4, 5, 6, 7, 8}, got[8];
        ck_assert_int_eq(attn_buffer_upload(ctx, buf, bytes - 8, part, 8), ATTN_OK);
        ck_assert_int_eq(attn_buffer_download(ctx, buf, bytes - 8, got, 8), ATTN_OK);
        ck_assert_mem_eq(got, part, 8);
        ck_assert_int_eq(attn_buffer_download(ctx, buf, 0, dst, bytes - 8), ATTN_OK);
        ck_assert_mem_eq(dst, src, bytes - 8);
        /* One byte past the end is rejected. */
        ck_assert_int_eq(attn_buffer_upload(ctx, buf, bytes - 7, part, 8), ATTN_ERR_INVALID_SIZE);
        ck_assert_int_eq(attn_buffer_download(ctx, buf, bytes - 7, got, 8), ATTN_ERR_INVALID_SIZE);
      }
      /* Zero bytes at the end is a valid empty copy. */
      ck_assert_int_eq(attn_buffer_upload(ctx, buf, bytes, src, 0), ATTN_OK);
      ck_assert_int_eq(attn_buffer_download(ctx, buf, bytes, dst, 0), ATTN_OK);
      free(src);
      free(dst);
      ck_assert_int_eq(attn_buffer_free(ctx, buf), ATTN_OK);
    }
    attn_context_destroy(ctx);
  }
}
END_TEST

/* Buffers are what compute calls take: forward on buffers equals forward on host arrays. */
START_TEST(test_buffers_feed_compute_calls) {
  attn_test_variant_t vs[ATTN_TEST_MAX_VARIANTS];
  int nv = attn_test_variants(vs);
  attn_test_spec_t spec = attn_test_spec(2, 3, 17, 5);
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  attn_test_out_t ref;
  attn_test_out_init(&ref, &p, 1, 1, 1);
  attn_test_run_on(ATTN_BACKEND_REFERENCE, &p, ATTN_TEST_FORWARD, ATTN_TEST_HOST_CALLS, NULL, NULL,
                   &ref);
  attn_tols_t tols = attn_test_tols(&p);
  for (int i = 0; i < nv; i++) {
    if (vs[i].path != ATTN_TEST_BUFFERS) continue;
    attn_test_expect_forward(&vs[i], &p, &ref, &tols);
  }
  attn_test_out_free(&ref);
  attn_test_problem_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Streams, errors, reserve                                                                   */
/* ------------------------------------------------------------------------------------------ */

START_TEST(test_stream_get_set) {
  static const attn_backend_t host[2] = {ATTN_BACKEND_CPU, ATTN_BACKEND_REFERENCE};
  for (int i = 0; i < 2; i++) {
    attn_context_t *ctx = attn_test_context(host[i]);
    void *stream = (void *)1;
    ck_assert_int_eq(attn_context_get_stream(ctx, &stream), ATTN_OK);
    ck_assert_ptr_null(stream);
    /* On the CPU the stream is stored and otherwise ignored. */
    ck_assert_int_eq(attn_context_set_stream(ctx, (void *)0x1234), ATTN_OK);
    ck_assert_int_eq(attn_context_get_stream(ctx, &stream), ATTN_OK);
    ck_assert_ptr_eq(stream, (void *)0x1234);
    ck_assert_int_eq(attn_context_synchronize(ctx), ATTN_OK);
    ck_assert_int_eq(attn_context_set_stream(ctx, NULL), ATTN_OK);
    ck_assert_int_eq(attn_context_get_stream(ctx, &stream), ATTN_OK);
    ck_assert_ptr_null(stream);
    attn_context_destroy(ctx);

    /* The stream given in the options. */
    attn_options_t o = attn_default_options();
    o.backend = host[i];
    o.stream = (void *)0x42;
    ck_assert_int_eq(attn_context_create(&o, &ctx), ATTN_OK);
    ck_assert_int_eq(attn_context_get_stream(ctx, &stream), ATTN_OK);
    ck_assert_ptr_eq(stream, (void *)0x42);
    attn_context_destroy(ctx);
  }
  if (cuda_usable()) {
    attn_context_t *ctx = attn_test_context(ATTN_BACKEND_CUDA);
    void *stream = (void *)1;
    ck_assert_int_eq(attn_context_get_stream(ctx, &stream), ATTN_OK);
    ck_assert_ptr_null(stream);
    ck_assert_int_eq(attn_context_synchronize(ctx), ATTN_OK);
    attn_context_destroy(ctx);
  }
}
END_TEST

/* The last error is set by a failing call and cleared by the next call. */
START_TEST(test_last_error_lifecycle) {
  attn_context_t *ctx = attn_test_context(ATTN_BACKEND_CPU);
  attn_buffer_t *buf = NULL;
  ck_assert_str_eq(attn_context_last_error(ctx), "");
  ck_assert_int_eq(attn_buffer_alloc(ctx, 0, &buf), ATTN_ERR_INVALID_SIZE);
  ck_assert_int_gt((int)strlen(attn_context_last_error(ctx)), 0);
  ck_assert_int_eq(attn_buffer_alloc(ctx, 16, &buf), ATTN_OK);
  ck_assert_str_eq(attn_context_last_error(ctx), "");
  ck_assert_int_eq(attn_buffer_free(ctx, buf), ATTN_OK);
  ck_assert_ptr_nonnull(attn_context_last_error(NULL));
  ck_assert_ptr_nonnull(attn_context_backend_reason(NULL));
  attn_context_destroy(ctx);
}
END_TEST

/* reserve accepts every score function on every backend and changes no result. */
START_TEST(test_reserve) {
  attn_backend_t backends[ATTN_TEST_MAX_BACKENDS];
  int nb = attn_test_backends(backends);
  for (int i = 0; i < nb; i++) {
    for (int kind = 0; kind < 4; kind++) {
      attn_test_spec_t spec = attn_test_spec(3, 4, 50, 6);
      spec.kind = (attn_score_kind_t)kind;
      attn_test_problem_t p;
      attn_test_problem_init(&p, &spec);
      attn_context_t *ctx = attn_test_context(backends[i]);
      /* On CUDA the score parameters would have to be device pointers: dot kinds only there. */
      if (backends[i] != ATTN_BACKEND_CUDA || kind < 2) {
        ck_assert_msg(attn_context_reserve(ctx, &p.shape, &p.score) == ATTN_OK, "%s kind %d: %s",
                      attn_backend_name(backends[i]), kind, attn_context_last_error(ctx));
      }
      attn_test_out_t a, b;
      attn_test_out_init(&a, &p, 1, 1, 1);
      attn_test_out_init(&b, &p, 1, 1, 1);
      ck_assert_int_eq(
          attn_test_run(ctx, &p, ATTN_TEST_FORWARD, ATTN_TEST_HOST_CALLS, NULL, NULL, &a), ATTN_OK);
      attn_context_t *fresh = attn_test_context(backends[i]);
      ck_assert_int_eq(
          attn_test_run(fresh, &p, ATTN_TEST_FORWARD, ATTN_TEST_HOST_CALLS, NULL, NULL, &b),
          ATTN_OK);
      ck_assert_int_eq(attn_test_compare(&p, &a, &b, NULL, attn_backend_name(backends[i])), 0);
      attn_test_out_free(&a);
      attn_test_out_free(&b);
      attn_context_destroy(fresh);
      attn_context_destroy(ctx);
      attn_test_problem_free(&p);
    }
  }
}
END_TEST

START_TEST(test_score_initialisers) {
  float w[4], wq[6], wa[6], v[2];
  attn_score_t s = attn_score_dot();
  ck_assert_int_eq(s.kind, ATTN_SCORE_DOT);
  s = attn_score_scaled_dot(0.5f);
  ck_assert_int_eq(s.kind, ATTN_SCORE_SCALED_DOT);
  ck_assert_float_eq(s.scale, 0.5f);
  s = attn_score_general(w, 2);
  ck_assert_int_eq(s.kind, ATTN_SCORE_GENERAL);
  ck_assert_ptr_eq(s.w, w);
  ck_assert_int_eq(s.ldw, 2);
  s = attn_score_additive(2, wq, 3, wa, 3, v);
  ck_assert_int_eq(s.kind, ATTN_SCORE_ADDITIVE);
  ck_assert_int_eq(s.h, 2);
  ck_assert_ptr_eq(s.wq, wq);
  ck_assert_int_eq(s.ldwq, 3);
  ck_assert_ptr_eq(s.wa, wa);
  ck_assert_int_eq(s.ldwa, 3);
  ck_assert_ptr_eq(s.v, v);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Versions and statuses                                                                      */
/* ------------------------------------------------------------------------------------------ */

START_TEST(test_version) {
  char want[32];
  ck_assert_int_eq(attn_version(), ATTN_VERSION);
  ck_assert_int_eq(ATTN_VERSION,
                   ATTN_VERSION_MAJOR * 10000 + ATTN_VERSION_MINOR * 100 + ATTN_VERSION_PATCH);
  snprintf(want, sizeof want, "%d.%d.%d", ATTN_VERSION_MAJOR, ATTN_VERSION_MINOR,
           ATTN_VERSION_PATCH);
  ck_assert_str_eq(attn_version_string(), want);
}
END_TEST

START_TEST(test_status_strings) {
  static const char *names[] = {
      "ATTN_OK",
      "ATTN_ERR_NULL_POINTER",
      "ATTN_ERR_INVALID_ARG",
      "ATTN_ERR_INVALID_SIZE",
      "ATTN_ERR_INVALID_LD",
      "ATTN_ERR_INVALID_OFFSETS",
      "ATTN_ERR_INVALID_LENGTH",
      "ATTN_ERR_OVERFLOW",
      "ATTN_ERR_MISALIGNED",
      "ATTN_ERR_ALLOC",
      "ATTN_ERR_NO_DEVICE",
      "ATTN_ERR_CUDA",
      "ATTN_ERR_CUBLAS",
      "ATTN_ERR_CUDA_STICKY",
      "ATTN_ERR_INTERNAL",
  };
  const int count = (int)(sizeof names / sizeof names[0]);
  ck_assert_int_eq(count, ATTN_ERR_INTERNAL + 1);
  for (int i = 0; i < count; i++) {
    const char *s = attn_status_string((attn_status_t)i);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_gt((int)strlen(s), 0);
    /* Each string starts with its own name (and not a longer one's prefix). */
    size_t len = strlen(names[i]);
    ck_assert_msg(strncmp(s, names[i], len) == 0 && (s[len] == ':' || s[len] == '\0'),
                  "status %d: '%s' does not start with %s", i, s, names[i]);
    for (int j = 0; j < i; j++)
      ck_assert_str_ne(s, attn_status_string((attn_status_t)j));
  }
  ck_assert_str_eq(attn_status_string((attn_status_t)99), "unknown attn status");
  ck_assert_str_eq(attn_status_string((attn_status_t)-1), "unknown attn status");
}
END_TEST

static Suite *make_context_suite(void) {
  Suite *s = suite_create("context");
  TCase *tc = tcase_create("contexts");
  tcase_add_test(tc, test_default_options);
  tcase_add_test(tc, test_built_with_cuda);
  tcase_add_test(tc, test_auto_never_fails);
  tcase_add_test(tc, test_explicit_backends);
  tcase_add_test(tc, test_explicit_cuda);
  tcase_add_test(tc, test_backend_names);
  tcase_add_test(tc, test_algo_names);
  tcase_add_test(tc, test_names_rejected);
  tcase_add_test(tc, test_algo_environment);
  tcase_add_test(tc, test_stream_get_set);
  tcase_add_test(tc, test_last_error_lifecycle);
  tcase_add_test(tc, test_reserve);
  tcase_add_test(tc, test_score_initialisers);
  suite_add_tcase(s, tc);
  tc = tcase_create("buffers");
  tcase_add_test(tc, test_buffer_round_trip);
  tcase_add_test(tc, test_buffers_feed_compute_calls);
  suite_add_tcase(s, tc);
  tc = tcase_create("versions and statuses");
  tcase_add_test(tc, test_version);
  tcase_add_test(tc, test_status_strings);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return attn_test_main(make_context_suite());
}
