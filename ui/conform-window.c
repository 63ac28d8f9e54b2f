#define G_LOG_DOMAIN "conform"

#include "conform-window.h"
#include "conform-window-private.h"

#include <math.h>
#include <string.h>

#include "conform-application.h"
#include "conform-bars.h"
#include "conform-compare-view.h"
#include "conform-constraint-editor.h"
#include "conform-curves.h"
#include "conform-dual.h"
#include "conform-image-data.h"
#include "conform-image-grid.h"
#include "conform-images.h"
#include "conform-histogram.h"
#include "conform-io.h"
#include "conform-presets.h"
#include "conform-scatter.h"
#include "conform-window-teach.h"

static const char *const strategies[] = {"none", "projection", "projected-sampling", "constrained-layer", "cgauss", "dual", "mirror",
                                         NULL};



G_DEFINE_FINAL_TYPE(ConformWindow, conform_window, GTK_TYPE_APPLICATION_WINDOW)

static void attach_run(ConformWindow *self, ConformRun *run);
static void start_run(ConformWindow *self, const ConformConfig *cfg, const char *dir);

/* ---- helpers ------------------------------------------------------------------ */

GSettings *
conform_window_settings_(ConformWindow *self)
{
  GtkApplication *app = gtk_window_get_application(GTK_WINDOW(self));
  return app ? conform_application_get_settings(CONFORM_APPLICATION(app)) : NULL;
}

void
conform_window_show_message_(ConformWindow *self, const char *text, gboolean is_error)
{
  gtk_label_set_text(GTK_LABEL(self->message_label), text);
  gtk_widget_set_tooltip_text(self->message_label, text);
  if (is_error) {
    gtk_widget_add_css_class(self->message_label, "error");
    g_free(self->last_error);
    self->last_error = g_strdup(text);
  } else {
    gtk_widget_remove_css_class(self->message_label, "error");
  }
}

void
conform_window_error_dialog_(ConformWindow *self, const char *title, const char *detail)
{
  GtkWidget *d = gtk_message_dialog_new(GTK_WINDOW(self), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT,
                                        GTK_MESSAGE_ERROR, GTK_BUTTONS_CLOSE, "%s", title);
  gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "%s", detail);
  g_signal_connect(d, "response", G_CALLBACK(gtk_window_destroy), NULL);
  gtk_window_present(GTK_WINDOW(d));
  conform_window_show_message_(self, detail, TRUE);
}

void
conform_window_update_title_(ConformWindow *self)
{
  const ConformConfig *cfg = self->run ? conform_run_get_config(self->run) : &self->pending;
  g_autofree char *base = self->experiment_dir ? g_path_get_basename(self->experiment_dir) : g_strdup(cfg->preset);
  g_autofree char *title = g_strdup_printf("%s%s — Conform", self->dirty ? "• " : "", base);
  gtk_window_set_title(GTK_WINDOW(self), title);
}

void
conform_window_set_dirty_(ConformWindow *self, gboolean dirty)
{
  if (self->dirty == dirty)
    return;
  self->dirty = dirty;
  conform_window_update_title_(self);
}

static int
strv_index(const char *const *v, const char *s)
{
  for (int i = 0; v[i]; i++)
    if (g_strcmp0(v[i], s) == 0)
      return i;
  return -1;
}

static int
strategy_series(const char *strategy)
{
  int i = strv_index(strategies, strategy);
  return i < 0 ? 0 : i;
}

/* ---- category shares ------------------------------------------------------------- */

void
conform_window_set_shares_(ConformWindow *self, const char *title, int n_categories, const char *const *names,
                           int n_series, const char *const *series_labels, const double *const *values,
                           const char *info)
{
  static const int colours[CONFORM_BARS_MAX_SERIES] = {0, 4, 2, 6}; /* orange, blue, bluish green, purple */
  g_return_if_fail(CONFORM_IS_WINDOW(self));
  g_return_if_fail(n_series >= 0 && n_series <= CONFORM_BARS_MAX_SERIES);
  ConformBars *b = CONFORM_BARS(self->shares);
  gtk_widget_set_visible(self->shares_pane, n_categories > 0);
  if (n_categories <= 0) {
    conform_bars_set_categories(b, NULL, 0);
    conform_bars_remove_all_series(b);
    return;
  }
  conform_bars_set_categories(b, names, n_categories);
  gboolean same = conform_bars_get_n_series(b) == n_series;
  for (int s = 0; same && s < n_series; s++)
    same = g_strcmp0(conform_bars_get_series_label(b, s), series_labels[s]) == 0;
  if (!same) {
    conform_bars_remove_all_series(b);
    for (int s = 0; s < n_series; s++)
      conform_bars_add_series(b, series_labels[s], colours[s]);
  }
  for (int s = 0; s < n_series; s++)
    conform_bars_set_values(b, s, values ? values[s] : NULL, values && values[s] ? n_categories : 0);
  g_autofree char *uniform = g_strdup_printf("uniform 1/%d", n_categories);
  conform_bars_set_reference_line(b, uniform, 1.0 / n_categories);
  g_autofree char *head = g_markup_printf_escaped("<b>%s</b>", title ? title : "Shares");
  gtk_label_set_markup(GTK_LABEL(self->shares_title), head);
  gtk_label_set_markup(GTK_LABEL(self->shares_info), info ? info : "");
}

/* Class shares of the samples (images: the classifier's predictions;
 * labelled vector data: the nearest class centroid) beside the training
 * shares and, for dual training with class constraints, the shares the
 * latest multipliers predict; with the classifier-feature Frechet distance
 * for images (explicit samples only: image previews skip these metrics). */
static void
render_shares(ConformWindow *self)
{
  if (!self->have_shares || !self->run)
    return;
  const int K = self->share_k;
  const char *names_img[10];
  char names_buf[10][16];
  const char *const *names = names_img;
  if (self->image_size) {
    names = conform_fashion_mnist_class_names();
  } else {
    for (int c = 0; c < K; c++) {
      g_snprintf(names_buf[c], sizeof names_buf[c], "class %d", c);
      names_img[c] = names_buf[c];
    }
  }
  const char *labels[3] = {"samples", "training", "predicted (dual)"};
  const double *values[3] = {self->share_samples, self->share_train, NULL};
  double predicted[10];
  const GArray *rec = conform_run_get_records(self->run);
  int n_series = 2;
  if (rec->len > 0 &&
      conform_dual_predicted_shares(conform_run_get_config(self->run),
                                    &g_array_index(rec, ConformTrainRecord, rec->len - 1), self->share_train, K,
                                    predicted)) {
    values[2] = predicted;
    n_series = 3;
  }
  g_autofree char *info = NULL;
  if (isfinite(self->share_fd))
    info = g_markup_printf_escaped("step %ld · %d samples · FD %.3g <span alpha='60%%'>(floor %.3g)</span>",
                                   self->share_step, self->share_n, self->share_fd, self->share_fd_floor);
  else
    info = g_markup_printf_escaped("step %ld · %d samples", self->share_step, self->share_n);
  conform_window_set_shares_(self, "Class shares", K, names, n_series, labels, values, info);
}

static void
show_class_shares(ConformWindow *self, const ConformSampleSet *s)
{
  const ConformSummary *m = &s->summary;
  self->have_shares = TRUE;
  self->share_k = self->image_size ? 10 : CLAMP(m->n_classes, 1, 10);
  self->share_n = s->n;
  self->share_step = s->step;
  memcpy(self->share_samples, m->class_share, sizeof self->share_samples);
  memcpy(self->share_train, m->train_share, sizeof self->share_train);
  self->share_fd = m->fd_classifier;
  self->share_fd_floor = m->fd_floor;
  render_shares(self);
}

/* A fresh plot of lambda_i and slack_i for the run's dual constraints
 * (hidden for other strategies). */
static void
setup_dual_curves(ConformWindow *self, const ConformConfig *cfg)
{
  if (self->dual_curves)
    gtk_box_remove(GTK_BOX(self->lr_box), self->dual_curves);
  self->dual_curves = conform_curves_new();
  ConformCurves *dc = CONFORM_CURVES(self->dual_curves);
  conform_curves_set_title(dc, "dual variables: multiplier λ and slack (loss − threshold)");
  conform_curves_set_x_label(dc, "step");
  gtk_widget_set_vexpand(self->dual_curves, TRUE);
  gtk_widget_set_tooltip_text(self->dual_curves,
                              "Strategy dual: each constraint's Lagrange multiplier (solid colours) and its slack, the "
                              "mean constraint loss of the latest dual step minus its threshold (> 0: violated, so λ "
                              "grows). Same step axis as the loss.");
  gtk_box_append(GTK_BOX(self->lr_box), self->dual_curves);
  ConformDualConstraint d[8];
  int n = 0;
  self->n_dual_series = 0;
  if (g_strcmp0(cfg->strategy, "dual") == 0 && conform_dual_parse(cfg, d, &n, NULL)) {
    for (int i = 0; i < n; i++) {
      g_autofree char *l = g_strdup_printf("λ %s", d[i].name), *sl = g_strdup_printf("slack %s", d[i].name);
      self->dual_lambda[i] = conform_curves_add_series(dc, l, i % 8);
      self->dual_slack[i] = conform_curves_add_series(dc, sl, (i + 4) % 8);
    }
    self->n_dual_series = n;
  }
  gtk_widget_set_visible(self->dual_curves, self->n_dual_series > 0);
  /* mirror runs: the mirror maps' loss terms over their phase */
  if (self->namm_curves)
    gtk_box_remove(GTK_BOX(self->lr_box), self->namm_curves);
  self->namm_curves = conform_curves_new();
  ConformCurves *nc = CONFORM_CURVES(self->namm_curves);
  conform_curves_set_title(nc, "mirror maps: loss terms (steps 1 .. mirror.steps), then the diffusion model");
  conform_curves_set_x_label(nc, "step");
  conform_curves_set_log_y(nc, TRUE);
  gtk_widget_set_vexpand(self->namm_curves, TRUE);
  gtk_widget_set_tooltip_text(self->namm_curves,
                              "Strategy mirror trains the maps first: cycle = (|f(g(x)) − x| + |g(f(y)) − y|) / 2, "
                              "constraint = mean distance of f(g(x) + σε) to the set, regulariser = mean |∇R(x)|. "
                              "The diffusion model's loss follows in the loss plot.");
  gtk_box_append(GTK_BOX(self->lr_box), self->namm_curves);
  self->namm_on = g_strcmp0(cfg->strategy, "mirror") == 0;
  self->namm_cyc = conform_curves_add_series(nc, "cycle", 0);
  self->namm_constr = conform_curves_add_series(nc, "constraint", 1);
  self->namm_reg = conform_curves_add_series(nc, "regulariser", 2);
  gtk_widget_set_visible(self->namm_curves, self->namm_on);
  /* dual and mirror runs show their curves where the learning rate was, and
   * dual where the violation curves were when there is no constraint */
  gtk_widget_set_visible(self->lr, self->n_dual_series == 0 && !self->namm_on);
  gtk_widget_set_visible(self->violation, self->n_dual_series == 0 || conform_config_has_constraint(cfg));
}

