#define G_LOG_DOMAIN "conform"

#include "conform-figure.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform-config.h"
#include "metrics.h"

/* Okabe-Ito (the window's series colours, ui/conform-palette.c): orange, sky
 * blue, bluish green, yellow, blue, vermillion, reddish purple. */
static const guint32 okabe_ito[] = {0xE69F00, 0x56B4E9, 0x009E73, 0xF0E442, 0x0072B2, 0xD55E00, 0xCC79A7};

/* Layout of one column (pixels, relative to its left edge). */
enum {
  PLOT_LEFT = 48,
  PLOT_RIGHT = 12,
  SCATTER_TOP = 76,
  SCATTER_SIZE = CONFORM_FIGURE_COLUMN_WIDTH - PLOT_LEFT - PLOT_RIGHT,
  HIST_TOP = SCATTER_TOP + SCATTER_SIZE + 62,
  HIST_HEIGHT = 150,
  MAX_POINTS = 4000, /* drawn per set (evenly strided beyond) */
};

static void
set_rgb(cairo_t *cr, guint32 c, double alpha)
{
  cairo_set_source_rgba(cr, ((c >> 16) & 0xff) / 255.0, ((c >> 8) & 0xff) / 255.0, (c & 0xff) / 255.0, alpha);
}

/* Text with its baseline at y; align 0 left, 0.5 centred, 1 right. */
static void
text_at(cairo_t *cr, double x, double y, const char *s, double align, double size, gboolean bold)
{
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, s, &ext);
  cairo_move_to(cr, x - align * ext.x_advance, y);
  cairo_show_text(cr, s);
}

