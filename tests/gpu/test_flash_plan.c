/*
 * test_flash_plan.c - which flash plan AUTO picks (cuda/flash.cu, attn_cu_flash_plan_of) on the
 * shapes whose measurements set its thresholds: bench/gpu-sweep.sh's rows on an H100, where each
 * expectation below is the plan the sweep found fastest, the documented exception, or (marked by
 * its block counts) an edge of the rule between measured rows, itself unmeasured. The plan
 * changes no result bit (test_gpu_compute checks that on a device or the emulator); this suite
 * pins the choice, so that a threshold cannot move without the measurements (cuda/flash.cu's
 * comment, bench/README.md's sweep table) moving with it. Pure host logic: it runs in every CUDA
 * build, GPU or not.
 */
#include "attn_cuda.h"
#include "test_util.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Any 16-byte aligned address: the plan reads pointers' alignment, never what they point at. */
static float rows[16] __attribute__((aligned(16)));

/* An H100's figures as the CUDA runtime gives them: 132 multiprocessors, 228 KiB of shared memory
 * each (1 KiB reserved a block), 227 KiB a block with opt-in. */
static const attn_cuda_flash_device_t H100 = {132, 1, 232448, 233472, 1024, 1};

/* attn_forward of batch sets of m queries against n annotations (d = dv), dot scores, uniform
 * and packed, asking for the context only. */
static attn_cuda_problem_t forward(int64_t batch, int64_t m, int64_t n, int64_t d) {
  attn_cuda_problem_t p;
  memset(&p, 0, sizeof p);
  p.op = ATTN_CUDA_OP_FORWARD;
  p.algo = ATTN_CUDA_ALGO_AUTO;
  p.batch = batch;
  p.m = m;
  p.n = n;
  p.d = d;
  p.dv = d;
  p.kind = ATTN_CUDA_SCORE_DOT;
  p.scale = 1.0f;
  p.queries = (attn_cuda_cmat_t){rows, d, m * d};
  p.annotations = (attn_cuda_cmat_t){rows, d, n * d};
  p.values = p.annotations;
  p.context = (attn_cuda_mat_t){rows, d, m * d};
  return p;
}

static void expect_plan(attn_cuda_problem_t p, const attn_cuda_flash_device_t *dev,
                        const char *want) {
  const char *got = attn_cuda_flash_plan_name(&p, dev);
  ck_assert_msg(strcmp(got, want) == 0, "%lld x %lld x %lld x %lld: plan \"%s\", want \"%s\"",
                (long long)p.batch, (long long)p.m, (long long)p.n, (long long)p.d, got, want);
}

/* Issue 6's four shapes. */
START_TEST(test_issue_shapes) {
  expect_plan(forward(1, 1000000, 4, 3), &H100, "thread");
  expect_plan(forward(4096, 1, 1024, 128), &H100, "splitstream");
  expect_plan(forward(1, 8192, 1024, 512), &H100, "splittile");
  expect_plan(forward(1, 16, 32768, 128), &H100, "splittile16");
}
END_TEST

/* THREAD while the sets are short: the 16-wide one to n = 32, not at 64. */
START_TEST(test_thread) {
  expect_plan(forward(1, 200000, 16, 16), &H100, "thread");
  expect_plan(forward(1, 200000, 32, 16), &H100, "thread");
  expect_plan(forward(1, 500000, 32, 4), &H100, "thread");
  expect_plan(forward(1, 20000, 64, 8), &H100, "tile");
}
END_TEST

/* TILE from 16 queries a set, and from 4 on sets of 1024 annotations. Its tile: 64 from 33
 * queries a set, else 32 from 17, else 16, each larger tile only where its blocks (tiles times
 * spans, where split) are at least the 132 multiprocessors; at k <= 64 TILE<64> where they are
 * more than 66. */
