#define G_LOG_DOMAIN "conform-mirror-view"

#include "conform-mirror-view.h"

#include <math.h>
#include <pango/pangocairo.h>
#include <string.h>

#include "conform-palette.h"

/* Drawing notes
 * - Two panels: the main one (the mapped grid) and, when there is room, a
 *   side panel with the regular grid the map starts from. Side by side in a
 *   wide widget, stacked in a tall one; the side panel is dropped below
 *   SIDE_MIN pixels.
 * - Grid lines: the first CONFORM_MIRROR_GRID_LINES lines ("rows": the
 *   second coordinate fixed) in orange, the others ("columns") in reddish
 *   purple, the outermost of each family thicker, so a fold or a rotation
 *   reads at a glance; non-finite points break a line.
 * - Limits of a mapped panel: the box of its grid and points, clamped to
 *   the box it should cover (box_mirror for g, box_data for f) widened by
 *   1.5 times its span on each side, so a few wild grid points far outside
 *   never shrink the picture; 4% margin, equal aspect. Everything is clipped
 *   to the plot area. */

#define CAPTION_BAND 24.0
#define TEXT_PX 10.0
#define SIDE_MIN 150.0
#define PT_RADIUS 2.0
#define DATA_RADIUS 1.5
#define PT_ALPHA 0.6
#define DATA_ALPHA 0.22

enum { PANEL_MIRROR_WARPED, PANEL_DATA_REGULAR, PANEL_DATA_WARPED, PANEL_MIRROR_REGULAR };

static const char *const captions[] = {
  "g: data → mirror space: the regular grid over the data, warped",
  "f: mirror → data: a regular grid over mirror space, mapped back",
};

struct _ConformMirrorView {
  GtkWidget parent_instance;

  GtkWidget *header, *g_button, *f_button, *caption_label, *canvas;
  ConformMirrorMode mode;
  gboolean syncing;

  /* copies of the latest 2-D sample set with maps (has_maps) */
  gboolean has_maps;
  long step;
  char *strategy;
  int n;             /* samples */
  float *x, *mirror; /* n x 2; mirror may be NULL */
  int n_ref;
  float *mirror_ref; /* n_ref x 2 */
  float *grid_g, *grid_f;
  float box_data[4], box_mirror[4];
  char *reason; /* why a set brought no maps */
  int n_outside; /* samples the main panel could not show at the last draw */

  float *bg; /* training data, n_bg x 2 */
  int n_bg;
  char *empty_text;
};

G_DEFINE_FINAL_TYPE(ConformMirrorView, conform_mirror_view, GTK_TYPE_WIDGET)

#define GRID_FLOATS (2 * 2 * CONFORM_MIRROR_GRID_LINES * CONFORM_MIRROR_GRID_POINTS)

/* ------------------------------------------------------------------------ */
/* Text                                                                     */

static double
draw_text(cairo_t *cr, const char *text, double x, double y, double px, double ax, double ay, const GdkRGBA *c,
          double alpha)
{
  PangoLayout *layout = pango_cairo_create_layout(cr);
  PangoFontDescription *fd = pango_font_description_from_string("Sans");
  pango_font_description_set_absolute_size(fd, px * PANGO_SCALE);
  pango_layout_set_font_description(layout, fd);
  pango_font_description_free(fd);
  pango_layout_set_text(layout, text, -1);
  int w, h;
  pango_layout_get_pixel_size(layout, &w, &h);
  if (c) {
    conform_cairo_set_rgba(cr, c, alpha);
    cairo_move_to(cr, round(x - ax * w), round(y - ay * h));
    pango_cairo_show_layout(cr, layout);
    cairo_new_path(cr);
  }
  g_object_unref(layout);
  return w;
}

static double
text_width(cairo_t *cr, const char *text, double px)
{
  return draw_text(cr, text, 0, 0, px, 0, 0, NULL, 0);
}

/* ------------------------------------------------------------------------ */
/* Geometry                                                                 */

typedef struct {
  double lo[2], hi[2];
} Box;

