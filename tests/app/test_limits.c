/* Resource limits as a user meets them, through the real `conform` binary:
 * a data CSV of 10^6 rows trains with bounded peak memory; headers that
 * claim absurd sizes (IDX images and labels, plain and gzip; checkpoints;
 * experiment.ini against its checkpoint; constraint files) and files over
 * the size limits are refused with a message naming the file and the
 * problem, without allocating what they claim. Every child's peak RSS
 * comes from wait4() (ru_maxrss) and is reported with g_test_message.
 *
 * What tests/core already covers at the parser level (not repeated here):
 * CSV row/dim limits (test_data), IDX header dims and products (test_idx),
 * checkpoint truncation / CRC / lengths (test_checkpoint), constraint row
 * and column limits (test_constraint). */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"

extern char **environ;

static char *conform_bin;
static char *tmpdir;

/* Peak RSS bound for a refusal: the binary's baseline (about 16 MiB; far
 * more under ASan, whose shadow memory counts) plus a little. Each file
 * below claims hundreds of MiB to terabytes. */
static double
refusal_bound_mib(void)
{
  return g_getenv("CONFORM_SANITIZED") ? 400 : 64;
}

typedef struct {
  int status;  /* exit status; -1 if killed */
  char *err;   /* stderr */
  double peak_mib;
  double seconds;
} Child;

static void
child_clear(Child *c)
{
  g_free(c->err);
}

/* Runs conform with the NULL-terminated arguments in tmpdir, stdout to
 * /dev/null, stderr captured; peak RSS of that child from wait4. */
static Child
run_child(const char *first, ...)
{
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, conform_bin);
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a; a = va_arg(ap, const char *))
    g_ptr_array_add(argv, (gpointer)a);
  va_end(ap);
  g_ptr_array_add(argv, NULL);
  g_autofree char *err_path = g_build_filename(tmpdir, "child-stderr.txt", NULL);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  g_assert_cmpint(chdir(tmpdir), ==, 0);
  gint64 t0 = g_get_monotonic_time();
  pid_t pid;
  int rc = posix_spawn(&pid, conform_bin, &fa, NULL, (char **)argv->pdata, environ);
  g_assert_cmpint(rc, ==, 0);
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  struct rusage ru;
  pid_t w;
  do
    w = wait4(pid, &status, 0, &ru);
  while (w < 0 && errno == EINTR);
  g_assert_cmpint(w, ==, pid);
  Child c = {0};
  c.seconds = (double)(g_get_monotonic_time() - t0) / 1e6;
  c.peak_mib = (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
  g_assert_true(WIFEXITED(status)); /* never a crash */
  c.status = WEXITSTATUS(status);
  g_assert_true(g_file_get_contents(err_path, &c.err, NULL, NULL));
  g_ptr_array_free(argv, TRUE);
  return c;
}

/* A refusal: nonzero exit, every needle in stderr, bounded peak RSS. */
static void
expect_refusal(Child *c, const char *what, const char *const *needles)
{
  g_test_message("%s: exit %d, peak RSS %.1f MiB, %.2f s: %s", what, c->status, c->peak_mib, c->seconds,
                 g_strstrip(c->err));
  g_assert_cmpint(c->status, !=, 0);
  for (; *needles; needles++)
    if (!strstr(c->err, *needles))
      g_error("%s: stderr \"%s\" does not mention \"%s\"", what, c->err, *needles);
  g_assert_cmpfloat(c->peak_mib, <, refusal_bound_mib());
}

static char *
tmp_path(const char *name)
{
  return g_build_filename(tmpdir, name, NULL);
}

/* A sparse file of `size` bytes (no disk blocks: reading it gives zeros). */
static void
sparse_file(const char *path, gint64 size)
{
  int fd = g_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(ftruncate(fd, (off_t)size), ==, 0);
  close(fd);
}

/* ---- 10^6 rows of data --------------------------------------------------------- */

#define BIG_ROWS 1000000
#define BIG_PEAK_MIB 128.0 /* 10^6 x 3 floats are 11.4 MiB; the file 25 MiB */