/* ---- status ------------------------------------------------------------------- */

static void
update_status(ConformWindow *self)
{
  if (!self->run)
    return;
  ConformRun *r = self->run;
  double sps = conform_run_get_steps_per_second(r);
  ConformSampleSet *s = conform_run_get_samples(r);
  const char *state = "starting";
  switch (conform_run_get_state(r)) {
  case CONFORM_RUN_STARTING: state = "starting"; break;
  case CONFORM_RUN_PAUSED: state = "paused"; break;
  case CONFORM_RUN_TRAINING: state = "training"; break;
  case CONFORM_RUN_STOPPED: state = "stopped"; break;
  }
  double secs = conform_run_get_train_seconds(r);
  int sn;
  double frac, ssec;
  g_autofree char *sampling = conform_run_get_sampling(r, &sn, &frac, &ssec)
                                ? g_strdup_printf(" · sampling %d samples: %.0f%% (%.0f s)", sn, 100.0 * frac, ssec)
                                : NULL;
  g_free(self->status_text);
  self->status_text = g_strdup_printf("%s · step %ld of %d · %.0f steps/s · %.2f ms/step · %d:%02d elapsed · %d samples shown%s",
                                      state, conform_run_get_step(r), (int)conform_config_total_steps(conform_run_get_config(r)), sps,
                                      sps > 0 ? 1000.0 / sps : 0.0, (int)secs / 60, (int)secs % 60, s ? s->n : 0,
                                      sampling ? sampling : "");
  gtk_label_set_text(GTK_LABEL(self->status_label), self->status_text);
}

static void
update_train_button(ConformWindow *self)
{
  gboolean training = self->run && conform_run_get_state(self->run) == CONFORM_RUN_TRAINING;
  gtk_button_set_icon_name(GTK_BUTTON(self->train_button),
                           training ? "media-playback-pause-symbolic" : "media-playback-start-symbolic");
  gtk_widget_set_tooltip_text(self->train_button, training ? "Pause training (Space)" : "Train (Space)");
  gboolean usable = self->run && conform_run_get_state(self->run) != CONFORM_RUN_STARTING &&
                    conform_run_get_state(self->run) != CONFORM_RUN_STOPPED;
  gtk_widget_set_sensitive(self->train_button, usable);
  gtk_widget_set_sensitive(self->step_button, usable);
}

/* ---- run signals ---------------------------------------------------------------- */

static char **
coordinate_names(int dim)
{
  char **names = g_new0(char *, dim + 1);
  for (int i = 0; i < dim; i++)
    names[i] = g_strdup_printf("x%d", i);
  return names;
}

static void
show_constraint(ConformWindow *self)
{
  const CfConstraint *c = conform_run_get_constraint(self->run);
  int dim = conform_run_get_dim(self->run);
  conform_scatter_set_constraint(CONFORM_SCATTER(self->scatter), c->A, c->b, c->m, dim);
  conform_scatter_set_constraint(CONFORM_SCATTER(self->traj_scatter), c->A, c->b, c->m, dim);
  conform_constraint_editor_set_constraint(CONFORM_CONSTRAINT_EDITOR(self->editor), c);
  gtk_label_set_text(GTK_LABEL(self->constraint_summary), conform_run_get_constraint_summary(self->run));
  const ConformConfig *cfg = conform_run_get_config(self->run);
  gboolean eq = cfg->equations && cfg->equations[0];
  gtk_label_set_text(GTK_LABEL(self->space_label), c->m > 0 ? "A x = b in raw data space"
                                                   : eq   ? "equations in raw data space"
                                                          : "no constraint");
  conform_histogram_set_x_title(CONFORM_HISTOGRAM(self->histogram), eq ? "distance Σ|lhs − rhs|" : NULL);
  conform_curves_set_title(CONFORM_CURVES(self->violation),
                           eq ? "violation: distance Σ|lhs − rhs|" : "violation ||A x - b||");
  gtk_label_set_markup(GTK_LABEL(self->hist_title),
                       c->m > 0 || eq ? "<b>Violation histogram</b>"
                                : "<b>Violation histogram</b>  <span alpha='60%'>no constraint: add one in the "
                                  "Constraint tab</span>");
  gtk_widget_set_tooltip_text(self->space_label,
                              "Constraints are expressed in raw data space; the model trains on standardised data "
                              "and the constraint is mapped exactly: (A diag(s)) u = b - A m.");
  double tol = eq ? cfg->tol_rel : 0;
  if (c->m > 0) {
    double nb = 0;
    for (int i = 0; i < c->m; i++)
      nb += c->b[i] * c->b[i];
    tol = conform_run_get_config(self->run)->tol_rel * (1 + sqrt(nb));
  }
  conform_histogram_set_tolerance(CONFORM_HISTOGRAM(self->histogram), tol);
}

static void
sync_sidebar(ConformWindow *self)
{
  self->syncing = TRUE;
  GHashTableIter it;
  gpointer key, value;
  g_hash_table_iter_init(&it, self->setting_widgets);
  while (g_hash_table_iter_next(&it, &key, &value)) {
    const ConformKey *k = conform_config_find_key(key);
    g_autofree char *v = conform_config_get_string(&self->pending, key);
    GtkWidget *w = value;
    if (GTK_IS_SPIN_BUTTON(w)) {
      gtk_spin_button_set_value(GTK_SPIN_BUTTON(w), g_ascii_strtod(v, NULL));
    } else if (GTK_IS_DROP_DOWN(w)) {
      g_auto(GStrv) opts = g_strsplit(k->choices, "|", -1);
      int i = strv_index((const char *const *)opts, v);
      if (i >= 0)
        gtk_drop_down_set_selected(GTK_DROP_DOWN(w), (guint)i);
    } else if (GTK_IS_EDITABLE(w)) {
      gtk_editable_set_text(GTK_EDITABLE(w), v);
    }
  }
  int si = strv_index(strategies, self->pending.strategy);
  gtk_drop_down_set_selected(GTK_DROP_DOWN(self->strategy_dropdown), si < 0 ? 0 : (guint)si);
  guint np;
  const ConformPreset *p = conform_presets(&np);
  for (guint i = 0; i < np; i++)
    if (g_strcmp0(p[i].name, self->pending.preset) == 0)
      gtk_drop_down_set_selected(GTK_DROP_DOWN(self->preset_dropdown), i);
  self->syncing = FALSE;
  gtk_widget_set_visible(self->restart_banner, FALSE);
  self->pending_restart = FALSE;
}

static void
run_ready_cb(ConformRun *run, ConformWindow *self)
{
  if (run == self->incoming) {
    /* The new experiment works: retire the old one. */
    if (self->run)
      conform_run_stop(self->run);
    attach_run(self, run);
    return;
  }
}

/* Hands the records the curves have not seen to them. */
static void
push_records(ConformWindow *self)
{
  const GArray *rec = conform_run_get_records(self->run);
  guint first = MIN(self->records_shown, rec->len);
  guint n = rec->len - first;
  self->records_shown = rec->len;
  self->last_refresh = g_get_monotonic_time();
  if (n > 0) {
    double *x = g_new(double, n), *y = g_new(double, n), *lr = g_new(double, n);
    for (guint i = 0; i < n; i++) {
      const ConformTrainRecord *r = &g_array_index(rec, ConformTrainRecord, first + i);
      x[i] = (double)r->step;
      y[i] = r->namm ? NAN : r->loss; /* the maps' steps go to their own plot */
      lr[i] = r->namm ? NAN : r->lr;
    }
    conform_curves_append_many(CONFORM_CURVES(self->loss), self->loss_series, x, y, (int)n);
    conform_curves_append_many(CONFORM_CURVES(self->lr), self->lr_series, x, lr, (int)n);
    for (int k = 0; k < self->n_dual_series; k++) {
      for (guint i = 0; i < n; i++) {
        const ConformTrainRecord *r = &g_array_index(rec, ConformTrainRecord, first + i);
        y[i] = k < r->n_dual ? r->lambda[k] : NAN;
        lr[i] = k < r->n_dual ? r->slack[k] : NAN;
      }
      conform_curves_append_many(CONFORM_CURVES(self->dual_curves), self->dual_lambda[k], x, y, (int)n);
      conform_curves_append_many(CONFORM_CURVES(self->dual_curves), self->dual_slack[k], x, lr, (int)n);
    }
    if (self->namm_on) {
      const int series[3] = {self->namm_cyc, self->namm_constr, self->namm_reg};
      for (int k = 0; k < 3; k++) {
        for (guint i = 0; i < n; i++) {
          const ConformTrainRecord *r = &g_array_index(rec, ConformTrainRecord, first + i);
          y[i] = !r->namm ? NAN : k == 0 ? r->namm_cyc : k == 1 ? r->namm_constr : r->namm_reg;
        }
        conform_curves_append_many(CONFORM_CURVES(self->namm_curves), series[k], x, y, (int)n);
      }
    }
    if (self->n_dual_series > 0)
      render_shares(self); /* the predicted shares follow the multipliers */
    g_free(x);
    g_free(y);
    g_free(lr);
  }
  update_status(self);
}

