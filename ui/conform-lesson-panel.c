#define G_LOG_DOMAIN "conform"

#include "conform-lesson-panel.h"

#include <math.h>
#include <string.h>

#include "conform-window-teach.h"

#define TICK_MS 100

typedef struct {
  gboolean revealed; /* prediction committed, action started */
  gboolean done;     /* action finished, answer shown */
  char *prediction;
  char *answer;      /* filled in when done */
} StepState;

struct _ConformLessonPanel {
  GtkBox parent_instance;

  ConformWindow *window;
  ConformLesson *lesson;
  StepState *states;
  int step, shown_step;
  gboolean syncing;

  /* the running action */
  guint tick;
  int action;
  gboolean started;
  long target;
  ConformRun *run_before;
  ConformSampleSet *samples_before; /* compared by address only */
  gint64 paused_at;

  GtkWidget *title, *counter, *step_title, *text, *strategies_box;
  GtkWidget *question_box, *question, *entry, *choices_box, *reveal, *spinner, *status;
  GtkWidget *answer_box, *your_prediction, *answer;
  GtkWidget *back, *next, *scroll;
  GPtrArray *choice_buttons;
};

G_DEFINE_FINAL_TYPE(ConformLessonPanel, conform_lesson_panel, GTK_TYPE_BOX)

static void show_step(ConformLessonPanel *self);
static void strategy_button_cb(GtkButton *b, ConformLessonPanel *self);

static const ConformLessonStep *
cur(ConformLessonPanel *self)
{
  return self->lesson ? &self->lesson->steps[self->step] : NULL;
}

static StepState *
cur_state(ConformLessonPanel *self)
{
  return self->lesson ? &self->states[self->step] : NULL;
}

static void
free_states(ConformLessonPanel *self)
{
  for (int i = 0; self->states && self->lesson && i < self->lesson->n_steps; i++) {
    g_free(self->states[i].prediction);
    g_free(self->states[i].answer);
  }
  g_clear_pointer(&self->states, g_free);
}

/* "train 2000 steps · sample" */
static char *
describe_actions(const ConformLessonStep *st)
{
  GString *s = g_string_new(NULL);
  for (int i = 0; i < st->n_actions; i++) {
    const ConformLessonAction *a = &st->actions[i];
    if (i)
      g_string_append(s, " · ");
    switch (a->kind) {
    case CONFORM_LESSON_RESET: g_string_append(s, "reset"); break;
    case CONFORM_LESSON_TRAIN: g_string_append_printf(s, "train %ld steps", a->n); break;
    case CONFORM_LESSON_SAMPLE:
      if (a->n > 0)
        g_string_append_printf(s, "sample %ld", a->n);
      else
        g_string_append(s, "sample");
      break;
    case CONFORM_LESSON_SET: g_string_append_printf(s, "set %s = %s", a->key, a->value); break;
    case CONFORM_LESSON_STRATEGY: g_string_append_printf(s, "strategy %s", a->key); break;
    case CONFORM_LESSON_SHOW: g_string_append_printf(s, "show %s", a->key); break;
    }
  }
  return g_string_free(s, FALSE);
}

static char *
fill(ConformLessonPanel *self, const char *markup, const char *prediction)
{
  ConformLessonValues v = {0};
  conform_window_teach_values_(self->window, &v);
  v.prediction = prediction;
  return conform_lesson_fill(markup, &v);
}

static void
set_status(ConformLessonPanel *self, const char *text, gboolean error)
{
  gtk_label_set_text(GTK_LABEL(self->status), text ? text : "");
  gtk_widget_set_visible(self->status, text && *text);
  if (error)
    gtk_widget_add_css_class(self->status, "error");
  else
    gtk_widget_remove_css_class(self->status, "error");
}

/* ---- running a step's action ------------------------------------------------------------- */

static void
stop_exec(ConformLessonPanel *self)
{
  if (self->tick) {
    g_source_remove(self->tick);
    self->tick = 0;
  }
  g_clear_object(&self->run_before);
  gtk_spinner_stop(GTK_SPINNER(self->spinner));
  gtk_widget_set_visible(self->spinner, FALSE);
}

