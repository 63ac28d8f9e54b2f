#define G_LOG_DOMAIN "conform"

#include "conform-curves.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define CAP CONFORM_CURVES_MAX_BUCKETS
#define FONT_SIZE 10.0
#define MAX_TICKS 16

/* Summary of `n` consecutive points. */
typedef struct {
  double x0, x1; /* x range */
  double xsum;
  double ymin, ymax, ysum, ylast; /* over the finite y */
  guint32 n;  /* points */
  guint32 ny; /* points with finite y */
} Bucket;

typedef struct {
  char *label;
  int color;
  Bucket *b;
  int nb, alloc;
  guint32 per_bucket; /* points per full bucket: 1, 2, 4, ... */
  gint64 n_points;
  gboolean sorted; /* x never decreased: nearest-point search can bisect */
  double xmin, xmax, ymin, ymax;
} CurveSeries;

struct _ConformCurves {
  GtkWidget parent_instance;

  GPtrArray *series; /* CurveSeries */
  gboolean log_y;
  double smoothing;
  char *title;
  char *x_label;
  double hover_x; /* NAN: none */

  /* y range cache (O(buckets) to recompute, only when the data changed) */
  gboolean range_dirty;
  gboolean range_valid;
  double range_lo, range_hi;

  double *scratch; /* smoothed line / y-range values */
  gsize scratch_len;

  ConformPlotArea last_area; /* from the last on-screen frame, for hover */
  gboolean have_area;
  GtkEventController *motion;
};

G_DEFINE_FINAL_TYPE(ConformCurves, conform_curves, GTK_TYPE_WIDGET)

/* ---- store -------------------------------------------------------------- */

static void
curve_series_free(gpointer p)
{
  CurveSeries *s = p;
  g_free(s->label);
  g_free(s->b);
  g_free(s);
}

static void
curve_series_reset(CurveSeries *s)
{
  s->nb = 0;
  s->per_bucket = 1;
  s->n_points = 0;
  s->sorted = TRUE;
  s->xmin = s->ymin = INFINITY;
  s->xmax = s->ymax = -INFINITY;
}

static void
bucket_merge(Bucket *dst, const Bucket *a, const Bucket *b)
{
  Bucket m;
  m.x0 = MIN(a->x0, b->x0);
  m.x1 = MAX(a->x1, b->x1);
  m.xsum = a->xsum + b->xsum;
  m.n = a->n + b->n;
  m.ny = a->ny + b->ny;
  m.ysum = a->ysum + b->ysum;
  m.ymin = MIN(a->ymin, b->ymin);
  m.ymax = MAX(a->ymax, b->ymax);
  m.ylast = b->ny > 0 ? b->ylast : a->ylast;
  *dst = m;
}

static void
series_append(CurveSeries *s, double x, double y)
{
  if (!isfinite(x))
    return;
  if (s->nb > 0 && x < s->b[s->nb - 1].x1)
    s->sorted = FALSE;
  if (s->nb == 0 || s->b[s->nb - 1].n >= s->per_bucket) {
    if (s->nb == CAP) {
      /* Full: merge adjacent pairs; every bucket is full here. */
      for (int i = 0; i < CAP / 2; i++)
        bucket_merge(&s->b[i], &s->b[2 * i], &s->b[2 * i + 1]);
      s->nb = CAP / 2;
      s->per_bucket *= 2;
    }
    if (s->nb == s->alloc) {
      s->alloc = MIN(CAP, MAX(64, s->alloc * 2));
      s->b = g_renew(Bucket, s->b, s->alloc);
    }
    Bucket *nb = &s->b[s->nb++];
    *nb = (Bucket){.x0 = x, .x1 = x, .ymin = INFINITY, .ymax = -INFINITY, .ylast = NAN};
  }
  Bucket *b = &s->b[s->nb - 1];
  b->x0 = MIN(b->x0, x);
  b->x1 = MAX(b->x1, x);
  b->xsum += x;
  b->n++;
  if (isfinite(y)) {
    b->ny++;
    b->ysum += y;
    b->ymin = MIN(b->ymin, y);
    b->ymax = MAX(b->ymax, y);
    b->ylast = y;
    s->ymin = MIN(s->ymin, y);
    s->ymax = MAX(s->ymax, y);
  }
  s->n_points++;
  s->xmin = MIN(s->xmin, x);
  s->xmax = MAX(s->xmax, x);
}

static double
bucket_x(const Bucket *b)
{
  return b->xsum / b->n;
}

static double
bucket_y(const Bucket *b)
{
  return b->ny > 0 ? b->ysum / b->ny : NAN;
}

/* Index of the bucket with a finite value nearest to x, or -1. */
static int
series_nearest(const CurveSeries *s, double x)
{
  if (s->nb == 0)
    return -1;
  if (s->sorted) {
    /* Bisect for the first bucket with mean x >= x, then look around it. */
    int lo = 0, hi = s->nb;
    while (lo < hi) {
      int mid = lo + (hi - lo) / 2;
      if (bucket_x(&s->b[mid]) < x)
        lo = mid + 1;
      else
        hi = mid;
    }
    int best = -1;
    double bd = INFINITY;
    /* Walk outwards past buckets without a finite value. */
    for (int i = lo; i < s->nb; i++)
      if (s->b[i].ny > 0) {
        bd = fabs(bucket_x(&s->b[i]) - x);
        best = i;
        break;
      }
    for (int i = lo - 1; i >= 0; i--)
      if (s->b[i].ny > 0) {
        if (fabs(bucket_x(&s->b[i]) - x) <= bd)
          best = i;
        break;
      }
    return best;
  }
  int best = -1;
  double bd = INFINITY;
  for (int i = 0; i < s->nb; i++) {
    if (s->b[i].ny == 0)
      continue;
    double d = fabs(bucket_x(&s->b[i]) - x);
    if (d < bd) {
      bd = d;
      best = i;
    }
  }
  return best;
}