static void
box_empty(Box *b)
{
  b->lo[0] = b->lo[1] = INFINITY;
  b->hi[0] = b->hi[1] = -INFINITY;
}

static void
box_add(Box *b, const float *x, int n)
{
  for (int i = 0; x && i < n; i++)
    for (int c = 0; c < 2; c++) {
      double v = x[2 * i + c];
      if (!isfinite(v))
        continue;
      b->lo[c] = MIN(b->lo[c], v);
      b->hi[c] = MAX(b->hi[c], v);
    }
}

static void
box_from(Box *b, const float *box4)
{
  b->lo[0] = box4[0];
  b->hi[0] = box4[1];
  b->lo[1] = box4[2];
  b->hi[1] = box4[3];
}

/* b clamped to anchor widened by `widen` spans on each side; an empty b
 * becomes the anchor. */
static void
box_clamp(Box *b, const Box *anchor, double widen)
{
  for (int c = 0; c < 2; c++) {
    double span = anchor->hi[c] - anchor->lo[c];
    if (!(b->lo[c] <= b->hi[c])) {
      b->lo[c] = anchor->lo[c];
      b->hi[c] = anchor->hi[c];
      continue;
    }
    b->lo[c] = MAX(b->lo[c], anchor->lo[c] - widen * span);
    b->hi[c] = MIN(b->hi[c], anchor->hi[c] + widen * span);
    if (!(b->lo[c] <= b->hi[c])) {
      b->lo[c] = anchor->lo[c];
      b->hi[c] = anchor->hi[c];
    }
  }
}

/* Sets the area's limits to the box, padded by `pad` and widened to an equal aspect. */
static void
equal_aspect(ConformPlotArea *a, const Box *b, double pad)
{
  double cx = 0.5 * (b->lo[0] + b->hi[0]), cy = 0.5 * (b->lo[1] + b->hi[1]);
  double dx = (b->hi[0] - b->lo[0]) * (1 + 2 * pad), dy = (b->hi[1] - b->lo[1]) * (1 + 2 * pad);
  if (!isfinite(cx) || !isfinite(cy)) {
    cx = cy = 0;
    dx = dy = 2;
  }
  if (!(MAX(dx, dy) > 1e-12 * (1 + fabs(cx) + fabs(cy))))
    dx = dy = 2 * MAX(0.5, 0.05 * MAX(fabs(cx), fabs(cy)));
  dx = MAX(dx, 1e-300);
  dy = MAX(dy, 1e-300);
  double k = MIN(a->w / dx, a->h / dy);
  double hx = 0.5 * a->w / k, hy = 0.5 * a->h / k;
  a->xmin = cx - hx;
  a->xmax = cx + hx;
  a->ymin = cy - hy;
  a->ymax = cy + hy;
}

/* ------------------------------------------------------------------------ */
/* Drawing parts                                                            */

static void
sample_colour(ConformMirrorView *self, GdkRGBA *c)
{
  conform_palette_series(conform_palette_is_dark(GTK_WIDGET(self)) ? 1 : 4, c);
}

static void
grid_colour(int family, GdkRGBA *c)
{
  conform_palette_series(family == 0 ? 0 : 6, c);
}

/* Returns the number of points not drawn (outside the area or non-finite). */
static int
draw_points(cairo_t *cr, const ConformPlotArea *a, const float *x, int n, double r, const GdkRGBA *c, double alpha)
{
  if (!x || n <= 0)
    return 0;
  int skipped = 0;
  conform_cairo_set_rgba(cr, c, alpha);
  for (int i = 0; i < n; i++) {
    double u = x[2 * i], v = x[2 * i + 1];
    if (!isfinite(u) || !isfinite(v)) {
      skipped++;
      continue;
    }
    double px = conform_plot_x(a, u), py = conform_plot_y(a, v);
    if (px < a->x0 - r || px > a->x0 + a->w + r || py < a->y0 - r || py > a->y0 + a->h + r) {
      skipped++;
      continue;
    }
    cairo_new_sub_path(cr);
    cairo_arc(cr, px, py, r, 0, 2 * G_PI);
    cairo_fill(cr);
  }
  return skipped;
}

