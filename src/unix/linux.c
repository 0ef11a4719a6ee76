/* Linux: child subreaper, parent-death signal, /proc and pidfd.
 *
 * /proc may belong to another pid namespace than ctrun's: a PID namespace
 * entered without a /proc of its own ("unshare -pf" without --mount-proc)
 * sees the parent namespace's /proc, whose numbers are not its pids.  Then
 * every pid is translated (NSpid in /proc/PID/status; a pidfd's fdinfo
 * the other way), or a signal would reach a stranger and the tree would
 * not be found at all. */
#include "contain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#ifdef CTRUN_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

int ctrun_os_reaper_acquire(void) {
  return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : UV_ENOSYS;
}

int ctrun_os_child_die_with_parent(pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
    return -1;
  /* The parent may have died before the signal was armed. */
  return getppid() == parent ? 0 : -1;
}

/* The stack of the process ctrun_os_start_child starts, kept for the
 * next (a retry's): one such process at a time. */
static char *child_stack;
static size_t child_stack_size;

/* Room for what exec needs: glibc's execvpe builds each PATH candidate on
 * the stack (PATH_MAX + NAME_MAX at most), and a script's argument vector
 * (ARGC + 2 pointers); 64 KiB for the rest.  Below it a page that faults,
 * so that an overflow kills the process rather than writes into ctrun's
 * memory. */
static int ensure_stack(size_t argc) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t want = 64 * 1024 + PATH_MAX + NAME_MAX + (argc + 3) * sizeof(char *);
  want = (want + page - 1) / page * page + page;
  if (child_stack_size >= want)
    return 0;
  if (child_stack != NULL)
    munmap(child_stack, child_stack_size);
  child_stack_size = 0;
  child_stack = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                     -1, 0);
  if (child_stack == MAP_FAILED) {
    child_stack = NULL;
    return UV_ENOMEM;
  }
  if (mprotect(child_stack, page, PROT_NONE) != 0) {
    munmap(child_stack, want);
    child_stack = NULL;
    return UV_ENOMEM;
  }
  child_stack_size = want;
  return 0;
}

static uint64_t ticks_per_second(void);

/* The start time /proc/PID/stat gives a process born between BEFORE and
 * AFTER (CLOCK_BOOTTIME): the kernel reads that clock as it forks and
 * shows it in clock ticks, rounded down.  Known when both fall in one
 * tick, a microsecond or more from its ends (the vDSO's clock and the
 * kernel's may round apart by a nanosecond); else 0. */
static uint64_t birth_tick(const struct timespec *before, const struct timespec *after) {
  uint64_t hz = ticks_per_second(), per, lo, hi;
  if (hz == 0 || 1000000000 % hz != 0)
    return 0;
  per = 1000000000 / hz;
  lo = ((uint64_t)before->tv_sec * 1000000000 + (uint64_t)before->tv_nsec - 1000) / per;
  hi = ((uint64_t)after->tv_sec * 1000000000 + (uint64_t)after->tv_nsec + 1000) / per;
  return lo == hi ? lo : 0;
}

pid_t ctrun_os_start_child(int (*fn)(void *), void *arg, size_t argc, uint64_t *start) {
  struct timespec before, after;
  bool timed = clock_gettime(CLOCK_BOOTTIME, &before) == 0;
  pid_t pid = -1;

  /* No room for its stack (a tight RLIMIT_AS) is no reason not to fork. */
  if (!RUNNING_ON_VALGRIND && ensure_stack(argc) == 0) {
    pid = clone(fn, child_stack + child_stack_size, CLONE_VM | SIGCHLD, arg);
    /* Refused by an emulator or a sandbox (qemu-user: EINVAL, seccomp:
     * EPERM or ENOSYS); out of processes is out of them for fork too. */
    if (pid < 0 && errno != EINVAL && errno != EPERM && errno != ENOSYS)
      return -errno;
  }
  if (pid < 0) {
    pid = fork();
    if (pid == 0)
      _exit(fn(arg));
    if (pid < 0)
      return -errno;
  }
  *start = timed && clock_gettime(CLOCK_BOOTTIME, &after) == 0 ? birth_tick(&before, &after) : 0;
  return pid;
}

void ctrun_os_exec(char *const argv[], char *const env[]) {
  /* Not environ = env: that would write ctrun's own environ. */
  execvpe(argv[0], argv, env);
}

/* A file of /proc that holds one record (stat, status, fdinfo, a sysctl):
 * the kernel gives it whole in one read. */
