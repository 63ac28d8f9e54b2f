/* ConformWindow: image data beyond the Samples grid. The sampling
 * trajectory as an image grid synchronised with the scrubber, the Samples
 * pane for fashion-superres rows ([thumbnail | image] pairs), the
 * Super-resolution tab (ConformSuperresPanel), the sidebar's "Start from
 * pretrained" toggle (train.init = the bundled pretrained model on Reset)
 * and "Choose folder…" for data.source (a folder of PNG images). The window
 * calls these hooks from build_views, conform_window_init, attach_run,
 * run_samples_cb, show_trajectory_frame and reset_action. */
#define G_LOG_DOMAIN "conform"

#include "conform-window-private.h"

#include <math.h>
#include <string.h>

#include "conform-classifier.h"
#include "conform-image-data.h"
#include "conform-image-grid.h"
#include "conform-superres-panel.h"

#define SAMPLES_SHOWN 64 /* images in the Samples pane (superres: 32 thumbnail + image pairs) */
#define TRAJ_SHOWN 64    /* images of the trajectory grid */

struct _ConformWindowImages {
  GtkWidget *traj_stack, *traj_grid;
  GtkWidget *superres, *superres_page;
  GtkWidget *thumbs_check; /* Samples pane: thumbnails beside superres samples */
  GtkWidget *pretrained_check, *pretrained_note, *folder_button;
  gboolean guard; /* setting the toggle from code */
};

static ConformWindowImages *
images(ConformWindow *self)
{
  if (!self->images)
    self->images = g_new0(ConformWindowImages, 1);
  return self->images;
}

void
conform_window_images_free_(ConformWindow *self)
{
  g_clear_pointer(&self->images, g_free);
}

static gboolean
is_superres_rows(int dim, int size)
{
  return size > 0 && size % CONFORM_SUPERRES_THUMB == 0 &&
         conform_image_row_offset(dim, size) == CONFORM_SUPERRES_THUMB * CONFORM_SUPERRES_THUMB;
}

/* ---- Sampling trajectory ---------------------------------------------------------- */

GtkWidget *
conform_window_traj_view_new_(ConformWindow *self)
{
  ConformWindowImages *im = images(self);
  im->traj_grid = conform_image_grid_new();
  gtk_widget_set_tooltip_text(im->traj_grid, NULL);
  im->traj_stack = gtk_stack_new();
  gtk_stack_add_named(GTK_STACK(im->traj_stack), self->traj_scatter, "scatter");
  gtk_stack_add_named(GTK_STACK(im->traj_stack), im->traj_grid, "images");
  gtk_widget_set_vexpand(im->traj_stack, TRUE);
  return im->traj_stack;
}

/* Frame k of the trajectory as images: the first traj_n samples' image part
 * in raw space (early frames are mostly noise outside [0, 1]: clipped to
 * black and white), each framed by its violation at that step. */
void
conform_window_images_traj_frame_(ConformWindow *self, const ConformSampleSet *s, int k)
{
  ConformWindowImages *im = images(self);
  ConformImageGrid *g = CONFORM_IMAGE_GRID(im->traj_grid);
  int size = self->image_size;
  if (!size || !s || !s->traj || conform_image_row_offset(s->dim, size) < 0) {
    conform_image_grid_set_images(g, NULL, 0, 1, 1, NULL, NAN);
    return;
  }
  const int d = size * size, off = conform_image_row_offset(s->dim, size), n = MIN(s->traj_n, TRAJ_SHOWN);
  const float *frame = s->traj + (gsize)k * s->traj_n * s->dim;
  float *img = g_new(float, (gsize)n * d);
  for (int i = 0; i < n; i++)
    memcpy(img + (gsize)i * d, frame + (gsize)i * s->dim + off, sizeof(float) * d);
  conform_image_grid_set_images(g, img, n, size, size, s->traj_viol ? s->traj_viol + (gsize)k * s->traj_n : NULL,
                                s->summary.viol.tol);
  g_free(img);
  char **labels = g_new0(char *, n + 1);
  for (int i = 0; i < n; i++)
    labels[i] = g_strdup_printf("sample %d at t = %d", i, s->traj_t[k]);
  conform_image_grid_set_labels(g, (const char *const *)labels, NULL);
  g_strfreev(labels);
  g_autofree char *cap = g_strdup_printf("x_t at t = %d · reverse step %d of %d · first %d of %d samples · raw "
                                         "pixels%s",
                                         s->traj_t[k], k, s->traj_steps, n, s->n,
                                         s->traj_viol ? " · frame: violation within tolerance" : "");
  conform_image_grid_set_caption(g, cap);
}

