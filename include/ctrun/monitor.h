/* What the history says about each job: ctrun last, ctrun metrics, and
 * the dead man's switch of ctrun check --job. */
#ifndef CTRUN_MONITOR_H
#define CTRUN_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "ctrun/fs.h"
#include "ctrun/history.h"
#include "ctrun/options.h"

/* One job's standing, from its history. */
struct ctrun_job_state {
  char name[CTRUN_NAME_MAX + 1];
  size_t records;              /* 0: never ran (as far as the history goes) */
  struct ctrun_hrec last;      /* the last run, skipped ones included */
  struct ctrun_hrec last_ran;  /* the last run that was not skipped */
  struct ctrun_hrec success;   /* the last success */
  bool ran, succeeded;         /* last_ran, success are set */
  int consecutive_failures;    /* failures and timeouts since the last success */
  int runs_24h;                /* runs that ended in the 24 hours before NOW */
  int corrupt;                 /* records skipped as unreadable */
};

/* "Now" for the commands that judge ages: the clock, or $CTRUN_NOW (Unix
 * time in seconds, for tests). */
int64_t ctrun_monitor_now_ms(void);

/* The standing of job NAME in DIR at NOW. */
int ctrun_job_state(struct ctrun_dir *dir, const char *name, int64_t now_ms,
                    struct ctrun_job_state *out);

int ctrun_cmd_last(const struct ctrun_last_opts *o);
int ctrun_cmd_metrics(const struct ctrun_metrics_opts *o);

/* The worse of two monitoring statuses (0 OK, 1 WARNING, 2 CRITICAL, 3
 * UNKNOWN): CRITICAL beats UNKNOWN, which beats WARNING. */
int ctrun_status_worse(int a, int b);

/* check --job: worsen *STATUS (0 OK, 1 WARNING, 2 CRITICAL) by the jobs
 * of O, and add their text to EXTRA and their perfdata to PERF. */
void ctrun_check_jobs(struct ctrun_dir *dir, const struct ctrun_check_opts *o, int64_t now_ms,
                      int *status, char *extra, size_t extralen, char *perf, size_t perflen);

#endif
