/* The POSIX container: the command leads its own process group; where the
 * host allows, ctrun is also the reaper of every orphan of the tree, so that
 * "no child left" means "no process of the tree left". */
#include "ctrun/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "contain.h"
#include "ctrun/registry.h"

/* What the command's process reads until it execs, kept in the tree: it
 * reads it after ctrun_tree_spawn has returned. */
struct held {
  char *const *argv, *const *env;
  size_t argc;
  int stdio[3];
  pid_t parent;
  sigset_t mask;    /* the command's: ctrun's before the spawn */
  int go_r, go_w;   /* one byte: the run is recorded, exec */
  int err_r, err_w; /* errno, if it could not exec; EOF once it did */
};

struct ctrun_tree {
  uv_async_t wake;     /* a SIGCHLD, or ctrun stop's SIGUSR1, came */
  uv_timer_t more;     /* reaping goes on in the loop's next turn */
  ctrun_tree_cb cb, stop_cb;
  void *data;
  int open_handles;
  pid_t pid;
  uint64_t start;    /* its start time, where known from its birth; else 0 */
  int go_fd;         /* write end: one byte lets the held command exec */
  int err_fd;        /* read end: the exec error, or EOF once it ran */
  struct held held;  /* what the command's process reads until exec */
  bool reaper;       /* every orphan of the tree comes to us */
  struct ctrun_unix_tree u; /* what is the run's below us */
  bool exited;       /* the command has been reaped */
  bool closing;      /* ctrun_tree_free was called: no callback any more */
  bool has_children; /* the last reap found children still running */
  int status, termsig;
  struct rusage before; /* ctrun's reaped children's usage before the run */
  struct ctrun_os_cgroup *cg; /* the run's own cgroup, with limits (Linux) */
};

/* Reaped at most this many at a time: under a fork storm, orphans die as
 * fast as they are reaped, and an unbounded loop would hold the event loop
 * (and the run's deadline) for as long as the storm lasts. */
#define REAP_BATCH 256

static void on_more(uv_timer_t *h);

/* Reap the children that have exited, ours and adopted alike, up to a
 * batch; the rest in the loop's next turn.  Safe: ctrun spawns its command
 * itself, so no library waits for a pid of its own. */
static void reap(struct ctrun_tree *t) {
  for (int n = 0;; n++) {
    int st;
    pid_t p;
    if (n == REAP_BATCH) {
      t->has_children = true;
      if (!uv_is_active((uv_handle_t *)&t->more))
        uv_timer_start(&t->more, on_more, 0, 0);
      return;
    }
    p = waitpid(-1, &st, WNOHANG);
    if (p > 0) {
      if (p == t->pid && !t->exited) {
        t->exited = true;
        if (WIFSIGNALED(st)) {
          t->status = -1;
          t->termsig = WTERMSIG(st);
        } else {
          t->status = WEXITSTATUS(st);
        }
      }
      continue;
    }
    if (p < 0 && errno == EINTR)
      continue;
    t->has_children = (p == 0);
    return;
  }
}

static void on_more(uv_timer_t *h) {
  struct ctrun_tree *t = h->data;
  reap(t);
  t->cb(t, t->data);
}

/* SIGCHLD and ctrun stop's SIGUSR1 reach the tree as the signals that end
 * a run reach the loop (init.c): a handler of ctrun's own notes them and
 * wakes the loop through an async handle.  A libuv signal watcher costs a
 * dozen system calls to start, as many to stop, and a few for each
 * signal.  The tree is one at a time. */
static struct ctrun_tree *volatile woken;
static volatile sig_atomic_t child_exited, stop_asked;

static void on_signal(int sig) {
  struct ctrun_tree *t = woken;
  int saved = errno;
  if (ctrun_unix_signal_elsewhere(sig))
    return;
  if (sig == SIGCHLD)
    child_exited = 1;
  else
    stop_asked = 1;
  if (t != NULL)
    uv_async_send(&t->wake);
  errno = saved;
}

