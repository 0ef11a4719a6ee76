/* Lock files (-l): one exclusive lock, held for the life of the whole tree,
 * never inherited by the command, never deleted. */
#ifndef CTRUN_LOCK_H
#define CTRUN_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/fs.h"

struct ctrun_lock {
  int fd; /* -1: not held */
  const char *path;
  struct ctrun_file_info file; /* the file locked, or found busy */
  bool owns_text; /* the file holds nothing but ctrun's holder text */
  size_t text_len; /* how much of it this holder wrote */
};

/* Take the lock on PATH, creating the file if missing, waiting up to
 * WAIT_MS.  Returns 0, UV_EBUSY when it is still held (L->file then says
 * which file is busy), or another negative libuv error with ERR saying
 * why. */
int ctrun_lock_take(struct ctrun_lock *l, const char *path, uint64_t wait_ms, char *err,
                    size_t errlen);

/* Record the holder in the file, so that a busy run can name it; only in a
 * file that is ctrun's own (empty, or holding nothing but holder text and
 * blank lines, and with one name): a lock file that holds other data, such
 * as the script of the "flock $0" idiom, is never written. */
void ctrun_lock_set_holder(struct ctrun_lock *l, long pid, const char *run_id, const char *name,
                           int64_t started_ms);

/* Describe the holder of PATH from its holder text: "pid 4242 (nightly-sync,
 * running for 3m12s)", or "another process".  The text is anyone's who can
 * write the file: it is only ever shown, never acted on. */
void ctrun_lock_holder(const char *path, char *buf, size_t size);

/* Parse the holder text of a lock file (exposed for tests and fuzzing). */
struct ctrun_lock_holder {
  long pid;
  char id[32];
  char name[65];
  int64_t started_ms;
  char host[65]; /* a fleet lock's holder: its host name */
};
int ctrun_lock_holder_parse(const char *text, size_t len, struct ctrun_lock_holder *h);

/* True when TEXT is nothing but holder text: lines KEY=VALUE with the keys
 * ctrun writes, each ended by a newline. */
bool ctrun_lock_text_is_holder(const char *text, size_t len);

/* Release the lock: clear the holder text (of a file of ctrun's own),
 * unlock, close. */
void ctrun_lock_release(struct ctrun_lock *l);

/* --on-busy=queue: the one place in the queue behind the holder of a lock,
 * a lock on a file of the state directory DIR named after ID: the lock
 * file's identity (as ctrun_lock_take found it busy), so that nothing new
 * appears beside the user's lock file, or a fleet lock's name.  Taken
 * without waiting: returns a descriptor to hold while waiting for the lock
 * itself, UV_EBUSY when another run already waits, or another negative
 * libuv error. */
int ctrun_lock_waiter_take(struct ctrun_dir *dir, const char *id);

/* Leave the queue (the lock is taken, or the wait is over). */
void ctrun_lock_waiter_release(int fd);

#endif
