/* ctrun ps, stop, cleanup and check: readers of the registry.  Every
 * signal they send is checked first: a live supervisor by its entry lock
 * and start time, a stale run's processes by start time and run tag. */
#include "ctrun/commands.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ctrun/duration.h"
#include "ctrun/exit.h"
#include "ctrun/json.h"
#include "ctrun/monitor.h"
#include "ctrun/msg.h"
#include "ctrun/output.h"
#include "ctrun/proc.h"
#include "ctrun/registry.h"
#include "ctrun/size.h"
#include "ctrun/clock.h"

/* The state directory and every entry in it, with the process table. */
struct view {
  struct ctrun_dir *dir;
  struct ctrun_entry *v;
  size_t n;
  struct ctrun_proctab *tab;
};

static int view_open(struct view *w, char *err, size_t errlen) {
  int r;
  memset(w, 0, sizeof *w);
  r = ctrun_statedir_open(&w->dir, err, errlen);
  if (r != 0)
    return r;
  r = ctrun_registry_list(w->dir, &w->v, &w->n);
  if (r != 0) {
    snprintf(err, errlen, "cannot list runs in '%s': %s", ctrun_dir_path(w->dir), ctrun_strerror(r));
    ctrun_dir_close(w->dir);
    return r;
  }
  w->tab = ctrun_proctab_load(false);
  return 0;
}

static void view_close(struct view *w) {
  ctrun_proctab_free(w->tab);
  ctrun_registry_free(w->v, w->n);
  ctrun_dir_close(w->dir);
}

static void sleep_ms(unsigned ms) { uv_sleep(ms); }

/* Milliseconds since T0 (uv_hrtime), by the monotonic clock: waits are
 * bounded by time, not by counting steps whose length varies. */
static uint64_t ms_since(uint64_t t0) { return (uv_hrtime() - t0) / 1000000; }

/* Cleanup is bounded, whatever a stale run recorded (-k inf included):
 * after the soft signal it waits at most CLEANUP_GRACE_MS before the hard
 * kill, and gives up on what still stands CLEANUP_KILL_MS later. */
#define CLEANUP_GRACE_MS 5000
#define CLEANUP_KILL_MS 5000

/* Stop what remains of stale run E: SIG, then SIGKILL after KILL_AFTER_MS
 * (at most CLEANUP_GRACE_MS), until nothing of it is left or the bound is
 * reached.  Returns how many processes were found; *LEFT says how many
 * could not be killed. */
static int kill_remains(const struct ctrun_entry *e, int sig, uint64_t kill_after_ms, int *left) {
  struct ctrun_proctab *tab = ctrun_proctab_load(true);
  int found = ctrun_proctab_count(tab, e), n, sent;
  uint64_t t0 = uv_hrtime(), grace = kill_after_ms < CLEANUP_GRACE_MS ? kill_after_ms
                                                                      : CLEANUP_GRACE_MS;

  /* Signalled even when the first listing found nothing: its passes read
   * the table again and again, and catch a process hopping from pid to
   * pid that one listing can miss. */
  sent = ctrun_proctab_signal(tab, e, sig);
  if (sent > found)
    found = sent;
  n = found;
#ifdef SIGCONT
  if (found > 0)
    ctrun_proctab_signal(tab, e, SIGCONT);
#endif
  /* Gone when two readings in a row find nothing: one reading can miss a
   * process that hops from pid to pid just as its row is read. */
  for (int empty = n > 0 ? 0 : 2; empty < 2 && ms_since(t0) < grace + CLEANUP_KILL_MS;) {
    ctrun_proctab_free(tab);
    sleep_ms(20);
    tab = ctrun_proctab_load(true);
    n = ctrun_proctab_count(tab, e);
    empty = n > 0 ? 0 : empty + 1;
    if (n > 0 && ms_since(t0) >= grace)
      ctrun_proctab_signal(tab, e, SIGKILL);
  }
  ctrun_proctab_free(tab);
  *left = n > 0 ? n : 0;
  if (n > 0)
    ctrun_error("run %s (%s): %d process(es) still there after the hard kill; the entry is kept",
                e->id, e->name, n);
  return found < 0 ? 0 : found;
}

/* running; waiting (--jitter: nothing started yet); stale. */
static const char *state_of(const struct ctrun_entry *e) {
  return e->stale ? "stale" : e->child_pid == 0 ? "waiting" : "running";
}