static void
test_million_rows(void)
{
  g_autofree char *csv = tmp_path("million.csv");
  FILE *f = fopen(csv, "w");
  g_assert_nonnull(f);
  fputs("a,b,c\n", f);
  /* points of x0 + x1 + x2 = 1 (the simplex-3d constraint) */
  guint32 s = 12345;
  for (int i = 0; i < BIG_ROWS; i++) {
    s = s * 1664525u + 1013904223u;
    double u = (double)(s >> 8) / 16777216.0;
    s = s * 1664525u + 1013904223u;
    double v = (double)(s >> 8) / 16777216.0 * (1 - u);
    fprintf(f, "%.6f,%.6f,%.6f\n", u, v, 1 - u - v);
  }
  g_assert_cmpint(fclose(f), ==, 0);
  GStatBuf st;
  g_assert_cmpint(g_stat(csv, &st), ==, 0);
  g_autofree char *out = tmp_path("million-run");
  Child c = run_child("train", "--preset", "simplex-3d", "-d", csv, "--steps", "20", "--out", out, "--set",
                      "model.width=16", "--set", "train.batch=64", "--set", "sample.n=200", "--set",
                      "sample.sampler=ddim", "--set", "sample.steps=10", "--set", "data.n_ref=1000", NULL);
  g_test_message("train on %d rows (%.1f MiB of CSV): exit %d, peak RSS %.1f MiB (bound %.0f), %.1f s", BIG_ROWS,
                 (double)st.st_size / (1024.0 * 1024.0), c.status, c.peak_mib, BIG_PEAK_MIB, c.seconds);
  if (c.status != 0)
    g_error("train failed: %s", c.err);
  g_test_message("%s", c.err);
  /* all rows but the held-out ones are training data */
  g_autofree char *ini_path = g_build_filename(out, "experiment.ini", NULL);
  g_assert_true(g_file_test(ini_path, G_FILE_TEST_EXISTS));
  g_autofree char *samples = g_build_filename(out, "samples.csv", NULL);
  g_assert_true(g_file_test(samples, G_FILE_TEST_EXISTS));
  if (!g_getenv("CONFORM_SANITIZED"))
    g_assert_cmpfloat(c.peak_mib, <, BIG_PEAK_MIB);
  else
    g_assert_cmpfloat(c.peak_mib, <, 4 * BIG_PEAK_MIB);
  child_clear(&c);
  g_unlink(csv);
}

/* ---- files over the size limits ------------------------------------------------ */

/* A small trained experiment to damage (cached per process). */
static const char *
tiny_experiment(void)
{
  static char *dir;
  if (!dir) {
    dir = tmp_path("tiny");
    Child c = run_child("train", "--preset", "simplex-3d", "--steps", "20", "--out", dir, "--set", "model.width=16",
                        "--set", "sample.n=50", "--set", "sample.sampler=ddim", "--set", "sample.steps=5", NULL);
    if (c.status != 0)
      g_error("tiny experiment: %s", c.err);
    child_clear(&c);
  }
  return dir;
}

static char *
copy_experiment(const char *name)
{
  g_autofree char *dst = tmp_path(name);
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s' && cp -r '%s' '%s'", dst, tiny_experiment(), dst);
  g_assert_cmpint(system(cmd), ==, 0);
  return g_steal_pointer(&dst);
}

static void
test_files_too_large(void)
{
  /* constraint file: limit 1 GiB (core/constraint_parse.c) */
  g_autofree char *con = tmp_path("huge-constraint.txt");
  sparse_file(con, ((gint64)1 << 30) + 1);
  Child c = run_child("check-constraint", "--dim", "3", con, NULL);
  const char *n1[] = {"huge-constraint.txt", "larger than the limit of 1024 MiB", NULL};
  expect_refusal(&c, "constraint file of 1 GiB + 1 byte", n1);
  child_clear(&c);
  c = run_child("train", "--preset", "simplex-3d", "--steps", "5", "-c", con, "--out", "never", NULL);
  expect_refusal(&c, "train -c with that file", n1);
  child_clear(&c);
  g_unlink(con);

  /* checkpoint: experiment files up to 2 GiB (app/conform-engine.c) */
  g_autofree char *dir = copy_experiment("huge-ckpt");
  g_autofree char *ck = g_build_filename(dir, "weights.ckpt", NULL);
  sparse_file(ck, ((gint64)2 << 30) + 1);
  g_autofree char *out = tmp_path("never.csv");
  c = run_child("sample", dir, "--n", "10", "--out", out, NULL);
  const char *n2[] = {"weights.ckpt", "too large", "2147483649 bytes", "limit 2147483648", NULL};
  expect_refusal(&c, "weights.ckpt of 2 GiB + 1 byte", n2);
  child_clear(&c);
}

