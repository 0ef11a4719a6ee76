/* FreeBSD and DragonFly: reaper and parent-death signal from procctl(2),
 * the process table, environments and boot id from sysctl(3).  Both share
 * this file; where DragonFly differs (the fields of struct kinfo_proc, no
 * environment sysctl, an older procctl) small #ifdefs choose, and a
 * missing feature degrades to what posix.c offers. */
#include "contain.h"

#include <sys/param.h>
#include <sys/procctl.h>
#include <sys/sysctl.h>
#include <sys/time.h>
#ifdef __DragonFly__
#include <sys/kinfo.h>
#else
#include <sys/user.h>
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static uint64_t tv_ms(const struct timeval *tv) {
  return tv->tv_sec < 0 ? 0 : (uint64_t)tv->tv_sec * 1000 + (uint64_t)tv->tv_usec / 1000;
}

/* DragonFly names the fields of struct kinfo_proc differently and has no
 * KERN_PROC_PROC; FreeBSD's KERN_PROC_ALL would list every thread. */
#ifdef __DragonFly__
#define KP_PID(k) ((k)->kp_pid)
#define KP_PPID(k) ((k)->kp_ppid)
#define KP_PGID(k) ((k)->kp_pgid)
#define KP_SID(k) ((pid_t)0) /* not relied upon here: 0, unknown */
#define KP_ZOMBIE(k) ((k)->kp_stat == SZOMB)
#define KP_COMM(k) ((k)->kp_comm)
#define KP_RSS_PAGES(k) ((uint64_t)(k)->kp_vm_rssize)
#define KP_CPU_MS(k) (tv_ms(&(k)->kp_ru.ru_utime) + tv_ms(&(k)->kp_ru.ru_stime) + \
                      tv_ms(&(k)->kp_cru.ru_utime) + tv_ms(&(k)->kp_cru.ru_stime))
#define KP_LIST KERN_PROC_ALL
#else
#define KP_PID(k) ((k)->ki_pid)
#define KP_PPID(k) ((k)->ki_ppid)
#define KP_PGID(k) ((k)->ki_pgid)
#define KP_SID(k) ((k)->ki_sid)
#define KP_ZOMBIE(k) ((k)->ki_stat == SZOMB)
#define KP_COMM(k) ((k)->ki_comm)
#define KP_RSS_PAGES(k) ((uint64_t)(k)->ki_rssize)
#define KP_CPU_MS(k) ((uint64_t)(k)->ki_runtime / 1000 + tv_ms(&(k)->ki_childtime))
#define KP_LIST KERN_PROC_PROC
#endif

int ctrun_os_reaper_acquire(void) {
#ifdef PROC_REAP_ACQUIRE
  /* EBUSY: this process is a reaper already, which is what was asked. */
  if (procctl(P_PID, (id_t)getpid(), PROC_REAP_ACQUIRE, NULL) == 0 || errno == EBUSY)
    return 0;
#endif
  return UV_ENOSYS;
}

/* PROC_PDEATHSIG_CTL (FreeBSD 11.2 and later) survives exec, except of a
 * set-id program, like Linux's PR_SET_PDEATHSIG. */
int ctrun_os_child_die_with_parent(pid_t parent) {
#ifdef PROC_PDEATHSIG_CTL
  int sig = SIGKILL;
  /* EINVAL: a kernel older than these headers; run without, as posix.c. */
  if (procctl(P_PID, 0, PROC_PDEATHSIG_CTL, &sig) != 0 && errno != EINVAL)
    return -1;
  /* The parent may have died before the signal was armed. */
  return getppid() == parent ? 0 : -1;
#else
  (void)parent;
  return 0;
#endif
}

static uint64_t usec(struct timeval t) {
  return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_usec;
}

/* kern.boottime: what FreeBSD adds to a process's time since boot to
 * report its start. */
static int boot_time(struct timeval *tv) {
  int mib[2] = { CTL_KERN, KERN_BOOTTIME };
  size_t len = sizeof *tv;
  if (sysctl(mib, 2, tv, &len, NULL, 0) != 0)
    return -errno;
  return len == sizeof *tv ? 0 : UV_EINVAL;
}

#ifdef __DragonFly__
/* DragonFly reports the wall-clock time of fork, fixed for life. */
static uint64_t start_of(const struct kinfo_proc *k, const struct timeval *boot) {
  (void)boot;
  return usec(k->kp_start);
}
#else
/* FreeBSD reports ki_start as the time since boot plus the current boot
 * time, and the boot time moves whenever the clock is stepped
 * (settimeofday, ntpd, resume): only the time since boot stays the same
 * for the life of the process. */
