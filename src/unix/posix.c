/* The generic POSIX host: a process group and a session, nothing more.
 * The command's group is signalled and waited for; a process that leaves
 * the group (setsid) escapes, ctrun's death is not passed on to the
 * command, and cleanup cannot verify what remains of a stale run.  Built on
 * hosts without a better file, and on Linux with -Dcontainment=posix so
 * that this path is tested too. */
#include "contain.h"

#include <stdio.h>
#include <uv.h>

int ctrun_os_reaper_acquire(void) { return UV_ENOSYS; }

int ctrun_os_child_die_with_parent(pid_t parent) {
  (void)parent;
  return 0;
}

int ctrun_os_proc_list(struct ctrun_pinfo **v, size_t *n) {
  (void)v;
  (void)n;
  return UV_ENOSYS;
}

int ctrun_os_proc_each(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg) {
  (void)fn;
  (void)arg;
  return UV_ENOSYS;
}

int ctrun_os_proc_start(pid_t pid, uint64_t *start) {
  (void)pid;
  *start = 0;
  return UV_ENOSYS;
}

int ctrun_os_proc_tag(pid_t pid, char *buf, size_t size) {
  (void)pid;
  (void)buf;
  (void)size;
  return UV_ENOSYS;
}

int ctrun_os_signal_verified(pid_t pid, uint64_t start, int sig) {
  (void)pid;
  (void)start;
  (void)sig;
  return UV_ENOSYS;
}

void ctrun_os_boot_id(char *buf, size_t size) { snprintf(buf, size, "%s", ""); }

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