static CurveSeries *
get_series(ConformCurves *self, int id)
{
  if (id < 0 || (guint)id >= self->series->len)
    return NULL;
  return g_ptr_array_index(self->series, id);
}

static double *
scratch(ConformCurves *self, gsize n)
{
  if (n > self->scratch_len) {
    self->scratch_len = MAX(n, 2 * self->scratch_len);
    self->scratch = g_renew(double, self->scratch, self->scratch_len);
  }
  return self->scratch;
}

static void
data_changed(ConformCurves *self)
{
  self->range_dirty = TRUE;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

/* ---- ranges and ticks --------------------------------------------------- */

static double
select_kth(double *v, int n, int k)
{
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    double pivot = v[lo + (hi - lo) / 2];
    int i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot)
        i++;
      while (v[j] > pivot)
        j--;
      if (i <= j) {
        double t = v[i];
        v[i] = v[j];
        v[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      break;
  }
  return v[k];
}

/* Robust y range of the bucket means (log10 of them with log y): the 1st to
 * 99th percentile widened by their span on both sides, never past the data,
 * plus 5 % padding. Rare spikes stay visible as a band running off the top
 * instead of flattening the curve. */
static void
update_range(ConformCurves *self)
{
  if (!self->range_dirty)
    return;
  self->range_dirty = FALSE;
  gsize total = 0;
  for (guint i = 0; i < self->series->len; i++)
    total += ((CurveSeries *)g_ptr_array_index(self->series, i))->nb;
  double *v = scratch(self, MAX(total, 1));
  int n = 0;
  double mn = INFINITY, mx = -INFINITY;
  for (guint i = 0; i < self->series->len; i++) {
    CurveSeries *s = g_ptr_array_index(self->series, i);
    for (int j = 0; j < s->nb; j++) {
      double y = bucket_y(&s->b[j]);
      if (!isfinite(y) || (self->log_y && y <= 0))
        continue;
      if (self->log_y)
        y = log10(y);
      v[n++] = y;
      mn = MIN(mn, y);
      mx = MAX(mx, y);
    }
  }
  if (n == 0) {
    self->range_valid = FALSE;
    self->range_lo = self->log_y ? 1 : 0;
    self->range_hi = self->log_y ? 10 : 1;
    return;
  }
  double q1 = select_kth(v, n, (int)floor(0.01 * (n - 1)));
  double q99 = select_kth(v, n, (int)ceil(0.99 * (n - 1)));
  double span = q99 - q1;
  double lo = MAX(mn, q1 - span), hi = MIN(mx, q99 + span);
  if (!(hi > lo)) {
    double c = 0.5 * (lo + hi);
    double d = self->log_y ? 0.5 : (fabs(c) > 0 ? 0.1 * fabs(c) : 1.0);
    lo = c - d;
    hi = c + d;
  }
  double pad = 0.05 * (hi - lo);
  lo -= pad;
  hi += pad;
  if (self->log_y) {
    /* Keep 10^lo and 10^hi normal doubles (the plot mapping floors at
     * 1e-300). */
    lo = CLAMP(lo, -300.0, 299.0);
    hi = CLAMP(hi, lo + 1e-3, 300.0);
  }
  self->range_valid = TRUE;
  self->range_lo = self->log_y ? pow(10, lo) : lo;
  self->range_hi = self->log_y ? pow(10, hi) : hi;
}

static int
log_ticks(double lo, double hi, int max_ticks, double *t)
{
  int n = conform_ticks_log(lo, hi, max_ticks, t);
  if (n >= 2)
    return n;
  /* Less than two decades visible: 1-2-5 steps, else plain linear. */
  n = 0;
  for (int k = (int)floor(log10(lo)); k <= (int)ceil(log10(hi)) && n < max_ticks; k++) {
    const double m[3] = {1, 2, 5};
    for (int i = 0; i < 3 && n < max_ticks; i++) {
      double v = m[i] * pow(10, k);
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
        t[n++] = v;
    }
  }
  if (n >= 2)
    return n;
  return conform_ticks_linear(lo, hi, MIN(max_ticks, 4), t);
}

static void
format_y_tick(double v, gboolean log_y, char *buf, gsize len)
{
  static const char *const sup[10] = {"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"};
  if (log_y && v > 0) {
    double k = log10(v);
    if (fabs(k - round(k)) < 1e-9 && fabs(k) >= 3) {
      int ki = (int)round(k);
      char digits[16];
      g_snprintf(digits, sizeof digits, "%d", ABS(ki));
      GString *s = g_string_new("10");
      if (ki < 0)
        g_string_append(s, "⁻");
      for (const char *p = digits; *p; p++)
        g_string_append(s, sup[*p - '0']);
      g_strlcpy(buf, s->str, len);
      g_string_free(s, TRUE);
      return;
    }
    g_snprintf(buf, len, "%g", v);
    return;
  }
  conform_format_tick(v, buf, len);
}

static void
format_x_tick(double v, char *buf, gsize len)
{
  double a = fabs(v);
  if (a >= 1e6)
    g_snprintf(buf, len, "%gM", v / 1e6);
  else if (a >= 1e4)
    g_snprintf(buf, len, "%gk", v / 1e3);
  else
    g_snprintf(buf, len, "%g", v);
}

static void
format_step(double v, char *buf, gsize len)
{
  if (fabs(v) < 1e15 && v == floor(v))
    g_snprintf(buf, len, "%.0f", v);
  else
    g_snprintf(buf, len, "%.6g", v);
}

/* ---- text helpers ------------------------------------------------------- */


/* ---- layout ------------------------------------------------------------- */

#define ROW 15.0

typedef struct {
  ConformPlotArea a;
  double xt[MAX_TICKS], yt[MAX_TICKS];
  int nxt, nyt;
  double title_x, title_y;
  double *legend_x, *legend_y; /* per series */
  int width, height;
} CurvesLayout;

static void
layout_clear(CurvesLayout *L)
{
  g_clear_pointer(&L->legend_x, g_free);
  g_clear_pointer(&L->legend_y, g_free);
}

static gboolean
has_data(ConformCurves *self)
{
  for (guint i = 0; i < self->series->len; i++)
    if (((CurveSeries *)g_ptr_array_index(self->series, i))->n_points > 0)
      return TRUE;
  return FALSE;
}

static gboolean
compute_layout(ConformCurves *self, cairo_t *cr, int width, int height, CurvesLayout *L)
{
  memset(L, 0, sizeof *L);
  L->width = width;
  L->height = height;
  if (!has_data(self))
    return FALSE;
  update_range(self);

  double xmin = INFINITY, xmax = -INFINITY;
  for (guint i = 0; i < self->series->len; i++) {
    CurveSeries *s = g_ptr_array_index(self->series, i);
    if (s->n_points > 0) {
      xmin = MIN(xmin, s->xmin);
      xmax = MAX(xmax, s->xmax);
    }
  }
  if (!(xmax > xmin)) {
    xmin -= 0.5;
    xmax += 0.5;
  }

  L->nyt = self->log_y ? log_ticks(self->range_lo, self->range_hi, 7, L->yt)
                       : conform_ticks_linear(self->range_lo, self->range_hi, 6, L->yt);

  conform_cairo_font(cr, FONT_SIZE, FALSE);
  char buf[64];
  double tick_w = 0;
  for (int i = 0; i < L->nyt; i++) {
    format_y_tick(L->yt[i], self->log_y, buf, sizeof buf);
    tick_w = MAX(tick_w, conform_cairo_text_width(cr, buf));
  }
  double left = tick_w + 12, right = 16;

  /* Title at the left of the first row; legend entries right-aligned when
   * they fit beside it, else flowing onto the following rows. */
  double title_w = 0;
  if (self->title && *self->title) {
    conform_cairo_font(cr, FONT_SIZE + 1, TRUE);
    title_w = conform_cairo_text_width(cr, self->title) + 18;
    conform_cairo_font(cr, FONT_SIZE, FALSE);
  }
  int ns = (int)self->series->len;
  L->legend_x = g_new0(double, MAX(ns, 1));
  L->legend_y = g_new0(double, MAX(ns, 1));
  double total = 0;
  for (int i = 0; i < ns; i++) {
    CurveSeries *s = g_ptr_array_index(self->series, i);
    total += 22 + conform_cairo_text_width(cr, s->label) + (i > 0 ? 14 : 0);
  }
  double first = 6 + 11;
  int rows = (title_w > 0 || ns > 0) ? 1 : 0;
  if (left + title_w + total <= width - right) {
    double x = width - right - total;
    for (int i = 0; i < ns; i++) {
      CurveSeries *s = g_ptr_array_index(self->series, i);
      L->legend_x[i] = x;
      L->legend_y[i] = first;
      x += 22 + conform_cairo_text_width(cr, s->label) + 14;
    }
  } else {
    double x = left + title_w, y = first;
    for (int i = 0; i < ns; i++) {
      CurveSeries *s = g_ptr_array_index(self->series, i);
      double ew = 22 + conform_cairo_text_width(cr, s->label);
      if (x > left && x + ew > width - right) {
        x = left;
        y += ROW;
        rows++;
      }
      L->legend_x[i] = x;
      L->legend_y[i] = y;
      x += ew + 14;
    }
  }
  L->title_x = left;
  L->title_y = first;
  double top = 6 + rows * ROW + 8;
  double bottom = self->x_label && *self->x_label ? 34 : 22;

  conform_plot_area_init(&L->a, width, height, left, right, top, bottom);
  L->a.xmin = xmin;
  L->a.xmax = xmax;
  L->a.ylog = self->log_y;
  L->a.ymin = self->range_lo;
  L->a.ymax = self->range_hi;
  int max_xt = CLAMP((int)(L->a.w / 60), 3, 8);
  L->nxt = conform_ticks_linear(xmin, xmax, max_xt, L->xt);
  return TRUE;
}

/* ---- drawing ------------------------------------------------------------ */

static double
py_clamped(const ConformPlotArea *a, double y)
{
  if (a->ylog && !(y > 0))
    return a->y0 + a->h + 50;
  return CLAMP(conform_plot_y(a, y), a->y0 - 50, a->y0 + a->h + 50);
}

static gboolean
y_ok(const ConformCurves *self, double y)
{
  return isfinite(y) && (!self->log_y || y > 0);
}

/* Debiased EMA with weight s^c for a bucket of c points; non-finite (or,
 * with log y, non-positive) means leave a gap and do not enter the average. */
static void
smooth_series(const ConformCurves *self, const CurveSeries *s, double *out)
{
  double num = 0, den = 0, sm = self->smoothing;
  for (int i = 0; i < s->nb; i++) {
    double y = bucket_y(&s->b[i]);
    if (!y_ok(self, y)) {
      out[i] = NAN;
      continue;
    }
    double w = s->b[i].n == 1 ? sm : pow(sm, s->b[i].n);
    num = num * w + (1 - w) * y;
    den = den * w + (1 - w);
    out[i] = den > 0 ? num / den : y;
  }
}

/* Points of one pixel column, reduced to first/min/max/last (the line looks
 * the same at pixel resolution, and the path has at most 4 vertices per
 * column however many buckets fall into it). */
typedef struct {
  cairo_t *cr;
  long col;
  double x, first, last, lo, hi;
  gboolean have, pen;
} Column;

static void
column_flush(Column *c)
{
  if (!c->have)
    return;
  if (c->pen)
    cairo_line_to(c->cr, c->x, c->first);
  else
    cairo_move_to(c->cr, c->x, c->first);
  if (c->lo < c->first)
    cairo_line_to(c->cr, c->x, c->lo);
  if (c->hi > c->lo)
    cairo_line_to(c->cr, c->x, c->hi);
  cairo_line_to(c->cr, c->x, c->last);
  c->pen = TRUE;
  c->have = FALSE;
}

static void
column_add(Column *c, double px, double py)
{
  long col = lround(floor(px));
  if (c->have && col != c->col)
    column_flush(c);
  if (!c->have) {
    c->have = TRUE;
    c->col = col;
    c->x = px;
    c->first = c->lo = c->hi = py;
  }
  c->lo = MIN(c->lo, py);
  c->hi = MAX(c->hi, py);
  c->last = py;
}

static void
stroke_line(ConformCurves *self, cairo_t *cr, const ConformPlotArea *a, const CurveSeries *s, const double *ys)
{
  Column c = {cr, 0, 0, 0, 0, 0, 0, FALSE, FALSE};
  for (int i = 0; i < s->nb; i++) {
    double y = ys ? ys[i] : bucket_y(&s->b[i]);
    if (!y_ok(self, y)) {
      column_flush(&c);
      c.pen = FALSE;
      continue;
    }
    column_add(&c, conform_plot_x(a, bucket_x(&s->b[i])), py_clamped(a, y));
  }
  column_flush(&c);
  cairo_stroke(cr);
}

/* Min-max band over runs of buckets with values, one top and one bottom
 * vertex per pixel column. */
static void
fill_band(cairo_t *cr, const ConformPlotArea *a, const CurveSeries *s)
{
  int n_cols = (int)ceil(a->w) + 2;
  double *top = g_new(double, n_cols), *bot = g_new(double, n_cols), *xs = g_new(double, n_cols);
  int i = 0;
  while (i < s->nb) {
    while (i < s->nb && s->b[i].ny == 0)
      i++;
    int j = i;
    while (j < s->nb && s->b[j].ny > 0)
      j++;
    /* Columns of this run, in order. */
    int nc = 0;
    long last_col = LONG_MIN;
    for (int k = i; k < j; k++) {
      double px = conform_plot_x(a, bucket_x(&s->b[k]));
      double yt = py_clamped(a, s->b[k].ymax), yb = py_clamped(a, s->b[k].ymin);
      long col = lround(floor(px));
      if (col != last_col && nc < n_cols) {
        xs[nc] = px;
        top[nc] = yt;
        bot[nc] = yb;
        nc++;
        last_col = col;
      } else {
        top[nc - 1] = MIN(top[nc - 1], yt);
        bot[nc - 1] = MAX(bot[nc - 1], yb);
      }
    }
    if (nc > 0) {
      cairo_move_to(cr, xs[0], top[0]);
      for (int k = 1; k < nc; k++)
        cairo_line_to(cr, xs[k], top[k]);
      for (int k = nc - 1; k >= 0; k--)
        cairo_line_to(cr, xs[k], bot[k]);
      cairo_close_path(cr);
    }
    i = j;
  }
  cairo_fill(cr);
  g_free(top);
  g_free(bot);
  g_free(xs);
}

static void
draw_empty(ConformCurves *self, cairo_t *cr, int width, int height, const GdkRGBA *fg)
{
  const char *hint = "No training yet";
  conform_cairo_set_rgba(cr, fg, 0.2);
  cairo_set_line_width(cr, 1);
  cairo_set_dash(cr, (double[]){4, 4}, 2, 0);
  conform_cairo_rounded_rect(cr, 8.5, 8.5, MAX(width - 17, 1), MAX(height - 17, 1), 6);
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
  if (self->title && *self->title) {
    conform_cairo_font(cr, FONT_SIZE + 1, TRUE);
    conform_cairo_set_rgba(cr, fg, 0.55);
    cairo_move_to(cr, 18, 26);
    cairo_show_text(cr, self->title);
  }
  conform_cairo_font(cr, 12, FALSE);
  cairo_text_extents_t e;
  cairo_text_extents(cr, hint, &e);
  conform_cairo_set_rgba(cr, fg, 0.55);
  cairo_move_to(cr, width / 2.0 - e.width / 2 - e.x_bearing, height / 2.0 - e.height / 2 - e.y_bearing);
  cairo_show_text(cr, hint);
}

static void
draw_axes(ConformCurves *self, cairo_t *cr, const CurvesLayout *L, const GdkRGBA *fg)
{
  const ConformPlotArea *a = &L->a;
  char buf[64];
  cairo_text_extents_t e;
  cairo_set_line_width(cr, 1);
  conform_cairo_set_rgba(cr, fg, 0.10);
  for (int i = 0; i < L->nxt; i++) {
    double px = round(conform_plot_x(a, L->xt[i])) + 0.5;
    cairo_move_to(cr, px, a->y0);
    cairo_line_to(cr, px, a->y0 + a->h);
  }
  for (int i = 0; i < L->nyt; i++) {
    double py = round(conform_plot_y(a, L->yt[i])) + 0.5;
    cairo_move_to(cr, a->x0, py);
    cairo_line_to(cr, a->x0 + a->w, py);
  }
  cairo_stroke(cr);
  if (a->ylog && a->ymax / a->ymin < 1e6) {
    /* Minor ticks 2..9 x 10^k on both sides. */
    conform_cairo_set_rgba(cr, fg, 0.45);
    for (int k = (int)floor(log10(a->ymin)); k <= (int)ceil(log10(a->ymax)); k++)
      for (int m = 2; m <= 9; m++) {
        double v = m * pow(10, k);
        if (v <= a->ymin || v >= a->ymax)
          continue;
        double py = round(conform_plot_y(a, v)) + 0.5;
        cairo_move_to(cr, a->x0, py);
        cairo_line_to(cr, a->x0 + 3, py);
        cairo_move_to(cr, a->x0 + a->w, py);
        cairo_line_to(cr, a->x0 + a->w - 3, py);
      }
    cairo_stroke(cr);
  }

  conform_cairo_font(cr, FONT_SIZE, FALSE);
  conform_cairo_set_rgba(cr, fg, 0.85);
  double last_r = -INFINITY;
  for (int i = 0; i < L->nxt; i++) {
    format_x_tick(L->xt[i], buf, sizeof buf);
    double tw = conform_cairo_text_width(cr, buf);
    double x = conform_plot_x(a, L->xt[i]) - tw / 2;
    if (x < last_r)
      continue;
    cairo_move_to(cr, x, a->y0 + a->h + 13);
    cairo_show_text(cr, buf);
    last_r = x + tw + 6;
  }
  for (int i = 0; i < L->nyt; i++) {
    format_y_tick(L->yt[i], self->log_y, buf, sizeof buf);
    cairo_text_extents(cr, buf, &e);
    cairo_move_to(cr, a->x0 - e.x_advance - 5, conform_plot_y(a, L->yt[i]) + 4);
    cairo_show_text(cr, buf);
  }
  if (self->x_label && *self->x_label) {
    cairo_text_extents(cr, self->x_label, &e);
    cairo_move_to(cr, a->x0 + a->w / 2 - e.x_advance / 2, a->y0 + a->h + 28);
    cairo_show_text(cr, self->x_label);
  }
}

static void
draw_frame(cairo_t *cr, const ConformPlotArea *a, const GdkRGBA *fg)
{
  cairo_set_line_width(cr, 1);
  conform_cairo_set_rgba(cr, fg, 0.6);
  cairo_rectangle(cr, round(a->x0) + 0.5, round(a->y0) + 0.5, round(a->w), round(a->h));
  cairo_stroke(cr);
}

static void
draw_legend(ConformCurves *self, cairo_t *cr, const CurvesLayout *L, const GdkRGBA *fg)
{
  if (self->title && *self->title) {
    conform_cairo_font(cr, FONT_SIZE + 1, TRUE);
    conform_cairo_set_rgba(cr, fg, 0.9);
    cairo_move_to(cr, L->title_x, L->title_y);
    cairo_show_text(cr, self->title);
  }
  conform_cairo_font(cr, FONT_SIZE, FALSE);
  for (guint i = 0; i < self->series->len; i++) {
    CurveSeries *s = g_ptr_array_index(self->series, i);
    GdkRGBA c;
    conform_palette_series(s->color, &c);
    double x = L->legend_x[i], y = L->legend_y[i];
    conform_cairo_set_rgba(cr, &c, 1.0);
    cairo_set_line_width(cr, 2.5);
    cairo_move_to(cr, x, y - 4);
    cairo_line_to(cr, x + 16, y - 4);
    cairo_stroke(cr);
    conform_cairo_set_rgba(cr, fg, 0.9);
    cairo_move_to(cr, x + 22, y);
    cairo_show_text(cr, s->label);
  }
}

/* Readout lines: the step of the nearest point, then one line per series. */
static GPtrArray *
readout_lines(ConformCurves *self)
{
  if (!isfinite(self->hover_x) || !has_data(self))
    return NULL;
  GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(lines, NULL); /* header, filled below */
  const char *xl = self->x_label && *self->x_label ? self->x_label : "x";
  char *header = NULL;
  const Bucket *first = NULL;
  for (guint i = 0; i < self->series->len; i++) {
    CurveSeries *s = g_ptr_array_index(self->series, i);
    int k = series_nearest(s, self->hover_x);
    if (k < 0) {
      g_ptr_array_add(lines, g_strdup_printf("%s: –", s->label));
      continue;
    }
    const Bucket *b = &s->b[k];
    char x0[32], x1[32];
    format_step(b->x0, x0, sizeof x0);
    format_step(b->x1, x1, sizeof x1);
    if (!first) {
      /* The header names the first series' point (or the steps its
       * bucket summarises). */
      first = b;
      if (b->n == 1)
        header = g_strdup_printf("%s %s", xl, x0);
      else
        header = g_strdup_printf("%s %s–%s (mean of %u)", xl, x0, x1, b->n);
      g_ptr_array_add(lines, g_strdup_printf("%s: %.4g", s->label, bucket_y(b)));
    } else if (b->x0 == first->x0 && b->x1 == first->x1) {
      g_ptr_array_add(lines, g_strdup_printf("%s: %.4g", s->label, bucket_y(b)));
    } else if (b->n == 1) {
      /* Another series sampled at other steps: say where its value is. */
      g_ptr_array_add(lines, g_strdup_printf("%s: %.4g (%s %s)", s->label, bucket_y(b), xl, x0));
    } else {
      g_ptr_array_add(lines, g_strdup_printf("%s: %.4g (%s %s–%s)", s->label, bucket_y(b), xl, x0, x1));
    }
  }
  if (!header) {
    char xs[32];
    format_step(self->hover_x, xs, sizeof xs);
    header = g_strdup_printf("%s %s", xl, xs);
  }
  lines->pdata[0] = header;
  return lines;
}

static void
draw_hover(ConformCurves *self, cairo_t *cr, const CurvesLayout *L, const GdkRGBA *fg, gboolean dark)
{
  g_autoptr(GPtrArray) lines = readout_lines(self);
  if (!lines)
    return;
  const ConformPlotArea *a = &L->a;
  double hx = CLAMP(conform_plot_x(a, self->hover_x), a->x0, a->x0 + a->w);
  double px = round(hx) + 0.5;
  conform_cairo_set_rgba(cr, fg, 0.55);
  cairo_set_line_width(cr, 1);
  cairo_move_to(cr, px, a->y0);
  cairo_line_to(cr, px, a->y0 + a->h);
  cairo_stroke(cr);

  /* Dots on the nearest points. */
  for (guint i = 0; i < self->series->len; i++) {
    CurveSeries *s = g_ptr_array_index(self->series, i);
    int k = series_nearest(s, self->hover_x);
    if (k < 0)
      continue;
    double y = bucket_y(&s->b[k]);
    if (!y_ok(self, y))
      continue;
    GdkRGBA c;
    conform_palette_series(s->color, &c);
    double dx = conform_plot_x(a, bucket_x(&s->b[k])), dy = py_clamped(a, y);
    if (dy < a->y0 || dy > a->y0 + a->h)
      continue;
    cairo_arc(cr, dx, dy, 3.5, 0, 2 * G_PI);
    conform_cairo_set_rgba(cr, &c, 1.0);
    cairo_fill_preserve(cr);
    if (dark)
      cairo_set_source_rgb(cr, 0.14, 0.14, 0.14);
    else
      cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 1.2);
    cairo_stroke(cr);
  }

  conform_cairo_font(cr, FONT_SIZE, FALSE);
  double bw = 0;
  for (guint i = 0; i < lines->len; i++)
    bw = MAX(bw, conform_cairo_text_width(cr, g_ptr_array_index(lines, i)) + (i > 0 ? 14 : 0));
  bw += 12;
  double bh = lines->len * 14 + 8;
  /* Beside the guide, right if it fits in the plot, else left, else on the
   * roomier side kept inside the widget. */
  double bx = px + 10;
  if (bx + bw > a->x0 + a->w) {
    if (px - 10 - bw >= a->x0)
      bx = px - 10 - bw;
    else if (px - a->x0 > a->x0 + a->w - px)
      bx = a->x0 + 2;
    else
      bx = a->x0 + a->w - bw - 2;
  }
  bx = CLAMP(bx, 2, MAX(2, L->width - bw - 2));
  double by = a->y0 + 6;
  conform_cairo_rounded_rect(cr, round(bx) + 0.5, round(by) + 0.5, round(bw), round(bh), 4);
  if (dark)
    cairo_set_source_rgba(cr, 0.18, 0.18, 0.18, 0.94);
  else
    cairo_set_source_rgba(cr, 1, 1, 1, 0.94);
  cairo_fill_preserve(cr);
  conform_cairo_set_rgba(cr, fg, 0.3);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  for (guint i = 0; i < lines->len; i++) {
    double ty = by + 4 + 11 + i * 14;
    double tx = bx + 6;
    if (i > 0) {
      CurveSeries *s = g_ptr_array_index(self->series, i - 1);
      GdkRGBA c;
      conform_palette_series(s->color, &c);
      conform_cairo_set_rgba(cr, &c, 1.0);
      cairo_arc(cr, tx + 4, ty - 4, 3.5, 0, 2 * G_PI);
      cairo_fill(cr);
      tx += 14;
    }
    conform_cairo_set_rgba(cr, fg, i == 0 ? 0.7 : 0.95);
    cairo_move_to(cr, tx, ty);
    cairo_show_text(cr, g_ptr_array_index(lines, i));
  }
}

