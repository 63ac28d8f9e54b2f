/* Fuzz body: checkpoints (core/checkpoint.c) and the classifier's reading
 * of one (app/conform-classifier.c).
 *
 * Bit 0 of the first byte set: the rest is the file as it is. Clear: the
 * body first writes the correct CRC-32 into the last four bytes, so the
 * fuzzer gets past the checksum to the structure behind it.
 *
 * On acceptance: version 1, header without NUL, 0..64 arenas with names of
 * 1..63 bytes; encoding the decoded checkpoint reproduces the file byte for
 * byte; cf_checkpoint_header_get and cf_checkpoint_find return the first
 * match; a header with model=classifier either makes a classifier whose
 * parameter count matches its arena and that predicts a class in range, or
 * an input error naming the file. On refusal: a corrupt/size status whose
 * message names the file, and an empty checkpoint. */
#include "fuzz.h"

#include <string.h>

#include "checkpoint.h"
#include "optim.h"
#include "conform-classifier.h"
#include "conform-config.h"

static void
setup(void)
{
  static gboolean done;
  if (done)
    return;
  done = TRUE;
  g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
}

/* Every "key=value" line: header_get(key) is the value of the first line
 * with that key. */
static void
check_header(const CfCheckpoint *ck)
{
  const char *h = ck->header;
  int lines = 0;
  for (const char *line = h; *line && lines < 64; lines++) {
    const char *nl = strchr(line, '\n');
    size_t ll = nl ? (size_t)(nl - line) : strlen(line);
    const char *eq = memchr(line, '=', ll);
    if (eq && eq > line) {
      g_autofree char *key = g_strndup(line, (gsize)(eq - line));
      g_autofree char *want = NULL;
      /* first line with this key */
      for (const char *l2 = h; *l2;) {
        const char *nl2 = strchr(l2, '\n');
        size_t l2l = nl2 ? (size_t)(nl2 - l2) : strlen(l2);
        size_t kl = strlen(key);
        if (l2l > kl && strncmp(l2, key, kl) == 0 && l2[kl] == '=') {
          want = g_strndup(l2 + kl + 1, l2l - kl - 1);
          break;
        }
        if (!nl2)
          break;
        l2 = nl2 + 1;
      }
      char *got = cf_checkpoint_header_get(ck, key);
      FUZZ_CHECK(g_strcmp0(got, want) == 0,
                 "header_get(%s) = '%s', expected '%s'", key, got, want);
      free(got);
    }
    if (!nl)
      break;
    line = nl + 1;
  }
}

static void
check_classifier(const CfCheckpoint *ck)
{
  g_autofree char *model = cf_checkpoint_header_get(ck, "model");
  if (g_strcmp0(model, "classifier") != 0)
    return;
  g_autoptr(GError) e = NULL;
  ConformClassifier *clf = conform_classifier_new_from_checkpoint(ck, "fuzz.ckpt", &e);
  if (!clf) {
    FUZZ_CHECK(e && e->domain == CONFORM_ERROR && e->code == CONFORM_ERROR_INPUT, "classifier error %s",
               e ? e->message : "(none)");
    FUZZ_CHECK(g_str_has_prefix(e->message, "fuzz.ckpt: "), "message does not name the file: %s", e->message);
    return;
  }
  const CfClassifierConfig *c = conform_classifier_config(clf);
  CfError err;
  FUZZ_CHECK(cf_classifier_config_check(c, &err) == CF_OK, "accepted config: %s", err.msg);
  const CfCkptArena *a = cf_checkpoint_find(ck, "params");
  FUZZ_CHECK(a != NULL && cf_all_finite(a->data, a->count), "params missing or not finite");
  size_t dim = (size_t)c->C * (size_t)c->H * (size_t)c->W;
  if (dim <= 4096) {
    float *img = g_new0(float, dim);
    int cls = -1;
    FUZZ_CHECK(conform_classifier_predict(clf, img, 1, &cls, NULL, &e), "predict: %s", e->message);
    FUZZ_CHECK(cls >= 0 && cls < c->n_classes, "class %d of %d", cls, c->n_classes);
    g_free(img);
  }
  conform_classifier_free(clf);
}

void
cf_fuzz_one(const uint8_t *data, size_t size)
{
  setup();
  if (size == 0)
    return;
  const bool raw = data[0] & 1;
  size_t len = size - 1;
  unsigned char *buf = g_malloc(len ? len : 1);
  memcpy(buf, data + 1, len);
  if (!raw && len >= 4) {
    uint32_t crc = cf_crc32(0, buf, len - 4);
    for (int i = 0; i < 4; i++)
      buf[len - 4 + i] = (unsigned char)(crc >> (8 * i));
  }

  CfCheckpoint ck;
  CfError err;
  cf_error_clear(&err);
  CfStatus st = cf_checkpoint_decode(&ck, buf, len, "fuzz.ckpt", &err);
  if (st != CF_OK) {
    FUZZ_CHECK(st == CF_ERR_CORRUPT || st == CF_ERR_NOMEM, "status %d: %s", (int)st, err.msg);
    FUZZ_CHECK(err.code == st && g_str_has_prefix(err.msg, "fuzz.ckpt: "), "message: %s", err.msg);
    FUZZ_CHECK(ck.header == NULL && ck.arenas == NULL && ck.n_arenas == 0, "refused file left a checkpoint");
    g_free(buf);
    return;
  }
  FUZZ_CHECK(ck.version == CF_CKPT_VERSION, "version %u", ck.version);
  FUZZ_CHECK(ck.header != NULL && strlen(ck.header) <= CF_CKPT_MAX_HEADER, "header");
  FUZZ_CHECK(ck.n_arenas >= 0 && ck.n_arenas <= CF_CKPT_MAX_ARENAS, "%d arenas", ck.n_arenas);
  for (int i = 0; i < ck.n_arenas; i++) {
    const CfCkptArena *a = &ck.arenas[i];
    size_t nl = strlen(a->name);
    FUZZ_CHECK(nl >= 1 && nl <= 63, "arena %d name length %zu", i, nl);
    FUZZ_CHECK(a->count == 0 || a->data != NULL, "arena %d has no data", i);
    FUZZ_CHECK(a->count <= len / 4, "arena %d claims %zu floats in %zu bytes", i, a->count, len);
    const CfCkptArena *f = cf_checkpoint_find(&ck, a->name);
    FUZZ_CHECK(f != NULL && f <= a && strcmp(f->name, a->name) == 0, "find(%s)", a->name);
  }
  /* what was read is exactly what the file says */
  unsigned char *again = NULL;
  size_t again_len = 0;
  st = cf_checkpoint_encode(ck.header, ck.arenas, ck.n_arenas, &again, &again_len, &err);
  FUZZ_CHECK(st == CF_OK, "re-encode: %s", err.msg);
  FUZZ_CHECK(again_len == len && memcmp(again, buf, len) == 0, "re-encoded %zu bytes differ from the %zu read",
             again_len, len);
  free(again);
  check_header(&ck);
  check_classifier(&ck);
  cf_checkpoint_clear(&ck);
  g_free(buf);
}
