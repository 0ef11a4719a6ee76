/* One run, in the order a reader expects: parse (done by main) -> take the
 * lock -> spawn into a container, held -> record the run -> let it start ->
 * loop (deadline, signals, exit) -> kill and reap what is left -> release
 * -> report. */
#include "ctrun/run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ctrun/clock.h"
#include "ctrun/duration.h"
#include "ctrun/exit.h"
#include "ctrun/govern.h"
#include "ctrun/history.h"
#include "ctrun/lease.h"
#include "ctrun/lock.h"
#include "ctrun/msg.h"
#include "ctrun/output.h"
#include "ctrun/ping.h"
#include "ctrun/proc.h"
#include "ctrun/registry.h"
#include "ctrun/relay.h"
#include "ctrun/result.h"
#include "ctrun/retry.h"
#include "ctrun/signals.h"

struct run {
  struct ctrun_run_opts *o;
  uv_loop_t loop;
  struct ctrun_tree *tree;
  uv_timer_t deadline, grace, poll;
  struct ctrun_signals *signals;
  struct ctrun_dir *dir;
  struct ctrun_record rec;
  struct ctrun_entry entry;
  struct ctrun_lock lock;
  struct ctrun_lease *lease[CTRUN_LOCKS_MAX]; /* the fleet locks of -l */
  int nleases;
  bool loop_ready;
  bool lock_lost; /* a fleet lock's lease ran out: nothing more runs */
  char lock_token[24]; /* the first fleet lock's fencing token ("": none) */
  struct ctrun_output out;
  struct ctrun_govern *govern;
  struct ctrun_relay *relay; /* --idle-timeout: ctrun relays the output */
  bool draining, drained;
  char id[CTRUN_ID_LEN + 1];
  char rid[CTRUN_UUID_LEN + 1];
  int64_t started_ms, ended_ms, lock_wait_ms;
  struct ctrun_detach *detach;
  char **env;      /* the command's: env_own strings of ours, then env_vars' */
  size_t env_own;
  char **env_vars; /* ctrun's environment (ctrun_proc_environ) */
  int code; /* the run's exit code, once it is over */
  /* --retry: the attempts so far, and the wait before the next */
  uv_timer_t delay;
  struct ctrun_attempt *attempt;
  int attempts;
  int64_t attempt_started_ms;
  bool ending;  /* a signal or ctrun stop: no attempt after this one */
  bool fatal;   /* ctrun itself failed (125): no attempt after this one */
  bool between; /* the run ended while waiting to retry (ended_by says why) */
  /* this attempt */
  bool timed_out, killed_hard, stopping, done;
  bool exited;
  enum ctrun_reason ended_by; /* TIMEOUT, IDLE or STOPPED once ctrun ended it; else EXIT */
  int status, termsig;
  int leftovers_killed;
  /* the whole run */
  int leftovers_total, peak_procs;
  bool any_killed_hard;
  bool coalesced; /* --on-busy=queue found another run waiting */
  int early_signal; /* a signal ended the run before its command started */
  uint64_t peak_rss;
  struct ctrun_usage usage; /* the whole run's, once its tree is gone */
  const char *limits_by;    /* "kernel", "sampling"; NULL: no limits */
  long unkillable[CTRUN_UNKILLABLE_LISTED]; /* members ctrun could not signal */
  int nunkillable;
  struct ctrun_ping ping; /* --ping, --ping-file */
};

/* The loop, made when first needed: by a fleet lock, else by the run. */
static int loop_open(struct run *r) {
  int e = r->loop_ready ? 0 : uv_loop_init(&r->loop);
  r->loop_ready = e == 0;
  return e;
}

/* Let go of the fleet locks (the tree is gone): their releases finish on
 * the loop, which the caller runs. */
static void release_leases(struct run *r) {
  for (int i = 0; i < r->nleases; i++)
    ctrun_lease_release(r->lease[i]);
  r->nleases = 0;
}

static void close_handles(struct run *r) {
  /* What the tree used, now that all of it is reaped (and before a Windows
   * job, which counts it, is closed). */
  ctrun_tree_usage(r->tree, &r->usage);
  ctrun_govern_peaks(r->govern, &r->peak_procs, &r->peak_rss);
  uv_close((uv_handle_t *)&r->delay, NULL);
  uv_close((uv_handle_t *)&r->deadline, NULL);
  uv_close((uv_handle_t *)&r->grace, NULL);
  uv_close((uv_handle_t *)&r->poll, NULL);
  ctrun_govern_close(r->govern);
  r->govern = NULL;
  ctrun_relay_close(r->relay);
  r->relay = NULL;
  ctrun_signals_close(r->signals);
  r->signals = NULL;
  ctrun_tree_free(r->tree);
  release_leases(r);
}

static void stop_tree(struct run *r, int sig, uint64_t kill_after_ms);
static void on_poll(uv_timer_t *h);

/* The relayed output is all out of the pipes: the run may end. */
static void on_drained(void *data);

static void hard_kill(struct run *r) {
  if (!r->killed_hard)
    ctrun_debug("killing what is left of run %s", r->id);
  r->killed_hard = r->any_killed_hard = true;
  ctrun_tree_signal(r->tree, SIGKILL);
}

static void attempt_over(struct run *r);

/* The heart of the loop: called on every change of the tree and on every
 * poll.  Decides what the command's exit means and ends the run once the
 * whole tree is gone. */
static void check(struct run *r) {
  if (r->done)
    return;
  /* A limit the kernel holds, found exceeded (the tree's callback runs
   * when a job reports it). */
  ctrun_govern_kernel_check(r->govern);
  if (!r->exited && ctrun_tree_exited(r->tree, &r->status, &r->termsig)) {
    r->exited = true;
    if (!ctrun_tree_empty(r->tree) && !r->stopping) {
      if (r->o->leftovers == CTRUN_LEFTOVERS_KILL) {
        int n = ctrun_tree_count(r->tree);
        r->leftovers_killed = n > 0 ? n : 1;
        r->leftovers_total += r->leftovers_killed;
        ctrun_debug("the command exited; stopping %d leftover process(es)", r->leftovers_killed);
        stop_tree(r, r->o->signal, r->o->kill_after_ms);
      } else {
        ctrun_debug("the command exited; waiting for its leftovers");
        /* Where leftovers are no children of ctrun, only a poll sees them go. */
        uv_timer_start(&r->poll, on_poll, 50, 50);
      }
    }
  }
  if (r->exited && ctrun_tree_empty(r->tree)) {
    /* What the tree wrote into the relay's pipes is read to the end. */
    if (r->relay != NULL && !r->drained) {
      if (!r->draining) {
        r->draining = true;
        ctrun_govern_stop(r->govern);
        uv_timer_stop(&r->poll);
        ctrun_relay_drain(r->relay, on_drained, r);
      }
      return;
    }
    r->done = true;
    r->nunkillable = ctrun_tree_unkillable(r->tree, r->unkillable, CTRUN_UNKILLABLE_LISTED);
    attempt_over(r);
    return;
  }
  /* Each killed parent hands its children to us: kill again until none. */
  if (r->killed_hard)
    ctrun_tree_signal(r->tree, SIGKILL);
}

