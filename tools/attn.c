/*
 * attn.c - the attn command-line program: attention on .npy files without writing C.
 *
 *   attn run      one forward on the chosen backend; context, scores, weights, lse, heatmaps
 *   attn compare  every available backend against the reference, within tests/tolerance.h
 *   attn bench    timings on the shapes of the CPU and GPU performance issues
 *   attn info     version, build options, devices, and the backend AUTO picks
 *
 * Each subcommand lives in its own cmd_*.c file; cli.h lists the exit statuses.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: attn <command> [options]\n"
    "\n"
    "commands:\n"
    "  run      attention on .npy files: context, scores, weights, lse, heatmaps\n"
    "  compare  the same inputs on every available backend against the reference\n"
    "  bench    timings of attn_forward on standard shapes\n"
    "  info     version, build options, devices and the backend AUTO picks\n"
    "\n"
    "attn <command> --help describes each command. Exit status: 0 success, 1 compare found a\n"
    "backend outside the tolerance, 2 bad input or usage, 3 the library failed.\n";

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(int, char **);
  } commands[] = {
      {"run", cli_run}, {"compare", cli_compare}, {"bench", cli_bench}, {"info", cli_info}};
  if (argc < 2) {
    fputs(usage, stderr);
    return CLI_EXIT_INPUT;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    fputs(usage, stdout);
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("attn %s\n", attn_version_string());
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
  }
  cli_error("unknown command '%s'", argv[1]);
  fputs(usage, stderr);
  return CLI_EXIT_INPUT;
}