static void
draw_impl(ConformCurves *self, cairo_t *cr, int width, int height, gboolean hover, ConformPlotArea *area_out,
          gboolean *have_area)
{
  GdkRGBA fg;
  conform_palette_fg(GTK_WIDGET(self), &fg);
  gboolean dark = conform_palette_is_dark(GTK_WIDGET(self));
  cairo_save(cr);
  CurvesLayout L;
  if (!compute_layout(self, cr, width, height, &L)) {
    if (have_area)
      *have_area = FALSE;
    draw_empty(self, cr, width, height, &fg);
    cairo_restore(cr);
    return;
  }
  if (area_out)
    *area_out = L.a;
  if (have_area)
    *have_area = TRUE;
  draw_axes(self, cr, &L, &fg);

  cairo_save(cr);
  cairo_rectangle(cr, L.a.x0, L.a.y0, L.a.w, L.a.h);
  cairo_clip(cr);
  /* Bevel joins: as smooth as round ones at these widths, much cheaper to
   * stroke for paths with a vertex every pixel. */
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_BEVEL);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (guint i = 0; i < self->series->len; i++) {
    CurveSeries *s = g_ptr_array_index(self->series, i);
    if (s->nb == 0)
      continue;
    GdkRGBA c;
    conform_palette_series(s->color, &c);
    if (s->per_bucket > 1) {
      conform_cairo_set_rgba(cr, &c, 0.16);
      fill_band(cr, &L.a, s);
    }
    if (self->smoothing > 0) {
      double *sm = scratch(self, (gsize)s->nb);
      /* The raw values behind the smoothed line: the min-max band once
       * buckets merge points, a faint line before. */
      if (s->per_bucket == 1) {
        conform_cairo_set_rgba(cr, &c, 0.35);
        cairo_set_line_width(cr, 1.0);
        stroke_line(self, cr, &L.a, s, NULL);
      }
      smooth_series(self, s, sm);
      conform_cairo_set_rgba(cr, &c, 1.0);
      cairo_set_line_width(cr, 1.8);
      stroke_line(self, cr, &L.a, s, sm);
    } else {
      conform_cairo_set_rgba(cr, &c, 1.0);
      cairo_set_line_width(cr, 1.5);
      stroke_line(self, cr, &L.a, s, NULL);
    }
  }
  cairo_restore(cr);

  draw_frame(cr, &L.a, &fg);
  draw_legend(self, cr, &L, &fg);
  if (!self->range_valid) {
    const char *msg = self->log_y ? "no positive values to show on a log axis" : "no finite values";
    conform_cairo_font(cr, FONT_SIZE, FALSE);
    cairo_text_extents_t e;
    cairo_text_extents(cr, msg, &e);
    conform_cairo_set_rgba(cr, &fg, 0.55);
    cairo_move_to(cr, L.a.x0 + L.a.w / 2 - e.x_advance / 2, L.a.y0 + L.a.h / 2);
    cairo_show_text(cr, msg);
  }
  if (hover)
    draw_hover(self, cr, &L, &fg, dark);
  layout_clear(&L);
  cairo_restore(cr);
}

