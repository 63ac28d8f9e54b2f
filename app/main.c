/* conform: entry point (kept tiny; everything else is in libconform-app). */
#include "conform-cli.h"

int
main(int argc, char **argv)
{
  return conform_cli_main(argc, argv);
}
