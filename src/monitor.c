/* ctrun last, ctrun metrics, and check --job: the history read back. */
#include "ctrun/monitor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "ctrun/clock.h"
#include "ctrun/duration.h"
#include "ctrun/exit.h"
#include "ctrun/json.h"
#include "ctrun/msg.h"
#include "ctrun/proc.h"
#include "ctrun/registry.h"

#define DAY_MS (24LL * 3600 * 1000)

int ctrun_status_worse(int a, int b) {
  /* OK < WARNING < UNKNOWN < CRITICAL: a problem known beats one unknown. */
  static const int rank[] = { 0, 1, 3, 2 };
  return rank[b & 3] > rank[a & 3] ? b : a;
}

int64_t ctrun_monitor_now_ms(void) {
  const char *s = getenv("CTRUN_NOW");
  char *end;
  double t;
  if (s == NULL || *s == '\0')
    return ctrun_now_ms();
  t = strtod(s, &end);
  return *end == '\0' && t > 0 && t < 1e11 ? (int64_t)(t * 1000) : ctrun_now_ms();
}

int ctrun_job_state(struct ctrun_dir *dir, const char *name, int64_t now_ms,
                    struct ctrun_job_state *out) {
  struct ctrun_hrec *v;
  size_t n;
  int r;
  memset(out, 0, sizeof *out);
  snprintf(out->name, sizeof out->name, "%s", name);
  r = ctrun_history_read(dir, name, &v, &n, &out->corrupt);
  if (r != 0)
    return r;
  out->records = n;
  if (n > 0)
    out->last = v[n - 1];
  for (size_t i = n; i-- > 0;) {
    const struct ctrun_hrec *h = &v[i];
    if (h->ended_ms > now_ms - DAY_MS && h->ended_ms <= now_ms)
      out->runs_24h++;
    if (h->outcome == CTRUN_OUTCOME_SKIPPED)
      continue;
    if (!out->ran) {
      out->last_ran = *h;
      out->ran = true;
    }
    if (h->outcome == CTRUN_OUTCOME_SUCCESS && !out->succeeded) {
      out->success = *h;
      out->succeeded = true;
    }
    if (!out->succeeded)
      out->consecutive_failures++;
  }
  free(v);
  return 0;
}

/* "3m12s ago", or "never". */
static const char *ago(int64_t now, int64_t then, bool known, char *buf, size_t size) {
  char d[32];
  if (!known)
    return snprintf(buf, size, "never"), buf;
  ctrun_duration_format(now > then ? (uint64_t)(now - then) : 0, d, sizeof d);
  snprintf(buf, size, "%s ago", d);
  return buf;
}

static void json_run(const struct ctrun_hrec *h, bool known) {
  if (!known) {
    fputs("null", stdout);
    return;
  }
  fputs("{\"id\":", stdout);
  ctrun_json_string(stdout, h->id);
  fputs(",\"rid\":", stdout);
  ctrun_json_string(stdout, h->rid);
  fputs(",\"started\":", stdout);
  ctrun_json_time(stdout, h->started_ms);
  fputs(",\"ended\":", stdout);
  ctrun_json_time(stdout, h->ended_ms);
  printf(",\"duration_ms\":%" PRId64 ",\"reason\":\"%s\",\"exit_code\":%" PRIu32
         ",\"ok\":%s,\"outcome\":\"%s\"}",
         h->ended_ms - h->started_ms, ctrun_reason_name(h->reason), h->exit_code,
         h->ok ? "true" : "false", ctrun_outcome_name(h->outcome));
}

static int open_dir(struct ctrun_dir **dir) {
  char err[512];
  if (ctrun_statedir_open(dir, err, sizeof err) != 0) {
    ctrun_error("%s", err);
    return CTRUN_EXIT_FAILURE;
  }
  return 0;
}

