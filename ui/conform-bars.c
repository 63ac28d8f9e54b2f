#define G_LOG_DOMAIN "conform"

#include "conform-bars.h"

#include <math.h>
#include <string.h>

#define MAX_SERIES CONFORM_BARS_MAX_SERIES
#define FONT_SIZE 10.0
#define ROW 15.0         /* legend row height */
#define MAX_YTICKS 12
#define GROUP_FILL 0.78  /* share of a category's slot its bars cover */
#define MIN_ROT45_SLOT 18.0 /* narrower slots rotate labels by 90 degrees */
#define LABEL_LINE 12.0  /* space one label line needs across its direction */

typedef struct {
  char *label;
  int color;
  double *values; /* n_cat; NaN: missing */
} BarSeries;

struct _ConformBars {
  GtkWidget parent_instance;

  char **categories; /* n_cat labels */
  int n_cat;
  BarSeries series[MAX_SERIES];
  int n_series;
  double *ref; /* n_cat reference ticks, NULL: none */
  char *ref_label;
  double ref_line; /* NaN: none */
  char *ref_line_label;
  char *title, *y_label, *empty_text;
  double y_max_fixed; /* NaN: auto */
  int hover;          /* category, -1: none */
  ConformPlotArea last_area; /* from the last on-screen frame, for hover */
  double last_label_bottom;
  gboolean have_area;
  GtkEventController *motion;
};

G_DEFINE_FINAL_TYPE(ConformBars, conform_bars, GTK_TYPE_WIDGET)

/* ---- helpers ------------------------------------------------------------ */

static gboolean
present(double v)
{
  return isfinite(v);
}

/* A present value as drawn: shares are never negative. */
static double
drawn(double v)
{
  return MAX(v, 0.0);
}

static void
format_value(double v, char *buf, gsize len)
{
  if (!present(v))
    g_strlcpy(buf, "n/a", len);
  else
    g_snprintf(buf, len, "%.3g", v);
}

static gboolean
has_layout(ConformBars *self)
{
  return self->n_cat > 0 && self->n_series > 0;
}

static gboolean
has_ref_line(ConformBars *self)
{
  return isfinite(self->ref_line) && self->ref_line >= 0;
}

/* Largest value on the chart (bars and references), 0 when none. */
static double
data_max(ConformBars *self)
{
  double m = 0;
  for (int s = 0; s < self->n_series; s++)
    for (int c = 0; c < self->n_cat; c++)
      if (present(self->series[s].values[c]))
        m = MAX(m, drawn(self->series[s].values[c]));
  if (self->ref)
    for (int c = 0; c < self->n_cat; c++)
      if (present(self->ref[c]))
        m = MAX(m, drawn(self->ref[c]));
  if (has_ref_line(self))
    m = MAX(m, self->ref_line);
  return m;
}

static gboolean
any_value(ConformBars *self)
{
  for (int s = 0; s < self->n_series; s++)
    for (int c = 0; c < self->n_cat; c++)
      if (present(self->series[s].values[c]))
        return TRUE;
  return FALSE;
}

/* The label shortened with "…" to at most max_w pixels (at least one
 * character and the ellipsis). */
static char *
abbreviate(cairo_t *cr, const char *label, double max_w, gboolean *shortened)
{
  if (conform_cairo_text_width(cr, label) <= max_w)
    return g_strdup(label);
  *shortened = TRUE;
  glong n = g_utf8_strlen(label, -1);
  for (glong k = n - 1; k >= 1; k--) {
    const char *end = g_utf8_offset_to_pointer(label, k);
    /* no dangling separator before the ellipsis */
    g_autofree char *head = g_strndup(label, (gsize)(end - label));
    g_strchomp(head);
    gsize hl = strlen(head);
    while (hl > 1 && strchr("/-_,.:", head[hl - 1]))
      head[--hl] = '\0';
    char *s = g_strconcat(head, "…", NULL);
    if (conform_cairo_text_width(cr, s) <= max_w || k == 1)
      return s;
    g_free(s);
  }
  return g_strconcat("…", NULL);
}

static void
update_accessible(ConformBars *self)
{
  GString *str = g_string_new(self->title && *self->title ? self->title : "Bar chart");
  for (int c = 0; c < self->n_cat && self->n_series > 0; c++) {
    g_string_append_printf(str, "; %s:", self->categories[c]);
    for (int s = 0; s < self->n_series; s++) {
      char vb[32];
      format_value(self->series[s].values[c], vb, sizeof vb);
      g_string_append_printf(str, "%s %s %s", s ? "," : "", self->series[s].label, vb);
    }
  }
  gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, str->str, -1);
  g_string_free(str, TRUE);
}

