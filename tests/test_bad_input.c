/*
 * test_bad_input.c - every check of DESIGN.md's "Errors and bad input", for every public compute
 * call (scores, softmax, weighted sum, forward, their *_host forms, reserve) and the buffer and
 * context functions.
 *
 * Each case mutates one argument of a valid call and expects:
 *   - its specific status,
 *   - attn_context_last_error() naming the argument (a substring),
 *   - every output (and input) byte-for-byte untouched (sentinel fill + memcmp),
 *   - the context still working: a valid forward right after gives the same bits as on a fresh
 *     context.
 * Cases run on REFERENCE and CPU contexts (direct and *_host calls), on a CPU context whose
 * *_host calls are forced to stage (ATTN_TEST_FORCE_STAGING=1), and on CUDA (*_host calls) when
 * a device is usable.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "test_util.h"

/* Huge allocations must fail with NULL under AddressSanitizer too, not abort the test. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "allocator_may_return_null=1";
}

/* ------------------------------------------------------------------------------------------ */
/* The valid call every case starts from                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Two sets of 3 queries and 5 annotations, d = 4, separate values dv = 3, lengths {5, 2}. */
#define B  2
#define M  3
#define N  5
#define D  4
#define DV 3
#define H  8

enum { FN_SCORES = 1, FN_SOFTMAX = 2, FN_WSUM = 4, FN_FORWARD = 8, FN_RESERVE = 16 };
#define FN_COMPUTE (FN_SCORES | FN_SOFTMAX | FN_WSUM | FN_FORWARD)
#define FN_ALL     (FN_COMPUTE | FN_RESERVE)
#define FN_SCORING (FN_SCORES | FN_FORWARD | FN_RESERVE)

typedef struct fixture {
  attn_test_problem_t p;
  float *arena; /* every output, one after another, plus padding */
  size_t arena_count;
  float *c, *s, *w, *lse;
  float *s_in, *w_in;                 /* softmax / weighted-sum inputs (padded) */
  float wmat[D * D + 1];              /* general W */
  float wq[H * D + 1], wa[H * D + 1]; /* additive parameters */
  float hv[H + 1];
  int32_t ints[8]; /* room for misaligned int32 pointers */
} fixture_t;

static fixture_t fx;

static void fixture_setup(void) {
  static const int32_t LEN[B] = {5, 2};
  attn_test_spec_t spec = attn_test_spec(B, M, N, D);
  spec.separate_values = 1;
  spec.dv = DV;
  spec.lengths = LEN;
  spec.seed = 42;
  attn_test_problem_init(&fx.p, &spec);
  fx.arena_count = fx.p.c_count + 2 * fx.p.s_count + fx.p.lse_count + 4;
  fx.arena = attn_test_calloc(fx.arena_count, sizeof(float));
  attn_test_fill_sentinel(fx.arena, fx.arena_count);
  fx.c = fx.arena;
  fx.s = fx.c + fx.p.c_count + 1;
  fx.w = fx.s + fx.p.s_count + 1;
  fx.lse = fx.w + fx.p.s_count + 1;
  fx.s_in = attn_test_calloc(fx.p.s_count + 1, sizeof(float));
  fx.w_in = attn_test_calloc(fx.p.s_count + 1, sizeof(float));
  for (size_t i = 0; i < fx.p.s_count; i++)
    fx.w_in[i] = 0.25f;
  attn_rng_t rng;
  attn_rng_seed(&rng, 9);
  attn_rng_fill(&rng, fx.wmat, D * D + 1, 0.5f, 0);
  attn_rng_fill(&rng, fx.wq, H * D + 1, 0.5f, 0);
  attn_rng_fill(&rng, fx.wa, H * D + 1, 0.5f, 0);
  attn_rng_fill(&rng, fx.hv, H + 1, 1.0f, 0);
}

static void fixture_teardown(void) {
  attn_test_problem_free(&fx.p);
  free(fx.arena);
  free(fx.s_in);
  free(fx.w_in);
}

/* All arguments of one call, valid until a mutation breaks one. */
typedef struct args {
  attn_context_t *ctx;
  attn_shape_t shape;
  const attn_shape_t *pshape;
  attn_score_t score;
  const attn_score_t *pscore;
  attn_inputs_t in;
  const attn_inputs_t *pin;
  attn_outputs_t out;
  const attn_outputs_t *pout;
  attn_const_matrix_t s_in, w_in;
  int32_t qoff[B + 1], aoff[B + 1], len[B + 1];
} args_t;

static void base_args(attn_context_t *ctx, args_t *a) {
  const attn_test_problem_t *p = &fx.p;
  memset(a, 0, sizeof *a);
  a->ctx = ctx;
  a->len[0] = 5;
  a->len[1] = 2;
  a->shape = p->shape;
  a->shape.lengths = a->len;
  a->pshape = &a->shape;
  a->score = attn_score_dot();
  a->pscore = &a->score;
  a->in.queries = p->mq;
  a->in.annotations = p->ma;
  a->in.values = p->mv;
  a->pin = &a->in;
  a->out.context = attn_mat(fx.c, p->ldc, p->stc);
  a->out.scores = attn_mat(fx.s, p->lds, p->sts);
  a->out.weights = attn_mat(fx.w, p->lds, p->sts);
  a->out.lse = fx.lse;
  a->pout = &a->out;
  a->s_in = attn_cmat(fx.s_in, p->lds, p->sts);
  a->w_in = attn_cmat(fx.w_in, p->lds, p->sts);
}

/* The same arrays as a varlen batch: the uniform layout has no set gaps, so set b's rows follow
 * set b-1's. */
static void make_varlen(args_t *a) {
  a->shape.m = B * M;
  a->shape.n = B * N;
  for (int b = 0; b <= B; b++) {
    a->qoff[b] = b * M;
    a->aoff[b] = b * N;
  }
  a->shape.query_offsets = a->qoff;
  a->shape.annotation_offsets = a->aoff;
}

static attn_status_t call_fn(int fn, int host, const args_t *a) {
  switch (fn) {
  case FN_SCORES:
    return (host ? attn_scores_host : attn_scores)(a->ctx, a->pshape, a->pscore, a->in.queries,
                                                   a->in.annotations, a->out.scores);
  case FN_SOFTMAX:
    return (host ? attn_softmax_host : attn_softmax)(a->ctx, a->pshape, a->s_in, a->out.weights,
                                                     a->out.lse);
  case FN_WSUM:
    return (host ? attn_weighted_sum_host : attn_weighted_sum)(a->ctx, a->pshape, a->w_in,
                                                               a->in.values, a->out.context);
  case FN_FORWARD:
    return (host ? attn_forward_host : attn_forward)(a->ctx, a->pshape, a->pscore, a->pin, a->pout);
  default:
    return attn_context_reserve(a->ctx, a->pshape, a->pscore);
  }
}

static const char *fn_name(int fn) {
  switch (fn) {
  case FN_SCORES:
    return "scores";
  case FN_SOFTMAX:
    return "softmax";
  case FN_WSUM:
    return "weighted_sum";
  case FN_FORWARD:
    return "forward";
  default:
    return "reserve";
  }
}

/* ------------------------------------------------------------------------------------------ */
/* The cases                                                                                  */
/* ------------------------------------------------------------------------------------------ */

