/* Versioned binary checkpoint format.
 *
 *   offset  size  field
 *   0       8     magic "CONFCKPT"
 *   8       4     format version (uint32 LE), currently 1
 *   12      4     header length H (uint32 LE, <= CF_CKPT_MAX_HEADER)
 *   16      H     header: UTF-8 "key=value\n" lines (model configuration)
 *   ..      4     arena count N (uint32 LE, <= CF_CKPT_MAX_ARENAS)
 *   per arena:
 *           4     name length L (uint32 LE, 1..63), then L bytes of name
 *           8     float count C (uint64 LE)
 *           4*C   float32 LE values
 *   end-4   4     CRC-32 (IEEE) of every preceding byte
 *
 * Decoding checks every length against the bytes actually present before
 * using it, so truncated or corrupted files are refused with a message that
 * says what is wrong and at which byte offset. */
#ifndef CF_CHECKPOINT_H
#define CF_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define CF_CKPT_VERSION 1
#define CF_CKPT_MAX_HEADER (1u << 20)
#define CF_CKPT_MAX_ARENAS 64

typedef struct {
  char name[64];
  size_t count;
  float *data; /* encode: borrowed; decode: owned (cf_alloc_floats) */
} CfCkptArena;

typedef struct {
  uint32_t version;
  char *header; /* NUL-terminated copy */
  int n_arenas;
  CfCkptArena *arenas;
} CfCheckpoint;

uint32_t cf_crc32(uint32_t crc, const void *data, size_t len);

/* Serialises into a malloc'ed buffer (*out, *len). */
CfStatus cf_checkpoint_encode(const char *header, const CfCkptArena *arenas, int n_arenas,
                              unsigned char **out, size_t *len, CfError *err);
/* Parses and validates buf; origin names the file in messages. */
CfStatus cf_checkpoint_decode(CfCheckpoint *ck, const unsigned char *buf, size_t len,
                              const char *origin, CfError *err);
void cf_checkpoint_clear(CfCheckpoint *ck);
const CfCkptArena *cf_checkpoint_find(const CfCheckpoint *ck, const char *name);
/* Value of `key` in the header as a malloc'ed string, or NULL. */
char *cf_checkpoint_header_get(const CfCheckpoint *ck, const char *key);

#endif
