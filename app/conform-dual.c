#define G_LOG_DOMAIN "conform"

#include "conform-dual.h"

#include "dual.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static gboolean
parse_class(const char *s, const char *key, const char *item, int *out, GError **error)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (s[0] == '\0' || *end != '\0' || errno || v < 0 || v >= CONFORM_MAX_CLASSES) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s: '%s' is not a class number 0-%d", key, item,
                CONFORM_MAX_CLASSES - 1);
    return FALSE;
  }
  *out = (int)v;
  return TRUE;
}

gboolean
conform_class_list_parse(const char *text, const char *key, guint *mask, GError **error)
{
  *mask = 0;
  if (!text)
    return TRUE;
  g_auto(GStrv) items = g_strsplit(text, ",", -1);
  for (int i = 0; items[i]; i++) {
    char *it = g_strstrip(items[i]);
    if (it[0] == '\0') {
      if (items[1] == NULL)
        break; /* "" */
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s: empty item %d in '%s'", key, i + 1, text);
      return FALSE;
    }
    char *dash = strchr(it + 1, '-');
    int lo, hi;
    if (dash) {
      *dash = '\0';
      if (!parse_class(g_strstrip(it), key, it, &lo, error) || !parse_class(g_strstrip(dash + 1), key, dash + 1, &hi, error))
        return FALSE;
      if (hi < lo) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "%s: range %d-%d runs backwards", key, lo, hi);
        return FALSE;
      }
    } else if (!parse_class(it, key, it, &lo, error)) {
      return FALSE;
    } else {
      hi = lo;
    }
    for (int c = lo; c <= hi; c++)
      *mask |= 1u << c;
  }
  return TRUE;
}

gboolean
conform_dual_parse(const ConformConfig *cfg, ConformDualConstraint *out, int *n, GError **error)
{
  *n = 0;
  const char *spec = cfg->dual_constraints && cfg->dual_constraints[0] ? cfg->dual_constraints : "violation";
  g_auto(GStrv) items = g_strsplit(spec, ",", -1);
  for (int i = 0; items[i]; i++) {
    char *it = g_strstrip(items[i]);
    if (*n == CONFORM_DUAL_MAX) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "dual.constraints: at most %d constraints",
                  CONFORM_DUAL_MAX);
      return FALSE;
    }
    ConformDualConstraint *d = &out[*n];
    memset(d, 0, sizeof *d);
    d->cls = -1;
    if (g_str_has_prefix(it, "class:")) {
      d->kind = CONFORM_DUAL_CLASS;
      if (!parse_class(it + 6, "dual.constraints", it, &d->cls, error))
        return FALSE;
      for (int j = 0; j < *n; j++)
        if (out[j].kind == CONFORM_DUAL_CLASS && out[j].cls == d->cls) {
          g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "dual.constraints: class %d is listed twice",
                      d->cls);
          return FALSE;
        }
      g_snprintf(d->name, sizeof d->name, "class %d", d->cls);
    } else if (strcmp(it, "teacher") == 0 || strcmp(it, "violation") == 0) {
      d->kind = it[0] == 't' ? CONFORM_DUAL_TEACHER : CONFORM_DUAL_VIOLATION;
      for (int j = 0; j < *n; j++)
        if (out[j].kind == d->kind) {
          g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "dual.constraints: '%s' is listed twice", it);
          return FALSE;
        }
      g_strlcpy(d->name, it, sizeof d->name);
    } else {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                  "dual.constraints: unknown constraint '%s' (item %d; use class:K, teacher or violation)", it, i + 1);
      return FALSE;
    }
    (*n)++;
  }
  /* thresholds: one for all or one each */
  g_auto(GStrv) th = g_strsplit(cfg->dual_thresholds ? cfg->dual_thresholds : "0", ",", -1);
  int nt = (int)g_strv_length(th);
  if (nt != 1 && nt != *n) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                "dual.thresholds: %d values for %d constraints (give one for all, or one each)", nt, *n);
    return FALSE;
  }
  for (int i = 0; i < *n; i++) {
    const char *t = g_strstrip(th[nt == 1 ? 0 : i]);
    char *end;
    double v = g_ascii_strtod(t, &end);
    if (t[0] == '\0' || *end != '\0' || !isfinite(v) || v < 0) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE,
                  "dual.thresholds: '%s' (for %s) is not a number >= 0", t, out[i].name);
      return FALSE;
    }
    out[i].threshold = v;
  }
  return TRUE;
}

