/* Policies on a running tree: --child-timeout, --idle-timeout, and the
 * limits on the whole tree where ctrun enforces them by sampling; the
 * sampler also keeps the tree's peaks for the report. */
#include "ctrun/govern.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrun/duration.h"
#include "ctrun/msg.h"
#include "ctrun/size.h"

/* How often the tree is sampled for the limits and the report's peaks:
 * the reaction time of a limit ctrun enforces itself. */
#define SAMPLE_MS 100

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
  bool sample_limits; /* the limits are ctrun's to enforce */
  bool kernel_limits; /* the kernel's: ctrun watches for its verdict */
  bool sampling;      /* the sampler runs at all */
  uint64_t interval_ms;
  /* the peaks, over every look */
  int peak_procs;
  uint64_t peak_rss;
  /* --child-timeout */
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

void ctrun_govern_kernel_check(struct ctrun_govern *g) {
  const struct ctrun_run_opts *o;
  enum ctrun_limit hit;
  char text[200], b[32];
  if (g == NULL || !g->kernel_limits || !g->watching ||
      (hit = ctrun_tree_limit_hit(g->tree)) == CTRUN_LIMIT_NONE)
    return;
  o = g->o;
  if (hit == CTRUN_LIMIT_MEMORY)
    snprintf(text, sizeof text, "the kernel held the tree to --memory %s and had to kill for it; "
             "killed", ctrun_size_format_exact(o->memory_bytes, b, sizeof b));
  else if (hit == CTRUN_LIMIT_PROCS)
    snprintf(text, sizeof text, "the kernel held the tree to --max-procs %d and refused it a "
             "process; killed", o->max_procs);
  else
    snprintf(text, sizeof text, "the kernel ended the tree's --cpu-time %s; killed",
             ctrun_duration_format_exact(o->cpu_time_ms, b, sizeof b));
  g->hooks.limit(g->hooks.data, hit, text);
}

/* The tree's totals now: its peaks, and its limits where ctrun enforces
 * them.  CPU time is the live members' and what the reaped ones used. */
static void account(struct ctrun_govern *g, const struct ctrun_member *v, size_t n) {
  const struct ctrun_run_opts *o = g->o;
  struct ctrun_usage u;
  uint64_t rss = 0, cpu = 0;
  char text[200], a[32], b[32];

  for (size_t i = 0; i < n; i++) {
    rss += v[i].rss_bytes;
    cpu += v[i].cpu_ms;
  }
  if ((int)n > g->peak_procs)
    g->peak_procs = (int)n;
  if (rss > g->peak_rss)
    g->peak_rss = rss;
  ctrun_govern_kernel_check(g);
  if (!g->sample_limits || !g->watching)
    return;
  if (o->memory_bytes != 0 && rss > o->memory_bytes) {
    snprintf(text, sizeof text, "used %s, over --memory %s; killed", ctrun_size_format(rss, a, sizeof a),
             ctrun_size_format_exact(o->memory_bytes, b, sizeof b));
    g->hooks.limit(g->hooks.data, CTRUN_LIMIT_MEMORY, text);
  } else if (o->max_procs != 0 && (int)n > o->max_procs) {
    snprintf(text, sizeof text, "had %zu processes, over --max-procs %d; killed", n, o->max_procs);
    g->hooks.limit(g->hooks.data, CTRUN_LIMIT_PROCS, text);
  } else if (o->cpu_time_ms != 0 && ctrun_tree_usage(g->tree, &u) == 0 &&
             (cpu += u.cpu_user_ms + u.cpu_sys_ms) > o->cpu_time_ms) {
    snprintf(text, sizeof text, "used %s of CPU time, over --cpu-time %s; killed",
             ctrun_duration_format_exact(cpu, a, sizeof a),
             ctrun_duration_format_exact(o->cpu_time_ms, b, sizeof b));
    g->hooks.limit(g->hooks.data, CTRUN_LIMIT_CPU, text);
  }
}

/* Hit every member past the child timeout; kill hard those whose -k is up. */
static void child_timeouts(struct ctrun_govern *g, const struct ctrun_member *v, size_t n,
                           uint64_t now) {
  size_t kept = 0;
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
}

/* One look at the tree, for every policy that samples it. */
static void look(struct ctrun_govern *g, uint64_t now) {
  struct ctrun_member *v;
  size_t n;
  if (ctrun_tree_members(g->tree, &v, &n) != 0)
    return;
  account(g, v, n);
  if (g->o->child_timeout_ms != 0)
    child_timeouts(g, v, n, now);
  free(v);
}

/* One tick of the sampler: one snapshot of the tree, read by every
 * policy.  The next tick comes after the interval, or after ten times
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
                     bool sample_limits, const struct ctrun_govern_hooks *hooks,
                     struct ctrun_govern **out) {
  struct ctrun_govern *g;
  if ((o->child_timeout_ms != 0 || sample_limits) && !ctrun_tree_can_list())
    return UV_ENOSYS;
  g = calloc(1, sizeof *g);
  if (g == NULL)
    return UV_ENOMEM;
  g->tree = t;
  g->o = o;
  g->hooks = *hooks;
  g->sample_limits = sample_limits;
  g->kernel_limits =
      !sample_limits && (o->memory_bytes != 0 || o->max_procs != 0 || o->cpu_time_ms != 0);
  g->sampling = o->child_timeout_ms != 0 || sample_limits || g->kernel_limits ||
                o->report_path != NULL;
  g->interval_ms = o->child_timeout_ms != 0 ? ctrun_govern_interval_ms(o->child_timeout_ms) : SAMPLE_MS;
  if ((sample_limits || g->kernel_limits || o->report_path != NULL) && g->interval_ms > SAMPLE_MS)
    g->interval_ms = SAMPLE_MS;
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
  /* The limits and the peaks look at once: a short run has its peak too. */
  if (g->sampling)
    uv_timer_start(&g->sampler, on_sample, g->interval_ms == SAMPLE_MS ? 0 : g->interval_ms, 0);
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

void ctrun_govern_peaks(const struct ctrun_govern *g, int *procs, uint64_t *rss) {
  *procs = g ? g->peak_procs : 0;
  *rss = g ? g->peak_rss : 0;
}

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