static uint64_t start_of(const struct kinfo_proc *k, const struct timeval *boot) {
  struct timeval t;
  timersub(&k->ki_start, boot, &t);
  return usec(t);
}
#endif

/* KERN_PROC_PID fills one struct kinfo_proc, with the boot time read on
 * both sides so that a clock step in between is seen and retried. */
static int kinfo_one(pid_t pid, struct kinfo_proc *k, struct timeval *boot) {
  int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)pid };
  struct timeval after;
  int r;

  for (int tries = 0; tries < 3; tries++) {
    size_t len = sizeof *k;
    if ((r = boot_time(boot)) != 0)
      return r;
    if (sysctl(mib, 4, k, &len, NULL, 0) != 0)
      return errno == ESRCH ? UV_ESRCH : -errno;
    if (len < sizeof *k)
      return UV_ESRCH;
    if ((r = boot_time(&after)) != 0)
      return r;
    if (timercmp(boot, &after, ==))
      return 0;
  }
  return UV_EAGAIN;
}

/* The whole table in one sysctl, sized with room for processes born since
 * the size was asked; ENOMEM means it grew past that, so ask again. */
static int kinfo_all(struct kinfo_proc **out, size_t *count) {
  int mib[3] = { CTL_KERN, KERN_PROC, KP_LIST };

  for (int tries = 0; tries < 8; tries++) {
    struct kinfo_proc *v;
    size_t len = 0;
    int err;

    if (sysctl(mib, 3, NULL, &len, NULL, 0) != 0)
      return -errno;
    len += len / 8 + 16 * sizeof *v;
    v = malloc(len);
    if (v == NULL)
      return UV_ENOMEM;
    if (sysctl(mib, 3, v, &len, NULL, 0) == 0) {
#ifndef __DragonFly__
      /* A kernel whose struct differs from ours (ABI mismatch) is
       * refused rather than misread. */
      if (len >= sizeof *v && v->ki_structsize != (int)sizeof *v) {
        free(v);
        return UV_EINVAL;
      }
#endif
      *out = v;
      *count = len / sizeof *v;
      return 0;
    }
    err = errno;
    free(v);
    if (err != ENOMEM)
      return -err;
  }
  return UV_ENOMEM;
}

int ctrun_os_proc_list(struct ctrun_pinfo **v, size_t *n) {
  struct kinfo_proc *k = NULL;
  struct ctrun_pinfo *out;
  struct timeval boot, after, now;
  size_t count = 0, len = 0;
  uint64_t since_boot;
  int r;

  for (int tries = 0;; tries++) {
    if ((r = boot_time(&boot)) != 0 || (r = kinfo_all(&k, &count)) != 0)
      return r == UV_ENOMEM ? r : UV_ENOSYS;
    if ((r = boot_time(&after)) != 0) {
      free(k);
      return UV_ENOSYS;
    }
    if (timercmp(&boot, &after, ==) || tries == 2)
      break;
    free(k);
  }
  out = malloc((count + 1) * sizeof *out);
  if (out == NULL) {
    free(k);
    return UV_ENOMEM;
  }
  for (size_t i = 0; i < count; i++) {
    /* DragonFly lists kernel threads with pid -1; a process listed once
     * per thread is kept once. */
    if (KP_PID(&k[i]) <= 0 || (len > 0 && out[len - 1].pid == KP_PID(&k[i])))
      continue;
    out[len].pid = KP_PID(&k[i]);
    out[len].ppid = KP_PPID(&k[i]);
    out[len].pgid = KP_PGID(&k[i]);
    out[len].sid = KP_SID(&k[i]);
    out[len].start = start_of(&k[i], &boot);
    out[len].zombie = KP_ZOMBIE(&k[i]);
    snprintf(out[len].comm, sizeof out[len].comm, "%s", KP_COMM(&k[i]));
    out[len].rss_bytes = KP_RSS_PAGES(&k[i]) * (uint64_t)getpagesize();
    out[len].cpu_ms = KP_CPU_MS(&k[i]);
    len++;
  }
  free(k);
  /* The age on the clock of start_of: the time since boot, now. */
  gettimeofday(&now, NULL);
  since_boot = usec(now) > usec(boot) ? usec(now) - usec(boot) : 0;
#ifdef __DragonFly__
  since_boot = usec(now); /* start_of is the wall-clock time of fork there */
#endif
  for (size_t i = 0; i < len; i++)
    out[i].age_ms = since_boot > out[i].start ? (since_boot - out[i].start) / 1000 : 0;
  *v = out;
  *n = len;
  return 0;
}