static ssize_t read_small(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n;
  if (fd < 0)
    return -1;
  do
    n = read(fd, buf, size - 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return n;
}

/* How /proc relates to ctrun's pid namespace, learnt once (a fork keeps
 * both the namespace and the mount). */
enum { PROC_UNKNOWN, PROC_OURS, PROC_FOREIGN, PROC_NONE };
static int proc_state = PROC_UNKNOWN;
static int ns_level; /* PROC_FOREIGN: the index of our pids in NSpid lines */

/* The numbers after "KEY:" at the start of a line of /proc status text S
 * (NSpid, Pid...); returns how many (at most MAX). */
static int status_numbers(const char *s, const char *key, long *v, int max) {
  size_t klen = strlen(key);
  const char *p = s;
  int n = 0;

  while (p != NULL && (strncmp(p, key, klen) != 0 || p[klen] != ':')) {
    p = strchr(p, '\n');
    if (p != NULL)
      p++;
  }
  if (p == NULL)
    return 0;
  for (p += klen + 1; n < max;) {
    char *end;
    long x = strtol(p, &end, 10); /* the next line starts with a letter */
    if (end == p)
      break;
    v[n++] = x;
    p = end;
  }
  return n;
}

/* Learn how /proc relates to ctrun's pid namespace: /proc/self/stat
 * starts with our pid as that /proc numbers it.  Only when needed: a
 * plain run never looks at /proc (a process's first look costs it
 * 0.03-0.05 ms, the exit's clean-up of its entries included). */
static int proc_mode(void) {
  char buf[4096];
  long ns[32];
  pid_t self = getpid();

  if (proc_state != PROC_UNKNOWN)
    return proc_state;
  proc_state = PROC_NONE; /* no /proc, or one where ctrun is not seen */
  if (read_small("/proc/self/stat", buf, sizeof buf) <= 0)
    return proc_state;
  if (strtol(buf, NULL, 10) == (long)self) {
    proc_state = PROC_OURS;
    return proc_state;
  }
  /* /proc/self resolves in the mount's namespace: NSpid lists our pid
   * there first and ours (getpid) last. */
  if (read_small("/proc/self/status", buf, sizeof buf) > 0) {
    int k = status_numbers(buf, "NSpid", ns, 32);
    if (k >= 2 && ns[k - 1] == (long)self) {
      ns_level = k - 1;
      proc_state = PROC_FOREIGN;
    }
  }
  return proc_state;
}

/* The number /proc knows PID by, or -1 if it knows no such process. */
static pid_t proc_pid(pid_t pid) {
  int mode = proc_mode();
  if (mode == PROC_OURS)
    return pid;
  if (mode != PROC_FOREIGN || pid <= 0)
    return -1;
#ifdef SYS_pidfd_open
  /* A pidfd names the process in our namespace; its fdinfo gives its pid
   * in the namespace of the /proc that shows it. */
  char path[64], buf[1024];
  long host[1];
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0)
    return -1;
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  ssize_t n = read_small(path, buf, sizeof buf);
  close(fd);
  if (n > 0 && status_numbers(buf, "Pid", host, 1) == 1 && host[0] > 0)
    return (pid_t)host[0];
#endif
  return -1;
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

/* The clock ticks of /proc/PID/stat in a second (USER_HZ). */
static uint64_t ticks_per_second(void) {
  static long hz;
  if (hz <= 0)
    hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
  return (uint64_t)hz;
}

/* Clock ticks in milliseconds. */
static uint64_t ticks_ms(uint64_t ticks) { return ticks * 1000 / ticks_per_second(); }

static uint64_t page_size(void) {
  static long size;
  if (size <= 0)
    size = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
  return (uint64_t)size;
}

/* How long a process that started START (in clock ticks since boot, as
 * /proc/PID/stat gives it) has lived: on CLOCK_BOOTTIME, the clock of
 * those start times, which goes on during suspend. */
static uint64_t age_ms(unsigned long long start) {
  struct timespec ts;
  uint64_t now, born = ticks_ms(start);
  if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
    return 0;
  now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
  return now > born ? now - born : 0;
}

/* The numbers of a line of /proc/PID/stat from its fourth field (ppid)
 * on, into V; returns how many (at most MAX). */
static int stat_numbers(const char *s, long long *v, int max) {
  int n = 0;
  char *end;
  for (; n < max; n++, s = end) {
    v[n] = strtoll(s, &end, 10);
    if (end == s)
      break;
  }
  return n;
}

/* The fields of stat: the fourth on, as stat_numbers numbers them. */
enum { F_PPID, F_PGID, F_SID, F_UTIME = 10, F_STIME, F_CUTIME, F_CSTIME, F_THREADS = 16,
       F_START = 18, F_RSS = 20, F_COUNT };

/* Parse BUF, a line of /proc/HP/stat. */
static int parse_stat(char *buf, pid_t hp, struct ctrun_pinfo *p) {
  const char *s = strrchr(buf, ')'), *c = strchr(buf, '(');
  long long v[F_COUNT];
  size_t len;
  char state;

  /* The name, between the first '(' and the last ')', may hold either. */
  if (s == NULL || c == NULL || c > s || s[1] != ' ' || s[2] == '\0')
    return UV_EINVAL;
  state = s[2];
  if (stat_numbers(s + 3, v, F_COUNT) != F_COUNT)
    return UV_EINVAL;
  len = (size_t)(s - c - 1);
  if (len >= sizeof p->comm)
    len = sizeof p->comm - 1;
  memcpy(p->comm, c + 1, len);
  p->comm[len] = '\0';
  p->pid = hp;
  p->ppid = (pid_t)v[F_PPID];
  p->pgid = (pid_t)v[F_PGID];
  p->sid = (pid_t)v[F_SID];
  p->start = (uint64_t)v[F_START];
  /* A zombie counts one thread, itself; more, and its main thread has
   * exited while others run on. */
  p->zombie = (state == 'Z' || state == 'X') && (v[F_THREADS] <= 1 || !group_alive(hp));
  p->age_ms = age_ms(p->start);
  p->rss_bytes = v[F_RSS] > 0 ? (uint64_t)v[F_RSS] * page_size() : 0;
  p->cpu_ms = ticks_ms((uint64_t)v[F_UTIME] + (uint64_t)v[F_STIME] +
                       (uint64_t)(v[F_CUTIME] > 0 ? v[F_CUTIME] : 0) +
                       (uint64_t)(v[F_CSTIME] > 0 ? v[F_CSTIME] : 0));
  return 0;
}

static int read_stat(pid_t hp, struct ctrun_pinfo *p) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)hp);
  if (read_small(path, buf, sizeof buf) <= 0)
    return UV_ESRCH;
  return parse_stat(buf, hp, p);
}