static void
changed(ConformBars *self)
{
  if (self->hover >= self->n_cat)
    self->hover = -1;
  update_accessible(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

/* ---- layout ------------------------------------------------------------- */

typedef struct {
  ConformPlotArea a; /* x in [0, n_cat], y in [0, ymax] */
  double slot;       /* pixels per category */
  double yticks[MAX_YTICKS];
  int n_yticks;
  int angle;   /* category labels: 0, 45 or 90 degrees */
  int every;   /* one label per `every` categories */
  gboolean abbreviated;
  char **labels; /* n_cat displayed labels (NULL where skipped) */
  int n_labels;
  double label_bottom; /* lowest pixel row of the labels */
  double title_x, title_y;
  /* legend: series, then the per-category reference, then the line */
  double legend_x[MAX_SERIES + 2], legend_y[MAX_SERIES + 2];
  int width, height;
} Layout;

static void
layout_clear(Layout *L)
{
  if (L->labels)
    for (int i = 0; i < L->n_labels; i++)
      g_free(L->labels[i]);
  g_clear_pointer(&L->labels, g_free);
}

/* Legend entries in order: series..., reference ticks, reference line. */
static int
legend_entries(ConformBars *self, const char **labels)
{
  int n = 0;
  for (int s = 0; s < self->n_series; s++)
    labels[n++] = self->series[s].label;
  if (self->ref)
    labels[n++] = self->ref_label;
  if (has_ref_line(self))
    labels[n++] = self->ref_line_label;
  return n;
}

static void
choose_y_axis(ConformBars *self, Layout *L)
{
  double ymax;
  if (isfinite(self->y_max_fixed) && self->y_max_fixed > 0) {
    ymax = self->y_max_fixed;
    L->n_yticks = conform_ticks_linear(0, ymax, 6, L->yticks);
  } else {
    double m = data_max(self);
    if (!(m > 0)) { /* all missing or zero: a unit axis */
      L->n_yticks = conform_ticks_linear(0, 1, 6, L->yticks);
      L->a.ymin = 0;
      L->a.ymax = 1;
      return;
    }
    double t[MAX_YTICKS];
    int nt = conform_ticks_linear(0, m * 1.04, 6, t);
    double step = nt >= 2 ? t[1] - t[0] : m;
    /* the axis ends on the first tick at or above 1.04 max */
    ymax = step * ceil(m * 1.04 / step - 1e-9);
    L->n_yticks = 0;
    for (int k = 0; L->n_yticks < MAX_YTICKS && k * step <= ymax * (1 + 1e-9); k++)
      L->yticks[L->n_yticks++] = k * step;
  }
  L->a.ymin = 0;
  L->a.ymax = ymax;
}

static gboolean
compute_layout(ConformBars *self, cairo_t *cr, int width, int height, Layout *L)
{
  memset(L, 0, sizeof *L);
  L->width = width;
  L->height = height;
  L->every = 1;
  if (!has_layout(self))
    return FALSE;
  choose_y_axis(self, L);

  conform_cairo_font(cr, FONT_SIZE, FALSE);
  char buf[64];
  double tick_w = 0;
  for (int i = 0; i < L->n_yticks; i++) {
    conform_format_tick(L->yticks[i], buf, sizeof buf);
    tick_w = MAX(tick_w, conform_cairo_text_width(cr, buf));
  }
  gboolean ytitle = self->y_label && *self->y_label;
  double left = tick_w + 10 + (ytitle ? 16 : 2), right = 10;

  /* Title at the left of the first row, legend right-aligned beside it
   * when it fits, else flowing onto the following rows. */
  double title_w = 0;
  if (self->title && *self->title) {
    conform_cairo_font(cr, FONT_SIZE + 1, TRUE);
    title_w = conform_cairo_text_width(cr, self->title) + 18;
    conform_cairo_font(cr, FONT_SIZE, FALSE);
  }
  const char *entries[MAX_SERIES + 2];
  int ne = legend_entries(self, entries);
  double total = 0;
  for (int i = 0; i < ne; i++)
    total += 18 + conform_cairo_text_width(cr, entries[i]) + (i > 0 ? 14 : 0);
  double first = 6 + 11;
  int rows = 1;
  if (left + title_w + total <= width - right) {
    double x = width - right - total;
    for (int i = 0; i < ne; i++) {
      L->legend_x[i] = x;
      L->legend_y[i] = first;
      x += 18 + conform_cairo_text_width(cr, entries[i]) + 14;
    }
  } else {
    double x0 = title_w > 0 ? 8 : left;
    double x = title_w > 0 ? x0 + title_w : x0, y = first;
    for (int i = 0; i < ne; i++) {
      double ew = 18 + conform_cairo_text_width(cr, entries[i]);
      if (x > x0 && x + ew > width - right) {
        x = x0;
        y += ROW;
        rows++;
      }
      L->legend_x[i] = x;
      L->legend_y[i] = y;
      x += ew + 14;
    }
  }
  L->title_x = title_w > 0 && left + title_w + total > width - right ? 8 : left;
  L->title_y = first;
  double top = 6 + rows * ROW + 6;

  /* Category labels: horizontal when the widest fits its slot, else
   * rotated (45 degrees, 90 when slots are narrow, every k-th when even a
   * vertical line of text does not fit) and abbreviated to at most ~35% of
   * the height. The first rotated label reaches left of its group, so the
   * left margin may grow once. */
  double maxw = 0;
  for (int c = 0; c < self->n_cat; c++)
    maxw = MAX(maxw, conform_cairo_text_width(cr, self->categories[c]));
  double slot = MAX(width - left - right, 1) / self->n_cat;
  double cap = CLAMP(0.35 * height, 18, 140); /* most room the labels take */
  double bottom = 20, label_len = maxw;
  if (maxw > slot - 4) {
    L->angle = slot >= MIN_ROT45_SLOT ? 45 : 90;
    if (L->angle == 45) {
      double sn = G_SQRT2 / 2;
      label_len = MIN(maxw, MAX((cap - 8 - LABEL_LINE * sn) / sn, 8));
      /* A 45-degree label reaches label_len * sn left of its group's
       * centre: widen the left margin (up to a fifth of the width), else
       * shorten the labels. */
      double reach = label_len * sn - slot / 2 + 2;
      if (reach > left) {
        double grown = MIN(reach, MAX(left, 0.2 * width));
        slot = MAX(width - grown - right, 1) / self->n_cat;
        left = grown;
        label_len = MIN(label_len, MAX((left + slot / 2 - 2) / sn, 8));
      }
      if (slot < MIN_ROT45_SLOT)
        L->angle = 90;
    }
    if (L->angle == 90)
      label_len = MIN(maxw, MAX(cap - 8, 8));
    double sn = L->angle == 45 ? G_SQRT2 / 2 : 1.0;
    double across = L->angle == 45 ? LABEL_LINE / sn : LABEL_LINE; /* horizontal room per label */
    while (slot * L->every < across && L->every < self->n_cat)
      L->every++;
    bottom = label_len * sn + (L->angle == 45 ? LABEL_LINE * sn : 0) + 8;
  }
  L->labels = g_new0(char *, self->n_cat);
  L->n_labels = self->n_cat;
  for (int c = 0; c < self->n_cat; c += L->every)
    L->labels[c] = abbreviate(cr, self->categories[c], L->angle == 0 ? MAX(slot - 4, 6) : label_len,
                              &L->abbreviated);

  conform_plot_area_init(&L->a, width, height, left, right, top, bottom);
  L->a.xmin = 0;
  L->a.xmax = self->n_cat;
  choose_y_axis(self, L); /* plot_area_init reset the y range */
  L->slot = L->a.w / self->n_cat;
  L->label_bottom = L->a.y0 + L->a.h + bottom;
  return TRUE;
}

/* Pixel columns of bar (s, c): [x0, x1), rounded so neighbours never
 * overlap; a one-pixel gap between bars when they are wide enough. */
static void
bar_columns(ConformBars *self, const Layout *L, int s, int c, double *x0, double *x1)
{
  double gw = L->slot * GROUP_FILL;
  if (L->slot - gw < 2)
    gw = MAX(L->slot - 2, L->slot * 0.5);
  double bw = gw / self->n_series;
  double gx = L->a.x0 + c * L->slot + (L->slot - gw) / 2;
  *x0 = round(gx + s * bw);
  *x1 = round(gx + (s + 1) * bw);
  if (bw >= 5 && s < self->n_series - 1)
    *x1 -= 1;
  if (*x1 <= *x0)
    *x1 = *x0 + 1;
}

/* Top row of a present bar: at least one pixel tall, clipped to the area. */
static gboolean
bar_rect(ConformBars *self, const Layout *L, int s, int c, double *x, double *y, double *w, double *h)
{
  double v = self->series[s].values[c];
  if (!present(v))
    return FALSE;
  double x0, x1;
  bar_columns(self, L, s, c, &x0, &x1);
  double base = round(L->a.y0 + L->a.h);
  double top = round(conform_plot_y(&L->a, MIN(drawn(v), L->a.ymax)));
  top = MIN(top, base - 1);
  top = MAX(top, round(L->a.y0));
  *x = x0;
  *y = top;
  *w = x1 - x0;
  *h = base - top;
  return TRUE;
}

/* ---- drawing ------------------------------------------------------------ */

/* Text centred on (cx, cy), wrapped at spaces into lines of at most max_w
 * pixels (a longer word gets a line of its own). */
static void
show_wrapped(cairo_t *cr, const char *text, double cx, double cy, double max_w)
{
  g_auto(GStrv) words = g_strsplit(text, " ", -1);
  GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
  GString *line = g_string_new(NULL);
  for (int i = 0; words[i]; i++) {
    g_autofree char *longer = line->len ? g_strconcat(line->str, " ", words[i], NULL) : g_strdup(words[i]);
    if (line->len && conform_cairo_text_width(cr, longer) > max_w) {
      g_ptr_array_add(lines, g_strdup(line->str));
      g_string_assign(line, words[i]);
    } else {
      g_string_assign(line, longer);
    }
  }
  if (line->len)
    g_ptr_array_add(lines, g_string_free(line, FALSE));
  else
    g_string_free(line, TRUE);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  double lh = fe.height, y = cy - lh * lines->len / 2 + fe.ascent;
  for (guint i = 0; i < lines->len; i++, y += lh) {
    const char *t = g_ptr_array_index(lines, i);
    cairo_move_to(cr, cx - conform_cairo_text_width(cr, t) / 2, y);
    cairo_show_text(cr, t);
  }
  g_ptr_array_unref(lines);
}

static void
draw_empty(ConformBars *self, cairo_t *cr, int width, int height, const GdkRGBA *fg)
{
  const char *hint = self->empty_text && *self->empty_text ? self->empty_text : "No data yet";
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
  conform_cairo_set_rgba(cr, fg, 0.55);
  show_wrapped(cr, hint, width / 2.0, height / 2.0, MAX(width - 36, 40));
}

/* hover: the highlighted category, -1 for none. */
static void
draw_axes(ConformBars *self, cairo_t *cr, const Layout *L, const GdkRGBA *fg, int hover)
{
  const ConformPlotArea *a = &L->a;
  char buf[64];
  cairo_text_extents_t e;
  cairo_set_line_width(cr, 1);
  conform_cairo_set_rgba(cr, fg, 0.10);
  for (int i = 1; i < L->n_yticks; i++) {
    double py = round(conform_plot_y(a, L->yticks[i])) + 0.5;
    cairo_move_to(cr, a->x0, py);
    cairo_line_to(cr, a->x0 + a->w, py);
  }
  cairo_stroke(cr);
  /* Baseline and left axis. */
  conform_cairo_set_rgba(cr, fg, 0.6);
  double bx = round(a->x0) + 0.5, by = round(a->y0 + a->h) + 0.5;
  cairo_move_to(cr, bx, round(a->y0) + 0.5);
  cairo_line_to(cr, bx, by);
  cairo_line_to(cr, round(a->x0 + a->w) + 0.5, by);
  cairo_stroke(cr);

  conform_cairo_font(cr, FONT_SIZE, FALSE);
  conform_cairo_set_rgba(cr, fg, 0.85);
  for (int i = 0; i < L->n_yticks; i++) {
    conform_format_tick(L->yticks[i], buf, sizeof buf);
    cairo_text_extents(cr, buf, &e);
    cairo_move_to(cr, a->x0 - e.x_advance - 5, conform_plot_y(a, L->yticks[i]) + 4);
    cairo_show_text(cr, buf);
  }
  if (self->y_label && *self->y_label) {
    cairo_text_extents(cr, self->y_label, &e);
    cairo_save(cr);
    cairo_move_to(cr, 4 + 10, a->y0 + a->h / 2 + e.x_advance / 2);
    cairo_rotate(cr, -G_PI / 2);
    cairo_show_text(cr, self->y_label);
    cairo_restore(cr);
  }

  /* Category labels, centred under (or ending at) their group. */
  double base = a->y0 + a->h;
  for (int c = 0; c < L->n_labels; c++) {
    const char *s = L->labels[c];
    if (!s)
      continue;
    double cx = a->x0 + (c + 0.5) * L->slot;
    double tw = conform_cairo_text_width(cr, s);
    conform_cairo_set_rgba(cr, fg, c == hover ? 1.0 : 0.85);
    cairo_save(cr);
    if (L->angle == 0) {
      cairo_move_to(cr, cx - tw / 2, base + 14);
      cairo_show_text(cr, s);
    } else if (L->angle == 45) {
      cairo_translate(cr, cx + 2, base + 6);
      cairo_rotate(cr, -G_PI / 4);
      cairo_move_to(cr, -tw, 4);
      cairo_show_text(cr, s);
    } else {
      cairo_translate(cr, cx + 4, base + 5);
      cairo_rotate(cr, -G_PI / 2);
      cairo_move_to(cr, -tw, 0);
      cairo_show_text(cr, s);
    }
    cairo_restore(cr);
  }
}

static void
draw_bars(ConformBars *self, cairo_t *cr, const Layout *L)
{
  for (int s = 0; s < self->n_series; s++) {
    GdkRGBA col;
    conform_palette_series(self->series[s].color, &col);
    conform_cairo_set_rgba(cr, &col, 1.0);
    for (int c = 0; c < self->n_cat; c++) {
      double x, y, w, h;
      if (bar_rect(self, L, s, c, &x, &y, &w, &h))
        cairo_rectangle(cr, x, y, w, h);
    }
    cairo_fill(cr);
  }
}

static void
draw_references(ConformBars *self, cairo_t *cr, const Layout *L, const GdkRGBA *fg)
{
  const ConformPlotArea *a = &L->a;
  cairo_save(cr);
  if (has_ref_line(self) && self->ref_line <= a->ymax) {
    double py = round(conform_plot_y(a, self->ref_line)) + 0.5;
    conform_cairo_set_rgba(cr, fg, 0.55);
    cairo_set_line_width(cr, 1);
    cairo_set_dash(cr, (double[]){5, 3}, 2, 0);
    cairo_move_to(cr, a->x0, py);
    cairo_line_to(cr, a->x0 + a->w, py);
    cairo_stroke(cr);
  }
  if (self->ref) {
    conform_cairo_set_rgba(cr, fg, 0.9);
    cairo_set_line_width(cr, 2);
    cairo_set_dash(cr, (double[]){3, 2}, 2, 0);
    for (int c = 0; c < self->n_cat; c++) {
      if (!present(self->ref[c]) || drawn(self->ref[c]) > a->ymax)
        continue;
      double py = round(conform_plot_y(a, drawn(self->ref[c])));
      double x0 = a->x0 + c * L->slot + L->slot * (1 - GROUP_FILL) / 2 - 2;
      double x1 = a->x0 + (c + 1) * L->slot - L->slot * (1 - GROUP_FILL) / 2 + 2;
      cairo_move_to(cr, x0, py);
      cairo_line_to(cr, x1, py);
    }
    cairo_stroke(cr);
  }
  cairo_restore(cr);
}

static void
draw_legend(ConformBars *self, cairo_t *cr, const Layout *L, const GdkRGBA *fg)
{
  if (self->title && *self->title) {
    conform_cairo_font(cr, FONT_SIZE + 1, TRUE);
    conform_cairo_set_rgba(cr, fg, 0.9);
    cairo_move_to(cr, L->title_x, L->title_y);
    cairo_show_text(cr, self->title);
  }
  conform_cairo_font(cr, FONT_SIZE, FALSE);
  const char *entries[MAX_SERIES + 2];
  int ne = legend_entries(self, entries);
  for (int i = 0; i < ne; i++) {
    double x = L->legend_x[i], y = L->legend_y[i];
    if (i < self->n_series) {
      GdkRGBA c;
      conform_palette_series(self->series[i].color, &c);
      conform_cairo_set_rgba(cr, &c, 1.0);
      cairo_rectangle(cr, x, y - 9, 12, 10);
      cairo_fill(cr);
    } else {
      gboolean ticks = self->ref && i == self->n_series;
      cairo_save(cr);
      conform_cairo_set_rgba(cr, fg, ticks ? 0.9 : 0.55);
      cairo_set_line_width(cr, ticks ? 2 : 1);
      cairo_set_dash(cr, ticks ? (double[]){3, 2} : (double[]){5, 3}, 2, 0);
      cairo_move_to(cr, x, y - 3.5);
      cairo_line_to(cr, x + 13, y - 3.5);
      cairo_stroke(cr);
      cairo_restore(cr);
    }
    conform_cairo_set_rgba(cr, fg, 0.9);
    cairo_move_to(cr, x + 18, y);
    cairo_show_text(cr, entries[i]);
  }
}

static void
draw_hover(ConformBars *self, cairo_t *cr, const Layout *L, const GdkRGBA *fg, gboolean dark)
{
  int c = self->hover;
  if (c < 0 || c >= self->n_cat)
    return;
  const ConformPlotArea *a = &L->a;
  /* The readout: category, then one line per series and reference. */
  GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
  char vb[32];
  g_ptr_array_add(lines, g_strdup(self->categories[c]));
  for (int s = 0; s < self->n_series; s++) {
    format_value(self->series[s].values[c], vb, sizeof vb);
    g_ptr_array_add(lines, g_strdup_printf("%s: %s", self->series[s].label, vb));
  }
  if (self->ref && present(self->ref[c])) {
    format_value(self->ref[c], vb, sizeof vb);
    g_ptr_array_add(lines, g_strdup_printf("%s: %s", self->ref_label, vb));
  }
  if (has_ref_line(self)) {
    format_value(self->ref_line, vb, sizeof vb);
    g_ptr_array_add(lines, g_strdup_printf("%s: %s", self->ref_line_label, vb));
  }

  conform_cairo_font(cr, FONT_SIZE, FALSE);
  double bw = 0;
  for (guint i = 0; i < lines->len; i++)
    bw = MAX(bw, conform_cairo_text_width(cr, g_ptr_array_index(lines, i)) + (i > 0 ? 16 : 0));
  bw += 12;
  double bh = lines->len * 14 + 8;
  double gx0 = a->x0 + c * L->slot, gx1 = gx0 + L->slot;
  double bx = gx1 + 6;
  if (bx + bw > a->x0 + a->w)
    bx = gx0 - 6 - bw >= 2 ? gx0 - 6 - bw : a->x0 + a->w - bw - 2;
  bx = CLAMP(bx, 2, MAX(2, L->width - bw - 2));
  double by = a->y0 + 4;
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
    double ty = by + 4 + 11 + i * 14, tx = bx + 6;
    if (i == 0) {
      conform_cairo_font(cr, FONT_SIZE, TRUE);
    } else {
      conform_cairo_font(cr, FONT_SIZE, FALSE);
      int s = (int)i - 1;
      if (s < self->n_series) {
        GdkRGBA col;
        conform_palette_series(self->series[s].color, &col);
        conform_cairo_set_rgba(cr, &col, 1.0);
        cairo_rectangle(cr, tx, ty - 8, 10, 8);
        cairo_fill(cr);
      } else {
        cairo_save(cr);
        conform_cairo_set_rgba(cr, fg, 0.8);
        cairo_set_line_width(cr, 1.5);
        cairo_set_dash(cr, (double[]){3, 2}, 2, 0);
        cairo_move_to(cr, tx, ty - 4);
        cairo_line_to(cr, tx + 10, ty - 4);
        cairo_stroke(cr);
        cairo_restore(cr);
      }
      tx += 16;
    }
    conform_cairo_set_rgba(cr, fg, 0.95);
    cairo_move_to(cr, tx, ty);
    cairo_show_text(cr, g_ptr_array_index(lines, i));
  }
  g_ptr_array_unref(lines);
}

static void
draw_impl(ConformBars *self, cairo_t *cr, int width, int height, gboolean hover, gboolean remember)
{
  GdkRGBA fg;
  conform_palette_fg(GTK_WIDGET(self), &fg);
  gboolean dark = conform_palette_is_dark(GTK_WIDGET(self));
  cairo_save(cr);
  Layout L;
  if (!compute_layout(self, cr, width, height, &L)) {
    if (remember)
      self->have_area = FALSE;
    draw_empty(self, cr, width, height, &fg);
    layout_clear(&L);
    cairo_restore(cr);
    return;
  }
  if (remember) {
    self->last_area = L.a;
    self->last_label_bottom = L.label_bottom;
    self->have_area = TRUE;
  }
  if (hover && self->hover >= 0) {
    /* the hovered group's column, faintly */
    conform_cairo_set_rgba(cr, &fg, 0.07);
    cairo_rectangle(cr, L.a.x0 + self->hover * L.slot, L.a.y0, L.slot, L.a.h);
    cairo_fill(cr);
  }
  draw_axes(self, cr, &L, &fg, hover ? self->hover : -1);
  cairo_save(cr);
  cairo_rectangle(cr, L.a.x0, L.a.y0 - 1, L.a.w + 1, L.a.h + 1);
  cairo_clip(cr);
  draw_bars(self, cr, &L);
  draw_references(self, cr, &L, &fg);
  cairo_restore(cr);
  if (!any_value(self)) {
    const char *msg = self->empty_text && *self->empty_text ? self->empty_text : "no values yet";
    conform_cairo_font(cr, FONT_SIZE, FALSE);
    conform_cairo_set_rgba(cr, &fg, 0.55);
    show_wrapped(cr, msg, L.a.x0 + L.a.w / 2, L.a.y0 + L.a.h / 2, MAX(L.a.w - 16, 40));
  }
  draw_legend(self, cr, &L, &fg);
  if (hover)
    draw_hover(self, cr, &L, &fg, dark);
  layout_clear(&L);
  cairo_restore(cr);
}

/* Runs compute_layout on a scratch surface (for the public geometry API). */
static gboolean
layout_for_size(ConformBars *self, int width, int height, Layout *L)
{
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t *cr = cairo_create(surf);
  gboolean ok = compute_layout(self, cr, width, height, L);
  cairo_destroy(cr);
  cairo_surface_destroy(surf);
  return ok;
}

static int
category_at_area(ConformBars *self, const ConformPlotArea *a, double label_bottom, double x, double y)
{
  if (self->n_cat <= 0 || x < a->x0 || x >= a->x0 + a->w || y < a->y0 || y > label_bottom)
    return -1;
  int c = (int)floor((x - a->x0) / (a->w / self->n_cat));
  return CLAMP(c, 0, self->n_cat - 1);
}

/* ---- GtkWidget ---------------------------------------------------------- */

static void
motion_cb(G_GNUC_UNUSED GtkEventControllerMotion *controller, double x, double y, gpointer user_data)
{
  ConformBars *self = CONFORM_BARS(user_data);
  int c = self->have_area ? category_at_area(self, &self->last_area, self->last_label_bottom, x, y) : -1;
  conform_bars_set_hover_category(self, c);
}

static void
leave_cb(G_GNUC_UNUSED GtkEventControllerMotion *controller, gpointer user_data)
{
  conform_bars_set_hover_category(CONFORM_BARS(user_data), -1);
}

static void
conform_bars_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
  if (w <= 0 || h <= 0)
    return;
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
  draw_impl(CONFORM_BARS(widget), cr, w, h, TRUE, TRUE);
  cairo_destroy(cr);
}

