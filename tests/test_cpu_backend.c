/*
 * test_cpu_backend.c - the fast CPU backend (host/backend_cpu.c) against the REFERENCE backend:
 *   - every algorithm forced (auto, simple, gemm, fused) x thread counts 1, 2 and 0 (all cores)
 *     x the four score functions, on shapes that hit each path: tiny d (the AVX-512 lane kernel),
 *     GEMM-shaped sets with a tail block, n longer than one online-softmax chunk and one GEMM
 *     block, decode-style batches of one query per set, varlen with masked and empty sets;
 *   - the step calls (scores, softmax, weighted sum) per algorithm;
 *   - bit-identical outputs across thread counts, runs, and a query's position in its set
 *     (GEMM tail blocks are zero-padded copies, full blocks use the caller's rows);
 *   - FUSED over widths that reach each form of its scores-and-context kernel (dots_axpy):
 *     against the reference, its scores against the scores call bit for bit, a query alone
 *     against the same query in its group;
 *   - workspace reuse: one context through a large, a small and a large call again gives the
 *     fresh-context bits, and after attn_context_reserve calls allocate nothing (the malloc
 *     family is interposed and counted);
 *   - the same checks with the kernels capped at AVX2 and at portable C (the suite re-runs itself
 *     with ATTN_CPU_ISA set).
 */
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

extern char **environ;

static const attn_algo_t ALGOS[] = {ATTN_ALGO_AUTO, ATTN_ALGO_SIMPLE, ATTN_ALGO_GEMM,
                                    ATTN_ALGO_FUSED};
static const int THREADS[] = {1, 2, 0};

static attn_context_t *cpu_context(attn_algo_t algo, int threads) {
  attn_options_t opts = attn_default_options();
  attn_context_t *ctx = NULL;
  opts.backend = ATTN_BACKEND_CPU;
  opts.algo = algo;
  opts.cpu_threads = threads;
  ck_assert_msg(attn_context_create(&opts, &ctx) == ATTN_OK, "cpu context: %s",
                attn_create_error());
  return ctx;
}

static void run_ok(attn_context_t *ctx, const attn_test_problem_t *p, attn_test_op_t op,
                   const float *in_s, const float *in_w, attn_test_out_t *o) {
  attn_status_t st = attn_test_run(ctx, p, op, ATTN_TEST_DIRECT, in_s, in_w, o);
  ck_assert_msg(st == ATTN_OK, "%s: %s", attn_status_string(st), attn_context_last_error(ctx));
}

/* The shapes of the grid; _i of the looped tests indexes it. All but the varlen one are big
 * enough (m * n * (d + dv + 16) >= 2^20) to run on several threads. */
typedef struct shape_case {
  const char *name;
  int64_t batch, m, n, d;
  int varlen, separate_values, shared;
  float q_scale;
} shape_case_t;

static const int32_t VAR_M[5] = {17, 0, 300, 1, 40};
static const int32_t VAR_N[5] = {90, 7, 300, 1, 0};
static const int32_t VAR_LEN[5] = {60, 7, 299, 0, 0};

static const shape_case_t SHAPES[] = {
    {"walkthrough-like d=3", 3, 5001, 4, 3, 0, 0, 0, 1.0f},
    {"tiny d, n over one chunk", 1, 401, 150, 5, 0, 1, 0, 1.0f},
    {"gemm-shaped with a full and a tail block", 2, 600, 100, 64, 0, 0, 0, 1.0f},
    {"long n, scores in the hundreds", 1, 40, 1500, 40, 0, 0, 0, 4.0f},
    {"decode-style", 64, 1, 256, 128, 0, 0, 0, 1.0f},
    {"shared annotations, d not a multiple of 16", 3, 100, 70, 45, 0, 1, 1, 1.0f},
    {"varlen with masked and empty sets", 5, 0, 0, 33, 1, 1, 0, 1.0f},
};
#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

static attn_test_spec_t make_spec(const shape_case_t *sc, attn_score_kind_t kind) {
  attn_test_spec_t spec = attn_test_spec(sc->batch, sc->m, sc->n, sc->d);
  if (sc->varlen) {
    spec.set_m = VAR_M;
    spec.set_n = VAR_N;
    spec.lengths = VAR_LEN;
  }
  spec.separate_values = sc->separate_values;
  spec.dv = sc->separate_values ? 7 : sc->d;
  spec.shared_annotations = sc->shared;
  spec.kind = kind;
  spec.h = 9;
  spec.q_scale = sc->q_scale;
  spec.outliers = 0.01;
  spec.seed = 17 + (uint64_t)kind;
  return spec;
}