int ctrun_os_proc_start(pid_t pid, uint64_t *start) {
  struct ctrun_pinfo p;
  pid_t hp = proc_pid(pid);
  int r = hp > 0 ? read_stat(hp, &p) : proc_state == PROC_NONE ? UV_ENOSYS : UV_ESRCH;
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
  /* A pass reads the entries /proc holds now, and as many again (and
   * some) for the processes born meanwhile: it follows a process that
   * hops to new pids while it reads faster than they are born, but does
   * not chase a fork storm for ever. */
  budget = 2 * count_entries(fd) + 1024;
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

struct host_row { pid_t host, pid; };

static int by_host(const void *a, const void *b) {
  pid_t x = ((const struct host_row *)a)->host, y = ((const struct host_row *)b)->host;
  return (x > y) - (x < y);
}

/* Where /proc is another namespace's: the processes of ours (and of the
 * namespaces below it), renumbered as we see them.  A parent outside our
 * namespace reads as 0, as the kernel shows it. */
static int each_foreign(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg) {
  DIR *d = opendir("/proc");
  struct dirent *de;
  struct ctrun_pinfo *v = NULL;
  struct host_row *map = NULL;
  pid_t *hppid = NULL;
  size_t n = 0, cap = 0;
  int r = 0;

  if (d == NULL)
    return UV_ENOSYS;
  while ((de = readdir(d)) != NULL) {
    char path[64], status[4096], *end;
    long hp = strtol(de->d_name, &end, 10), ids[32], pgids[32];
    struct ctrun_pinfo p;
    if (*end != '\0' || hp <= 0 || read_stat((pid_t)hp, &p) != 0)
      continue;
    snprintf(path, sizeof path, "/proc/%ld/status", hp);
    if (read_small(path, status, sizeof status) <= 0 ||
        status_numbers(status, "NSpid", ids, 32) <= ns_level)
      continue; /* above our namespace */
    /* A process of a sibling namespace has as many levels: only one of
     * ours is the process its pid names here. */
    if (proc_pid((pid_t)ids[ns_level]) != (pid_t)hp)
      continue;
    if (n == cap) {
      size_t c = cap ? 2 * cap : 64;
      struct ctrun_pinfo *bv = realloc(v, c * sizeof *v);
      struct host_row *bm = bv ? realloc(map, c * sizeof *map) : NULL;
      pid_t *bp = bm ? realloc(hppid, c * sizeof *hppid) : NULL;
      if (bv)
        v = bv;
      if (bm)
        map = bm;
      if (bp == NULL) {
        r = UV_ENOMEM;
        break;
      }
      hppid = bp;
      cap = c;
    }
    hppid[n] = p.ppid;
    map[n].host = (pid_t)hp;
    map[n].pid = (pid_t)ids[ns_level];
    p.pid = (pid_t)ids[ns_level];
    p.pgid = status_numbers(status, "NSpgid", pgids, 32) > ns_level ? (pid_t)pgids[ns_level] : 0;
    p.sid = status_numbers(status, "NSsid", pgids, 32) > ns_level ? (pid_t)pgids[ns_level] : 0;
    v[n++] = p;
  }
  closedir(d);
  if (r == 0 && n > 0) {
    struct host_row *sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL) {
      r = UV_ENOMEM;
    } else {
      memcpy(sorted, map, n * sizeof *sorted);
      qsort(sorted, n, sizeof *sorted, by_host);
      for (size_t i = 0; i < n; i++) {
        struct host_row key = { hppid[i], 0 }, *parent;
        parent = bsearch(&key, sorted, n, sizeof *sorted, by_host);
        v[i].ppid = parent != NULL ? parent->pid : 0;
      }
      free(sorted);
      for (size_t i = 0; i < n; i++)
        fn(&v[i], arg);
    }
  }
  free(v);
  free(map);
  free(hppid);
  return r;
}

