/* The libFuzzer entry point of every target but expr (fuzz_expr.c): the
 * body (fuzz_<target>_body.c) does the work. Built with -Dfuzz under clang;
 * run through tests/fuzz/run. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  cf_fuzz_one(data, size);
  return 0;
}
