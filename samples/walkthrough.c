/*
 * walkthrough.c - the walkthrough attn grew from, step by step through the public API.
 *
 * One decoder state q = [5, 1, 20] and four annotations a_1..a_4 = [3, 12, 45], [59, 2, 5],
 * [1, 43, 5], [4, 3, 45.3] (DESIGN.md). Each step is one call of the host-array layer
 * (attn_*_host) on the best backend (an AUTO context: CUDA when a device is usable, else CPU):
 *
 *   1. one score      s_1 = q . a_1                    attn_scores_host, n = 1
 *   2. all scores     s_j = q . a_j                    attn_scores_host, n = 4
 *   3. softmax        w = softmax(s), lse              attn_softmax_host
 *   4. weighted annotations  w_j * a_j                 attn_weighted_sum_host on a batch of four
 *                                                       one-annotation sets (set j: w_j and a_j)
 *   5. context        c = sum_j w_j a_j                attn_weighted_sum_host, n = 4
 *   6. all three steps at once                         attn_forward_host
 *
 * Each stage is printed with a small heatmap (256-colour ANSI cells; plain numbers when stdout
 * is not a terminal or NO_COLOR is set). The program checks every stage against the
 * walkthrough's values and exits 1 on a mismatch, so CTest runs it as a test.
 *
 * When the library's heatmap drawing has cairo (tools/, ATTN_HAVE_CAIRO), it also draws the
 * notebook's four seaborn pictures as PNG files in the current folder: the decoder state,
 * the annotations, the weighted annotations and the context vector (walkthrough-*.png), each
 * with encoder steps as columns like the notebook.
 *
 * Usage: walkthrough [auto|cuda|cpu|reference]   (default auto)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attn.h"
#ifdef ATTN_HAVE_CAIRO
#include "heatmap.h"
#endif

/* --- Data: the walkthrough's inputs and expected values --------------------------------------- */

enum { N_ANN = 4, D = 3 };

/* q is (1, d) */
static const float query[D] = {5, 1, 20};
/* A is (n, d) */
static const float annotations[N_ANN * D] = {
    3,  12, 45,   /* a_1 */
    59, 2,  5,    /* a_2 */
    1,  43, 5,    /* a_3 */
    4,  3,  45.3f /* a_4 */
};

/* The notebook's float128 results. 45.3 rounded to float32 moves the exact answer by up to 4e-6
 * relative, so stages are compared within 1e-5 relative (plus 1e-6 absolute for the weights
 * that underflow to 0). */
static const double golden_scores[N_ANN] = {927, 397, 148, 929};
static const double golden_weights[N_ANN] = {0.1192029, 0.0, 0.0, 0.8807971};
static const double golden_context[D] = {3.8807971, 4.0728263, 45.264239};
#define GOLDEN_RTOL 1e-5
#define GOLDEN_ATOL 1e-6

/* --- Terminal heatmaps ------------------------------------------------------------------------ */

static int use_color;

/* A dark-to-bright ramp of the 256-colour palette (purple, blue, teal, green, yellow). */
static const int palette[] = {53, 54, 55, 61, 25, 31, 37, 36, 35, 71, 107, 143, 179, 220, 226};
enum { PALETTE_SIZE = sizeof(palette) / sizeof(palette[0]) };

static int detect_color(void) {
  const char *no_color = getenv("NO_COLOR");
  const char *term = getenv("TERM");
  if (no_color != NULL && no_color[0] != '\0') return 0;
  if (term != NULL && strcmp(term, "dumb") == 0) return 0;
  return isatty(STDOUT_FILENO);
}

/* Prints one cell: the value on a background that says where it sits between lo and hi. */
static void print_cell(float x, float lo, float hi) {
  if (!use_color) {
    printf(" %12.7f", (double)x);
    return;
  }
  int idx = PALETTE_SIZE / 2, bg = 240;
  if (isfinite(x)) {
    if (hi > lo) idx = (int)((x - lo) / (hi - lo) * (PALETTE_SIZE - 1) + 0.5f);
    bg = palette[idx];
  }
  int fg = idx < PALETTE_SIZE / 2 ? 15 : 16; /* white on dark cells, black on bright ones */
  printf(" \x1b[48;5;%dm\x1b[38;5;%dm %12.7f \x1b[0m", bg, fg, (double)x);
}

/* Prints a rows x cols matrix x (leading dimension ld) as a heatmap scaled to its own range.
 * Rows are labelled label1, label2, ... when label is not NULL. */
static void print_heatmap(const char *title, const float *x, int rows, int cols, int ld,
                          const char *label) {
  float lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < rows; i++) {
    for (int j = 0; j < cols; j++) {
      float v = x[i * ld + j];
      if (!isfinite(v)) continue;
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
  }
  printf("  %s\n", title);
  for (int i = 0; i < rows; i++) {
    if (label != NULL) {
      printf("    %s%d ", label, i + 1);
    } else {
      printf("       ");
    }
    for (int j = 0; j < cols; j++)
      print_cell(x[i * ld + j], lo, hi);
    printf("\n");
  }
}

