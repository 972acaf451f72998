/*
 * gpu_bench.c - attn_forward on a GPU against the same run's hardware limits (bench/README.md).
 *
 * For each shape of issue 6 (the walkthrough's d = 3, n = 4 with 10^6 queries; decode-style
 * 4096 sets x n = 1024 x d = 128, one query each; shared annotations 8192 x 1024 x 512; a long
 * set of 32768 x 128 with 16 queries) and each algorithm (AUTO, FUSED, ROWS, GEMM, and SIMPLE
 * under a time cap) it times attn_forward through the public API only: dot score, values = the
 * annotations, context only, inputs in device buffers (attn_buffer_alloc / upload), workspace
 * reserved first, every call on one stream of the program's own.
 *
 * Method:
 *   - CUDA events around each call; before each call a flush passes over a buffer of twice the
 *     L2 size (cudaDevAttrL2CacheSize), so no call finds its inputs in L2; medians (and minima)
 *     over --reps calls (>= 10, default 20), after one untimed checked call. The flush reads the
 *     buffer (cublasSasum into one float on the device: --flush read, the default), so that it
 *     leaves the L2 holding clean lines, as a cold cache does; --flush write (cudaMemsetAsync,
 *     the method of the runs before 2026-11-27) leaves it full of dirty lines, one written back
 *     for each line the timed call brings in (so up to the call's own bytes again, at most the
 *     L2's size), which weighs on small calls (the walkthrough moves 24 MB) and not on the 1 GiB
 *     copy they are compared with. --cpu records "none".
 *   - bytes: queries + annotations read once + context written (fp32); FLOPs: 4 m n d per set
 *     (scores and context, a multiply and an add each).
 *   - copy: cudaMemcpyAsync device to device of 1 GiB (less when memory is short), counting the
 *     bytes read plus the bytes written (2 x size per copy), median of --reps.
 *   - cuBLAS: the same two products on the same buffers, S = Q A^T [m x n, k = d] then
 *     C = S A [m x d, k = n] (no softmax in between), cublasSgemm for one set and
 *     cublasSgemmStridedBatched for the batched decode shape (one query per set: GEMV-like),
 *     CUBLAS_DEFAULT_MATH (fp32, no TF32); "x cuBLAS" = cuBLAS's time / attn's time.
 *   - check: the context of the checked call (the output buffer is filled with NaN first) is
 *     compared with the REFERENCE backend on sampled sets and rows (up to 64 sets, 256 rows),
 *     within tests/tolerance.h's tolerance; a fast but wrong algorithm shows FAIL and makes the
 *     exit status 1.
 *
 * Tuning: --dims runs shapes of one's own (BxMxNxD), and --plans adds a row per flash plan
 * forced through ATTN_CU_FLASH (cuda/flash.cu) beside AUTO: the figures the dispatcher's
 * thresholds are set from (bench/gpu-sweep.sh runs them). The last plans, tc and splittc, are
 * the tensor-core kernel, an arithmetic of its own that AUTO never runs (cuda/flash_plans.h).
 *
 * Output: a markdown table, then
 *   summary: decode_copy_fraction=X walkthrough_copy_fraction=Y shared_sgemm_fraction=Z
 * for ATTN_ALGO_AUTO; --json FILE writes every figure as JSON (bench/gpu-vs-torch.sh reads it).
 * Exit status: 0 done and every check passed; 1 a check failed or attn returned an error;
 * 2 usage; 77 no usable CUDA device (nothing measured).
 *
 * --cpu runs the same program on attn's CPU backend (wall-clock timing, no copy or cuBLAS
 * figures): it tests the benchmark itself on machines without a GPU; its times are not GPU
 * results. --small shrinks every shape (for quick runs; the summary then is not issue 6's).
 */
#include "attn.h"
#include "bench_stats.h"
#include "flash_plans.h"
#include "tolerance.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_SKIP     77
#define MAX_REPS      1000
#define SAMPLE_SETS   64
#define SAMPLE_ROWS   256
#define COPY_BYTES    ((size_t)1 << 30)
#define SIMPLE_CAP_MS 100.0
#define MSG_LEN       320
#define ISSUE_SHAPES  4
#define MAX_DIMS      64
#define MAX_SHAPES    (ISSUE_SHAPES + MAX_DIMS)
#define MAX_ALGOS     5
#define MAX_PLANS     17
#define MAX_ROWS      (MAX_ALGOS + MAX_PLANS)

/* ------------------------------------------------------------------------------------------ */
/* Shapes and algorithms                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct shape_def {
  const char *name;
  int64_t batch, m, n, d; /* batch > 1: each set has its own queries and annotations */
} shape_def_t;

static const shape_def_t full_shapes[ISSUE_SHAPES] = {
    {"walkthrough", 1, 1000000, 4, 3},
    {"decode", 4096, 1, 1024, 128},
    {"shared", 1, 8192, 1024, 512},
    {"long", 1, 16, 32768, 128},
};
static const shape_def_t small_shapes[ISSUE_SHAPES] = {
    {"walkthrough", 1, 10000, 4, 3},
    {"decode", 64, 1, 1024, 128},
    {"shared", 1, 256, 1024, 512},
    {"long", 1, 16, 4096, 128},
};

typedef struct algo_def {
  const char *name;
  attn_algo_t algo;
} algo_def_t;

static const algo_def_t algos[MAX_ALGOS] = {
    {"auto", ATTN_ALGO_AUTO}, {"fused", ATTN_ALGO_FUSED},   {"rows", ATTN_ALGO_ROWS},
    {"gemm", ATTN_ALGO_GEMM}, {"simple", ATTN_ALGO_SIMPLE},
};

/* --plans: FUSED with one flash plan forced through the CUDA backend's test variable
 * ATTN_CU_FLASH (cuda/flash.cu), strictly ("name!"), so that a plan that cannot run a shape
 * reports so instead of running another plan. */
#define PLAN_PREFIX "fused:"
/* The plans, in the order of their rows (cuda/flash_plans.h): those that give the same bits,
 * then the tensor-core plans, an arithmetic of their own that AUTO never runs. */
#define PLAN_ALGO(name, variant, tile, split) {PLAN_PREFIX #name, ATTN_ALGO_FUSED},
#define PLAN_NAME(name, variant, tile, split) #name,
#define PLAN_ONE(name, variant, tile, split)  +1
static const algo_def_t plan_algos[MAX_PLANS] = {ATTN_FLASH_PLANS(PLAN_ALGO)
                                                     ATTN_FLASH_TC_PLANS(PLAN_ALGO)};
static const char *const plan_names[] = {ATTN_FLASH_PLANS(PLAN_NAME)
                                             ATTN_FLASH_TC_PLANS(PLAN_NAME)};
enum { SAME_BITS_PLANS = 0 ATTN_FLASH_PLANS(PLAN_ONE) };
_Static_assert(sizeof plan_names / sizeof *plan_names == MAX_PLANS, "MAX_PLANS counts the plans");

/* ------------------------------------------------------------------------------------------ */
/* Results                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* ROW_NA: a forced flash plan (--plans) that cannot run the shape; not a failure. */
typedef enum row_status { ROW_OK, ROW_ERROR, ROW_CAPPED, ROW_NA } row_status_t;

typedef struct row {
  const algo_def_t *algo;
  row_status_t status;
  double median_ms, min_ms, first_ms; /* NAN when not measured */
  int checked;                        /* 1 when the check ran */
  int64_t check_bad, check_total;
  double check_worst; /* largest |x - ref| / allowed over the sampled entries */
  char message[MSG_LEN];
} row_t;

typedef struct shape_result {
  const shape_def_t *shape;
  int ran;
  double bytes, flops;
  double cublas_ms; /* NAN when not measured */
  char cublas_message[MSG_LEN];
  int nrows;
  row_t rows[MAX_ROWS];
} shape_result_t;

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                              */
/* ------------------------------------------------------------------------------------------ */

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) {
    fprintf(stderr, "gpu_bench: out of host memory (%zu bytes)\n", bytes);
    exit(1);
  }
  return p;
}

/* Infrastructure CUDA calls (the program's own stream, events, flush, copy): a failure there
 * leaves nothing to measure, so it ends the program. */
static void cuda_or_die(cudaError_t err, const char *what) {
  if (err != cudaSuccess) {
    fprintf(stderr, "gpu_bench: %s: %s (%s)\n", what, cudaGetErrorName(err),
            cudaGetErrorString(err));
    exit(1);
  }
}