static void on_drained(void *data) {
  struct run *r = data;
  r->drained = true;
  check(r);
}

static void on_tree(struct ctrun_tree *t, void *data) {
  (void)t;
  check(data);
}

static void on_poll(uv_timer_t *h) { check(h->data); }

static void on_grace(uv_timer_t *h) {
  struct run *r = h->data;
  hard_kill(r);
  check(r);
}

/* Send SIG to the whole tree, and kill it hard after KILL_AFTER_MS unless
 * it is gone by then.  Also how a leftover, a timeout and ctrun stop end a
 * run. */
static void stop_tree(struct run *r, int sig, uint64_t kill_after_ms) {
  r->stopping = true;
  ctrun_govern_stop(r->govern);
  if (sig == SIGKILL || kill_after_ms == 0) {
    hard_kill(r);
  } else {
    ctrun_tree_signal(r->tree, sig);
#ifdef SIGCONT
    ctrun_tree_signal(r->tree, SIGCONT); /* a stopped process cannot act on SIG */
#endif
    if (kill_after_ms != CTRUN_DURATION_INF && !uv_is_active((uv_handle_t *)&r->grace))
      uv_timer_start(&r->grace, on_grace, kill_after_ms, 0);
  }
  /* A backstop for hosts that cannot report every death in the tree. */
  uv_timer_start(&r->poll, on_poll, 20, 20);
}

static void on_deadline(uv_timer_t *h) {
  struct run *r = h->data;
  char d[32];
  /* Leftovers being killed when the deadline comes were the end of the run
   * already: the command's own status stands.  Leftovers waited for are
   * part of the run, which then did time out. */
  r->timed_out = !r->exited || r->o->leftovers == CTRUN_LEFTOVERS_WAIT;
  if (r->timed_out)
    r->ended_by = CTRUN_REASON_TIMEOUT;
  ctrun_notice("run %s (%s) %s after %s; sending %s", r->id, r->o->name,
               r->exited ? "reached its deadline with leftovers" : "timed out",
               ctrun_duration_format_exact(r->o->timeout_ms, d, sizeof d),
               ctrun_signal_name(r->o->signal) ? ctrun_signal_name(r->o->signal) : "signal");
  stop_tree(r, r->o->signal, r->o->kill_after_ms);
  check(r);
}

/* What ctrun says about a run while it runs: on stderr (unless -q), and
 * framed in the log of -o.  A detached run's stderr is that log already. */
static void say(struct run *r, const char *text) {
  if (!(r->o->detach && r->out.log_fd >= 0))
    ctrun_notice("run %s (%s): %s", r->id, r->o->name, text);
  ctrun_output_note(&r->out, r->id, r->o->name, text);
}

/* --child-timeout hit a process: say so, and count it where ps sees it. */
static void on_child_killed(void *data, const char *text) {
  struct run *r = data;
  say(r, text);
  r->entry.children_killed = ctrun_govern_children_killed(r->govern);
  if (r->rec.fd >= 0)
    ctrun_record_write(&r->rec, r->dir, &r->entry);
}

/* --idle-timeout: no output for that long ends the run as a timeout. */
static void on_idle(void *data) {
  struct run *r = data;
  char d[32], text[128];
  if (r->stopping)
    return;
  r->timed_out = true;
  r->ended_by = CTRUN_REASON_IDLE;
  snprintf(text, sizeof text, "idle: no output for %s; sending %s",
           ctrun_duration_format_exact(r->o->idle_timeout_ms, d, sizeof d),
           ctrun_signal_name(r->o->signal) ? ctrun_signal_name(r->o->signal) : "signal");
  say(r, text);
  stop_tree(r, r->o->signal, r->o->kill_after_ms);
  check(r);
}

/* The tree went over a limit: it is killed at once, and the run ends
 * (no retry: a limit is on the run as a whole). */
static void end_over_limit(struct run *r, enum ctrun_limit which, const char *text) {
  static const enum ctrun_reason why[] = { CTRUN_REASON_EXIT, CTRUN_REASON_MEMORY,
                                           CTRUN_REASON_PROCS, CTRUN_REASON_CPU };
  if (r->stopping && r->ended_by != CTRUN_REASON_EXIT)
    return; /* ended already, for another reason */
  r->timed_out = true;
  r->ending = true;
  r->ended_by = why[which];
  say(r, text);
  stop_tree(r, SIGKILL, 0);
}

static void on_limit(void *data, enum ctrun_limit which, const char *text) {
  struct run *r = data;
  end_over_limit(r, which, text);
  check(r);
}

/* A signal or ctrun stop came while waiting to retry: no tree to stop,
 * the run ends at once with CODE. */
static void end_between_attempts(struct run *r, int code, enum ctrun_reason why) {
  r->code = code;
  r->between = true;
  r->ended_by = why;
  close_handles(r);
}

/* A fleet lock's lease could not be renewed in time: the whole tree is
 * killed at once, before the lease can expire on the server, and nothing
 * more runs (no retry: the lock is no longer ours). */
static void on_lock_lost(void *data, const char *why) {
  struct run *r = data;
  r->lock_lost = r->ending = true;
  say(r, why);
  if (r->attempts == 0)
    return; /* nothing started: start_attempt sees lock_lost */
  if (r->done) {
    end_between_attempts(r, CTRUN_EXIT_TIMEOUT, CTRUN_REASON_LOCK_LOST);
    return;
  }
  if (!r->stopping || r->ended_by == CTRUN_REASON_EXIT) {
    r->timed_out = true;
    r->ended_by = CTRUN_REASON_LOCK_LOST;
  }
  stop_tree(r, SIGKILL, 0);
  check(r);
}

/* A renewal moved a lease's expiry: ps shows where it is now. */
static void on_lease_renewed(void *data) {
  struct run *r = data;
  for (int i = 0; i < r->nleases && i < r->entry.nleases; i++)
    r->entry.leases[i].expires_ms = ctrun_lease_expires_ms(r->lease[i]);
  if (r->rec.fd >= 0)
    ctrun_record_write(&r->rec, r->dir, &r->entry);
}

/* ctrun stop (or --on-busy=replace) asked for this run to end. */
static void on_stop(struct ctrun_tree *t, void *data) {
  struct run *r = data;
  int s = r->o->signal;
  uint64_t ka = r->o->kill_after_ms;
  (void)t;
  if (ctrun_stop_request_read(r->dir, r->id, &s, &ka) != 0)
    return; /* not from ctrun stop */
  ctrun_notice("run %s (%s) stopped on request", r->id, r->o->name);
  r->ending = true;
  r->timed_out = true;
  r->ended_by = CTRUN_REASON_STOPPED;
  if (r->done) {
    end_between_attempts(r, CTRUN_EXIT_TIMEOUT, CTRUN_REASON_STOPPED);
    return;
  }
  stop_tree(r, s != 0 ? s : r->o->signal, ka);
  check(r);
}

/* A signal that ends a run reached ctrun: pass it on to the tree, which
 * gets the hard kill after -k. */
