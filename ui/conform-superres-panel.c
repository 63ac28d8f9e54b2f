#define G_LOG_DOMAIN "conform"

#include "conform-superres-panel.h"

#include <math.h>
#include <string.h>

#include "conform-engine.h"
#include "conform-image-data.h"
#include "conform-image-grid.h"

#define INDEX_MAX 9999 /* the Fashion-MNIST test split; the run holds out data.n_ref of them */

struct _ConformSuperresPanel {
  GtkBox parent_instance;
  ConformRun *run;
  GCancellable *cancellable; /* the Generate in flight */
  guint generation;          /* Generate presses, for the seed */
  GtkWidget *index_spin, *random_button, *n_spin, *all_check, *generate_button;
  GtkWidget *message, *target_title, *target, *results_title, *results_box;
  GPtrArray *grids, *sets, *titles; /* one per strategy of the last Generate */
  char *message_text;
  gboolean message_error;
};

G_DEFINE_FINAL_TYPE(ConformSuperresPanel, conform_superres_panel, GTK_TYPE_BOX)

static void
set_message(ConformSuperresPanel *self, const char *text, gboolean is_error)
{
  g_free(self->message_text);
  self->message_text = g_strdup(text ? text : "");
  self->message_error = is_error;
  gtk_label_set_text(GTK_LABEL(self->message), self->message_text);
  if (is_error)
    gtk_widget_add_css_class(self->message, "error");
  else
    gtk_widget_remove_css_class(self->message, "error");
}

static void
clear_results(ConformSuperresPanel *self)
{
  GtkWidget *c;
  while ((c = gtk_widget_get_first_child(self->results_box)))
    gtk_box_remove(GTK_BOX(self->results_box), c);
  gtk_label_set_markup(GTK_LABEL(self->results_title),
                       "<b>Candidates</b>  <span alpha='60%'>pick a test image and press Generate</span>");
  g_ptr_array_set_size(self->grids, 0);
  g_ptr_array_set_size(self->sets, 0);
  g_ptr_array_set_size(self->titles, 0);
}

static void
cancel_generate(ConformSuperresPanel *self)
{
  if (self->cancellable) {
    g_cancellable_cancel(self->cancellable);
    g_clear_object(&self->cancellable);
  }
  gtk_widget_set_sensitive(self->generate_button, self->run != NULL);
}

/* The run's superres geometry: image side, row dimension, held-out rows. */
static gboolean
geometry(ConformSuperresPanel *self, int *size, int *dim, const float **ref, int *n_ref)
{
  if (!self->run)
    return FALSE;
  const ConformConfig *cfg = conform_run_get_config(self->run);
  *size = cfg->image_size;
  *dim = conform_run_get_dim(self->run);
  *ref = conform_run_get_reference(self->run, n_ref);
  return *size > 0 && conform_image_row_offset(*dim, *size) == CONFORM_SUPERRES_THUMB * CONFORM_SUPERRES_THUMB;
}

/* Checks the index as the engine would; the message on failure. */
static gboolean
check_index(ConformSuperresPanel *self, int row)
{
  int size, dim, n_ref = 0;
  const float *ref;
  if (!geometry(self, &size, &dim, &ref, &n_ref)) {
    set_message(self, "The super-resolution demo needs a fashion-superres run (rows [7 x 7 thumbnail | image])", TRUE);
    return FALSE;
  }
  g_autoptr(GError) error = NULL;
  if (!conform_check_condition(conform_run_get_config(self->run), CONFORM_SUPERRES_THUMB * CONFORM_SUPERRES_THUMB,
                               n_ref, row, &error)) {
    set_message(self, error->message, TRUE);
    return FALSE;
  }
  return TRUE;
}

/* The chosen test image: its thumbnail (upscaled, framed blue: the given
 * input) beside the image. */
