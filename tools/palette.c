/*
 * palette.c - what every heatmap output shares: colours, the light palette, the downsampled grid
 * and the picture size (see heatmap.h).
 */
#include "heatmap.h"

#include <math.h>
#include <string.h>

int heatmap_parse_color(const char *text, heatmap_rgb_t *out) {
  static const struct {
    const char *name;
    unsigned rgb;
  } named[] = {{"purple", 0x800080}, {"orange", 0xffa500}, {"blue", 0x0000ff},
               {"green", 0x008000},  {"red", 0xff0000},    {"grey", 0x808080}};
  unsigned rgb = 0;
  int found = 0;
  for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
    if (strcmp(text, named[i].name) == 0) {
      rgb = named[i].rgb;
      found = 1;
    }
  }
  if (!found) {
    if (text[0] != '#' || strlen(text) != 7) return -1;
    for (int i = 1; i < 7; i++) {
      char c = text[i];
      int v = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (v < 0) return -1;
      rgb = rgb << 4 | (unsigned)v;
    }
  }
  out->r = ((rgb >> 16) & 0xff) / 255.0;
  out->g = ((rgb >> 8) & 0xff) / 255.0;
  out->b = (rgb & 0xff) / 255.0;
  return 0;
}

/* RGB <-> HLS as Python's colorsys does them. */
static void rgb_to_hls(heatmap_rgb_t c, double *h, double *l, double *s) {
  double maxc = fmax(c.r, fmax(c.g, c.b)), minc = fmin(c.r, fmin(c.g, c.b));
  *l = (maxc + minc) / 2.0;
  if (maxc == minc) {
    *h = 0.0;
    *s = 0.0;
    return;
  }
  double range = maxc - minc;
  *s = *l <= 0.5 ? range / (maxc + minc) : range / (2.0 - maxc - minc);
  double rc = (maxc - c.r) / range, gc = (maxc - c.g) / range, bc = (maxc - c.b) / range;
  double hue = c.r == maxc ? bc - gc : c.g == maxc ? 2.0 + rc - bc : 4.0 + gc - rc;
  hue /= 6.0;
  *h = hue - floor(hue);
}

static double hls_value(double m1, double m2, double hue) {
  hue -= floor(hue);
  if (hue < 1.0 / 6.0) return m1 + (m2 - m1) * hue * 6.0;
  if (hue < 0.5) return m2;
  if (hue < 2.0 / 3.0) return m1 + (m2 - m1) * (2.0 / 3.0 - hue) * 6.0;
  return m1;
}

static heatmap_rgb_t hls_to_rgb(double h, double l, double s) {
  heatmap_rgb_t c;
  if (s == 0.0) {
    c.r = c.g = c.b = l;
    return c;
  }
  double m2 = l <= 0.5 ? l * (1.0 + s) : l + s - l * s;
  double m1 = 2.0 * l - m2;
  c.r = hls_value(m1, m2, h + 1.0 / 3.0);
  c.g = hls_value(m1, m2, h);
  c.b = hls_value(m1, m2, h - 1.0 / 3.0);
  return c;
}

heatmap_rgb_t heatmap_palette(heatmap_rgb_t color, double t) {
  double h, l, s;
  rgb_to_hls(color, &h, &l, &s);
  heatmap_rgb_t light = hls_to_rgb(h, 0.95, s);
  if (!(t >= 0.0)) t = 0.0; /* also NaN */
  if (t > 1.0) t = 1.0;
  heatmap_rgb_t c = {light.r + (color.r - light.r) * t, light.g + (color.g - light.g) * t,
                     light.b + (color.b - light.b) * t};
  return c;
}

/* Cells per side and entries per cell when at most max_cells may be drawn. */
static void grid_side(int64_t entries, int64_t max_cells, int64_t *cells, int64_t *block) {
  if (max_cells < 1) max_cells = 1;
  *block = entries > max_cells ? (entries + max_cells - 1) / max_cells : 1;
  *cells = (entries + *block - 1) / *block;
}

heatmap_grid_t heatmap_grid(const heatmap_t *h, int64_t max_rows, int64_t max_cols) {
  heatmap_grid_t g;
  grid_side(h->rows, max_rows, &g.rows, &g.block_rows);
  grid_side(h->cols, max_cols, &g.cols, &g.block_cols);
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < h->rows; i++) {
    for (int64_t j = 0; j < h->cols; j++) {
      float v = h->data[i * h->ld + j];
      if (!isfinite(v)) continue;
      lo = fmin(lo, v);
      hi = fmax(hi, v);
    }
  }
  if (lo > hi) { /* no finite entry */
    lo = 0.0;
    hi = 1.0;
  }
  g.vmin = lo;
  g.vmax = hi;
  return g;
}

float heatmap_cell(const heatmap_t *h, const heatmap_grid_t *g, int64_t i, int64_t j) {
  float best = NAN;
  int64_t r1 = (i + 1) * g->block_rows, c1 = (j + 1) * g->block_cols;
  if (r1 > h->rows) r1 = h->rows;
  if (c1 > h->cols) c1 = h->cols;
  for (int64_t r = i * g->block_rows; r < r1; r++) {
    for (int64_t c = j * g->block_cols; c < c1; c++) {
      float v = h->data[r * h->ld + c];
      if (isfinite(v) && (isnan(best) || v > best)) best = v;
    }
  }
  return best;
}

void heatmap_picture_size(const heatmap_t *h, int *width, int *height) {
  heatmap_grid_t g;
  grid_side(h->rows, HEATMAP_MAX_CELLS, &g.rows, &g.block_rows);
  grid_side(h->cols, HEATMAP_MAX_CELLS, &g.cols, &g.block_cols);
  int64_t side = g.rows > g.cols ? g.rows : g.cols;
  int64_t cell = side <= 12 ? 48 : 720 / side;
  if (cell < 6) cell = 6;
  if (cell > 48) cell = 48;
  *width = (int)(HEATMAP_LEFT + g.cols * cell + HEATMAP_RIGHT);
  *height = (int)(HEATMAP_TOP + g.rows * cell + HEATMAP_BOTTOM);
}
