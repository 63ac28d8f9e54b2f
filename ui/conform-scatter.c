#define G_LOG_DOMAIN "conform-scatter"

#include "conform-scatter.h"

#include <math.h>
#include <pango/pangocairo.h>
#include <string.h>

#include "conform-palette.h"

/* Drawing notes
 * - Limits (2-D, 3-D box, projection plane, histograms): per coordinate, each
 *   set (background, samples) contributes its robust range: the 0.5%..99.5%
 *   quantiles of its finite values, extended towards min/max by at most half
 *   the inter-quantile span. When background data is present the samples'
 *   range is clamped to the background range widened by twice its span on
 *   each side, so a few diverged samples never shrink the picture. 5% margin.
 * - Samples outside the 2-D view are drawn as small triangles pinned to the
 *   frame, pointing outwards, with a count in the corner; background points
 *   outside are clipped. Non-finite samples are skipped and counted.
 * - Discs are stamped into one image layer (anti-aliased, alpha accumulates
 *   so density shows) at the device pixel scale, then painted once.
 * - Arrows: only for the first CONFORM_SCATTER_MAX_ARROWS samples. */

#define HIST_BINS 20
#define HOVER_RADIUS 24.0
#define HOVER_MAX_DIMS 6
#define BG_RADIUS 1.5
#define PT_RADIUS 2.0
#define BG_ALPHA 0.15
#define PT_ALPHA 0.6
#define CAPTION_BAND 24.0
#define TEXT_PX 10.0

enum { VIEW_EMPTY, VIEW_1D, VIEW_2D, VIEW_3D, VIEW_PROJ };

enum { PROP_0, PROP_SHOW_BACKGROUND, PROP_SHOW_ARROWS, PROP_CAPTION, N_PROPS };
static GParamSpec *props[N_PROPS];

typedef struct {
  float *x;
  int n, dim;
  double *lo, *hi;     /* robust range per coordinate (NAN: no finite value) */
  double *qlo, *qhi;   /* 0.5% and 99.5% quantiles per coordinate (histograms) */
  gboolean plane_ok;   /* plo/phi valid for the current projection */
  double plo[2], phi[2];
} PointSet;

struct _ConformScatter {
  GtkWidget parent_instance;

  PointSet bg, pts;
  PointSet fit; /* when set: the axes fit these points instead of pts (shared axes) */
  float *raw;
  int n_raw, raw_dim;

  /* Feasible set: orthonormal rows Q (rank x cdim), Q x = qc; x0 min-norm. */
  double *A, *b;
  int m, cdim, rank;
  double *Q, *qc, *x0;
  gboolean infeasible, invalid;

  double *basis, *center;
  int proj_dim;

  gboolean show_bg, show_arrows;
  /* Rendered background layer, reused while nothing it depends on changes
   * (the data, the view mapping, the size and the colour): sample previews
   * then only redraw the samples. */
  cairo_surface_t *bg_cache;
  guint bg_generation, bg_cache_generation;
  int bg_cache_w, bg_cache_h;
  double bg_cache_scale;
  GdkRGBA bg_cache_fg;
  guint8 bg_cache_view[512]; /* the View it was drawn for (compared bytewise) */
  char **names;
  char *caption;
  double yaw, pitch, drag_yaw, drag_pitch;
  gboolean dragging;

  /* Pixel positions of the samples at pix_w x pix_h, geometry serial pix_serial. */
  guint serial;
  float *pix;
  int pix_n, pix_w, pix_h;
  guint pix_serial;

  GtkWidget *hover_label;
  int hover_idx;
};

G_DEFINE_FINAL_TYPE(ConformScatter, conform_scatter, GTK_TYPE_WIDGET)

typedef struct {
  int kind, dim;
  gboolean bg_ok; /* background has the data dimension */
  ConformPlotArea area;
  double sx, sy, sw, sh; /* histogram strip */
  /* 3-D */
  double lo[3], hi[3], c[3], s, R[3][3], pcx, pcy, scale;
  /* projection plane */
  const double *basis, *center;
} View;

/* The widget whose theme colours apply: an unrooted widget has no computed
 * style (GTK's initial foreground is white), so fall back to the palette's
 * default dark foreground on a light background. */