/* Predicted shares from the multipliers of constraints dc; FALSE without a
 * class constraint (then nothing moves mass between classes). */
static gboolean
predict_shares(const ConformDualConstraint *dc, int n, const double *lambda, const double *pi, int K, double *out)
{
  int cls[CONFORM_DUAL_MAX];
  gboolean any = FALSE;
  for (int i = 0; i < n; i++) {
    cls[i] = dc[i].kind == CONFORM_DUAL_CLASS ? dc[i].cls : -1;
    any |= cls[i] >= 0;
  }
  if (any)
    cf_dual_predicted_shares(pi, K, cls, lambda, n, out);
  return any;
}

gboolean
conform_dual_predicted_shares(const ConformConfig *cfg, const ConformTrainRecord *r, const double *pi, int K,
                              double *out)
{
  ConformDualConstraint dc[CONFORM_DUAL_MAX];
  int n;
  if (g_strcmp0(cfg->strategy, "dual") != 0 || !r || r->n_dual < 1 || K < 1 || !conform_dual_parse(cfg, dc, &n, NULL) ||
      n != r->n_dual)
    return FALSE;
  double lam[CONFORM_DUAL_MAX];
  for (int i = 0; i < n; i++)
    lam[i] = r->lambda[i];
  return predict_shares(dc, n, lam, pi, K, out);
}

/* ---- the engine's part ------------------------------------------------------ */

#include "conform-engine-private.h"
#include "conform-image-data.h"

/* Keeps the rows of d whose label is in `keep` (and, with thin_mask, only
 * a fraction `keep_frac` of the thinned classes' rows: row i of a thinned
 * class survives when a uniform draw is below keep_frac). */
static gboolean
filter_rows(CfDataset *d, guint keep, guint thin_mask, double keep_frac, CfRng *rng, GError **error)
{
  int n = 0;
  for (int i = 0; i < d->n; i++) {
    int y = d->labels[i];
    gboolean ok = y >= 0 && y < CONFORM_MAX_CLASSES && (keep & (1u << y));
    if (ok && (thin_mask & (1u << y)))
      ok = cf_rng_uniform(rng) < keep_frac;
    if (!ok)
      continue;
    if (n != i) {
      memmove(d->x + (gsize)n * d->dim, d->x + (gsize)i * d->dim, sizeof(float) * d->dim);
      d->labels[n] = y;
    }
    n++;
  }
  if (n < 2) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                "data.classes / data.thin_classes leave %d row%s of %d: nothing to train on", n, n == 1 ? "" : "s",
                d->n);
    return FALSE;
  }
  d->n = n;
  return TRUE;
}

