/*
 * test_threads.c - contexts are independent: several threads, each with its own context, run
 * forward at the same time and get results bit-identical to a single-threaded run. Also checks
 * that attn_create_error() belongs to the calling thread.
 */
#include <pthread.h>
#include <string.h>

#include "test_util.h"

#define THREADS 6
#define REPEATS 4

/* The shared, read-only problem and each backend's single-threaded answer. */
static attn_test_problem_t problem;
static attn_test_out_t expected[ATTN_TEST_MAX_BACKENDS];
static attn_backend_t backends[ATTN_TEST_MAX_BACKENDS];
static int nbackends;

typedef struct job {
  int index;
  attn_backend_t backend;
  const attn_test_out_t *expected;
  int failures; /* written by the thread, read after join */
  char message[256];
} job_t;

static void *run_job(void *arg) {
  job_t *job = arg;
  attn_options_t opts = attn_default_options();
  attn_context_t *ctx = NULL;
  opts.backend = job->backend;
  opts.cpu_threads = 1 + job->index % 2; /* 1 or 2 workers */
  if (attn_context_create(&opts, &ctx) != ATTN_OK) {
    snprintf(job->message, sizeof job->message, "create: %s", attn_create_error());
    job->failures++;
    return NULL;
  }
  for (int r = 0; r < REPEATS; r++) {
    attn_test_out_t o;
    memset(&o, 0, sizeof o);
    o.c_count = problem.c_count;
    o.s_count = problem.s_count;
    o.lse_count = problem.lse_count;
    o.c = calloc(problem.c_count + 1, sizeof(float));
    o.s = calloc(problem.s_count + 1, sizeof(float));
    o.w = calloc(problem.s_count + 1, sizeof(float));
    o.lse = calloc(problem.lse_count + 1, sizeof(float));
    if (!o.c || !o.s || !o.w || !o.lse) {
      job->failures++;
    } else {
      attn_test_fill_sentinel(o.c, o.c_count);
      attn_test_fill_sentinel(o.s, o.s_count);
      attn_test_fill_sentinel(o.w, o.s_count);
      attn_test_fill_sentinel(o.lse, o.lse_count);
      attn_test_path_t path = r % 2 ? ATTN_TEST_BUFFERS : ATTN_TEST_HOST_CALLS;
      attn_status_t st = attn_test_run(ctx, &problem, ATTN_TEST_FORWARD, path, NULL, NULL, &o);
      if (st != ATTN_OK) {
        snprintf(job->message, sizeof job->message, "forward: %s", attn_context_last_error(ctx));
        job->failures++;
      } else if (memcmp(o.c, job->expected->c, o.c_count * sizeof(float)) ||
                 memcmp(o.s, job->expected->s, o.s_count * sizeof(float)) ||
                 memcmp(o.w, job->expected->w, o.s_count * sizeof(float)) ||
                 memcmp(o.lse, job->expected->lse, o.lse_count * sizeof(float))) {
        snprintf(job->message, sizeof job->message, "repeat %d differs from the serial run", r);
        job->failures++;
      }
    }
    attn_test_out_free(&o);
  }
  attn_context_destroy(ctx);
  return NULL;
}

static void setup(void) {
  static const int32_t SET_M[3] = {40, 3, 17};
  static const int32_t SET_N[3] = {900, 2, 130};
  attn_test_spec_t spec = attn_test_spec(3, 0, 0, 19);
  spec.set_m = SET_M;
  spec.set_n = SET_N;
  spec.kind = ATTN_SCORE_GENERAL;
  spec.outliers = 0.02;
  attn_test_problem_init(&problem, &spec);
  nbackends = attn_test_backends(backends);
  for (int i = 0; i < nbackends; i++) {
    attn_test_out_init(&expected[i], &problem, 1, 1, 1);
    attn_test_run_on(backends[i], &problem, ATTN_TEST_FORWARD, ATTN_TEST_HOST_CALLS, NULL, NULL,
                     &expected[i]);
  }
}

static void teardown(void) {
  for (int i = 0; i < nbackends; i++)
    attn_test_out_free(&expected[i]);
  attn_test_problem_free(&problem);
}

START_TEST(test_threads_bit_identical) {
  pthread_t tids[THREADS];
  job_t jobs[THREADS];
  memset(jobs, 0, sizeof jobs);
  for (int t = 0; t < THREADS; t++) {
    jobs[t].index = t;
    jobs[t].backend = backends[t % nbackends];
    jobs[t].expected = &expected[t % nbackends];
    ck_assert_int_eq(pthread_create(&tids[t], NULL, run_job, &jobs[t]), 0);
  }
  for (int t = 0; t < THREADS; t++)
    ck_assert_int_eq(pthread_join(tids[t], NULL), 0);
  for (int t = 0; t < THREADS; t++)
    ck_assert_msg(jobs[t].failures == 0, "thread %d (%s): %s", t,
                  attn_backend_name(jobs[t].backend), jobs[t].message);
}
END_TEST

/* attn_create_error() is per thread: a failure on one thread leaves another's message alone. */
static void *failing_create(void *arg) {
  attn_options_t opts = attn_default_options();
  attn_context_t *ctx = NULL;
  opts.backend = (attn_backend_t)77;
  int *ok = arg;
  *ok = attn_context_create(&opts, &ctx) == ATTN_ERR_INVALID_ARG && strlen(attn_create_error()) > 0;
  return NULL;
}

START_TEST(test_create_error_per_thread) {
  attn_context_t *ctx = attn_test_context(ATTN_BACKEND_CPU);
  ck_assert_str_eq(attn_create_error(), "");
  pthread_t tid;
  int ok = 0;
  ck_assert_int_eq(pthread_create(&tid, NULL, failing_create, &ok), 0);
  ck_assert_int_eq(pthread_join(tid, NULL), 0);
  ck_assert_int_eq(ok, 1);
  ck_assert_str_eq(attn_create_error(), "");
  attn_context_destroy(ctx);
}
END_TEST

static Suite *make_threads_suite(void) {
  Suite *s = suite_create("threads");
  TCase *tc = tcase_create("independent contexts");
  tcase_set_timeout(tc, 300);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_threads_bit_identical);
  tcase_add_test(tc, test_create_error_per_thread);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return attn_test_main(make_threads_suite());
}
