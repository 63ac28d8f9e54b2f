/* ConformImageGrid: layout, pixels drawn where the layout says (white for
 * 1, black for 0, the range mapping), violation frames in the palette's
 * green / vermillion, the cap on shown images, and PNG export. */
#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <string.h>

#include "conform-image-grid.h"
#include "conform-palette.h"

static guint32
pixel(cairo_surface_t *s, int x, int y)
{
  const unsigned char *d = cairo_image_surface_get_data(s);
  return *(const guint32 *)(d + (gsize)y * cairo_image_surface_get_stride(s) + 4 * (gsize)x) & 0xffffff;
}

static guint32
rgb(const GdkRGBA *c)
{
  return ((guint32)lround(c->red * 255) << 16) | ((guint32)lround(c->green * 255) << 8) | (guint32)lround(c->blue * 255);
}

static void
test_layout_pixels_frames(void)
{
  GtkWidget *w = conform_image_grid_new();
  g_object_ref_sink(w);
  ConformImageGrid *g = CONFORM_IMAGE_GRID(w);
  /* 3 images of 2 x 2: image 0 all white, 1 all black, 2 a white column left */
  float x[12] = {1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0};
  double viol[3] = {0.0, 0.5, 1e-9};
  conform_image_grid_set_images(g, x, 3, 2, 2, viol, 1e-6);
  g_assert_cmpint(conform_image_grid_get_n_images(g), ==, 3);
  int cols;
  double cell;
  conform_image_grid_get_layout(g, 400, 200, &cols, &cell);
  g_test_message("layout at 400 x 200: %d columns of %.1f px", cols, cell);
  g_assert_cmpint(cols, ==, 3);
  g_assert_cmpfloat(cell, >, 50);
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 400, 200);
  cairo_t *cr = cairo_create(s);
  cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
  cairo_paint(cr);
  conform_image_grid_draw(g, cr, 400, 200);
  cairo_destroy(cr);
  cairo_surface_flush(s);
  /* cell i starts at 6 + i (cell + 6), y at 22 + 6 */
  double y0 = 28 + cell / 4, x0 = 6 + cell / 4;
  g_assert_cmphex(pixel(s, (int)x0, (int)y0), ==, 0xffffff);
  g_assert_cmphex(pixel(s, (int)(x0 + cell + 6), (int)y0), ==, 0x000000);
  g_assert_cmphex(pixel(s, (int)(x0 + 2 * (cell + 6)), (int)y0), ==, 0xffffff);
  g_assert_cmphex(pixel(s, (int)(x0 + 2 * (cell + 6) + cell / 2), (int)y0), ==, 0x000000);
  /* frames: image 0 and 2 satisfied (green), image 1 violated (vermillion) */
  GdkRGBA ok, bad;
  conform_palette_series(2, &ok);
  conform_palette_series(5, &bad);
  int fy = (int)(28 + cell / 2);
  g_assert_cmphex(pixel(s, 5, fy), ==, rgb(&ok));
  g_assert_cmphex(pixel(s, (int)(6 + cell + 6) - 1, fy), ==, rgb(&bad));
  cairo_surface_destroy(s);
  /* range mapping: [0, 2] makes 1 mid-gray */
  conform_image_grid_set_range(g, 0.0, 2.0);
  s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 400, 200);
  cr = cairo_create(s);
  conform_image_grid_draw(g, cr, 400, 200);
  cairo_destroy(cr);
  cairo_surface_flush(s);
  g_assert_cmphex(pixel(s, (int)x0, (int)y0), ==, 0x808080);
  cairo_surface_destroy(s);
  /* export */
  g_autofree char *dir = g_dir_make_tmp("conform-grid-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "grid.png", NULL);
  g_autoptr(GError) err = NULL;
  g_assert_true(conform_image_grid_export_png(g, path, 320, 160, &err));
  cairo_surface_t *back = cairo_image_surface_create_from_png(path);
  g_assert_cmpint(cairo_image_surface_get_width(back), ==, 320);
  cairo_surface_destroy(back);
  g_unlink(path);
  g_rmdir(dir);
  /* many images are capped; none clears */
  float *many = g_new0(float, 1000 * 4);
  conform_image_grid_set_images(g, many, 1000, 2, 2, NULL, NAN);
  g_assert_cmpint(conform_image_grid_get_n_images(g), ==, CONFORM_IMAGE_GRID_MAX);
  conform_image_grid_set_images(g, NULL, 0, 1, 1, NULL, NAN);
  g_assert_cmpint(conform_image_grid_get_n_images(g), ==, 0);
  g_free(many);
  g_object_unref(w);
}

/* Hover readouts (format, labels, inputs), index_at, the blue frame of
 * inputs, pairs kept in one row, and exports without the readout. */
