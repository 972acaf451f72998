/*
 * heatmap.c - PNG and SVG heatmaps drawn with cairo, in the style of the walkthrough's seaborn
 * pictures: a light palette, white lines between cells, the value in each cell when the matrix is
 * small enough to read, tick labels, axis labels and a colour bar. Built only with cairo.
 *
 * Layout (pixels for PNG, points for SVG), see heatmap.h for the size formula:
 *   title above the grid; grid at (HEATMAP_LEFT, HEATMAP_TOP); row ticks and the y label on the
 *   left; column ticks and the x label below; the colour bar and its ticks on the right.
 */
#include "heatmap.h"
#include "outfile.h"

#include <cairo.h>
#include <cairo-svg.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Geometry of one picture. */
typedef struct layout {
  heatmap_grid_t grid;
  int width, height;
  double cell;   /* cell side */
  double x0, y0; /* top-left corner of the grid */
} layout_t;

static layout_t make_layout(const heatmap_t *h) {
  layout_t l;
  l.grid = heatmap_grid(h, HEATMAP_MAX_CELLS, HEATMAP_MAX_CELLS);
  heatmap_picture_size(h, &l.width, &l.height);
  int64_t span = l.grid.cols > 0 ? l.grid.cols : 1;
  l.cell = (double)(l.width - HEATMAP_LEFT - HEATMAP_RIGHT) / (double)span;
  l.x0 = HEATMAP_LEFT;
  l.y0 = HEATMAP_TOP;
  return l;
}

static void set_rgb(cairo_t *cr, heatmap_rgb_t c) {
  cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

/* Draws text with its anchor point at (x, y): ax, ay in {0, 0.5, 1} of the text's extent. */
static void draw_text(cairo_t *cr, const char *text, double x, double y, double ax, double ay) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, text, &e);
  cairo_move_to(cr, x - e.x_bearing - ax * e.width, y - e.y_bearing - ay * e.height);
  cairo_show_text(cr, text);
}

/* A compact value label: "0.88", "927", "1.2e+04". */
static void format_value(char *buf, size_t size, double v) {
  if (fabs(v) >= 1000.0 && fabs(v) < 100000.0)
    snprintf(buf, size, "%.0f", v);
  else
    snprintf(buf, size, "%.3g", v);
}

static void draw_cells(cairo_t *cr, const heatmap_t *h, const layout_t *l) {
  const heatmap_grid_t *g = &l->grid;
  double gap = l->cell >= 12 ? 1.0 : 0.0; /* seaborn's linewidths=1, when cells are big enough */
  int annotate = g->block_rows == 1 && g->block_cols == 1 && l->cell >= 30;
  cairo_set_font_size(cr, l->cell >= 40 ? 11.0 : 9.0);
  for (int64_t i = 0; i < g->rows; i++) {
    for (int64_t j = 0; j < g->cols; j++) {
      float v = heatmap_cell(h, g, i, j);
      double x = l->x0 + (double)j * l->cell, y = l->y0 + (double)i * l->cell;
      heatmap_rgb_t c = {0.82, 0.82, 0.82}; /* no finite entry: grey */
      if (!isnan(v)) {
        double t = g->vmax > g->vmin ? (v - g->vmin) / (g->vmax - g->vmin) : 1.0;
        c = heatmap_palette(h->color, t);
      }
      set_rgb(cr, c);
      cairo_rectangle(cr, x, y, l->cell - gap, l->cell - gap);
      cairo_fill(cr);
      if (!annotate) continue;
      char text[32];
      if (isnan(v))
        snprintf(text, sizeof text, "%s", isinf(h->data[i * h->ld + j]) ? "-inf" : "nan");
      else
        format_value(text, sizeof text, v);
      double luminance = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
      if (luminance < 0.45)
        cairo_set_source_rgb(cr, 1, 1, 1);
      else
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
      draw_text(cr, text, x + (l->cell - gap) / 2, y + (l->cell - gap) / 2, 0.5, 0.5);
    }
  }
}

/* Every k-th index is labelled so that labels are at least `room` apart. */
static int64_t tick_step(double cell, double room) {
  int64_t step = (int64_t)ceil(room / cell);
  return step < 1 ? 1 : step;
}

