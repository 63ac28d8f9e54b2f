#define G_LOG_DOMAIN "conform"

#include "conform-compare-view.h"

#include <math.h>
#include <string.h>

#include "conform-histogram.h"
#include "conform-palette.h"
#include "conform-scatter.h"

/* Colours follow the window's strategy order, so a strategy has the same
 * colour in the Explore histogram and here. */
static const char *const colour_order[] = {"none", "projection", "projected-sampling", "constrained-layer", "cgauss", "dual", "mirror",
                                           NULL};

typedef struct {
  GtkWidget *box, *title, *scatter, *histogram;
  char *strategy;
  long step;
  ConformSampleSet *set;
  char *title_text; /* plain text, for export */
} Column;

struct _ConformCompareView {
  GtkBox parent_instance;

  /* experiment */
  ConformConfig cfg;
  gboolean have_cfg;
  int dim;
  float *train;
  int n_train;
  double *basis, *center;
  double tol;

  /* widgets */
  GtkWidget *check_box, *checks[CONFORM_COMPARE_MAX];
  const char *check_names[CONFORM_COMPARE_MAX];
  GtkWidget *start_button, *stop_button, *cpu_label, *status_label, *columns_box;
  Column cols[CONFORM_COMPARE_MAX];
  int n_cols;

  ConformCompareRun *run;
  guint bundles_shown;
  gboolean main_training;
  char *status_text;
  char *round_text; /* "step N · strategies …" of the newest round */
};

G_DEFINE_FINAL_TYPE(ConformCompareView, conform_compare_view, GTK_TYPE_BOX)

static int
colour_of(const char *strategy)
{
  for (int i = 0; colour_order[i]; i++)
    if (g_strcmp0(colour_order[i], strategy) == 0)
      return i;
  return 0;
}

static char **
coordinate_names(int dim)
{
  char **names = g_new0(char *, dim + 1);
  for (int i = 0; i < dim; i++)
    names[i] = g_strdup_printf("x%d", i);
  return names;
}

static void
set_status(ConformCompareView *self, const char *text, gboolean is_error)
{
  g_free(self->status_text);
  self->status_text = g_strdup(text);
  gtk_label_set_text(GTK_LABEL(self->status_label), text);
  gtk_widget_set_tooltip_text(self->status_label, text);
  if (is_error)
    gtk_widget_add_css_class(self->status_label, "error");
  else
    gtk_widget_remove_css_class(self->status_label, "error");
}

static void
update_cpu_note(ConformCompareView *self)
{
  gboolean running = self->run && conform_compare_run_get_state(self->run) != CONFORM_RUN_STOPPED;
  const char *text =
    running && self->main_training
      ? "⚠ The main run is training too: both workers compete for the CPU, so each runs slower."
      : "Runs on its own worker thread, independent of the main run; while both train they compete for the CPU.";
  gtk_label_set_text(GTK_LABEL(self->cpu_label), text);
  if (running && self->main_training)
    gtk_widget_add_css_class(self->cpu_label, "warning");
  else
    gtk_widget_remove_css_class(self->cpu_label, "warning");
}

static void
update_buttons(ConformCompareView *self)
{
  gboolean running = self->run && conform_compare_run_get_state(self->run) != CONFORM_RUN_STOPPED;
  gboolean paused = running && conform_compare_run_get_state(self->run) == CONFORM_RUN_PAUSED;
  gtk_button_set_label(GTK_BUTTON(self->start_button), paused ? "Resume" : "Start");
  gtk_widget_set_sensitive(self->start_button, self->have_cfg && (!running || paused));
  gtk_widget_set_sensitive(self->stop_button, running);
  update_cpu_note(self);
}

/* ---- columns -------------------------------------------------------------------- */

static void
column_clear(Column *c)
{
  g_clear_pointer(&c->strategy, g_free);
  g_clear_pointer(&c->title_text, g_free);
  if (c->set)
    conform_sample_set_unref(c->set);
  c->set = NULL;
}