#define MUT(name, body)                                                                            \
  static void name(args_t *a) {                                                                    \
    body;                                                                                          \
  }
#define MISALIGN(ptr) ((void *)((char *)(ptr) + 1))

/* NULL pointers */
MUT(m_ctx_null, a->ctx = NULL)
MUT(m_shape_null, a->pshape = NULL)
MUT(m_q_null, a->in.queries.data = NULL)
MUT(m_a_null, a->in.annotations.data = NULL)
MUT(m_v_null, a->in.values.data = NULL)
MUT(m_s_null, a->out.scores.data = NULL)
MUT(m_s_in_null, a->s_in.data = NULL)
MUT(m_w_null, a->out.weights.data = NULL)
MUT(m_w_in_null, a->w_in.data = NULL)
MUT(m_c_null, a->out.context.data = NULL)
MUT(m_in_null, a->pin = NULL)
MUT(m_out_null, a->pout = NULL)
MUT(m_general_null, a->score = attn_score_general(NULL, D))
MUT(m_wq_null, a->score = attn_score_additive(H, NULL, D, fx.wa, D, fx.hv))
MUT(m_wa_null, a->score = attn_score_additive(H, fx.wq, D, NULL, D, fx.hv))
MUT(m_hv_null, a->score = attn_score_additive(H, fx.wq, D, fx.wa, D, NULL))
/* sizes */
MUT(m_batch0, a->shape.batch = 0)
MUT(m_batch_neg, a->shape.batch = -3)
MUT(m_m_neg, a->shape.m = -1)
MUT(m_n_neg, a->shape.n = -1)
MUT(m_d0, a->shape.d = 0)
MUT(m_d_neg, a->shape.d = -4)
MUT(m_dv0, a->shape.dv = 0)
MUT(m_values_dv, a->in.values.data = NULL) /* forward: values = annotations needs dv == d */
MUT(m_h0, a->score = attn_score_additive(0, fx.wq, D, fx.wa, D, fx.hv))
/* leading dimensions and strides */
MUT(m_q_ld, a->in.queries.ld = D - 1)
MUT(m_q_ld_neg, a->in.queries.ld = -D)
MUT(m_a_ld, a->in.annotations.ld = D - 1)
MUT(m_v_ld, a->in.values.ld = DV - 1)
MUT(m_s_ld, a->out.scores.ld = N - 1)
MUT(m_s_in_ld, a->s_in.ld = N - 1)
MUT(m_w_ld, a->out.weights.ld = N - 1)
MUT(m_w_in_ld, a->w_in.ld = N - 1)
MUT(m_c_ld, a->out.context.ld = DV - 1)
MUT(m_c_overlap, a->out.context.stride = (M - 1) * a->out.context.ld + DV - 1)
MUT(m_s_overlap, a->out.scores.stride = (M - 1) * a->out.scores.ld + N - 1)
MUT(m_w_overlap, a->out.weights.stride = (M - 1) * a->out.weights.ld)
MUT(m_q_stride_neg, a->in.queries.stride = -1)
MUT(m_ldw, a->score = attn_score_general(fx.wmat, D - 1))
MUT(m_ldwq, a->score = attn_score_additive(H, fx.wq, D - 1, fx.wa, D, fx.hv))
MUT(m_ldwa, a->score = attn_score_additive(H, fx.wq, D, fx.wa, 1, fx.hv))
/* offsets */
MUT(m_varlen_qoff_decreasing, make_varlen(a); a->qoff[1] = 4; a->qoff[2] = 3)
MUT(m_varlen_qoff_negative, make_varlen(a); a->qoff[0] = -1)
MUT(m_varlen_qoff_past, make_varlen(a); a->qoff[2] = B * M + 1)
MUT(m_varlen_aoff_decreasing, make_varlen(a); a->aoff[1] = 8; a->aoff[2] = 7)
MUT(m_varlen_aoff_past, make_varlen(a); a->aoff[2] = B * N + 1)
MUT(m_varlen_one_offsets, make_varlen(a); a->shape.annotation_offsets = NULL)
/* lengths */
MUT(m_len_neg, a->len[1] = -1)
MUT(m_len_past, a->len[0] = N + 1)
MUT(m_varlen_len_past, make_varlen(a); a->aoff[2] = 9; a->len[1] = 5)
/* overflow of byte counts */
MUT(m_m_overflow, a->shape.m = (int64_t)1 << 60)
MUT(m_n_overflow, a->shape.n = (int64_t)1 << 60)
MUT(m_stride_overflow, a->shape.batch = (int64_t)1 << 40; a->shape.lengths = NULL;
    a->in.queries.stride = (int64_t)1 << 40)
/* empty matrices: nothing is read, but every set's and row's address is still formed */
MUT(m_empty_q_stride_overflow, a->shape.m = 0; a->in.queries.stride = INT64_MAX)
MUT(m_empty_a_stride_overflow, a->shape.n = 0; a->shape.lengths = NULL;
    a->in.annotations.stride = INT64_MAX)
MUT(m_empty_s_ld_overflow, a->shape.n = 0; a->shape.lengths = NULL; a->out.scores.ld = INT64_MAX)
/* alignment */
MUT(m_q_mis, a->in.queries.data = MISALIGN(a->in.queries.data))
MUT(m_a_mis, a->in.annotations.data = MISALIGN(a->in.annotations.data))
MUT(m_v_mis, a->in.values.data = MISALIGN(a->in.values.data))
MUT(m_s_mis, a->out.scores.data = MISALIGN(a->out.scores.data))
MUT(m_s_in_mis, a->s_in.data = MISALIGN(a->s_in.data))
MUT(m_w_mis, a->out.weights.data = MISALIGN(a->out.weights.data))
MUT(m_w_in_mis, a->w_in.data = MISALIGN(a->w_in.data))
MUT(m_c_mis, a->out.context.data = MISALIGN(a->out.context.data))
MUT(m_lse_mis, a->out.lse = MISALIGN(a->out.lse))
MUT(m_len_mis, a->shape.lengths = MISALIGN(fx.ints))
MUT(m_varlen_qoff_mis, make_varlen(a); a->shape.query_offsets = MISALIGN(fx.ints))
MUT(m_wmat_mis, a->score = attn_score_general(MISALIGN(fx.wmat), D))
MUT(m_hv_mis, a->score = attn_score_additive(H, fx.wq, D, fx.wa, D, MISALIGN(fx.hv)))
/* in-place softmax with another layout than the scores' */
MUT(m_inplace_ld, a->shape.batch = 1; a->out.weights = attn_mat(fx.s_in, a->s_in.ld + 1, 0))
MUT(m_inplace_stride, a->out.weights = attn_mat(fx.s_in, a->s_in.ld, a->s_in.stride + 1))
/* an output at the same address as an input or another output */
MUT(m_alias_weights_scores, a->out.weights = a->out.scores)
MUT(m_alias_scores_queries, a->out.scores.data = (float *)a->in.queries.data)
MUT(m_alias_context_annotations, a->out.context.data = (float *)a->in.annotations.data)
MUT(m_alias_context_values, a->out.context.data = (float *)a->in.values.data)
MUT(m_alias_context_weights_in, a->out.context.data = (float *)a->w_in.data)
MUT(m_alias_lse_weights, a->out.lse = a->out.weights.data)
MUT(m_alias_lse_scores_in, a->out.lse = (float *)a->s_in.data)
MUT(m_alias_scores_qoff, make_varlen(a); a->out.scores.data = (float *)a->qoff)
MUT(m_alias_lse_lengths, a->out.lse = (float *)a->len)
MUT(m_alias_scores_w, a->score = attn_score_general(fx.wmat, D); a->out.scores.data = fx.wmat)
MUT(m_alias_context_v, a->score = attn_score_additive(H, fx.wq, D, fx.wa, D, fx.hv);
    a->out.context.data = fx.hv)
