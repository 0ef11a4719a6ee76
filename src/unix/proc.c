/* The POSIX container: the command leads its own process group; where the
 * host allows, ctrun is also the reaper of every orphan of the tree, so that
 * "no child left" means "no process of the tree left". */
#include "ctrun/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "contain.h"

extern char **environ;

struct ctrun_tree {
  uv_signal_t sigchld;
  uv_signal_t sigusr1; /* ctrun stop's request, once watched */
  ctrun_tree_cb cb, stop_cb;
  void *data;
  int open_handles;
  pid_t pid;
  bool reaper;       /* every orphan of the tree comes to us */
  bool exited;       /* the command has been reaped */
  bool has_children; /* the last reap found children still running */
  int status, termsig;
};

/* Reap every child that has exited, ours and adopted alike.  Safe: ctrun
 * spawns its command itself, so no library waits for a pid of its own. */
static void reap(struct ctrun_tree *t) {
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
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

static void on_sigchld(uv_signal_t *h, int signum) {
  struct ctrun_tree *t = h->data;
  (void)signum;
  reap(t);
  t->cb(t, t->data);
}

int ctrun_tree_new(uv_loop_t *loop, ctrun_tree_cb cb, void *data, struct ctrun_tree **out) {
  struct ctrun_tree *t = calloc(1, sizeof *t);
  int r;

  if (t == NULL)
    return UV_ENOMEM;
  t->cb = cb;
  t->data = data;
  t->reaper = ctrun_os_reaper_acquire() == 0;
  r = uv_signal_init(loop, &t->sigchld);
  if (r == 0)
    r = uv_signal_start(&t->sigchld, on_sigchld, SIGCHLD);
  if (r != 0) {
    free(t);
    return r;
  }
  t->sigchld.data = t;
  t->open_handles = 1;
  *out = t;
  return 0;
}

static void on_sigusr1(uv_signal_t *h, int signum) {
  struct ctrun_tree *t = h->data;
  (void)signum;
  t->stop_cb(t, t->data);
}

int ctrun_tree_watch_stop(struct ctrun_tree *t, const char *run_id, ctrun_tree_cb cb) {
  int r = uv_signal_init(t->sigchld.loop, &t->sigusr1);
  (void)run_id; /* the signal reaches this process, which runs one run */
  if (r != 0)
    return r;
  t->sigusr1.data = t;
  t->stop_cb = cb;
  t->open_handles++;
  return uv_signal_start(&t->sigusr1, on_sigusr1, SIGUSR1);
}

/* The forked child: own process group, die with ctrun, default signal
 * handling, then exec.  Only async-signal-safe calls until exec. */
static void child(const struct ctrun_spawn *s, pid_t parent, const sigset_t *mask, int errfd) {
  int err;

  if (setpgid(0, 0) != 0 || ctrun_os_child_die_with_parent(parent) != 0)
    goto fail;
  for (int fd = 0; fd < 3; fd++) {
    if (s->stdio[fd] < 0)
      continue;
    if (s->stdio[fd] == fd) {
      if (fcntl(fd, F_SETFD, 0) != 0)
        goto fail;
    } else if (dup2(s->stdio[fd], fd) < 0) {
      goto fail;
    }
  }
  /* Handlers ctrun installed become default again; what ctrun's parent
   * ignored (a shell's "cmd &" ignores INT and QUIT) stays ignored. */
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction sa;
    if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0)
      continue;
    if (sa.sa_handler != SIG_IGN && sa.sa_handler != SIG_DFL) {
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = SIG_DFL;
      sigaction(sig, &sa, NULL);
    }
  }
  sigprocmask(SIG_SETMASK, mask, NULL);
  environ = s->env;
  execvp(s->argv[0], s->argv);
fail:
  err = errno;
  while (write(errfd, &err, sizeof err) < 0 && errno == EINTR)
    ;
  _exit(127);
}

int ctrun_tree_spawn(struct ctrun_tree *t, const struct ctrun_spawn *s) {
  sigset_t all, old;
  int pipefd[2], err = 0;
  ssize_t n;
  pid_t parent = getpid(), pid;

  /* Exec failure comes back through a close-on-exec pipe: EOF means the
   * command is running. */
  if (pipe(pipefd) != 0)
    return -errno;
  if (fcntl(pipefd[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(pipefd[1], F_SETFD, FD_CLOEXEC) != 0) {
    err = -errno;
    close(pipefd[0]);
    close(pipefd[1]);
    return err;
  }
  /* Block signals across fork, so that no handler of ctrun's runs in the
   * child before it has reset them. */
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid = fork();
  if (pid == 0)
    child(s, parent, &old, pipefd[1]);
  err = errno;
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(pipefd[1]);
  if (pid < 0) {
    close(pipefd[0]);
    return -err;
  }
  t->pid = pid;
  /* Also from this side, so that the group exists before we signal it. */
  setpgid(pid, pid);
  do
    n = read(pipefd[0], &err, sizeof err);
  while (n < 0 && errno == EINTR);
  close(pipefd[0]);
  if (n == (ssize_t)sizeof err) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
      ;
    t->pid = 0;
    return -err;
  }
  return 0;
}

long ctrun_tree_pid(const struct ctrun_tree *t) { return t->pid; }
long ctrun_tree_pgid(const struct ctrun_tree *t) { return t->pid; }

bool ctrun_tree_exited(const struct ctrun_tree *t, int *status, int *termsig) {
  if (t->exited) {
    *status = t->status;
    *termsig = t->termsig;
  }
  return t->exited;
}

bool ctrun_tree_empty(struct ctrun_tree *t) {
  reap(t);
  if (t->has_children)
    return false;
  if (t->reaper)
    return true;
  /* No reaper: what is left of the tree is what is left of the group. */
  return t->pid == 0 || (kill(-t->pid, 0) != 0 && errno == ESRCH);
}

int ctrun_tree_count(struct ctrun_tree *t) {
  int n;
  if (ctrun_tree_empty(t))
    return 0;
  n = ctrun_unix_count_descendants();
  return n < 0 ? -1 : n;
}

void ctrun_tree_signal(struct ctrun_tree *t, int sig) {
  /* The group id stays ours only while its leader is unreaped or the group
   * has members; a reaper reaches every member as a descendant anyway. */
  if (t->pid > 0 && (!t->exited || !t->reaper))
    kill(-t->pid, sig);
  if (t->reaper)
    ctrun_unix_signal_descendants(sig);
}

/* Free the tree once the last of its handles has closed. */
static void free_tree(uv_handle_t *h) {
  struct ctrun_tree *t = h->data;
  if (--t->open_handles == 0)
    free(t);
}

void ctrun_tree_free(struct ctrun_tree *t) {
  if (t == NULL)
    return;
  if (t->stop_cb != NULL)
    uv_close((uv_handle_t *)&t->sigusr1, free_tree);
  uv_close((uv_handle_t *)&t->sigchld, free_tree);
}
