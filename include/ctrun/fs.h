/* The few file-system operations whose safe form differs by platform: a
 * verified private directory, atomic replacement, advisory locks. */
#ifndef CTRUN_FS_H
#define CTRUN_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctrun_dir;

/* Open (creating with mode 0700 when CREATE) the private directory PATH.
 * Refuses a symbolic link, a directory owned by another user or one that
 * group or others can write.  On error, ERR says why. */
int ctrun_dir_open(const char *path, bool create, struct ctrun_dir **out, char *err, size_t errlen);
void ctrun_dir_close(struct ctrun_dir *d);
const char *ctrun_dir_path(const struct ctrun_dir *d);

/* Open NAME inside D, never following a symbolic link; FLAGS as open(2)
 * (O_CLOEXEC is implied).  Returns a descriptor or a negative libuv error. */
int ctrun_dir_openat(struct ctrun_dir *d, const char *name, int flags);
int ctrun_dir_rename(struct ctrun_dir *d, const char *from, const char *to);
int ctrun_dir_unlink(struct ctrun_dir *d, const char *name);

/* Call FN for each name in D (not "." and ".."), stopping at a non-zero
 * return, which is passed back. */
int ctrun_dir_each(struct ctrun_dir *d, int (*fn)(const char *name, void *arg), void *arg);

/* True when NAME in D is still the file open on FD (not replaced). */
bool ctrun_dir_same_file(struct ctrun_dir *d, const char *name, int fd);

enum ctrun_lock_mode { CTRUN_LOCK_SHARED, CTRUN_LOCK_EXCLUSIVE };

/* Lock FD, waiting up to WAIT_MS (0: try once, CTRUN_DURATION_INF: forever).
 * Returns 0, UV_EBUSY when still held by another, or a negative libuv error.
 * The lock belongs to the open file and ends when its last descriptor
 * closes. */
int ctrun_fd_lock(int fd, enum ctrun_lock_mode mode, uint64_t wait_ms);
void ctrun_fd_unlock(int fd);

/* Write all of BUF at offset 0 and cut the file there. */
int ctrun_fd_rewrite(int fd, const void *buf, size_t len);

/* Open (creating when missing, mode 0644 less the umask) the lock file
 * PATH: a regular file, never through a symbolic link, close-on-exec.
 * Returns a descriptor, or a negative libuv error with ERR saying why. */
int ctrun_lockfile_open(const char *path, char *err, size_t errlen);

/* Read the whole file (at most MAX bytes) into a NUL-terminated buffer. */
int ctrun_fd_read_all(int fd, size_t max, char **out, size_t *len);

#endif
