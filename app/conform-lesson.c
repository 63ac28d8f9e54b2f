#define G_LOG_DOMAIN "conform"

#include "conform-lesson.h"

#include <math.h>
#include <string.h>

#include "conform-classifier.h"
#include "conform-image-data.h"
#include "conform-io.h"
#include "conform-manifest.h"
#include "conform-presets.h"
#include "data.h"

#define LESSON_MAX_BYTES (1u << 20)

static const char *const view_names[] = {"samples", "histogram", "curves", "trajectory", "constraint", "compare",
                                         "history", NULL};
static const char *const header_names[] = {"preset", "strategy", NULL};
static const char *const lesson_keys[] = {"title", "summary", "preset", "strategy", "strategies", "constraint",
                                          "constraint_file", "visible", "hidden", NULL};
static const char *const step_keys[] = {"title", "text", "action", "question", "choices", "correct", "answer", NULL};
/* Pango markup elements */
static const char *const markup_tags[] = {"markup", "b", "big", "i", "s", "sub", "sup", "small", "tt", "u", "span",
                                          NULL};
static const char *const value_names[] = {"step", "loss", "n_samples", "strategy", "violation_median", "violation_p99",
                                          "violation_max", "frac_satisfied", "energy_distance", "mmd", "fd_classifier",
                                          "test_ll", "class_tv_target", "cond_rmse", "prediction", NULL};

const char *const *
conform_lesson_view_names(void)
{
  return view_names;
}

const char *const *
conform_lesson_header_names(void)
{
  return header_names;
}

/* ---- freeing ----------------------------------------------------------------------- */

static void
step_clear(ConformLessonStep *s)
{
  g_free(s->title);
  g_free(s->text);
  g_free(s->action_text);
  for (int i = 0; i < s->n_actions; i++) {
    g_free(s->actions[i].key);
    g_free(s->actions[i].value);
  }
  g_free(s->actions);
  g_free(s->question);
  g_strfreev(s->choices);
  g_free(s->answer);
}

void
conform_lesson_free(ConformLesson *l)
{
  if (!l)
    return;
  g_free(l->path);
  g_free(l->title);
  g_free(l->summary);
  g_free(l->preset);
  g_free(l->strategy);
  g_strfreev(l->strategies);
  g_free(l->constraint);
  g_strfreev(l->setting_keys);
  g_strfreev(l->setting_values);
  g_strfreev(l->visible);
  g_strfreev(l->hidden);
  for (int i = 0; i < l->n_steps; i++)
    step_clear(&l->steps[i]);
  g_free(l->steps);
  g_free(l);
}

/* ---- where things are in the file ---------------------------------------------------- */

typedef struct {
  const char *origin;
  GHashTable *lines; /* "group" and "group\037key" -> line number */
  GPtrArray *groups; /* in file order */
} Ctx;

static int
line_of(const Ctx *c, const char *group, const char *key)
{
  g_autofree char *k = key ? g_strdup_printf("%s\037%s", group, key) : g_strdup(group);
  return GPOINTER_TO_INT(g_hash_table_lookup(c->lines, k));
}

static gboolean err_at(GError **error, const Ctx *c, const char *group, const char *key, const char *fmt, ...)
  G_GNUC_PRINTF(5, 6);

/* "FILE:LINE: [group] key: message" */
static gboolean
err_at(GError **error, const Ctx *c, const char *group, const char *key, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  int line = group ? line_of(c, group, key) : 0;
  if (!line && group && key)
    line = line_of(c, group, NULL);
  g_autofree char *where = line ? g_strdup_printf("%s:%d", c->origin, line) : g_strdup(c->origin);
  if (group && key)
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: [%s] %s: %s", where, group, key, msg);
  else if (group)
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: [%s]: %s", where, group, msg);
  else
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s", where, msg);
  return FALSE;
}

static gboolean
step_group_number(const char *group, int *n)
{
  guint64 v;
  if (!g_str_has_prefix(group, "step ") || !g_ascii_string_to_unsigned(group + 5, 10, 1, 9999, &v, NULL))
    return FALSE;
  *n = (int)v;
  return TRUE;
}

/* The key without a locale suffix: "text[de]" -> "text". */
static char *
base_key(const char *key)
{
  const char *b = strchr(key, '[');
  return b ? g_strndup(key, (gsize)(b - key)) : g_strdup(key);
}

/* Line structure, duplicates, unknown sections and keys, before GKeyFile
 * (which merges duplicates silently and reports no line numbers). */