static void
show_target(ConformSuperresPanel *self)
{
  ConformImageGrid *g = CONFORM_IMAGE_GRID(self->target);
  int row = conform_superres_panel_get_index(self);
  int size, dim, n_ref = 0;
  const float *ref;
  if (!check_index(self, row) || !geometry(self, &size, &dim, &ref, &n_ref) || !ref) {
    conform_image_grid_set_images(g, NULL, 0, 1, 1, NULL, NAN);
    conform_image_grid_set_caption(g, "no test image");
    gtk_label_set_markup(GTK_LABEL(self->target_title), "<b>Test image</b>");
    return;
  }
  const int d = size * size, off = conform_image_row_offset(dim, size);
  const float *r = ref + (gsize)row * dim;
  float *cells = g_new(float, 2 * (gsize)d);
  conform_image_thumbnail_upscale(r, size, cells);
  memcpy(cells + d, r + off, sizeof(float) * d);
  conform_image_grid_set_images(g, cells, 2, size, size, NULL, NAN);
  g_autofree char *l0 = g_strdup_printf("thumbnail of test image %d: the constraint (7 x 7 block means)", row);
  g_autofree char *l1 = g_strdup_printf("test image %d (held out; the candidates do not see it)", row);
  const char *labels[] = {l0, l1};
  const gboolean inputs[] = {TRUE, FALSE};
  conform_image_grid_set_labels(g, labels, inputs);
  conform_image_grid_set_caption(g, "thumbnail (constraint) · image");
  g_free(cells);
  g_autofree char *title = g_strdup_printf("<b>Test image %d</b>", row);
  gtk_label_set_markup(GTK_LABEL(self->target_title), title);
  if (!self->cancellable)
    set_message(self, "Generate draws candidates whose block means equal this thumbnail", FALSE);
}

/* Strategies to sample with, by the sampler's rules: a cgauss model samples
 * with cgauss only; the others with none, projection and projected-sampling
 * (dual and none are the same plain chain). */
static char **
strategies_for(ConformSuperresPanel *self)
{
  const ConformConfig *cfg = conform_run_get_config(self->run);
  gboolean all = gtk_check_button_get_active(GTK_CHECK_BUTTON(self->all_check));
  if (!all || g_strcmp0(cfg->strategy, "cgauss") == 0 || g_strcmp0(cfg->model_type, "vae") == 0) {
    char **v = g_new0(char *, 2);
    v[0] = g_strdup(cfg->strategy);
    return v;
  }
  char **v = g_new0(char *, 4);
  v[0] = g_strdup("none");
  v[1] = g_strdup("projection");
  v[2] = g_strdup("projected-sampling");
  return v;
}