static const char *cublas_name(cublasStatus_t st) {
  switch (st) {
  case CUBLAS_STATUS_SUCCESS:
    return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED:
    return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED:
    return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE:
    return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH:
    return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR:
    return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED:
    return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR:
    return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED:
    return "CUBLAS_STATUS_NOT_SUPPORTED";
  default:
    return "cuBLAS error";
  }
}

/* Uniform floats in [-r, r] (a 64-bit LCG, fixed seed per array). */
static void fill_uniform(float *x, size_t count, float r, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  for (size_t i = 0; i < count; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = r * (2.0f * (float)((double)(s >> 40) * (1.0 / 16777216.0)) - 1.0f);
  }
}

/* 1 when `name` is in the comma-separated `list` (NULL list: everything). */
static int in_list(const char *list, const char *name) {
  if (!list) return 1;
  size_t len = strlen(name);
  for (const char *p = list; *p;) {
    const char *end = strchr(p, ',');
    size_t l = end ? (size_t)(end - p) : strlen(p);
    if (l == len && strncmp(p, name, len) == 0) return 1;
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

/* 1 when every name of the comma-separated `list` is one of names[0..count-1]. */
static int list_valid(const char *list, const char *const *names, int count) {
  for (const char *p = list; *p;) {
    const char *end = strchr(p, ',');
    size_t l = end ? (size_t)(end - p) : strlen(p);
    int found = 0;
    for (int i = 0; i < count; i++)
      if (strlen(names[i]) == l && strncmp(p, names[i], l) == 0) found = 1;
    if (!found) return 0;
    if (!end) break;
    p = end + 1;
  }
  return 1;
}

/* Checks the value v of option opt against names; on a bad one says which are known ("what" is
 * "a plan", "an algorithm", ...) and returns 0. */
static int list_option(const char *opt, const char *what, const char *v, const char *const *names,
                       int count) {
  if (list_valid(v, names, count)) return 1;
  fprintf(stderr, "gpu_bench: %s: '%s' names %s other than ", opt, v, what);
  for (int i = 0; i < count; i++)
    fprintf(stderr, "%s%s", i ? ", " : "", names[i]);
  fputc('\n', stderr);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Timing: CUDA events on the program's stream (GPU), or the wall clock (--cpu)                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct timer {
  int gpu;             /* 0 in --cpu mode */
  cudaStream_t stream; /* the stream every context and cuBLAS run on */
  int flush_write;     /* --flush write: memset the buffer; else read it (cublasSasum) */
  void *flush;         /* passed over before every timed call */
  size_t flush_bytes;
  unsigned flush_value;      /* --flush write: the byte written, a new one each time */
  cublasHandle_t flush_blas; /* --flush read: device pointer mode, on the timing stream */
  float *flush_sum;          /* ... its result, on the device */
  cudaEvent_t ev[2 * (MAX_REPS + 1)];
} bench_timer_t;

typedef int (*op_fn)(void *arg); /* queues one operation; nonzero on failure */

static void flush_l2(bench_timer_t *t) {
  if (!t->gpu) return;
  if (t->flush_write) {
    t->flush_value = (t->flush_value + 1) & 0xff;
    cuda_or_die(cudaMemsetAsync(t->flush, (int)t->flush_value, t->flush_bytes, t->stream),
                "L2 flush (cudaMemsetAsync)");
    return;
  }
  const cublasStatus_t bs = cublasSasum(t->flush_blas, (int)(t->flush_bytes / sizeof(float)),
                                        (const float *)t->flush, 1, t->flush_sum);
  if (bs != CUBLAS_STATUS_SUCCESS) {
    fprintf(stderr, "gpu_bench: L2 flush (cublasSasum): %s\n", cublas_name(bs));
    exit(1);
  }
}

/* After a failed operation: 1 when the device is left in a sticky error state. */
static int device_broken(bench_timer_t *t) {
  if (!t->gpu) return 0;
  (void)cudaGetLastError();
  return cudaDeviceSynchronize() != cudaSuccess;
}

/* Runs op `reps` times, each after an L2 flush, and stores each call's milliseconds in ms[].
 * Returns 0, or the op's failure (the stream is drained first), or -1 when the device reported
 * an error while the calls ran (then err holds it). */
static int time_op(bench_timer_t *t, op_fn op, void *arg, int reps, double *ms, cudaError_t *err) {
  *err = cudaSuccess;
  if (!t->gpu) {
    for (int i = 0; i < reps; i++) {
      double t0 = bench_now();
      int rc = op(arg);
      if (rc) return rc;
      ms[i] = 1e3 * (bench_now() - t0);
    }
    return 0;
  }
  for (int i = 0; i < reps; i++) {
    flush_l2(t);
    cuda_or_die(cudaEventRecord(t->ev[2 * i], t->stream), "cudaEventRecord");
    int rc = op(arg);
    if (rc) {
      (void)cudaStreamSynchronize(t->stream);
      return rc;
    }
    cuda_or_die(cudaEventRecord(t->ev[2 * i + 1], t->stream), "cudaEventRecord");
  }
  *err = cudaEventSynchronize(t->ev[2 * reps - 1]);
  if (*err != cudaSuccess) return -1;
  for (int i = 0; i < reps; i++) {
    float f = 0.0f;
    *err = cudaEventElapsedTime(&f, t->ev[2 * i], t->ev[2 * i + 1]);
    if (*err != cudaSuccess) return -1;
    ms[i] = (double)f;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Copy bandwidth                                                                             */
/* ------------------------------------------------------------------------------------------ */

typedef struct copy_arg {
  void *dst;
  const void *src;
  size_t bytes;
  cudaStream_t stream;
} copy_arg_t;

static int op_copy(void *p) {
  copy_arg_t *c = p;
  cuda_or_die(cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, c->stream),
              "cudaMemcpyAsync (copy bandwidth)");
  return 0;
}

/* Device-to-device copy bandwidth in GB/s, bytes read + bytes written; *bytes_out the size. */
static double copy_gbps(bench_timer_t *t, int reps, size_t *bytes_out) {
  size_t free_b = 0, total_b = 0, bytes = COPY_BYTES;
  cuda_or_die(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  if (bytes > free_b / 4) bytes = (free_b / 4) & ~(size_t)0xfffff;
  copy_arg_t c = {NULL, NULL, bytes, t->stream};
  void *src = NULL;
  cuda_or_die(cudaMalloc(&src, bytes), "cudaMalloc (copy source)");
  cuda_or_die(cudaMalloc(&c.dst, bytes), "cudaMalloc (copy destination)");
  c.src = src;
  cuda_or_die(cudaMemsetAsync(src, 1, bytes, t->stream), "cudaMemsetAsync");
  cuda_or_die(cudaMemsetAsync(c.dst, 0, bytes, t->stream), "cudaMemsetAsync");
  op_copy(&c); /* warm-up */
  double *ms = xmalloc((size_t)reps * sizeof(double));
  cudaError_t err;
  if (time_op(t, op_copy, &c, reps, ms, &err) != 0) cuda_or_die(err, "timing the copy");
  double med = bench_median(ms, reps);
  free(ms);
  cuda_or_die(cudaFree(src), "cudaFree");
  cuda_or_die(cudaFree(c.dst), "cudaFree");
  *bytes_out = bytes;
  return 2.0 * (double)bytes / (med * 1e-3) / 1e9;
}

/* ------------------------------------------------------------------------------------------ */
/* cuBLAS: the same two products                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct blas_arg {
  cublasHandle_t h;
  const shape_def_t *s;
  const float *q, *a;
  float *scores, *context;
  cublasStatus_t st;
} blas_arg_t;

/* Row-major X [r x c] is column-major X^T [c x r]. S = Q A^T row-major is S^T = A Q^T
 * column-major: gemm(T, N, n, m, d, A [d x n], Q [d x m]) -> S^T [n x m], ld n. C = S A
 * row-major is C^T = A^T S^T: gemm(N, N, d, m, n, A^T [d x n], S^T [n x m]) -> C^T [d x m]. */
static int op_blas(void *p) {
  blas_arg_t *b = p;
  const float one = 1.0f, zero = 0.0f;
  int m = (int)b->s->m, n = (int)b->s->n, d = (int)b->s->d, batch = (int)b->s->batch;
  if (batch == 1) {
    b->st = cublasSgemm(b->h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, d, &one, b->a, d, b->q, d, &zero,
                        b->scores, n);
    if (b->st != CUBLAS_STATUS_SUCCESS) return 1;
    b->st = cublasSgemm(b->h, CUBLAS_OP_N, CUBLAS_OP_N, d, m, n, &one, b->a, d, b->scores, n, &zero,
                        b->context, d);
  } else {
    long long sq = (long long)m * d, sa = (long long)n * d, ss = (long long)m * n;
    b->st = cublasSgemmStridedBatched(b->h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, d, &one, b->a, d, sa,
                                      b->q, d, sq, &zero, b->scores, n, ss, batch);
    if (b->st != CUBLAS_STATUS_SUCCESS) return 1;
    b->st = cublasSgemmStridedBatched(b->h, CUBLAS_OP_N, CUBLAS_OP_N, d, m, n, &one, b->a, d, sa,
                                      b->scores, n, ss, &zero, b->context, d, sq, batch);
  }
  return b->st != CUBLAS_STATUS_SUCCESS;
}

/* Median milliseconds of cuBLAS's two products on the shape, or NAN (message in msg). */
static double time_cublas(bench_timer_t *t, cublasHandle_t h, const shape_def_t *sh, const float *q,
                          const float *a, int reps, char *msg) {
  size_t sbytes = (size_t)(sh->batch * sh->m * sh->n) * sizeof(float);
  size_t cbytes = (size_t)(sh->batch * sh->m * sh->d) * sizeof(float);
  blas_arg_t b = {h, sh, q, a, NULL, NULL, CUBLAS_STATUS_SUCCESS};
  double result = NAN;
  cudaError_t err = cudaMalloc((void **)&b.scores, sbytes);
  if (err == cudaSuccess) err = cudaMalloc((void **)&b.context, cbytes);
  if (err != cudaSuccess) {
    snprintf(msg, MSG_LEN, "cudaMalloc for cuBLAS's scores and context: %s", cudaGetErrorName(err));
  } else if (op_blas(&b) != 0) { /* warm-up (and heuristics) */
    snprintf(msg, MSG_LEN, "cuBLAS: %s", cublas_name(b.st));
  } else {
    double *ms = xmalloc((size_t)reps * sizeof(double));
    int rc = time_op(t, op_blas, &b, reps, ms, &err);
    if (rc == 0) {
      result = bench_median(ms, reps);
    } else if (rc > 0) {
      snprintf(msg, MSG_LEN, "cuBLAS: %s", cublas_name(b.st));
    } else {
      snprintf(msg, MSG_LEN, "CUDA error during cuBLAS: %s", cudaGetErrorName(err));
    }
    free(ms);
  }
  (void)cudaStreamSynchronize(t->stream);
  if (b.scores) (void)cudaFree(b.scores);
  if (b.context) (void)cudaFree(b.context);
  return result;
}

/* ------------------------------------------------------------------------------------------ */
/* attn                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct attn_arg {
  attn_context_t *ctx;
  const attn_shape_t *shape;
  attn_inputs_t in;
  attn_outputs_t out;
  attn_status_t st;
} attn_arg_t;

static int op_attn(void *p) {
  attn_arg_t *r = p;
  r->st = attn_forward(r->ctx, r->shape, NULL, &r->in, &r->out);
  return r->st != ATTN_OK;
}

/* Which sets and rows are checked: sets 0, set_step, ...; in each, rows 0, row_step, ... */
typedef struct sample {
  int64_t sets, set_step, rows, row_step;
} sample_t;

static sample_t make_sample(const shape_def_t *s) {
  sample_t p;
  p.sets = s->batch < SAMPLE_SETS ? s->batch : SAMPLE_SETS;
  p.set_step = s->batch / p.sets;
  p.rows = s->m < SAMPLE_ROWS ? s->m : SAMPLE_ROWS;
  p.row_step = s->m / p.rows;
  return p;
}

/* Compares the sampled entries of c (the whole context, batch x m x d) with ref (sets x rows x
 * d, packed); fills the row's check fields and prints the first mismatches to stderr. */
static void check_context(const shape_def_t *s, const sample_t *p, const float *c, const float *ref,
                          attn_tol_t tol, row_t *row) {
  int64_t bad = 0, total = 0;
  double worst = 0.0;
  for (int64_t k = 0; k < p->sets; k++) {
    for (int64_t i = 0; i < p->rows; i++) {
      const float *x = c + ((k * p->set_step) * s->m + i * p->row_step) * s->d;
      const float *r = ref + (k * p->rows + i) * s->d;
      for (int64_t j = 0; j < s->d; j++) {
        double allowed = tol.atol + tol.rtol * fabs((double)r[j]);
        double err = fabs((double)x[j] - (double)r[j]);
        int ok = attn_tol_match(x[j], r[j], tol);
        /* err is NaN where x or r is not finite: matching non-finite entries count as 0 */
        double ratio = isfinite(err) ? err / allowed : ok ? 0.0 : INFINITY;
        if (ratio > worst) worst = ratio;
        if (!ok) {
          if (bad < 3) {
            fprintf(stderr,
                    "gpu_bench: %s/%s: context[set %lld][row %lld][%lld] = %.9g, reference "
                    "%.9g (allowed %.3g)\n",
                    s->name, row->algo->name, (long long)(k * p->set_step),
                    (long long)(i * p->row_step), (long long)j, (double)x[j], (double)r[j],
                    allowed);
          }
          bad++;
        }
        total++;
      }
    }
  }
  row->checked = 1;
  row->check_bad = bad;
  row->check_total = total;
  row->check_worst = worst;
}

/* Everything one shape needs on the host and in attn buffers. */
typedef struct shape_data {
  float *q, *a; /* host inputs */
  float *c;     /* host copy of the context */
  float *ref;   /* reference context of the sampled rows */
  attn_buffer_t *qb, *ab, *cb;
  size_t qbytes, abytes, cbytes;
  sample_t sample;
  attn_tol_t tol;
} shape_data_t;

static void set_attn_error(row_t *row, const char *what, attn_status_t st, attn_context_t *ctx) {
  row->status = ROW_ERROR;
  snprintf(row->message, MSG_LEN, "%s: %s: %s", what, attn_status_string(st),
           ctx ? attn_context_last_error(ctx) : "");
}

/* One algorithm on one shape: reserve, one checked call (timed once: SIMPLE's cap), then reps
 * timed calls. Returns 1 when the device is left unusable (stop everything). */
static int run_algo(bench_timer_t *t, attn_context_t *owner, attn_context_t *ctx,
                    const shape_def_t *s, shape_data_t *sd, int reps, double simple_cap_ms,
                    row_t *row) {
  attn_shape_t shape = {s->batch, s->m, s->n, s->d, s->d, NULL, NULL, NULL};
  attn_arg_t arg;
  arg.ctx = ctx;
  arg.shape = &shape;
  arg.in.queries = attn_cmat(attn_buffer_data(sd->qb), s->d, s->m * s->d);
  arg.in.annotations = attn_cmat(attn_buffer_data(sd->ab), s->d, s->n * s->d);
  arg.in.values = attn_cmat(NULL, 0, 0);
  arg.out.context = attn_mat(attn_buffer_data(sd->cb), s->d, s->m * s->d);
  arg.out.scores = attn_mat(NULL, 0, 0);
  arg.out.weights = attn_mat(NULL, 0, 0);
  arg.out.lse = NULL;
  arg.st = ATTN_OK;

  attn_status_t st = attn_context_reserve(ctx, &shape, NULL);
  if (st != ATTN_OK) {
    set_attn_error(row, "attn_context_reserve", st, ctx);
    return st == ATTN_ERR_CUDA_STICKY || device_broken(t);
  }

  /* The checked call: the context starts as NaN, so an output left unwritten fails. */
  memset(sd->c, 0xff, sd->cbytes);
  st = attn_buffer_upload(owner, sd->cb, 0, sd->c, sd->cbytes);
  if (st != ATTN_OK) {
    set_attn_error(row, "attn_buffer_upload (context)", st, owner);
    return st == ATTN_ERR_CUDA_STICKY || device_broken(t);
  }
  double first[1];
  cudaError_t err;
  int rc = time_op(t, op_attn, &arg, 1, first, &err);
  if (rc > 0) {
    set_attn_error(row, "attn_forward", arg.st, ctx);
    return arg.st == ATTN_ERR_CUDA_STICKY || device_broken(t);
  }
  if (rc < 0) {
    row->status = ROW_ERROR;
    snprintf(row->message, MSG_LEN, "CUDA error after attn_forward: %s", cudaGetErrorName(err));
    return device_broken(t);
  }
  st = attn_context_synchronize(ctx);
  if (st != ATTN_OK) {
    set_attn_error(row, "attn_context_synchronize", st, ctx);
    return st == ATTN_ERR_CUDA_STICKY || device_broken(t);
  }
  row->first_ms = first[0];
  st = attn_buffer_download(owner, sd->cb, 0, sd->c, sd->cbytes);
  if (st != ATTN_OK) {
    set_attn_error(row, "attn_buffer_download (context)", st, owner);
    return st == ATTN_ERR_CUDA_STICKY || device_broken(t);
  }
  check_context(s, &sd->sample, sd->c, sd->ref, sd->tol, row);

  if (row->algo->algo == ATTN_ALGO_SIMPLE && first[0] > simple_cap_ms) {
    row->status = ROW_CAPPED;
    snprintf(row->message, MSG_LEN, "not timed: one call took %.1f ms > the %.0f ms cap", first[0],
             simple_cap_ms);
    return 0;
  }

  double *ms = xmalloc((size_t)reps * sizeof(double));
  rc = time_op(t, op_attn, &arg, reps, ms, &err);
  if (rc == 0) {
    st = attn_context_synchronize(ctx);
    if (st != ATTN_OK) {
      free(ms);
      set_attn_error(row, "attn_context_synchronize", st, ctx);
      return st == ATTN_ERR_CUDA_STICKY || device_broken(t);
    }
    row->median_ms = bench_median(ms, reps); /* sorts: ms[0] is the minimum */
    row->min_ms = ms[0];
    row->status = ROW_OK;
    free(ms);
    return 0;
  }
  free(ms);
  if (rc > 0) {
    set_attn_error(row, "attn_forward (timed)", arg.st, ctx);
    return arg.st == ATTN_ERR_CUDA_STICKY || device_broken(t);
  }
  row->status = ROW_ERROR;
  snprintf(row->message, MSG_LEN, "CUDA error during the timed calls: %s", cudaGetErrorName(err));
  return device_broken(t);
}

/* Appends r's row for `algo` and runs it on ctx (NULL: ctx_error says why there is none), with
 * the flash plan `plan` forced strictly when not NULL (a plan that cannot run the shape gives an
 * n/a row, not a failure). Adds the row's failures to *failures; returns run_algo's stop. */
static int run_row(bench_timer_t *t, attn_context_t *owner, attn_context_t *ctx,
                   const char *ctx_error, const algo_def_t *algo, const char *plan,
                   const shape_def_t *s, shape_data_t *sd, int reps, double simple_cap_ms,
                   shape_result_t *r, int *failures) {
  row_t *row = &r->rows[r->nrows++];
  memset(row, 0, sizeof *row);
  row->algo = algo;
  row->median_ms = row->min_ms = row->first_ms = NAN;
  if (!ctx) {
    row->status = ROW_ERROR;
    snprintf(row->message, MSG_LEN, "%s", ctx_error);
    (*failures)++;
    return 0;
  }
  fprintf(stderr, "gpu_bench: %s: attn %s...\n", s->name, algo->name);
  if (plan) {
    char forced[32];
    snprintf(forced, sizeof forced, "%s!", plan);
    setenv("ATTN_CU_FLASH", forced, 1);
  }
  const int stop = run_algo(t, owner, ctx, s, sd, reps, simple_cap_ms, row);
  if (plan) {
    unsetenv("ATTN_CU_FLASH");
    if (row->status == ROW_ERROR && strstr(row->message, "cannot run this call"))
      row->status = ROW_NA;
  }
  if (row->status == ROW_ERROR) (*failures)++;
  if (row->checked && row->check_bad > 0) (*failures)++;
  return stop;
}

/* Allocates and fills a shape's inputs, uploads them, computes the sampled reference. Returns 0,
 * or nonzero with msg set. */
static int prepare_shape(attn_context_t *owner, attn_context_t *refctx, const shape_def_t *s,
                         shape_data_t *sd, char *msg) {
  memset(sd, 0, sizeof *sd);
  size_t qn = (size_t)(s->batch * s->m * s->d), an = (size_t)(s->batch * s->n * s->d);
  sd->qbytes = qn * sizeof(float);
  sd->abytes = an * sizeof(float);
  sd->cbytes = qn * sizeof(float); /* dv == d: the context has the queries' size */
  sd->q = xmalloc(sd->qbytes);
  sd->a = xmalloc(sd->abytes);
  sd->c = xmalloc(sd->cbytes);
  /* Uniform in [-r, r], r = sqrt(3) / d^(1/4): dot scores of unit variance. */
  float r = sqrtf(3.0f) / powf((float)s->d, 0.25f);
  fill_uniform(sd->q, qn, r, 1);
  fill_uniform(sd->a, an, r, 2);
  attn_status_t st;
  if ((st = attn_buffer_alloc(owner, sd->qbytes, &sd->qb)) != ATTN_OK ||
      (st = attn_buffer_alloc(owner, sd->abytes, &sd->ab)) != ATTN_OK ||
      (st = attn_buffer_alloc(owner, sd->cbytes, &sd->cb)) != ATTN_OK ||
      (st = attn_buffer_upload(owner, sd->qb, 0, sd->q, sd->qbytes)) != ATTN_OK ||
      (st = attn_buffer_upload(owner, sd->ab, 0, sd->a, sd->abytes)) != ATTN_OK) {
    snprintf(msg, MSG_LEN, "inputs: %s: %s", attn_status_string(st),
             attn_context_last_error(owner));
    return 1;
  }

  /* The reference on the sampled sets and rows, read in place through ld and stride. */
  sample_t p = make_sample(s);
  sd->sample = p;
  sd->ref = xmalloc((size_t)(p.sets * p.rows * s->d) * sizeof(float));
  attn_shape_t rs = {p.sets, p.rows, s->n, s->d, s->d, NULL, NULL, NULL};
  attn_inputs_t in = {attn_cmat(sd->q, p.row_step * s->d, p.set_step * s->m * s->d),
                      attn_cmat(sd->a, s->d, p.set_step * s->n * s->d), attn_cmat(NULL, 0, 0)};
  attn_outputs_t out = {attn_mat(sd->ref, s->d, p.rows * s->d), attn_mat(NULL, 0, 0),
                        attn_mat(NULL, 0, 0), NULL};
  st = attn_forward(refctx, &rs, NULL, &in, &out);
  if (st != ATTN_OK) {
    snprintf(msg, MSG_LEN, "reference: %s: %s", attn_status_string(st),
             attn_context_last_error(refctx));
    return 1;
  }
  /* Every term |q_i a_ji| <= r^2, so sum_i |q_i a_ji| <= d r^2; every value |v| <= r. */
  sd->tol = attn_tols(s->d, (double)s->d * r * r, s->n, r).context;
  return 0;
}

static void release_shape(attn_context_t *owner, shape_data_t *sd) {
  attn_buffer_free(owner, sd->qb);
  attn_buffer_free(owner, sd->ab);
  attn_buffer_free(owner, sd->cb);
  free(sd->q);
  free(sd->a);
  free(sd->c);
  free(sd->ref);
  memset(sd, 0, sizeof *sd);
}

/* ------------------------------------------------------------------------------------------ */
/* Report                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct run_info {
  int gpu, small, reps;
  char device[256];
  char header[1024];
  double copy_gbps; /* NAN in --cpu mode */
  size_t copy_bytes, flush_bytes, l2_bytes;
  int flush_write; /* --flush write */
  double simple_cap_ms;
} run_info_t;

static double gbps_of(const shape_result_t *r, double ms) {
  return r->bytes / (ms * 1e-3) / 1e9;
}
static double gflops_of(const shape_result_t *r, double ms) {
  return r->flops / (ms * 1e-3) / 1e9;
}

/* A table cell: v with `decimals` decimals, or n/a. */
static void print_cell(double v, int decimals) {
  if (isfinite(v))
    printf(" %.*f |", decimals, v);
  else
    printf(" n/a |");
}

/* A cell's text for a message: '|' would end the cell. */
static void print_text_cell(const char *text) {
  putchar(' ');
  for (const char *p = text; *p; p++)
    putchar(*p == '|' ? '/' : *p);
  printf(" |");
}

static const char *row_check_text(const row_t *row, char *buf, size_t len) {
  if (!row->checked) return "not run";
  if (row->check_bad == 0) {
    snprintf(buf, len, "ok (%.2g of tol)", row->check_worst);
  } else {
    snprintf(buf, len, "**FAIL** %lld/%lld", (long long)row->check_bad,
             (long long)row->check_total);
  }
  return buf;
}

static void print_table_header(void) {
  printf("| shape (batch x m, n, d) | impl | median ms | min ms | GB/s | GFLOP/s | x copy | "
         "x cuBLAS | check |\n");
  printf("|---|---|---:|---:|---:|---:|---:|---:|---|\n");
}

/* --plans: for each shape, the fastest forced plan whose result checked out, beside AUTO, so
 * that a sweep shows at a glance where the dispatcher leaves time (auto / fastest > 1). Only the
 * plans AUTO may choose among count (not the tensor-core ones, whose bits differ). */
static int same_bits_plan(const algo_def_t *algo) {
  for (int j = 0; j < SAME_BITS_PLANS; j++)
    if (algo == &plan_algos[j]) return 1;
  return 0;
}

static void print_fastest_plans(const shape_result_t *results, int nshapes) {
  printf("\nfastest forced plan a shape (auto / fastest above 1: the dispatcher picks slower):\n");
  for (int i = 0; i < nshapes; i++) {
    const shape_result_t *r = &results[i];
    const row_t *best = NULL, *autorow = NULL;
    for (int j = 0; j < r->nrows; j++) {
      const row_t *row = &r->rows[j];
      if (row->status != ROW_OK || (row->checked && row->check_bad > 0)) continue;
      if (!strcmp(row->algo->name, "auto")) autorow = row;
      if (same_bits_plan(row->algo) && (!best || row->median_ms < best->median_ms)) best = row;
    }
    if (!r->ran || !best) continue;
    const shape_def_t *s = r->shape;
    printf("  %s %lld x %lld, %lld, %lld: %s %.4f ms", s->name, (long long)s->batch,
           (long long)s->m, (long long)s->n, (long long)s->d, best->algo->name, best->median_ms);
    if (autorow)
      printf("; auto %.4f ms, auto / fastest %.2f", autorow->median_ms,
             autorow->median_ms / best->median_ms);
    printf("\n");
  }
}

static void print_shape_rows(const run_info_t *info, const shape_result_t *r) {
  const shape_def_t *s = r->shape;
  char shape_text[96], check_buf[64];
  snprintf(shape_text, sizeof shape_text, "%s %lld x %lld, %lld, %lld", s->name,
           (long long)s->batch, (long long)s->m, (long long)s->n, (long long)s->d);
  if (info->gpu) {
    double ms = r->cublas_ms;
    printf("| %s | cuBLAS 2 GEMMs |", shape_text);
    print_cell(ms, 4);
    printf(" |");
    print_cell(isfinite(ms) ? gbps_of(r, ms) : NAN, 1);
    print_cell(isfinite(ms) ? gflops_of(r, ms) : NAN, 1);
    print_cell(isfinite(ms) ? gbps_of(r, ms) / info->copy_gbps : NAN, 3);
    printf(" %s |", isfinite(ms) ? "1" : "n/a");
    print_text_cell(isfinite(ms) ? "-" : r->cublas_message);
    printf("\n");
  }
  for (int i = 0; i < r->nrows; i++) {
    const row_t *row = &r->rows[i];
    printf("| %s | attn %s |", shape_text, row->algo->name);
    if (row->status == ROW_OK) {
      double ms = row->median_ms;
      print_cell(ms, 4);
      print_cell(row->min_ms, 4);
      print_cell(gbps_of(r, ms), 1);
      print_cell(gflops_of(r, ms), 1);
      print_cell(gbps_of(r, ms) / info->copy_gbps, 3);
      print_cell(r->cublas_ms / ms, 3);
      printf(" %s |\n", row_check_text(row, check_buf, sizeof check_buf));
    } else {
      printf(" %s | | | | | | %s |\n",
             row->status == ROW_CAPPED ? "capped"
             : row->status == ROW_NA   ? "n/a"
                                       : "error",
             row_check_text(row, check_buf, sizeof check_buf));
      printf("|  |");
      print_text_cell(row->message);
      printf(" | | | | | | |\n");
    }
  }
  fflush(stdout);
}

static const row_t *find_row(const shape_result_t *results, int count, const char *shape,
                             attn_algo_t algo) {
  for (int i = 0; i < count; i++) {
    if (!results[i].ran || strcmp(results[i].shape->name, shape) != 0) continue;
    for (int j = 0; j < results[i].nrows; j++)
      if (results[i].rows[j].algo->algo == algo && results[i].rows[j].status == ROW_OK)
        return &results[i].rows[j];
  }
  return NULL;
}

static const shape_result_t *find_shape(const shape_result_t *results, int count,
                                        const char *shape) {
  for (int i = 0; i < count; i++)
    if (results[i].ran && strcmp(results[i].shape->name, shape) == 0) return &results[i];
  return NULL;
}

/* The three summary fractions of AUTO (NAN when not measured). */
static void summary_values(const run_info_t *info, const shape_result_t *results, int count,
                           double v[3]) {
  const char *names[3] = {"decode", "walkthrough", "shared"};
  for (int i = 0; i < 3; i++) {
    const shape_result_t *r = find_shape(results, count, names[i]);
    const row_t *row = find_row(results, count, names[i], ATTN_ALGO_AUTO);
    v[i] = NAN;
    if (!r || !row) continue;
    if (i < 2)
      v[i] = gbps_of(r, row->median_ms) / info->copy_gbps;
    else
      v[i] = r->cublas_ms / row->median_ms;
  }
}

static void fprint_num(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, "%.6g", v);
  else
    fprintf(f, "null");
}

static void fprint_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

static int write_json(const char *path, const run_info_t *info, const shape_result_t *results,
                      int count, const double summary[3], int failures) {
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "gpu_bench: --json %s: cannot open for writing\n", path);
    return 1;
  }
  fprintf(f, "{\n  \"source\": \"attn gpu_bench\",\n  \"mode\": \"%s\",\n  \"device\": ",
          info->gpu ? "gpu" : "cpu");
  fprint_str(f, info->device);
  fprintf(f, ",\n  \"header\": ");
  fprint_str(f, info->header);
  fprintf(f, ",\n  \"attn_version\": \"%s\",\n  \"small\": %s,\n  \"reps\": %d,\n",
          attn_version_string(), info->small ? "true" : "false", info->reps);
  fprintf(f, "  \"copy_gbps\": ");
  fprint_num(f, info->copy_gbps);
  fprintf(f, ",\n  \"copy_bytes\": %zu,\n  \"copy_convention\": \"bytes read + bytes written\",\n",
          info->copy_bytes);
  fprintf(f,
          "  \"l2_bytes\": %zu,\n  \"flush_bytes\": %zu,\n  \"flush\": \"%s\",\n"
          "  \"simple_cap_ms\": %g,\n",
          info->l2_bytes, info->flush_bytes,
          !info->gpu          ? "none"
          : info->flush_write ? "write"
                              : "read",
          info->simple_cap_ms);
  fprintf(f, "  \"shapes\": [");
  int first_shape = 1;
  for (int i = 0; i < count; i++) {
    const shape_result_t *r = &results[i];
    if (!r->ran) continue;
    const shape_def_t *s = r->shape;
    fprintf(f, "%s\n    {\"name\": \"%s\", \"batch\": %lld, \"m\": %lld, \"n\": %lld, \"d\": %lld,",
            first_shape ? "" : ",", s->name, (long long)s->batch, (long long)s->m, (long long)s->n,
            (long long)s->d);
    first_shape = 0;
    fprintf(f, " \"bytes\": %.0f, \"flops\": %.0f,\n     \"cublas_ms\": ", r->bytes, r->flops);
    fprint_num(f, r->cublas_ms);
    fprintf(f, ", \"cublas_gflops\": ");
    fprint_num(f, isfinite(r->cublas_ms) ? gflops_of(r, r->cublas_ms) : NAN);
    fprintf(f, ", \"cublas_message\": ");
    fprint_str(f, r->cublas_message);
    fprintf(f, ",\n     \"results\": [");
    for (int j = 0; j < r->nrows; j++) {
      const row_t *row = &r->rows[j];
      int ok = row->status == ROW_OK;
      fprintf(f, "%s\n       {\"impl\": \"attn-%s\", \"status\": \"%s\", \"median_ms\": ",
              j ? "," : "", row->algo->name,
              ok                          ? "ok"
              : row->status == ROW_CAPPED ? "capped"
              : row->status == ROW_NA     ? "n/a"
                                          : "error");
      fprint_num(f, ok ? row->median_ms : NAN);
      fprintf(f, ", \"min_ms\": ");
      fprint_num(f, ok ? row->min_ms : NAN);
      fprintf(f, ", \"first_ms\": ");
      fprint_num(f, row->first_ms);
      fprintf(f, ", \"gbps\": ");
      fprint_num(f, ok ? gbps_of(r, row->median_ms) : NAN);
      fprintf(f, ", \"gflops\": ");
      fprint_num(f, ok ? gflops_of(r, row->median_ms) : NAN);
      fprintf(f, ", \"copy_fraction\": ");
      fprint_num(f, ok ? gbps_of(r, row->median_ms) / info->copy_gbps : NAN);
      fprintf(f, ", \"sgemm_fraction\": ");
      fprint_num(f, ok ? r->cublas_ms / row->median_ms : NAN);
      fprintf(f, ", \"check\": \"%s\", \"check_bad\": %lld, \"check_total\": %lld,",
              !row->checked    ? "not run"
              : row->check_bad ? "fail"
                               : "ok",
              (long long)row->check_bad, (long long)row->check_total);
      fprintf(f, " \"check_worst\": ");
      fprint_num(f, row->checked ? row->check_worst : NAN);
      fprintf(f, ", \"message\": ");
      fprint_str(f, row->message);
      fprintf(f, "}");
    }
    fprintf(f, "\n     ]}");
  }
  fprintf(f, "\n  ],\n  \"summary\": {\"decode_copy_fraction\": ");
  fprint_num(f, summary[0]);
  fprintf(f, ", \"walkthrough_copy_fraction\": ");
  fprint_num(f, summary[1]);
  fprintf(f, ", \"shared_sgemm_fraction\": ");
  fprint_num(f, summary[2]);
  fprintf(f, "},\n  \"failures\": %d\n}\n", failures);
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  if (bad) fprintf(stderr, "gpu_bench: --json %s: write failed\n", path);
  return bad;
}

