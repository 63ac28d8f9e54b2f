/* Primal-dual multipliers: projected (resilient) dual ascent. See dual.h. */
#include "dual.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

CfStatus
cf_dual_init(CfDual *d, int m, const double *threshold, double eta, double gamma, int every, double cap,
             CfError *err)
{
  CF_ASSERT(d != NULL);
  memset(d, 0, sizeof *d);
  if (m < 1 || m > CF_DUAL_MAX_CONSTRAINTS)
    return cf_error_set(err, CF_ERR_INVALID, "dual training: %d constraints (need 1 to %d)", m,
                        CF_DUAL_MAX_CONSTRAINTS);
  if (!(eta > 0.0) || !isfinite(eta))
    return cf_error_set(err, CF_ERR_INVALID, "dual training: the dual learning rate must be > 0 (got %g)", eta);
  if (!(gamma >= 0.0) || !isfinite(gamma))
    return cf_error_set(err, CF_ERR_INVALID, "dual training: gamma (resilience) must be >= 0 (got %g)", gamma);
  if (every < 1)
    return cf_error_set(err, CF_ERR_INVALID, "dual training: primal steps per dual step must be >= 1 (got %d)",
                        every);
  if (!(cap > 0.0) || !isfinite(cap))
    return cf_error_set(err, CF_ERR_INVALID, "dual training: the multiplier cap must be > 0 (got %g)", cap);
  for (int i = 0; i < m; i++)
    if (!(threshold[i] >= 0.0) || !isfinite(threshold[i]))
      return cf_error_set(err, CF_ERR_INVALID, "dual training: threshold %d must be finite and >= 0 (got %g)",
                          i + 1, threshold[i]);
  d->threshold = cf_alloc_array((size_t)m, sizeof(double));
  d->lambda = cf_calloc_array((size_t)m, sizeof(double));
  d->last_mean = cf_alloc_array((size_t)m, sizeof(double));
  d->acc = cf_calloc_array((size_t)m, sizeof(double));
  d->at_cap = cf_calloc_array((size_t)m, sizeof(int));
  if (!d->threshold || !d->lambda || !d->last_mean || !d->acc || !d->at_cap) {
    cf_dual_clear(d);
    return cf_error_set(err, CF_ERR_NOMEM, "dual training: out of memory");
  }
  d->m = m;
  d->eta = eta;
  d->gamma = gamma;
  d->every = every;
  d->cap = cap;
  memcpy(d->threshold, threshold, sizeof(double) * (size_t)m);
  cf_dual_reset(d);
  return CF_OK;
}

void
cf_dual_clear(CfDual *d)
{
  if (!d)
    return;
  free(d->threshold);
  free(d->lambda);
  free(d->last_mean);
  free(d->acc);
  free(d->at_cap);
  memset(d, 0, sizeof *d);
}

void
cf_dual_reset(CfDual *d)
{
  CF_ASSERT(d != NULL);
  for (int i = 0; i < d->m; i++) {
    d->lambda[i] = 0.0;
    d->last_mean[i] = NAN;
    d->acc[i] = 0.0;
    d->at_cap[i] = 0;
  }
  d->acc_n = 0;
  d->dual_steps = 0;
}

CfStatus
cf_dual_observe(CfDual *d, const double *loss, bool *stepped, CfError *err)
{
  CF_ASSERT(d != NULL && d->m > 0 && loss != NULL);
  if (stepped)
    *stepped = false;
  for (int i = 0; i < d->m; i++)
    if (!isfinite(loss[i]))
      return cf_error_set(err, CF_ERR_NUMERIC, "dual training: constraint %d's loss is %g", i + 1, loss[i]);
  for (int i = 0; i < d->m; i++)
    d->acc[i] += loss[i];
  if (++d->acc_n < d->every)
    return CF_OK;
  for (int i = 0; i < d->m; i++) {
    const double mean = d->acc[i] / d->acc_n;
    /* projected ascent on the (resilient) dual function */
    double l = d->lambda[i] + d->eta * (mean - d->threshold[i] - 2.0 * d->gamma * d->lambda[i]);
    l = l < 0.0 ? 0.0 : l;
    if (l >= d->cap) {
      l = d->cap;
      d->at_cap[i]++;
    } else {
      d->at_cap[i] = 0;
    }
    d->lambda[i] = l;
    d->last_mean[i] = mean;
    d->acc[i] = 0.0;
  }
  d->acc_n = 0;
  d->dual_steps++;
  if (stepped)
    *stepped = true;
  return CF_OK;
}

double
cf_dual_slack(const CfDual *d, int i)
{
  CF_ASSERT(d != NULL && i >= 0 && i < d->m);
  return d->last_mean[i] - d->threshold[i];
}

bool
cf_dual_capped(const CfDual *d, int i, int steps)
{
  CF_ASSERT(d != NULL && i >= 0 && i < d->m);
  return d->at_cap[i] >= (steps < 1 ? 1 : steps);
}

void
cf_dual_predicted_shares(const double *pi, int K, const int *cls, const double *lambda, int m, double *share)
{
  CF_ASSERT(pi != NULL && share != NULL && K >= 1 && (m == 0 || (cls != NULL && lambda != NULL)));
  double denom = 1.0;
  for (int k = 0; k < K; k++)
    share[k] = pi[k];
  for (int i = 0; i < m; i++)
    if (cls[i] >= 0 && cls[i] < K) {
      share[cls[i]] += lambda[i];
      denom += lambda[i];
    }
  for (int k = 0; k < K; k++)
    share[k] /= denom;
}

double
cf_tv_distance(const double *p, const double *q, int K)
{
  double s = 0.0;
  for (int k = 0; k < K; k++)
    s += fabs(p[k] - q[k]);
  return 0.5 * s;
}