/* ---- Samples pane ---------------------------------------------------------------- */

/* The Samples pane's images: plain image rows as they are; superres rows
 * as (thumbnail, sample) pairs, the thumbnail upscaled and framed blue,
 * or the samples alone when the Thumbnails toggle is off. */
void
conform_window_images_samples_(ConformWindow *self, const ConformSampleSet *s)
{
  int size = self->image_size;
  if (!size || !s || conform_image_row_offset(s->dim, size) < 0)
    return;
  ConformWindowImages *im = images(self);
  ConformImageGrid *g = CONFORM_IMAGE_GRID(self->image_grid);
  const int d = size * size, off = conform_image_row_offset(s->dim, size);
  gboolean pairs = is_superres_rows(s->dim, size) && gtk_check_button_get_active(GTK_CHECK_BUTTON(im->thumbs_check));
  int n = MIN(s->n, pairs ? SAMPLES_SHOWN / 2 : SAMPLES_SHOWN);
  int cells = pairs ? 2 * n : n;
  float *img = g_new(float, (gsize)cells * d);
  double *viol = s->viol ? g_new(double, cells) : NULL;
  char **labels = g_new0(char *, cells + 1);
  gboolean *inputs = g_new0(gboolean, cells);
  int n_ref = 0;
  conform_run_get_reference(self->run, &n_ref);
  for (int i = 0, c = 0; i < n; i++) {
    const float *row = s->x + (gsize)i * s->dim;
    if (pairs) {
      conform_image_thumbnail_upscale(row, size, img + (gsize)c * d);
      if (viol)
        viol[c] = NAN;
      inputs[c] = TRUE;
      labels[c] = n_ref > 0 ? g_strdup_printf("thumbnail of sample %d (test image %d's): its constraint", i, i % n_ref)
                            : g_strdup_printf("thumbnail of sample %d: its constraint", i);
      c++;
    }
    memcpy(img + (gsize)c * d, row + off, sizeof(float) * d);
    if (viol)
      viol[c] = s->viol[i];
    labels[c] = g_strdup_printf("sample %d", i);
    c++;
  }
  conform_image_grid_set_column_multiple(g, pairs ? 2 : 1);
  conform_image_grid_set_images(g, img, cells, size, size, viol, s->summary.viol.tol);
  conform_image_grid_set_labels(g, (const char *const *)labels, pairs ? inputs : NULL);
  g_autofree char *cap = NULL;
  if (pairs) /* (shorter: the pane is narrow) */
    cap = g_strdup_printf("step %ld · %s · %d of %d · thumbnail (blue) | sample%s", s->step, s->strategy, n, s->n,
                          s->viol ? " (green: within tol)" : "");
  else
    cap = g_strdup_printf("step %ld · %s · first %d of %d samples%s", s->step, s->strategy, n, s->n,
                          s->viol ? " · frame: violation within tolerance" : "");
  conform_image_grid_set_caption(g, cap);
  g_free(img);
  g_free(viol);
  g_strfreev(labels);
  g_free(inputs);
}

static void
thumbs_toggled_cb(GtkCheckButton *b, ConformWindow *self)
{
  if (self->run && conform_run_get_samples(self->run))
    conform_window_images_samples_(self, conform_run_get_samples(self->run));
}

