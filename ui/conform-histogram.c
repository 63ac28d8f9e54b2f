#define G_LOG_DOMAIN "conform"

#include "conform-histogram.h"

#include <math.h>
#include <string.h>

/* Every positive finite value is binned once on a fixed lattice of
 * LATTICE bins per decade (lattice bin k covers [10^(k/8), 10^((k+1)/8))).
 * The displayed bins are unions of lattice bins, so changing the shared
 * range (another series, a new tolerance) re-bins in O(lattice), never
 * O(samples). */
#define LATTICE 8
#define MAX_SERIES CONFORM_PALETTE_SIZE
#define MAX_DECADES 40 /* below max - 40 decades everything goes to the left bar */
#define FONT_SIZE 10.0

typedef struct {
  char *label;
  double *values; /* copy, for recounting when the tolerance changes */
  long n;
  long n_zero; /* v <= 0 */
  long n_nan, n_inf;
  long n_pos; /* finite, > 0 */
  int kmin, kmax; /* lattice range of the positive values */
  long *lattice;  /* kmax - kmin + 1 counts */
  long n_satisfied;
  long *bins; /* n_bins counts on the shared range */
  long n_low; /* n_zero + positive values below the shared range */
} HistSeries;

struct _ConformHistogram {
  GtkWidget parent_instance;

  HistSeries *series[MAX_SERIES];
  double tol; /* NAN: none */
  double range_lo, range_hi; /* decades always on the axis (NAN: none) */
  int dmin, dmax; /* shared range [10^dmin, 10^dmax) */
  int bpd;        /* displayed bins per decade */
  int n_bins;
  char *x_title; /* NULL: ‖A x − b‖₂ */
};

G_DEFINE_FINAL_TYPE(ConformHistogram, conform_histogram, GTK_TYPE_WIDGET)

/* ---- binning ------------------------------------------------------------ */

static int
floor_div(int a, int b)
{
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

static int
lattice_index(double v)
{
  /* The epsilon puts exact decimal powers (1e-3, whose log10 rounds to -3)
   * into the bin they start, whatever the last bit of log10. */
  return (int)floor(LATTICE * log10(v) + 1e-9);
}

static void
hist_series_free(HistSeries *s)
{
  if (!s)
    return;
  g_free(s->label);
  g_free(s->values);
  g_free(s->lattice);
  g_free(s->bins);
  g_free(s);
}

static gboolean
has_tol(ConformHistogram *self)
{
  return isfinite(self->tol) && self->tol >= 0;
}

static void
count_satisfied(ConformHistogram *self, HistSeries *s)
{
  s->n_satisfied = 0;
  if (!has_tol(self))
    return;
  for (long i = 0; i < s->n; i++)
    if (s->values[i] <= self->tol) /* NaN compares false */
      s->n_satisfied++;
}

static long
total_samples(ConformHistogram *self)
{
  long t = 0;
  for (int i = 0; i < MAX_SERIES; i++)
    if (self->series[i])
      t += self->series[i]->n;
  return t;
}

/* Chooses the shared decade range and re-bins every series from its lattice. */
static void
rebin_all(ConformHistogram *self)
{
  int kmin = G_MAXINT, kmax = G_MININT;
  for (int i = 0; i < MAX_SERIES; i++) {
    HistSeries *s = self->series[i];
    if (s && s->n_pos > 0) {
      kmin = MIN(kmin, s->kmin);
      kmax = MAX(kmax, s->kmax);
    }
  }
  gboolean tol_on_axis = isfinite(self->tol) && self->tol > 0;
  int dmin, dmax;
  if (kmin <= kmax) {
    dmin = floor_div(kmin, LATTICE);
    dmax = floor_div(kmax, LATTICE) + 1; /* half-open: the maximum is inside */
    dmin = MAX(dmin, dmax - MAX_DECADES);
    if (tol_on_axis) {
      int dt = floor_div(lattice_index(self->tol), LATTICE);
      dmin = MIN(dmin, dt);
      dmax = MAX(dmax, dt + 1);
    }
  } else if (tol_on_axis) {
    int dt = floor_div(lattice_index(self->tol), LATTICE);
    dmin = dt - 2;
    dmax = dt + 1;
  } else {
    dmin = -3;
    dmax = 0;
  }
  if (isfinite(self->range_lo) && isfinite(self->range_hi)) {
    int rl = floor_div(lattice_index(self->range_lo), LATTICE);
    int rh = floor_div(lattice_index(self->range_hi), LATTICE) + 1;
    gboolean empty = kmin > kmax && !tol_on_axis;
    dmin = empty ? rl : MIN(dmin, rl);
    dmax = empty ? rh : MAX(dmax, rh);
  }
  /* Keep the edges normal doubles: subnormal values join the left bar,
   * values above 1e300 the last bin. */
  dmin = CLAMP(dmin, -300, 297);
  dmax = CLAMP(dmax, dmin + 1, 300);
  /* At least three decades, grown downwards first (small violations are
   * the interesting end). */
  for (gboolean down = TRUE; dmax - dmin < 3; down = !down) {
    if ((down && dmin > -300) || dmax >= 300)
      dmin--;
    else
      dmax++;
  }
  int span = dmax - dmin;
  self->bpd = span <= 12 ? 8 : span <= 24 ? 4 : span <= 48 ? 2 : 1;
  self->dmin = dmin;
  self->dmax = dmax;
  self->n_bins = span * self->bpd;

  int step = LATTICE / self->bpd, klo = dmin * LATTICE;
  for (int i = 0; i < MAX_SERIES; i++) {
    HistSeries *s = self->series[i];
    if (!s)
      continue;
    s->bins = g_renew(long, s->bins, self->n_bins);
    memset(s->bins, 0, sizeof(long) * (gsize)self->n_bins);
    s->n_low = s->n_zero;
    if (s->n_pos == 0)
      continue;
    for (int k = s->kmin; k <= s->kmax; k++) {
      long c = s->lattice[k - s->kmin];
      if (c == 0)
        continue;
      if (k < klo) {
        s->n_low += c;
      } else {
        int j = (k - klo) / step;
        s->bins[MIN(j, self->n_bins - 1)] += c;
      }
    }
  }
}

static void format_tol(double v, char *buf, gsize len);

static void
update_accessible(ConformHistogram *self)
{
  GString *str = g_string_new("Histogram of constraint violations");
  char tb[32];
  if (has_tol(self)) {
    format_tol(self->tol, tb, sizeof tb);
    g_string_append_printf(str, ", tolerance %s", tb);
  }
  for (int i = 0; i < MAX_SERIES; i++) {
    HistSeries *s = self->series[i];
    if (!s)
      continue;
    g_string_append_printf(str, "; %s: %ld samples, %ld within tolerance, %ld exactly zero", s->label, s->n,
                           s->n_satisfied, s->n_zero);
  }
  gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, str->str, -1);
  g_string_free(str, TRUE);
}

