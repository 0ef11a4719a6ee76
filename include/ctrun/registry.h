/* Tracked runs: one entry file a run in the state directory, written
 * atomically and locked by the supervising ctrun for its whole life, so that
 * a free lock proves the supervisor gone without trusting a pid. */
#ifndef CTRUN_REGISTRY_H
#define CTRUN_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/fs.h"

#define CTRUN_ID_LEN 12

/* A fleet lock a run holds: "redis" or "postgres", its fencing token, the
 * lease's expiry as the run reckons it, and the URL. */
#define CTRUN_ENTRY_LEASES 2
struct ctrun_entry_lease {
  char backend[12];
  char token[24];
  int64_t expires_ms;
  char where[512];
};

struct ctrun_entry {
  char id[CTRUN_ID_LEN + 1];
  char name[65];
  long pid;             /* the supervising ctrun */
  uint64_t pid_start;   /* its start time (pid reuse check); 0 where its entry is
                           signed instead (ctrun_proc_sign_entry) */
  long child_pid;       /* the command; 0 before it is spawned */
  uint64_t child_start;
  long pgid;
  char boot_id[40];
  int64_t started_ms;   /* Unix epoch */
  int64_t deadline_ms;  /* 0: none */
  int signal;           /* soft signal */
  uint64_t kill_after_ms;
  char *lock;           /* NULL: none */
  char lock_id[48];     /* the lock file's identity (ctrun_fd_info), "" if none */
  char *log;
  char **argv;          /* NULL-terminated */
  int argc;
  int children_killed;  /* by --child-timeout, so far */
  char limits_by[12];   /* "kernel", "sampling"; "": no limits */
  char *container;      /* the run's kernel container (its cgroup), or NULL */
  struct ctrun_entry_lease leases[CTRUN_ENTRY_LEASES]; /* fleet locks held */
  int nleases;
  bool stale;           /* set by ctrun_registry_list */
};

/* Resolve, create and verify the state directory. */
int ctrun_statedir_open(struct ctrun_dir **out, char *err, size_t errlen);

/* True if S is a run id: CTRUN_ID_LEN lowercase hex digits. */
bool ctrun_id_valid(const char *s);

/* A fresh random run id. */
void ctrun_new_run_id(char id[CTRUN_ID_LEN + 1]);

/* A random UUID (version 4), "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx": a
 * run's id for the monitoring services that ask for one (healthchecks's
 * rid), also in its report and history. */
#define CTRUN_UUID_LEN 36
void ctrun_new_uuid(char uuid[CTRUN_UUID_LEN + 1]);

/* Entry text <-> struct.  Parsing returns 0 or UV_EINVAL for anything torn or
 * malformed; it never trusts lengths or counts in the text. */
char *ctrun_entry_format(const struct ctrun_entry *e, size_t *len);
int ctrun_entry_parse(const char *text, size_t len, struct ctrun_entry *e);
void ctrun_entry_free(struct ctrun_entry *e);

/* The live record of this process's own run: the entry file, locked. */
struct ctrun_record {
  struct ctrun_dir *dir;
  int fd; /* -1: not recorded */
  char file[CTRUN_ID_LEN + 8];
};

/* Write E (again) and hold its lock; the entry never exists unlocked. */
int ctrun_record_write(struct ctrun_record *r, struct ctrun_dir *dir, const struct ctrun_entry *e);
/* Remove the entry and drop its lock. */
void ctrun_record_remove(struct ctrun_record *r);

/* All entries, live and stale; a corrupt entry is reported on stderr and
 * skipped.  The caller frees with ctrun_registry_free. */
int ctrun_registry_list(struct ctrun_dir *dir, struct ctrun_entry **out, size_t *n);
void ctrun_registry_free(struct ctrun_entry *v, size_t n);

/* Find runs by id or name: returns the matches' indexes in V. */
size_t ctrun_registry_match(const struct ctrun_entry *v, size_t n, const char *what, size_t *idx,
                            size_t max);

/* The entry of run ID, open to read and not locked; UV_ENOENT when gone.
 * Never the caller's own (see registry.c: it would lose its signature). */
int ctrun_registry_open(struct ctrun_dir *dir, const char *id);

/* Take over the entry of stale run ID for cleanup: returns a locked
 * descriptor, or UV_EBUSY when its supervisor lives, UV_ENOENT when gone. */
int ctrun_registry_claim(struct ctrun_dir *dir, const char *id);
/* Remove a claimed entry and close FD. */
void ctrun_registry_drop(struct ctrun_dir *dir, const char *id, int fd);
/* Give a claimed entry back, kept: what remains of its run may be tried
 * again later. */
void ctrun_registry_unclaim(int fd);

/* Remove what crashed writers left: temporary entries nobody holds, stop
 * requests of runs that are gone. */
void ctrun_registry_sweep(struct ctrun_dir *dir);

/* Stop requests for a live run (read by its supervisor on SIGUSR1). */
int ctrun_stop_request_write(struct ctrun_dir *dir, const char *id, int sig, uint64_t kill_after_ms);
int ctrun_stop_request_read(struct ctrun_dir *dir, const char *id, int *sig, uint64_t *kill_after_ms);

#endif
