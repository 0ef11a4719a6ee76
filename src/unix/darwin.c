/* macOS: no subreaper and no parent-death signal, so the tree is the
 * command's process group and session, as on the generic host; what macOS
 * adds is a process table, environments and a boot id, all from sysctl(3),
 * so that stop and cleanup verify every process by its start time and find
 * a stale run's escapees by their CTRUN_RUN_ID tag.  sysctl is used rather
 * than libproc: KERN_PROC_ALL lists every user's processes in one call,
 * where proc_pidinfo(PROC_PIDTBSDINFO) answers only for our own, which
 * would break the parent chain at a set-id descendant. */
#include "contain.h"

#include <sys/types.h>
#include <sys/proc.h>
#include <sys/sysctl.h>
#include <sys/time.h>

#include <libproc.h>
#include <mach/mach_time.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* macOS has no way to make orphans come to us: an orphan of the tree goes
 * to launchd, and proc.c falls back to waiting for the process group. */
int ctrun_os_reaper_acquire(void) { return UV_ENOSYS; }

/* macOS has no parent-death signal: if ctrun is SIGKILLed, the command
 * runs on, and only `ctrun cleanup` (by process group and tag) ends it. */
int ctrun_os_child_die_with_parent(pid_t parent) {
  (void)parent;
  return 0;
}

/* p_starttime is the wall-clock time of fork, fixed for life. */
static uint64_t start_of(const struct kinfo_proc *k) {
  return (uint64_t)k->kp_proc.p_starttime.tv_sec * 1000000u +
         (uint64_t)k->kp_proc.p_starttime.tv_usec;
}

/* The whole table in one sysctl, sized with room for processes born since
 * the size was asked; ENOMEM means it grew past that, so ask again. */
static int kinfo_all(struct kinfo_proc **out, size_t *count) {
  int mib[3] = { CTL_KERN, KERN_PROC, KERN_PROC_ALL };

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

/* Resident memory and CPU time of P (its own; macOS keeps its reaped
 * children's apart, out of reach), where ctrun may read them. */
static void usage_of(struct ctrun_pinfo *p) {
  static mach_timebase_info_data_t tb;
  struct proc_taskinfo ti;
  p->rss_bytes = p->cpu_ms = 0;
  if (p->zombie || proc_pidinfo(p->pid, PROC_PIDTASKINFO, 0, &ti, sizeof ti) != (int)sizeof ti)
    return;
  if (tb.denom == 0 && mach_timebase_info(&tb) != KERN_SUCCESS)
    tb.numer = tb.denom = 1;
  p->rss_bytes = ti.pti_resident_size;
  /* Mach absolute time units: nanoseconds on Intel, ticks on Apple silicon. */
  p->cpu_ms = (ti.pti_total_user + ti.pti_total_system) * tb.numer / tb.denom / 1000000;
}

int ctrun_os_proc_list(struct ctrun_pinfo **v, size_t *n) {
  struct kinfo_proc *k = NULL;
  struct ctrun_pinfo *out;
  size_t count = 0, len = 0;
  struct timeval tv;
  uint64_t now;
  int r = kinfo_all(&k, &count);

  if (r != 0)
    return r == UV_ENOMEM ? r : UV_ENOSYS;
  out = malloc((count + 1) * sizeof *out);
  if (out == NULL) {
    free(k);
    return UV_ENOMEM;
  }
  for (size_t i = 0; i < count; i++) {
    /* pid 0 is kernel_task, not a process anyone can signal. */
    if (k[i].kp_proc.p_pid <= 0)
      continue;
    out[len].pid = k[i].kp_proc.p_pid;
    out[len].ppid = k[i].kp_eproc.e_ppid;
    out[len].pgid = k[i].kp_eproc.e_pgid;
    out[len].sid = 0; /* kinfo_proc holds a pointer to the session, not its id */
    out[len].start = start_of(&k[i]);
    out[len].zombie = k[i].kp_proc.p_stat == SZOMB;
    snprintf(out[len].comm, sizeof out[len].comm, "%.*s", (int)sizeof k[i].kp_proc.p_comm,
             k[i].kp_proc.p_comm);
    usage_of(&out[len]);
    len++;
  }
  free(k);
  /* Start times are wall-clock microseconds. */
  gettimeofday(&tv, NULL);
  now = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
  for (size_t i = 0; i < len; i++)
    out[i].age_ms = now > out[i].start ? (now - out[i].start) / 1000 : 0;
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
  int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)pid };
  struct kinfo_proc k;
  size_t len = sizeof k;

  if (sysctl(mib, 4, &k, &len, NULL, 0) != 0)
    return -errno;
  /* A pid that is gone gives success and no data. */
  if (len < sizeof k || k.kp_proc.p_pid != pid)
    return UV_ESRCH;
  *start = start_of(&k);
  return 0;
}

