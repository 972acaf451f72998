/*
 * cpu_bench.c - the C half of bench/cpu-vs-numpy.sh: times attn's CPU backend on the issue's
 * shapes, and measures on the same machine, in the same run, OpenBLAS sgemm throughput and
 * memory copy bandwidth. Prints one line per measurement (parsed by cpu-vs-numpy.sh):
 *
 *   attn <name> <m> <n> <d> <batch> <median seconds per call>
 *   sgemm <GFLOP/s>   (best of: square 4096^3, and attn's two products on 8192 x 1024 x 512)
 *   sgemm_pair <s>    (median seconds of those two products alone, OpenBLAS's own threads)
 *   copy <GB/s>       (bytes read + bytes written per second, best of 1 thread and all threads)
 *   read <GB/s>       (bytes read per second by a plain read loop, best of 1 and all threads:
 *                     what a pass that only reads, as the decode shape does, could reach)
 *
 * Inputs are uniform in [-r, r] with r = sqrt(3) / d^(1/4), so a dot score has unit variance
 * (the regime attention runs in; raw N(0,1) inputs at d = 512 give scores with std 22, a
 * one-hot softmax and denormal weights that would time the FPU's slow path, not the library).
 *
 * Usage: cpu_bench [reps [names]]   (reps >= 5, default 7; each figure is the median of reps
 * runs; names: a comma-separated subset of latency,tiny,medium,gemm,long,decode,sgemm,copy,
 * read)
 */
#include "attn.h"
#include "bench_stats.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Threads for every contender: ATTN_BENCH_THREADS, or every core. cpu-vs-numpy.sh also sets
 * OPENBLAS_NUM_THREADS to it, for this program's sgemm and for numpy. */
static int bench_threads(void) {
  const char *env = getenv("ATTN_BENCH_THREADS");
  int t = env ? atoi(env) : 0;
  return t > 0 ? t : omp_get_num_procs();
}

static float *alloc_floats(size_t count) {
  void *p = NULL;
  if (posix_memalign(&p, 64, count * sizeof(float) + 64) != 0) {
    fprintf(stderr, "cpu_bench: out of memory (%zu floats)\n", count);
    exit(1);
  }
  return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float uniform(float r) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return r * (2.0f * (float)((rng_state >> 40) * (1.0 / 16777216.0)) - 1.0f);
}

static void fill(float *x, size_t count, float r) {
  for (size_t i = 0; i < count; i++)
    x[i] = uniform(r);
}

static void check(attn_status_t st, attn_context_t *ctx, const char *what) {
  if (st != ATTN_OK) {
    fprintf(stderr, "cpu_bench: %s: %s (%s)\n", what, attn_status_string(st),
            ctx ? attn_context_last_error(ctx) : "");
    exit(1);
  }
}

/* Times attn_forward on `batch` sets of m queries x n annotations of width d (context only). */
static void bench_attn(attn_context_t *ctx, const char *name, int64_t batch, int64_t m, int64_t n,
                       int64_t d, int reps) {
  float r = sqrtf(3.0f) / powf((float)d, 0.25f);
  float *q = alloc_floats((size_t)(batch * m * d)), *a = alloc_floats((size_t)(batch * n * d));
  float *c = alloc_floats((size_t)(batch * m * d));
  fill(q, (size_t)(batch * m * d), r);
  fill(a, (size_t)(batch * n * d), r);
  attn_shape_t shape = {batch, m, n, d, d, NULL, NULL, NULL};
  attn_inputs_t in = {attn_cmat(q, d, m * d), attn_cmat(a, d, n * d), attn_cmat(NULL, 0, 0)};
  attn_outputs_t out = {attn_mat(c, d, m * d), attn_mat(NULL, 0, 0), attn_mat(NULL, 0, 0), NULL};
  check(attn_context_reserve(ctx, &shape, NULL), ctx, "reserve");
  check(attn_forward(ctx, &shape, NULL, &in, &out), ctx, name); /* warm-up */
  /* calls per timed run: enough for ~20 ms so that tiny shapes are not timer-bound */
  double t0 = bench_now();
  check(attn_forward(ctx, &shape, NULL, &in, &out), ctx, name);
  double one = bench_now() - t0;
  int calls = one > 0.02 ? 1 : (int)(0.02 / (one > 1e-8 ? one : 1e-8)) + 1;
  double *t = malloc((size_t)reps * sizeof(double));
  for (int rep = 0; rep < reps; rep++) {
    t0 = bench_now();
    for (int i = 0; i < calls; i++)
      attn_forward(ctx, &shape, NULL, &in, &out);
    t[rep] = (bench_now() - t0) / calls;
  }
  printf("attn %s %lld %lld %lld %lld %.9g\n", name, (long long)m, (long long)n, (long long)d,
         (long long)batch, bench_median(t, reps));
  fflush(stdout);
  free(t);
  free(q);
  free(a);
  free(c);
}