static gboolean
refresh_cb(gpointer data)
{
  ConformWindow *self = data;
  self->refresh_source = 0;
  if (self->run)
    push_records(self);
  return G_SOURCE_REMOVE;
}

static void
run_progress_cb(ConformRun *run, guint first, ConformWindow *self)
{
  if (run != self->run)
    return;
  conform_window_set_dirty_(self, TRUE);
  if (first < self->records_shown) {
    /* The run rolled back (NaN): its records were replaced, redraw them. */
    conform_curves_clear(CONFORM_CURVES(self->loss));
    conform_curves_clear(CONFORM_CURVES(self->lr));
    conform_curves_clear(CONFORM_CURVES(self->dual_curves));
    conform_curves_clear(CONFORM_CURVES(self->namm_curves));
    self->records_shown = 0;
    push_records(self);
    return;
  }
  /* At most refresh-rate plot updates per second, whatever the worker's pace. */
  GSettings *gs = conform_window_settings_(self);
  int hz = gs ? g_settings_get_int(gs, "refresh-rate") : 15;
  gint64 period = G_USEC_PER_SEC / MAX(hz, 1);
  gint64 wait = self->last_refresh + period - g_get_monotonic_time();
  if (wait <= 0)
    push_records(self);
  else if (!self->refresh_source)
    self->refresh_source = g_timeout_add((guint)(wait / 1000) + 1, refresh_cb, self);
}

static void
show_trajectory_frame(ConformWindow *self)
{
  ConformSampleSet *s = self->run ? conform_run_get_samples(self->run) : NULL;
  if (!s || !s->traj) {
    gtk_label_set_text(GTK_LABEL(self->traj_label), "No trajectory yet: train, then sample");
    return;
  }
  int k = (int)gtk_range_get_value(GTK_RANGE(self->traj_scale));
  k = CLAMP(k, 0, s->traj_steps);
  conform_scatter_set_points(CONFORM_SCATTER(self->traj_scatter), s->traj + (gsize)k * s->traj_n * s->dim, s->traj_n,
                             s->dim);
  conform_window_images_traj_frame_(self, s, k);
  g_autofree char *txt = NULL;
  if (s->traj_viol_p50)
    txt = g_strdup_printf("reverse step %d of %d · t = %d · violation median %.3g, max %.3g (%s)", k, s->traj_steps,
                          s->traj_t[k], s->traj_viol_p50[k], s->traj_viol_max[k], s->strategy);
  else
    txt = g_strdup_printf("reverse step %d of %d · t = %d (%s)", k, s->traj_steps, s->traj_t[k], s->strategy);
  gtk_label_set_text(GTK_LABEL(self->traj_label), txt);
  g_autofree char *cap = g_strdup_printf("x_t at t = %d · %d samples", s->traj_t[k], s->traj_n);
  conform_scatter_set_caption(CONFORM_SCATTER(self->traj_scatter), cap);
}

static void
run_samples_cb(ConformRun *run, gpointer data, ConformWindow *self)
{
  if (run != self->run)
    return;
  ConformSampleSet *s = data;
  ConformScatter *sc = CONFORM_SCATTER(self->scatter);
  conform_scatter_set_points(sc, s->x, s->n, s->dim);
  gboolean projected = g_strcmp0(s->strategy, "projection") == 0;
  /* arrows: raw sample -> projection, or (VAE cgauss / constrained-layer)
   * unconstrained decoder mean -> sample */
  gboolean from_mean = g_strcmp0(s->sampler, "vae") == 0 &&
                       (g_strcmp0(s->strategy, "cgauss") == 0 || g_strcmp0(s->strategy, "constrained-layer") == 0);
  conform_scatter_set_raw_points(sc, projected || from_mean ? s->raw : NULL, s->n, s->dim);
  conform_window_images_samples_(self, s); /* image data: the grid (superres rows: thumbnail, image) */
  g_autofree char *cap = g_strdup_printf("step %ld · %d samples · %s · %s sampler · raw data space", s->step, s->n,
                                         s->strategy, s->sampler);
  conform_scatter_set_caption(sc, cap);
  if (s->viol) {
    ConformHistogram *h = CONFORM_HISTOGRAM(self->histogram);
    conform_histogram_set_series(h, strategy_series(s->strategy), s->strategy, s->viol, s->n);
    if (projected) /* what the same samples violate before projection */
      conform_histogram_set_series(h, 0, "none", s->viol_raw, s->n);
    const CfViolationStats *v = &s->summary.viol;
    conform_curves_append(CONFORM_CURVES(self->violation), self->viol_p50, (double)s->step, v->median);
    conform_curves_append(CONFORM_CURVES(self->violation), self->viol_p99, (double)s->step, v->p99);
    conform_curves_append(CONFORM_CURVES(self->violation), self->viol_max, (double)s->step, v->max);
  }
  if (s->summary.has_classes)
    show_class_shares(self, s);
  if (s->summary.has_vae) {
    /* previews carry the cheap metrics (CONFORM_VAE_PREVIEW_N rows, K =
     * CONFORM_VAE_PREVIEW_K), explicit samples the full ones (K = 50) */
    ConformCurves *vc = CONFORM_CURVES(self->vae_curves);
    if (s->summary.iw_k == CONFORM_VAE_PREVIEW_K) {
      conform_curves_append(vc, self->vae_elbo, (double)s->step, s->summary.elbo);
      conform_curves_append(vc, self->vae_ll, (double)s->step, s->summary.test_ll);
    } else {
      conform_curves_append(vc, self->vae_ll_full, (double)s->step, s->summary.test_ll);
    }
  }
  if (s->traj) {
    gtk_range_set_range(GTK_RANGE(self->traj_scale), 0, s->traj_steps);
    show_trajectory_frame(self);
  }
  conform_window_mirror_samples_(self, s);
  conform_window_narration_samples_(self, s);
  update_status(self);
}

static void
run_state_cb(ConformRun *run, ConformWindow *self)
{
  if (run != self->run)
    return;
  if (conform_run_get_state(run) == CONFORM_RUN_TRAINING)
    conform_window_show_message_(self, "", FALSE);
  if (self->compare)
    conform_compare_view_set_main_training(CONFORM_COMPARE_VIEW(self->compare),
                                           conform_run_get_state(run) == CONFORM_RUN_TRAINING);
  update_train_button(self);
  update_status(self);
}

static void
run_message_cb(ConformRun *run, const char *text, gboolean is_error, ConformWindow *self)
{
  if (run != self->run && run != self->incoming)
    return;
  conform_window_show_message_(self, text, is_error);
}

static void
run_sampling_cb(ConformRun *run, ConformWindow *self)
{
  if (run == self->run)
    update_status(self);
}

static void
run_finished_cb(GObject *src, GAsyncResult *res, gpointer data)
{
  ConformWindow *self = data; /* holds a reference (taken in start_run) */
  ConformRun *run = CONFORM_RUN(src);
  g_autoptr(GError) error = NULL;
  gboolean ok = conform_run_start_finish(run, res, &error);
  if (run == self->incoming) {
    /* Building the new experiment failed: keep the current one. */
    g_clear_object(&self->incoming);
    conform_window_error_dialog_(self, self->incoming_is_open ? "Cannot open the experiment" : "Cannot start the experiment",
                 error ? error->message : "unknown error");
  } else if (!ok && run == self->run && !g_error_matches(error, CONFORM_ERROR, CONFORM_ERROR_CANCELLED)) {
    conform_window_error_dialog_(self, "The experiment stopped", error->message);
  }
  if (run == self->run) {
    update_train_button(self);
    update_status(self);
  }
  GApplication *app = g_object_get_data(G_OBJECT(run), "conform-held-app");
  if (app) {
    g_application_release(app);
    /* the worker is joined: nothing holds the application for this run now */
    g_object_set_data(G_OBJECT(run), "conform-held-app", NULL);
  }
  g_object_unref(run);
  g_object_unref(self);
}

