/* The command line: run options and the subcommands' options. */
#ifndef CTRUN_OPTIONS_H
#define CTRUN_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ctrun_leftovers { CTRUN_LEFTOVERS_KILL, CTRUN_LEFTOVERS_WAIT };
enum ctrun_on_busy { CTRUN_BUSY_FAIL, CTRUN_BUSY_SKIP, CTRUN_BUSY_REPLACE, CTRUN_BUSY_QUEUE };

/* --retry-on: which ends of an attempt start another. */
struct ctrun_retry_on {
  bool fail;          /* the command exited non-zero, or died of a signal, by itself */
  bool timeout;       /* ctrun ended it: -t or --idle-timeout */
  uint32_t codes[8];  /* these exit codes (a bit each, 0-255) */
};

/* The most --retry allows. */
#define CTRUN_RETRY_MAX 1000

#define CTRUN_NAME_MAX 64

/* -l may be given twice: a lock file and a fleet lock, typically. */
#define CTRUN_LOCKS_MAX 2

struct ctrun_run_opts {
  uint64_t timeout_ms;    /* 0: none */
  int signal;             /* the soft signal */
  uint64_t kill_after_ms; /* soft -> hard; CTRUN_DURATION_INF: never */
  bool preserve_status;
  enum ctrun_leftovers leftovers;
  /* -l, in the order given: a lock file (lock_path, at most one) and
   * fleet locks (URLs, see lease.h) */
  const char *locks[CTRUN_LOCKS_MAX];
  int nlocks;
  const char *lock_path;  /* the lock file; NULL: none */
  uint64_t lock_wait_ms;  /* CTRUN_DURATION_INF: forever (queue's default) */
  enum ctrun_on_busy on_busy;
  uint64_t lock_ttl_ms;   /* --lock-ttl: a fleet lock's lease */
  bool lock_unavailable_skip; /* --lock-unavailable=skip */
  uint64_t child_timeout_ms; /* 0: none */
  uint64_t idle_timeout_ms;  /* 0: none */
  int retry;                 /* attempts after the first */
  uint64_t retry_delay_ms;   /* before the first retry; doubled each time */
  struct ctrun_retry_on retry_on;
  uint32_t ok_exit[8];       /* --ok-exit: exit statuses that count as success (a bit each) */
  uint64_t jitter_ms;        /* --jitter: a random wait below this before the lock; 0: none */
  const char *on_finish;     /* --on-finish: a shell command run after the run; NULL: none */
  /* Limits on the whole tree; 0: none */
  uint64_t memory_bytes;
  int max_procs;
  uint64_t cpu_time_ms;
  bool has_nice;
  int nice;
  char name[CTRUN_NAME_MAX + 1];
  bool detach;
  const char *log_path;
  bool quiet_success;
  const char *report_path; /* "-": stderr */
  const char *ping_url;    /* --ping URL (see ping.h); NULL: none */
  const char *ping_file;   /* --ping-file FILE: the URL is its first line */
  int verbosity;
  char **argv; /* the command, NULL-terminated */
  int argc;
  bool no_history; /* not an option: a run's --on-finish has none */
};

struct ctrun_ps_opts { bool json; };
struct ctrun_stop_opts {
  int signal;             /* 0: the run's own soft signal */
  uint64_t kill_after_ms; /* when has_kill_after; else the run's own */
  bool has_kill_after;
  char **runs;
  int nruns;
};
struct ctrun_cleanup_opts { bool dry_run, json; };
struct ctrun_last_opts {
  bool json;
  char **names; /* NULL-terminated; none: every name with a history */
  int nnames;
};
struct ctrun_metrics_opts { const char *out_path; /* NULL: stdout */ };
/* check --job NAME=DUR: the dead man's switch of one job. */
#define CTRUN_CHECK_JOBS_MAX 64
struct ctrun_check_job {
  char name[CTRUN_NAME_MAX + 1];
  uint64_t within_ms;
};
struct ctrun_check_opts {
  long warn, crit; /* -1: no threshold */
  uint64_t max_age_ms; /* 0: none */
  uint64_t mem_warn, mem_crit; /* bytes, on all tracked trees together; 0: none */
  struct ctrun_check_job jobs[CTRUN_CHECK_JOBS_MAX];
  int njobs;
  bool cleanup, json;
  bool quiet; /* print nothing when the status is OK (cron mails any output) */
};

enum ctrun_parse_result {
  CTRUN_PARSE_ERROR = -1, /* message in the error buffer; exit 125 */
  CTRUN_PARSE_OK = 0,
  CTRUN_PARSE_HELP,
  CTRUN_PARSE_VERSION
};

/* A message buffer for parse errors. */
struct ctrun_parse_error { char msg[512]; };

enum ctrun_parse_result ctrun_parse_run(int argc, char **argv, struct ctrun_run_opts *o,
                                        struct ctrun_parse_error *e);
enum ctrun_parse_result ctrun_parse_ps(int argc, char **argv, struct ctrun_ps_opts *o,
                                       struct ctrun_parse_error *e);
enum ctrun_parse_result ctrun_parse_stop(int argc, char **argv, struct ctrun_stop_opts *o,
                                         struct ctrun_parse_error *e);
enum ctrun_parse_result ctrun_parse_cleanup(int argc, char **argv, struct ctrun_cleanup_opts *o,
                                            struct ctrun_parse_error *e);
enum ctrun_parse_result ctrun_parse_last(int argc, char **argv, struct ctrun_last_opts *o,
                                        struct ctrun_parse_error *e);
enum ctrun_parse_result ctrun_parse_metrics(int argc, char **argv, struct ctrun_metrics_opts *o,
                                           struct ctrun_parse_error *e);
enum ctrun_parse_result ctrun_parse_check(int argc, char **argv, struct ctrun_check_opts *o,
                                          struct ctrun_parse_error *e);

/* True if NAME matches [A-Za-z0-9._-]{1,64}. */
bool ctrun_name_valid(const char *name);

/* The default run name: the command's base name, cut to a valid name. */
void ctrun_default_name(const char *argv0, char out[CTRUN_NAME_MAX + 1]);

#endif