static gboolean
prescan(Ctx *c, const char *text, GError **error)
{
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  const char *group = NULL;
  for (int i = 0; lines[i]; i++) {
    int ln = i + 1;
    char *line = g_strstrip(lines[i]);
    if (line[0] == '\0' || line[0] == '#')
      continue;
    if (line[0] == '[') {
      gsize len = strlen(line);
      if (line[len - 1] != ']' || len < 3)
        return err_at(error, c, NULL, NULL, "line %d: a section header is [name], got '%s'", ln, line), FALSE;
      g_autofree char *name = g_strndup(line + 1, len - 2);
      int n;
      if (!g_str_equal(name, "lesson") && !g_str_equal(name, "settings") && !step_group_number(name, &n)) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT,
                    "%s:%d: unknown section [%s]; sections are [lesson], [settings] and [step N] (N = 1, 2, ...)",
                    c->origin, ln, name);
        return FALSE;
      }
      int first = line_of(c, name, NULL);
      if (first) {
        g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s:%d: section [%s] appears twice (first on line %d)",
                    c->origin, ln, name, first);
        return FALSE;
      }
      g_hash_table_insert(c->lines, g_strdup(name), GINT_TO_POINTER(ln));
      group = g_intern_string(name);
      g_ptr_array_add(c->groups, (gpointer)group);
      continue;
    }
    const char *eq = strchr(line, '=');
    if (!eq || eq == line) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s:%d: expected key = value, a [section] or a # comment, got '%s'",
                  c->origin, ln, line);
      return FALSE;
    }
    if (!group) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s:%d: key outside a section (start with [lesson])",
                  c->origin, ln);
      return FALSE;
    }
    g_autofree char *key = g_strstrip(g_strndup(line, (gsize)(eq - line)));
    g_autofree char *base = base_key(key);
    const char *const *valid = g_str_equal(group, "lesson") ? lesson_keys
                               : g_str_has_prefix(group, "step ") ? step_keys
                                                                   : NULL;
    if (valid && !g_strv_contains(valid, base)) {
      g_autofree char *list = g_strjoinv(", ", (char **)valid);
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s:%d: [%s] unknown key '%s'; valid keys: %s", c->origin,
                  ln, group, key, list);
      return FALSE;
    }
    g_autofree char *k = g_strdup_printf("%s\037%s", group, key);
    int first = GPOINTER_TO_INT(g_hash_table_lookup(c->lines, k));
    if (first) {
      g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s:%d: [%s] %s is set twice (first on line %d)",
                  c->origin, ln, group, key, first);
      return FALSE;
    }
    g_hash_table_insert(c->lines, g_steal_pointer(&k), GINT_TO_POINTER(ln));
  }
  return TRUE;
}

/* ---- markup and placeholders ---------------------------------------------------------- */

static void
markup_start_cb(GMarkupParseContext *ctx, const char *element, const char **names, const char **values,
                gpointer user, GError **error)
{
  if (!g_strv_contains(markup_tags, element))
    g_set_error(error, G_MARKUP_ERROR, G_MARKUP_ERROR_UNKNOWN_ELEMENT,
                "unknown markup element <%s> (Pango markup: b, i, u, s, sub, sup, small, big, tt, span)", element);
}

static gboolean
check_markup(const char *text, GError **error)
{
  static const GMarkupParser parser = {markup_start_cb, NULL, NULL, NULL, NULL};
  g_autofree char *wrapped = g_strdup_printf("<markup>%s</markup>", text);
  GMarkupParseContext *ctx = g_markup_parse_context_new(&parser, 0, NULL, NULL);
  gboolean ok = g_markup_parse_context_parse(ctx, wrapped, -1, error) && g_markup_parse_context_end_parse(ctx, error);
  g_markup_parse_context_free(ctx);
  return ok;
}

static gboolean
indexed_name(const char *name, const char *prefix, int max, int *index)
{
  guint64 v;
  if (!g_str_has_prefix(name, prefix) ||
      !g_ascii_string_to_unsigned(name + strlen(prefix), 10, 0, (guint64)max - 1, &v, NULL))
    return FALSE;
  *index = (int)v;
  return TRUE;
}

static gboolean
placeholder_known(const char *name)
{
  int k;
  return g_strv_contains(value_names, name) || indexed_name(name, "class_share_", 10, &k) ||
         indexed_name(name, "train_share_", 10, &k) || indexed_name(name, "predicted_share_", 10, &k) ||
         indexed_name(name, "lambda_", CONFORM_RECORD_DUAL_MAX, &k) ||
         indexed_name(name, "slack_", CONFORM_RECORD_DUAL_MAX, &k);
}

/* Calls fn for each {name}; "{{" and "}}" are literal braces. FALSE on an unclosed
 * brace or when fn returns FALSE. */
static gboolean
scan_placeholders(const char *text, gboolean (*fn)(const char *name, gpointer user), gpointer user, GString *out)
{
  for (const char *p = text; *p; p++) {
    if (*p == '{' && p[1] == '{') {
      if (out)
        g_string_append_c(out, '{');
      p++;
      continue;
    }
    if (*p == '}' && p[1] == '}') {
      if (out)
        g_string_append_c(out, '}');
      p++;
      continue;
    }
    if (*p != '{') {
      if (out)
        g_string_append_c(out, *p);
      continue;
    }
    const char *end = strchr(p, '}');
    if (!end)
      return FALSE;
    g_autofree char *name = g_strndup(p + 1, (gsize)(end - p - 1));
    if (!fn(g_strstrip(name), user))
      return FALSE;
    p = end;
  }
  return TRUE;
}

