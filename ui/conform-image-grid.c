#define G_LOG_DOMAIN "conform"

#include "conform-image-grid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conform-palette.h"

#define CAPTION_H 22.0
#define GAP 6.0
#define LABEL_H 13.0

struct _ConformImageGrid {
  GtkWidget parent_instance;
  float *x;
  double *viol;
  int n, H, W;
  double tol, lo, hi;
  char *caption;
  cairo_surface_t *cache; /* n images side by side at 1 px per pixel, ARGB */
  char **labels;          /* n hover labels, NULL: "sample i" */
  gboolean *inputs;       /* n flags: a given input (framed blue, no violation), NULL: none */
  int col_multiple;       /* the column count is a multiple of this (pairs stay in one row) */
  int hover;              /* hovered cell, -1: none */
};

G_DEFINE_FINAL_TYPE(ConformImageGrid, conform_image_grid, GTK_TYPE_WIDGET)

/* Pixels of every image once into a surface (redrawn on new data only);
 * drawing then scales it with nearest-neighbour filtering. */
static void
build_cache(ConformImageGrid *self)
{
  g_clear_pointer(&self->cache, cairo_surface_destroy);
  if (self->n == 0)
    return;
  self->cache = cairo_image_surface_create(CAIRO_FORMAT_RGB24, self->W * self->n, self->H);
  cairo_surface_flush(self->cache);
  unsigned char *data = cairo_image_surface_get_data(self->cache);
  int stride = cairo_image_surface_get_stride(self->cache);
  double span = self->hi > self->lo ? self->hi - self->lo : 1.0;
  for (int i = 0; i < self->n; i++)
    for (int y = 0; y < self->H; y++)
      for (int xx = 0; xx < self->W; xx++) {
        double v = self->x[(gsize)i * self->H * self->W + (gsize)y * self->W + xx];
        v = isfinite(v) ? (v - self->lo) / span : 0.0;
        guint8 g = (guint8)lround(CLAMP(v, 0.0, 1.0) * 255.0);
        guint32 *px = (guint32 *)(data + (gsize)y * stride) + (gsize)i * self->W + xx;
        *px = ((guint32)g << 16) | ((guint32)g << 8) | g;
      }
  cairo_surface_mark_dirty(self->cache);
}

void
conform_image_grid_get_layout(ConformImageGrid *self, int width, int height, int *cols, double *cell)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  *cols = 1;
  *cell = 0;
  if (self->n == 0)
    return;
  double avail_h = height - CAPTION_H - GAP;
  double aspect = (double)self->H / self->W;
  double best = 0;
  int k = MAX(self->col_multiple, 1), c_max = (self->n + k - 1) / k * k;
  for (int c = k; c <= c_max; c += k) { /* the column count giving the largest cells */
    int rows = (self->n + c - 1) / c;
    double side = fmin((width - GAP) / c - GAP, (avail_h / rows - GAP - (self->viol ? LABEL_H : 0)) / aspect);
    if (side > best) {
      best = side;
      *cols = c;
    }
  }
  *cell = fmax(best, 1.0);
}

static gboolean
is_input(ConformImageGrid *self, int i)
{
  return self->inputs && self->inputs[i];
}

/* Cell i's rectangle in a widget of that size. */
static void
cell_rect(ConformImageGrid *self, int cols, double side, int i, double *x0, double *y0, double *cw, double *ch)
{
  double label = self->viol ? LABEL_H : 0;
  *cw = side;
  *ch = side * self->H / self->W;
  *x0 = GAP + (i % cols) * (*cw + GAP);
  *y0 = CAPTION_H + GAP + (i / cols) * (*ch + GAP + label);
}

int
conform_image_grid_index_at(ConformImageGrid *self, int width, int height, double x, double y)
{
  g_return_val_if_fail(CONFORM_IS_IMAGE_GRID(self), -1);
  if (self->n == 0)
    return -1;
  int cols;
  double side;
  conform_image_grid_get_layout(self, width, height, &cols, &side);
  double cw = side, ch = side * self->H / self->W, label = self->viol ? LABEL_H : 0;
  if (x < GAP || y < CAPTION_H + GAP)
    return -1;
  int c = (int)floor((x - GAP) / (cw + GAP)), r = (int)floor((y - CAPTION_H - GAP) / (ch + GAP + label));
  if (c >= cols || x - GAP - c * (cw + GAP) > cw || y - CAPTION_H - GAP - r * (ch + GAP + label) > ch + label)
    return -1;
  int i = r * cols + c;
  return i < self->n ? i : -1;
}

