/* The image classifier and its metrics: the bundled checkpoints, the
 * `conform train-classifier` / `conform evaluate-classifier` commands, class
 * shares and the Frechet distance of classifier features. Needs the
 * Fashion-MNIST files (Debian package dataset-fashion-mnist); tests skip
 * without them. */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint.h"
#include "conform-classifier.h"
#include "conform-config.h"
#include "conform-images.h"
#include "metrics.h"

#include "cli-run.h"

static double
tsv_value(const char *tsv, const char *key)
{
  g_auto(GStrv) lines = g_strsplit(tsv, "\n", -1);
  for (char **l = lines; *l; l++) {
    g_auto(GStrv) f = g_strsplit(*l, "\t", 2);
    if (f[0] && f[1] && strcmp(f[0], key) == 0)
      return g_ascii_strtod(f[1], NULL);
  }
  g_error("output has no %s:\n%s", key, tsv);
  return NAN;
}

static gboolean
have_data(void)
{
  g_autofree char *p = g_build_filename(CONFORM_FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz", NULL);
  if (g_file_test(p, G_FILE_TEST_EXISTS))
    return TRUE;
  g_test_skip("Fashion-MNIST is not installed in " CONFORM_FASHION_MNIST_DIR " (package dataset-fashion-mnist)");
  return FALSE;
}

static void
test_bundled_files(void)
{
  for (int side = 28; side >= 14; side -= 14) {
    g_autofree char *p = conform_classifier_bundled_path(side);
    GStatBuf st;
    g_assert_cmpint(g_stat(p, &st), ==, 0);
    g_test_message("%s: %ld bytes", p, (long)st.st_size);
    g_assert_cmpint(st.st_size, <, 2 << 20);
    g_autoptr(GError) error = NULL;
    g_autoptr(ConformClassifier) clf = conform_classifier_load_bundled(side, &error);
    g_assert_no_error(error);
    const CfClassifierConfig *c = conform_classifier_config(clf);
    g_assert_cmpint(c->H, ==, side);
    g_assert_cmpint(c->W, ==, side);
    g_assert_cmpint(c->n_classes, ==, 10);
    g_assert_cmpfloat(conform_classifier_recorded_accuracy(clf), >=, 0.85);
  }
  g_autoptr(GError) error = NULL;
  g_assert_null(conform_classifier_load_bundled(7, &error));
  g_assert_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT);
}

static void
test_evaluate_bundled(void)
{
  if (!have_data())
    return;
  Run r = run("evaluate-classifier", NULL);
  if (r.status != 0)
    g_error("evaluate-classifier failed: %s", r.err);
  double acc = tsv_value(r.out, "accuracy");
  g_test_message("bundled 28 x 28 classifier: test accuracy %.4f", acc);
  g_assert_cmpfloat(acc, >=, 0.90);
  double mean = 0;
  for (int k = 0; k < 10; k++) {
    char key[32];
    g_snprintf(key, sizeof key, "accuracy_%d", k);
    double a = tsv_value(r.out, key);
    g_assert_true(a >= 0 && a <= 1);
    mean += a / 10;
  }
  g_assert_cmpfloat(fabs(mean - acc), <, 1e-3); /* 1000 test images per class */
  run_clear(&r);
}