/* After the layout has the answer: scroll down to it. */
static gboolean
scroll_to_end_cb(gpointer data)
{
  ConformLessonPanel *self = data;
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(self->scroll));
  gtk_adjustment_set_value(adj, gtk_adjustment_get_upper(adj) - gtk_adjustment_get_page_size(adj));
  g_object_unref(self);
  return G_SOURCE_REMOVE;
}

static void
finish_step(ConformLessonPanel *self, const char *error)
{
  stop_exec(self);
  StepState *ss = cur_state(self);
  const ConformLessonStep *st = cur(self);
  ss->done = TRUE;
  if (st->answer) {
    g_free(ss->answer);
    ss->answer = fill(self, st->answer, ss->prediction);
  }
  show_step(self);
  if (error)
    set_status(self, error, TRUE);
  if (st->answer || error)
    g_timeout_add(50, scroll_to_end_cb, g_object_ref(self));
}

static ConformRun *
window_run(ConformLessonPanel *self)
{
  return conform_window_get_run(self->window);
}

/* The run's samples are the full ones (with the quality metrics, not a
 * preview) of its current parameters and strategy, n of them (0: the
 * experiment's sample.n). */
static gboolean
current_samples(ConformRun *run, long n)
{
  ConformSampleSet *s = conform_run_get_samples(run);
  const ConformConfig *cfg = conform_run_get_config(run);
  return s && s->step == conform_run_get_step(run) && isfinite(s->summary.energy_distance) &&
         g_strcmp0(s->strategy, cfg->strategy) == 0 && s->n == (n > 0 ? n : cfg->n_samples);
}

/* Starts action a; TRUE when it is already complete. */
static gboolean
start_action(ConformLessonPanel *self, const ConformLessonAction *a, char **error)
{
  ConformRun *run = window_run(self);
  g_autoptr(GError) e = NULL;
  switch (a->kind) {
  case CONFORM_LESSON_RESET:
    g_clear_object(&self->run_before);
    self->run_before = run ? g_object_ref(run) : NULL;
    gtk_widget_activate_action(GTK_WIDGET(self->window), "win.reset", NULL);
    return FALSE;
  case CONFORM_LESSON_TRAIN:
    if (!run) {
      *error = g_strdup("no run to train");
      return TRUE;
    }
    self->target = conform_run_get_step(run) + a->n;
    self->paused_at = 0;
    /* up to the configured step count: Train, with live previews, which
     * pauses there by itself; otherwise exactly n steps */
    if (self->target == conform_run_get_config(run)->steps)
      conform_run_train(run);
    else
      conform_run_step(run, (int)MIN(a->n, G_MAXINT));
    return FALSE;
  case CONFORM_LESSON_SAMPLE:
    if (!run) {
      *error = g_strdup("no run to sample from");
      return TRUE;
    }
    /* drawn already (at the end of training), and no strategy change on its way */
    if (current_samples(run, a->n) &&
        g_strcmp0(conform_window_teach_pending_strategy_(self->window), conform_run_get_config(run)->strategy) == 0)
      return TRUE;
    self->samples_before = conform_run_get_samples(run);
    conform_run_request_samples(run, (int)a->n, 200);
    return FALSE;
  case CONFORM_LESSON_SET:
    if (!conform_window_teach_set_setting_(self->window, a->key, a->value, &e))
      *error = g_strdup(e->message);
    return TRUE;
  case CONFORM_LESSON_STRATEGY:
    conform_window_teach_set_strategy_(self->window, a->key);
    return TRUE;
  case CONFORM_LESSON_SHOW:
    conform_window_teach_show_view_(self->window, a->key);
    return TRUE;
  }
  return TRUE;
}