static void on_signal(int sig, void *data) {
  struct run *r = data;
  r->ending = true;
  if (r->done) {
    ctrun_notice("run %s (%s) ended by signal %s while waiting to retry", r->id, r->o->name,
                 ctrun_signal_name(sig) ? ctrun_signal_name(sig) : "?");
    r->status = -1;
    r->termsig = sig;
    r->timed_out = false;
    end_between_attempts(r, CTRUN_EXIT_SIGNAL_BASE + sig, CTRUN_REASON_SIGNAL);
    return;
  }
  ctrun_debug("forwarding signal %s to the tree", ctrun_signal_name(sig));
  stop_tree(r, sig, r->o->kill_after_ms);
  check(r);
}

/* The command's environment: CTRUN_RUN_ID and CTRUN_NAME (and the fencing
 * token of the first fleet lock, CTRUN_LOCK_TOKEN), then ctrun's, not
 * copied.  The tag comes first, where a reader of another process's
 * environment finds it at once, however large the rest is. */
#define PREFIX(s) { s, sizeof s - 1 }
static int make_env(struct run *r, const char *token) {
  /* Ours, in place of any of the same name that ctrun inherited (a run
   * inside a run, or a stale token). */
  static const struct {
    const char *s;
    size_t len;
  } ours[] = { PREFIX("CTRUN_RUN_ID="), PREFIX("CTRUN_NAME="), PREFIX("CTRUN_LOCK_TOKEN=") };
  const char *value[] = { r->id, r->o->name, token };
  size_t count = 0, k = 0;

  r->env_vars = ctrun_proc_environ();
  if (r->env_vars == NULL)
    return UV_ENOMEM;
  while (r->env_vars[count] != NULL)
    count++;
  r->env = calloc(count + 4, sizeof *r->env);
  if (r->env == NULL)
    return UV_ENOMEM;
  for (size_t i = 0; i < 3; i++) {
    size_t len;
    if (value[i] == NULL)
      continue;
    len = ours[i].len + strlen(value[i]) + 1;
    if ((r->env[k] = malloc(len)) == NULL)
      return UV_ENOMEM;
    snprintf(r->env[k++], len, "%s%s", ours[i].s, value[i]);
    r->env_own = k;
  }
  for (size_t i = 0; i < count; i++) {
    const char *v = r->env_vars[i];
    bool theirs = true;
    for (size_t j = 0; j < 3 && theirs; j++)
      theirs = strncmp(v, ours[j].s, ours[j].len) != 0;
    if (theirs)
      r->env[k++] = r->env_vars[i];
  }
  return 0;
}
#undef PREFIX

static void free_env(struct run *r) {
  for (size_t i = 0; r->env != NULL && i < r->env_own; i++)
    free(r->env[i]);
  free(r->env);
  ctrun_proc_environ_free(r->env_vars);
}

/* Why the run ended: what ctrun did to it, else what the command did. */
static enum ctrun_reason reason(const struct run *r) {
  if (r->timed_out)
    return r->ended_by != CTRUN_REASON_EXIT ? r->ended_by : CTRUN_REASON_TIMEOUT;
  if (r->exited && r->termsig > 0)
    return CTRUN_REASON_SIGNAL;
  if (r->leftovers_killed > 0)
    return CTRUN_REASON_LEFTOVERS;
  return CTRUN_REASON_EXIT;
}

/* The exit code of a finished run (SPEC: exit status). */
static int exit_code(const struct run *r) {
  if (r->timed_out && !r->o->preserve_status)
    return CTRUN_EXIT_TIMEOUT;
  if (r->termsig == 0)
    return r->status; /* all of it: a Windows code may read as negative */
  return CTRUN_EXIT_SIGNAL_BASE + r->termsig;
}

/* The live runs of ours whose entry records the lock file of L: the holder
 * of that lock, if it is a tracked run.  Only the registry is trusted (it
 * is ours alone to write); the holder text in the lock file is anyone's who
 * can write the file, and never decides what is stopped.  Returns how many
 * were found; *V holds all entries, marked by MINE. */
static size_t lock_holders(struct run *r, struct ctrun_entry **v, size_t *n, bool **mine) {
  size_t found = 0;
  *v = NULL;
  *n = 0;
  *mine = NULL;
  if (r->lock.file.id[0] == '\0' || ctrun_registry_list(r->dir, v, n) != 0)
    return 0;
  *mine = calloc(*n + 1, sizeof **mine);
  for (size_t i = 0; *mine != NULL && i < *n; i++)
    if (!(*v)[i].stale && strcmp((*v)[i].lock_id, r->lock.file.id) == 0 &&
        strcmp((*v)[i].id, r->id) != 0)
      found += (*mine)[i] = true;
  return found;
}

/* Name the holder of the busy lock: a tracked run of ours by its entry,
 * else what the lock file's text says. */
static void describe_holder(struct run *r, char *buf, size_t size) {
  struct ctrun_entry *v;
  size_t n, i = 0;
  bool *mine;
  char age[32];
  if (lock_holders(r, &v, &n, &mine) > 0) {
    while (!mine[i])
      i++;
    int64_t ms = ctrun_now_ms() - v[i].started_ms;
    snprintf(buf, size, "pid %ld (%s, running for %s; run %s)", v[i].pid, v[i].name,
             ctrun_duration_format(ms > 0 ? (uint64_t)ms : 0, age, sizeof age), v[i].id);
  } else {
    ctrun_lock_holder(r->o->lock_path, buf, size);
  }
  free(mine);
  ctrun_registry_free(v, n);
}

/* --on-busy=replace: stop the tracked run that provably holds this very
 * lock file (its entry records the file's identity), then wait for the
 * lock for as long as that run may take to stop. */
static int replace_holder(struct run *r, char *err, size_t errlen) {
  struct ctrun_entry *v;
  size_t n;
  bool *mine;
  uint64_t wait = 0;
  int e = UV_EBUSY;

  if (lock_holders(r, &v, &n, &mine) == 0) {
    snprintf(err, errlen, "cannot replace it: the holder is not a tracked run");
    free(mine);
    ctrun_registry_free(v, n);
    return UV_EBUSY;
  }
  for (size_t i = 0; i < n; i++) {
    if (!mine[i])
      continue;
    ctrun_notice("replacing run %s (%s), which holds lock '%s'", v[i].id, v[i].name,
                 r->o->lock_path);
    if (ctrun_stop_request_write(r->dir, v[i].id, 0, v[i].kill_after_ms) != 0 ||
        ctrun_proc_request_stop(r->dir, &v[i]) != 0) {
      snprintf(err, errlen, "cannot replace it: cannot signal its supervisor");
      goto out;
    }
    /* The holder releases the lock once its whole tree is gone: allow it
     * its grace, and a little more for reaping. */
    if (v[i].kill_after_ms == CTRUN_DURATION_INF)
      wait = CTRUN_DURATION_INF;
    else if (wait != CTRUN_DURATION_INF && v[i].kill_after_ms + 5000 > wait)
      wait = v[i].kill_after_ms + 5000;
  }
  e = ctrun_lock_take(&r->lock, r->o->lock_path, wait, err, errlen);
  if (e == UV_EBUSY)
    snprintf(err, errlen, "it did not let go in time");
out:
  free(mine);
  ctrun_registry_free(v, n);
  return e;
}

/* The lock LOCK is busy: skip quietly (-1: exit 0, nothing run; also when
 * the queue has its one waiter already), or fail saying who holds it and
 * ERR (75).  HOLDER names the holder of a fleet lock; NULL: the lock
 * file's holder, looked up only when it is shown. */