/* --- Checks ----------------------------------------------------------------------------------- */

static int failures;

/* Compares count values of x with the walkthrough's values and reports the stage. */
static void check_stage(const char *stage, const float *x, const double *golden, int count) {
  int bad = 0;
  for (int i = 0; i < count; i++) {
    double err = fabs((double)x[i] - golden[i]);
    if (!(err <= GOLDEN_ATOL + GOLDEN_RTOL * fabs(golden[i]))) {
      fprintf(stderr, "  MISMATCH %s[%d]: %.9g, expected %.9g\n", stage, i, (double)x[i],
              golden[i]);
      bad++;
    }
  }
  printf("  %s: %s\n", stage, bad ? "MISMATCH" : "matches the walkthrough");
  failures += bad;
}

/* Exits with a message when an attn call fails: samples are programs, the library never exits. */
static void require_ok(attn_status_t status, attn_context_t *ctx, const char *call) {
  if (status == ATTN_OK) return;
  fprintf(stderr, "%s failed: %s\n  %s\n", call, attn_status_string(status),
          attn_context_last_error(ctx));
  attn_context_destroy(ctx);
  exit(1);
}

/* --- Pictures ----------------------------------------------------------------------------------
 */

#ifdef ATTN_HAVE_CAIRO
/* Draws x^T (x is rows x cols, leading dimension ld) into `path`, so that each annotation is a
 * column as in the notebook. Returns 1 when the file was written. */
static int draw_picture(const char *path, const char *title, const float *x, int rows, int cols,
                        int ld, const char *color, const char *xlabel, const char *ylabel) {
  float t[N_ANN * D];
  for (int i = 0; i < rows; i++) {
    for (int j = 0; j < cols; j++)
      t[j * rows + i] = x[i * ld + j];
  }
  heatmap_t h = {t, cols, rows, rows, title, xlabel, ylabel, {0, 0, 0}};
  heatmap_parse_color(color, &h.color);
  char tmp[512], err[256];
  if (heatmap_write(&h, path, 1, tmp, sizeof tmp, err, sizeof err) != 0) {
    fprintf(stderr, "walkthrough: %s: %s\n", path, err);
    return 0;
  }
  printf("  picture: %s\n", path);
  return 1;
}
#endif

/* The notebook's four pictures; prints where they went (a no-op without cairo). */
static void draw_pictures(const float *applied, const float *context) {
#ifdef ATTN_HAVE_CAIRO
  printf("\nPictures (the notebook's seaborn heatmaps):\n");
  int ok = draw_picture("walkthrough-decoder-state.png", "decoder state", query, 1, D, D, "purple",
                        "", "hidden unit");
  ok &= draw_picture("walkthrough-annotations.png", "annotations", annotations, N_ANN, D, D,
                     "orange", "encoder step j", "hidden unit");
  ok &= draw_picture("walkthrough-weighted-annotations.png", "weighted annotations w_j a_j",
                     applied, N_ANN, D, D, "orange", "encoder step j", "hidden unit");
  ok &= draw_picture("walkthrough-context.png", "context vector", context, 1, D, D, "blue", "",
                     "hidden unit");
  if (!ok) failures++;
#else
  (void)applied;
  (void)context;
  printf("\n(no pictures: built without cairo)\n");
#endif
}

