/*
 * context.h - the inside of attn_context_t and the error-reporting helpers every host file uses.
 */
#ifndef ATTN_HOST_CONTEXT_H
#define ATTN_HOST_CONTEXT_H

#include "attn.h"
#include "backend.h"

#define ATTN_MESSAGE_SIZE 512

struct attn_context {
  const attn_backend_ops_t *ops;
  attn_backend_t backend;
  attn_options_t options; /* as given, with algo resolved from ATTN_ALGO */
  char reason[ATTN_MESSAGE_SIZE];
  char error[ATTN_MESSAGE_SIZE];
  void *backend_state; /* owned by ops->init / ops->fini */
  int force_staging;   /* test hook (ATTN_TEST_FORCE_STAGING=1): stage *_host calls on the CPU */
  int checking_host_memory; /* set by check.c for the call being checked */
  int pointers_unread;      /* check.c: the call never reads its pointers (skip the side check) */
};

/* Records a message in ctx (printf format) and returns status, so that callers can write
 * `return attn_fail(ctx, ATTN_ERR_..., "queries.ld: %lld < d %lld", ...)`. */
attn_status_t attn_fail(attn_context_t *ctx, attn_status_t status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Clears the context's message at the start of a public call. */
void attn_clear_error(attn_context_t *ctx);

#endif