static void
conform_bars_dispose(GObject *object)
{
  CONFORM_BARS(object)->motion = NULL; /* owned by the widget */
  G_OBJECT_CLASS(conform_bars_parent_class)->dispose(object);
}

static void
series_clear(BarSeries *s)
{
  g_clear_pointer(&s->label, g_free);
  g_clear_pointer(&s->values, g_free);
}

static void
conform_bars_finalize(GObject *object)
{
  ConformBars *self = CONFORM_BARS(object);
  g_strfreev(self->categories);
  for (int s = 0; s < self->n_series; s++)
    series_clear(&self->series[s]);
  g_free(self->ref);
  g_free(self->ref_label);
  g_free(self->ref_line_label);
  g_free(self->title);
  g_free(self->y_label);
  g_free(self->empty_text);
  G_OBJECT_CLASS(conform_bars_parent_class)->finalize(object);
}

static void
conform_bars_class_init(ConformBarsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->dispose = conform_bars_dispose;
  object_class->finalize = conform_bars_finalize;
  widget_class->snapshot = conform_bars_snapshot;
  gtk_widget_class_set_css_name(widget_class, "conform-bars");
  gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
conform_bars_init(ConformBars *self)
{
  self->categories = g_new0(char *, 1);
  self->ref_line = NAN;
  self->y_max_fixed = NAN;
  self->hover = -1;
  gtk_widget_set_size_request(GTK_WIDGET(self), 240, 160);
  gtk_widget_set_hexpand(GTK_WIDGET(self), TRUE);
  gtk_widget_set_vexpand(GTK_WIDGET(self), TRUE);
  self->motion = gtk_event_controller_motion_new();
  g_signal_connect(self->motion, "motion", G_CALLBACK(motion_cb), self);
  g_signal_connect(self->motion, "leave", G_CALLBACK(leave_cb), self);
  gtk_widget_add_controller(GTK_WIDGET(self), self->motion);
  update_accessible(self);
}

/* ---- public API --------------------------------------------------------- */

GtkWidget *
conform_bars_new(void)
{
  return g_object_new(CONFORM_TYPE_BARS, NULL);
}

static double *
nan_array(int n)
{
  double *v = g_new(double, MAX(n, 1));
  for (int i = 0; i < n; i++)
    v[i] = NAN;
  return v;
}

void
conform_bars_set_categories(ConformBars *self, const char *const *labels, int n)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  g_return_if_fail(n >= 0);
  g_return_if_fail(n == 0 || labels != NULL);
  char **cats = g_new0(char *, n + 1);
  for (int i = 0; i < n; i++)
    cats[i] = g_strdup(labels[i] ? labels[i] : "");
  g_strfreev(self->categories);
  self->categories = cats;
  for (int s = 0; s < self->n_series; s++) {
    double *v = nan_array(n);
    memcpy(v, self->series[s].values, sizeof(double) * (gsize)MIN(n, self->n_cat));
    g_free(self->series[s].values);
    self->series[s].values = v;
  }
  if (n != self->n_cat)
    g_clear_pointer(&self->ref, g_free);
  self->n_cat = n;
  changed(self);
}