static int busy_verdict(struct run *r, const char *lock, const char *holder, const char *err) {
  struct ctrun_run_opts *o = r->o;
  char found[256];
  if ((o->on_busy != CTRUN_BUSY_SKIP && !r->coalesced) || ctrun_verbosity > 0) {
    /* Skipping is quiet, and cheap: naming the holder reads the registry. */
    if (holder == NULL)
      describe_holder(r, found, sizeof found);
    holder = holder != NULL ? holder : found;
  }
  if (o->on_busy == CTRUN_BUSY_SKIP || r->coalesced) {
    ctrun_debug("lock '%s' is held by %s; %s %s", lock, holder,
                r->coalesced ? "another run already waits for it; coalesced into it:" : "skipping",
                o->name);
    return -1;
  }
  ctrun_error("lock '%s' is held by %s%s%s", lock, holder, err[0] ? "; " : "", err);
  return CTRUN_EXIT_LOCK_BUSY;
}

/* Take the lock file of -l, waiting up to WAIT, or say why not.  Returns 0
 * when taken, else the exit code to leave with. */
static int take_lock(struct run *r, uint64_t wait) {
  struct ctrun_run_opts *o = r->o;
  char err[512] = "", d[32];
  int waiter = -1;
  /* queue: first a look, then, as the one waiter, the wait. */
  int e = ctrun_lock_take(&r->lock, o->lock_path, o->on_busy == CTRUN_BUSY_QUEUE ? 0 : wait, err,
                          sizeof err);

  if (e == UV_EBUSY && o->on_busy == CTRUN_BUSY_REPLACE && ctrun_proc_held_signal() == 0)
    e = replace_holder(r, err, sizeof err);
  if (e == UV_EBUSY && o->on_busy == CTRUN_BUSY_QUEUE && ctrun_proc_held_signal() == 0) {
    waiter = ctrun_lock_waiter_take(r->dir, r->lock.file.id);
    if (waiter == UV_EBUSY) {
      r->coalesced = true; /* the one waiting will run after the holder: for us too */
    } else if (waiter < 0) {
      snprintf(err, sizeof err, "cannot queue for lock '%s' in '%s': %s", o->lock_path,
               ctrun_dir_path(r->dir), ctrun_strerror(waiter));
      e = waiter;
    } else {
      /* In the queue: a detached run's caller need not wait with us. */
      ctrun_detach_ready(r->detach, 0, true, r->out.log_fd);
      ctrun_debug("lock '%s' is busy; waiting in the queue", o->lock_path);
      e = ctrun_lock_take(&r->lock, o->lock_path, wait, err, sizeof err);
      ctrun_lock_waiter_release(waiter);
      if (e == UV_EBUSY)
        snprintf(err, sizeof err, "still held after waiting %s in the queue",
                 ctrun_duration_format_exact(wait, d, sizeof d));
    }
  }
  /* A signal ended the wait: the caller says so (ended_early). */
  if (e == 0 || ctrun_proc_held_signal() != 0)
    return 0;
  if (e != UV_EBUSY) {
    ctrun_error("%s", err);
    return CTRUN_EXIT_FAILURE;
  }
  return busy_verdict(r, o->lock_path, NULL, err);
}

/* The queue's name for a fleet lock: its URL's, hashed (FNV-1a). */
static void fleet_queue_id(const char *where, char *id, size_t size) {
  unsigned long long h = 14695981039346656037ULL;
  for (const unsigned char *c = (const unsigned char *)where; *c; c++)
    h = (h ^ *c) * 1099511628211ULL;
  snprintf(id, size, "fleet-%016llx", h);
}

/* Take the fleet lock ARG, waiting up to WAIT, or say why not.  Returns 0
 * when taken, else the exit code to leave with (-1: skip). */
static int take_lease(struct run *r, const char *arg, uint64_t wait) {
  struct ctrun_run_opts *o = r->o;
  struct ctrun_lease_url u;
  struct ctrun_lease_holder who = { (long)uv_os_getpid(), r->id, o->name, r->started_ms };
  struct ctrun_lease *l = NULL;
  char err[1200] = "", d[32];
  int e = ctrun_lease_url_parse(arg, &u, err, sizeof err); /* parsed with the options */

  if (e == 0)
    e = loop_open(r);
  if (e == 0)
    e = ctrun_lease_new(&r->loop, &u, o->lock_ttl_ms, &who, &l);
  if (e != 0) {
    if (e == UV_EPERM)
      ctrun_error("lock '%s': a password in its parameters would show in ps; use ~/.pgpass, "
                  "PGPASSFILE or a service file", u.where);
    else if (u.password_file[0] != '\0')
      ctrun_error("lock '%s': cannot read the password file '%s': %s", u.where, u.password_file,
                  ctrun_strerror(e));
    else
      ctrun_error("lock '%s': %s", u.where, ctrun_strerror(e));
    return CTRUN_EXIT_FAILURE;
  }
  r->lease[r->nleases++] = l;
  /* queue: first a look, then, as the one waiter, the wait. */
  e = ctrun_lease_take(l, o->on_busy == CTRUN_BUSY_QUEUE ? 0 : wait, err, sizeof err);
  if (e == UV_EBUSY && o->on_busy == CTRUN_BUSY_QUEUE && ctrun_proc_held_signal() == 0) {
    char id[40];
    int waiter;
    fleet_queue_id(u.where, id, sizeof id);
    waiter = ctrun_lock_waiter_take(r->dir, id);
    if (waiter == UV_EBUSY) {
      r->coalesced = true;
    } else if (waiter < 0) {
      ctrun_error("cannot queue for lock '%s' in '%s': %s", u.where, ctrun_dir_path(r->dir),
                  ctrun_strerror(waiter));
      return CTRUN_EXIT_FAILURE;
    } else {
      ctrun_detach_ready(r->detach, 0, true, r->out.log_fd);
      ctrun_debug("lock '%s' is busy; waiting in the queue", u.where);
      e = ctrun_lease_take(l, wait, err, sizeof err);
      ctrun_lock_waiter_release(waiter);
    }
  }
  if (e == 0 || e == UV_ECANCELED || ctrun_proc_held_signal() != 0)
    return 0;
  if (e == UV_EBUSY) {
    char holder[600];
    snprintf(holder, sizeof holder, "%s", err);
    if (wait != 0 && !r->coalesced)
      snprintf(err, sizeof err, "still held after waiting %s",
               ctrun_duration_format_exact(wait, d, sizeof d));
    else
      err[0] = '\0';
    return busy_verdict(r, u.where, holder, err);
  }
  /* The server cannot be reached, or refused: --lock-unavailable. */
  if (o->lock_unavailable_skip) {
    ctrun_debug("lock '%s' is unavailable (%s); skipping %s", u.where, err, o->name);
    return -1;
  }
  ctrun_error("lock '%s' is unavailable: %s", u.where, err);
  return CTRUN_EXIT_LOCK_BUSY;
}

/* Take the locks of -l in the order given, -w bounding the whole wait.
 * Returns 0 when all are taken (or a held signal ended the wait: the
 * caller says so), else the exit code to leave with (-1: skip). */
