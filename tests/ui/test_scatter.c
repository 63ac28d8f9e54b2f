/* ConformScatter: rendering checked on pixels (cairo image surfaces), the
 * widget inside a window, hover, drag and PNG export. Runs under Xvfb. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-scatter.h"

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */

typedef struct {
  cairo_surface_t *s;
  int w, h, stride;
  const guint8 *data;
} Image;

static Image
render(ConformScatter *sc, int w, int h)
{
  Image im;
  im.s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
  cairo_t *cr = cairo_create(im.s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  conform_scatter_draw(sc, cr, w, h);
  g_assert_cmpint(cairo_status(cr), ==, CAIRO_STATUS_SUCCESS);
  cairo_destroy(cr);
  cairo_surface_flush(im.s);
  im.w = w;
  im.h = h;
  im.stride = cairo_image_surface_get_stride(im.s);
  im.data = cairo_image_surface_get_data(im.s);
  return im;
}

/* SCATTER_TEST_DUMP=dir writes the named image there (for debugging). */
static void
dump(const Image *im, const char *name)
{
  const char *dir = g_getenv("SCATTER_TEST_DUMP");
  if (!dir)
    return;
  g_autofree char *file = g_strdup_printf("%s.png", name);
  g_autofree char *path = g_build_filename(dir, file, NULL);
  cairo_surface_write_to_png(im->s, path);
}

static void
image_free(Image *im)
{
  cairo_surface_destroy(im->s);
}

static void
rgb(const Image *im, int x, int y, int *r, int *g, int *b)
{
  guint32 p = *(const guint32 *)(im->data + (gsize)y * im->stride + 4 * x);
  *r = (p >> 16) & 0xff;
  *g = (p >> 8) & 0xff;
  *b = p & 0xff;
}

/* Okabe-Ito blue (0, 114, 178) blended on white, also at low alpha. */
static gboolean
is_blue(const Image *im, int x, int y)
{
  int r, g, b;
  rgb(im, x, y, &r, &g, &b);
  return b > 120 && b - r > 60 && b - g > 25;
}

/* Okabe-Ito vermillion (213, 94, 0) blended on white. */
static gboolean
is_vermillion(const Image *im, int x, int y)
{
  int r, g, b;
  rgb(im, x, y, &r, &g, &b);
  return r > 180 && r - b > 60 && r - g > 30;
}

/* Bluish green (0, 158, 115) at low alpha on white. */
static gboolean
is_green(const Image *im, int x, int y)
{
  int r, g, b;
  rgb(im, x, y, &r, &g, &b);
  return g - r > 12 && g > b;
}

static int
lum(const Image *im, int x, int y)
{
  int r, g, b;
  rgb(im, x, y, &r, &g, &b);
  return (r + g + b) / 3;
}

static guint32 rng_state = 12345u;

static double
unif(void)
{
  rng_state = rng_state * 1664525u + 1013904223u;
  return (rng_state >> 8) / 16777216.0;
}

static double
gauss(void)
{
  double u = unif() + 1e-12, v = unif();
  return sqrt(-2 * log(u)) * cos(2 * G_PI * v);
}

static ConformScatter *
new_scatter(void)
{
  GtkWidget *w = conform_scatter_new();
  g_object_ref_sink(w);
  return CONFORM_SCATTER(w);
}

/* Uniform background in [lo, hi]^dim. */
static float *
uniform_cloud(int n, int dim, double lo, double hi)
{
  float *x = g_new(float, (gsize)n * dim);
  for (int i = 0; i < n * dim; i++)
    x[i] = (float)(lo + (hi - lo) * unif());
  return x;
}

#define CAPTION_ROWS 30 /* legend and caption live above this row */

/* ------------------------------------------------------------------------ */
/* tests                                                                    */

static void
test_empty_state(void)
{
  ConformScatter *sc = new_scatter();
  g_assert_cmpint(conform_scatter_get_n_points(sc), ==, 0);
  Image im = render(sc, 400, 300);
  int inside = 0, outside = 0;
  for (int y = 0; y < im.h; y++)
    for (int x = 0; x < im.w; x++)
      if (lum(&im, x, y) < 200) {
        if (abs(x - 200) < 130 && abs(y - 150) < 14)
          inside++;
        else
          outside++;
      }
  g_assert_cmpint(inside, >, 40); /* the hint text is drawn in the centre */
  g_assert_cmpint(outside, ==, 0);
  image_free(&im);
  g_object_unref(sc);
}

static void
test_cluster_in_corner(void)
{
  ConformScatter *sc = new_scatter();
  float *bg = uniform_cloud(3000, 2, 0, 10);
  float pts[2 * 200];
  for (int i = 0; i < 200; i++) {
    pts[2 * i] = (float)(8.5 + 0.8 * unif());
    pts[2 * i + 1] = (float)(8.5 + 0.8 * unif());
  }
  conform_scatter_set_background(sc, bg, 3000, 2);
  conform_scatter_set_points(sc, pts, 200, 2);
  g_assert_cmpint(conform_scatter_get_n_points(sc), ==, 200);
  Image im = render(sc, 400, 400);
  /* Find the plot frame from the extent of the grey background points. */
  int bx0 = im.w, bx1 = 0, by0 = im.h, by1 = 0;
  int quad[4] = {0, 0, 0, 0};
  for (int y = CAPTION_ROWS; y < im.h; y++)
    for (int x = 0; x < im.w; x++) {
      int r, g, b;
      rgb(&im, x, y, &r, &g, &b);
      if (abs(r - g) < 8 && abs(g - b) < 8 && r < 235 && r > 120) {
        bx0 = MIN(bx0, x);
        bx1 = MAX(bx1, x);
        by0 = MIN(by0, y);
        by1 = MAX(by1, y);
      }
    }
  int cx = (bx0 + bx1) / 2, cy = (by0 + by1) / 2;
  int n_blue = 0, xmin = im.w, ymax = 0;
  for (int y = CAPTION_ROWS; y < im.h; y++)
    for (int x = 0; x < im.w; x++)
      if (is_blue(&im, x, y)) {
        n_blue++;
        quad[(x >= cx) + 2 * (y >= cy)]++;
        xmin = MIN(xmin, x);
        ymax = MAX(ymax, y);
      }
  g_assert_cmpint(n_blue, >, 200);
  g_assert_cmpint(quad[1], ==, n_blue); /* all in the top-right quadrant */
  /* and only in its outer part: the cluster spans 0.8 of the 10-unit range */
  g_assert_cmpint(xmin, >, cx + (bx1 - cx) / 2);
  g_assert_cmpint(ymax, <, cy - (cy - by0) / 2);
  image_free(&im);

  /* HiDPI: a device scale of 2 renders the same picture at twice the pixels. */
  Image hi;
  hi.s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 800, 800);
  cairo_surface_set_device_scale(hi.s, 2, 2);
  cairo_t *cr = cairo_create(hi.s);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  conform_scatter_draw(sc, cr, 400, 400);
  cairo_destroy(cr);
  cairo_surface_flush(hi.s);
  hi.w = hi.h = 800;
  hi.stride = cairo_image_surface_get_stride(hi.s);
  hi.data = cairo_image_surface_get_data(hi.s);
  int hb = 0, hq = 0;
  for (int y = 2 * CAPTION_ROWS; y < hi.h; y++)
    for (int x = 0; x < hi.w; x++)
      if (is_blue(&hi, x, y)) {
        hb++;
        hq += x >= 2 * cx && y < 2 * cy;
      }
  g_assert_cmpint(hb, >, 3 * n_blue);
  g_assert_cmpint(hq, ==, hb);
  image_free(&hi);
  g_free(bg);
  g_object_unref(sc);
}

