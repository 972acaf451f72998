/*
 * cmd_bench.c - `attn bench`: attn_forward (dot score, values = annotations, context only) on the
 * shapes of the CPU and GPU performance issues, on each available backend.
 *
 * Method: inputs live in buffers of the backend (device memory for CUDA) and are filled once;
 * one warm-up call, then `repeat` timed calls, each followed by attn_context_synchronize; the
 * median and the minimum are reported. Throughput counts bytes = 4 * (Q + A + C) elements and
 * FLOPs = 4 * batch * m * n * d (scores and context, multiply and add).
 *
 * Hardware ratios, host backends (cpu, reference) only, measured in the same run:
 *   copy_frac   GB/s over host memcpy bandwidth (bytes read + written per second, median of 5
 *               copies of 64 MiB);
 *   sgemm_frac  OpenBLAS's time for the same two GEMMs per set (S = Q A^T, then C = S A, on the
 *               same buffers, median of `repeat`) over attn's time; only when OpenBLAS is linked.
 * Device copy bandwidth and cuBLAS rates need the CUDA runtime, which this tool does not link:
 * the GPU benchmark in bench/ reports those.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef ATTN_BENCH_CBLAS
#include <cblas.h>
#endif

static const char bench_usage[] =
    "usage: attn bench [--suite cpu|gpu|all] [--shape NAME | --shape BATCH,M,N,D]\n"
    "                  [--backend cuda,cpu,reference] [--repeat N] [--json] [--progress]\n"
    "\n"
    "Times attn_forward (dot score, context only) on each backend: medians of --repeat calls\n"
    "(default 5) after one warm-up. Default: every shape on every available backend except\n"
    "reference. A progress line goes to stderr when it is a terminal (or with --progress).\n"
    "Shapes (batch x m queries x n annotations x d):\n";

typedef struct bench_shape {
  const char *name;
  int64_t batch, m, n, d;
  int cpu, gpu; /* in the CPU issue's / GPU issue's list */
} bench_shape_t;

static const bench_shape_t shapes[] = {
    {"latency", 1, 1, 4, 3, 1, 0}, /* per-call latency, the walkthrough's size */
    {"walkthrough-4k", 1, 4096, 4, 3, 1, 0},
    {"walkthrough-1m", 1, 1000000, 4, 3, 0, 1},
    {"gemm-4k", 1, 4096, 128, 256, 1, 0},
    {"gemm-8k", 1, 8192, 1024, 512, 1, 1}, /* shared annotations: two large GEMMs */
    {"long-1k", 1, 1024, 4096, 128, 1, 0},
    {"long-32k", 1, 16, 32768, 128, 0, 1}, /* few queries, long annotation set */
    {"decode-256", 4096, 1, 256, 128, 1, 0},
    {"decode-1k", 4096, 1, 1024, 128, 0, 1}, /* decode style: one query per set */
};
#define SHAPE_COUNT (sizeof shapes / sizeof shapes[0])

typedef struct bench_args {
  const char *suite, *shape, *backends, *repeat;
  int json, progress, help;
} bench_args_t;

typedef struct bench_result {
  const bench_shape_t *shape;
  attn_backend_t backend;
  double median, min; /* seconds */
  double sgemm;       /* median seconds of OpenBLAS on the same GEMMs; 0 when not measured */
  attn_status_t status;
  char message[256];
} bench_result_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Host copy bandwidth in GB/s (read + write), median of 5 copies of 64 MiB; 0 on failure. */
static double host_copy_gbps(void) {
  size_t bytes = (size_t)64 << 20;
  char *src = malloc(bytes), *dst = malloc(bytes);
  double t[5], gbps = 0.0;
  if (src && dst) {
    memset(src, 1, bytes);
    memset(dst, 2, bytes);
    for (int i = 0; i < 5; i++) {
      double t0 = cli_now();
      memcpy(dst, src, bytes);
      t[i] = cli_now() - t0;
      src[i] = dst[bytes - 1 - (size_t)i]; /* keep the copies observable */
    }
    qsort(t, 5, sizeof t[0], cmp_double);
    gbps = 2.0 * (double)bytes / t[2] / 1e9;
  }
  free(src);
  free(dst);
  return gbps;
}

static void progress(const bench_args_t *a, int index, int total, const bench_result_t *r,
                     int64_t rep, int64_t repeat) {
  if (!a->progress) return;
  fprintf(stderr, "\rbench: [%d/%d] %-9s %-15s call %lld/%lld   ", index + 1, total,
          attn_backend_name(r->backend), r->shape->name, (long long)rep, (long long)repeat);
  fflush(stderr);
}