static void
setup_scatter(ConformCompareView *self, ConformScatter *sc)
{
  g_auto(GStrv) names = coordinate_names(self->dim);
  conform_scatter_set_points(sc, NULL, 0, self->dim);
  conform_scatter_set_raw_points(sc, NULL, 0, self->dim);
  conform_scatter_set_background(sc, self->train, self->n_train, self->dim);
  conform_scatter_set_coordinate_names(sc, (const char *const *)names);
  conform_scatter_set_projection(sc, self->basis, self->center, self->dim);
  const CfConstraint *c = &self->cfg.constraint;
  conform_scatter_set_constraint(sc, c->A, c->b, c->m, self->dim);
}

static void
rebuild_columns(ConformCompareView *self, const char *const *strategies, int n)
{
  for (int i = 0; i < self->n_cols; i++) {
    gtk_box_remove(GTK_BOX(self->columns_box), self->cols[i].box);
    column_clear(&self->cols[i]);
  }
  memset(self->cols, 0, sizeof self->cols);
  self->n_cols = n;
  for (int i = 0; i < n; i++) {
    Column *c = &self->cols[i];
    c->strategy = g_strdup(strategies[i]);
    c->step = -1;
    c->box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    gtk_widget_set_hexpand(c->box, TRUE);
    gtk_box_set_homogeneous(GTK_BOX(c->box), FALSE);
    c->title = gtk_label_new(NULL);
    g_autofree char *m = g_markup_printf_escaped("<b>%s</b>\nwaiting for the first round…", strategies[i]);
    gtk_label_set_markup(GTK_LABEL(c->title), m);
    gtk_label_set_xalign(GTK_LABEL(c->title), 0);
    gtk_label_set_wrap(GTK_LABEL(c->title), TRUE);
    gtk_label_set_wrap_mode(GTK_LABEL(c->title), PANGO_WRAP_WORD_CHAR);
    gtk_label_set_lines(GTK_LABEL(c->title), 3);
    gtk_widget_set_size_request(c->title, 100, -1);
    gtk_widget_add_css_class(c->title, "numeric");
    c->scatter = conform_scatter_new();
    conform_scatter_set_show_arrows(CONFORM_SCATTER(c->scatter), FALSE);
    setup_scatter(self, CONFORM_SCATTER(c->scatter));
    gtk_widget_set_vexpand(c->scatter, TRUE);
    gtk_widget_set_size_request(c->scatter, 160, 200);
    c->histogram = conform_histogram_new();
    conform_histogram_set_tolerance(CONFORM_HISTOGRAM(c->histogram), self->tol);
    gtk_widget_set_size_request(c->histogram, 160, 250);
    gtk_box_append(GTK_BOX(c->box), c->title);
    gtk_box_append(GTK_BOX(c->box), c->scatter);
    gtk_box_append(GTK_BOX(c->box), c->histogram);
    gtk_box_append(GTK_BOX(self->columns_box), c->box);
  }
}