static void
attach_run(ConformWindow *self, ConformRun *run)
{
  conform_window_teach_run_attached_(self, run); /* before the views move on */
  g_clear_object(&self->run);
  self->run = run; /* takes the incoming reference */
  if (self->incoming == run)
    self->incoming = NULL;
  conform_config_clear(&self->pending);
  conform_config_copy(&self->pending, conform_run_get_config(run));
  int dim = conform_run_get_dim(run);
  int n;
  const float *bg = conform_run_get_train_data(run, &n);
  const ConformConfig *rc = conform_run_get_config(run);
  self->image_size = conform_image_source_is(rc->data) ? rc->image_size : 0;
  conform_image_grid_set_images(CONFORM_IMAGE_GRID(self->image_grid), NULL, 0, 1, 1, NULL, NAN);
  gtk_stack_set_visible_child_name(GTK_STACK(self->samples_stack), self->image_size ? "images" : "scatter");
  gtk_widget_set_visible(self->bg_check, !self->image_size); /* scatter-only toggles */
  gtk_widget_set_visible(self->arrows_check, !self->image_size);
  {
    /* labelled data: class shares arrive with samples (images: explicit
     * ones); other data: no chart */
    const char *labels[] = {"samples", "training"};
    int K = self->image_size ? 10 : 0; /* labelled vector data: from the first samples on */
    self->have_shares = FALSE;
    conform_window_set_shares_(self, "Class shares", K, conform_fashion_mnist_class_names(), 2, labels, NULL, NULL);
  }
  setup_dual_curves(self, rc);
  g_auto(GStrv) names = coordinate_names(dim);
  for (int k = 0; k < 2; k++) {
    ConformScatter *sc = CONFORM_SCATTER(k ? self->traj_scatter : self->scatter);
    conform_scatter_set_points(sc, NULL, 0, dim);
    conform_scatter_set_raw_points(sc, NULL, 0, dim);
    conform_scatter_set_background(sc, bg, n, dim);
    conform_scatter_set_coordinate_names(sc, (const char *const *)names);
    /* (get the plane first: argument evaluation order is unspecified) */
    const double *basis = NULL, *center = NULL;
    gboolean have_plane = conform_run_get_projection(run, &basis, &center);
    conform_scatter_set_projection(sc, have_plane ? basis : NULL, center, dim);
  }
  conform_constraint_editor_set_dim(CONFORM_CONSTRAINT_EDITOR(self->editor), dim, (const char *const *)names);
  show_constraint(self);
  conform_window_mirror_attach_(self, run);
  conform_window_narration_attach_(self, run);
  conform_window_images_attach_(self, run);
  {
    /* The Compare tab compares strategies on this experiment, with the same
     * background and projection plane as the samples view. */
    const double *basis = NULL, *center = NULL;
    gboolean have_plane = conform_run_get_projection(run, &basis, &center);
    conform_compare_view_set_experiment(CONFORM_COMPARE_VIEW(self->compare), conform_run_get_config(run),
                                        conform_run_get_constraint(run), dim, bg, n, have_plane ? basis : NULL,
                                        center);
  }
  conform_histogram_clear(CONFORM_HISTOGRAM(self->histogram));
  conform_curves_clear(CONFORM_CURVES(self->loss));
  conform_curves_clear(CONFORM_CURVES(self->lr));
  conform_curves_clear(CONFORM_CURVES(self->violation));
  conform_curves_clear(CONFORM_CURVES(self->vae_curves));
  gtk_widget_set_visible(self->vae_curves, g_strcmp0(conform_run_get_config(run)->model_type, "vae") == 0);
  self->records_shown = 0;
  push_records(self); /* a loaded run brings its history */
  sync_sidebar(self);
  conform_window_set_dirty_(self, FALSE);
  conform_window_update_title_(self);
  update_train_button(self);
  update_status(self);
  GSettings *gs = conform_window_settings_(self);
  if (gs)
    g_settings_set_string(gs, "last-preset", self->pending.preset);
  conform_window_show_message_(self, conform_run_get_step(run) > 0 ? "experiment opened" : "ready: press Train (Space)", FALSE);
  gtk_widget_grab_focus(self->train_button);
}

static void
start_run(ConformWindow *self, const ConformConfig *cfg, const char *dir)
{
  if (self->incoming) {
    conform_run_stop(self->incoming);
    g_clear_object(&self->incoming);
  }
  ConformRun *run = conform_run_new(cfg, dir);
  GSettings *gs = conform_window_settings_(self);
  conform_run_set_preview_interval(run, gs ? g_settings_get_double(gs, "preview-interval") : 1.0);
  conform_run_set_blas_threads(run, gs ? g_settings_get_int(gs, "blas-threads") : 1);
  g_signal_connect_object(run, "ready", G_CALLBACK(run_ready_cb), self, 0);
  g_signal_connect_object(run, "progress", G_CALLBACK(run_progress_cb), self, 0);
  g_signal_connect_object(run, "samples", G_CALLBACK(run_samples_cb), self, 0);
  g_signal_connect_object(run, "state-changed", G_CALLBACK(run_state_cb), self, 0);
  g_signal_connect_object(run, "message", G_CALLBACK(run_message_cb), self, 0);
  g_signal_connect_object(run, "sampling-progress", G_CALLBACK(run_sampling_cb), self, 0);
  self->incoming = run;
  self->incoming_is_open = dir != NULL;
  /* The application stays alive until every worker has been joined. */
  GtkApplication *app = gtk_window_get_application(GTK_WINDOW(self));
  if (app) {
    g_application_hold(G_APPLICATION(app));
    g_object_set_data_full(G_OBJECT(run), "conform-held-app", g_object_ref(app), g_object_unref);
  }
  /* The finish callback owns one reference to the run and one to us. */
  conform_run_start_async(g_object_ref(run), NULL, run_finished_cb, g_object_ref(self));
  conform_window_show_message_(self, dir ? "opening…" : "building data and model…", FALSE);
}

/* ---- header actions ---------------------------------------------------------------- */

static void
train_toggle_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  if (!self->run)
    return;
  if (conform_run_get_state(self->run) == CONFORM_RUN_TRAINING) {
    conform_run_pause(self->run);
  } else {
    if (conform_run_get_step(self->run) >= conform_config_total_steps(conform_run_get_config(self->run)))
      conform_window_show_message_(self, "continuing past the configured number of steps (Pause to stop)", FALSE);
    conform_run_train(self->run);
  }
}

static void
step_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  if (self->run)
    conform_run_step(self->run, gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(self->step_count)));
}

static void
sample_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  if (self->run)
    conform_run_request_samples(self->run, 0, 200);
}

static void
reset_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformWindow *self = data;
  g_autoptr(GError) error = NULL;
  conform_window_images_before_reset_(self);
  if (!conform_config_validate(&self->pending, &error)) {
    conform_window_error_dialog_(self, "Cannot reset with these settings", error->message);
    return;
  }
  g_clear_pointer(&self->experiment_dir, g_free);
  start_run(self, &self->pending, NULL);
}

static void
preset_changed_cb(GtkDropDown *dd, GParamSpec *ps, ConformWindow *self)
{
  if (self->syncing)
    return;
  guint np;
  const ConformPreset *p = conform_presets(&np);
  guint i = gtk_drop_down_get_selected(dd);
  if (i >= np)
    return;
  ConformConfig cfg;
  conform_config_init(&cfg);
  g_autoptr(GError) error = NULL;
  if (!conform_config_apply_preset(&cfg, p[i].name, &error)) {
    conform_window_error_dialog_(self, "Cannot load the preset", error->message);
  } else {
    conform_window_reset_with(self, &cfg);
  }
  conform_config_clear(&cfg);
}

static void
strategy_changed_cb(GtkDropDown *dd, GParamSpec *ps, ConformWindow *self)
{
  if (self->syncing || !self->run)
    return;
  const char *s = strategies[gtk_drop_down_get_selected(dd)];
  conform_config_set(&self->pending, "experiment.strategy", s, NULL);
  conform_run_set(self->run, "experiment.strategy", s);
  conform_run_request_samples(self->run, 0, 200);
}

/* ---- sidebar ------------------------------------------------------------------- */

/* Wheel scrolling over a spin button of a scrolled pane scrolls the pane
 * (GtkSpinButton would take the wheel, grab the focus and change its
 * value, so scrolling through the sidebar silently edited the settings the
 * pointer passed); a spin button with the keyboard focus keeps the wheel.
 * A capture-phase controller on each spin button sees the wheel events GTK
 * sends it before the spin button does. */
static gboolean
spin_scroll_cb(GtkEventControllerScroll *c, double dx, double dy, gpointer data)
{
  (void)dx;
  (void)data;
  GtkWidget *spin = gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(c));
  GtkWidget *focus = gtk_root_get_focus(gtk_widget_get_root(spin));
  if (focus && (focus == spin || gtk_widget_is_ancestor(focus, spin)))
    return FALSE; /* the user is editing this one: the wheel is theirs */
  GtkWidget *sw = gtk_widget_get_ancestor(spin, GTK_TYPE_SCROLLED_WINDOW);
  if (!sw)
    return FALSE;
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
  double page = gtk_adjustment_get_page_size(adj);
  /* GtkScrolledWindow's own wheel step: page^(2/3) */
  double step = gtk_event_controller_scroll_get_unit(c) == GDK_SCROLL_UNIT_SURFACE ? 1.0 : pow(page, 2.0 / 3.0);
  gtk_adjustment_set_value(adj, gtk_adjustment_get_value(adj) + dy * step);
  return TRUE;
}

void
conform_window_scroll_past_spins_(GtkWidget *pane)
{
  if (GTK_IS_SPIN_BUTTON(pane)) {
    GtkEventController *c = gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
    gtk_event_controller_set_propagation_phase(c, GTK_PHASE_CAPTURE);
    g_signal_connect(c, "scroll", G_CALLBACK(spin_scroll_cb), NULL);
    gtk_widget_add_controller(pane, c);
    return;
  }
  for (GtkWidget *w = gtk_widget_get_first_child(pane); w; w = gtk_widget_get_next_sibling(w))
    conform_window_scroll_past_spins_(w);
}

static void
setting_changed(ConformWindow *self, const char *key, const char *value)
{
  if (self->syncing)
    return;
  const ConformKey *k = conform_config_find_key(key);
  g_autoptr(GError) error = NULL;
  if (!conform_config_set(&self->pending, key, value, &error)) {
    conform_window_show_message_(self, error->message, TRUE);
    return;
  }
  if (k->live && self->run) {
    conform_run_set(self->run, key, value);
    if (g_str_has_prefix(key, "sample.") || g_str_has_prefix(key, "eval."))
      conform_run_request_samples(self->run, 0, 200);
  } else {
    self->pending_restart = TRUE;
    gtk_widget_set_visible(self->restart_banner, TRUE);
  }
}

static void
spin_changed_cb(GtkSpinButton *spin, ConformWindow *self)
{
  const char *key = g_object_get_data(G_OBJECT(spin), "conform-key");
  const ConformKey *k = conform_config_find_key(key);
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  double v = gtk_spin_button_get_value(spin);
  if (k->type == CONFORM_KEY_DOUBLE)
    g_ascii_formatd(buf, sizeof buf, "%.6g", v);
  else
    g_snprintf(buf, sizeof buf, "%.0f", v);
  setting_changed(self, key, buf);
}

