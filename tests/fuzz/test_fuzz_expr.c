/* Runs the fuzzer's body (fuzz_expr_body.c) over a corpus of nasty strings,
 * the seed files in tests/fuzz/corpus and a few thousand random token soups,
 * so every build (also gcc without libFuzzer) exercises it. A failing
 * invariant aborts the test. */
#include <glib.h>
#include <string.h>

#include "fuzz_expr_body.h"
#include "rng.h"

static void
run_str(const char *s, size_t len)
{
  cf_fuzz_expr_one((const uint8_t *)s, len);
}

/* Strings written down: each is prefixed by a dimension byte by the loop. */
static const char *const nasty[] = {
  "", "=", "==", "x0", "x0=", "=x0", "x0==x0", "x0 = x0 = x0", "(", ")", "()", "(x0 = 1", "x0) = 1",
  "x0 = 1)", "x0 = ((1)", "x0^", "^x0 = 1", "x0 ^ ^ 2 = 1", "x0**", "x0*** 2 = 1", "x0 = 1e", "x0 = 1e+",
  "x0 = 1e-", "x0 = .", "x0 = .e1", "x0 = 1.2.3", "x0 = 1e999999999999999", "x0 = 1e-999999999",
  "x0 = 0.000000000000000000000000000000000000000000000000000000000000001",
  "x0 = 123456789012345678901234567890123456789012345678901234567890",
  "x99999999999999999999 = 1", "x0000 = 1", "x-1 = 1", "x = 1", "X0 = 1", "xx0 = 1", "x0x1 = 1",
  "sqrt = 1", "sqrt() = 1", "sqrt(x0, x1) = 1", "sqrt x0 = 1", "sin(x0 = 1", "x0 = log(0)", "x0 = 1/0",
  "x0 = 0/0", "x0 = sqrt(-1)", "x0 = (-8)^(1/3)", "x0 = 0^-1", "x0 = 10^400", "x0 = exp(1000)",
  "x0 / 0 = 1", "x0 ^ 0 = 1", "x0 ^ -0.5 = 1", "(-x0) ^ 2.5 = 1", "x0 ^ x1 = 1", "x0 ^ (1 + x1) = 1",
  "2x0 = 1", "2 (x0) = 1", "x0 x1 = 1", "1 = 1", "pi = pi", "x0 - x0 = 0", "x0 = pi^pi^pi",
  "x0 = 2^3^4^5", "# only a comment", "\n\n\n", " \t\r\n", "x0 = 1 # c = 2", "x0 = 1\r\n x1 = 2\r\n",
  "x0 = \x01", "x0 = \xff\xfe", "x0 = $", "x0 = @", "x0 = [1]", "x0 = 1,5",
  "----------x0 = +++++++1", "x0 = - - - - 2", "x0 = 1 +", "x0 = * 1", "x0 = / 1", "x0 = 1 * / 2",
  "abs(abs(abs(abs(x0)))) = cos(cos(cos(x0)))", "ln(x0) = exp(x0)", "x0 = 1\nx0 =", "x0 = 1\n= 2",
};

static void
test_nasty(void)
{
  char buf[512];
  for (size_t i = 0; i < G_N_ELEMENTS(nasty); i++) {
    size_t n = strlen(nasty[i]);
    for (int dim = 0; dim < 4; dim++) {
      buf[0] = (char)dim;
      memcpy(buf + 1, nasty[i], n);
      run_str(buf, n + 1);
    }
  }
  run_str("\2x0 = 1\0x1 = 2", 15); /* an embedded NUL byte */
}

/* Deep nesting and very long inputs stay bounded. */
static void
test_large(void)
{
  static const char *const open[] = { "(", "-", "sin(", "+", "2^", "(x0^" };
  for (size_t k = 0; k < G_N_ELEMENTS(open); k++) {
    GString *s = g_string_new("\2x0 = ");
    for (int i = 0; i < 5000; i++)
      g_string_append(s, open[k]);
    g_string_append(s, "x1");
    for (int i = 0; i < 5000; i++)
      g_string_append(s, ")");
    run_str(s->str, s->len);
    g_string_free(s, TRUE);
  }
  /* a long flat sum: parsed iteratively, up to the node limit */
  GString *s = g_string_new("\2x0 = 0");
  for (int i = 0; i < 60000; i++)
    g_string_append(s, " + x1");
  run_str(s->str, s->len);
  /* many lines */
  g_string_assign(s, "\2");
  for (int i = 0; i < 5000; i++)
    g_string_append(s, "x0 = x1\n");
  run_str(s->str, s->len);
  g_string_free(s, TRUE);
}

/* Random soups of grammar tokens and bytes. */
static void
test_random(void)
{
  static const char *const tok[] = { "x0", "x1", "x2", "x3", "x9", "1", "2.5", "1e-3", ".5", "pi", "+", "-", "*",
                                     "/", "^", "**", "(", ")", "=", "sqrt", "exp", "log", "sin", "cos", "abs",
                                     " ", "\n", "#", "0", "e", "y", "\t" };
  CfRng rng;
  cf_rng_seed(&rng, 4242);
  GString *s = g_string_new(NULL);
  for (int it = 0; it < 4000; it++) {
    g_string_truncate(s, 0);
    g_string_append_c(s, (char)cf_rng_below(&rng, 4));
    int n = 1 + (int)cf_rng_below(&rng, 30);
    for (int k = 0; k < n; k++) {
      if (cf_rng_below(&rng, 50) == 0)
        g_string_append_c(s, (char)cf_rng_below(&rng, 256));
      else
        g_string_append(s, tok[cf_rng_below(&rng, G_N_ELEMENTS(tok))]);
    }
    run_str(s->str, s->len);
  }
  g_string_free(s, TRUE);
}

static void
test_corpus(void)
{
  const char *src = g_getenv("CONFORM_SOURCE_DIR");
  if (!src) {
    g_test_skip("CONFORM_SOURCE_DIR not set");
    return;
  }
  char *dir = g_build_filename(src, "tests", "fuzz", "corpus", "expr", NULL);
  GDir *d = g_dir_open(dir, 0, NULL);
  g_assert_nonnull(d);
  int files = 0;
  const char *name;
  while ((name = g_dir_read_name(d))) {
    char *path = g_build_filename(dir, name, NULL), *data = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    run_str(data, len);
    files++;
    g_free(data);
    g_free(path);
  }
  g_dir_close(d);
  g_assert_cmpint(files, >=, 5);
  g_free(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/fuzz_expr/nasty", test_nasty);
  g_test_add_func("/fuzz_expr/large", test_large);
  g_test_add_func("/fuzz_expr/random", test_random);
  g_test_add_func("/fuzz_expr/corpus", test_corpus);
  return g_test_run();
}