/* ------------------------------------------------------------------------------------------ */
/* Main                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static const char usage_head[] =
    "usage: gpu_bench [--reps N] [--json FILE] [--shape LIST] [--dims LIST] [--algo LIST]\n"
    "                 [--plans LIST] [--device N] [--simple-cap-ms MS] [--flush read|write]\n"
    "                 [--small] [--cpu]\n"
    "\n"
    "Times attn_forward (dot score, context only, inputs in device buffers) on issue 6's shapes\n"
    "for each algorithm, beside the same run's device copy bandwidth and cuBLAS sgemm on the\n"
    "same two products, and checks every algorithm's context against the REFERENCE backend.\n"
    "  --reps N           timed calls per figure, >= 10 (default 20); figures are medians\n"
    "  --json FILE        also write every figure as JSON to FILE\n"
    "  --shape LIST       comma-separated subset of walkthrough,decode,shared,long\n"
    "  --dims LIST        comma-separated extra shapes BxMxNxD (batch x queries, annotations,\n"
    "                     d), at most 64; with --dims and no --shape only these shapes run\n"
    "  --algo LIST        comma-separated subset of auto,fused,rows,gemm,simple (default: all)\n"
    "  --plans LIST       also time FUSED with each named flash plan forced (ATTN_CU_FLASH),\n"
    "                     or with every one of them (all); the plans:\n"
    "                     ";
static const char usage_tail[] =
    "\n"
    "                     a plan that cannot run a shape shows n/a (tuning the dispatcher's\n"
    "                     thresholds)\n"
    "  --device N         CUDA device index (default 0)\n"
    "  --simple-cap-ms MS SIMPLE is not timed where its checked call took longer (default 100)\n"
    "  --flush read|write the L2 flush before each timed call reads a buffer of 2 x L2 (the\n"
    "                     default: the L2 is left holding clean lines) or writes it\n"
    "                     (cudaMemsetAsync: left full of dirty lines, which the timed call's\n"
    "                     misses then write back)\n"
    "  --small            smaller shapes, for quick runs (not issue 6's figures)\n"
    "  --cpu              run on attn's CPU backend, wall-clock timed, without copy or cuBLAS\n"
    "                     figures: a test of this program where there is no GPU\n"
    "Exit status: 0 ok; 1 a check failed or attn failed; 2 usage; 77 no usable CUDA device.\n";

/* The usage, with the plan names from their table as a comma-separated list, wrapped. */
static void print_usage(FILE *f) {
  fputs(usage_head, f);
  for (int i = 0, col = 21; i < MAX_PLANS; i++) {
    const int w = (int)strlen(plan_names[i]) + (i + 1 < MAX_PLANS);
    if (col + w > 90) {
      fputs("\n                     ", f);
      col = 21;
    }
    fprintf(f, "%s%s", plan_names[i], i + 1 < MAX_PLANS ? "," : "");
    col += w;
  }
  fputs(usage_tail, f);
}