/* Pixels darker in b than in a (below the caption band). */
static int
darkened(const Image *a, const Image *b, int *xs, int *ys, int max)
{
  int n = 0;
  for (int y = CAPTION_ROWS; y < a->h; y++)
    for (int x = 0; x < a->w; x++)
      if (lum(b, x, y) < lum(a, x, y) - 40) {
        if (n < max) {
          xs[n] = x;
          ys[n] = y;
        }
        n++;
      }
  return n;
}

static int
cmp_int(const void *a, const void *b)
{
  return *(const int *)a - *(const int *)b;
}

static void
test_feasible_line(void)
{
  ConformScatter *sc = new_scatter();
  float *bg = uniform_cloud(400, 2, -1, 1);
  float pts[2 * 50];
  for (int i = 0; i < 50; i++) {
    pts[2 * i] = (float)(0.8 * unif() - 0.4);
    pts[2 * i + 1] = (float)(0.8 * unif() - 0.4);
  }
  conform_scatter_set_background(sc, bg, 400, 2);
  conform_scatter_set_points(sc, pts, 50, 2);
  conform_scatter_set_show_background(sc, FALSE);
  g_assert_false(conform_scatter_get_show_background(sc));
  Image plain = render(sc, 400, 400);

  double A[4] = {1, 1, 1, -1}, b[2] = {0, 0};
  conform_scatter_set_constraint(sc, A, b, 1, 2);
  Image line = render(sc, 400, 400);
  enum { MAXP = 4000 };
  static int xs[MAXP], ys[MAXP], d[MAXP];
  int n = darkened(&plain, &line, xs, ys, MAXP);
  g_assert_cmpint(n, >, 150);
  g_assert_cmpint(n, <=, MAXP);
  /* x0 + x1 = 0 is the anti-diagonal: in pixels (y down) x - y is constant. */
  for (int i = 0; i < n; i++)
    d[i] = xs[i] - ys[i];
  qsort(d, n, sizeof(int), cmp_int);
  int med = d[n / 2], far = 0;
  for (int i = 0; i < n; i++)
    far += abs(d[i] - med) > 3;
  g_assert_cmpint(far, <, n / 50);
  /* and it spans most of the frame */
  int xmin = 10000, xmax = 0;
  for (int i = 0; i < n; i++) {
    xmin = MIN(xmin, xs[i]);
    xmax = MAX(xmax, xs[i]);
  }
  g_assert_cmpint(xmax - xmin, >, 250);
  image_free(&line);

  /* A line that misses the view draws nothing. */
  double bfar[1] = {100};
  conform_scatter_set_constraint(sc, A, bfar, 1, 2);
  Image miss = render(sc, 400, 400);
  g_assert_cmpint(darkened(&plain, &miss, xs, ys, MAXP), ==, 0);
  image_free(&miss);

  /* Two independent rows: a single point marked with a ring. */
  double b2[2] = {0.2, 0.2}; /* x0 + x1 = 0.2, x0 - x1 = 0.2 -> (0.2, 0) */
  conform_scatter_set_constraint(sc, A, b2, 2, 2);
  Image pt = render(sc, 400, 400);
  n = darkened(&plain, &pt, xs, ys, MAXP);
  g_assert_cmpint(n, >, 20);
  int x0 = 10000, x1 = 0, y0 = 10000, y1 = 0;
  for (int i = 0; i < n; i++) {
    x0 = MIN(x0, xs[i]);
    x1 = MAX(x1, xs[i]);
    y0 = MIN(y0, ys[i]);
    y1 = MAX(y1, ys[i]);
  }
  g_assert_cmpint(x1 - x0, <=, 18);
  g_assert_cmpint(y1 - y0, <=, 18);
  image_free(&pt);

  /* Inconsistent rows (x0 + x1 = 0 and 2 x0 + 2 x1 = 1): nothing drawn. */
  double Ab[4] = {1, 1, 2, 2}, bb[2] = {0, 1};
  conform_scatter_set_constraint(sc, Ab, bb, 2, 2);
  Image inc = render(sc, 400, 400);
  g_assert_cmpint(darkened(&plain, &inc, xs, ys, MAXP), ==, 0);
  image_free(&inc);

  /* m = 0 clears. */
  conform_scatter_set_constraint(sc, NULL, NULL, 0, 2);
  Image cleared = render(sc, 400, 400);
  g_assert_cmpint(darkened(&plain, &cleared, xs, ys, MAXP), ==, 0);
  image_free(&cleared);
  image_free(&plain);
  g_free(bg);
  g_object_unref(sc);
}