void ctrun_os_proc_newest(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg, int n) {
  char buf[32];
  long last;
  struct ctrun_pinfo p;
  /* The last pid given out, in ctrun's namespace; only where /proc is
   * ours too, so that its rows are named by the same pids. */
  if (proc_mode() != PROC_OURS ||
      read_small("/proc/sys/kernel/ns_last_pid", buf, sizeof buf) <= 0)
    return;
  last = strtol(buf, NULL, 10);
  for (long pid = last; pid > 0 && pid > last - n; pid--)
    if (read_stat((pid_t)pid, &p) == 0)
      fn(&p, arg);
}

int ctrun_os_proc_each(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg) {
  switch (proc_mode()) {
  case PROC_OURS:
    return each_ours(fn, arg);
  case PROC_FOREIGN:
    return each_foreign(fn, arg);
  default:
    return UV_ENOSYS;
  }
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

  if ((pid = proc_pid(pid)) <= 0)
    return proc_state == PROC_NONE ? UV_ENOSYS : UV_ESRCH;
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

int ctrun_os_sign_entry(int fd) {
  struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  return fcntl(fd, F_SETLK, &l) == 0 ? 0 : -errno;
}

int ctrun_os_signal_signer(int fd, pid_t pid, int sig) {
  struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  int pidfd = -1, r = 0;
  if (pid <= 0)
    return UV_ESRCH;
#ifdef SYS_pidfd_open
  /* The handle first: if PID signs the entry after it was taken, the
   * handle is that process, and no other can take its pid meanwhile. */
  pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0 && errno == ESRCH)
    return UV_ESRCH;
#endif
  if (fcntl(fd, F_GETLK, &l) != 0)
    r = -errno;
  else if (l.l_type == F_UNLCK || l.l_pid != pid)
    r = UV_ESRCH; /* gone, or a cleanup holds its entry */
#ifdef SYS_pidfd_open
  else if (pidfd >= 0)
    r = syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0 ? 0 : -errno;
#endif
  else
    r = kill(pid, sig) == 0 ? 0 : -errno; /* no pidfd (before Linux 5.3) */
  if (pidfd >= 0)
    close(pidfd);
  return r;
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
  pid_t *q;
  struct ctrun_pinfo *out;
  struct pidset seen;
  int r = 0;

  /* Pids in /proc/PID/task/TID/children are /proc's: only ours will do. */
  if (proc_mode() != PROC_OURS)
    return UV_ENOSYS;
  q = malloc(qcap * sizeof *q);
  out = malloc(cap * sizeof *out);
  seen.slot = calloc(8192, sizeof(pid_t));
  seen.cap = 8192;
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
  *v = out;
  *n = len;
  return 0;
}