static void
show_bundle(ConformCompareView *self, ConformCompareBundle *b)
{
  /* Shared log x range of the violation histograms: every column's
   * positive violations. O(n) per column on main-thread copies. */
  double lo = INFINITY, hi = 0;
  for (int i = 0; i < b->n; i++) {
    ConformSampleSet *s = b->sets[i];
    if (!s || !s->viol)
      continue;
    for (int k = 0; k < s->n; k++)
      if (s->viol[k] > 0 && isfinite(s->viol[k])) {
        lo = MIN(lo, s->viol[k]);
        hi = MAX(hi, s->viol[k]);
      }
  }
  if (!(hi > 0))
    lo = hi = NAN;
  /* Shared axes: every scatter fits the union of all columns' samples. */
  int n_all = 0, dim = 0;
  for (int i = 0; i < b->n; i++)
    if (b->sets[i]) {
      n_all += b->sets[i]->n;
      dim = b->sets[i]->dim;
    }
  float *all = n_all > 0 ? g_new(float, (gsize)n_all * dim) : NULL;
  for (int i = 0, at = 0; i < b->n; i++)
    if (b->sets[i]) {
      memcpy(all + (gsize)at * dim, b->sets[i]->x, sizeof(float) * (gsize)b->sets[i]->n * dim);
      at += b->sets[i]->n;
    }
  for (int i = 0; i < MIN(b->n, self->n_cols); i++) {
    Column *c = &self->cols[i];
    ConformSampleSet *s = b->sets[i];
    conform_histogram_set_x_range(CONFORM_HISTOGRAM(c->histogram), lo, hi);
    if (!s)
      continue;
    if (c->set)
      conform_sample_set_unref(c->set);
    c->set = conform_sample_set_ref(s);
    c->step = b->step;
    ConformScatter *sc = CONFORM_SCATTER(c->scatter);
    conform_scatter_set_points(sc, s->x, s->n, s->dim);
    conform_scatter_set_range_points(sc, all, n_all, dim);
    g_autofree char *cap = g_strdup_printf("step %ld · %d samples · %s", b->step, s->n, s->sampler);
    conform_scatter_set_caption(sc, cap);
    ConformHistogram *h = CONFORM_HISTOGRAM(c->histogram);
    if (s->viol)
      conform_histogram_set_series(h, colour_of(s->strategy), s->strategy, s->viol, s->n);
    g_clear_pointer(&c->title_text, g_free);
    const CfViolationStats *v = &s->summary.viol;
    if (s->summary.has_constraint)
      c->title_text = g_strdup_printf("violation max %.2g · satisfied %.1f%% · energy distance %.2g", v->max,
                                      100 * v->frac_satisfied, b->energy_distance[i]);
    else
      c->title_text = g_strdup_printf("no constraint · energy distance %.2g", b->energy_distance[i]);
    g_autofree char *m = g_markup_printf_escaped("<b>%s</b>  <span alpha='70%%'>step %ld</span>\n%s", s->strategy,
                                                 b->step, c->title_text);
    gtk_label_set_markup(GTK_LABEL(c->title), m);
    gtk_widget_set_tooltip_text(c->title, c->title_text);
  }
  g_free(all);
  self->bundles_shown++;
  GString *st = g_string_new(NULL);
  g_string_append_printf(st, "step %ld · strategies ", b->step);
  for (int i = 0; i < b->n; i++)
    g_string_append_printf(st, "%s%s", i ? ", " : "", b->strategies[i]);
  int nm = conform_compare_run_get_n_models(self->run);
  g_string_append_printf(st, " · %d trained model%s, same seed · round %.2f s", nm, nm == 1 ? "" : "s", b->seconds);
  g_free(self->round_text);
  self->round_text = g_string_free(st, FALSE);
  set_status(self, self->round_text, FALSE);
}

/* ---- run signals ------------------------------------------------------------------ */

static void
run_bundle_cb(ConformCompareRun *run, gpointer bundle, ConformCompareView *self)
{
  if (run == self->run)
    show_bundle(self, bundle);
}

static void
run_state_cb(ConformCompareRun *run, ConformCompareView *self)
{
  if (run == self->run)
    update_buttons(self);
}

static void
run_ready_cb(ConformCompareRun *run, ConformCompareView *self)
{
  if (run != self->run)
    return;
  int nm = conform_compare_run_get_n_models(run);
  g_autofree char *msg = g_strdup_printf("training %d model%s in lock-step…", nm, nm == 1 ? "" : "s");
  set_status(self, msg, FALSE);
}

static void
run_message_cb(ConformCompareRun *run, const char *text, gboolean is_error, ConformCompareView *self)
{
  if (run != self->run)
    return;
  /* keep "step N · strategies …" in front of informational messages */
  g_autofree char *full = self->round_text && !is_error ? g_strdup_printf("%s · %s", self->round_text, text) : NULL;
  set_status(self, full ? full : text, is_error);
}

static void
run_finished_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  ConformCompareView *self = data;
  ConformCompareRun *run = CONFORM_COMPARE_RUN(src);
  g_autoptr(GError) error = NULL;
  gboolean ok = conform_compare_run_start_finish(run, res, &error); /* joins the worker */
  if (run == self->run) {
    if (!ok)
      set_status(self, error->message, TRUE);
    update_buttons(self);
  }
  GApplication *app = g_object_get_data(G_OBJECT(run), "conform-held-app");
  if (app)
    g_application_release(app);
  g_object_unref(run);
  g_object_unref(self);
}

