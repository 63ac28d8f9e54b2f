#include "status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
cf_status_to_string(CfStatus status)
{
  switch (status) {
  case CF_OK: return "ok";
  case CF_ERR_NOMEM: return "out of memory or size limit exceeded";
  case CF_ERR_INVALID: return "invalid value";
  case CF_ERR_SHAPE: return "dimension mismatch";
  case CF_ERR_PARSE: return "parse error";
  case CF_ERR_IO: return "input/output error";
  case CF_ERR_RANK: return "rank deficient";
  case CF_ERR_INCONSISTENT: return "inconsistent system";
  case CF_ERR_NUMERIC: return "non-finite number";
  case CF_ERR_CORRUPT: return "corrupt file";
  case CF_ERR_MISMATCH: return "model mismatch";
  case CF_ERR_ABORTED: return "aborted";
  }
  return "unknown status";
}

CfStatus
cf_error_setv(CfError *err, CfStatus status, const char *fmt, va_list ap)
{
  if (err) {
    err->code = status;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  }
  return status;
}

CfStatus
cf_error_set(CfError *err, CfStatus status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  cf_error_setv(err, status, fmt, ap);
  va_end(ap);
  return status;
}

void
cf_error_prefix(CfError *err, const char *fmt, ...)
{
  if (!err)
    return;
  char old[CF_ERROR_MSG_LEN];
  memcpy(old, err->msg, sizeof old);
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= sizeof err->msg - 2)
    return;
  size_t used = (size_t)k;
  err->msg[used++] = ':';
  err->msg[used++] = ' ';
  size_t room = sizeof err->msg - used - 1;
  size_t oldlen = strnlen(old, sizeof old - 1);
  if (oldlen > room)
    oldlen = room;
  memcpy(err->msg + used, old, oldlen);
  err->msg[used + oldlen] = '\0';
}

void
cf_error_clear(CfError *err)
{
  if (err) {
    err->code = CF_OK;
    err->msg[0] = '\0';
  }
}

void
cf_assert_fail(const char *expr, const char *file, int line)
{
  fprintf(stderr, "conform: internal error: assertion failed: %s (%s:%d)\n", expr, file, line);
  abort();
}

void *
cf_alloc_array(size_t count, size_t size)
{
  if (size != 0 && count > SIZE_MAX / size)
    return NULL;
  size_t bytes = count * size;
  return malloc(bytes != 0 ? bytes : 1);
}

void *
cf_calloc_array(size_t count, size_t size)
{
  return calloc(count ? count : 1, size ? size : 1);
}

float *
cf_alloc_floats(size_t count)
{
  if (count > (SIZE_MAX - 64) / sizeof(float))
    return NULL;
  size_t bytes = (count * sizeof(float) + 63) & ~(size_t)63;
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
    return NULL;
  memset(p, 0, bytes ? bytes : 64);
  return p;
}

void
cf_free_aligned(void *p)
{
  free(p);
}
