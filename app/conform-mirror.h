/* Non-linear constraints (constraint.equations) and strategy mirror: neural
 * approximate mirror maps (core/namm.h) learned first, then the diffusion
 * model trained on the mirror-space data g(x) and sampled through the
 * inverse map f. */
#pragma once

#include <glib.h>

#include "expr.h"

G_BEGIN_DECLS

/* Parses constraint.equations text (one equation per line or separated by
 * ';'; a ';' counts as a line break in error positions) for data of `dim`
 * raw coordinates. USAGE errors read "constraint.equations: line:col: ...". */
gboolean conform_equations_parse(const char *text, int dim, CfExprSet *s, GError **error);

G_END_DECLS