int ctrun_cmd_ps(const struct ctrun_ps_opts *o) {
  struct view w;
  char err[512];
  int64_t now = ctrun_now_ms();

  if (view_open(&w, err, sizeof err) != 0) {
    ctrun_error("%s", err);
    return CTRUN_EXIT_FAILURE;
  }
  if (o->json) {
    putchar('[');
    for (size_t i = 0; i < w.n; i++) {
      const struct ctrun_entry *e = &w.v[i];
      printf("%s\n{\"id\":", i ? "," : "");
      ctrun_json_string(stdout, e->id);
      fputs(",\"name\":", stdout);
      ctrun_json_string(stdout, e->name);
      printf(",\"state\":\"%s\",\"pid\":%ld,\"child_pid\":%ld,\"pgid\":%ld,\"started\":",
             state_of(e), e->pid, e->child_pid, e->pgid);
      ctrun_json_time(stdout, e->started_ms);
      fputs(",\"deadline\":", stdout);
      ctrun_json_time(stdout, e->deadline_ms);
      fputs(",\"argv\":", stdout);
      ctrun_json_argv(stdout, e->argv);
      fputs(",\"lock\":", stdout);
      ctrun_json_string_or_null(stdout, e->lock);
      /* Every lock: the file's, then the fleet locks with their tokens
       * and leases. */
      fputs(",\"locks\":[", stdout);
      if (e->lock != NULL) {
        fputs("{\"backend\":\"file\",\"where\":", stdout);
        ctrun_json_string(stdout, e->lock);
        fputs(",\"token\":null,\"lease_expires\":null}", stdout);
      }
      for (int k = 0; k < e->nleases; k++) {
        const struct ctrun_entry_lease *l = &e->leases[k];
        printf("%s{\"backend\":", e->lock != NULL || k > 0 ? "," : "");
        ctrun_json_string(stdout, l->backend);
        fputs(",\"where\":", stdout);
        ctrun_json_string(stdout, l->where);
        fputs(",\"token\":", stdout);
        ctrun_json_string(stdout, l->token);
        fputs(",\"lease_expires\":", stdout);
        ctrun_json_time(stdout, l->expires_ms);
        putchar('}');
      }
      putchar(']');
      fputs(",\"log\":", stdout);
      ctrun_json_string_or_null(stdout, e->log);
      printf(",\"children_killed\":%d", e->children_killed);
      fputs(",\"limits_enforced_by\":", stdout);
      ctrun_json_string_or_null(stdout, e->limits_by[0] ? e->limits_by : NULL);
      printf(",\"rss_bytes\":%llu", (unsigned long long)ctrun_proctab_rss(w.tab, e));
      int procs = ctrun_proctab_count(w.tab, e);
      if (procs < 0)
        fputs(",\"procs\":null}", stdout);
      else
        printf(",\"procs\":%d}", procs);
    }
    puts(w.n ? "\n]" : "]");
  } else {
    printf("%-12s  %-16s  %-7s  %7s  %6s  %7s  %5s  %10s  %s\n", "ID", "NAME", "STATE", "PID",
           "AGE", "TIMEOUT", "PROCS", "RSS", "COMMAND");
    for (size_t i = 0; i < w.n; i++) {
      const struct ctrun_entry *e = &w.v[i];
      char age[32], left[32] = "-", procs[16] = "?", rss[24], cmd[256];
      int n = ctrun_proctab_count(w.tab, e);
      ctrun_duration_format(now > e->started_ms ? (uint64_t)(now - e->started_ms) : 0, age, sizeof age);
      if (e->deadline_ms != 0 && e->deadline_ms > now)
        ctrun_duration_format((uint64_t)(e->deadline_ms - now), left, sizeof left);
      else if (e->deadline_ms != 0)
        snprintf(left, sizeof left, "overdue");
      if (n >= 0)
        snprintf(procs, sizeof procs, "%d", n);
      ctrun_format_command(e->argv, cmd, sizeof cmd);
      ctrun_size_format(ctrun_proctab_rss(w.tab, e), rss, sizeof rss);
      printf("%-12s  %-16s  %-7s  %7ld  %6s  %7s  %5s  %10s  %s\n", e->id, e->name, state_of(e),
             e->pid, age, left, procs, rss, cmd);
    }
  }
  view_close(&w);
  return fflush(stdout) == 0 ? 0 : CTRUN_EXIT_FAILURE;
}

/* Kill what remains of stale run E, whose entry the caller claimed as FD;
 * the entry goes only with the last of them. */
