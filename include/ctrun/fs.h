/* The file-system operations whose safe form differs by platform: a
 * verified private directory, files opened at paths the user gave, atomic
 * replacement, advisory locks.  The core does all its file I/O through
 * these, so that it reads the same on every platform. */
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
/* Whether what D holds may outlive a reboot: false on a file system held
 * in memory (tmpfs, ramfs), true where that cannot be told. */
bool ctrun_dir_outlives_boot(const struct ctrun_dir *d);

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

/* Lock FD, waiting up to WAIT_MS (0: try once, CTRUN_DURATION_INF: forever;
 * a signal that ctrun catches ends the wait early).  Returns 0, UV_EBUSY
 * when still held by another, or a negative libuv error.
 * The lock belongs to the open file and ends when its last descriptor
 * closes. */
int ctrun_fd_lock(int fd, enum ctrun_lock_mode mode, uint64_t wait_ms);
void ctrun_fd_unlock(int fd);

/* Write all of BUF at offset OFF (whatever the file's position). */
int ctrun_fd_write_at(int fd, const void *buf, size_t len, uint64_t off);
/* Write all of BUF at offset 0 and cut the file there. */
int ctrun_fd_rewrite(int fd, const void *buf, size_t len);
/* Cut (or extend) the file to SIZE bytes. */
int ctrun_fd_truncate(int fd, uint64_t size);

/* What a file that ctrun opens at a path the user gave is for.  Every such
 * path follows one set of rules: never through a symbolic link (a link
 * planted in a shared directory must not redirect ctrun), never a FIFO or
 * another file whose open or write could block before the deadline is
 * armed, created when missing with mode 0644 less the umask, close-on-exec,
 * and never truncated. */
enum ctrun_file_use {
  CTRUN_FILE_LOCK,   /* -l: read and write (read-only where refused); a regular file */
  CTRUN_FILE_LOG,    /* -o: append only; a regular file or a character device */
  CTRUN_FILE_REPORT, /* --report's temporary file: write, created new; a regular file */
};

/* Say in ERR why opening PATH for USE failed with error E (for the
 * platforms' ctrun_file_open: one wording everywhere). */
void ctrun_file_error(char *err, size_t errlen, enum ctrun_file_use use, const char *path, int e);

/* Open PATH for USE.  Returns a descriptor, or a negative libuv error with
 * ERR saying what failed, on what, and why: UV_EBUSY when another program
 * holds the file open and shares it with no one (Windows), which for a
 * lock file means busy. */
int ctrun_file_open(const char *path, enum ctrun_file_use use, char *err, size_t errlen);

/* True when PATH is a directory (followed if it is a link). */
bool ctrun_path_is_dir(const char *path);

/* Rename FROM to TO, replacing TO if it exists: atomically, also while a
 * reader has TO open (on Windows, where that reader shares delete and the
 * file system has the POSIX rename of Windows 10; elsewhere TO is moved
 * aside for a moment, never half written).  A reader that does not share
 * is waited for, briefly. */
int ctrun_file_replace(const char *from, const char *to);

/* Remove the file PATH. */
int ctrun_file_remove(const char *path);

/* A temporary file that no other process can open, gone when closed:
 * read and write, close-on-exec.  Returns a descriptor or an error. */
int ctrun_tmpfile(void);

/* Write all of BUF at the file's position (or its end, when opened for
 * append), retrying where interrupted.  Returns 0 or a negative error. */
int ctrun_fd_write_all(int fd, const void *buf, size_t len);

/* Copy the whole of FROM, from its start, to the position of TO. */
int ctrun_fd_copy(int from, int to);

int ctrun_fd_close(int fd);

/* True when a write to FD never waits for a reader: a regular file, or a
 * device that is no terminal (/dev/null, NUL); false for a pipe, a socket,
 * a terminal. */
bool ctrun_fd_is_file(int fd);

/* The state directory's path: $CTRUN_STATE_DIR, else the platform's
 * default ($XDG_RUNTIME_DIR/ctrun, $XDG_STATE_HOME/ctrun or
 * ~/.local/state/ctrun; %LOCALAPPDATA%\ctrun on Windows).  A default is used
 * only below a directory that exists: ctrun creates its own directory, not
 * a missing home.  Returns 0 or a negative libuv error with ERR saying why. */
int ctrun_statedir_path(char *buf, size_t size, char *err, size_t errlen);

/* Where the state directory is when CTRUN_STATE_DIR is unset, in the
 * platform's own notation (for --help). */
const char *ctrun_statedir_default(void);

/* What ctrun needs to know of an open file: its identity (device and
 * inode; volume and file index on Windows), equal for every path and link
 * that names the same file; its size; how many names it has. */
struct ctrun_file_info {
  char id[48];
  uint64_t size;
  unsigned links;
};
int ctrun_fd_info(int fd, struct ctrun_file_info *info);

/* Read the file from offset FROM to its end (at most MAX bytes) into a
 * NUL-terminated buffer. */
int ctrun_fd_read_from(int fd, uint64_t from, size_t max, char **out, size_t *len);

/* Read the whole file (at most MAX bytes) into a NUL-terminated buffer. */
static inline int ctrun_fd_read_all(int fd, size_t max, char **out, size_t *len) {
  return ctrun_fd_read_from(fd, 0, max, out, len);
}

#endif
