/*
 * test_gpu_compute.c - the CUDA backend's results: every algorithm (SIMPLE, GEMM, FUSED, ROWS,
 * AUTO) on every step and on attn_forward with every combination of optional outputs, against the
 * REFERENCE backend within tests/tolerance.h and against the SIMPLE kernels; two runs
 * bit-identical; a query's result independent of the batch around it.
 *
 * The flash kernels' plans are checked against each other bit for bit, on the grid and on
 * shapes of their own (FLASH_SHAPES: BLOCK<8> by default on a varlen batch, float4 rows over
 * several slices, dv wider than a block, the short-set kernel, TILE<16>, the combine's groups of
 * spans, ...), with NaN and -inf in long sets, and on seeded random problems biased toward the
 * edges where the plans switch (the "fuzz" case).
 *
 * The grid covers the awkward shapes (n = 1, d = 1, d not a multiple of 4, n longer than a
 * block and than the softmax's short-row limit, d and dv wider than a warp and a block,
 * varlen sets with no queries or no annotations, masks, ld and set gaps, shared annotations,
 * separate values, scores in the thousands) and GEMM-shaped ones (m >= 32 queries per set, where
 * forced GEMM runs cuBLAS; AUTO never does), for all four score functions. Exits 77 without a
 * usable device.
 */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flash_plans.h"
#include "gpu_util.h"

static const int32_t VARLEN_M[4] = {3, 0, 2, 4};      /* set 1 has no queries */
static const int32_t VARLEN_N[4] = {5, 4, 0, 1100};   /* set 2 has no annotations */
static const int32_t VARLEN_LEN[4] = {5, 2, 0, 1037}; /* masks inside sets 1 and 3 */
static const int32_t UNIFORM_LEN[3] = {0, 3, 9};      /* set 0 fully masked */
static const int32_t VARLEN2_M[3] = {1, 40, 2};
static const int32_t VARLEN2_N[3] = {2000, 17, 1};
/* Flash shapes: 33.6 queries a set (BLOCK<8> by default), tiles of 8 rows straddling sets, long
 * sets with masks (3 spans; 2 spans whose last has one row), a set without queries, one without
 * annotations. */
static const int32_t FLASH_M[5] = {37, 0, 53, 45, 33};
static const int32_t FLASH_N[5] = {600, 3, 0, 300, 9};
static const int32_t FLASH_LEN[5] = {517, 3, 0, 257, 9};
static const int32_t FLASH_UNIFORM_LEN[2] = {700, 513};
static const int32_t TILE_LEN[2] = {400, 259};    /* 2 spans (the last of 144 rows); 2 (of 3) */
static const int32_t TILE_LEN3[3] = {0, 300, 33}; /* fully masked; 2 spans; 2 chunks */
static const int32_t COMBINE_LEN[3] = {8500, 2100, 8192}; /* 34 spans (32 + 2), 9, 32 */
static const int32_t SHORT_LEN[3] = {6, 0, 4};            /* full, fully masked, masked */
static const int32_t SHORT4_LEN[3] = {4, 0, 3};           /* likewise, on sets of 4 */
static const int32_t TILE16_LEN[2] = {530, 256};          /* 3 spans (the last of 18 rows); 1 */
static const int32_t ONE_SET_LEN[1] = {3};                /* a set of 4 masked to 3 */
static const int32_t ONE_SET_FULL_LEN[1] = {4};           /* a set of 4, lengths given */

#define GRID_SIZE 13
/* Shapes GRID_SIZE .. GRID_SIZE + FLASH_SHAPES - 1 run only in the flash and invariance tests. */
#define FLASH_SHAPES 17
/* The shapes whose additive form keeps h <= 4 (THREAD's short-set kernel): 19 and 21 to 28. */
static int short_set_shape(int shape) {
  return shape == GRID_SIZE + 6 || (shape >= GRID_SIZE + 8 && shape <= GRID_SIZE + 15);
}