static GtkWidget *
theme_widget(ConformScatter *self)
{
  return gtk_widget_get_root(GTK_WIDGET(self)) ? GTK_WIDGET(self) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Robust ranges                                                             */

static float
select_k(float *a, int n, int k)
{
  int l = 0, r = n - 1;
  while (l < r) {
    float pivot = a[l + (r - l) / 2];
    int i = l, j = r;
    while (i <= j) {
      while (a[i] < pivot)
        i++;
      while (a[j] > pivot)
        j--;
      if (i <= j) {
        float t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j)
      r = j;
    else if (k >= i)
      l = i;
    else
      break;
  }
  return a[k];
}

/* buf holds n finite values and is reordered. The quantiles go to qlo/qhi
 * when given. */
static gboolean
robust_range(float *buf, int n, double *lo, double *hi, double *qlo, double *qhi)
{
  if (n <= 0) {
    *lo = *hi = NAN;
    if (qlo)
      *qlo = *qhi = NAN;
    return FALSE;
  }
  float mn = buf[0], mx = buf[0];
  for (int i = 1; i < n; i++) {
    mn = MIN(mn, buf[i]);
    mx = MAX(mx, buf[i]);
  }
  double ql = select_k(buf, n, (int)floor(0.005 * (n - 1)));
  double qh = select_k(buf, n, (int)ceil(0.995 * (n - 1)));
  double span = qh - ql;
  *lo = MAX((double)mn, ql - 0.5 * span);
  *hi = MIN((double)mx, qh + 0.5 * span);
  if (qlo) {
    *qlo = ql;
    *qhi = qh;
  }
  return TRUE;
}

static void
pointset_clear(PointSet *ps)
{
  g_clear_pointer(&ps->x, g_free);
  g_clear_pointer(&ps->lo, g_free);
  g_clear_pointer(&ps->qlo, g_free);
  g_clear_pointer(&ps->qhi, g_free);
  g_clear_pointer(&ps->hi, g_free);
  ps->n = 0;
  ps->dim = 0;
  ps->plane_ok = FALSE;
}

static void
pointset_set(PointSet *ps, const float *x, int n, int dim)
{
  pointset_clear(ps);
  ps->dim = dim;
  if (n <= 0 || dim <= 0)
    return;
  ps->n = n;
  ps->x = g_memdup2(x, (gsize)n * (gsize)dim * sizeof(float));
  ps->lo = g_new(double, dim);
  ps->qlo = g_new(double, dim);
  ps->qhi = g_new(double, dim);
  ps->hi = g_new(double, dim);
  float *buf = g_new(float, n);
  for (int k = 0; k < dim; k++) {
    int cnt = 0;
    for (int i = 0; i < n; i++) {
      float v = ps->x[(gsize)i * dim + k];
      if (isfinite(v))
        buf[cnt++] = v;
    }
    robust_range(buf, cnt, &ps->lo[k], &ps->hi[k], &ps->qlo[k], &ps->qhi[k]);
  }
  g_free(buf);
}

/* Projects row x (dim) onto the plane; FALSE when a coordinate is not finite. */
static inline gboolean
plane_coords(const double *basis, const double *center, int dim, const float *x, double *u, double *v)
{
  double a = 0, b = 0;
  if (!basis) {
    for (int k = 0; k < dim; k++)
      if (!isfinite(x[k]))
        return FALSE;
    *u = x[0];
    *v = x[1];
    return TRUE;
  }
  for (int k = 0; k < dim; k++) {
    double d = (double)x[k] - (center ? center[k] : 0.0);
    if (!isfinite(d))
      return FALSE;
    a += basis[k] * d;
    b += basis[dim + k] * d;
  }
  *u = a;
  *v = b;
  return TRUE;
}

static void
pointset_plane_stats(PointSet *ps, const double *basis, const double *center)
{
  if (ps->plane_ok)
    return;
  ps->plane_ok = TRUE;
  ps->plo[0] = ps->plo[1] = ps->phi[0] = ps->phi[1] = NAN;
  if (ps->n <= 0 || ps->dim < 2)
    return;
  float *bu = g_new(float, ps->n), *bv = g_new(float, ps->n);
  int cnt = 0;
  for (int i = 0; i < ps->n; i++) {
    double u, v;
    if (plane_coords(basis, center, ps->dim, ps->x + (gsize)i * ps->dim, &u, &v) && isfinite((float)u) &&
        isfinite((float)v)) {
      bu[cnt] = (float)u;
      bv[cnt] = (float)v;
      cnt++;
    }
  }
  robust_range(bu, cnt, &ps->plo[0], &ps->phi[0], NULL, NULL);
  robust_range(bv, cnt, &ps->plo[1], &ps->phi[1], NULL, NULL);
  g_free(bu);
  g_free(bv);
}

/* Union of the background range and the (clamped) sample range. */
static gboolean
union_range(double blo, double bhi, double plo, double phi, double *lo, double *hi)
{
  gboolean has_b = isfinite(blo) && isfinite(bhi), has_p = isfinite(plo) && isfinite(phi);
  if (has_b && has_p) {
    double span = bhi - blo;
    if (span <= 0)
      span = MAX(1.0, fabs(blo));
    plo = MAX(plo, blo - 2 * span);
    phi = MIN(phi, bhi + 2 * span);
    if (phi < plo)
      has_p = FALSE;
  }
  if (has_b && has_p) {
    *lo = MIN(blo, plo);
    *hi = MAX(bhi, phi);
  } else if (has_b) {
    *lo = blo;
    *hi = bhi;
  } else if (has_p) {
    *lo = plo;
    *hi = phi;
  } else {
    return FALSE;
  }
  return TRUE;
}

static gboolean
view_has_bg(ConformScatter *self, int dim)
{
  return self->bg.n > 0 && self->bg.dim == dim;
}

/* The samples the axes fit: the range points when set, else the samples. */
static PointSet *
fit_set(ConformScatter *self, int dim)
{
  return self->fit.n > 0 && self->fit.dim == dim ? &self->fit : &self->pts;
}

static void
coord_range(ConformScatter *self, int dim, int k, double *lo, double *hi)
{
  gboolean bg = view_has_bg(self, dim);
  PointSet *fp = fit_set(self, dim);
  double blo = bg ? self->bg.lo[k] : NAN, bhi = bg ? self->bg.hi[k] : NAN;
  double plo = fp->n > 0 ? fp->lo[k] : NAN, phi = fp->n > 0 ? fp->hi[k] : NAN;
  if (!union_range(blo, bhi, plo, phi, lo, hi)) {
    *lo = -1;
    *hi = 1;
  }
}

static void
padded(double *lo, double *hi, double frac)
{
  double span = *hi - *lo;
  *lo -= frac * span;
  *hi += frac * span;
}

/* ------------------------------------------------------------------------ */
/* View geometry                                                            */

static int
data_dim(ConformScatter *self)
{
  if (self->pts.n > 0)
    return self->pts.dim;
  if (self->bg.n > 0)
    return self->bg.dim;
  return 0;
}

static gboolean
constraint_applies(ConformScatter *self, int dim)
{
  return self->m > 0 && self->cdim == dim && !self->invalid && !self->infeasible && self->rank > 0;
}

/* Sets area limits to [xlo, xhi] x [ylo, yhi] widened to an equal aspect ratio. */
static void
equal_aspect(ConformPlotArea *a, double xlo, double xhi, double ylo, double yhi)
{
  double cx = 0.5 * (xlo + xhi), cy = 0.5 * (ylo + yhi);
  double dx = xhi - xlo, dy = yhi - ylo;
  if (!(MAX(dx, dy) > 1e-12 * (1 + fabs(cx) + fabs(cy)))) {
    dx = dy = 2 * MAX(0.5, 0.05 * MAX(fabs(cx), fabs(cy)));
  }
  dx = MAX(dx, 1e-300);
  dy = MAX(dy, 1e-300);
  double k = MIN(a->w / dx, a->h / dy);
  double hx = 0.5 * a->w / k, hy = 0.5 * a->h / k;
  a->xmin = cx - hx;
  a->xmax = cx + hx;
  a->ymin = cy - hy;
  a->ymax = cy + hy;
}

static void
include_point(double *lo, double *hi, double v)
{
  double span = *hi - *lo;
  if (isfinite(v) && v >= *lo - span && v <= *hi + span) {
    *lo = MIN(*lo, v);
    *hi = MAX(*hi, v);
  }
}

static void
compute_view(ConformScatter *self, int width, int height, View *v)
{
  memset(v, 0, sizeof *v);
  int dim = data_dim(self);
  v->dim = dim;
  v->bg_ok = view_has_bg(self, dim);
  if (dim <= 0) {
    v->kind = VIEW_EMPTY;
    return;
  }
  const double left = 50, right = 14, top = 34, bottom = 36;
  if (dim == 1) {
    v->kind = VIEW_1D;
    v->sx = 8;
    v->sy = CAPTION_BAND + 6;
    v->sw = MAX(width - 16, 1);
    v->sh = MAX(height - v->sy - 8, 1);
    return;
  }
  if (dim == 2) {
    v->kind = VIEW_2D;
    conform_plot_area_init(&v->area, width, height, left, right, top, bottom);
    double xlo, xhi, ylo, yhi;
    coord_range(self, dim, 0, &xlo, &xhi);
    coord_range(self, dim, 1, &ylo, &yhi);
    if (constraint_applies(self, dim) && self->rank == 2) {
      include_point(&xlo, &xhi, self->x0[0]);
      include_point(&ylo, &yhi, self->x0[1]);
    }
    padded(&xlo, &xhi, 0.05);
    padded(&ylo, &yhi, 0.05);
    equal_aspect(&v->area, xlo, xhi, ylo, yhi);
    return;
  }
  if (dim == 3) {
    v->kind = VIEW_3D;
    double smax = 0;
    for (int k = 0; k < 3; k++) {
      coord_range(self, dim, k, &v->lo[k], &v->hi[k]);
      if (constraint_applies(self, dim) && self->rank == 3)
        include_point(&v->lo[k], &v->hi[k], self->x0[k]);
      padded(&v->lo[k], &v->hi[k], 0.02);
      v->c[k] = 0.5 * (v->lo[k] + v->hi[k]);
      smax = MAX(smax, 0.5 * (v->hi[k] - v->lo[k]));
    }
    if (!(smax > 1e-12 * (1 + fabs(v->c[0]) + fabs(v->c[1]) + fabs(v->c[2]))))
      smax = 1;
    /* Flat axes keep a minimum thickness so the box stays readable. */
    for (int k = 0; k < 3; k++) {
      double h = 0.5 * (v->hi[k] - v->lo[k]);
      if (h < 0.05 * smax) {
        v->lo[k] = v->c[k] - 0.05 * smax;
        v->hi[k] = v->c[k] + 0.05 * smax;
      }
    }
    v->s = smax;
    double cy = cos(self->yaw), sy = sin(self->yaw), cp = cos(self->pitch), sp = sin(self->pitch);
    double R[3][3] = {{cy, -sy, 0}, {sp * sy, sp * cy, cp}, {cp * sy, cp * cy, -sp}};
    memcpy(v->R, R, sizeof R);
    double r2 = 0;
    for (int k = 0; k < 3; k++) {
      double e = 0.5 * (v->hi[k] - v->lo[k]) / v->s;
      r2 += e * e;
    }
    double top3 = CAPTION_BAND + 4, aw = MAX(width - 16, 1), ah = MAX(height - top3 - 8, 1);
    v->pcx = 8 + aw / 2;
    v->pcy = top3 + ah / 2;
    v->scale = MAX(MIN(aw, ah) / 2 - 14, 4) / sqrt(MAX(r2, 1e-12));
    return;
  }
  v->kind = VIEW_PROJ;
  gboolean has_basis = self->basis && self->proj_dim == dim;
  v->basis = has_basis ? self->basis : NULL;
  v->center = has_basis ? self->center : NULL;
  double strip = MAX(round(0.25 * height), 56);
  v->sx = 8;
  v->sw = MAX(width - 16, 1);
  v->sh = strip - 6;
  v->sy = height - strip;
  conform_plot_area_init(&v->area, width, height - strip, left, right, top, bottom);
  pointset_plane_stats(&self->pts, v->basis, v->center);
  PointSet *fp = fit_set(self, dim);
  if (fp != &self->pts)
    pointset_plane_stats(fp, v->basis, v->center);
  if (v->bg_ok)
    pointset_plane_stats(&self->bg, v->basis, v->center);
  double lo[2], hi[2];
  for (int k = 0; k < 2; k++) {
    double blo = v->bg_ok ? self->bg.plo[k] : NAN, bhi = v->bg_ok ? self->bg.phi[k] : NAN;
    double plo = fp->n > 0 ? fp->plo[k] : NAN, phi = fp->n > 0 ? fp->phi[k] : NAN;
    if (!union_range(blo, bhi, plo, phi, &lo[k], &hi[k])) {
      lo[k] = -1;
      hi[k] = 1;
    }
    padded(&lo[k], &hi[k], 0.05);
  }
  equal_aspect(&v->area, lo[0], hi[0], lo[1], hi[1]);
}

static inline void
view_3d(const View *v, const double *x, double *px, double *py)
{
  double X[3];
  for (int k = 0; k < 3; k++)
    X[k] = (x[k] - v->c[k]) / v->s;
  double u = v->R[0][0] * X[0] + v->R[0][1] * X[1] + v->R[0][2] * X[2];
  double w = v->R[1][0] * X[0] + v->R[1][1] * X[1] + v->R[1][2] * X[2];
  *px = v->pcx + v->scale * u;
  *py = v->pcy - v->scale * w;
}

/* Pixel position of a data row; FALSE when it cannot be drawn. */
static inline gboolean
view_project(const View *v, const float *x, double *px, double *py)
{
  switch (v->kind) {
  case VIEW_2D:
    if (!isfinite(x[0]) || !isfinite(x[1]))
      return FALSE;
    *px = conform_plot_x(&v->area, x[0]);
    *py = conform_plot_y(&v->area, x[1]);
    return TRUE;
  case VIEW_3D: {
    if (!isfinite(x[0]) || !isfinite(x[1]) || !isfinite(x[2]))
      return FALSE;
    double d[3] = {x[0], x[1], x[2]};
    view_3d(v, d, px, py);
    return TRUE;
  }
  case VIEW_PROJ: {
    double u, w;
    if (!plane_coords(v->basis, v->center, v->dim, x, &u, &w))
      return FALSE;
    *px = conform_plot_x(&v->area, u);
    *py = conform_plot_y(&v->area, w);
    return isfinite(*px) && isfinite(*py);
  }
  default:
    return FALSE;
  }
}

static gboolean
view_is_planar(const View *v)
{
  return v->kind == VIEW_2D || v->kind == VIEW_PROJ;
}

/* Sample pixel positions for the widget-size view (NAN when not drawable). */
static void
ensure_pixel_cache(ConformScatter *self, const View *v, int width, int height)
{
  if (self->pix && self->pix_w == width && self->pix_h == height && self->pix_serial == self->serial &&
      self->pix_n == self->pts.n)
    return;
  g_free(self->pix);
  self->pix = g_new(float, 2 * (gsize)MAX(self->pts.n, 1));
  self->pix_n = self->pts.n;
  self->pix_w = width;
  self->pix_h = height;
  self->pix_serial = self->serial;
  for (int i = 0; i < self->pts.n; i++) {
    double px, py;
    const float *x = self->pts.x + (gsize)i * self->pts.dim;
    if (v->kind != VIEW_1D && v->kind != VIEW_EMPTY && view_project(v, x, &px, &py)) {
      self->pix[2 * i] = (float)px;
      self->pix[2 * i + 1] = (float)py;
    } else {
      self->pix[2 * i] = self->pix[2 * i + 1] = NAN;
    }
  }
}

static void
invalidate(ConformScatter *self)
{
  self->serial++;
  if (self->hover_idx >= 0) {
    self->hover_idx = -1;
    gtk_widget_set_visible(self->hover_label, FALSE);
  }
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

/* ------------------------------------------------------------------------ */
/* Disc layer: anti-aliased discs stamped into an ARGB32 image whose alpha
 * accumulates, painted once. Much faster than one cairo_arc per point.     */

typedef struct {
  cairo_surface_t *surface;
  guint8 *data;
  int w, h, stride;
  double scale;
} Layer;

static gboolean
layer_init(Layer *l, int width, int height, double scale)
{
  l->scale = scale;
  l->w = MAX(1, (int)ceil(width * scale));
  l->h = MAX(1, (int)ceil(height * scale));
  l->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, l->w, l->h);
  if (cairo_surface_status(l->surface) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(l->surface);
    l->surface = NULL;
    return FALSE;
  }
  cairo_surface_flush(l->surface);
  l->data = cairo_image_surface_get_data(l->surface);
  l->stride = cairo_image_surface_get_stride(l->surface);
  cairo_surface_set_device_scale(l->surface, scale, scale);
  return TRUE;
}

/* Blends colour rgb (0..255, not premultiplied) with weight w (alpha times
 * coverage, 0..256) over the premultiplied pixel p. */
static inline guint32
blend(guint32 p, const guint32 rgb[3], guint32 w)
{
  guint32 keep = 256 - w;
  guint32 a = (255 * w + (p >> 24) * keep) >> 8;
  guint32 r = (rgb[0] * w + ((p >> 16) & 0xff) * keep) >> 8;
  guint32 g = (rgb[1] * w + ((p >> 8) & 0xff) * keep) >> 8;
  guint32 bl = (rgb[2] * w + (p & 0xff) * keep) >> 8;
  return (a << 24) | (r << 16) | (g << 8) | bl;
}

/* Anti-aliased disc sprites (alpha x coverage) for 4 x 4 sub-pixel offsets. */
typedef struct {
  int R, S;
  guint16 *w; /* [4][4][S][S] */
  guint32 rgb[3];
} Stamp;

static void
stamp_init(Stamp *st, const Layer *l, double radius, const GdkRGBA *c, double alpha)
{
  double r = radius * l->scale, ro = r + 0.5, ri = MAX(r - 0.5, 0);
  st->R = (int)ceil(ro);
  st->S = 2 * st->R + 1;
  st->w = g_new(guint16, 16 * (gsize)st->S * st->S);
  st->rgb[0] = (guint32)lround(c->red * 255);
  st->rgb[1] = (guint32)lround(c->green * 255);
  st->rgb[2] = (guint32)lround(c->blue * 255);
  double a = CLAMP(c->alpha * alpha, 0, 1) * 256;
  for (int qy = 0; qy < 4; qy++)
    for (int qx = 0; qx < 4; qx++) {
      guint16 *m = st->w + (gsize)(qy * 4 + qx) * st->S * st->S;
      for (int j = 0; j < st->S; j++)
        for (int i = 0; i < st->S; i++) {
          double dx = i - st->R + 0.5 - (qx + 0.5) / 4, dy = j - st->R + 0.5 - (qy + 0.5) / 4;
          double d = sqrt(dx * dx + dy * dy);
          double cov = d <= ri ? 1 : d >= ro ? 0 : ro - d;
          m[j * st->S + i] = (guint16)lround(a * cov);
        }
    }
}

static void
stamp_clear(Stamp *st)
{
  g_clear_pointer(&st->w, g_free);
}

/* Stamps a disc centred at user-space (x, y). */
static inline void
layer_disc(Layer *l, const Stamp *st, double x, double y)
{
  x *= l->scale;
  y *= l->scale;
  double fx = floor(x), fy = floor(y);
  int ix = (int)fx - st->R, iy = (int)fy - st->R;
  int q = MIN((int)((y - fy) * 4), 3) * 4 + MIN((int)((x - fx) * 4), 3);
  const guint16 *m = st->w + (gsize)q * st->S * st->S;
  int i0 = MAX(0, -ix), i1 = MIN(st->S, l->w - ix), j0 = MAX(0, -iy), j1 = MIN(st->S, l->h - iy);
  for (int j = j0; j < j1; j++) {
    guint32 *row = (guint32 *)(l->data + (gsize)(iy + j) * l->stride) + ix;
    const guint16 *mr = m + j * st->S;
    for (int i = i0; i < i1; i++)
      if (mr[i])
        row[i] = blend(row[i], st->rgb, mr[i]);
  }
}

/* Anti-aliased ~1 px line (Wu) from (xa, ya) to (xb, yb) in user space. */
static void
layer_line(Layer *l, double xa, double ya, double xb, double yb, const guint32 rgb[3], double alpha)
{
  xa *= l->scale;
  ya *= l->scale;
  xb *= l->scale;
  yb *= l->scale;
  gboolean steep = fabs(yb - ya) > fabs(xb - xa);
  if (steep) {
    double t = xa;
    xa = ya;
    ya = t;
    t = xb;
    xb = yb;
    yb = t;
  }
  if (xa > xb) {
    double t = xa;
    xa = xb;
    xb = t;
    t = ya;
    ya = yb;
    yb = t;
  }
  double dx = xb - xa, grad = dx > 1e-9 ? (yb - ya) / dx : 0;
  /* thickness correction keeps diagonal lines as heavy as straight ones */
  double a = CLAMP(alpha * sqrt(1 + grad * grad), 0, 1) * 256;
  int lim_major = steep ? l->h : l->w, lim_minor = steep ? l->w : l->h;
  int s0 = MAX((int)ceil(xa - 0.5), 0), s1 = MIN((int)floor(xb - 0.5), lim_major - 1);
  for (int k = s0; k <= s1; k++) {
    double yc = ya + grad * (k + 0.5 - xa) - 0.5;
    double fl = floor(yc);
    if (!(fl >= -1 && fl < lim_minor))
      continue;
    int m0 = (int)fl;
    double f = yc - fl;
    for (int e = 0; e < 2; e++) {
      int mm = m0 + e;
      if (mm < 0 || mm >= lim_minor)
        continue;
      guint32 w = (guint32)(a * (e ? f : 1 - f));
      if (!w)
        continue;
      int px = steep ? mm : k, py = steep ? k : mm;
      guint32 *p = (guint32 *)(l->data + (gsize)py * l->stride) + px;
      *p = blend(*p, rgb, w);
    }
  }
}

static void
layer_paint(Layer *l, cairo_t *cr)
{
  cairo_surface_mark_dirty(l->surface);
  cairo_set_source_surface(cr, l->surface, 0, 0);
  cairo_paint(cr);
  cairo_surface_destroy(l->surface);
  l->surface = NULL;
}

/* ------------------------------------------------------------------------ */
/* Text                                                                     */

static PangoLayout *
text_layout(cairo_t *cr, const char *text, double px, gboolean bold)
{
  PangoLayout *layout = pango_cairo_create_layout(cr);
  PangoFontDescription *fd = pango_font_description_from_string("Sans");
  pango_font_description_set_absolute_size(fd, px * PANGO_SCALE);
  if (bold)
    pango_font_description_set_weight(fd, PANGO_WEIGHT_SEMIBOLD);
  pango_layout_set_font_description(layout, fd);
  pango_font_description_free(fd);
  pango_layout_set_text(layout, text, -1);
  return layout;
}

static double
text_width(cairo_t *cr, const char *text, double px)
{
  PangoLayout *layout = text_layout(cr, text, px, FALSE);
  int w, h;
  pango_layout_get_pixel_size(layout, &w, &h);
  g_object_unref(layout);
  return w;
}

/* Draws text with its box anchored at (x, y): ax/ay 0 = left/top, 0.5 = centre,
 * 1 = right/bottom. Returns the width. */
static double
draw_text(cairo_t *cr, const char *text, double x, double y, double px, double ax, double ay, const GdkRGBA *c,
          double alpha)
{
  PangoLayout *layout = text_layout(cr, text, px, FALSE);
  int w, h;
  pango_layout_get_pixel_size(layout, &w, &h);
  conform_cairo_set_rgba(cr, c, alpha);
  cairo_move_to(cr, round(x - ax * w), round(y - ay * h));
  pango_cairo_show_layout(cr, layout);
  cairo_new_path(cr); /* drop the current point left by move_to */
  g_object_unref(layout);
  return w;
}

static const char *
coord_name(ConformScatter *self, int k, char *buf, gsize len)
{
  if (self->names) {
    guint n = g_strv_length(self->names);
    if ((guint)k < n && self->names[k][0])
      return self->names[k];
  }
  g_snprintf(buf, len, "x%d", k);
  return buf;
}

/* ------------------------------------------------------------------------ */
/* Geometry helpers                                                         */

/* Clips p + t d to the box [lo, hi]; FALSE when it misses. */
static gboolean
clip_line(const double *p, const double *d, const double *lo, const double *hi, int dim, double *t0, double *t1)
{
  double a = -INFINITY, b = INFINITY;
  for (int k = 0; k < dim; k++) {
    if (fabs(d[k]) < 1e-300) {
      if (p[k] < lo[k] || p[k] > hi[k])
        return FALSE;
      continue;
    }
    double ta = (lo[k] - p[k]) / d[k], tb = (hi[k] - p[k]) / d[k];
    if (ta > tb) {
      double t = ta;
      ta = tb;
      tb = t;
    }
    a = MAX(a, ta);
    b = MIN(b, tb);
  }
  if (!(a <= b) || !isfinite(a) || !isfinite(b))
    return FALSE;
  *t0 = a;
  *t1 = b;
  return TRUE;
}

static void
arrow_head(cairo_t *cr, double x1, double y1, double x2, double y2, double len, double half)
{
  double dx = x2 - x1, dy = y2 - y1, d = hypot(dx, dy);
  if (d < 1e-9)
    return;
  dx /= d;
  dy /= d;
  cairo_move_to(cr, x2, y2);
  cairo_line_to(cr, x2 - len * dx + half * dy, y2 - len * dy - half * dx);
  cairo_line_to(cr, x2 - len * dx - half * dy, y2 - len * dy + half * dx);
  cairo_close_path(cr);
}

static void
sample_colour(ConformScatter *self, GdkRGBA *c)
{
  conform_palette_series(conform_palette_is_dark(theme_widget(self)) ? 1 : 4, c);
}

static gboolean
arrows_active(ConformScatter *self)
{
  return self->show_arrows && self->raw && self->n_raw == self->pts.n && self->raw_dim == self->pts.dim &&
         self->pts.n > 0;
}

/* ------------------------------------------------------------------------ */
/* Drawing parts                                                            */

typedef struct {
  int n_nonfinite, n_outside;
} Notes;

/* Background discs, clipped to the planar view. The layer is cached: it
 * is rebuilt only when the data, the view mapping (limits, rotation,
 * projection), the size or the colour change. */
static void
draw_background(ConformScatter *self, cairo_t *cr, const View *v, int width, int height, double scale,
                const GdkRGBA *fg)
{
  if (!v->bg_ok || !self->show_bg)
    return;
  G_STATIC_ASSERT(sizeof(View) <= sizeof(((ConformScatter *)0)->bg_cache_view));
  gboolean planar = view_is_planar(v);
  double xa = v->area.x0, xb = v->area.x0 + v->area.w, ya = v->area.y0, yb = v->area.y0 + v->area.h;
  gboolean hit = self->bg_cache && self->bg_cache_generation == self->bg_generation && self->bg_cache_w == width &&
                 self->bg_cache_h == height && self->bg_cache_scale == scale && gdk_rgba_equal(&self->bg_cache_fg, fg) &&
                 memcmp(self->bg_cache_view, v, sizeof *v) == 0;
  if (!hit) {
    g_clear_pointer(&self->bg_cache, cairo_surface_destroy);
    Layer layer;
    if (!layer_init(&layer, width, height, scale))
      return;
    Stamp st;
    stamp_init(&st, &layer, BG_RADIUS, fg, BG_ALPHA);
    for (int i = 0; i < self->bg.n; i++) {
      double px, py;
      if (!view_project(v, self->bg.x + (gsize)i * self->bg.dim, &px, &py))
        continue;
      if (planar ? (px < xa - 3 || px > xb + 3 || py < ya - 3 || py > yb + 3)
                 : (px < -10 || py < -10 || px > width + 10 || py > height + 10))
        continue;
      layer_disc(&layer, &st, px, py);
    }
    stamp_clear(&st);
    cairo_surface_mark_dirty(layer.surface);
    self->bg_cache = layer.surface; /* kept, not painted-and-destroyed */
    self->bg_cache_generation = self->bg_generation;
    self->bg_cache_w = width;
    self->bg_cache_h = height;
    self->bg_cache_scale = scale;
    self->bg_cache_fg = *fg;
    memcpy(self->bg_cache_view, v, sizeof *v);
  }
  cairo_save(cr);
  if (planar) {
    cairo_rectangle(cr, xa, ya, xb - xa, yb - ya);
    cairo_clip(cr);
  }
  cairo_set_source_surface(cr, self->bg_cache, 0, 0);
  cairo_paint(cr);
  cairo_restore(cr);
}

/* Arrows raw -> sample for the first CONFORM_SCATTER_MAX_ARROWS samples:
 * heads are filled with cairo (under the sample discs), shafts go into the
 * sample layer. */
static void
draw_arrows(ConformScatter *self, cairo_t *cr, const View *v, Layer *layer)
{
  if (!arrows_active(self) || v->kind == VIEW_1D)
    return;
  GdkRGBA ac;
  conform_palette_series(5, &ac);
  guint32 rgb[3] = {(guint32)lround(ac.red * 255), (guint32)lround(ac.green * 255), (guint32)lround(ac.blue * 255)};
  int n = MIN(self->pts.n, CONFORM_SCATTER_MAX_ARROWS);
  cairo_save(cr);
  if (view_is_planar(v)) {
    cairo_rectangle(cr, v->area.x0, v->area.y0, v->area.w, v->area.h);
    cairo_clip(cr);
  }
  for (int i = 0; i < n; i++) {
    double rx, ry, px = self->pix[2 * i], py = self->pix[2 * i + 1];
    if (!isfinite(px) || !view_project(v, self->raw + (gsize)i * self->raw_dim, &rx, &ry))
      continue;
    double len = hypot(px - rx, py - ry);
    if (len < 2.5 || !isfinite(len))
      continue;
    /* clip the shaft to the canvas so far-off raw samples stay cheap */
    double p0[2] = {rx, ry}, d[2] = {px - rx, py - ry}, lo[2] = {-4, -4};
    double hi[2] = {layer->w / layer->scale + 4, layer->h / layer->scale + 4}, t0, t1;
    if (clip_line(p0, d, lo, hi, 2, &t0, &t1) && t1 > 0 && t0 < 1) {
      t0 = MAX(t0, 0);
      t1 = MIN(t1, 1);
      layer_line(layer, rx + t0 * d[0], ry + t0 * d[1], rx + t1 * d[0], ry + t1 * d[1], rgb, 0.4);
    }
    double hl = MIN(5.0, 0.6 * len);
    arrow_head(cr, rx, ry, px, py, hl, hl * 0.5);
  }
  conform_cairo_set_rgba(cr, &ac, 0.6);
  cairo_fill(cr);
  cairo_restore(cr);
}

/* Sample discs from the pixel cache (with the arrow shafts under them);
 * samples outside the planar view become triangles pinned to the frame.
 * Fills the counts in notes. */
static void
draw_samples(ConformScatter *self, cairo_t *cr, const View *v, int width, int height, double scale, Notes *notes)
{
  if (self->pts.n == 0)
    return;
  GdkRGBA sc;
  sample_colour(self, &sc);
  Layer layer;
  if (!layer_init(&layer, width, height, scale))
    return;
  draw_arrows(self, cr, v, &layer);
  Stamp st;
  stamp_init(&st, &layer, PT_RADIUS, &sc, PT_ALPHA);
  gboolean planar = view_is_planar(v);
  double xa = v->area.x0, xb = v->area.x0 + v->area.w, ya = v->area.y0, yb = v->area.y0 + v->area.h;
  for (int i = 0; i < self->pts.n; i++) {
    double px = self->pix[2 * i], py = self->pix[2 * i + 1];
    if (!isfinite(px)) {
      notes->n_nonfinite++;
      continue;
    }
    if (planar ? (px < xa || px > xb || py < ya || py > yb)
               : (px < -10 || py < -10 || px > width + 10 || py > height + 10)) {
      notes->n_outside += planar;
      continue;
    }
    layer_disc(&layer, &st, px, py);
  }
  stamp_clear(&st);
  cairo_save(cr);
  if (planar) {
    cairo_rectangle(cr, xa, ya, xb - xa, yb - ya);
    cairo_clip(cr);
  }
  layer_paint(&layer, cr);
  cairo_restore(cr);

  if (planar && notes->n_outside > 0) {
    const double t = 4.5;
    for (int i = 0; i < self->pts.n; i++) {
      double px = self->pix[2 * i], py = self->pix[2 * i + 1];
      if (!isfinite(px) || (px >= xa && px <= xb && py >= ya && py <= yb))
        continue;
      double cx = CLAMP(px, xa, xb), cy = CLAMP(py, ya, yb);
      double ex = px < xa ? xa - px : px > xb ? px - xb : 0;
      double ey = py < ya ? ya - py : py > yb ? py - yb : 0;
      if (ex >= ey) {
        double s = px < xa ? -1 : 1;
        cairo_move_to(cr, cx + s * 1, cy);
        cairo_line_to(cr, cx - s * t, cy - t * 0.8);
        cairo_line_to(cr, cx - s * t, cy + t * 0.8);
      } else {
        double s = py < ya ? -1 : 1;
        cairo_move_to(cr, cx, cy + s * 1);
        cairo_line_to(cr, cx - t * 0.8, cy - s * t);
        cairo_line_to(cr, cx + t * 0.8, cy - s * t);
      }
      cairo_close_path(cr);
    }
    conform_cairo_set_rgba(cr, &sc, 0.85);
    cairo_fill(cr);
  }
}

static void
ring(cairo_t *cr, double x, double y, const GdkRGBA *fg)
{
  cairo_new_sub_path(cr);
  cairo_arc(cr, x, y, 6.5, 0, 2 * G_PI);
  cairo_set_line_width(cr, 2.0);
  conform_cairo_set_rgba(cr, fg, 0.9);
  cairo_stroke(cr);
  cairo_arc(cr, x, y, 1.8, 0, 2 * G_PI);
  cairo_fill(cr);
}

static void
feasible_2d(ConformScatter *self, cairo_t *cr, const View *v, const GdkRGBA *fg)
{
  if (!constraint_applies(self, 2))
    return;
  const ConformPlotArea *a = &v->area;
  if (self->rank == 1) {
    double d[2] = {-self->Q[1], self->Q[0]};
    double lo[2] = {a->xmin, a->ymin}, hi[2] = {a->xmax, a->ymax}, t0, t1;
    if (!clip_line(self->x0, d, lo, hi, 2, &t0, &t1))
      return;
    cairo_save(cr);
    cairo_rectangle(cr, a->x0, a->y0, a->w, a->h);
    cairo_clip(cr);
    cairo_move_to(cr, conform_plot_x(a, self->x0[0] + t0 * d[0]), conform_plot_y(a, self->x0[1] + t0 * d[1]));
    cairo_line_to(cr, conform_plot_x(a, self->x0[0] + t1 * d[0]), conform_plot_y(a, self->x0[1] + t1 * d[1]));
    double dash[2] = {6, 4};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_set_line_width(cr, 1.5);
    conform_cairo_set_rgba(cr, fg, 0.85);
    cairo_stroke(cr);
    cairo_restore(cr);
  } else {
    double x = self->x0[0], y = self->x0[1];
    if (x < a->xmin || x > a->xmax || y < a->ymin || y > a->ymax)
      return;
    ring(cr, conform_plot_x(a, x), conform_plot_y(a, y), fg);
  }
}

/* Plane {x : q . x = c} clipped to the box: up to 6 vertices, ordered. */
static int
plane_polygon(const double *q, double c, const double *lo, const double *hi, double out[12][3])
{
  double corner[8][3];
  for (int i = 0; i < 8; i++)
    for (int k = 0; k < 3; k++)
      corner[i][k] = (i >> k) & 1 ? hi[k] : lo[k];
  double diag = 0;
  for (int k = 0; k < 3; k++)
    diag += (hi[k] - lo[k]) * (hi[k] - lo[k]);
  double eps = 1e-9 * sqrt(diag);
  int n = 0;
  for (int i = 0; i < 8; i++) {
    for (int k = 0; k < 3; k++) {
      int j = i | (1 << k);
      if (j == i)
        continue;
      double fi = q[0] * corner[i][0] + q[1] * corner[i][1] + q[2] * corner[i][2] - c;
      double fj = q[0] * corner[j][0] + q[1] * corner[j][1] + q[2] * corner[j][2] - c;
      if ((fi > 0 && fj > 0) || (fi < 0 && fj < 0))
        continue;
      double t = fi == fj ? 0 : fi / (fi - fj);
      double p[3];
      for (int e = 0; e < 3; e++)
        p[e] = corner[i][e] + t * (corner[j][e] - corner[i][e]);
      gboolean dup = FALSE;
      for (int m = 0; m < n && !dup; m++)
        dup = fabs(out[m][0] - p[0]) + fabs(out[m][1] - p[1]) + fabs(out[m][2] - p[2]) <= eps;
      if (!dup && n < 12) {
        memcpy(out[n], p, sizeof p);
        n++;
      }
    }
  }
  if (n < 3)
    return 0;
  /* Order by angle in the plane around the centroid. */
  double g[3] = {0, 0, 0};
  for (int i = 0; i < n; i++)
    for (int k = 0; k < 3; k++)
      g[k] += out[i][k] / n;
  double e1[3], e2[3];
  int kmin = fabs(q[0]) <= fabs(q[1]) && fabs(q[0]) <= fabs(q[2]) ? 0 : fabs(q[1]) <= fabs(q[2]) ? 1 : 2;
  double axis[3] = {0, 0, 0};
  axis[kmin] = 1;
  e1[0] = q[1] * axis[2] - q[2] * axis[1];
  e1[1] = q[2] * axis[0] - q[0] * axis[2];
  e1[2] = q[0] * axis[1] - q[1] * axis[0];
  double l1 = sqrt(e1[0] * e1[0] + e1[1] * e1[1] + e1[2] * e1[2]);
  for (int k = 0; k < 3; k++)
    e1[k] /= l1;
  e2[0] = q[1] * e1[2] - q[2] * e1[1];
  e2[1] = q[2] * e1[0] - q[0] * e1[2];
  e2[2] = q[0] * e1[1] - q[1] * e1[0];
  double ang[12];
  for (int i = 0; i < n; i++) {
    double d[3] = {out[i][0] - g[0], out[i][1] - g[1], out[i][2] - g[2]};
    ang[i] = atan2(d[0] * e2[0] + d[1] * e2[1] + d[2] * e2[2], d[0] * e1[0] + d[1] * e1[1] + d[2] * e1[2]);
  }
  for (int i = 1; i < n; i++) /* insertion sort, n <= 12 */
    for (int j = i; j > 0 && ang[j] < ang[j - 1]; j--) {
      double ta = ang[j], tp[3];
      ang[j] = ang[j - 1];
      ang[j - 1] = ta;
      memcpy(tp, out[j], sizeof tp);
      memcpy(out[j], out[j - 1], sizeof tp);
      memcpy(out[j - 1], tp, sizeof tp);
    }
  return n;
}

static void
feasible_3d(ConformScatter *self, cairo_t *cr, const View *v, const GdkRGBA *fg, gboolean fill_pass)
{
  if (!constraint_applies(self, 3))
    return;
  GdkRGBA pc;
  conform_palette_series(2, &pc);
  if (self->rank == 1) {
    double poly[12][3];
    int n = plane_polygon(self->Q, self->qc[0], v->lo, v->hi, poly);
    if (n < 3)
      return;
    for (int i = 0; i < n; i++) {
      double px, py;
      view_3d(v, poly[i], &px, &py);
      if (i == 0)
        cairo_move_to(cr, px, py);
      else
        cairo_line_to(cr, px, py);
    }
    cairo_close_path(cr);
    if (fill_pass) {
      conform_cairo_set_rgba(cr, &pc, 0.16);
      cairo_fill(cr);
    } else {
      double dash[2] = {6, 4};
      cairo_save(cr);
      cairo_set_dash(cr, dash, 2, 0);
      cairo_set_line_width(cr, 1.5);
      conform_cairo_set_rgba(cr, fg, 0.8);
      cairo_stroke(cr);
      cairo_restore(cr);
    }
    return;
  }
  if (fill_pass)
    return;
  if (self->rank == 2) {
    const double *q1 = self->Q, *q2 = self->Q + 3;
    double d[3] = {q1[1] * q2[2] - q1[2] * q2[1], q1[2] * q2[0] - q1[0] * q2[2], q1[0] * q2[1] - q1[1] * q2[0]};
    double t0, t1;
    if (!clip_line(self->x0, d, v->lo, v->hi, 3, &t0, &t1))
      return;
    double a[3], b[3], ax, ay, bx, by;
    for (int k = 0; k < 3; k++) {
      a[k] = self->x0[k] + t0 * d[k];
      b[k] = self->x0[k] + t1 * d[k];
    }
    view_3d(v, a, &ax, &ay);
    view_3d(v, b, &bx, &by);
    double dash[2] = {6, 4};
    cairo_save(cr);
    cairo_move_to(cr, ax, ay);
    cairo_line_to(cr, bx, by);
    cairo_set_dash(cr, dash, 2, 0);
    cairo_set_line_width(cr, 2.0);
    conform_cairo_set_rgba(cr, fg, 0.85);
    cairo_stroke(cr);
    cairo_restore(cr);
  } else {
    double px, py;
    view_3d(v, self->x0, &px, &py);
    ring(cr, px, py, fg);
  }
}

static void
box_3d(ConformScatter *self, cairo_t *cr, const View *v, const GdkRGBA *fg, gboolean labels)
{
  double corner[8][3], cp[8][2];
  for (int i = 0; i < 8; i++) {
    for (int k = 0; k < 3; k++)
      corner[i][k] = (i >> k) & 1 ? v->hi[k] : v->lo[k];
    view_3d(v, corner[i], &cp[i][0], &cp[i][1]);
  }
  if (!labels) {
    for (int i = 0; i < 8; i++)
      for (int k = 0; k < 3; k++) {
        int j = i | (1 << k);
        if (j == i)
          continue;
        cairo_move_to(cr, cp[i][0], cp[i][1]);
        cairo_line_to(cr, cp[j][0], cp[j][1]);
      }
    cairo_set_line_width(cr, 1.0);
    conform_cairo_set_rgba(cr, fg, 0.25);
    cairo_stroke(cr);
    return;
  }
  /* Per axis: label the outermost parallel edge with its end values. */
  char buf[32], nb[16];
  for (int k = 0; k < 3; k++) {
    int best = -1;
    double bestd = -1;
    for (int i = 0; i < 8; i++) {
      int j = i | (1 << k);
      if (j == i)
        continue;
      double mx = 0.5 * (cp[i][0] + cp[j][0]) - v->pcx, my = 0.5 * (cp[i][1] + cp[j][1]) - v->pcy;
      double d = mx * mx + my * my * 1.0001 + (my > 0 ? 1e-6 : 0);
      if (d > bestd) {
        bestd = d;
        best = i;
      }
    }
    int i = best, j = best | (1 << k);
    double ex = cp[j][0] - cp[i][0], ey = cp[j][1] - cp[i][1], el = hypot(ex, ey);
    if (el < 24)
      continue;
    ex /= el;
    ey /= el;
    /* Unit normal of the edge on screen, pointing away from the box centre. */
    double mx = 0.5 * (cp[i][0] + cp[j][0]), my = 0.5 * (cp[i][1] + cp[j][1]);
    double nx = -ey, ny = ex;
    if (nx * (mx - v->pcx) + ny * (my - v->pcy) < 0) {
      nx = -nx;
      ny = -ny;
    }
    for (int end = 0; end < 2 && el >= 80; end++) {
      int c = end ? j : i;
      double along = MIN(22.0, 0.2 * el) * (end ? -1 : 1);
      g_snprintf(buf, sizeof buf, "%.3g", end ? v->hi[k] : v->lo[k]);
      draw_text(cr, buf, cp[c][0] + along * ex + 11 * nx, cp[c][1] + along * ey + 11 * ny, 9, 0.5, 0.5, fg, 0.6);
    }
    draw_text(cr, coord_name(self, k, nb, sizeof nb), mx + 13 * nx, my + 13 * ny, TEXT_PX, 0.5, 0.5, fg, 0.85);
  }
}

static void
gizmo_3d(ConformScatter *self, cairo_t *cr, const View *v, int height, const GdkRGBA *fg)
{
  double ox = 58, oy = height - 42, len = 24;
  char nb[16];
  cairo_set_line_width(cr, 1.5);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  for (int k = 0; k < 3; k++) {
    double dx = v->R[0][k], dy = -v->R[1][k], l = hypot(dx, dy);
    cairo_move_to(cr, ox, oy);
    cairo_line_to(cr, ox + len * dx, oy + len * dy);
    conform_cairo_set_rgba(cr, fg, 0.75);
    cairo_stroke(cr);
    if (l > 1e-6)
      draw_text(cr, coord_name(self, k, nb, sizeof nb), ox + len * dx + 9 * dx / l, oy + len * dy + 9 * dy / l, 9, 0.5,
                0.5, fg, l < 0.25 ? 0.45 : 0.85);
  }
  cairo_arc(cr, ox, oy, 2, 0, 2 * G_PI);
  conform_cairo_set_rgba(cr, fg, 0.75);
  cairo_fill(cr);
}

static void
draw_histograms(ConformScatter *self, cairo_t *cr, const View *v, const GdkRGBA *fg)
{
  int dim = v->dim, nc = MIN(dim, CONFORM_SCATTER_MAX_HISTOGRAMS);
  int rows = nc <= 8 ? 1 : 2, cols = (nc + rows - 1) / rows;
  double cw = v->sw / cols, ch = v->sh / rows;
  if (cw < 12 || ch < 20)
    return;
  GdkRGBA sc;
  sample_colour(self, &sc);
  gboolean bg = v->bg_ok && self->show_bg;
  char nb[16], lb[32];
  for (int k = 0; k < nc; k++) {
    double x = v->sx + (k % cols) * cw + 3, y = v->sy + (double)(k / cols) * ch + 2;
    double w = cw - 6, h = ch - 4;
    /* Quantile range (0.5%..99.5%): tails would only squeeze the bars. */
    double lo, hi;
    gboolean hb = v->bg_ok, hp = self->pts.n > 0;
    if (!union_range(hb ? self->bg.qlo[k] : NAN, hb ? self->bg.qhi[k] : NAN, hp ? self->pts.qlo[k] : NAN,
                     hp ? self->pts.qhi[k] : NAN, &lo, &hi)) {
      lo = -1;
      hi = 1;
    }
    padded(&lo, &hi, 0.05);
    if (!(hi - lo > 1e-12 * (1 + fabs(lo) + fabs(hi)))) {
      double c = 0.5 * (lo + hi), hw = MAX(0.5, 0.05 * fabs(c));
      lo = c - hw;
      hi = c + hw;
    }
    double cb[HIST_BINS] = {0}, cp[HIST_BINS] = {0}, nbg = 0, npt = 0;
    if (bg)
      for (int i = 0; i < self->bg.n; i++) {
        float val = self->bg.x[(gsize)i * dim + k];
        if (!isfinite(val))
          continue;
        nbg++;
        int bin = (int)floor((val - lo) / (hi - lo) * HIST_BINS);
        if (bin >= 0 && bin < HIST_BINS)
          cb[bin]++;
      }
    for (int i = 0; i < self->pts.n; i++) {
      float val = self->pts.x[(gsize)i * dim + k];
      if (!isfinite(val))
        continue;
      npt++;
      int bin = (int)floor((val - lo) / (hi - lo) * HIST_BINS);
      if (bin >= 0 && bin < HIST_BINS)
        cp[bin]++;
    }
    double top = 0;
    for (int b = 0; b < HIST_BINS; b++) {
      cb[b] = nbg > 0 ? cb[b] / nbg : 0;
      cp[b] = npt > 0 ? cp[b] / npt : 0;
      top = MAX(top, MAX(cb[b], cp[b]));
    }
    /* cell frame */
    cairo_rectangle(cr, round(x) + 0.5, round(y) + 0.5, round(w) - 1, round(h) - 1);
    cairo_set_line_width(cr, 1);
    conform_cairo_set_rgba(cr, fg, 0.15);
    cairo_stroke(cr);
    double bx = x + 3, bw = w - 6, by = y + 14, bh = h - 14 - (h > 52 ? 13 : 3);
    if (bh > 4 && top > 0) {
      double bin_w = bw / HIST_BINS;
      if (nbg > 0) {
        for (int b = 0; b < HIST_BINS; b++)
          if (cb[b] > 0)
            cairo_rectangle(cr, bx + b * bin_w, by + bh - cb[b] / top * bh, bin_w, cb[b] / top * bh);
        conform_cairo_set_rgba(cr, fg, 0.28);
        cairo_fill(cr);
      }
      if (npt > 0) {
        cairo_move_to(cr, bx, by + bh);
        for (int b = 0; b < HIST_BINS; b++) {
          double yy = by + bh - cp[b] / top * bh;
          cairo_line_to(cr, bx + b * bin_w, yy);
          cairo_line_to(cr, bx + (b + 1) * bin_w, yy);
        }
        cairo_line_to(cr, bx + bw, by + bh);
        cairo_close_path(cr);
        conform_cairo_set_rgba(cr, &sc, 0.15);
        cairo_fill_preserve(cr);
        conform_cairo_set_rgba(cr, &sc, 0.95);
        cairo_set_line_width(cr, 1.2);
        cairo_stroke(cr);
      }
    }
    draw_text(cr, coord_name(self, k, nb, sizeof nb), x + 4, y + 2, 9, 0, 0, fg, 0.85);
    if (h > 52) {
      g_snprintf(lb, sizeof lb, "%.3g", lo);
      draw_text(cr, lb, x + 3, y + h - 1, 8, 0, 1, fg, 0.55);
      g_snprintf(lb, sizeof lb, "%.3g", hi);
      draw_text(cr, lb, x + w - 3, y + h - 1, 8, 1, 1, fg, 0.55);
    }
  }
}

/* Legend at the right of the caption band; skipped when it does not fit. */
static void
draw_legend(ConformScatter *self, cairo_t *cr, const View *v, int width, double used_left, const GdkRGBA *fg)
{
  enum { L_DISC, L_BGDISC, L_LINE, L_PLANE, L_ARROW, L_TEXT };
  struct {
    int kind;
    char text[64];
  } items[6];
  int n = 0;
  if (self->pts.n > 0) {
    items[n].kind = L_DISC;
    g_strlcpy(items[n++].text, "samples", 64);
  }
  if (v->bg_ok && self->show_bg) {
    items[n].kind = L_BGDISC;
    g_strlcpy(items[n++].text, "data", 64);
  }
  if (self->m > 0) {
    if (self->invalid || self->cdim != v->dim) {
      items[n].kind = L_TEXT;
      if (self->invalid)
        g_strlcpy(items[n++].text, "A x = b: invalid", 64);
      else
        g_snprintf(items[n++].text, 64, "A x = b: dim %d ≠ %d", self->cdim, v->dim);
    } else if (self->infeasible) {
      items[n].kind = L_TEXT;
      g_strlcpy(items[n++].text, "A x = b: no solution", 64);
    } else if (v->kind == VIEW_PROJ || v->kind == VIEW_1D) {
      items[n].kind = L_TEXT;
      g_snprintf(items[n++].text, 64, "A x = b: %d row%s", self->m, self->m == 1 ? "" : "s");
    } else if (self->rank > 0) {
      items[n].kind = v->kind == VIEW_3D && self->rank == 1 ? L_PLANE : L_LINE;
      g_strlcpy(items[n++].text, "A x = b", 64);
    }
  }
  if (arrows_active(self) && v->kind != VIEW_1D) {
    items[n].kind = L_ARROW;
    g_strlcpy(items[n++].text, self->pts.n > CONFORM_SCATTER_MAX_ARROWS ? "correction (500)" : "correction", 64);
  }
  if (n == 0)
    return;
  double wsum = 0, tw[6];
  for (int i = 0; i < n; i++) {
    tw[i] = text_width(cr, items[i].text, TEXT_PX);
    wsum += tw[i] + (items[i].kind == L_TEXT ? 0 : 18) + 12;
  }
  /* Too narrow: drop entries from the front (samples, data) first, so the
   * constraint status survives longest. */
  int first = 0;
  while (first < n && width - 8 - wsum + 12 < used_left + 16) {
    wsum -= tw[first] + (items[first].kind == L_TEXT ? 0 : 18) + 12;
    first++;
  }
  if (first == n)
    return;
  double x = width - 8 - wsum + 12, cy = CAPTION_BAND / 2 + 1;
  GdkRGBA sc, ac, pc;
  sample_colour(self, &sc);
  conform_palette_series(5, &ac);
  conform_palette_series(2, &pc);
  for (int i = first; i < n; i++) {
    switch (items[i].kind) {
    case L_DISC:
    case L_BGDISC:
      cairo_arc(cr, x + 6, cy, 3.5, 0, 2 * G_PI);
      if (items[i].kind == L_DISC)
        conform_cairo_set_rgba(cr, &sc, 0.8);
      else
        conform_cairo_set_rgba(cr, fg, 0.35);
      cairo_fill(cr);
      break;
    case L_PLANE:
      cairo_rectangle(cr, x, cy - 5, 13, 10);
      conform_cairo_set_rgba(cr, &pc, 0.3);
      cairo_fill(cr);
      G_GNUC_FALLTHROUGH;
    case L_LINE: {
      double dash[2] = {4, 2};
      cairo_save(cr);
      cairo_set_dash(cr, dash, 2, 0);
      cairo_move_to(cr, x, cy);
      cairo_line_to(cr, x + 13, cy);
      cairo_set_line_width(cr, 1.5);
      conform_cairo_set_rgba(cr, fg, 0.85);
      cairo_stroke(cr);
      cairo_restore(cr);
      break;
    }
    case L_ARROW:
      cairo_move_to(cr, x, cy + 3);
      cairo_line_to(cr, x + 11, cy - 2);
      cairo_set_line_width(cr, 1.2);
      conform_cairo_set_rgba(cr, &ac, 0.8);
      cairo_stroke(cr);
      arrow_head(cr, x, cy + 3, x + 13, cy - 3, 5, 2.5);
      cairo_fill(cr);
      break;
    default:
      break;
    }
    if (items[i].kind != L_TEXT)
      x += 18;
    draw_text(cr, items[i].text, x, cy, TEXT_PX, 0, 0.5, fg, items[i].kind == L_TEXT ? 0.6 : 0.8);
    x += tw[i] + 12;
  }
}

static void
draw_notes(cairo_t *cr, const View *v, int width, int height, const Notes *notes, const GdkRGBA *fg)
{
  char buf[96] = "";
  if (notes->n_outside > 0 && notes->n_nonfinite > 0)
    g_snprintf(buf, sizeof buf, "%d outside view ▸ · %d non-finite", notes->n_outside, notes->n_nonfinite);
  else if (notes->n_outside > 0)
    g_snprintf(buf, sizeof buf, "%d outside view ▸", notes->n_outside);
  else if (notes->n_nonfinite > 0)
    g_snprintf(buf, sizeof buf, "%d non-finite (not drawn)", notes->n_nonfinite);
  if (!buf[0])
    return;
  double x, y;
  if (view_is_planar(v)) {
    x = v->area.x0 + v->area.w - 5;
    y = v->area.y0 + v->area.h - 4;
  } else {
    x = width - 10;
    y = height - 8;
  }
  draw_text(cr, buf, x, y, 9, 1, 1, fg, 0.7);
}

static void
draw_full(ConformScatter *self, cairo_t *cr, int width, int height, double scale)
{
  GdkRGBA fg;
  conform_palette_fg(theme_widget(self), &fg);
  View v;
  compute_view(self, width, height, &v);
  ensure_pixel_cache(self, &v, width, height);

  cairo_save(cr);
  cairo_new_path(cr);
  cairo_rectangle(cr, 0, 0, width, height);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);

  double caption_w = 0;
  if (self->caption && self->caption[0])
    caption_w = draw_text(cr, self->caption, 8, CAPTION_BAND / 2 + 1, TEXT_PX + 1, 0, 0.5, &fg, 0.9);

  if (v.kind == VIEW_EMPTY) {
    draw_text(cr, "No samples yet: press Train", width / 2.0, height / 2.0, 13, 0.5, 0.5, &fg, 0.55);
    cairo_restore(cr);
    return;
  }
  draw_legend(self, cr, &v, width, 8 + caption_w, &fg);

  Notes notes = {0, 0};
  char xb[16], yb[16];
  if (v.kind == VIEW_2D || v.kind == VIEW_PROJ) {
    const char *xl, *yl;
    if (v.kind == VIEW_PROJ && v.basis) {
      xl = "PC1";
      yl = "PC2";
    } else {
      xl = coord_name(self, 0, xb, sizeof xb);
      yl = coord_name(self, 1, yb, sizeof yb);
    }
    conform_plot_draw_axes(cr, &v.area, &fg, xl, yl);
    draw_background(self, cr, &v, width, height, scale, &fg);
    if (v.kind == VIEW_2D)
      feasible_2d(self, cr, &v, &fg);
    draw_samples(self, cr, &v, width, height, scale, &notes);
    if (v.kind == VIEW_PROJ)
      draw_histograms(self, cr, &v, &fg);
  } else if (v.kind == VIEW_3D) {
    box_3d(self, cr, &v, &fg, FALSE);
    draw_background(self, cr, &v, width, height, scale, &fg);
    feasible_3d(self, cr, &v, &fg, TRUE);
    feasible_3d(self, cr, &v, &fg, FALSE);
    draw_samples(self, cr, &v, width, height, scale, &notes);
    box_3d(self, cr, &v, &fg, TRUE);
    gizmo_3d(self, cr, &v, height, &fg);
  } else if (v.kind == VIEW_1D) {
    draw_histograms(self, cr, &v, &fg);
    for (int i = 0; i < self->pts.n; i++)
      if (!isfinite(self->pts.x[i]))
        notes.n_nonfinite++;
  }
  draw_notes(cr, &v, width, height, &notes, &fg);
  if (self->pts.n == 0) {
    double cy = view_is_planar(&v) ? v.area.y0 + 18 : CAPTION_BAND + 18;
    draw_text(cr, "No samples yet: press Train", width / 2.0, cy, 12, 0.5, 0.5, &fg, 0.6);
  }
  cairo_restore(cr);
}

/* ------------------------------------------------------------------------ */
/* Constraint analysis (tiny: m x dim with dim the data dimension)          */

static void
constraint_analyze(ConformScatter *self)
{
  int m = self->m, d = self->cdim;
  self->rank = 0;
  self->infeasible = self->invalid = FALSE;
  g_clear_pointer(&self->Q, g_free);
  g_clear_pointer(&self->qc, g_free);
  g_clear_pointer(&self->x0, g_free);
  if (m <= 0)
    return;
  self->Q = g_new0(double, (gsize)m * d);
  self->qc = g_new0(double, m);
  self->x0 = g_new0(double, d);
  double *vrow = g_new(double, d);
  for (int i = 0; i < m; i++) {
    double beta = self->b[i], n0 = 0;
    if (!isfinite(beta))
      self->invalid = TRUE;
    for (int k = 0; k < d; k++) {
      vrow[k] = self->A[(gsize)i * d + k];
      if (!isfinite(vrow[k]))
        self->invalid = TRUE;
      n0 += vrow[k] * vrow[k];
    }
    if (self->invalid)
      break;
    n0 = sqrt(n0);
    for (int pass = 0; pass < 2; pass++)
      for (int j = 0; j < self->rank; j++) {
        double coef = 0;
        for (int k = 0; k < d; k++)
          coef += self->Q[(gsize)j * d + k] * vrow[k];
        for (int k = 0; k < d; k++)
          vrow[k] -= coef * self->Q[(gsize)j * d + k];
        beta -= coef * self->qc[j];
      }
    double nv = 0;
    for (int k = 0; k < d; k++)
      nv += vrow[k] * vrow[k];
    nv = sqrt(nv);
    if (nv <= 1e-9 * n0 || n0 == 0) {
      if (fabs(beta) > 1e-7 * (1 + fabs(self->b[i])))
        self->infeasible = TRUE;
      continue;
    }
    for (int k = 0; k < d; k++)
      self->Q[(gsize)self->rank * d + k] = vrow[k] / nv;
    self->qc[self->rank] = beta / nv;
    self->rank++;
  }
  g_free(vrow);
  for (int j = 0; j < self->rank; j++)
    for (int k = 0; k < d; k++)
      self->x0[k] += self->qc[j] * self->Q[(gsize)j * d + k];
}

/* ------------------------------------------------------------------------ */
/* Hover                                                                    */

static int
pick_at(ConformScatter *self, double x, double y, double max_dist)
{
  int width = gtk_widget_get_width(GTK_WIDGET(self)), height = gtk_widget_get_height(GTK_WIDGET(self));
  if (width <= 0 || height <= 0 || self->pts.n == 0)
    return -1;
  View v;
  compute_view(self, width, height, &v);
  ensure_pixel_cache(self, &v, width, height);
  int best = -1;
  double bd = max_dist * max_dist;
  if (view_is_planar(&v) && (x < v.area.x0 || x > v.area.x0 + v.area.w || y < v.area.y0 || y > v.area.y0 + v.area.h))
    return -1;
  for (int i = 0; i < self->pix_n; i++) {
    double dx = self->pix[2 * i] - x, dy = self->pix[2 * i + 1] - y, d2 = dx * dx + dy * dy;
    if (d2 < bd) { /* false for NaN */
      bd = d2;
      best = i;
    }
  }
  return best;
}

static void
update_hover_text(ConformScatter *self, int idx)
{
  GString *s = g_string_new(NULL);
  int dim = self->pts.dim;
  const float *x = self->pts.x + (gsize)idx * dim;
  char nb[16];
  g_string_append_printf(s, "sample %d", idx);
  for (int k = 0; k < MIN(dim, HOVER_MAX_DIMS); k++)
    g_string_append_printf(s, "\n%s = %.4g", coord_name(self, k, nb, sizeof nb), (double)x[k]);
  if (dim > HOVER_MAX_DIMS)
    g_string_append_printf(s, "\n… %d more", dim - HOVER_MAX_DIMS);
  if (self->m > 0 && self->cdim == dim && !self->invalid) {
    double ss = 0;
    for (int i = 0; i < self->m; i++) {
      double r = -self->b[i];
      for (int k = 0; k < dim; k++)
        r += self->A[(gsize)i * dim + k] * x[k];
      ss += r * r;
    }
    g_string_append_printf(s, "\n‖A x − b‖ = %.3g", sqrt(ss));
  }
  if (self->raw && self->n_raw == self->pts.n && self->raw_dim == dim) {
    double ss = 0;
    for (int k = 0; k < dim; k++) {
      double d = (double)x[k] - self->raw[(gsize)idx * dim + k];
      ss += d * d;
    }
    g_string_append_printf(s, "\nmoved by %.3g", sqrt(ss));
  }
  gtk_label_set_text(GTK_LABEL(self->hover_label), s->str);
  g_string_free(s, TRUE);
}

static void
set_hover(ConformScatter *self, int idx)
{
  if (idx == self->hover_idx)
    return;
  self->hover_idx = idx;
  if (idx >= 0)
    update_hover_text(self, idx);
  gtk_widget_set_visible(self->hover_label, idx >= 0);
  gtk_widget_queue_allocate(GTK_WIDGET(self));
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

static void
motion_cb(GtkEventControllerMotion *ctrl, double x, double y, gpointer user_data)
{
  ConformScatter *self = CONFORM_SCATTER(user_data);
  if (self->dragging)
    return;
  set_hover(self, pick_at(self, x, y, HOVER_RADIUS));
}

static void
leave_cb(GtkEventControllerMotion *ctrl, gpointer user_data)
{
  set_hover(CONFORM_SCATTER(user_data), -1);
}

static void
drag_begin_cb(GtkGestureDrag *gesture, double x, double y, gpointer user_data)
{
  ConformScatter *self = CONFORM_SCATTER(user_data);
  if (data_dim(self) != 3) {
    gtk_gesture_set_state(GTK_GESTURE(gesture), GTK_EVENT_SEQUENCE_DENIED);
    return;
  }
  self->dragging = TRUE;
  self->drag_yaw = self->yaw;
  self->drag_pitch = self->pitch;
  set_hover(self, -1);
}

static void
drag_update_cb(GtkGestureDrag *gesture, double dx, double dy, gpointer user_data)
{
  ConformScatter *self = CONFORM_SCATTER(user_data);
  if (!self->dragging)
    return;
  conform_scatter_set_rotation(self, self->drag_yaw + dx * 0.01, self->drag_pitch + dy * 0.01);
}

static void
drag_end_cb(GtkGestureDrag *gesture, double dx, double dy, gpointer user_data)
{
  CONFORM_SCATTER(user_data)->dragging = FALSE;
}

/* ------------------------------------------------------------------------ */
/* GtkWidget / GObject                                                      */

static void
conform_scatter_measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum, int *natural,
                        int *minimum_baseline, int *natural_baseline)
{
  *minimum = 200;
  *natural = 480;
}

static void
conform_scatter_size_allocate(GtkWidget *widget, int width, int height, int baseline)
{
  ConformScatter *self = CONFORM_SCATTER(widget);
  if (!gtk_widget_get_visible(self->hover_label))
    return;
  int lw, lh, dummy;
  gtk_widget_measure(self->hover_label, GTK_ORIENTATION_HORIZONTAL, -1, &dummy, &lw, NULL, NULL);
  gtk_widget_measure(self->hover_label, GTK_ORIENTATION_VERTICAL, lw, &dummy, &lh, NULL, NULL);
  double px = width / 2.0, py = height / 2.0;
  if (self->hover_idx >= 0 && self->pix && self->hover_idx < self->pix_n && self->pix_w == width &&
      self->pix_h == height && isfinite(self->pix[2 * self->hover_idx])) {
    px = self->pix[2 * self->hover_idx];
    py = self->pix[2 * self->hover_idx + 1];
  }
  int x = (int)round(px + 12), y = (int)round(py + 12);
  if (x + lw > width - 2)
    x = (int)round(px - 12 - lw);
  if (y + lh > height - 2)
    y = (int)round(py - 12 - lh);
  x = CLAMP(x, 0, MAX(width - lw, 0));
  y = CLAMP(y, 0, MAX(height - lh, 0));
  gtk_widget_size_allocate(self->hover_label, &(GtkAllocation){x, y, lw, lh}, -1);
}

static void
conform_scatter_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  ConformScatter *self = CONFORM_SCATTER(widget);
  int width = gtk_widget_get_width(widget), height = gtk_widget_get_height(widget);
  if (width <= 0 || height <= 0)
    return;
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, width, height));
  draw_full(self, cr, width, height, gtk_widget_get_scale_factor(widget));
  if (self->hover_idx >= 0 && self->hover_idx < self->pix_n && isfinite(self->pix[2 * self->hover_idx])) {
    GdkRGBA fg;
    conform_palette_fg(widget, &fg);
    cairo_new_path(cr);
    cairo_arc(cr, self->pix[2 * self->hover_idx], self->pix[2 * self->hover_idx + 1], 5, 0, 2 * G_PI);
    cairo_set_line_width(cr, 1.5);
    conform_cairo_set_rgba(cr, &fg, 0.9);
    cairo_stroke(cr);
  }
  cairo_destroy(cr);
  if (gtk_widget_get_visible(self->hover_label))
    gtk_widget_snapshot_child(widget, self->hover_label, snapshot);
}