START_TEST(test_tile) {
  expect_plan(forward(256, 4, 1024, 128), &H100, "splittile16");
  expect_plan(forward(128, 8, 1024, 128), &H100, "splittile16");
  expect_plan(forward(4096, 4, 64, 64), &H100, "stream");        /* short sets: not TILE */
  expect_plan(forward(64, 32, 1024, 128), &H100, "splittile32"); /* 256 blocks of 32 */
  expect_plan(forward(64, 17, 1024, 128), &H100, "splittile32");
  expect_plan(forward(64, 24, 512, 64), &H100, "splittile16"); /* 128 blocks of 32 */
  expect_plan(forward(33, 24, 512, 64), &H100, "splittile16"); /* 66 */
  expect_plan(forward(66, 24, 512, 64), &H100, "splittile32"); /* 132 */
  expect_plan(forward(32, 16, 4096, 128), &H100, "splittile16");
  expect_plan(forward(64, 33, 1024, 128), &H100, "splittile"); /* 256 blocks of 64 */
  expect_plan(forward(64, 40, 1024, 128), &H100, "splittile");
  expect_plan(forward(1, 32, 4096, 128), &H100, "splittile16"); /* 16 blocks of 32 */
  expect_plan(forward(1, 40, 4096, 128), &H100, "splittile16"); /* 16 of 64, 32 of 32 */
  expect_plan(forward(64, 48, 1024, 128), &H100, "splittile");
  expect_plan(forward(1, 64, 4096, 128), &H100, "splittile16");   /* 16 blocks of 64 */
  expect_plan(forward(1, 256, 4096, 128), &H100, "splittile16");  /* 64, 128 of 32 */
  expect_plan(forward(1, 4096, 256, 16), &H100, "tile16");        /* 64, one span, k = 16 */
  expect_plan(forward(1, 2000, 64, 8), &H100, "tile16");          /* 32, k = 8 */
  expect_plan(forward(1, 6144, 256, 64), &H100, "tile");          /* 96, k = 64 */
  expect_plan(forward(1, 4288, 256, 64), &H100, "tile");          /* 67, k = 64 */
  expect_plan(forward(1, 4224, 256, 64), &H100, "tile32");        /* 66 of 64, 132 of 32 */
  expect_plan(forward(1, 4160, 256, 64), &H100, "tile16");        /* 65 of 64, 130 of 32 */
  expect_plan(forward(1, 6144, 256, 128), &H100, "tile32");       /* 96, k = 128 */
  expect_plan(forward(1, 2048, 1024, 256), &H100, "splittile32"); /* 128 */
  expect_plan(forward(1, 2048, 1024, 128), &H100, "splittile32"); /* 128 */
  expect_plan(forward(1, 8192, 256, 128), &H100, "tile32");       /* 128, one span */
  expect_plan(forward(1, 8448, 256, 128), &H100, "tile");         /* 132 */
  expect_plan(forward(1, 1024, 4096, 128), &H100, "splittile");   /* 256 */
  expect_plan(forward(1, 4096, 4096, 128), &H100, "splittile");   /* 1024 */
}
END_TEST

/* Below 4 queries a set: STREAM, split, from 2 query rows; WARP where STREAM's warps need a
 * second wave of its blocks (three a multiprocessor at d = 128) and WARP's fit in one; BLOCK<1>
 * for one row; WARP where AUTO runs no STREAM (dv > 128, additive scores). */
START_TEST(test_few_queries) {
  expect_plan(forward(4096, 1, 256, 128), &H100, "stream"); /* one span */
  expect_plan(forward(1024, 1, 4096, 128), &H100, "splitstream");
  expect_plan(forward(4, 1, 32768, 128), &H100, "splitstream");
  expect_plan(forward(2, 1, 32768, 128), &H100, "splitstream");
  expect_plan(forward(1, 1, 262144, 128), &H100, "split1");
  expect_plan(forward(256, 1, 1024, 128), &H100, "splitwarp"); /* 1024 warps: 792 < 1024 <= 2112 */
  expect_plan(forward(2048, 2, 1024, 256), &H100, "warp");
  expect_plan(forward(4096, 1, 1024, 256), &H100, "warp");
  attn_cuda_problem_t add = forward(4096, 1, 1024, 128);
  add.kind = ATTN_CUDA_SCORE_ADDITIVE;
  add.h = 128;
  add.wq = add.wa = add.v = rows;
  add.ldwq = add.ldwa = 128;
  expect_plan(add, &H100, "warp");
  /* Rows that are not 16-byte aligned: no STREAM. */
  attn_cuda_problem_t odd = forward(4096, 1, 1024, 128);
  odd.annotations.data = odd.values.data = rows + 1;
  expect_plan(odd, &H100, "warp");
}
END_TEST

/* A device whose shared memory takes neither TILE nor STREAM, and one whose multiprocessor's
 * shared memory is unknown (one STREAM block a multiprocessor in the estimate). */
START_TEST(test_devices) {
  const attn_cuda_flash_device_t small = {132, 0, 0, 0, 0, 0};
  expect_plan(forward(4096, 1, 1024, 128), &small, "warp");
  expect_plan(forward(1, 8192, 1024, 512), &small, "block8");
  expect_plan(forward(1, 1000000, 4, 3), &small, "thread");
  const attn_cuda_flash_device_t unknown = {132, 1, 232448, 0, 0, 1};
  /* 128 rows x 4 spans: 512 warps, within the H100's 792 places for STREAM, not the 264 */
  expect_plan(forward(128, 1, 1024, 128), &H100, "splitstream");
  expect_plan(forward(128, 1, 1024, 128), &unknown, "splitwarp");
  expect_plan(forward(4096, 1, 1024, 128), &unknown, "splitstream");
}
END_TEST

