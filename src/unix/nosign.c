/* Entries are not signed (see ctrun_proc_sign_entry) on any Unix host but
 * Linux: on FreeBSD and macOS flock and record locks are one kind of lock,
 * so a record lock on the entry would meet its own flock; the entry records
 * the supervisor's start time instead, which sysctl gives cheaply.  The
 * generic POSIX host has neither, and goes by the held lock. */
#include "contain.h"

#include <uv.h>

int ctrun_os_sign_entry(int fd) {
  (void)fd;
  return UV_ENOSYS;
}

int ctrun_os_signal_signer(int fd, pid_t pid, int sig) {
  (void)fd;
  (void)pid;
  (void)sig;
  return UV_ENOSYS;
}