static void
changed(ConformHistogram *self)
{
  rebin_all(self);
  update_accessible(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

/* ---- text helpers ------------------------------------------------------- */

static void
format_decade(int k, char *buf, gsize len)
{
  static const char *const sup[10] = {"⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"};
  char digits[16];
  g_snprintf(digits, sizeof digits, "%d", ABS(k));
  GString *s = g_string_new("10");
  if (k < 0)
    g_string_append(s, "⁻");
  for (const char *p = digits; *p; p++)
    g_string_append(s, sup[*p - '0']);
  g_strlcpy(buf, s->str, len);
  g_string_free(s, TRUE);
}

/* 1e-4, 2.5e-7, 0.5: short and exact enough for a tolerance. */
static void
format_tol(double v, char *buf, gsize len)
{
  if (v == 0) {
    g_strlcpy(buf, "0", len);
    return;
  }
  if (v >= 1e-2 && v < 1e4) {
    g_snprintf(buf, len, "%g", v);
    return;
  }
  int e = (int)floor(log10(v));
  double m = v / pow(10, e);
  if (m >= 9.9995) {
    m /= 10;
    e++;
  }
  char mb[16];
  g_snprintf(mb, sizeof mb, "%.3g", m);
  g_snprintf(buf, len, "%se%d", mb, e);
}

static void
format_percent(long k, long n, char *buf, gsize len)
{
  if (n <= 0 || k <= 0) {
    g_strlcpy(buf, "0%", len);
  } else if (k >= n) {
    g_strlcpy(buf, "100%", len);
  } else {
    /* Never round a partial count to 0% or 100%. */
    double p = CLAMP(100.0 * (double)k / (double)n, 0.1, 99.9);
    g_snprintf(buf, len, "%.1f%%", p);
  }
}

/* "none: 812/1000 within tol (81.2%), 600 exact, 2 NaN"; the compact form
 * for narrow widgets drops the words but keeps every count. */
static char *
legend_text(ConformHistogram *self, const HistSeries *s, gboolean compact)
{
  GString *str = g_string_new(s->label);
  if (has_tol(self)) {
    char pb[16];
    format_percent(s->n_satisfied, s->n, pb, sizeof pb);
    g_string_append_printf(str, compact ? ": %ld/%ld (%s)" : ": %ld/%ld within tol (%s)", s->n_satisfied, s->n, pb);
  } else {
    g_string_append_printf(str, compact ? ": %ld" : ": n = %ld", s->n);
  }
  if (s->n_zero > 0)
    g_string_append_printf(str, compact ? ", %ld =0" : ", %ld exact", s->n_zero);
  if (s->n_nan > 0)
    g_string_append_printf(str, ", %ld NaN", s->n_nan);
  if (s->n_inf > 0)
    g_string_append_printf(str, ", %ld Inf", s->n_inf);
  return g_string_free(str, FALSE);
}

static void
format_count_tick(double v, gboolean fraction, char *buf, gsize len)
{
  if (fraction)
    g_snprintf(buf, len, "%.3g", v);
  else if (v < 1e5)
    g_snprintf(buf, len, "%.0f", v);
  else
    g_snprintf(buf, len, "%.0fk", v / 1000);
}


/* ---- layout ------------------------------------------------------------- */

#define LEGEND_ROW 15.0
#define MAX_YTICKS 8

typedef struct {
  ConformPlotArea a; /* regular bins: log x, linear y */
  double low_x0, low_w; /* the left bar panel, same y0/h as a */
  gboolean fraction;
  double yticks[MAX_YTICKS];
  int n_yticks;
  int n_present;
  char *legend[MAX_SERIES];
  double legend_x[MAX_SERIES], legend_y[MAX_SERIES]; /* baseline of each entry */
} Layout;

static void
layout_clear(Layout *L)
{
  for (int i = 0; i < MAX_SERIES; i++)
    g_clear_pointer(&L->legend[i], g_free);
}

static gboolean
compute_layout(ConformHistogram *self, cairo_t *cr, int width, int height, Layout *L)
{
  memset(L, 0, sizeof *L);
  if (total_samples(self) == 0)
    return FALSE;

  /* Counts when every series has the same size, fractions otherwise. */
  long n_common = -1;
  L->fraction = FALSE;
  for (int i = 0; i < MAX_SERIES; i++) {
    HistSeries *s = self->series[i];
    if (!s || s->n == 0)
      continue;
    L->n_present++;
    if (n_common < 0)
      n_common = s->n;
    else if (s->n != n_common)
      L->fraction = TRUE;
  }
  double ymax = 0;
  for (int i = 0; i < MAX_SERIES; i++) {
    HistSeries *s = self->series[i];
    if (!s || s->n == 0)
      continue;
    double scale = L->fraction ? 1.0 / (double)s->n : 1.0;
    ymax = MAX(ymax, s->n_low * scale);
    for (int j = 0; j < self->n_bins; j++)
      ymax = MAX(ymax, s->bins[j] * scale);
  }
  if (ymax <= 0)
    ymax = L->fraction ? 1.0 : 1.0;
  ymax *= 1.08;
  double raw[MAX_YTICKS];
  int nt = conform_ticks_linear(0, ymax, 6, raw);
  L->n_yticks = 0;
  for (int i = 0; i < nt; i++)
    if (L->fraction || fabs(raw[i] - round(raw[i])) < 1e-9)
      L->yticks[L->n_yticks++] = raw[i];

  conform_cairo_font(cr, FONT_SIZE, FALSE);
  double tick_w = 0;
  char buf[64];
  for (int i = 0; i < L->n_yticks; i++) {
    format_count_tick(L->yticks[i], L->fraction, buf, sizeof buf);
    tick_w = MAX(tick_w, conform_cairo_text_width(cr, buf));
  }
  double left = 4 + 13 + tick_w + 6; /* rotated y title, tick labels */
  double right = 14;

  /* Legend entries flow left to right above the plot; in a narrow widget
   * they may use its full width and a compact wording. */
  double lx0 = left, lx1 = width - right;
  for (int i = 0; i < MAX_SERIES; i++)
    if (self->series[i]) {
      L->legend[i] = legend_text(self, self->series[i], FALSE);
      if (14 + conform_cairo_text_width(cr, L->legend[i]) > lx1 - lx0) {
        lx0 = 6;
        lx1 = width - 6;
      }
    }
  double lx = lx0, ly = 0;
  int rows = 1;
  for (int i = 0; i < MAX_SERIES; i++) {
    HistSeries *s = self->series[i];
    if (!s)
      continue;
    double ew = 14 + conform_cairo_text_width(cr, L->legend[i]);
    if (ew > lx1 - lx0) {
      g_free(L->legend[i]);
      L->legend[i] = legend_text(self, s, TRUE);
      ew = 14 + conform_cairo_text_width(cr, L->legend[i]);
    }
    if (lx > lx0 && lx + ew > lx1) {
      lx = lx0;
      ly += LEGEND_ROW;
      rows++;
    }
    L->legend_x[i] = lx;
    L->legend_y[i] = 6 + 10 + ly;
    lx += ew + 16;
  }
  double top = 6 + rows * LEGEND_ROW + 8;
  double bottom = 34;

  L->low_w = CLAMP(width * 0.06, 18, 34);
  double gap = 10;
  L->low_x0 = left;
  conform_plot_area_init(&L->a, width, height, left + L->low_w + gap, right, top, bottom);
  L->a.xlog = TRUE;
  L->a.xmin = pow(10, self->dmin);
  L->a.xmax = pow(10, self->dmax);
  L->a.ymin = 0;
  L->a.ymax = ymax;
  return TRUE;
}

/* ---- drawing ------------------------------------------------------------ */

static double
bin_px(const ConformHistogram *self, const ConformPlotArea *a, int j)
{
  return a->x0 + a->w * (double)j / (double)self->n_bins;
}

static void
draw_frame(cairo_t *cr, double x, double y, double w, double h, const GdkRGBA *fg)
{
  conform_cairo_set_rgba(cr, fg, 0.6);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, round(x) + 0.5, round(y) + 0.5, round(w), round(h));
  cairo_stroke(cr);
}

static void
draw_empty(cairo_t *cr, int width, int height, const GdkRGBA *fg)
{
  const char *hint = "No samples yet";
  conform_cairo_font(cr, 12, FALSE);
  cairo_text_extents_t e;
  cairo_text_extents(cr, hint, &e);
  conform_cairo_set_rgba(cr, fg, 0.2);
  cairo_set_line_width(cr, 1);
  cairo_set_dash(cr, (double[]){4, 4}, 2, 0);
  conform_cairo_rounded_rect(cr, 8.5, 8.5, MAX(width - 17, 1), MAX(height - 17, 1), 6);
  cairo_stroke(cr);
  cairo_set_dash(cr, NULL, 0, 0);
  conform_cairo_set_rgba(cr, fg, 0.55);
  cairo_move_to(cr, width / 2.0 - e.width / 2 - e.x_bearing, height / 2.0 - e.height / 2 - e.y_bearing);
  cairo_show_text(cr, hint);
}

static void
draw_grid(ConformHistogram *self, cairo_t *cr, const Layout *L, const GdkRGBA *fg)
{
  const ConformPlotArea *a = &L->a;
  cairo_set_line_width(cr, 1);
  conform_cairo_set_rgba(cr, fg, 0.10);
  for (int i = 0; i < L->n_yticks; i++) {
    double py = round(conform_plot_y(a, L->yticks[i])) + 0.5;
    cairo_move_to(cr, L->low_x0, py);
    cairo_line_to(cr, L->low_x0 + L->low_w, py);
    cairo_move_to(cr, a->x0, py);
    cairo_line_to(cr, a->x0 + a->w, py);
  }
  int span = self->dmax - self->dmin;
  for (int d = 1; d < span; d++) {
    double px = round(a->x0 + a->w * d / span) + 0.5;
    cairo_move_to(cr, px, a->y0);
    cairo_line_to(cr, px, a->y0 + a->h);
  }
  cairo_stroke(cr);
  /* Minor ticks 2..9 x 10^k along the bottom when decades are wide enough. */
  double per_decade = a->w / span;
  if (per_decade >= 28) {
    conform_cairo_set_rgba(cr, fg, 0.45);
    for (int d = 0; d < span; d++)
      for (int m = 2; m <= 9; m++) {
        double px = round(a->x0 + per_decade * (d + log10(m))) + 0.5;
        cairo_move_to(cr, px, a->y0 + a->h);
        cairo_line_to(cr, px, a->y0 + a->h - 3);
      }
    cairo_stroke(cr);
  }
}

static void
draw_series(ConformHistogram *self, cairo_t *cr, const Layout *L, gboolean outline)
{
  const ConformPlotArea *a = &L->a;
  double base = a->y0 + a->h;
  for (int i = 0; i < MAX_SERIES; i++) {
    HistSeries *s = self->series[i];
    if (!s || s->n == 0)
      continue;
    GdkRGBA c;
    conform_palette_series(i, &c);
    double scale = L->fraction ? 1.0 / (double)s->n : 1.0;
    cairo_move_to(cr, a->x0, base);
    for (int j = 0; j < self->n_bins; j++) {
      double py = conform_plot_y(a, s->bins[j] * scale);
      cairo_line_to(cr, bin_px(self, a, j), py);
      cairo_line_to(cr, bin_px(self, a, j + 1), py);
    }
    cairo_line_to(cr, a->x0 + a->w, base);
    if (outline) {
      conform_cairo_set_rgba(cr, &c, 1.0);
      cairo_set_line_width(cr, 1.5);
      cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
      cairo_stroke(cr);
    } else {
      cairo_close_path(cr);
      conform_cairo_set_rgba(cr, &c, 0.22);
      cairo_fill(cr);
    }
  }
}

/* The left bar: exact zeros and values below the lowest bin, one narrow
 * bar per series side by side. Returns its label. */
static const char *
draw_low_panel(ConformHistogram *self, cairo_t *cr, const Layout *L, char *buf, gsize len)
{
  const ConformPlotArea *a = &L->a;
  double inner = L->low_w - 4;
  double bw = inner / MAX(L->n_present, 1);
  int slot = 0;
  gboolean only_zeros = TRUE;
  for (int i = 0; i < MAX_SERIES; i++) {
    HistSeries *s = self->series[i];
    if (!s || s->n == 0)
      continue;
    if (s->n_low != s->n_zero)
      only_zeros = FALSE;
    double scale = L->fraction ? 1.0 / (double)s->n : 1.0;
    double x = L->low_x0 + 2 + slot * bw;
    slot++;
    if (s->n_low == 0)
      continue;
    double py = conform_plot_y(a, s->n_low * scale);
    double base = a->y0 + a->h;
    GdkRGBA c;
    conform_palette_series(i, &c);
    cairo_rectangle(cr, x + 0.5, py, MAX(bw - 1, 1), base - py);
    conform_cairo_set_rgba(cr, &c, 0.45);
    cairo_fill_preserve(cr);
    conform_cairo_set_rgba(cr, &c, 1.0);
    cairo_set_line_width(cr, 1.2);
    cairo_stroke(cr);
  }
  if (only_zeros) {
    g_strlcpy(buf, "= 0", len);
  } else {
    char d[32];
    format_decade(self->dmin, d, sizeof d);
    g_snprintf(buf, len, "≤%s", d);
  }
  return buf;
}

static void
draw_tolerance(ConformHistogram *self, cairo_t *cr, const Layout *L, const GdkRGBA *fg, gboolean dark)
{
  if (!(isfinite(self->tol) && self->tol > 0))
    return;
  const ConformPlotArea *a = &L->a;
  double px = round(conform_plot_x(a, self->tol)) + 0.5;
  cairo_save(cr);
  conform_cairo_set_rgba(cr, fg, 0.85);
  cairo_set_line_width(cr, 1.3);
  cairo_set_dash(cr, (double[]){5, 3}, 2, 0);
  cairo_move_to(cr, px, a->y0);
  cairo_line_to(cr, px, a->y0 + a->h);
  cairo_stroke(cr);
  cairo_restore(cr);

  char tb[32], label[48];
  format_tol(self->tol, tb, sizeof tb);
  g_snprintf(label, sizeof label, "tol %s", tb);
  conform_cairo_font(cr, FONT_SIZE, FALSE);
  double tw = conform_cairo_text_width(cr, label);
  double tx = px + 4;
  if (tx + tw + 2 > a->x0 + a->w)
    tx = px - 4 - tw;
  double ty = a->y0 + 13;
  if (dark)
    cairo_set_source_rgba(cr, 0.14, 0.14, 0.14, 0.8);
  else
    cairo_set_source_rgba(cr, 1, 1, 1, 0.8);
  conform_cairo_rounded_rect(cr, tx - 2, ty - 10, tw + 4, 13, 2);
  cairo_fill(cr);
  conform_cairo_set_rgba(cr, fg, 0.95);
  cairo_move_to(cr, tx, ty);
  cairo_show_text(cr, label);
}

static void
draw_labels(ConformHistogram *self, cairo_t *cr, const Layout *L, const GdkRGBA *fg, const char *low_label)
{
  const ConformPlotArea *a = &L->a;
  char buf[64];
  cairo_text_extents_t e;
  conform_cairo_font(cr, FONT_SIZE, FALSE);
  conform_cairo_set_rgba(cr, fg, 0.85);
  double label_y = a->y0 + a->h + 13;

  /* Left bar label, then decade labels that do not collide with it. */
  cairo_text_extents(cr, low_label, &e);
  double low_cx = L->low_x0 + L->low_w / 2;
  double low_l = low_cx - e.x_advance / 2, low_r = low_cx + e.x_advance / 2;
  if (low_l < 2) {
    low_r += 2 - low_l;
    low_l = 2;
  }
  cairo_move_to(cr, low_l, label_y);
  cairo_show_text(cr, low_label);

  int span = self->dmax - self->dmin;
  double per_decade = a->w / span;
  int every = 1;
  while (per_decade * every < 34)
    every++;
  double last_r = low_r + 4;
  for (int d = 0; d <= span; d++) {
    int k = self->dmin + d;
    if (k % every != 0)
      continue;
    format_decade(k, buf, sizeof buf);
    double tw = conform_cairo_text_width(cr, buf);
    double x = a->x0 + per_decade * d - tw / 2;
    if (x < last_r || x + tw > a->x0 + a->w + 14)
      continue;
    cairo_move_to(cr, x, label_y);
    cairo_show_text(cr, buf);
    last_r = x + tw + 4;
  }
  for (int i = 0; i < L->n_yticks; i++) {
    format_count_tick(L->yticks[i], L->fraction, buf, sizeof buf);
    cairo_text_extents(cr, buf, &e);
    cairo_move_to(cr, L->low_x0 - e.x_advance - 5, conform_plot_y(a, L->yticks[i]) + e.height / 2);
    cairo_show_text(cr, buf);
  }

  const char *xtitle = self->x_title ? self->x_title : "‖A x − b‖₂";
  cairo_text_extents(cr, xtitle, &e);
  cairo_move_to(cr, a->x0 + a->w / 2 - e.x_advance / 2, a->y0 + a->h + 28);
  cairo_show_text(cr, xtitle);

  const char *ytitle = L->fraction ? "fraction of samples" : "samples";
  cairo_text_extents(cr, ytitle, &e);
  cairo_save(cr);
  cairo_move_to(cr, 4 + 10, a->y0 + a->h / 2 + e.x_advance / 2);
  cairo_rotate(cr, -G_PI / 2);
  cairo_show_text(cr, ytitle);
  cairo_restore(cr);
}

static void
draw_legend(ConformHistogram *self, cairo_t *cr, const Layout *L, const GdkRGBA *fg)
{
  conform_cairo_font(cr, FONT_SIZE, FALSE);
  for (int i = 0; i < MAX_SERIES; i++) {
    if (!self->series[i] || !L->legend[i])
      continue;
    GdkRGBA c;
    conform_palette_series(i, &c);
    double x = L->legend_x[i], y = L->legend_y[i];
    cairo_rectangle(cr, x + 0.5, y - 8.5, 9, 9);
    conform_cairo_set_rgba(cr, &c, 0.45);
    cairo_fill_preserve(cr);
    conform_cairo_set_rgba(cr, &c, 1.0);
    cairo_set_line_width(cr, 1.2);
    cairo_stroke(cr);
    conform_cairo_set_rgba(cr, fg, 0.9);
    cairo_move_to(cr, x + 14, y);
    cairo_show_text(cr, L->legend[i]);
  }
}

/* ---- GtkWidget ---------------------------------------------------------- */

static void
conform_histogram_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
  if (w <= 0 || h <= 0)
    return;
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
  conform_histogram_draw(CONFORM_HISTOGRAM(widget), cr, w, h);
  cairo_destroy(cr);
}