gboolean
engine_classes_apply(ConformEngine *e, GError **error)
{
  const ConformConfig *cfg = &e->cfg;
  guint keep, thin;
  if (!conform_class_list_parse(cfg->classes, "data.classes", &keep, error) ||
      !conform_class_list_parse(cfg->thin_classes, "data.thin_classes", &thin, error))
    return FALSE;
  CfDataset *tr = &e->train;
  if (!tr->labels) {
    if (keep || thin || (e->dual_on && cfg->dual_constraints && strstr(cfg->dual_constraints, "class:"))) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                  "data '%s' has no class labels: data.classes, data.thin_classes and dual class constraints need "
                  "labelled data (gaussians, Fashion-MNIST)",
                  cfg->data);
      return FALSE;
    }
    return TRUE;
  }
  e->n_classes = MIN(tr->n_classes, CONFORM_MAX_CLASSES);
  guint all = (1u << e->n_classes) - 1;
  if (keep & ~all) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "data.classes '%s': the data have classes 0-%d", cfg->classes,
                e->n_classes - 1);
    return FALSE;
  }
  if (thin & ~all) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_USAGE, "data.thin_classes '%s': the data have classes 0-%d",
                cfg->thin_classes, e->n_classes - 1);
    return FALSE;
  }
  if (!keep)
    keep = all;
  if (!conform_image_source_is(cfg->data)) {
    /* raw-space centroids of every class, before filtering: samples of a
     * class a run does not train on (e.g. the teacher's classes when
     * fine-tuning) are still recognised */
    const int dim = tr->dim, K = e->n_classes;
    int cnt[CONFORM_MAX_CLASSES] = {0};
    e->class_centroid = g_new0(float, (gsize)K * dim);
    double *acc = g_new0(double, (gsize)K * dim);
    for (int i = 0; i < tr->n; i++) {
      int y = tr->labels[i];
      if (y < 0 || y >= K)
        continue;
      cnt[y]++;
      for (int j = 0; j < dim; j++)
        acc[(gsize)y * dim + j] += tr->x[(gsize)i * dim + j];
    }
    for (int c = 0; c < K; c++)
      for (int j = 0; j < dim; j++)
        e->class_centroid[(gsize)c * dim + j] = cnt[c] ? (float)(acc[(gsize)c * dim + j] / cnt[c]) : NAN;
    g_free(acc);
  }
  CfRng rng;
  cf_rng_seed_stream(&rng, cfg->seed, STREAM_DATA + 100);
  if (!filter_rows(tr, keep, thin, cfg->thin_keep, &rng, error))
    return FALSE;
  /* the reference keeps every kept class at its natural (balanced) share */
  if (e->ref.labels && !filter_rows(&e->ref, keep, 0, 1.0, &rng, error))
    return FALSE;
  e->class_mask = keep;
  int count[CONFORM_MAX_CLASSES] = {0};
  for (int i = 0; i < tr->n; i++)
    count[tr->labels[i]]++;
  for (int c = 0; c < e->n_classes; c++)
    e->class_pi[c] = (double)count[c] / tr->n;
  return TRUE;
}

/* The model-space violation constraint on the generated columns: A (the
 * outputs' block, kept rows) and b. */
static CfStatus
violation_constraint(const ConstraintSet *cs, CfConstraint *out, CfError *err)
{
  const CfCgauss *g = &cs->out_model;
  cf_constraint_init(out);
  if (g->m != cs->model.m)
    return cf_error_set(err, CF_ERR_RANK,
                        "dual violation constraint: the outputs' block B has dependent rows (%d of %d independent)",
                        g->m, cs->model.m);
  return cf_constraint_set(out, g->m, g->n, g->A, cs->model.b, err);
}

static gboolean
has_kind(const ConformEngine *e, ConformDualKind kind)
{
  for (int i = 0; i < e->n_dual; i++)
    if (e->dual_c[i].kind == kind)
      return TRUE;
  return FALSE;
}

CfStatus
engine_dual_constraint(ConformEngine *e, const ConstraintSet *cs, CfError *err)
{
  if (!e->dual_on || !has_kind(e, CONFORM_DUAL_VIOLATION) || !e->params)
    return CF_OK;
  if (cs->model.m == 0)
    return cf_error_set(err, CF_ERR_INVALID,
                        "dual training has a violation constraint: it needs a constraint (Reset with other "
                        "dual.constraints to drop it)");
  CfConstraint v;
  CfStatus st = violation_constraint(cs, &v, err);
  if (st == CF_OK)
    st = cf_ddpm_set_violation(&e->model, &v, err);
  if (st == CF_OK)
    st = cf_ddpm_prepare_train(&e->model, e->batch_total, err);
  cf_constraint_clear(&v);
  if (st == CF_OK) {
    g_free(e->kbuf);
    e->kbuf = g_new(float, (gsize)e->batch_total * cs->model.m);
  }
  return st;
}