/* Whether the action started last has completed. */
static gboolean
action_done(ConformLessonPanel *self, const ConformLessonAction *a, char **error)
{
  ConformRun *run = window_run(self);
  switch (a->kind) {
  case CONFORM_LESSON_RESET:
    if (conform_window_teach_building_(self->window))
      return FALSE;
    if (run == self->run_before) {
      *error = g_strdup("the reset did not start a new run (see the message in the status bar)");
      return TRUE;
    }
    return run && conform_run_get_state(run) != CONFORM_RUN_STARTING;
  case CONFORM_LESSON_TRAIN:
    if (!run || conform_run_get_state(run) == CONFORM_RUN_STOPPED) {
      *error = g_strdup("the run stopped while training");
      return TRUE;
    }
    if (conform_run_get_step(run) < self->target || conform_run_get_state(run) != CONFORM_RUN_PAUSED)
      return FALSE;
    /* Train pauses at the configured steps and samples there: wait for
     * those samples (a following `sample` then needs no second draw) */
    if (self->target == conform_run_get_config(run)->steps && !current_samples(run, 0)) {
      if (!self->paused_at)
        self->paused_at = g_get_monotonic_time();
      return g_get_monotonic_time() - self->paused_at > 120 * G_USEC_PER_SEC;
    }
    return TRUE;
  case CONFORM_LESSON_SAMPLE:
    if (!run || conform_run_get_state(run) == CONFORM_RUN_STOPPED) {
      *error = g_strdup("the run stopped before sampling");
      return TRUE;
    }
    /* a set that arrived since the request, of the run as it is now (one
     * that was on its way before shows the old strategy or step) */
    return conform_run_get_samples(run) != self->samples_before && current_samples(run, a->n);
  default:
    return TRUE;
  }
}

/* Starts or checks the actions in turn; FALSE once the step is finished. */
static gboolean
advance(ConformLessonPanel *self)
{
  const ConformLessonStep *st = cur(self);
  while (self->action < st->n_actions) {
    const ConformLessonAction *a = &st->actions[self->action];
    g_autofree char *error = NULL;
    gboolean done = self->started ? action_done(self, a, &error) : start_action(self, a, &error);
    self->started = TRUE;
    if (error) {
      g_autofree char *msg = g_strdup_printf("Step action failed: %s", error);
      finish_step(self, msg);
      return FALSE;
    }
    if (!done)
      return TRUE;
    self->action++;
    self->started = FALSE;
  }
  finish_step(self, NULL);
  return FALSE;
}

static gboolean
tick_cb(gpointer data)
{
  ConformLessonPanel *self = data;
  if (advance(self))
    return G_SOURCE_CONTINUE;
  self->tick = 0;
  return G_SOURCE_REMOVE;
}

static void
run_step(ConformLessonPanel *self)
{
  const ConformLessonStep *st = cur(self);
  StepState *ss = cur_state(self);
  ss->revealed = TRUE;
  self->action = 0;
  self->started = FALSE;
  if (!advance(self)) /* nothing to wait for */
    return;
  g_autofree char *what = describe_actions(st);
  g_autofree char *msg = g_strdup_printf("Running: %s…", what);
  self->tick = g_timeout_add(TICK_MS, tick_cb, self);
  show_step(self);
  set_status(self, msg, FALSE);
  gtk_widget_set_visible(self->spinner, TRUE);
  gtk_spinner_start(GTK_SPINNER(self->spinner));
}

/* ---- showing a step ------------------------------------------------------------------------- */

static gboolean
has_prediction(ConformLessonPanel *self)
{
  StepState *ss = cur_state(self);
  return ss && ss->prediction && *ss->prediction;
}

static void
update_reveal(ConformLessonPanel *self)
{
  const ConformLessonStep *st = cur(self);
  StepState *ss = cur_state(self);
  if (!st)
    return;
  gboolean busy = self->tick != 0;
  gboolean something = st->question || st->n_actions > 0;
  gtk_widget_set_visible(self->reveal, something && !ss->revealed);
  gtk_widget_set_sensitive(self->reveal, !busy && (!st->question || has_prediction(self)));
  gtk_widget_set_sensitive(self->back, !busy && self->step > 0);
  gtk_widget_set_sensitive(self->next, !busy);
}

static void
entry_changed_cb(GtkEditable *e, ConformLessonPanel *self)
{
  if (self->syncing || !cur_state(self) || cur_state(self)->revealed)
    return;
  StepState *ss = cur_state(self);
  g_free(ss->prediction);
  ss->prediction = g_strstrip(g_strdup(gtk_editable_get_text(e)));
  set_status(self, NULL, FALSE); /* "make a prediction first" is answered */
  update_reveal(self);
}

static void
entry_activate_cb(GtkEntry *e, ConformLessonPanel *self)
{
  if (has_prediction(self) && !cur_state(self)->revealed)
    conform_lesson_panel_reveal(self);
}

