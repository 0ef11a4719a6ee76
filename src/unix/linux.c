/* Linux: child subreaper, parent-death signal, /proc and pidfd. */
#include "contain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

int ctrun_os_reaper_acquire(void) {
  return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : UV_ENOSYS;
}

int ctrun_os_child_die_with_parent(pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    return -1;
  /* The parent may have died before the signal was armed. */
  return getppid() == parent ? 0 : -1;
}

static ssize_t read_small(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n, got = 0;
  if (fd < 0)
    return -1;
  while ((size_t)got < size - 1) {
    n = read(fd, buf + got, size - 1 - (size_t)got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += n;
  }
  close(fd);
  buf[got] = '\0';
  return got;
}

/* The state letter of /proc/.../stat at PATH; 0 if unreadable. */
static char state_at(const char *path) {
  char buf[1024];
  const char *s;
  if (read_small(path, buf, sizeof buf) <= 0 || (s = strrchr(buf, ')')) == NULL || s[1] != ' ')
    return 0;
  return s[2];
}

/* Whether a thread of process PID still runs.  Once the main thread has
 * called pthread_exit(), /proc/PID/stat reads Z (the group leader waits,
 * a zombie, for the others) while the process runs on in its threads. */
static bool group_alive(pid_t pid) {
  char path[64], task[384];
  struct dirent *de;
  bool live = false;
  DIR *d;

  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  if ((d = opendir(path)) == NULL)
    return false;
  while (!live && (de = readdir(d)) != NULL) {
    char st;
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    snprintf(task, sizeof task, "%s/%s/stat", path, de->d_name);
    st = state_at(task);
    live = st != 0 && st != 'Z' && st != 'X';
  }
  closedir(d);
  return live;
}

/* /proc/HP/stat: "pid (comm) state ppid pgrp session ... starttime(22)".
 * The command name may hold spaces and parentheses: parse after the last
 * ')'. */
static int read_stat(pid_t hp, struct ctrun_pinfo *p) {
  char path[64], buf[1024];
  const char *s;
  unsigned long long start = 0;
  int ppid, pgid, sid;
  long threads;
  char state;

  snprintf(path, sizeof path, "/proc/%d/stat", (int)hp);
  if (read_small(path, buf, sizeof buf) <= 0)
    return UV_ESRCH;
  s = strrchr(buf, ')');
  if (s == NULL)
    return UV_EINVAL;
  if (sscanf(s + 1, " %c %d %d %d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %ld %*d %llu",
             &state, &ppid, &pgid, &sid, &threads, &start) != 6)
    return UV_EINVAL;
  p->pid = hp;
  p->ppid = ppid;
  p->pgid = pgid;
  p->sid = sid;
  p->start = start;
  /* A zombie counts one thread, itself; more, and its main thread has
   * exited while others run on. */
  p->zombie = (state == 'Z' || state == 'X') && (threads <= 1 || !group_alive(hp));
  return 0;
}

int ctrun_os_proc_start(pid_t pid, uint64_t *start) {
  struct ctrun_pinfo p;
  int r = read_stat(pid, &p);
  if (r == 0)
    *start = p.start;
  return r;
}

/* How many entries the directory FD lists, read in large batches. */
static long count_entries(int fd) {
  char buf[32768] __attribute__((aligned(8)));
  long n, count = 0;
  while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
    for (long at = 0; at < n; count++) {
      unsigned short reclen;
      memcpy(&reclen, buf + at + offsetof(struct dirent64, d_reclen), sizeof reclen);
      at += reclen;
    }
  return count;
}

/* Where /proc is our namespace's: call FN on each process as it is read,
 * so that the caller may signal it moments after it was listed.  The
 * directory is read a few entries at a time, not in readdir's large
 * batches: a process listed in a batch of a thousand would be read (and
 * signalled) a millisecond later, time enough for a process that forks a
 * successor and exits to have moved on, to a pid the batch does not hold. */
static int each_ours(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg) {
  char buf[128] __attribute__((aligned(8)));
  int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  long n, budget;

  if (fd < 0)
    return UV_ENOSYS;
  /* A pass reads as many entries as /proc holds now, and some more for
   * the processes born meanwhile: it follows a process that hops to new
   * pids for a while, but does not chase a fork storm for ever. */
  budget = count_entries(fd) + 1024;
  lseek(fd, 0, SEEK_SET);
  while (budget > 0 && (n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long at = 0; at < n;) {
      /* struct dirent64 as far as this record goes: its name is short. */
      unsigned short reclen;
      struct ctrun_pinfo p;
      char *end;
      long pid = strtol(buf + at + offsetof(struct dirent64, d_name), &end, 10);
      memcpy(&reclen, buf + at + offsetof(struct dirent64, d_reclen), sizeof reclen);
      at += reclen;
      if (*end != '\0' || pid <= 0 || budget-- <= 0)
        continue;
      if (read_stat((pid_t)pid, &p) == 0)
        fn(&p, arg);
    }
  }
  close(fd);
  return budget > 0 && n < 0 ? UV_ENOSYS : 0;
}

int ctrun_os_proc_each(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg) {
  return each_ours(fn, arg);
}

struct collect { struct ctrun_pinfo *v; size_t n, cap; bool failed; };

static void collect_one(const struct ctrun_pinfo *p, void *arg) {
  struct collect *c = arg;
  if (c->failed)
    return;
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 256;
    struct ctrun_pinfo *bigger = realloc(c->v, cap * sizeof *bigger);
    if (bigger == NULL) {
      c->failed = true;
      return;
    }
    c->v = bigger;
    c->cap = cap;
  }
  c->v[c->n++] = *p;
}

