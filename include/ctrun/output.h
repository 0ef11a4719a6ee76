/* Where the command's output goes (inherited, the log of -o, or held back
 * by --quiet-success), the log's frame lines, and the --report file. */
#ifndef CTRUN_OUTPUT_H
#define CTRUN_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctrun/options.h"
#include "ctrun/result.h"

struct ctrun_output {
  int child_fd;   /* the command's stdout and stderr; -1: ctrun's own */
  int log_fd;     /* -o FILE, opened for append */
  int capture_fd; /* --quiet-success: an unlinked temporary file */
  int report_fd;  /* --report FILE: the temporary file renamed into place */
  FILE *report;
  char *report_tmp;
  const char *report_path;
};

/* Open everything O asks for, before anything runs, so that an unwritable
 * path is a usage error and not a lost result. */
int ctrun_output_open(struct ctrun_output *out, const struct ctrun_run_opts *o, const char *id,
                      char *err, size_t errlen);

/* The log's start line: time, run id, name, command. */
void ctrun_output_start(struct ctrun_output *out, const struct ctrun_run_opts *o, const char *id,
                        int64_t started_ms);

/* A line of ctrun's own in the log, framed like the start and end lines
 * ("killed hung child git (pid 4242) after 30s"); nothing without -o. */
void ctrun_output_note(struct ctrun_output *out, const char *id, const char *name,
                       const char *text);

/* After the run: the held-back output (into the log, and printed if the run
 * failed), then the log's end line: time, reason, exit code, duration. */
void ctrun_output_finish(struct ctrun_output *out, const struct ctrun_result *res);

/* Write the --report file of the run (nothing without --report). */
void ctrun_report_write(struct ctrun_output *out, const struct ctrun_result *res);

/* The report stream, and its atomic completion. */
FILE *ctrun_output_report_begin(struct ctrun_output *out);
void ctrun_output_report_end(struct ctrun_output *out);

void ctrun_output_close(struct ctrun_output *out);

/* ARGV as one line a shell would read back (for logs and ps). */
void ctrun_format_command(char *const *argv, char *buf, size_t size);

#endif
