/*
 * heatmap.h - pictures of attention matrices, like the walkthrough's seaborn heatmaps.
 *
 * The static library `attn_heatmap` (tools/CMakeLists.txt) holds:
 *   - the light palette (seaborn's light_palette: from the colour at 95% lightness to the colour),
 *   - a terminal preview with Unicode half blocks and xterm 256 colours (always built),
 *   - PNG and SVG pictures drawn with cairo (only when cairo was found; then ATTN_HAVE_CAIRO is
 *     defined for every target that links attn_heatmap).
 *
 * Large matrices are downsampled: each drawn cell is the maximum of a block of entries, so a
 * sharp attention peak stays visible. The picture's size follows from the drawn grid alone:
 *     cell   = 48 px when both sides have <= 12 cells, else clamp(720 / max(rows, cols), 6, 48)
 *     width  = HEATMAP_LEFT + cols * cell + HEATMAP_RIGHT
 *     height = HEATMAP_TOP + rows * cell + HEATMAP_BOTTOM
 * (pixels for PNG, points for SVG), with rows, cols <= HEATMAP_MAX_CELLS after downsampling.
 */
#ifndef ATTN_TOOLS_HEATMAP_H
#define ATTN_TOOLS_HEATMAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HEATMAP_MAX_CELLS 64 /* drawn cells per side; larger matrices are downsampled */
#define HEATMAP_LEFT      80
#define HEATMAP_RIGHT     110
#define HEATMAP_TOP       40
#define HEATMAP_BOTTOM    60

typedef struct heatmap_rgb {
  double r, g, b; /* 0 .. 1 */
} heatmap_rgb_t;

/* One matrix to draw: rows x cols floats with leading dimension ld. Non-finite entries (such as
 * the -inf scores of masked annotations) are drawn grey and left out of the colour scale. */
typedef struct heatmap {
  const float *data;
  int64_t rows, cols, ld;
  const char *title;   /* NULL: none */
  const char *xlabel;  /* e.g. "annotation j" */
  const char *ylabel;  /* e.g. "query i" */
  heatmap_rgb_t color; /* the palette's darkest colour */
} heatmap_t;

/* Parses a colour: a name (purple, orange, blue, green, red, grey) or "#rrggbb". 0 or -1. */
int heatmap_parse_color(const char *text, heatmap_rgb_t *out);

/* seaborn light_palette(color) at t in [0, 1]: t = 0 is the light end, t = 1 the colour. */
heatmap_rgb_t heatmap_palette(heatmap_rgb_t color, double t);

/* The drawn grid: rows and cols after downsampling, and the block each cell covers. */
typedef struct heatmap_grid {
  int64_t rows, cols;             /* drawn cells */
  int64_t block_rows, block_cols; /* matrix entries per drawn cell (1 = not downsampled) */
  double vmin, vmax;              /* the colour scale: range of the finite entries */
} heatmap_grid_t;

/* The grid for a matrix when at most max_rows x max_cols cells may be drawn. */
heatmap_grid_t heatmap_grid(const heatmap_t *h, int64_t max_rows, int64_t max_cols);

/* Cell (i, j) of the grid: the maximum of its block's finite entries, or NAN if none. */
float heatmap_cell(const heatmap_t *h, const heatmap_grid_t *g, int64_t i, int64_t j);

/* Prints a terminal preview to f: two matrix rows per line (upper half block), each matrix column
 * two characters wide, at most max_width characters per line; then a one-line colour scale. */
void heatmap_print(FILE *f, const heatmap_t *h, int max_width);

/* The size of the picture heatmap_write draws for h, in pixels (PNG) or points (SVG). */
void heatmap_picture_size(const heatmap_t *h, int *width, int *height);

#ifdef ATTN_HAVE_CAIRO
/* Draws h into `path`: SVG when the name ends in ".svg", PNG when it ends in ".png". The file is
 * written under a temporary name in the same folder and renamed into place when complete; on
 * failure nothing is left. With commit == 0 it is not renamed: the temporary name is returned in
 * tmp_path[tmp_size] for the caller to rename or remove. Returns 0, or -1 with a message in err. */
int heatmap_write(const heatmap_t *h, const char *path, int commit, char *tmp_path, size_t tmp_size,
                  char *err, size_t err_size);
#endif

#endif
