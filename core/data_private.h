/* Generators implemented outside data.c (shared with its table only). */
#ifndef CF_DATA_PRIVATE_H
#define CF_DATA_PRIVATE_H

#include "data.h"

void cf_gen_cstr(CfDataset *d, CfRng *rng);
void cf_gen_plant(CfDataset *d, CfRng *rng);

#endif