static attn_test_spec_t grid_spec(int i) {
  attn_test_spec_t s;
  switch (i) {
  case 0: /* the smallest: n = 1, d = 1 */
    s = attn_test_spec(1, 1, 1, 1);
    break;
  case 1: /* GEMM-shaped with n = 1 */
    s = attn_test_spec(1, 40, 1, 5);
    break;
  case 2: /* GEMM-shaped with d = 1 */
    s = attn_test_spec(3, 33, 7, 1);
    break;
  case 3: /* GEMM-shaped, d not a multiple of 4, ld and set gaps */
    s = attn_test_spec(2, 40, 13, 7);
    s.ld_gap = 3;
    s.set_gap = 5;
    break;
  case 4: /* n longer than a block and than a warp's short rows */
    s = attn_test_spec(2, 2, 1500, 6);
    break;
  case 5: /* d wider than a warp's stride, n past a tile */
    s = attn_test_spec(1, 3, 700, 130);
    break;
  case 6: /* GEMM-shaped, one annotation set shared by every set */
    s = attn_test_spec(4, 34, 9, 8);
    s.shared_annotations = 1;
    break;
  case 7: /* varlen: an empty query set, an empty annotation set, masks, a long set */
    s = attn_test_spec(4, 0, 0, 5);
    s.set_m = VARLEN_M;
    s.set_n = VARLEN_N;
    s.lengths = VARLEN_LEN;
    s.ld_gap = 2;
    break;
  case 8: /* uniform with masks, one set fully masked */
    s = attn_test_spec(3, 2, 9, 4);
    s.lengths = UNIFORM_LEN;
    break;
  case 9: /* GEMM-shaped scores in the thousands (and outliers beyond) */
    s = attn_test_spec(2, 35, 11, 5);
    s.q_scale = 30.0f;
    s.a_scale = 30.0f;
    s.outliers = 0.05;
    break;
  case 10: /* GEMM-shaped with separate values, dv != d */
    s = attn_test_spec(2, 36, 6, 3);
    s.separate_values = 1;
    s.dv = 5;
    break;
  case 11: /* dv wider than a block */
    s = attn_test_spec(1, 4, 20, 3);
    s.separate_values = 1;
    s.dv = 300;
    break;
  case 12: /* varlen without masks: a long set with one query, a wide set of 40 queries */
    s = attn_test_spec(3, 0, 0, 9);
    s.set_m = VARLEN2_M;
    s.set_n = VARLEN2_N;
    s.outliers = 0.02;
    break;
  case 13: /* flash: varlen, BLOCK<8> by default, float4 rows (d = 56: a full and a part slice
            * of BLOCK's 32 columns; WARP's loads in batches of 8, 4 and 1) */
    s = attn_test_spec(5, 0, 0, 56);
    s.set_m = FLASH_M;
    s.set_n = FLASH_N;
    s.lengths = FLASH_LEN;
    s.separate_values = 1;
    s.dv = 20;
    break;
  case 14: /* flash: dv wider than a block, float4 rows with gaps, spans ending in one row */
    s = attn_test_spec(2, 9, 700, 64);
    s.lengths = FLASH_UNIFORM_LEN;
    s.separate_values = 1;
    s.dv = 200;
    s.ld_gap = 4;
    s.set_gap = 4;
    s.outliers = 0.02;
    break;
  case 15: /* flash: d a multiple of 4 but rows not 16-byte aligned, large scores, 2 spans; a
            * full tile of 64 queries, whose general kind has an aligned q' (the projection) and
            * a' rows that are not: TILE's checked fetch, not its fast one */
    s = attn_test_spec(1, 64, 300, 36);
    s.ld_gap = 1;
    s.q_scale = 10.0f;
    s.a_scale = 10.0f;
    break;
  case 16: /* flash TILE<64> by default on the emulator's 4 multiprocessors (TILE<16> on a GPU of
            * many: too few tiles of 64), dot-like: 3 tiles of queries a set (the last of 2), float4
            * rows with gaps (ld = 68: the fast fetch's row pointers step by ld, not k), 4 slices
            * of k, dv = 136 (column blocks of 64, 64 and 8), masked spans whose last has 144 rows
            * (a full and a part stage) or 3 */
    s = attn_test_spec(2, 130, 520, 64);
    s.ld_gap = 4;
    s.lengths = TILE_LEN;
    s.separate_values = 1;
    s.dv = 136;
    break;
  case 17: /* flash TILE by default (as 16): scalar loads (d = 37: 2 full slices and 5 columns), the
            * values are the annotations, a fully masked set, a set of 33 rows */
    s = attn_test_spec(3, 70, 300, 37);
    s.lengths = TILE_LEN3;
    s.outliers = 0.02;
    break;
  case 18: /* flash TILE by default (as 16): exactly one tile a set, float4 rows with a part slice
            * of k after full ones (d = 44), values the annotations (one column block, 44 wide) */
    s = attn_test_spec(2, 64, 300, 44);
    break;
  case 19: /* flash THREAD's short sets (forced; k, dv <= 4, n <= 8): 800 queries a set, so
            * that groups of 128 rows lie in one set (rows run 4 a thread) or across two (one at
            * a time), the last group part full, and the emulator's grid of 12 warps (3 of its 4
            * resident blocks: attn_cuda_short_grid) takes 19 groups (two turns for some); a full, a
            * fully masked and a masked set, rows not 16-byte aligned, separate values; d = 4 (the
            * 4-wide kernel) and, for additive scores, h = 3 (the 3-wide one) */
    s = attn_test_spec(3, 800, 6, 4);
    s.lengths = SHORT_LEN;
    s.separate_values = 1;
    s.dv = 2;
    s.ld_gap = 1;
    s.outliers = 0.02;
    break;
  case 20: /* flash TILE<16> by default on a GPU of many multiprocessors, TILE<32> on the
            * emulator's 4 (dot-like, 20 queries a set: a full tile and one of 4),
            * float4 rows, 3 slices of k (d = 40: two full, a part), dv = 136 (column blocks
            * of 128 and 8), separate values, masked spans (the last of 18 rows: a part
            * chunk), a set of exactly one span */
    s = attn_test_spec(2, 20, 600, 40);
    s.lengths = TILE16_LEN;
    s.separate_values = 1;
    s.dv = 136;
    s.outliers = 0.02;
    break;
  case 21: /* shape 19 on sets of at most 4 annotations: the short-set kernel's instance for
            * them (N = 4), with a masked and a fully masked set and warps across two sets;
            * 1400 queries a set (33 groups of 128 rows), so that on the emulator, whose grid
            * for them is 12 warps (attn_cuda_short_grid), warps take two and three turns of its
            * loop, loading the next turn's q' ahead across set boundaries */
    s = attn_test_spec(3, 1400, 4, 4);
    s.lengths = SHORT4_LEN;
    s.separate_values = 1;
    s.dv = 3;
    s.ld_gap = 1;
    s.outliers = 0.02;
    break;
  case 22: /* the walkthrough's: a uniform batch of one set (4 annotations, masked to 3), d = 3,
            * the values the annotations; 2500 queries, so that the short-set kernel's loop for
            * one set (dot-like scores; additive ones take the general loop) runs 20 groups of
            * 128 rows, the last of 68, and on the emulator (4 resident blocks; the grid takes 3,
            * 12 warps: attn_cuda_short_grid) warps 0 to 7 take a second turn (seven of them on
            * whole groups: both q' buffers); rows of 5 floats, not 16-byte aligned */
    s = attn_test_spec(1, 2500, 4, 3);
    s.lengths = ONE_SET_LEN;
    s.ld_gap = 2;
    break;
  case 23: /* shape 22 unmasked (no lengths), d = 4 (the 4-wide instance), separate values, 2600
            * queries (21 groups, the last of 40) */
    s = attn_test_spec(1, 2600, 4, 4);
    s.separate_values = 1;
    s.dv = 4;
    s.outliers = 0.02;
    break;
  case 24: /* the walkthrough's exactly: one set of 4 annotations, unmasked, d = 3, the values
            * the annotations; 2560 queries, 20 whole groups of 128 rows, and rows of 3 floats
            * (ld = d): the packed instance (short_packed_call; dot-like kinds), 16-byte copies
            * and stores (flash_short_fetch_packed) */
    s = attn_test_spec(1, 2560, 4, 3);
    s.outliers = 0.02;
    break;
  case 25: /* shape 24 with rows of 4 floats (ld = d + 1): groups that fit the 3-wide instance but
            * are not packed, so they take its 4-byte copies and stores (flash_short_fetch) */
    s = attn_test_spec(1, 2560, 4, 3);
    s.outliers = 0.02;
    s.ld_gap = 1;
    break;
  case 26: /* shape 24 on 2500 queries with lengths given (all 4 valid, which only the device
            * knows): the 3-wide instance's one-set loop, 19 whole groups fitting it in the
            * packed layout and a last one of 68 rows in the 4-byte one. On the emulator (a grid
            * of 3 blocks of 4 warps: attn_cuda_short_grid) warps 0 to 7 take a second turn; in
            * block 1, warps 4 to 6 on packed groups and warp 7 on the last group, in the same
            * buffer: layouts that shared a slot across warps would mix their q', and warp 7
            * switches from the packed layout to the 4-byte one between its turns */
    s = attn_test_spec(1, 2500, 4, 3);
    s.lengths = ONE_SET_FULL_LEN;
    s.outliers = 0.02;
    break;
  case 27: /* shape 24 on 2503 queries: the packed instance (dot-like kinds) with a last, part
            * group of 71 rows, whose lane 17 has 3 rows (4-byte copies, zeros in its fourth
            * row's slots, 3 rows stored) and lanes 18 to 31 none (flash_short_fetch_packed_part);
            * on the emulator a warp's prefetch in the loop fetches it */
    s = attn_test_spec(1, 2503, 4, 3);
    s.outliers = 0.02;
    break;
  case 28: /* shape 24 on 65 queries: the packed instance's only group is a part one, fetched
            * before the loop, whose lane 16 has 1 row */
    s = attn_test_spec(1, 65, 4, 3);
    s.outliers = 0.02;
    break;
  default: /* flash, split by default (9 tiles): the combine kernel folds 34 spans a row (a
            * full group of 32 and a group of 2), 9 (one part group) and 32 (one full group), in
            * two groups of 32 columns, the second of 8 */
    s = attn_test_spec(3, 3, 8500, 16);
    s.lengths = COMBINE_LEN;
    s.separate_values = 1;
    s.dv = 40;
    break;
  }
  s.seed = 1000 + (uint64_t)i;
  return s;
}

static void grid_problem(attn_test_problem_t *p, int shape, int kind) {
  attn_test_spec_t s = grid_spec(shape);
  s.kind = (attn_score_kind_t)kind;
  /* h = 8 in the flash shapes: the projected annotations then take the float4 path (3 in the
   * short-set ones: THREAD's short-set kernel takes h <= 4) */
  s.h = kind != ATTN_SCORE_ADDITIVE ? 0 : short_set_shape(shape) ? 3 : shape >= GRID_SIZE ? 8 : 6;
  if (kind == ATTN_SCORE_SCALED_DOT) s.scale = shape % 2 ? 0.0f : 0.25f;
  attn_test_problem_init(p, &s);
}

#define NALGOS 5
static const attn_algo_t ALGOS[NALGOS] = {ATTN_ALGO_SIMPLE, ATTN_ALGO_GEMM, ATTN_ALGO_FUSED,
                                          ATTN_ALGO_ROWS, ATTN_ALGO_AUTO};

/* Runs op on ctx through device buffers; fails the test on an error. */
static void run(attn_context_t *ctx, const attn_test_problem_t *p, attn_test_op_t op,
                const float *in_s, const float *in_w, attn_test_out_t *o, const char *what) {
  attn_status_t st = attn_test_run(ctx, p, op, ATTN_TEST_BUFFERS, in_s, in_w, o);
  ck_assert_msg(st == ATTN_OK, "%s: %s: %s", what, attn_status_string(st),
                attn_context_last_error(ctx));
}

static void expect_match(const attn_test_problem_t *p, const attn_test_out_t *x,
                         const attn_test_out_t *ref, const attn_tols_t *tols, const char *what) {
  ck_assert_msg(attn_test_compare(p, x, ref, tols, what) == 0, "%s mismatches", what);
}

/* The forward of p on ctx under the flash plan `plan` (ATTN_CU_FLASH; "" for the default), checked
 * against the reference within tols: fails the test on an error or a mismatch. */
static void run_flash_plan(attn_context_t *ctx, const attn_test_problem_t *p, const char *plan,
                           const attn_test_out_t *ref, const attn_tols_t *tols, attn_test_out_t *o,
                           const char *what) {
  if (*plan) ck_assert_int_eq(setenv("ATTN_CU_FLASH", plan, 1), 0);
  attn_status_t st = attn_test_run(ctx, p, ATTN_TEST_FORWARD, ATTN_TEST_BUFFERS, NULL, NULL, o);
  ck_assert_int_eq(unsetenv("ATTN_CU_FLASH"), 0);
  ck_assert_msg(st == ATTN_OK, "%s: %s", what, attn_context_last_error(ctx));
  expect_match(p, o, ref, tols, what);
}

/* Every algorithm, every step and every output combination of forward, against the reference
 * and against SIMPLE. _i = shape * 4 + score kind. */
