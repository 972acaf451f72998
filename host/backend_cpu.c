/*
 * backend_cpu.c - the fast CPU backend: threads (OpenMP), SIMD inner loops (cpu_kernels.c, picked
 * at run time), OpenBLAS sgemm for GEMM-shaped work (cpu_gemm.c) and a fused online softmax for
 * memory-bound work. The REFERENCE backend (backend_reference.c) is its oracle.
 *
 * Work is cut into items: a block of queries of one annotation set. Items run on the context's
 * threads (options.cpu_threads, 0 = every core; OpenMP, dynamic runs of neighbouring items) in
 * any order; each item writes only its own rows and uses its thread's slice of the per-context
 * workspace, which only grows (ops->reserve sizes it up front), so steady-state calls allocate
 * nothing. Calls with fewer than SERIAL_WORK multiply-adds stay on the calling thread.
 *
 * Paths (forward), chosen per set:
 *   GEMM   a block of Mb queries (32..512, Mb * n floats <= 4 MiB): S = Q A^T (sgemm), softmax
 *          on the block while it is in cache, C = P V (sgemm), rows scaled by 1/sum. The block
 *          is sized by measurement, not to fit the 2 MiB L2: every sgemm call repacks A, so
 *          taller blocks won (a 4 MiB block was 3-8% faster than a 2 MiB one, and 8 MiB only
 *          1-2% more, at the cost of sending mid-sized sets to FUSED under AUTO).
 *   FUSED  a group of 8 queries walks the annotations once, 64 at a time: scores, an online
 *          softmax (running max and sum, context rescaled when the max grows) and the context
 *          update, while the 64 annotations are in cache. No score matrix unless S or W is asked
 *          for. The context update of a chunk runs in the same loop as the next chunk's scores
 *          (kernel dots_axpy, row j of each per step), so the update's work (cached rows)
 *          overlaps the next chunk's reads from memory instead of leaving the memory idle; the
 *          arithmetic is that of the two steps one after the other. On the decode shape
 *          (4096 sets x 256 x 128, one query each) this and the sparser prefetch of dots (see
 *          cpu_kernels.h) took the read rate from ~0.85 to ~0.92 of a plain read loop's.
 *          Two special forms for tiny d and dv (<= 8, the walkthrough's 3), not additive:
 *          LANES (AVX-512, context/lse only): 16 queries, one per vector lane, same online
 *          softmax; otherwise the same pass with inline scalar loops instead of kernel calls.
 *   SIMPLE one query, all its scores, then softmax, then context.
 * AUTO picks GEMM when OpenBLAS is there, the score is not additive, d, dv and the set's valid
 * length are >= 32 and the set has at least Mb/2 queries; otherwise FUSED. ATTN_ALGO_* forces
 * one (scores and weighted-sum calls: GEMM or per-row dot/axpy loops by the same rule).
 *
 * Determinism and batch invariance. A query's arithmetic never depends on the thread count, on
 * which thread runs it, or on the other queries of the call: items are independent; the kernels'
 * order depends only on vector lengths; a lane's arithmetic does not depend on the other lanes;
 * a GEMM block is always Mb rows (a tail block is copied into a zero-padded Mb-row buffer), Mb
 * depends only on the set's valid length, and sgemm runs single-threaded inside an item, so a
 * row of the product sees the same packing and k order wherever it sits (tests check this bit
 * for bit). Under AUTO the path itself depends on the set's query count and on whether S or W is
 * requested, so adding queries to the same set may move that set from FUSED to GEMM (results
 * then differ within the tolerance, not bit for bit); a forced algorithm with the same outputs
 * requested is bit-for-bit batch-invariant.
 */
#include "context.h"
#include "cpu_gemm.h"
#include "cpu_kernels.h"
#include "problem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define FUSED_QUERIES  8             /* queries sharing one pass over the annotations */
#define FUSED_CHUNK    64            /* annotations per online-softmax step (kept in L1) */
#define GEMM_MIN_ROWS  32            /* the smallest GEMM block */
#define GEMM_MAX_ROWS  512           /* the largest GEMM block */
#define GEMM_S_FLOATS  (1024 * 1024) /* score block budget: 4 MiB, see above */
#define GEMM_MIN_WIDTH 32            /* d, dv and valid length below this: not GEMM-shaped */
#define SOFTMAX_ROWS   16            /* rows per item of the softmax call */
/* Work units (m * n * (d + dv + 16), about 0.15 ns each) below which a call stays on the calling
 * thread: under ~150 us a fork-join gains little, and on a loaded machine its barrier can wait a
 * whole scheduler tick for a descheduled worker. */
#define SERIAL_WORK  (1 << 20)
#define SMALL_WIDTH  8  /* d, dv up to this: FUSED runs inline scalar loops */
#define ALIGN_FLOATS 16 /* 64-byte sub-buffers */

#if defined(__GNUC__)
#define ATTN_ALWAYS_INLINE __attribute__((always_inline))
#else
#define ATTN_ALWAYS_INLINE
#endif

enum { PATH_SIMPLE = 0, PATH_GEMM = 1, PATH_FUSED = 2, PATH_LANES = 3, PATH_ROWS = 4 };

typedef struct cpu_state {
  const attn_cpu_kernels_t *k;
  int threads;
  float *ws;            /* threads * ws_per_thread floats */
  size_t ws_floats;     /* allocated */
  size_t ws_per_thread; /* of the current call */
  int64_t *prefix;      /* [sets + 1] first item of each set */
  unsigned char *path;  /* [sets] */
  int64_t plan_sets;    /* allocated */
} cpu_state_t;