/* ---- GtkWidget ---------------------------------------------------------- */

static void
motion_cb(G_GNUC_UNUSED GtkEventControllerMotion *controller, double x, double y, gpointer user_data)
{
  ConformCurves *self = CONFORM_CURVES(user_data);
  const ConformPlotArea *a = &self->last_area;
  if (self->have_area && x >= a->x0 && x <= a->x0 + a->w && y >= a->y0 && y <= a->y0 + a->h)
    conform_curves_set_hover_x(self, conform_plot_inv_x(a, x));
  else
    conform_curves_set_hover_x(self, NAN);
}

static void
leave_cb(G_GNUC_UNUSED GtkEventControllerMotion *controller, gpointer user_data)
{
  conform_curves_set_hover_x(CONFORM_CURVES(user_data), NAN);
}

static void
conform_curves_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  ConformCurves *self = CONFORM_CURVES(widget);
  int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
  if (w <= 0 || h <= 0)
    return;
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
  draw_impl(self, cr, w, h, TRUE, &self->last_area, &self->have_area);
  cairo_destroy(cr);
}

static void
conform_curves_dispose(GObject *object)
{
  ConformCurves *self = CONFORM_CURVES(object);
  self->motion = NULL; /* owned by the widget */
  G_OBJECT_CLASS(conform_curves_parent_class)->dispose(object);
}