static void on_wake(uv_async_t *h) {
  struct ctrun_tree *t = h->data;
  if (child_exited) {
    child_exited = 0;
    reap(t);
    t->cb(t, t->data);
    if (t->closing)
      return; /* the callback ended the run: a stop that came with it is moot */
  }
  if (stop_asked && t->stop_cb != NULL) {
    stop_asked = 0;
    t->stop_cb(t, t->data);
  }
}

/* Handle SIG with on_signal; restarting, as libuv's watchers did.  (A
 * valid signal and handler: sigaction cannot fail.) */
static void catch_signal(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

int ctrun_tree_new(uv_loop_t *loop, ctrun_tree_cb cb, void *data, struct ctrun_tree **out) {
  struct ctrun_tree *t = calloc(1, sizeof *t);
  int r;

  if (t == NULL)
    return UV_ENOMEM;
  t->cb = cb;
  t->data = data;
  t->go_fd = t->err_fd = -1;
  t->reaper = ctrun_os_reaper_acquire() == 0;
  /* A shell that exec'd ctrun passes on what its own children used. */
  getrusage(RUSAGE_CHILDREN, &t->before);
  ctrun_unix_tree_init(&t->u);
  r = uv_async_init(loop, &t->wake, on_wake);
  if (r != 0) {
    ctrun_unix_tree_free(&t->u);
    free(t);
    return r;
  }
  t->wake.data = t;
  uv_timer_init(loop, &t->more);
  t->more.data = t;
  t->open_handles = 2;
  child_exited = stop_asked = 0;
  woken = t;
  ctrun_unix_own_handlers();
  catch_signal(SIGCHLD);
  *out = t;
  return 0;
}

int ctrun_tree_watch_stop(struct ctrun_tree *t, const char *run_id, ctrun_tree_cb cb) {
  (void)run_id; /* the signal reaches this process, which runs one run */
  t->stop_cb = cb;
  catch_signal(SIGUSR1);
  return 0;
}

/* The command's process.  Held first, with every signal blocked (as
 * ctrun_tree_spawn started it), until ctrun's word that the run is
 * recorded: EOF means ctrun died first, and then nothing of the command
 * ever runs, on any host.  It may run in ctrun's memory (see
 * ctrun_os_start_child), so it makes no call before the word that could
 * write errno (these cannot fail: no handler can interrupt them), and
 * ctrun waits from the word until it has exec'd (ctrun_tree_start).
 * Then: own process group, die with ctrun, the output, ctrun's signal
 * mask, exec; an error goes back through the pipe. */
static int held_child(void *arg) {
  const struct held *h = arg;
  int err;
  char go;

  close(h->go_w);
  close(h->err_r);
  if (read(h->go_r, &go, 1) != 1)
    _exit(127);
  if (setpgid(0, 0) != 0 || ctrun_os_child_die_with_parent(h->parent) != 0)
    goto fail;
  for (int fd = 0; fd < 3; fd++) {
    if (h->stdio[fd] < 0)
      continue;
    if (h->stdio[fd] == fd) {
      if (fcntl(fd, F_SETFD, 0) != 0)
        goto fail;
    } else if (dup2(h->stdio[fd], fd) < 0) {
      goto fail;
    }
  }
  /* A signal that comes through now acts as it would on the command (the
   * handlers see where they run: ctrun_unix_signal_elsewhere); exec makes
   * them default, and what ctrun's parent ignored (a shell's "cmd &"
   * ignores INT and QUIT) stays ignored. */
  sigprocmask(SIG_SETMASK, &h->mask, NULL);
  ctrun_os_exec(h->argv, h->env);
fail:
  err = errno;
  (void)!write(h->err_w, &err, sizeof err);
  _exit(127);
}

/* A pipe whose both ends are close-on-exec. */
static int cloexec_pipe(int fds[2]) {
#ifdef CTRUN_HAVE_PIPE2
  return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
#else
  if (pipe(fds) != 0)
    return -errno;
  if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
    int err = -errno;
    close(fds[0]);
    close(fds[1]);
    return err;
  }
  return 0;
#endif
}

