#define G_LOG_DOMAIN "conform"

#include "conform-application.h"

#include "conform-cli.h"
#include "conform-resources.h"
#include "conform-presets.h"
#include "conform-window.h"

struct _ConformApplication {
  GtkApplication parent_instance;
  GSettings *settings;
  char *initial_preset;
};

G_DEFINE_FINAL_TYPE(ConformApplication, conform_application, GTK_TYPE_APPLICATION)

/* The schema is installed by `meson install`; uninstalled runs use the one
 * compiled into the build directory. */
static GSettings *
load_settings(void)
{
  GSettingsSchemaSource *src = g_settings_schema_source_get_default();
  g_autoptr(GSettingsSchema) schema = src ? g_settings_schema_source_lookup(src, CONFORM_APP_ID, TRUE) : NULL;
  if (!schema) {
    g_autoptr(GSettingsSchemaSource) local =
      g_settings_schema_source_new_from_directory(CONFORM_BUILD_SCHEMA_DIR, src, FALSE, NULL);
    if (local)
      schema = g_settings_schema_source_lookup(local, CONFORM_APP_ID, FALSE);
  }
  if (!schema) {
    g_warning("GSettings schema %s not found: preferences will not persist", CONFORM_APP_ID);
    return NULL;
  }
  return g_settings_new_full(schema, NULL, NULL);
}

static void
apply_color_scheme(ConformApplication *self)
{
  if (!self->settings)
    return;
  g_autofree char *scheme = g_settings_get_string(self->settings, "color-scheme");
  GtkSettings *gs = gtk_settings_get_default();
  if (!gs)
    return;
  /* "default" leaves the system's (theme's) preference alone. */
  if (g_strcmp0(scheme, "dark") == 0)
    g_object_set(gs, "gtk-application-prefer-dark-theme", TRUE, NULL);
  else if (g_strcmp0(scheme, "light") == 0)
    g_object_set(gs, "gtk-application-prefer-dark-theme", FALSE, NULL);
}

static void
settings_changed_cb(GSettings *s, const char *key, ConformApplication *self)
{
  if (g_str_equal(key, "color-scheme"))
    apply_color_scheme(self);

}

static void
new_window_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformApplication *self = data;
  g_autofree char *preset = self->settings ? g_settings_get_string(self->settings, "last-preset") : NULL;
  gtk_window_present(GTK_WINDOW(conform_window_new(GTK_APPLICATION(self), preset)));
}

static void
quit_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  GList *windows = gtk_application_get_windows(GTK_APPLICATION(data));
  for (GList *l = g_list_copy(windows); l; l = g_list_delete_link(l, l))
    gtk_window_close(GTK_WINDOW(l->data));
}

static void
about_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(data));
  const char *authors[] = {"The Conform developers", NULL};
  gtk_show_about_dialog(parent, "program-name", "Conform", "version", PACKAGE_VERSION, "logo-icon-name",
                        CONFORM_APP_ID, "comments",
                        "See how generative models can be made to respect constraints: train diffusion models and "
                        "compare constraint strategies live.",
                        "license-type", GTK_LICENSE_GPL_3_0, "authors", authors, "website",
                        "https://github.com/conform/conform", NULL);
}

static void
shortcuts_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(data));
  g_autoptr(GtkBuilder) b = gtk_builder_new_from_resource("/io/github/conform/Conform/shortcuts.ui");
  GtkWindow *w = GTK_WINDOW(gtk_builder_get_object(b, "shortcuts"));
  gtk_window_set_transient_for(w, parent);
  gtk_window_present(w);
}

static const char *const scheme_ids[] = {"default", "light", "dark"};

static void
scheme_selected_cb(GtkDropDown *dd, GParamSpec *ps, GSettings *settings)
{
  guint i = gtk_drop_down_get_selected(dd);
  if (i < G_N_ELEMENTS(scheme_ids))
    g_settings_set_string(settings, "color-scheme", scheme_ids[i]);
}