/* Uniform random floats in [-1, 1) from a fixed seed (xorshift64). */
static void fill_random(float *x, int64_t count, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x[i] = (float)((double)(s >> 11) / 4503599627370496.0 - 1.0);
  }
}

/* A backend buffer of count floats filled with random values (or left as is when !fill). */
static attn_status_t make_buffer(attn_context_t *ctx, int64_t count, int fill, uint64_t seed,
                                 attn_buffer_t **buf) {
  if ((uint64_t)count > SIZE_MAX / sizeof(float)) return ATTN_ERR_OVERFLOW;
  size_t bytes = (size_t)count * sizeof(float);
  attn_status_t st = attn_buffer_alloc(ctx, bytes, buf);
  if (st != ATTN_OK || !fill) return st;
  float *host = malloc(bytes);
  if (!host) return ATTN_ERR_ALLOC;
  fill_random(host, count, seed);
  st = attn_buffer_upload(ctx, *buf, 0, host, bytes);
  free(host);
  return st;
}

#ifdef ATTN_BENCH_CBLAS
/* OpenBLAS doing the problem's two GEMMs per set, S = Q A^T then C = S A, on the host buffers
 * attn used; the median of `repeat` runs after a warm-up, or 0 when scratch is unavailable. */
static double sgemm_seconds(const bench_shape_t *s, const float *q, const float *an, float *c,
                            int64_t repeat) {
  int m = (int)s->m, n = (int)s->n, d = (int)s->d;
  float *scores = malloc((size_t)(s->m * s->n) * sizeof *scores);
  double *t = malloc((size_t)repeat * sizeof *t), median = 0.0;
  if (scores && t) {
    for (int64_t i = 0; i <= repeat; i++) {
      double t0 = cli_now();
      for (int64_t b = 0; b < s->batch; b++) {
        const float *qb = q + b * s->m * s->d, *ab = an + b * s->n * s->d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, d, 1.0f, qb, d, ab, d, 0.0f,
                    scores, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, d, n, 1.0f, scores, n, ab, d,
                    0.0f, c + b * s->m * s->d, d);
      }
      if (i > 0) t[i - 1] = cli_now() - t0;
    }
    qsort(t, (size_t)repeat, sizeof *t, cmp_double);
    median = t[repeat / 2];
  }
  free(scores);
  free(t);
  return median;
}
#endif

static void measure(const bench_args_t *a, attn_context_t *ctx, int64_t repeat, int index,
                    int total, bench_result_t *r) {
  const bench_shape_t *s = r->shape;
  attn_buffer_t *q = NULL, *an = NULL, *c = NULL;
  attn_status_t st = make_buffer(ctx, s->batch * s->m * s->d, 1, 1, &q);
  if (st == ATTN_OK) st = make_buffer(ctx, s->batch * s->n * s->d, 1, 2, &an);
  if (st == ATTN_OK) st = make_buffer(ctx, s->batch * s->m * s->d, 0, 0, &c);
  attn_shape_t shape = {s->batch, s->m, s->n, s->d, s->d, NULL, NULL, NULL};
  attn_inputs_t in = {attn_cmat(attn_buffer_data(q), s->d, s->m * s->d),
                      attn_cmat(attn_buffer_data(an), s->d, s->n * s->d), attn_cmat(NULL, 0, 0)};
  attn_outputs_t out = {attn_mat(attn_buffer_data(c), s->d, s->m * s->d), attn_mat(NULL, 0, 0),
                        attn_mat(NULL, 0, 0), NULL};
  double *t = malloc((size_t)repeat * sizeof *t);
  if (!t && st == ATTN_OK) st = ATTN_ERR_ALLOC;
  for (int64_t i = 0; i <= repeat && st == ATTN_OK; i++) {
    progress(a, index, total, r, i, repeat);
    double t0 = cli_now();
    st = attn_forward(ctx, &shape, NULL, &in, &out);
    if (st == ATTN_OK) st = attn_context_synchronize(ctx);
    if (i > 0) t[i - 1] = cli_now() - t0; /* call 0 warms up */
  }
  r->status = st;
  if (st == ATTN_OK) {
    qsort(t, (size_t)repeat, sizeof *t, cmp_double);
    r->median = t[repeat / 2];
    r->min = t[0];
#ifdef ATTN_BENCH_CBLAS
    if (r->backend != ATTN_BACKEND_CUDA)
      r->sgemm =
          sgemm_seconds(s, attn_buffer_data(q), attn_buffer_data(an), attn_buffer_data(c), repeat);
#endif
  } else {
    snprintf(r->message, sizeof r->message, "%s: %s", attn_status_string(st),
             attn_context_last_error(ctx));
  }
  free(t);
  attn_buffer_free(ctx, c);
  attn_buffer_free(ctx, an);
  attn_buffer_free(ctx, q);
}

