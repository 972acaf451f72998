/*
 * cmd_run.c - `attn run`: one attention forward on .npy inputs, on the backend asked for (AUTO by
 * default), writing the context and, on request, scores, weights, log-sum-exp and a heatmap.
 *
 * Outputs are all-or-nothing: every file is first written under a temporary name in its folder,
 * and the temporary files are renamed into place only when all of them were written.
 */
#include "cli.h"
#include "heatmap.h"
#include "outfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char run_usage[] =
    "usage: attn run --queries Q.npy --annotations A.npy --out C.npy [options]\n"
    "\n"
    "inputs (C-order float32 or float64; integer files int32 or int64):\n"
    "  --queries Q.npy             [d], [m, d] or [batch, m, d]\n"
    "  --annotations A.npy         [n, d] (shared by all sets) or [batch, n, d]\n"
    "  --values V.npy              like the annotations with dv columns (default: annotations)\n"
    "  --lengths L.npy             [batch] valid annotations per set\n"
    "  --query-offsets QO.npy      [batch + 1] and --annotation-offsets AO.npy [batch + 1]:\n"
    "                              a variable-length batch over 2-D queries and annotations\n"
    "  --score dot|scaled|general|additive   (default dot)\n"
    "  --scale S                   scaled: the factor (default 1/sqrt(d))\n"
    "  --w W.npy                   general: W [d, d]\n"
    "  --wq WQ.npy --wa WA.npy --v v.npy     additive: W_q [h, d], W_a [h, d], v [h]\n"
    "computing:\n"
    "  --backend auto|cuda|cpu|reference     (default auto)\n"
    "  --device N                  CUDA device (default 0)\n"
    "  --threads N                 CPU threads (default 0: all cores)\n"
    "outputs (float32):\n"
    "  --out C.npy                 context, shaped like the queries with dv columns\n"
    "  --scores S.npy --weights W.npy        like the queries with n columns\n"
    "  --lse L.npy                 log-sum-exp per query\n"
    "  --heatmap FILE.png|FILE.svg the weights of one set as a picture (needs cairo)\n"
    "  --show                      the weights of one set as a terminal preview\n"
    "  --set B                     the set drawn by --heatmap and --show (default 0)\n"
    "  --palette NAME|#rrggbb      purple, orange (default), blue, green, red, grey\n";

typedef struct run_args {
  cli_input_args_t in;
  const char *backend, *device, *threads, *out, *scores, *weights, *lse, *heatmap, *set, *palette;
  int show, help;
} run_args_t;

/* The output files of one run, written to temporary names first. */
typedef struct pending {
  const char *path;
  char tmp[4096];
} pending_t;

#define MAX_OUTPUTS 5

static void discard(pending_t *p, int count) {
  for (int i = 0; i < count; i++)
    unlink(p[i].tmp);
}

static int has_picture_suffix(const char *path) {
  size_t n = strlen(path);
  return n > 4 && (strcasecmp(path + n - 4, ".png") == 0 || strcasecmp(path + n - 4, ".svg") == 0);
}

static int same_file(const char *x, const char *y) {
  struct stat sx, sy;
  if (strcmp(x, y) == 0) return 1;
  return stat(x, &sx) == 0 && stat(y, &sy) == 0 && sx.st_dev == sy.st_dev && sx.st_ino == sy.st_ino;
}

static int check_output_args(const run_args_t *a) {
  if (!a->out) {
    cli_error("run: --out C.npy is required");
    return CLI_EXIT_INPUT;
  }
  /* Two outputs to one file: the later would silently replace the earlier. The same name, or
   * two names of one file that exists already (./c.npy and c.npy, a link). */
  const struct {
    const char *option, *path;
  } outputs[] = {{"--out", a->out},
                 {"--scores", a->scores},
                 {"--weights", a->weights},
                 {"--lse", a->lse},
                 {"--heatmap", a->heatmap}};
  const size_t count = sizeof outputs / sizeof outputs[0];
  for (size_t i = 0; i < count; i++)
    for (size_t j = i + 1; j < count; j++)
      if (outputs[i].path && outputs[j].path && same_file(outputs[i].path, outputs[j].path)) {
        cli_error("%s %s: the same file as %s", outputs[j].option, outputs[j].path,
                  outputs[i].option);
        return CLI_EXIT_INPUT;
      }
  if (!a->heatmap) return 0;
#ifdef ATTN_HAVE_CAIRO
  if (has_picture_suffix(a->heatmap)) return 0;
  cli_error("%s: a heatmap file name must end in .png or .svg", a->heatmap);
#else
  (void)has_picture_suffix;
  cli_error("--heatmap %s: heatmaps need cairo, and this attn was built without it (install "
            "libcairo2-dev and rebuild; --show works without it)",
            a->heatmap);
#endif
  return CLI_EXIT_INPUT;
}

static int create_context(const run_args_t *a, attn_context_t **ctx) {
  attn_options_t opts = attn_default_options();
  int64_t v;
  int rc;
  if (a->backend && (rc = cli_parse_backend(a->backend, &opts.backend))) return rc;
  if (a->device) {
    if ((rc = cli_parse_int("device", a->device, 0, 1 << 20, &v))) return rc;
    opts.device = (int)v;
  }
  if (a->threads) {
    if ((rc = cli_parse_int("threads", a->threads, 0, ATTN_MAX_CPU_THREADS, &v))) return rc;
    opts.cpu_threads = (int)v;
  }
  attn_status_t st = attn_context_create(&opts, ctx);
  if (st == ATTN_OK) return 0;
  cli_error("cannot use backend %s: %s (%s)", attn_backend_name(opts.backend), attn_create_error(),
            attn_status_string(st));
  return cli_exit_for_status(st);
}