static void
conform_scatter_css_changed(GtkWidget *widget, GtkCssStyleChange *change)
{
  GTK_WIDGET_CLASS(conform_scatter_parent_class)->css_changed(widget, change);
  gtk_widget_queue_draw(widget); /* light/dark switch changes the foreground */
}

static void
conform_scatter_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  ConformScatter *self = CONFORM_SCATTER(object);
  switch (prop_id) {
  case PROP_SHOW_BACKGROUND:
    g_value_set_boolean(value, self->show_bg);
    break;
  case PROP_SHOW_ARROWS:
    g_value_set_boolean(value, self->show_arrows);
    break;
  case PROP_CAPTION:
    g_value_set_string(value, self->caption);
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
conform_scatter_set_property(GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  ConformScatter *self = CONFORM_SCATTER(object);
  switch (prop_id) {
  case PROP_SHOW_BACKGROUND:
    conform_scatter_set_show_background(self, g_value_get_boolean(value));
    break;
  case PROP_SHOW_ARROWS:
    conform_scatter_set_show_arrows(self, g_value_get_boolean(value));
    break;
  case PROP_CAPTION:
    conform_scatter_set_caption(self, g_value_get_string(value));
    break;
  default:
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
  }
}

static void
conform_scatter_dispose(GObject *object)
{
  ConformScatter *self = CONFORM_SCATTER(object);
  g_clear_pointer(&self->hover_label, gtk_widget_unparent);
  G_OBJECT_CLASS(conform_scatter_parent_class)->dispose(object);
}

static void
conform_scatter_finalize(GObject *object)
{
  ConformScatter *self = CONFORM_SCATTER(object);
  g_clear_pointer(&self->bg_cache, cairo_surface_destroy);
  pointset_clear(&self->bg);
  pointset_clear(&self->pts);
  pointset_clear(&self->fit);
  g_free(self->raw);
  g_free(self->A);
  g_free(self->b);
  g_free(self->Q);
  g_free(self->qc);
  g_free(self->x0);
  g_free(self->basis);
  g_free(self->center);
  g_strfreev(self->names);
  g_free(self->caption);
  g_free(self->pix);
  G_OBJECT_CLASS(conform_scatter_parent_class)->finalize(object);
}

static void
conform_scatter_class_init(ConformScatterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS(klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);
  object_class->dispose = conform_scatter_dispose;
  object_class->finalize = conform_scatter_finalize;
  object_class->get_property = conform_scatter_get_property;
  object_class->set_property = conform_scatter_set_property;
  widget_class->measure = conform_scatter_measure;
  widget_class->size_allocate = conform_scatter_size_allocate;
  widget_class->snapshot = conform_scatter_snapshot;
  widget_class->css_changed = conform_scatter_css_changed;

  props[PROP_SHOW_BACKGROUND] = g_param_spec_boolean("show-background", NULL, NULL, TRUE,
                                                     G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY |
                                                       G_PARAM_STATIC_STRINGS);
  props[PROP_SHOW_ARROWS] = g_param_spec_boolean("show-arrows", NULL, NULL, TRUE,
                                                 G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  props[PROP_CAPTION] = g_param_spec_string("caption", NULL, NULL, NULL,
                                            G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(object_class, N_PROPS, props);
  gtk_widget_class_set_css_name(widget_class, "conform-scatter");
}

static GtkCssProvider *
hover_css(void)
{
  static GtkCssProvider *provider;
  if (g_once_init_enter(&provider)) {
    GtkCssProvider *p = gtk_css_provider_new();
    gtk_css_provider_load_from_data(p,
                                    "label.conform-scatter-hover {"
                                    " background-color: alpha(@theme_base_color, 0.94);"
                                    " color: @theme_fg_color;"
                                    " border: 1px solid alpha(@theme_fg_color, 0.25);"
                                    " border-radius: 5px; padding: 3px 7px;"
                                    " font-size: 0.85em; font-feature-settings: \"tnum\"; }",
                                    -1);
    g_once_init_leave(&provider, p);
  }
  return provider;
}

static void
conform_scatter_init(ConformScatter *self)
{
  GtkWidget *widget = GTK_WIDGET(self);
  self->show_bg = TRUE;
  self->show_arrows = TRUE;
  self->yaw = -0.6;
  self->pitch = 0.45;
  self->hover_idx = -1;
  self->serial = 1;
  gtk_widget_set_hexpand(widget, TRUE);
  gtk_widget_set_vexpand(widget, TRUE);
  gtk_widget_set_size_request(widget, 200, 200);
  gtk_widget_set_overflow(widget, GTK_OVERFLOW_HIDDEN);

  self->hover_label = gtk_label_new(NULL);
  gtk_widget_add_css_class(self->hover_label, "conform-scatter-hover");
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  gtk_style_context_add_provider(gtk_widget_get_style_context(self->hover_label), GTK_STYLE_PROVIDER(hover_css()),
                                 GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  G_GNUC_END_IGNORE_DEPRECATIONS
  gtk_label_set_xalign(GTK_LABEL(self->hover_label), 0);
  gtk_widget_set_can_target(self->hover_label, FALSE);
  gtk_widget_set_visible(self->hover_label, FALSE);
  gtk_widget_set_parent(self->hover_label, widget);

  GtkEventController *motion = gtk_event_controller_motion_new();
  g_signal_connect(motion, "motion", G_CALLBACK(motion_cb), self);
  g_signal_connect(motion, "leave", G_CALLBACK(leave_cb), self);
  gtk_widget_add_controller(widget, motion);

  GtkGesture *drag = gtk_gesture_drag_new();
  g_signal_connect(drag, "drag-begin", G_CALLBACK(drag_begin_cb), self);
  g_signal_connect(drag, "drag-update", G_CALLBACK(drag_update_cb), self);
  g_signal_connect(drag, "drag-end", G_CALLBACK(drag_end_cb), self);
  gtk_widget_add_controller(widget, GTK_EVENT_CONTROLLER(drag));
}

/* ------------------------------------------------------------------------ */
/* Public API                                                               */

GtkWidget *
conform_scatter_new(void)
{
  return g_object_new(CONFORM_TYPE_SCATTER, NULL);
}

void
conform_scatter_set_background(ConformScatter *self, const float *x, int n, int dim)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  g_return_if_fail(n >= 0 && dim >= 0);
  g_return_if_fail(x != NULL || n == 0);
  pointset_set(&self->bg, x, n, dim);
  self->bg_generation++;
  invalidate(self);
}

void
conform_scatter_set_points(ConformScatter *self, const float *x, int n, int dim)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  g_return_if_fail(n >= 0 && dim >= 0);
  g_return_if_fail(x != NULL || n == 0);
  pointset_set(&self->pts, x, n, dim);
  invalidate(self);
}

void
conform_scatter_set_range_points(ConformScatter *self, const float *x, int n, int dim)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  g_return_if_fail(n >= 0 && dim >= 0);
  g_return_if_fail(x != NULL || n == 0);
  pointset_set(&self->fit, x, n, dim);
  invalidate(self);
}

void
conform_scatter_set_raw_points(ConformScatter *self, const float *raw, int n, int dim)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  g_clear_pointer(&self->raw, g_free);
  self->n_raw = self->raw_dim = 0;
  if (raw && n > 0 && dim > 0) {
    self->raw = g_memdup2(raw, (gsize)n * (gsize)dim * sizeof(float));
    self->n_raw = n;
    self->raw_dim = dim;
  }
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_scatter_set_constraint(ConformScatter *self, const double *A, const double *b, int m, int dim)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  g_return_if_fail(m <= 0 || (A != NULL && b != NULL && dim > 0));
  g_clear_pointer(&self->A, g_free);
  g_clear_pointer(&self->b, g_free);
  self->m = 0;
  self->cdim = 0;
  if (m > 0) {
    self->A = g_memdup2(A, (gsize)m * (gsize)dim * sizeof(double));
    self->b = g_memdup2(b, (gsize)m * sizeof(double));
    self->m = m;
    self->cdim = dim;
  }
  constraint_analyze(self);
  invalidate(self);
}