gboolean
engine_dual_setup(ConformEngine *e, GError **error)
{
  const ConformConfig *cfg = &e->cfg;
  if (!e->dual_on)
    return TRUE;
  if (!conform_dual_parse(cfg, e->dual_c, &e->n_dual, error))
    return FALSE;
  CfError err;
  double thr[CONFORM_DUAL_MAX];
  int n_rows_extra = 0;
  e->dual_bc = MAX(1, (int)lround(cfg->batch / cfg->dual_batch_ratio));
  for (int i = 0; i < e->n_dual; i++) {
    ConformDualConstraint *d = &e->dual_c[i];
    thr[i] = d->threshold;
    if (d->kind == CONFORM_DUAL_CLASS) {
      if (!e->train.labels || d->cls >= e->n_classes) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                    "dual.constraints: class %d does not exist in data '%s' (%d classes)", d->cls, cfg->data,
                    e->n_classes);
        return FALSE;
      }
      int n = 0;
      for (int r = 0; r < e->train.n; r++)
        n += e->train.labels[r] == d->cls;
      if (n == 0) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                    "dual.constraints: class %d has no training rows (check data.classes)", d->cls);
        return FALSE;
      }
      e->dual_rows[i] = g_new(int, n);
      e->dual_nrows[i] = 0;
      for (int r = 0; r < e->train.n; r++)
        if (e->train.labels[r] == d->cls)
          e->dual_rows[i][e->dual_nrows[i]++] = r;
      n_rows_extra += e->dual_bc;
    } else if (d->kind == CONFORM_DUAL_TEACHER) {
      /* the frozen teacher: the initial weights (train.init) */
      if (cf_ddpm_eval_init(&e->teacher, &e->model, e->dual_bc, &err) != CF_OK)
        return core_error(error, CONFORM_ERROR_INPUT, &err);
      e->has_teacher = TRUE;
      n_rows_extra += e->dual_bc;
    }
  }
  e->batch_total = cfg->batch + n_rows_extra;
  if (cf_dual_init(&e->dual, e->n_dual, thr, cfg->dual_lr, cfg->dual_gamma, cfg->dual_every, cfg->dual_cap, &err) !=
      CF_OK)
    return core_error(error, CONFORM_ERROR_USAGE, &err);
  e->dual_w = g_new(float, e->batch_total);
  e->dual_wv = g_new(float, e->batch_total);
  e->row_err = g_new(float, e->batch_total);
  e->row_viol = g_new(float, e->batch_total);
  cf_free_aligned(e->batch);
  e->batch = cf_alloc_floats((size_t)e->batch_total * (size_t)e->dim);
  if (e->nx > 0) {
    g_free(e->cond);
    e->cond = g_new(float, (gsize)e->batch_total * e->nx);
  }
  if (!e->batch)
    return g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "out of memory for the dual batch"), FALSE;
  if (has_kind(e, CONFORM_DUAL_VIOLATION)) {
    if (engine_dual_constraint(e, &e->cs, &err) != CF_OK)
      return core_error(error, CONFORM_ERROR_INPUT, &err);
  } else if (cf_ddpm_prepare_train(&e->model, e->batch_total, &err) != CF_OK) {
    return core_error(error, CONFORM_ERROR_INPUT, &err);
  }
  return TRUE;
}

