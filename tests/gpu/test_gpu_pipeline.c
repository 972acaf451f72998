/*
 * test_gpu_pipeline.c - the CUDA backend inside a user's CUDA pipeline: the caller's stream
 * already holding the work that produces the inputs, a forward call captured in a CUDA Graph and
 * replayed after only the device-side lengths and offsets changed, and two host threads each
 * with its own context. Uses the CUDA runtime directly; exits 77 without a usable device.
 */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gpu_util.h"

#define CUDA_OK(call)                                                                              \
  do {                                                                                             \
    cudaError_t err_ = (call);                                                                     \
    ck_assert_msg(err_ == cudaSuccess, "%s: %s", #call, cudaGetErrorString(err_));                 \
  } while (0)

/* Device copies of a test problem's inputs and outputs, owned by this file (cudaMalloc). */
typedef struct dev_copy {
  const attn_test_problem_t *p;
  void *qo, *ao, *len, *q, *a, *v, *c, *s, *w, *lse;
  void *sw, *swq, *swa, *shv; /* score parameters */
  attn_shape_t shape;
  attn_score_t score;
  attn_inputs_t in;
  attn_outputs_t out;
} dev_copy_t;

static void *dev_alloc(size_t bytes) {
  void *x = NULL;
  CUDA_OK(cudaMalloc(&x, bytes ? bytes : 4));
  return x;
}

static void *dev_upload(const void *host, size_t bytes) {
  if (!host) return NULL;
  void *x = dev_alloc(bytes);
  CUDA_OK(cudaMemcpy(x, host, bytes, cudaMemcpyHostToDevice));
  return x;
}

/* Copies p's inputs and score parameters to the device (queries left uninitialised when
 * skip_queries) and sets up outputs filled with the sentinel. */
static void dev_copy_init(dev_copy_t *d, const attn_test_problem_t *p, int skip_queries) {
  const size_t f = sizeof(float), nb = (size_t)p->shape.batch;
  float *sentinel = attn_test_calloc(p->s_count + p->c_count + p->lse_count + 1, f);
  attn_test_fill_sentinel(sentinel, p->s_count + p->c_count + p->lse_count + 1);
  memset(d, 0, sizeof *d);
  d->p = p;
  d->qo = dev_upload(p->qoff, (nb + 1) * sizeof(int32_t));
  d->ao = dev_upload(p->aoff, (nb + 1) * sizeof(int32_t));
  d->len = dev_upload(p->lengths, nb * sizeof(int32_t));
  d->q = skip_queries ? dev_alloc(p->q_count * f) : dev_upload(p->q, p->q_count * f);
  d->a = dev_upload(p->a, p->a_count * f);
  d->v = dev_upload(p->v, p->v_count * f);
  d->c = dev_upload(sentinel, p->c_count * f);
  d->s = dev_upload(sentinel, p->s_count * f);
  d->w = dev_upload(sentinel, p->s_count * f);
  d->lse = dev_upload(sentinel, p->lse_count * f);
  free(sentinel);
  d->sw = dev_upload(p->w, p->w_count * f);
  d->swq = dev_upload(p->wq, p->wq_count * f);
  d->swa = dev_upload(p->wa, p->wa_count * f);
  d->shv = dev_upload(p->hv, p->hv_count * f);
  d->score = p->score;
  if (p->w) d->score.w = d->sw;
  if (p->wq) {
    d->score.wq = d->swq;
    d->score.wa = d->swa;
    d->score.v = d->shv;
  }
  d->shape = p->shape;
  d->shape.query_offsets = d->qo;
  d->shape.annotation_offsets = d->ao;
  d->shape.lengths = d->len;
  d->in.queries = attn_cmat(d->q, p->mq.ld, p->mq.stride);
  d->in.annotations = attn_cmat(d->a, p->ma.ld, p->ma.stride);
  d->in.values = d->v ? attn_cmat(d->v, p->mv.ld, p->mv.stride) : attn_cmat(NULL, 0, 0);
  d->out.context = attn_mat(d->c, p->ldc, p->stc);
  d->out.scores = attn_mat(d->s, p->lds, p->sts);
  d->out.weights = attn_mat(d->w, p->lds, p->sts);
  d->out.lse = d->lse;
}

static void dev_copy_download(const dev_copy_t *d, attn_test_out_t *o) {
  const size_t f = sizeof(float);
  CUDA_OK(cudaMemcpy(o->c, d->c, d->p->c_count * f, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(o->s, d->s, d->p->s_count * f, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(o->w, d->w, d->p->s_count * f, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(o->lse, d->lse, d->p->lse_count * f, cudaMemcpyDeviceToHost));
}

static void dev_copy_free(dev_copy_t *d) {
  void *all[] = {d->qo, d->ao, d->len, d->q,  d->a,   d->v,   d->c,
                 d->s,  d->w,  d->lse, d->sw, d->swq, d->swa, d->shv};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    CUDA_OK(cudaFree(all[i]));
}

static const int32_t SET_M[3] = {3, 1, 4};
static const int32_t SET_N[3] = {40, 700, 9};
static const int32_t LENGTHS[3] = {33, 700, 0};

static void varlen_problem(attn_test_problem_t *p, attn_score_kind_t kind, uint64_t seed) {
  attn_test_spec_t s = attn_test_spec(3, 0, 0, 12);
  s.set_m = SET_M;
  s.set_n = SET_N;
  s.lengths = LENGTHS;
  s.kind = kind;
  s.h = kind == ATTN_SCORE_ADDITIVE ? 5 : 0;
  s.seed = seed;
  attn_test_problem_init(p, &s);
}

static void expect_reference(const attn_test_problem_t *p, const attn_test_out_t *o,
                             const char *what) {
  attn_test_out_t ref;
  gpu_reference(p, ATTN_TEST_FORWARD, NULL, NULL, &ref);
  attn_tols_t tols = attn_test_tols(p);
  ck_assert_msg(attn_test_compare(p, o, &ref, &tols, what) == 0, "%s mismatches", what);
  attn_test_out_free(&ref);
}

/* The queries arrive through a copy queued on the caller's stream behind a long memset; attn
 * must order its work after them without being told anything but the stream. */
START_TEST(test_stream_with_pending_work) {
  const attn_algo_t algo = _i == 0 ? ATTN_ALGO_AUTO : ATTN_ALGO_SIMPLE;
  attn_test_problem_t p;
  varlen_problem(&p, ATTN_SCORE_GENERAL, 11);
  dev_copy_t d;
  dev_copy_init(&d, &p, 1);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  float *pinned = NULL;
  const size_t qbytes = p.q_count * sizeof(float);
  CUDA_OK(cudaMallocHost((void **)&pinned, qbytes));
  memcpy(pinned, p.q, qbytes);
  const size_t busy_bytes = (size_t)1 << 30;
  void *busy = dev_alloc(busy_bytes);

  attn_context_t *ctx = gpu_context(algo);
  ck_assert_int_eq(attn_context_set_stream(ctx, stream), ATTN_OK);
  CUDA_OK(cudaMemsetAsync(busy, 1, busy_bytes, stream));
  CUDA_OK(cudaMemcpyAsync(d.q, pinned, qbytes, cudaMemcpyHostToDevice, stream));
  attn_status_t st = attn_forward(ctx, &d.shape, &d.score, &d.in, &d.out);
  ck_assert_msg(st == ATTN_OK, "forward: %s", attn_context_last_error(ctx));
  ck_assert_int_eq(attn_context_synchronize(ctx), ATTN_OK);

  attn_test_out_t o;
  attn_test_out_init(&o, &p, 1, 1, 1);
  dev_copy_download(&d, &o);
  expect_reference(&p, &o, "forward on a busy stream");
  attn_test_out_free(&o);
  attn_context_destroy(ctx);
  CUDA_OK(cudaFree(busy));
  CUDA_OK(cudaFreeHost(pinned));
  CUDA_OK(cudaStreamDestroy(stream));
  dev_copy_free(&d);
  attn_test_problem_free(&p);
}
END_TEST

/* Capture one forward call (after attn_context_reserve), replay it, then change only the
 * device-side lengths and offsets and replay again: both replays match the reference. */
START_TEST(test_graph_capture_replay) {
  static const attn_algo_t algos[] = {ATTN_ALGO_AUTO, ATTN_ALGO_SIMPLE, ATTN_ALGO_GEMM};
  const attn_algo_t algo = algos[_i / 4];
  const attn_score_kind_t kind = (attn_score_kind_t)(_i % 4);
  attn_test_problem_t p, p2;
  varlen_problem(&p, kind, 21);
  dev_copy_t d;
  dev_copy_init(&d, &p, 0);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  attn_context_t *ctx = gpu_context(algo);
  ck_assert_int_eq(attn_context_set_stream(ctx, stream), ATTN_OK);
  ck_assert_int_eq(attn_context_reserve(ctx, &d.shape, &d.score), ATTN_OK);
  ck_assert_int_eq(attn_context_synchronize(ctx), ATTN_OK);

  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  attn_status_t st = attn_forward(ctx, &d.shape, &d.score, &d.in, &d.out);
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  ck_assert_msg(st == ATTN_OK, "forward under capture: %s", attn_context_last_error(ctx));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));

  attn_test_out_t o;
  attn_test_out_init(&o, &p, 1, 1, 1);
  CUDA_OK(cudaGraphLaunch(exec, stream));
  ck_assert_int_eq(attn_context_synchronize(ctx), ATTN_OK);
  dev_copy_download(&d, &o);
  expect_reference(&p, &o, "graph replay");
  attn_test_out_free(&o);

  /* Same totals, other split and other masks: rewrite only the device-side arrays. */
  static const int32_t m2[3] = {1, 5, 2}, n2[3] = {700, 40, 9}, len2[3] = {699, 0, 9};
  attn_test_spec_t s2 = p.spec;
  s2.set_m = m2;
  s2.set_n = n2;
  s2.lengths = len2;
  attn_test_problem_init(&p2, &s2);
  ck_assert_int_eq(p2.q_count, p.q_count);
  ck_assert_int_eq(p2.a_count, p.a_count);
  memcpy(p2.q, p.q, p.q_count * sizeof(float)); /* the same data, seen through new offsets */
  memcpy(p2.a, p.a, p.a_count * sizeof(float));
  if (p.w) memcpy(p2.w, p.w, p.w_count * sizeof(float));
  if (p.wq) {
    memcpy(p2.wq, p.wq, p.wq_count * sizeof(float));
    memcpy(p2.wa, p.wa, p.wa_count * sizeof(float));
    memcpy(p2.hv, p.hv, p.hv_count * sizeof(float));
  }
  CUDA_OK(cudaMemcpy(d.qo, p2.qoff, 4 * sizeof(int32_t), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d.ao, p2.aoff, 4 * sizeof(int32_t), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d.len, p2.lengths, 3 * sizeof(int32_t), cudaMemcpyHostToDevice));
  attn_test_out_init(&o, &p2, 1, 1, 1);
  CUDA_OK(cudaMemcpy(d.c, o.c, p2.c_count * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d.s, o.s, p2.s_count * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d.w, o.w, p2.s_count * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(d.lse, o.lse, p2.lse_count * sizeof(float), cudaMemcpyHostToDevice));
  d.p = &p2;
  CUDA_OK(cudaGraphLaunch(exec, stream));
  ck_assert_int_eq(attn_context_synchronize(ctx), ATTN_OK);
  dev_copy_download(&d, &o);
  expect_reference(&p2, &o, "graph replay with new offsets and lengths");
  attn_test_out_free(&o);

  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
  attn_context_destroy(ctx);
  CUDA_OK(cudaStreamDestroy(stream));
  dev_copy_free(&d);
  attn_test_problem_free(&p2);
  attn_test_problem_free(&p);
}
END_TEST

/* Two host threads, each with its own context and problem, computing at the same time. */
typedef struct worker {
  const attn_test_problem_t *p;
  attn_test_out_t out[3];
  attn_status_t status;
  char message[256];
} worker_t;

static void *work(void *arg) {
  worker_t *w = arg;
  attn_options_t opts = attn_default_options();
  attn_context_t *ctx = NULL;
  opts.backend = ATTN_BACKEND_CUDA;
  w->status = attn_context_create(&opts, &ctx);
  if (w->status != ATTN_OK) {
    snprintf(w->message, sizeof w->message, "create: %s", attn_create_error());
    return NULL;
  }
  for (int r = 0; r < 3 && w->status == ATTN_OK; r++) {
    w->status =
        attn_test_run(ctx, w->p, ATTN_TEST_FORWARD, ATTN_TEST_HOST_CALLS, NULL, NULL, &w->out[r]);
    if (w->status != ATTN_OK)
      snprintf(w->message, sizeof w->message, "run %d: %s", r, attn_context_last_error(ctx));
  }
  attn_context_destroy(ctx);
  return NULL;
}

START_TEST(test_two_threads) {
  attn_test_problem_t p[2];
  worker_t w[2];
  pthread_t t[2];
  varlen_problem(&p[0], ATTN_SCORE_DOT, 31);
  varlen_problem(&p[1], ATTN_SCORE_ADDITIVE, 32);
  for (int k = 0; k < 2; k++) {
    memset(&w[k], 0, sizeof w[k]);
    w[k].p = &p[k];
    for (int r = 0; r < 3; r++)
      attn_test_out_init(&w[k].out[r], &p[k], 1, 1, 1);
  }
  for (int k = 0; k < 2; k++)
    ck_assert_int_eq(pthread_create(&t[k], NULL, work, &w[k]), 0);
  for (int k = 0; k < 2; k++)
    ck_assert_int_eq(pthread_join(t[k], NULL), 0);
  for (int k = 0; k < 2; k++) {
    ck_assert_msg(w[k].status == ATTN_OK, "thread %d: %s", k, w[k].message);
    char what[64];
    snprintf(what, sizeof what, "thread %d", k);
    expect_reference(&p[k], &w[k].out[0], what);
    for (int r = 1; r < 3; r++) {
      snprintf(what, sizeof what, "thread %d run %d vs run 0", k, r);
      ck_assert_msg(attn_test_compare(&p[k], &w[k].out[r], &w[k].out[0], NULL, what) == 0,
                    "%s differs", what);
    }
    for (int r = 0; r < 3; r++)
      attn_test_out_free(&w[k].out[r]);
    attn_test_problem_free(&p[k]);
  }
}
END_TEST

static Suite *gpu_pipeline_suite(void) {
  Suite *s = suite_create("gpu_pipeline");
  TCase *tc = tcase_create("pipeline");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_stream_with_pending_work, 0, 2);
  tcase_add_loop_test(tc, test_graph_capture_replay, 0, 12);
  tcase_add_test(tc, test_two_threads);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (!gpu_usable()) return GPU_SKIP;
  return attn_test_main(gpu_pipeline_suite());
}
