/* The command-line interface: `conform <command> [options]`. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Exit codes: 0 success, 1 runtime error, 2 usage error. */
enum { CONFORM_EXIT_OK = 0, CONFORM_EXIT_RUNTIME = 1, CONFORM_EXIT_USAGE = 2 };

int conform_cli_main(int argc, char **argv);
/* TRUE when arg is for the CLI: a command, --help/--version, or anything
 * else that is neither an option nor an existing directory (experiments
 * given as directories open in the window). */
gboolean conform_cli_is_command(const char *arg);
/* Headless run of a preset (used when there is no window): trains, samples,
 * evaluates and saves into out_dir (NULL: a new directory under the user's
 * data dir). */
int conform_cli_run_headless(const char *preset, const char *out_dir);

/* `conform bench` (conform-bench.c). */
int conform_bench_main(int argc, char **argv);
/* Workloads that need the GUI register here (main.c), keeping app/ free of
 * GTK: fn(seconds) prints its figures and returns an exit code. */
typedef int (*ConformBenchUiFn)(double seconds);
void conform_bench_set_ui_hook(ConformBenchUiFn fn);

G_END_DECLS