/* ---- absurd header sizes ------------------------------------------------------- */

static GByteArray *
idx_header(guint32 magic, const guint32 *dims, int n_dims, gsize payload)
{
  GByteArray *b = g_byte_array_new();
  guint32 words[5] = {GUINT32_TO_BE(magic)};
  for (int i = 0; i < n_dims; i++)
    words[1 + i] = GUINT32_TO_BE(dims[i]);
  g_byte_array_append(b, (const guint8 *)words, 4 * (1 + n_dims));
  for (gsize i = 0; i < payload; i++) {
    guint8 v = (guint8)(i * 7);
    g_byte_array_append(b, &v, 1);
  }
  return b;
}

static GBytes *
gzip_bytes(const guint8 *data, gsize len)
{
  GZlibCompressor *z = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
  GByteArray *out = g_byte_array_new();
  guint8 buf[65536];
  gsize in_off = 0;
  for (;;) {
    gsize read = 0, written = 0;
    g_autoptr(GError) err = NULL;
    GConverterResult r = g_converter_convert(G_CONVERTER(z), data + in_off, len - in_off, buf, sizeof buf,
                                             G_CONVERTER_INPUT_AT_END, &read, &written, &err);
    g_assert_no_error(err);
    in_off += read;
    g_byte_array_append(out, buf, (guint)written);
    if (r == G_CONVERTER_FINISHED)
      break;
  }
  g_object_unref(z);
  return g_byte_array_free_to_bytes(out);
}

static void
write_idx_pair(const char *dir, const char *split, GByteArray *images, GByteArray *labels, gboolean gz)
{
  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  GByteArray *files[2] = {images, labels};
  const char *kinds[2] = {"images-idx3-ubyte", "labels-idx1-ubyte"};
  for (int k = 0; k < 2; k++) {
    g_autofree char *name = g_strdup_printf("%s-%s%s", split, kinds[k], gz ? ".gz" : "");
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (gz) {
      g_autoptr(GBytes) z = gzip_bytes(files[k]->data, files[k]->len);
      gsize n;
      const guint8 *p = g_bytes_get_data(z, &n);
      g_assert_true(g_file_set_contents(path, (const char *)p, (gssize)n, NULL));
    } else {
      g_assert_true(g_file_set_contents(path, (const char *)files[k]->data, (gssize)files[k]->len, NULL));
    }
  }
}

static void
expect_idx_refusal(const char *name, const guint32 *img_dims, gsize img_payload, const guint32 *lab_dims,
                   gsize lab_payload, gboolean gz, const char *const *needles)
{
  g_autofree char *dir = tmp_path(name);
  g_autoptr(GByteArray) img = idx_header(0x00000803, img_dims, 3, img_payload);
  g_autoptr(GByteArray) lab = idx_header(0x00000801, lab_dims, 1, lab_payload);
  write_idx_pair(dir, "train", img, lab, gz);
  write_idx_pair(dir, "t10k", img, lab, gz);
  g_autofree char *out = tmp_path("never.ckpt");
  Child c = run_child("train-classifier", "--data-dir", dir, "--steps", "1", "--out", out, NULL);
  g_autofree char *what = g_strdup_printf("IDX %s", name);
  expect_refusal(&c, what, needles);
  child_clear(&c);
}