/* The shapes selected by --suite / --shape into list[]; returns how many, or -1. */
static int select_shapes(const bench_args_t *a, bench_shape_t *custom, const bench_shape_t **list) {
  int count = 0;
  if (a->shape) {
    for (size_t i = 0; i < SHAPE_COUNT; i++) {
      if (strcmp(a->shape, shapes[i].name) == 0) list[count++] = &shapes[i];
    }
    if (count) return count;
    long long v[4];
    char tail;
    if (sscanf(a->shape, "%lld,%lld,%lld,%lld%c", &v[0], &v[1], &v[2], &v[3], &tail) != 4 ||
        v[0] < 1 || v[1] < 1 || v[2] < 1 || v[3] < 1) {
      cli_error("--shape: '%s' is neither a shape name nor BATCH,M,N,D (positive)", a->shape);
      return -1;
    }
    bench_shape_t s = {"custom", v[0], v[1], v[2], v[3], 1, 1};
    *custom = s;
    list[0] = custom;
    return 1;
  }
  const char *suite = a->suite ? a->suite : "all";
  int cpu = strcmp(suite, "cpu") == 0, gpu = strcmp(suite, "gpu") == 0;
  if (!cpu && !gpu && strcmp(suite, "all") != 0) {
    cli_error("--suite: '%s' is not one of cpu, gpu, all", suite);
    return -1;
  }
  for (size_t i = 0; i < SHAPE_COUNT; i++) {
    if ((!cpu && !gpu) || (cpu && shapes[i].cpu) || (gpu && shapes[i].gpu))
      list[count++] = &shapes[i];
  }
  return count;
}