int ctrun_cmd_last(const struct ctrun_last_opts *o) {
  struct ctrun_dir *dir;
  char **names = o->names, **all = NULL;
  size_t n = (size_t)o->nnames;
  int64_t now = ctrun_monitor_now_ms();
  int code = 0;

  if (open_dir(&dir) != 0)
    return CTRUN_EXIT_FAILURE;
  if (n == 0) {
    int r = ctrun_history_names(dir, &all, &n);
    if (r != 0) {
      ctrun_error("cannot list the history in '%s': %s", ctrun_dir_path(dir), ctrun_strerror(r));
      ctrun_dir_close(dir);
      return CTRUN_EXIT_FAILURE;
    }
    names = all;
  }
  if (o->json)
    putchar('[');
  else
    printf("%-16s  %-14s  %9s  %-14s  %8s  %3s  %s\n", "NAME", "LAST RUN", "DURATION",
           "LAST SUCCESS", "FAILURES", "24H", "RESULT");
  for (size_t i = 0; i < n; i++) {
    struct ctrun_job_state s;
    char result[120], when[48], okago[48], dur[32];
    int r = ctrun_job_state(dir, names[i], now, &s);
    if (r != 0) {
      ctrun_error("cannot read the history of '%s': %s", names[i], ctrun_strerror(r));
      code = CTRUN_EXIT_FAILURE;
      continue;
    }
    if (s.corrupt > 0)
      ctrun_error("the history of '%s' has %d unreadable record(s); skipped", names[i], s.corrupt);
    if (o->json) {
      printf("%s\n{\"name\":", i ? "," : "");
      ctrun_json_string(stdout, s.name);
      fputs(",\"last\":", stdout);
      json_run(&s.last, s.records > 0);
      fputs(",\"last_success\":", stdout);
      json_run(&s.success, s.succeeded);
      printf(",\"consecutive_failures\":%d,\"runs_24h\":%d,\"records\":%zu}",
             s.consecutive_failures, s.runs_24h, s.records);
      continue;
    }
    if (s.records == 0) {
      printf("%-16s  %-14s  %9s  %-14s  %8s  %3s  %s\n", s.name, "never", "-", "never", "-", "0",
             "-");
      continue;
    }
    ctrun_reason_text(s.last.reason, (int)s.last.exit_code, 0, result, sizeof result);
    if (s.last.ok && s.last.exit_code != 0)
      snprintf(result + strlen(result), sizeof result - strlen(result), " (ok)");
    ago(now, s.last.ended_ms, true, when, sizeof when);
    ctrun_duration_format_exact((uint64_t)(s.last.ended_ms - s.last.started_ms), dur, sizeof dur);
    ago(now, s.success.ended_ms, s.succeeded, okago, sizeof okago);
    printf("%-16s  %-14s  %9s  %-14s  %8d  %3d  %s\n", s.name, when, dur, okago,
           s.consecutive_failures, s.runs_24h, result);
  }
  if (o->json)
    puts(n ? "\n]" : "]");
  for (size_t i = 0; all != NULL && i < n; i++)
    free(all[i]);
  free(all);
  ctrun_dir_close(dir);
  if (fflush(stdout) != 0)
    code = CTRUN_EXIT_FAILURE;
  return code;
}

void ctrun_check_jobs(struct ctrun_dir *dir, const struct ctrun_check_opts *o, int64_t now_ms,
                      int *status, char *extra, size_t extralen, char *perf, size_t perflen) {
  for (int i = 0; i < o->njobs; i++) {
    const struct ctrun_check_job *j = &o->jobs[i];
    struct ctrun_job_state s;
    char age[32], lim[32], e[200] = "", p[120];
    int worst = 0;
    if (ctrun_job_state(dir, j->name, now_ms, &s) != 0) {
      snprintf(e, sizeof e, ", job %s: history unreadable", j->name);
      worst = 3;
    } else if (!s.succeeded) {
      snprintf(e, sizeof e, ", job %s never succeeded", j->name);
      worst = 2;
    } else if (now_ms - s.success.ended_ms > (int64_t)j->within_ms) {
      snprintf(e, sizeof e, ", job %s: no success for %s (limit %s)", j->name,
               ctrun_duration_format((uint64_t)(now_ms - s.success.ended_ms), age, sizeof age),
               ctrun_duration_format_exact(j->within_ms, lim, sizeof lim));
      worst = 2;
    }
    if (worst < 2 && s.ran && s.last_ran.outcome != CTRUN_OUTCOME_SUCCESS) {
      char how[80];
      ctrun_reason_text(s.last_ran.reason, (int)s.last_ran.exit_code, 0, how, sizeof how);
      snprintf(e + strlen(e), sizeof e - strlen(e), ", job %s: last run failed (%s)", j->name, how);
      if (worst < 1)
        worst = 1;
    }
    *status = ctrun_status_worse(*status, worst);
    snprintf(extra + strlen(extra), extralen - strlen(extra), "%s", e);
    /* Seconds since the last success; U (unknown) if never; the limit as
     * the critical threshold. */
    if (s.succeeded)
      snprintf(p, sizeof p, " job_%s=%" PRId64 "s;;%" PRIu64, j->name,
               (now_ms > s.success.ended_ms ? now_ms - s.success.ended_ms : 0) / 1000,
               j->within_ms / 1000);
    else
      snprintf(p, sizeof p, " job_%s=U;;%" PRIu64, j->name, j->within_ms / 1000);
    snprintf(perf + strlen(perf), perflen - strlen(perf), "%s", p);
  }
}

/* ---- ctrun metrics --------------------------------------------------- */

/* A label value per the exposition format: \\, \" and \n escaped. */
static void label(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      fputc('\\', f), fputc(*s, f);
    else if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
}

