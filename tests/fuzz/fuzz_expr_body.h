/* The body of the expression fuzzer, shared by the libFuzzer target
 * (fuzz_expr.c, clang only) and the corpus test that every build runs
 * (test_fuzz_expr.c). */
#ifndef CF_FUZZ_EXPR_BODY_H
#define CF_FUZZ_EXPR_BODY_H

#include <stddef.h>
#include <stdint.h>

/* First byte: data dimension 1 + (byte % 4); the rest: equation text.
 * Parses, and on success checks the AST's invariants, evaluates residuals,
 * Jacobian and distance at a few points, and runs the compiled graph forward
 * and backward. Aborts (CF_ASSERT) when an invariant does not hold. */
void cf_fuzz_expr_one(const uint8_t *data, size_t size);

#endif