static void
stop_run(ConformCompareView *self)
{
  if (self->run && conform_compare_run_is_running(self->run))
    conform_compare_run_stop(self->run);
}

/* ---- controls --------------------------------------------------------------------- */

static void
start_clicked_cb(GtkButton *b, ConformCompareView *self)
{
  conform_compare_view_start(self);
}

static void
stop_clicked_cb(GtkButton *b, ConformCompareView *self)
{
  conform_compare_view_stop(self);
}

static void
rebuild_checks(ConformCompareView *self)
{
  for (int i = 0; i < CONFORM_COMPARE_MAX; i++)
    if (self->checks[i]) {
      gtk_box_remove(GTK_BOX(self->check_box), self->checks[i]);
      self->checks[i] = NULL;
    }
  const char *const *valid = conform_compare_strategies_for(self->cfg.model_type);
  gboolean constrained = self->cfg.constraint.m > 0;
  for (int i = 0; valid[i] && i < CONFORM_COMPARE_MAX; i++) {
    GtkWidget *cb = gtk_check_button_new_with_label(valid[i]);
    self->check_names[i] = valid[i];
    /* default: none against the first two constrained strategies */
    gtk_check_button_set_active(GTK_CHECK_BUTTON(cb), i < 3 && (i == 0 || constrained));
    gtk_widget_set_sensitive(cb, i == 0 || constrained);
    const char *train = conform_compare_training_strategy(self->cfg.model_type, valid[i]);
    g_autofree char *tip =
      g_strcmp0(train, "none") == 0
        ? g_strdup_printf("%s acts at sampling time: it shares the model trained without a strategy", valid[i])
        : g_strdup_printf("%s is part of training: it trains its own model from the same config and seed", valid[i]);
    gtk_widget_set_tooltip_text(cb, constrained || i == 0 ? tip : "needs a constraint");
    self->checks[i] = cb;
    gtk_box_append(GTK_BOX(self->check_box), cb);
  }
}

static void
conform_compare_view_dispose(GObject *object)
{
  ConformCompareView *self = CONFORM_COMPARE_VIEW(object);
  /* Cancels the worker; the finish callback (holding references to the
   * run, this view and the application) joins it. */
  stop_run(self);
  g_clear_object(&self->run);
  G_OBJECT_CLASS(conform_compare_view_parent_class)->dispose(object);
}

static void
conform_compare_view_finalize(GObject *object)
{
  ConformCompareView *self = CONFORM_COMPARE_VIEW(object);
  for (int i = 0; i < CONFORM_COMPARE_MAX; i++)
    column_clear(&self->cols[i]);
  conform_config_clear(&self->cfg);
  g_free(self->train);
  g_free(self->basis);
  g_free(self->center);
  g_free(self->status_text);
  g_free(self->round_text);
  G_OBJECT_CLASS(conform_compare_view_parent_class)->finalize(object);
}

static void
conform_compare_view_class_init(ConformCompareViewClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  oc->dispose = conform_compare_view_dispose;
  oc->finalize = conform_compare_view_finalize;
}