/* Centroid of the blue pixels below the caption band. */
static gboolean
blue_centroid(const Image *im, double *cx, double *cy)
{
  double sx = 0, sy = 0;
  int n = 0;
  for (int y = CAPTION_ROWS; y < im->h; y++)
    for (int x = 0; x < im->w; x++)
      if (is_blue(im, x, y)) {
        sx += x;
        sy += y;
        n++;
      }
  if (n == 0)
    return FALSE;
  *cx = sx / n;
  *cy = sy / n;
  return TRUE;
}

static double
dist_to_segment(double px, double py, double ax, double ay, double bx, double by)
{
  double dx = bx - ax, dy = by - ay, t = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy);
  t = CLAMP(t, 0, 1);
  return hypot(px - ax - t * dx, py - ay - t * dy);
}

static void
test_arrows(void)
{
  ConformScatter *sc = new_scatter();
  float *bg = uniform_cloud(400, 2, -1, 1);
  enum { N = 30 };
  float raw[2 * N], pts[2 * N];
  for (int i = 0; i < N; i++) {
    raw[2 * i] = (float)(-0.6 + 0.02 * unif());
    raw[2 * i + 1] = (float)(0.6 + 0.02 * unif());
    pts[2 * i] = (float)(0.6 + 0.02 * unif());
    pts[2 * i + 1] = (float)(-0.6 + 0.02 * unif());
  }
  conform_scatter_set_background(sc, bg, 400, 2);
  conform_scatter_set_show_background(sc, FALSE);

  /* Where do raw and projected samples land? */
  double rx, ry, px, py;
  conform_scatter_set_points(sc, raw, N, 2);
  Image a = render(sc, 400, 400);
  g_assert_true(blue_centroid(&a, &rx, &ry));
  image_free(&a);
  conform_scatter_set_points(sc, pts, N, 2);
  Image b = render(sc, 400, 400);
  g_assert_true(blue_centroid(&b, &px, &py));
  int n_off = 0;
  for (int y = CAPTION_ROWS; y < b.h; y++)
    for (int x = 0; x < b.w; x++)
      n_off += is_vermillion(&b, x, y);
  g_assert_cmpint(n_off, ==, 0); /* no raw points yet: no arrows */
  image_free(&b);

  conform_scatter_set_raw_points(sc, raw, N, 2);
  g_assert_true(conform_scatter_get_show_arrows(sc));
  Image c = render(sc, 400, 400);
  int n_on = 0, near = 0, mid = 0;
  for (int y = CAPTION_ROWS; y < c.h; y++)
    for (int x = 0; x < c.w; x++)
      if (is_vermillion(&c, x, y)) {
        n_on++;
        near += dist_to_segment(x, y, rx, ry, px, py) < 8;
        mid += hypot(x - 0.5 * (rx + px), y - 0.5 * (ry + py)) < 20;
      }
  g_assert_cmpint(n_on, >, 60);
  g_assert_cmpint(near, >=, n_on * 95 / 100); /* between raw and projected */
  g_assert_cmpint(mid, >, 10);                /* including the middle */
  image_free(&c);

  /* The toggle hides them; a size mismatch disables them. */
  conform_scatter_set_show_arrows(sc, FALSE);
  Image d = render(sc, 400, 400);
  n_off = 0;
  for (int y = CAPTION_ROWS; y < d.h; y++)
    for (int x = 0; x < d.w; x++)
      n_off += is_vermillion(&d, x, y);
  g_assert_cmpint(n_off, ==, 0);
  image_free(&d);
  conform_scatter_set_show_arrows(sc, TRUE);
  conform_scatter_set_raw_points(sc, raw, N - 1, 2);
  Image e = render(sc, 400, 400);
  n_off = 0;
  for (int y = CAPTION_ROWS; y < e.h; y++)
    for (int x = 0; x < e.w; x++)
      n_off += is_vermillion(&e, x, y);
  g_assert_cmpint(n_off, ==, 0);
  image_free(&e);
  conform_scatter_set_raw_points(sc, NULL, 0, 0);
  g_free(bg);
  g_object_unref(sc);
}