void
engine_dual_clear(ConformEngine *e)
{
  for (int i = 0; i < CONFORM_DUAL_MAX; i++)
    g_clear_pointer(&e->dual_rows[i], g_free);
  cf_dual_clear(&e->dual);
  if (e->has_teacher)
    cf_ddpm_eval_clear(&e->teacher);
  e->has_teacher = FALSE;
  g_clear_pointer(&e->dual_w, g_free);
  g_clear_pointer(&e->dual_wv, g_free);
  g_clear_pointer(&e->row_err, g_free);
  g_clear_pointer(&e->row_viol, g_free);
  g_clear_pointer(&e->dual_warning, g_free);
  g_clear_pointer(&e->class_centroid, g_free);
}

static void
copy_row(ConformEngine *e, int dst, int src)
{
  const float *row = e->train.x + (gsize)src * e->dim;
  memcpy(e->batch + (gsize)dst * e->ny, row + e->nx, sizeof(float) * e->ny);
  if (e->nx > 0)
    memcpy(e->cond + (gsize)dst * e->nx, row, sizeof(float) * e->nx);
}

float
engine_dual_step(ConformEngine *e)
{
  const int B = e->cfg.batch, bc = e->dual_bc, BT = e->batch_total;
  int n_class = 0;
  for (int i = 0; i < e->n_dual; i++)
    n_class += e->dual_c[i].kind == CONFORM_DUAL_CLASS;
  /* rows: main [0, B) (already filled), class constraints, then teacher rows;
   * weights: main rows 1/B (their mean loss), a constraint's rows lambda_i / bc
   * (violation: lambda_i / B on the main rows' violation terms) */
  const int n_data = B + n_class * bc;
  int off[CONFORM_DUAL_MAX]; /* first row of each class or teacher constraint */
  int next_class = B, next_teacher = n_data;
  for (int r = 0; r < BT; r++) {
    e->dual_w[r] = r < B ? 1.0f / B : 0.0f;
    e->dual_wv[r] = 0.0f;
  }
  for (int i = 0; i < e->n_dual; i++) {
    const ConformDualConstraint *d = &e->dual_c[i];
    const float lam = (float)e->dual.lambda[i];
    if (d->kind == CONFORM_DUAL_VIOLATION) {
      off[i] = 0;
      for (int r = 0; r < B; r++)
        e->dual_wv[r] = lam / B;
      continue;
    }
    off[i] = d->kind == CONFORM_DUAL_CLASS ? next_class : next_teacher;
    for (int k = 0; k < bc; k++) {
      const int row = off[i] + k;
      if (d->kind == CONFORM_DUAL_CLASS)
        copy_row(e, row, e->dual_rows[i][cf_rng_below(&e->rng_train, (uint64_t)e->dual_nrows[i])]);
      else if (e->nx > 0) /* teacher rows: inputs of random data rows */
        copy_row(e, row, (int)cf_rng_below(&e->rng_train, (uint64_t)e->train.n));
      e->dual_w[row] = lam / bc;
    }
    if (d->kind == CONFORM_DUAL_CLASS)
      next_class += bc;
    else
      next_teacher += bc;
  }
  gboolean viol = has_kind(e, CONFORM_DUAL_VIOLATION);
  if (viol && e->nx > 0)
    cset_out_k(&e->cs, TRUE, e->cond, e->nx, BT, e->kbuf);
  CfDdpmTerms t = {
      .x0 = e->batch,
      .cond = e->nx > 0 ? e->cond : NULL,
      .n_data = n_data,
      .teacher = e->has_teacher ? cf_ddpm_eval_eps : NULL,
      .teacher_user = e->has_teacher ? &e->teacher : NULL,
      .w = e->dual_w,
      .w_viol = viol ? e->dual_wv : NULL,
      .k = viol && e->nx > 0 ? e->kbuf : NULL,
  };
  if (e->has_teacher)
    e->teacher.cond = e->nx > 0 ? e->cond + (gsize)n_data * e->nx : NULL;
  cf_ddpm_accumulate(&e->model, &t, &e->rng_train, TRUE, e->row_err, e->row_viol);
  /* group means: the main loss and each constraint's loss */
  double main = 0, L[CONFORM_DUAL_MAX];
  for (int r = 0; r < B; r++)
    main += e->row_err[r];
  for (int i = 0; i < e->n_dual; i++) {
    const gboolean v = e->dual_c[i].kind == CONFORM_DUAL_VIOLATION;
    const float *rows = (v ? e->row_viol : e->row_err) + off[i];
    const int n = v ? B : bc;
    double s = 0;
    for (int k = 0; k < n; k++)
      s += rows[k];
    L[i] = s / n;
  }
  const float loss = (float)(main / B);
  bool stepped = false;
  if (!isfinite(loss) || cf_dual_observe(&e->dual, L, &stepped, NULL) != CF_OK)
    return NAN; /* the caller restores the last good state */
  if (stepped && !e->dual_warning)
    for (int i = 0; i < e->n_dual; i++)
      if (cf_dual_capped(&e->dual, i, 20)) {
        e->dual_warning = g_strdup_printf(
            "dual: the multiplier of %s sits at its cap %g: its threshold %g looks unreachable (loss %.4g); it "
            "stays capped, raise dual.thresholds or use dual.gamma > 0",
            e->dual_c[i].name, e->dual.cap, e->dual_c[i].threshold, e->dual.last_mean[i]);
        break;
      }
  return loss;
}

