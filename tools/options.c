/*
 * options.c - option parsing, messages and small helpers shared by the subcommands (cli.h).
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("attn: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static const cli_option_t *find_option(const cli_option_t *opts, size_t count, const char *name,
                                       size_t len) {
  for (size_t i = 0; i < count; i++) {
    if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
  }
  return NULL;
}

int cli_parse_options(int argc, char **argv, const cli_option_t *opts, size_t count,
                      const char *command, int *help) {
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      *help = 1;
      continue;
    }
    if (strncmp(arg, "--", 2) != 0) {
      cli_error("%s: unexpected argument '%s' (options start with --)", command, arg);
      return CLI_EXIT_INPUT;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const cli_option_t *opt = find_option(opts, count, name, len);
    if (!opt) {
      cli_error("%s: unknown option '--%.*s' (see attn %s --help)", command, (int)len, name,
                command);
      return CLI_EXIT_INPUT;
    }
    if (opt->flag) {
      if (eq) {
        cli_error("%s: option '--%s' takes no value", command, opt->name);
        return CLI_EXIT_INPUT;
      }
      *opt->flag = 1;
    } else if (eq) {
      *opt->value = eq + 1;
    } else if (i + 1 < argc) {
      *opt->value = argv[++i];
    } else {
      cli_error("%s: option '--%s' needs a value", command, opt->name);
      return CLI_EXIT_INPUT;
    }
  }
  return 0;
}

int cli_parse_int(const char *option, const char *text, int64_t min, int64_t max, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno || end == text || *end != '\0' || v < min || v > max) {
    cli_error("--%s: '%s' is not a whole number in [%lld, %lld]", option, text, (long long)min,
              (long long)max);
    return CLI_EXIT_INPUT;
  }
  *out = v;
  return 0;
}

int cli_parse_float(const char *option, const char *text, float *out) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end != '\0' || !isfinite((float)v)) {
    cli_error("--%s: '%s' is not a finite number", option, text);
    return CLI_EXIT_INPUT;
  }
  *out = (float)v;
  return 0;
}

int cli_parse_backend(const char *text, attn_backend_t *out) {
  if (attn_backend_from_name(text, out) == ATTN_OK) return 0;
  cli_error("--backend: %s", attn_create_error());
  return CLI_EXIT_INPUT;
}

int cli_exit_for_status(attn_status_t status) {
  switch (status) {
  case ATTN_OK:
    return CLI_EXIT_OK;
  case ATTN_ERR_NULL_POINTER:
  case ATTN_ERR_INVALID_ARG:
  case ATTN_ERR_INVALID_SIZE:
  case ATTN_ERR_INVALID_LD:
  case ATTN_ERR_INVALID_OFFSETS:
  case ATTN_ERR_INVALID_LENGTH:
  case ATTN_ERR_OVERFLOW:
  case ATTN_ERR_MISALIGNED:
    return CLI_EXIT_INPUT;
  case ATTN_ERR_ALLOC:
  case ATTN_ERR_NO_DEVICE:
  case ATTN_ERR_CUDA:
  case ATTN_ERR_CUBLAS:
  case ATTN_ERR_CUDA_STICKY:
  case ATTN_ERR_INTERNAL:
    break;
  }
  return CLI_EXIT_RUNTIME;
}

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
