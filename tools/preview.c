/*
 * preview.c - the terminal preview of a heatmap: Unicode upper half blocks (two matrix rows per
 * text line, the upper row as foreground, the lower as background) in xterm's 256 colours.
 */
#include "heatmap.h"

#include <math.h>
#include <stdlib.h>

/* The nearest xterm-256 colour: the 6x6x6 cube (16..231) or the grey ramp (232..255). */
static int xterm_color(heatmap_rgb_t c) {
  static const int level[6] = {0, 95, 135, 175, 215, 255};
  int rgb[3] = {(int)lround(c.r * 255), (int)lround(c.g * 255), (int)lround(c.b * 255)};
  int idx[3];
  long cube_dist = 0;
  for (int k = 0; k < 3; k++) {
    int best = 0;
    for (int i = 1; i < 6; i++) {
      if (abs(level[i] - rgb[k]) < abs(level[best] - rgb[k])) best = i;
    }
    idx[k] = best;
    cube_dist += (long)(level[best] - rgb[k]) * (level[best] - rgb[k]);
  }
  int grey = (int)lround(((rgb[0] + rgb[1] + rgb[2]) / 3.0 - 8.0) / 10.0);
  if (grey < 0) grey = 0;
  if (grey > 23) grey = 23;
  int gv = 8 + 10 * grey;
  long grey_dist = 0;
  for (int k = 0; k < 3; k++)
    grey_dist += (long)(gv - rgb[k]) * (gv - rgb[k]);
  return grey_dist < cube_dist ? 232 + grey : 16 + 36 * idx[0] + 6 * idx[1] + idx[2];
}

/* The xterm colour of a value on the grid's scale; grey 244 for a cell with no finite entry. */
static int value_color(const heatmap_t *h, const heatmap_grid_t *g, float v) {
  if (isnan(v)) return 244;
  double t = g->vmax > g->vmin ? (v - g->vmin) / (g->vmax - g->vmin) : 1.0;
  return xterm_color(heatmap_palette(h->color, t));
}

void heatmap_print(FILE *f, const heatmap_t *h, int max_width) {
  int64_t max_cols = (max_width - 2) / 2;
  heatmap_grid_t g = heatmap_grid(h, 48, max_cols < 1 ? 1 : max_cols);
  fprintf(f, "%s: %lld x %lld", h->title ? h->title : "matrix", (long long)h->rows,
          (long long)h->cols);
  if (g.block_rows > 1 || g.block_cols > 1)
    fprintf(f, " (each cell the max of %lld x %lld entries)", (long long)g.block_rows,
            (long long)g.block_cols);
  fprintf(f, "\n");
  for (int64_t i = 0; i < g.rows; i += 2) {
    fprintf(f, "  ");
    for (int64_t j = 0; j < g.cols; j++) {
      int upper = value_color(h, &g, heatmap_cell(h, &g, i, j));
      if (i + 1 < g.rows) {
        int lower = value_color(h, &g, heatmap_cell(h, &g, i + 1, j));
        fprintf(f, "\x1b[38;5;%dm\x1b[48;5;%dm\u2580\u2580", upper, lower);
      } else {
        fprintf(f, "\x1b[38;5;%dm\x1b[49m\u2580\u2580", upper);
      }
    }
    fprintf(f, "\x1b[0m\n");
  }
  fprintf(f, "  %-9.4g ", g.vmin);
  for (int k = 0; k < 16; k++) {
    heatmap_rgb_t c = heatmap_palette(h->color, k / 15.0);
    fprintf(f, "\x1b[38;5;%dm\u2588", xterm_color(c));
  }
  fprintf(f, "\x1b[0m %.4g\n", g.vmax);
}