/* --- The walkthrough -------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  attn_options_t opts = attn_default_options();
  if (argc > 2 || (argc == 2 && attn_backend_from_name(argv[1], &opts.backend) != ATTN_OK)) {
    fprintf(stderr, "usage: %s [auto|cuda|cpu|reference]\n", argv[0]);
    return 2;
  }
  use_color = detect_color();

  attn_context_t *ctx = NULL;
  if (attn_context_create(&opts, &ctx) != ATTN_OK) {
    fprintf(stderr, "attn_context_create: %s\n", attn_create_error());
    return 1;
  }
  printf("attn %s walkthrough: one decoder state, four annotations\n", attn_version_string());
  printf("backend: %s (%s)\n\n", attn_backend_name(attn_context_backend(ctx)),
         attn_context_backend_reason(ctx));

  print_heatmap("decoder state q [1 x 3]", query, 1, D, D, "q");
  print_heatmap("annotations A [4 x 3]", annotations, N_ANN, D, D, "a");

  /* Step 1: one score, q . a_1: a problem with a single annotation. */
  float one_score = 0;
  attn_shape_t one = {.batch = 1, .m = 1, .n = 1, .d = D, .dv = D};
  require_ok(attn_scores_host(ctx, &one, NULL, attn_cmat(query, D, 0), attn_cmat(annotations, D, 0),
                              attn_mat(&one_score, 1, 0)),
             ctx, "attn_scores_host (one annotation)");
  printf("\n1. One score: s_1 = q . a_1 = 5*3 + 1*12 + 20*45  (attn_scores_host, n = 1)\n");
  print_heatmap("s_1", &one_score, 1, 1, 1, NULL);
  check_stage("one score", &one_score, golden_scores, 1);

  /* Step 2: all four scores in one call. */
  float scores[N_ANN];
  attn_shape_t shape = {.batch = 1, .m = 1, .n = N_ANN, .d = D, .dv = D};
  require_ok(attn_scores_host(ctx, &shape, NULL, attn_cmat(query, D, 0),
                              attn_cmat(annotations, D, 0), attn_mat(scores, N_ANN, 0)),
             ctx, "attn_scores_host");
  printf("\n2. All scores: s_j = q . a_j  (attn_scores_host, n = 4)\n");
  print_heatmap("s [1 x 4]", scores, 1, N_ANN, N_ANN, "s");
  check_stage("scores", scores, golden_scores, N_ANN);

  /* Step 3: softmax. exp(929) overflows even a double; attn subtracts the row maximum first. */
  float weights[N_ANN], lse = 0;
  require_ok(attn_softmax_host(ctx, &shape, attn_cmat(scores, N_ANN, 0),
                               attn_mat(weights, N_ANN, 0), &lse),
             ctx, "attn_softmax_host");
  printf("\n3. Softmax: w = exp(s - max) / sum exp(s - max)  (attn_softmax_host)\n");
  print_heatmap("w [1 x 4]", weights, 1, N_ANN, N_ANN, "w");
  printf("  log-sum-exp of the scores: %.7f\n", (double)lse);
  check_stage("weights", weights, golden_weights, N_ANN);
  double golden_lse = 0;
  for (int j = 0; j < N_ANN; j++)
    golden_lse += exp(golden_scores[j] - golden_scores[3]);
  golden_lse = golden_scores[3] + log(golden_lse); /* 929 is the row maximum */
  check_stage("log-sum-exp", &lse, &golden_lse, 1);

  /* Step 4: the weighted annotations w_j * a_j, the notebook's applied_attention. Computed by the
   * library: a uniform batch of four sets with one annotation each, where set j has the single
   * weight w_j (stride 1 through `weights`) and the single value a_j (stride d through A). */
  float applied[N_ANN * D];
  attn_shape_t per_annotation = {.batch = N_ANN, .m = 1, .n = 1, .d = D, .dv = D};
  require_ok(attn_weighted_sum_host(ctx, &per_annotation, attn_cmat(weights, 1, 1),
                                    attn_cmat(annotations, D, D), attn_mat(applied, D, D)),
             ctx, "attn_weighted_sum_host (one set per annotation)");
  printf("\n4. Weighted annotations: w_j * a_j  (attn_weighted_sum_host on 4 one-annotation "
         "sets)\n");
  print_heatmap("w_j * a_j [4 x 3]", applied, N_ANN, D, D, "a");
  double golden_applied[N_ANN * D];
  for (int j = 0; j < N_ANN; j++) {
    for (int k = 0; k < D; k++)
      golden_applied[j * D + k] = golden_weights[j] * annotations[j * D + k];
  }
  check_stage("weighted annotations", applied, golden_applied, N_ANN * D);

  /* Step 5: the context, the column sums of step 4. */
  float context[D];
  require_ok(attn_weighted_sum_host(ctx, &shape, attn_cmat(weights, N_ANN, 0),
                                    attn_cmat(annotations, D, 0), attn_mat(context, D, 0)),
             ctx, "attn_weighted_sum_host");
  printf("\n5. Context: c = sum_j w_j * a_j  (attn_weighted_sum_host, n = 4)\n");
  print_heatmap("c [1 x 3]", context, 1, D, D, "c");
  check_stage("context", context, golden_context, D);

  /* Step 6: all three steps in one call; the backend may fuse them. */
  float fused[D], fused_lse = 0;
  attn_inputs_t in = {.queries = attn_cmat(query, D, 0),
                      .annotations = attn_cmat(annotations, D, 0),
                      .values = attn_cmat(NULL, 0, 0)};
  attn_outputs_t out = {.context = attn_mat(fused, D, 0), .lse = &fused_lse};
  require_ok(attn_forward_host(ctx, &shape, NULL, &in, &out), ctx, "attn_forward_host");
  printf("\n6. All three steps at once  (attn_forward_host)\n");
  print_heatmap("c [1 x 3]", fused, 1, D, D, "c");
  check_stage("forward context", fused, golden_context, D);
  check_stage("forward log-sum-exp", &fused_lse, &golden_lse, 1);

  draw_pictures(applied, context);

  attn_context_destroy(ctx);
  if (failures) {
    printf("\nwalkthrough: %d value(s) differ from the walkthrough\n", failures);
    return 1;
  }
  printf("\nwalkthrough: every stage matches the walkthrough's values\n");
  return 0;
}