/* enums and options */
MUT(m_kind_bad, a->score.kind = (attn_score_kind_t)9)
MUT(m_kind_neg, a->score.kind = (attn_score_kind_t)-1)
MUT(m_scale_nan, a->score = attn_score_scaled_dot(NAN))
MUT(m_scale_inf, a->score = attn_score_scaled_dot(-INFINITY))

typedef struct bad_case {
  const char *name;
  void (*mutate)(args_t *a);
  int fns;
  attn_status_t status;
  const char *arg; /* a substring of the message; NULL when there is no context to hold one */
} bad_case_t;

#define NUL ATTN_ERR_NULL_POINTER
#define SIZ ATTN_ERR_INVALID_SIZE
#define LDE ATTN_ERR_INVALID_LD
#define OFF ATTN_ERR_INVALID_OFFSETS
#define LEN ATTN_ERR_INVALID_LENGTH
#define OVF ATTN_ERR_OVERFLOW
#define MIS ATTN_ERR_MISALIGNED
#define ARG ATTN_ERR_INVALID_ARG

static const bad_case_t CASES[] = {
    {"ctx NULL", m_ctx_null, FN_ALL, NUL, NULL},
    {"shape NULL", m_shape_null, FN_ALL, NUL, "shape"},
    {"queries NULL", m_q_null, FN_SCORES | FN_FORWARD, NUL, "queries"},
    {"annotations NULL", m_a_null, FN_SCORES | FN_FORWARD, NUL, "annotations"},
    {"values NULL", m_v_null, FN_WSUM, NUL, "values"},
    {"scores NULL", m_s_null, FN_SCORES, NUL, "scores"},
    {"input scores NULL", m_s_in_null, FN_SOFTMAX, NUL, "scores"},
    {"weights NULL", m_w_null, FN_SOFTMAX, NUL, "weights"},
    {"input weights NULL", m_w_in_null, FN_WSUM, NUL, "weights"},
    {"context NULL", m_c_null, FN_WSUM | FN_FORWARD, NUL, "context"},
    {"in NULL", m_in_null, FN_FORWARD, NUL, "in"},
    {"out NULL", m_out_null, FN_FORWARD, NUL, "out"},
    {"general W NULL", m_general_null, FN_SCORING, NUL, "score->w"},
    {"additive W_q NULL", m_wq_null, FN_SCORING, NUL, "score->wq"},
    {"additive W_a NULL", m_wa_null, FN_SCORING, NUL, "score->wa"},
    {"additive v NULL", m_hv_null, FN_SCORING, NUL, "score->v"},

    {"batch 0", m_batch0, FN_ALL, SIZ, "batch"},
    {"batch negative", m_batch_neg, FN_ALL, SIZ, "batch"},
    {"m negative", m_m_neg, FN_ALL, SIZ, "shape->m"},
    {"n negative", m_n_neg, FN_ALL, SIZ, "shape->n"},
    {"d 0", m_d0, FN_SCORING, SIZ, "shape->d"},
    {"d negative", m_d_neg, FN_SCORING, SIZ, "shape->d"},
    {"dv 0", m_dv0, FN_WSUM | FN_FORWARD | FN_RESERVE, SIZ, "shape->dv"},
    {"no values with dv != d", m_values_dv, FN_FORWARD, SIZ, "dv"},
    {"additive h 0", m_h0, FN_SCORING, SIZ, "score->h"},

    {"queries.ld < d", m_q_ld, FN_SCORES | FN_FORWARD, LDE, "queries"},
    {"queries.ld negative", m_q_ld_neg, FN_SCORES | FN_FORWARD, LDE, "queries"},
    {"annotations.ld < d", m_a_ld, FN_SCORES | FN_FORWARD, LDE, "annotations"},
    {"values.ld < dv", m_v_ld, FN_WSUM | FN_FORWARD, LDE, "values"},
    {"scores.ld < n", m_s_ld, FN_SCORES | FN_FORWARD, LDE, "scores"},
    {"input scores.ld < n", m_s_in_ld, FN_SOFTMAX, LDE, "scores"},
    {"weights.ld < n", m_w_ld, FN_SOFTMAX | FN_FORWARD, LDE, "weights"},
    {"input weights.ld < n", m_w_in_ld, FN_WSUM, LDE, "weights"},
    {"context.ld < dv", m_c_ld, FN_WSUM | FN_FORWARD, LDE, "context"},
    {"context sets overlap", m_c_overlap, FN_WSUM | FN_FORWARD, LDE, "context"},
    {"scores sets overlap", m_s_overlap, FN_SCORES | FN_FORWARD, LDE, "scores"},
    {"weights sets overlap", m_w_overlap, FN_SOFTMAX | FN_FORWARD, LDE, "weights"},
    {"queries.stride negative", m_q_stride_neg, FN_SCORES | FN_FORWARD, LDE, "queries"},
    {"general ldw < d", m_ldw, FN_SCORING, LDE, "score->w"},
    {"additive ldwq < d", m_ldwq, FN_SCORING, LDE, "score->wq"},
    {"additive ldwa < d", m_ldwa, FN_SCORING, LDE, "score->wa"},

    {"query offsets decrease", m_varlen_qoff_decreasing, FN_COMPUTE, OFF, "query_offsets"},
    {"query offsets negative", m_varlen_qoff_negative, FN_COMPUTE, OFF, "query_offsets"},
    {"query offsets past m", m_varlen_qoff_past, FN_COMPUTE, OFF, "query_offsets"},
    {"annotation offsets decrease", m_varlen_aoff_decreasing, FN_COMPUTE, OFF,
     "annotation_offsets"},
    {"annotation offsets past n", m_varlen_aoff_past, FN_COMPUTE, OFF, "annotation_offsets"},
    {"only one offsets array", m_varlen_one_offsets, FN_ALL, ARG, "annotation_offsets"},

    {"length negative", m_len_neg, FN_COMPUTE, LEN, "lengths"},
    {"length past n", m_len_past, FN_COMPUTE, LEN, "lengths"},
    {"varlen length past n_b", m_varlen_len_past, FN_COMPUTE, LEN, "lengths"},

    {"m rows overflow size_t", m_m_overflow, FN_SCORES | FN_FORWARD, OVF, "queries"},
    {"m rows overflow size_t (softmax)", m_m_overflow, FN_SOFTMAX, OVF, "scores"},
    {"m rows overflow size_t (weighted sum)", m_m_overflow, FN_WSUM, OVF, "weights"},
    {"n rows overflow size_t", m_n_overflow, FN_SCORES | FN_FORWARD, OVF, "annotations"},
    {"batch x stride overflows", m_stride_overflow, FN_SCORES | FN_FORWARD, OVF, "queries"},
    {"m 0, batch x stride overflows", m_empty_q_stride_overflow, FN_SCORES | FN_FORWARD, OVF,
     "queries"},
    {"n 0, batch x stride overflows", m_empty_a_stride_overflow, FN_SCORES | FN_FORWARD, OVF,
     "annotations"},
    {"n 0, rows x ld overflows", m_empty_s_ld_overflow, FN_SCORES | FN_FORWARD, OVF, "scores"},

    {"queries misaligned", m_q_mis, FN_SCORES | FN_FORWARD, MIS, "queries"},
    {"annotations misaligned", m_a_mis, FN_SCORES | FN_FORWARD, MIS, "annotations"},
    {"values misaligned", m_v_mis, FN_WSUM | FN_FORWARD, MIS, "values"},
    {"scores misaligned", m_s_mis, FN_SCORES | FN_FORWARD, MIS, "scores"},
    {"input scores misaligned", m_s_in_mis, FN_SOFTMAX, MIS, "scores"},
    {"weights misaligned", m_w_mis, FN_SOFTMAX | FN_FORWARD, MIS, "weights"},
    {"input weights misaligned", m_w_in_mis, FN_WSUM, MIS, "weights"},
    {"context misaligned", m_c_mis, FN_WSUM | FN_FORWARD, MIS, "context"},
    {"lse misaligned", m_lse_mis, FN_SOFTMAX | FN_FORWARD, MIS, "lse"},
    {"lengths misaligned", m_len_mis, FN_ALL, MIS, "lengths"},
    {"query offsets misaligned", m_varlen_qoff_mis, FN_ALL, MIS, "query_offsets"},
    {"general W misaligned", m_wmat_mis, FN_SCORING, MIS, "score->w"},
    {"additive v misaligned", m_hv_mis, FN_SCORING, MIS, "score->v"},

    {"in place with another ld", m_inplace_ld, FN_SOFTMAX, ARG, "weights"},
    {"in place with another stride", m_inplace_stride, FN_SOFTMAX, ARG, "weights"},

    {"weights on scores", m_alias_weights_scores, FN_FORWARD, ARG,
     "weights: the same memory as scores"},
    {"scores on queries", m_alias_scores_queries, FN_SCORES | FN_FORWARD, ARG,
     "scores: the same memory as queries"},
    {"context on annotations", m_alias_context_annotations, FN_FORWARD, ARG,
     "context: the same memory as annotations"},
    {"context on values", m_alias_context_values, FN_WSUM | FN_FORWARD, ARG,
     "context: the same memory as values"},
    {"context on weights", m_alias_context_weights_in, FN_WSUM, ARG,
     "context: the same memory as weights"},
    {"lse on weights", m_alias_lse_weights, FN_SOFTMAX | FN_FORWARD, ARG,
     "lse: the same memory as weights"},
    {"lse on scores", m_alias_lse_scores_in, FN_SOFTMAX, ARG, "lse: the same memory as scores"},
    {"scores on the query offsets", m_alias_scores_qoff, FN_SCORES | FN_FORWARD, ARG,
     "scores: the same memory as shape->query_offsets"},
    {"lse on the lengths", m_alias_lse_lengths, FN_SOFTMAX | FN_FORWARD, ARG,
     "lse: the same memory as shape->lengths"},
    {"scores on general W", m_alias_scores_w, FN_SCORES | FN_FORWARD, ARG,
     "scores: the same memory as score->w"},
    {"context on additive v", m_alias_context_v, FN_FORWARD, ARG,
     "context: the same memory as score->v"},

    {"score kind 9", m_kind_bad, FN_SCORING, ARG, "score->kind"},
    {"score kind -1", m_kind_neg, FN_SCORING, ARG, "score->kind"},
    {"scale NaN", m_scale_nan, FN_SCORING, ARG, "score->scale"},
    {"scale -inf", m_scale_inf, FN_SCORING, ARG, "score->scale"},
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

/* ------------------------------------------------------------------------------------------ */
/* Running the cases                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* A context kind the cases run on. */
typedef struct target {
  attn_test_variant_t variant; /* backend and forced staging; path unused */
  int direct;                  /* compute calls take host memory (host backends) */
} target_t;

static int targets(target_t out[4]) {
  attn_backend_t backends[ATTN_TEST_MAX_BACKENDS];
  int nb = attn_test_backends(backends), count = 0;
  for (int i = 0; i < nb; i++) {
    memset(&out[count], 0, sizeof out[count]);
    out[count].variant.backend = backends[i];
    snprintf(out[count].variant.name, sizeof out[count].variant.name, "%s",
             attn_backend_name(backends[i]));
    out[count].direct = backends[i] != ATTN_BACKEND_CUDA;
    count++;
  }
  memset(&out[count], 0, sizeof out[count]);
  out[count].variant.backend = ATTN_BACKEND_CPU;
  out[count].variant.force_staging = 1;
  snprintf(out[count].variant.name, sizeof out[count].variant.name, "cpu/staged");
  out[count].direct = 1;
  return count + 1;
}

/* The valid forward on fresh outputs: the bits a working context must give. */
static void valid_forward(attn_context_t *ctx, float *c, float *s, float *w, float *lse) {
  args_t a;
  base_args(ctx, &a);
  a.out.context.data = c;
  a.out.scores.data = s;
  a.out.weights.data = w;
  a.out.lse = lse;
  attn_status_t st = attn_forward_host(ctx, a.pshape, a.pscore, a.pin, a.pout);
  if (st == ATTN_OK) st = attn_context_synchronize(ctx);
  ck_assert_msg(st == ATTN_OK, "valid forward: %s", attn_context_last_error(ctx));
}

/* Sizes of the snapshots of inputs that a call must not modify. */
static int inputs_unchanged(float *const saved[4]) {
  const attn_test_problem_t *p = &fx.p;
  return memcmp(saved[0], p->q, p->q_count * sizeof(float)) == 0 &&
         memcmp(saved[1], p->a, p->a_count * sizeof(float)) == 0 &&
         memcmp(saved[2], p->v, p->v_count * sizeof(float)) == 0 &&
         memcmp(saved[3], fx.s_in, fx.p.s_count * sizeof(float)) == 0;
}

START_TEST(test_bad_arguments) {
  target_t ts[4];
  int nt = targets(ts);
  const attn_test_problem_t *p = &fx.p;
  float *arena_copy = attn_test_calloc(fx.arena_count, sizeof(float));
  memcpy(arena_copy, fx.arena, fx.arena_count * sizeof(float));
  float *saved[4] = {attn_test_calloc(p->q_count, 4), attn_test_calloc(p->a_count, 4),
                     attn_test_calloc(p->v_count, 4), attn_test_calloc(p->s_count, 4)};
  memcpy(saved[0], p->q, p->q_count * sizeof(float));
  memcpy(saved[1], p->a, p->a_count * sizeof(float));
  memcpy(saved[2], p->v, p->v_count * sizeof(float));
  memcpy(saved[3], fx.s_in, p->s_count * sizeof(float));
  size_t out_floats = p->c_count + 2 * p->s_count + p->lse_count;
  float *want = attn_test_calloc(out_floats, sizeof(float));
  float *got = attn_test_calloc(out_floats, sizeof(float));
  int checked = 0;

  for (int t = 0; t < nt; t++) {
    attn_context_t *ctx = attn_test_variant_context(&ts[t].variant);
    float *wc = want, *ws = wc + p->c_count, *ww = ws + p->s_count, *wl = ww + p->s_count;
    valid_forward(ctx, wc, ws, ww, wl);
    for (int k = 0; k < NCASES; k++) {
      const bad_case_t *bc = &CASES[k];
      for (int fn = FN_SCORES; fn <= FN_RESERVE; fn <<= 1) {
        if (!(bc->fns & fn)) continue;
        for (int host = 0; host < 2; host++) {
          if (fn == FN_RESERVE && host) continue;
          if (!host && !ts[t].direct && fn != FN_RESERVE) continue;
          args_t a;
          base_args(ctx, &a);
          /* reserve takes backend pointers: no host lengths array on CUDA. */
          if (fn == FN_RESERVE && !ts[t].direct) a.shape.lengths = NULL;
          bc->mutate(&a);
          attn_status_t st = call_fn(fn, host, &a);
          const char *msg = attn_context_last_error(ctx);
          ck_assert_msg(st == bc->status, "%s: %s%s on '%s': %s, expected %s (message '%s')",
                        ts[t].variant.name, fn_name(fn), host ? "_host" : "", bc->name,
                        attn_status_string(st), attn_status_string(bc->status), msg);
          if (bc->arg) {
            ck_assert_msg(strstr(msg, bc->arg) != NULL, "%s: %s%s on '%s': message '%s' lacks '%s'",
                          ts[t].variant.name, fn_name(fn), host ? "_host" : "", bc->name, msg,
                          bc->arg);
          }
          ck_assert_msg(memcmp(arena_copy, fx.arena, fx.arena_count * sizeof(float)) == 0,
                        "%s: %s%s on '%s' touched an output", ts[t].variant.name, fn_name(fn),
                        host ? "_host" : "", bc->name);
          ck_assert_msg(inputs_unchanged(saved), "%s: %s on '%s' modified an input",
                        ts[t].variant.name, fn_name(fn), bc->name);
          /* The context still works, and gives the same bits. */
          float *gc = got, *gs = gc + p->c_count, *gw = gs + p->s_count, *gl = gw + p->s_count;
          attn_test_fill_sentinel(got, out_floats);
          valid_forward(ctx, gc, gs, gw, gl);
          ck_assert_msg(memcmp(got, want, out_floats * sizeof(float)) == 0,
                        "%s: the context computes differently after '%s'", ts[t].variant.name,
                        bc->name);
          checked++;
        }
      }
    }
    attn_context_destroy(ctx);
  }
  /* Every case ran on at least the two host backends. */
  ck_assert_int_ge(checked, 2 * NCASES);
  free(arena_copy);
  for (int i = 0; i < 4; i++)
    free(saved[i]);
  free(want);
  free(got);
}
END_TEST

/* The mutations that expect errors are one argument away from valid calls: the unmutated call
 * and the valid varlen form succeed on every function. */
START_TEST(test_base_calls_valid) {
  target_t ts[4];
  int nt = targets(ts);
  for (int t = 0; t < nt; t++) {
    attn_context_t *ctx = attn_test_variant_context(&ts[t].variant);
    for (int varlen = 0; varlen < 2; varlen++) {
      for (int fn = FN_SCORES; fn <= FN_RESERVE; fn <<= 1) {
        for (int host = 0; host < 2; host++) {
          if (!host && !ts[t].direct && fn != FN_RESERVE) continue;
          args_t a;
          base_args(ctx, &a);
          if (varlen) make_varlen(&a);
          if (fn == FN_RESERVE && !ts[t].direct) {
            a.shape.lengths = NULL;
            a.shape.query_offsets = a.shape.annotation_offsets = NULL;
          }
          attn_status_t st = call_fn(fn, host, &a);
          if (st == ATTN_OK) st = attn_context_synchronize(ctx);
          ck_assert_msg(st == ATTN_OK, "%s: valid %s%s (varlen %d): %s", ts[t].variant.name,
                        fn_name(fn), host ? "_host" : "", varlen, attn_context_last_error(ctx));
          ck_assert_str_eq(attn_context_last_error(ctx), "");
        }
      }
    }
    attn_context_destroy(ctx);
  }
  /* The valid calls wrote the outputs; put the sentinel back for the next test. */
  attn_test_fill_sentinel(fx.arena, fx.arena_count);
}
END_TEST

/* Shared addresses that are not overlaps stay valid: outputs without elements (m = 0; the score
 * and weight rows of n = 0) may share one address, the weights may be the scores in place with
 * an lse beside them, and inputs may be one another (queries = annotations = values). */
START_TEST(test_shared_addresses_valid) {
  target_t ts[4];
  int nt = targets(ts);
  for (int t = 0; t < nt; t++) {
    attn_context_t *ctx = attn_test_variant_context(&ts[t].variant);
    for (int host = 0; host < 2; host++) {
      if (!host && !ts[t].direct) continue;
      for (int k = 0; k < 4; k++) {
        args_t a;
        base_args(ctx, &a);
        int fn = FN_FORWARD;
        const char *what = "";
        switch (k) {
        case 0:
          what = "m = 0, every output at one address";
          a.shape.m = 0;
          a.out.scores.data = a.out.weights.data = a.out.lse = a.out.context.data;
          break;
        case 1:
          what = "n = 0, weights at the scores' address";
          a.shape.n = 0;
          a.shape.lengths = NULL;
          a.out.weights = a.out.scores;
          break;
        case 2:
          what = "softmax in place, with lse";
          fn = FN_SOFTMAX;
          a.out.weights = attn_mat((float *)a.s_in.data, a.s_in.ld, a.s_in.stride);
          break;
        default:
          what = "queries = annotations = values";
          a.shape.dv = a.shape.d;
          a.in.queries = a.in.annotations;
          a.in.values.data = NULL;
          a.out.context = attn_mat(fx.c, a.shape.d, a.shape.m * a.shape.d);
          break;
        }
        attn_status_t st = call_fn(fn, host, &a);
        if (st == ATTN_OK) st = attn_context_synchronize(ctx);
        ck_assert_msg(st == ATTN_OK, "%s: %s%s, %s: %s", ts[t].variant.name, fn_name(fn),
                      host ? "_host" : "", what, attn_context_last_error(ctx));
      }
    }
    attn_context_destroy(ctx);
  }
  attn_test_fill_sentinel(fx.arena, fx.arena_count);
}
END_TEST

/* Leading dimensions the checks accept because no second row exists (one row: any ld >= the
 * width) and sets without rows in a varlen batch (their start, offsets[b] ld, lies past every row)
 * must not lead a backend to form addresses out of range: the sanitizer builds (pointer and
 * signed overflow) run this. One query and one annotation per set, so the weight is 1, the
 * context the annotation itself and the lse the score. */
START_TEST(test_extreme_layouts_valid) {
  enum { K = 16 };
  static const int64_t LDS[] = {(int64_t)1 << 40, (int64_t)1 << 60, INT64_MAX};
  target_t ts[4];
  int nt = targets(ts);
  float q[K], a[2 * K], c[K], w[2], lse[1], score = 0.0f;
  for (int t = 0; t < K; t++) {
    q[t] = (float)(t % 5) - 2.0f;
    a[t] = 0.25f * (float)t;
    a[K + t] = -1.0f;
    score = fmaf(q[t], a[t], score);
  }
  int checked = 0;
  for (int t = 0; t < nt; t++) {
    attn_context_t *ctx = attn_test_variant_context(&ts[t].variant);
    for (size_t j = 0; j < sizeof LDS / sizeof LDS[0]; j++) {
      for (int host = 0; host < 2; host++) {
        if (!host && !ts[t].direct) continue;
        /* One set: one row each, every ld huge. */
        attn_shape_t one = {1, 1, 1, K, K, NULL, NULL, NULL};
        attn_inputs_t in = {attn_cmat(q, LDS[j], 0), attn_cmat(a, LDS[j], 0),
                            attn_cmat(NULL, 0, 0)};
        attn_outputs_t out = {attn_mat(c, LDS[j], 0), attn_mat(NULL, 0, 0), attn_mat(w, LDS[j], 0),
                              lse};
        attn_status_t st = (host ? attn_forward_host : attn_forward)(ctx, &one, NULL, &in, &out);
        if (st == ATTN_OK) st = attn_context_synchronize(ctx);
        ck_assert_msg(st == ATTN_OK, "%s: one row, ld %lld: %s", ts[t].variant.name,
                      (long long)LDS[j], attn_context_last_error(ctx));
        ck_assert_msg(w[0] == 1.0f && memcmp(c, a, sizeof c) == 0, "%s: one row, ld %lld",
                      ts[t].variant.name, (long long)LDS[j]);
        ck_assert_msg(fabsf(lse[0] - score) <= 1e-5f * fabsf(score), "%s: lse %g, score %g",
                      ts[t].variant.name, (double)lse[0], (double)score);
        /* Two sets, the second without queries: its queries would start ld floats on. */
        const int32_t qoff[3] = {0, 1, 1}, aoff[3] = {0, 1, 2};
        attn_shape_t two = {2, 1, 2, K, K, qoff, aoff, NULL};
        in.annotations = attn_cmat(a, K, 0);
        out.weights = attn_mat(w, 2, 0);
        w[1] = -7.0f;
        st = (host ? attn_forward_host : attn_forward)(ctx, &two, NULL, &in, &out);
        if (st == ATTN_OK) st = attn_context_synchronize(ctx);
        ck_assert_msg(st == ATTN_OK, "%s: empty set, ld %lld: %s", ts[t].variant.name,
                      (long long)LDS[j], attn_context_last_error(ctx));
        ck_assert_msg(w[0] == 1.0f && w[1] == -7.0f && memcmp(c, a, sizeof c) == 0,
                      "%s: empty set, ld %lld", ts[t].variant.name, (long long)LDS[j]);
        checked++;
      }
    }
    attn_context_destroy(ctx);
  }
  ck_assert_int_ge(checked, 2 * 3);
}
END_TEST

/* A valid call whose every array is empty (n = 0: the score and weight rows have no element, so
 * their ld and stride may be 0) and whose batch x m overflows int64, with no lse: nothing checks
 * that product then, so nothing may compute it (the staging layer of *_host calls did, a signed
 * overflow that the sanitizer builds stop on). The CPU backend cannot allocate the plan of 2^44
 * sets (ATTN_ERR_ALLOC) and touches nothing; direct and staged. (The REFERENCE backend would walk
 * the 2^64 empty rows: not run.) */
START_TEST(test_empty_rows_huge_batch) {
  for (int staged = 0; staged < 2; staged++) {
    if (staged) ck_assert_int_eq(setenv("ATTN_TEST_FORCE_STAGING", "1", 1), 0);
    attn_context_t *ctx = attn_test_context(ATTN_BACKEND_CPU);
    if (staged) ck_assert_int_eq(unsetenv("ATTN_TEST_FORCE_STAGING"), 0);
    float s[1] = {1.0f}, w[1] = {7.0f};
    attn_shape_t sh = {(int64_t)1 << 44, (int64_t)1 << 20, 0, 0, 0, NULL, NULL, NULL};
    attn_status_t st = attn_softmax_host(ctx, &sh, attn_cmat(s, 0, 0), attn_mat(w, 0, 0), NULL);
    ck_assert_msg(st == ATTN_ERR_ALLOC, "staged %d: %s: %s", staged, attn_status_string(st),
                  attn_context_last_error(ctx));
    ck_assert(s[0] == 1.0f && w[0] == 7.0f);
    attn_shape_t one = {1, 1, 1, 1, 1, NULL, NULL, NULL};
    ck_assert_int_eq(attn_softmax_host(ctx, &one, attn_cmat(s, 1, 0), attn_mat(w, 1, 0), NULL),
                     ATTN_OK);
    ck_assert(w[0] == 1.0f);
    attn_context_destroy(ctx);
  }
}
END_TEST

/* Additive scores with score.h = 2^31, d = dv = 1, and n = 2^31 or 2^33: every array fits size_t
 * (8 or 32 GiB), but a scratch of n x h values (the REFERENCE backend's, the CPU backend's SIMPLE
 * algorithm's) does not: 2^62 floats, or 2^64, which wraps to 0 unless the bound saturates. Both
 * backends say ATTN_ERR_OVERFLOW naming score.h (the REFERENCE backend said ATTN_ERR_ALLOC; the
 * CPU backend's bound wrapped on 2^33) before reading anything: the inputs lie in an address range
 * reserved without access, so a read faults. */
START_TEST(test_scratch_overflow) {
  const int64_t h = (int64_t)1 << 31, NS[] = {(int64_t)1 << 31, (int64_t)1 << 33};
  const size_t bytes = (size_t)NS[1] * sizeof(float);
  void *none = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ck_assert_ptr_ne(none, MAP_FAILED);
  const float *x = none;
  static const attn_backend_t BACKENDS[] = {ATTN_BACKEND_REFERENCE, ATTN_BACKEND_CPU};
  for (size_t b = 0; b < sizeof BACKENDS / sizeof BACKENDS[0]; b++) {
    attn_options_t opts = attn_default_options();
    opts.backend = BACKENDS[b];
    opts.algo = ATTN_ALGO_SIMPLE;
    attn_context_t *ctx = NULL;
    ck_assert_int_eq(attn_context_create(&opts, &ctx), ATTN_OK);
    for (size_t j = 0; j < sizeof NS / sizeof NS[0]; j++) {
      float q[1] = {1.0f}, c[1] = {7.0f};
      attn_shape_t sh = {1, 1, NS[j], 1, 1, NULL, NULL, NULL};
      attn_score_t sc = attn_score_additive(h, x, 1, x, 1, x);
      attn_inputs_t in = {attn_cmat(q, 1, 0), attn_cmat(x, 1, 0), attn_cmat(NULL, 0, 0)};
      attn_outputs_t out = {attn_mat(c, 1, 0), attn_mat(NULL, 0, 0), attn_mat(NULL, 0, 0), NULL};
      attn_status_t st = attn_forward(ctx, &sh, &sc, &in, &out);
      ck_assert_msg(st == ATTN_ERR_OVERFLOW, "%s, n %lld: %s: %s", attn_backend_name(BACKENDS[b]),
                    (long long)NS[j], attn_status_string(st), attn_context_last_error(ctx));
      ck_assert_ptr_nonnull(strstr(attn_context_last_error(ctx), "score.h"));
      ck_assert(c[0] == 7.0f);
    }
    attn_context_destroy(ctx);
  }
  ck_assert_int_eq(munmap(none, bytes), 0);
}
END_TEST

/* Fields a call does not read may hold anything: the widths it does not use (scores: dv;
 * softmax: d and dv; weighted sum: d) and the parameters of other score kinds (a struct reused
 * from another kind). The call succeeds and gives the bits of the clean call. */
static void garble_unused(args_t *a, int fn, int64_t junk, const float *tiny) {
  if (fn == FN_SOFTMAX || fn == FN_WSUM) a->shape.d = junk;
  if (fn == FN_SCORES || fn == FN_SOFTMAX) a->shape.dv = junk;
  if (a->score.kind != ATTN_SCORE_GENERAL) {
    a->score.w = tiny;
    a->score.ldw = junk;
  }
  a->score.h = junk;
  a->score.wq = a->score.wa = a->score.v = tiny;
  a->score.ldwq = a->score.ldwa = junk;
}

START_TEST(test_unused_fields_ignored) {
  static const int64_t JUNK[] = {-1, -((int64_t)1 << 40), (int64_t)1 << 60, INT64_MAX};
  static const float tiny[1] = {1.0f};
  target_t ts[4];
  int nt = targets(ts);
  float *want = attn_test_calloc(fx.arena_count, sizeof(float));
  int checked = 0;
  for (int t = 0; t < nt; t++) {
    attn_context_t *ctx = attn_test_variant_context(&ts[t].variant);
    for (int general = 0; general < 2; general++) {
      for (int fn = FN_SCORES; fn <= FN_FORWARD; fn <<= 1) {
        for (int host = 0; host < 2; host++) {
          if (!host && !ts[t].direct) continue;
          args_t a;
          base_args(ctx, &a);
          if (general) a.score = attn_score_general(fx.wmat, D);
          attn_test_fill_sentinel(fx.arena, fx.arena_count);
          attn_status_t st = call_fn(fn, host, &a);
          if (st == ATTN_OK) st = attn_context_synchronize(ctx);
          ck_assert_msg(st == ATTN_OK, "%s: clean %s: %s", ts[t].variant.name, fn_name(fn),
                        attn_context_last_error(ctx));
          memcpy(want, fx.arena, fx.arena_count * sizeof(float));
          for (size_t j = 0; j < sizeof JUNK / sizeof JUNK[0]; j++) {
            base_args(ctx, &a);
            if (general) a.score = attn_score_general(fx.wmat, D);
            garble_unused(&a, fn, JUNK[j], tiny);
            attn_test_fill_sentinel(fx.arena, fx.arena_count);
            st = call_fn(fn, host, &a);
            if (st == ATTN_OK) st = attn_context_synchronize(ctx);
            ck_assert_msg(st == ATTN_OK, "%s: %s%s with unused fields %lld: %s (%s)",
                          ts[t].variant.name, fn_name(fn), host ? "_host" : "", (long long)JUNK[j],
                          attn_status_string(st), attn_context_last_error(ctx));
            ck_assert_msg(memcmp(want, fx.arena, fx.arena_count * sizeof(float)) == 0,
                          "%s: %s%s with unused fields %lld gives other bits", ts[t].variant.name,
                          fn_name(fn), host ? "_host" : "", (long long)JUNK[j]);
            checked++;
          }
        }
      }
    }
    attn_context_destroy(ctx);
  }
  ck_assert_int_ge(checked, 3 * 2 * 4 * 2 * 4);
  free(want);
  attn_test_fill_sentinel(fx.arena, fx.arena_count);
}
END_TEST

/* A host pointer given to a CUDA context's compute call is on the wrong side. */
START_TEST(test_wrong_side_pointer) {
  attn_backend_t backends[ATTN_TEST_MAX_BACKENDS];
  int nb = attn_test_backends(backends);
  int cuda = 0;
  for (int i = 0; i < nb; i++)
    cuda |= backends[i] == ATTN_BACKEND_CUDA;
  if (!cuda) return; /* needs a device; test_context covers the no-device behaviour */
  attn_context_t *ctx = attn_test_context(ATTN_BACKEND_CUDA);
  args_t a;
  base_args(ctx, &a);
  a.shape.lengths = NULL; /* so that the queries are the first host pointer checked */
  attn_status_t st = call_fn(FN_FORWARD, 0, &a);
  ck_assert_int_eq(st, ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(attn_context_last_error(ctx), "queries"));
  attn_context_destroy(ctx);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Buffers and contexts                                                                       */
/* ------------------------------------------------------------------------------------------ */

START_TEST(test_bad_buffer_calls) {
  attn_backend_t backends[ATTN_TEST_MAX_BACKENDS];
  int nb = attn_test_backends(backends);
  for (int i = 0; i < nb; i++) {
    attn_context_t *ctx = attn_test_context(backends[i]);
    attn_context_t *other = attn_test_context(backends[i]);
    attn_buffer_t *const poison = (attn_buffer_t *)(uintptr_t)0x5a5a5a5a;
    attn_buffer_t *buf = poison;
    unsigned char host[64], before[64];
    memset(host, 0xab, sizeof host);
    memcpy(before, host, sizeof host);

    /* alloc */
    ck_assert_int_eq(attn_buffer_alloc(NULL, 64, &buf), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_buffer_alloc(ctx, 64, NULL), ATTN_ERR_NULL_POINTER);
    ck_assert_ptr_nonnull(strstr(attn_context_last_error(ctx), "buf"));
    ck_assert_int_eq(attn_buffer_alloc(ctx, 0, &buf), ATTN_ERR_INVALID_SIZE);
    ck_assert_ptr_nonnull(strstr(attn_context_last_error(ctx), "bytes"));
    ck_assert_ptr_eq(buf, poison);
    ck_assert_int_eq(attn_buffer_alloc(ctx, (size_t)1 << 62, &buf), ATTN_ERR_ALLOC);
    ck_assert_str_ne(attn_context_last_error(ctx), "");
    ck_assert_ptr_eq(buf, poison);
    ck_assert_int_eq(attn_buffer_alloc(ctx, SIZE_MAX, &buf), ATTN_ERR_ALLOC);
    ck_assert_ptr_eq(buf, poison);

    /* a valid buffer holding a known pattern */
    ck_assert_int_eq(attn_buffer_alloc(ctx, 64, &buf), ATTN_OK);
    ck_assert_str_eq(attn_context_last_error(ctx), "");
    unsigned char pattern[64], back[64];
    for (int k = 0; k < 64; k++)
      pattern[k] = (unsigned char)k;
    ck_assert_int_eq(attn_buffer_upload(ctx, buf, 0, pattern, 64), ATTN_OK);

    /* upload */
    ck_assert_int_eq(attn_buffer_upload(NULL, buf, 0, host, 8), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_buffer_upload(ctx, NULL, 0, host, 8), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_buffer_upload(ctx, buf, 0, NULL, 8), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_buffer_upload(ctx, buf, 60, host, 8), ATTN_ERR_INVALID_SIZE);
    ck_assert_int_eq(attn_buffer_upload(ctx, buf, 65, host, 0), ATTN_ERR_INVALID_SIZE);
    ck_assert_int_eq(attn_buffer_upload(ctx, buf, SIZE_MAX, host, 2), ATTN_ERR_INVALID_SIZE);
    ck_assert_int_eq(attn_buffer_upload(ctx, buf, 8, host, SIZE_MAX), ATTN_ERR_INVALID_SIZE);
    ck_assert_int_eq(attn_buffer_upload(other, buf, 0, host, 8), ATTN_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(attn_context_last_error(other), "buf"));
    /* the buffer kept its pattern */
    ck_assert_int_eq(attn_buffer_download(ctx, buf, 0, back, 64), ATTN_OK);
    ck_assert_mem_eq(back, pattern, 64);

    /* download */
    ck_assert_int_eq(attn_buffer_download(NULL, buf, 0, host, 8), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_buffer_download(ctx, NULL, 0, host, 8), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_buffer_download(ctx, buf, 0, NULL, 8), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_buffer_download(ctx, buf, 57, host, 8), ATTN_ERR_INVALID_SIZE);
    ck_assert_int_eq(attn_buffer_download(ctx, buf, SIZE_MAX - 3, host, 8), ATTN_ERR_INVALID_SIZE);
    ck_assert_int_eq(attn_buffer_download(other, buf, 0, host, 8), ATTN_ERR_INVALID_ARG);
    ck_assert_mem_eq(host, before, sizeof host);

    /* free: NULL buffer is a no-op, NULL context and a foreign buffer are errors */
    ck_assert_int_eq(attn_buffer_free(ctx, NULL), ATTN_OK);
    ck_assert_int_eq(attn_buffer_free(NULL, buf), ATTN_ERR_NULL_POINTER);
    ck_assert_int_eq(attn_buffer_free(other, buf), ATTN_ERR_INVALID_ARG);
    ck_assert_int_eq(attn_buffer_download(ctx, buf, 0, back, 64), ATTN_OK);
    ck_assert_mem_eq(back, pattern, 64);
    ck_assert_int_eq(attn_buffer_free(ctx, buf), ATTN_OK);
    ck_assert_ptr_null(attn_buffer_data(NULL));
    ck_assert_uint_eq(attn_buffer_size(NULL), 0);

    attn_context_destroy(other);
    attn_context_destroy(ctx);
  }
}
END_TEST

START_TEST(test_bad_context_calls) {
  attn_context_t *const poison = (attn_context_t *)(uintptr_t)0x5a5a5a5a;
  attn_context_t *ctx = poison;
  attn_options_t opts = attn_default_options();

  ck_assert_int_eq(attn_context_create(&opts, NULL), ATTN_ERR_NULL_POINTER);
  ck_assert_ptr_nonnull(strstr(attn_create_error(), "ctx"));

  opts.backend = (attn_backend_t)9;
  ck_assert_int_eq(attn_context_create(&opts, &ctx), ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(attn_create_error(), "backend"));
  ck_assert_ptr_eq(ctx, poison);
  opts.backend = (attn_backend_t)-1;
  ck_assert_int_eq(attn_context_create(&opts, &ctx), ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_eq(ctx, poison);

  opts = attn_default_options();
  opts.algo = (attn_algo_t)7;
  ck_assert_int_eq(attn_context_create(&opts, &ctx), ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(attn_create_error(), "algo"));
  ck_assert_ptr_eq(ctx, poison);

  opts = attn_default_options();
  opts.cpu_threads = -1;
  ck_assert_int_eq(attn_context_create(&opts, &ctx), ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(attn_create_error(), "cpu_threads"));
  ck_assert_ptr_eq(ctx, poison);
  /* More threads than the OpenMP runtime may be able to start (it ends the process when it
   * cannot): refused at creation; the most allowed is accepted (creating starts no thread). */
  opts.cpu_threads = ATTN_MAX_CPU_THREADS + 1;
  ck_assert_int_eq(attn_context_create(&opts, &ctx), ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(attn_create_error(), "cpu_threads: 1025 > ATTN_MAX_CPU_THREADS"));
  ck_assert_ptr_eq(ctx, poison);
  opts.cpu_threads = 100000;
  ck_assert_int_eq(attn_context_create(&opts, &ctx), ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_eq(ctx, poison);
  opts.cpu_threads = ATTN_MAX_CPU_THREADS;
  opts.backend = ATTN_BACKEND_CPU;
  ck_assert_int_eq(attn_context_create(&opts, &ctx), ATTN_OK);
  attn_context_destroy(ctx);
  ctx = poison;

  opts = attn_default_options();
  opts.device = -1;
  opts.backend = ATTN_BACKEND_CPU;
  ck_assert_int_eq(attn_context_create(&opts, &ctx), ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(attn_create_error(), "device"));
  ck_assert_ptr_eq(ctx, poison);

  /* A bad ATTN_ALGO in the environment is an error too. */
  ck_assert_int_eq(setenv("ATTN_ALGO", "fastest", 1), 0);
  opts = attn_default_options();
  attn_status_t st = attn_context_create(&opts, &ctx);
  ck_assert_int_eq(unsetenv("ATTN_ALGO"), 0);
  ck_assert_int_eq(st, ATTN_ERR_INVALID_ARG);
  ck_assert_ptr_nonnull(strstr(attn_create_error(), "ATTN_ALGO"));
  ck_assert_ptr_eq(ctx, poison);

  /* Calls on a NULL context. */
  void *stream = (void *)1;
  ck_assert_int_eq(attn_context_set_stream(NULL, NULL), ATTN_ERR_NULL_POINTER);
  ck_assert_int_eq(attn_context_get_stream(NULL, &stream), ATTN_ERR_NULL_POINTER);
  ck_assert_ptr_eq(stream, (void *)1);
  ck_assert_int_eq(attn_context_synchronize(NULL), ATTN_ERR_NULL_POINTER);
  attn_context_destroy(NULL);

  ctx = attn_test_context(ATTN_BACKEND_CPU);
  ck_assert_int_eq(attn_context_get_stream(ctx, NULL), ATTN_ERR_NULL_POINTER);
  ck_assert_ptr_nonnull(strstr(attn_context_last_error(ctx), "stream"));
  attn_context_destroy(ctx);
}
END_TEST

static Suite *make_bad_input_suite(void) {
  Suite *s = suite_create("bad input");
  TCase *tc = tcase_create("compute calls");
  tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
  tcase_add_test(tc, test_base_calls_valid);
  tcase_add_test(tc, test_bad_arguments);
  tcase_add_test(tc, test_unused_fields_ignored);
  tcase_add_test(tc, test_extreme_layouts_valid);
  tcase_add_test(tc, test_shared_addresses_valid);
  tcase_add_test(tc, test_wrong_side_pointer);
  suite_add_tcase(s, tc);
  tc = tcase_create("huge sizes");
  tcase_add_test(tc, test_empty_rows_huge_batch);
  tcase_add_test(tc, test_scratch_overflow);
  suite_add_tcase(s, tc);
  tc = tcase_create("buffers and contexts");
  tcase_add_test(tc, test_bad_buffer_calls);
  tcase_add_test(tc, test_bad_context_calls);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return attn_test_main(make_bad_input_suite());
}