static void
conform_curves_finalize(GObject *object)
{
  ConformCurves *self = CONFORM_CURVES(object);
  g_ptr_array_unref(self->series);
  g_free(self->title);
  g_free(self->x_label);
  g_free(self->scratch);
  G_OBJECT_CLASS(conform_curves_parent_class)->finalize(object);
}

static void
conform_curves_class_init(ConformCurvesClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->dispose = conform_curves_dispose;
  object_class->finalize = conform_curves_finalize;
  widget_class->snapshot = conform_curves_snapshot;
  gtk_widget_class_set_css_name(widget_class, "conform-curves");
  gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
conform_curves_init(ConformCurves *self)
{
  self->series = g_ptr_array_new_with_free_func(curve_series_free);
  self->hover_x = NAN;
  self->range_dirty = TRUE;
  self->x_label = g_strdup("step");
  gtk_widget_set_size_request(GTK_WIDGET(self), 240, 160);
  gtk_widget_set_hexpand(GTK_WIDGET(self), TRUE);
  gtk_widget_set_vexpand(GTK_WIDGET(self), TRUE);
  self->motion = gtk_event_controller_motion_new();
  g_signal_connect(self->motion, "motion", G_CALLBACK(motion_cb), self);
  g_signal_connect(self->motion, "leave", G_CALLBACK(leave_cb), self);
  gtk_widget_add_controller(GTK_WIDGET(self), self->motion);
  gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, "Training curves", -1);
}

