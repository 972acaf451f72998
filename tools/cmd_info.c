/*
 * cmd_info.c - `attn info`: the version, how this attn was built (compile definitions from
 * tools/CMakeLists.txt), the CUDA devices that are usable, the backend AUTO picks and why, and
 * the algorithm it runs (ATTN_ALGO's, if set).
 */
#include "cli.h"

#include <stdio.h>

#ifndef ATTN_INFO_CUDA_ARCHITECTURES
#define ATTN_INFO_CUDA_ARCHITECTURES "none"
#endif
#ifndef ATTN_INFO_BLAS
#define ATTN_INFO_BLAS "unknown"
#endif
#ifndef ATTN_INFO_BUILD_TYPE
#define ATTN_INFO_BUILD_TYPE "unknown"
#endif
#ifndef ATTN_INFO_SANITIZE
#define ATTN_INFO_SANITIZE ""
#endif
#ifndef ATTN_INFO_COMPILER
#define ATTN_INFO_COMPILER "unknown"
#endif

/* Probes device indices from 0 until one is not usable; prints each usable one. */
static void print_devices(void) {
  if (!attn_built_with_cuda()) {
    printf("devices:   none (built without CUDA)\n");
    return;
  }
  int found = 0;
  for (int device = 0; device < 64; device++) {
    attn_options_t opts = attn_default_options();
    opts.backend = ATTN_BACKEND_CUDA;
    opts.device = device;
    opts.algo = ATTN_ALGO_FUSED; /* not AUTO: ATTN_ALGO, a bad one included, is not the probe's */
    attn_context_t *ctx;
    if (attn_context_create(&opts, &ctx) != ATTN_OK) {
      if (!found) printf("devices:   none (%s)\n", attn_create_error());
      return;
    }
    printf("device %d:  %s\n", device, attn_context_backend_reason(ctx));
    attn_context_destroy(ctx);
    found++;
  }
}

int cli_info(int argc, char **argv) {
  int help = 0;
  int rc = cli_parse_options(argc, argv, NULL, 0, "info", &help);
  if (rc) return rc;
  if (help) {
    printf("usage: attn info\n\nPrints the version, the build options, the CUDA devices found and "
           "the backend AUTO picks here, with the algorithm it runs.\n");
    return 0;
  }
  printf("attn %s (tool built against %d.%d.%d)\n", attn_version_string(), ATTN_VERSION_MAJOR,
         ATTN_VERSION_MINOR, ATTN_VERSION_PATCH);
  printf("build:     %s, %s\n", ATTN_INFO_BUILD_TYPE, ATTN_INFO_COMPILER);
  printf("cuda:      %s", attn_built_with_cuda() ? "on" : "off");
  if (attn_built_with_cuda()) printf(" (architectures %s)", ATTN_INFO_CUDA_ARCHITECTURES);
  printf("\nblas:      %s\n", ATTN_INFO_BLAS);
#ifdef ATTN_HAVE_CAIRO
  printf("cairo:     yes (heatmaps as PNG and SVG)\n");
#else
  printf("cairo:     no (--heatmap unavailable; --show works)\n");
#endif
  if (ATTN_INFO_SANITIZE[0]) printf("sanitize:  %s\n", ATTN_INFO_SANITIZE);
  print_devices();
  attn_context_t *ctx;
  attn_status_t st = attn_context_create(NULL, &ctx);
  if (st != ATTN_OK) {
    cli_error("AUTO: cannot create a context: %s (%s)", attn_create_error(),
              attn_status_string(st));
    return cli_exit_for_status(st);
  }
  printf("auto:      %s (%s)\n", attn_backend_name(attn_context_backend(ctx)),
         attn_context_backend_reason(ctx));
  const attn_algo_t algo = attn_context_algo(ctx);
  printf("algorithm: %s%s\n", attn_algo_name(algo), algo != ATTN_ALGO_AUTO ? " (ATTN_ALGO)" : "");
  attn_context_destroy(ctx);
  return 0;
}
