/* ConformNarration: see conform-narration.h. */
#define G_LOG_DOMAIN "conform"

#include "conform-narration.h"

#include <math.h>
#include <string.h>

#include "conform-dual.h"
#include "conform-scatter.h"

typedef struct {
  char *title, *text;
  const float *pts;  /* n x dim, or NULL: nothing drawn */
  const float *from; /* arrows from these (n x dim) to pts, or NULL */
  gboolean constraint;
} Step;

struct _ConformNarration {
  GtkWidget parent_instance;
  GtkWidget *box, *back, *next, *counter, *title, *text, *scatter;
  ConformSampleSet *set;
  CfConstraint c;
  char *strategy;
  ConformConfig cfg;
  gboolean has_cfg;
  ConformTrainRecord rec;
  gboolean has_rec;
  int n, dim;
  float *frames[4]; /* copies of what the steps show (first n rows) */
  int n_frames;
  GArray *steps; /* Step */
  int at;
};

G_DEFINE_FINAL_TYPE(ConformNarration, conform_narration, GTK_TYPE_WIDGET)

static void
step_clear(gpointer p)
{
  Step *s = p;
  g_free(s->title);
  g_free(s->text);
}

static void
add_step(ConformNarration *self, const float *pts, const float *from, gboolean constraint, const char *title,
         const char *fmt, ...) G_GNUC_PRINTF(6, 7);
static void
add_step(ConformNarration *self, const float *pts, const float *from, gboolean constraint, const char *title,
         const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  Step s = {g_strdup(title), g_strdup_vprintf(fmt, ap), pts, from, constraint};
  va_end(ap);
  g_array_append_val(self->steps, s);
}

/* A copy of the first n rows of x (owned by self until the next rebuild). */
static const float *
keep(ConformNarration *self, const float *x)
{
  if (!x || self->n_frames == G_N_ELEMENTS(self->frames))
    return NULL;
  float *c = g_memdup2(x, sizeof(float) * (gsize)self->n * self->dim);
  self->frames[self->n_frames++] = c;
  return c;
}

static double
median_of(const double *v, int n)
{
  if (!v || n < 1)
    return NAN;
  double *t = g_memdup2(v, sizeof(double) * n);
  for (int i = 1; i < n; i++) /* n is small */
    for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
      double x = t[j];
      t[j] = t[j - 1];
      t[j - 1] = x;
    }
  double m = t[n / 2];
  g_free(t);
  return m;
}

/* The reverse chain's first, middle and last recorded frames. */
static void
chain_steps(ConformNarration *self, const char *what_each_step)
{
  const ConformSampleSet *s = self->set;
  if (!s->traj || s->traj_n < self->n)
    return;
  const int K = s->traj_steps, mid = K / 2;
  const size_t fs = (size_t)s->traj_n * s->dim;
  add_step(self, keep(self, s->traj), NULL, TRUE, "Start from noise",
           "The reverse chain starts from x<sub>T</sub> ~ N(0, I) in model space (shown mapped to raw space): "
           "%d samples of %d.%s",
           self->n, s->n,
           g_strcmp0(s->strategy, "cgauss") == 0
             ? " For cgauss the first draw is already projected onto A x = √ᾱ<sub>T</sub> b."
             : "");
  add_step(self, keep(self, s->traj + (size_t)mid * fs), NULL, TRUE, "Halfway",
           "After %d of %d reverse steps (t = %d). %s", mid, K, s->traj_t[mid], what_each_step);
}