typedef struct {
  char *bad;
} CheckNames;

static gboolean
check_name_cb(const char *name, gpointer user)
{
  CheckNames *c = user;
  if (placeholder_known(name))
    return TRUE;
  c->bad = g_strdup(name);
  return FALSE;
}

static gboolean
check_text(const Ctx *c, const char *group, const char *key, const char *text, GError **error)
{
  g_autoptr(GError) e = NULL;
  if (!check_markup(text, &e)) {
    if (g_error_matches(e, G_MARKUP_ERROR, G_MARKUP_ERROR_UNKNOWN_ELEMENT))
      return err_at(error, c, group, key, "%s", e->message);
    return err_at(error, c, group, key,
                  "malformed Pango markup (close every <tag>, write & as &amp; and < as &lt;): %s", e->message);
  }
  CheckNames cn = {NULL};
  if (!scan_placeholders(text, check_name_cb, &cn, NULL)) {
    if (!cn.bad)
      return err_at(error, c, group, key, "'{' without a closing '}' (write {{ for a literal brace)");
    g_autofree char *valid = g_strjoinv(", ", (char **)value_names);
    err_at(error, c, group, key,
           "unknown placeholder {%s}; known: %s, class_share_K, train_share_K, predicted_share_K, lambda_I, slack_I",
           cn.bad, valid);
    g_free(cn.bad);
    return FALSE;
  }
  return TRUE;
}

/* ---- values ---------------------------------------------------------------------- */

static char *
number(double v)
{
  if (!isfinite(v))
    return g_strdup("n/a");
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_strdup(g_ascii_formatd(buf, sizeof buf, "%.3g", v));
}

static char *
value_text(const char *name, const ConformLessonValues *v)
{
  const ConformSampleSet *s = v->samples;
  const ConformSummary *m = s ? &s->summary : NULL;
  const ConformTrainRecord *r = v->record;
  int k;
  if (g_str_equal(name, "prediction"))
    return g_strdup(v->prediction && *v->prediction ? v->prediction : "(none)");
  if (g_str_equal(name, "step"))
    return g_strdup_printf("%ld", v->step);
  if (g_str_equal(name, "loss"))
    return number(r ? r->loss : NAN);
  if (g_str_equal(name, "strategy"))
    return g_strdup(s ? s->strategy : "n/a");
  if (!m)
    return g_strdup("n/a");
  gboolean c = m->has_constraint;
  if (g_str_equal(name, "n_samples"))
    return g_strdup_printf("%d", s->n);
  if (g_str_equal(name, "violation_median"))
    return number(c ? m->viol.median : NAN);
  if (g_str_equal(name, "violation_p99"))
    return number(c ? m->viol.p99 : NAN);
  if (g_str_equal(name, "violation_max"))
    return number(c ? m->viol.max : NAN);
  if (g_str_equal(name, "frac_satisfied"))
    return number(c ? m->viol.frac_satisfied : NAN);
  if (g_str_equal(name, "energy_distance"))
    return number(m->energy_distance);
  if (g_str_equal(name, "mmd"))
    return number(m->mmd);
  if (g_str_equal(name, "fd_classifier"))
    return number(m->has_classes ? m->fd_classifier : NAN);
  if (g_str_equal(name, "test_ll"))
    return number(m->has_vae ? m->test_ll : NAN);
  if (g_str_equal(name, "class_tv_target"))
    return number(m->n_classes > 0 ? m->class_tv_target : NAN);
  if (g_str_equal(name, "cond_rmse"))
    return number(m->cond_rmse);
  gboolean shares = m->has_classes || m->n_classes > 0;
  if (indexed_name(name, "class_share_", 10, &k))
    return number(shares ? m->class_share[k] : NAN);
  if (indexed_name(name, "train_share_", 10, &k))
    return number(shares ? m->train_share[k] : NAN);
  if (indexed_name(name, "predicted_share_", 10, &k))
    return number(m->has_predicted ? m->predicted_share[k] : NAN);
  if (indexed_name(name, "lambda_", CONFORM_RECORD_DUAL_MAX, &k))
    return number(r && k < r->n_dual ? r->lambda[k] : NAN);
  if (indexed_name(name, "slack_", CONFORM_RECORD_DUAL_MAX, &k))
    return number(r && k < r->n_dual ? r->slack[k] : NAN);
  return g_strdup("n/a");
}

typedef struct {
  const ConformLessonValues *v;
  GString *out;
} Fill;

static gboolean
fill_cb(const char *name, gpointer user)
{
  Fill *f = user;
  g_autofree char *t = value_text(name, f->v);
  g_autofree char *esc = g_markup_escape_text(t, -1);
  g_string_append(f->out, esc);
  return TRUE;
}

