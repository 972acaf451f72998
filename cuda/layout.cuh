/*
 * layout.cuh - where a query row, an annotation row or a set lives on the device: the same
 * arithmetic as host/problem.c, with the offsets read in the kernel (no host synchronisation).
 *
 * Query rows are numbered globally: uniform batches have batch * m of them (row r = b * m + i),
 * varlen batches have m (row r of the concatenated matrices). The packed lse of row r is lse[r]
 * in both cases. Annotation rows likewise: batch * n or n.
 */
#ifndef ATTN_CUDA_LAYOUT_CUH
#define ATTN_CUDA_LAYOUT_CUH

#include "attn_cuda.h"

#include <stdint.h>

struct attn_cu_layout {
  int64_t batch, m, n;
  const int32_t *qo, *ao; /* NULL for uniform batches */
  const int32_t *lengths; /* NULL: every annotation valid */
};

/* Set b of a layout, seen from one of its query rows. */
struct attn_cu_set {
  int64_t b;
  int64_t r0;    /* global row of the set's first query */
  int64_t a0;    /* global row of the set's first annotation */
  int64_t nb;    /* annotations in the set (width of its score rows) */
  int64_t valid; /* annotations used: lengths[b] or nb */
};

static inline attn_cu_layout attn_cu_layout_of(const attn_cuda_problem_t *p) {
  attn_cu_layout l = {p->batch, p->m, p->n, p->query_offsets, p->annotation_offsets, p->lengths};
  return l;
}

__host__ __device__ inline int64_t attn_cu_query_rows(const attn_cu_layout &l) {
  return l.qo ? l.m : l.batch * l.m;
}
__host__ __device__ inline int64_t attn_cu_annotation_rows(const attn_cu_layout &l) {
  return l.ao ? l.n : l.batch * l.n;
}

/* The set whose rows [off[b], off[b+1]) hold row r, or -1 (offsets validated non-decreasing). */
__host__ __device__ inline int64_t attn_cu_find_set(const int32_t *off, int64_t batch, int64_t r) {
  if (off[0] > r) return -1;
  int64_t lo = 0, hi = batch; /* off[lo] <= r; the answer is in [lo, hi] */
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (off[mid] <= r)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo < batch ? lo : -1;
}

__host__ __device__ inline void attn_cu_set_of(const attn_cu_layout &l, int64_t b, attn_cu_set *s) {
  s->b = b;
  if (l.qo) {
    s->r0 = l.qo[b];
    s->a0 = l.ao[b];
    s->nb = (int64_t)l.ao[b + 1] - l.ao[b];
  } else {
    s->r0 = b * l.m;
    s->a0 = b * l.n;
    s->nb = l.n;
  }
  s->valid = l.lengths ? l.lengths[b] : s->nb;
}

/* The set of global query row r (false: r belongs to no set) and r's index i in it. */
__host__ __device__ inline bool attn_cu_query_row(const attn_cu_layout &l, int64_t r,
                                                  attn_cu_set *s, int64_t *i) {
  /* One set needs no division (the walkthrough's million queries: a 64-bit divide a row). */
  int64_t b = l.qo ? attn_cu_find_set(l.qo, l.batch, r) : l.batch == 1 ? 0 : r / l.m;
  if (b < 0) return false;
  attn_cu_set_of(l, b, s);
  *i = r - s->r0;
  return true;
}

/* The set of global annotation row r and r's index j in it; false when r is in no set or is
 * past its set's valid length (such rows are never read). */
__host__ __device__ inline bool attn_cu_annotation_row(const attn_cu_layout &l, int64_t r,
                                                       attn_cu_set *s, int64_t *j) {
  int64_t b = l.ao ? attn_cu_find_set(l.ao, l.batch, r) : r / l.n;
  if (b < 0) return false;
  attn_cu_set_of(l, b, s);
  *j = r - s->a0;
  return *j < s->valid;
}

/* Row i of set s in a matrix indexed by query rows (Q, S, W, C) ... */
template <class T>
__host__ __device__ inline T *attn_cu_qrow(T *data, int64_t ld, int64_t stride,
                                           const attn_cu_layout &l, const attn_cu_set &s,
                                           int64_t i) {
  return l.qo ? data + (s.r0 + i) * ld : data + s.b * stride + i * ld;
}
/* ... and row j of set s in a matrix indexed by annotation rows (A, V). */
template <class T>
__host__ __device__ inline T *attn_cu_arow(T *data, int64_t ld, int64_t stride,
                                           const attn_cu_layout &l, const attn_cu_set &s,
                                           int64_t j) {
  return l.ao ? data + (s.a0 + j) * ld : data + s.b * stride + j * ld;
}

/* Max that lets a NaN win, so that one NaN score makes its whole row NaN (as the reference). */
__device__ inline float attn_cu_nanmax(float a, float b) {
  return (a > b || a != a) ? a : b;
}

/* e / sum for a softmax weight. sum = sum_j exp(s_j - max) lies in [1, n] (the max term is 1),
 * where __fdividef is within 2 ulp; IEEE division would add a slow-path subroutine whose stack
 * frame the build refuses (ptxas --warn-on-local-memory-usage). NaN still gives NaN. */
__device__ __forceinline__ float attn_cu_weight(float e, float sum) {
  return __fdividef(e, sum);
}

/* Grid size for a grid-stride loop over `work` items with `threads` per block. */
static inline unsigned attn_cu_blocks(int64_t work, int threads) {
  int64_t blocks = (work + threads - 1) / threads;
  const int64_t cap = 1 << 20;
  return (unsigned)(blocks < 1 ? 1 : blocks > cap ? cap : blocks);
}

#endif