/* ---- public API --------------------------------------------------------- */

GtkWidget *
conform_curves_new(void)
{
  return g_object_new(CONFORM_TYPE_CURVES, NULL);
}

int
conform_curves_add_series(ConformCurves *self, const char *label, int color_index)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), -1);
  CurveSeries *s = g_new0(CurveSeries, 1);
  s->label = g_strdup(label ? label : "");
  int id = (int)self->series->len;
  s->color = color_index >= 0 ? color_index : id;
  curve_series_reset(s);
  g_ptr_array_add(self->series, s);
  data_changed(self);
  return id;
}

int
conform_curves_get_n_series(ConformCurves *self)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), 0);
  return (int)self->series->len;
}

void
conform_curves_append(ConformCurves *self, int series, double x, double y)
{
  g_return_if_fail(CONFORM_IS_CURVES(self));
  CurveSeries *s = get_series(self, series);
  g_return_if_fail(s != NULL);
  series_append(s, x, y);
  data_changed(self);
}

void
conform_curves_append_many(ConformCurves *self, int series, const double *x, const double *y, int n)
{
  g_return_if_fail(CONFORM_IS_CURVES(self));
  CurveSeries *s = get_series(self, series);
  g_return_if_fail(s != NULL);
  g_return_if_fail(n >= 0);
  g_return_if_fail(n == 0 || (x != NULL && y != NULL));
  for (int i = 0; i < n; i++)
    series_append(s, x[i], y[i]);
  if (n > 0)
    data_changed(self);
}