int
conform_bars_get_n_categories(ConformBars *self)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), 0);
  return self->n_cat;
}

const char *
conform_bars_get_category(ConformBars *self, int category)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), NULL);
  g_return_val_if_fail(category >= 0 && category < self->n_cat, NULL);
  return self->categories[category];
}

int
conform_bars_add_series(ConformBars *self, const char *label, int color_index)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), -1);
  if (self->n_series >= MAX_SERIES)
    return -1;
  int id = self->n_series++;
  BarSeries *s = &self->series[id];
  s->label = g_strdup(label ? label : "");
  s->color = color_index < 0 ? id : color_index;
  s->values = nan_array(self->n_cat);
  changed(self);
  return id;
}

int
conform_bars_get_n_series(ConformBars *self)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), 0);
  return self->n_series;
}

const char *
conform_bars_get_series_label(ConformBars *self, int series)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), NULL);
  g_return_val_if_fail(series >= 0 && series < self->n_series, NULL);
  return self->series[series].label;
}

int
conform_bars_get_series_color(ConformBars *self, int series)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), -1);
  g_return_val_if_fail(series >= 0 && series < self->n_series, -1);
  return self->series[series].color;
}

void
conform_bars_remove_all_series(ConformBars *self)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  for (int s = 0; s < self->n_series; s++)
    series_clear(&self->series[s]);
  self->n_series = 0;
  changed(self);
}