/* OpenBLAS sgemm GFLOP/s (OpenBLAS's own threading, all cores): the best of a square product
 * and of attn's two products on the 8192 x 1024 x 512 shape (S = Q A^T, C = S A). *pair gets
 * the median time of those two products, the floor of any attention on that shape built on
 * them (numpy_attn.py turns it into the largest speedup over numpy that is possible here). */
static double bench_sgemm(int reps, double *pair) {
  const int sq = 4096, m = 8192, n = 1024, d = 512;
  float *x = alloc_floats((size_t)sq * sq), *y = alloc_floats((size_t)sq * sq);
  float *z = alloc_floats((size_t)sq * sq);
  fill(x, (size_t)sq * sq, 1.0f);
  fill(y, (size_t)sq * sq, 1.0f);
  double *t = malloc((size_t)reps * sizeof(double)), best = 0.0;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sq, sq, sq, 1.0f, x, sq, y, sq, 0.0f, z,
              sq);
  for (int rep = 0; rep < reps; rep++) {
    double t0 = bench_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sq, sq, sq, 1.0f, x, sq, y, sq, 0.0f, z,
                sq);
    t[rep] = bench_now() - t0;
  }
  double g = 2.0 * sq * (double)sq * sq / bench_median(t, reps) / 1e9;
  best = g > best ? g : best;
  /* x holds Q [m x d] (8192 * 512 <= 4096^2), y holds A [n x d], z holds S [m x n] */
  for (int rep = 0; rep <= reps; rep++) {
    double t0 = bench_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, d, 1.0f, x, d, y, d, 0.0f, z, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, d, n, 1.0f, z, n, y, d, 0.0f, x, d);
    if (rep > 0) t[rep - 1] = bench_now() - t0; /* the first is a warm-up */
  }
  *pair = bench_median(t, reps);
  g = 4.0 * m * (double)n * d / *pair / 1e9;
  best = g > best ? g : best;
  free(t);
  free(x);
  free(y);
  free(z);
  return best;
}

/* Copy bandwidth: bytes read + written per second by memcpy of 512 MiB, on one thread and split
 * over all threads; the better of the two. */
static double bench_copy(int reps) {
  const size_t bytes = (size_t)512 << 20;
  char *src = (char *)alloc_floats(bytes / 4), *dst = (char *)alloc_floats(bytes / 4);
  memset(src, 1, bytes);
  memset(dst, 0, bytes);
  double *t = malloc((size_t)reps * sizeof(double)), best = 0.0;
  const int counts[2] = {1, bench_threads()};
  for (int c = 0; c < 2; c++) {
    for (int rep = 0; rep <= reps; rep++) {
      double t0 = bench_now();
#pragma omp parallel num_threads(counts[c])
      {
        size_t parts = (size_t)omp_get_num_threads(), me = (size_t)omp_get_thread_num();
        size_t part = bytes / parts, off = part * me;
        if (me == parts - 1) part = bytes - off;
        memcpy(dst + off, src + off, part);
      }
      if (rep > 0) t[rep - 1] = bench_now() - t0; /* the first is a warm-up */
    }
    double bw = 2.0 * (double)bytes / bench_median(t, reps) / 1e9;
    best = bw > best ? bw : best;
  }
  free(t);
  free(src);
  free(dst);
  return best;
}