/* The weights of set b as a heatmap description. */
static heatmap_t weights_heatmap(const cli_problem_t *p, const cli_results_t *r, int64_t b,
                                 heatmap_rgb_t color, char *title, size_t title_size) {
  int64_t row0, rows, cols;
  cli_problem_set_rows(p, b, &row0, &rows, &cols);
  if (p->shape.batch > 1)
    snprintf(title, title_size, "attention weights, set %lld", (long long)b);
  else
    snprintf(title, title_size, "attention weights");
  heatmap_t h = {
      r->weights + row0 * p->ld_sw, rows, cols, p->ld_sw, title, "annotation j", "query i", color};
  return h;
}

/* Writes every requested output to a temporary file, then renames them all into place. */
static int write_outputs(const run_args_t *a, const cli_problem_t *p, const cli_results_t *r,
                         const heatmap_t *picture) {
  struct {
    const char *path;
    const cli_output_shape_t *shape;
    const float *data;
  } files[] = {{a->out, &p->context_shape, r->context},
               {a->scores, &p->sw_shape, r->scores},
               {a->weights, &p->sw_shape, r->weights},
               {a->lse, &p->lse_shape, r->lse}};
  pending_t pending[MAX_OUTPUTS];
  int count = 0;
  char err[NPY_MESSAGE_SIZE];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    if (!files[i].path) continue;
    pending_t *o = &pending[count];
    o->path = files[i].path;
    if (npy_write_temp(o->path, NPY_F4, files[i].shape->ndim, files[i].shape->shape, files[i].data,
                       o->tmp, sizeof o->tmp, err, sizeof err)) {
      cli_error("%s", err);
      discard(pending, count);
      return CLI_EXIT_INPUT;
    }
    count++;
  }
#ifdef ATTN_HAVE_CAIRO
  if (a->heatmap) {
    pending_t *o = &pending[count];
    o->path = a->heatmap;
    if (heatmap_write(picture, o->path, 0, o->tmp, sizeof o->tmp, err, sizeof err)) {
      cli_error("%s", err);
      discard(pending, count);
      return CLI_EXIT_INPUT;
    }
    count++;
  }
#else
  (void)picture;
#endif
  for (int i = 0; i < count; i++) {
    if (outfile_commit(pending[i].tmp, pending[i].path, err, sizeof err)) {
      cli_error("%s", err);
      discard(pending + i + 1, count - i - 1);
      return CLI_EXIT_INPUT;
    }
    printf("wrote %s\n", pending[i].path);
  }
  return 0;
}

static int run(const run_args_t *a, const cli_problem_t *p) {
  int64_t set = 0;
  int rc;
  if (a->set && (rc = cli_parse_int("set", a->set, 0, p->shape.batch - 1, &set))) return rc;
  heatmap_rgb_t color;
  if (heatmap_parse_color(a->palette ? a->palette : "orange", &color)) {
    cli_error("--palette: '%s' is not a colour name or #rrggbb", a->palette);
    return CLI_EXIT_INPUT;
  }
  attn_context_t *ctx;
  if ((rc = create_context(a, &ctx))) return rc;
  printf("backend: %s (%s)\n", attn_backend_name(attn_context_backend(ctx)),
         attn_context_backend_reason(ctx));
  int picture = a->heatmap || a->show;
  cli_results_t r;
  rc = cli_results_alloc(p, a->scores != NULL, a->weights || picture, a->lse != NULL, &r);
  if (!rc) rc = cli_forward(ctx, p, &r);
  attn_context_destroy(ctx);
  if (!rc) {
    char title[64];
    heatmap_t h = {0};
    if (picture) h = weights_heatmap(p, &r, set, color, title, sizeof title);
    rc = write_outputs(a, p, &r, &h);
    if (!rc && a->show) heatmap_print(stdout, &h, 80);
  }
  cli_results_free(&r);
  return rc;
}

int cli_run(int argc, char **argv) {
  run_args_t a;
  memset(&a, 0, sizeof a);
  const cli_option_t opts[] = {
      CLI_INPUT_OPTIONS(a.in),       {"backend", &a.backend, NULL}, {"device", &a.device, NULL},
      {"threads", &a.threads, NULL}, {"out", &a.out, NULL},         {"scores", &a.scores, NULL},
      {"weights", &a.weights, NULL}, {"lse", &a.lse, NULL},         {"heatmap", &a.heatmap, NULL},
      {"show", NULL, &a.show},       {"set", &a.set, NULL},         {"palette", &a.palette, NULL}};
  int rc = cli_parse_options(argc, argv, opts, sizeof opts / sizeof opts[0], "run", &a.help);
  if (rc) return rc;
  if (a.help) {
    fputs(run_usage, stdout);
    return 0;
  }
  if ((rc = check_output_args(&a))) return rc;
  cli_problem_t p;
  if ((rc = cli_problem_load(&a.in, &p))) return rc;
  rc = run(&a, &p);
  cli_problem_free(&p);
  return rc;
}
