/*
 * cli.h - what the attn program's subcommands share: exit statuses, option parsing, messages, and
 * the attention problem built from .npy files (inputs.c).
 *
 * Exit statuses (documented in README.md, "The attn command-line tool"):
 *   0  success;
 *   1  attn compare: some backend is outside the tolerance of tests/tolerance.h;
 *   2  bad input: usage, a bad or inconsistent .npy file, arguments the library rejects, an
 *      output that cannot be written, a heatmap without cairo;
 *   3  the library failed while computing (no device, allocation, CUDA, cuBLAS, internal).
 */
#ifndef ATTN_TOOLS_CLI_H
#define ATTN_TOOLS_CLI_H

#include "attn.h"
#include "npy.h"

#include <stddef.h>
#include <stdint.h>

#define CLI_EXIT_OK       0
#define CLI_EXIT_MISMATCH 1
#define CLI_EXIT_INPUT    2
#define CLI_EXIT_RUNTIME  3

/* ---------------------------------------------------------------------------------------------
 * Messages and options
 * ------------------------------------------------------------------------------------------- */

/* Prints "attn: <message>\n" to stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* One command-line option: "--name VALUE" (or "--name=VALUE") stores VALUE in *value; a flag
 * ("--name") sets *flag to 1. */
typedef struct cli_option {
  const char *name; /* without the leading "--" */
  const char **value;
  int *flag;
} cli_option_t;

/* Parses argv[0 .. argc-1] against opts[count]. Returns 0, or CLI_EXIT_INPUT after printing what
 * is wrong (unknown option, missing value, stray argument). "--help" sets *help. */
int cli_parse_options(int argc, char **argv, const cli_option_t *opts, size_t count,
                      const char *command, int *help);

/* Parses a whole non-negative or positive integer option; prints a message naming the option. */
int cli_parse_int(const char *option, const char *text, int64_t min, int64_t max, int64_t *out);
/* Parses a finite float option. */
int cli_parse_float(const char *option, const char *text, float *out);
/* Parses a backend name: auto, cuda, cpu, reference. */
int cli_parse_backend(const char *text, attn_backend_t *out);

/* The exit status for a library failure: CLI_EXIT_INPUT for argument errors (statuses 1..8),
 * CLI_EXIT_RUNTIME for the rest. */
int cli_exit_for_status(attn_status_t status);

/* Seconds on a monotonic clock. */
double cli_now(void);

/* ---------------------------------------------------------------------------------------------
 * The problem read from .npy files (inputs.c)
 * ------------------------------------------------------------------------------------------- */

/* File names and score settings as given on the command line (NULL when absent). */
typedef struct cli_input_args {
  const char *queries, *annotations, *values, *lengths, *query_offsets, *annotation_offsets;
  const char *score, *scale, *w, *wq, *wa, *v;
} cli_input_args_t;

/* The options every computing subcommand takes for its inputs, to append to its own table. */
#define CLI_INPUT_OPTIONS(a)                                                                       \
  {"queries", &(a).queries, NULL}, {"annotations", &(a).annotations, NULL},                        \
      {"values", &(a).values, NULL}, {"lengths", &(a).lengths, NULL},                              \
      {"query-offsets", &(a).query_offsets, NULL},                                                 \
      {"annotation-offsets", &(a).annotation_offsets, NULL}, {"score", &(a).score, NULL},          \
      {"scale", &(a).scale, NULL}, {"w", &(a).w, NULL}, {"wq", &(a).wq, NULL},                     \
      {"wa", &(a).wa, NULL}, {                                                                     \
    "v", &(a).v, NULL                                                                              \
  }

/* An output array: its .npy shape and where its rows live in the computed buffer. */
typedef struct cli_output_shape {
  int ndim;
  int64_t shape[3];
  int64_t count; /* elements, product of shape */
} cli_output_shape_t;

typedef struct cli_problem {
  attn_shape_t shape; /* pointers into the arrays below */
  attn_score_t score; /* host pointers */
  attn_inputs_t in;   /* host pointers */
  int varlen;         /* offsets given */
  int64_t rows;       /* query rows in all: batch * m (uniform) or m (varlen) */
  int64_t ld_sw;      /* leading dimension of the scores/weights buffers (>= 1) */
  int64_t width_sw;   /* columns of scores/weights in the output files: n or the longest set */
  int64_t max_set_n;  /* longest annotation set */
  cli_output_shape_t context_shape, sw_shape, lse_shape;
  const char *score_name;
  /* The arrays, converted to float32 / int32 where needed (owned). */
  float *queries, *annotations, *values, *w, *wq, *wa, *v;
  int32_t *lengths, *query_offsets, *annotation_offsets;
} cli_problem_t;

/* Reads and checks every input file. On failure prints a message naming the file and returns
 * CLI_EXIT_INPUT with *p freed. float64 inputs are converted to float32 with a note on stderr. */
int cli_problem_load(const cli_input_args_t *args, cli_problem_t *p);
void cli_problem_free(cli_problem_t *p);

/* The query rows and annotation columns of set b: [row0, row0 + rows) x [0, cols), in the
 * scores/weights buffers. */
void cli_problem_set_rows(const cli_problem_t *p, int64_t b, int64_t *row0, int64_t *rows,
                          int64_t *cols);

/* Buffers for every output of one run (host memory). scores/weights are NULL unless asked for. */
typedef struct cli_results {
  float *context, *scores, *weights, *lse;
} cli_results_t;

/* Allocates the outputs (scores/weights padding filled with -inf / 0). 0 or CLI_EXIT_RUNTIME. */
int cli_results_alloc(const cli_problem_t *p, int scores, int weights, int lse, cli_results_t *r);
void cli_results_free(cli_results_t *r);

/* attn_forward_host into r on ctx. Prints the library's message on failure and returns the exit
 * status for it; 0 on success. */
int cli_forward(attn_context_t *ctx, const cli_problem_t *p, cli_results_t *r);

/* ---------------------------------------------------------------------------------------------
 * Subcommands
 * ------------------------------------------------------------------------------------------- */

int cli_run(int argc, char **argv);
int cli_compare(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_info(int argc, char **argv);

#endif