static void
test_idx_headers(void)
{
  /* Header within the per-field limits, 2,000,000 x 28 x 28 (1.5 GiB of
   * pixels, 5.8 GiB as floats), over a few bytes: truncated. Plain and
   * gzip (whose length is unknown until it is inflated). */
  const guint32 many[3] = {2000000, 28, 28}, few[3] = {2, 28, 28}, nl_many[1] = {2000000}, nl_few[1] = {2};
  const char *trunc[] = {"train-images-idx3-ubyte", "truncated", NULL};
  expect_idx_refusal("idx-claims-2M", many, 3000, nl_few, 2, FALSE, trunc);
  expect_idx_refusal("idx-claims-2M-gz", many, 3000, nl_few, 2, TRUE, trunc);
  /* labels claiming 2,000,000 entries over 2 bytes */
  const char *ltrunc[] = {"labels-idx1-ubyte", "truncated", NULL};
  expect_idx_refusal("idx-labels-2M-gz", few, 2 * 784, nl_many, 2, TRUE, ltrunc);
  /* absurd fields: 2^32 - 1 images, sides of 2^31 */
  const guint32 absurd_n[3] = {0xFFFFFFFFu, 28, 28}, absurd_side[3] = {1, 0x80000000u, 28};
  const char *an[] = {"train-images-idx3-ubyte", "image count 4294967295", NULL};
  expect_idx_refusal("idx-count-2^32", absurd_n, 784, nl_few, 2, FALSE, an);
  const char *as[] = {"train-images-idx3-ubyte", "height 2147483648", NULL};
  expect_idx_refusal("idx-height-2^31-gz", absurd_side, 784, nl_few, 2, TRUE, as);
}

/* Writes buf with a fresh CRC-32 (the last 4 bytes), so that the decoder
 * meets the length fields rather than a checksum mismatch. */
static void
write_with_crc(const char *path, guint8 *buf, gsize len)
{
  guint32 crc = GUINT32_TO_LE(cf_crc32(0, buf, len - 4));
  memcpy(buf + len - 4, &crc, 4);
  g_assert_true(g_file_set_contents(path, (const char *)buf, (gssize)len, NULL));
}

static void
test_checkpoint_headers(void)
{
  /* experiment.ini edited to the largest model its ranges allow (width
   * 8192, depth 16: 10^9 parameters) beside a width-16 checkpoint. */
  g_autofree char *dir = copy_experiment("ini-huge-model");
  g_autofree char *ini_path = g_build_filename(dir, "experiment.ini", NULL);
  g_autofree char *ini = NULL;
  g_assert_true(g_file_get_contents(ini_path, &ini, NULL, NULL));
  GString *edited = g_string_new(ini);
  /* the [model] section's width and depth (the first occurrences) */
  char *w = strstr(edited->str, "\nwidth=16\n");
  g_assert_nonnull(w);
  g_string_erase(edited, w - edited->str, strlen("\nwidth=16\n"));
  g_string_insert(edited, w - edited->str, "\nwidth=8192\n");
  char *d = strstr(edited->str, "\ndepth=3\n");
  g_assert_nonnull(d);
  g_string_erase(edited, d - edited->str, strlen("\ndepth=3\n"));
  g_string_insert(edited, d - edited->str, "\ndepth=16\n");
  g_assert_true(g_file_set_contents(ini_path, edited->str, -1, NULL));
  g_string_free(edited, TRUE);
  g_autofree char *out = tmp_path("never.csv");
  Child c = run_child("sample", dir, "--n", "10", "--out", out, NULL);
  const char *n1[] = {"weights.ckpt", "different model", "width=16, but experiment.ini gives 8192", NULL};
  expect_refusal(&c, "experiment.ini width 8192 x depth 16 beside a width-16 checkpoint", n1);
  child_clear(&c);

  /* the ini beyond its ranges */
  g_autofree char *ini2 = NULL;
  g_assert_true(g_file_get_contents(ini_path, &ini2, NULL, NULL));
  char *w2 = strstr(ini2, "\nwidth=8192\n");
  g_assert_nonnull(w2);
  g_autofree char *head = g_strndup(ini2, w2 - ini2);
  g_autofree char *bad = g_strdup_printf("%s\nwidth=2147483647\n%s", head, w2 + strlen("\nwidth=8192\n"));
  g_assert_true(g_file_set_contents(ini_path, bad, -1, NULL));
  c = run_child("sample", dir, "--n", "10", "--out", out, NULL);
  const char *n2[] = {"experiment.ini", "model.width", "out of range", NULL};
  expect_refusal(&c, "experiment.ini width 2^31 - 1", n2);
  child_clear(&c);

  /* weights.ckpt whose length fields claim far more than the file holds:
   * the header length, then the first arena's float count */
  g_autofree char *dir2 = copy_experiment("ckpt-lengths");
  g_autofree char *ck = g_build_filename(dir2, "weights.ckpt", NULL);
  g_autofree guint8 *orig = NULL;
  gsize len;
  g_assert_true(g_file_get_contents(ck, (char **)&orig, &len, NULL));
  g_assert_cmpmem(orig, 8, "CONFCKPT", 8);
  g_autofree guint8 *buf = g_memdup2(orig, len);
  guint32 huge32 = GUINT32_TO_LE(0xFFFFFFF0u);
  memcpy(buf + 12, &huge32, 4);
  write_with_crc(ck, buf, len);
  c = run_child("sample", dir2, "--n", "10", "--out", out, NULL);
  const char *n3[] = {"weights.ckpt", "header length 4294967280 exceeds the limit", NULL};
  expect_refusal(&c, "checkpoint header length 0xFFFFFFF0", n3);
  child_clear(&c);
  guint32 hlen;
  memcpy(&hlen, orig + 12, 4);
  hlen = GUINT32_FROM_LE(hlen);
  gsize at = 16 + hlen + 4; /* first arena: name length, name, u64 count */
  guint32 nl;
  memcpy(&nl, orig + at, 4);
  nl = GUINT32_FROM_LE(nl);
  g_assert_cmpuint(nl, <, 64);
  memcpy(buf, orig, len);
  guint64 huge64 = GUINT64_TO_LE((guint64)1 << 40);
  memcpy(buf + at + 4 + nl, &huge64, 8);
  write_with_crc(ck, buf, len);
  c = run_child("sample", dir2, "--n", "10", "--out", out, NULL);
  const char *n4[] = {"weights.ckpt", "arena 'params' claims 1099511627776 floats", NULL};
  expect_refusal(&c, "checkpoint arena of 2^40 floats", n4);
  child_clear(&c);
}