GtkWidget *
conform_window_images_samples_toggle_(ConformWindow *self)
{
  ConformWindowImages *im = images(self);
  im->thumbs_check = gtk_check_button_new_with_label("Thumbnails");
  gtk_check_button_set_active(GTK_CHECK_BUTTON(im->thumbs_check), TRUE);
  gtk_widget_set_tooltip_text(im->thumbs_check,
                              "fashion-superres: show each sample after its 7 x 7 thumbnail (upscaled, framed blue), "
                              "the input its block means must equal");
  gtk_widget_set_visible(im->thumbs_check, FALSE);
  g_signal_connect(im->thumbs_check, "toggled", G_CALLBACK(thumbs_toggled_cb), self);
  return im->thumbs_check;
}

/* ---- Super-resolution tab ---------------------------------------------------------- */

GtkWidget *
conform_window_superres_page_new_(ConformWindow *self)
{
  ConformWindowImages *im = images(self);
  im->superres = conform_superres_panel_new();
  im->superres_page = im->superres; /* hidden unless the run's rows are [thumbnail | image] */
  gtk_widget_set_visible(im->superres_page, FALSE);
  return im->superres_page;
}

/* ---- sidebar: Start from pretrained, Choose folder ---------------------------------- */

static void
set_pending(ConformWindow *self, const char *key, const char *value)
{
  g_autoptr(GError) error = NULL;
  if (!conform_config_set(&self->pending, key, value, &error)) {
    conform_window_show_message_(self, error->message, TRUE);
    return;
  }
  GtkWidget *w = g_hash_table_lookup(self->setting_widgets, key);
  if (w && GTK_IS_EDITABLE(w)) {
    gboolean was = self->syncing;
    self->syncing = TRUE;
    gtk_editable_set_text(GTK_EDITABLE(w), value);
    self->syncing = was;
  }
  self->pending_restart = TRUE;
  gtk_widget_set_visible(self->restart_banner, TRUE);
}

/* The toggle is usable for image sources without inputs (the bundled
 * model is unconditional) when the model for data.image_size is there;
 * otherwise insensitive with the reason. Active when train.init names it. */
static void
refresh_pretrained(ConformWindow *self)
{
  ConformWindowImages *im = images(self);
  if (!im->pretrained_check)
    return;
  const ConformConfig *p = &self->pending;
  g_autofree char *dir = conform_pretrained_dir(p->image_size);
  g_autofree char *tip = NULL, *note = NULL;
  gboolean usable = FALSE, images = conform_image_source_is(p->data);
  if (!images) {
    tip = g_strdup("Start from pretrained: for image data (the Fashion-MNIST presets or a PNG folder) only");
  } else if (p->inputs > 0) {
    tip = g_strdup("Start from pretrained: the bundled model is unconditional; this preset's model also takes "
                   "the 7 x 7 thumbnail, so it trains from scratch");
    note = g_strdup("The bundled model is unconditional: not for this preset's inputs");
  } else if (!dir) {
    g_autofree char *want = g_strdup_printf("%s/pretrained/fashion%d/weights.ckpt", conform_data_dir(),
                                            p->image_size);
    tip = g_strdup_printf("No bundled pretrained model for %d x %d images: %s is missing", p->image_size,
                          p->image_size, want);
    note = g_strdup_printf("No bundled pretrained model for %d x %d images", p->image_size, p->image_size);
  } else {
    usable = TRUE;
    tip = g_strdup_printf("On Reset, start from the bundled pretrained Fashion-MNIST diffusion model (%s): "
                          "train.init = its directory; its EMA weights and normalisation, fresh optimiser",
                          dir);
  }
  gtk_widget_set_visible(im->pretrained_check, images);
  gtk_widget_set_sensitive(im->pretrained_check, usable);
  gtk_widget_set_tooltip_text(im->pretrained_check, tip);
  /* (insensitive widgets show no tooltip: the reason in words under it) */
  gtk_label_set_text(GTK_LABEL(im->pretrained_note), note ? note : "");
  gtk_widget_set_tooltip_text(im->pretrained_note, tip);
  gtk_widget_set_visible(im->pretrained_note, note != NULL);
  im->guard = TRUE;
  gtk_check_button_set_active(GTK_CHECK_BUTTON(im->pretrained_check),
                              usable && p->init && g_strcmp0(p->init, dir) == 0);
  im->guard = FALSE;
}

