/*
 * test_gpu_util.c - the GPU suites' own helpers that need no device (gpu_util.h), so that they
 * are checked in every build: gpu_env_range, which reads the ranges of ATTN_FLASH_SHAPES and
 * ATTN_FUZZ_SEEDS (tests/gpu/device-check.sh runs racecheck on test_gpu_compute's flash case a
 * slice of shapes at a time through it). Label cpu.
 */
#include <stdlib.h>

#include "gpu_util.h"

#define VAR "ATTN_TEST_GPU_UTIL_RANGE"

/* gpu_env_range of `value` (NULL: unset) with a default of [0, 28) and a limit of 40. */
static int range_of(const char *value, int *first, int *end) {
  if (value)
    ck_assert_int_eq(setenv(VAR, value, 1), 0);
  else
    ck_assert_int_eq(unsetenv(VAR), 0);
  return gpu_env_range(VAR, 28, 40, first, end);
}

START_TEST(test_range_accepts) {
  static const struct {
    const char *value;
    int first, end;
  } cases[] = {
      {NULL, 0, 28},   {"", 0, 28},    {"3", 3, 4},     {"3-5", 3, 6},     {"3-", 3, 28},
      {"0-39", 0, 40}, {"39", 39, 40}, {"27-", 27, 28}, {"30-30", 30, 31},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int first = -7, end = -7;
    ck_assert_msg(range_of(cases[i].value, &first, &end) == 0, "'%s' refused", cases[i].value);
    ck_assert_msg(first == cases[i].first && end == cases[i].end, "'%s': [%d, %d), not [%d, %d)",
                  cases[i].value ? cases[i].value : "(unset)", first, end, cases[i].first,
                  cases[i].end);
  }
}
END_TEST

/* Each refused value leaves first and end as they were. "30-" is refused: it would end at the
 * default's last index, 27, before its first. */
START_TEST(test_range_refuses) {
  static const char *const bad[] = {"40", "5-3",  "x",    "3x",  "3-x",  "3-5x", "-",
                                    "-3", "3--5", "0-40", "30-", "3-5-", "3,5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int first = -7, end = -7;
    ck_assert_msg(range_of(bad[i], &first, &end) == -1, "'%s' accepted", bad[i]);
    ck_assert_msg(first == -7 && end == -7, "'%s' refused but wrote [%d, %d)", bad[i], first, end);
  }
  ck_assert_int_eq(unsetenv(VAR), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("gpu_util");
  TCase *tc = tcase_create("env_range");
  tcase_add_test(tc, test_range_accepts);
  tcase_add_test(tc, test_range_refuses);
  suite_add_tcase(s, tc);
  return attn_test_main(s);
}
