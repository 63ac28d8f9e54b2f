/* See fuzz.h. Plain C and POSIX, so core targets need no GLib. */
#include "fuzz.h"

#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#define MAX_TMP 8

static char tmp_paths[MAX_TMP][512];
static int n_tmp;

/* Last first: a folder is registered before the files in it. */
static void
remove_tmp_files(void)
{
  for (int i = n_tmp - 1; i >= 0; i--)
    remove(tmp_paths[i]);
}

const char *
cf_fuzz_tmp_path(const char *tag)
{
  char want[512];
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir)
    dir = "/tmp";
  snprintf(want, sizeof want, "%s/conform-fuzz-%ld-%s", dir, (long)getpid(), tag);
  for (int i = 0; i < n_tmp; i++)
    if (strcmp(tmp_paths[i], want) == 0)
      return tmp_paths[i];
  FUZZ_CHECK(n_tmp < MAX_TMP, "too many temporary files");
  if (n_tmp == 0)
    atexit(remove_tmp_files);
  memcpy(tmp_paths[n_tmp], want, sizeof want);
  return tmp_paths[n_tmp++];
}

void
cf_fuzz_write_file(const char *path, const void *data, size_t size)
{
  /* a new file each time: ext4 flushes a file truncated and rewritten on
   * close (auto_da_alloc), which made this the slowest part of a run */
  unlink(path);
  FILE *f = fopen(path, "wb");
  FUZZ_CHECK(f != NULL, "cannot create %s", path);
  bool ok = size == 0 || fwrite(data, 1, size, f) == size;
  ok = fclose(f) == 0 && ok;
  FUZZ_CHECK(ok, "cannot write %s", path);
}