static void
pref_row(GtkWidget *grid, int row, const char *label, const char *tip, GtkWidget *w)
{
  GtkWidget *l = gtk_label_new(label);
  gtk_label_set_xalign(GTK_LABEL(l), 0);
  gtk_widget_set_tooltip_text(l, tip);
  gtk_widget_set_tooltip_text(w, tip);
  gtk_grid_attach(GTK_GRID(grid), l, 0, row, 1, 1);
  gtk_grid_attach(GTK_GRID(grid), w, 1, row, 1, 1);
}

static GtkWidget *
bound_spin(GSettings *s, const char *key, double lo, double hi, double step, int digits)
{
  GtkWidget *w = gtk_spin_button_new_with_range(lo, hi, step);
  gtk_spin_button_set_digits(GTK_SPIN_BUTTON(w), (guint)digits);
  g_settings_bind(s, key, w, "value", G_SETTINGS_BIND_DEFAULT);
  return w;
}

static void
preferences_action(GSimpleAction *a, GVariant *p, gpointer data)
{
  ConformApplication *self = data;
  GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(self));
  GtkWidget *win = gtk_window_new();
  gtk_window_set_title(GTK_WINDOW(win), "Preferences");
  gtk_window_set_transient_for(GTK_WINDOW(win), parent);
  gtk_window_set_modal(GTK_WINDOW(win), TRUE);
  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 8);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
  gtk_widget_set_margin_start(grid, 16);
  gtk_widget_set_margin_end(grid, 16);
  gtk_widget_set_margin_top(grid, 16);
  gtk_widget_set_margin_bottom(grid, 16);
  if (!self->settings) {
    gtk_grid_attach(GTK_GRID(grid), gtk_label_new("Preferences are unavailable: the GSettings schema is missing."), 0,
                    0, 1, 1);
  } else {
    const char *const schemes[] = {"Follow system", "Light", "Dark", NULL};
    GtkWidget *scheme = gtk_drop_down_new_from_strings(schemes);
    g_autofree char *cur = g_settings_get_string(self->settings, "color-scheme");
    for (guint i = 0; i < G_N_ELEMENTS(scheme_ids); i++)
      if (g_strcmp0(cur, scheme_ids[i]) == 0)
        gtk_drop_down_set_selected(GTK_DROP_DOWN(scheme), i);
    g_signal_connect(scheme, "notify::selected", G_CALLBACK(scheme_selected_cb), self->settings);
    pref_row(grid, 0, "Appearance", "Follow the system's light/dark preference or force one", scheme);
    pref_row(grid, 1, "BLAS threads", "OpenBLAS threads for training and sampling (applies to new runs: Reset)",
             bound_spin(self->settings, "blas-threads", 1, 64, 1, 0));
    pref_row(grid, 2, "Sample preview every (s)", "Seconds between automatic sample previews while training",
             bound_spin(self->settings, "preview-interval", 0.1, 60, 0.1, 1));
    pref_row(grid, 3, "Default sample count", "Samples drawn for each preview in new windows",
             bound_spin(self->settings, "default-samples", 10, 100000, 10, 0));
    pref_row(grid, 4, "Plot refresh rate (Hz)", "How often the plots take in new training data",
             bound_spin(self->settings, "refresh-rate", 1, 120, 1, 0));
  }
  gtk_window_set_child(GTK_WINDOW(win), grid);
  gtk_window_present(GTK_WINDOW(win));
}

static const GActionEntry app_actions[] = {
  {"new-window", new_window_action, NULL, NULL, NULL, {0}},
  {"quit", quit_action, NULL, NULL, NULL, {0}},
  {"about", about_action, NULL, NULL, NULL, {0}},
  {"shortcuts", shortcuts_action, NULL, NULL, NULL, {0}},
  {"preferences", preferences_action, NULL, NULL, NULL, {0}},
};