char *
conform_lesson_fill(const char *markup, const ConformLessonValues *v)
{
  GString *out = g_string_new(NULL);
  Fill f = {v, out};
  scan_placeholders(markup ? markup : "", fill_cb, &f, out);
  return g_string_free(out, FALSE);
}

/* ---- controls ------------------------------------------------------------------------ */

typedef enum { CONTROL_SETTING, CONTROL_VIEW, CONTROL_HEADER } ControlKind;

static ControlKind
control_kind(const char *name)
{
  if (strchr(name, '.'))
    return CONTROL_SETTING;
  if (g_strv_contains(header_names, name))
    return CONTROL_HEADER;
  return CONTROL_VIEW;
}

static gboolean
matches(const char *const *patterns, const char *name)
{
  for (int i = 0; patterns && patterns[i]; i++)
    if (g_pattern_match_simple(patterns[i], name))
      return TRUE;
  return FALSE;
}

gboolean
conform_lesson_control_visible(const ConformLesson *l, const char *control)
{
  g_return_val_if_fail(l != NULL && control != NULL, TRUE);
  ControlKind kind = control_kind(control);
  gboolean restricted = FALSE;
  for (int i = 0; l->visible && l->visible[i]; i++)
    if (control_kind(l->visible[i]) == kind ||
        (kind != CONTROL_SETTING && !strchr(l->visible[i], '.') && strpbrk(l->visible[i], "*?")))
      restricted = TRUE;
  gboolean shown = !restricted || matches((const char *const *)l->visible, control);
  return shown && !matches((const char *const *)l->hidden, control);
}

static gboolean
control_known(const char *name)
{
  gboolean glob = strpbrk(name, "*?") != NULL;
  if (control_kind(name) == CONTROL_SETTING) {
    if (!glob)
      return conform_config_find_key(name) != NULL;
    guint nk;
    const ConformKey *keys = conform_config_keys(&nk);
    for (guint i = 0; i < nk; i++)
      if (g_pattern_match_simple(name, keys[i].key))
        return TRUE;
    return FALSE;
  }
  for (int k = 0; k < 2; k++) {
    const char *const *names = k ? header_names : view_names;
    for (int i = 0; names[i]; i++)
      if (glob ? g_pattern_match_simple(name, names[i]) : g_str_equal(name, names[i]))
        return TRUE;
  }
  return FALSE;
}

/* ---- actions -------------------------------------------------------------------------- */

static gboolean
parse_long(const char *s, long lo, long hi, long *out)
{
  gint64 v;
  if (!g_ascii_string_to_signed(s, 10, lo, hi, &v, NULL))
    return FALSE;
  *out = (long)v;
  return TRUE;
}

/* Parses `action` and checks it against the configuration the lesson has
 * reached (cfg, changed by set and strategy as the window's would be). */
static gboolean
parse_actions(const Ctx *c, const char *group, const char *text, ConformConfig *cfg, ConformLessonStep *st,
              GError **error)
{
  g_auto(GStrv) cmds = g_strsplit(text, ";", -1);
  GArray *acts = g_array_new(FALSE, TRUE, sizeof(ConformLessonAction));
  gboolean ok = TRUE;
  for (int i = 0; ok && cmds[i]; i++) {
    char *cmd = g_strstrip(cmds[i]);
    if (!cmd[0])
      continue;
    char *arg = cmd + strcspn(cmd, " \t");
    if (*arg)
      *arg++ = '\0';
    arg = g_strstrip(arg);
    ConformLessonAction a = {0};
    g_autoptr(GError) e = NULL;
    if (g_str_equal(cmd, "reset") && !*arg) {
      a.kind = CONFORM_LESSON_RESET;
      if (!conform_config_validate(cfg, &e))
        ok = err_at(error, c, group, "action", "reset would fail with the settings at this point: %s", e->message);
    } else if (g_str_equal(cmd, "train")) {
      a.kind = CONFORM_LESSON_TRAIN;
      if (!parse_long(arg, 1, 100000000, &a.n))
        ok = err_at(error, c, group, "action", "train N needs a number of steps >= 1, got '%s'", arg);
    } else if (g_str_equal(cmd, "sample")) {
      a.kind = CONFORM_LESSON_SAMPLE;
      if (*arg && !parse_long(arg, 2, 10000000, &a.n))
        ok = err_at(error, c, group, "action", "sample [N] needs a sample count >= 2, got '%s'", arg);
    } else if (g_str_equal(cmd, "set")) {
      a.kind = CONFORM_LESSON_SET;
      const char *eq = strchr(arg, '=');
      if (!eq) {
        ok = err_at(error, c, group, "action", "set needs KEY=VALUE, got '%s'", arg);
      } else {
        a.key = g_strstrip(g_strndup(arg, (gsize)(eq - arg)));
        a.value = g_strstrip(g_strdup(eq + 1));
        if (g_str_equal(a.key, "experiment.strategy") || g_str_equal(a.key, "experiment.preset"))
          ok = err_at(error, c, group, "action", "%s is not a sidebar setting: use `strategy NAME` (or a new lesson "
                      "for another preset)", a.key);
        else if (!conform_config_set(cfg, a.key, a.value, &e))
          ok = err_at(error, c, group, "action", "%s", e->message);
      }
    } else if (g_str_equal(cmd, "strategy")) {
      a.kind = CONFORM_LESSON_STRATEGY;
      a.key = g_strdup(arg);
      if (!conform_config_set(cfg, "experiment.strategy", arg, &e))
        ok = err_at(error, c, group, "action", "%s", e->message);
    } else if (g_str_equal(cmd, "show")) {
      a.kind = CONFORM_LESSON_SHOW;
      a.key = g_strdup(arg);
      if (!g_str_equal(arg, "explore") && !g_strv_contains(view_names, arg)) {
        g_autofree char *views = g_strjoinv(", ", (char **)view_names);
        ok = err_at(error, c, group, "action", "show: unknown view '%s'; views: explore, %s", arg, views);
      }
    } else {
      ok = err_at(error, c, group, "action",
                  "unknown command '%s%s%s'; commands (separated by ;): reset, train N, sample [N], set KEY=VALUE, "
                  "strategy NAME, show VIEW",
                  cmd, *arg ? " " : "", arg);
    }
    g_array_append_val(acts, a);
  }
  st->n_actions = (int)acts->len;
  st->actions = (ConformLessonAction *)(void *)g_array_free(acts, FALSE);
  return ok;
}