START_TEST(test_grid) {
  const int shape = _i / 4, kind = _i % 4;
  attn_test_problem_t p;
  attn_test_out_t ref, simple;
  grid_problem(&p, shape, kind);
  gpu_reference(&p, ATTN_TEST_FORWARD, NULL, NULL, &ref);
  attn_tols_t tols = attn_test_tols(&p);
  attn_test_out_init(&simple, &p, 1, 1, 1);
  for (int a = 0; a < NALGOS; a++) {
    attn_context_t *ctx = gpu_context(ALGOS[a]);
    char what[128];
    for (int outs = 7; outs >= 0; outs--) { /* bit 0: scores, 1: weights, 2: lse */
      attn_test_out_t o;
      attn_test_out_init(&o, &p, outs & 1, outs & 2, outs & 4);
      snprintf(what, sizeof what, "shape %d kind %d %s forward outputs %d", shape, kind,
               attn_algo_name(ALGOS[a]), outs);
      run(ctx, &p, ATTN_TEST_FORWARD, NULL, NULL, &o, what);
      expect_match(&p, &o, &ref, &tols, what);
      if (outs == 7 && a == 0) { /* keep SIMPLE's full output */
        attn_test_out_free(&simple);
        simple = o;
        continue;
      }
      if (outs == 7) {
        snprintf(what, sizeof what, "shape %d kind %d %s forward vs simple", shape, kind,
                 attn_algo_name(ALGOS[a]));
        expect_match(&p, &o, &simple, &tols, what);
      }
      attn_test_out_free(&o);
    }

    attn_test_out_t o;
    attn_test_out_init(&o, &p, 1, 0, 0);
    attn_test_out_no_context(&o);
    snprintf(what, sizeof what, "shape %d kind %d %s scores", shape, kind,
             attn_algo_name(ALGOS[a]));
    run(ctx, &p, ATTN_TEST_SCORES, NULL, NULL, &o, what);
    expect_match(&p, &o, &ref, &tols, what);
    attn_test_out_free(&o);

    attn_test_out_init(&o, &p, 0, 1, 1);
    attn_test_out_no_context(&o);
    snprintf(what, sizeof what, "shape %d kind %d %s softmax", shape, kind,
             attn_algo_name(ALGOS[a]));
    run(ctx, &p, ATTN_TEST_SOFTMAX, ref.s, NULL, &o, what);
    expect_match(&p, &o, &ref, &tols, what);
    attn_test_out_free(&o);

    attn_test_out_init(&o, &p, 0, 0, 0);
    snprintf(what, sizeof what, "shape %d kind %d %s weighted sum", shape, kind,
             attn_algo_name(ALGOS[a]));
    run(ctx, &p, ATTN_TEST_WEIGHTED_SUM, NULL, ref.w, &o, what);
    expect_match(&p, &o, &ref, &tols, what);
    attn_test_out_free(&o);
    attn_context_destroy(ctx);
  }
  attn_test_out_free(&simple);
  attn_test_out_free(&ref);
  attn_test_problem_free(&p);
}
END_TEST

/* The same call twice on one context, and on a second context: bit-identical outputs. */
START_TEST(test_deterministic) {
  const int shape = _i / NALGOS, algo = _i % NALGOS;
  attn_test_problem_t p;
  grid_problem(&p, shape, ATTN_SCORE_SCALED_DOT);
  attn_context_t *ctx = gpu_context(ALGOS[algo]), *other = gpu_context(ALGOS[algo]);
  attn_test_out_t x, y, z;
  const int sw = shape % 2; /* odd shapes: scores and weights too; even: the flash path */
  attn_test_out_init(&x, &p, sw, sw, 1);
  attn_test_out_init(&y, &p, sw, sw, 1);
  attn_test_out_init(&z, &p, sw, sw, 1);
  run(ctx, &p, ATTN_TEST_FORWARD, NULL, NULL, &x, "first run");
  run(ctx, &p, ATTN_TEST_FORWARD, NULL, NULL, &y, "second run");
  run(other, &p, ATTN_TEST_FORWARD, NULL, NULL, &z, "other context");
  expect_match(&p, &y, &x, NULL, "second run vs first");
  expect_match(&p, &z, &x, NULL, "other context vs first");
  attn_test_out_free(&x);
  attn_test_out_free(&y);
  attn_test_out_free(&z);
  attn_context_destroy(ctx);
  attn_context_destroy(other);
  attn_test_problem_free(&p);
}
END_TEST

/* Batch invariance of the paths that promise it (SIMPLE, the row kernels, the flash kernels, and
 * AUTO, which never picks cuBLAS; forced GEMM may pick a different cuBLAS kernel for a different
 * m): each query of a batch, run alone as a batch of one, gives bit-identical results. _i picks
 * the algorithm, the shape (two varlen batches with long sets, 40 queries sharing a set) and
 * whether scores and weights are asked for (without them FUSED and AUTO run the flash kernels,
 * whose plan for a batch and for one query differ; shape 13 runs on BLOCK<8> as a batch, shape 17
 * on TILE<64> on the emulator and on TILE<16> on a GPU of many multiprocessors, shape 20 on
 * TILE<32> and TILE<16> likewise; test_flash_plans runs every plan on these shapes, bit for bit).
 */
START_TEST(test_batch_invariant) {
  static const attn_algo_t algos[] = {ATTN_ALGO_SIMPLE, ATTN_ALGO_FUSED, ATTN_ALGO_ROWS,
                                      ATTN_ALGO_AUTO};
  static const int shapes[] = {7, 12, 3, 13, 17, 20};
  const attn_algo_t algo = algos[_i % 4];
  const int shape = shapes[_i / 4 % 6], sw = _i / 24;
  attn_test_problem_t p;
  grid_problem(&p, shape, ATTN_SCORE_DOT);
  attn_context_t *ctx = gpu_context(algo);
  attn_test_out_t all;
  attn_test_out_init(&all, &p, sw, sw, 1);
  run(ctx, &p, ATTN_TEST_FORWARD, NULL, NULL, &all, "whole batch");
  for (int64_t b = 0; b < p.shape.batch; b++) {
    attn_test_set_t t = attn_test_set(&p, b);
    for (int64_t i = 0; i < t.m; i++) {
      attn_test_problem_t one;
      attn_test_out_t o;
      attn_test_problem_subset(&p, b, i, 1, &one);
      attn_test_out_init(&o, &one, sw, sw, 1);
      run(ctx, &one, ATTN_TEST_FORWARD, NULL, NULL, &o, "one query");
      const float *c = all.c + t.c + (size_t)(i * p.ldc);
      const float *s = all.s + t.s + (size_t)(i * p.lds);
      const float *w = all.w + t.s + (size_t)(i * p.lds);
      ck_assert_msg(memcmp(o.c, c, (size_t)p.shape.dv * sizeof(float)) == 0,
                    "set %lld query %lld: context differs alone", (long long)b, (long long)i);
      ck_assert_msg(!sw || memcmp(o.s, s, (size_t)t.n * sizeof(float)) == 0,
                    "set %lld query %lld: scores differ alone", (long long)b, (long long)i);
      ck_assert_msg(!sw || memcmp(o.w, w, (size_t)t.n * sizeof(float)) == 0,
                    "set %lld query %lld: weights differ alone", (long long)b, (long long)i);
      ck_assert_msg(memcmp(o.lse, all.lse + t.lse + (size_t)i, sizeof(float)) == 0,
                    "set %lld query %lld: lse differs alone", (long long)b, (long long)i);
      attn_test_out_free(&o);
      attn_test_problem_free(&one);
    }
  }
  attn_test_out_free(&all);
  attn_context_destroy(ctx);
  attn_test_problem_free(&p);
}
END_TEST

/* The TC plans, an arithmetic of their own, are batch-invariant among their own calls: each query
 * of a batch, run alone under the same forced plan, gives the whole batch's context and lse bit
 * for bit (an mma's row of results depends on its own row of operands only); where the device
 * runs them (tc_runs). _i: shape 17 (TILE's scalar loads, a fully masked set) or 20 (float4
 * rows, 2 sets of 20, dv = 136), each with "tc!" and "splittc!". */