static void
rebuild(ConformNarration *self)
{
  g_array_set_size(self->steps, 0);
  for (int i = 0; i < self->n_frames; i++)
    g_free(self->frames[i]);
  self->n_frames = 0;
  const ConformSampleSet *s = self->set;
  if (!s)
    return;
  self->n = MIN(s->n, CONFORM_NARRATION_POINTS);
  self->dim = s->dim;
  const char *st = s->strategy;
  double v_raw = median_of(s->viol_raw, self->n), v = median_of(s->viol, self->n);
  gboolean vae = g_strcmp0(s->sampler, "vae") == 0;
  if (g_strcmp0(st, "projection") == 0) {
    const float *raw = keep(self, s->raw), *x = keep(self, s->x);
    add_step(self, raw, NULL, TRUE, "1 · Unconstrained samples",
             "The model samples as if there were no constraint: these %d raw samples miss A x = b (the line or "
             "plane) by a median ‖A x − b‖ of %.3g.",
             self->n, v_raw);
    add_step(self, raw, NULL, TRUE, "2 · Residual",
             "For each sample the residual r = A x − b says how far, in the constraint's own units, it is from the "
             "set. Projection needs only r and A.");
    add_step(self, x, raw, TRUE, "3 · Project",
             "x ← x − Aᵀ (A Aᵀ)⁻¹ (A x − b): the closest point of the set, straight along the rows of A (the "
             "arrows are orthogonal to the set).");
    add_step(self, x, NULL, TRUE, "4 · On the set",
             "Every sample now satisfies A x = b to float round-off (median %.2g), but the distribution was not "
             "trained for it: mass off the set was moved, not learned.",
             v);
  } else if (g_strcmp0(st, "cgauss") == 0 && vae) {
    const float *mean = keep(self, s->raw), *x = keep(self, s->x);
    add_step(self, mean, NULL, TRUE, "1 · Decoder means",
             "The VAE decodes each latent to a Gaussian N(μ, diag σ²); its mean μ misses A x = b by a median %.3g.",
             v_raw);
    add_step(self, x, mean, TRUE, "2 · Condition the Gaussian",
             "cgauss conditions that Gaussian exactly on A x = b: the mean moves to μ − Σ Aᵀ (A Σ Aᵀ)⁻¹ (A μ − b) "
             "(variance-weighted, so not orthogonal) and the noise is restricted to the set's null space.");
    add_step(self, x, NULL, TRUE, "3 · Exact samples",
             "Each sample lies on the set (median violation %.2g) and the training likelihood was this conditioned "
             "density, so the model learned the distribution on the set.",
             v);
  } else if (g_strcmp0(st, "mirror") == 0 && s->mirror_ref && s->mirror) {
    const float *gx = NULL, *y = keep(self, s->mirror), *x = keep(self, s->x);
    if (s->n_mirror_ref >= self->n)
      gx = keep(self, s->mirror_ref);
    add_step(self, NULL, NULL, TRUE, "1 · Data on the set",
             "The training data satisfy the constraint (the set may be curved, as the circle of ring). The maps "
             "learn from a distance to the set only.");
    if (gx)
      add_step(self, gx, NULL, FALSE, "2 · Forward map g",
               "g(x) = α x + (1 − α) ∇R(x), the gradient of a convex potential, carries held-out data into mirror "
               "space, where there is no constraint to respect.");
    add_step(self, y, NULL, FALSE, "3 · Diffuse in mirror space",
             "A plain diffusion model trained on g(x) samples these mirror-space points: from noise, with no "
             "constraint handling at all.");
    add_step(self, x, y, TRUE, "4 · Inverse map f",
             "f (trained so that f(g(x) + σε) lands on the set) maps each mirror-space sample back: the arrows go "
             "from y to f(y). Median distance to the set %.3g: approximate, not exact.",
             v);
  } else if (g_strcmp0(st, "dual") == 0) {
    const float *x = keep(self, s->x);
    add_step(self, x, NULL, TRUE, "1 · Primal steps",
             "Every dual.every steps of Adam minimise the Lagrangian L₀ + Σ λᵢ (Lᵢ − bᵢ): the denoising loss plus "
             "each constraint's loss weighted by its multiplier.");
    if (self->has_rec && self->rec.n_dual > 0) {
      GString *t = g_string_new(NULL);
      for (int i = 0; i < self->rec.n_dual; i++)
        g_string_append_printf(t, "%sλ<sub>%d</sub> = %.3g (slack %+.3g)", i ? ", " : "", i, self->rec.lambda[i],
                               self->rec.slack[i]);
      add_step(self, x, NULL, TRUE, "2 · Dual step",
               "Then one projected dual step per constraint: λᵢ ← [λᵢ + η (L̄ᵢ − bᵢ − 2γ λᵢ)]₊ with η = %g, γ = %g. "
               "A positive slack (constraint violated) raises λᵢ. At step %ld: %s.",
               self->has_cfg ? self->cfg.dual_lr : NAN, self->has_cfg ? self->cfg.dual_gamma : NAN, self->rec.step,
               t->str);
      g_string_free(t, TRUE);
    }
    add_step(self, x, NULL, TRUE, "3 · Samples",
             "Sampling is the plain reverse chain: the constraints acted through training only, so they hold on "
             "average (shares, expected violation), not per sample.");
  } else {
    const char *each = g_strcmp0(st, "projected-sampling") == 0
                         ? "After every reverse step the samples are projected onto A x = b, so every frame lies on "
                           "the set."
                       : g_strcmp0(st, "cgauss") == 0
                         ? "Each reverse step draws from N(μ, σ²I) conditioned on A x = √ᾱ<sub>t</sub> b: the mean "
                           "is projected and the noise restricted to the null space, so every frame stays on its "
                           "scaled set."
                         : "Each reverse step removes predicted noise; nothing pulls the samples onto the set.";
    chain_steps(self, each);
    add_step(self, keep(self, s->x), NULL, TRUE, "Samples",
             "The final samples: median violation %.3g over these %d (%s).", v, self->n, st);
  }
}

