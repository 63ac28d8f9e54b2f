/* Helpers shared by constraint.c and constraint_parse.c (not public API). */
#ifndef CF_CONSTRAINT_PRIVATE_H
#define CF_CONSTRAINT_PRIVATE_H

#include "constraint.h"

/* Replaces the contents of c with already allocated A and b (takes them). */
void cf_constraint_take_(CfConstraint *c, int m, int n, double *A, double *b);
/* Size limits and finiteness, with messages. */
CfStatus cf_constraint_check_sizes_(int m, int n, CfError *err);
CfStatus cf_constraint_check_finite_(int m, int n, const double *A, const double *b, CfError *err);

#endif