static void
test_bad_checkpoints(void)
{
  g_autofree char *bundled = conform_classifier_bundled_path(28);
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(bundled, &data, &len, NULL));
  /* from a decoded checkpoint: the same classifier, no path */
  {
    CfCheckpoint ck;
    g_assert_cmpint(cf_checkpoint_decode(&ck, (const unsigned char *)data, len, bundled, NULL), ==, CF_OK);
    g_autoptr(GError) e = NULL;
    g_autoptr(ConformClassifier) clf = conform_classifier_new_from_checkpoint(&ck, NULL, &e);
    g_assert_no_error(e);
    g_assert_cmpint(conform_classifier_config(clf)->H, ==, 28);
    g_assert_null(conform_classifier_path(clf));
    g_free(ck.header);
    ck.header = g_strdup("model=ddpm\n");
    g_assert_null(conform_classifier_new_from_checkpoint(&ck, "mem.ckpt", &e));
    g_assert_nonnull(strstr(e->message, "mem.ckpt: not a classifier"));
    cf_checkpoint_clear(&ck);
  }
  /* truncated */
  g_autofree char *trunc = g_build_filename(tmpdir, "truncated.ckpt", NULL);
  g_assert_true(g_file_set_contents(trunc, data, (gssize)(len / 2), NULL));
  Run r = run("evaluate-classifier", trunc, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, trunc));
  run_clear(&r);
  /* one flipped byte in the weights: CRC */
  g_autofree char *flip = g_build_filename(tmpdir, "flipped.ckpt", NULL);
  data[len - 100] ^= 0x40;
  g_assert_true(g_file_set_contents(flip, data, (gssize)len, NULL));
  r = run("evaluate-classifier", flip, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, flip));
  run_clear(&r);
  /* valid file, sizes that do not match its arena */
  float w[10] = {0};
  CfCkptArena a = {"params", 10, w};
  unsigned char *buf;
  size_t blen;
  g_assert_cmpint(cf_checkpoint_encode("model=classifier\narch=cnn2\nC=1\nH=28\nW=28\nn_classes=10\nc1=16\nc2=32\n"
                                       "features=128\nact=relu\n",
                                       &a, 1, &buf, &blen, NULL),
                  ==, CF_OK);
  g_autofree char *mism = g_build_filename(tmpdir, "mismatch.ckpt", NULL);
  g_assert_true(g_file_set_contents(mism, (const char *)buf, (gssize)blen, NULL));
  free(buf);
  r = run("evaluate-classifier", mism, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, mism));
  g_assert_nonnull(strstr(r.err, "params"));
  run_clear(&r);
  /* not a classifier */
  g_assert_cmpint(cf_checkpoint_encode("model=ddpm\n", &a, 1, &buf, &blen, NULL), ==, CF_OK);
  g_autofree char *other = g_build_filename(tmpdir, "other.ckpt", NULL);
  g_assert_true(g_file_set_contents(other, (const char *)buf, (gssize)blen, NULL));
  free(buf);
  r = run("evaluate-classifier", other, NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "not a classifier"));
  run_clear(&r);
  /* missing file, usage errors */
  r = run("evaluate-classifier", "no-such.ckpt", NULL);
  g_assert_cmpint(r.status, ==, 1);
  g_assert_nonnull(strstr(r.err, "no-such.ckpt"));
  run_clear(&r);
  r = run("evaluate-classifier", "a.ckpt", "b.ckpt", NULL);
  g_assert_cmpint(r.status, ==, 2);
  run_clear(&r);
  r = run("train-classifier", "--downsample", "3", "--out", "x.ckpt", NULL);
  g_assert_cmpint(r.status, ==, 2);
  run_clear(&r);
  r = run("train-classifier", "--steps", "5", NULL);
  g_assert_cmpint(r.status, ==, 2);
  g_assert_nonnull(strstr(r.err, "--out"));
  run_clear(&r);
}

/* Found by review while fuzzing (tests/fuzz, target checkpoint; the
 * fuzz-checkpoint target reproduces it with corpus/checkpoint/
 * regress-classifier-size-bomb): the classifier was built, with a graph for
 * 256 images of the header's size, before its 'params' arena was checked,
 * so a small file claiming 512 x 512 images allocated about 40 GB. Now the
 * arena is checked first and the evaluation graph stays within 256 MiB
 * (fewer images per chunk). Runs with 1 GiB of address space to spare
 * (under ASan: allocations above 512 MiB fail). */