/* A 1-2-5 tick step giving about `count` intervals over range. */
static double
nice_step(double range, int count)
{
  double raw = range / count;
  double p = pow(10, floor(log10(raw)));
  double f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static void
tick_label(char *buf, gsize len, double v, double step)
{
  v = round(v / step) * step;
  if (fabs(v) < step * 1e-9)
    v = 0;
  g_snprintf(buf, len, "%g", v);
}

/* ---- projection onto the plotted plane ------------------------------------------- */

typedef struct {
  int dim;
  gboolean pca;
  double *centre, *basis; /* pca: centre (dim), basis (2 x dim) */
  const char *xlabel, *ylabel;
} Plane;

static void
plane_point(const Plane *p, const float *x, int i, int n, double *u, double *v)
{
  if (p->dim == 1) {
    *u = x[0];
    *v = n > 1 ? (double)i / (n - 1) : 0.5;
  } else if (!p->pca) {
    *u = x[0];
    *v = x[1];
  } else {
    double a = 0, b = 0;
    for (int j = 0; j < p->dim; j++) {
      double d = x[j] - p->centre[j];
      a += d * p->basis[j];
      b += d * p->basis[p->dim + j];
    }
    *u = a;
    *v = b;
  }
}

/* Plane coordinates of at most MAX_POINTS rows of x (n x dim), 2 per point. */
static double *
plane_points(const Plane *p, const float *x, int n, int *n_out)
{
  int stride = n > MAX_POINTS ? (n + MAX_POINTS - 1) / MAX_POINTS : 1;
  int m = n > 0 ? (n + stride - 1) / stride : 0;
  double *uv = g_new(double, 2 * (gsize)MAX(m, 1));
  for (int k = 0; k < m; k++) {
    int i = k * stride;
    plane_point(p, x + (gsize)i * p->dim, i, n, &uv[2 * k], &uv[2 * k + 1]);
  }
  *n_out = m;
  return uv;
}

static int
cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Extends [*lo, *hi] by the 0.5% and 99.5% quantiles of coordinate c of uv
 * (so a few far outliers do not squash the plot), finite values only. */
static void
extend_range(const double *uv, int n, int c, double *lo, double *hi)
{
  double *v = g_new(double, MAX(n, 1));
  int m = 0;
  for (int i = 0; i < n; i++)
    if (isfinite(uv[2 * i + c]))
      v[m++] = uv[2 * i + c];
  if (m > 0) {
    qsort(v, (size_t)m, sizeof(double), cmp_double);
    *lo = MIN(*lo, cf_percentile_sorted(v, m, 0.005));
    *hi = MAX(*hi, cf_percentile_sorted(v, m, 0.995));
  }
  g_free(v);
}

typedef struct {
  double u0, u1, v0, v1; /* data ranges */
} Ranges;

static void
draw_points(cairo_t *cr, const double *uv, int n, const Ranges *r, double px, double py, double radius)
{
  for (int i = 0; i < n; i++) {
    if (!isfinite(uv[2 * i]) || !isfinite(uv[2 * i + 1]))
      continue;
    double x = px + (uv[2 * i] - r->u0) / (r->u1 - r->u0) * SCATTER_SIZE;
    double y = py + SCATTER_SIZE - (uv[2 * i + 1] - r->v0) / (r->v1 - r->v0) * SCATTER_SIZE;
    cairo_new_sub_path(cr);
    cairo_arc(cr, x, y, radius, 0, 2 * G_PI);
  }
  cairo_fill(cr);
}

static void
draw_scatter(cairo_t *cr, double px, double py, const Plane *pl, const Ranges *r, const double *ref_uv, int n_ref,
             const double *uv, int n, guint32 colour)
{
  cairo_save(cr);
  cairo_rectangle(cr, px, py, SCATTER_SIZE, SCATTER_SIZE);
  cairo_clip(cr);
  cairo_set_source_rgba(cr, 0.72, 0.72, 0.72, 0.6);
  draw_points(cr, ref_uv, n_ref, r, px, py, 1.3);
  set_rgb(cr, colour, 0.55);
  draw_points(cr, uv, n, r, px, py, 1.5);
  cairo_restore(cr);
  /* frame, ticks, labels */
  cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, px + 0.5, py + 0.5, SCATTER_SIZE - 1, SCATTER_SIZE - 1);
  cairo_stroke(cr);
  char buf[32];
  double step = nice_step(r->u1 - r->u0, 4);
  for (double t = ceil(r->u0 / step) * step; t <= r->u1 + step * 1e-9; t += step) {
    double x = px + (t - r->u0) / (r->u1 - r->u0) * SCATTER_SIZE;
    cairo_move_to(cr, round(x) + 0.5, py + SCATTER_SIZE);
    cairo_line_to(cr, round(x) + 0.5, py + SCATTER_SIZE + 4);
    cairo_stroke(cr);
    tick_label(buf, sizeof buf, t, step);
    text_at(cr, x, py + SCATTER_SIZE + 15, buf, 0.5, 10, FALSE);
  }
  step = nice_step(r->v1 - r->v0, 4);
  for (double t = ceil(r->v0 / step) * step; t <= r->v1 + step * 1e-9; t += step) {
    double y = py + SCATTER_SIZE - (t - r->v0) / (r->v1 - r->v0) * SCATTER_SIZE;
    cairo_move_to(cr, px - 4, round(y) + 0.5);
    cairo_line_to(cr, px, round(y) + 0.5);
    cairo_stroke(cr);
    tick_label(buf, sizeof buf, t, step);
    text_at(cr, px - 6, y + 3.5, buf, 1, 10, FALSE);
  }
  text_at(cr, px + SCATTER_SIZE / 2.0, py + SCATTER_SIZE + 31, pl->xlabel, 0.5, 11, FALSE);
  cairo_save(cr);
  cairo_translate(cr, px - 34, py + SCATTER_SIZE / 2.0);
  cairo_rotate(cr, -G_PI / 2);
  text_at(cr, 0, 0, pl->ylabel, 0.5, 11, FALSE);
  cairo_restore(cr);
}

/* ---- image grids ---------------------------------------------------------------------- */

enum { GRID_PER_ROW = 8, GRID_CELL = 28, GRID_GAP = 2 };

/* The first 64 images of a column, 8 per row, each scaled by an integer
 * factor to fit a GRID_CELL px cell (nearest neighbour), grey gaps between;
 * with annotate a 2 px frame green (within tolerance) or vermillion. */
