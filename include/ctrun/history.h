/* The history of finished runs: one file per run name in the state
 * directory (NAME.history), one line per run, appended with one write
 * under the file's lock, and compacted (crash-safe: a new file renamed
 * over the old) to the last CTRUN_HISTORY_KEEP records once it grows. */
#ifndef CTRUN_HISTORY_H
#define CTRUN_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/fs.h"
#include "ctrun/options.h"
#include "ctrun/registry.h"
#include "ctrun/result.h"

#define CTRUN_HISTORY_KEEP 100

/* How a run went, for counting: success (res->ok), failure, ended by ctrun
 * (timeout, idle, stopped, over a limit), skipped (lock busy). */
enum ctrun_outcome {
  CTRUN_OUTCOME_SUCCESS,
  CTRUN_OUTCOME_FAILURE,
  CTRUN_OUTCOME_TIMEOUT,
  CTRUN_OUTCOME_SKIPPED,
  CTRUN_OUTCOMES
};
const char *ctrun_outcome_name(enum ctrun_outcome o);

/* One record. */
struct ctrun_hrec {
  char id[CTRUN_ID_LEN + 1];
  char rid[CTRUN_UUID_LEN + 1];
  char name[CTRUN_NAME_MAX + 1];
  int64_t started_ms, ended_ms; /* epoch ms */
  enum ctrun_reason reason;
  uint32_t exit_code;
  bool ok;
  int attempts;
  uint64_t peak_rss_bytes, cpu_user_ms, cpu_sys_ms;
  enum ctrun_outcome outcome;
  uint64_t total[CTRUN_OUTCOMES]; /* runs of this name so far, this one included */
};

/* The record of result RES. */
void ctrun_hrec_from_result(const struct ctrun_result *res, struct ctrun_hrec *out);

/* One line of text (with its newline) for R into BUF; its length. */
size_t ctrun_hrec_format(const struct ctrun_hrec *r, char *buf, size_t size);

/* Parse one line (without its newline) into OUT: 0, or UV_EINVAL for
 * anything that is not a whole record (torn, corrupt, another version). */
int ctrun_hrec_parse(const char *line, size_t len, struct ctrun_hrec *out);

/* Append the record of RES to its name's history in DIR.  Returns 0 or a
 * negative libuv error. */
int ctrun_history_append(struct ctrun_dir *dir, const struct ctrun_result *res);

/* The records of NAME, oldest first: *V (free with free()) holds *N;
 * *CORRUPT counts the lines skipped.  No history: 0 records. */
int ctrun_history_read(struct ctrun_dir *dir, const char *name, struct ctrun_hrec **v, size_t *n,
                       int *corrupt);

/* The names that have a history in DIR, sorted: *NAMES (free each, then
 * the array) holds *N. */
int ctrun_history_names(struct ctrun_dir *dir, char ***names, size_t *n);

#endif