/* Two significant digits, compact: "3.1", "0.25", "3.2e-5", "1e-4". */
static void
format_violation(double v, char *buf, gsize len)
{
  double a = fabs(v);
  if (v == 0 || !isfinite(v) || (a >= 1e-2 && a < 1e4)) {
    g_snprintf(buf, len, "%.2g", v);
    return;
  }
  char tmp[48];
  g_snprintf(tmp, sizeof tmp, "%.1e", v); /* "3.2e-05", "1.0e-04" */
  char *e = strchr(tmp, 'e');
  if (!e) {
    g_strlcpy(buf, tmp, len);
    return;
  }
  *e = '\0';
  int ex = atoi(e + 1);
  char *dot = strchr(tmp, '.');
  if (dot && g_str_has_suffix(tmp, ".0"))
    *dot = '\0';
  g_snprintf(buf, len, "%se%d", tmp, ex);
}

char *
conform_image_grid_get_readout(ConformImageGrid *self, int i)
{
  g_return_val_if_fail(CONFORM_IS_IMAGE_GRID(self), NULL);
  if (i < 0 || i >= self->n)
    return NULL;
  g_autofree char *label = self->labels && self->labels[i] ? g_strdup(self->labels[i]) : g_strdup_printf("sample %d", i);
  if (is_input(self, i) || !self->viol)
    return g_steal_pointer(&label);
  char v[32], t[32];
  format_violation(self->viol[i], v, sizeof v);
  if (!isfinite(self->tol))
    return g_strdup_printf("%s · violation %s", label, v);
  gboolean sat = self->viol[i] <= self->tol;
  format_violation(self->tol, t, sizeof t);
  return g_strdup_printf("%s · violation %s (%s tolerance %s)", label, v, sat ? "within" : "above", t);
}

static void draw_readout(ConformImageGrid *self, cairo_t *cr, int width, int height, const GdkRGBA *fg);

static void
draw_impl(ConformImageGrid *self, cairo_t *cr, int width, int height, gboolean hover)
{
  GdkRGBA fg;
  conform_palette_fg(GTK_WIDGET(self), &fg);
  conform_cairo_font(cr, 12, TRUE);
  conform_cairo_set_rgba(cr, &fg, 1.0);
  cairo_move_to(cr, GAP, 15);
  cairo_show_text(cr, self->caption ? self->caption : (self->n ? "" : "no samples yet"));
  if (self->n == 0 || !self->cache)
    return;
  int cols;
  double side;
  conform_image_grid_get_layout(self, width, height, &cols, &side);
  double cw = side, ch = side * self->H / self->W;
  GdkRGBA ok, bad, given;
  conform_palette_series(2, &ok);    /* bluish green */
  conform_palette_series(5, &bad);   /* vermillion */
  conform_palette_series(4, &given); /* blue: a given input (the constraint) */
  conform_cairo_font(cr, 10, FALSE);
  for (int i = 0; i < self->n; i++) {
    double x0, y0;
    cell_rect(self, cols, side, i, &x0, &y0, &cw, &ch);
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, cw, ch);
    cairo_clip(cr);
    cairo_translate(cr, x0, y0);
    cairo_scale(cr, cw / self->W, ch / self->H);
    cairo_set_source_surface(cr, self->cache, -(double)i * self->W, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
    if (is_input(self, i)) {
      conform_cairo_set_rgba(cr, &given, 1.0);
      cairo_set_line_width(cr, 2.0);
      cairo_rectangle(cr, x0 - 1, y0 - 1, cw + 2, ch + 2);
      cairo_stroke(cr);
    } else if (self->viol) {
      gboolean sat = self->viol[i] <= self->tol;
      conform_cairo_set_rgba(cr, sat ? &ok : &bad, 1.0);
      cairo_set_line_width(cr, 2.0);
      cairo_rectangle(cr, x0 - 1, y0 - 1, cw + 2, ch + 2);
      cairo_stroke(cr);
      if (cw >= 34) {
        char buf[32];
        if (self->viol[i] == 0)
          g_strlcpy(buf, "0", sizeof buf);
        else
          g_snprintf(buf, sizeof buf, "%.0e", self->viol[i]);
        conform_cairo_set_rgba(cr, &fg, 0.8);
        cairo_move_to(cr, x0, y0 + ch + 10);
        cairo_show_text(cr, buf);
      }
    }
    if (hover && i == self->hover) { /* the hovered cell: a ring in the foreground colour */
      conform_cairo_set_rgba(cr, &fg, 0.9);
      cairo_set_line_width(cr, 2.0);
      cairo_rectangle(cr, x0 - 3.5, y0 - 3.5, cw + 7, ch + 7);
      cairo_stroke(cr);
    }
  }
  if (hover)
    draw_readout(self, cr, width, height, &fg);
}