static int clean_one(struct ctrun_dir *dir, const struct ctrun_entry *e, int fd, int sig,
                     uint64_t kill_after_ms, int *left_out) {
  int left, n = kill_remains(e, sig ? sig : SIGTERM, kill_after_ms, &left);
  /* The run's cgroup goes with the last of its processes. */
  if (left == 0 && ctrun_proc_container_remove(e) != 0) {
    ctrun_error("run %s (%s): cannot remove its cgroup '%s'; the entry is kept", e->id, e->name,
                e->container);
    left = 1;
  }
  if (left_out != NULL)
    *left_out = left;
  if (left == 0)
    ctrun_registry_drop(dir, e->id, fd);
  else
    ctrun_registry_unclaim(fd);
  return n;
}

enum gone { GONE, STALE, RUNNING };

/* Wait up to LIMIT_MS for run ID to be over: its entry gone (GONE), or its
 * supervisor gone (STALE, the entry claimed as *FD). */
static enum gone wait_gone(struct ctrun_dir *dir, const char *id, uint64_t limit_ms, int *fd) {
  uint64_t t0 = uv_hrtime();
  for (;;) {
    *fd = ctrun_registry_claim(dir, id);
    if (*fd == UV_ENOENT)
      return GONE;
    if (*fd >= 0)
      return STALE;
    if (limit_ms != CTRUN_DURATION_INF && ms_since(t0) >= limit_ms)
      return RUNNING;
    sleep_ms(20);
  }
}

/* Stop one run; returns 0 or an exit code.  Stops are idempotent: any
 * number of them, at once, all succeed once the run is over. */
static int stop_one(struct view *w, const struct ctrun_entry *e, const struct ctrun_stop_opts *o) {
  int sig = o->signal ? o->signal : e->signal, fd;
  uint64_t ka = o->has_kill_after ? o->kill_after_ms : e->kill_after_ms;
  enum gone g;

  if (e->stale) {
    fd = ctrun_registry_claim(w->dir, e->id);
    if (fd < 0)
      return fd == UV_ENOENT ? 0 : CTRUN_EXIT_FAILURE;
    int n = clean_one(w->dir, e, fd, sig, ka, NULL);
    ctrun_notice("stopped stale run %s (%s): %d process(es)", e->id, e->name, n);
    return 0;
  }
  int werr = ctrun_stop_request_write(w->dir, e->id, sig, ka);
  int serr = werr == 0 ? ctrun_proc_request_stop(w->dir, e) : 0;
  if (werr != 0 || serr != 0) {
    /* Gone just now, or no longer the recorded process. */
    g = wait_gone(w->dir, e->id, 0, &fd);
    if (g == STALE)
      clean_one(w->dir, e, fd, sig, ka, NULL);
    if (g != RUNNING)
      return 0;
    /* Say which step failed, and why: a full state directory is not a
     * supervisor that cannot be signalled. */
    if (werr != 0)
      ctrun_error("cannot write the stop request of run %s in '%s': %s", e->id,
                  ctrun_dir_path(w->dir), ctrun_strerror(werr));
    else
      ctrun_error("cannot signal the supervisor of run %s (pid %ld): %s", e->id, e->pid,
                  ctrun_strerror(serr));
    return CTRUN_EXIT_FAILURE;
  }
  g = wait_gone(w->dir, e->id, ka == CTRUN_DURATION_INF ? ka : ka + 10000, &fd);
  if (g == RUNNING) {
    ctrun_error("run %s (%s) did not stop in time", e->id, e->name);
    return CTRUN_EXIT_FAILURE;
  }
  /* Its supervisor died while stopping it: its remains are ours to kill. */
  if (g == STALE)
    clean_one(w->dir, e, fd, sig, ka, NULL);
  ctrun_debug("stopped run %s (%s)", e->id, e->name);
  return 0;
}

int ctrun_cmd_stop(const struct ctrun_stop_opts *o) {
  struct view w;
  char err[512];
  int code = CTRUN_STOP_OK;

  if (view_open(&w, err, sizeof err) != 0) {
    ctrun_error("%s", err);
    return CTRUN_EXIT_FAILURE;
  }
  /* A name may match every run there is: no fixed cap. */
  size_t *idx = malloc((w.n + 1) * sizeof *idx);
  if (idx == NULL) {
    ctrun_error("%s", ctrun_strerror(UV_ENOMEM));
    view_close(&w);
    return CTRUN_EXIT_FAILURE;
  }
  for (int i = 0; i < o->nruns; i++) {
    size_t k = ctrun_registry_match(w.v, w.n, o->runs[i], idx, w.n);
    if (k == 0) {
      ctrun_error("no such run '%s'", o->runs[i]);
      if (code == CTRUN_STOP_OK)
        code = CTRUN_STOP_NO_SUCH_RUN;
      continue;
    }
    for (size_t j = 0; j < k; j++) {
      int r = stop_one(&w, &w.v[idx[j]], o);
      if (r != 0)
        code = r;
    }
  }
  free(idx);
  view_close(&w);
  return code;
}