static int tc_runs(void);
START_TEST(test_flash_tc_invariant) {
  static const int shapes[] = {17, 20};
  static const char *const plans[] = {"tc!", "splittc!"};
  const char *plan = plans[_i % 2];
  if (!tc_runs()) return; /* said once by tc_runs */
  attn_test_problem_t p;
  grid_problem(&p, shapes[_i / 2], ATTN_SCORE_DOT);
  attn_test_out_t ref, all;
  gpu_reference(&p, ATTN_TEST_FORWARD, NULL, NULL, &ref);
  const attn_tols_t tols = attn_test_tols(&p);
  attn_context_t *ctx = gpu_context(ATTN_ALGO_FUSED);
  attn_test_out_init(&all, &p, 0, 0, 1);
  run_flash_plan(ctx, &p, plan, &ref, &tols, &all, plan);
  for (int64_t b = 0; b < p.shape.batch; b++) {
    attn_test_set_t t = attn_test_set(&p, b);
    for (int64_t i = 0; i < t.m; i++) {
      attn_test_problem_t one;
      attn_test_out_t o, one_ref;
      attn_test_problem_subset(&p, b, i, 1, &one);
      gpu_reference(&one, ATTN_TEST_FORWARD, NULL, NULL, &one_ref);
      attn_test_out_init(&o, &one, 0, 0, 1);
      run_flash_plan(ctx, &one, plan, &one_ref, &tols, &o, plan);
      ck_assert_msg(
          memcmp(o.c, all.c + t.c + (size_t)(i * p.ldc), (size_t)p.shape.dv * sizeof(float)) == 0,
          "%s: set %lld query %lld: context differs alone", plan, (long long)b, (long long)i);
      ck_assert_msg(memcmp(o.lse, all.lse + t.lse + (size_t)i, sizeof(float)) == 0,
                    "%s: set %lld query %lld: lse differs alone", plan, (long long)b, (long long)i);
      attn_test_out_free(&o);
      attn_test_out_free(&one_ref);
      attn_test_problem_free(&one);
    }
  }
  attn_test_out_free(&all);
  attn_test_out_free(&ref);
  attn_context_destroy(ctx);
  attn_test_problem_free(&p);
}
END_TEST

/* A query of -inf makes every score of its row -inf: every algorithm (forced GEMM included, whose
 * weighted sum is a cuBLAS product) gives that row a zero context and lse = -inf, as the
 * reference does, even with a NaN among the values (0 * NaN would be NaN). */
START_TEST(test_minus_inf_row) {
  const float q[2] = {-INFINITY, 1.0f}, a[3] = {1.0f, 2.0f, 3.0f}, v[3] = {1.0f, NAN, 2.0f};
  const attn_shape_t shape = {1, 2, 3, 1, 1, NULL, NULL, NULL};
  const attn_inputs_t in = {attn_cmat(q, 1, 0), attn_cmat(a, 1, 0), attn_cmat(v, 1, 0)};
  for (int k = 0; k < 2 * NALGOS; k++) { /* with weights, then without (the flash path) */
    attn_context_t *ctx = gpu_context(ALGOS[k % NALGOS]);
    const int with_w = k < NALGOS;
    float c[2] = {5.0f, 5.0f}, w[6] = {0}, lse[2];
    const attn_outputs_t out = {attn_mat(c, 1, 0), attn_mat(NULL, 0, 0),
                                attn_mat(with_w ? w : NULL, with_w ? 3 : 0, 0), lse};
    attn_status_t st = attn_forward_host(ctx, &shape, NULL, &in, &out);
    ck_assert_msg(st == ATTN_OK, "%s: %s", attn_algo_name(ALGOS[k % NALGOS]),
                  attn_context_last_error(ctx));
    ck_assert_msg(c[0] == 0.0f && !signbit(c[0]), "%s: context of the -inf row is %g",
                  attn_algo_name(ALGOS[k % NALGOS]), (double)c[0]);
    ck_assert_msg(isinf(lse[0]) && lse[0] < 0, "%s: lse %g", attn_algo_name(ALGOS[k % NALGOS]),
                  (double)lse[0]);
    for (int j = 0; j < 3; j++)
      ck_assert_msg(w[j] == 0.0f, "%s: weight %d is %g", attn_algo_name(ALGOS[k % NALGOS]), j,
                    (double)w[j]);
    ck_assert_msg(isnan(c[1]), "%s: the NaN value must reach row 1",
                  attn_algo_name(ALGOS[k % NALGOS]));
    attn_context_destroy(ctx);
  }
}
END_TEST

/* Floats between the STREAM plan's staged rows of width w (cuda/flash_warp.cu's stream_stride). */
static int64_t stream_stride(int64_t w) {
  return w + ((w / 4) % 2 == 0 ? 4 : 0);
}

/* Whether the STREAM flash plan can run p with score kind `kind` on any GPU attn supports, as
 * cuda/flash_warp.cu decides it (attn_cu_flash_stream_smem): dot-like scores, d a multiple of 4 and
 * at most 256, dv at most 256, every row 16-byte aligned on the device (the buffers are; so ld and
 * the set strides must be multiples of 4 floats, and dv too where the values are their own), and
 * its shared memory (two warps a block up to dv = 128, one above) within 99 KiB, the smallest
 * opt-in of the devices it builds for; a call that needs more runs STREAM only where the device has
 * it. */
static int stream_runs(const attn_test_problem_t *p, int kind) {
  const int sets = !p->varlen, own = p->spec.separate_values;
  if (kind != ATTN_SCORE_DOT && kind != ATTN_SCORE_SCALED_DOT) return 0;
  if (p->shape.d % 4 || p->shape.d > 256 || p->shape.dv > 256) return 0;
  if (p->mq.ld % 4 || p->ma.ld % 4 || (sets && (p->mq.stride % 4 || p->ma.stride % 4))) return 0;
  if (own && (p->shape.dv % 4 || p->mv.ld % 4 || (sets && p->mv.stride % 4))) return 0;
  const int64_t sk = stream_stride(p->shape.d), sv = own ? stream_stride(p->shape.dv) : 0;
  const int64_t warps = p->shape.dv <= 128 ? 2 : 1; /* STREAM<1>'s block, STREAM<2>'s */
  return warps * (2 * 32 * (sk + sv) + sk) * (int64_t)sizeof(float) <= 99 * 1024;
}

/* The plans ATTN_CU_FLASH can force (cuda/flash_plans.h), each with the rule for where it can run
 * a call (and so is forced strictly, "name!": the call fails unless that plan runs it), by its
 * variant: BLOCK everywhere (dv <= 768 in every problem of these tests), TILE for dot-like
 * scores of batches without offsets, TC (TILE's structure on the tensor cores) where TILE runs
 * and tc_runs says the device can, WARP where dv <= 256, THREAD where k (d, or h for additive
 * scores) and dv are at most 16, STREAM where stream_runs says so. The plans of ATTN_FLASH_PLANS
 * give the same bits; the TC plans, listed after them, an arithmetic of their own. */
enum { RUNS_BLOCK, RUNS_THREAD, RUNS_TILE, RUNS_WARP, RUNS_STREAM, RUNS_TC };
#define PLAN_RULE(name, variant, tile, split) {#name, RUNS_##variant},
static const struct {
  const char *name;
  int runs; /* RUNS_* */
} flash_plan_rules[] = {ATTN_FLASH_PLANS(PLAN_RULE) ATTN_FLASH_TC_PLANS(PLAN_RULE)};
#undef PLAN_RULE
#define PLAN_ONE(name, variant, tile, split) +1
enum { FLASH_NPLANS = 0 ATTN_FLASH_PLANS(PLAN_ONE), FLASH_NTC = 0 ATTN_FLASH_TC_PLANS(PLAN_ONE) };
#undef PLAN_ONE

/* Whether the device runs the TC plans: 108 KiB of shared memory a block, which the data-center
 * GPUs (and the emulator) give and GA10x and AD10x (99 KiB, where TILE runs) do not. Asked
 * once, by a call forced strictly to "tc!": only the refusal of a forced plan counts as "no"
 * (any other failure leaves the TC plans strict, to fail where they run). test_flash_plan checks
 * that the plan takes TC wherever the device allows it. */
static int tc_runs(void) {
  static int known = -1;
  if (known >= 0) return known;
  attn_test_spec_t spec = attn_test_spec(1, 4, 20, 8);
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  attn_context_t *ctx = gpu_context(ATTN_ALGO_FUSED);
  attn_test_out_t o;
  attn_test_out_init(&o, &p, 0, 0, 1);
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", "tc!", 1), 0);
  const attn_status_t st =
      attn_test_run(ctx, &p, ATTN_TEST_FORWARD, ATTN_TEST_HOST_CALLS, NULL, NULL, &o);
  ck_assert_int_eq(unsetenv("ATTN_CU_FLASH"), 0);
  known = !(st == ATTN_ERR_CUDA && strstr(attn_context_last_error(ctx), "ATTN_CU_FLASH"));
  if (!known)
    fprintf(stderr, "test_gpu_compute: this device cannot run the TC plans (%s): not forced\n",
            attn_context_last_error(ctx));
  attn_test_out_free(&o);
  attn_context_destroy(ctx);
  attn_test_problem_free(&p);
  return known;
}