static int take_locks(struct run *r) {
  struct ctrun_run_opts *o = r->o;
  uint64_t t0 = uv_hrtime();
  int code = 0;
  for (int i = 0; i < o->nlocks && code == 0 && ctrun_proc_held_signal() == 0; i++) {
    uint64_t spent = (uv_hrtime() - t0) / 1000000, wait = o->lock_wait_ms;
    if (wait != CTRUN_DURATION_INF)
      wait = spent < wait ? wait - spent : 0;
    code = o->locks[i] == o->lock_path ? take_lock(r, wait) : take_lease(r, o->locks[i], wait);
  }
  r->lock_wait_ms = (int64_t)((uv_hrtime() - t0) / 1000000);
  if (r->nleases > 0)
    snprintf(r->lock_token, sizeof r->lock_token, "%s", ctrun_lease_token(r->lease[0]));
  return code;
}

/* -d with a lock: what a busy lock means is decided here, in the caller,
 * before anything forks, whenever it needs no wait: skip and fail, and a
 * queue that another run already waits in.  A skipped hook then costs no
 * supervisor.  Returns -1 when the run goes on, detached (the supervisor
 * takes the lock for real; should it be busy again by then, it decides as
 * it always did), else the exit code, with *SKIPPED set for a skip. */
static int busy_in_caller(struct run *r, bool *skipped) {
  struct ctrun_run_opts *o = r->o;
  char err[512];
  int e, code;

  if (o->on_busy == CTRUN_BUSY_REPLACE || (o->lock_wait_ms != 0 && o->on_busy != CTRUN_BUSY_QUEUE))
    return -1;
  e = ctrun_lock_take(&r->lock, o->lock_path, 0, err, sizeof err);
  if (e != UV_EBUSY) {
    /* Free (or an error, which the supervisor reports as it always did). */
    if (e == 0) {
      ctrun_fd_close(r->lock.fd);
      r->lock.fd = -1;
    }
    return -1;
  }
  /* Only what the verdict needs: the state directory to name the holder
   * or to queue in, the report for a skip. */
  if ((o->on_busy != CTRUN_BUSY_SKIP || ctrun_verbosity > 0) &&
      ctrun_statedir_open(&r->dir, err, sizeof err) != 0)
    return -1;
  if (o->on_busy == CTRUN_BUSY_QUEUE) {
    int waiter = ctrun_lock_waiter_take(r->dir, r->lock.file.id);
    if (waiter != UV_EBUSY) {
      ctrun_lock_waiter_release(waiter); /* a place in the queue: the supervisor takes it */
      ctrun_dir_close(r->dir);
      r->dir = NULL;
      return -1;
    }
    r->coalesced = true;
  }
  if (o->report_path != NULL && ctrun_output_open(&r->out, o, r->id, err, sizeof err) != 0) {
    ctrun_error("%s", err);
    return CTRUN_EXIT_FAILURE;
  }
  r->started_ms = ctrun_now_ms();
  code = busy_verdict(r, o->lock_path, NULL, "");
  if (code < 0)
    code = 0;
  *skipped = true;
  return code;
}

/* A signal that ends a run arrived before the loop watched for it (while
 * waiting for the lock, say): nothing runs, and ctrun exits as the command
 * would have, 128+N. */
static bool ended_early(struct run *r, int *code) {
  int sig = ctrun_proc_held_signal();
  if (sig == 0)
    return false;
  ctrun_notice("run %s (%s) ended by signal %s before it started", r->id, r->o->name,
               ctrun_signal_name(sig) ? ctrun_signal_name(sig) : "?");
  *code = CTRUN_EXIT_SIGNAL_BASE + sig;
  r->early_signal = sig;
  return true;
}

static void fill_entry(struct run *r) {
  struct ctrun_entry *e = &r->entry;
  memset(e, 0, sizeof *e);
  memcpy(e->id, r->id, sizeof e->id);
  snprintf(e->name, sizeof e->name, "%s", r->o->name);
  e->pid = (long)uv_os_getpid(); /* proven by its entry (ctrun_record_write) */
  /* Only an entry that can outlive this boot needs to tell which boot it
   * is of: reading the id costs a run 0.015 ms. */
  if (ctrun_dir_outlives_boot(r->dir))
    ctrun_proc_boot_id(e->boot_id, sizeof e->boot_id);
  e->started_ms = r->started_ms;
  e->signal = r->o->signal;
  e->kill_after_ms = r->o->kill_after_ms;
  e->lock = (char *)r->o->lock_path;
  memcpy(e->lock_id, r->lock.file.id, sizeof e->lock_id);
  for (int i = 0; i < r->nleases && i < CTRUN_ENTRY_LEASES; i++) {
    struct ctrun_entry_lease *l = &e->leases[e->nleases++];
    snprintf(l->backend, sizeof l->backend, "%s", ctrun_lease_backend(r->lease[i]));
    snprintf(l->token, sizeof l->token, "%s", ctrun_lease_token(r->lease[i]));
    snprintf(l->where, sizeof l->where, "%s", ctrun_lease_where(r->lease[i]));
    l->expires_ms = ctrun_lease_expires_ms(r->lease[i]);
  }
  e->log = (char *)r->o->log_path;
  e->argv = r->o->argv;
  e->argc = r->o->argc;
}

/* The exit code for a command that could not be started: 127 not found,
 * 126 found but not executable, and 125 where ctrun itself ran out of
 * processes, descriptors or memory (the command may be fine). */
static int spawn_failure_code(int e) {
  switch (e) {
  case UV_ENOENT: return CTRUN_EXIT_NOT_FOUND;
  case UV_EAGAIN: case UV_EMFILE: case UV_ENFILE: case UV_ENOMEM: return CTRUN_EXIT_FAILURE;
  default: return CTRUN_EXIT_CANNOT_EXEC;
  }
}

/* Whether a fleet lock is lost, or runs out before a command could start:
 * then none does. */
static bool leases_lost(struct run *r) {
  for (int i = 0; i < r->nleases && !r->lock_lost; i++)
    if (!ctrun_lease_valid_for(r->lease[i], 0)) {
      char why[700];
      snprintf(why, sizeof why, "lock '%s' lost before the command could start",
               ctrun_lease_where(r->lease[i]));
      r->lock_lost = true;
      say(r, why);
    }
  return r->lock_lost;
}

/* Start one attempt: spawn the command into the container, held, record
 * it (again: its pid and deadline are new), let it run, arm its deadline
 * and the policies.  Returns 0; or, when it could not start, ends the run
 * with the exit code that says why and returns that code. */