int ctrun_tree_spawn(struct ctrun_tree *t, const struct ctrun_spawn *s) {
  struct held *h = &t->held;
  sigset_t all;
  int go[2], errp[2], err;
  pid_t pid;

  if ((err = cloexec_pipe(go)) != 0)
    return err;
  if ((err = cloexec_pipe(errp)) != 0) {
    close(go[0]);
    close(go[1]);
    return err;
  }
  h->argv = s->argv;
  h->env = s->env;
  for (h->argc = 0; s->argv[h->argc] != NULL; h->argc++)
    ;
  memcpy(h->stdio, s->stdio, sizeof h->stdio);
  h->parent = getpid();
  h->go_r = go[0];
  h->go_w = go[1];
  h->err_r = errp[0];
  h->err_w = errp[1];
  /* The command's process starts with every signal blocked, so that no
   * handler of ctrun's runs in it, until it has reset them. */
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &h->mask);
  pid = ctrun_os_start_child(held_child, h, h->argc, &t->start);
  sigprocmask(SIG_SETMASK, &h->mask, NULL);
  close(go[0]);
  close(errp[1]);
  if (pid < 0) {
    close(go[1]);
    close(errp[0]);
    return pid;
  }
  /* Once the tree of an earlier command is gone, the container takes the
   * next one (--retry): its state starts afresh. */
  t->pid = pid;
  t->exited = false;
  t->status = t->termsig = 0;
  t->u.command = pid;
  snprintf(t->u.run_id, sizeof t->u.run_id, "%s", s->run_id);
  t->go_fd = go[1];
  t->err_fd = errp[0];
  /* From this side too, so that the group exists before we signal it. */
  setpgid(pid, pid);
  /* Into the run's cgroup while it is held: all it starts is born there. */
  if (t->cg != NULL && (err = ctrun_os_cgroup_add(t->cg, pid)) != 0) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    close(t->go_fd);
    close(t->err_fd);
    t->go_fd = t->err_fd = -1;
    t->pid = 0;
    return err == UV_EAGAIN ? UV_EAGAIN : UV_ENOMEM == err ? err : UV_EAGAIN;
  }
  return 0;
}

int ctrun_tree_start(struct ctrun_tree *t) {
  sigset_t all, old;
  int err = 0;
  ssize_t n;

  if (t->go_fd < 0)
    return UV_EINVAL;
  /* From the word until it has exec'd, the command may run in ctrun's
   * memory, errno included: ctrun waits, its handlers too, and its read of
   * the outcome cannot be interrupted. */
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  if (write(t->go_fd, "", 1) < 0 && errno == EPIPE) {
    /* The held command is gone (killed): discard the pending SIGPIPE,
     * which would kill ctrun. */
    struct sigaction ign, prev;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &prev);
    sigaction(SIGPIPE, &prev, NULL);
  }
  close(t->go_fd);
  t->go_fd = -1;
  n = read(t->err_fd, &err, sizeof err);
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(t->err_fd);
  t->err_fd = -1;
  if (n == (ssize_t)sizeof err) {
    while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR)
      ;
    t->pid = 0;
    return err > 0 ? -err : UV_ESRCH;
  }
  return 0;
}

long ctrun_tree_pid(const struct ctrun_tree *t) { return t->pid; }
long ctrun_tree_pgid(const struct ctrun_tree *t) { return t->pid; }

int ctrun_tree_pid_start(const struct ctrun_tree *t, uint64_t *start) {
  if (t->start != 0) {
    *start = t->start;
    return 0;
  }
  return ctrun_os_proc_start(t->pid, start);
}

bool ctrun_tree_exited(const struct ctrun_tree *t, int *status, int *termsig) {
  if (t->exited) {
    *status = t->status;
    *termsig = t->termsig;
  }
  return t->exited;
}

