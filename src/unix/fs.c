/* POSIX file-system operations: a verified private directory used through
 * its descriptor (openat), atomic rename, flock(2) locks. */
#include "ctrun/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>
#ifdef CTRUN_HAVE_LINUX_MAGIC_H
#include <linux/magic.h>
#include <sys/vfs.h>
#endif

#include "ctrun/duration.h"
#include "ctrun/msg.h"

#ifndef O_DIRECTORY
#define O_DIRECTORY 0
#endif

struct ctrun_dir {
  int fd;
  char path[];
};

/* mkdir -p with mode 0700 for every directory it creates. */
static int make_dirs(const char *path) {
  char buf[4096];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof buf)
    return UV_ENAMETOOLONG;
  memcpy(buf, path, len + 1);
  for (char *s = buf + 1; ; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -errno;
      *s = c;
      if (c == '\0')
        break;
    }
  }
  return 0;
}

int ctrun_dir_open(const char *path, bool create, struct ctrun_dir **out, char *err,
                   size_t errlen) {
  struct stat st;
  struct ctrun_dir *d;
  int fd, r;

  /* Made only when missing: every run opens it, few create it. */
  fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    if ((r = make_dirs(path)) != 0) {
      snprintf(err, errlen, "cannot create state directory '%s': %s", path, ctrun_strerror(r));
      return r;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) {
    r = -errno;
    if (r == UV_ELOOP || (r == UV_ENOTDIR && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)))
      snprintf(err, errlen, "state directory '%s' is a symbolic link (refused)", path);
    else
      snprintf(err, errlen, "cannot open state directory '%s': %s", path, ctrun_strerror(r));
    return r;
  }
  if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "state directory '%s' is not a directory", path);
    close(fd);
    return UV_ENOTDIR;
  }
  if (st.st_uid != geteuid()) {
    snprintf(err, errlen, "state directory '%s' is owned by uid %ld, not by you (uid %ld)", path,
             (long)st.st_uid, (long)geteuid());
    close(fd);
    return UV_EPERM;
  }
  if ((st.st_mode & 022) != 0) {
    snprintf(err, errlen, "state directory '%s' is writable by group or others (mode %04o); "
             "make it 0700", path, (unsigned)(st.st_mode & 07777));
    close(fd);
    return UV_EPERM;
  }
  d = malloc(sizeof *d + strlen(path) + 1);
  if (d == NULL) {
    close(fd);
    return UV_ENOMEM;
  }
  d->fd = fd;
  strcpy(d->path, path);
  *out = d;
  return 0;
}

void ctrun_dir_close(struct ctrun_dir *d) {
  if (d == NULL)
    return;
  close(d->fd);
  free(d);
}

const char *ctrun_dir_path(const struct ctrun_dir *d) { return d->path; }

bool ctrun_dir_outlives_boot(const struct ctrun_dir *d) {
#ifdef CTRUN_HAVE_LINUX_MAGIC_H
  struct statfs fs;
  if (fstatfs(d->fd, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC))
    return false;
#else
  (void)d;
#endif
  return true;
}