static void
test_3d(void)
{
  ConformScatter *sc = new_scatter();
  enum { N = 2000 };
  float *bg = g_new(float, 3 * N), *pts = g_new(float, 3 * 500);
  for (int i = 0; i < N; i++) {
    bg[3 * i] = (float)gauss();
    bg[3 * i + 1] = (float)(0.5 * gauss());
    bg[3 * i + 2] = (float)(2 * gauss());
  }
  for (int i = 0; i < 500; i++) {
    pts[3 * i] = (float)(gauss() + 1);
    pts[3 * i + 1] = (float)(0.5 * gauss());
    pts[3 * i + 2] = (float)gauss();
  }
  conform_scatter_set_background(sc, bg, N, 3);
  conform_scatter_set_points(sc, pts, 500, 3);
  const char *names[] = {"alpha", "beta", "gamma", NULL};
  conform_scatter_set_coordinate_names(sc, names);
  conform_scatter_set_rotation(sc, 0.0, 0.3);
  Image a = render(sc, 400, 400);
  conform_scatter_set_rotation(sc, 1.2, 0.3);
  Image b = render(sc, 400, 400);
  int diff = 0, blue = 0;
  for (int y = 0; y < a.h; y++)
    for (int x = 0; x < a.w; x++) {
      diff += abs(lum(&a, x, y) - lum(&b, x, y)) > 30;
      blue += is_blue(&b, x, y);
    }
  g_assert_cmpint(blue, >, 500);
  g_assert_cmpint(diff, >, 2000); /* rotation changes the picture */
  double yaw, pitch;
  conform_scatter_set_rotation(sc, 0.5, 5.0);
  conform_scatter_get_rotation(sc, &yaw, &pitch);
  g_assert_cmpfloat_with_epsilon(yaw, 0.5, 1e-12);
  g_assert_cmpfloat_with_epsilon(pitch, G_PI / 2, 1e-12); /* clamped */

  /* Plane gamma = 0 is a translucent bluish-green polygon. */
  conform_scatter_set_rotation(sc, -0.6, 0.45);
  Image plain = render(sc, 400, 400);
  double A[3] = {0, 0, 1}, b0[1] = {0};
  conform_scatter_set_constraint(sc, A, b0, 1, 3);
  Image plane = render(sc, 400, 400);
  dump(&plane, "3d-plane");
  int g0 = 0, g1 = 0;
  for (int y = CAPTION_ROWS; y < a.h; y++)
    for (int x = 0; x < a.w; x++) {
      g0 += is_green(&plain, x, y);
      g1 += is_green(&plane, x, y);
    }
  g_assert_cmpint(g0, ==, 0);
  g_assert_cmpint(g1, >, 800);
  /* A plane that misses the box draws no polygon. */
  double bfar[1] = {1000};
  conform_scatter_set_constraint(sc, A, bfar, 1, 3);
  Image missing = render(sc, 400, 400);
  int g2 = 0;
  for (int y = CAPTION_ROWS; y < a.h; y++)
    for (int x = 0; x < a.w; x++)
      g2 += is_green(&missing, x, y);
  g_assert_cmpint(g2, ==, 0);
  /* Two rows: a line segment across the box; three: a point. */
  double A2[9] = {0, 0, 1, 0, 1, 0, 1, 0, 0}, b2[3] = {0, 0, 0};
  conform_scatter_set_constraint(sc, A2, b2, 2, 3);
  Image line = render(sc, 400, 400);
  conform_scatter_set_constraint(sc, A2, b2, 3, 3);
  Image point = render(sc, 400, 400);
  dump(&line, "3d-line");
  dump(&point, "3d-point");
  int dl = 0, dp = 0;
  for (int y = CAPTION_ROWS; y < a.h; y++)
    for (int x = 0; x < a.w; x++) {
      dl += lum(&line, x, y) < lum(&plain, x, y) - 40;
      dp += lum(&point, x, y) < lum(&plain, x, y) - 40;
    }
  g_assert_cmpint(dl, >, 60);
  g_assert_cmpint(dp, >, 20);
  g_assert_cmpint(dp, <, 400);

  image_free(&a);
  image_free(&b);
  image_free(&plain);
  image_free(&plane);
  image_free(&missing);
  image_free(&line);
  image_free(&point);
  g_free(bg);
  g_free(pts);
  g_object_unref(sc);
}

/* Runs of columns (or rows) holding blue pixels inside a rectangle. */
static int
blue_runs(const Image *im, int x0, int y0, int x1, int y1, gboolean columns)
{
  int runs = 0;
  gboolean prev = FALSE;
  int outer0 = columns ? x0 : y0, outer1 = columns ? x1 : y1;
  for (int o = outer0; o < outer1; o++) {
    gboolean any = FALSE;
    int inner0 = columns ? y0 : x0, inner1 = columns ? y1 : x1;
    for (int i = inner0; i < inner1 && !any; i++)
      any = columns ? is_blue(im, o, i) : is_blue(im, i, o);
    if (any && !prev)
      runs++;
    prev = any;
  }
  return runs;
}