/* The grid as polylines: 2 * LINES lines of POINTS points (rows first).
 * mapped NULL: the regular grid over box4, straight lines. */
static void
draw_grid(cairo_t *cr, const ConformPlotArea *a, const float *mapped, const float *box4, double alpha)
{
  const int L = CONFORM_MIRROR_GRID_LINES, P = CONFORM_MIRROR_GRID_POINTS;
  cairo_save(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (int pass = 0; pass < 2; pass++) /* inner lines first, the outer ones on top */
    for (int fam = 0; fam < 2; fam++) {
      GdkRGBA c;
      grid_colour(fam, &c);
      for (int l = 0; l < L; l++) {
        gboolean outer = l == 0 || l == L - 1;
        if (outer != (pass == 1))
          continue;
        cairo_new_path(cr);
        if (mapped) {
          const float *pt = mapped + (gsize)(fam * L + l) * P * 2;
          gboolean pen = FALSE;
          for (int p = 0; p < P; p++) {
            double u = pt[2 * p], v = pt[2 * p + 1];
            if (!isfinite(u) || !isfinite(v)) {
              pen = FALSE;
              continue;
            }
            double px = conform_plot_x(a, u), py = conform_plot_y(a, v);
            if (pen)
              cairo_line_to(cr, px, py);
            else
              cairo_move_to(cr, px, py);
            pen = TRUE;
          }
        } else {
          double t = (double)l / (L - 1);
          if (fam == 0) { /* row: second coordinate fixed */
            double v = box4[2] + t * (box4[3] - box4[2]);
            cairo_move_to(cr, conform_plot_x(a, box4[0]), conform_plot_y(a, v));
            cairo_line_to(cr, conform_plot_x(a, box4[1]), conform_plot_y(a, v));
          } else {
            double u = box4[0] + t * (box4[1] - box4[0]);
            cairo_move_to(cr, conform_plot_x(a, u), conform_plot_y(a, box4[2]));
            cairo_line_to(cr, conform_plot_x(a, u), conform_plot_y(a, box4[3]));
          }
        }
        cairo_set_line_width(cr, outer ? 1.8 : 0.9);
        conform_cairo_set_rgba(cr, &c, outer ? MIN(1.0, alpha + 0.15) : alpha);
        cairo_stroke(cr);
      }
    }
  cairo_restore(cr);
}

/* One panel in the rectangle (x, y, w, h): title, axes, grid, points. */
static void
draw_panel(ConformMirrorView *self, cairo_t *cr, int kind, double x, double y, double w, double h, const GdkRGBA *fg,
           gboolean main_panel)
{
  static const char *const titles[] = {
    "mirror space y = g(x): the grid warped by g, g(held-out data), samples before f",
    "data space x: the regular grid that g warps, training data",
    "data space x: the mirror-space grid mapped back by f, training data, samples x = f(y)",
    "mirror space y: the regular grid that f maps back, g(held-out data), samples before f",
  };
  static const char *const short_titles[] = {"mirror space: g(grid)", "data space: regular grid",
                                             "data space: f(grid)", "mirror space: regular grid"};
  const double left = 48, right = 12, top = 36, bottom = 34;
  if (w < left + right + 20 || h < top + bottom + 20)
    return;
  const char *title = titles[kind];
  if (text_width(cr, title, TEXT_PX) > w - left - 8)
    title = short_titles[kind];
  draw_text(cr, title, x + left, y + 3, TEXT_PX, 0, 0, fg, main_panel ? 0.85 : 0.7);

  ConformPlotArea a;
  conform_plot_area_init(&a, w, h, left, right, top, bottom);
  a.x0 += x;
  a.y0 += y;
  gboolean mirror_space = kind == PANEL_MIRROR_WARPED || kind == PANEL_MIRROR_REGULAR;
  Box b, anchor;
  box_empty(&b);
  box_from(&anchor, mirror_space ? self->box_mirror : self->box_data);
  const int G = GRID_FLOATS / 2;
  switch (kind) {
  case PANEL_MIRROR_WARPED:
    box_add(&b, self->grid_g, G);
    box_add(&b, self->mirror_ref, self->n_ref);
    box_add(&b, self->mirror, self->mirror ? self->n : 0);
    break;
  case PANEL_DATA_WARPED:
    box_add(&b, self->grid_f, G);
    box_add(&b, self->x, self->n);
    box_add(&b, self->bg, self->n_bg);
    break;
  case PANEL_DATA_REGULAR:
    box_add(&b, self->bg, self->n_bg);
    break;
  case PANEL_MIRROR_REGULAR:
  default:
    box_add(&b, self->mirror_ref, self->n_ref);
    break;
  }
  for (int c = 0; c < 2; c++) { /* the regular grid's box always shows */
    b.lo[c] = MIN(b.lo[c], anchor.lo[c]);
    b.hi[c] = MAX(b.hi[c], anchor.hi[c]);
  }
  box_clamp(&b, &anchor, 1.5);
  equal_aspect(&a, &b, 0.04);
  conform_plot_draw_axes(cr, &a, fg, mirror_space ? "y0" : "x0", mirror_space ? "y1" : "x1");

  cairo_save(cr);
  cairo_rectangle(cr, a.x0, a.y0, a.w, a.h);
  cairo_clip(cr);
  GdkRGBA sc;
  sample_colour(self, &sc);
  int outside = 0; /* samples of a main panel not drawn */
  switch (kind) {
  case PANEL_MIRROR_WARPED:
    draw_grid(cr, &a, self->grid_g, NULL, 0.7);
    draw_points(cr, &a, self->mirror_ref, self->n_ref, DATA_RADIUS, fg, DATA_ALPHA + 0.1);
    outside = draw_points(cr, &a, self->mirror, self->mirror ? self->n : 0, PT_RADIUS, &sc, PT_ALPHA);
    break;
  case PANEL_DATA_REGULAR:
    draw_points(cr, &a, self->bg, self->n_bg, DATA_RADIUS, fg, DATA_ALPHA);
    draw_grid(cr, &a, NULL, self->box_data, 0.55);
    break;
  case PANEL_DATA_WARPED:
    draw_points(cr, &a, self->bg, self->n_bg, DATA_RADIUS, fg, DATA_ALPHA);
    draw_grid(cr, &a, self->grid_f, NULL, 0.7);
    outside = draw_points(cr, &a, self->x, self->n, PT_RADIUS, &sc, PT_ALPHA);
    break;
  case PANEL_MIRROR_REGULAR:
  default:
    draw_grid(cr, &a, NULL, self->box_mirror, 0.55);
    draw_points(cr, &a, self->mirror_ref, self->n_ref, DATA_RADIUS, fg, DATA_ALPHA + 0.1);
    draw_points(cr, &a, self->mirror, self->mirror ? self->n : 0, PT_RADIUS, &sc, PT_ALPHA * 0.7);
    break;
  }
  if (outside > 0 && main_panel) {
    g_autofree char *note = g_strdup_printf("%d of %d samples outside the view", outside, self->n);
    draw_text(cr, note, a.x0 + a.w - 5, a.y0 + a.h - 4, 9, 1, 1, fg, 0.75);
  }
  cairo_restore(cr);
  if (main_panel)
    self->n_outside = outside;
}

/* Legend at the right of the caption band; entries dropped from the front
 * when it does not fit. */
static void
draw_legend(ConformMirrorView *self, cairo_t *cr, int width, double used_left, const GdkRGBA *fg)
{
  enum { L_GRID, L_DATA, L_SAMPLES };
  gboolean g = self->mode == CONFORM_MIRROR_MODE_G;
  const char *texts[3] = {"grid rows / columns", g ? "g(held-out data)" : "training data",
                          g ? "samples in mirror space" : "samples"};
  double tw[3], wsum = 0;
  for (int i = 0; i < 3; i++) {
    tw[i] = text_width(cr, texts[i], TEXT_PX);
    wsum += tw[i] + (i == L_GRID ? 26 : 14) + 12;
  }
  int first = 0;
  while (first < 3 && width - 8 - wsum + 12 < used_left + 16) {
    wsum -= tw[first] + (first == L_GRID ? 26 : 14) + 12;
    first++;
  }
  double x = width - 8 - wsum + 12, cy = CAPTION_BAND / 2 + 1;
  GdkRGBA sc;
  sample_colour(self, &sc);
  for (int i = first; i < 3; i++) {
    if (i == L_GRID) {
      for (int fam = 0; fam < 2; fam++) {
        GdkRGBA c;
        grid_colour(fam, &c);
        cairo_move_to(cr, x + fam * 12, cy);
        cairo_line_to(cr, x + fam * 12 + 10, cy);
        cairo_set_line_width(cr, 2);
        conform_cairo_set_rgba(cr, &c, 0.9);
        cairo_stroke(cr);
      }
      x += 26;
    } else {
      cairo_new_path(cr);
      cairo_arc(cr, x + 4, cy, 3.5, 0, 2 * G_PI);
      if (i == L_SAMPLES)
        conform_cairo_set_rgba(cr, &sc, 0.8);
      else
        conform_cairo_set_rgba(cr, fg, 0.35);
      cairo_fill(cr);
      x += 14;
    }
    draw_text(cr, texts[i], x, cy, TEXT_PX, 0, 0.5, fg, 0.8);
    x += tw[i] + 12;
  }
}

static void
draw_full(ConformMirrorView *self, cairo_t *cr, int width, int height)
{
  GdkRGBA fg;
  conform_palette_fg(GTK_WIDGET(self), &fg);
  self->n_outside = 0;
  cairo_save(cr);
  cairo_new_path(cr);
  cairo_rectangle(cr, 0, 0, width, height);
  cairo_clip(cr);
  if (!self->has_maps) {
    const char *t = conform_mirror_view_get_empty_text(self);
    double w = MAX(width - 40, 40);
    PangoLayout *layout = pango_cairo_create_layout(cr);
    PangoFontDescription *fd = pango_font_description_from_string("Sans");
    pango_font_description_set_absolute_size(fd, 13 * PANGO_SCALE);
    pango_layout_set_font_description(layout, fd);
    pango_font_description_free(fd);
    pango_layout_set_width(layout, (int)(w * PANGO_SCALE));
    pango_layout_set_alignment(layout, PANGO_ALIGN_CENTER);
    pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_text(layout, t, -1);
    int lw, lh;
    pango_layout_get_pixel_size(layout, &lw, &lh);
    conform_cairo_set_rgba(cr, &fg, 0.6);
    cairo_move_to(cr, round(20), round(height / 2.0 - lh / 2.0));
    pango_cairo_show_layout(cr, layout);
    cairo_new_path(cr);
    g_object_unref(layout);
    cairo_restore(cr);
    return;
  }
  g_autofree char *cap = g_strdup_printf("step %ld · %d samples · %s", self->step, self->n,
                                         self->mode == CONFORM_MIRROR_MODE_G ? "g: data → mirror space"
                                                                             : "f: mirror space → data");
  double cw = draw_text(cr, cap, 8, CAPTION_BAND / 2 + 1, TEXT_PX + 1, 0, 0.5, &fg, 0.9);
  draw_legend(self, cr, width, 8 + cw, &fg);

  double top = CAPTION_BAND, avail_h = height - top;
  gboolean wide = width >= 1.3 * avail_h;
  double mx = 0, my = top, mw = width, mh = avail_h, sx = 0, sy = 0, sw = 0, sh = 0;
  if (wide) {
    mw = round(width * 0.63);
    sx = mw;
    sy = top;
    sw = width - mw;
    sh = avail_h;
  } else {
    mh = round(avail_h * 0.63);
    sx = 0;
    sy = top + mh;
    sw = width;
    sh = avail_h - mh;
  }
  gboolean side = sw >= SIDE_MIN && sh >= SIDE_MIN;
  if (!side) {
    mw = width;
    mh = avail_h;
  }
  gboolean g = self->mode == CONFORM_MIRROR_MODE_G;
  draw_panel(self, cr, g ? PANEL_MIRROR_WARPED : PANEL_DATA_WARPED, mx, my, mw, mh, &fg, TRUE);
  if (side) {
    /* the side panel takes at most a square, centred in its space */
    double s = MIN(sw, sh);
    double ox = sx + (wide ? 0 : (sw - s) / 2), oy = sy + (wide ? (sh - s) / 2 : 0);
    double pw = wide ? sw : s, ph = wide ? s : sh;
    draw_panel(self, cr, g ? PANEL_DATA_REGULAR : PANEL_MIRROR_REGULAR, ox, oy, pw, ph, &fg, FALSE);
  }
  cairo_restore(cr);
}

/* ------------------------------------------------------------------------ */
/* Widget                                                                   */

static void
canvas_draw_cb(GtkDrawingArea *area, cairo_t *cr, int width, int height, gpointer data)
{
  draw_full(CONFORM_MIRROR_VIEW(data), cr, width, height);
}

static void
redraw(ConformMirrorView *self)
{
  gtk_widget_queue_draw(self->canvas);
}

static void
mode_toggled_cb(GtkToggleButton *b, ConformMirrorView *self)
{
  if (self->syncing || !gtk_toggle_button_get_active(b))
    return;
  conform_mirror_view_set_mode(self, GTK_WIDGET(b) == self->f_button ? CONFORM_MIRROR_MODE_F : CONFORM_MIRROR_MODE_G);
}

static void
clear_maps(ConformMirrorView *self)
{
  self->has_maps = FALSE;
  g_clear_pointer(&self->strategy, g_free);
  g_clear_pointer(&self->x, g_free);
  g_clear_pointer(&self->mirror, g_free);
  g_clear_pointer(&self->mirror_ref, g_free);
  g_clear_pointer(&self->grid_g, g_free);
  g_clear_pointer(&self->grid_f, g_free);
  self->n = self->n_ref = 0;
  self->step = 0;
}

static void
conform_mirror_view_dispose(GObject *object)
{
  ConformMirrorView *self = CONFORM_MIRROR_VIEW(object);
  g_clear_pointer(&self->header, gtk_widget_unparent);
  g_clear_pointer(&self->canvas, gtk_widget_unparent);
  G_OBJECT_CLASS(conform_mirror_view_parent_class)->dispose(object);
}

static void
conform_mirror_view_finalize(GObject *object)
{
  ConformMirrorView *self = CONFORM_MIRROR_VIEW(object);
  clear_maps(self);
  g_free(self->reason);
  g_free(self->bg);
  g_free(self->empty_text);
  G_OBJECT_CLASS(conform_mirror_view_parent_class)->finalize(object);
}

static void
conform_mirror_view_css_changed(GtkWidget *widget, GtkCssStyleChange *change)
{
  GTK_WIDGET_CLASS(conform_mirror_view_parent_class)->css_changed(widget, change);
  ConformMirrorView *self = CONFORM_MIRROR_VIEW(widget);
  if (self->canvas)
    redraw(self); /* light/dark switch changes the foreground */
}

static void
conform_mirror_view_class_init(ConformMirrorViewClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = conform_mirror_view_dispose;
  oc->finalize = conform_mirror_view_finalize;
  wc->css_changed = conform_mirror_view_css_changed;
  gtk_widget_class_set_layout_manager_type(wc, GTK_TYPE_BOX_LAYOUT);
  gtk_widget_class_set_css_name(wc, "mirror-view");
}

static void
conform_mirror_view_init(ConformMirrorView *self)
{
  GtkWidget *w = GTK_WIDGET(self);
  GtkLayoutManager *layout = gtk_widget_get_layout_manager(w);
  gtk_orientable_set_orientation(GTK_ORIENTABLE(layout), GTK_ORIENTATION_VERTICAL);
  gtk_box_layout_set_spacing(GTK_BOX_LAYOUT(layout), 4);
  gtk_widget_set_hexpand(w, TRUE);
  gtk_widget_set_vexpand(w, TRUE);

  self->header = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *linked = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
  gtk_widget_add_css_class(linked, "linked");
  self->g_button = gtk_toggle_button_new_with_label("g: data → mirror");
  self->f_button = gtk_toggle_button_new_with_label("f: mirror → data");
  gtk_toggle_button_set_group(GTK_TOGGLE_BUTTON(self->f_button), GTK_TOGGLE_BUTTON(self->g_button));
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(self->g_button), TRUE);
  gtk_widget_set_tooltip_text(self->g_button, "The forward map g: a regular grid over the data's box and held-out "
                                              "data, carried into mirror space, where the diffusion model samples");
  gtk_widget_set_tooltip_text(self->f_button, "The inverse map f: a regular grid over mirror space mapped back to "
                                              "data space, where it should collapse onto (near) the constraint set");
  g_signal_connect(self->g_button, "toggled", G_CALLBACK(mode_toggled_cb), self);
  g_signal_connect(self->f_button, "toggled", G_CALLBACK(mode_toggled_cb), self);
  gtk_box_append(GTK_BOX(linked), self->g_button);
  gtk_box_append(GTK_BOX(linked), self->f_button);
  self->caption_label = gtk_label_new(captions[0]);
  gtk_label_set_xalign(GTK_LABEL(self->caption_label), 0);
  gtk_label_set_ellipsize(GTK_LABEL(self->caption_label), PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand(self->caption_label, TRUE);
  gtk_widget_add_css_class(self->caption_label, "dim-label");
  gtk_box_append(GTK_BOX(self->header), linked);
  gtk_box_append(GTK_BOX(self->header), self->caption_label);
  gtk_widget_set_margin_start(self->header, 6);
  gtk_widget_set_margin_end(self->header, 6);
  gtk_widget_set_parent(self->header, w);

  self->canvas = gtk_drawing_area_new();
  gtk_widget_set_hexpand(self->canvas, TRUE);
  gtk_widget_set_vexpand(self->canvas, TRUE);
  gtk_widget_set_size_request(self->canvas, 240, 200);
  gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(self->canvas), canvas_draw_cb, self, NULL);
  gtk_widget_set_parent(self->canvas, w);
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */

GtkWidget *
conform_mirror_view_new(void)
{
  return g_object_new(CONFORM_TYPE_MIRROR_VIEW, NULL);
}

void
conform_mirror_view_set_samples(ConformMirrorView *self, const ConformSampleSet *s)
{
  g_return_if_fail(CONFORM_IS_MIRROR_VIEW(self));
  clear_maps(self);
  g_clear_pointer(&self->reason, g_free);
  if (s && (!s->grid_g || !s->grid_f || !s->mirror_ref || s->dim != 2)) {
    if (s->dim != 2)
      self->reason = g_strdup_printf("The mirror-space view draws 2-D data; these samples have %d coordinates.",
                                     s->dim);
    else
      self->reason = g_strdup_printf("No mirror maps in these samples (strategy %s): they come with strategy "
                                     "mirror on 2-D data.",
                                     s->strategy ? s->strategy : "?");
  }
  if (s && !self->reason) {
    self->has_maps = TRUE;
    self->step = s->step;
    self->strategy = g_strdup(s->strategy);
    self->n = MAX(s->n, 0);
    self->x = s->x && self->n ? g_memdup2(s->x, sizeof(float) * 2 * (gsize)self->n) : NULL;
    self->mirror = s->mirror && self->n ? g_memdup2(s->mirror, sizeof(float) * 2 * (gsize)self->n) : NULL;
    if (!self->x)
      self->n = 0;
    self->n_ref = MAX(s->n_mirror_ref, 0);
    self->mirror_ref = self->n_ref ? g_memdup2(s->mirror_ref, sizeof(float) * 2 * (gsize)self->n_ref) : NULL;
    self->grid_g = g_memdup2(s->grid_g, sizeof(float) * GRID_FLOATS);
    self->grid_f = g_memdup2(s->grid_f, sizeof(float) * GRID_FLOATS);
    memcpy(self->box_data, s->box_data, sizeof self->box_data);
    memcpy(self->box_mirror, s->box_mirror, sizeof self->box_mirror);
  }
  redraw(self);
}

void
conform_mirror_view_set_background(ConformMirrorView *self, const float *x, int n, int dim)
{
  g_return_if_fail(CONFORM_IS_MIRROR_VIEW(self));
  g_clear_pointer(&self->bg, g_free);
  self->n_bg = 0;
  if (x && n > 0 && dim == 2) {
    self->bg = g_memdup2(x, sizeof(float) * 2 * (gsize)n);
    self->n_bg = n;
  }
  redraw(self);
}

void
conform_mirror_view_set_empty_text(ConformMirrorView *self, const char *text)
{
  g_return_if_fail(CONFORM_IS_MIRROR_VIEW(self));
  g_free(self->empty_text);
  self->empty_text = g_strdup(text);
  redraw(self);
}

const char *
conform_mirror_view_get_empty_text(ConformMirrorView *self)
{
  g_return_val_if_fail(CONFORM_IS_MIRROR_VIEW(self), "");
  if (self->has_maps)
    return "";
  if (self->empty_text)
    return self->empty_text;
  if (self->reason)
    return self->reason;
  return "No mirror maps yet: train with strategy mirror on 2-D data (the maps train first, then the diffusion "
         "model in mirror space).";
}

void
conform_mirror_view_set_mode(ConformMirrorView *self, ConformMirrorMode mode)
{
  g_return_if_fail(CONFORM_IS_MIRROR_VIEW(self));
  g_return_if_fail(mode == CONFORM_MIRROR_MODE_G || mode == CONFORM_MIRROR_MODE_F);
  self->mode = mode;
  self->syncing = TRUE;
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(mode == CONFORM_MIRROR_MODE_G ? self->g_button : self->f_button),
                               TRUE);
  self->syncing = FALSE;
  gtk_label_set_text(GTK_LABEL(self->caption_label), captions[mode]);
  gtk_widget_set_tooltip_text(self->caption_label, captions[mode]);
  redraw(self);
}