/* The values of ATTN_CU_FLASH to run a problem under: "" (the default plan) first, then every
 * plan of flash_plan_rules; the first `same` give the same bits (the default and
 * ATTN_FLASH_PLANS), the rest are the TC plans. plans[] points into name[] (so the list is not
 * to be copied). */
typedef struct flash_plan_list {
  int count, same;
  char name[FLASH_NPLANS + FLASH_NTC + 1][16];
  const char *plans[FLASH_NPLANS + FLASH_NTC + 1];
} flash_plan_list_t;

/* The plans for p (score kind p->spec.kind), each strict where `strict` is set and its rule says
 * that it can run p. */
static void flash_plan_list(const attn_test_problem_t *p, int strict, flash_plan_list_t *l) {
  const int kind = p->spec.kind;
  const int64_t k = kind == ATTN_SCORE_ADDITIVE ? p->spec.h : p->shape.d;
  const int tile = kind != ATTN_SCORE_ADDITIVE && !p->shape.query_offsets;
  const int runs[] = {1,
                      k <= 16 && p->shape.dv <= 16,
                      tile,
                      p->shape.dv <= 256,
                      stream_runs(p, kind),
                      tile && tc_runs()};
  l->count = FLASH_NPLANS + FLASH_NTC + 1;
  l->same = FLASH_NPLANS + 1;
  l->name[0][0] = '\0';
  for (int i = 0; i < FLASH_NPLANS + FLASH_NTC; i++)
    snprintf(l->name[i + 1], sizeof l->name[i + 1], "%s%s", flash_plan_rules[i].name,
             strict && runs[flash_plan_rules[i].runs] ? "!" : "");
  for (int i = 0; i < l->count; i++)
    l->plans[i] = l->name[i];
}

/* The forward of p on a FUSED context (ATTN_ALGO in the environment cannot turn it into another
 * algorithm) under each of the flash plans plans[0 .. n - 1] (plans[0] first, "" for the
 * default), each within tolerance of the reference; plans[0 .. same - 1] bit for bit equal to
 * the first, and with `again`, each later one (an arithmetic of its own: TC) bit for bit equal
 * to a second run of itself. `label` names the problem in the messages. */
static void check_plans(const attn_test_problem_t *p, const char *const *plans, int n, int same,
                        int again, const char *label) {
  attn_test_out_t ref, first;
  gpu_reference(p, ATTN_TEST_FORWARD, NULL, NULL, &ref);
  const attn_tols_t tols = attn_test_tols(p);
  attn_context_t *ctx = gpu_context(ATTN_ALGO_FUSED);
  attn_test_out_init(&first, p, 0, 0, 1);
  for (int k = 0; k < n; k++) {
    attn_test_out_t o;
    attn_test_out_init(&o, p, 0, 0, 1);
    char what[512];
    snprintf(what, sizeof what, "%s flash plan '%s'", label, plans[k]);
    run_flash_plan(ctx, p, plans[k], &ref, &tols, &o, what);
    if (k == 0) {
      attn_test_out_free(&first);
      first = o;
      continue;
    }
    if (k < same) {
      expect_match(p, &o, &first, NULL, what);
    } else if (again) {
      attn_test_out_t second;
      attn_test_out_init(&second, p, 0, 0, 1);
      run_flash_plan(ctx, p, plans[k], &ref, &tols, &second, what);
      snprintf(what, sizeof what, "%s flash plan '%s' run again", label, plans[k]);
      expect_match(p, &second, &o, NULL, what);
      attn_test_out_free(&second);
    }
    attn_test_out_free(&o);
  }
  attn_context_destroy(ctx);
  attn_test_out_free(&first);
  attn_test_out_free(&ref);
}

/* check_plans where every plan gives the same bits. */
static void check_plans_agree(const attn_test_problem_t *p, const char *const *plans, int n,
                              const char *label) {
  check_plans(p, plans, n, n, 0, label);
}

/* The flash kernels' plans (a thread per query; blocks of 1, 8, 16, 32 or 64 queries walking
 * their spans, or per span, then the combine) give bit-identical contexts and lse, within
 * tolerance of the reference: the plan is free to follow the shape without breaking batch
 * invariance. Each plan is forced strictly where it can run the shape; elsewhere a plan that
 * cannot run it is ignored (the default runs). The TC plans: within tolerance, and the same
 * bits run after run. _i = shape * 4 + score kind. */
START_TEST(test_flash_plans) {
  const int shape = _i / 4, kind = _i % 4;
  attn_test_problem_t p;
  grid_problem(&p, shape, kind);
  flash_plan_list_t plans;
  flash_plan_list(&p, 1, &plans);
  char label[32];
  snprintf(label, sizeof label, "shape %d kind %d", shape, kind);
  check_plans(&p, plans.plans, plans.count, plans.same, 1, label);
  attn_test_problem_free(&p);
}
END_TEST

/* NaN and -inf in long sets, on every flash plan (TC's own arithmetic included): a NaN annotation
 * makes its set's rows NaN (context and lse); a NaN value makes its column NaN in every row of its
 * set, whatever the weight; a row whose scores are all -inf gets a zero context and lse -inf even
 * with a NaN value; a row whose scores are all +inf is NaN, lse included (exp(inf - inf), as in the
 * reference). Checked against the expected pattern, the reference, and bit for bit across plans
 * (but TC). _i % 2: dot, scaled dot; _i / 2: sets of 8 spans (the split plans' combine folds them
 * in one group of 8, the NaNs in spans 5 to 7) or of 34 (groups of 32 and 2, NaNs in spans 15 and
 * 32). */
START_TEST(test_flash_nonfinite) {
  static const int64_t n[2] = {1900, 8500}, nan_a[2] = {1500, 8300}, nan_v1[2] = {1700, 8400},
                       nan_v2[2] = {1850, 4000};
  const int big = _i / 2;
  attn_test_spec_t spec = attn_test_spec(4, 10, n[big], 12);
  spec.kind = _i % 2 ? ATTN_SCORE_SCALED_DOT : ATTN_SCORE_DOT;
  spec.separate_values = 1;
  spec.dv = 40; /* two column sets of the 8-span combine (4 columns a lane, 32 apart) */
  spec.seed = 77;
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  flash_plan_list_t plans; /* every plan, none strict */
  flash_plan_list(&p, 0, &plans);
  const attn_test_set_t s0 = attn_test_set(&p, 0), s1 = attn_test_set(&p, 1);
  const attn_test_set_t s2 = attn_test_set(&p, 2), s3 = attn_test_set(&p, 3);
  p.a[s0.a + (size_t)(nan_a[big] * p.ma.ld) + 5] = NAN;   /* set 0: every score NaN */
  p.v[s1.v + (size_t)(nan_v1[big] * p.mv.ld) + 35] = NAN; /* set 1: column 35 NaN */
  p.v[s2.v + (size_t)(nan_v2[big] * p.mv.ld) + 7] = NAN;  /* set 2: column 7 NaN ... */
  for (int64_t j = 0; j < s2.n; j++) /* ... but not in row 0, whose scores are -inf */
    p.a[s2.a + (size_t)(j * p.ma.ld)] = 0.5f + fabsf(p.a[s2.a + (size_t)(j * p.ma.ld)]);
  p.q[s2.q] = -INFINITY;
  for (int t = 1; t < 12; t++)
    p.q[s2.q + (size_t)t] = 0.0f;
  for (int64_t j = 0; j < s3.n; j++) /* set 3, row 0: every score +inf */
    p.a[s3.a + (size_t)(j * p.ma.ld)] = 0.5f + fabsf(p.a[s3.a + (size_t)(j * p.ma.ld)]);
  p.q[s3.q] = INFINITY;
  for (int t = 1; t < 12; t++)
    p.q[s3.q + (size_t)t] = 0.0f;
  attn_test_out_t ref, first;
  gpu_reference(&p, ATTN_TEST_FORWARD, NULL, NULL, &ref);
  const attn_tols_t tols = attn_test_tols(&p);
  attn_context_t *ctx = gpu_context(ATTN_ALGO_FUSED);
  attn_test_out_init(&first, &p, 0, 0, 1);
  for (int k = 0; k < plans.count; k++) {
    attn_test_out_t o;
    attn_test_out_init(&o, &p, 0, 0, 1);
    char what[96];
    snprintf(what, sizeof what, "kind %d flash plan '%s'", (int)spec.kind, plans.plans[k]);
    run_flash_plan(ctx, &p, plans.plans[k], &ref, &tols, &o, what);
    for (int64_t i = 0; i < p.shape.m; i++) {
      const float *c0 = o.c + s0.c + (size_t)(i * p.ldc), *c1 = o.c + s1.c + (size_t)(i * p.ldc);
      const float *c2 = o.c + s2.c + (size_t)(i * p.ldc), *c3 = o.c + s3.c + (size_t)(i * p.ldc);
      ck_assert_msg(isnan(o.lse[s3.lse + (size_t)i]) == (i == 0), "%s: set 3 row %lld lse", what,
                    (long long)i);
      ck_assert_msg(isnan(o.lse[s0.lse + (size_t)i]), "%s: set 0 row %lld lse", what, (long long)i);
      ck_assert_msg(!isnan(o.lse[s1.lse + (size_t)i]), "%s: set 1 row %lld lse", what,
                    (long long)i);
      for (int t = 0; t < 40; t++) {
        ck_assert_msg(isnan(c0[t]), "%s: set 0 row %lld col %d", what, (long long)i, t);
        ck_assert_msg(!isnan(c1[t]) == (t != 35), "%s: set 1 row %lld col %d", what, (long long)i,
                      t);
        if (i == 0)
          ck_assert_msg(c2[t] == 0.0f && !signbit(c2[t]), "%s: -inf row col %d is %g", what, t,
                        (double)c2[t]);
        else
          ck_assert_msg(!isnan(c2[t]) == (t != 7), "%s: set 2 row %lld col %d", what, (long long)i,
                        t);
        ck_assert_msg(isnan(c3[t]) == (i == 0), "%s: set 3 row %lld col %d", what, (long long)i, t);
      }
    }
    ck_assert_msg(isinf(o.lse[s2.lse]) && o.lse[s2.lse] < 0, "%s: -inf row lse %g", what,
                  (double)o.lse[s2.lse]);
    if (k >= plans.same) { /* TC: the pattern and the reference only */
      attn_test_out_free(&o);
      continue;
    }
    if (k == 0) {
      attn_test_out_free(&first);
      first = o;
      continue;
    }
    ck_assert_msg(attn_test_bit_mismatches(what, o.c, first.c, p.c_count, 1) == 0,
                  "%s: context differs", what);
    ck_assert_msg(attn_test_bit_mismatches(what, o.lse, first.lse, p.lse_count, 1) == 0,
                  "%s: lse differs", what);
    attn_test_out_free(&o);
  }
  attn_context_destroy(ctx);
  attn_test_out_free(&first);
  attn_test_out_free(&ref);
  attn_test_problem_free(&p);
}
END_TEST

