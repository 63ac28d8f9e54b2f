#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

static void
make(unsigned char **buf, size_t *len)
{
  static float a[5] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-30f};
  static float b[3] = {7.0f, 8.0f, 9.0f};
  CfCkptArena arenas[2] = {{"params", 5, a}, {"adam.m", 3, b}};
  CfError err;
  g_assert_cmpint(cf_checkpoint_encode("dim=2\nwidth=128\n", arenas, 2, buf, len, &err), ==, CF_OK);
}

static void
test_roundtrip(void)
{
  unsigned char *buf;
  size_t len;
  make(&buf, &len);
  CfCheckpoint ck;
  CfError err;
  g_assert_cmpint(cf_checkpoint_decode(&ck, buf, len, "w.ckpt", &err), ==, CF_OK);
  g_assert_cmpint(ck.n_arenas, ==, 2);
  const CfCkptArena *p = cf_checkpoint_find(&ck, "params");
  g_assert_nonnull(p);
  g_assert_cmpuint(p->count, ==, 5);
  g_assert_cmpfloat(p->data[2], ==, 3.25f);
  g_assert_cmpfloat(p->data[4], ==, 1e-30f);
  g_assert_null(cf_checkpoint_find(&ck, "nope"));
  char *w = cf_checkpoint_header_get(&ck, "width");
  g_assert_cmpstr(w, ==, "128");
  free(w);
  g_assert_null(cf_checkpoint_header_get(&ck, "wid"));
  cf_checkpoint_clear(&ck);
  free(buf);
}

static void
test_crc(void)
{
  /* Standard check value of CRC-32/IEEE. */
  g_assert_cmphex(cf_crc32(0, "123456789", 9), ==, 0xCBF43926u);
}

static void
test_truncated_everywhere(void)
{
  unsigned char *buf;
  size_t len;
  make(&buf, &len);
  for (size_t cut = 0; cut < len; cut++) {
    CfCheckpoint ck;
    CfError err;
    CfStatus st = cf_checkpoint_decode(&ck, buf, cut, "w.ckpt", &err);
    g_assert_cmpint(st, ==, CF_ERR_CORRUPT);
    g_assert_nonnull(strstr(err.msg, "w.ckpt"));
  }
  free(buf);
}

static void
test_bitflips_everywhere(void)
{
  unsigned char *buf;
  size_t len;
  make(&buf, &len);
  for (size_t i = 0; i < len; i++) {
    for (int bit = 0; bit < 8; bit += 3) {
      buf[i] ^= (unsigned char)(1u << bit);
      CfCheckpoint ck;
      CfError err;
      CfStatus st = cf_checkpoint_decode(&ck, buf, len, "w.ckpt", &err);
      g_assert_cmpint(st, ==, CF_ERR_CORRUPT);
      buf[i] ^= (unsigned char)(1u << bit);
    }
  }
  free(buf);
}

static void
test_messages(void)
{
  unsigned char *buf;
  size_t len;
  make(&buf, &len);
  CfCheckpoint ck;
  CfError err;
  buf[0] = 'X';
  g_assert_cmpint(cf_checkpoint_decode(&ck, buf, len, "w.ckpt", &err), ==, CF_ERR_CORRUPT);
  g_assert_nonnull(strstr(err.msg, "not a Conform checkpoint"));
  buf[0] = 'C';
  buf[len - 20] ^= 1;
  g_assert_cmpint(cf_checkpoint_decode(&ck, buf, len, "w.ckpt", &err), ==, CF_ERR_CORRUPT);
  g_assert_nonnull(strstr(err.msg, "checksum"));
  free(buf);
}

/* Found by fuzzing (tests/fuzz, target checkpoint): an arena name with a
 * NUL byte was accepted and cut at the NUL, so "params\0xy" was found as
 * "params"; names are refused like a header with a NUL byte. */
static void
test_arena_name_nul(void)
{
  unsigned char *buf;
  size_t len;
  make(&buf, &len);
  /* "params" starts after magic, version, header length, header, count, name length */
  const size_t name_at = 8 + 4 + 4 + strlen("dim=2\nwidth=128\n") + 4 + 4;
  g_assert_cmpint(memcmp(buf + name_at, "params", 6), ==, 0);
  buf[name_at + 4] = '\0'; /* "para\0s" */
  uint32_t crc = cf_crc32(0, buf, len - 4);
  for (int i = 0; i < 4; i++)
    buf[len - 4 + i] = (unsigned char)(crc >> (8 * i));
  CfCheckpoint ck;
  CfError err;
  g_assert_cmpint(cf_checkpoint_decode(&ck, buf, len, "w.ckpt", &err), ==, CF_ERR_CORRUPT);
  g_assert_cmpstr(err.msg, ==, "w.ckpt: arena 0 name contains a NUL byte at offset 44");
  g_assert_null(ck.arenas);
  free(buf);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/checkpoint/roundtrip", test_roundtrip);
  g_test_add_func("/checkpoint/crc", test_crc);
  g_test_add_func("/checkpoint/truncated", test_truncated_everywhere);
  g_test_add_func("/checkpoint/bitflips", test_bitflips_everywhere);
  g_test_add_func("/checkpoint/messages", test_messages);
  g_test_add_func("/checkpoint/arena-name-nul", test_arena_name_nul);
  return g_test_run();
}