void
conform_curves_clear(ConformCurves *self)
{
  g_return_if_fail(CONFORM_IS_CURVES(self));
  for (guint i = 0; i < self->series->len; i++)
    curve_series_reset(g_ptr_array_index(self->series, i));
  self->hover_x = NAN;
  data_changed(self);
}

void
conform_curves_set_log_y(ConformCurves *self, gboolean log_y)
{
  g_return_if_fail(CONFORM_IS_CURVES(self));
  log_y = !!log_y;
  if (self->log_y == log_y)
    return;
  self->log_y = log_y;
  data_changed(self);
}

void
conform_curves_set_smoothing(ConformCurves *self, double s)
{
  g_return_if_fail(CONFORM_IS_CURVES(self));
  if (!isfinite(s))
    s = 0;
  s = CLAMP(s, 0.0, 0.999);
  if (s == self->smoothing)
    return;
  self->smoothing = s;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_curves_set_title(ConformCurves *self, const char *title)
{
  g_return_if_fail(CONFORM_IS_CURVES(self));
  g_free(self->title);
  self->title = g_strdup(title);
  gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                 title && *title ? title : "Training curves", -1);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_curves_set_x_label(ConformCurves *self, const char *label)
{
  g_return_if_fail(CONFORM_IS_CURVES(self));
  g_free(self->x_label);
  self->x_label = g_strdup(label);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

gboolean
conform_curves_get_value_at(ConformCurves *self, int series, double x, double *x_out, double *y_out)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), FALSE);
  CurveSeries *s = get_series(self, series);
  g_return_val_if_fail(s != NULL, FALSE);
  int k = series_nearest(s, x);
  if (k < 0)
    return FALSE;
  if (x_out)
    *x_out = bucket_x(&s->b[k]);
  if (y_out)
    *y_out = bucket_y(&s->b[k]);
  return TRUE;
}