void
conform_bars_set_values(ConformBars *self, int series, const double *values, int n)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  g_return_if_fail(series >= 0 && series < self->n_series);
  g_return_if_fail(n >= 0);
  double *v = self->series[series].values;
  int k = values ? MIN(n, self->n_cat) : 0;
  for (int c = 0; c < self->n_cat; c++)
    v[c] = c < k ? values[c] : NAN;
  changed(self);
}

double
conform_bars_get_value(ConformBars *self, int series, int category)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), NAN);
  if (series < 0 || series >= self->n_series || category < 0 || category >= self->n_cat)
    return NAN;
  return self->series[series].values[category];
}

void
conform_bars_clear_values(ConformBars *self)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  for (int s = 0; s < self->n_series; s++)
    for (int c = 0; c < self->n_cat; c++)
      self->series[s].values[c] = NAN;
  changed(self);
}

void
conform_bars_set_reference(ConformBars *self, const char *label, const double *values, int n)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  g_return_if_fail(n >= 0);
  g_clear_pointer(&self->ref, g_free);
  g_free(self->ref_label);
  self->ref_label = g_strdup(label ? label : "reference");
  if (values) {
    self->ref = nan_array(self->n_cat);
    memcpy(self->ref, values, sizeof(double) * (gsize)MIN(n, self->n_cat));
  }
  changed(self);
}