static void
test_high_dim_histograms(void)
{
  ConformScatter *sc = new_scatter();
  enum { D = 12, NB = 3000, NP = 800 };
  float *bg = g_new(float, NB * D), *pts = g_new(float, NP * D);
  for (int i = 0; i < NB * D; i++)
    bg[i] = (float)gauss();
  for (int i = 0; i < NP * D; i++)
    pts[i] = (float)(1.1 * gauss());
  conform_scatter_set_background(sc, bg, NB, D);
  conform_scatter_set_points(sc, pts, NP, D);
  double A[D], b[1] = {0};
  for (int k = 0; k < D; k++)
    A[k] = 1;
  conform_scatter_set_constraint(sc, A, b, 1, D);
  double basis[2 * D] = {0};
  basis[0] = 1;
  basis[D + 1] = 1;
  conform_scatter_set_projection(sc, basis, NULL, D);
  Image im = render(sc, 720, 600);
  /* Strip of histograms: 12 coordinates -> 2 rows of 6. */
  int top = 600 * 76 / 100;
  g_assert_cmpint(blue_runs(&im, 0, top, im.w, im.h, TRUE), ==, 6);
  g_assert_cmpint(blue_runs(&im, 0, top, im.w, im.h, FALSE), ==, 2);
  /* The projection plane above holds the samples too. */
  int plane_blue = 0;
  for (int y = CAPTION_ROWS; y < top - 40; y++)
    for (int x = 0; x < im.w; x++)
      plane_blue += is_blue(&im, x, y);
  g_assert_cmpint(plane_blue, >, 1000);
  image_free(&im);

  /* 20 coordinates: capped at 16 histograms (2 rows of 8). */
  enum { D2 = 20 };
  float *p2 = g_new(float, NP * D2);
  for (int i = 0; i < NP * D2; i++)
    p2[i] = (float)gauss();
  conform_scatter_set_points(sc, p2, NP, D2);
  Image im2 = render(sc, 900, 600);
  g_assert_cmpint(blue_runs(&im2, 0, top, im2.w, im2.h, TRUE), ==, 8);
  image_free(&im2);
  g_free(p2);
  g_free(bg);
  g_free(pts);
  g_object_unref(sc);
}