static void
conform_compare_view_init(ConformCompareView *self)
{
  conform_config_init(&self->cfg);
  self->tol = NAN;
  gtk_orientable_set_orientation(GTK_ORIENTABLE(self), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing(GTK_BOX(self), 6);
  gtk_widget_set_margin_start(GTK_WIDGET(self), 8);
  gtk_widget_set_margin_end(GTK_WIDGET(self), 8);
  gtk_widget_set_margin_top(GTK_WIDGET(self), 6);
  gtk_widget_set_margin_bottom(GTK_WIDGET(self), 6);

  GtkWidget *controls = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
  GtkWidget *head = gtk_label_new(NULL);
  gtk_label_set_markup(GTK_LABEL(head), "<b>Strategies</b>");
  self->check_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
  gtk_widget_set_tooltip_text(self->check_box, "Pick 2 to 4 strategies; all train from the same config and seed");
  self->start_button = gtk_button_new_with_label("Start");
  gtk_widget_add_css_class(self->start_button, "suggested-action");
  gtk_widget_set_tooltip_text(self->start_button,
                              "Train the chosen strategies in lock-step from the same config and seed (paired "
                              "initialisation, minibatches and noise) and sample them all at the same steps with "
                              "the same sample seed");
  g_signal_connect(self->start_button, "clicked", G_CALLBACK(start_clicked_cb), self);
  self->stop_button = gtk_button_new_with_label("Stop");
  gtk_widget_set_tooltip_text(self->stop_button, "Stop the comparison (its worker is cancelled and joined)");
  g_signal_connect(self->stop_button, "clicked", G_CALLBACK(stop_clicked_cb), self);
  self->cpu_label = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(self->cpu_label), 1);
  gtk_label_set_wrap(GTK_LABEL(self->cpu_label), TRUE);
  gtk_widget_set_hexpand(self->cpu_label, TRUE);
  gtk_widget_add_css_class(self->cpu_label, "dim-label");
  gtk_box_append(GTK_BOX(controls), head);
  gtk_box_append(GTK_BOX(controls), self->check_box);
  gtk_box_append(GTK_BOX(controls), self->start_button);
  gtk_box_append(GTK_BOX(controls), self->stop_button);
  gtk_box_append(GTK_BOX(controls), self->cpu_label);

  self->status_label = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(self->status_label), 0);
  gtk_label_set_ellipsize(GTK_LABEL(self->status_label), PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class(self->status_label, "numeric");

  self->columns_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 10);
  gtk_box_set_homogeneous(GTK_BOX(self->columns_box), TRUE);
  gtk_widget_set_vexpand(self->columns_box, TRUE);

  gtk_box_append(GTK_BOX(self), controls);
  gtk_box_append(GTK_BOX(self), self->status_label);
  gtk_box_append(GTK_BOX(self), self->columns_box);
  set_status(self, "pick 2–4 strategies and press Start: each column is one strategy, all at the same step", FALSE);
  update_buttons(self);
}

/* ---- public API ------------------------------------------------------------------ */

GtkWidget *
conform_compare_view_new(void)
{
  return g_object_new(CONFORM_TYPE_COMPARE_VIEW, NULL);
}

void
conform_compare_view_set_experiment(ConformCompareView *self, const ConformConfig *cfg, const CfConstraint *c,
                                    int dim, const float *train, int n_train, const double *basis,
                                    const double *center)
{
  g_return_if_fail(CONFORM_IS_COMPARE_VIEW(self));
  g_return_if_fail(cfg != NULL && dim > 0);
  if (self->run && conform_compare_run_is_running(self->run)) {
    stop_run(self);
    set_status(self, "stopped: the main window's experiment changed", FALSE);
  }
  conform_config_clear(&self->cfg);
  conform_config_copy(&self->cfg, cfg);
  if (c) { /* the constraint as the main run validated it (live edits included) */
    cf_constraint_clear(&self->cfg.constraint);
    cf_constraint_init(&self->cfg.constraint);
    if (c->m > 0)
      cf_constraint_copy(&self->cfg.constraint, c, NULL);
  }
  self->have_cfg = TRUE;
  self->dim = dim;
  g_free(self->train);
  self->train = n_train > 0 ? g_memdup2(train, sizeof(float) * (gsize)n_train * dim) : NULL;
  self->n_train = self->train ? n_train : 0;
  g_clear_pointer(&self->basis, g_free);
  g_clear_pointer(&self->center, g_free);
  if (basis && dim > 3) {
    self->basis = g_memdup2(basis, sizeof(double) * 2 * (gsize)dim);
    self->center = center ? g_memdup2(center, sizeof(double) * (gsize)dim) : NULL;
  }
  self->tol = NAN;
  const CfConstraint *cc = &self->cfg.constraint;
  if (cc->m > 0) {
    double nb = 0;
    for (int i = 0; i < cc->m; i++)
      nb += cc->b[i] * cc->b[i];
    self->tol = cfg->tol_rel * (1 + sqrt(nb));
  }
  rebuild_checks(self);
  rebuild_columns(self, NULL, 0);
  update_buttons(self);
}

