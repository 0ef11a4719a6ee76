/* Lock files (-l): one exclusive lock, held for the life of the whole tree,
 * never inherited by the command, never deleted. */
#ifndef CTRUN_LOCK_H
#define CTRUN_LOCK_H

#include <stddef.h>
#include <stdint.h>

struct ctrun_lock {
  int fd; /* -1: not held */
  const char *path;
};

/* Take the lock on PATH, creating the file if missing, waiting up to
 * WAIT_MS.  Returns 0, UV_EBUSY when it is still held, or another negative
 * libuv error with ERR saying why. */
int ctrun_lock_take(struct ctrun_lock *l, const char *path, uint64_t wait_ms, char *err,
                    size_t errlen);

/* Record the holder in the file, so that a busy run can name it. */
void ctrun_lock_set_holder(struct ctrun_lock *l, long pid, const char *run_id, const char *name,
                           int64_t started_ms);

/* Describe the holder of PATH: "pid 4242 (nightly-sync, running for 3m12s)"
 * or "another process".  RUN_ID, when not NULL, receives the holder's run id
 * ("" if unknown). */
void ctrun_lock_holder(const char *path, char *buf, size_t size, char *run_id, size_t idsize);

/* Parse the holder text of a lock file (exposed for tests and fuzzing). */
struct ctrun_lock_holder {
  long pid;
  char id[32];
  char name[65];
  int64_t started_ms;
};
int ctrun_lock_holder_parse(const char *text, size_t len, struct ctrun_lock_holder *h);

/* Release the lock: clear the holder text, unlock, close. */
void ctrun_lock_release(struct ctrun_lock *l);

#endif
