/* Vector data sets: built-in generators, CSV loading, normalisation. */
#ifndef CF_DATA_H
#define CF_DATA_H

#include <stdbool.h>
#include <stddef.h>

#include "constraint.h"
#include "rng.h"
#include "status.h"

#define CF_DATA_MAX_DIM 65536
#define CF_DATA_MAX_ROWS 50000000

typedef struct {
  int n, dim;
  float *x;      /* n x dim row-major, 64-byte aligned (cf_alloc_floats) */
  int *labels;   /* n, or NULL (e.g. mixture component) */
  int n_classes; /* 0 when unlabelled */
} CfDataset;

void cf_dataset_init(CfDataset *d);
void cf_dataset_clear(CfDataset *d);
CfStatus cf_dataset_alloc(CfDataset *d, int n, int dim, bool labels, CfError *err);

/* Built-in generators. */
typedef struct {
  const char *name;
  int dim;
  const char *description;
  bool constrained; /* true: cf_data_builtin_constraint gives the A x = b every sample satisfies */
  int inputs;       /* leading columns that are inputs x of a process (the rest are outputs y) */
} CfGeneratorInfo;

/* Table of generators, terminated by {NULL}. Names: gaussians, moons,
 * checkerboard, spiral, simplex-3d, charge-neutral, flow-network, portfolio,
 * cstr, plant (process units: rows [x | y] with A_x x + B y = 0). */
const CfGeneratorInfo *cf_data_generators(void);
const CfGeneratorInfo *cf_data_generator_find(const char *name);
/* n samples from generator `name`, deterministic in rng. Samples of
 * constrained generators satisfy their constraint to float round-off (they
 * are projected in double and rounded last). */
CfStatus cf_data_generate(CfDataset *d, const char *name, int n, CfRng *rng, CfError *err);
/* The constraint for a constrained generator (CF_ERR_INVALID otherwise). */
CfStatus cf_data_builtin_constraint(CfConstraint *c, const char *name, CfError *err);

/* CSV of numbers: optional header (first line with any non-numeric cell), ','
 * or whitespace separated, '#' comments, every row the same width. Errors give
 * path:line:column. max_rows (> 0) bounds memory. */
CfStatus cf_data_load_csv(CfDataset *d, const char *path, int max_rows, CfError *err);
CfStatus cf_data_parse_csv(CfDataset *d, const char *text, size_t len, const char *origin, int max_rows, CfError *err);

/* Per-coordinate affine normalisation x = scale .* u + mean (invertible
 * record; scale > 0). */
typedef struct {
  int dim;
  float *mean;
  float *scale;
} CfNorm;

void cf_norm_init(CfNorm *nm);
void cf_norm_clear(CfNorm *nm);
/* Standardise: mean and std per coordinate; a coordinate with std below
 * 1e-6 * (1 + |mean|) keeps scale 1 (constant coordinates, e.g. a fixed
 * supply, stay exactly representable). */
CfStatus cf_norm_fit(CfNorm *nm, const CfDataset *d, CfError *err);
CfStatus cf_norm_set(CfNorm *nm, int dim, const float *mean, const float *scale, CfError *err);
/* u = (x - mean) / scale and back, in place on n rows. */
void cf_norm_apply(const CfNorm *nm, float *x, int n);
void cf_norm_invert(const CfNorm *nm, float *u, int n);

#endif