static int start_attempt(struct run *r) {
  struct ctrun_run_opts *o = r->o;
  struct ctrun_spawn s;
  int e;

  r->exited = r->timed_out = r->killed_hard = r->stopping = r->done = false;
  r->draining = r->drained = false;
  r->ended_by = CTRUN_REASON_EXIT;
  r->status = -1;
  r->termsig = 0;
  r->leftovers_killed = 0;
  r->attempt_started_ms = ctrun_now_ms();
  r->attempt[r->attempts].exit_code = 0;
  r->attempt[r->attempts].reason = CTRUN_REASON_EXIT;
  r->attempt[r->attempts].duration_ms = 0;
  r->attempts++;
  if (leases_lost(r)) {
    r->timed_out = true;
    r->ended_by = CTRUN_REASON_LOCK_LOST;
    r->attempt[r->attempts - 1].exit_code = r->code = CTRUN_EXIT_TIMEOUT;
    r->attempt[r->attempts - 1].reason = CTRUN_REASON_LOCK_LOST;
    close_handles(r);
    return r->code;
  }
  memset(&s, 0, sizeof s);
  s.argv = o->argv;
  s.env = r->env;
  s.run_id = r->id;
  s.stdio[0] = -1;
  s.stdio[1] = s.stdio[2] = r->out.child_fd;
  if (r->relay != NULL && (e = ctrun_relay_open(r->relay, &s.stdio[1], &s.stdio[2])) != 0) {
    ctrun_error("cannot make pipes for the output: %s", ctrun_strerror(e));
    r->attempt[r->attempts - 1].exit_code = r->code = CTRUN_EXIT_FAILURE;
    close_handles(r);
    return r->code;
  }
  /* The command is held before its first instruction while the run is
   * recorded, with its pid, so the entry is written once and no process of
   * the command ever runs unrecorded. */
  e = ctrun_tree_spawn(r->tree, &s);
  if (r->relay != NULL)
    ctrun_relay_spawned(r->relay);
  if (e == 0 && o->has_nice && (e = ctrun_tree_set_nice(r->tree, o->nice)) != 0) {
    ctrun_error("cannot run the command at niceness %d: %s", o->nice, ctrun_strerror(e));
    r->fatal = true;
    r->stopping = true;
    hard_kill(r); /* the held command never runs */
    check(r);
    return 0;
  }
  if (e == 0) {
    r->entry.child_pid = ctrun_tree_pid(r->tree);
    r->entry.pgid = ctrun_tree_pgid(r->tree);
    ctrun_tree_pid_start(r->tree, &r->entry.child_start);
    if (o->timeout_ms != 0)
      r->entry.deadline_ms = ctrun_now_ms() + (int64_t)o->timeout_ms;
    e = ctrun_record_write(&r->rec, r->dir, &r->entry);
    if (e != 0) {
      ctrun_error("cannot record the run in '%s': %s", ctrun_dir_path(r->dir), ctrun_strerror(e));
      r->fatal = true;
      r->stopping = true;
      hard_kill(r); /* the held command never runs */
      check(r);
      return 0;
    }
    e = ctrun_tree_start(r->tree);
  }
  if (e != 0) {
    ctrun_error("cannot run '%s': %s", o->argv[0], ctrun_strerror(e));
    r->attempt[r->attempts - 1].exit_code = r->code = spawn_failure_code(e);
    close_handles(r);
    return r->code;
  }
  ctrun_detach_ready(r->detach, 0, true, r->out.log_fd);
  ctrun_debug("run %s (%s) started: pid %ld", r->id, o->name, r->entry.child_pid);
  if (r->attempts == 1)
    ctrun_ping_start(&r->ping, r->id, o->name, r->rid);

  uv_update_time(&r->loop); /* the spawn may have taken a while */
  if (o->timeout_ms != 0)
    uv_timer_start(&r->deadline, on_deadline, o->timeout_ms, 0);
  ctrun_govern_start(r->govern);
  check(r);
  return 0;
}

static void on_delay(uv_timer_t *h) { start_attempt(h->data); }

/* The attempt's tree is gone, its output read: note how it ended, then
 * retry (--retry) or end the run. */
static void attempt_over(struct run *r) {
  struct ctrun_attempt *a = &r->attempt[r->attempts - 1];
  char d[32], how[80], text[200];
  uint64_t ms;

  uv_timer_stop(&r->deadline);
  uv_timer_stop(&r->grace);
  uv_timer_stop(&r->poll);
  ctrun_govern_stop(r->govern);
  a->exit_code = r->fatal ? CTRUN_EXIT_FAILURE : exit_code(r);
  a->reason = reason(r);
  a->ok = !r->fatal && ctrun_exit_ok(r->o->ok_exit, a->reason, a->exit_code);
  a->duration_ms = ctrun_now_ms() - r->attempt_started_ms;
  if (r->fatal || r->ending || r->attempts > r->o->retry || !ctrun_retry_wanted(&r->o->retry_on, a)) {
    r->code = a->exit_code;
    close_handles(r);
    return;
  }
  /* Nothing of this attempt's tree is left (the container is empty): the
   * next one starts clean, after the delay, with the lock still held. */
  ms = ctrun_retry_delay_ms(r->o->retry_delay_ms, r->attempts, ctrun_retry_jitter());
  snprintf(text, sizeof text, "attempt %d of %d: %s; retrying in %s", r->attempts,
           r->o->retry + 1, ctrun_reason_text(a->reason, a->exit_code, r->termsig, how, sizeof how),
           ctrun_duration_format_exact(ms, d, sizeof d));
  say(r, text);
  r->entry.deadline_ms = 0;
  uv_timer_start(&r->delay, on_delay, ms, 0);
}

/* Set up the loop, the container and what watches it, then run the
 * attempts until the last one's tree is gone.  Returns the exit code. */