static void
test_large_images_bounded(void)
{
  if (!g_test_subprocess()) {
    const char *asan = g_getenv("ASAN_OPTIONS");
    g_autofree char *old = g_strdup(asan);
    g_autofree char *opts = g_strdup_printf("%s%smax_allocation_size_mb=512:allocator_may_return_null=1",
                                            asan ? asan : "", asan && *asan ? ":" : "");
    g_setenv("ASAN_OPTIONS", opts, TRUE);
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    if (old)
      g_setenv("ASAN_OPTIONS", old, TRUE);
    else
      g_unsetenv("ASAN_OPTIONS");
    g_test_trap_assert_passed();
    return;
  }
#ifndef __SANITIZE_ADDRESS__
  g_autofree char *statm = NULL;
  g_assert_true(g_file_get_contents("/proc/self/statm", &statm, NULL, NULL));
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)strtol(statm, NULL, 10) * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
  g_assert_cmpint(setrlimit(RLIMIT_AS, &rl), ==, 0);
#endif
  const char *header = "model=classifier\narch=cnn2\nC=1\nH=512\nW=512\nn_classes=2\nc1=16\nc2=1\nfeatures=1\nact=relu\n";
  CfClassifierConfig cfg = cf_classifier_default_config(1, 512, 512, 2);
  cfg.c1 = 16;
  cfg.c2 = 1;
  cfg.features = 1;
  const size_t np = cf_classifier_param_count(&cfg);
  g_assert_cmpuint(np, >, 0);
  float *w = g_new0(float, np);
  CfCkptArena good = {"params", np, w}, short_arena = {"params", 4, w};
  CfCheckpoint ck;
  unsigned char *buf;
  size_t len;
  g_autoptr(GError) e = NULL;
  /* weights missing: refused before anything is built */
  g_assert_cmpint(cf_checkpoint_encode(header, &short_arena, 1, &buf, &len, NULL), ==, CF_OK);
  g_assert_cmpint(cf_checkpoint_decode(&ck, buf, len, "big.ckpt", NULL), ==, CF_OK);
  free(buf);
  g_assert_null(conform_classifier_new_from_checkpoint(&ck, "big.ckpt", &e));
  g_autofree char *want = g_strdup_printf("big.ckpt: classifier checkpoint is inconsistent: arena 'params' has 4 "
                                          "values, the header's sizes need %zu", np);
  g_assert_cmpstr(e->message, ==, want);
  g_clear_error(&e);
  cf_checkpoint_clear(&ck);
  /* complete: loads, with a graph that fits, and classifies */
  g_assert_cmpint(cf_checkpoint_encode(header, &good, 1, &buf, &len, NULL), ==, CF_OK);
  g_assert_cmpint(cf_checkpoint_decode(&ck, buf, len, "big.ckpt", NULL), ==, CF_OK);
  free(buf);
  g_autoptr(ConformClassifier) clf = conform_classifier_new_from_checkpoint(&ck, "big.ckpt", &e);
  g_assert_no_error(e);
  cf_checkpoint_clear(&ck);
  float *img = g_new0(float, 3 * 512 * 512);
  int cls[3] = {-1, -1, -1};
  g_assert_true(conform_classifier_predict(clf, img, 3, cls, NULL, &e));
  g_assert_no_error(e);
  for (int i = 0; i < 3; i++)
    g_assert_true(cls[i] == 0 || cls[i] == 1);
  g_free(img);
  g_free(w);
}