/* The table is read at once, then handed out row by row. */
int ctrun_os_proc_each(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg) {
  struct ctrun_pinfo *v;
  size_t n;
  int r = ctrun_os_proc_list(&v, &n);
  if (r != 0)
    return r;
  for (size_t i = 0; i < n; i++)
    fn(&v[i], arg);
  free(v);
  return 0;
}

int ctrun_os_proc_start(pid_t pid, uint64_t *start) {
  struct kinfo_proc k;
  struct timeval boot;
  int r = kinfo_one(pid, &k, &boot);
  if (r == 0)
    *start = start_of(&k, &boot);
  return r;
}

#ifdef KERN_PROC_ENV
/* CTRUN_RUN_ID among the NUL-separated strings of ENV[0..LEN). */
static int find_tag(const char *env, size_t len, char *buf, size_t size) {
  static const char key[] = "CTRUN_RUN_ID=";
  size_t at = 0;

  while (at < len) {
    const char *s = env + at;
    size_t n = strnlen(s, len - at);
    if (n >= sizeof key - 1 && memcmp(s, key, sizeof key - 1) == 0) {
      snprintf(buf, size, "%.*s", (int)(n - (sizeof key - 1)), s + sizeof key - 1);
      return 0;
    }
    at += n + 1;
  }
  return UV_ENOENT;
}
#endif

/* KERN_PROC_ENV gives the environment the process was started with; the
 * kernel lets only those who may debug the process read it. */
int ctrun_os_proc_tag(pid_t pid, char *buf, size_t size) {
#ifdef KERN_PROC_ENV
  int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_ENV, (int)pid };
  long max = sysconf(_SC_ARG_MAX);
  size_t cap = max > 0 ? (size_t)max : 256 * 1024, len = cap;
  char *env = malloc(cap);
  int r;

  if (env == NULL)
    return UV_ENOMEM;
  if (sysctl(mib, 4, env, &len, NULL, 0) != 0) {
    if (errno != ENOMEM) {
      r = errno == ESRCH ? UV_ESRCH : -errno;
      free(env);
      return r;
    }
    /* It held more than fits: the kernel filled the buffer; a string cut
     * at its end is dropped rather than misread. */
    len = len < cap ? len : cap;
    while (len > 0 && env[len - 1] != '\0')
      len--;
  }
  r = find_tag(env, len, buf, size);
  free(env);
  return r;
#else
  /* DragonFly has no environment sysctl: cleanup finds a stale run by its
   * process group only, as on the generic host. */
  (void)pid;
  (void)buf;
  (void)size;
  return UV_ENOSYS;
#endif
}

/* There is no handle for an existing pid here (process descriptors come
 * only from pdfork(2)), so the check and the kill are two system calls: the
 * process would have to exit and its pid go to a new process in between. */
int ctrun_os_signal_verified(pid_t pid, uint64_t start, int sig) {
  return ctrun_unix_signal_if_same(pid, start, sig);
}

/* kern.boot_id (recent FreeBSD) is random per boot.  Without it the id is
 * empty rather than kern.boottime, which moves with every clock step and
 * resume: a wrong "earlier boot" would make cleanup skip a stale run's
 * survivors, while an empty id only drops that shortcut (start times, taken
 * since boot, and run tags still tell processes apart). */
void ctrun_os_boot_id(char *buf, size_t size) {
  unsigned char id[16];
  char hex[2 * sizeof id + 1];
  size_t len = sizeof id;

  hex[0] = '\0';
  if (sysctlbyname("kern.boot_id", id, &len, NULL, 0) == 0 && len == sizeof id)
    for (size_t i = 0; i < sizeof id; i++)
      snprintf(hex + 2 * i, sizeof hex - 2 * i, "%02x", id[i]);
  snprintf(buf, size, "%s", hex);
}

/* No walk down the tree here: the caller reads the whole table, which
 * sysctl gives in one call anyway. */
int ctrun_os_descendants(struct ctrun_pinfo **v, size_t *n) {
  (void)v;
  (void)n;
  return UV_ENOSYS;
}

void ctrun_os_proc_newest(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg, int n) {
  (void)fn;
  (void)arg;
  (void)n; /* a listing here is one snapshot: nothing hops past it */
}
