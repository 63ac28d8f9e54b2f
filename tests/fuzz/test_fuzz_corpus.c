/* The corpus test of one fuzz target (FUZZ_TARGET, set by meson): runs the
 * target's body (fuzz_<target>_body.c) over every file of
 * tests/fuzz/corpus/<target>/ -- hand-made seeds and the inputs of bugs the
 * fuzzer found -- and over deterministic variations of them (truncations,
 * byte edits with a fixed seed), so every build, also gcc without
 * libFuzzer, checks the parser's invariants on them. A broken invariant
 * aborts the test. */
#include <glib.h>
#include <string.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET must name the target"
#endif

typedef struct {
  char *name;
  guint8 *data;
  gsize len;
} Seed;

static GPtrArray *
load_corpus(void)
{
  const char *src = g_getenv("CONFORM_SOURCE_DIR");
  if (!src)
    return NULL;
  g_autofree char *dir = g_build_filename(src, "tests", "fuzz", "corpus", FUZZ_TARGET, NULL);
  g_autoptr(GError) e = NULL;
  GDir *d = g_dir_open(dir, 0, &e);
  g_assert_no_error(e);
  GPtrArray *seeds = g_ptr_array_new();
  const char *name;
  while ((name = g_dir_read_name(d))) {
    g_autofree char *path = g_build_filename(dir, name, NULL);
    Seed *s = g_new0(Seed, 1);
    s->name = g_strdup(name);
    g_assert_true(g_file_get_contents(path, (char **)&s->data, &s->len, NULL));
    g_ptr_array_add(seeds, s);
  }
  g_dir_close(d);
  return seeds;
}

static void
free_corpus(GPtrArray *seeds)
{
  for (guint i = 0; i < seeds->len; i++) {
    Seed *s = g_ptr_array_index(seeds, i);
    g_free(s->name);
    g_free(s->data);
    g_free(s);
  }
  g_ptr_array_free(seeds, TRUE);
}

/* Runs the body on a heap copy of exactly len bytes, so ASan sees reads
 * past the end. */
static void
run(const guint8 *data, gsize len)
{
  guint8 *copy = g_malloc(len ? len : 1);
  if (len)
    memcpy(copy, data, len);
  cf_fuzz_one(copy, len);
  g_free(copy);
}

static void
test_corpus(void)
{
  GPtrArray *seeds = load_corpus();
  if (!seeds) {
    g_test_skip("CONFORM_SOURCE_DIR not set");
    return;
  }
  g_assert_cmpuint(seeds->len, >=, 3);
  for (guint i = 0; i < seeds->len; i++) {
    const Seed *s = g_ptr_array_index(seeds, i);
    g_test_message("%s (%" G_GSIZE_FORMAT " bytes)", s->name, s->len);
    run(s->data, s->len);
  }
  run(NULL, 0);
  free_corpus(seeds);
}

/* Truncations at up to 48 points and 48 edits (overwrite, insert or
 * delete a byte, or copy a run) of every seed. */
static void
test_variations(void)
{
  GPtrArray *seeds = load_corpus();
  if (!seeds) {
    g_test_skip("CONFORM_SOURCE_DIR not set");
    return;
  }
  GRand *rng = g_rand_new_with_seed(20240611);
  GByteArray *buf = g_byte_array_new();
  for (guint i = 0; i < seeds->len; i++) {
    const Seed *s = g_ptr_array_index(seeds, i);
    gsize step = MAX(s->len / 48, 1);
    for (gsize k = 0; k < s->len; k += step)
      run(s->data, k);
    for (int k = 0; k < 48; k++) {
      g_byte_array_set_size(buf, 0);
      g_byte_array_append(buf, s->data, (guint)s->len);
      guint pos = buf->len ? (guint)g_rand_int_range(rng, 0, (gint32)buf->len) : 0;
      static const guint8 special[] = {0x00, 0xff, 0x7f, 0x80, '\n', '\r', ',', '|', '=', '#', '-', '9', 'e', '.'};
      guint8 byte = g_rand_boolean(rng) ? (guint8)g_rand_int_range(rng, 0, 256)
                                        : special[g_rand_int_range(rng, 0, G_N_ELEMENTS(special))];
      switch (g_rand_int_range(rng, 0, 4)) {
      case 0:
        if (buf->len)
          buf->data[pos] = byte;
        break;
      case 1:
        g_array_insert_vals((GArray *)buf, pos, &byte, 1);
        break;
      case 2:
        if (buf->len)
          g_byte_array_remove_index(buf, pos);
        break;
      default:
        if (buf->len) {
          guint from = (guint)g_rand_int_range(rng, 0, (gint32)buf->len);
          /* One draw: MIN() evaluates its arguments twice. */
          guint want = (guint)g_rand_int_range(rng, 1, 64);
          guint n = MIN(want, buf->len - from);
          g_autofree guint8 *run_bytes = g_memdup2(buf->data + from, n);
          g_array_insert_vals((GArray *)buf, pos, run_bytes, n);
        }
        break;
      }
      run(buf->data, buf->len);
    }
  }
  g_byte_array_unref(buf);
  g_rand_free(rng);
  free_corpus(seeds);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/fuzz_" FUZZ_TARGET "/corpus", test_corpus);
  g_test_add_func("/fuzz_" FUZZ_TARGET "/variations", test_variations);
  return g_test_run();
}
