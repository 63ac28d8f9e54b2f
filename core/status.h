/* Status codes and error reports shared by every core module.
 *
 * Core functions that can fail on user input return a CfStatus and, when the
 * caller passes a CfError, fill it with a message that names the problem and
 * where it is (file:line:column, row, step). Programming errors (shape
 * mismatches while building a graph, NULL where forbidden) trip CF_ASSERT,
 * which is always on, also in release builds. */
#ifndef CF_STATUS_H
#define CF_STATUS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
  CF_OK = 0,
  CF_ERR_NOMEM,        /* allocation failed or a size exceeds the limits */
  CF_ERR_INVALID,      /* invalid argument or option value */
  CF_ERR_SHAPE,        /* dimension mismatch */
  CF_ERR_PARSE,        /* malformed text input */
  CF_ERR_IO,           /* cannot read or write a file */
  CF_ERR_RANK,         /* singular / rank-deficient where full rank is needed */
  CF_ERR_INCONSISTENT, /* A x = b has no solution */
  CF_ERR_NUMERIC,      /* NaN or Inf appeared */
  CF_ERR_CORRUPT,      /* truncated or corrupted binary file */
  CF_ERR_MISMATCH,     /* file is valid but belongs to another model shape */
  CF_ERR_ABORTED,      /* cancelled through the abort callback */
} CfStatus;

#define CF_ERROR_MSG_LEN 1024

typedef struct {
  CfStatus code;
  char msg[CF_ERROR_MSG_LEN];
} CfError;

const char *cf_status_to_string(CfStatus status);

/* Sets err (if non-NULL) and returns status, so callers can write
 * `return cf_error_set(err, CF_ERR_PARSE, "%s:%d:%d: ...", ...);` */
CfStatus cf_error_set(CfError *err, CfStatus status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
CfStatus cf_error_setv(CfError *err, CfStatus status, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* Prepends "prefix: " to an existing message (adds context on the way up). */
void cf_error_prefix(CfError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cf_error_clear(CfError *err);

/* Abort and progress callbacks for long loops (training, sampling, evaluation).
 * abort returns true to stop; progress receives done/total. Either may be NULL. */
typedef bool (*CfAbortFn)(void *user);
typedef void (*CfProgressFn)(void *user, long done, long total);

_Noreturn void cf_assert_fail(const char *expr, const char *file, int line);
#define CF_ASSERT(cond) \
  ((cond) ? (void)0 : cf_assert_fail(#cond, __FILE__, __LINE__))

/* Checked allocation helpers: return NULL on overflow or failure. */
void *cf_alloc_array(size_t count, size_t size);      /* malloc, uninitialised */
void *cf_calloc_array(size_t count, size_t size);     /* zeroed */
/* 64-byte aligned float buffer (for BLAS); free with cf_free_aligned. */
float *cf_alloc_floats(size_t count);
void cf_free_aligned(void *p);

#endif