/* KERN_PROCARGS2 of PID: int argc, the executable's path, NUL padding,
 * argc argument strings, then the environment strings, ended by an empty
 * string (the "apple" strings that follow are not the environment).  It is
 * the environment the process was started with; the kernel gives it to
 * root and to the process's own user only. */
int ctrun_os_proc_tag(pid_t pid, char *buf, size_t size) {
  static const char key[] = "CTRUN_RUN_ID=";
  int mib[3] = { CTL_KERN, KERN_ARGMAX, 0 };
  int argmax = 0, argc;
  size_t len = sizeof argmax, at;
  char *args;
  int r = UV_ENOENT;

  if (sysctl(mib, 2, &argmax, &len, NULL, 0) != 0 || argmax <= 0)
    return UV_ENOSYS;
  args = malloc((size_t)argmax);
  if (args == NULL)
    return UV_ENOMEM;
  mib[1] = KERN_PROCARGS2;
  mib[2] = (int)pid;
  len = (size_t)argmax;
  if (sysctl(mib, 3, args, &len, NULL, 0) != 0 || len < sizeof argc) {
    /* EINVAL stands for both "no such process" and "not yours". */
    r = kill(pid, 0) != 0 && errno == ESRCH ? UV_ESRCH : UV_EACCES;
    free(args);
    return r;
  }
  memcpy(&argc, args, sizeof argc);
  at = sizeof argc;
  at += strnlen(args + at, len - at);
  while (at < len && args[at] == '\0')
    at++;
  for (int i = 0; i < argc && at < len; i++)
    at += strnlen(args + at, len - at) + 1;
  while (at < len) {
    const char *s = args + at;
    size_t n = strnlen(s, len - at);
    if (n == 0)
      break;
    if (n >= sizeof key - 1 && memcmp(s, key, sizeof key - 1) == 0) {
      snprintf(buf, size, "%.*s", (int)(n - (sizeof key - 1)), s + sizeof key - 1);
      r = 0;
      break;
    }
    at += n + 1;
  }
  free(args);
  return r;
}

/* macOS has no handle for a process (no pidfd), so the check and the kill
 * are two system calls: the process would have to exit and its pid go to a
 * new process in between. */
int ctrun_os_signal_verified(pid_t pid, uint64_t start, int sig) {
  return ctrun_unix_signal_if_same(pid, start, sig);
}

/* kern.bootsessionuuid is a UUID made at each boot.  Without it the id is
 * empty rather than kern.boottime, which the kernel moves when the clock is
 * set: a wrong "earlier boot" would make cleanup skip a stale run's
 * survivors, while an empty id only drops that shortcut (start times and
 * run tags still tell processes apart). */
void ctrun_os_boot_id(char *buf, size_t size) {
  char id[64];
  size_t len = sizeof id - 1;

  if (sysctlbyname("kern.bootsessionuuid", id, &len, NULL, 0) != 0)
    len = 0;
  id[len < sizeof id ? len : sizeof id - 1] = '\0';
  snprintf(buf, size, "%s", id);
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