static void
draw_image_grid(cairo_t *cr, double px, double py, const ConformFigureCompare *fig, const ConformFigureColumn *col)
{
  const int s = fig->image_size, off = fig->dim - s * s;
  const int scale = MAX(GRID_CELL / s, 1), side = s * scale;
  const int n = MIN(col->n, GRID_PER_ROW * GRID_PER_ROW), rows = (n + GRID_PER_ROW - 1) / GRID_PER_ROW;
  const double step = side + GRID_GAP;
  cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
  cairo_rectangle(cr, px, py, GRID_PER_ROW * step + GRID_GAP, rows * step + GRID_GAP);
  cairo_fill(cr);
  cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, s, s);
  for (int i = 0; i < n; i++) {
    const float *x = col->x + (gsize)i * fig->dim + off;
    cairo_surface_flush(img);
    unsigned char *data = cairo_image_surface_get_data(img);
    const int stride = cairo_image_surface_get_stride(img);
    for (int r = 0; r < s; r++)
      for (int q = 0; q < s; q++) {
        float v = x[r * s + q];
        guint32 g = isfinite(v) ? (guint32)lrintf(255.0f * CLAMP(v, 0.0f, 1.0f)) : 0u;
        *(guint32 *)(data + (gsize)r * stride + 4 * (gsize)q) = g << 16 | g << 8 | g;
      }
    cairo_surface_mark_dirty(img);
    const double cx = px + GRID_GAP + (i % GRID_PER_ROW) * step, cy = py + GRID_GAP + (i / GRID_PER_ROW) * step;
    cairo_save(cr);
    cairo_translate(cr, cx, cy);
    cairo_scale(cr, scale, scale);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
    if (fig->annotate && col->viol) {
      set_rgb(cr, col->viol[i] <= fig->tolerance ? 0x009E73 : 0xD55E00, 1);
      cairo_set_line_width(cr, 2);
      cairo_rectangle(cr, cx - 1, cy - 1, side + 2, side + 2);
      cairo_stroke(cr);
    }
  }
  cairo_surface_destroy(img);
}

/* ---- violation histograms ---------------------------------------------------------- */

/* Shared bins: slot 0 holds violations <= CONFORM_FIGURE_VIOLATION_FLOOR,
 * slots 1..n_bins log10-spaced bins from the floor up to a power of ten
 * covering the largest violation of any column. */
typedef struct {
  double lo_exp, hi_exp;
  int per_decade, n_bins;
} Bins;

static Bins
bins_for(const ConformFigureCompare *fig)
{
  double vmax = 0;
  for (int c = 0; c < fig->n_cols; c++)
    for (int i = 0; fig->cols[c].viol && i < fig->cols[c].n; i++)
      if (isfinite(fig->cols[c].viol[i]))
        vmax = MAX(vmax, fig->cols[c].viol[i]);
  Bins b;
  b.lo_exp = round(log10(CONFORM_FIGURE_VIOLATION_FLOOR));
  b.hi_exp = vmax > CONFORM_FIGURE_VIOLATION_FLOOR ? ceil(log10(vmax) - 1e-12) : b.lo_exp + 1;
  b.hi_exp = MAX(b.hi_exp, b.lo_exp + 1);
  int decades = (int)(b.hi_exp - b.lo_exp);
  b.per_decade = CLAMP(36 / decades, 1, 4);
  b.n_bins = decades * b.per_decade;
  return b;
}

/* Slot of violation v (-1: not finite). */
static int
bin_slot(const Bins *b, double v)
{
  if (!isfinite(v))
    return -1;
  if (v <= CONFORM_FIGURE_VIOLATION_FLOOR)
    return 0;
  int k = (int)floor((log10(v) - b->lo_exp) * b->per_decade);
  return 1 + CLAMP(k, 0, b->n_bins - 1);
}

