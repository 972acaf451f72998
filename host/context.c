/*
 * context.c - context lifecycle: options, picking a backend (and saying why), the per-context
 * error message, the stream, and synchronisation.
 */
#include "context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ATTN_WITH_CUDA
#include "attn_cuda.h"
#endif

/* attn_context_create() has no context to hold its message, so it keeps one per thread. */
static _Thread_local char create_error[ATTN_MESSAGE_SIZE];

const char *attn_create_error(void) {
  return create_error;
}

attn_status_t attn_fail(attn_context_t *ctx, attn_status_t status, const char *fmt, ...) {
  if (ctx) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
  }
  return status;
}

void attn_clear_error(attn_context_t *ctx) {
  ctx->error[0] = '\0';
}

attn_options_t attn_default_options(void) {
  attn_options_t o;
  memset(&o, 0, sizeof o);
  o.backend = ATTN_BACKEND_AUTO;
  o.device = 0;
  o.stream = NULL;
  o.cpu_threads = 0;
  o.algo = ATTN_ALGO_AUTO;
  return o;
}

static attn_status_t create_fail(attn_status_t status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static attn_status_t create_fail(attn_status_t status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(create_error, sizeof create_error, fmt, ap);
  va_end(ap);
  return status;
}

static const char *backend_name_of(int v) {
  return attn_backend_name((attn_backend_t)v);
}
static const char *algo_name_of(int v) {
  return attn_algo_name((attn_algo_t)v);
}

/* The enum value in [0, last] whose name (attn_backend_name or attn_algo_name: the one list of
 * names) is `name`, into *out; else the message "WHAT: 'name' is not one of" the names, listed
 * from name_of too. The body of the two parsers and of ATTN_ALGO's reader. */
static attn_status_t value_from_name(const char *what, const char *name, int *out,
                                     const char *(*name_of)(int), int last) {
  for (int v = 0; v <= last; v++)
    if (strcmp(name, name_of(v)) == 0) {
      *out = v;
      return ATTN_OK;
    }
  char names[128] = "";
  for (int i = 0; i <= last; i++) {
    const size_t used = strlen(names);
    snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", name_of(i));
  }
  return create_fail(ATTN_ERR_INVALID_ARG, "%s: '%.64s' is not one of %s", what, name, names);
}

/* attn_backend_from_name and attn_algo_from_name: their arguments checked, then the value. */
static attn_status_t parse_name(const char *name, const void *out, int *v,
                                const char *(*name_of)(int), int last) {
  create_error[0] = '\0';
  if (!name) return create_fail(ATTN_ERR_NULL_POINTER, "name: NULL");
  if (!out) return create_fail(ATTN_ERR_NULL_POINTER, "out: NULL");
  return value_from_name("name", name, v, name_of, last);
}

attn_status_t attn_backend_from_name(const char *name, attn_backend_t *out) {
  int v = 0;
  const attn_status_t st = parse_name(name, out, &v, backend_name_of, ATTN_BACKEND_REFERENCE);
  if (st == ATTN_OK) *out = (attn_backend_t)v;
  return st;
}

attn_status_t attn_algo_from_name(const char *name, attn_algo_t *out) {
  int v = 0;
  const attn_status_t st = parse_name(name, out, &v, algo_name_of, ATTN_ALGO_ROWS);
  if (st == ATTN_OK) *out = (attn_algo_t)v;
  return st;
}

/* ATTN_ALGO overrides an AUTO algorithm so that a whole program can be switched to one path. */
static attn_status_t resolve_algo(attn_options_t *o) {
  const char *env = getenv("ATTN_ALGO");
  if (o->algo != ATTN_ALGO_AUTO || !env || !*env) return ATTN_OK;
  int v = 0;
  const attn_status_t st = value_from_name("ATTN_ALGO", env, &v, algo_name_of, ATTN_ALGO_ROWS);
  if (st == ATTN_OK) o->algo = (attn_algo_t)v;
  return st;
}

static attn_status_t check_options(const attn_options_t *o) {
  if (o->backend < ATTN_BACKEND_AUTO || o->backend > ATTN_BACKEND_REFERENCE)
    return create_fail(ATTN_ERR_INVALID_ARG, "opts->backend: %d is not an attn_backend_t",
                       (int)o->backend);
  if (o->device < 0)
    return create_fail(ATTN_ERR_INVALID_ARG, "opts->device: %d is negative", o->device);
  if (o->cpu_threads < 0)
    return create_fail(ATTN_ERR_INVALID_ARG, "opts->cpu_threads: %d is negative", o->cpu_threads);
  if (o->cpu_threads > ATTN_MAX_CPU_THREADS)
    return create_fail(ATTN_ERR_INVALID_ARG, "opts->cpu_threads: %d > ATTN_MAX_CPU_THREADS %d",
                       o->cpu_threads, ATTN_MAX_CPU_THREADS);
  if (o->algo < ATTN_ALGO_AUTO || o->algo > ATTN_ALGO_ROWS)
    return create_fail(ATTN_ERR_INVALID_ARG, "opts->algo: %d is not an attn_algo_t", (int)o->algo);
  return ATTN_OK;
}

/* Whether CUDA can be used; the reason goes into `reason` either way. */
static int cuda_usable(int device, char *reason, size_t reason_size) {
#ifdef ATTN_WITH_CUDA
  return attn_cuda_probe(device, reason, reason_size) == ATTN_CUDA_USABLE;
#else
  (void)device;
  snprintf(reason, reason_size, "attn was built without CUDA");
  return 0;
#endif
}

static void use_backend(attn_context_t *c, const attn_backend_ops_t *ops) {
  c->ops = ops;
  c->backend = ops->kind;
}

/* Picks the backend for c->options and writes c->reason. */
static attn_status_t pick_backend(attn_context_t *c) {
  char why[ATTN_MESSAGE_SIZE / 2];
  switch (c->options.backend) {
  case ATTN_BACKEND_REFERENCE:
    use_backend(c, &attn_reference_backend_ops);
    snprintf(c->reason, sizeof c->reason, "reference: requested");
    return ATTN_OK;
  case ATTN_BACKEND_CPU:
    use_backend(c, &attn_cpu_backend_ops);
    snprintf(c->reason, sizeof c->reason, "cpu: requested");
    return ATTN_OK;
  case ATTN_BACKEND_CUDA:
    if (!cuda_usable(c->options.device, why, sizeof why))
      return create_fail(ATTN_ERR_NO_DEVICE, "opts->backend: CUDA requested but unusable: %s", why);
#ifdef ATTN_WITH_CUDA
    use_backend(c, &attn_cuda_backend_ops);
#endif
    snprintf(c->reason, sizeof c->reason, "cuda: requested; %s", why);
    return ATTN_OK;
  case ATTN_BACKEND_AUTO:
    if (cuda_usable(c->options.device, why, sizeof why)) {
#ifdef ATTN_WITH_CUDA
      use_backend(c, &attn_cuda_backend_ops);
#endif
      snprintf(c->reason, sizeof c->reason, "cuda: %s", why);
    } else {
      use_backend(c, &attn_cpu_backend_ops);
      snprintf(c->reason, sizeof c->reason, "cpu: %s", why);
    }
    return ATTN_OK;
  }
  return create_fail(ATTN_ERR_INVALID_ARG, "opts->backend: %d is not an attn_backend_t",
                     (int)c->options.backend);
}

attn_status_t attn_context_create(const attn_options_t *opts, attn_context_t **ctx) {
  create_error[0] = '\0';
  if (!ctx) return create_fail(ATTN_ERR_NULL_POINTER, "ctx: NULL");
  attn_options_t o = opts ? *opts : attn_default_options();
  attn_status_t st = check_options(&o);
  if (st == ATTN_OK) st = resolve_algo(&o);
  if (st != ATTN_OK) return st;

  attn_context_t *c = calloc(1, sizeof *c);
  if (!c) return create_fail(ATTN_ERR_ALLOC, "ctx: out of host memory for the context");
  c->options = o;
  const char *staging = getenv("ATTN_TEST_FORCE_STAGING");
  c->force_staging = staging && strcmp(staging, "1") == 0;

  st = pick_backend(c);
  if (st == ATTN_OK) {
    st = c->ops->init ? c->ops->init(c) : ATTN_OK;
    if (st != ATTN_OK && o.backend == ATTN_BACKEND_AUTO && c->backend == ATTN_BACKEND_CUDA) {
      /* AUTO never fails because of CUDA: fall back to the CPU and say why. */
      char why[ATTN_MESSAGE_SIZE / 2];
      snprintf(why, sizeof why, "%.255s", c->error);
      use_backend(c, &attn_cpu_backend_ops);
      snprintf(c->reason, sizeof c->reason, "cpu: CUDA initialisation failed: %s", why);
      c->error[0] = '\0';
      st = c->ops->init ? c->ops->init(c) : ATTN_OK;
    }
    if (st != ATTN_OK) create_fail(st, "%s", c->error);
  }
  if (st != ATTN_OK) {
    free(c);
    return st;
  }
  *ctx = c;
  return ATTN_OK;
}

void attn_context_destroy(attn_context_t *ctx) {
  if (!ctx) return;
  if (ctx->ops->fini) ctx->ops->fini(ctx);
  free(ctx);
}

attn_backend_t attn_context_backend(const attn_context_t *ctx) {
  return ctx ? ctx->backend : ATTN_BACKEND_AUTO;
}

attn_algo_t attn_context_algo(const attn_context_t *ctx) {
  return ctx ? ctx->options.algo : ATTN_ALGO_AUTO;
}

const char *attn_context_backend_reason(const attn_context_t *ctx) {
  return ctx ? ctx->reason : "ctx: NULL";
}

const char *attn_context_last_error(const attn_context_t *ctx) {
  return ctx ? ctx->error : "ctx: NULL";
}

attn_status_t attn_context_set_stream(attn_context_t *ctx, void *stream) {
  if (!ctx) return ATTN_ERR_NULL_POINTER;
  attn_clear_error(ctx);
  ctx->options.stream = stream;
  return ATTN_OK;
}

attn_status_t attn_context_get_stream(const attn_context_t *ctx, void **stream) {
  if (!ctx) return ATTN_ERR_NULL_POINTER;
  if (!stream) return attn_fail((attn_context_t *)ctx, ATTN_ERR_NULL_POINTER, "stream: NULL");
  *stream = ctx->options.stream;
  return ATTN_OK;
}

attn_status_t attn_context_synchronize(attn_context_t *ctx) {
  if (!ctx) return ATTN_ERR_NULL_POINTER;
  attn_clear_error(ctx);
  return ctx->ops->synchronize ? ctx->ops->synchronize(ctx) : ATTN_OK;
}
