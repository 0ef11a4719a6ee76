/* --child-timeout and --idle-timeout: policies on a running tree. */
#include "ctrun/govern.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrun/duration.h"
#include "ctrun/msg.h"

/* A member sent the soft signal, until it is gone. */
struct doomed {
  long pid;
  uint64_t start;
  uint64_t hard_at; /* loop time of the hard kill; UINT64_MAX: never */
  bool killed_hard;
};

struct ctrun_govern {
  const struct ctrun_run_opts *o;
  struct ctrun_govern_hooks hooks;
  struct ctrun_tree *tree;
  uv_timer_t sampler, idle;
  int open_handles;
  bool watching;
  /* --child-timeout */
  uint64_t interval_ms;
  struct doomed *doomed;
  size_t ndoomed, cap;
  int killed;
  /* --idle-timeout: the loop time output was last seen; held back */
  uint64_t last_output;
  bool held;
};

uint64_t ctrun_govern_interval_ms(uint64_t child_timeout_ms) {
  uint64_t ms = child_timeout_ms / 10;
  return ms < 50 ? 50 : ms > 1000 ? 1000 : ms;
}

static struct doomed *find_doomed(struct ctrun_govern *g, const struct ctrun_member *m) {
  for (size_t i = 0; i < g->ndoomed; i++)
    if (g->doomed[i].pid == m->pid && g->doomed[i].start == m->start)
      return &g->doomed[i];
  return NULL;
}

/* Whether every member but M is the command: M is then the only other
 * process of the tree, as a daemon that the command started is. */
static bool only_other(const struct ctrun_member *v, size_t n, const struct ctrun_member *m) {
  for (size_t i = 0; i < n; i++)
    if (&v[i] != m && !v[i].command)
      return false;
  return true;
}

static void hit(struct ctrun_govern *g, const struct ctrun_member *v, size_t n,
                const struct ctrun_member *m, uint64_t now) {
  const struct ctrun_run_opts *o = g->o;
  char text[400], limit[32];
  bool hard = o->signal == SIGKILL || o->kill_after_ms == 0;
  struct doomed *d;

  if (ctrun_tree_signal_member(g->tree, m, hard ? SIGKILL : o->signal) != 0)
    return; /* gone already, or no longer that process */
#ifdef SIGCONT
  if (!hard)
    ctrun_tree_signal_member(g->tree, m, SIGCONT); /* a stopped process cannot act on it */
#endif
  if (g->ndoomed == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 8;
    struct doomed *bigger = realloc(g->doomed, cap * sizeof *bigger);
    if (bigger == NULL)
      return;
    g->doomed = bigger;
    g->cap = cap;
  }
  d = &g->doomed[g->ndoomed++];
  d->pid = m->pid;
  d->start = m->start;
  d->killed_hard = hard;
  d->hard_at = hard || o->kill_after_ms == CTRUN_DURATION_INF ? UINT64_MAX : now + o->kill_after_ms;
  g->killed++;
  snprintf(text, sizeof text, "killed hung child %s (pid %ld) after %s", m->name[0] ? m->name : "?",
           m->pid, ctrun_duration_format_exact(o->child_timeout_ms, limit, sizeof limit));
  /* A helper that daemonizes itself makes its daemon a child: the first
   * victim being the only other process of the tree is the sign. */
  if (g->killed == 1 && only_other(v, n, m))
    snprintf(text + strlen(text), sizeof text - strlen(text),
             "; it was the only process besides the command: if the command daemonizes itself, "
             "run it in the foreground instead and let ctrun -d do the daemonizing");
  g->hooks.child_killed(g->hooks.data, text);
}

/* Hit every member past the child timeout; kill hard those whose -k is up. */
static void look(struct ctrun_govern *g, uint64_t now) {
  struct ctrun_member *v;
  size_t n, kept = 0;

  if (ctrun_tree_members(g->tree, &v, &n) != 0)
    return;
  for (size_t i = 0; i < n && g->watching; i++) {
    struct doomed *d;
    if (v[i].command)
      continue;
    d = find_doomed(g, &v[i]);
    if (d != NULL) {
      if (!d->killed_hard && now >= d->hard_at) {
        d->killed_hard = true;
        ctrun_tree_signal_member(g->tree, &v[i], SIGKILL);
      }
    } else if (v[i].age_ms >= g->o->child_timeout_ms) {
      hit(g, v, n, &v[i], now);
    }
  }
  /* Forget those that are gone. */
  for (size_t i = 0; i < g->ndoomed; i++) {
    bool seen = false;
    for (size_t j = 0; j < n && !seen; j++)
      seen = v[j].pid == g->doomed[i].pid && v[j].start == g->doomed[i].start;
    if (seen)
      g->doomed[kept++] = g->doomed[i];
  }
  g->ndoomed = kept;
  free(v);
}