static void
add_result(ConformSuperresPanel *self, ConformSampleSet *s, int size, int row)
{
  const int d = size * size, off = conform_image_row_offset(s->dim, size);
  int n = MIN(s->n, CONFORM_IMAGE_GRID_MAX);
  float *img = g_new(float, (gsize)n * d);
  for (int i = 0; i < n; i++)
    memcpy(img + (gsize)i * d, s->x + (gsize)i * s->dim + off, sizeof(float) * d);
  GtkWidget *grid = conform_image_grid_new();
  conform_image_grid_set_images(CONFORM_IMAGE_GRID(grid), img, n, size, size, s->viol, s->summary.viol.tol);
  char **labels = g_new0(char *, n + 1);
  for (int i = 0; i < n; i++)
    labels[i] = g_strdup_printf("%s candidate %d for test image %d", s->strategy, i, row);
  conform_image_grid_set_labels(CONFORM_IMAGE_GRID(grid), (const char *const *)labels, NULL);
  g_strfreev(labels);
  g_free(img);
  g_autofree char *cap = g_strdup_printf("%d candidates · %s · step %ld", s->n, s->sampler, s->step);
  conform_image_grid_set_caption(CONFORM_IMAGE_GRID(grid), cap);
  gtk_widget_set_size_request(grid, -1, 190);
  gtk_widget_set_vexpand(grid, FALSE);
  const ConformSummary *m = &s->summary;
  int within = (int)lround(m->viol.frac_satisfied * s->n);
  g_autofree char *plain = NULL;
  if (m->has_constraint)
    plain = g_strdup_printf("%s · violation max %.2g · %d/%d within tolerance · cond_rmse %.3g", s->strategy,
                            m->viol.max, within, s->n, m->cond_rmse);
  else
    plain = g_strdup_printf("%s · cond_rmse %.3g", s->strategy, m->cond_rmse);
  g_autofree char *markup = NULL;
  if (m->has_constraint)
    markup = g_markup_printf_escaped("<b>%s</b> · violation max %.2g · %d/%d within tolerance · cond_rmse %.3g",
                                     s->strategy, m->viol.max, within, s->n, m->cond_rmse);
  else
    markup = g_markup_printf_escaped("<b>%s</b> · cond_rmse %.3g", s->strategy, m->cond_rmse);
  GtkWidget *title = gtk_label_new(NULL);
  gtk_label_set_markup(GTK_LABEL(title), markup);
  gtk_label_set_xalign(GTK_LABEL(title), 0);
  gtk_widget_add_css_class(title, "numeric");
  gtk_widget_set_tooltip_text(title, "violation ||A x - b|| per candidate (raw pixels; frames: green within "
                                     "tolerance, vermillion above; hover a candidate for its value); cond_rmse: RMS "
                                     "pixel error against the test image in units of the pooled pixel spread");
  gtk_box_append(GTK_BOX(self->results_box), title);
  gtk_box_append(GTK_BOX(self->results_box), grid);
  g_ptr_array_add(self->grids, grid);
  g_ptr_array_add(self->sets, conform_sample_set_ref(s));
  g_ptr_array_add(self->titles, g_steal_pointer(&plain));
}

typedef struct {
  ConformSuperresPanel *self;
  GCancellable *cancellable;
  int row, size;
} GenerateData;

static void
generate_done_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  GenerateData *gd = data;
  ConformSuperresPanel *self = gd->self;
  g_autoptr(GError) error = NULL;
  GPtrArray *sets = conform_run_sample_finish(CONFORM_RUN(src), res, &error);
  gboolean current = self->cancellable == gd->cancellable && !g_cancellable_is_cancelled(gd->cancellable);
  if (current) {
    g_clear_object(&self->cancellable);
    gtk_widget_set_sensitive(self->generate_button, self->run != NULL);
    if (!sets) {
      set_message(self, error->message, TRUE);
    } else {
      clear_results(self);
      for (guint i = 0; i < sets->len; i++)
        add_result(self, g_ptr_array_index(sets, i), gd->size, gd->row);
      ConformSampleSet *s0 = sets->len ? g_ptr_array_index(sets, 0) : NULL;
      g_autofree char *head = g_markup_printf_escaped(
        "<b>Candidates for test image %d</b>  <span alpha='60%%'>same seed for every strategy · %s · step %ld</span>",
        gd->row, s0 ? s0->sampler : "", s0 ? s0->step : 0L);
      gtk_label_set_markup(GTK_LABEL(self->results_title), head);
      g_autofree char *msg = g_strdup_printf("%u strateg%s × %d candidates for test image %d, same seed (%s)",
                                             sets->len, sets->len == 1 ? "y" : "ies", s0 ? s0->n : 0, gd->row,
                                             s0 ? s0->sampler : "");
      set_message(self, msg, FALSE);
    }
  }
  if (sets)
    g_ptr_array_unref(sets);
  g_object_unref(gd->cancellable);
  g_object_unref(gd->self);
  g_free(gd);
}

/* ---- public API ------------------------------------------------------------- */

