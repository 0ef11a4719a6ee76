/* What ctrun makes safe before anything else, whatever state its parent
 * left the process in: descriptors 0-2 open, no signal blocked, SIGCHLD
 * not ignored; and, before a run owns anything, no signal whose default
 * action would end ctrun unseen while it owns a tree. */
#include "ctrun/proc.h"

#include "contain.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* How many descriptors a run may need at once: the state directory, its
 * entry, a stop request, the lock, the log, the report, the capture file,
 * the event loop's own, the spawn pipes, /proc reads, and a margin. */
#define FD_HEADROOM 24

/* Every signal whose default action ends the process and that can be
 * caught, but for USR1 (ctrun stop's), PIPE, XFSZ and XCPU (below) and the
 * faults that only a broken ctrun raises itself (SEGV, BUS, ILL, FPE,
 * TRAP, ABRT, SYS). */
static const int ending[] = {
  SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF,
#ifdef SIGIO
  SIGIO,
#endif
#if defined(SIGPOLL) && (!defined(SIGIO) || SIGPOLL != SIGIO)
  SIGPOLL,
#endif
#ifdef SIGPWR
  SIGPWR,
#endif
#ifdef SIGSTKFLT
  SIGSTKFLT,
#endif
#ifdef SIGEMT
  SIGEMT,
#endif
#ifdef SIGLOST
  SIGLOST,
#endif
};

/* What a signal to ctrun does until the loop watches it: a write to a
 * closed pipe (ctrun's notice into `| head -1`), a file over its size
 * limit, or a CPU limit, is an error to handle, not the end of ctrun. */
static const int harmless[] = { SIGPIPE, SIGXFSZ, SIGXCPU, SIGUSR1 };

/* The signals that end a run are caught by one handler of ctrun's own,
 * which wakes the loop through an async handle (async-signal-safe), rather
 * than one libuv signal watcher each: some forty of those would cost every
 * run hundreds of system calls. */
struct ctrun_signals {
  uv_async_t async;
  ctrun_signal_cb cb;
  void *data;
};

static int run_sigs[64];
static size_t n_run_sigs;
static volatile sig_atomic_t held, pending[128];
static struct ctrun_signals *volatile watcher;

static pid_t owner; /* the process whose handlers these are */

void ctrun_unix_own_handlers(void) { owner = getpid(); }

bool ctrun_unix_signal_elsewhere(int sig) {
  struct sigaction sa;
  if (getpid() == owner)
    return false;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigaction(sig, &sa, NULL);
  kill(getpid(), sig); /* not raise(): the thread it names is ctrun's */
  return true;
}

static void note(int sig) {
  if (ctrun_unix_signal_elsewhere(sig))
    return;
  if (held == 0)
    held = sig;
  if (sig > 0 && (size_t)sig < sizeof pending / sizeof pending[0])
    pending[sig] = 1;
  if (watcher != NULL)
    uv_async_send(&watcher->async);
}

static void nothing(int sig) { (void)ctrun_unix_signal_elsewhere(sig); }

/* Catch SIG with FN, unless it is ignored: then it stays so, and the
 * result is false.  No SA_RESTART, so that a wait for a lock ends. */
static bool catch_with(int sig, void (*fn)(int)) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigfillset(&sa.sa_mask);
  if (sigaction(sig, &sa, &old) != 0)
    return false;
  if (old.sa_handler == SIG_IGN) {
    sigaction(sig, &old, NULL);
    return false;
  }
  return true;
}

void ctrun_proc_init(int *argc, char ***argv) {
  struct sigaction sa;
  sigset_t none;
  int fd;

  (void)argc; /* Unix hands main its argv as the bytes they are. */
  (void)argv;
  /* With 0-2 closed, ctrun's own files would land there: its messages
   * would go into the lock file, a detached run's report pipe would be
   * taken for stdin. */
  for (fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ;
      if (fd > 2)
        close(fd);
      break;
    }
  /* A mask inherited from the parent would hold back SIGCHLD (the run
   * would never see its command end), the lock wait's alarm, ctrun stop's
   * request and every forwarded signal. */
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (sigaction(SIGCHLD, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) {
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
  }
}

int ctrun_proc_protect(char *err, size_t errlen) {
  int fds[FD_HEADROOM], n = 0;
  struct rlimit rl;

  ctrun_unix_own_handlers();
  n_run_sigs = 0;
  for (size_t i = 0; i < sizeof ending / sizeof ending[0]; i++)
    if (n_run_sigs < sizeof run_sigs / sizeof run_sigs[0] && catch_with(ending[i], note))
      run_sigs[n_run_sigs++] = ending[i];
#ifdef SIGRTMIN
  for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
    if (n_run_sigs < sizeof run_sigs / sizeof run_sigs[0] && catch_with(s, note))
      run_sigs[n_run_sigs++] = s;
#endif
  for (size_t i = 0; i < sizeof harmless / sizeof harmless[0]; i++)
    catch_with(harmless[i], nothing);
  /* Out of descriptors halfway through, the event loop's library aborts;
   * find out now, before anything runs.  Under a generous limit, one look
   * at the lowest free descriptor tells; under a small one, count. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= 256 && rl.rlim_cur != RLIM_INFINITY &&
      (fds[0] = fcntl(0, F_DUPFD_CLOEXEC, 3)) >= 0) {
    close(fds[0]);
    if ((rlim_t)fds[0] + 4 * FD_HEADROOM <= rl.rlim_cur)
      return 0;
  }
  while (n < FD_HEADROOM && (fds[n] = fcntl(0, F_DUPFD_CLOEXEC, 3)) >= 0)
    n++;
  for (int i = 0; i < n; i++)
    close(fds[i]);
  if (n < FD_HEADROOM) {
    snprintf(err, errlen, "too few file descriptors: a run needs %d free, %d are (ulimit -n)",
             FD_HEADROOM, n);
    return UV_EMFILE;
  }
  return 0;
}

int ctrun_proc_held_signal(void) { return held; }

static void on_async(uv_async_t *h) {
  struct ctrun_signals *s = h->data;
  for (size_t i = 0; i < n_run_sigs; i++)
    if (pending[run_sigs[i]]) {
      pending[run_sigs[i]] = 0;
      s->cb(run_sigs[i], s->data);
      if (watcher != s)
        return; /* the callback ended the run and closed this watcher */
    }
}

int ctrun_signals_watch(uv_loop_t *loop, ctrun_signal_cb cb, void *data, struct ctrun_signals **out) {
  struct ctrun_signals *s = calloc(1, sizeof *s);
  int r;
  if (s == NULL)
    return UV_ENOMEM;
  r = uv_async_init(loop, &s->async, on_async);
  if (r != 0) {
    free(s);
    return r;
  }
  s->async.data = s;
  s->cb = cb;
  s->data = data;
  /* What arrived before is ctrun_proc_held_signal's to tell. */
  for (size_t i = 0; i < sizeof pending / sizeof pending[0]; i++)
    pending[i] = 0;
  watcher = s;
  *out = s;
  return 0;
}

static void free_watcher(uv_handle_t *h) { free(h->data); }

void ctrun_signals_close(struct ctrun_signals *s) {
  if (s == NULL)
    return;
  watcher = NULL;
  uv_close((uv_handle_t *)&s->async, free_watcher);
}

char **ctrun_proc_environ(void) {
  extern char **environ;
  static char *none[] = { NULL };
  return environ != NULL ? environ : none;
}

void ctrun_proc_environ_free(char **vars) { (void)vars; }