/* Shares and FD on the test split, in process. */
static void
test_shares_and_fd(void)
{
  if (!have_data())
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(ConformClassifier) clf = conform_classifier_load(NULL, &error);
  g_assert_no_error(error);
  CfImageSet test, train;
  cf_image_set_init(&test);
  cf_image_set_init(&train);
  g_assert_true(conform_fashion_mnist_load(NULL, FALSE, 1, &test, &error));
  g_assert_true(conform_fashion_mnist_load(NULL, TRUE, 1, &train, &error));
  double shares[10], total = 0;
  g_assert_true(conform_class_shares(clf, test.pixels, test.n, shares, &error));
  for (int k = 0; k < 10; k++) {
    g_test_message("class %d (%s): share %.4f", k, conform_fashion_mnist_class_names()[k], shares[k]);
    g_assert_cmpfloat(fabs(shares[k] - 0.1), <=, 0.03);
    total += shares[k];
  }
  g_assert_cmpfloat(fabs(total - 1), <, 1e-12);

  /* the floor: test split vs the train split's first 10000 */
  double floor_fd = conform_fd_classifier(clf, test.pixels, test.n, train.pixels, 10000, &error);
  g_assert_no_error(error);
  /* noise images: uniform [0, 1] pixels */
  const size_t D = 28 * 28;
  float *noise = g_new(float, 2000 * D);
  CfRng rng;
  cf_rng_seed_stream(&rng, 3, 0);
  for (size_t i = 0; i < 2000 * D; i++)
    noise[i] = (float)cf_rng_uniform(&rng);
  double noise_fd = conform_fd_classifier(clf, test.pixels, test.n, noise, 2000, &error);
  g_assert_no_error(error);
  /* the scale of the features: the trace of their covariance on the test split */
  const int F = conform_classifier_config(clf)->features;
  float *feat = g_new(float, (size_t)test.n * F);
  g_assert_true(conform_classifier_features(clf, test.pixels, test.n, feat, &error));
  double *mu = g_new(double, F), *S = g_new(double, (size_t)F * F), tr = 0;
  g_assert_cmpint(cf_mean_cov(feat, test.n, F, mu, S, NULL), ==, CF_OK);
  for (int j = 0; j < F; j++)
    tr += S[(size_t)j * F + j];
  g_test_message("FD floor (test vs train[0:10000]) %.4f; FD test vs uniform noise %.4f; tr(cov) of test features %.4f",
                 floor_fd, noise_fd, tr);
  g_assert_cmpfloat(floor_fd, >=, 0);
  g_assert_cmpfloat(floor_fd, <, 0.02 * tr);
  g_assert_cmpfloat(floor_fd, <, 0.02 * noise_fd);
  /* FD of a set with itself is 0; the same images in another order too */
  double self = conform_fd_classifier(clf, test.pixels, 5000, test.pixels, 5000, &error);
  g_assert_cmpfloat(self, <, 1e-6 * tr);
  /* bad input */
  g_assert_true(isnan(conform_fd_classifier(clf, test.pixels, 1, test.pixels, 10, &error)));
  g_assert_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT);
  g_clear_error(&error);
  noise[5] = NAN;
  g_assert_false(conform_class_shares(clf, noise, 10, shares, &error));
  g_assert_nonnull(strstr(error->message, "not finite"));
  g_clear_error(&error);

  /* the 14 x 14 classifier on the downsampled test split */
  g_autoptr(ConformClassifier) c14 = conform_classifier_load_bundled(14, &error);
  g_assert_no_error(error);
  CfImageSet t14;
  cf_image_set_init(&t14);
  g_assert_true(conform_fashion_mnist_load(NULL, FALSE, 2, &t14, &error));
  double acc14;
  g_assert_true(conform_classifier_accuracy(c14, &t14, &acc14, NULL, &error));
  g_test_message("bundled 14 x 14 classifier: test accuracy %.4f", acc14);
  g_assert_cmpfloat(acc14, >=, 0.88);
  /* a classifier cannot evaluate a set of another geometry */
  double acc;
  g_assert_false(conform_classifier_accuracy(clf, &t14, &acc, NULL, &error));
  g_clear_error(&error);

  cf_image_set_clear(&t14);
  g_free(mu);
  g_free(S);
  g_free(feat);
  g_free(noise);
  cf_image_set_clear(&test);
  cf_image_set_clear(&train);
}