void
conform_compare_view_set_main_training(ConformCompareView *self, gboolean training)
{
  g_return_if_fail(CONFORM_IS_COMPARE_VIEW(self));
  self->main_training = training;
  update_cpu_note(self);
}

gboolean
conform_compare_view_set_strategy_active(ConformCompareView *self, const char *strategy, gboolean active)
{
  g_return_val_if_fail(CONFORM_IS_COMPARE_VIEW(self), FALSE);
  for (int i = 0; i < CONFORM_COMPARE_MAX; i++)
    if (self->checks[i] && g_strcmp0(self->check_names[i], strategy) == 0) {
      gtk_check_button_set_active(GTK_CHECK_BUTTON(self->checks[i]), active);
      return TRUE;
    }
  return FALSE;
}

void
conform_compare_view_start(ConformCompareView *self)
{
  g_return_if_fail(CONFORM_IS_COMPARE_VIEW(self));
  if (!self->have_cfg)
    return;
  if (self->run && conform_compare_run_is_running(self->run) &&
      conform_compare_run_get_state(self->run) == CONFORM_RUN_PAUSED) {
    conform_compare_run_resume(self->run); /* paused at the configured steps: continue */
    return;
  }
  const char *chosen[CONFORM_COMPARE_MAX + 1] = {NULL};
  int n = 0;
  for (int i = 0; i < CONFORM_COMPARE_MAX; i++)
    if (self->checks[i] && gtk_check_button_get_active(GTK_CHECK_BUTTON(self->checks[i])))
      chosen[n++] = self->check_names[i];
  if (n < 2) {
    set_status(self, "pick at least two strategies to compare", TRUE);
    return;
  }
  stop_run(self);
  g_clear_object(&self->run);
  self->bundles_shown = 0;
  g_clear_pointer(&self->round_text, g_free);
  rebuild_columns(self, chosen, n);
  ConformCompareRun *run = conform_compare_run_new(&self->cfg, chosen);
  g_signal_connect_object(run, "bundle", G_CALLBACK(run_bundle_cb), self, 0);
  g_signal_connect_object(run, "state-changed", G_CALLBACK(run_state_cb), self, 0);
  g_signal_connect_object(run, "ready", G_CALLBACK(run_ready_cb), self, 0);
  g_signal_connect_object(run, "message", G_CALLBACK(run_message_cb), self, 0);
  /* The application stays alive until the worker has been joined. */
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(self));
  GtkApplication *app = GTK_IS_WINDOW(root) ? gtk_window_get_application(GTK_WINDOW(root)) : NULL;
  if (app) {
    g_application_hold(G_APPLICATION(app));
    g_object_set_data_full(G_OBJECT(run), "conform-held-app", g_object_ref(app), g_object_unref);
  }
  self->run = run;
  /* The finish callback owns one reference to the run and one to us. */
  conform_compare_run_start_async(g_object_ref(run), NULL, run_finished_cb, g_object_ref(self));
  set_status(self, "building the models…", FALSE);
  update_buttons(self);
}

void
conform_compare_view_stop(ConformCompareView *self)
{
  g_return_if_fail(CONFORM_IS_COMPARE_VIEW(self));
  if (self->run && conform_compare_run_is_running(self->run)) {
    stop_run(self);
    ConformCompareBundle *b = conform_compare_run_get_bundle(self->run);
    g_autofree char *msg = b ? g_strdup_printf("stopped at step %ld", b->step) : g_strdup("stopped");
    set_status(self, msg, FALSE);
  }
  gtk_widget_set_sensitive(self->stop_button, FALSE);
  g_clear_pointer(&self->round_text, g_free);
}

ConformCompareRun *
conform_compare_view_get_run(ConformCompareView *self)
{
  return self->run;
}

int
conform_compare_view_get_n_columns(ConformCompareView *self)
{
  return self->n_cols;
}

GtkWidget *
conform_compare_view_get_scatter(ConformCompareView *self, int column)
{
  g_return_val_if_fail(column >= 0 && column < self->n_cols, NULL);
  return self->cols[column].scatter;
}