void
conform_superres_panel_generate(ConformSuperresPanel *self)
{
  g_return_if_fail(CONFORM_IS_SUPERRES_PANEL(self));
  int row = conform_superres_panel_get_index(self);
  if (!check_index(self, row))
    return;
  cancel_generate(self);
  const ConformConfig *cfg = conform_run_get_config(self->run);
  g_auto(GStrv) strategies = strategies_for(self);
  self->generation++;
  ConformSampleOptions o = {
    .n = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->n_spin)),
    .sampling_steps = 0,
    .eta = -1,
    .seed = cfg->seed * 1000003u + (guint64)row * 7919u + self->generation,
    .use_seed = TRUE,
    .preview = TRUE, /* cond_rmse and violations; no FD / energy distance for a handful of candidates */
    .use_condition = TRUE,
    .condition_row = row,
  };
  self->cancellable = g_cancellable_new();
  GenerateData *gd = g_new0(GenerateData, 1);
  gd->self = g_object_ref(self);
  gd->cancellable = g_object_ref(self->cancellable);
  gd->row = row;
  gd->size = cfg->image_size;
  conform_run_sample_async(self->run, &o, (const char *const *)strategies, 0, self->cancellable, generate_done_cb, gd);
  gtk_widget_set_sensitive(self->generate_button, FALSE);
  g_autofree char *joined = g_strjoinv(", ", strategies);
  g_autofree char *msg = g_strdup_printf("generating %d candidates for test image %d with %s (sampling thread)…", o.n,
                                         row, joined);
  set_message(self, msg, FALSE);
}

void
conform_superres_panel_set_run(ConformSuperresPanel *self, ConformRun *run)
{
  g_return_if_fail(CONFORM_IS_SUPERRES_PANEL(self));
  cancel_generate(self);
  g_set_object(&self->run, run);
  clear_results(self);
  gtk_widget_set_sensitive(self->generate_button, run != NULL);
  gtk_widget_set_sensitive(self->random_button, run != NULL);
  if (run) {
    set_message(self, "", FALSE);
    show_target(self);
  }
}

void
conform_superres_panel_set_index(ConformSuperresPanel *self, int index)
{
  g_return_if_fail(CONFORM_IS_SUPERRES_PANEL(self));
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->index_spin), index); /* -> value-changed: show_target */
}

int
conform_superres_panel_get_index(ConformSuperresPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_SUPERRES_PANEL(self), 0);
  return gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->index_spin));
}

void
conform_superres_panel_random(ConformSuperresPanel *self)
{
  g_return_if_fail(CONFORM_IS_SUPERRES_PANEL(self));
  int size, dim, n_ref = 0;
  const float *ref;
  if (!geometry(self, &size, &dim, &ref, &n_ref) || n_ref <= 0)
    return;
  conform_superres_panel_set_index(self, g_random_int_range(0, n_ref));
}

void
conform_superres_panel_set_all_strategies(ConformSuperresPanel *self, gboolean all)
{
  g_return_if_fail(CONFORM_IS_SUPERRES_PANEL(self));
  gtk_check_button_set_active(GTK_CHECK_BUTTON(self->all_check), all);
}

void
conform_superres_panel_set_n_candidates(ConformSuperresPanel *self, int n)
{
  g_return_if_fail(CONFORM_IS_SUPERRES_PANEL(self));
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->n_spin), n);
}

const char *
conform_superres_panel_get_message(ConformSuperresPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_SUPERRES_PANEL(self), "");
  return self->message_text ? self->message_text : "";
}

gboolean
conform_superres_panel_is_error(ConformSuperresPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_SUPERRES_PANEL(self), FALSE);
  return self->message_error;
}

gboolean
conform_superres_panel_is_busy(ConformSuperresPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_SUPERRES_PANEL(self), FALSE);
  return self->cancellable != NULL;
}

GtkWidget *
conform_superres_panel_get_target_grid(ConformSuperresPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_SUPERRES_PANEL(self), NULL);
  return self->target;
}

int
conform_superres_panel_get_n_results(ConformSuperresPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_SUPERRES_PANEL(self), 0);
  return (int)self->grids->len;
}

GtkWidget *
conform_superres_panel_get_result_grid(ConformSuperresPanel *self, int i)
{
  g_return_val_if_fail(CONFORM_IS_SUPERRES_PANEL(self), NULL);
  return i >= 0 && i < (int)self->grids->len ? g_ptr_array_index(self->grids, i) : NULL;
}