static void
conform_histogram_finalize(GObject *object)
{
  ConformHistogram *self = CONFORM_HISTOGRAM(object);
  for (int i = 0; i < MAX_SERIES; i++)
    g_clear_pointer(&self->series[i], hist_series_free);
  g_free(self->x_title);
  G_OBJECT_CLASS(conform_histogram_parent_class)->finalize(object);
}

static void
conform_histogram_class_init(ConformHistogramClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->finalize = conform_histogram_finalize;
  widget_class->snapshot = conform_histogram_snapshot;
  gtk_widget_class_set_css_name(widget_class, "conform-histogram");
  gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
conform_histogram_init(ConformHistogram *self)
{
  self->tol = NAN;
  self->range_lo = self->range_hi = NAN;
  gtk_widget_set_size_request(GTK_WIDGET(self), 240, 160);
  gtk_widget_set_hexpand(GTK_WIDGET(self), TRUE);
  gtk_widget_set_vexpand(GTK_WIDGET(self), TRUE);
  rebin_all(self);
  update_accessible(self);
}

/* ---- public API --------------------------------------------------------- */

GtkWidget *
conform_histogram_new(void)
{
  return g_object_new(CONFORM_TYPE_HISTOGRAM, NULL);
}

void
conform_histogram_set_series(ConformHistogram *self, int index, const char *label, const double *values, int n)
{
  g_return_if_fail(CONFORM_IS_HISTOGRAM(self));
  g_return_if_fail(index >= 0 && index < MAX_SERIES);
  g_return_if_fail(n >= 0);
  g_return_if_fail(n == 0 || values != NULL);

  HistSeries *s = g_new0(HistSeries, 1);
  s->label = g_strdup(label ? label : "");
  s->n = n;
  s->values = n > 0 ? g_memdup2(values, sizeof(double) * (gsize)n) : NULL;
  s->kmin = G_MAXINT;
  s->kmax = G_MININT;
  for (int i = 0; i < n; i++) {
    double v = values[i];
    if (isnan(v))
      s->n_nan++;
    else if (isinf(v))
      s->n_inf++;
    else if (v <= 0)
      s->n_zero++; /* a norm is never negative: count as exact */
    else {
      int k = lattice_index(v);
      s->kmin = MIN(s->kmin, k);
      s->kmax = MAX(s->kmax, k);
      s->n_pos++;
    }
  }
  if (s->n_pos > 0) {
    s->lattice = g_new0(long, s->kmax - s->kmin + 1);
    for (int i = 0; i < n; i++) {
      double v = values[i];
      if (isfinite(v) && v > 0)
        s->lattice[lattice_index(v) - s->kmin]++;
    }
  }
  count_satisfied(self, s);
  hist_series_free(self->series[index]);
  self->series[index] = s;
  changed(self);
}

void
conform_histogram_remove_series(ConformHistogram *self, int index)
{
  g_return_if_fail(CONFORM_IS_HISTOGRAM(self));
  g_return_if_fail(index >= 0 && index < MAX_SERIES);
  if (!self->series[index])
    return;
  g_clear_pointer(&self->series[index], hist_series_free);
  changed(self);
}

void
conform_histogram_clear(ConformHistogram *self)
{
  g_return_if_fail(CONFORM_IS_HISTOGRAM(self));
  for (int i = 0; i < MAX_SERIES; i++)
    g_clear_pointer(&self->series[i], hist_series_free);
  changed(self);
}

void
conform_histogram_set_x_range(ConformHistogram *self, double lo, double hi)
{
  g_return_if_fail(CONFORM_IS_HISTOGRAM(self));
  if (!(isfinite(lo) && isfinite(hi) && lo > 0 && hi >= lo))
    lo = hi = NAN;
  if ((lo == self->range_lo && hi == self->range_hi) || (isnan(lo) && isnan(self->range_lo)))
    return;
  self->range_lo = lo;
  self->range_hi = hi;
  changed(self);
}

void
conform_histogram_set_tolerance(ConformHistogram *self, double tol)
{
  g_return_if_fail(CONFORM_IS_HISTOGRAM(self));
  if (!(isfinite(tol) && tol >= 0))
    tol = NAN;
  if (tol == self->tol || (isnan(tol) && isnan(self->tol)))
    return;
  self->tol = tol;
  for (int i = 0; i < MAX_SERIES; i++)
    if (self->series[i])
      count_satisfied(self, self->series[i]);
  changed(self);
}

double
conform_histogram_get_tolerance(ConformHistogram *self)
{
  g_return_val_if_fail(CONFORM_IS_HISTOGRAM(self), NAN);
  return self->tol;
}

int
conform_histogram_get_n_series(ConformHistogram *self)
{
  g_return_val_if_fail(CONFORM_IS_HISTOGRAM(self), 0);
  int n = 0;
  for (int i = 0; i < MAX_SERIES; i++)
    n += self->series[i] != NULL;
  return n;
}

int
conform_histogram_get_counts(ConformHistogram *self, int index, long *counts, long *n_satisfied, long *n_zero)
{
  g_return_val_if_fail(CONFORM_IS_HISTOGRAM(self), -1);
  g_return_val_if_fail(index >= 0 && index < MAX_SERIES, -1);
  HistSeries *s = self->series[index];
  if (!s)
    return -1;
  if (counts)
    memcpy(counts, s->bins, sizeof(long) * (gsize)self->n_bins);
  if (n_satisfied)
    *n_satisfied = s->n_satisfied;
  if (n_zero)
    *n_zero = s->n_zero;
  return self->n_bins;
}

int
conform_histogram_get_bins(ConformHistogram *self, double *lo, double *hi, int *bins_per_decade)
{
  g_return_val_if_fail(CONFORM_IS_HISTOGRAM(self), 0);
  if (lo)
    *lo = pow(10, self->dmin);
  if (hi)
    *hi = pow(10, self->dmax);
  if (bins_per_decade)
    *bins_per_decade = self->bpd;
  return total_samples(self) > 0 ? self->n_bins : 0;
}

gboolean
conform_histogram_get_series_info(ConformHistogram *self, int index, long *n, long *n_low, long *n_nan, long *n_inf)
{
  g_return_val_if_fail(CONFORM_IS_HISTOGRAM(self), FALSE);
  g_return_val_if_fail(index >= 0 && index < MAX_SERIES, FALSE);
  HistSeries *s = self->series[index];
  if (!s)
    return FALSE;
  if (n)
    *n = s->n;
  if (n_low)
    *n_low = s->n_low;
  if (n_nan)
    *n_nan = s->n_nan;
  if (n_inf)
    *n_inf = s->n_inf;
  return TRUE;
}

gboolean
conform_histogram_get_plot_area(ConformHistogram *self, int width, int height, ConformPlotArea *out)
{
  g_return_val_if_fail(CONFORM_IS_HISTOGRAM(self), FALSE);
  g_return_val_if_fail(out != NULL, FALSE);
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t *cr = cairo_create(surf);
  Layout L;
  gboolean ok = compute_layout(self, cr, width, height, &L);
  if (ok)
    *out = L.a;
  layout_clear(&L);
  cairo_destroy(cr);
  cairo_surface_destroy(surf);
  return ok;
}

void
conform_histogram_draw(ConformHistogram *self, cairo_t *cr, int width, int height)
{
  g_return_if_fail(CONFORM_IS_HISTOGRAM(self));
  g_return_if_fail(cr != NULL);
  GdkRGBA fg;
  conform_palette_fg(GTK_WIDGET(self), &fg);
  gboolean dark = conform_palette_is_dark(GTK_WIDGET(self));

  cairo_save(cr);
  Layout L;
  if (!compute_layout(self, cr, width, height, &L)) {
    draw_empty(cr, width, height, &fg);
    cairo_restore(cr);
    return;
  }
  draw_grid(self, cr, &L, &fg);

  cairo_save(cr);
  cairo_rectangle(cr, L.a.x0, L.a.y0, L.a.w, L.a.h);
  cairo_clip(cr);
  draw_series(self, cr, &L, FALSE);
  draw_series(self, cr, &L, TRUE);
  cairo_restore(cr);

  char low_label[48];
  draw_low_panel(self, cr, &L, low_label, sizeof low_label);
  draw_frame(cr, L.low_x0, L.a.y0, L.low_w, L.a.h, &fg);
  draw_frame(cr, L.a.x0, L.a.y0, L.a.w, L.a.h, &fg);
  draw_tolerance(self, cr, &L, &fg, dark);
  draw_labels(self, cr, &L, &fg, low_label);
  draw_legend(self, cr, &L, &fg);
  layout_clear(&L);
  cairo_restore(cr);
}

static void
draw_func(gpointer self, cairo_t *cr, int width, int height)
{
  conform_histogram_draw(CONFORM_HISTOGRAM(self), cr, width, height);
}

gboolean
conform_histogram_export_png(ConformHistogram *self, const char *path, int width, int height, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_HISTOGRAM(self), FALSE);
  g_return_val_if_fail(path != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  return conform_export_png(draw_func, self, width, height, conform_palette_is_dark(GTK_WIDGET(self)), path, error);
}

void
conform_histogram_set_x_title(ConformHistogram *self, const char *title)
{
  g_return_if_fail(CONFORM_IS_HISTOGRAM(self));
  g_free(self->x_title);
  self->x_title = g_strdup(title);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}
