/*
 * dispatch.h - hands a validated problem to the context's backend, directly or staged through
 * backend memory (the *_host layer).
 */
#ifndef ATTN_HOST_DISPATCH_H
#define ATTN_HOST_DISPATCH_H

#include "backend.h"

/* Runs p on ctx's backend; p's pointers live where the backend computes. */
attn_status_t attn_run_problem(attn_context_t *ctx, const attn_problem_t *p);

/* Runs p, whose pointers are all host memory (validated with host_readable = 1): directly on a
 * host backend, otherwise by copying every array to backend memory and the outputs back. */
attn_status_t attn_run_host_problem(attn_context_t *ctx, const attn_problem_t *p);

#endif