ConformSampleSet *
conform_superres_panel_get_result(ConformSuperresPanel *self, int i)
{
  g_return_val_if_fail(CONFORM_IS_SUPERRES_PANEL(self), NULL);
  return i >= 0 && i < (int)self->sets->len ? g_ptr_array_index(self->sets, i) : NULL;
}

const char *
conform_superres_panel_get_result_title(ConformSuperresPanel *self, int i)
{
  g_return_val_if_fail(CONFORM_IS_SUPERRES_PANEL(self), NULL);
  return i >= 0 && i < (int)self->titles->len ? g_ptr_array_index(self->titles, i) : NULL;
}

/* ---- GObject ------------------------------------------------------------------ */

static void
index_changed_cb(GtkSpinButton *spin, ConformSuperresPanel *self)
{
  if (self->run)
    show_target(self);
}

static void
random_cb(GtkButton *b, ConformSuperresPanel *self)
{
  conform_superres_panel_random(self);
}

static void
generate_cb(GtkButton *b, ConformSuperresPanel *self)
{
  conform_superres_panel_generate(self);
}

static void
conform_superres_panel_dispose(GObject *object)
{
  ConformSuperresPanel *self = CONFORM_SUPERRES_PANEL(object);
  if (self->cancellable) {
    g_cancellable_cancel(self->cancellable);
    g_clear_object(&self->cancellable);
  }
  g_clear_object(&self->run);
  G_OBJECT_CLASS(conform_superres_panel_parent_class)->dispose(object);
}

static void
conform_superres_panel_finalize(GObject *object)
{
  ConformSuperresPanel *self = CONFORM_SUPERRES_PANEL(object);
  g_ptr_array_unref(self->grids);
  g_ptr_array_unref(self->sets);
  g_ptr_array_unref(self->titles);
  g_free(self->message_text);
  G_OBJECT_CLASS(conform_superres_panel_parent_class)->finalize(object);
}

static void
conform_superres_panel_class_init(ConformSuperresPanelClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  oc->dispose = conform_superres_panel_dispose;
  oc->finalize = conform_superres_panel_finalize;
}