ConformMirrorMode
conform_mirror_view_get_mode(ConformMirrorView *self)
{
  g_return_val_if_fail(CONFORM_IS_MIRROR_VIEW(self), CONFORM_MIRROR_MODE_G);
  return self->mode;
}

GtkWidget *
conform_mirror_view_get_mode_button(ConformMirrorView *self, ConformMirrorMode mode)
{
  g_return_val_if_fail(CONFORM_IS_MIRROR_VIEW(self), NULL);
  return mode == CONFORM_MIRROR_MODE_F ? self->f_button : self->g_button;
}

const char *
conform_mirror_view_get_caption(ConformMirrorView *self)
{
  g_return_val_if_fail(CONFORM_IS_MIRROR_VIEW(self), "");
  return captions[self->mode];
}

int
conform_mirror_view_get_n_outside(ConformMirrorView *self)
{
  g_return_val_if_fail(CONFORM_IS_MIRROR_VIEW(self), 0);
  return self->n_outside;
}

gboolean
conform_mirror_view_has_maps(ConformMirrorView *self)
{
  g_return_val_if_fail(CONFORM_IS_MIRROR_VIEW(self), FALSE);
  return self->has_maps;
}

void
conform_mirror_view_draw(ConformMirrorView *self, cairo_t *cr, int width, int height)
{
  g_return_if_fail(CONFORM_IS_MIRROR_VIEW(self));
  g_return_if_fail(cr != NULL);
  if (width <= 0 || height <= 0)
    return;
  draw_full(self, cr, width, height);
}

static void
export_draw(gpointer self, cairo_t *cr, int width, int height)
{
  conform_mirror_view_draw(CONFORM_MIRROR_VIEW(self), cr, width, height);
}

gboolean
conform_mirror_view_export_png(ConformMirrorView *self, const char *path, int width, int height, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_MIRROR_VIEW(self), FALSE);
  g_return_val_if_fail(path != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  return conform_export_png(export_draw, self, width, height, conform_palette_is_dark(GTK_WIDGET(self)), path, error);
}