static void
test_non_finite(void)
{
  ConformScatter *sc = new_scatter();
  enum { N = 300 };
  float pts[2 * (N + 4)];
  for (int i = 0; i < N; i++) {
    pts[2 * i] = (float)unif();
    pts[2 * i + 1] = (float)unif();
  }
  pts[2 * N] = NAN;
  pts[2 * N + 1] = 0.5f;
  pts[2 * N + 2] = INFINITY;
  pts[2 * N + 3] = -INFINITY;
  pts[2 * N + 4] = 0.5f;
  pts[2 * N + 5] = NAN;
  pts[2 * N + 6] = 1e30f; /* absurd but finite: clamped out of the view */
  pts[2 * N + 7] = -1e30f;
  conform_scatter_set_points(sc, pts, N + 4, 2);
  float raw[2 * (N + 4)];
  memcpy(raw, pts, sizeof raw);
  raw[0] = NAN;
  conform_scatter_set_raw_points(sc, raw, N + 4, 2);
  double A[2] = {NAN, 1}, b[1] = {0};
  conform_scatter_set_constraint(sc, A, b, 1, 2);
  Image im = render(sc, 400, 400);
  int xmin = 10000, xmax = 0;
  for (int y = CAPTION_ROWS; y < im.h; y++)
    for (int x = 0; x < im.w; x++)
      if (is_blue(&im, x, y)) {
        xmin = MIN(xmin, x);
        xmax = MAX(xmax, x);
      }
  /* the finite unit square still fills most of the frame */
  g_assert_cmpint(xmax - xmin, >, 200);
  image_free(&im);

  /* background with non-finite values, 3-D and 12-D too */
  float bg3[3 * 4] = {NAN, 0, 0, 1, INFINITY, 1, 0.5f, 0.5f, 0.5f, 0, 0, 0};
  conform_scatter_set_background(sc, bg3, 4, 3);
  conform_scatter_set_points(sc, bg3, 4, 3);
  Image im3 = render(sc, 300, 300);
  image_free(&im3);
  float *b12 = g_new(float, 12 * 10);
  for (int i = 0; i < 120; i++)
    b12[i] = i % 7 == 0 ? NAN : (float)unif();
  conform_scatter_set_background(sc, b12, 10, 12);
  conform_scatter_set_points(sc, b12, 10, 12);
  Image im12 = render(sc, 300, 300);
  image_free(&im12);
  /* all values non-finite */
  float allnan[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
  conform_scatter_set_background(sc, NULL, 0, 0);
  conform_scatter_set_points(sc, allnan, 3, 2);
  Image imn = render(sc, 300, 300);
  image_free(&imn);
  /* dim 1 and all-equal points */
  float one[5] = {1, 1, 1, NAN, 1};
  conform_scatter_set_points(sc, one, 5, 1);
  Image im1 = render(sc, 300, 300);
  image_free(&im1);
  conform_scatter_set_points(sc, one, 2, 2);
  Image ime = render(sc, 300, 300);
  image_free(&ime);
  /* tiny surfaces */
  Image tiny = render(sc, 3, 2);
  image_free(&tiny);
  g_free(b12);
  g_object_unref(sc);
}

static void
test_robust_limits(void)
{
  /* A few far-off samples do not shrink the picture. */
  ConformScatter *sc = new_scatter();
  float *bg = uniform_cloud(2000, 2, 0, 1);
  enum { N = 500 };
  float pts[2 * N];
  for (int i = 0; i < N; i++) {
    pts[2 * i] = (float)unif();
    pts[2 * i + 1] = (float)unif();
  }
  for (int i = 0; i < 5; i++) {
    pts[2 * i] = 1e6f;
    pts[2 * i + 1] = -1e6f;
  }
  conform_scatter_set_background(sc, bg, 2000, 2);
  conform_scatter_set_points(sc, pts, N, 2);
  Image im = render(sc, 400, 400);
  int xmin = 10000, xmax = 0;
  for (int y = CAPTION_ROWS; y < im.h; y++)
    for (int x = 0; x < im.w; x++)
      if (is_blue(&im, x, y)) {
        xmin = MIN(xmin, x);
        xmax = MAX(xmax, x);
      }
  g_assert_cmpint(xmax - xmin, >, 200);
  image_free(&im);
  g_free(bg);
  g_object_unref(sc);
}

static void
test_export_png(void)
{
  ConformScatter *sc = new_scatter();
  float *bg = uniform_cloud(500, 2, -1, 1);
  conform_scatter_set_background(sc, bg, 500, 2);
  conform_scatter_set_points(sc, bg, 100, 2);
  conform_scatter_set_caption(sc, "step 1200 · 100 samples · raw space");
  g_autofree char *dir = g_dir_make_tmp("scatter-XXXXXX", NULL);
  g_assert_nonnull(dir);
  g_autofree char *path = g_build_filename(dir, "scatter.png", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(conform_scatter_export_png(sc, path, 321, 234, &error));
  g_assert_no_error(error);
  cairo_surface_t *s = cairo_image_surface_create_from_png(path);
  g_assert_cmpint(cairo_surface_status(s), ==, CAIRO_STATUS_SUCCESS);
  g_assert_cmpint(cairo_image_surface_get_width(s), ==, 321);
  g_assert_cmpint(cairo_image_surface_get_height(s), ==, 234);
  cairo_surface_destroy(s);
  g_assert_false(conform_scatter_export_png(sc, path, 4, 4, &error));
  g_assert_nonnull(error);
  g_unlink(path);
  g_rmdir(dir);
  g_free(bg);
  g_object_unref(sc);
}

static void
test_draw_time(void)
{
  ConformScatter *sc = new_scatter();
  enum { NB = 20000, NP = 5000 };
  float *bg = g_new(float, 2 * NB), *pts = g_new(float, 2 * NP), *raw = g_new(float, 2 * NP);
  for (int i = 0; i < 2 * NB; i++)
    bg[i] = (float)gauss();
  for (int i = 0; i < NP; i++) {
    raw[2 * i] = (float)gauss();
    raw[2 * i + 1] = (float)gauss();
    double t = 0.5 * (raw[2 * i] + raw[2 * i + 1]);
    pts[2 * i] = (float)(raw[2 * i] - t);
    pts[2 * i + 1] = (float)(raw[2 * i + 1] - t);
  }
  conform_scatter_set_background(sc, bg, NB, 2);
  conform_scatter_set_points(sc, pts, NP, 2);
  conform_scatter_set_raw_points(sc, raw, NP, 2);
  double A[2] = {1, 1}, b[1] = {0};
  conform_scatter_set_constraint(sc, A, b, 1, 2);
  conform_scatter_set_caption(sc, "timing");
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 800, 600);
  cairo_t *cr = cairo_create(s);
  conform_scatter_draw(sc, cr, 800, 600); /* warm-up */
  const int reps = 20;
  double best = 1e9, total = 0;
  for (int r = 0; r < reps; r++) {
    gint64 t0 = g_get_monotonic_time();
    conform_scatter_draw(sc, cr, 800, 600);
    double ms = (g_get_monotonic_time() - t0) / 1000.0;
    best = MIN(best, ms);
    total += ms;
  }
  g_test_message("draw 800x600, 20000 background + 5000 samples + 500 arrows: best %.2f ms, mean %.2f ms", best,
                 total / reps);
  /* Timings are only asserted on an unsanitised build. */
  if (!g_getenv("CONFORM_SANITIZED"))
    g_assert_cmpfloat(best, <, 16.0);

  /* 3-D and 12-D with the same load: reported. */
  float *bg3 = g_new(float, 12 * NB), *pt3 = g_new(float, 12 * (NP + 1));
  for (int i = 0; i < 12 * NB; i++)
    bg3[i] = (float)gauss();
  for (int i = 0; i < 12 * (NP + 1); i++)
    pt3[i] = (float)gauss();
  for (int dim = 3; dim <= 12; dim += 9) {
    conform_scatter_set_background(sc, bg3, NB, dim);
    conform_scatter_set_points(sc, pt3, NP, dim);
    conform_scatter_set_raw_points(sc, pt3 + dim, NP, dim); /* rows shifted by one as raw */
    double A3[12] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    conform_scatter_set_constraint(sc, A3, b, 1, dim);
    conform_scatter_draw(sc, cr, 800, 600);
    best = 1e9;
    for (int r = 0; r < 10; r++) {
      gint64 t0 = g_get_monotonic_time();
      conform_scatter_draw(sc, cr, 800, 600);
      best = MIN(best, (g_get_monotonic_time() - t0) / 1000.0);
    }
    g_test_message("draw 800x600 (%d-D, 20000 bg + 5000 samples%s): best %.2f ms", dim,
               dim == 3 ? " + 500 arrows + plane" : " + 12 histograms", best);
  }
  g_free(bg3);
  g_free(pt3);
  cairo_destroy(cr);
  cairo_surface_destroy(s);
  g_free(bg);
  g_free(pts);
  g_free(raw);
  g_object_unref(sc);
}

static gboolean
timeout_cb(gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
spin(int ms)
{
  gboolean done = FALSE;
  g_timeout_add(ms, timeout_cb, &done);
  while (!done)
    g_main_context_iteration(NULL, TRUE);
}

static GtkEventController *
find_controller(GtkWidget *w, GType type)
{
  GListModel *list = gtk_widget_observe_controllers(w);
  GtkEventController *found = NULL;
  for (guint i = 0; i < g_list_model_get_n_items(list) && !found; i++) {
    GtkEventController *c = g_list_model_get_item(list, i);
    if (G_TYPE_CHECK_INSTANCE_TYPE(c, type))
      found = c;
    g_object_unref(c);
  }
  g_object_unref(list);
  return found;
}

static void
test_in_window(void)
{
  GtkWidget *win = gtk_window_new();
  gtk_window_set_default_size(GTK_WINDOW(win), 500, 420);
  GtkWidget *w = conform_scatter_new();
  ConformScatter *sc = CONFORM_SCATTER(w);
  gtk_window_set_child(GTK_WINDOW(win), w);
  g_assert_true(gtk_widget_get_hexpand(w));
  g_assert_true(gtk_widget_get_vexpand(w));
  gtk_window_present(GTK_WINDOW(win));
  spin(200); /* empty state on screen */

  float *bg = uniform_cloud(2000, 2, -1, 1);
  float pts[2 * 100];
  for (int i = 0; i < 100; i++) {
    pts[2 * i] = (float)(0.3 + 0.1 * unif());
    pts[2 * i + 1] = (float)(0.3 + 0.1 * unif());
  }
  conform_scatter_set_background(sc, bg, 2000, 2);
  conform_scatter_set_points(sc, pts, 100, 2);
  conform_scatter_set_raw_points(sc, bg, 100, 2);
  double A[2] = {1, -1}, b[1] = {0};
  conform_scatter_set_constraint(sc, A, b, 1, 2);
  g_object_set(sc, "caption", "step 1 · 100 samples", "show-arrows", TRUE, NULL);
  spin(200);
  g_assert_true(gtk_widget_get_realized(w));
  int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
  g_assert_cmpint(width, >=, 200);
  g_assert_cmpint(height, >=, 200);

  GtkSnapshot *snap = gtk_snapshot_new();
  GTK_WIDGET_GET_CLASS(w)->snapshot(w, snap);
  GskRenderNode *node = gtk_snapshot_free_to_node(snap);
  g_assert_nonnull(node);
  gsk_render_node_unref(node);

  /* Hover: find a sample pixel at the widget's size and pick it. */
  Image im = render(sc, width, height);
  int hx = -1, hy = -1;
  for (int y = CAPTION_ROWS; y < im.h && hx < 0; y++)
    for (int x = 0; x < im.w && hx < 0; x++)
      if (is_blue(&im, x, y)) {
        hx = x;
        hy = y;
      }
  image_free(&im);
  g_assert_cmpint(hx, >=, 0);
  g_assert_cmpint(conform_scatter_pick(sc, hx, hy + 1, 24), >=, 0);
  g_assert_cmpint(conform_scatter_pick(sc, 2, height - 2, 24), ==, -1);

  GtkEventController *motion = find_controller(w, GTK_TYPE_EVENT_CONTROLLER_MOTION);
  g_assert_nonnull(motion);
  GtkWidget *label = gtk_widget_get_first_child(w);
  g_assert_true(GTK_IS_LABEL(label));
  g_signal_emit_by_name(motion, "motion", (double)hx, (double)hy + 1);
  g_assert_true(gtk_widget_get_visible(label));
  g_assert_nonnull(strstr(gtk_label_get_text(GTK_LABEL(label)), "sample"));
  g_assert_nonnull(strstr(gtk_label_get_text(GTK_LABEL(label)), "x1 = "));
  g_assert_nonnull(strstr(gtk_label_get_text(GTK_LABEL(label)), "A x"));
  spin(100);
  snap = gtk_snapshot_new();
  GTK_WIDGET_GET_CLASS(w)->snapshot(w, snap);
  node = gtk_snapshot_free_to_node(snap);
  g_assert_nonnull(node);
  gsk_render_node_unref(node);
  g_signal_emit_by_name(motion, "leave");
  g_assert_false(gtk_widget_get_visible(label));

  /* Snapshot path with the full load: record (snapshot) and replay the node
   * into an image as a renderer would. Reported, not asserted. */
  {
    enum { NB = 20000, NP = 5000 };
    float *big = g_new(float, 2 * NB);
    for (int i = 0; i < 2 * NB; i++)
      big[i] = (float)gauss();
    conform_scatter_set_background(sc, big, NB, 2);
    conform_scatter_set_points(sc, big, NP, 2);
    conform_scatter_set_raw_points(sc, big + 2 * NP, NP, 2);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    double best_rec = 1e9, best_all = 1e9;
    for (int r = 0; r < 10; r++) {
      gint64 t0 = g_get_monotonic_time();
      snap = gtk_snapshot_new();
      GTK_WIDGET_GET_CLASS(w)->snapshot(w, snap);
      node = gtk_snapshot_free_to_node(snap);
      gint64 t1 = g_get_monotonic_time();
      cairo_t *cr = cairo_create(s);
      gsk_render_node_draw(node, cr);
      cairo_destroy(cr);
      gint64 t2 = g_get_monotonic_time();
      gsk_render_node_unref(node);
      best_rec = MIN(best_rec, (t1 - t0) / 1000.0);
      best_all = MIN(best_all, (t2 - t0) / 1000.0);
    }
    g_test_message("snapshot %dx%d (20000 bg + 5000 samples + 500 arrows): record %.2f ms, record + replay %.2f ms",
               width, height, best_rec, best_all);
    cairo_surface_destroy(s);
    g_free(big);
  }

  /* Drag rotates only in 3-D. */
  float p3[3 * 50];
  for (int i = 0; i < 150; i++)
    p3[i] = (float)gauss();
  conform_scatter_set_background(sc, NULL, 0, 0);
  conform_scatter_set_points(sc, p3, 50, 3);
  conform_scatter_set_raw_points(sc, NULL, 0, 0);
  double yaw0, pitch0, yaw1, pitch1;
  conform_scatter_get_rotation(sc, &yaw0, &pitch0);
  GtkEventController *drag = find_controller(w, GTK_TYPE_GESTURE_DRAG);
  g_assert_nonnull(drag);
  g_signal_emit_by_name(drag, "drag-begin", 100.0, 100.0);
  g_signal_emit_by_name(drag, "drag-update", 40.0, 20.0);
  g_signal_emit_by_name(drag, "drag-end", 40.0, 20.0);
  conform_scatter_get_rotation(sc, &yaw1, &pitch1);
  g_assert_cmpfloat(fabs(yaw1 - yaw0), >, 0.1);
  g_assert_cmpfloat(fabs(pitch1 - pitch0), >, 0.05);
  spin(100);

  /* dim 12 in the window */
  float *p12 = g_new(float, 12 * 200);
  for (int i = 0; i < 12 * 200; i++)
    p12[i] = (float)gauss();
  const char *names[] = {"a", "b", NULL};
  conform_scatter_set_coordinate_names(sc, (const char *const *)names);
  conform_scatter_set_points(sc, p12, 200, 12);
  spin(100);
  conform_scatter_set_coordinate_names(sc, NULL);
  g_assert_cmpint(conform_scatter_get_n_points(sc), ==, 200);

  gtk_window_destroy(GTK_WINDOW(win));
  spin(50);
  g_free(p12);
  g_free(bg);
}

static void
test_dark_theme(void)
{
  GtkSettings *settings = gtk_settings_get_default();
  g_object_set(settings, "gtk-application-prefer-dark-theme", TRUE, NULL);
  GtkWidget *win = gtk_window_new();
  GtkWidget *w = conform_scatter_new();
  gtk_window_set_child(GTK_WINDOW(win), w);
  gtk_window_present(GTK_WINDOW(win));
  spin(150);
  /* Text follows the theme foreground: light text on a dark export. */
  int light = 0;
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 400, 300);
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_paint(cr);
  conform_scatter_draw(CONFORM_SCATTER(w), cr, 400, 300);
  cairo_destroy(cr);
  cairo_surface_flush(s);
  Image dk = {s, 400, 300, cairo_image_surface_get_stride(s), cairo_image_surface_get_data(s)};
  for (int y = 0; y < dk.h; y++)
    for (int x = 0; x < dk.w; x++) {
      light += lum(&dk, x, y) > 120;
    }
  g_assert_cmpint(light, >, 40); /* the hint is visible on black */
  cairo_surface_destroy(s);
  gtk_window_destroy(GTK_WINDOW(win));
  g_object_set(settings, "gtk-application-prefer-dark-theme", FALSE, NULL);
  spin(50);
}

int
main(int argc, char **argv)
{
  g_setenv("GTK_A11Y", "none", FALSE); /* no accessibility bus under Xvfb */
  gtk_test_init(&argc, &argv, NULL);
  g_test_add_func("/scatter/empty-state", test_empty_state);
  g_test_add_func("/scatter/cluster-in-corner", test_cluster_in_corner);
  g_test_add_func("/scatter/feasible-line", test_feasible_line);
  g_test_add_func("/scatter/arrows", test_arrows);
  g_test_add_func("/scatter/3d", test_3d);
  g_test_add_func("/scatter/high-dim-histograms", test_high_dim_histograms);
  g_test_add_func("/scatter/non-finite", test_non_finite);
  g_test_add_func("/scatter/robust-limits", test_robust_limits);
  g_test_add_func("/scatter/export-png", test_export_png);
  g_test_add_func("/scatter/draw-time", test_draw_time);
  g_test_add_func("/scatter/in-window", test_in_window);
  g_test_add_func("/scatter/dark-theme", test_dark_theme);
  return g_test_run();
}