GtkWidget *
conform_compare_view_get_histogram(ConformCompareView *self, int column)
{
  g_return_val_if_fail(column >= 0 && column < self->n_cols, NULL);
  return self->cols[column].histogram;
}

const char *
conform_compare_view_get_column_strategy(ConformCompareView *self, int column)
{
  g_return_val_if_fail(column >= 0 && column < self->n_cols, NULL);
  return self->cols[column].strategy;
}

long
conform_compare_view_get_column_step(ConformCompareView *self, int column)
{
  g_return_val_if_fail(column >= 0 && column < self->n_cols, -1);
  return self->cols[column].step;
}

ConformSampleSet *
conform_compare_view_get_column_samples(ConformCompareView *self, int column)
{
  g_return_val_if_fail(column >= 0 && column < self->n_cols, NULL);
  return self->cols[column].set;
}

guint
conform_compare_view_get_n_bundles_shown(ConformCompareView *self)
{
  return self->bundles_shown;
}

const char *
conform_compare_view_get_status_text(ConformCompareView *self)
{
  return self->status_text ? self->status_text : "";
}

/* ---- drawing and export ---------------------------------------------------------- */

void
conform_compare_view_draw(ConformCompareView *self, cairo_t *cr, int width, int height)
{
  GdkRGBA fg;
  conform_palette_fg(GTK_WIDGET(self), &fg);
  const double pad = 12, head = 30, title_h = 40;
  conform_cairo_set_rgba(cr, &fg, 1);
  conform_cairo_font(cr, 14, TRUE);
  cairo_move_to(cr, pad, pad + 14);
  cairo_show_text(cr, self->status_text ? self->status_text : "");
  if (self->n_cols == 0)
    return;
  double cw = (width - pad * (self->n_cols + 1)) / self->n_cols;
  double body = height - head - pad - title_h;
  double sh = floor(body * 0.6), hh = body - sh;
  if (cw < 20 || sh < 20 || hh < 20)
    return;
  for (int i = 0; i < self->n_cols; i++) {
    Column *c = &self->cols[i];
    double x = pad + i * (cw + pad), y = head + pad;
    cairo_save(cr);
    cairo_rectangle(cr, x, y, cw, title_h);
    cairo_clip(cr);
    GdkRGBA col;
    conform_palette_series(colour_of(c->strategy), &col);
    conform_cairo_set_rgba(cr, &col, 1);
    cairo_rectangle(cr, x, y + 4, 10, 10);
    cairo_fill(cr);
    conform_cairo_set_rgba(cr, &fg, 1);
    conform_cairo_font(cr, 14, TRUE);
    cairo_move_to(cr, x + 16, y + 14);
    cairo_show_text(cr, c->strategy);
    conform_cairo_font(cr, 12, FALSE);
    cairo_move_to(cr, x, y + 33);
    cairo_show_text(cr, c->title_text ? c->title_text : "waiting for the first round");
    cairo_restore(cr);
    cairo_save(cr);
    cairo_translate(cr, x, y + title_h);
    cairo_rectangle(cr, 0, 0, cw, sh);
    cairo_clip(cr);
    conform_scatter_draw(CONFORM_SCATTER(c->scatter), cr, (int)cw, (int)sh);
    cairo_restore(cr);
    cairo_save(cr);
    cairo_translate(cr, x, y + title_h + sh);
    cairo_rectangle(cr, 0, 0, cw, hh);
    cairo_clip(cr);
    conform_histogram_draw(CONFORM_HISTOGRAM(c->histogram), cr, (int)cw, (int)hh);
    cairo_restore(cr);
  }
}

static void
export_draw(gpointer self, cairo_t *cr, int width, int height)
{
  conform_compare_view_draw(self, cr, width, height);
}

gboolean
conform_compare_view_export_png(ConformCompareView *self, const char *path, int width, int height, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_COMPARE_VIEW(self), FALSE);
  if (self->n_cols == 0) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "nothing to export yet: start a comparison first");
    return FALSE;
  }
  return conform_export_png(export_draw, self, width, height, conform_palette_is_dark(GTK_WIDGET(self)), path, error);
}