static void
choice_toggled_cb(GtkCheckButton *b, ConformLessonPanel *self)
{
  if (self->syncing || !gtk_check_button_get_active(b) || cur_state(self)->revealed)
    return;
  StepState *ss = cur_state(self);
  g_free(ss->prediction);
  ss->prediction = g_strdup(gtk_check_button_get_label(b));
  set_status(self, NULL, FALSE);
  update_reveal(self);
}

static void
show_step(ConformLessonPanel *self)
{
  const ConformLessonStep *st = cur(self);
  StepState *ss = cur_state(self);
  if (!st)
    return;
  if (self->shown_step != self->step)
    gtk_adjustment_set_value(gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(self->scroll)), 0);
  self->shown_step = self->step;
  self->syncing = TRUE;
  g_autofree char *counter = g_strdup_printf("Step %d of %d", self->step + 1, self->lesson->n_steps);
  gtk_label_set_text(GTK_LABEL(self->counter), counter);
  gtk_widget_set_visible(self->step_title, st->title != NULL);
  if (st->title) {
    g_autofree char *t = fill(self, st->title, ss->prediction);
    g_autofree char *m = g_strdup_printf("<b>%s</b>", t);
    gtk_label_set_markup(GTK_LABEL(self->step_title), m);
  }
  g_autofree char *text = fill(self, st->text, ss->prediction);
  gtk_label_set_markup(GTK_LABEL(self->text), text);

  /* the prediction */
  gtk_widget_set_visible(self->question_box, st->question != NULL);
  for (guint i = 0; i < self->choice_buttons->len; i++)
    gtk_box_remove(GTK_BOX(self->choices_box), self->choice_buttons->pdata[i]);
  g_ptr_array_set_size(self->choice_buttons, 0);
  if (st->question) {
    g_autofree char *q = fill(self, st->question, NULL);
    g_autofree char *qm = g_strdup_printf("<b>Predict first:</b> %s", q);
    gtk_label_set_markup(GTK_LABEL(self->question), qm);
    gtk_widget_set_visible(self->entry, st->choices == NULL);
    gtk_widget_set_visible(self->choices_box, st->choices != NULL);
    gtk_editable_set_text(GTK_EDITABLE(self->entry), !st->choices && ss->prediction ? ss->prediction : "");
    gtk_widget_set_sensitive(self->entry, !ss->revealed);
    GtkWidget *group = NULL;
    for (int i = 0; st->choices && st->choices[i]; i++) {
      GtkWidget *b = gtk_check_button_new_with_label(st->choices[i]);
      if (group)
        gtk_check_button_set_group(GTK_CHECK_BUTTON(b), GTK_CHECK_BUTTON(group));
      else
        group = b;
      gtk_check_button_set_active(GTK_CHECK_BUTTON(b), g_strcmp0(ss->prediction, st->choices[i]) == 0);
      gtk_widget_set_sensitive(b, !ss->revealed);
      g_signal_connect(b, "toggled", G_CALLBACK(choice_toggled_cb), self);
      gtk_box_append(GTK_BOX(self->choices_box), b);
      g_ptr_array_add(self->choice_buttons, b);
    }
  }
  g_autofree char *what = st->n_actions > 0 ? describe_actions(st) : NULL;
  if (st->question) {
    gtk_button_set_label(GTK_BUTTON(self->reveal), "_Reveal");
    g_autofree char *tip = what ? g_strdup_printf("Commit your prediction, then: %s; the answer follows", what)
                                : g_strdup("Commit your prediction and show the answer");
    gtk_widget_set_tooltip_text(self->reveal, tip);
  } else if (what) {
    g_autofree char *l = g_strdup_printf("_Run: %s", what);
    gtk_button_set_label(GTK_BUTTON(self->reveal), l);
    gtk_widget_set_tooltip_text(self->reveal, "Do this step's action in the window");
  }

  /* the answer: only once the prediction is committed and the action done */
  gboolean shown = st->question && ss->done;
  gtk_widget_set_visible(self->answer_box, shown);
  gtk_label_set_markup(GTK_LABEL(self->answer), shown && ss->answer ? ss->answer : "");
  if (shown) {
    const char *mark = "";
    if (st->correct >= 0)
      mark = g_strcmp0(ss->prediction, st->choices[st->correct]) == 0 ? "  ✓ right" : "  ✗ not quite";
    g_autofree char *p = g_markup_printf_escaped("<b>Your prediction:</b> %s%s", ss->prediction ? ss->prediction : "",
                                                 mark);
    gtk_label_set_markup(GTK_LABEL(self->your_prediction), p);
  }
  gboolean last = self->step == self->lesson->n_steps - 1;
  gtk_button_set_label(GTK_BUTTON(self->next), last ? "_Finish" : "_Next");
  if (!self->tick)
    set_status(self, ss->done && !st->question && st->n_actions > 0 ? "Done." : NULL, FALSE);
  self->syncing = FALSE;
  update_reveal(self);
}