/* STREAM on wide rows: d past 128 (two copies a row into shared memory, and q' staged in two
 * passes) with dv = 20 of its own, and dv = 128 of its own with d = 16, both forced strictly;
 * d = 256 with dv = 128 (STREAM<1>'s widest, 198 KiB of shared memory), forced where the device
 * has the memory; STREAM<2> (8 columns a lane, one warp a block) on d = dv = 256 with the
 * annotations as values (the decode form, 67.6 KB) and on dv = 200 of its own with d = 132 (a
 * lane's second group of columns in use in lanes 0 to 17 alone), both forced strictly. Masked
 * sets of several spans, the last partial; against the default plan bit for bit and the
 * reference within tolerance. _i: the shape. */
START_TEST(test_flash_stream_wide) {
  static const int64_t dims[5][2] = {{132, 20}, {16, 128}, {256, 128}, {256, 256}, {132, 200}};
  static const int32_t lengths[2] = {700, 513};
  attn_test_spec_t spec = attn_test_spec(2, 3, 700, dims[_i][0]);
  spec.kind = _i == 1 ? ATTN_SCORE_SCALED_DOT : ATTN_SCORE_DOT;
  spec.separate_values = _i != 3;
  spec.dv = dims[_i][1];
  spec.lengths = lengths;
  spec.ld_gap = 4;
  spec.set_gap = 8;
  spec.seed = 300 + (uint64_t)_i;
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  const int strict = stream_runs(&p, spec.kind);
  ck_assert_int_eq(strict, _i != 2); /* the test's premise */
  const char *plans[] = {"", strict ? "stream!" : "stream",
                         strict ? "splitstream!" : "splitstream"};
  char label[64];
  snprintf(label, sizeof label, "d %lld dv %lld", (long long)spec.d, (long long)spec.dv);
  check_plans_agree(&p, plans, 3, label);
  attn_test_problem_free(&p);
}
END_TEST

/* A context that underflows to -0: weights exp(0) and exp(-100) against the values +0 and -0.01
 * give the fma chain +0, then p v ~ -3.7e-46, which rounds to -0. Every plan folds the chunk into
 * the empty state (0 + x), so every plan writes +0; THREAD's short-set kernel leaves that fold
 * out and must keep its add. Two sets of 100 queries, so that the short-set kernel runs warps
 * across the two sets row by row and warps in one set 4 rows a thread. */
START_TEST(test_flash_negative_zero) {
  static const char *plans[] = {"block1!", "",      "thread!", "block8!",
                                "warp!",   "tile!", "tile32!", "tile16!"};
  enum { M = 100 };
  static float q[2 * M], c[2 * M], first[2 * M];
  const float a[4] = {0.0f, -100.0f, 0.0f, -100.0f}, v[4] = {0.0f, -0.01f, 0.0f, -0.01f};
  for (int i = 0; i < 2 * M; i++)
    q[i] = 1.0f;
  const attn_shape_t shape = {2, M, 2, 1, 1, NULL, NULL, NULL};
  const attn_inputs_t in = {attn_cmat(q, 1, M), attn_cmat(a, 1, 2), attn_cmat(v, 1, 2)};
  attn_context_t *ctx = gpu_context(ATTN_ALGO_FUSED);
  for (size_t k = 0; k < sizeof plans / sizeof plans[0]; k++) {
    for (int i = 0; i < 2 * M; i++)
      c[i] = 5.0f;
    const attn_outputs_t out = {attn_mat(c, 1, M), attn_mat(NULL, 0, 0), attn_mat(NULL, 0, 0),
                                NULL};
    if (*plans[k]) ck_assert_int_eq(setenv("ATTN_CU_FLASH", plans[k], 1), 0);
    const attn_status_t st = attn_forward_host(ctx, &shape, NULL, &in, &out);
    ck_assert_int_eq(unsetenv("ATTN_CU_FLASH"), 0);
    ck_assert_msg(st == ATTN_OK, "plan '%s': %s", plans[k], attn_context_last_error(ctx));
    for (int i = 0; i < 2 * M; i++)
      ck_assert_msg(c[i] == 0.0f && !signbit(c[i]), "plan '%s': row %d is %g (sign %d)", plans[k],
                    i, (double)c[i], signbit(c[i]) != 0);
    if (k == 0) memcpy(first, c, sizeof c);
    ck_assert_msg(memcmp(c, first, sizeof c) == 0, "plan '%s' differs from block1", plans[k]);
  }
  attn_context_destroy(ctx);
}
END_TEST

/* A dv too wide for the BLOCK variants' shared memory (above 6144): dot-like scores run the TILE
 * variant by default (TILE<16> for these 5 queries a set: 49 column blocks of 128, the last of
 * 6, 2 spans; also TILE<64>'s 97 blocks of 64 and TILE<32>'s 49 of 128, and each forced to
 * split, strictly), additive scores the ROWS kernels; within tolerance of the reference, the
 * TILE plans bit for bit equal. The values' rows (6150 wide) take the scalar path. _i: dot,
 * additive. */
START_TEST(test_flash_wide_dv) {
  static const char *plans[] = {"",        "tile!",       "splittile!", "tile32!", "splittile32!",
                                "tile16!", "splittile16!"};
  attn_test_spec_t spec = attn_test_spec(2, 5, 300, 8);
  spec.kind = _i ? ATTN_SCORE_ADDITIVE : ATTN_SCORE_DOT;
  spec.h = _i ? 4 : 0;
  spec.separate_values = 1;
  spec.dv = 6150;
  spec.seed = 91;
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  char label[64];
  snprintf(label, sizeof label, "kind %d dv 6150", (int)spec.kind);
  check_plans_agree(&p, plans, _i ? 1 : (int)(sizeof plans / sizeof *plans), label);
  attn_test_problem_free(&p);
}
END_TEST

/* Strict forcing refuses a plan that cannot run the call instead of falling back: TILE cannot
 * take additive scores, nor BLOCK<8> a dv above 768. The error names the variable, and the same
 * call runs once the variable is gone. _i: additive with "tile!", dot with "block8!". */