bool ctrun_tree_empty(struct ctrun_tree *t) {
  reap(t);
  /* The kernel's word first, where the run has a cgroup of its own. */
  if (t->cg != NULL && ctrun_os_cgroup_populated(t->cg) == 1)
    return false;
  if (t->u.mixed) {
    /* Children of ctrun's own from before the run are not waited for:
     * only the command, and what the table shows to be the run's. */
    if (t->pid > 0 && !t->exited)
      return false;
    if (t->reaper) {
      int n = ctrun_unix_tree_walk(&t->u, false, 0);
      return n == 0 || (n < 0 && !t->has_children);
    }
  } else {
    if (t->has_children)
      return false;
    if (t->reaper)
      return true;
  }
  /* No reaper: what is left is the group, and (where the host has a
   * process table) whatever left the group but carries the run's tag. */
  if (t->pid > 0 && (kill(-t->pid, 0) == 0 || errno != ESRCH))
    return false;
  return ctrun_unix_tree_walk(&t->u, true, 0) <= 0;
}

int ctrun_tree_count(struct ctrun_tree *t) {
  struct ctrun_pinfo *v;
  size_t n;
  if (ctrun_tree_empty(t))
    return 0;
  if (ctrun_unix_tree_list(&t->u, !t->reaper, &v, &n) != 0)
    return -1;
  free(v);
  return (int)n;
}

int ctrun_tree_members(struct ctrun_tree *t, struct ctrun_member **out, size_t *n) {
  struct ctrun_pinfo *v;
  struct ctrun_member *m;
  size_t count;
  int r = ctrun_unix_tree_list(&t->u, !t->reaper, &v, &count);
  if (r != 0)
    return r;
  m = calloc(count + 1, sizeof *m);
  if (m == NULL) {
    free(v);
    return UV_ENOMEM;
  }
  for (size_t i = 0; i < count; i++) {
    m[i].pid = v[i].pid;
    m[i].start = v[i].start;
    m[i].age_ms = v[i].age_ms;
    m[i].command = !t->exited && v[i].pid == t->pid;
    m[i].rss_bytes = v[i].rss_bytes;
    m[i].cpu_ms = v[i].cpu_ms;
    snprintf(m[i].name, sizeof m[i].name, "%s", v[i].comm);
  }
  free(v);
  *out = m;
  *n = count;
  return 0;
}

static uint64_t tv_ms(const struct timeval *tv) {
  return tv->tv_sec < 0 ? 0 : (uint64_t)tv->tv_sec * 1000 + (uint64_t)tv->tv_usec / 1000;
}

int ctrun_tree_usage(struct ctrun_tree *t, struct ctrun_usage *u) {
  struct rusage now;
  uint64_t user, sys, before_user = tv_ms(&t->before.ru_utime), before_sys = tv_ms(&t->before.ru_stime);
  memset(u, 0, sizeof *u);
  if (getrusage(RUSAGE_CHILDREN, &now) != 0)
    return -errno;
  user = tv_ms(&now.ru_utime);
  sys = tv_ms(&now.ru_stime);
  u->cpu_user_ms = user > before_user ? user - before_user : 0;
  u->cpu_sys_ms = sys > before_sys ? sys - before_sys : 0;
  /* The largest single reaped process: ru_maxrss is in bytes on macOS,
   * in KiB elsewhere. */
#ifdef __APPLE__
  u->peak_rss_bytes = (uint64_t)now.ru_maxrss;
#else
  u->peak_rss_bytes = (uint64_t)now.ru_maxrss * 1024;
#endif
  if (t->cg != NULL)
    ctrun_os_cgroup_usage(t->cg, u);
  return 0;
}