/* ------------------------------------------------------------------------------------------ */
/* Against the reference                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* attn_forward, every algorithm x thread count x score function, with and without the optional
 * outputs. */
START_TEST(test_forward_vs_reference) {
  const shape_case_t *sc = &SHAPES[_i];
  for (int kind = ATTN_SCORE_DOT; kind <= ATTN_SCORE_ADDITIVE; kind++) {
    attn_test_spec_t spec = make_spec(sc, (attn_score_kind_t)kind);
    attn_test_problem_t p;
    attn_test_problem_init(&p, &spec);
    attn_tols_t tols = attn_test_tols(&p);
    for (int want = 0; want < 2; want++) {
      attn_test_out_t ref;
      attn_test_out_init(&ref, &p, want, want, 1);
      attn_test_run_on(ATTN_BACKEND_REFERENCE, &p, ATTN_TEST_FORWARD, ATTN_TEST_DIRECT, NULL, NULL,
                       &ref);
      for (int a = 0; a < 4; a++) {
        for (int t = 0; t < 3; t++) {
          attn_context_t *ctx = cpu_context(ALGOS[a], THREADS[t]);
          attn_test_out_t o;
          attn_test_out_init(&o, &p, want, want, 1);
          run_ok(ctx, &p, ATTN_TEST_FORWARD, NULL, NULL, &o);
          char what[160];
          snprintf(what, sizeof what, "%s, score %d, %s, %d threads, S/W %d", sc->name, kind,
                   attn_algo_name(ALGOS[a]), THREADS[t], want);
          ck_assert_msg(attn_test_compare(&p, &o, &ref, &tols, what) == 0, "%s", what);
          attn_test_out_free(&o);
          attn_context_destroy(ctx);
        }
      }
      attn_test_out_free(&ref);
    }
    attn_test_problem_free(&p);
  }
}
END_TEST