/* ---- public ------------------------------------------------------------------------------------- */

gboolean
conform_lesson_panel_start(ConformLessonPanel *self, ConformLesson *lesson, GError **error)
{
  g_return_val_if_fail(CONFORM_IS_LESSON_PANEL(self), FALSE);
  ConformConfig cfg;
  conform_config_init(&cfg);
  if (!conform_lesson_make_config(lesson, &cfg, error)) {
    conform_config_clear(&cfg);
    conform_lesson_free(lesson);
    return FALSE;
  }
  stop_exec(self);
  free_states(self);
  conform_lesson_free(self->lesson);
  self->lesson = lesson;
  self->states = g_new0(StepState, lesson->n_steps);
  self->step = 0;
  self->shown_step = -1;
  conform_window_reset_with(self->window, &cfg);
  conform_config_clear(&cfg);
  conform_window_teach_apply_visibility_(self->window, lesson);

  gtk_label_set_text(GTK_LABEL(self->title), lesson->title);
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child(self->strategies_box)))
    gtk_box_remove(GTK_BOX(self->strategies_box), child);
  gtk_widget_set_visible(self->strategies_box, lesson->strategies[0] != NULL);
  if (lesson->strategies[0]) {
    GtkWidget *l = gtk_label_new("Strategy:");
    gtk_widget_add_css_class(l, "dim-label");
    gtk_box_append(GTK_BOX(self->strategies_box), l);
    for (int i = 0; lesson->strategies[i]; i++) {
      GtkWidget *b = gtk_button_new_with_label(lesson->strategies[i]);
      g_autofree char *tip = g_strdup_printf("Switch the strategy to %s (training-time strategies apply on Reset)",
                                             lesson->strategies[i]);
      gtk_widget_set_tooltip_text(b, tip);
      g_object_set_data_full(G_OBJECT(b), "strategy", g_strdup(lesson->strategies[i]), g_free);
      g_signal_connect(b, "clicked", G_CALLBACK(strategy_button_cb), self);
      gtk_box_append(GTK_BOX(self->strategies_box), b);
    }
  }
  gtk_widget_set_visible(GTK_WIDGET(self), TRUE);
  show_step(self);
  return TRUE;
}

void
conform_lesson_panel_close(ConformLessonPanel *self)
{
  g_return_if_fail(CONFORM_IS_LESSON_PANEL(self));
  stop_exec(self);
  free_states(self);
  g_clear_pointer(&self->lesson, conform_lesson_free);
  conform_window_teach_apply_visibility_(self->window, NULL);
  gtk_widget_set_visible(GTK_WIDGET(self), FALSE);
}

const ConformLesson *
conform_lesson_panel_get_lesson(ConformLessonPanel *self)
{
  return self->lesson;
}

int
conform_lesson_panel_get_step(ConformLessonPanel *self)
{
  return self->step;
}

void
conform_lesson_panel_next(ConformLessonPanel *self)
{
  if (!self->lesson || self->tick)
    return;
  if (self->step == self->lesson->n_steps - 1) {
    conform_lesson_panel_close(self);
    return;
  }
  self->step++;
  show_step(self);
}

void
conform_lesson_panel_back(ConformLessonPanel *self)
{
  if (!self->lesson || self->tick || self->step == 0)
    return;
  self->step--;
  show_step(self);
}

void
conform_lesson_panel_set_prediction(ConformLessonPanel *self, const char *text)
{
  g_return_if_fail(CONFORM_IS_LESSON_PANEL(self));
  gtk_editable_set_text(GTK_EDITABLE(self->entry), text);
}

