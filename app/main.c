/* conform: entry point (kept tiny; everything else is in the static libraries).
 * `conform COMMAND ...` runs the command line; `conform` alone opens the window. */
#include "conform-application.h"
#include "conform-cli.h"
#include "conform-ui-bench.h"

int
main(int argc, char **argv)
{
  conform_bench_set_ui_hook(conform_ui_bench_latency);
  if (argc >= 2 && conform_cli_is_command(argv[1]))
    return conform_cli_main(argc, argv);
  return conform_application_run_gui(argc, argv);
}