/* ---- loading ------------------------------------------------------------------------- */

static int
compare_steps(gconstpointer a, gconstpointer b)
{
  return ((const ConformLessonStep *)a)->number - ((const ConformLessonStep *)b)->number;
}

/* A (localised) string or list; *out NULL when the key is absent. A value
 * GKeyFile cannot read (a bad escape) is an error at its line. */
static gboolean
get_value(const Ctx *c, GKeyFile *kf, const char *group, const char *key, gboolean list, gpointer out,
          GError **error)
{
  g_autoptr(GError) e = NULL;
  if (list)
    *(char ***)out = g_key_file_get_locale_string_list(kf, group, key, NULL, NULL, &e);
  else
    *(char **)out = g_key_file_get_locale_string(kf, group, key, NULL, &e);
  if (e && !g_error_matches(e, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND) &&
      !g_error_matches(e, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND))
    return err_at(error, c, group, key, "%s", e->message);
  return TRUE;
}

static gboolean
parse_step(const Ctx *c, GKeyFile *kf, const char *group, int number, ConformConfig *cfg, ConformLessonStep *st,
           GError **error)
{
  st->number = number;
  st->correct = -1;
  g_autofree char *correct = NULL;
  if (!get_value(c, kf, group, "title", FALSE, &st->title, error) ||
      !get_value(c, kf, group, "text", FALSE, &st->text, error) ||
      !get_value(c, kf, group, "action", FALSE, &st->action_text, error) ||
      !get_value(c, kf, group, "question", FALSE, &st->question, error) ||
      !get_value(c, kf, group, "answer", FALSE, &st->answer, error) ||
      !get_value(c, kf, group, "choices", TRUE, &st->choices, error) ||
      !get_value(c, kf, group, "correct", FALSE, &correct, error))
    return FALSE;
  if (!st->text || !g_strstrip(st->text)[0])
    return err_at(error, c, group, "text", "every step needs a text");
  if (!check_text(c, group, "text", st->text, error) ||
      (st->title && !check_text(c, group, "title", st->title, error)))
    return FALSE;
  if (st->action_text && !parse_actions(c, group, st->action_text, cfg, st, error))
    return FALSE;
  if (st->question && !check_text(c, group, "question", st->question, error))
    return FALSE;
  if (st->answer && !check_text(c, group, "answer", st->answer, error))
    return FALSE;
  if (st->question && !st->answer)
    return err_at(error, c, group, "question", "a question needs an answer (revealed after the prediction)");
  if (st->answer && !st->question)
    return err_at(error, c, group, "answer", "an answer needs a question (it is revealed after the prediction)");
  if (st->choices) {
    if (!st->question)
      return err_at(error, c, group, "choices", "choices need a question");
    if (g_strv_length(st->choices) < 2)
      return err_at(error, c, group, "choices", "give at least two choices, separated by ;");
    for (int i = 0; st->choices[i]; i++)
      g_strstrip(st->choices[i]);
  }
  if (correct) {
    if (!st->choices)
      return err_at(error, c, group, "correct", "correct names one of the choices, and there are none");
    for (int i = 0; st->choices[i]; i++)
      if (g_str_equal(st->choices[i], g_strstrip(correct)))
        st->correct = i;
    if (st->correct < 0)
      return err_at(error, c, group, "correct", "'%s' is not one of the choices", correct);
  }
  return TRUE;
}