/* A short train-classifier run: output, checkpoint round trip. */
static void
test_train_command(void)
{
  if (!have_data())
    return;
  g_autofree char *out = g_build_filename(tmpdir, "c14.ckpt", NULL);
  Run r = run("train-classifier", "--downsample", "2", "--steps", "60", "--seed", "4", "--out", out, NULL);
  if (r.status != 0)
    g_error("train-classifier failed: %s", r.err);
  double acc = tsv_value(r.out, "accuracy");
  g_test_message("60 steps at 14 x 14: test accuracy %.4f", acc);
  g_assert_cmpfloat(acc, >, 0.5);
  g_assert_nonnull(strstr(r.err, "training: 60/60"));
  run_clear(&r);
  g_autoptr(GError) error = NULL;
  g_autoptr(ConformClassifier) clf = conform_classifier_load(out, &error);
  g_assert_no_error(error);
  g_assert_cmpint(conform_classifier_steps(clf), ==, 60);
  g_assert_cmpfloat(fabs(conform_classifier_recorded_accuracy(clf) - acc), <, 1e-4);
  r = run("evaluate-classifier", out, NULL);
  g_assert_cmpint(r.status, ==, 0);
  g_assert_cmpfloat(fabs(tsv_value(r.out, "accuracy") - acc), <, 1e-4);
  run_clear(&r);
}

/* The bundled pretrained Fashion-MNIST DDPM (data/pretrained/fashion14):
 * made by the command its experiment.ini records, small, and its samples
 * are near the train-vs-test floor of fd_classifier and cover the classes. */
static void
test_bundled_pretrained(void)
{
  g_autofree char *dir = conform_pretrained_dir(14);
  g_assert_nonnull(dir);
  g_autofree char *ini_path = g_build_filename(dir, "experiment.ini", NULL);
  g_autofree char *ini = NULL;
  g_assert_true(g_file_get_contents(ini_path, &ini, NULL, NULL));
  g_assert_nonnull(strstr(ini, "\ncommand=conform train -p fashion --seed 1 -o data/pretrained/fashion14\n"));
  g_assert_nonnull(strstr(ini, "\npreset=fashion\n"));
  g_assert_nonnull(strstr(ini, "\nseed=1\n"));
  g_assert_nonnull(strstr(ini, "\narch=unet\n"));
  g_autofree char *ckpt = g_build_filename(dir, "weights.ckpt", NULL);
  GStatBuf st;
  g_assert_cmpint(g_stat(ckpt, &st), ==, 0);
  g_test_message("%s: %ld bytes", ckpt, (long)st.st_size);
  g_assert_cmpint(st.st_size, <, 10 << 20);
  if (!have_data())
    return;
  Run r = run("evaluate", dir, "-n", "64", NULL);
  if (r.status != 0)
    g_error("evaluate failed: %s", r.err);
  double fd = tsv_value(r.out, "fd_classifier"), floor = tsv_value(r.out, "fd_floor");
  g_test_message("pretrained fashion14, 64 samples: fd_classifier %.2f, floor %.2f", fd, floor);
  g_assert_cmpfloat(fd, <, 1.6 * floor);
  int classes = 0;
  for (int c = 0; c < 10; c++) {
    g_autofree char *key = g_strdup_printf("class_share_%d", c);
    classes += tsv_value(r.out, key) > 0;
  }
  g_assert_cmpint(classes, >=, 8);
  run_clear(&r);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  conform_bin = g_strdup(g_getenv("CONFORM_BIN"));
  g_assert_nonnull(conform_bin);
  tmpdir = g_dir_make_tmp("conform-classifier-XXXXXX", NULL);
  g_assert_nonnull(tmpdir);
  g_test_add_func("/classifier/bundled-files", test_bundled_files);
  g_test_add_func("/classifier/evaluate-bundled", test_evaluate_bundled);
  g_test_add_func("/classifier/bad-checkpoints", test_bad_checkpoints);
  g_test_add_func("/classifier/large-images-bounded", test_large_images_bounded);
  g_test_add_func("/classifier/shares-and-fd", test_shares_and_fd);
  g_test_add_func("/classifier/train-command", test_train_command);
  g_test_add_func("/classifier/bundled-pretrained", test_bundled_pretrained);
  int rc = g_test_run();
  if (rc == 0) {
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmpdir);
    (void)!system(cmd);
  }
  return rc;
}