typedef struct args {
  int reps, device, small, cpu, flush_write;
  const char *json, *shapes, *algos, *plans;
  shape_def_t dims[MAX_DIMS];
  char dim_names[MAX_DIMS][48];
  int ndims;
  double simple_cap_ms;
} args_t;

static int parse_int(const char *s, long lo, long hi, long *out) {
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

/* Parses --dims: "BxMxNxD[,BxMxNxD...]", each a positive integer. Returns 0 on a bad list. */
static int parse_dims(const char *list, args_t *a) {
  for (const char *p = list; *p;) {
    long long v[4];
    int used = 0;
    if (a->ndims == MAX_DIMS ||
        sscanf(p, "%lldx%lldx%lldx%lld%n", &v[0], &v[1], &v[2], &v[3], &used) != 4 ||
        (p[used] != ',' && p[used] != '\0'))
      return 0;
    for (int i = 0; i < 4; i++)
      if (v[i] < 1 || v[i] > ((long long)1 << 31)) return 0;
    /* The queries' and the annotations' bytes must fit 2^40 (and so int64 and size_t). */
    long long qf, af;
    if (__builtin_mul_overflow(v[0], v[1], &qf) || __builtin_mul_overflow(qf, v[3], &qf) ||
        __builtin_mul_overflow(v[0], v[2], &af) || __builtin_mul_overflow(af, v[3], &af) ||
        qf > ((long long)1 << 38) || af > ((long long)1 << 38))
      return 0;
    shape_def_t *s = &a->dims[a->ndims];
    snprintf(a->dim_names[a->ndims], sizeof a->dim_names[0], "%lldx%lldx%lldx%lld", v[0], v[1],
             v[2], v[3]);
    s->name = a->dim_names[a->ndims];
    s->batch = v[0];
    s->m = v[1];
    s->n = v[2];
    s->d = v[3];
    a->ndims++;
    p += used;
    if (*p == ',' && !*++p) return 0; /* a trailing comma */
  }
  return a->ndims > 0;
}

static int parse_args(int argc, char **argv, args_t *a) {
  static const char *const shape_names[] = {"walkthrough", "decode", "shared", "long"};
  static const char *const algo_names[] = {"auto", "fused", "rows", "gemm", "simple"};
  _Static_assert(sizeof shape_names / sizeof *shape_names == ISSUE_SHAPES &&
                     sizeof algo_names / sizeof *algo_names == MAX_ALGOS,
                 "the option names match the tables");
  memset(a, 0, sizeof *a);
  a->reps = 20;
  a->simple_cap_ms = SIMPLE_CAP_MS;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long n;
    if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
      print_usage(stdout);
      exit(0);
    } else if (strcmp(o, "--small") == 0) {
      a->small = 1;
    } else if (strcmp(o, "--cpu") == 0) {
      a->cpu = 1;
    } else if (!v) {
      fprintf(stderr, "gpu_bench: %s: unknown option or missing value\n", o);
      print_usage(stderr);
      return 0;
    } else if (strcmp(o, "--reps") == 0) {
      if (!parse_int(v, 10, MAX_REPS, &n)) {
        fprintf(stderr, "gpu_bench: --reps: '%s' is not an integer in [10, %d]\n", v, MAX_REPS);
        return 0;
      }
      a->reps = (int)n;
      i++;
    } else if (strcmp(o, "--device") == 0) {
      if (!parse_int(v, 0, 1024, &n)) {
        fprintf(stderr, "gpu_bench: --device: '%s' is not a device index\n", v);
        return 0;
      }
      a->device = (int)n;
      i++;
    } else if (strcmp(o, "--simple-cap-ms") == 0) {
      char *end = NULL;
      a->simple_cap_ms = strtod(v, &end);
      if (!*v || *end || !(a->simple_cap_ms >= 0.0)) {
        fprintf(stderr, "gpu_bench: --simple-cap-ms: '%s' is not a number >= 0\n", v);
        return 0;
      }
      i++;
    } else if (strcmp(o, "--flush") == 0) {
      if (strcmp(v, "read") != 0 && strcmp(v, "write") != 0) {
        fprintf(stderr, "gpu_bench: --flush: '%s' is not read or write\n", v);
        return 0;
      }
      a->flush_write = strcmp(v, "write") == 0;
      i++;
    } else if (strcmp(o, "--json") == 0) {
      a->json = v;
      i++;
    } else if (strcmp(o, "--shape") == 0) {
      if (!list_option(o, "a shape", v, shape_names, ISSUE_SHAPES)) return 0;
      a->shapes = v;
      i++;
    } else if (strcmp(o, "--algo") == 0) {
      if (!list_option(o, "an algorithm", v, algo_names, MAX_ALGOS)) return 0;
      a->algos = v;
      i++;
    } else if (strcmp(o, "--plans") == 0) {
      if (strcmp(v, "all") != 0 && !list_option(o, "a plan", v, plan_names, MAX_PLANS)) {
        fprintf(stderr, "gpu_bench: --plans: or 'all', for every plan\n");
        return 0;
      }
      a->plans = v;
      i++;
    } else if (strcmp(o, "--dims") == 0) {
      if (!parse_dims(v, a)) {
        fprintf(stderr,
                "gpu_bench: --dims: '%s' is not a list of at most %d shapes BxMxNxD of "
                "positive integers (at most 2^38 floats of queries or annotations each)\n",
                v, MAX_DIMS);
        return 0;
      }
      i++;
    } else {
      fprintf(stderr, "gpu_bench: %s: unknown option\n", o);
      print_usage(stderr);
      return 0;
    }
  }
  return 1;
}