static void
apply_step(ConformNarration *self)
{
  ConformScatter *sc = CONFORM_SCATTER(self->scatter);
  int n = (int)self->steps->len;
  if (n == 0) {
    conform_scatter_set_points(sc, NULL, 0, 2);
    conform_scatter_set_raw_points(sc, NULL, 0, 2);
    conform_scatter_set_constraint(sc, NULL, NULL, 0, 2);
    gtk_label_set_text(GTK_LABEL(self->counter), "");
    gtk_label_set_text(GTK_LABEL(self->title), "No samples yet");
    gtk_label_set_text(GTK_LABEL(self->text), "Train or press Sample now: the slow motion replays the latest samples.");
    gtk_widget_set_sensitive(self->back, FALSE);
    gtk_widget_set_sensitive(self->next, FALSE);
    return;
  }
  self->at = CLAMP(self->at, 0, n - 1);
  const Step *s = &g_array_index(self->steps, Step, self->at);
  conform_scatter_set_points(sc, s->pts, s->pts ? self->n : 0, self->dim);
  conform_scatter_set_raw_points(sc, s->from, s->from ? self->n : 0, self->dim);
  if (s->constraint)
    conform_scatter_set_constraint(sc, self->c.A, self->c.b, self->c.m, self->dim);
  else
    conform_scatter_set_constraint(sc, NULL, NULL, 0, self->dim);
  g_autofree char *cnt = g_strdup_printf("%d / %d", self->at + 1, n);
  gtk_label_set_text(GTK_LABEL(self->counter), cnt);
  gtk_label_set_text(GTK_LABEL(self->title), s->title);
  gtk_label_set_markup(GTK_LABEL(self->text), s->text);
  g_autofree char *cap = g_strdup_printf("%s · step %ld · %d samples", self->set->strategy, self->set->step, self->n);
  conform_scatter_set_caption(sc, cap);
  gtk_widget_set_sensitive(self->back, self->at > 0);
  gtk_widget_set_sensitive(self->next, self->at < n - 1);
}

/* Axes fixed over all sub-steps: fitted to every array they show. */
static void
fix_range(ConformNarration *self)
{
  int k = 0;
  float *all = g_new(float, (gsize)self->n * self->dim * MAX(self->n_frames, 1));
  for (int i = 0; i < self->n_frames; i++, k++)
    memcpy(all + (gsize)k * self->n * self->dim, self->frames[i], sizeof(float) * self->n * self->dim);
  conform_scatter_set_range_points(CONFORM_SCATTER(self->scatter), all, k * self->n, self->dim);
  g_free(all);
}

void
conform_narration_set_samples(ConformNarration *self, ConformSampleSet *s, const CfConstraint *c,
                              const ConformConfig *cfg)
{
  g_return_if_fail(CONFORM_IS_NARRATION(self));
  gboolean same = s && self->strategy && g_strcmp0(s->strategy, self->strategy) == 0;
  if (s)
    conform_sample_set_ref(s);
  if (self->set)
    conform_sample_set_unref(self->set);
  self->set = s;
  g_free(self->strategy);
  self->strategy = s ? g_strdup(s->strategy) : NULL;
  cf_constraint_clear(&self->c);
  cf_constraint_init(&self->c);
  if (c && c->m > 0)
    (void)cf_constraint_copy(&self->c, c, NULL);
  if (self->has_cfg)
    conform_config_clear(&self->cfg);
  self->has_cfg = cfg != NULL;
  if (cfg)
    conform_config_copy(&self->cfg, cfg);
  rebuild(self);
  if (!same)
    self->at = 0;
  if (self->steps->len > 0)
    fix_range(self);
  apply_step(self);
}

void
conform_narration_set_record(ConformNarration *self, const ConformTrainRecord *r)
{
  g_return_if_fail(CONFORM_IS_NARRATION(self));
  self->has_rec = r != NULL;
  if (r)
    self->rec = *r;
}