static void
choice_changed_cb(GtkDropDown *dd, GParamSpec *ps, ConformWindow *self)
{
  const char *key = g_object_get_data(G_OBJECT(dd), "conform-key");
  const ConformKey *k = conform_config_find_key(key);
  g_auto(GStrv) opts = g_strsplit(k->choices, "|", -1);
  guint i = gtk_drop_down_get_selected(dd);
  if (i < g_strv_length(opts))
    setting_changed(self, key, opts[i]);
}

static void
entry_activate_cb(GtkEntry *entry, ConformWindow *self)
{
  const char *key = g_object_get_data(G_OBJECT(entry), "conform-key");
  setting_changed(self, key, gtk_editable_get_text(GTK_EDITABLE(entry)));
}

static int
spin_digits(const ConformKey *k)
{
  if (k->type != CONFORM_KEY_DOUBLE)
    return 0;
  return k->max <= 1 ? 6 : 4;
}

static GtkWidget *
build_sidebar(ConformWindow *self)
{
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_add_css_class(box, "sidebar-settings");
  self->restart_banner = gtk_button_new_with_label("Settings changed: Reset to apply");
  gtk_widget_add_css_class(self->restart_banner, "suggested-action");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(self->restart_banner), "win.reset");
  gtk_widget_set_tooltip_text(self->restart_banner,
                              "Model, data and schedule settings need a fresh run; live settings already apply");
  gtk_widget_set_visible(self->restart_banner, FALSE);
  gtk_box_append(GTK_BOX(box), self->restart_banner);

  const char *section = NULL;
  GtkWidget *grid = NULL;
  int row = 0;
  guint nk;
  const ConformKey *keys = conform_config_keys(&nk);
  for (guint i = 0; i < nk; i++) {
    const ConformKey *k = &keys[i];
    if (g_str_equal(k->key, "experiment.preset") || g_str_equal(k->key, "experiment.strategy"))
      continue;
    g_auto(GStrv) parts = g_strsplit(k->key, ".", 2);
    if (g_strcmp0(section, parts[0]) != 0) {
      section = g_intern_string(parts[0]);
      GtkWidget *head = gtk_label_new(NULL);
      g_autofree char *markup = g_strdup_printf("<b>%c%s</b>", g_ascii_toupper(parts[0][0]), parts[0] + 1);
      gtk_label_set_markup(GTK_LABEL(head), markup);
      gtk_label_set_xalign(GTK_LABEL(head), 0);
      gtk_widget_set_margin_top(head, 8);
      gtk_box_append(GTK_BOX(box), head);
      grid = gtk_grid_new();
      gtk_grid_set_column_spacing(GTK_GRID(grid), 8);
      gtk_grid_set_row_spacing(GTK_GRID(grid), 4);
      gtk_box_append(GTK_BOX(box), grid);
      row = 0;
    }
    GtkWidget *label = gtk_label_new(parts[1]);
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    gtk_widget_set_hexpand(label, TRUE);
    GtkWidget *w;
    switch (k->type) {
    case CONFORM_KEY_INT:
    case CONFORM_KEY_UINT64:
    case CONFORM_KEY_DOUBLE: {
      double lo = k->type == CONFORM_KEY_UINT64 ? 0 : k->min;
      double hi = k->type == CONFORM_KEY_UINT64 ? 9007199254740992.0 : k->max;
      double step = k->type == CONFORM_KEY_DOUBLE ? (hi <= 1 ? 1e-4 : 0.01) : 1;
      GtkAdjustment *adj = gtk_adjustment_new(lo, lo, hi, step, step * 10, 0);
      w = gtk_spin_button_new(adj, 1, spin_digits(k));
      gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(w), TRUE);
      gtk_editable_set_width_chars(GTK_EDITABLE(w), 9);
      gtk_widget_add_css_class(w, "numeric");
      g_signal_connect(w, "value-changed", G_CALLBACK(spin_changed_cb), self);
      break;
    }
    case CONFORM_KEY_CHOICE: {
      g_auto(GStrv) opts = g_strsplit(k->choices, "|", -1);
      w = gtk_drop_down_new_from_strings((const char *const *)opts);
      g_signal_connect(w, "notify::selected", G_CALLBACK(choice_changed_cb), self);
      break;
    }
    case CONFORM_KEY_STRING:
    default:
      w = gtk_entry_new();
      gtk_editable_set_width_chars(GTK_EDITABLE(w), 12);
      g_signal_connect(w, "activate", G_CALLBACK(entry_activate_cb), self);
      break;
    }
    g_object_set_data(G_OBJECT(w), "conform-key", (gpointer)k->key);
    g_autofree char *tip = g_strdup_printf("%s\n%s (%s)", k->help,
                                           k->live ? "Applies at the next step" : "Applies on Reset", k->key);
    gtk_widget_set_tooltip_text(w, tip);
    gtk_widget_set_tooltip_text(label, tip);
    if (!k->live)
      gtk_widget_add_css_class(label, "dim-label");
    g_hash_table_insert(self->setting_widgets, (gpointer)k->key, w);
    gtk_grid_attach(GTK_GRID(grid), label, 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), w, 1, row, 1, 1);
    row++;
  }
  GtkWidget *note = gtk_label_new("Greyed settings apply on Reset; the others apply at the next step.");
  gtk_label_set_wrap(GTK_LABEL(note), TRUE);
  gtk_label_set_xalign(GTK_LABEL(note), 0);
  gtk_widget_add_css_class(note, "dim-label");
  gtk_box_append(GTK_BOX(box), note);
  GtkWidget *scroll = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), box);
  gtk_widget_set_size_request(scroll, 260, -1);
  conform_window_scroll_past_spins_(scroll);
  return scroll;
}

/* ---- views ------------------------------------------------------------------- */

static void
bg_toggled_cb(GtkCheckButton *b, ConformWindow *self)
{
  conform_scatter_set_show_background(CONFORM_SCATTER(self->scatter), gtk_check_button_get_active(b));
  conform_scatter_set_show_background(CONFORM_SCATTER(self->traj_scatter), gtk_check_button_get_active(b));
}

static void
arrows_toggled_cb(GtkCheckButton *b, ConformWindow *self)
{
  conform_scatter_set_show_arrows(CONFORM_SCATTER(self->scatter), gtk_check_button_get_active(b));
}

static void
logy_toggled_cb(GtkCheckButton *b, ConformWindow *self)
{
  conform_curves_set_log_y(CONFORM_CURVES(self->loss), gtk_check_button_get_active(b));
}

static void
smoothing_cb(GtkRange *r, ConformWindow *self)
{
  double s = gtk_range_get_value(r);
  conform_curves_set_smoothing(CONFORM_CURVES(self->loss), s);
  conform_curves_set_smoothing(CONFORM_CURVES(self->lr), s);
}

static void
traj_scale_cb(GtkRange *r, ConformWindow *self)
{
  show_trajectory_frame(self);
}

static gboolean
traj_tick_cb(gpointer data)
{
  ConformWindow *self = data;
  double v = gtk_range_get_value(GTK_RANGE(self->traj_scale));
  GtkAdjustment *adj = gtk_range_get_adjustment(GTK_RANGE(self->traj_scale));
  double hi = gtk_adjustment_get_upper(adj);
  double step = MAX(1.0, floor(hi / 100));
  if (v >= hi) {
    self->traj_timer = 0;
    gtk_button_set_icon_name(GTK_BUTTON(self->traj_play), "media-playback-start-symbolic");
    return G_SOURCE_REMOVE;
  }
  gtk_range_set_value(GTK_RANGE(self->traj_scale), MIN(hi, v + step));
  return G_SOURCE_CONTINUE;
}

static void
traj_play_cb(GtkButton *b, ConformWindow *self)
{
  if (self->traj_timer) {
    g_source_remove(self->traj_timer);
    self->traj_timer = 0;
    gtk_button_set_icon_name(b, "media-playback-start-symbolic");
    return;
  }
  GtkAdjustment *adj = gtk_range_get_adjustment(GTK_RANGE(self->traj_scale));
  if (gtk_range_get_value(GTK_RANGE(self->traj_scale)) >= gtk_adjustment_get_upper(adj))
    gtk_range_set_value(GTK_RANGE(self->traj_scale), 0);
  self->traj_timer = g_timeout_add(40, traj_tick_cb, self);
  gtk_button_set_icon_name(b, "media-playback-pause-symbolic");
}

static void
traj_step_cb(GtkButton *b, ConformWindow *self)
{
  int delta = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "delta"));
  gtk_range_set_value(GTK_RANGE(self->traj_scale), gtk_range_get_value(GTK_RANGE(self->traj_scale)) + delta);
}

static void
editor_applied_cb(ConformConstraintEditor *ed, gpointer constraint, ConformWindow *self)
{
  if (!self->run)
    return;
  conform_run_set_constraint(self->run, constraint);
  conform_window_set_dirty_(self, TRUE);
  conform_window_show_message_(self, "constraint applied: re-projecting the current samples", FALSE);
}

static GtkWidget *
labelled_pane_full(const char *title, GtkWidget *child, GtkWidget *extra, GtkWidget **title_out)
{
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  GtkWidget *top = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *l = gtk_label_new(NULL);
  g_autofree char *m = g_strdup_printf("<b>%s</b>", title);
  gtk_label_set_markup(GTK_LABEL(l), m);
  gtk_label_set_xalign(GTK_LABEL(l), 0);
  gtk_widget_set_hexpand(l, TRUE);
  gtk_box_append(GTK_BOX(top), l);
  if (extra)
    gtk_box_append(GTK_BOX(top), extra);
  gtk_widget_set_margin_start(top, 6);
  gtk_widget_set_margin_end(top, 6);
  gtk_box_append(GTK_BOX(box), top);
  gtk_widget_set_vexpand(child, TRUE);
  gtk_box_append(GTK_BOX(box), child);
  if (title_out)
    *title_out = l;
  return box;
}