/* Clean every stale run of W; returns how many, or -1. */
static int clean(struct view *w, bool dry_run, bool json) {
  int cleaned = 0, *procs = calloc(w->n + 1, sizeof *procs);
  if (procs == NULL) {
    ctrun_error("%s", ctrun_strerror(UV_ENOMEM));
    return -1;
  }
  /* The view's process table was read after these runs were found stale,
   * when their supervisors could start nothing more.  A run it holds no
   * remains of has none later either (a remain is only born of a remain),
   * unless one hopped from pid to pid past the listing: those runs are
   * counted again, all in one walk, not one walk per run, which made
   * cleanup cost O(runs x processes). */
  for (size_t i = 0; i < w->n; i++)
    if (w->v[i].stale)
      procs[i] = ctrun_proctab_count(w->tab, &w->v[i]);
  ctrun_proctab_recount(w->tab, w->v, w->n, procs);
  if (json)
    putchar('[');
  for (size_t i = 0; i < w->n; i++) {
    const struct ctrun_entry *e = &w->v[i];
    int fd, left = 0;
    bool removed = !dry_run;
    if (!e->stale)
      continue;
    if (!dry_run) {
      fd = ctrun_registry_claim(w->dir, e->id);
      if (fd < 0)
        continue; /* alive after all, or cleaned by another */
      if (procs[i] != 0)
        procs[i] = clean_one(w->dir, e, fd, e->signal, e->kill_after_ms, &left);
      else
        ctrun_registry_drop(w->dir, e->id, fd);
      removed = left == 0;
    }
    if (json) {
      printf("%s\n{\"id\":\"%s\",\"name\":", cleaned ? "," : "", e->id);
      ctrun_json_string(stdout, e->name);
      if (procs[i] < 0)
        printf(",\"procs\":null,\"removed\":%s}", removed ? "true" : "false");
      else
        printf(",\"procs\":%d,\"removed\":%s}", procs[i], removed ? "true" : "false");
    } else if (ctrun_verbosity >= 0) {
      char n[16] = "?";
      if (procs[i] >= 0)
        snprintf(n, sizeof n, "%d", procs[i]);
      printf("%s stale run %s (%s): %s process(es)%s\n", dry_run ? "would clean" : "cleaned", e->id,
             e->name, n,
             dry_run ? "" : removed ? " stopped, entry removed" : " signalled, some remain, entry kept");
    }
    cleaned++;
  }
  if (json)
    puts(cleaned ? "\n]" : "]");
  free(procs);
  return cleaned;
}

int ctrun_cmd_cleanup(const struct ctrun_cleanup_opts *o) {
  struct view w;
  char err[512];
  int code;

  if (view_open(&w, err, sizeof err) != 0) {
    ctrun_error("%s", err);
    return CTRUN_EXIT_FAILURE;
  }
  code = clean(&w, o->dry_run, o->json) < 0 ? CTRUN_EXIT_FAILURE : 0;
  if (!o->dry_run)
    ctrun_registry_sweep(w.dir);
  view_close(&w);
  fflush(stdout);
  return code;
}