void
conform_bars_set_reference_line(ConformBars *self, const char *label, double y)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  self->ref_line = isfinite(y) && y >= 0 ? y : NAN;
  g_free(self->ref_line_label);
  self->ref_line_label = g_strdup(label ? label : "reference");
  changed(self);
}

void
conform_bars_set_title(ConformBars *self, const char *title)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  g_free(self->title);
  self->title = g_strdup(title);
  changed(self);
}

void
conform_bars_set_y_label(ConformBars *self, const char *label)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  g_free(self->y_label);
  self->y_label = g_strdup(label);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_bars_set_empty_text(ConformBars *self, const char *text)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  g_free(self->empty_text);
  self->empty_text = g_strdup(text);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_bars_set_y_max(ConformBars *self, double y_max)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  self->y_max_fixed = isfinite(y_max) && y_max > 0 ? y_max : NAN;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_bars_set_hover_category(ConformBars *self, int category)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  if (category < 0 || category >= self->n_cat)
    category = -1;
  if (category == self->hover)
    return;
  self->hover = category;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

int
conform_bars_get_hover_category(ConformBars *self)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), -1);
  return self->hover;
}

char *
conform_bars_get_readout(ConformBars *self, int category)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), NULL);
  if (category < 0 || category >= self->n_cat)
    return NULL;
  GString *str = g_string_new(self->categories[category]);
  char vb[32];
  const char *sep = ": ";
  for (int s = 0; s < self->n_series; s++) {
    format_value(self->series[s].values[category], vb, sizeof vb);
    g_string_append_printf(str, "%s%s %s", sep, self->series[s].label, vb);
    sep = ", ";
  }
  if (self->ref && present(self->ref[category])) {
    format_value(self->ref[category], vb, sizeof vb);
    g_string_append_printf(str, "%s%s %s", sep, self->ref_label, vb);
    sep = ", ";
  }
  if (has_ref_line(self)) {
    format_value(self->ref_line, vb, sizeof vb);
    g_string_append_printf(str, "%s%s %s", sep, self->ref_line_label, vb);
  }
  return g_string_free(str, FALSE);
}

