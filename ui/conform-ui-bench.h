/* `conform bench ui-latency`: the real window under load. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Opens the window on the default preset, trains at full speed for
 * `seconds` while every view updates, and prints ui-latency-p99 (lateness of
 * a 10 ms main-loop timer) and ui-frame-p99 (time from a frame's update phase
 * to the end of its paint), in the bench line format. Returns an exit code. */
int conform_ui_bench_latency(double seconds);

G_END_DECLS
