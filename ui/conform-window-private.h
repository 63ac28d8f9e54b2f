/* ConformWindow internals shared by conform-window.c (views, run, sidebar)
 * and conform-window-files.c (open, save, export, close). Not public API. */
#pragma once

#include "conform-window.h"

G_BEGIN_DECLS

typedef struct _ConformWindowImages ConformWindowImages; /* conform-window-images.c */

struct _ConformWindow {
  GtkApplicationWindow parent_instance;

  ConformRun *run;      /* the experiment shown */
  ConformRun *incoming; /* a run being built (reset/open); swapped in when ready */
  gboolean incoming_is_open;
  ConformConfig pending; /* sidebar settings for the next Reset */
  char *experiment_dir;
  gboolean dirty, pending_restart, syncing, closing_after_save, close_confirmed;
  char *last_error;
  char *status_text;

  /* header */
  GtkWidget *train_button, *step_button, *step_count, *reset_button;
  GtkWidget *preset_dropdown, *strategy_dropdown, *menu_button;
  /* sidebar */
  GHashTable *setting_widgets; /* key -> GtkWidget */
  GtkWidget *restart_banner;
  GtkWidget *constraint_summary;
  GtkWidget *hist_title; /* title of the violation pane: says when there is no constraint */
  /* views */
  GtkWidget *notebook;
  GtkWidget *scatter, *histogram, *loss, *violation, *lr;
  GtkWidget *image_grid, *samples_stack; /* image data: a grid instead of the scatter */
  int image_size;                        /* 0 unless the experiment's data are images */
  GtkWidget *vae_curves; /* held-out ELBO / log-likelihood, shown for VAEs only */
  int vae_elbo, vae_ll, vae_ll_full;
  GtkWidget *shares, *shares_pane, *shares_title, *shares_info; /* ConformBars of category shares, under the samples */
  /* the latest measured class shares (labelled data), re-drawn with the
   * shares the dual multipliers predict as records arrive */
  gboolean have_shares;
  int share_k, share_n;
  long share_step;
  double share_samples[10], share_train[10], share_fd, share_fd_floor;
  /* strategy dual: lambda_i and slack_i per constraint over steps */
  GtkWidget *dual_curves, *lr_box;
  int dual_lambda[8], dual_slack[8], n_dual_series;
  /* strategy mirror: the maps' loss terms over their phase */
  GtkWidget *namm_curves;
  gboolean namm_on;
  int namm_cyc, namm_constr, namm_reg;
  GtkWidget *compare;    /* ConformCompareView (the Compare tab) */
  int compare_page;
  GtkWidget *bg_check, *arrows_check, *logy_check, *smoothing;
  GtkWidget *traj_scatter, *traj_scale, *traj_play, *traj_label;
  guint traj_timer;
  GtkWidget *editor;
  GtkWidget *equations;                 /* ConformEquationEditor under the matrix editor */
  GtkWidget *mirror_view, *mirror_page; /* the Mirror maps tab (strategy mirror) */
  GtkWidget *narration;                 /* the Slow motion tab (ConformNarration) */
  ConformWindowImages *images;          /* trajectory images, superres tab, pretrained toggle, folder chooser */
  /* status bar */
  GtkWidget *status_label, *space_label, *message_label;
  guint message_timeout;
  int loss_series, lr_series, viol_p50, viol_p99, viol_max;
  guint records_shown;  /* records already handed to the curves */
  gint64 last_refresh;  /* monotonic us of the last curve update */
  guint refresh_source; /* pending throttled update */
  /* run history and lessons (conform-window-teach.c) */
  GtkWidget *history_panel, *lesson_panel; /* History tab; lesson panel above the settings */
  int history_page;
};