/* The hovered cell's readout in a box beside it. */
static void
draw_readout(ConformImageGrid *self, cairo_t *cr, int width, int height, const GdkRGBA *fg)
{
  g_autofree char *text = conform_image_grid_get_readout(self, self->hover);
  if (!text)
    return;
  int cols;
  double side, x0, y0, cw, ch;
  conform_image_grid_get_layout(self, width, height, &cols, &side);
  cell_rect(self, cols, side, self->hover, &x0, &y0, &cw, &ch);
  conform_cairo_font(cr, 12, FALSE);
  double bw = conform_cairo_text_width(cr, text) + 12, bh = 22;
  double bx = x0 + cw + 8 + bw <= width - 2 ? x0 + cw + 8 : x0 - 8 - bw;
  bx = CLAMP(bx, 2, MAX(2, width - bw - 2));
  double by = CLAMP(y0 + ch / 2 - bh / 2, 2, MAX(2, height - bh - 2));
  conform_cairo_rounded_rect(cr, round(bx) + 0.5, round(by) + 0.5, round(bw), round(bh), 4);
  if (conform_palette_is_dark(GTK_WIDGET(self)))
    cairo_set_source_rgba(cr, 0.18, 0.18, 0.18, 0.94);
  else
    cairo_set_source_rgba(cr, 1, 1, 1, 0.94);
  cairo_fill_preserve(cr);
  conform_cairo_set_rgba(cr, fg, 0.3);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  conform_cairo_set_rgba(cr, fg, 0.95);
  cairo_move_to(cr, bx + 6, by + 15);
  cairo_show_text(cr, text);
}

void
conform_image_grid_draw(ConformImageGrid *self, cairo_t *cr, int width, int height)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  draw_impl(self, cr, width, height, TRUE);
}

static void
conform_image_grid_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, w, h));
  conform_image_grid_draw(CONFORM_IMAGE_GRID(widget), cr, w, h);
  cairo_destroy(cr);
}

static void
motion_cb(GtkEventControllerMotion *controller, double x, double y, gpointer user_data)
{
  ConformImageGrid *self = CONFORM_IMAGE_GRID(user_data);
  conform_image_grid_set_hover(self, conform_image_grid_index_at(self, gtk_widget_get_width(GTK_WIDGET(self)),
                                                                 gtk_widget_get_height(GTK_WIDGET(self)), x, y));
}

static void
leave_cb(GtkEventControllerMotion *controller, gpointer user_data)
{
  conform_image_grid_set_hover(CONFORM_IMAGE_GRID(user_data), -1);
}

static void
conform_image_grid_finalize(GObject *object)
{
  ConformImageGrid *self = CONFORM_IMAGE_GRID(object);
  g_free(self->x);
  g_free(self->viol);
  g_free(self->caption);
  g_strfreev(self->labels);
  g_free(self->inputs);
  g_clear_pointer(&self->cache, cairo_surface_destroy);
  G_OBJECT_CLASS(conform_image_grid_parent_class)->finalize(object);
}

