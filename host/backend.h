/*
 * backend.h - the internal backend interface: a small table of functions per backend.
 *
 * The public calls in dispatch.c check their arguments once (check.c), turn them into an
 * attn_problem_t and hand that to the context's backend. A backend only computes: it may assume
 * every pointer, size, leading dimension and stride in the problem has been validated, except
 * the values of offsets/lengths when the backend keeps them where the host cannot read them
 * (backend_ops.host_readable == 0; the CUDA backend checks those on the device).
 */
#ifndef ATTN_HOST_BACKEND_H
#define ATTN_HOST_BACKEND_H

#include "attn.h"

typedef enum attn_op {
  ATTN_OP_SCORES = 0,
  ATTN_OP_SOFTMAX = 1,
  ATTN_OP_WEIGHTED_SUM = 2,
  ATTN_OP_FORWARD = 3
} attn_op_t;

/* One validated call. Matrices a call does not use have data == NULL. */
typedef struct attn_problem {
  attn_op_t op;
  int64_t batch, m, n, d, dv;        /* as in attn_shape_t */
  const int32_t *query_offsets;      /* NULL for uniform batches */
  const int32_t *annotation_offsets; /* NULL for uniform batches */
  const int32_t *lengths;            /* NULL: every annotation valid */
  attn_score_t score;                /* SCORES/FORWARD: normalised (scale filled in) */
  attn_const_matrix_t queries;       /* SCORES, FORWARD */
  attn_const_matrix_t annotations;   /* SCORES, FORWARD */
  attn_const_matrix_t values;        /* WEIGHTED_SUM, FORWARD (= annotations when not given) */
  attn_const_matrix_t scores_in;     /* SOFTMAX */
  attn_const_matrix_t weights_in;    /* WEIGHTED_SUM */
  attn_matrix_t scores;              /* SCORES (required), FORWARD (optional) */
  attn_matrix_t weights;             /* SOFTMAX (required), FORWARD (optional) */
  attn_matrix_t context;             /* WEIGHTED_SUM, FORWARD */
  float *lse;                        /* SOFTMAX, FORWARD (optional) */
  int64_t max_set_n;                 /* longest annotation set; -1 when offsets are unreadable */
} attn_problem_t;

typedef struct attn_backend_ops {
  attn_backend_t kind;
  int host_readable; /* 1: pointers are host memory (offsets/lengths checked on the host) */
  /* Per-context set-up and tear-down of backend state (handles, workspace). */
  attn_status_t (*init)(attn_context_t *ctx);
  void (*fini)(attn_context_t *ctx);
  /* Memory on the backend: aligned to >= 256 bytes. Copies are complete when they return. */
  attn_status_t (*mem_alloc)(attn_context_t *ctx, size_t bytes, void **ptr);
  void (*mem_free)(attn_context_t *ctx, void *ptr);
  attn_status_t (*copy_to_backend)(attn_context_t *ctx, void *dst, const void *src, size_t bytes);
  attn_status_t (*copy_to_host)(attn_context_t *ctx, void *dst, const void *src, size_t bytes);
  /* Rejects a pointer that lives on the wrong side, where that can be detected. */
  attn_status_t (*check_pointer)(attn_context_t *ctx, const void *ptr, const char *name);
  attn_status_t (*scores)(attn_context_t *ctx, const attn_problem_t *p);
  attn_status_t (*softmax)(attn_context_t *ctx, const attn_problem_t *p);
  attn_status_t (*weighted_sum)(attn_context_t *ctx, const attn_problem_t *p);
  attn_status_t (*forward)(attn_context_t *ctx, const attn_problem_t *p);
  /* Sizes the workspace for problems like p (offsets/lengths unread); may be NULL. */
  attn_status_t (*reserve)(attn_context_t *ctx, const attn_problem_t *p);
  /* Waits for queued work; reports deferred device-side argument errors. May be NULL. */
  attn_status_t (*synchronize)(attn_context_t *ctx);
} attn_backend_ops_t;

/* The backends. attn_cuda_backend_ops exists only in CUDA builds (ATTN_WITH_CUDA). */
extern const attn_backend_ops_t attn_reference_backend_ops;
extern const attn_backend_ops_t attn_cpu_backend_ops;
#ifdef ATTN_WITH_CUDA
extern const attn_backend_ops_t attn_cuda_backend_ops;
#endif

/* Host memory helpers shared by the host-memory backends (CPU, REFERENCE). */
attn_status_t attn_host_mem_alloc(attn_context_t *ctx, size_t bytes, void **ptr);
void attn_host_mem_free(attn_context_t *ctx, void *ptr);
attn_status_t attn_host_copy(attn_context_t *ctx, void *dst, const void *src, size_t bytes);
attn_status_t attn_host_check_pointer(attn_context_t *ctx, const void *ptr, const char *name);

/* The reference implementation of each op, also usable by other host backends as a fallback. */
attn_status_t attn_reference_scores(attn_context_t *ctx, const attn_problem_t *p);
attn_status_t attn_reference_softmax(attn_context_t *ctx, const attn_problem_t *p);
attn_status_t attn_reference_weighted_sum(attn_context_t *ctx, const attn_problem_t *p);
attn_status_t attn_reference_forward(attn_context_t *ctx, const attn_problem_t *p);

#endif