int ctrun_os_proc_list(struct ctrun_pinfo **v, size_t *n) {
  struct collect c = { NULL, 0, 0, false };
  int r = ctrun_os_proc_each(collect_one, &c);
  if (r == 0 && c.failed)
    r = UV_ENOMEM;
  if (r != 0) {
    free(c.v);
    return r;
  }
  *v = c.v;
  *n = c.n;
  return 0;
}

/* tag_at: the file is empty (a zombie's, or a thread's that has exited). */
#define ENV_EMPTY 1

/* How much of an environment is read: more than exec(2) accepts. */
#define ENV_MAX (16 << 20)

/* CTRUN_RUN_ID in the environment at PATH, read to its end (at most
 * ENV_MAX), so that where the tag sits does not matter: 0, UV_ENOENT,
 * ENV_EMPTY, or why the file could not be read. */
static int tag_at(const char *path, char *buf, size_t size) {
  static const char key[] = "CTRUN_RUN_ID=";
  const size_t keylen = sizeof key - 1;
  char chunk[16384];
  size_t total = 0, matched = 0, vlen = 0;
  enum { MATCH, SKIP, VALUE } st = MATCH;
  int fd = open(path, O_RDONLY | O_CLOEXEC), r = UV_ENOENT;

  if (fd < 0)
    return errno == EACCES ? UV_EACCES : UV_ESRCH;
  /* The strings are NUL-separated; a string may span two reads. */
  while (total < ENV_MAX && r == UV_ENOENT) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      r = total == 0 ? (errno == EACCES ? UV_EACCES : UV_ESRCH) : UV_ENOENT;
      break;
    }
    if (n == 0)
      break;
    total += (size_t)n;
    for (const char *s = chunk, *end = chunk + n; s < end && r == UV_ENOENT;) {
      if (st == SKIP) {
        const char *nul = memchr(s, '\0', (size_t)(end - s));
        if (nul == NULL)
          break;
        s = nul + 1;
        st = MATCH;
        matched = 0;
      } else if (st == MATCH) {
        char c = *s++;
        if (c == key[matched]) {
          if (++matched == keylen) {
            st = VALUE;
            vlen = 0;
          }
        } else {
          st = c == '\0' ? MATCH : SKIP; /* another variable */
          matched = 0;
        }
      } else {
        if (*s == '\0')
          r = 0;
        else if (vlen + 1 < size)
          buf[vlen++] = *s;
        s++;
      }
    }
  }
  close(fd);
  if (st == VALUE)
    r = 0; /* the last string may lack its NUL */
  if (r == 0 && size > 0)
    buf[vlen < size ? vlen : size - 1] = '\0';
  if (r == UV_ENOENT && total == 0)
    r = ENV_EMPTY;
  return r;
}

int ctrun_os_proc_tag(pid_t pid, char *buf, size_t size) {
  char path[64], task[384];
  struct dirent *de;
  DIR *d;
  int r;

  snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
  r = tag_at(path, buf, size);
  if (r != UV_ESRCH && r != ENV_EMPTY)
    return r;
  /* A process whose main thread has exited shows its environment only
   * through the threads that still run. */
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  if ((d = opendir(path)) == NULL)
    return UV_ESRCH;
  r = UV_ESRCH;
  while ((r == UV_ESRCH || r == ENV_EMPTY) && (de = readdir(d)) != NULL) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    snprintf(task, sizeof task, "%s/%s/environ", path, de->d_name);
    r = tag_at(task, buf, size);
  }
  closedir(d);
  return r == ENV_EMPTY ? UV_ENOENT : r;
}

int ctrun_os_signal_verified(pid_t pid, uint64_t start, int sig) {
#ifdef SYS_pidfd_open
  uint64_t now;
  int r;
  /* Hold the process by a handle, then check it: the handle cannot come to
   * mean another process, so the signal reaches the one checked. */
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    r = ctrun_os_proc_start(pid, &now);
    if (r == 0 && now != start)
      r = UV_ESRCH;
    if (r == 0 && syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) != 0)
      r = -errno;
    close(fd);
    return r;
  }
  if (errno == ESRCH)
    return UV_ESRCH;
#endif
  return ctrun_unix_signal_if_same(pid, start, sig);
}

void ctrun_os_boot_id(char *buf, size_t size) {
  char id[64];
  if (read_small("/proc/sys/kernel/random/boot_id", id, sizeof id) <= 0)
    id[0] = '\0';
  id[strcspn(id, "\n")] = '\0';
  snprintf(buf, size, "%s", id);
}