static GtkWidget *
labelled_pane(const char *title, GtkWidget *child, GtkWidget *extra)
{
  return labelled_pane_full(title, child, extra, NULL);
}

static GtkWidget *
build_views(ConformWindow *self)
{
  self->scatter = conform_scatter_new();
  self->histogram = conform_histogram_new();
  self->loss = conform_curves_new();
  self->violation = conform_curves_new();
  self->lr = conform_curves_new();
  conform_curves_set_title(CONFORM_CURVES(self->loss), "loss");
  conform_curves_set_x_label(CONFORM_CURVES(self->loss), "step");
  conform_curves_set_log_y(CONFORM_CURVES(self->loss), TRUE);
  self->loss_series = conform_curves_add_series(CONFORM_CURVES(self->loss), "loss", 4);
  conform_curves_set_title(CONFORM_CURVES(self->violation), "violation ||A x - b||");
  conform_curves_set_x_label(CONFORM_CURVES(self->violation), "step");
  conform_curves_set_log_y(CONFORM_CURVES(self->violation), TRUE);
  self->viol_p50 = conform_curves_add_series(CONFORM_CURVES(self->violation), "p50", 2);
  self->viol_p99 = conform_curves_add_series(CONFORM_CURVES(self->violation), "p99", 0);
  self->viol_max = conform_curves_add_series(CONFORM_CURVES(self->violation), "max", 5);
  conform_curves_set_title(CONFORM_CURVES(self->lr), "learning rate");
  conform_curves_set_x_label(CONFORM_CURVES(self->lr), "step");
  self->lr_series = conform_curves_add_series(CONFORM_CURVES(self->lr), "lr", 1);
  /* VAEs: held-out ELBO and importance-weighted log-likelihood over steps,
   * computed with every preview on the sampling thread. */
  self->vae_curves = conform_curves_new();
  ConformCurves *vc = CONFORM_CURVES(self->vae_curves);
  g_autofree char *vae_title = g_strdup_printf("Held-out ELBO / log-likelihood (nats per sample, model space) · "
                                               "previews: %d rows, K = %d", CONFORM_VAE_PREVIEW_N,
                                               CONFORM_VAE_PREVIEW_K);
  conform_curves_set_title(vc, vae_title);
  conform_curves_set_x_label(vc, "step");
  self->vae_elbo = conform_curves_add_series(vc, "ELBO", 4);
  g_autofree char *ll_label = g_strdup_printf("log-lik (IW, K = %d)", CONFORM_VAE_PREVIEW_K);
  self->vae_ll = conform_curves_add_series(vc, ll_label, 5);
  self->vae_ll_full = conform_curves_add_series(vc, "log-lik (IW, K = 50, 500 rows; explicit samples)", 2);
  g_autofree char *vae_tip = g_strdup_printf(
    "Held-out ELBO and importance-weighted test log-likelihood per sample in model (standardised) space. Previews "
    "while training use a fixed subset of the first %d held-out rows and K = %d importance samples (cheap, on the "
    "sampling thread); explicit samples (Sample now, end of training) use %s rows and K = 50. cgauss reports the "
    "density on the constraint subspace, none the ambient density: not comparable across those.",
    CONFORM_VAE_PREVIEW_N, CONFORM_VAE_PREVIEW_K, "500");
  gtk_widget_set_tooltip_text(self->vae_curves, vae_tip);
  gtk_widget_set_visible(self->vae_curves, FALSE);

  /* Samples pane with its toggles. */
  GtkWidget *toggles = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  self->bg_check = gtk_check_button_new_with_label("Training data");
  gtk_check_button_set_active(GTK_CHECK_BUTTON(self->bg_check), TRUE);
  gtk_widget_set_tooltip_text(self->bg_check, "Show the training data faintly under the samples");
  g_signal_connect(self->bg_check, "toggled", G_CALLBACK(bg_toggled_cb), self);
  self->arrows_check = gtk_check_button_new_with_label("Correction arrows");
  gtk_check_button_set_active(GTK_CHECK_BUTTON(self->arrows_check), TRUE);
  gtk_widget_set_tooltip_text(self->arrows_check,
                              "Arrows from each unconstrained point to the sample: the raw sample to its projection "
                              "(projection), or the VAE's unconstrained decoder mean to its constrained sample "
                              "(cgauss: variance-weighted; constrained-layer: orthogonal)");
  g_signal_connect(self->arrows_check, "toggled", G_CALLBACK(arrows_toggled_cb), self);
  GtkWidget *sample_btn = gtk_button_new_with_label("Sample now");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(sample_btn), "win.sample");
  gtk_widget_set_tooltip_text(sample_btn, "Draw fresh samples from the current parameters (Ctrl+R)");
  gtk_box_append(GTK_BOX(toggles), self->bg_check);
  gtk_box_append(GTK_BOX(toggles), self->arrows_check);
  gtk_box_append(GTK_BOX(toggles), conform_window_images_samples_toggle_(self));
  gtk_box_append(GTK_BOX(toggles), sample_btn);
  self->image_grid = conform_image_grid_new();
  self->samples_stack = gtk_stack_new();
  gtk_stack_add_named(GTK_STACK(self->samples_stack), self->scatter, "scatter");
  gtk_stack_add_named(GTK_STACK(self->samples_stack), self->image_grid, "images");
  GtkWidget *samples_pane = labelled_pane("Samples", self->samples_stack, toggles);

  /* Category shares under the samples (image data: predicted classes). */
  self->shares = conform_bars_new();
  conform_bars_set_y_label(CONFORM_BARS(self->shares), "share");
  conform_bars_set_empty_text(CONFORM_BARS(self->shares),
                              "Class shares come with explicit samples: Sample now (Ctrl+R) or the end of training");
  gtk_widget_set_size_request(self->shares, 240, 170);
  self->shares_info = gtk_label_new(NULL);
  gtk_label_set_ellipsize(GTK_LABEL(self->shares_info), PANGO_ELLIPSIZE_END);
  gtk_label_set_xalign(GTK_LABEL(self->shares_info), 1);
  gtk_widget_add_css_class(self->shares_info, "numeric");
  gtk_widget_set_tooltip_text(self->shares_info,
                              "FD: Frechet distance of the bundled classifier's penultimate features between the "
                              "samples and held-out images (lower is better); floor: the same for as many training "
                              "images, what a perfect model would reach");
  self->shares_pane = labelled_pane_full("Class shares", self->shares, self->shares_info, &self->shares_title);
  /* on the title, not the chart: its hover readout would be covered */
  gtk_widget_set_tooltip_text(self->shares_title,
                              "Share of each class among the samples and among training images, as predicted by "
                              "the bundled classifier; the dashed line is the uniform share. Hover a class for "
                              "its values.");
  gtk_widget_set_visible(self->shares_pane, FALSE);
  GtkWidget *samples_col = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
  gtk_paned_set_start_child(GTK_PANED(samples_col), samples_pane);
  gtk_paned_set_end_child(GTK_PANED(samples_col), self->shares_pane);
  gtk_paned_set_resize_end_child(GTK_PANED(samples_col), FALSE);
  gtk_paned_set_shrink_end_child(GTK_PANED(samples_col), FALSE);
  gtk_paned_set_position(GTK_PANED(samples_col), 470);

  GtkWidget *curve_tools = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  self->logy_check = gtk_check_button_new_with_label("Log y");
  gtk_check_button_set_active(GTK_CHECK_BUTTON(self->logy_check), TRUE);
  gtk_widget_set_tooltip_text(self->logy_check, "Logarithmic loss axis");
  g_signal_connect(self->logy_check, "toggled", G_CALLBACK(logy_toggled_cb), self);
  self->smoothing = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 0, 0.99, 0.01);
  gtk_range_set_value(GTK_RANGE(self->smoothing), 0.6);
  gtk_scale_set_draw_value(GTK_SCALE(self->smoothing), TRUE);
  gtk_widget_set_size_request(self->smoothing, 120, -1);
  gtk_widget_set_tooltip_text(self->smoothing, "Smoothing of the displayed curves (exponential moving average weight)");
  g_signal_connect(self->smoothing, "value-changed", G_CALLBACK(smoothing_cb), self);
  conform_curves_set_smoothing(CONFORM_CURVES(self->loss), 0.6);
  gtk_box_append(GTK_BOX(curve_tools), self->logy_check);
  gtk_box_append(GTK_BOX(curve_tools), gtk_label_new("Smoothing"));
  gtk_box_append(GTK_BOX(curve_tools), self->smoothing);

  GtkWidget *curves_box = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
  GtkWidget *curves_lower = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
  gtk_paned_set_start_child(GTK_PANED(curves_box), labelled_pane("Training curves", self->loss, curve_tools));
  gtk_paned_set_end_child(GTK_PANED(curves_box), curves_lower);
  gtk_paned_set_start_child(GTK_PANED(curves_lower), self->violation);
  GtkWidget *lr_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  gtk_widget_set_vexpand(self->lr, TRUE);
  gtk_widget_set_vexpand(self->vae_curves, TRUE);
  gtk_box_append(GTK_BOX(lr_box), self->lr);
  gtk_box_append(GTK_BOX(lr_box), self->vae_curves);
  self->lr_box = lr_box;
  gtk_paned_set_end_child(GTK_PANED(curves_lower), lr_box);
  gtk_paned_set_position(GTK_PANED(curves_lower), 150);
  gtk_paned_set_position(GTK_PANED(curves_box), 230);

  GtkWidget *right = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
  gtk_paned_set_start_child(GTK_PANED(right),
                            labelled_pane_full("Violation histogram", self->histogram, NULL, &self->hist_title));
  gtk_paned_set_end_child(GTK_PANED(right), curves_box);
  gtk_paned_set_position(GTK_PANED(right), 260);
  GtkWidget *explore = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
  gtk_paned_set_start_child(GTK_PANED(explore), samples_col);
  gtk_paned_set_end_child(GTK_PANED(explore), right);
  gtk_paned_set_position(GTK_PANED(explore), 560);

  /* Trajectory tab: scatter of x_t + scrubber. */
  self->traj_scatter = conform_scatter_new();
  conform_scatter_set_show_arrows(CONFORM_SCATTER(self->traj_scatter), FALSE);
  GtkWidget *scrub = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *back = gtk_button_new_from_icon_name("go-previous-symbolic");
  g_object_set_data(G_OBJECT(back), "delta", GINT_TO_POINTER(-1));
  gtk_widget_set_tooltip_text(back, "One reverse step back");
  g_signal_connect(back, "clicked", G_CALLBACK(traj_step_cb), self);
  self->traj_play = gtk_button_new_from_icon_name("media-playback-start-symbolic");
  gtk_widget_set_tooltip_text(self->traj_play, "Play the reverse process from noise to samples");
  g_signal_connect(self->traj_play, "clicked", G_CALLBACK(traj_play_cb), self);
  GtkWidget *fwd = gtk_button_new_from_icon_name("go-next-symbolic");
  g_object_set_data(G_OBJECT(fwd), "delta", GINT_TO_POINTER(1));
  gtk_widget_set_tooltip_text(fwd, "One reverse step forward");
  g_signal_connect(fwd, "clicked", G_CALLBACK(traj_step_cb), self);
  self->traj_scale = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 0, 1, 1);
  gtk_scale_set_digits(GTK_SCALE(self->traj_scale), 0);
  gtk_widget_set_hexpand(self->traj_scale, TRUE);
  gtk_widget_set_tooltip_text(self->traj_scale, "Reverse step: 0 is pure noise x_T, the end is the sample x_0");
  g_signal_connect(self->traj_scale, "value-changed", G_CALLBACK(traj_scale_cb), self);
  gtk_box_append(GTK_BOX(scrub), back);
  gtk_box_append(GTK_BOX(scrub), self->traj_play);
  gtk_box_append(GTK_BOX(scrub), fwd);
  gtk_box_append(GTK_BOX(scrub), self->traj_scale);
  self->traj_label = gtk_label_new("No trajectory yet: train, then sample");
  gtk_label_set_xalign(GTK_LABEL(self->traj_label), 0);
  gtk_widget_add_css_class(self->traj_label, "numeric");
  GtkWidget *traj_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
  gtk_widget_set_vexpand(self->traj_scatter, TRUE);
  gtk_box_append(GTK_BOX(traj_box), conform_window_traj_view_new_(self)); /* scatter, or images */
  gtk_box_append(GTK_BOX(traj_box), scrub);
  gtk_box_append(GTK_BOX(traj_box), self->traj_label);
  gtk_widget_set_margin_start(traj_box, 6);
  gtk_widget_set_margin_end(traj_box, 6);
  gtk_widget_set_margin_bottom(traj_box, 6);

  /* Constraint tab. */
  self->editor = conform_constraint_editor_new();
  g_signal_connect(self->editor, "applied", G_CALLBACK(editor_applied_cb), self);
  GtkWidget *cbox = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  self->constraint_summary = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(self->constraint_summary), 0);
  gtk_label_set_wrap(GTK_LABEL(self->constraint_summary), TRUE);
  GtkWidget *chead = gtk_label_new(NULL);
  gtk_label_set_markup(GTK_LABEL(chead), "<b>Active constraint</b> (raw data space)");
  gtk_label_set_xalign(GTK_LABEL(chead), 0);
  gtk_box_append(GTK_BOX(cbox), chead);
  gtk_box_append(GTK_BOX(cbox), self->constraint_summary);
  gtk_box_append(GTK_BOX(cbox), self->editor); /* natural height: the equations follow it */
  gtk_box_append(GTK_BOX(cbox), gtk_separator_new(GTK_ORIENTATION_HORIZONTAL));
  gtk_box_append(GTK_BOX(cbox), conform_window_equations_new_(self));
  gtk_widget_set_margin_start(cbox, 8);
  gtk_widget_set_margin_end(cbox, 8);
  gtk_widget_set_margin_top(cbox, 8);

  self->notebook = gtk_notebook_new();
  gtk_notebook_append_page(GTK_NOTEBOOK(self->notebook), explore, gtk_label_new("Explore"));
  gtk_notebook_append_page(GTK_NOTEBOOK(self->notebook), traj_box, gtk_label_new("Sampling trajectory"));
  /* Scrolled, so this tab never sets the notebook's minimum height (its
   * icon-beside-wrapping-label rows measure one pixel taller at huge widths
   * in GTK 4.8, a critical under G_DEBUG=fatal-criticals). */
  GtkWidget *cscroll = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(cscroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(cscroll), cbox);
  gtk_notebook_append_page(GTK_NOTEBOOK(self->notebook), cscroll, gtk_label_new("Constraint A x = b"));
  /* Compare tab: strategies side by side, trained in lock-step on their own worker. */
  self->compare = conform_compare_view_new();
  self->compare_page =
    gtk_notebook_append_page(GTK_NOTEBOOK(self->notebook), self->compare, gtk_label_new("Compare"));
  gtk_notebook_append_page(GTK_NOTEBOOK(self->notebook), conform_window_mirror_page_new_(self),
                           gtk_label_new("Mirror maps"));
  gtk_notebook_append_page(GTK_NOTEBOOK(self->notebook), conform_window_narration_page_new_(self),
                           gtk_label_new("Slow motion"));
  gtk_notebook_append_page(GTK_NOTEBOOK(self->notebook), conform_window_superres_page_new_(self),
                           gtk_label_new("Super-resolution"));
  return self->notebook;
}