static void
test_constraint_sizes(void)
{
  /* 4097 rows (limit 4096) and a row of 65537 coefficients (limit 65536) */
  GString *s = g_string_new(NULL);
  for (int i = 0; i <= 4096; i++)
    g_string_append(s, "1 1 1 | 1\n");
  g_autofree char *rows = tmp_path("rows.txt");
  g_assert_true(g_file_set_contents(rows, s->str, -1, NULL));
  g_string_truncate(s, 0);
  for (int j = 0; j <= 65536; j++)
    g_string_append(s, "1 ");
  g_string_append(s, "| 1\n");
  g_autofree char *cols = tmp_path("cols.txt");
  g_assert_true(g_file_set_contents(cols, s->str, -1, NULL));
  g_string_free(s, TRUE);
  Child c = run_child("check-constraint", "--dim", "3", rows, NULL);
  const char *n1[] = {"rows.txt", "4096", NULL};
  expect_refusal(&c, "constraint file of 4097 rows", n1);
  child_clear(&c);
  c = run_child("train", "--preset", "simplex-3d", "--steps", "5", "-c", cols, "--out", "never", NULL);
  const char *n2[] = {"cols.txt", "65537 coefficients, more than the limit", NULL};
  expect_refusal(&c, "constraint row of 65537 coefficients", n2);
  child_clear(&c);
  /* a dimension beyond the limit on the command line */
  c = run_child("check-constraint", "--dim", "1000000000", rows, NULL);
  const char *n3[] = {"--dim", NULL};
  expect_refusal(&c, "check-constraint --dim 10^9", n3);
  child_clear(&c);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  conform_bin = g_strdup(g_getenv("CONFORM_BIN"));
  g_assert_nonnull(conform_bin);
  tmpdir = g_dir_make_tmp("conform-limits-XXXXXX", NULL);
  g_assert_nonnull(tmpdir);
  g_test_add_func("/limits/files-too-large", test_files_too_large);
  g_test_add_func("/limits/idx-headers", test_idx_headers);
  g_test_add_func("/limits/checkpoint-headers", test_checkpoint_headers);
  g_test_add_func("/limits/constraint-sizes", test_constraint_sizes);
  g_test_add_func("/limits/million-rows", test_million_rows);
  int rc = g_test_run();
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
  (void)!system(cmd);
  g_free(conform_bin);
  g_free(tmpdir);
  return rc;
}