void
conform_scatter_set_projection(ConformScatter *self, const double *basis, const double *center, int dim)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  g_return_if_fail(basis == NULL || dim >= 2);
  g_clear_pointer(&self->basis, g_free);
  g_clear_pointer(&self->center, g_free);
  self->proj_dim = 0;
  if (basis) {
    self->basis = g_memdup2(basis, 2 * (gsize)dim * sizeof(double));
    self->center = center ? g_memdup2(center, (gsize)dim * sizeof(double)) : g_new0(double, dim);
    self->proj_dim = dim;
  }
  self->bg.plane_ok = self->pts.plane_ok = FALSE;
  invalidate(self);
}

void
conform_scatter_set_show_background(ConformScatter *self, gboolean show)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  show = !!show;
  if (self->show_bg == show)
    return;
  self->show_bg = show;
  gtk_widget_queue_draw(GTK_WIDGET(self));
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_SHOW_BACKGROUND]);
}

gboolean
conform_scatter_get_show_background(ConformScatter *self)
{
  g_return_val_if_fail(CONFORM_IS_SCATTER(self), FALSE);
  return self->show_bg;
}

void
conform_scatter_set_show_arrows(ConformScatter *self, gboolean show)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  show = !!show;
  if (self->show_arrows == show)
    return;
  self->show_arrows = show;
  gtk_widget_queue_draw(GTK_WIDGET(self));
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_SHOW_ARROWS]);
}

