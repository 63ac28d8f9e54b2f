/* libFuzzer target for the equation parser (core/expr.c). Build with
 * -Dfuzz=enabled under clang; run e.g.
 *   tests/fuzz/run 60 expr */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_expr_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cf_fuzz_expr_one(data, size);
  return 0;
}
