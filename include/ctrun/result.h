/* The result of a run: filled once, when the run is over, and read by
 * every sink after it (the log's end line, the report, ctrun's own last
 * message).  A new sink reads this; it never reaches into the run loop. */
#ifndef CTRUN_RESULT_H
#define CTRUN_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a run (or one attempt of it) ended: exactly one of these. */
enum ctrun_reason {
  CTRUN_REASON_EXIT,      /* the command exited by itself */
  CTRUN_REASON_SIGNAL,    /* the command died of a signal ctrun did not send for a deadline */
  CTRUN_REASON_TIMEOUT,   /* -t expired */
  CTRUN_REASON_IDLE,      /* --idle-timeout: no output for that long */
  CTRUN_REASON_STOPPED,   /* ctrun stop, or --on-busy=replace from another run */
  CTRUN_REASON_LEFTOVERS, /* the command exited; what it left was killed */
  CTRUN_REASON_SKIPPED,   /* the lock was busy: nothing ran */
  CTRUN_REASON_MEMORY,    /* the tree went over --memory */
  CTRUN_REASON_PROCS,     /* the tree went over --max-procs */
  CTRUN_REASON_CPU,       /* the tree went over --cpu-time */
  CTRUN_REASON_LOCK_LOST, /* a fleet lock's lease could not be renewed in time */
};
#define CTRUN_REASON_LAST CTRUN_REASON_LOCK_LOST

/* "exit", "signal", "timeout", "idle", "stopped", "leftovers", "skipped",
 * "memory", "procs", "cpu", "lock-lost". */
const char *ctrun_reason_name(enum ctrun_reason r);

/* How an end reads for people, as the log's end line says it: "exit 3",
 * "killed by signal TERM, exit 143", "timed out, exit 124", "idle, exit
 * 124", "stopped, exit 124", "exit 0, leftovers killed", "over --memory,
 * exit 124". */
const char *ctrun_reason_text(enum ctrun_reason r, int exit_code, int termsig, char *buf,
                              size_t size);

/* How many of the members ctrun could not signal the result names. */
#define CTRUN_UNKILLABLE_LISTED 16

/* One attempt of a run (--retry makes several). */
struct ctrun_attempt {
  int exit_code;
  enum ctrun_reason reason;
  int64_t duration_ms;
  bool ok;                /* counts as success (exit 0, or a status of --ok-exit) */
};

struct ctrun_result {
  const char *id, *name;
  const char *rid;        /* the run's UUID, for monitoring services */
  bool ok;                /* counts as success: the command exited by itself
                             with 0 or a status of --ok-exit */
  char *const *argv;
  const char *lock;       /* the lock's path, or NULL */
  int64_t started_ms;     /* epoch ms: when the lock was taken, else when ctrun started */
  int64_t ended_ms;
  int64_t lock_wait_ms;
  int exit_code;          /* what ctrun exits with */
  int status, termsig;    /* the last command's: status, or -1 and the signal */
  enum ctrun_reason reason;
  bool timed_out;         /* ended by ctrun: timeout, idle or stopped */
  bool killed_hard;
  int leftovers_killed;
  int children_killed;    /* by --child-timeout */
  int peak_procs;
  uint64_t peak_rss_bytes;
  uint64_t cpu_user_ms, cpu_sys_ms;
  const char *limits_by;  /* "kernel", "sampling", or NULL without limits */
  const char *lock_token; /* the first fleet lock's fencing token, or NULL */
  int unkillable;         /* members ctrun was not permitted to signal */
  const long *unkillable_pid; /* the first CTRUN_UNKILLABLE_LISTED of them */
  int attempts;           /* how many were started: 0 when skipped */
  const struct ctrun_attempt *attempt; /* [attempts] */
};

#endif