static void
pretrained_toggled_cb(GtkCheckButton *b, ConformWindow *self)
{
  ConformWindowImages *im = images(self);
  if (im->guard || self->syncing)
    return;
  g_autofree char *dir = conform_pretrained_dir(self->pending.image_size);
  if (gtk_check_button_get_active(b) && dir) {
    set_pending(self, "train.init", dir);
    conform_window_show_message_(self, "Start from pretrained: train.init applies on Reset", FALSE);
  } else if (!gtk_check_button_get_active(b)) {
    set_pending(self, "train.init", "");
  }
}

/* Reset with the toggle on: train.init is the pretrained model for the
 * image size then set (it may have changed since the toggle was set). */
void
conform_window_images_before_reset_(ConformWindow *self)
{
  ConformWindowImages *im = images(self);
  if (!im->pretrained_check || !gtk_check_button_get_active(GTK_CHECK_BUTTON(im->pretrained_check)))
    return;
  g_autofree char *dir = conform_pretrained_dir(self->pending.image_size);
  if (dir && conform_image_source_is(self->pending.data) && self->pending.inputs == 0)
    conform_config_set(&self->pending, "train.init", dir, NULL);
}

static void
folder_chosen_cb(GtkNativeDialog *d, int response, ConformWindow *self)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    g_autofree char *path = f ? g_file_get_path(f) : NULL;
    if (path)
      conform_window_choose_folder_(self, path);
  }
  g_object_unref(d);
}

static void
choose_folder_cb(GtkButton *b, ConformWindow *self)
{
  GtkFileChooserNative *d = gtk_file_chooser_native_new("Choose a folder of PNG images", GTK_WINDOW(self),
                                                        GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Choose", "_Cancel");
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(d), TRUE);
  if (conform_image_source_is_folder(self->pending.data)) {
    g_autoptr(GFile) cur = g_file_new_for_path(self->pending.data);
    gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(d), cur, NULL);
  }
  g_signal_connect(d, "response", G_CALLBACK(folder_chosen_cb), self);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

void
conform_window_choose_folder_(ConformWindow *self, const char *path)
{
  g_return_if_fail(CONFORM_IS_WINDOW(self));
  set_pending(self, "data.source", path);
  refresh_pretrained(self);
  g_autofree char *msg = g_strdup_printf("data.source: the PNG images in %s (applies on Reset)", path);
  conform_window_show_message_(self, msg, FALSE);
}

static void
sidebar_changed_cb(GtkWidget *w, ConformWindow *self)
{
  refresh_pretrained(self);
}

/* Puts `extra` in the row below setting `key` of its sidebar grid, over
 * both columns (or beside its widget: replace). */
static gboolean
grid_row_of(ConformWindow *self, const char *key, GtkWidget **w, GtkGrid **grid, int *row)
{
  *w = g_hash_table_lookup(self->setting_widgets, key);
  GtkWidget *parent = *w ? gtk_widget_get_parent(*w) : NULL;
  if (!parent || !GTK_IS_GRID(parent))
    return FALSE;
  *grid = GTK_GRID(parent);
  int col, w_, h_;
  gtk_grid_query_child(*grid, *w, &col, row, &w_, &h_);
  return TRUE;
}