START_TEST(test_flash_strict_refuses) {
  attn_test_spec_t spec = attn_test_spec(1, 4, 20, 8);
  spec.kind = _i ? ATTN_SCORE_DOT : ATTN_SCORE_ADDITIVE;
  spec.h = _i ? 0 : 4;
  spec.separate_values = 1;
  spec.dv = _i ? 800 : 8;
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  attn_context_t *ctx = gpu_context(ATTN_ALGO_FUSED);
  attn_test_out_t o;
  attn_test_out_init(&o, &p, 0, 0, 1);
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", _i ? "block8!" : "tile!", 1), 0);
  attn_status_t st =
      attn_test_run(ctx, &p, ATTN_TEST_FORWARD, ATTN_TEST_HOST_CALLS, NULL, NULL, &o);
  ck_assert_int_eq(unsetenv("ATTN_CU_FLASH"), 0);
  ck_assert_msg(st == ATTN_ERR_CUDA, "a forced plan that cannot run was not refused: %s",
                attn_status_string(st));
  ck_assert_msg(strstr(attn_context_last_error(ctx), "ATTN_CU_FLASH") != NULL, "message: %s",
                attn_context_last_error(ctx));
  st = attn_test_run(ctx, &p, ATTN_TEST_FORWARD, ATTN_TEST_HOST_CALLS, NULL, NULL, &o);
  ck_assert_msg(st == ATTN_OK, "unforced: %s", attn_context_last_error(ctx));
  attn_test_out_free(&o);
  attn_context_destroy(ctx);
  attn_test_problem_free(&p);
}
END_TEST

/* Seeded random problems for test_flash_fuzz, biased toward the edges where the flash plans
 * switch or their fast paths stop: query counts around 8, 16, 32, 48 and 64 (BLOCK<8>,
 * TILE<16>, TILE<32>, TILE<64>), annotation counts around a chunk (32), a span (256) and 8 spans;
 * widths around 4 (the short-set kernel), 16 (THREAD), 32 (BLOCK's slices), 128 and 256 (STREAM,
 * WARP), not multiples of 4 (scalar loads). The last FUZZ_DV_ONLY widths are for separate values
 * only. */
static const int64_t FUZZ_M[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65};
static const int64_t FUZZ_N[] = {1, 3, 4, 5, 8, 9, 31, 32, 33, 255, 256, 257, 511, 513, 2047, 2049};
static const int64_t FUZZ_D[] = {1,  2,  3,  4,  5,   7,   8,   12,  16,  17,
                                 31, 32, 56, 64, 128, 132, 129, 200, 256, 260};
#define FUZZ_DV_ONLY   4
#define FUZZ_MAX_BATCH 4
/* Bound on a problem's work (see fuzz_work): the case's time on the emulator. */
#define FUZZ_MAX_WORK 16000000
#define FUZZ_SEEDS    128 /* test_flash_fuzz's default seeds: about 30 s on the emulator, 2 cores */
#define NELEMS(x)     (int)(sizeof(x) / sizeof((x)[0]))

/* An entry of edges[0 .. count - 1] three times in four, else uniform in [lo, hi]. */
static int64_t fuzz_pick(attn_rng_t *rng, const int64_t *edges, int count, int64_t lo, int64_t hi) {
  if (attn_rng_uniform(rng) < 0.75) return edges[attn_rng_int(rng, 0, count - 1)];
  return attn_rng_int(rng, lo, hi);
}

/* A valid length for a set of n annotations, below n: 0, n - 1, an edge of FUZZ_N below n, or
 * any. */
static int32_t fuzz_length(attn_rng_t *rng, int64_t n) {
  const double u = attn_rng_uniform(rng);
  int edges = 0;
  while (edges < NELEMS(FUZZ_N) && FUZZ_N[edges] < n)
    edges++;
  if (n <= 1 || u < 0.2) return 0;
  if (u < 0.35) return (int32_t)(n - 1);
  if (u < 0.7 && edges > 0) return (int32_t)FUZZ_N[attn_rng_int(rng, 0, edges - 1)];
  return (int32_t)attn_rng_int(rng, 0, n - 1);
}

/* The cost of the forward of s on the emulator under every plan, in multiply-adds, about: for
 * each (query, valid annotation) pair a score and a context row, and as much again as 128
 * columns (the emulator's own cost of a pair, measured); and the projections of general and
 * additive scores. */
static int64_t fuzz_work(const attn_test_spec_t *s) {
  const int64_t dv = s->separate_values ? s->dv : s->d;
  const int64_t k = s->kind == ATTN_SCORE_ADDITIVE ? s->h : s->d;
  int64_t work = 0;
  for (int64_t b = 0; b < s->batch; b++) {
    const int64_t m = s->set_m ? s->set_m[b] : s->m, n = s->set_n ? s->set_n[b] : s->n;
    const int64_t valid = s->lengths ? s->lengths[b] : n;
    work += m * valid * (128 + k + dv);
    if (s->kind == ATTN_SCORE_GENERAL) work += m * s->d * s->d;
    if (s->kind == ATTN_SCORE_ADDITIVE) work += (m + n) * s->d * s->h;
  }
  return work;
}

/* Draws the problem of fuzz seed `seed` into *s, redrawing until it has work (a query row
 * against a valid annotation) and its work is within FUZZ_MAX_WORK. set_m, set_n and lengths
 * [FUZZ_MAX_BATCH] hold the spec's arrays (and so must outlive the problem made from it). */
static void fuzz_spec(uint64_t seed, attn_test_spec_t *s, int32_t *set_m, int32_t *set_n,
                      int32_t *lengths) {
  attn_rng_t rng;
  attn_rng_seed(&rng, seed);
  int64_t work;
  do {
    const int varlen = attn_rng_uniform(&rng) < 0.4;
    const int64_t batch = attn_rng_int(&rng, 1, varlen ? FUZZ_MAX_BATCH : 3);
    *s =
        attn_test_spec(batch, 0, 0, fuzz_pick(&rng, FUZZ_D, NELEMS(FUZZ_D) - FUZZ_DV_ONLY, 1, 140));
    s->m = fuzz_pick(&rng, FUZZ_M, NELEMS(FUZZ_M), 0, 70);
    s->n = fuzz_pick(&rng, FUZZ_N, NELEMS(FUZZ_N), 1, 2300);
    if (varlen) { /* sets of their own sizes, some without queries or annotations */
      for (int64_t b = 0; b < batch; b++) {
        set_m[b] = attn_rng_uniform(&rng) < 0.1
                       ? 0
                       : (int32_t)fuzz_pick(&rng, FUZZ_M, NELEMS(FUZZ_M), 0, 70);
        set_n[b] = attn_rng_uniform(&rng) < 0.15
                       ? 0
                       : (int32_t)fuzz_pick(&rng, FUZZ_N, NELEMS(FUZZ_N), 1, 2300);
      }
      s->set_m = set_m;
      s->set_n = set_n;
    } else {
      const double g = attn_rng_uniform(&rng); /* multiples of 4 keep rows 16-byte aligned */
      s->set_gap = g < 0.5 ? 0 : g < 0.75 ? 4 * attn_rng_int(&rng, 1, 2) : attn_rng_int(&rng, 1, 7);
      s->shared_annotations = attn_rng_uniform(&rng) < 0.2;
    }
    if (attn_rng_uniform(&rng) < 0.35) { /* masks */
      for (int64_t b = 0; b < batch; b++)
        lengths[b] = fuzz_length(&rng, varlen ? set_n[b] : s->n);
      s->lengths = lengths;
    }
    const double g = attn_rng_uniform(&rng);
    s->ld_gap = g < 0.4 ? 0 : g < 0.7 ? 4 : attn_rng_int(&rng, 1, 5);
    s->separate_values = attn_rng_uniform(&rng) < 0.5;
    if (s->separate_values) s->dv = fuzz_pick(&rng, FUZZ_D, NELEMS(FUZZ_D), 1, 270);
    s->kind = (attn_score_kind_t)attn_rng_int(&rng, 0, 3);
    if (s->kind == ATTN_SCORE_SCALED_DOT)
      s->scale = attn_rng_uniform(&rng) < 0.5 ? 0.0f : (float)(2.0 * attn_rng_uniform(&rng) - 0.5);
    if (s->kind == ATTN_SCORE_ADDITIVE)
      s->h = fuzz_pick(&rng, FUZZ_D, NELEMS(FUZZ_D) - FUZZ_DV_ONLY, 1, 140);
    s->outliers = attn_rng_uniform(&rng) < 0.25 ? 0.02 : 0.0;
    if (attn_rng_uniform(&rng) < 0.25) { /* STREAM's kind: dot-like, 16-byte rows, dv <= 256 */
      s->kind = attn_rng_uniform(&rng) < 0.5 ? ATTN_SCORE_DOT : ATTN_SCORE_SCALED_DOT;
      s->d = (s->d + 3) / 4 * 4 < 256 ? (s->d + 3) / 4 * 4 : 256;
      s->ld_gap = s->ld_gap % 4 ? 4 : s->ld_gap;
      s->set_gap = (s->set_gap + 3) / 4 * 4;
      if (s->separate_values) s->dv = (s->dv + 3) / 4 * 4 < 256 ? (s->dv + 3) / 4 * 4 : 256;
    }
    if (attn_rng_uniform(&rng) < 0.2) /* large scores: maxima that move from chunk to chunk */
      s->q_scale = s->a_scale = (float)(10.0 + 20.0 * attn_rng_uniform(&rng));
    s->seed = (uint64_t)attn_rng_int(&rng, 1, INT32_MAX);
    work = fuzz_work(s);
  } while (work == 0 || work > FUZZ_MAX_WORK);
}