void
conform_lesson_panel_choose(ConformLessonPanel *self, int choice)
{
  g_return_if_fail(CONFORM_IS_LESSON_PANEL(self));
  if (choice >= 0 && (guint)choice < self->choice_buttons->len)
    gtk_check_button_set_active(self->choice_buttons->pdata[choice], TRUE);
}

gboolean
conform_lesson_panel_reveal(ConformLessonPanel *self)
{
  g_return_val_if_fail(CONFORM_IS_LESSON_PANEL(self), FALSE);
  const ConformLessonStep *st = cur(self);
  StepState *ss = cur_state(self);
  if (!st || self->tick || ss->revealed || (!st->question && st->n_actions == 0))
    return FALSE;
  if (st->question && !has_prediction(self)) {
    set_status(self, "Make a prediction first: the answer comes after it.", TRUE);
    return FALSE;
  }
  run_step(self);
  return TRUE;
}

gboolean
conform_lesson_panel_is_busy(ConformLessonPanel *self)
{
  return self->tick != 0;
}

gboolean
conform_lesson_panel_answer_shown(ConformLessonPanel *self)
{
  return gtk_widget_get_visible(self->answer_box) && gtk_widget_get_visible(GTK_WIDGET(self));
}

const char *
conform_lesson_panel_get_answer(ConformLessonPanel *self)
{
  return conform_lesson_panel_answer_shown(self) ? gtk_label_get_text(GTK_LABEL(self->answer)) : "";
}

const char *
conform_lesson_panel_get_text(ConformLessonPanel *self)
{
  return gtk_label_get_text(GTK_LABEL(self->text));
}

/* ---- construction -------------------------------------------------------------------------------- */

static void
strategy_button_cb(GtkButton *b, ConformLessonPanel *self)
{
  conform_window_teach_set_strategy_(self->window, g_object_get_data(G_OBJECT(b), "strategy"));
}

static void
conform_lesson_panel_dispose(GObject *o)
{
  ConformLessonPanel *self = CONFORM_LESSON_PANEL(o);
  stop_exec(self);
  free_states(self);
  g_clear_pointer(&self->lesson, conform_lesson_free);
  g_clear_pointer(&self->choice_buttons, g_ptr_array_unref);
  G_OBJECT_CLASS(conform_lesson_panel_parent_class)->dispose(o);
}

static void
conform_lesson_panel_class_init(ConformLessonPanelClass *klass)
{
  G_OBJECT_CLASS(klass)->dispose = conform_lesson_panel_dispose;
}