gboolean
conform_scatter_get_show_arrows(ConformScatter *self)
{
  g_return_val_if_fail(CONFORM_IS_SCATTER(self), FALSE);
  return self->show_arrows;
}

void
conform_scatter_set_coordinate_names(ConformScatter *self, const char *const *names)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  g_strfreev(self->names);
  self->names = names ? g_strdupv((char **)names) : NULL;
  if (self->hover_idx >= 0)
    update_hover_text(self, self->hover_idx);
  gtk_widget_queue_draw(GTK_WIDGET(self));
}

void
conform_scatter_set_caption(ConformScatter *self, const char *text)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  if (g_strcmp0(self->caption, text) == 0)
    return;
  g_free(self->caption);
  self->caption = g_strdup(text);
  gtk_widget_queue_draw(GTK_WIDGET(self));
  g_object_notify_by_pspec(G_OBJECT(self), props[PROP_CAPTION]);
}

int
conform_scatter_get_n_points(ConformScatter *self)
{
  g_return_val_if_fail(CONFORM_IS_SCATTER(self), 0);
  return self->pts.n;
}

void
conform_scatter_draw(ConformScatter *self, cairo_t *cr, int width, int height)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  g_return_if_fail(cr != NULL);
  if (width <= 0 || height <= 0)
    return;
  double sx = 1, sy = 1;
  cairo_user_to_device_distance(cr, &sx, &sy);
  double scale = CLAMP(MAX(fabs(sx), fabs(sy)), 1.0, 4.0);
  draw_full(self, cr, width, height, scale);
}