int ctrun_dir_openat(struct ctrun_dir *d, const char *name, int flags) {
  int fd = openat(d->fd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
  return fd >= 0 ? fd : -errno;
}

int ctrun_dir_rename(struct ctrun_dir *d, const char *from, const char *to) {
  return renameat(d->fd, from, d->fd, to) == 0 ? 0 : -errno;
}

int ctrun_dir_unlink(struct ctrun_dir *d, const char *name) {
  return unlinkat(d->fd, name, 0) == 0 ? 0 : -errno;
}

int ctrun_dir_each(struct ctrun_dir *d, int (*fn)(const char *name, void *arg), void *arg) {
  int fd = dup(d->fd), r = 0;
  DIR *dir;
  struct dirent *de;

  if (fd < 0)
    return -errno;
  dir = fdopendir(fd);
  if (dir == NULL) {
    r = -errno;
    close(fd);
    return r;
  }
  rewinddir(dir);
  while (r == 0 && (de = readdir(dir)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    r = fn(de->d_name, arg);
  }
  closedir(dir);
  return r;
}

bool ctrun_dir_same_file(struct ctrun_dir *d, const char *name, int fd) {
  struct stat a, b;
  return fstatat(d->fd, name, &a, AT_SYMLINK_NOFOLLOW) == 0 && fstat(fd, &b) == 0 &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static void on_alarm(int sig) { (void)sig; }

int ctrun_fd_lock(int fd, enum ctrun_lock_mode mode, uint64_t wait_ms) {
  int op = mode == CTRUN_LOCK_EXCLUSIVE ? LOCK_EX : LOCK_SH;
  struct sigaction sa, old_sa;
  struct itimerval it, old_it;
  int r;

  /* Free, as a lock usually is: no timer to arm. */
  if (flock(fd, op | LOCK_NB) == 0)
    return 0;
  if (errno != EWOULDBLOCK)
    return -errno;
  if (wait_ms == 0)
    return UV_EBUSY;
  if (wait_ms == CTRUN_DURATION_INF) {
    /* Interrupted only by a signal ctrun catches, which ends the wait. */
    return flock(fd, op) == 0 ? 0 : errno == EINTR ? UV_EBUSY : -errno;
  }
  /* A bounded wait, as flock(1) does it: a blocking flock interrupted by an
   * alarm.  The lock is handed over the moment it is released. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; /* no SA_RESTART: flock returns EINTR */
  sigaction(SIGALRM, &sa, &old_sa);
  memset(&it, 0, sizeof it);
  it.it_value.tv_sec = (time_t)(wait_ms / 1000);
  it.it_value.tv_usec = (suseconds_t)(wait_ms % 1000 * 1000);
  setitimer(ITIMER_REAL, &it, &old_it);
  r = flock(fd, op) == 0 ? 0 : -errno;
  memset(&it, 0, sizeof it);
  setitimer(ITIMER_REAL, &it, NULL);
  sigaction(SIGALRM, &old_sa, NULL);
  if (r == UV_EINTR) {
    /* One last try: the holder may have let go just as the alarm rang. */
    if (flock(fd, op | LOCK_NB) == 0)
      return 0;
    return UV_EBUSY;
  }
  return r;
}

void ctrun_fd_unlock(int fd) { flock(fd, LOCK_UN); }

int ctrun_fd_write_at(int fd, const void *buf, size_t len, uint64_t off) {
  const char *p = buf;
  size_t done = 0;
  while (done < len) {
    ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    done += (size_t)n;
  }
  return 0;
}

int ctrun_fd_rewrite(int fd, const void *buf, size_t len) {
  int r = ctrun_fd_write_at(fd, buf, len, 0);
  return r != 0 ? r : ctrun_fd_truncate(fd, len);
}

int ctrun_fd_truncate(int fd, uint64_t size) {
  return ftruncate(fd, (off_t)size) == 0 ? 0 : -errno;
}

int ctrun_fd_info(int fd, struct ctrun_file_info *info) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return -errno;
  snprintf(info->id, sizeof info->id, "%llu:%llu", (unsigned long long)st.st_dev,
           (unsigned long long)st.st_ino);
  info->size = (uint64_t)st.st_size;
  info->links = (unsigned)st.st_nlink;
  return 0;
}

int ctrun_fd_read_from(int fd, uint64_t from, size_t max, char **out, size_t *len) {
  /* A page at first where a file may be large: an entry, a history's
   * tail, whole in one read (and EOF in one more). */
  size_t cap = max >= 4096 ? 4096 - 1 : 1024, got = 0;
  char *buf = malloc(cap + 1);
  if (buf == NULL)
    return UV_ENOMEM;
  for (;;) {
    ssize_t n;
    if (got == cap) {
      char *bigger;
      if (cap >= max) {
        free(buf);
        return UV_EFBIG;
      }
      cap *= 2;
      bigger = realloc(buf, cap + 1);
      if (bigger == NULL) {
        free(buf);
        return UV_ENOMEM;
      }
      buf = bigger;
    }
    n = pread(fd, buf + got, cap - got, (off_t)(from + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int r = -errno;
      free(buf);
      return r;
    }
    if (n == 0)
      break;
    got += (size_t)n;
  }
  buf[got] = '\0';
  *out = buf;
  *len = got;
  return 0;
}

const char *ctrun_strerror(int err) {
  return strerror(-err); /* libuv's codes are -errno on Unix */
}

int ctrun_file_open(const char *path, enum ctrun_file_use use, char *err, size_t errlen) {
  struct stat st;
  /* O_NOFOLLOW: a link planted in a shared directory such as /tmp must not
   * make ctrun open (and create, or write into) another file.  O_NONBLOCK:
   * a FIFO planted there must not hang the open; it is refused below. */
  int flags = O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, fd, r;
  bool ok;

  switch (use) {
  case CTRUN_FILE_LOCK: flags |= O_RDWR; break;
  case CTRUN_FILE_LOG: flags |= O_WRONLY | O_APPEND; break;
  case CTRUN_FILE_REPORT: flags |= O_WRONLY | O_EXCL; break;
  }
  if (path[0] == '\0') {
    ctrun_file_error(err, errlen, use, path, UV_EILSEQ);
    return UV_EINVAL;
  }
  fd = open(path, flags, 0644);
  /* A lock file that ctrun may only read still locks. */
  if (fd < 0 && use == CTRUN_FILE_LOCK && (errno == EACCES || errno == EROFS))
    fd = open(path, (flags & ~(O_CREAT | O_RDWR)) | O_RDONLY);
  if (fd < 0) {
    r = -errno;
    ctrun_file_error(err, errlen, use, path, r);
    return r;
  }
  ok = fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || (use == CTRUN_FILE_LOG && S_ISCHR(st.st_mode)));
  if (!ok) {
    ctrun_file_error(err, errlen, use, path, UV_EINVAL);
    close(fd);
    return UV_EINVAL;
  }
  /* Blocking again where it matters: a log on a terminal would see its
   * writes fail.  A regular file ignores the flag (two calls less a run). */
  if (!S_ISREG(st.st_mode))
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

bool ctrun_path_is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int ctrun_file_replace(const char *from, const char *to) {
  return rename(from, to) == 0 ? 0 : -errno;
}

int ctrun_file_remove(const char *path) { return unlink(path) == 0 ? 0 : -errno; }

int ctrun_tmpfile(void) {
  FILE *f = tmpfile();
  int fd;
  if (f == NULL)
    return -errno;
  fd = fcntl(fileno(f), F_DUPFD_CLOEXEC, 3);
  fd = fd >= 0 ? fd : -errno;
  fclose(f);
  return fd;
}

int ctrun_fd_write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? -errno : UV_EIO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

int ctrun_fd_copy(int from, int to) {
  char buf[65536];
  ssize_t n;
  int r = 0;
  if (lseek(from, 0, SEEK_SET) != 0)
    return -errno;
  while (r == 0 && ((n = read(from, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)))
    if (n > 0)
      r = ctrun_fd_write_all(to, buf, (size_t)n);
  return r != 0 ? r : n < 0 ? -errno : 0;
}

int ctrun_fd_close(int fd) { return close(fd) == 0 ? 0 : -errno; }

bool ctrun_fd_is_file(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return false;
  return S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && !isatty(fd));
}

static const char *env_nonempty(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

int ctrun_statedir_path(char *buf, size_t size, char *err, size_t errlen) {
  const char *base, *var, *sub;
  struct stat st;
  int n;

  if ((base = env_nonempty("CTRUN_STATE_DIR")) != NULL) {
    n = snprintf(buf, size, "%s", base);
    return n > 0 && (size_t)n < size ? 0 : UV_ENAMETOOLONG;
  }
  if ((base = env_nonempty(var = "XDG_RUNTIME_DIR")) != NULL && base[0] == '/')
    sub = "/ctrun";
  else if ((base = env_nonempty(var = "XDG_STATE_HOME")) != NULL && base[0] == '/')
    sub = "/ctrun";
  else if ((base = env_nonempty(var = "HOME")) != NULL)
    sub = "/.local/state/ctrun";
  else {
    snprintf(err, errlen, "no state directory: set CTRUN_STATE_DIR (or HOME)");
    return UV_ENOENT;
  }
  /* ctrun makes its own directory below the base, never the base itself:
   * a HOME that does not exist is a broken environment, not a path to
   * create (as root, anywhere). */
  if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "no state directory: %s '%s' is not a directory; set CTRUN_STATE_DIR",
             var, base);
    return UV_ENOENT;
  }
  n = snprintf(buf, size, "%s%s", base, sub);
  return n > 0 && (size_t)n < size ? 0 : UV_ENAMETOOLONG;
}

const char *ctrun_statedir_default(void) {
  return "$XDG_RUNTIME_DIR/ctrun, else\n$XDG_STATE_HOME/ctrun or ~/.local/state/ctrun";
}