static GtkWidget *
wrap_label(const char *css)
{
  GtkWidget *l = gtk_label_new(NULL);
  gtk_label_set_wrap(GTK_LABEL(l), TRUE);
  gtk_label_set_wrap_mode(GTK_LABEL(l), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign(GTK_LABEL(l), 0);
  gtk_label_set_selectable(GTK_LABEL(l), TRUE);
  if (css)
    gtk_widget_add_css_class(l, css);
  return l;
}

static void
conform_lesson_panel_init(ConformLessonPanel *self)
{
  self->choice_buttons = g_ptr_array_new();
  gtk_orientable_set_orientation(GTK_ORIENTABLE(self), GTK_ORIENTATION_VERTICAL);
  gtk_box_set_spacing(GTK_BOX(self), 8);
  gtk_widget_add_css_class(GTK_WIDGET(self), "lesson-panel");
  gtk_widget_set_size_request(GTK_WIDGET(self), 300, 200);

  GtkWidget *head = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *icon = gtk_image_new_from_icon_name("help-browser-symbolic");
  self->title = wrap_label("lesson-title");
  gtk_label_set_selectable(GTK_LABEL(self->title), FALSE);
  gtk_widget_set_hexpand(self->title, TRUE);
  GtkWidget *close = gtk_button_new_from_icon_name("window-close-symbolic");
  gtk_widget_add_css_class(close, "flat");
  gtk_widget_set_tooltip_text(close, "Close the lesson (every control is shown again)");
  gtk_widget_set_valign(close, GTK_ALIGN_START);
  g_signal_connect_swapped(close, "clicked", G_CALLBACK(conform_lesson_panel_close), self);
  gtk_box_append(GTK_BOX(head), icon);
  gtk_box_append(GTK_BOX(head), self->title);
  gtk_box_append(GTK_BOX(head), close);
  self->counter = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(self->counter), 0);
  gtk_widget_add_css_class(self->counter, "dim-label");

  GtkWidget *body = gtk_box_new(GTK_ORIENTATION_VERTICAL, 10);
  self->step_title = wrap_label(NULL);
  self->text = wrap_label("lesson-text");
  self->strategies_box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 4);
  gtk_box_append(GTK_BOX(body), self->step_title);
  gtk_box_append(GTK_BOX(body), self->text);
  gtk_box_append(GTK_BOX(body), self->strategies_box);

  self->question_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_add_css_class(self->question_box, "lesson-question");
  self->question = wrap_label(NULL);
  self->entry = gtk_entry_new();
  gtk_entry_set_placeholder_text(GTK_ENTRY(self->entry), "Your prediction");
  g_signal_connect(self->entry, "changed", G_CALLBACK(entry_changed_cb), self);
  g_signal_connect(self->entry, "activate", G_CALLBACK(entry_activate_cb), self);
  self->choices_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  gtk_box_append(GTK_BOX(self->question_box), self->question);
  gtk_box_append(GTK_BOX(self->question_box), self->entry);
  gtk_box_append(GTK_BOX(self->question_box), self->choices_box);
  gtk_box_append(GTK_BOX(body), self->question_box);

  GtkWidget *run_row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  self->reveal = gtk_button_new_with_mnemonic("_Reveal");
  gtk_widget_add_css_class(self->reveal, "suggested-action");
  g_signal_connect_swapped(self->reveal, "clicked", G_CALLBACK(conform_lesson_panel_reveal), self);
  self->spinner = gtk_spinner_new();
  gtk_widget_set_visible(self->spinner, FALSE);
  gtk_box_append(GTK_BOX(run_row), self->reveal);
  gtk_box_append(GTK_BOX(run_row), self->spinner);
  gtk_box_append(GTK_BOX(body), run_row);
  self->status = wrap_label("dim-label");
  gtk_widget_set_visible(self->status, FALSE);
  gtk_box_append(GTK_BOX(body), self->status);

  self->answer_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
  gtk_widget_add_css_class(self->answer_box, "lesson-answer");
  self->your_prediction = wrap_label(NULL);
  self->answer = wrap_label(NULL);
  gtk_box_append(GTK_BOX(self->answer_box), self->your_prediction);
  gtk_box_append(GTK_BOX(self->answer_box), self->answer);
  gtk_widget_set_visible(self->answer_box, FALSE);
  gtk_box_append(GTK_BOX(body), self->answer_box);

  GtkWidget *scroll = self->scroll = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(scroll), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), body);
  gtk_widget_set_vexpand(scroll, TRUE);

  GtkWidget *nav = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  self->back = gtk_button_new_with_mnemonic("_Back");
  self->next = gtk_button_new_with_mnemonic("_Next");
  gtk_widget_set_tooltip_text(self->back, "Previous step (its prediction and answer stay as they were)");
  gtk_widget_set_tooltip_text(self->next, "Next step");
  g_signal_connect_swapped(self->back, "clicked", G_CALLBACK(conform_lesson_panel_back), self);
  g_signal_connect_swapped(self->next, "clicked", G_CALLBACK(conform_lesson_panel_next), self);
  GtkWidget *spacer = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
  gtk_widget_set_hexpand(spacer, TRUE);
  gtk_box_append(GTK_BOX(nav), self->back);
  gtk_box_append(GTK_BOX(nav), spacer);
  gtk_box_append(GTK_BOX(nav), self->next);

  gtk_box_append(GTK_BOX(self), head);
  gtk_box_append(GTK_BOX(self), self->counter);
  gtk_box_append(GTK_BOX(self), scroll);
  gtk_box_append(GTK_BOX(self), nav);
  gtk_widget_set_visible(GTK_WIDGET(self), FALSE);
}

GtkWidget *
conform_lesson_panel_new(ConformWindow *window)
{
  ConformLessonPanel *self = g_object_new(CONFORM_TYPE_LESSON_PANEL, NULL);
  self->window = window;
  return GTK_WIDGET(self);
}