static void
test_hover_labels_inputs(void)
{
  GtkWidget *w = conform_image_grid_new();
  g_object_ref_sink(w);
  ConformImageGrid *g = CONFORM_IMAGE_GRID(w);
  float x[5 * 4] = {0};
  double viol[5] = {NAN, 3.2e-5, NAN, 0.25, 0};
  conform_image_grid_set_images(g, x, 5, 2, 2, viol, 1e-4);
  g_autofree char *r1 = conform_image_grid_get_readout(g, 1);
  g_assert_cmpstr(r1, ==, "sample 1 · violation 3.2e-5 (within tolerance 1e-4)");
  g_autofree char *r3 = conform_image_grid_get_readout(g, 3);
  g_assert_cmpstr(r3, ==, "sample 3 · violation 0.25 (above tolerance 1e-4)");
  g_autofree char *r4 = conform_image_grid_get_readout(g, 4);
  g_assert_cmpstr(r4, ==, "sample 4 · violation 0 (within tolerance 1e-4)");
  g_assert_null(conform_image_grid_get_readout(g, 5));
  const char *labels[] = {"thumbnail 0", "candidate 0", "thumbnail 1", "candidate 1", "candidate 2"};
  const gboolean inputs[] = {TRUE, FALSE, TRUE, FALSE, FALSE};
  conform_image_grid_set_labels(g, labels, inputs);
  g_autofree char *t0 = conform_image_grid_get_readout(g, 0);
  g_assert_cmpstr(t0, ==, "thumbnail 0");
  g_autofree char *c1 = conform_image_grid_get_readout(g, 3);
  g_assert_cmpstr(c1, ==, "candidate 1 · violation 0.25 (above tolerance 1e-4)");
  /* pairs: an even column count even where 5 columns would fit */
  conform_image_grid_set_column_multiple(g, 2);
  int cols;
  double cell;
  conform_image_grid_get_layout(g, 600, 130, &cols, &cell);
  g_assert_cmpint(cols % 2, ==, 0);
  for (int i = 0; i < 5; i++) {
    double cx, cy;
    g_assert_true(conform_image_grid_get_cell_center(g, 600, 130, i, &cx, &cy));
    g_assert_cmpint(conform_image_grid_index_at(g, 600, 130, cx, cy), ==, i);
  }
  g_assert_cmpint(conform_image_grid_index_at(g, 600, 130, 1, 1), ==, -1); /* the caption */
  g_assert_cmpint(conform_image_grid_index_at(g, 600, 130, 599, 129), ==, -1);
  /* the input's frame is blue, the candidate's vermillion */
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 600, 130);
  cairo_t *cr = cairo_create(s);
  conform_image_grid_draw(g, cr, 600, 130);
  cairo_destroy(cr);
  cairo_surface_flush(s);
  GdkRGBA blue, bad;
  conform_palette_series(4, &blue);
  conform_palette_series(5, &bad);
  double cx, cy;
  conform_image_grid_get_cell_center(g, 600, 130, 0, &cx, &cy);
  g_assert_cmphex(pixel(s, 5, (int)cy), ==, rgb(&blue));
  conform_image_grid_get_cell_center(g, 600, 130, 3, &cx, &cy);
  g_assert_cmphex(pixel(s, (int)(cx - cell / 2) - 1, (int)cy), ==, rgb(&bad));
  cairo_surface_destroy(s);
  /* hover: a ring and the readout on screen, not in exports */
  conform_image_grid_set_hover(g, 3);
  g_assert_cmpint(conform_image_grid_get_hover(g), ==, 3);
  g_autofree char *dir = g_dir_make_tmp("conform-grid-XXXXXX", NULL);
  g_autofree char *a = g_build_filename(dir, "a.png", NULL), *b = g_build_filename(dir, "b.png", NULL);
  g_assert_true(conform_image_grid_export_png(g, a, 600, 130, NULL));
  conform_image_grid_set_hover(g, -1);
  g_assert_true(conform_image_grid_export_png(g, b, 600, 130, NULL));
  g_autofree char *ca = NULL, *cb = NULL;
  gsize la, lb;
  g_assert_true(g_file_get_contents(a, &ca, &la, NULL));
  g_assert_true(g_file_get_contents(b, &cb, &lb, NULL));
  g_assert_true(la == lb && memcmp(ca, cb, la) == 0);
  g_unlink(a);
  g_unlink(b);
  g_rmdir(dir);
  /* new images clear labels and inputs */
  conform_image_grid_set_images(g, x, 2, 2, 2, NULL, NAN);
  g_autofree char *p0 = conform_image_grid_get_readout(g, 0);
  g_assert_cmpstr(p0, ==, "sample 0");
  g_object_unref(w);
}

int
main(int argc, char **argv)
{
  gtk_test_init(&argc, &argv, NULL);
  g_test_add_func("/image-grid/layout-pixels-frames", test_layout_pixels_frames);
  g_test_add_func("/image-grid/hover-labels-inputs", test_hover_labels_inputs);
  return g_test_run();
}