static void
export_draw(gpointer self, cairo_t *cr, int width, int height)
{
  conform_scatter_draw(CONFORM_SCATTER(self), cr, width, height);
}

gboolean
conform_scatter_export_png(ConformScatter *self, const char *path, int width, int height, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_SCATTER(self), FALSE);
  g_return_val_if_fail(path != NULL, FALSE);
  g_return_val_if_fail(error == NULL || *error == NULL, FALSE);
  return conform_export_png(export_draw, self, width, height, conform_palette_is_dark(theme_widget(self)), path, error);
}

void
conform_scatter_set_rotation(ConformScatter *self, double yaw, double pitch)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  if (!isfinite(yaw) || !isfinite(pitch))
    return;
  self->yaw = remainder(yaw, 2 * G_PI);
  self->pitch = CLAMP(pitch, -G_PI / 2, G_PI / 2);
  invalidate(self);
}

void
conform_scatter_get_rotation(ConformScatter *self, double *yaw, double *pitch)
{
  g_return_if_fail(CONFORM_IS_SCATTER(self));
  if (yaw)
    *yaw = self->yaw;
  if (pitch)
    *pitch = self->pitch;
}

int
conform_scatter_pick(ConformScatter *self, double x, double y, double max_dist)
{
  g_return_val_if_fail(CONFORM_IS_SCATTER(self), -1);
  return pick_at(self, x, y, max_dist);
}