gboolean
conform_bars_get_plot_area(ConformBars *self, int width, int height, ConformPlotArea *out)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), FALSE);
  g_return_val_if_fail(out != NULL, FALSE);
  Layout L;
  gboolean ok = layout_for_size(self, width, height, &L);
  if (ok)
    *out = L.a;
  layout_clear(&L);
  return ok;
}

gboolean
conform_bars_get_bar_rect(ConformBars *self, int width, int height, int series, int category, double *x, double *y,
                          double *w, double *h)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), FALSE);
  if (series < 0 || series >= self->n_series || category < 0 || category >= self->n_cat)
    return FALSE;
  Layout L;
  double bx, by, bw, bh;
  gboolean ok = layout_for_size(self, width, height, &L) && bar_rect(self, &L, series, category, &bx, &by, &bw, &bh);
  layout_clear(&L);
  if (!ok)
    return FALSE;
  if (x)
    *x = bx;
  if (y)
    *y = by;
  if (w)
    *w = bw;
  if (h)
    *h = bh;
  return TRUE;
}

int
conform_bars_category_at(ConformBars *self, int width, int height, double x, double y)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), -1);
  Layout L;
  int c = layout_for_size(self, width, height, &L) ? category_at_area(self, &L.a, L.label_bottom, x, y) : -1;
  layout_clear(&L);
  return c;
}

int
conform_bars_get_label_angle(ConformBars *self, int width, int height, gboolean *abbreviated, int *every)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), 0);
  Layout L;
  layout_for_size(self, width, height, &L);
  if (abbreviated)
    *abbreviated = L.abbreviated;
  if (every)
    *every = L.every;
  int angle = L.angle;
  layout_clear(&L);
  return angle;
}

void
conform_bars_draw(ConformBars *self, cairo_t *cr, int width, int height)
{
  g_return_if_fail(CONFORM_IS_BARS(self));
  g_return_if_fail(cr != NULL);
  draw_impl(self, cr, width, height, TRUE, FALSE);
}

static void
draw_func(gpointer self, cairo_t *cr, int width, int height)
{
  draw_impl(CONFORM_BARS(self), cr, width, height, FALSE, FALSE);
}

gboolean
conform_bars_export_png(ConformBars *self, const char *path, int width, int height, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_BARS(self), FALSE);
  g_return_val_if_fail(path != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  return conform_export_png(draw_func, self, width, height, conform_palette_is_dark(GTK_WIDGET(self)), path, error);
}
