/* A run: lock, record, spawn into a container, loop, kill and reap what is
 * left, release, report. */
#ifndef CTRUN_RUN_H
#define CTRUN_RUN_H

#include "ctrun/options.h"

/* Run the command of O in the foreground; returns the exit code. */
int ctrun_run(struct ctrun_run_opts *o);

#endif