void
engine_dual_fill_record(const ConformEngine *e, ConformTrainRecord *r)
{
  r->n_dual = e->dual_on ? e->n_dual : 0;
  for (int i = 0; i < r->n_dual; i++) {
    r->lambda[i] = (float)e->dual.lambda[i];
    r->slack[i] = (float)cf_dual_slack(&e->dual, i);
    r->closs[i] = (float)e->dual.last_mean[i];
  }
}

void
class_metrics(int n_classes, guint mask, const double *pi, const float *centroid, const float *x, int n, int dim,
              ConformSummary *s)
{
  s->n_classes = n_classes;
  s->class_tv_target = NAN;
  if (n_classes < 1 || n < 1)
    return;
  if (centroid) {
    double count[CONFORM_MAX_CLASSES] = {0};
    for (int i = 0; i < n; i++) {
      int best = -1;
      double bd = INFINITY;
      for (int c = 0; c < n_classes; c++) {
        if (isnan(centroid[(gsize)c * dim]))
          continue; /* no rows of this class at all */
        double d = 0;
        for (int j = 0; j < dim; j++) {
          double u = x[(gsize)i * dim + j] - centroid[(gsize)c * dim + j];
          d += u * u;
        }
        if (d < bd) {
          bd = d;
          best = c;
        }
      }
      if (best >= 0)
        count[best] += 1.0;
    }
    for (int c = 0; c < CONFORM_MAX_CLASSES; c++) {
      s->class_share[c] = c < n_classes ? count[c] / n : 0.0;
      s->train_share[c] = c < n_classes ? pi[c] : 0.0;
    }
    s->has_classes = TRUE;
  }
  if (!s->has_classes)
    return;
  double target[CONFORM_MAX_CLASSES] = {0};
  int kept = 0;
  for (int c = 0; c < n_classes; c++)
    kept += (mask >> c) & 1u;
  for (int c = 0; c < n_classes; c++)
    target[c] = (mask & (1u << c)) ? 1.0 / MAX(kept, 1) : 0.0;
  s->class_tv_target = cf_tv_distance(s->class_share, target, n_classes);
}

const char *
conform_engine_dual_warning(const ConformEngine *e)
{
  return e->dual_warning;
}

gboolean
engine_dual_predicted_shares(const ConformEngine *e, double *out)
{
  return e->dual_on && e->n_classes > 0 &&
         predict_shares(e->dual_c, e->n_dual, e->dual.lambda, e->class_pi, e->n_classes, out);
}
