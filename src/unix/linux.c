/* Linux: child subreaper, parent-death signal, /proc and pidfd. */
#include "contain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
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

/* /proc/PID/stat: "pid (comm) state ppid pgrp session ... starttime(22)".
 * The command name may hold spaces and parentheses: parse after the last ')'. */
static int read_stat(pid_t pid, struct ctrun_pinfo *p) {
  char path[64], buf[1024];
  const char *s;
  unsigned long long start = 0;
  int ppid, pgid;
  char state;

  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_small(path, buf, sizeof buf) <= 0)
    return UV_ESRCH;
  s = strrchr(buf, ')');
  if (s == NULL)
    return UV_EINVAL;
  {
    const char *c = strchr(buf, '(');
    size_t len = c != NULL && c < s ? (size_t)(s - c - 1) : 0;
    if (len >= sizeof p->comm)
      len = sizeof p->comm - 1;
    memcpy(p->comm, c != NULL ? c + 1 : "", len);
    p->comm[len] = '\0';
  }
  if (sscanf(s + 1, " %c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
             &state, &ppid, &pgid, &start) != 4)
    return UV_EINVAL;
  p->pid = pid;
  p->ppid = ppid;
  p->pgid = pgid;
  p->start = start;
  p->zombie = state == 'Z' || state == 'X';
  p->age_ms = 0;
  return 0;
}

/* Milliseconds since boot on the clock of /proc/PID/stat's start times
 * (CLOCK_BOOTTIME, which goes on during suspend), and that clock's ticks
 * per second. */