int conform_narration_get_n_steps(ConformNarration *self) { return (int)self->steps->len; }
int conform_narration_get_step(ConformNarration *self) { return self->at; }
GtkWidget *conform_narration_get_scatter(ConformNarration *self) { return self->scatter; }

void
conform_narration_set_step(ConformNarration *self, int k)
{
  g_return_if_fail(CONFORM_IS_NARRATION(self));
  self->at = k;
  apply_step(self);
}

const char *
conform_narration_get_text(ConformNarration *self)
{
  return self->steps->len ? g_array_index(self->steps, Step, self->at).text : "";
}

const char *
conform_narration_get_title(ConformNarration *self)
{
  return self->steps->len ? g_array_index(self->steps, Step, self->at).title : "";
}

static void
back_cb(GtkButton *b, ConformNarration *self)
{
  conform_narration_set_step(self, self->at - 1);
}

static void
next_cb(GtkButton *b, ConformNarration *self)
{
  conform_narration_set_step(self, self->at + 1);
}

static void
conform_narration_dispose(GObject *object)
{
  ConformNarration *self = CONFORM_NARRATION(object);
  g_clear_pointer(&self->box, gtk_widget_unparent);
  G_OBJECT_CLASS(conform_narration_parent_class)->dispose(object);
}

static void
conform_narration_finalize(GObject *object)
{
  ConformNarration *self = CONFORM_NARRATION(object);
  if (self->set)
    conform_sample_set_unref(self->set);
  for (int i = 0; i < self->n_frames; i++)
    g_free(self->frames[i]);
  g_array_unref(self->steps);
  cf_constraint_clear(&self->c);
  if (self->has_cfg)
    conform_config_clear(&self->cfg);
  g_free(self->strategy);
  G_OBJECT_CLASS(conform_narration_parent_class)->finalize(object);
}

static void
conform_narration_class_init(ConformNarrationClass *klass)
{
  G_OBJECT_CLASS(klass)->dispose = conform_narration_dispose;
  G_OBJECT_CLASS(klass)->finalize = conform_narration_finalize;
  gtk_widget_class_set_layout_manager_type(GTK_WIDGET_CLASS(klass), GTK_TYPE_BIN_LAYOUT);
}

static void
conform_narration_init(ConformNarration *self)
{
  self->steps = g_array_new(FALSE, TRUE, sizeof(Step));
  g_array_set_clear_func(self->steps, step_clear);
  cf_constraint_init(&self->c);
  self->box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_parent(self->box, GTK_WIDGET(self));
  GtkWidget *bar = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  self->back = gtk_button_new_from_icon_name("go-previous-symbolic");
  gtk_widget_set_tooltip_text(self->back, "Previous sub-step");
  self->next = gtk_button_new_from_icon_name("go-next-symbolic");
  gtk_widget_set_tooltip_text(self->next, "Next sub-step");
  self->counter = gtk_label_new("");
  self->title = gtk_label_new("");
  gtk_widget_add_css_class(self->title, "heading");
  gtk_label_set_xalign(GTK_LABEL(self->title), 0);
  g_signal_connect(self->back, "clicked", G_CALLBACK(back_cb), self);
  g_signal_connect(self->next, "clicked", G_CALLBACK(next_cb), self);
  gtk_box_append(GTK_BOX(bar), self->back);
  gtk_box_append(GTK_BOX(bar), self->counter);
  gtk_box_append(GTK_BOX(bar), self->next);
  gtk_box_append(GTK_BOX(bar), self->title);
  gtk_box_append(GTK_BOX(self->box), bar);
  self->text = gtk_label_new("");
  gtk_label_set_wrap(GTK_LABEL(self->text), TRUE);
  gtk_label_set_xalign(GTK_LABEL(self->text), 0);
  gtk_label_set_max_width_chars(GTK_LABEL(self->text), 110);
  gtk_box_append(GTK_BOX(self->box), self->text);
  self->scatter = conform_scatter_new();
  gtk_widget_set_vexpand(self->scatter, TRUE);
  gtk_widget_set_hexpand(self->scatter, TRUE);
  conform_scatter_set_show_arrows(CONFORM_SCATTER(self->scatter), TRUE);
  gtk_box_append(GTK_BOX(self->box), self->scatter);
  apply_step(self);
}

GtkWidget *
conform_narration_new(void)
{
  return g_object_new(CONFORM_TYPE_NARRATION, NULL);
}