static void family(FILE *f, const char *name, const char *type, const char *help) {
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void per_job(FILE *f, const char *metric, const struct ctrun_job_state *v, size_t n,
                    int which) {
  for (size_t i = 0; i < n; i++) {
    const struct ctrun_job_state *s = &v[i];
    double x;
    if (s->records == 0 || (which == 1 && !s->succeeded) || (which >= 2 && !s->ran))
      continue;
    switch (which) {
    case 0: x = (double)s->last.ended_ms / 1000; break;
    case 1: x = (double)s->success.ended_ms / 1000; break;
    case 2:
      fprintf(f, "%s{name=\"", metric);
      label(f, s->name);
      fprintf(f, "\"} %" PRIu32 "\n", s->last_ran.exit_code);
      continue;
    default: x = (double)(s->last_ran.ended_ms - s->last_ran.started_ms) / 1000; break;
    }
    fprintf(f, "%s{name=\"", metric);
    label(f, s->name);
    fprintf(f, "\"} %.3f\n", x);
  }
}

static int write_metrics(FILE *f, struct ctrun_dir *dir, int64_t now) {
  char **names = NULL;
  size_t n = 0;
  struct ctrun_job_state *v;
  struct ctrun_entry *runs = NULL;
  size_t nruns = 0;
  long running = 0, stale = 0, procs = 0;
  struct ctrun_proctab *tab;
  int r = ctrun_history_names(dir, &names, &n);
  if (r != 0)
    return r;
  v = calloc(n + 1, sizeof *v);
  if (v == NULL)
    r = UV_ENOMEM;
  for (size_t i = 0; r == 0 && i < n; i++)
    if (ctrun_job_state(dir, names[i], now, &v[i]) != 0)
      v[i].records = 0;
  if (r == 0) {
    family(f, "ctrun_last_run_timestamp_seconds", "gauge", "When the last run of the job ended.");
    per_job(f, "ctrun_last_run_timestamp_seconds", v, n, 0);
    family(f, "ctrun_last_success_timestamp_seconds", "gauge",
           "When the last successful run of the job ended.");
    per_job(f, "ctrun_last_success_timestamp_seconds", v, n, 1);
    family(f, "ctrun_last_exit_code", "gauge", "The exit status of the job's last run that ran.");
    per_job(f, "ctrun_last_exit_code", v, n, 2);
    family(f, "ctrun_last_duration_seconds", "gauge", "How long the job's last run that ran took.");
    per_job(f, "ctrun_last_duration_seconds", v, n, 3);
    family(f, "ctrun_runs_total", "counter", "Runs of the job by outcome.");
    for (size_t i = 0; i < n; i++)
      for (int k = 0; v[i].records > 0 && k < CTRUN_OUTCOMES; k++) {
        fputs("ctrun_runs_total{name=\"", f);
        label(f, v[i].name);
        fprintf(f, "\",result=\"%s\"} %" PRIu64 "\n", ctrun_outcome_name((enum ctrun_outcome)k),
                v[i].last.total[k]);
      }
    if (ctrun_registry_list(dir, &runs, &nruns) == 0) {
      tab = ctrun_proctab_load(false);
      for (size_t i = 0; i < nruns; i++) {
        int c = ctrun_proctab_count(tab, &runs[i]);
        if (runs[i].stale)
          stale++;
        else
          running++;
        procs += c > 0 ? c : 0;
      }
      ctrun_proctab_free(tab);
      ctrun_registry_free(runs, nruns);
    }
    family(f, "ctrun_running_runs", "gauge", "Runs whose supervisor is alive.");
    fprintf(f, "ctrun_running_runs %ld\n", running);
    family(f, "ctrun_stale_runs", "gauge", "Runs whose supervisor is gone (see ctrun cleanup).");
    fprintf(f, "ctrun_stale_runs %ld\n", stale);
    family(f, "ctrun_tree_processes", "gauge", "Processes in the trees of all tracked runs.");
    fprintf(f, "ctrun_tree_processes %ld\n", procs);
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  free(v);
  return r;
}

int ctrun_cmd_metrics(const struct ctrun_metrics_opts *o) {
  struct ctrun_dir *dir;
  char tmp[4200], err[512];
  FILE *f = stdout;
  int r, fd = -1;

  if (open_dir(&dir) != 0)
    return CTRUN_EXIT_FAILURE;
  if (o->out_path != NULL) {
    /* Beside the file, then renamed over it: the collector never reads half
     * of it.  (node_exporter reads only *.prom; this name is not one.) */
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", o->out_path, (long)uv_os_getpid());
    fd = ctrun_file_open(tmp, CTRUN_FILE_REPORT, err, sizeof err);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
      ctrun_error("%s", fd < 0 ? err : "cannot write the metrics");
      if (fd >= 0) {
        ctrun_fd_close(fd);
        ctrun_file_remove(tmp);
      }
      ctrun_dir_close(dir);
      return CTRUN_EXIT_FAILURE;
    }
  }
  r = write_metrics(f, dir, ctrun_monitor_now_ms());
  if (o->out_path != NULL) {
    if (fclose(f) != 0 && r == 0)
      r = UV_EIO;
    if (r == 0)
      r = ctrun_file_replace(tmp, o->out_path);
    if (r != 0)
      ctrun_file_remove(tmp);
  } else if (fflush(stdout) != 0 && r == 0) {
    r = UV_EIO;
  }
  if (r != 0)
    ctrun_error("cannot write the metrics%s%s: %s", o->out_path ? " to " : "",
                o->out_path ? o->out_path : "", ctrun_strerror(r));
  ctrun_dir_close(dir);
  return r == 0 ? 0 : CTRUN_EXIT_FAILURE;
}