static uint64_t boot_ms(long *hz) {
  struct timespec ts;
  static long ticks;
  if (ticks <= 0)
    ticks = sysconf(_SC_CLK_TCK);
  *hz = ticks > 0 ? ticks : 100;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int ctrun_os_proc_start(pid_t pid, uint64_t *start) {
  struct ctrun_pinfo p;
  int r = read_stat(pid, &p);
  if (r == 0)
    *start = p.start;
  return r;
}

int ctrun_os_proc_list(struct ctrun_pinfo **v, size_t *n) {
  DIR *d = opendir("/proc");
  struct dirent *de;
  size_t cap = 256, len = 0;
  struct ctrun_pinfo *out;
  long hz;
  uint64_t now;

  if (d == NULL)
    return UV_ENOSYS;
  out = malloc(cap * sizeof *out);
  if (out == NULL) {
    closedir(d);
    return UV_ENOMEM;
  }
  while ((de = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(de->d_name, &end, 10);
    if (*end != '\0' || pid <= 0)
      continue;
    if (len == cap) {
      struct ctrun_pinfo *bigger = realloc(out, 2 * cap * sizeof *out);
      if (bigger == NULL)
        break;
      out = bigger;
      cap *= 2;
    }
    if (read_stat((pid_t)pid, &out[len]) == 0)
      len++;
  }
  closedir(d);
  now = boot_ms(&hz);
  for (size_t i = 0; i < len; i++) {
    uint64_t born = out[i].start * 1000 / (uint64_t)hz;
    out[i].age_ms = now > born ? now - born : 0;
  }
  *v = out;
  *n = len;
  return 0;
}

int ctrun_os_proc_tag(pid_t pid, char *buf, size_t size) {
  static const char key[] = "CTRUN_RUN_ID=";
  char path[64], env[32768];
  ssize_t n;

  snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
  n = read_small(path, env, sizeof env);
  if (n < 0)
    return errno == EACCES ? UV_EACCES : UV_ESRCH;
  /* NUL-separated; a tag past the first 32 KiB is not seen (documented). */
  for (char *s = env; s < env + n; s += strlen(s) + 1) {
    if (strncmp(s, key, sizeof key - 1) == 0) {
      snprintf(buf, size, "%s", s + sizeof key - 1);
      return 0;
    }
  }
  return UV_ENOENT;
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

/* A set of pids, so that a pid met twice in a torn walk is walked once. */
struct pidset {
  pid_t *slot;
  size_t cap;
};

static bool pidset_add(struct pidset *s, pid_t pid) {
  size_t i;
  if (s->cap == 0)
    return false;
  for (i = (size_t)pid * 2654435761u % s->cap; s->slot[i] != 0; i = (i + 1) % s->cap)
    if (s->slot[i] == pid)
      return false;
  s->slot[i] = pid;
  return true;
}

/* The whole of a small file under /proc, however long; NULL if gone. */
static char *read_whole(const char *path) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap + 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n;
  if (fd < 0 || buf == NULL) {
    if (fd >= 0)
      close(fd);
    free(buf);
    return NULL;
  }
  while ((n = read(fd, buf + len, cap - len)) > 0 || (n < 0 && errno == EINTR)) {
    if (n < 0)
      continue;
    len += (size_t)n;
    if (len == cap) {
      char *bigger = realloc(buf, 2 * cap + 1);
      if (bigger == NULL)
        break;
      buf = bigger;
      cap *= 2;
    }
  }
  close(fd);
  buf[len] = '\0';
  return buf;
}

/* Append the children of every thread of PID to *Q ("pid pid ..." in each
 * thread's children file).  UV_ENOSYS when this kernel has no such file. */
static int children_of(pid_t pid, pid_t **q, size_t *len, size_t *cap) {
  char path[64], file[352];
  DIR *d;
  struct dirent *de;

  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  if ((d = opendir(path)) == NULL)
    return 0; /* gone */
  while ((de = readdir(d)) != NULL) {
    char *text, *s, *end;
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    snprintf(file, sizeof file, "%s/%.255s/children", path, de->d_name);
    if ((text = read_whole(file)) == NULL) {
      if (errno == ENOENT && pid == getpid()) { /* a kernel without CONFIG_PROC_CHILDREN */
        closedir(d);
        return UV_ENOSYS;
      }
      continue;
    }
    for (s = text;; s = end) {
      long c = strtol(s, &end, 10);
      if (end == s)
        break;
      if (*len == *cap) {
        pid_t *bigger = realloc(*q, 2 * *cap * sizeof **q);
        if (bigger == NULL)
          break;
        *q = bigger;
        *cap *= 2;
      }
      if (c > 0)
        (*q)[(*len)++] = (pid_t)c;
    }
    free(text);
  }
  closedir(d);
  return 0;
}

int ctrun_os_descendants(struct ctrun_pinfo **v, size_t *n) {
  size_t qlen = 0, qcap = 64, head = 0, len = 0, cap = 64;
  pid_t *q = malloc(qcap * sizeof *q);
  struct ctrun_pinfo *out = malloc(cap * sizeof *out);
  struct pidset seen = { calloc(8192, sizeof(pid_t)), 8192 };
  long hz;
  uint64_t now;
  int r = 0;

  if (q == NULL || out == NULL || seen.slot == NULL) {
    free(q);
    free(out);
    free(seen.slot);
    return UV_ENOMEM;
  }
  q[qlen++] = getpid();
  /* Breadth first: the children of each process met, once each. */
  while (head < qlen && r == 0) {
    pid_t pid = q[head++];
    size_t from = qlen;
    r = children_of(pid, &q, &qlen, &qcap);
    for (size_t i = from; i < qlen; i++) {
      if (len == seen.cap / 2 || !pidset_add(&seen, q[i])) {
        q[i] = 0; /* met before (a torn read), or too many to track */
        continue;
      }
      if (len == cap) {
        struct ctrun_pinfo *bigger = realloc(out, 2 * cap * sizeof *out);
        if (bigger == NULL) {
          r = UV_ENOMEM;
          break;
        }
        out = bigger;
        cap *= 2;
      }
      if (read_stat(q[i], &out[len]) == 0)
        len++;
      else
        q[i] = 0; /* gone already */
    }
    /* Drop the gaps, so that only live processes are walked. */
    size_t k = from;
    for (size_t i = from; i < qlen; i++)
      if (q[i] != 0)
        q[k++] = q[i];
    qlen = k;
  }
  free(q);
  free(seen.slot);
  if (r != 0) {
    free(out);
    return r;
  }
  now = boot_ms(&hz);
  for (size_t i = 0; i < len; i++) {
    uint64_t born = out[i].start * 1000 / (uint64_t)hz;
    out[i].age_ms = now > born ? now - born : 0;
  }
  *v = out;
  *n = len;
  return 0;
}