static int supervise(struct run *r) {
  struct ctrun_run_opts *o = r->o;
  int e, code;

  e = loop_open(r);
  if (e == 0)
    e = ctrun_tree_new(&r->loop, on_tree, r, &r->tree);
  if (e != 0) {
    ctrun_error("cannot set up the event loop: %s", ctrun_strerror(e));
    release_leases(r);
    if (r->loop_ready)
      uv_run(&r->loop, UV_RUN_DEFAULT);
    return CTRUN_EXIT_FAILURE;
  }
  uv_timer_init(&r->loop, &r->deadline);
  uv_timer_init(&r->loop, &r->grace);
  uv_timer_init(&r->loop, &r->poll);
  uv_timer_init(&r->loop, &r->delay);
  r->deadline.data = r->grace.data = r->poll.data = r->delay.data = r;
  r->attempt = calloc((size_t)o->retry + 1, sizeof *r->attempt);
  {
    struct ctrun_govern_hooks hooks = { r, on_child_killed, on_idle, on_limit };
    struct ctrun_limits l = { o->memory_bytes, o->max_procs, o->cpu_time_ms };
    int g = r->attempt == NULL ? UV_ENOMEM : 0;
    /* The kernel enforces the limits where it can; else ctrun samples. */
    if (g == 0 && (l.memory_bytes != 0 || l.max_procs != 0 || l.cpu_time_ms != 0)) {
      g = ctrun_tree_set_limits(r->tree, r->id, &l);
      r->limits_by = g == 0 ? "kernel" : "sampling";
      snprintf(r->entry.limits_by, sizeof r->entry.limits_by, "%s", r->limits_by);
      r->entry.container = (char *)ctrun_tree_container(r->tree);
      if (g == UV_ENOTSUP)
        g = 0;
    }
    if (g == 0)
      g = ctrun_govern_new(&r->loop, r->tree, o, r->limits_by != NULL && r->limits_by[0] == 's',
                           &hooks, &r->govern);
    if (g != 0) {
      if (g == UV_ENOSYS)
        ctrun_error("--child-timeout, --memory, --max-procs and --cpu-time need a process table, "
                    "which this platform does not offer");
      else
        ctrun_error("cannot set up the run: %s", ctrun_strerror(g));
      r->done = true;
      close_handles(r);
      uv_run(&r->loop, UV_RUN_DEFAULT);
      return CTRUN_EXIT_FAILURE;
    }
  }
  e = ctrun_signals_watch(&r->loop, on_signal, r, &r->signals);
  if (e == 0)
    e = ctrun_tree_watch_stop(r->tree, r->id, on_stop);
  /* The fleet locks are renewed from now on; one lost ends the run. */
  for (int i = 0; e == 0 && i < r->nleases; i++) {
    struct ctrun_lease_hooks hooks = { r, on_lock_lost, on_lease_renewed };
    ctrun_lease_hold(r->lease[i], &hooks);
  }
  /* --idle-timeout: the output goes through ctrun, to where it would have
   * gone: one place for both streams (the log, the capture file, a
   * detached run's /dev/null), or ctrun's own stdout and stderr. */
  if (e == 0 && o->idle_timeout_ms != 0) {
    int fd = r->out.child_fd;
    e = ctrun_relay_new(&r->loop, fd >= 0 ? fd : 1, fd >= 0 ? fd : 2, ctrun_govern_output,
                        r->govern, &r->relay);
  }
  if (e == 0)
    e = make_env(r, r->lock_token[0] ? r->lock_token : NULL);
  code = CTRUN_EXIT_FAILURE;
  if (e != 0 || ended_early(r, &code)) {
    if (code == CTRUN_EXIT_FAILURE)
      ctrun_error("cannot set up the run: %s", ctrun_strerror(e));
    r->done = true;
    close_handles(r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    return code;
  }
  start_attempt(r);
  uv_run(&r->loop, UV_RUN_DEFAULT);
  return r->code;
}

/* The run's result, once it is over: what every sink reads. */
static void fill_result(const struct run *r, int code, bool skipped, struct ctrun_result *res) {
  memset(res, 0, sizeof *res);
  res->id = r->id;
  res->rid = r->rid;
  res->name = r->o->name;
  res->argv = r->o->argv;
  res->lock = r->o->lock_path;
  res->started_ms = r->started_ms;
  res->ended_ms = r->ended_ms;
  res->lock_wait_ms = r->lock_wait_ms;
  res->exit_code = code;
  res->status = r->status;
  res->termsig = r->termsig;
  res->timed_out = r->timed_out;
  res->killed_hard = r->any_killed_hard;
  res->leftovers_killed = r->leftovers_total;
  res->children_killed = r->entry.children_killed;
  res->peak_procs = r->peak_procs;
  /* The kernel's peak of the whole tree where it keeps one; else what the
   * sampler saw, or the largest single process, whichever is more. */
  res->peak_rss_bytes = r->usage.peak_is_tree || r->usage.peak_rss_bytes > r->peak_rss
                            ? r->usage.peak_rss_bytes
                            : r->peak_rss;
  res->cpu_user_ms = r->usage.cpu_user_ms;
  res->cpu_sys_ms = r->usage.cpu_sys_ms;
  res->limits_by = r->limits_by;
  res->lock_token = r->lock_token[0] ? r->lock_token : NULL;
  res->unkillable = r->nunkillable;
  res->unkillable_pid = r->unkillable;
  res->attempts = skipped ? 0 : r->attempts;
  res->attempt = r->attempt;
  if (skipped)
    res->reason = CTRUN_REASON_SKIPPED;
  else if (r->early_signal != 0 && r->attempts == 0)
    res->reason = CTRUN_REASON_SIGNAL; /* before anything ran */
  else if (r->between)
    res->reason = r->ended_by; /* a signal or ctrun stop during the wait to retry */
  else if (r->attempts > 0)
    res->reason = r->attempt[r->attempts - 1].reason;
  else
    res->reason = reason(r);
  /* A skipped run is no success (nor a failure: the history tells). */
  res->ok = !skipped && !r->between && r->attempts > 0 && r->attempt[r->attempts - 1].ok &&
            code == r->attempt[r->attempts - 1].exit_code;
}

/* --jitter: wait a random time below the bound before the lock, recorded
 * as waiting (ps shows it), so that runs that cron starts together do not
 * run together.  A signal that ends a run ends the wait at once: returns
 * that signal (held), or 0 once the time is up. */
static int jitter(struct run *r) {
  uint64_t wait = (uint64_t)(ctrun_retry_jitter() * (double)r->o->jitter_ms), t0 = uv_hrtime();
  char d[32];
  fill_entry(r);
  if (ctrun_record_write(&r->rec, r->dir, &r->entry) != 0)
    ctrun_debug("run %s (%s): cannot record the wait", r->id, r->o->name);
  ctrun_debug("run %s (%s): waiting %s (--jitter)", r->id, r->o->name,
              ctrun_duration_format_exact(wait, d, sizeof d));
  while (ctrun_proc_held_signal() == 0) {
    uint64_t gone = (uv_hrtime() - t0) / 1000000;
    if (gone >= wait)
      return 0;
    /* Short naps: a held signal is seen within one. */
    uv_sleep((unsigned)(wait - gone < 20 ? wait - gone : 20));
  }
  return ctrun_proc_held_signal();
}

static void finish_exited(uv_process_t *p, int64_t status, int sig) {
  struct { int64_t status; int sig; } *end = p->data;
  end->status = status;
  end->sig = sig;
}

/* --on-finish: after the run, CMD through the shell, as a run of its own:
 * this program again, in a process of its own (-t 30s), so that it is
 * contained like any run and nothing of it is left; under this run's id
 * and name (CTRUN_FINISH_OF), so that the command sees them, and ps too
 * while it runs, and with no history of its own.  Its failure is said; it
 * changes nothing of the run's exit. */
static void on_finish(struct run *r, const struct ctrun_result *res) {
  char exe[4096], code[16], ms[32];
  size_t len = sizeof exe;
  uv_loop_t loop;
  uv_process_t proc;
  uv_process_options_t po;
  uv_stdio_container_t stdio[3];
  struct { int64_t status; int sig; } end = { -1, 0 };
  char *argv[16];
  int n = 0, e;

  if ((e = uv_exepath(exe, &len)) != 0 || (e = uv_loop_init(&loop)) != 0) {
    ctrun_error("run %s (%s): cannot run --on-finish: %s", r->id, r->o->name, ctrun_strerror(e));
    return;
  }
  argv[n++] = exe;
  argv[n++] = "-t";
  argv[n++] = "30";
  argv[n++] = "-n";
  argv[n++] = r->o->name;
  if (r->o->verbosity != 0)
    argv[n++] = r->o->verbosity < 0 ? "-q" : "-v";
  argv[n++] = "--";
#ifdef _WIN32
  argv[n++] = "cmd.exe";
  argv[n++] = "/d";
  argv[n++] = "/c";
#else
  argv[n++] = "/bin/sh";
  argv[n++] = "-c";
#endif
  argv[n++] = (char *)r->o->on_finish;
  argv[n] = NULL;
  snprintf(code, sizeof code, "%u", (unsigned)res->exit_code);
  snprintf(ms, sizeof ms, "%lld", (long long)(res->ended_ms - res->started_ms));
  uv_os_setenv("CTRUN_EXIT", code);
  uv_os_setenv("CTRUN_REASON", ctrun_reason_name(res->reason));
  uv_os_setenv("CTRUN_DURATION_MS", ms);
  uv_os_setenv("CTRUN_LOG", r->o->log_path ? r->o->log_path : "");
  uv_os_setenv("CTRUN_FINISH_OF", r->id);
  memset(&po, 0, sizeof po);
  for (int i = 0; i < 3; i++) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  po.file = exe;
  po.args = argv;
  po.stdio = stdio;
  po.stdio_count = 3;
  proc.data = &end;
  po.exit_cb = finish_exited;
#ifdef _WIN32
  /* Not in libuv's own job: the hook's ctrun makes a job of its own, and
   * one in a job without nesting (Wine) could not. */
  po.flags = UV_PROCESS_DETACHED;
#endif
  e = uv_spawn(&loop, &proc, &po);
  uv_os_unsetenv("CTRUN_FINISH_OF");
  if (e == 0) {
    uv_run(&loop, UV_RUN_DEFAULT);
  } else {
    ctrun_error("run %s (%s): cannot run --on-finish: %s", r->id, r->o->name, ctrun_strerror(e));
  }
  uv_close((uv_handle_t *)&proc, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (e == 0 && (end.status != 0 || end.sig != 0))
    ctrun_error("run %s (%s): --on-finish exited %lld", r->id, r->o->name,
                end.sig ? (long long)(CTRUN_EXIT_SIGNAL_BASE + end.sig) : (long long)end.status);
}

/* Every finished run, skipped ones too, goes into its name's history; a
 * failure to write it is said, and changes nothing else. */
static void record_history(struct run *r, const struct ctrun_result *res) {
  char err[512];
  int e;
  if (r->o->no_history)
    return;
  if (r->dir == NULL && ctrun_statedir_open(&r->dir, err, sizeof err) != 0)
    return;
  e = ctrun_history_append(r->dir, res);
  if (e != 0)
    ctrun_error("cannot add run %s (%s) to the history in '%s': %s", r->id, r->o->name,
                ctrun_dir_path(r->dir), ctrun_strerror(e));
}

int ctrun_run(struct ctrun_run_opts *o) {
  struct run run, *r = &run;
  struct ctrun_detach detach = { -1, NULL };
  struct ctrun_result res;
  char err[512];
  int code = CTRUN_EXIT_FAILURE, e;
  bool skipped = false, started = false;

  memset(r, 0, sizeof *r);
  r->o = o;
  r->lock.fd = -1;
  r->rec.fd = -1;
  r->out.child_fd = r->out.log_fd = r->out.capture_fd = r->out.report_fd = -1;
  r->status = -1;
  ctrun_verbosity = o->verbosity;
  /* The --on-finish of run ID: that run's id, and no history. */
  {
    const char *of = getenv("CTRUN_FINISH_OF");
    if (of != NULL && ctrun_id_valid(of)) {
      snprintf(r->id, sizeof r->id, "%s", of);
      o->no_history = true;
    } else {
      ctrun_new_run_id(r->id);
    }
    uv_os_unsetenv("CTRUN_FINISH_OF");
  }
  ctrun_new_uuid(r->rid);
  detach.run_id = r->id;
  r->detach = &detach;

  /* What the platform cannot do is refused before anything runs. */
  {
    const char *needs = o->child_timeout_ms != 0 ? "--child-timeout"
                        : o->memory_bytes != 0   ? "--memory"
                        : o->max_procs != 0      ? "--max-procs"
                        : o->cpu_time_ms != 0    ? "--cpu-time"
                                                 : NULL;
    if (needs != NULL && !ctrun_tree_can_list()) {
      ctrun_error("%s needs a process table, which this platform does not offer", needs);
      return CTRUN_EXIT_FAILURE;
    }
  }
  if (ctrun_ping_open(&r->ping, o) != 0)
    return CTRUN_EXIT_FAILURE;
  if (o->detach && o->lock_path != NULL && o->nlocks == 1) {
    code = busy_in_caller(r, &skipped);
    if (code >= 0)
      goto out;
    code = CTRUN_EXIT_FAILURE;
  }
  if (o->detach) {
    e = ctrun_detach_start(&detach);
    if (e < 0) {
      ctrun_error("cannot detach: %s", ctrun_strerror(e));
      return CTRUN_EXIT_FAILURE;
    }
    if (e == 1) {
      if (ctrun_detach_wait(&detach, &code, &started) != 0) {
        ctrun_error("the detached run %s failed to start", r->id);
        return CTRUN_EXIT_FAILURE;
      }
      if (started) {
        printf("%s\n", r->id);
        fflush(stdout);
      }
      return code;
    }
  }
  r->started_ms = ctrun_now_ms();
  e = ctrun_proc_protect(err, sizeof err);
  if (e == 0)
    e = ctrun_statedir_open(&r->dir, err, sizeof err);
  if (e != 0) {
    ctrun_error("%s", err);
    goto out;
  }
  if (ctrun_output_open(&r->out, o, r->id, err, sizeof err) != 0) {
    ctrun_error("%s", err);
    goto out;
  }
  if (o->jitter_ms != 0) {
    if (jitter(r) != 0) {
      ended_early(r, &code);
      goto out;
    }
    r->started_ms = ctrun_now_ms(); /* the wait is no part of the run */
  }
  if (o->nlocks > 0) {
    code = take_locks(r);
    if (ended_early(r, &code))
      goto out;
    if (code != 0) {
      skipped = true;
      if (code < 0)
        code = 0;
      goto out;
    }
    r->started_ms = ctrun_now_ms();
    ctrun_lock_set_holder(&r->lock, (long)uv_os_getpid(), r->id, o->name, r->started_ms);
  }
  fill_entry(r);
  ctrun_output_start(&r->out, o, r->id, r->started_ms);
  code = supervise(r);
  r->ended_ms = ctrun_now_ms();
  /* The tree is gone: now the lock may go, and the run with it. */
  ctrun_lock_release(&r->lock);
  ctrun_record_remove(&r->rec);
  fill_result(r, code, false, &res);
  ctrun_output_finish(&r->out, &res);
  ctrun_report_write(&r->out, &res);
  record_history(r, &res);
  ctrun_ping_finish(&r->ping, &res, &r->out, o->log_path);
  uv_loop_close(&r->loop);
  free_env(r);
  ctrun_output_close(&r->out);
  ctrun_dir_close(r->dir);
  if (o->on_finish != NULL)
    on_finish(r, &res);
  free(r->attempt);
  ctrun_detach_ready(&detach, code, false, -1);
  return code;
out:
  r->ended_ms = ctrun_now_ms();
  release_leases(r);
  if (r->loop_ready) {
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
  }
  ctrun_lock_release(&r->lock);
  ctrun_record_remove(&r->rec);
  if (skipped || (r->early_signal != 0 && r->dir != NULL)) {
    fill_result(r, code, skipped, &res);
    ctrun_report_write(&r->out, &res);
    record_history(r, &res);
  }
  ctrun_output_close(&r->out);
  ctrun_dir_close(r->dir);
  ctrun_detach_ready(&detach, code, false, -1);
  return code;
}