typedef struct cpu_call {
  const attn_problem_t *p;
  cpu_state_t *st;
  const attn_cpu_kernels_t *k;
} cpu_call_t;

/* ------------------------------------------------------------------------------------------ */
/* Sizes                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* a b and a + b, saturating at SIZE_MAX: a workspace bound that would wrap (sizes whose every
 * array fits memory, such as n x score.h past 2^64) becomes one that grow_workspace refuses with
 * ATTN_ERR_OVERFLOW, never a workspace too small for the item functions. */
static size_t sat_mul(size_t a, size_t b) {
  size_t r;
  return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}
static size_t sat_add(size_t a, size_t b) {
  size_t r;
  return __builtin_add_overflow(a, b, &r) ? SIZE_MAX : r;
}

/* x rounded up to a multiple of ALIGN_FLOATS (saturating, as above), and the same of a count. */
static size_t round16(size_t x) {
  return sat_add(x, ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}
static size_t up16(int64_t x) {
  return round16((size_t)x);
}

static float *take(float **cur, size_t count) {
  float *x = *cur;
  *cur += round16(count);
  return x;
}

static int is_additive(const attn_problem_t *p) {
  return (p->op == ATTN_OP_SCORES || p->op == ATTN_OP_FORWARD) &&
         p->score.kind == ATTN_SCORE_ADDITIVE;
}

/* Width of a prepared query: W_q q (additive) or q / W^T q. */
static int64_t query_width(const attn_problem_t *p) {
  return is_additive(p) ? p->score.h : p->d;
}

/* Rows of a GEMM block for a set with `valid` annotations: the score block stays in L2. */
static int64_t gemm_rows(int64_t valid) {
  int64_t rows = (int64_t)(GEMM_S_FLOATS / up16(valid > 0 ? valid : 1));
  rows = rows / GEMM_MIN_ROWS * GEMM_MIN_ROWS;
  return rows < GEMM_MIN_ROWS ? GEMM_MIN_ROWS : rows > GEMM_MAX_ROWS ? GEMM_MAX_ROWS : rows;
}

static int64_t item_rows(int path, int64_t valid) {
  switch (path) {
  case PATH_GEMM:
    return gemm_rows(valid);
  case PATH_FUSED:
    return FUSED_QUERIES;
  case PATH_ROWS:
    return SOFTMAX_ROWS;
  case PATH_LANES:
    return ATTN_CPU_LANES;
  default:
    return 1;
  }
}

/* Floats of workspace one item takes: a bound on the take() calls of the item functions. */
static size_t item_floats(const attn_problem_t *p, int path, int64_t valid) {
  valid = valid > 0 ? valid : 1;
  size_t h = is_additive(p) ? up16(p->score.h) : 0, d = up16(p->d), dv = up16(p->dv);
  switch (path) {
  case PATH_GEMM: {
    size_t rows = (size_t)gemm_rows(valid);
    size_t f = sat_mul(rows, up16(valid));
    f = sat_add(f, sat_mul(rows, sat_add(sat_add(sat_mul(2, d), dv), h)));
    return sat_add(sat_add(f, round16(sat_mul((size_t)valid, h))), 4 * round16(rows));
  }
  case PATH_FUSED:
    return sat_add(sat_mul(FUSED_QUERIES, sat_add(sat_add(2 * up16(FUSED_CHUNK), d), h)),
                   sat_mul(FUSED_CHUNK, h));
  case PATH_SIMPLE:
    return sat_add(sat_add(sat_add(2 * up16(valid), d), h), sat_mul((size_t)valid, h));
  case PATH_LANES:
    return sat_mul(ATTN_CPU_LANES, d);
  default:
    return 0;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Scores by dot products (FUSED, SIMPLE, and the score call's non-GEMM path)                 */
/* ------------------------------------------------------------------------------------------ */

/* What one query contributes to every score: q itself, W^T q (general) or W_q q (additive). */
static const float *prepare_query(const cpu_call_t *c, const float *q, float *buf) {
  const attn_problem_t *p = c->p;
  const attn_score_t *sc = &p->score;
  switch (sc->kind) {
  case ATTN_SCORE_GENERAL: /* u_l = sum_k q_k W[k][l], in k order */
    memset(buf, 0, (size_t)p->d * sizeof(float));
    for (int64_t k = 0; k < p->d; k++)
      c->k->axpy(buf, q[k], sc->w + k * sc->ldw, p->d);
    return buf;
  case ATTN_SCORE_ADDITIVE:
    for (int64_t k = 0; k < sc->h; k++)
      buf[k] = c->k->dot(sc->wq + k * sc->ldwq, q, p->d);
    return buf;
  default:
    return q;
  }
}

/* Additive: W_a a_j for annotations j0 .. j0+count-1, rows of up16(h). */
static void prepare_annotations(const cpu_call_t *c, const attn_set_t *set, int64_t j0,
                                int64_t count, float *pa) {
  const attn_problem_t *p = c->p;
  const attn_score_t *sc = &p->score;
  size_t ldh = up16(sc->h);
  for (int64_t j = 0; j < count; j++) {
    const float *a = set->annotations + (j0 + j) * p->annotations.ld;
    for (int64_t k = 0; k < sc->h; k++)
      pa[(size_t)j * ldh + (size_t)k] = c->k->dot(sc->wa + k * sc->ldwa, a, p->d);
  }
}

/* s[j] = score of prepared query u against annotations j0 .. j0+count-1 (pa: additive only). */
static void score_chunk(const cpu_call_t *c, const attn_cpu_kernels_t *k, const attn_set_t *set,
                        const float *u, const float *pa, int64_t j0, int64_t count, float *s) {
  const attn_problem_t *p = c->p;
  const attn_score_t *sc = &p->score;
  if (sc->kind == ATTN_SCORE_ADDITIVE) {
    size_t ldh = up16(sc->h);
    for (int64_t j = 0; j < count; j++) {
      const float *pj = pa + (size_t)j * ldh;
      float sum = 0.0f;
      for (int64_t l = 0; l < sc->h; l++)
        sum += sc->v[l] * tanhf(u[l] + pj[l]);
      s[j] = sum;
    }
    return;
  }
  const float scale = sc->kind == ATTN_SCORE_SCALED_DOT ? sc->scale : 1.0f;
  const int64_t lda = p->annotations.ld, left = set->valid - j0 - count;
  k->dots(u, set->annotations + j0 * lda, lda, count, p->d, scale, s, left);
}

/* score_chunk, and y += sum_j w[j] v_j over the `pending` rows v of the previous chunk, in one
 * pass where the kernels can (dot-style scores): the same arithmetic as the two steps. */
static void score_chunk_axpy(const cpu_call_t *c, const attn_cpu_kernels_t *k,
                             const attn_set_t *set, const float *u, const float *pa, int64_t j0,
                             int64_t count, float *s, float *y, const float *w, const float *v,
                             int64_t pending) {
  const attn_problem_t *p = c->p;
  const attn_score_t *sc = &p->score;
  if (sc->kind == ATTN_SCORE_ADDITIVE) {
    score_chunk(c, k, set, u, pa, j0, count, s);
    if (pending) k->axpy_rows(y, w, v, p->values.ld, pending, p->dv);
    return;
  }
  const float scale = sc->kind == ATTN_SCORE_SCALED_DOT ? sc->scale : 1.0f;
  const int64_t lda = p->annotations.ld, left = set->valid - j0 - count;
  k->dots_axpy(u, set->annotations + j0 * lda, lda, count, p->d, scale, s, left, y, w, v,
               p->values.ld, pending, p->dv);
}

/* SIMPLE is the fused pass with one query and one chunk holding every valid annotation. */
static int64_t simple_chunk(const attn_set_t *set) {
  return set->valid > 0 ? set->valid : 1;
}

static void fill(float *x, int64_t count, float value) {
  for (int64_t j = 0; j < count; j++)
    x[j] = value;
}

/* ------------------------------------------------------------------------------------------ */
/* Row finishing, shared by every path                                                        */
/* ------------------------------------------------------------------------------------------ */

enum { ROW_OK = 0, ROW_EMPTY = 1, ROW_NAN = 2 };

/* Classifies a row of raw scores from its NaN-ignoring max. */
static int row_kind(const attn_cpu_kernels_t *k, const float *s, int64_t count, float mx) {
  if (mx != -INFINITY) return ROW_OK;
  return k->has_nan(s, count) ? ROW_NAN : ROW_EMPTY;
}

/* Weights of a row: raw scores in w[0..valid) -> exp(s - mx) / sum, zeros past valid. */
static void finish_weights(const attn_cpu_kernels_t *k, float *w, int64_t valid, int64_t n,
                           int kind, float mx, float inv) {
  if (kind == ROW_NAN)
    fill(w, valid, NAN);
  else if (kind == ROW_EMPTY)
    fill(w, valid, 0.0f);
  else {
    k->exp_sum(w, mx, valid);
    k->scal(w, inv, valid);
  }
  fill(w + valid, n - valid, 0.0f);
}

/* ------------------------------------------------------------------------------------------ */
/* FUSED and SIMPLE: one pass, online softmax                                                 */
/* ------------------------------------------------------------------------------------------ */

ATTN_ALWAYS_INLINE static inline void fused_pass(const cpu_call_t *c, const attn_cpu_kernels_t *k,
                                                 const attn_set_t *set, int64_t i0, int64_t rows,
                                                 int64_t chunk, float *ws) {
  const attn_problem_t *p = c->p;
  const int additive = is_additive(p);
  const int64_t valid = set->valid, dv = p->dv, ldv = p->values.ld;
  const size_t ldq = up16(query_width(p));
  float *qbuf = take(&ws, (size_t)rows * ldq);
  float *pa = additive ? take(&ws, (size_t)chunk * up16(p->score.h)) : NULL;
  /* two weight buffers per query: the chunk being scored and the previous one, whose context
   * update runs in the same pass (score_chunk_axpy) */
  float *ebuf = take(&ws, (size_t)rows * 2 * up16(chunk));
  const float *u[FUSED_QUERIES];
  float mrun[FUSED_QUERIES], lsum[FUSED_QUERIES];
  int nan_seen[FUSED_QUERIES];
  float *raw_row[FUSED_QUERIES];
  int64_t pending[FUSED_QUERIES]; /* weights of the previous chunk not yet in the context */
  const float *prev_vals = set->values;

  for (int64_t g = 0; g < rows; g++) {
    int64_t i = i0 + g;
    u[g] = prepare_query(c, set->queries + i * p->queries.ld, qbuf + (size_t)g * ldq);
    mrun[g] = -INFINITY;
    lsum[g] = 0.0f;
    nan_seen[g] = 0;
    pending[g] = 0;
    raw_row[g] = set->scores    ? set->scores + i * p->scores.ld
                 : set->weights ? set->weights + i * p->weights.ld
                                : NULL;
    memset(set->context + i * p->context.ld, 0, (size_t)dv * sizeof(float));
  }

  for (int64_t j0 = 0, step = 0; j0 < valid; j0 += chunk, step++) {
    int64_t count = valid - j0 < chunk ? valid - j0 : chunk;
    if (additive) prepare_annotations(c, set, j0, count, pa);
    for (int64_t g = 0; g < rows; g++) {
      float *e = ebuf + ((size_t)g * 2 + (size_t)(step & 1)) * up16(chunk);
      const float *eprev = ebuf + ((size_t)g * 2 + (size_t)(~step & 1)) * up16(chunk);
      float *cg = set->context + (i0 + g) * p->context.ld;
      float *sdst = raw_row[g] ? raw_row[g] + j0 : e;
      score_chunk_axpy(c, k, set, u[g], pa, j0, count, sdst, cg, eprev, prev_vals, pending[g]);
      pending[g] = 0;
      if (raw_row[g]) memcpy(e, sdst, (size_t)count * sizeof(float));
      float cm = k->max(e, count);
      float mnew = cm > mrun[g] ? cm : mrun[g];
      if (mnew == -INFINITY) {
        nan_seen[g] |= k->has_nan(e, count);
        continue;
      }
      if (mnew > mrun[g]) {
        float alpha = attn_cpu_exp(k, mrun[g] - mnew);
        k->scal(cg, alpha, dv);
        lsum[g] *= alpha;
        mrun[g] = mnew;
      }
      lsum[g] += k->exp_sum(e, mrun[g], count);
      pending[g] = count;
    }
    prev_vals = set->values + j0 * ldv;
  }

  const size_t last = (size_t)((valid + chunk - 1) / chunk + 1) & 1; /* the last chunk's buffer */
  for (int64_t g = 0; g < rows; g++) {
    int64_t i = i0 + g;
    float *cg = set->context + i * p->context.ld;
    if (pending[g])
      k->axpy_rows(cg, ebuf + ((size_t)g * 2 + last) * up16(chunk), prev_vals, ldv, pending[g], dv);
    int kind = (nan_seen[g] || isnan(lsum[g])) ? ROW_NAN
               : mrun[g] == -INFINITY          ? ROW_EMPTY
                                               : ROW_OK;
    float inv = kind == ROW_OK ? 1.0f / lsum[g] : 0.0f;
    if (kind == ROW_NAN)
      fill(cg, dv, NAN);
    else if (kind == ROW_OK)
      k->scal(cg, inv, dv);
    if (set->lse)
      set->lse[i] = kind == ROW_NAN ? NAN : kind == ROW_EMPTY ? -INFINITY : mrun[g] + logf(lsum[g]);
    if (set->scores) fill(set->scores + i * p->scores.ld + valid, set->n - valid, -INFINITY);
    if (set->weights) {
      float *w = set->weights + i * p->weights.ld;
      if (set->scores) memcpy(w, set->scores + i * p->scores.ld, (size_t)valid * sizeof(float));
      finish_weights(k, w, valid, set->n, kind, mrun[g], inv);
    }
  }
}

static void fused_item(const cpu_call_t *c, const attn_set_t *set, int64_t i0, int64_t rows,
                       int64_t chunk, float *ws) {
  fused_pass(c, c->k, set, i0, rows, chunk, ws);
}

/* Tiny d and dv (the walkthrough's 3): the same pass with the scalar loops inlined. */
static int small_shape(const attn_problem_t *p) {
  return p->d <= SMALL_WIDTH && p->dv <= SMALL_WIDTH && !is_additive(p);
}

static void fused_item_small(const cpu_call_t *c, const attn_set_t *set, int64_t i0, int64_t rows,
                             float *ws) {
  fused_pass(c, &attn_cpu_scalar_kernels, set, i0, rows, FUSED_CHUNK, ws);
}

/* FUSED on AVX-512 for tiny d and dv, context and lse only: one query per vector lane. */
static void lanes_item(const cpu_call_t *c, const attn_set_t *set, int64_t i0, int64_t rows,
                       float *ws) {
  const attn_problem_t *p = c->p;
  const float *q = set->queries + i0 * p->queries.ld;
  int64_t ldq = p->queries.ld;
  if (p->score.kind == ATTN_SCORE_GENERAL) {
    for (int64_t r = 0; r < rows; r++)
      prepare_query(c, q + r * p->queries.ld, ws + (size_t)r * up16(p->d));
    q = ws;
    ldq = (int64_t)up16(p->d);
  }
  attn_cpu_lane_job_t job = {q,
                             ldq,
                             rows,
                             p->d,
                             set->annotations,
                             p->annotations.ld,
                             set->valid,
                             set->values,
                             p->values.ld,
                             p->dv,
                             p->score.kind == ATTN_SCORE_SCALED_DOT ? p->score.scale : 1.0f,
                             set->context + i0 * p->context.ld,
                             p->context.ld,
                             set->lse ? set->lse + i0 : NULL};
  c->k->lanes(&job);
}

/* ------------------------------------------------------------------------------------------ */
/* GEMM: blocks of Mb queries through sgemm                                                   */
/* ------------------------------------------------------------------------------------------ */

/* An Mb-row operand: the caller's rows when the block is full, else a zero-padded copy. */
static const float *block_rows(const float *src, int64_t ld, int64_t rows, int64_t full,
                               int64_t width, float *pad, int64_t *ld_out) {
  if (rows == full) {
    *ld_out = ld;
    return src;
  }
  size_t ldp = up16(width);
  memset(pad, 0, (size_t)full * ldp * sizeof(float));
  for (int64_t r = 0; r < rows; r++)
    memcpy(pad + (size_t)r * ldp, src + r * ld, (size_t)width * sizeof(float));
  *ld_out = (int64_t)ldp;
  return pad;
}

/* S [Mb x valid] (ld up16(valid)) = scores of queries i0 .. i0+rows-1; rows past `rows` hold
 * finite filler. */
static void gemm_scores(const cpu_call_t *c, const attn_set_t *set, int64_t i0, int64_t rows,
                        int64_t mb, float *s, float **ws) {
  const attn_problem_t *p = c->p;
  const attn_score_t *sc = &p->score;
  const int64_t valid = set->valid, d = p->d;
  const size_t lds = up16(valid);
  if (sc->kind == ATTN_SCORE_ADDITIVE) { /* no GEMM form: dot loops, the set's W_a a_j once */
    float *pa = take(ws, (size_t)valid * up16(sc->h));
    float *pq = take(ws, (size_t)mb * up16(sc->h));
    prepare_annotations(c, set, 0, valid, pa);
    for (int64_t r = 0; r < rows; r++) {
      const float *u =
          prepare_query(c, set->queries + (i0 + r) * p->queries.ld, pq + (size_t)r * up16(sc->h));
      score_chunk(c, c->k, set, u, pa, 0, valid, s + (size_t)r * lds);
    }
    memset(s + (size_t)rows * lds, 0, (size_t)(mb - rows) * lds * sizeof(float));
    return;
  }
  float *qpad = take(ws, (size_t)mb * up16(d));
  float *qgen = take(ws, (size_t)mb * up16(d));
  int64_t ldq;
  const float *q =
      block_rows(set->queries + i0 * p->queries.ld, p->queries.ld, rows, mb, d, qpad, &ldq);
  if (sc->kind == ATTN_SCORE_GENERAL) { /* (Q W) A^T */
    attn_cpu_gemm_nn(c->k, mb, d, d, q, ldq, sc->w, sc->ldw, qgen, (int64_t)up16(d));
    q = qgen;
    ldq = (int64_t)up16(d);
  }
  float scale = sc->kind == ATTN_SCORE_SCALED_DOT ? sc->scale : 1.0f;
  attn_cpu_gemm_nt(c->k, mb, valid, d, scale, q, ldq, set->annotations, p->annotations.ld, s,
                   (int64_t)lds);
}

static void gemm_item(const cpu_call_t *c, const attn_set_t *set, int64_t i0, int64_t rows,
                      float *ws) {
  const attn_problem_t *p = c->p;
  const attn_cpu_kernels_t *k = c->k;
  const int64_t valid = set->valid, dv = p->dv, mb = gemm_rows(valid);
  const size_t lds = up16(valid);
  float *s = take(&ws, (size_t)mb * lds);
  float *cpad = take(&ws, (size_t)mb * up16(dv));
  float *rmax = take(&ws, (size_t)mb), *rinv = take(&ws, (size_t)mb);
  int kinds[GEMM_MAX_ROWS];

  gemm_scores(c, set, i0, rows, mb, s, &ws);
  for (int64_t r = 0; r < rows; r++) {
    float *sr = s + (size_t)r * lds;
    if (set->scores) {
      float *out = set->scores + (i0 + r) * p->scores.ld;
      memcpy(out, sr, (size_t)valid * sizeof(float));
      fill(out + valid, set->n - valid, -INFINITY);
    }
    rmax[r] = k->max(sr, valid);
    kinds[r] = row_kind(k, sr, valid, rmax[r]);
    if (kinds[r] != ROW_OK) {
      memset(sr, 0, (size_t)valid * sizeof(float));
      continue;
    }
    float sum = k->exp_sum(sr, rmax[r], valid);
    if (isnan(sum)) {
      kinds[r] = ROW_NAN;
      memset(sr, 0, (size_t)valid * sizeof(float));
      continue;
    }
    rinv[r] = 1.0f / sum;
    if (set->lse) set->lse[i0 + r] = rmax[r] + logf(sum);
  }
  /* padded rows: exp(0 - 0) = 1, finite; their context rows are dropped */
  for (int64_t r = rows; r < mb; r++)
    fill(s + (size_t)r * lds, valid, 1.0f);

  float *cdst = set->context + i0 * p->context.ld;
  int64_t ldc = p->context.ld;
  if (rows != mb) {
    cdst = cpad;
    ldc = (int64_t)up16(dv);
  }
  attn_cpu_gemm_nn(k, mb, dv, valid, s, (int64_t)lds, set->values, p->values.ld, cdst, ldc);

  for (int64_t r = 0; r < rows; r++) {
    int64_t i = i0 + r;
    float *cr = set->context + i * p->context.ld;
    if (kinds[r] == ROW_NAN)
      fill(cr, dv, NAN);
    else if (kinds[r] == ROW_EMPTY)
      memset(cr, 0, (size_t)dv * sizeof(float));
    else {
      if (rows != mb) memcpy(cr, cpad + r * ldc, (size_t)dv * sizeof(float));
      k->scal(cr, rinv[r], dv);
    }
    if (set->lse && kinds[r] != ROW_OK) set->lse[i] = kinds[r] == ROW_NAN ? NAN : -INFINITY;
    if (set->weights) {
      float *w = set->weights + i * p->weights.ld;
      if (kinds[r] == ROW_OK) {
        memcpy(w, s + (size_t)r * lds, (size_t)valid * sizeof(float));
        k->scal(w, rinv[r], valid);
        fill(w + valid, set->n - valid, 0.0f);
      } else {
        finish_weights(k, w, valid, set->n, kinds[r], 0.0f, 0.0f);
      }
    }
  }
}

/* ------------------------------------------------------------------------------------------ */
/* The step calls                                                                             */
/* ------------------------------------------------------------------------------------------ */

static void scores_item(const cpu_call_t *c, const attn_set_t *set, int path, int64_t i0,
                        int64_t rows, float *ws) {
  const attn_problem_t *p = c->p;
  const int64_t valid = set->valid;
  if (path == PATH_GEMM) {
    int64_t mb = gemm_rows(valid);
    float *s = take(&ws, (size_t)mb * up16(valid));
    gemm_scores(c, set, i0, rows, mb, s, &ws);
    for (int64_t r = 0; r < rows; r++) {
      float *out = set->scores + (i0 + r) * p->scores.ld;
      memcpy(out, s + (size_t)r * up16(valid), (size_t)valid * sizeof(float));
      fill(out + valid, set->n - valid, -INFINITY);
    }
    return;
  }
  /* dot loops, a group of queries per pass over each chunk of annotations */
  const int64_t chunk = path == PATH_SIMPLE ? simple_chunk(set) : FUSED_CHUNK;
  const size_t ldq = up16(query_width(p));
  float *qbuf = take(&ws, (size_t)rows * ldq);
  float *pa = is_additive(p) ? take(&ws, (size_t)chunk * up16(p->score.h)) : NULL;
  const float *u[FUSED_QUERIES];
  for (int64_t g = 0; g < rows; g++)
    u[g] = prepare_query(c, set->queries + (i0 + g) * p->queries.ld, qbuf + (size_t)g * ldq);
  for (int64_t j0 = 0; j0 < valid; j0 += chunk) {
    int64_t count = valid - j0 < chunk ? valid - j0 : chunk;
    if (pa) prepare_annotations(c, set, j0, count, pa);
    for (int64_t g = 0; g < rows; g++)
      score_chunk(c, c->k, set, u[g], pa, j0, count, set->scores + (i0 + g) * p->scores.ld + j0);
  }
  for (int64_t g = 0; g < rows; g++)
    fill(set->scores + (i0 + g) * p->scores.ld + valid, set->n - valid, -INFINITY);
}

static void softmax_item(const cpu_call_t *c, const attn_set_t *set, int64_t i0, int64_t rows) {
  const attn_problem_t *p = c->p;
  const attn_cpu_kernels_t *k = c->k;
  const int64_t valid = set->valid;
  for (int64_t i = i0; i < i0 + rows; i++) {
    const float *in = set->scores_in + i * p->scores_in.ld;
    float *w = set->weights + i * p->weights.ld;
    if (w != in) memcpy(w, in, (size_t)valid * sizeof(float));
    float mx = k->max(w, valid), sum = 0.0f;
    int kind = row_kind(k, w, valid, mx);
    if (kind == ROW_OK) { /* exp in place; a NaN sum turns the whole row NaN */
      sum = k->exp_sum(w, mx, valid);
      if (isnan(sum)) kind = ROW_NAN;
    }
    if (kind == ROW_OK) {
      k->scal(w, 1.0f / sum, valid);
      fill(w + valid, set->n - valid, 0.0f);
    } else {
      finish_weights(k, w, valid, set->n, kind, 0.0f, 0.0f);
    }
    if (set->lse)
      set->lse[i] = kind == ROW_NAN ? NAN : kind == ROW_EMPTY ? -INFINITY : mx + logf(sum);
  }
}

static void weighted_sum_item(const cpu_call_t *c, const attn_set_t *set, int path, int64_t i0,
                              int64_t rows, float *ws) {
  const attn_problem_t *p = c->p;
  const int64_t valid = set->valid, dv = p->dv;
  if (path == PATH_GEMM) {
    int64_t mb = gemm_rows(valid), ldw, ldc = p->context.ld;
    float *wpad = take(&ws, (size_t)mb * up16(valid));
    float *cpad = take(&ws, (size_t)mb * up16(dv));
    const float *w = block_rows(set->weights_in + i0 * p->weights_in.ld, p->weights_in.ld, rows, mb,
                                valid, wpad, &ldw);
    float *cdst = set->context + i0 * ldc;
    if (rows != mb) {
      cdst = cpad;
      ldc = (int64_t)up16(dv);
    }
    attn_cpu_gemm_nn(c->k, mb, dv, valid, w, ldw, set->values, p->values.ld, cdst, ldc);
    if (rows != mb)
      for (int64_t r = 0; r < rows; r++)
        memcpy(set->context + (i0 + r) * p->context.ld, cpad + r * ldc, (size_t)dv * sizeof(float));
    return;
  }
  for (int64_t i = i0; i < i0 + rows; i++) {
    const float *w = set->weights_in + i * p->weights_in.ld;
    float *cr = set->context + i * p->context.ld;
    memset(cr, 0, (size_t)dv * sizeof(float));
    c->k->axpy_rows(cr, w, set->values, p->values.ld, valid, dv);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Planning and running                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* The path of one set (documented at the top of the file). */
/* FUSED, or its lane form where the kernels have one and the call fits it. */
static int fused_path(const attn_cpu_kernels_t *k, const attn_problem_t *p) {
  int lanes = k->lanes && p->op == ATTN_OP_FORWARD && !is_additive(p) &&
              p->d <= ATTN_CPU_LANE_WIDTH && p->dv <= ATTN_CPU_LANE_WIDTH && !p->scores.data &&
              !p->weights.data;
  return lanes ? PATH_LANES : PATH_FUSED;
}

static int choose_path(const attn_context_t *ctx, const attn_cpu_kernels_t *k,
                       const attn_problem_t *p, const attn_set_t *set) {
  if (p->op == ATTN_OP_SOFTMAX) return PATH_ROWS;
  int64_t width = p->op == ATTN_OP_SCORES         ? p->d
                  : p->op == ATTN_OP_WEIGHTED_SUM ? p->dv
                                                  : (p->d < p->dv ? p->d : p->dv);
  switch (ctx->options.algo) {
  case ATTN_ALGO_SIMPLE:
    return PATH_SIMPLE;
  case ATTN_ALGO_GEMM:
    return set->valid > 0 ? PATH_GEMM : PATH_FUSED;
  case ATTN_ALGO_FUSED:
  case ATTN_ALGO_ROWS: /* the CUDA backend's row kernels; the CPU's fused pass is its row path */
    return fused_path(k, p);
  default:
    break;
  }
  int gemm_shaped = attn_cpu_gemm_blas() && !is_additive(p) && width >= GEMM_MIN_WIDTH &&
                    set->valid >= GEMM_MIN_WIDTH && set->m * 2 >= gemm_rows(set->valid);
  return gemm_shaped ? PATH_GEMM : fused_path(k, p);
}

static attn_status_t grow_plan(attn_context_t *ctx, cpu_state_t *st, int64_t sets) {
  if (sets <= st->plan_sets) return ATTN_OK;
  if ((uint64_t)sets + 1 > SIZE_MAX / sizeof(int64_t))
    return attn_fail(ctx, ATTN_ERR_OVERFLOW, "cpu: %lld sets overflow the plan", (long long)sets);
  int64_t *prefix = malloc(((size_t)sets + 1) * sizeof(int64_t));
  unsigned char *path = malloc((size_t)sets);
  if (!prefix || !path) {
    free(prefix);
    free(path);
    return attn_fail(ctx, ATTN_ERR_ALLOC, "cpu: cannot allocate the plan of %lld sets",
                     (long long)sets);
  }
  free(st->prefix);
  free(st->path);
  st->prefix = prefix;
  st->path = path;
  st->plan_sets = sets;
  return ATTN_OK;
}

static attn_status_t grow_workspace(attn_context_t *ctx, cpu_state_t *st, size_t per_thread) {
  size_t threads = (size_t)st->threads;
  if (per_thread > SIZE_MAX / sizeof(float) / threads)
    return attn_fail(ctx, ATTN_ERR_OVERFLOW,
                     "n, d, dv, score.h: the cpu workspace (%zu floats a thread) overflows size_t",
                     per_thread);
  size_t total = per_thread * threads;
  if (total > st->ws_floats) {
    void *mem = NULL;
    if (posix_memalign(&mem, 64, total * sizeof(float)) != 0)
      return attn_fail(ctx, ATTN_ERR_ALLOC, "cpu: cannot allocate a %zu-byte workspace",
                       total * sizeof(float));
    free(st->ws);
    st->ws = mem;
    st->ws_floats = total;
  }
  st->ws_per_thread = per_thread;
  return ATTN_OK;
}

static void run_item(const cpu_call_t *c, int64_t item, int thread) {
  const attn_problem_t *p = c->p;
  const cpu_state_t *st = c->st;
  int64_t lo = 0, hi = p->batch; /* the set b with prefix[b] <= item < prefix[b + 1] */
  while (hi - lo > 1) {
    int64_t mid = (lo + hi) / 2;
    if (st->prefix[mid] <= item)
      lo = mid;
    else
      hi = mid;
  }
  attn_set_t set;
  attn_problem_set(p, lo, &set);
  int path = st->path[lo];
  int64_t per = item_rows(path, set.valid), i0 = (item - st->prefix[lo]) * per;
  int64_t rows = set.m - i0 < per ? set.m - i0 : per;
  /* NULL where the call needs no workspace (softmax): NULL + 0 is undefined behaviour in C. */
  float *ws = st->ws ? st->ws + (size_t)thread * st->ws_per_thread : NULL;
  switch (p->op) {
  case ATTN_OP_SCORES:
    scores_item(c, &set, path, i0, rows, ws);
    break;
  case ATTN_OP_SOFTMAX:
    softmax_item(c, &set, i0, rows);
    break;
  case ATTN_OP_WEIGHTED_SUM:
    weighted_sum_item(c, &set, path, i0, rows, ws);
    break;
  case ATTN_OP_FORWARD:
    if (path == PATH_GEMM)
      gemm_item(c, &set, i0, rows, ws);
    else if (path == PATH_LANES)
      lanes_item(c, &set, i0, rows, ws);
    else if (path == PATH_FUSED && small_shape(p))
      fused_item_small(c, &set, i0, rows, ws);
    else
      fused_item(c, &set, i0, rows, path == PATH_SIMPLE ? simple_chunk(&set) : FUSED_CHUNK, ws);
    break;
  }
}

static attn_status_t run(attn_context_t *ctx, const attn_problem_t *p) {
  cpu_state_t *st = ctx->backend_state;
  attn_status_t status = grow_plan(ctx, st, p->batch);
  if (status != ATTN_OK) return status;
  size_t need = 0;
  double work = 0.0;
  int any_gemm = 0;
  st->prefix[0] = 0;
  for (int64_t b = 0; b < p->batch; b++) {
    attn_set_t set;
    attn_problem_set(p, b, &set);
    int path = choose_path(ctx, st->k, p, &set);
    int64_t per = item_rows(path, set.valid);
    st->path[b] = (unsigned char)path;
    st->prefix[b + 1] = st->prefix[b] + (set.m + per - 1) / per;
    size_t f = item_floats(p, path, set.valid);
    need = f > need ? f : need;
    work += (double)set.m * (double)set.valid * (double)(p->d + p->dv + 16);
    any_gemm |= path == PATH_GEMM;
  }
  status = grow_workspace(ctx, st, need);
  if (status != ATTN_OK) return status;

  const int64_t total = st->prefix[p->batch];
  cpu_call_t call = {p, st, st->k};
  /* A parallel call always runs the whole team, even with fewer items than threads (those
   * threads find no item and return): OpenMP runtimes keep a team for reuse only by its size
   * (libgomp: the last team, when the next region has as many threads), so a team sized to each
   * call's items would allocate whenever sizes alternate, breaking attn_context_reserve's
   * promise that a reserved context's calls allocate nothing. */
  const int threads = work < SERIAL_WORK || total < 2 ? 1 : st->threads;
  if (any_gemm) attn_cpu_gemm_enter();
  if (threads == 1) {
    for (int64_t it = 0; it < total; it++)
      run_item(&call, it, 0);
  } else {
#ifdef _OPENMP
    /* Runs of neighbouring items per grab: fewer shared cache lines between threads' outputs.
     * The threads take them from a shared counter themselves, as schedule(dynamic, grab) would:
     * a worksharing loop's setup allocated in LLVM's OpenMP runtime (libomp 14, for dynamic and
     * static schedules alike; a clang build's test_cpu_backend counted 159 and 32 allocations
     * in a reserved context's call), and a reserved context's calls must not allocate. */
    const int64_t grab = total / ((int64_t)threads * 8) > 1 ? total / ((int64_t)threads * 8) : 1;
    int64_t next = 0;
#pragma omp parallel num_threads(threads) shared(next)
    {
      const int me = omp_get_thread_num();
      for (;;) {
        int64_t first;
#pragma omp atomic capture
        {
          first = next;
          next += grab;
        }
        if (first >= total) break;
        const int64_t last = total - first < grab ? total : first + grab;
        for (int64_t it = first; it < last; it++)
          run_item(&call, it, me);
      }
    }
#endif
  }
  if (any_gemm) attn_cpu_gemm_leave();
  return ATTN_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* The backend table                                                                          */
/* ------------------------------------------------------------------------------------------ */

static attn_status_t cpu_init(attn_context_t *ctx) {
  cpu_state_t *st = calloc(1, sizeof(*st));
  if (!st) return attn_fail(ctx, ATTN_ERR_ALLOC, "cpu: cannot allocate the backend state");
  st->k = attn_cpu_kernels();
#ifdef _OPENMP
  st->threads = ctx->options.cpu_threads > 0 ? ctx->options.cpu_threads : omp_get_num_procs();
#else
  st->threads = 1; /* built without OpenMP: one thread whatever cpu_threads says */
#endif
  if (st->threads < 1) st->threads = 1;
  ctx->backend_state = st;
  return ATTN_OK;
}

static void cpu_fini(attn_context_t *ctx) {
  cpu_state_t *st = ctx->backend_state;
  if (!st) return;
  free(st->ws);
  free(st->prefix);
  free(st->path);
  free(st);
  ctx->backend_state = NULL;
}

/* Sizes the workspace and the plan for any path on sets of up to n annotations, and starts the
 * OpenMP team. A GEMM item's size grows with the valid length while its block height stays, and
 * drops where the height steps down: its largest value is at n or at the longest length of some
 * block height. */
static attn_status_t cpu_reserve(attn_context_t *ctx, const attn_problem_t *p) {
  cpu_state_t *st = ctx->backend_state;
  attn_status_t status = grow_plan(ctx, st, p->batch);
  if (status != ATTN_OK) return status;
  size_t need = 0;
  for (int64_t rows = 0; rows <= GEMM_MAX_ROWS; rows += GEMM_MIN_ROWS) {
    /* rows == 0: n itself; otherwise the longest length whose GEMM block has `rows` rows */
    int64_t valid = rows == 0 ? p->n : GEMM_S_FLOATS / rows / ALIGN_FLOATS * ALIGN_FLOATS;
    if (valid > p->n) valid = p->n;
    for (int path = PATH_SIMPLE; path <= PATH_LANES; path++) {
      size_t f = item_floats(p, path, valid);
      need = f > need ? f : need;
    }
  }
  status = grow_workspace(ctx, st, need);
#ifdef _OPENMP
  /* Start the team a parallel call runs (see run), so that the first call from this thread does
   * not create the OpenMP runtime's threads and team either. (The region must not be empty:
   * compilers drop an empty parallel region.) */
  if (status == ATTN_OK && st->threads > 1) {
    int started = 0;
#pragma omp parallel num_threads(st->threads) reduction(+ : started)
    started++;
    (void)started;
  }
#endif
  return status;
}

const attn_backend_ops_t attn_cpu_backend_ops = {
    .kind = ATTN_BACKEND_CPU,
    .host_readable = 1,
    .init = cpu_init,
    .fini = cpu_fini,
    .mem_alloc = attn_host_mem_alloc,
    .mem_free = attn_host_mem_free,
    .copy_to_backend = attn_host_copy,
    .copy_to_host = attn_host_copy,
    .check_pointer = attn_host_check_pointer,
    .scores = run,
    .softmax = run,
    .weighted_sum = run,
    .forward = run,
    .reserve = cpu_reserve,
    .synchronize = NULL,
};