GSettings *conform_window_settings_(ConformWindow *self);
/* The "shares" chart under the samples: n_categories names along x, n_series
 * (<= CONFORM_BARS_MAX_SERIES) series named series_labels with
 * values[s][0 .. n_categories) (NaN: missing; values or values[s] NULL:
 * all missing), in the colours samples (orange), training (blue), then
 * bluish green and reddish purple, and a dashed line at the uniform share
 * 1/n_categories. title heads the pane (NULL: "Shares"), info is a line of
 * markup beside it (NULL: none). n_categories == 0 hides the pane. */
void conform_window_set_shares_(ConformWindow *self, const char *title, int n_categories, const char *const *names,
                                int n_series, const char *const *series_labels, const double *const *values,
                                const char *info);
void conform_window_show_message_(ConformWindow *self, const char *text, gboolean is_error);
void conform_window_error_dialog_(ConformWindow *self, const char *title, const char *detail);
void conform_window_update_title_(ConformWindow *self);
void conform_window_set_dirty_(ConformWindow *self, gboolean dirty);
/* Wheel scrolling over the spin buttons in pane (a scrolled window or
 * anything inside one) scrolls the scrolled window instead of editing them,
 * unless the spin button has the keyboard focus. */
void conform_window_scroll_past_spins_(GtkWidget *pane);

/* The Mirror maps tab and the equation editor (conform-window-mirror.c):
 * built by build_views, told about each attached run and sample set. */
GtkWidget *conform_window_mirror_page_new_(ConformWindow *self);
/* conform-window-narration.c: the Slow motion tab */
GtkWidget *conform_window_narration_page_new_(ConformWindow *self);
void conform_window_narration_attach_(ConformWindow *self, ConformRun *run);
void conform_window_narration_samples_(ConformWindow *self, ConformSampleSet *s);
GtkWidget *conform_window_equations_new_(ConformWindow *self);
void conform_window_mirror_attach_(ConformWindow *self, ConformRun *run);
void conform_window_mirror_samples_(ConformWindow *self, const ConformSampleSet *s);

/* Image data (conform-window-images.c): the trajectory's image grid (a
 * stack holding traj_scatter, from build_views), the Samples pane's superres
 * rows and their Thumbnails toggle, the Super-resolution tab, the sidebar's
 * "Start from pretrained" toggle and data.source folder button (after
 * build_sidebar); hooks from attach_run, run_samples_cb,
 * show_trajectory_frame and reset_action; views by name for
 * conform_window_get_view ("trajectory-images", "superres", "superres-page",
 * "thumbnails", "pretrained", "choose-folder"; NULL for other names). */
GtkWidget *conform_window_traj_view_new_(ConformWindow *self);
GtkWidget *conform_window_superres_page_new_(ConformWindow *self);
GtkWidget *conform_window_images_samples_toggle_(ConformWindow *self);
void conform_window_images_sidebar_(ConformWindow *self);
void conform_window_images_attach_(ConformWindow *self, ConformRun *run);
void conform_window_images_samples_(ConformWindow *self, const ConformSampleSet *s);
void conform_window_images_traj_frame_(ConformWindow *self, const ConformSampleSet *s, int k);
void conform_window_images_before_reset_(ConformWindow *self);
GtkWidget *conform_window_images_view_(ConformWindow *self, const char *name);
void conform_window_images_free_(ConformWindow *self);
/* What "Choose folder…" does with the chosen folder: data.source = path
 * for the next Reset. */
void conform_window_choose_folder_(ConformWindow *self, const char *path);

/* Actions and handlers implemented in conform-window-files.c. */
void conform_window_open_action(GSimpleAction *a, GVariant *p, gpointer data);
void conform_window_save_action(GSimpleAction *a, GVariant *p, gpointer data);
void conform_window_save_as_action(GSimpleAction *a, GVariant *p, gpointer data);
void conform_window_export_action(GSimpleAction *a, GVariant *p, gpointer data);
void conform_window_close_action(GSimpleAction *a, GVariant *p, gpointer data);
gboolean conform_window_close_request_cb(GtkWindow *win, gpointer data);

G_END_DECLS