/* Appends printf-style text to label[size]. */
static void fuzz_cat(char *label, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static void fuzz_cat(char *label, size_t size, const char *format, ...) {
  const size_t len = strlen(label);
  va_list args;
  va_start(args, format);
  vsnprintf(label + len, size - len, format, args);
  va_end(args);
}

/* Appends " name {x0,x1,...}" (x[0 .. n - 1]) to label[size]. */
static void fuzz_cat_array(char *label, size_t size, const char *name, const int32_t *x,
                           int64_t n) {
  fuzz_cat(label, size, " %s {", name);
  for (int64_t b = 0; b < n; b++)
    fuzz_cat(label, size, "%s%d", b ? "," : "", (int)x[b]);
  fuzz_cat(label, size, "}");
}

/* The problem of fuzz seed `seed` (spec s) in words, for the failure messages. */
static void fuzz_label(char *label, size_t size, uint64_t seed, const attn_test_spec_t *s) {
  label[0] = '\0';
  fuzz_cat(label, size, "fuzz seed %llu: batch %lld", (unsigned long long)seed,
           (long long)s->batch);
  if (s->set_m) {
    fuzz_cat_array(label, size, "m", s->set_m, s->batch);
    fuzz_cat_array(label, size, "n", s->set_n, s->batch);
  } else {
    fuzz_cat(label, size, " m %lld n %lld", (long long)s->m, (long long)s->n);
  }
  if (s->lengths) fuzz_cat_array(label, size, "lengths", s->lengths, s->batch);
  static const char *kinds[] = {"dot", "scaled_dot", "general", "additive"};
  fuzz_cat(label, size, " d %lld dv %lld%s %s", (long long)s->d,
           (long long)(s->separate_values ? s->dv : s->d), s->separate_values ? " (own)" : "",
           kinds[s->kind]);
  if (s->kind == ATTN_SCORE_SCALED_DOT) fuzz_cat(label, size, " scale %.9g", (double)s->scale);
  if (s->kind == ATTN_SCORE_ADDITIVE) fuzz_cat(label, size, " h %lld", (long long)s->h);
  fuzz_cat(label, size, " ld_gap %lld set_gap %lld%s%s", (long long)s->ld_gap,
           (long long)s->set_gap, s->shared_annotations ? " shared" : "",
           s->outliers > 0 ? " outliers" : "");
  if (s->q_scale != 1.0f) fuzz_cat(label, size, " input scale %.9g", (double)s->q_scale);
}

/* The problem the running fuzz seed checks, written to stderr if the process dies in it: the
 * emulator aborts on a divergent barrier or a bad access, where no check message names it. The
 * handlers are set around each seed by a checked fixture (whose teardown runs after a failure
 * too); fuzz_died hands the signal on to the handler it replaced once the label is out. */
static char fuzz_current[512];
static volatile sig_atomic_t fuzz_current_len;
static struct sigaction fuzz_old_abrt, fuzz_old_segv;

/* Writes the label, puts back the handler that was there before (a sanitizer's, say) and
 * returns: a fault happens again, and abort() raises again, into that handler. */
static void fuzz_died(int sig) {
  const ssize_t r = write(2, fuzz_current, (size_t)fuzz_current_len);
  (void)r;
  sigaction(sig, sig == SIGABRT ? &fuzz_old_abrt : &fuzz_old_segv, NULL);
}

static void fuzz_setup(void) {
  struct sigaction died;
  memset(&died, 0, sizeof died);
  died.sa_handler = fuzz_died;
  sigaction(SIGABRT, &died, &fuzz_old_abrt);
  sigaction(SIGSEGV, &died, &fuzz_old_segv);
}

static void fuzz_teardown(void) {
  sigaction(SIGABRT, &fuzz_old_abrt, NULL);
  sigaction(SIGSEGV, &fuzz_old_segv, NULL);
  fuzz_current_len = 0;
}

/* A randomized differential test of the flash plans: for each seed a random problem (fuzz_spec),
 * whose default forward and every forced plan (strict where test_flash_plans forces it)
 * match the reference within tolerance and give the default's context and lse bit for bit (the
 * TC plans: within tolerance; test_flash_plans runs them twice). _i: the seed.
 * ATTN_FUZZ_SEEDS=FIRST[-LAST] runs other seeds (one to reproduce a failure, many on a GPU). */
START_TEST(test_flash_fuzz) {
  int32_t set_m[FUZZ_MAX_BATCH], set_n[FUZZ_MAX_BATCH], lengths[FUZZ_MAX_BATCH];
  attn_test_spec_t spec;
  fuzz_spec((uint64_t)_i, &spec, set_m, set_n, lengths);
  char label[400];
  fuzz_label(label, sizeof label, (uint64_t)_i, &spec);
  snprintf(fuzz_current, sizeof fuzz_current, "died in %s\n", label);
  fuzz_current_len = (sig_atomic_t)strlen(fuzz_current);
  attn_test_problem_t p;
  attn_test_problem_init(&p, &spec);
  flash_plan_list_t plans;
  flash_plan_list(&p, 1, &plans);
  check_plans(&p, plans.plans, plans.count, plans.same, 0, label);
  attn_test_problem_free(&p);
}
END_TEST

/* Five test cases, so that a slow run (compute-sanitizer: tests/gpu/device-check.sh) can pick
 * one with CK_RUN_CASE: "edges" (every flash variant on non-finite inputs, a wide dv, strict
 * forcing; quick), "flash" (every plan on every shape), "fuzz" (every plan on random problems),
 * "grid" (every algorithm against the reference, determinism) and "invariance". The flash case
 * takes a range of its shapes from ATTN_FLASH_SHAPES=FIRST[-LAST] (0 to GRID_SIZE +
 * FLASH_SHAPES - 1; the flash-only shapes from GRID_SIZE), so that racecheck, too slow for the
 * whole case, can run it a slice at a time; the fuzz case its seeds from ATTN_FUZZ_SEEDS. */
static TCase *timed_case(Suite *s, const char *name) {
  TCase *tc = tcase_create(name);
  tcase_set_timeout(tc, 600);
  suite_add_tcase(s, tc);
  return tc;
}

static Suite *gpu_compute_suite(void) {
  Suite *s = suite_create("gpu_compute");
  TCase *edges = timed_case(s, "edges");
  tcase_add_loop_test(edges, test_flash_nonfinite, 0, 4);
  tcase_add_loop_test(edges, test_flash_wide_dv, 0, 2);
  tcase_add_test(edges, test_flash_negative_zero);
  tcase_add_loop_test(edges, test_flash_stream_wide, 0, 5);
  tcase_add_loop_test(edges, test_flash_strict_refuses, 0, 2);
  tcase_add_test(edges, test_minus_inf_row);
  int first, end;
  if (gpu_env_range("ATTN_FLASH_SHAPES", GRID_SIZE + FLASH_SHAPES, GRID_SIZE + FLASH_SHAPES, &first,
                    &end) != 0)
    exit(2);
  tcase_add_loop_test(timed_case(s, "flash"), test_flash_plans, first * 4, end * 4);
  TCase *fuzz = timed_case(s, "fuzz");
  if (gpu_env_range("ATTN_FUZZ_SEEDS", FUZZ_SEEDS, INT32_MAX, &first, &end) != 0) exit(2);
  tcase_add_checked_fixture(fuzz, fuzz_setup, fuzz_teardown);
  tcase_add_loop_test(fuzz, test_flash_fuzz, first, end);
  TCase *grid = timed_case(s, "grid");
  tcase_add_loop_test(grid, test_grid, 0, GRID_SIZE * 4);
  tcase_add_loop_test(grid, test_deterministic, 0, GRID_SIZE * NALGOS);
  TCase *invariance = timed_case(s, "invariance");
  tcase_add_loop_test(invariance, test_batch_invariant, 0, 48);
  tcase_add_loop_test(invariance, test_flash_tc_invariant, 0, 4);
  return s;
}

int main(void) {
  if (!gpu_usable()) return GPU_SKIP;
  return attn_test_main(gpu_compute_suite());
}