void
conform_window_images_sidebar_(ConformWindow *self)
{
  ConformWindowImages *im = images(self);
  GtkWidget *w;
  GtkGrid *grid;
  int row;
  if (grid_row_of(self, "train.init", &w, &grid, &row)) {
    gtk_grid_insert_row(grid, row + 1);
    gtk_grid_insert_row(grid, row + 1);
    im->pretrained_check = gtk_check_button_new_with_label("Start from pretrained");
    g_signal_connect(im->pretrained_check, "toggled", G_CALLBACK(pretrained_toggled_cb), self);
    gtk_grid_attach(grid, im->pretrained_check, 0, row + 1, 2, 1);
    im->pretrained_note = gtk_label_new("");
    gtk_label_set_wrap(GTK_LABEL(im->pretrained_note), TRUE);
    gtk_label_set_xalign(GTK_LABEL(im->pretrained_note), 0);
    gtk_widget_add_css_class(im->pretrained_note, "dim-label");
    gtk_widget_add_css_class(im->pretrained_note, "caption");
    gtk_grid_attach(grid, im->pretrained_note, 0, row + 2, 2, 1);
  }
  if (grid_row_of(self, "data.source", &w, &grid, &row)) {
    /* the entry and a folder button side by side in the entry's cell */
    g_object_ref(w);
    gtk_grid_remove(grid, w);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_widget_add_css_class(box, "linked");
    gtk_editable_set_width_chars(GTK_EDITABLE(w), 8);
    gtk_widget_set_hexpand(w, TRUE);
    gtk_box_append(GTK_BOX(box), w);
    g_object_unref(w);
    im->folder_button = gtk_button_new_from_icon_name("folder-open-symbolic");
    gtk_widget_set_tooltip_text(im->folder_button,
                                "Choose folder…: train on a folder of PNG images (data.source; any colour type, "
                                "converted to gray and resized to data.image_size; applies on Reset)");
    gtk_accessible_update_property(GTK_ACCESSIBLE(im->folder_button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                   "Choose folder…", -1);
    g_signal_connect(im->folder_button, "clicked", G_CALLBACK(choose_folder_cb), self);
    gtk_box_append(GTK_BOX(box), im->folder_button);
    gtk_grid_attach(grid, box, 1, row, 1, 1);
    g_signal_connect_after(w, "activate", G_CALLBACK(sidebar_changed_cb), self);
  }
  GtkWidget *size = g_hash_table_lookup(self->setting_widgets, "data.image_size");
  if (size && GTK_IS_SPIN_BUTTON(size))
    g_signal_connect_after(size, "value-changed", G_CALLBACK(sidebar_changed_cb), self);
  GtkWidget *inputs = g_hash_table_lookup(self->setting_widgets, "data.inputs");
  if (inputs && GTK_IS_SPIN_BUTTON(inputs))
    g_signal_connect_after(inputs, "value-changed", G_CALLBACK(sidebar_changed_cb), self);
  GtkWidget *init = g_hash_table_lookup(self->setting_widgets, "train.init");
  if (init && GTK_IS_ENTRY(init))
    g_signal_connect_after(init, "activate", G_CALLBACK(sidebar_changed_cb), self);
  refresh_pretrained(self);
}

/* ---- hooks ------------------------------------------------------------------------- */

void
conform_window_images_attach_(ConformWindow *self, ConformRun *run)
{
  ConformWindowImages *im = images(self);
  int dim = conform_run_get_dim(run);
  gboolean superres = is_superres_rows(dim, self->image_size);
  gtk_stack_set_visible_child_name(GTK_STACK(im->traj_stack), self->image_size ? "images" : "scatter");
  conform_image_grid_set_images(CONFORM_IMAGE_GRID(im->traj_grid), NULL, 0, 1, 1, NULL, NAN);
  conform_image_grid_set_caption(CONFORM_IMAGE_GRID(im->traj_grid), NULL);
  gtk_widget_set_visible(im->thumbs_check, superres);
  gtk_widget_set_visible(im->superres_page, superres);
  conform_superres_panel_set_run(CONFORM_SUPERRES_PANEL(im->superres), superres ? run : NULL);
  refresh_pretrained(self);
}

GtkWidget *
conform_window_images_view_(ConformWindow *self, const char *name)
{
  ConformWindowImages *im = self->images;
  if (!im)
    return NULL;
  if (g_str_equal(name, "trajectory-images")) return im->traj_grid;
  if (g_str_equal(name, "trajectory-stack")) return im->traj_stack;
  if (g_str_equal(name, "superres")) return im->superres;
  if (g_str_equal(name, "superres-page")) return im->superres_page;
  if (g_str_equal(name, "thumbnails")) return im->thumbs_check;
  if (g_str_equal(name, "pretrained")) return im->pretrained_check;
  if (g_str_equal(name, "pretrained-note")) return im->pretrained_note;
  if (g_str_equal(name, "choose-folder")) return im->folder_button;
  return NULL;
}
