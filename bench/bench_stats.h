/*
 * bench_stats.h - what the benchmark programs share: a monotonic clock and the median of a set
 * of timings. Header-only (static functions), C99 with POSIX clock_gettime.
 */
#ifndef ATTN_BENCH_STATS_H
#define ATTN_BENCH_STATS_H

#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Sorts t[0 .. count-1] and returns its median (count >= 1). */
static double bench_median(double *t, int count) {
  qsort(t, (size_t)count, sizeof(double), bench_cmp_double);
  return count % 2 ? t[count / 2] : 0.5 * (t[count / 2 - 1] + t[count / 2]);
}

#endif