/* The backends from --backend (comma-separated) or the default cuda,cpu. */
static int select_backends(const bench_args_t *a, attn_backend_t *list) {
  char text[64];
  snprintf(text, sizeof text, "%s", a->backends ? a->backends : "cuda,cpu");
  int count = 0;
  for (char *save = NULL, *tok = strtok_r(text, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    attn_backend_t b = ATTN_BACKEND_CPU;
    if (cli_parse_backend(tok, &b)) return -1;
    if (b == ATTN_BACKEND_AUTO || count == 3) {
      cli_error("--backend: up to three of cuda, cpu, reference (not auto)");
      return -1;
    }
    list[count++] = b;
  }
  return count;
}

static void print_text(const bench_result_t *r, int count, double copy_gbps) {
  printf("%-9s %-15s %6s %8s %6s %5s %12s %12s %9s %9s %9s %10s\n", "backend", "shape", "batch",
         "m", "n", "d", "median_ms", "min_ms", "GB/s", "GFLOP/s", "copy_frac", "sgemm_frac");
  for (int i = 0; i < count; i++) {
    const bench_shape_t *s = r[i].shape;
    printf("%-9s %-15s %6lld %8lld %6lld %5lld ", attn_backend_name(r[i].backend), s->name,
           (long long)s->batch, (long long)s->m, (long long)s->n, (long long)s->d);
    if (r[i].status != ATTN_OK) {
      printf("failed: %s\n", r[i].message);
      continue;
    }
    double bytes = 4.0 * (double)s->batch * (double)(2 * s->m * s->d + s->n * s->d);
    double flops = 4.0 * (double)s->batch * (double)s->m * (double)s->n * (double)s->d;
    double gbps = bytes / r[i].median / 1e9;
    printf("%12.4f %12.4f %9.2f %9.2f ", r[i].median * 1e3, r[i].min * 1e3, gbps,
           flops / r[i].median / 1e9);
    if (r[i].backend != ATTN_BACKEND_CUDA && copy_gbps > 0)
      printf("%9.3f ", gbps / copy_gbps);
    else
      printf("%9s ", "-");
    if (r[i].sgemm > 0)
      printf("%10.3f\n", r[i].sgemm / r[i].median);
    else
      printf("%10s\n", "-");
  }
  if (copy_gbps > 0) printf("host copy bandwidth: %.2f GB/s (memcpy, read + write)\n", copy_gbps);
}

static void print_json(const bench_result_t *r, int count, double copy_gbps, int64_t repeat) {
  printf("{\"attn_version\": \"%s\", \"repeat\": %lld, \"host_copy_gbps\": %.6g, \"results\": [",
         attn_version_string(), (long long)repeat, copy_gbps);
  for (int i = 0; i < count; i++) {
    const bench_shape_t *s = r[i].shape;
    printf("%s\n  {\"backend\": \"%s\", \"shape\": \"%s\", \"batch\": %lld, \"m\": %lld, "
           "\"n\": %lld, \"d\": %lld, ",
           i ? "," : "", attn_backend_name(r[i].backend), s->name, (long long)s->batch,
           (long long)s->m, (long long)s->n, (long long)s->d);
    if (r[i].status != ATTN_OK) {
      printf("\"ok\": false, \"error\": \"%s\"}", attn_status_string(r[i].status));
      continue;
    }
    double bytes = 4.0 * (double)s->batch * (double)(2 * s->m * s->d + s->n * s->d);
    double flops = 4.0 * (double)s->batch * (double)s->m * (double)s->n * (double)s->d;
    double gbps = bytes / r[i].median / 1e9;
    printf("\"ok\": true, \"median_s\": %.9g, \"min_s\": %.9g, \"gbps\": %.6g, \"gflops\": %.6g, "
           "\"copy_fraction\": ",
           r[i].median, r[i].min, gbps, flops / r[i].median / 1e9);
    if (r[i].backend != ATTN_BACKEND_CUDA && copy_gbps > 0)
      printf("%.6g, ", gbps / copy_gbps);
    else
      printf("null, ");
    if (r[i].sgemm > 0)
      printf("\"sgemm_s\": %.9g, \"sgemm_fraction\": %.6g}", r[i].sgemm, r[i].sgemm / r[i].median);
    else
      printf("\"sgemm_s\": null, \"sgemm_fraction\": null}");
  }
  printf("\n]}\n");
}

static int bench(const bench_args_t *a) {
  int64_t repeat = 5;
  int rc;
  if (a->repeat && (rc = cli_parse_int("repeat", a->repeat, 1, 1000, &repeat))) return rc;
  bench_shape_t custom;
  const bench_shape_t *list[SHAPE_COUNT];
  attn_backend_t backends[3];
  int nshapes = select_shapes(a, &custom, list), nbackends = select_backends(a, backends);
  if (nshapes < 0 || nbackends < 0) return CLI_EXIT_INPUT;
  bench_result_t results[3 * SHAPE_COUNT];
  int count = 0, failed = 0, total = nshapes * nbackends;
  double copy_gbps = 0.0;
  for (int b = 0; b < nbackends; b++) {
    attn_options_t opts = attn_default_options();
    opts.backend = backends[b];
    attn_context_t *ctx;
    attn_status_t st = attn_context_create(&opts, &ctx);
    if (st != ATTN_OK) {
      fprintf(stderr, "attn: bench: %s unavailable: %s\n", attn_backend_name(backends[b]),
              attn_create_error());
      failed |= st != ATTN_ERR_NO_DEVICE || a->backends != NULL;
      total -= nshapes;
      continue;
    }
    if (!a->json) printf("%s\n", attn_context_backend_reason(ctx));
    if (backends[b] != ATTN_BACKEND_CUDA && copy_gbps == 0.0) copy_gbps = host_copy_gbps();
    for (int s = 0; s < nshapes; s++) {
      bench_result_t *r = &results[count];
      memset(r, 0, sizeof *r);
      r->shape = list[s];
      r->backend = backends[b];
      measure(a, ctx, repeat, count, total, r);
      failed |= r->status != ATTN_OK;
      count++;
    }
    attn_context_destroy(ctx);
  }
  if (a->progress) fprintf(stderr, "\r%60s\r", "");
  if (a->json)
    print_json(results, count, copy_gbps, repeat);
  else
    print_text(results, count, copy_gbps);
  return failed ? CLI_EXIT_RUNTIME : 0;
}

int cli_bench(int argc, char **argv) {
  bench_args_t a;
  memset(&a, 0, sizeof a);
  const cli_option_t opts[] = {{"suite", &a.suite, NULL},      {"shape", &a.shape, NULL},
                               {"backend", &a.backends, NULL}, {"repeat", &a.repeat, NULL},
                               {"json", NULL, &a.json},        {"progress", NULL, &a.progress}};
  int rc = cli_parse_options(argc, argv, opts, sizeof opts / sizeof opts[0], "bench", &a.help);
  if (rc) return rc;
  if (a.help) {
    fputs(bench_usage, stdout);
    for (size_t i = 0; i < SHAPE_COUNT; i++)
      printf("  %-15s %6lld x %8lld x %6lld x %4lld  (%s)\n", shapes[i].name,
             (long long)shapes[i].batch, (long long)shapes[i].m, (long long)shapes[i].n,
             (long long)shapes[i].d,
             shapes[i].cpu && shapes[i].gpu ? "cpu, gpu"
             : shapes[i].cpu                ? "cpu"
                                            : "gpu");
    return 0;
  }
  if (isatty(STDERR_FILENO)) a.progress = 1;
  return bench(&a);
}