/* Fills info->device and info->header with what the run is on. */
static void describe(const args_t *a, attn_context_t *owner, cublasHandle_t blas,
                     run_info_t *info) {
  char when[64] = "";
  time_t tt = time(NULL);
  struct tm tmv;
  if (gmtime_r(&tt, &tmv)) strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tmv);
  if (!info->gpu) {
    snprintf(info->device, sizeof info->device, "CPU backend (--cpu): not a GPU run");
    snprintf(info->header, sizeof info->header, "attn %s; %s; %s", attn_version_string(),
             attn_context_backend_reason(owner), when);
    return;
  }
  struct cudaDeviceProp prop;
  memset(&prop, 0, sizeof prop);
  cuda_or_die(cudaGetDeviceProperties(&prop, a->device), "cudaGetDeviceProperties");
  int clock_khz = 0, bus_bits = 0, runtime = 0, driver = 0, blas_version = 0;
  (void)cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, a->device);
  (void)cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, a->device);
  (void)cudaRuntimeGetVersion(&runtime);
  (void)cudaDriverGetVersion(&driver);
  (void)cublasGetVersion(blas, &blas_version);
  double peak = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
  snprintf(info->device, sizeof info->device, "%s", prop.name);
  snprintf(info->header, sizeof info->header,
           "%s (sm_%d%d, %d SMs, %.1f GiB, L2 %.1f MiB, nominal memory bandwidth %.0f GB/s); "
           "CUDA runtime %d.%d, driver %d.%d, cuBLAS %d; attn %s; %s",
           prop.name, prop.major, prop.minor, prop.multiProcessorCount,
           (double)prop.totalGlobalMem / (1 << 30), (double)info->l2_bytes / (1 << 20), peak,
           runtime / 1000, runtime % 1000 / 10, driver / 1000, driver % 1000 / 10, blas_version,
           attn_version_string(), when);
}

