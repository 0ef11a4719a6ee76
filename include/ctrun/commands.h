/* The subcommands: ps, stop, cleanup, check.  Each returns its exit code. */
#ifndef CTRUN_COMMANDS_H
#define CTRUN_COMMANDS_H

#include "ctrun/options.h"

int ctrun_cmd_ps(const struct ctrun_ps_opts *o);
int ctrun_cmd_stop(const struct ctrun_stop_opts *o);
int ctrun_cmd_cleanup(const struct ctrun_cleanup_opts *o);
int ctrun_cmd_check(const struct ctrun_check_opts *o);

#endif