int ctrun_tree_set_limits(struct ctrun_tree *t, const char *run_id, const struct ctrun_limits *l) {
  bool kernel = false;
  /* Where ctrun may make the run a cgroup, it does, limits held or not:
   * its kill and its emptiness are the kernel's, and so is its CPU time. */
  if (t->cg == NULL && ctrun_os_cgroup_new(run_id, l, &kernel, &t->cg) != 0)
    t->cg = NULL;
  return kernel ? 0 : UV_ENOTSUP;
}

enum ctrun_limit ctrun_tree_limit_hit(struct ctrun_tree *t) {
  return t->cg != NULL ? ctrun_os_cgroup_limit_hit(t->cg) : CTRUN_LIMIT_NONE;
}

const char *ctrun_tree_container(const struct ctrun_tree *t) {
  return t->cg != NULL ? ctrun_os_cgroup_path(t->cg) : NULL;
}

int ctrun_proc_container_remove(const struct ctrun_entry *e) {
  return e->container != NULL ? ctrun_os_cgroup_remove_stale(e->container, e->id) : 0;
}

int ctrun_tree_set_nice(struct ctrun_tree *t, int nice) {
  /* The held command, from here: its tree inherits the niceness. */
  if (t->pid <= 0)
    return UV_ESRCH;
  return setpriority(PRIO_PROCESS, (id_t)t->pid, nice) == 0 ? 0 : -errno;
}

bool ctrun_tree_can_list(void) {
  uint64_t start;
  return ctrun_os_proc_start(getpid(), &start) != UV_ENOSYS;
}

int ctrun_tree_signal_member(struct ctrun_tree *t, const struct ctrun_member *m, int sig) {
  (void)t;
  return ctrun_os_signal_verified((pid_t)m->pid, m->start, sig);
}

void ctrun_tree_signal(struct ctrun_tree *t, int sig) {
  int n;
  /* Every process in the run's cgroup at once, as systemd kills a unit;
   * the walk below still runs, for what ctrun may not see there. */
  if (sig == SIGKILL && t->cg != NULL)
    ctrun_os_cgroup_kill(t->cg);
  /* The group id stays ours only while its leader is unreaped or the group
   * has members; a reaper reaches every member as a descendant anyway. */
  if (t->pid > 0 && (!t->exited || !t->reaper))
    kill(-t->pid, sig);
  n = ctrun_unix_tree_walk(&t->u, !t->reaper, sig);
  /* No process table to read (no /proc): PID 1 of a namespace still
   * reaches every process of it at once, and they all are the run's
   * unless ctrun had children of its own before. */
  if (n == UV_ENOSYS && getpid() == 1 && !t->u.mixed)
    kill(-1, sig);
}

int ctrun_tree_unkillable(struct ctrun_tree *t, long *pids, int max) {
  int n = 0;
  for (size_t i = 0; i < t->u.denied.cap; i++) {
    if (t->u.denied.s[i].pid == 0)
      continue;
    if (n < max)
      pids[n] = (long)t->u.denied.s[i].pid;
    n++;
  }
  return n;
}

/* Free the tree once the last of its handles has closed. */
static void free_tree(uv_handle_t *h) {
  struct ctrun_tree *t = h->data;
  if (--t->open_handles == 0) {
    ctrun_unix_tree_free(&t->u);
    ctrun_os_cgroup_free(t->cg);
    free(t);
  }
}

void ctrun_tree_free(struct ctrun_tree *t) {
  if (t == NULL)
    return;
  if (t->go_fd >= 0)
    close(t->go_fd); /* a held command that was never started exits */
  if (t->err_fd >= 0)
    close(t->err_fd);
  /* A stop that comes now (the run is over, its entry not yet removed) is
   * moot: SIGUSR1 is ignored from now on.  SIGCHLD is libuv's again (the
   * --on-finish command is spawned through it). */
  woken = NULL;
  t->closing = true;
  if (t->stop_cb != NULL)
    signal(SIGUSR1, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);
  uv_close((uv_handle_t *)&t->more, free_tree);
  uv_close((uv_handle_t *)&t->wake, free_tree);
}