static void
conform_image_grid_class_init(ConformImageGridClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->finalize = conform_image_grid_finalize;
  widget_class->snapshot = conform_image_grid_snapshot;
  gtk_widget_class_set_css_name(widget_class, "conform-image-grid");
  gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
conform_image_grid_init(ConformImageGrid *self)
{
  self->lo = 0.0;
  self->hi = 1.0;
  self->tol = NAN;
  self->hover = -1;
  self->col_multiple = 1;
  gtk_widget_set_hexpand(GTK_WIDGET(self), TRUE);
  gtk_widget_set_vexpand(GTK_WIDGET(self), TRUE);
  GtkEventController *motion = gtk_event_controller_motion_new();
  g_signal_connect(motion, "motion", G_CALLBACK(motion_cb), self);
  g_signal_connect(motion, "leave", G_CALLBACK(leave_cb), self);
  gtk_widget_add_controller(GTK_WIDGET(self), motion);
}

GtkWidget *
conform_image_grid_new(void)
{
  return g_object_new(CONFORM_TYPE_IMAGE_GRID, NULL);
}

void
conform_image_grid_set_images(ConformImageGrid *self, const float *x, int n, int H, int W, const double *viol,
                              double tol)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  g_return_if_fail(n >= 0 && (n == 0 || (x && H > 0 && W > 0)));
  n = MIN(n, CONFORM_IMAGE_GRID_MAX);
  g_clear_pointer(&self->x, g_free);
  g_clear_pointer(&self->viol, g_free);
  g_clear_pointer(&self->labels, g_strfreev);
  g_clear_pointer(&self->inputs, g_free);
  if (self->hover >= n)
    self->hover = -1;
  self->n = n;
  self->H = H;
  self->W = W;
  self->tol = tol;
  if (n > 0) {
    self->x = g_memdup2(x, sizeof(float) * (gsize)n * H * W);
    if (viol)
      self->viol = g_memdup2(viol, sizeof(double) * n);
  }
  build_cache(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_image_grid_set_labels(ConformImageGrid *self, const char *const *labels, const gboolean *inputs)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  g_clear_pointer(&self->labels, g_strfreev);
  g_clear_pointer(&self->inputs, g_free);
  if (labels && self->n > 0) {
    self->labels = g_new0(char *, self->n + 1);
    for (int i = 0; i < self->n; i++)
      self->labels[i] = g_strdup(labels[i]);
  }
  if (inputs && self->n > 0)
    self->inputs = g_memdup2(inputs, sizeof(gboolean) * self->n);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_image_grid_set_column_multiple(ConformImageGrid *self, int k)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  self->col_multiple = MAX(k, 1);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_image_grid_set_hover(ConformImageGrid *self, int i)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  if (i < 0 || i >= self->n)
    i = -1;
  if (i == self->hover)
    return;
  self->hover = i;
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

int
conform_image_grid_get_hover(ConformImageGrid *self)
{
  g_return_val_if_fail(CONFORM_IS_IMAGE_GRID(self), -1);
  return self->hover;
}

void
conform_image_grid_set_range(ConformImageGrid *self, double lo, double hi)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  self->lo = lo;
  self->hi = hi;
  build_cache(self);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_image_grid_set_caption(ConformImageGrid *self, const char *text)
{
  g_return_if_fail(CONFORM_IS_IMAGE_GRID(self));
  g_free(self->caption);
  self->caption = g_strdup(text);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

const float *
conform_image_grid_get_image(ConformImageGrid *self, int i)
{
  g_return_val_if_fail(CONFORM_IS_IMAGE_GRID(self), NULL);
  return i >= 0 && i < self->n ? self->x + (gsize)i * self->H * self->W : NULL;
}

gboolean
conform_image_grid_get_cell_center(ConformImageGrid *self, int width, int height, int i, double *x, double *y)
{
  g_return_val_if_fail(CONFORM_IS_IMAGE_GRID(self), FALSE);
  if (i < 0 || i >= self->n)
    return FALSE;
  int cols;
  double side, x0, y0, cw, ch;
  conform_image_grid_get_layout(self, width, height, &cols, &side);
  cell_rect(self, cols, side, i, &x0, &y0, &cw, &ch);
  *x = x0 + cw / 2;
  *y = y0 + ch / 2;
  return TRUE;
}

int
conform_image_grid_get_n_images(ConformImageGrid *self)
{
  g_return_val_if_fail(CONFORM_IS_IMAGE_GRID(self), 0);
  return self->n;
}

static void
draw_func(gpointer self, cairo_t *cr, int width, int height)
{
  draw_impl(self, cr, width, height, FALSE); /* exports without the hover readout */
}

gboolean
conform_image_grid_export_png(ConformImageGrid *self, const char *path, int width, int height, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_IMAGE_GRID(self), FALSE);
  return conform_export_png(draw_func, self, width, height, conform_palette_is_dark(GTK_WIDGET(self)), path, error);
}