/* ---- construction ----------------------------------------------------------------- */

static void
conform_window_dispose(GObject *object)
{
  ConformWindow *self = CONFORM_WINDOW(object);
  if (self->traj_timer) {
    g_source_remove(self->traj_timer);
    self->traj_timer = 0;
  }
  if (self->refresh_source) {
    g_source_remove(self->refresh_source);
    self->refresh_source = 0;
  }
  if (self->run)
    conform_run_stop(self->run);
  if (self->incoming)
    conform_run_stop(self->incoming);
  /* The compare view's worker holds a reference to the view until joined,
   * so the view's own dispose may come late: stop it here. */
  if (self->compare)
    conform_compare_view_stop(CONFORM_COMPARE_VIEW(self->compare));
  self->compare = NULL;
  g_clear_object(&self->run);
  g_clear_object(&self->incoming);
  G_OBJECT_CLASS(conform_window_parent_class)->dispose(object);
}

static void
conform_window_finalize(GObject *object)
{
  ConformWindow *self = CONFORM_WINDOW(object);
  conform_config_clear(&self->pending);
  g_free(self->experiment_dir);
  g_free(self->last_error);
  g_free(self->status_text);
  g_hash_table_unref(self->setting_widgets);
  conform_window_images_free_(self);
  G_OBJECT_CLASS(conform_window_parent_class)->finalize(object);
}

static void
conform_window_class_init(ConformWindowClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  oc->dispose = conform_window_dispose;
  oc->finalize = conform_window_finalize;
}

static const GActionEntry win_actions[] = {
  {"train-toggle", train_toggle_action, NULL, NULL, NULL, {0}},
  {"step", step_action, NULL, NULL, NULL, {0}},
  {"sample", sample_action, NULL, NULL, NULL, {0}},
  {"reset", reset_action, NULL, NULL, NULL, {0}},
  {"open", conform_window_open_action, NULL, NULL, NULL, {0}},
  {"save", conform_window_save_action, NULL, NULL, NULL, {0}},
  {"save-as", conform_window_save_as_action, NULL, NULL, NULL, {0}},
  {"export", conform_window_export_action, NULL, NULL, NULL, {0}},
  {"close", conform_window_close_action, NULL, NULL, NULL, {0}},
};

static GtkWidget *
icon_button(const char *icon, const char *action, const char *tooltip)
{
  GtkWidget *b = gtk_button_new_from_icon_name(icon);
  gtk_actionable_set_action_name(GTK_ACTIONABLE(b), action);
  gtk_widget_set_tooltip_text(b, tooltip);
  return b;
}

static GMenuModel *
primary_menu(void)
{
  GMenu *menu = g_menu_new();
  GMenu *s1 = g_menu_new();
  g_menu_append(s1, "_New Window", "app.new-window");
  g_menu_append(s1, "_Open…", "win.open");
  g_menu_append(s1, "_Save", "win.save");
  g_menu_append(s1, "Save _As…", "win.save-as");
  g_menu_append(s1, "_Export…", "win.export");
  g_menu_append_section(menu, NULL, G_MENU_MODEL(s1));
  g_autoptr(GMenuModel) lessons = conform_window_teach_menu_();
  g_menu_append_section(menu, NULL, lessons);
  GMenu *s2 = g_menu_new();
  g_menu_append(s2, "_Preferences", "app.preferences");
  g_menu_append(s2, "_Keyboard Shortcuts", "app.shortcuts");
  g_menu_append(s2, "_About Conform", "app.about");
  g_menu_append_section(menu, NULL, G_MENU_MODEL(s2));
  g_object_unref(s1);
  g_object_unref(s2);
  return G_MENU_MODEL(menu);
}

static void
add_shortcut(GtkShortcutController *sc, const char *accel, const char *action)
{
  gtk_shortcut_controller_add_shortcut(sc, gtk_shortcut_new(gtk_shortcut_trigger_parse_string(accel),
                                                            gtk_named_action_new(action)));
}

