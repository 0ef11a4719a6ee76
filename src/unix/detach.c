/* Detached runs: the classic double fork.  The supervisor is the grandchild
 * of the caller, in a session of its own, so it has no terminal and is no
 * child of the caller, who reaps the short-lived middle process at once and
 * is never left with a zombie. */
#include "ctrun/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#if defined(__linux__) || defined(__FreeBSD__)
#include <sys/syscall.h> /* SYS_close_range; macOS has none */
#endif
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

struct report {
  int code;
  int started;
};

/* Every descriptor above 2 but KEEP: the command must not inherit the
 * caller's pipes, or the caller's reader would wait for it.  close_range
 * where the kernel has it; else every number up to the descriptor limit. */
static void close_others(int keep) {
  struct rlimit rl;
  long max = 65536;
#ifdef SYS_close_range
  if ((keep == 3 || syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) == 0) &&
      syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
    return;
#endif
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1048576)
    max = (long)rl.rlim_cur;
  for (long fd = 3; fd < max; fd++)
    if (fd != keep)
      close((int)fd);
}

int ctrun_detach_start(struct ctrun_detach *d) {
  int p[2], devnull, st;
  pid_t mid;

  if (pipe(p) != 0)
    return -errno;
  mid = fork();
  if (mid < 0) {
    int r = -errno;
    close(p[0]);
    close(p[1]);
    return r;
  }
  if (mid > 0) {
    close(p[1]);
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
      ;
    d->ready_fd = p[0];
    return 1;
  }
  /* The middle process: a new session, then the supervisor. */
  close(p[0]);
  if (setsid() < 0)
    _exit(1);
  mid = fork();
  if (mid != 0)
    _exit(mid < 0);
  close_others(p[1]);
  fcntl(p[1], F_SETFD, FD_CLOEXEC);
  devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    if (devnull > 2)
      close(devnull);
  }
  d->ready_fd = p[1];
  return 0;
}

void ctrun_detach_ready(struct ctrun_detach *d, int code, bool started, int err_fd) {
  struct report rep = { code, started };
  if (d->ready_fd < 0)
    return;
  while (write(d->ready_fd, &rep, sizeof rep) < 0 && errno == EINTR)
    ;
  /* A supervisor that failed keeps the pipe until it exits, so that the
   * caller, who waits for EOF then, returns only once it is gone. */
  if (!started)
    return;
  close(d->ready_fd);
  d->ready_fd = -1;
  /* From now on the caller is gone: ctrun's own messages go to the log. */
  if (err_fd >= 0) {
    dup2(err_fd, 2);
  } else {
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, 2);
      if (devnull > 2)
        close(devnull);
    }
  }
}

int ctrun_detach_wait(struct ctrun_detach *d, int *code, bool *started) {
  struct report rep;
  ssize_t n;
  do
    n = read(d->ready_fd, &rep, sizeof rep);
  while (n < 0 && errno == EINTR);
  if (n == (ssize_t)sizeof rep && !rep.started) {
    char rest;
    ssize_t m;
    do
      m = read(d->ready_fd, &rest, 1);
    while (m > 0 || (m < 0 && errno == EINTR));
  }
  close(d->ready_fd);
  d->ready_fd = -1;
  if (n != (ssize_t)sizeof rep)
    return UV_EPIPE;
  *code = rep.code;
  *started = rep.started != 0;
  return 0;
}