static void
conform_superres_panel_init(ConformSuperresPanel *self)
{
  self->grids = g_ptr_array_new();
  self->sets = g_ptr_array_new_with_free_func((GDestroyNotify)conform_sample_set_unref);
  self->titles = g_ptr_array_new_with_free_func(g_free);
  gtk_orientable_set_orientation(GTK_ORIENTABLE(self), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing(GTK_BOX(self), 6);
  gtk_widget_set_margin_start(GTK_WIDGET(self), 8);
  gtk_widget_set_margin_end(GTK_WIDGET(self), 8);
  gtk_widget_set_margin_top(GTK_WIDGET(self), 8);
  gtk_widget_set_margin_bottom(GTK_WIDGET(self), 6);

  GtkWidget *controls = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *il = gtk_label_new("Test image");
  self->index_spin = gtk_spin_button_new_with_range(0, INDEX_MAX, 1);
  gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(self->index_spin), TRUE);
  gtk_widget_add_css_class(self->index_spin, "numeric");
  gtk_widget_set_tooltip_text(self->index_spin,
                              "Held-out test image whose 7 x 7 thumbnail the candidates must match (0 .. data.n_ref − 1; "
                              "raise data.n_ref, up to 10000, for later test images)");
  g_signal_connect(self->index_spin, "value-changed", G_CALLBACK(index_changed_cb), self);
  self->random_button = gtk_button_new_with_label("Random");
  gtk_widget_set_tooltip_text(self->random_button, "Pick a random held-out test image");
  g_signal_connect(self->random_button, "clicked", G_CALLBACK(random_cb), self);
  GtkWidget *nl = gtk_label_new("Candidates");
  self->n_spin = gtk_spin_button_new_with_range(1, 64, 1);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(self->n_spin), 8);
  gtk_widget_set_tooltip_text(self->n_spin, "Candidates per strategy");
  self->all_check = gtk_check_button_new_with_label("All strategies");
  gtk_check_button_set_active(GTK_CHECK_BUTTON(self->all_check), TRUE);
  gtk_widget_set_tooltip_text(self->all_check,
                              "Each strategy this model samples with, from the same seed: none, projection and "
                              "projected-sampling (a cgauss model: cgauss only). Off: the run's strategy only.");
  self->generate_button = gtk_button_new_with_label("Generate");
  gtk_widget_add_css_class(self->generate_button, "suggested-action");
  gtk_widget_set_tooltip_text(self->generate_button,
                              "Sample candidates for this thumbnail from the latest parameters (on the sampling "
                              "thread, with the experiment's sampler settings)");
  g_signal_connect(self->generate_button, "clicked", G_CALLBACK(generate_cb), self);
  gtk_box_append(GTK_BOX(controls), il);
  gtk_box_append(GTK_BOX(controls), self->index_spin);
  gtk_box_append(GTK_BOX(controls), self->random_button);
  gtk_box_append(GTK_BOX(controls), gtk_separator_new(GTK_ORIENTATION_VERTICAL));
  gtk_box_append(GTK_BOX(controls), nl);
  gtk_box_append(GTK_BOX(controls), self->n_spin);
  gtk_box_append(GTK_BOX(controls), self->all_check);
  gtk_box_append(GTK_BOX(controls), self->generate_button);
  gtk_box_append(GTK_BOX(self), controls);

  self->message = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(self->message), 0);
  gtk_label_set_wrap(GTK_LABEL(self->message), TRUE);
  gtk_box_append(GTK_BOX(self), self->message);

  GtkWidget *body = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_widget_set_vexpand(body, TRUE);
  GtkWidget *left = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
  self->target_title = gtk_label_new(NULL);
  gtk_label_set_markup(GTK_LABEL(self->target_title), "<b>Test image</b>");
  gtk_label_set_xalign(GTK_LABEL(self->target_title), 0);
  self->target = conform_image_grid_new();
  gtk_widget_set_size_request(self->target, 260, 150);
  gtk_widget_set_vexpand(self->target, FALSE);
  gtk_widget_set_hexpand(self->target, FALSE);
  GtkWidget *explain = gtk_label_new("The thumbnail (framed blue) is the constraint: every candidate's block means "
                                     "(2 x 2 at 14 x 14, 4 x 4 at 28 x 28) must equal its 49 values, "
                                     "A = [−I | P], b = 0. The test image itself is what the model never sees.");
  gtk_label_set_wrap(GTK_LABEL(explain), TRUE);
  gtk_label_set_max_width_chars(GTK_LABEL(explain), 34);
  gtk_label_set_xalign(GTK_LABEL(explain), 0);
  gtk_widget_add_css_class(explain, "dim-label");
  gtk_box_append(GTK_BOX(left), self->target_title);
  gtk_box_append(GTK_BOX(left), self->target);
  gtk_box_append(GTK_BOX(left), explain);
  gtk_box_append(GTK_BOX(body), left);

  self->results_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
  self->results_title = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(self->results_title), 0);
  GtkWidget *right = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
  gtk_box_append(GTK_BOX(right), self->results_title);
  GtkWidget *scroll = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), self->results_box);
  gtk_widget_set_hexpand(scroll, TRUE);
  gtk_widget_set_vexpand(scroll, TRUE);
  gtk_box_append(GTK_BOX(right), scroll);
  gtk_widget_set_hexpand(right, TRUE);
  gtk_box_append(GTK_BOX(body), right);
  gtk_box_append(GTK_BOX(self), body);
  gtk_widget_set_sensitive(self->generate_button, FALSE);
  gtk_widget_set_sensitive(self->random_button, FALSE);
  clear_results(self);
}

GtkWidget *
conform_superres_panel_new(void)
{
  return g_object_new(CONFORM_TYPE_SUPERRES_PANEL, NULL);
}