static void draw_axes(cairo_t *cr, const heatmap_t *h, const layout_t *l) {
  const heatmap_grid_t *g = &l->grid;
  double grid_w = (double)g->cols * l->cell, grid_h = (double)g->rows * l->cell;
  char text[64];
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  cairo_set_font_size(cr, 10.0);
  for (int64_t i = 0; i < g->rows; i += tick_step(l->cell, 14)) {
    snprintf(text, sizeof text, "%lld", (long long)(i * g->block_rows));
    draw_text(cr, text, l->x0 - 5, l->y0 + ((double)i + 0.5) * l->cell, 1.0, 0.5);
  }
  for (int64_t j = 0; j < g->cols; j += tick_step(l->cell, 30)) {
    snprintf(text, sizeof text, "%lld", (long long)(j * g->block_cols));
    draw_text(cr, text, l->x0 + ((double)j + 0.5) * l->cell, l->y0 + grid_h + 5, 0.5, 0.0);
  }
  cairo_set_font_size(cr, 12.0);
  if (h->xlabel) draw_text(cr, h->xlabel, l->x0 + grid_w / 2, l->y0 + grid_h + 24, 0.5, 0.0);
  if (h->ylabel) {
    cairo_save(cr);
    cairo_translate(cr, 16, l->y0 + grid_h / 2);
    cairo_rotate(cr, -2.0 * atan(1.0)); /* -pi/2 */
    draw_text(cr, h->ylabel, 0, 0, 0.5, 0.0);
    cairo_restore(cr);
  }
  if (h->title) {
    cairo_set_font_size(cr, 13.0);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    draw_text(cr, h->title, l->width / 2.0, HEATMAP_TOP / 2.0, 0.5, 0.5);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  }
  if (g->block_rows > 1 || g->block_cols > 1) {
    snprintf(text, sizeof text, "each cell: max of %lld x %lld entries", (long long)g->block_rows,
             (long long)g->block_cols);
    cairo_set_font_size(cr, 9.0);
    draw_text(cr, text, l->x0 + grid_w / 2, l->y0 + grid_h + 42, 0.5, 0.0);
  }
}

/* A vertical bar, vmax at the top; the palette is linear in RGB, so two stops draw it exactly. */
static void draw_colorbar(cairo_t *cr, const heatmap_t *h, const layout_t *l) {
  const heatmap_grid_t *g = &l->grid;
  double x = l->x0 + (double)g->cols * l->cell + 16, w = 14;
  double top = l->y0, bottom = l->y0 + (g->rows > 0 ? (double)g->rows * l->cell : l->cell);
  heatmap_rgb_t lo = heatmap_palette(h->color, 0.0), hi = heatmap_palette(h->color, 1.0);
  cairo_pattern_t *p = cairo_pattern_create_linear(0, bottom, 0, top);
  cairo_pattern_add_color_stop_rgb(p, 0.0, lo.r, lo.g, lo.b);
  cairo_pattern_add_color_stop_rgb(p, 1.0, hi.r, hi.g, hi.b);
  cairo_rectangle(cr, x, top, w, bottom - top);
  cairo_set_source(cr, p);
  cairo_fill(cr);
  cairo_pattern_destroy(p);
  int ticks = bottom - top >= 120 ? 5 : bottom - top >= 40 ? 3 : 2;
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  cairo_set_font_size(cr, 10.0);
  for (int k = 0; k < ticks; k++) {
    double f = (double)k / (ticks - 1);
    double v = g->vmin + f * (g->vmax - g->vmin), y = bottom - f * (bottom - top);
    char text[32];
    format_value(text, sizeof text, v);
    cairo_rectangle(cr, x + w, y - 0.5, 3, 1);
    cairo_fill(cr);
    draw_text(cr, text, x + w + 6, y, 0.0, 0.5);
  }
}

static void draw(cairo_t *cr, const heatmap_t *h, const layout_t *l) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  draw_cells(cr, h, l);
  draw_axes(cr, h, l);
  draw_colorbar(cr, h, l);
}

static int has_suffix(const char *path, const char *suffix) {
  size_t n = strlen(path), k = strlen(suffix);
  return n > k && strcasecmp(path + n - k, suffix) == 0;
}

/* Draws into the file `file` (already created); returns a cairo status. */
static cairo_status_t draw_file(const heatmap_t *h, const layout_t *l, int svg, const char *file) {
  cairo_surface_t *s = svg ? cairo_svg_surface_create(file, l->width, l->height)
                           : cairo_image_surface_create(CAIRO_FORMAT_ARGB32, l->width, l->height);
  cairo_status_t st = cairo_surface_status(s);
  if (st == CAIRO_STATUS_SUCCESS) {
    if (svg) cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX);
    cairo_t *cr = cairo_create(s);
    draw(cr, h, l);
    st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && !svg) st = cairo_surface_write_to_png(s, file);
    cairo_surface_finish(s);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
  }
  cairo_surface_destroy(s);
  return st;
}

int heatmap_write(const heatmap_t *h, const char *path, int commit, char *tmp_path, size_t tmp_size,
                  char *err, size_t err_size) {
  int svg = has_suffix(path, ".svg");
  if (!svg && !has_suffix(path, ".png")) {
    snprintf(err, err_size, "%s: a heatmap file name must end in .png or .svg", path);
    return -1;
  }
  int fd = outfile_temp(path, tmp_path, tmp_size, err, err_size);
  if (fd < 0) return -1;
  close(fd);
  layout_t l = make_layout(h);
  cairo_status_t st = draw_file(h, &l, svg, tmp_path);
  if (st != CAIRO_STATUS_SUCCESS) {
    snprintf(err, err_size, "%s: cairo could not write the picture: %s", path,
             cairo_status_to_string(st));
    unlink(tmp_path);
    return -1;
  }
  if (commit) return outfile_commit(tmp_path, path, err, err_size);
  return 0;
}