int ctrun_cmd_check(const struct ctrun_check_opts *o) {
  static const char *const names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };
  struct view w;
  char err[512], extra[128] = "", perf[96] = "", age[32], job_extra[1024] = "", job_perf[1024] = "";
  int64_t now = ctrun_now_ms();
  long procs = 0, stale = 0, overdue = 0, old = 0, killed = 0;
  uint64_t mem = 0;
  bool unknown_procs = false;
  int status = CTRUN_CHECK_OK, cleaned = -1;

  if (view_open(&w, err, sizeof err) != 0) {
    printf("CTRUN UNKNOWN - %s\n", err);
    return CTRUN_CHECK_UNKNOWN;
  }
  for (size_t i = 0; i < w.n; i++) {
    int n = ctrun_proctab_count(w.tab, &w.v[i]);
    if (n < 0)
      unknown_procs = true;
    else
      procs += n;
    killed += w.v[i].children_killed;
    mem += ctrun_proctab_rss(w.tab, &w.v[i]);
    if (w.v[i].stale)
      stale++;
    else if (w.v[i].deadline_ms != 0 && w.v[i].deadline_ms < now)
      overdue++;
    /* --max-age: any live run older than that, with a deadline or not. */
    if (!w.v[i].stale && o->max_age_ms != 0 && now - w.v[i].started_ms > (int64_t)o->max_age_ms)
      old++;
  }
  if ((o->crit >= 0 && procs >= o->crit) || (o->mem_crit != 0 && mem >= o->mem_crit))
    status = CTRUN_CHECK_CRITICAL;
  else if ((o->warn >= 0 && procs >= o->warn) || (o->mem_warn != 0 && mem >= o->mem_warn) ||
           stale > 0 || overdue > 0 || old > 0)
    status = CTRUN_CHECK_WARNING;
  if (unknown_procs && status == CTRUN_CHECK_OK && (o->warn >= 0 || o->crit >= 0))
    status = CTRUN_CHECK_UNKNOWN;
  {
    char jobs[1024] = "", jperf[1024] = "";
    int js = status;
    ctrun_check_jobs(w.dir, o, ctrun_monitor_now_ms(), &js, jobs, sizeof jobs, jperf, sizeof jperf);
    status = ctrun_status_worse(status, js);
    snprintf(job_extra, sizeof job_extra, "%s", jobs);
    snprintf(job_perf, sizeof job_perf, "%s", jperf);
  }
  if (status == CTRUN_CHECK_CRITICAL && o->cleanup)
    cleaned = clean(&w, false, false);
  if (overdue > 0)
    snprintf(extra, sizeof extra, ", %ld overdue", overdue);
  if (old > 0)
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ", %ld older than %s", old,
             ctrun_duration_format_exact(o->max_age_ms, age, sizeof age));
  if (o->mem_warn != 0 || o->mem_crit != 0)
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ", %s resident",
             ctrun_size_format(mem, age, sizeof age));
  if (o->warn >= 0 || o->crit >= 0) {
    char wbuf[24] = "", cbuf[24] = "";
    if (o->warn >= 0)
      snprintf(wbuf, sizeof wbuf, "%ld", o->warn);
    if (o->crit >= 0)
      snprintf(cbuf, sizeof cbuf, "%ld", o->crit);
    snprintf(perf, sizeof perf, ";%s;%s", wbuf, cbuf);
  }
  if (o->quiet && status == CTRUN_CHECK_OK) {
    /* Nothing to say: cron mails whatever a job prints. */
  } else if (o->json) {
    char wbuf[24] = "null", cbuf[24] = "null";
    if (o->warn >= 0)
      snprintf(wbuf, sizeof wbuf, "%ld", o->warn);
    if (o->crit >= 0)
      snprintf(cbuf, sizeof cbuf, "%ld", o->crit);
    printf("{\"status\":\"%s\",\"code\":%d,\"runs\":%zu,\"procs\":%ld,\"stale\":%ld,"
           "\"overdue\":%ld,\"old\":%ld,\"children_killed\":%ld,\"mem\":%llu,\"warn\":%s,"
           "\"crit\":%s,\"cleaned\":%d}\n",
           names[status], status, w.n, procs, stale, overdue, old, killed, (unsigned long long)mem,
           wbuf, cbuf, cleaned < 0 ? 0 : cleaned);
  } else {
    printf("CTRUN %s - %zu runs, %ld processes, %ld stale%s%s%s | runs=%zu procs=%ld%s stale=%ld",
           names[status], w.n, procs, stale, extra, job_extra,
           cleaned >= 0 ? (cleaned ? ", stale runs cleaned up" : ", nothing to clean up") : "", w.n,
           procs, perf, stale);
    if (overdue > 0)
      printf(" overdue=%ld", overdue);
    if (o->max_age_ms != 0)
      printf(" old=%ld", old);
    printf(" children_killed=%ld mem=%lluB", killed, (unsigned long long)mem);
    if (o->mem_warn != 0 || o->mem_crit != 0) {
      putchar(';');
      if (o->mem_warn != 0)
        printf("%llu", (unsigned long long)o->mem_warn);
      putchar(';');
      if (o->mem_crit != 0)
        printf("%llu", (unsigned long long)o->mem_crit);
    }
    fputs(job_perf, stdout);
    putchar('\n');
  }
  view_close(&w);
  fflush(stdout);
  return status;
}