static void
conform_application_startup(GApplication *app)
{
  ConformApplication *self = CONFORM_APPLICATION(app);
  G_APPLICATION_CLASS(conform_application_parent_class)->startup(app);
  g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
  struct {
    const char *action;
    const char *accels[3];
  } accels[] = {
    {"app.new-window", {"<Control>n", NULL}},   {"app.quit", {"<Control>q", NULL}},
    {"app.shortcuts", {"<Control>question", NULL}}, {"app.preferences", {"<Control>comma", NULL}},
    {"win.open", {"<Control>o", NULL}},         {"win.save", {"<Control>s", NULL}},
    {"win.save-as", {"<Control><Shift>s", NULL}}, {"win.export", {"<Control>e", NULL}},
    {"win.close", {"<Control>w", NULL}},        {"win.sample", {"<Control>r", NULL}},
  };
  for (guint i = 0; i < G_N_ELEMENTS(accels); i++)
    gtk_application_set_accels_for_action(GTK_APPLICATION(app), accels[i].action, accels[i].accels);
  self->settings = load_settings();
  if (self->settings) {
    g_signal_connect(self->settings, "changed", G_CALLBACK(settings_changed_cb), self);
    apply_color_scheme(self);
  }
  /* Referencing the bundle links it (and its registration) in from the
   * static library. */
  g_resources_register(conform_get_resource());
  GtkCssProvider *css = gtk_css_provider_new();
  gtk_css_provider_load_from_resource(css, "/io/github/conform/Conform/style.css");
  gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css),
                                             GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  g_object_unref(css);
}

static void
conform_application_activate(GApplication *app)
{
  ConformApplication *self = CONFORM_APPLICATION(app);
  const char *preset = self->initial_preset;
  g_autofree char *last = NULL;
  if (!preset && self->settings) {
    last = g_settings_get_string(self->settings, "last-preset");
    if (last && *last && conform_preset_find(last))
      preset = last;
  }
  gtk_window_present(GTK_WINDOW(conform_window_new(GTK_APPLICATION(app), preset)));
}

static void
conform_application_open(GApplication *app, GFile **files, int n, const char *hint)
{
  for (int i = 0; i < n; i++) {
    g_autofree char *path = g_file_get_path(files[i]);
    ConformWindow *w = conform_window_new(GTK_APPLICATION(app), NULL);
    if (path)
      conform_window_open_dir(w, path);
    gtk_window_present(GTK_WINDOW(w));
  }
}

static void
conform_application_finalize(GObject *object)
{
  ConformApplication *self = CONFORM_APPLICATION(object);
  g_clear_object(&self->settings);
  g_free(self->initial_preset);
  G_OBJECT_CLASS(conform_application_parent_class)->finalize(object);
}

static void
conform_application_class_init(ConformApplicationClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = conform_application_finalize;
  G_APPLICATION_CLASS(klass)->startup = conform_application_startup;
  G_APPLICATION_CLASS(klass)->activate = conform_application_activate;
  G_APPLICATION_CLASS(klass)->open = conform_application_open;
}

static void
conform_application_init(ConformApplication *self)
{
}

ConformApplication *
conform_application_new(void)
{
  /* NON_UNIQUE: each `conform` process is its own application, so tests and
   * several experiments never hand windows to another process. */
  return g_object_new(CONFORM_TYPE_APPLICATION, "application-id", CONFORM_APP_ID, "flags",
                      G_APPLICATION_HANDLES_OPEN | G_APPLICATION_NON_UNIQUE, NULL);
}

GSettings *
conform_application_get_settings(ConformApplication *self)
{
  g_return_val_if_fail(CONFORM_IS_APPLICATION(self), NULL);
  return self->settings;
}

int
conform_application_run_gui(int argc, char **argv)
{
  /* Every view is a Cairo drawing; without a GPU (Mesa's llvmpipe) the GL
   * renderer costs hundreds of ms per frame here, the Cairo one a few.
   * GSK_RENDERER set by the user wins. */
  g_setenv("GSK_RENDERER", "cairo", FALSE);
  if (!gtk_init_check()) {
    /* No display: the engine still works headless. */
    g_printerr("conform: no display available; running the default preset headless instead\n");
    return conform_cli_run_headless(CONFORM_DEFAULT_PRESET, NULL);
  }
  g_autoptr(ConformApplication) app = conform_application_new();
  const char *preset = g_getenv("CONFORM_PRESET");
  if (preset && conform_preset_find(preset))
    app->initial_preset = g_strdup(preset);
  return g_application_run(G_APPLICATION(app), argc, argv);
}