/* XOR of words [0, count) of x, count a multiple of 32: one 64-byte load per cache line where
 * the CPU has AVX-512 (16-byte loads, four per line, keep fewer lines in flight and read ~30%
 * slower on the development VM). */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static uint64_t xor_words_avx512(const uint64_t *x,
                                                                    size_t count) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < count; i += 32) {
    a0 = _mm512_xor_si512(a0, _mm512_loadu_si512((const void *)(x + i)));
    a1 = _mm512_xor_si512(a1, _mm512_loadu_si512((const void *)(x + i + 8)));
    a2 = _mm512_xor_si512(a2, _mm512_loadu_si512((const void *)(x + i + 16)));
    a3 = _mm512_xor_si512(a3, _mm512_loadu_si512((const void *)(x + i + 24)));
  }
  uint64_t out[8];
  _mm512_storeu_si512((void *)out,
                      _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)));
  return out[0] ^ out[1] ^ out[2] ^ out[3] ^ out[4] ^ out[5] ^ out[6] ^ out[7];
}
#endif

static uint64_t xor_words(const uint64_t *x, size_t count) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) return xor_words_avx512(x, count);
#endif
  uint64_t a[8] = {0};
  for (size_t i = 0; i < count; i += 8)
    for (int k = 0; k < 8; k++)
      a[k] ^= x[i + (size_t)k];
  return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

/* Read bandwidth: bytes read per second by a loop that XORs 512 MiB into registers (no
 * writes), on one thread and split over all threads; the better of the two. */
static double bench_read(int reps) {
  const size_t bytes = (size_t)512 << 20, words = bytes / sizeof(uint64_t);
  uint64_t *src = (uint64_t *)alloc_floats(bytes / 4);
  memset(src, 1, bytes);
  double *t = malloc((size_t)reps * sizeof(double)), best = 0.0;
  const int counts[2] = {1, bench_threads()};
  volatile uint64_t sink = 0;
  for (int c = 0; c < 2; c++) {
    for (int rep = 0; rep <= reps; rep++) {
      double t0 = bench_now();
      uint64_t all = 0;
#pragma omp parallel num_threads(counts[c]) reduction(^ : all)
      {
        size_t parts = (size_t)omp_get_num_threads(), me = (size_t)omp_get_thread_num();
        size_t part = words / parts / 32 * 32, off = part * me;
        if (me == parts - 1) part = words - off; /* words is a multiple of 32 */
        all ^= xor_words(src + off, part);
      }
      sink ^= all;                                /* keeps the reads */
      if (rep > 0) t[rep - 1] = bench_now() - t0; /* the first is a warm-up */
    }
    double bw = (double)bytes / bench_median(t, reps) / 1e9;
    best = bw > best ? bw : best;
  }
  (void)sink; /* a use, for clang's -Wunused-but-set-variable */
  free(t);
  free(src);
  return best;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 7;
  if (reps < 5) reps = 5;
  attn_options_t opts = attn_default_options();
  opts.backend = ATTN_BACKEND_CPU;
  opts.cpu_threads = bench_threads();
  attn_context_t *ctx = NULL;
  check(attn_context_create(&opts, &ctx), NULL, "context");
  printf("# attn cpu backend, %d threads\n", bench_threads());
  const char *only = argc > 2 ? argv[2] : NULL; /* run one measurement (for profiling) */
#define WANT(name) (!only || strstr(only, name) != NULL)
  if (WANT("latency")) bench_attn(ctx, "latency", 1, 1, 4, 3, reps);
  if (WANT("tiny")) bench_attn(ctx, "tiny", 1, 4096, 4, 3, reps);
  if (WANT("medium")) bench_attn(ctx, "medium", 1, 4096, 128, 256, reps);
  if (WANT("gemm")) bench_attn(ctx, "gemm", 1, 8192, 1024, 512, reps);
  if (WANT("long")) bench_attn(ctx, "long", 1, 1024, 4096, 128, reps);
  if (WANT("decode")) bench_attn(ctx, "decode", 4096, 1, 256, 128, reps);
  attn_context_destroy(ctx);
  if (WANT("sgemm")) {
    double pair = 0.0, rate = bench_sgemm(reps, &pair);
    printf("sgemm %.6g\nsgemm_pair %.9g\n", rate, pair);
  }
  if (WANT("copy")) printf("copy %.6g\n", bench_copy(reps));
  if (WANT("read")) printf("read %.6g\n", bench_read(reps));
  return 0;
}