/* One tick of the sampler: one snapshot of the tree, read by the child
 * timeout.  The next tick comes after the interval, or after ten times
 * what this one took if that is longer: on a host whose table is huge, or
 * under a fork storm, the look must not starve the loop and its deadline. */
static void on_sample(uv_timer_t *h) {
  struct ctrun_govern *g = h->data;
  uint64_t t0 = uv_hrtime(), took;
  if (!g->watching)
    return;
  look(g, uv_now(h->loop));
  took = (uv_hrtime() - t0) / 1000000;
  if (g->watching)
    uv_timer_start(&g->sampler, on_sample, took * 10 > g->interval_ms ? took * 10 : g->interval_ms, 0);
}

static void on_idle(uv_timer_t *h) {
  struct ctrun_govern *g = h->data;
  uint64_t now = uv_now(h->loop), quiet = now - g->last_output;
  if (!g->watching)
    return;
  if (g->held) {
    uv_timer_start(&g->idle, on_idle, g->o->idle_timeout_ms, 0);
    return;
  }
  if (quiet < g->o->idle_timeout_ms) {
    uv_timer_start(&g->idle, on_idle, g->o->idle_timeout_ms - quiet, 0);
    return;
  }
  g->hooks.idle(g->hooks.data);
}

void ctrun_govern_output(void *data, bool held) {
  struct ctrun_govern *g = data;
  g->last_output = uv_now(g->idle.loop);
  g->held = held;
}

int ctrun_govern_new(uv_loop_t *loop, struct ctrun_tree *t, const struct ctrun_run_opts *o,
                     const struct ctrun_govern_hooks *hooks, struct ctrun_govern **out) {
  struct ctrun_govern *g;
  if (o->child_timeout_ms != 0 && !ctrun_tree_can_list())
    return UV_ENOSYS;
  g = calloc(1, sizeof *g);
  if (g == NULL)
    return UV_ENOMEM;
  g->tree = t;
  g->o = o;
  g->hooks = *hooks;
  g->interval_ms = ctrun_govern_interval_ms(o->child_timeout_ms);
  uv_timer_init(loop, &g->sampler);
  uv_timer_init(loop, &g->idle);
  g->sampler.data = g->idle.data = g;
  g->open_handles = 2;
  *out = g;
  return 0;
}

void ctrun_govern_start(struct ctrun_govern *g) {
  uv_loop_t *loop = g->sampler.loop;
  g->watching = true;
  g->ndoomed = 0;
  uv_update_time(loop);
  if (g->o->child_timeout_ms != 0)
    uv_timer_start(&g->sampler, on_sample, g->interval_ms, 0);
  if (g->o->idle_timeout_ms != 0) {
    g->last_output = uv_now(loop);
    g->held = false;
    uv_timer_start(&g->idle, on_idle, g->o->idle_timeout_ms, 0);
  }
}

void ctrun_govern_stop(struct ctrun_govern *g) {
  if (g == NULL)
    return;
  g->watching = false;
  uv_timer_stop(&g->sampler);
  uv_timer_stop(&g->idle);
}

int ctrun_govern_children_killed(const struct ctrun_govern *g) { return g ? g->killed : 0; }

static void free_govern(uv_handle_t *h) {
  struct ctrun_govern *g = h->data;
  if (--g->open_handles == 0) {
    free(g->doomed);
    free(g);
  }
}

void ctrun_govern_close(struct ctrun_govern *g) {
  if (g == NULL)
    return;
  ctrun_govern_stop(g);
  uv_close((uv_handle_t *)&g->sampler, free_govern);
  uv_close((uv_handle_t *)&g->idle, free_govern);
}