static gboolean
parse_list(const Ctx *c, GKeyFile *kf, const char *key, char ***out, GError **error)
{
  *out = g_key_file_get_string_list(kf, "lesson", key, NULL, NULL);
  for (int i = 0; *out && (*out)[i]; i++) {
    g_strstrip((*out)[i]);
    if (!control_known((*out)[i])) {
      g_autofree char *views = g_strjoinv(", ", (char **)view_names);
      return err_at(error, c, "lesson", key,
                    "unknown control '%s': name a setting (section.key, globs such as train.*), a view (%s) or "
                    "preset, strategy",
                    (*out)[i], views);
    }
  }
  return TRUE;
}

/* The constraint value: rows separated by ';' or new lines, or "none". */
static gboolean
lesson_constraint(const char *text, const char *origin, ConformConfig *cfg, GError **error)
{
  cf_constraint_clear(&cfg->constraint);
  g_free(cfg->constraint_source);
  g_autofree char *word = g_strstrip(g_strdup(text));
  if (g_ascii_strcasecmp(word, "none") == 0 || word[0] == '\0') {
    cfg->constraint_source = g_strdup("");
    return TRUE;
  }
  g_autofree char *rows = g_strdelimit(g_strdup(text), ";", '\n');
  CfError err;
  cfg->constraint_source = g_strdup(origin);
  if (cf_constraint_parse(&cfg->constraint, rows, strlen(rows), origin, &err) != CF_OK) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s", err.msg);
    return FALSE;
  }
  return TRUE;
}

static gboolean
base_config(const ConformLesson *l, ConformConfig *cfg, const char **failed_key, GError **error)
{
  conform_config_init(cfg);
  *failed_key = "preset";
  if (!conform_config_apply_preset(cfg, l->preset, error))
    return FALSE;
  *failed_key = "strategy";
  if (l->strategy && !conform_config_set(cfg, "experiment.strategy", l->strategy, error))
    return FALSE;
  *failed_key = "constraint";
  if (l->constraint && !lesson_constraint(l->constraint, "constraint", cfg, error))
    return FALSE;
  for (int i = 0; l->setting_keys && l->setting_keys[i]; i++) {
    *failed_key = l->setting_keys[i];
    if (!conform_config_set(cfg, l->setting_keys[i], l->setting_values[i], error))
      return FALSE;
  }
  *failed_key = NULL;
  return TRUE;
}

gboolean
conform_lesson_make_config(const ConformLesson *l, ConformConfig *cfg, GError **error)
{
  ConformConfig tmp;
  const char *failed;
  if (!base_config(l, &tmp, &failed, error) || !conform_config_validate(&tmp, error)) {
    conform_config_clear(&tmp);
    return FALSE;
  }
  conform_config_clear(cfg);
  *cfg = tmp;
  return TRUE;
}