static void
conform_window_init(ConformWindow *self)
{
  conform_config_init(&self->pending);
  self->setting_widgets = g_hash_table_new(g_str_hash, g_str_equal);
  g_action_map_add_action_entries(G_ACTION_MAP(self), win_actions, G_N_ELEMENTS(win_actions), self);

  /* Header bar. */
  GtkWidget *header = gtk_header_bar_new();
  self->train_button = icon_button("media-playback-start-symbolic", "win.train-toggle", "Train (Space)");
  gtk_widget_add_css_class(self->train_button, "suggested-action");
  self->step_button = icon_button("media-skip-forward-symbolic", "win.step", "Train the chosen number of steps (Right)");
  self->step_count = gtk_spin_button_new_with_range(1, 1000000, 1);
  gtk_widget_set_tooltip_text(self->step_count, "Steps per Step click");
  self->reset_button = icon_button("view-refresh-symbolic", "win.reset", "Reset: a fresh run with the sidebar settings");
  GtkWidget *step_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
  gtk_widget_add_css_class(step_box, "linked");
  gtk_box_append(GTK_BOX(step_box), self->step_button);
  gtk_box_append(GTK_BOX(step_box), self->step_count);
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), self->train_button);
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), step_box);
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), self->reset_button);

  guint np;
  const ConformPreset *presets = conform_presets(&np);
  GtkStringList *pl = gtk_string_list_new(NULL);
  for (guint i = 0; i < np; i++)
    gtk_string_list_append(pl, presets[i].name);
  self->preset_dropdown = gtk_drop_down_new(G_LIST_MODEL(pl), NULL);
  gtk_widget_set_tooltip_text(self->preset_dropdown, "Preset: data set, constraint and tuned defaults (starts a new run)");
  g_signal_connect(self->preset_dropdown, "notify::selected", G_CALLBACK(preset_changed_cb), self);
  self->strategy_dropdown = gtk_drop_down_new_from_strings(strategies);
  gtk_widget_set_tooltip_text(self->strategy_dropdown,
                              "Constraint strategy: none, projection (post-hoc), projected-sampling (diffusion: every "
                              "reverse step), constrained-layer and cgauss (VAE: part of training, applies on Reset)");
  g_signal_connect(self->strategy_dropdown, "notify::selected", G_CALLBACK(strategy_changed_cb), self);
  GtkWidget *title_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_append(GTK_BOX(title_box), self->preset_dropdown);
  gtk_box_append(GTK_BOX(title_box), self->strategy_dropdown);
  gtk_header_bar_set_title_widget(GTK_HEADER_BAR(header), title_box);

  self->menu_button = gtk_menu_button_new();
  gtk_menu_button_set_icon_name(GTK_MENU_BUTTON(self->menu_button), "open-menu-symbolic");
  g_autoptr(GMenuModel) menu = primary_menu();
  gtk_menu_button_set_menu_model(GTK_MENU_BUTTON(self->menu_button), menu);
  gtk_menu_button_set_primary(GTK_MENU_BUTTON(self->menu_button), TRUE);
  gtk_widget_set_tooltip_text(self->menu_button, "Main menu (F10)");
  gtk_header_bar_pack_end(GTK_HEADER_BAR(header), self->menu_button);
  gtk_window_set_titlebar(GTK_WINDOW(self), header);

  /* Body: sidebar | views, status bar below. */
  GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
  gtk_paned_set_start_child(GTK_PANED(paned), conform_window_teach_sidebar_(self, build_sidebar(self)));
  gtk_paned_set_end_child(GTK_PANED(paned), build_views(self));
  conform_window_teach_init_(self);
  conform_window_images_sidebar_(self);
  gtk_paned_set_shrink_start_child(GTK_PANED(paned), FALSE);
  gtk_paned_set_position(GTK_PANED(paned), 290);
  gtk_widget_set_vexpand(paned, TRUE);

  GtkWidget *status = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_widget_add_css_class(status, "status-bar");
  self->status_label = gtk_label_new("starting…");
  gtk_widget_add_css_class(self->status_label, "numeric");
  self->space_label = gtk_label_new("");
  gtk_widget_add_css_class(self->space_label, "dim-label");
  self->message_label = gtk_label_new("");
  gtk_label_set_ellipsize(GTK_LABEL(self->message_label), PANGO_ELLIPSIZE_END);
  gtk_label_set_xalign(GTK_LABEL(self->message_label), 1);
  gtk_widget_set_hexpand(self->message_label, TRUE);
  gtk_box_append(GTK_BOX(status), self->status_label);
  gtk_box_append(GTK_BOX(status), self->space_label);
  gtk_box_append(GTK_BOX(status), self->message_label);

  GtkWidget *root = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  gtk_box_append(GTK_BOX(root), paned);
  gtk_box_append(GTK_BOX(root), gtk_separator_new(GTK_ORIENTATION_HORIZONTAL));
  gtk_box_append(GTK_BOX(root), status);
  gtk_window_set_child(GTK_WINDOW(self), root);
  gtk_window_set_default_size(GTK_WINDOW(self), 1400, 860);
  g_signal_connect(self, "close-request", G_CALLBACK(conform_window_close_request_cb), NULL);

  /* Space and Right act on the window but let entries handle their keys
   * first (bubble phase). */
  GtkEventController *sc = gtk_shortcut_controller_new();
  gtk_event_controller_set_propagation_phase(sc, GTK_PHASE_BUBBLE);
  add_shortcut(GTK_SHORTCUT_CONTROLLER(sc), "space", "win.train-toggle");
  add_shortcut(GTK_SHORTCUT_CONTROLLER(sc), "Right", "win.step");
  gtk_widget_add_controller(GTK_WIDGET(self), sc);
  update_train_button(self);
  /* Keyboard focus starts on Train, not on the first setting, so Space
   * trains at once. */
  gtk_window_set_focus(GTK_WINDOW(self), self->train_button);
}

/* ---- public API ---------------------------------------------------------------- */

ConformWindow *
conform_window_new(GtkApplication *app, const char *preset)
{
  ConformWindow *self = g_object_new(CONFORM_TYPE_WINDOW, "application", app, NULL);
  GSettings *gs = conform_window_settings_(self);
  if (gs) {
    int w = g_settings_get_int(gs, "window-width"), h = g_settings_get_int(gs, "window-height");
    if (w > 200 && h > 200)
      gtk_window_set_default_size(GTK_WINDOW(self), w, h);
  }
  ConformConfig cfg;
  conform_config_init(&cfg);
  g_autoptr(GError) error = NULL;
  if (!conform_config_apply_preset(&cfg, preset ? preset : CONFORM_DEFAULT_PRESET, &error)) {
    conform_window_show_message_(self, error->message, TRUE);
    conform_config_apply_preset(&cfg, CONFORM_DEFAULT_PRESET, NULL);
  }
  if (gs)
    cfg.n_samples = g_settings_get_int(gs, "default-samples");
  conform_config_clear(&self->pending);
  conform_config_copy(&self->pending, &cfg);
  sync_sidebar(self);
  start_run(self, &cfg, NULL);
  conform_config_clear(&cfg);
  conform_window_update_title_(self);
  return self;
}

void
conform_window_open_dir(ConformWindow *self, const char *dir)
{
  g_return_if_fail(CONFORM_IS_WINDOW(self));
  g_free(self->experiment_dir);
  self->experiment_dir = g_strdup(dir);
  start_run(self, NULL, dir);
}

void
conform_window_reset_with(ConformWindow *self, const ConformConfig *cfg)
{
  g_return_if_fail(CONFORM_IS_WINDOW(self));
  g_clear_pointer(&self->experiment_dir, g_free);
  conform_config_clear(&self->pending);
  conform_config_copy(&self->pending, cfg);
  start_run(self, cfg, NULL);
}

ConformRun *
conform_window_get_run(ConformWindow *self)
{
  return self->run;
}

GtkWidget *
conform_window_get_view(ConformWindow *self, const char *name)
{
  if (g_str_equal(name, "samples")) return self->image_size ? self->image_grid : self->scatter;
  if (g_str_equal(name, "images")) return self->image_grid;
  if (g_str_equal(name, "histogram")) return self->histogram;
  if (g_str_equal(name, "loss")) return self->loss;
  if (g_str_equal(name, "violation")) return self->violation;
  if (g_str_equal(name, "lr")) return self->lr;
  if (g_str_equal(name, "vae-curves")) return self->vae_curves;
  if (g_str_equal(name, "dual-curves")) return self->dual_curves;
  if (g_str_equal(name, "namm-curves")) return self->namm_curves;
  if (g_str_equal(name, "shares")) return self->shares;
  if (g_str_equal(name, "shares-pane")) return self->shares_pane;
  if (g_str_equal(name, "shares-info")) return self->shares_info;
  if (g_str_equal(name, "compare")) return self->compare;
  if (g_str_equal(name, "trajectory")) return self->traj_scatter;
  if (g_str_equal(name, "trajectory-scale")) return self->traj_scale;
  if (g_str_equal(name, "editor")) return self->editor;
  if (g_str_equal(name, "equations")) return self->equations;
  if (g_str_equal(name, "mirror-view")) return self->mirror_view;
  if (g_str_equal(name, "narration")) return self->narration;
  if (g_str_equal(name, "mirror-page")) return self->mirror_page;
  if (g_str_equal(name, "notebook")) return self->notebook;
  if (g_str_equal(name, "strategy")) return self->strategy_dropdown;
  if (g_str_equal(name, "preset")) return self->preset_dropdown;
  if (g_str_equal(name, "message")) return self->message_label;
  GtkWidget *iw = conform_window_images_view_(self, name);
  if (iw) return iw;
  return g_hash_table_lookup(self->setting_widgets, name);
}

const char *
conform_window_get_status_text(ConformWindow *self)
{
  return self->status_text ? self->status_text : "";
}

const char *
conform_window_get_last_error(ConformWindow *self)
{
  return self->last_error;
}

gboolean
conform_window_is_dirty(ConformWindow *self)
{
  return self->dirty;
}
