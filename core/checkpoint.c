#include "checkpoint.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char magic[8] = {'C', 'O', 'N', 'F', 'C', 'K', 'P', 'T'};

uint32_t
cf_crc32(uint32_t crc, const void *data, size_t len)
{
  /* Reflected CRC-32 (polynomial 0xEDB88320), table built per call (cheap
   * next to the megabytes it then checks; keeps core free of globals). */
  uint32_t table[256];
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  const unsigned char *p = data;
  crc = ~crc;
  for (size_t i = 0; i < len; i++)
    crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void
put_u64(unsigned char *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
get_u32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get_u64(const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

CfStatus
cf_checkpoint_encode(const char *header, const CfCkptArena *arenas, int n_arenas,
                     unsigned char **out, size_t *len, CfError *err)
{
  *out = NULL;
  *len = 0;
  size_t hlen = header ? strlen(header) : 0;
  if (hlen > CF_CKPT_MAX_HEADER)
    return cf_error_set(err, CF_ERR_INVALID, "checkpoint header too long (%zu bytes)", hlen);
  if (n_arenas < 0 || n_arenas > CF_CKPT_MAX_ARENAS)
    return cf_error_set(err, CF_ERR_INVALID, "too many arenas (%d)", n_arenas);
  size_t total = 8 + 4 + 4 + hlen + 4 + 4;
  for (int i = 0; i < n_arenas; i++) {
    size_t nl = strlen(arenas[i].name);
    if (nl == 0 || nl > 63)
      return cf_error_set(err, CF_ERR_INVALID, "arena %d has an invalid name", i);
    if (arenas[i].count > (SIZE_MAX - total) / 8)
      return cf_error_set(err, CF_ERR_NOMEM, "arena '%s' too large", arenas[i].name);
    total += 4 + nl + 8 + 4 * arenas[i].count;
  }
  unsigned char *buf = malloc(total);
  if (!buf)
    return cf_error_set(err, CF_ERR_NOMEM, "cannot allocate %zu bytes for the checkpoint", total);
  unsigned char *p = buf;
  memcpy(p, magic, 8);
  p += 8;
  put_u32(p, CF_CKPT_VERSION);
  p += 4;
  put_u32(p, (uint32_t)hlen);
  p += 4;
  if (hlen)
    memcpy(p, header, hlen);
  p += hlen;
  put_u32(p, (uint32_t)n_arenas);
  p += 4;
  for (int i = 0; i < n_arenas; i++) {
    uint32_t nl = (uint32_t)strlen(arenas[i].name);
    put_u32(p, nl);
    p += 4;
    memcpy(p, arenas[i].name, nl);
    p += nl;
    put_u64(p, arenas[i].count);
    p += 8;
    for (size_t k = 0; k < arenas[i].count; k++) {
      uint32_t bits;
      memcpy(&bits, &arenas[i].data[k], 4);
      put_u32(p, bits);
      p += 4;
    }
  }
  put_u32(p, cf_crc32(0, buf, (size_t)(p - buf)));
  p += 4;
  CF_ASSERT((size_t)(p - buf) == total);
  *out = buf;
  *len = total;
  return CF_OK;
}

void
cf_checkpoint_clear(CfCheckpoint *ck)
{
  if (!ck)
    return;
  free(ck->header);
  for (int i = 0; i < ck->n_arenas; i++)
    cf_free_aligned(ck->arenas[i].data);
  free(ck->arenas);
  memset(ck, 0, sizeof *ck);
}

#define NEED(nbytes, what)                                                                    \
  do {                                                                                       \
    if ((size_t)(end - p) < (size_t)(nbytes)) {                                              \
      st = cf_error_set(err, CF_ERR_CORRUPT,                                                 \
                        "%s: truncated checkpoint: %s needs %zu bytes at offset %zu, "      \
                        "only %zu left",                                                     \
                        origin, what, (size_t)(nbytes), (size_t)(p - buf), (size_t)(end - p)); \
      goto fail;                                                                             \
    }                                                                                        \
  } while (0)

CfStatus
cf_checkpoint_decode(CfCheckpoint *ck, const unsigned char *buf, size_t len, const char *origin,
                     CfError *err)
{
  CfStatus st = CF_OK;
  memset(ck, 0, sizeof *ck);
  if (!origin)
    origin = "<checkpoint>";
  const unsigned char *p = buf;
  const unsigned char *end = buf + len;
  if (len < 8 || memcmp(buf, magic, 8) != 0)
    return cf_error_set(err, CF_ERR_CORRUPT, "%s: not a Conform checkpoint (bad magic number)", origin);
  if (len < 8 + 4 + 4 + 4 + 4)
    return cf_error_set(err, CF_ERR_CORRUPT, "%s: truncated checkpoint (%zu bytes)", origin, len);
  /* Checksum first: anything after this is structurally validated too. */
  uint32_t stored = get_u32(end - 4);
  uint32_t actual = cf_crc32(0, buf, len - 4);
  end -= 4;
  p += 8;
  ck->version = get_u32(p);
  p += 4;
  if (stored != actual) {
    st = cf_error_set(err, CF_ERR_CORRUPT,
                      "%s: checksum mismatch (stored %08x, computed %08x): the file is corrupted or truncated",
                      origin, stored, actual);
    goto fail;
  }
  if (ck->version != CF_CKPT_VERSION) {
    st = cf_error_set(err, CF_ERR_CORRUPT, "%s: checkpoint format version %u is not supported (this build reads version %d)",
                      origin, ck->version, CF_CKPT_VERSION);
    goto fail;
  }
  uint32_t hlen = get_u32(p);
  p += 4;
  if (hlen > CF_CKPT_MAX_HEADER) {
    st = cf_error_set(err, CF_ERR_CORRUPT, "%s: header length %u exceeds the limit", origin, hlen);
    goto fail;
  }
  NEED(hlen, "the header");
  ck->header = malloc((size_t)hlen + 1);
  if (!ck->header) {
    st = cf_error_set(err, CF_ERR_NOMEM, "%s: out of memory", origin);
    goto fail;
  }
  memcpy(ck->header, p, hlen);
  ck->header[hlen] = '\0';
  if (strlen(ck->header) != hlen) {
    st = cf_error_set(err, CF_ERR_CORRUPT, "%s: header contains a NUL byte", origin);
    goto fail;
  }
  p += hlen;
  NEED(4, "the arena count");
  uint32_t n = get_u32(p);
  p += 4;
  if (n > CF_CKPT_MAX_ARENAS) {
    st = cf_error_set(err, CF_ERR_CORRUPT, "%s: arena count %u exceeds the limit %d", origin, n, CF_CKPT_MAX_ARENAS);
    goto fail;
  }
  ck->arenas = calloc(n ? n : 1, sizeof *ck->arenas);
  if (!ck->arenas) {
    st = cf_error_set(err, CF_ERR_NOMEM, "%s: out of memory", origin);
    goto fail;
  }
  for (uint32_t i = 0; i < n; i++) {
    NEED(4, "an arena name length");
    uint32_t nl = get_u32(p);
    p += 4;
    if (nl == 0 || nl > 63) {
      st = cf_error_set(err, CF_ERR_CORRUPT, "%s: arena %u has an invalid name length %u at offset %zu",
                        origin, i, nl, (size_t)(p - buf - 4));
      goto fail;
    }
    NEED(nl, "an arena name");
    const unsigned char *nul = memchr(p, '\0', nl);
    if (nul) {
      st = cf_error_set(err, CF_ERR_CORRUPT, "%s: arena %u name contains a NUL byte at offset %zu", origin, i,
                        (size_t)(nul - buf));
      goto fail;
    }
    CfCkptArena *a = &ck->arenas[i];
    memcpy(a->name, p, nl);
    a->name[nl] = '\0';
    p += nl;
    NEED(8, "an arena size");
    uint64_t count = get_u64(p);
    p += 8;
    if (count > (uint64_t)(end - p) / 4) {
      st = cf_error_set(err, CF_ERR_CORRUPT,
                        "%s: arena '%s' claims %llu floats but only %zu bytes remain",
                        origin, a->name, (unsigned long long)count, (size_t)(end - p));
      goto fail;
    }
    a->count = (size_t)count;
    a->data = cf_alloc_floats(a->count);
    if (!a->data) {
      st = cf_error_set(err, CF_ERR_NOMEM, "%s: out of memory for arena '%s'", origin, a->name);
      goto fail;
    }
    for (size_t k = 0; k < a->count; k++) {
      uint32_t bits = get_u32(p + 4 * k);
      memcpy(&a->data[k], &bits, 4);
    }
    p += 4 * a->count;
    ck->n_arenas = (int)i + 1;
  }
  if (p != end) {
    st = cf_error_set(err, CF_ERR_CORRUPT, "%s: %zu unexpected bytes after the last arena", origin, (size_t)(end - p));
    goto fail;
  }
  return CF_OK;
fail:
  cf_checkpoint_clear(ck);
  return st;
}

const CfCkptArena *
cf_checkpoint_find(const CfCheckpoint *ck, const char *name)
{
  for (int i = 0; i < ck->n_arenas; i++)
    if (strcmp(ck->arenas[i].name, name) == 0)
      return &ck->arenas[i];
  return NULL;
}

char *
cf_checkpoint_header_get(const CfCheckpoint *ck, const char *key)
{
  if (!ck->header)
    return NULL;
  size_t kl = strlen(key);
  const char *line = ck->header;
  while (*line) {
    const char *nl = strchr(line, '\n');
    size_t ll = nl ? (size_t)(nl - line) : strlen(line);
    if (ll > kl && strncmp(line, key, kl) == 0 && line[kl] == '=') {
      size_t vl = ll - kl - 1;
      char *v = malloc(vl + 1);
      if (!v)
        return NULL;
      memcpy(v, line + kl + 1, vl);
      v[vl] = '\0';
      return v;
    }
    if (!nl)
      break;
    line = nl + 1;
  }
  return NULL;
}