/* The step calls, each algorithm, two thread counts. */
START_TEST(test_steps_vs_reference) {
  const shape_case_t *sc = &SHAPES[_i];
  attn_test_spec_t spec = make_spec(sc, ATTN_SCORE_SCALED_DOT);
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  attn_tols_t tols = attn_test_tols(&p);
  attn_test_out_t rs, rw, rc;
  attn_test_out_init(&rs, &p, 1, 0, 0);
  attn_test_out_no_context(&rs);
  attn_test_run_on(ATTN_BACKEND_REFERENCE, &p, ATTN_TEST_SCORES, ATTN_TEST_DIRECT, NULL, NULL, &rs);
  /* the reference's scores feed both backends' softmax, its weights both weighted sums */
  attn_test_out_init(&rw, &p, 0, 1, 1);
  attn_test_out_no_context(&rw);
  attn_test_run_on(ATTN_BACKEND_REFERENCE, &p, ATTN_TEST_SOFTMAX, ATTN_TEST_DIRECT, rs.s, NULL,
                   &rw);
  attn_test_out_init(&rc, &p, 0, 0, 0);
  attn_test_run_on(ATTN_BACKEND_REFERENCE, &p, ATTN_TEST_WEIGHTED_SUM, ATTN_TEST_DIRECT, NULL, rw.w,
                   &rc);
  for (int a = 0; a < 4; a++) {
    for (int t = 0; t < 2; t++) {
      attn_context_t *ctx = cpu_context(ALGOS[a], THREADS[t]);
      char what[160];
      snprintf(what, sizeof what, "%s, %s, %d threads", sc->name, attn_algo_name(ALGOS[a]),
               THREADS[t]);
      attn_test_out_t os, ow, oc;
      attn_test_out_init(&os, &p, 1, 0, 0);
      attn_test_out_no_context(&os);
      run_ok(ctx, &p, ATTN_TEST_SCORES, NULL, NULL, &os);
      ck_assert_msg(attn_test_compare(&p, &os, &rs, &tols, what) == 0, "scores: %s", what);
      attn_test_out_init(&ow, &p, 0, 1, 1);
      attn_test_out_no_context(&ow);
      run_ok(ctx, &p, ATTN_TEST_SOFTMAX, rs.s, NULL, &ow);
      ck_assert_msg(attn_test_compare(&p, &ow, &rw, &tols, what) == 0, "softmax: %s", what);
      attn_test_out_init(&oc, &p, 0, 0, 0);
      run_ok(ctx, &p, ATTN_TEST_WEIGHTED_SUM, NULL, rw.w, &oc);
      ck_assert_msg(attn_test_compare(&p, &oc, &rc, &tols, what) == 0, "weighted sum: %s", what);
      attn_test_out_free(&os);
      attn_test_out_free(&ow);
      attn_test_out_free(&oc);
      attn_context_destroy(ctx);
    }
  }
  attn_test_out_free(&rs);
  attn_test_out_free(&rw);
  attn_test_out_free(&rc);
  attn_test_problem_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Bit-for-bit properties                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* The same call on 1, 2, 0 (all cores) and 3 threads, and twice on each, gives the same bits. */
START_TEST(test_thread_count_and_run_invariance) {
  const shape_case_t *sc = &SHAPES[_i];
  static const int MORE_THREADS[] = {2, 0, 3};
  attn_test_spec_t spec = make_spec(sc, _i % 2 ? ATTN_SCORE_GENERAL : ATTN_SCORE_DOT);
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  for (int a = 0; a < 4; a++) {
    for (int want = 0; want < 2; want++) {
      attn_context_t *one = cpu_context(ALGOS[a], 1);
      attn_test_out_t base;
      attn_test_out_init(&base, &p, want, want, 1);
      run_ok(one, &p, ATTN_TEST_FORWARD, NULL, NULL, &base);
      attn_context_destroy(one);
      for (int t = 0; t < 3; t++) {
        attn_context_t *ctx = cpu_context(ALGOS[a], MORE_THREADS[t]);
        for (int rep = 0; rep < 2; rep++) {
          attn_test_out_t o;
          attn_test_out_init(&o, &p, want, want, 1);
          run_ok(ctx, &p, ATTN_TEST_FORWARD, NULL, NULL, &o);
          char what[160];
          snprintf(what, sizeof what, "%s, %s, %d threads vs 1, run %d", sc->name,
                   attn_algo_name(ALGOS[a]), MORE_THREADS[t], rep);
          ck_assert_msg(attn_test_compare(&p, &o, &base, NULL, what) == 0, "%s", what);
          attn_test_out_free(&o);
        }
        attn_context_destroy(ctx);
      }
      attn_test_out_free(&base);
    }
  }
  attn_test_problem_free(&p);
}
END_TEST

static int same_bits(const float *x, const float *y, size_t count) {
  return attn_test_bit_mismatches(NULL, x, y, count, 0) == 0;
}

/* A query's outputs are the same bits alone, inside its set at any position (GEMM: in a full
 * block read in place, or in a zero-padded tail block), and with any thread count. */
START_TEST(test_position_invariance) {
  static const int64_t ROWS[] = {0, 1, 300, 511, 512, 599};
  /* d = 64, n = 100: GEMM blocks of 512 rows, so rows 512.. are a tail block */
  attn_test_spec_t spec = attn_test_spec(1, 600, 100, 64);
  spec.kind = _i == 0 ? ATTN_SCORE_SCALED_DOT : ATTN_SCORE_GENERAL;
  spec.outliers = 0.01;
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  for (int a = 0; a < 4; a++) {
    if (ALGOS[a] == ATTN_ALGO_AUTO) continue; /* AUTO may pick another path for one query */
    attn_context_t *ctx = cpu_context(ALGOS[a], _i == 0 ? 0 : 2);
    for (int want = 0; want < 2; want++) {
      attn_test_out_t all;
      attn_test_out_init(&all, &p, want, want, 1);
      run_ok(ctx, &p, ATTN_TEST_FORWARD, NULL, NULL, &all);
      for (size_t k = 0; k < sizeof ROWS / sizeof ROWS[0]; k++) {
        for (int64_t rows = 1; rows <= 3; rows += 2) { /* alone, and with neighbours */
          int64_t r0 = ROWS[k] + rows > 600 ? 600 - rows : ROWS[k];
          attn_test_problem_t sub;
          attn_test_problem_subset(&p, 0, r0, rows, &sub);
          attn_test_out_t o;
          attn_test_out_init(&o, &sub, want, want, 1);
          run_ok(ctx, &sub, ATTN_TEST_FORWARD, NULL, NULL, &o);
          for (int64_t r = 0; r < rows; r++) {
            int64_t i = r0 + r;
            ck_assert_msg(same_bits(o.c + r * sub.ldc, all.c + i * p.ldc, (size_t)p.shape.dv),
                          "%s: context of query %lld differs (%lld rows from %lld)",
                          attn_algo_name(ALGOS[a]), (long long)i, (long long)rows, (long long)r0);
            ck_assert_msg(same_bits(o.lse + r, all.lse + i, 1), "%s: lse of query %lld",
                          attn_algo_name(ALGOS[a]), (long long)i);
            if (want)
              ck_assert_msg(same_bits(o.w + r * sub.lds, all.w + i * p.lds, 100),
                            "%s: weights of query %lld", attn_algo_name(ALGOS[a]), (long long)i);
          }
          attn_test_out_free(&o);
          attn_test_problem_free(&sub);
        }
      }
      attn_test_out_free(&all);
    }
    attn_context_destroy(ctx);
  }
  attn_test_problem_free(&p);
}
END_TEST

/* FUSED runs each chunk's scores together with the previous chunk's context update
 * (dots_axpy), in a straight-line form per width up to d = dv = 128 that keeps the query in
 * registers, and a generic loop otherwise. For widths that reach every form and both sides of
 * the limits (d, dv = 9 .. 200, values shared or of another width), three sets of 9 queries
 * and 150 annotations (three chunks, the last one partial; the last set masked to 70): the
 * forward matches the reference, its scores are the scores call's bits (dots), and a query
 * alone gives the bits it has in its group of 8. */
static const int64_t FUSED_WIDTHS[][2] = {
    {9, 9},     {17, 17},   {40, 40},   {50, 50},   {64, 64}, {65, 65},  {100, 100}, {113, 113},
    {127, 127}, {128, 128}, {129, 129}, {200, 200}, {128, 7}, {33, 128}, {100, 64}};
#define N_FUSED_WIDTHS ((int)(sizeof FUSED_WIDTHS / sizeof FUSED_WIDTHS[0]))

START_TEST(test_fused_widths) {
  static const int32_t LEN[3] = {150, 150, 70};
  const int64_t d = FUSED_WIDTHS[_i][0], dv = FUSED_WIDTHS[_i][1];
  attn_test_spec_t spec = attn_test_spec(3, 9, 150, d);
  spec.separate_values = dv != d;
  spec.dv = dv;
  spec.lengths = LEN;
  spec.kind = _i % 2 ? ATTN_SCORE_SCALED_DOT : ATTN_SCORE_DOT;
  spec.q_scale = 2.0f; /* sharper weights: the running max moves between chunks */
  spec.seed = 5 + (uint64_t)_i;
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  attn_tols_t tols = attn_test_tols(&p);
  char what[96];
  snprintf(what, sizeof what, "fused, d %lld, dv %lld", (long long)d, (long long)dv);

  attn_test_out_t ref, o, sc;
  attn_test_out_init(&ref, &p, 1, 1, 1);
  attn_test_run_on(ATTN_BACKEND_REFERENCE, &p, ATTN_TEST_FORWARD, ATTN_TEST_DIRECT, NULL, NULL,
                   &ref);
  attn_context_t *ctx = cpu_context(ATTN_ALGO_FUSED, 2);
  attn_test_out_init(&o, &p, 1, 1, 1);
  run_ok(ctx, &p, ATTN_TEST_FORWARD, NULL, NULL, &o);
  ck_assert_msg(attn_test_compare(&p, &o, &ref, &tols, what) == 0, "%s", what);
  attn_test_out_init(&sc, &p, 1, 0, 0);
  attn_test_out_no_context(&sc);
  run_ok(ctx, &p, ATTN_TEST_SCORES, NULL, NULL, &sc);
  ck_assert_msg(same_bits(sc.s, o.s, o.s_count), "%s: forward scores differ from the scores call",
                what);

  attn_test_out_t all;
  attn_test_out_init(&all, &p, 0, 0, 1);
  run_ok(ctx, &p, ATTN_TEST_FORWARD, NULL, NULL, &all);
  for (int64_t b = 0; b < 3; b++) {
    for (int64_t i = 0; i < 9; i += 8) { /* first of a group of 8, and the 9th alone */
      attn_test_problem_t sub;
      attn_test_problem_subset(&p, b, i, 1, &sub);
      attn_test_out_t one;
      attn_test_out_init(&one, &sub, 0, 0, 1);
      run_ok(ctx, &sub, ATTN_TEST_FORWARD, NULL, NULL, &one);
      attn_test_set_t st = attn_test_set(&p, b);
      ck_assert_msg(same_bits(one.c, all.c + st.c + (size_t)(i * p.ldc), (size_t)dv),
                    "%s: context of query %lld of set %lld alone", what, (long long)i,
                    (long long)b);
      ck_assert_msg(same_bits(one.lse, all.lse + st.lse + (size_t)i, 1),
                    "%s: lse of query %lld of set %lld alone", what, (long long)i, (long long)b);
      attn_test_out_free(&one);
      attn_test_problem_free(&sub);
    }
  }
  attn_test_out_free(&all);
  attn_test_out_free(&sc);
  attn_test_out_free(&o);
  attn_test_out_free(&ref);
  attn_context_destroy(ctx);
  attn_test_problem_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Workspace                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* Allocation counting: this executable's malloc family forwards to glibc's and counts calls
 * while `counting` is set (ELF interposition also catches the library's calls). Not under
 * AddressSanitizer, which owns malloc itself; the reuse checks still run there. gcc says ASan
 * with __SANITIZE_ADDRESS__, clang with __has_feature(address_sanitizer). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ATTN_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(ATTN_TEST_ASAN)
static volatile int counting;
static volatile long allocations;
#else
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
static volatile int counting;
static volatile long allocations;

void *malloc(size_t size) {
  if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
  return __libc_malloc(size);
}
void *calloc(size_t count, size_t size) {
  if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
  return __libc_calloc(count, size);
}
void *realloc(void *ptr, size_t size) {
  if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
  return __libc_realloc(ptr, size);
}
int posix_memalign(void **ptr, size_t align, size_t size) {
  if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
  void *p = __libc_memalign(align, size);
  if (!p) return 12; /* ENOMEM */
  *ptr = p;
  return 0;
}
void *aligned_alloc(size_t align, size_t size) {
  if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
  return __libc_memalign(align, size);
}
#endif

/* One context through large, small, large calls matches fresh contexts bit for bit; after
 * attn_context_reserve for the large shape no call allocates. */
START_TEST(test_workspace_reuse) {
  const shape_case_t *big = &SHAPES[3], *small = &SHAPES[0];
  attn_test_spec_t sb = make_spec(big, ATTN_SCORE_DOT), ss = make_spec(small, ATTN_SCORE_DOT);
  attn_test_problem_t pb, ps;
  attn_test_problem_init(&pb, &sb);
  attn_test_problem_init(&ps, &ss);
  for (int a = 0; a < 4; a++) {
    attn_test_out_t fresh_b, fresh_s;
    attn_test_out_init(&fresh_b, &pb, 1, 1, 1);
    attn_test_out_init(&fresh_s, &ps, 1, 1, 1);
    attn_context_t *f1 = cpu_context(ALGOS[a], 0), *f2 = cpu_context(ALGOS[a], 0);
    run_ok(f1, &pb, ATTN_TEST_FORWARD, NULL, NULL, &fresh_b);
    run_ok(f2, &ps, ATTN_TEST_FORWARD, NULL, NULL, &fresh_s);
    attn_context_destroy(f1);
    attn_context_destroy(f2);

    /* 16 threads whatever the machine: more than either call has work items for. An OpenMP
     * team sized to each call's items allocated on a 16-core machine (libgomp keeps the last
     * team only for a region of the same size) and passed on a 2-core one. */
    attn_context_t *ctx = cpu_context(ALGOS[a], 16);
    ck_assert_int_eq(attn_context_reserve(ctx, &pb.shape, &pb.score), ATTN_OK);
    /* round 0: the reserved large call allocates nothing, the small one may (another plan);
     * round 1: neither allocates */
    for (int round = 0; round < 2; round++) {
      attn_test_out_t ob, os;
      attn_test_out_init(&ob, &pb, 1, 1, 1);
      attn_test_out_init(&os, &ps, 1, 1, 1);
      allocations = 0;
      counting = 1;
      attn_status_t st_b =
          attn_test_run(ctx, &pb, ATTN_TEST_FORWARD, ATTN_TEST_DIRECT, NULL, NULL, &ob);
      counting = 0;
      ck_assert_msg(allocations == 0, "%s: the reserved call allocated %ld times",
                    attn_algo_name(ALGOS[a]), (long)allocations);
      counting = round;
      attn_status_t st_s =
          attn_test_run(ctx, &ps, ATTN_TEST_FORWARD, ATTN_TEST_DIRECT, NULL, NULL, &os);
      counting = 0;
      ck_assert_msg(allocations == 0, "%s: a steady-state call allocated %ld times",
                    attn_algo_name(ALGOS[a]), (long)allocations);
      ck_assert_int_eq(st_b, ATTN_OK);
      ck_assert_int_eq(st_s, ATTN_OK);
      ck_assert_int_eq(attn_test_compare(&pb, &ob, &fresh_b, NULL, "reused, large"), 0);
      ck_assert_int_eq(attn_test_compare(&ps, &os, &fresh_s, NULL, "reused, small"), 0);
      attn_test_out_free(&ob);
      attn_test_out_free(&os);
    }
    attn_context_destroy(ctx);
    attn_test_out_free(&fresh_b);
    attn_test_out_free(&fresh_s);
  }
  attn_test_problem_free(&pb);
  attn_test_problem_free(&ps);
}
END_TEST

/* attn_context_reserve covers every valid length up to n, not only n and the short ones: with
 * forced GEMM and an additive score, a set of 2976 valid annotations out of 2983 needs a larger
 * GEMM item (a taller block) than n = 2983 does. */
START_TEST(test_reserve_covers_every_length) {
  static const int32_t LEN[1] = {2976};
  attn_test_spec_t spec = attn_test_spec(1, 1, 2983, 16);
  spec.kind = ATTN_SCORE_ADDITIVE;
  spec.h = 16;
  spec.lengths = LEN;
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  attn_context_t *ctx = cpu_context(ATTN_ALGO_GEMM, 1);
  ck_assert_int_eq(attn_context_reserve(ctx, &p.shape, &p.score), ATTN_OK);
  attn_test_out_t o;
  attn_test_out_init(&o, &p, 1, 1, 1);
  allocations = 0;
  counting = 1;
  attn_status_t st = attn_test_run(ctx, &p, ATTN_TEST_FORWARD, ATTN_TEST_DIRECT, NULL, NULL, &o);
  counting = 0;
  ck_assert_msg(st == ATTN_OK, "%s", attn_context_last_error(ctx));
  ck_assert_msg(allocations == 0, "the reserved call allocated %ld times", (long)allocations);
  attn_test_out_free(&o);
  attn_context_destroy(ctx);
  attn_test_problem_free(&p);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Narrower kernels                                                                           */
/* ------------------------------------------------------------------------------------------ */

/* Re-runs this suite (minus this test) with the kernels capped at AVX2, then at portable C. */
START_TEST(test_narrower_isas) {
  static const char *ISAS[] = {"ATTN_CPU_ISA=avx2", "ATTN_CPU_ISA=generic"};
  if (getenv("ATTN_CPU_ISA")) return; /* already a re-run */
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  ck_assert_msg(len > 0, "cannot find this executable");
  self[len] = '\0';
  for (int i = 0; i < 2; i++) {
    size_t count = 0;
    while (environ[count])
      count++;
    char **env = attn_test_calloc(count + 3, sizeof(char *));
    memcpy(env, environ, count * sizeof(char *));
    env[count] = (char *)ISAS[i];
    env[count + 1] = (char *)"CK_EXCLUDE_TAGS=rerun";
    char *argv[] = {self, NULL};
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, self, NULL, NULL, argv, env), 0);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the suite failed with %s",
                  ISAS[i]);
    free(env);
  }
}
END_TEST

static Suite *make_cpu_backend_suite(void) {
  Suite *s = suite_create("cpu_backend");
  TCase *tc = tcase_create("cpu_backend");
  tcase_set_timeout(tc, 900);
  tcase_add_loop_test(tc, test_forward_vs_reference, 0, N_SHAPES);
  tcase_add_loop_test(tc, test_steps_vs_reference, 0, N_SHAPES);
  tcase_add_loop_test(tc, test_thread_count_and_run_invariance, 0, N_SHAPES);
  tcase_add_loop_test(tc, test_position_invariance, 0, 2);
  tcase_add_loop_test(tc, test_fused_widths, 0, N_FUSED_WIDTHS);
  tcase_add_test(tc, test_workspace_reuse);
  tcase_add_test(tc, test_reserve_covers_every_length);
  suite_add_tcase(s, tc);
  TCase *rerun = tcase_create("narrower_isas");
  tcase_set_timeout(rerun, 1800);
  tcase_set_tags(rerun, "rerun");
  tcase_add_test(rerun, test_narrower_isas);
  suite_add_tcase(s, rerun);
  return s;
}

int main(void) {
  return attn_test_main(make_cpu_backend_suite());
}