static gboolean
parse_lesson(Ctx *c, GKeyFile *kf, const char *base_dir, ConformLesson *l, GError **error)
{
  if (!g_key_file_has_group(kf, "lesson"))
    return err_at(error, c, NULL, NULL, "no [lesson] section (it names the title and the preset)");
  char *constraint = NULL, *cfile = NULL;
  if (!get_value(c, kf, "lesson", "title", FALSE, &l->title, error) ||
      !get_value(c, kf, "lesson", "summary", FALSE, &l->summary, error) ||
      !get_value(c, kf, "lesson", "preset", FALSE, &l->preset, error) ||
      !get_value(c, kf, "lesson", "strategy", FALSE, &l->strategy, error) ||
      !get_value(c, kf, "lesson", "strategies", TRUE, &l->strategies, error) ||
      !get_value(c, kf, "lesson", "constraint", FALSE, &constraint, error) ||
      !get_value(c, kf, "lesson", "constraint_file", FALSE, &cfile, error)) {
    g_free(constraint);
    g_free(cfile);
    return FALSE;
  }
  if (!l->title || !g_strstrip(l->title)[0])
    return err_at(error, c, "lesson", "title", "a lesson needs a title");
  if (l->summary && !check_text(c, "lesson", "summary", l->summary, error))
    return FALSE;
  if (!l->preset)
    return err_at(error, c, "lesson", "preset", "a lesson needs a preset (see conform presets)");
  g_strstrip(l->preset);
  if (l->strategy)
    g_strstrip(l->strategy);
  if (!l->strategies)
    l->strategies = g_new0(char *, 1);
  if (constraint && cfile) {
    g_free(constraint);
    g_free(cfile);
    return err_at(error, c, "lesson", "constraint_file", "give constraint or constraint_file, not both");
  }
  if (cfile) {
    g_autofree char *path = g_path_is_absolute(g_strstrip(cfile)) ? g_strdup(cfile)
                                                                  : g_build_filename(base_dir, cfile, NULL);
    g_autoptr(GError) e = NULL;
    gsize len;
    if (!conform_read_file(path, LESSON_MAX_BYTES, &constraint, &len, &e)) {
      g_free(cfile);
      return err_at(error, c, "lesson", "constraint_file", "%s", e->message);
    }
  }
  g_free(cfile);
  l->constraint = constraint;
  if (!parse_list(c, kf, "visible", &l->visible, error) || !parse_list(c, kf, "hidden", &l->hidden, error))
    return FALSE;

  g_auto(GStrv) skeys = g_key_file_get_keys(kf, "settings", NULL, NULL);
  GPtrArray *ks = g_ptr_array_new(), *vs = g_ptr_array_new();
  for (int i = 0; skeys && skeys[i]; i++) {
    g_ptr_array_add(ks, g_strdup(skeys[i]));
    g_ptr_array_add(vs, g_key_file_get_string(kf, "settings", skeys[i], NULL));
  }
  g_ptr_array_add(ks, NULL);
  g_ptr_array_add(vs, NULL);
  l->setting_keys = (char **)g_ptr_array_free(ks, FALSE);
  l->setting_values = (char **)g_ptr_array_free(vs, FALSE);
  for (int i = 0; l->setting_keys[i]; i++)
    if (g_str_equal(l->setting_keys[i], "experiment.strategy") || g_str_equal(l->setting_keys[i], "experiment.preset"))
      return err_at(error, c, "settings", l->setting_keys[i], "set this in [lesson] (preset, strategy)");

  /* the starting configuration, each part checked where it is written */
  ConformConfig cfg;
  const char *failed = NULL;
  g_autoptr(GError) e = NULL;
  if (!base_config(l, &cfg, &failed, &e)) {
    gboolean setting = !g_str_equal(failed, "preset") && !g_str_equal(failed, "strategy") &&
                       !g_str_equal(failed, "constraint");
    err_at(error, c, setting ? "settings" : "lesson", failed, "%s", e->message);
    conform_config_clear(&cfg);
    return FALSE;
  }
  /* a constraint of the lesson's own must fit the data (known for built-in sources) */
  const CfGeneratorInfo *gi = cf_data_generator_find(cfg.data);
  int dim = gi ? gi->dim
               : conform_image_source_is(cfg.data) && !conform_image_source_is_folder(cfg.data)
                   ? conform_image_source_inputs(cfg.data) + cfg.image_size * cfg.image_size
                   : 0;
  if (l->constraint && cfg.constraint.m > 0 && dim > 0 && cfg.constraint.n != dim) {
    err_at(error, c, "lesson", l->constraint && line_of(c, "lesson", "constraint") ? "constraint" : "constraint_file",
           "the constraint has %d columns, but the data of preset %s have %d", cfg.constraint.n, l->preset, dim);
    conform_config_clear(&cfg);
    return FALSE;
  }
  if (!conform_config_validate(&cfg, &e)) {
    err_at(error, c, "lesson", "preset", "the lesson's starting settings are not valid: %s", e->message);
    conform_config_clear(&cfg);
    return FALSE;
  }
  for (int i = 0; l->strategies[i]; i++) {
    g_strstrip(l->strategies[i]);
    ConformConfig t;
    conform_config_init(&t);
    gboolean ok = conform_config_set(&t, "experiment.strategy", l->strategies[i], &e);
    conform_config_clear(&t);
    if (!ok) {
      err_at(error, c, "lesson", "strategies", "%s", e->message);
      conform_config_clear(&cfg);
      return FALSE;
    }
  }

  /* steps in number order, each action checked against the settings the
   * steps before it have reached */
  GArray *steps = g_array_new(FALSE, TRUE, sizeof(ConformLessonStep));
  for (guint i = 0; i < c->groups->len; i++) {
    int n;
    if (step_group_number(c->groups->pdata[i], &n)) {
      ConformLessonStep st = {0};
      st.number = n;
      g_array_append_val(steps, st);
    }
  }
  g_array_sort(steps, compare_steps);
  l->n_steps = (int)steps->len;
  l->steps = (ConformLessonStep *)(void *)g_array_free(steps, FALSE);
  gboolean ok = l->n_steps > 0 || err_at(error, c, NULL, NULL, "a lesson needs at least one [step 1]");
  for (int i = 0; ok && i < l->n_steps; i++) {
    g_autofree char *group = g_strdup_printf("step %d", l->steps[i].number);
    ok = parse_step(c, kf, group, l->steps[i].number, &cfg, &l->steps[i], error);
  }
  conform_config_clear(&cfg);
  return ok;
}

ConformLesson *
conform_lesson_parse(const char *text, gsize len, const char *origin, const char *base_dir, GError **error)
{
  g_autofree char *copy = g_strndup(text, len);
  if (!g_utf8_validate(copy, -1, NULL)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: not UTF-8 text", origin);
    return NULL;
  }
  Ctx c = {origin, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL), g_ptr_array_new()};
  ConformLesson *l = g_new0(ConformLesson, 1);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_autoptr(GError) e = NULL;
  gboolean ok = prescan(&c, copy, error);
  if (ok && !g_key_file_load_from_data(kf, copy, (gsize)-1, G_KEY_FILE_NONE, &e)) {
    g_set_error(error, CONFORM_ERROR, CONFORM_ERROR_INPUT, "%s: %s", origin, e->message);
    ok = FALSE;
  }
  ok = ok && parse_lesson(&c, kf, base_dir ? base_dir : ".", l, error);
  g_hash_table_unref(c.lines);
  g_ptr_array_unref(c.groups);
  if (!ok) {
    conform_lesson_free(l);
    return NULL;
  }
  return l;
}