int main(int argc, char **argv) {
  args_t a;
  if (!parse_args(argc, argv, &a)) return 2;
  if (a.cpu && a.plans) {
    fprintf(stderr, "gpu_bench: --plans forces CUDA flash plans: it cannot run with --cpu\n");
    return 2;
  }

  /* ATTN_ALGO would turn every "auto" context into a forced one, and ATTN_CU_FLASH every flash
   * call into a forced plan (--plans sets it for its own rows only). */
  int algo_env = getenv("ATTN_ALGO") != NULL, flash_env = getenv("ATTN_CU_FLASH") != NULL;
  if (algo_env) unsetenv("ATTN_ALGO");
  if (flash_env) unsetenv("ATTN_CU_FLASH");

  /* Is there a usable device? attn decides, and says why not. */
  attn_options_t opts = attn_default_options();
  opts.backend = a.cpu ? ATTN_BACKEND_CPU : ATTN_BACKEND_CUDA;
  opts.device = a.device;
  attn_context_t *probe = NULL;
  attn_status_t st = attn_context_create(&opts, &probe);
  if (st != ATTN_OK) {
    if (st == ATTN_ERR_NO_DEVICE) {
      printf("gpu_bench: skipped: no usable CUDA device (%s)\n", attn_create_error());
      return EXIT_SKIP;
    }
    fprintf(stderr, "gpu_bench: attn_context_create: %s: %s\n", attn_status_string(st),
            attn_create_error());
    return 1;
  }
  attn_context_destroy(probe);

  static bench_timer_t timer;
  run_info_t info;
  memset(&info, 0, sizeof info);
  info.gpu = !a.cpu;
  info.small = a.small;
  info.reps = a.reps;
  info.copy_gbps = NAN;
  info.simple_cap_ms = a.simple_cap_ms;
  timer.gpu = info.gpu;
  cublasHandle_t blas = NULL;
  if (info.gpu) {
    int l2 = 0;
    cuda_or_die(cudaSetDevice(a.device), "cudaSetDevice");
    cuda_or_die(cudaStreamCreate(&timer.stream), "cudaStreamCreate");
    for (int i = 0; i < 2 * (a.reps + 1); i++)
      cuda_or_die(cudaEventCreate(&timer.ev[i]), "cudaEventCreate");
    cuda_or_die(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, a.device),
                "cudaDeviceGetAttribute(L2 size)");
    info.l2_bytes = (size_t)(l2 > 0 ? l2 : 0);
    info.flush_bytes =
        2 * info.l2_bytes > ((size_t)64 << 20) ? 2 * info.l2_bytes : ((size_t)64 << 20);
    timer.flush_bytes = info.flush_bytes;
    cuda_or_die(cudaMalloc(&timer.flush, timer.flush_bytes), "cudaMalloc (L2 flush buffer)");
    cuda_or_die(cudaMemset(timer.flush, 0, timer.flush_bytes), "cudaMemset (L2 flush buffer)");
    cuda_or_die(cudaMalloc((void **)&timer.flush_sum, sizeof(float)), "cudaMalloc (flush sum)");
    timer.flush_write = info.flush_write = a.flush_write;
    cublasStatus_t bs = cublasCreate(&blas);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(blas, timer.stream);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasCreate(&timer.flush_blas);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(timer.flush_blas, timer.stream);
    if (bs == CUBLAS_STATUS_SUCCESS)
      bs = cublasSetPointerMode(timer.flush_blas, CUBLAS_POINTER_MODE_DEVICE);
    if (bs != CUBLAS_STATUS_SUCCESS) {
      fprintf(stderr, "gpu_bench: cuBLAS setup: %s\n", cublas_name(bs));
      return 1;
    }
    opts.stream = (void *)timer.stream;
  }

  /* One context owns the buffers; one per algorithm computes; REFERENCE checks. */
  attn_context_t *owner = NULL, *refctx = NULL, *ctxs[MAX_ALGOS] = {NULL}, *plan_ctx = NULL;
  char ctx_errors[MAX_ALGOS][MSG_LEN], plan_error[MSG_LEN] = "";
  st = attn_context_create(&opts, &owner);
  if (st != ATTN_OK) {
    fprintf(stderr, "gpu_bench: owner context: %s: %s\n", attn_status_string(st),
            attn_create_error());
    return 1;
  }
  attn_options_t ref_opts = attn_default_options();
  ref_opts.backend = ATTN_BACKEND_REFERENCE;
  st = attn_context_create(&ref_opts, &refctx);
  if (st != ATTN_OK) {
    fprintf(stderr, "gpu_bench: reference context: %s: %s\n", attn_status_string(st),
            attn_create_error());
    return 1;
  }
  for (int i = 0; i < MAX_ALGOS; i++) {
    ctx_errors[i][0] = '\0';
    if (!in_list(a.algos, algos[i].name)) continue;
    attn_options_t o = opts;
    o.algo = algos[i].algo;
    st = attn_context_create(&o, &ctxs[i]);
    if (st != ATTN_OK) {
      ctxs[i] = NULL;
      snprintf(ctx_errors[i], MSG_LEN, "attn_context_create: %s: %s", attn_status_string(st),
               attn_create_error());
    }
  }
  if (a.plans) {
    attn_options_t o = opts;
    o.algo = ATTN_ALGO_FUSED;
    st = attn_context_create(&o, &plan_ctx);
    if (st != ATTN_OK) {
      plan_ctx = NULL;
      snprintf(plan_error, MSG_LEN, "attn_context_create: %s: %s", attn_status_string(st),
               attn_create_error());
    }
  }

  describe(&a, owner, blas, &info);
  printf("# attn GPU benchmark: %s\n\n", info.device);
  printf("- %s\n", info.header);
  printf("- attn: %s\n", attn_context_backend_reason(owner));
  if (algo_env) printf("- ATTN_ALGO was set in the environment and is ignored here\n");
  if (flash_env) printf("- ATTN_CU_FLASH was set in the environment and is ignored here\n");
  if (a.small) printf("- **--small**: reduced shapes, not issue 6's\n");
  if (info.gpu) {
    printf("- method: CUDA events on one stream; before every timed call %s %.0f MiB (2 x L2, at "
           "least 64 MiB: --flush %s); median and minimum of %d calls after one checked call\n",
           a.flush_write ? "a cudaMemsetAsync writes" : "a cublasSasum reads",
           (double)info.flush_bytes / (1 << 20), a.flush_write ? "write" : "read", a.reps);
    fprintf(stderr, "gpu_bench: copy bandwidth...\n");
    info.copy_gbps = copy_gbps(&timer, a.reps, &info.copy_bytes);
    printf("- copy: cudaMemcpyAsync device to device of %.0f MiB: **%.1f GB/s** counting bytes "
           "read + bytes written (2 x %.0f MiB per copy)\n",
           (double)info.copy_bytes / (1 << 20), info.copy_gbps,
           (double)info.copy_bytes / (1 << 20));
    printf("- cuBLAS: S = Q A^T then C = S A on the same buffers (cublasSgemm; "
           "cublasSgemmStridedBatched for the batched decode shape), CUBLAS_DEFAULT_MATH (fp32, no "
           "TF32), no softmax\n");
  } else {
    printf("- method: **--cpu**: attn's CPU backend, wall clock, no L2 flush, no copy or cuBLAS "
           "figures; a test of this program, not a GPU result; median and minimum of %d calls\n",
           a.reps);
  }
  printf("- bytes: queries + annotations read once + context written (fp32); FLOPs: 4 m n d per "
         "set; x copy = GB/s over the copy's GB/s; x cuBLAS = cuBLAS time over attn time\n");
  printf("- check: context vs the REFERENCE backend on up to %d sets x %d rows, tolerance of "
         "tests/tolerance.h (\"ok (0.05 of tol)\": the worst error is 5%% of the allowed one)\n\n",
         SAMPLE_SETS, SAMPLE_ROWS);
  print_table_header();

  /* Issue 6's shapes (those --shape names; none when only --dims is given), then --dims. */
  const shape_def_t *issue_shapes = a.small ? small_shapes : full_shapes;
  const shape_def_t *shape_list[MAX_SHAPES];
  int nshapes = 0;
  for (int i = 0; i < ISSUE_SHAPES; i++)
    if ((a.shapes || a.ndims == 0) && in_list(a.shapes, issue_shapes[i].name))
      shape_list[nshapes++] = &issue_shapes[i];
  for (int i = 0; i < a.ndims; i++)
    shape_list[nshapes++] = &a.dims[i];
  static shape_result_t results[MAX_SHAPES];
  memset(results, 0, sizeof results);
  int failures = 0, stop = 0;
  for (int i = 0; i < nshapes && !stop; i++) {
    const shape_def_t *s = shape_list[i];
    shape_result_t *r = &results[i];
    r->shape = s;
    r->cublas_ms = NAN;
    r->ran = 1;
    r->bytes = 4.0 * (double)s->batch * (double)(2 * s->m * s->d + s->n * s->d);
    r->flops = 4.0 * (double)s->batch * (double)s->m * (double)s->n * (double)s->d;
    fprintf(stderr, "gpu_bench: %s: inputs and reference...\n", s->name);
    shape_data_t sd;
    char msg[MSG_LEN] = "";
    if (prepare_shape(owner, refctx, s, &sd, msg) != 0) {
      fprintf(stderr, "gpu_bench: %s: %s\n", s->name, msg);
      printf("| %s | (setup) | error: %s | | | | | | |\n", s->name, msg);
      failures++;
      release_shape(owner, &sd);
      r->ran = 0;
      continue;
    }
    if (info.gpu) {
      fprintf(stderr, "gpu_bench: %s: cuBLAS...\n", s->name);
      r->cublas_ms = time_cublas(&timer, blas, s, attn_buffer_data(sd.qb), attn_buffer_data(sd.ab),
                                 a.reps, r->cublas_message);
    } else {
      snprintf(r->cublas_message, MSG_LEN, "not measured (--cpu)");
    }
    for (int j = 0; j < MAX_ALGOS && !stop; j++)
      if (in_list(a.algos, algos[j].name))
        stop = run_row(&timer, owner, ctxs[j], ctx_errors[j], &algos[j], NULL, s, &sd, a.reps,
                       a.simple_cap_ms, r, &failures);
    for (int j = 0; j < MAX_PLANS && a.plans && !stop; j++) {
      const char *plan = plan_algos[j].name + strlen(PLAN_PREFIX);
      if (in_list(strcmp(a.plans, "all") == 0 ? NULL : a.plans, plan))
        stop = run_row(&timer, owner, plan_ctx, plan_error, &plan_algos[j], plan, s, &sd, a.reps,
                       a.simple_cap_ms, r, &failures);
    }
    print_shape_rows(&info, r);
    if (stop) {
      printf("\ngpu_bench: the device is in an unrecoverable error state; the remaining shapes "
             "were not run\n");
      failures++;
    } else {
      release_shape(owner, &sd);
    }
  }

  if (a.plans) print_fastest_plans(results, nshapes);

  double summary[3];
  summary_values(&info, results, nshapes, summary);
  int64_t checks = 0, checks_failed = 0;
  for (int i = 0; i < nshapes; i++)
    for (int j = 0; j < results[i].nrows; j++)
      if (results[i].rows[j].checked) {
        checks++;
        checks_failed += results[i].rows[j].check_bad > 0;
      }
  printf("\nchecks: %lld of %lld algorithm runs match the reference%s\n",
         (long long)(checks - checks_failed), (long long)checks,
         checks_failed ? " (**FAIL**: see the check column)" : "");
  char fr[3][32];
  for (int i = 0; i < 3; i++) {
    if (isfinite(summary[i]))
      snprintf(fr[i], sizeof fr[i], "%.3f", summary[i]);
    else
      snprintf(fr[i], sizeof fr[i], "n/a");
  }
  printf("summary: decode_copy_fraction=%s walkthrough_copy_fraction=%s shared_sgemm_fraction=%s\n",
         fr[0], fr[1], fr[2]);
  fflush(stdout);

  int rc = failures ? 1 : 0;
  if (a.json && write_json(a.json, &info, results, nshapes, summary, failures) != 0) rc = 1;

  if (!stop) {
    for (int i = 0; i < MAX_ALGOS; i++)
      attn_context_destroy(ctxs[i]);
    attn_context_destroy(plan_ctx);
    attn_context_destroy(owner);
    attn_context_destroy(refctx);
    if (info.gpu) {
      cublasDestroy(blas);
      cublasDestroy(timer.flush_blas);
      (void)cudaFree(timer.flush);
      (void)cudaFree(timer.flush_sum);
      for (int i = 0; i < 2 * (a.reps + 1); i++)
        (void)cudaEventDestroy(timer.ev[i]);
      (void)cudaStreamDestroy(timer.stream);
    }
  }
  return rc;
}
