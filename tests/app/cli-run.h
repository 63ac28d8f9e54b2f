/* Running the real `conform` binary from app tests: the binary
 * ($CONFORM_BIN) and a scratch directory as working directory, set by each
 * test's main(). Header-only, shared by test_cli.c, test_compare.c and
 * test_classifier.c. */
#pragma once

#include <glib.h>
#include <stdarg.h>
#include <sys/wait.h>

static char *conform_bin;
static char *tmpdir;

typedef struct {
  int status;
  char *out, *err;
} Run;

static G_GNUC_UNUSED void
run_clear(Run *r)
{
  g_free(r->out);
  g_free(r->err);
}

/* Runs conform in tmpdir with a NULL-terminated list of arguments; a crash
 * (no normal exit) fails the test. */
static G_GNUC_UNUSED Run
run(const char *first, ...)
{
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, conform_bin);
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a; a = va_arg(ap, const char *))
    g_ptr_array_add(argv, (gpointer)a);
  va_end(ap);
  g_ptr_array_add(argv, NULL);
  Run r = {0};
  int wait_status = 0;
  g_autoptr(GError) error = NULL;
  gboolean ok = g_spawn_sync(tmpdir, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &r.out, &r.err,
                             &wait_status, &error);
  g_assert_no_error(error);
  g_assert_true(ok);
  g_assert_true(WIFEXITED(wait_status)); /* never a crash */
  r.status = WEXITSTATUS(wait_status);
  g_ptr_array_free(argv, TRUE);
  return r;
}

static G_GNUC_UNUSED char *
tmp_path(const char *name)
{
  return g_build_filename(tmpdir, name, NULL);
}