ConformLesson *
conform_lesson_load(const char *path, GError **error)
{
  char *text = NULL;
  gsize len = 0;
  if (!conform_read_file(path, LESSON_MAX_BYTES, &text, &len, error))
    return NULL;
  g_autofree char *dir = g_path_get_dirname(path);
  ConformLesson *l = conform_lesson_parse(text, len, path, dir, error);
  g_free(text);
  if (l)
    l->path = g_strdup(path);
  return l;
}

/* ---- export ------------------------------------------------------------------------------ */

char *
conform_lesson_export(const ConformConfig *cfg, const char *title, const char *const *visible,
                      const char *const *hidden)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_key_file_set_string(kf, "lesson", "title", title && *title ? title : "Untitled lesson");
  g_key_file_set_comment(kf, "lesson", NULL,
                         " A Conform lesson (see README.md, \"Lessons\"). Edit the title, the summary and the steps;\n"
                         " [settings] and the lines below reproduce the window this was exported from.",
                         NULL);
  g_key_file_set_string(kf, "lesson", "summary", "What the students will see and learn (edit me).");
  g_key_file_set_string(kf, "lesson", "preset", cfg->preset);
  g_key_file_set_string(kf, "lesson", "strategy", cfg->strategy);
  if (!conform_config_constraint_is_preset(cfg)) {
    if (cfg->constraint.m == 0) {
      g_key_file_set_string(kf, "lesson", "constraint", "none");
    } else {
      char *text = cf_constraint_to_text(&cfg->constraint);
      GString *rows = g_string_new(NULL);
      g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
      free(text);
      for (int i = 0; lines[i]; i++)
        if (lines[i][0] && lines[i][0] != '#')
          g_string_append_printf(rows, "%s%s", rows->len ? "; " : "", lines[i]);
      g_key_file_set_string(kf, "lesson", "constraint", rows->str);
      g_string_free(rows, TRUE);
    }
  }
  if (visible && visible[0])
    g_key_file_set_string_list(kf, "lesson", "visible", visible, g_strv_length((char **)visible));
  if (hidden && hidden[0])
    g_key_file_set_string_list(kf, "lesson", "hidden", hidden, g_strv_length((char **)hidden));
  g_autoptr(GPtrArray) changed = conform_config_changed_keys(cfg);
  gboolean any = FALSE;
  for (guint i = 0; i < changed->len; i++) {
    const char *key = changed->pdata[i];
    if (g_str_equal(key, CONFORM_MANIFEST_CONSTRAINT) || g_str_has_prefix(key, "experiment.preset") ||
        g_str_equal(key, "experiment.strategy"))
      continue;
    g_autofree char *v = conform_config_value_text(cfg, key, 0);
    g_key_file_set_string(kf, "settings", key, v);
    any = TRUE;
  }
  if (any)
    g_key_file_set_comment(kf, "settings", NULL, " settings that differ from the preset's defaults", NULL);
  g_key_file_set_string(kf, "step 1", "title", "First look");
  g_key_file_set_string(kf, "step 1", "text",
                        "Describe what the students look at first. <i>Pango markup</i> works; write formulas in "
                        "plain notation, e.g. A x = b.");
  g_key_file_set_comment(kf, "step 1", NULL,
                         " Each step: text, optional action (reset; train N; sample [N]; set KEY=VALUE; strategy NAME;\n"
                         " show VIEW) and an optional prediction asked before the action runs:\n"
                         "   question = What fraction of samples will satisfy A x = b?\n"
                         "   choices = almost none;about half;all of them\n"
                         "   correct = almost none\n"
                         "   answer = Measured: {frac_satisfied} of {n_samples} samples.",
                         NULL);
  g_key_file_set_string(kf, "step 2", "text", "Train, then look at the samples and the violation histogram.");
  g_key_file_set_string(kf, "step 2", "action", "train 1000; sample");
  return g_key_file_to_data(kf, NULL, NULL);
}

/* ---- bundled ------------------------------------------------------------------------------ */

static int
compare_str(gconstpointer a, gconstpointer b)
{
  return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

char **
conform_lesson_bundled(void)
{
  g_autofree char *dir = g_build_filename(conform_data_dir(), "lessons", NULL);
  GPtrArray *out = g_ptr_array_new();
  GDir *d = g_dir_open(dir, 0, NULL);
  if (d) {
    const char *name;
    while ((name = g_dir_read_name(d)))
      if (g_str_has_suffix(name, ".lesson"))
        g_ptr_array_add(out, g_build_filename(dir, name, NULL));
    g_dir_close(d);
  }
  g_ptr_array_sort(out, compare_str);
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}