int
conform_curves_get_n_buckets(ConformCurves *self, int series)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), 0);
  CurveSeries *s = get_series(self, series);
  g_return_val_if_fail(s != NULL, 0);
  return s->nb;
}

gint64
conform_curves_get_n_points(ConformCurves *self, int series)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), 0);
  CurveSeries *s = get_series(self, series);
  g_return_val_if_fail(s != NULL, 0);
  return s->n_points;
}

gboolean
conform_curves_get_y_extent(ConformCurves *self, int series, double *ymin, double *ymax)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), FALSE);
  CurveSeries *s = get_series(self, series);
  g_return_val_if_fail(s != NULL, FALSE);
  /* From the buckets themselves, so a test sees what decimation kept. */
  double mn = INFINITY, mx = -INFINITY;
  for (int i = 0; i < s->nb; i++)
    if (s->b[i].ny > 0) {
      mn = MIN(mn, s->b[i].ymin);
      mx = MAX(mx, s->b[i].ymax);
    }
  if (!(mn <= mx))
    return FALSE;
  if (ymin)
    *ymin = mn;
  if (ymax)
    *ymax = mx;
  return TRUE;
}

void
conform_curves_set_hover_x(ConformCurves *self, double x)
{
  g_return_if_fail(CONFORM_IS_CURVES(self));
  if (!isfinite(x))
    x = NAN;
  if (x == self->hover_x || (isnan(x) && isnan(self->hover_x)))
    return;
  self->hover_x = x;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

double
conform_curves_get_hover_x(ConformCurves *self)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), NAN);
  return self->hover_x;
}

char *
conform_curves_get_readout(ConformCurves *self)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), NULL);
  g_autoptr(GPtrArray) lines = readout_lines(self);
  if (!lines)
    return NULL;
  g_ptr_array_add(lines, NULL);
  return g_strjoinv("\n", (char **)lines->pdata);
}

gboolean
conform_curves_get_plot_area(ConformCurves *self, int width, int height, ConformPlotArea *out)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), FALSE);
  g_return_val_if_fail(out != NULL, FALSE);
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t *cr = cairo_create(surf);
  CurvesLayout L;
  gboolean ok = compute_layout(self, cr, width, height, &L);
  if (ok)
    *out = L.a;
  layout_clear(&L);
  cairo_destroy(cr);
  cairo_surface_destroy(surf);
  return ok;
}

void
conform_curves_draw(ConformCurves *self, cairo_t *cr, int width, int height)
{
  g_return_if_fail(CONFORM_IS_CURVES(self));
  g_return_if_fail(cr != NULL);
  draw_impl(self, cr, width, height, TRUE, NULL, NULL);
}

static void
export_draw_func(gpointer self, cairo_t *cr, int width, int height)
{
  draw_impl(CONFORM_CURVES(self), cr, width, height, FALSE, NULL, NULL);
}

gboolean
conform_curves_export_png(ConformCurves *self, const char *path, int width, int height, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_CURVES(self), FALSE);
  g_return_val_if_fail(path != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  return conform_export_png(export_draw_func, self, width, height, conform_palette_is_dark(GTK_WIDGET(self)), path,
                            error);
}
