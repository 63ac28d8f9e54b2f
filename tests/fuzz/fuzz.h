/* Shared by the fuzz targets of tests/fuzz (see README "Fuzzing").
 *
 * Each target has a body, fuzz_<target>_body.c, defining cf_fuzz_one(): it
 * feeds one input to a parser and, when the parser accepts it, checks the
 * invariants the parser promises (shapes consistent, values finite, a round
 * trip reproduces the result, ...). A broken invariant aborts. The same body
 * is linked into two programs: the libFuzzer target fuzz-<target>
 * (fuzz_main.c, clang, -Dfuzz) and the corpus test test-fuzz-<target>
 * (test_fuzz_corpus.c), which runs it over tests/fuzz/corpus/<target>/ in
 * every build. */
#ifndef CF_FUZZ_H
#define CF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* One input. Must not leak, must not keep state that changes later results. */
void cf_fuzz_one(const uint8_t *data, size_t size);

/* A fixed path for this process (in $TMPDIR or /tmp, with the pid and
 * `tag` in its name), removed at exit (paths asked for later first, so a
 * folder can hold files asked for after it). */
const char *cf_fuzz_tmp_path(const char *tag);
/* Writes data to path (aborts when it cannot). */
void cf_fuzz_write_file(const char *path, const void *data, size_t size);

/* An invariant of the parser under test; on failure says which and aborts
 * (libFuzzer then saves the input as a crash). */
#define FUZZ_CHECK(cond, ...)                                                           \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);      \
      fprintf(stderr, __VA_ARGS__);                                                     \
      fputc('\n', stderr);                                                              \
      abort();                                                                          \
    }                                                                                   \
  } while (0)

#endif