static void
draw_histogram(cairo_t *cr, double px, double py, const Bins *b, const ConformFigureColumn *col, double tol,
               guint32 colour)
{
  const double w = SCATTER_SIZE, h = HIST_HEIGHT;
  const int slots = b->n_bins + 1;
  const double sw = w / slots;
  cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
  cairo_set_line_width(cr, 1);
  if (!col->viol) {
    text_at(cr, px + w / 2, py + h / 2, "no constraint", 0.5, 11, FALSE);
    return;
  }
  long *counts = g_new0(long, slots);
  long bad = 0;
  for (int i = 0; i < col->n; i++) {
    int s = bin_slot(b, col->viol[i]);
    if (s < 0)
      bad++;
    else
      counts[s]++;
  }
  long cmax = 1;
  for (int s = 0; s < slots; s++)
    cmax = MAX(cmax, counts[s]);
  double fmax = col->n > 0 ? (double)cmax / col->n : 1;
  double ystep = nice_step(fmax, 3);
  double ytop = ceil(fmax / ystep - 1e-9) * ystep;
  /* bars */
  for (int s = 0; s < slots; s++) {
    if (counts[s] == 0)
      continue;
    double bh = (double)counts[s] / col->n / ytop * h;
    set_rgb(cr, colour, s == 0 ? 0.55 : 0.9);
    cairo_rectangle(cr, px + s * sw + 0.5, py + h - bh, MAX(sw - 1, 1), bh);
    cairo_fill(cr);
  }
  /* the floor slot is set apart by a dotted separator */
  cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
  double dash[] = {2, 2};
  cairo_set_dash(cr, dash, 2, 0);
  cairo_move_to(cr, round(px + sw) + 0.5, py);
  cairo_line_to(cr, round(px + sw) + 0.5, py + h);
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
  /* tolerance marker */
  if (tol > CONFORM_FIGURE_VIOLATION_FLOOR && log10(tol) < b->hi_exp) {
    double x = px + (1 + (log10(tol) - b->lo_exp) * b->per_decade) * sw;
    cairo_set_source_rgb(cr, 0.8, 0.1, 0.1);
    double d2[] = {4, 3};
    cairo_set_dash(cr, d2, 2, 0);
    cairo_move_to(cr, round(x) + 0.5, py);
    cairo_line_to(cr, round(x) + 0.5, py + h);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    text_at(cr, x + 3, py + 11, "tol", 0, 10, FALSE);
  }
  char buf[64];
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  if (counts[0] == col->n && col->n > 0) {
    g_snprintf(buf, sizeof buf, "all \u2264 1e%d", (int)b->lo_exp);
    text_at(cr, px + sw + 6, py + h / 2, buf, 0, 11, TRUE);
  }
  if (bad > 0) {
    g_snprintf(buf, sizeof buf, "%ld not finite", bad);
    text_at(cr, px + w - 4, py + 24, buf, 1, 10, FALSE);
  }
  /* frame and axes */
  cairo_set_source_rgb(cr, 0.25, 0.25, 0.25);
  cairo_rectangle(cr, px + 0.5, py + 0.5, w - 1, h - 1);
  cairo_stroke(cr);
  for (double t = 0; t <= ytop + ystep * 1e-9; t += ystep) {
    double y = py + h - t / ytop * h;
    cairo_move_to(cr, px - 4, round(y) + 0.5);
    cairo_line_to(cr, px, round(y) + 0.5);
    cairo_stroke(cr);
    g_snprintf(buf, sizeof buf, "%g%%", round(t * 1000) / 10);
    text_at(cr, px - 6, y + 3.5, buf, 1, 10, FALSE);
  }
  int decades = (int)(b->hi_exp - b->lo_exp);
  int every = decades <= 4 ? 1 : decades <= 8 ? 2 : 3;
  for (int e = 0; e <= decades; e++) {
    double x = px + (1 + e * b->per_decade) * sw;
    cairo_move_to(cr, round(x) + 0.5, py + h);
    cairo_line_to(cr, round(x) + 0.5, py + h + 4);
    cairo_stroke(cr);
    if (e % every == 0 && e > 0) {
      g_snprintf(buf, sizeof buf, "1e%d", (int)(b->lo_exp + e));
      text_at(cr, x, py + h + 15, buf, 0.5, 10, FALSE);
    }
  }
  g_snprintf(buf, sizeof buf, "\u22641e%d", (int)b->lo_exp);
  text_at(cr, px + sw / 2, py + h + 15, buf, 0.3, 10, FALSE);
  text_at(cr, px + w / 2, py + h + 31, "||Ax \u2212 b||\u2082 per sample (log scale)", 0.5, 11, FALSE);
  g_free(counts);
}

/* ---- the figure -------------------------------------------------------------------- */

static cairo_status_t
append_cb(void *closure, const unsigned char *data, unsigned int length)
{
  g_byte_array_append(closure, data, length);
  return CAIRO_STATUS_SUCCESS;
}