/* What no flash kernel takes, and what ATTN_CU_FLASH forces. */
START_TEST(test_not_flash_and_forced) {
  attn_cuda_problem_t p = forward(4096, 1, 1024, 128);
  p.weights = (attn_cuda_mat_t){rows, 1024, 1024};
  expect_plan(p, &H100, "");
  p = forward(4096, 1, 1024, 128);
  p.op = ATTN_CUDA_OP_SCORES;
  expect_plan(p, &H100, "");
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", "tile16", 1), 0);
  expect_plan(forward(4096, 1, 1024, 128), &H100, "tile16");
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", "splittile32", 1), 0);
  expect_plan(forward(1, 8192, 1024, 512), &H100, "splittile32");
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", "tc", 1), 0); /* runs where TILE can */
  expect_plan(forward(1, 8192, 1024, 512), &H100, "tc");
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", "splittc", 1), 0);
  expect_plan(forward(16, 1, 32768, 128), &H100, "splittc");
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", "splitwarp", 1), 0);
  expect_plan(forward(4096, 1, 1024, 128), &H100, "splitwarp");
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", "stream", 1), 0); /* cannot run d = 3: AUTO's */
  expect_plan(forward(1, 1000000, 4, 3), &H100, "thread");
  /* STREAM<2> (dv up to 256): forced only, AUTO keeps WARP (test_few_queries) */
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", "splitstream", 1), 0);
  expect_plan(forward(4096, 1, 1024, 256), &H100, "splitstream");
  ck_assert_int_eq(setenv("ATTN_CU_FLASH", "stream", 1), 0);
  expect_plan(forward(1024, 1, 4096, 256), &H100, "stream");
  attn_cuda_problem_t wide = forward(4096, 1, 1024, 256);
  wide.dv = 260; /* values of their own, past STREAM<2>'s 256 (and WARP's): AUTO's */
  wide.values = (attn_cuda_cmat_t){rows, 260, 1024 * 260};
  wide.context = (attn_cuda_mat_t){rows, 260, 260};
  expect_plan(wide, &H100, "block1");
  ck_assert_int_eq(unsetenv("ATTN_CU_FLASH"), 0);
}
END_TEST

/* attn_cuda_short_grid(r, 132, resident) against its promise: a block for each 512 query rows
 * while they fit one wave of resident blocks; past it, no more turns a warp than on a whole
 * wave, and no warp left a turn short but the fewer than 4 T that the rounding leaves. */
static void check_short_grid(int64_t r, int resident) {
  const int64_t wave = 132 * resident, groups = (r + 127) / 128, need = (groups + 3) / 4;
  const int64_t b = attn_cuda_short_grid(r, 132, resident);
  const int64_t turns = (need + wave - 1) / wave, warps = 4 * b;
  ck_assert_msg(b >= 1 && b <= (need < wave ? need : wave), "%lld rows, %d resident: %lld blocks",
                (long long)r, resident, (long long)b);
  ck_assert_msg((groups + warps - 1) / warps == turns && warps * turns - groups < 4 * turns,
                "%lld rows, %d resident: %lld blocks for %lld turns", (long long)r, resident,
                (long long)b, (long long)turns);
}

START_TEST(test_short_grid) {
  ck_assert_uint_eq(attn_cuda_short_grid(1000000, 132, 6), 652); /* the walkthrough: 3 turns */
  ck_assert_uint_eq(attn_cuda_short_grid(1000000, 132, 8), 977); /* the packed instance: 2 */
  ck_assert_uint_eq(attn_cuda_short_grid(100000, 132, 6), 196);  /* one turn */
  ck_assert_uint_eq(attn_cuda_short_grid(792 * 512, 132, 6), 792);
  ck_assert_uint_eq(attn_cuda_short_grid(792 * 512 + 1, 132, 6), 397); /* 793 blocks, 2 turns */
  ck_assert_uint_eq(attn_cuda_short_grid(1000000, 132, 0), 1954);      /* occupancy unknown */
  ck_assert_uint_eq(attn_cuda_short_grid(1, 132, 6), 1);
  for (int64_t r = 1; r < 4000000; r = r * 5 / 4 + 37)
    for (int resident = 1; resident <= 8; resident++)
      check_short_grid(r, resident);
  /* past 2^29 rows, where a grid without the wave (2^20 blocks at most) is capped */
  for (int64_t r = (int64_t)1 << 29; r <= (int64_t)1 << 36; r = r * 3 + 1)
    for (int resident = 8; resident <= 32; resident *= 2)
      check_short_grid(r, resident);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("flash_plan");
  TCase *tc = tcase_create("plan");
  tcase_add_test(tc, test_issue_shapes);
  tcase_add_test(tc, test_thread);
  tcase_add_test(tc, test_tile);
  tcase_add_test(tc, test_few_queries);
  tcase_add_test(tc, test_devices);
  tcase_add_test(tc, test_not_flash_and_forced);
  tcase_add_test(tc, test_short_grid);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return attn_test_main(suite());
}