GBytes *
conform_figure_compare_png(const ConformFigureCompare *fig, GError **error)
{
  g_return_val_if_fail(fig != NULL && fig->n_cols > 0 && fig->dim >= 1, NULL);
  const int width = CONFORM_FIGURE_COLUMN_WIDTH * fig->n_cols, height = CONFORM_FIGURE_HEIGHT;
  /* cells of GRID_CELL px hold images of up to that side */
  const gboolean images = fig->image_size > 0 && fig->image_size <= GRID_CELL &&
                          (gsize)fig->image_size * fig->image_size <= (gsize)fig->dim;
  Plane pl = {.dim = fig->dim, .xlabel = "x0", .ylabel = "x1"};
  if (fig->dim == 1) {
    pl.ylabel = "sample index / n";
  } else if (fig->dim >= 3) {
    /* The principal plane of the reference data (for the 3-D simplex this
     * is the plane of x0 + x1 + x2 = 1 itself). */
    pl.centre = g_new(double, fig->dim);
    pl.basis = g_new(double, 2 * (gsize)fig->dim);
    CfError err;
    if (fig->n_ref >= 2 && cf_pca(fig->ref, fig->n_ref, fig->dim, 2, pl.centre, pl.basis, &err) == CF_OK) {
      pl.pca = TRUE;
      pl.xlabel = "principal axis 1 of the reference data";
      pl.ylabel = "principal axis 2";
    }
  }
  int n_ref_uv = 0;
  double *ref_uv = plane_points(&pl, fig->ref, fig->n_ref, &n_ref_uv);
  double **uv = g_new0(double *, fig->n_cols);
  int *n_uv = g_new0(int, fig->n_cols);
  Ranges r = {INFINITY, -INFINITY, INFINITY, -INFINITY};
  for (int i = 0; i < n_ref_uv; i++) {
    if (isfinite(ref_uv[2 * i]) && isfinite(ref_uv[2 * i + 1])) {
      r.u0 = MIN(r.u0, ref_uv[2 * i]);
      r.u1 = MAX(r.u1, ref_uv[2 * i]);
      r.v0 = MIN(r.v0, ref_uv[2 * i + 1]);
      r.v1 = MAX(r.v1, ref_uv[2 * i + 1]);
    }
  }
  for (int c = 0; c < fig->n_cols; c++) {
    uv[c] = plane_points(&pl, fig->cols[c].x, fig->cols[c].n, &n_uv[c]);
    extend_range(uv[c], n_uv[c], 0, &r.u0, &r.u1);
    extend_range(uv[c], n_uv[c], 1, &r.v0, &r.v1);
  }
  if (!isfinite(r.u0) || !isfinite(r.u1))
    r.u0 = -1, r.u1 = 1;
  if (!isfinite(r.v0) || !isfinite(r.v1))
    r.v0 = -1, r.v1 = 1;
  if (r.u1 - r.u0 < 1e-12)
    r.u0 -= 1, r.u1 += 1;
  if (r.v1 - r.v0 < 1e-12)
    r.v0 -= 1, r.v1 += 1;
  double pu = 0.06 * (r.u1 - r.u0), pv = 0.06 * (r.v1 - r.v0);
  r.u0 -= pu, r.u1 += pu, r.v0 -= pv, r.v1 += pv;

  Bins bins = bins_for(fig);
  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  cairo_t *cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  for (int c = 0; c < fig->n_cols; c++) {
    const ConformFigureColumn *col = &fig->cols[c];
    guint32 colour = okabe_ito[c % G_N_ELEMENTS(okabe_ito)];
    double x0 = (double)c * CONFORM_FIGURE_COLUMN_WIDTH;
    set_rgb(cr, colour, 1);
    cairo_rectangle(cr, x0 + 8, 10, 12, 12);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, x0 + 26, 21, col->title ? col->title : "", 0, 14, TRUE);
    if (col->subtitle)
      text_at(cr, x0 + 8, 40, col->subtitle, 0, 11, FALSE);
    if (col->subtitle2)
      text_at(cr, x0 + 8, 56, col->subtitle2, 0, 11, FALSE);
    if (images)
      draw_image_grid(cr, x0 + (CONFORM_FIGURE_COLUMN_WIDTH - GRID_PER_ROW * (GRID_CELL + GRID_GAP) - GRID_GAP) / 2.0,
                      SCATTER_TOP, fig, col);
    else
      draw_scatter(cr, x0 + PLOT_LEFT, SCATTER_TOP, &pl, &r, ref_uv, n_ref_uv, uv[c], n_uv[c], colour);
    draw_histogram(cr, x0 + PLOT_LEFT, HIST_TOP, &bins, col, fig->tolerance, colour);
    if (c > 0) { /* column separator */
      cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
      cairo_move_to(cr, x0 + 0.5, 0);
      cairo_line_to(cr, x0 + 0.5, height);
      cairo_stroke(cr);
    }
  }
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  GByteArray *png = g_byte_array_new();
  if (st == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(surface);
    st = cairo_surface_write_to_png_stream(surface, append_cb, png);
  }
  cairo_surface_destroy(surface);
  for (int c = 0; c < fig->n_cols; c++)
    g_free(uv[c]);
  g_free(uv);
  g_free(n_uv);
  g_free(ref_uv);
  g_free(pl.centre);
  g_free(pl.basis);
  if (st != CAIRO_STATUS_SUCCESS) {
    g_byte_array_unref(png);
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_IO, "cannot render the figure: %s", cairo_status_to_string(st));
    return NULL;
  }
  return g_byte_array_free_to_bytes(png);
}
