/* End-to-end: the history of runs, ctrun last, check --job, ctrun metrics,
 * --ok-exit, --jitter and --on-finish. */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "json_check.h"

/* The value of "KEY": (string unquoted, or number) in the JSON text S at or
 * after FROM; "" if absent. */
static const char *field(const char *s, const char *key, char *buf, size_t size) {
  char want[64];
  const char *p;
  size_t n = 0;
  snprintf(want, sizeof want, "\"%s\":", key);
  buf[0] = '\0';
  if ((p = strstr(s, want)) == NULL)
    return buf;
  p += strlen(want);
  if (*p == '"')
    for (p++; *p && *p != '"' && n + 1 < size; p++)
      buf[n++] = *p;
  else
    for (; *p && *p != ',' && *p != '}' && *p != ']' && n + 1 < size; p++)
      buf[n++] = *p;
  buf[n] = '\0';
  return buf;
}

/* Line I (0-based) of TEXT, into BUF. */
static const char *line(const char *text, int i, char *buf, size_t size) {
  const char *s = text;
  for (; i > 0 && s != NULL; i--)
    s = (s = strchr(s, '\n')) ? s + 1 : NULL;
  buf[0] = '\0';
  if (s != NULL && *s)
    snprintf(buf, size, "%.*s", (int)strcspn(s, "\n"), s);
  return buf;
}

static int count_lines(const char *text) {
  int n = 0;
  for (; *text; text++)
    n += *text == '\n';
  return n;
}

static char *history_of(struct e2e *t, const char *name) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s.history", t->state, name);
  return e2e_read(path);
}

/* Success, failure, timeout and a skip: one record each, in order, with
 * what the report says of the same run. */
static void every_end_is_recorded(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char l[1024], v[128], w[128];
  const char *lock = e2e_path(t, "lock");
  E2E_RUN(t, &r, "-n", "job", "--report", e2e_path(t, "report.json"), "--", "@child", "exit", "0");
  assert_int_equal(r.code, 0);
  char *rep = e2e_read(e2e_path(t, "report.json"));
  E2E_RUN(t, &r, "-n", "job", "--", "@child", "exit", "3");
  assert_int_equal(r.code, 3);
  E2E_RUN(t, &r, "-n", "job", "-t", "0.2", "--", "@child", "sleep", "30");
  assert_int_equal(r.code, 124);
  pid_t holder = E2E_START(t, "-n", "holder", "-l", lock, "--", "@child", "sleep", "1.5");
  for (int i = 0; i < 300 && !e2e_locked(lock); i++)
    e2e_sleep(0.01);
  E2E_RUN(t, &r, "-n", "job", "-l", lock, "--on-busy=skip", "--", "@child", "exit", "0");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_wait(holder, 30), 0);
  char *h = history_of(t, "job");
  assert_int_equal(count_lines(h), 4);
  line(h, 0, l, sizeof l);
  assert_true(json_valid(l));
  assert_string_equal(field(l, "id", v, sizeof v), field(rep, "id", w, sizeof w));
  assert_string_equal(field(l, "rid", v, sizeof v), field(rep, "rid", w, sizeof w));
  assert_int_equal(strlen(v), 36);
  assert_string_equal(field(l, "outcome", v, sizeof v), "success");
  assert_string_equal(field(l, "exit_code", v, sizeof v), "0");
  assert_non_null(strstr(l, "\"runs\":[1,0,0,0]"));
  line(h, 1, l, sizeof l);
  assert_string_equal(field(l, "outcome", v, sizeof v), "failure");
  assert_string_equal(field(l, "exit_code", v, sizeof v), "3");
  assert_string_equal(field(l, "ok", v, sizeof v), "false");
  assert_non_null(strstr(l, "\"runs\":[1,1,0,0]"));
  line(h, 2, l, sizeof l);
  assert_string_equal(field(l, "outcome", v, sizeof v), "timeout");
  assert_string_equal(field(l, "reason", v, sizeof v), "timeout");
  assert_string_equal(field(l, "exit_code", v, sizeof v), "124");
  line(h, 3, l, sizeof l);
  assert_string_equal(field(l, "outcome", v, sizeof v), "skipped");
  assert_string_equal(field(l, "attempts", v, sizeof v), "0");
  assert_non_null(strstr(l, "\"runs\":[1,1,1,1]"));
  free(h);
  free(rep);
}

/* 50 runs of one name at once: 50 whole records, the counts exact. */
static void concurrent_runs_never_tear_a_record(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  enum { N = 50 };
  pid_t pids[N];
  char l[1024], v[64];
  for (int i = 0; i < N; i++)
    pids[i] = E2E_START(t, "-n", "many", "--", "@child", "exit", i % 5 ? "0" : "1");
  for (int i = 0; i < N; i++)
    e2e_wait(pids[i], 30);
  char *h = history_of(t, "many");
  assert_int_equal(count_lines(h), N);
  for (int i = 0; i < N; i++)
    assert_true(json_valid(line(h, i, l, sizeof l)));
  line(h, N - 1, l, sizeof l);
  assert_non_null(strstr(l, "\"runs\":[40,10,0,0]"));
  E2E_RUN(t, &r, "last", "--json", "many");
  assert_int_equal(r.code, 0);
  assert_true(json_valid(r.out));
  assert_string_equal(field(r.out, "records", v, sizeof v), "50");
  assert_string_equal(r.err, "");
  free(h);
}

/* 500 runs: the file stays bounded, the last 100 at least are kept, and
 * the counts go on. */
static void the_history_stays_bounded(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char l[1024];
  for (int i = 0; i < 500; i++) {
    E2E_RUN(t, &r, "-n", "often", "--", "@child", "exit", "0");
    assert_int_equal(r.code, 0);
  }
  char *h = history_of(t, "often");
  int n = count_lines(h);
  if (n < 100 || n > 250)
    fail_msg("%d records after 500 runs, not between 100 and 250", n);
  line(h, n - 1, l, sizeof l);
  assert_non_null(strstr(l, "\"runs\":[500,0,0,0]"));
  assert_true(strlen(h) < 100 * 1024);
  free(h);
}

/* What last says, and that unreadable records are skipped with a word. */
static void last_reads_through_corruption(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char v[128], path[600];
  E2E_RUN(t, &r, "-n", "x", "--", "@child", "exit", "0");
  E2E_RUN(t, &r, "-n", "x", "--", "@child", "exit", "2");
  snprintf(path, sizeof path, "%s/x.history", t->state);
  FILE *f = fopen(path, "a");
  assert_non_null(f);
  fputs("{\"v\":1,\"id\":\"torn\n\x01\x02 garbage\n{\"v\":9}\n", f);
  /* and a write a crash cut short: no newline */
  fputs("{\"v\":1,\"id\":\"cut", f);
  fclose(f);
  E2E_RUN(t, &r, "-n", "x", "--", "@child", "exit", "4");
  /* The counts went on from the last whole record, past the cut write and
   * the garbage after it: one success, two failures. */
  char *text = e2e_read(path);
  assert_non_null(strstr(text, "\"exit_code\":4,"));
  assert_non_null(strstr(strstr(text, "\"exit_code\":4,"), "\"runs\":[1,2,0,0]}"));
  free(text);
  E2E_RUN(t, &r, "last", "x");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "exit 4"));
  assert_non_null(strstr(r.err, "4 unreadable record(s)"));
  E2E_RUN(t, &r, "last", "--json", "x", "never-ran");
  assert_true(json_valid(r.out));
  assert_string_equal(field(r.out, "consecutive_failures", v, sizeof v), "2");
  assert_string_equal(field(r.out, "runs_24h", v, sizeof v), "3");
  assert_non_null(strstr(r.out, "\"name\":\"never-ran\",\"last\":null,\"last_success\":null"));
  E2E_RUN(t, &r, "last", "../etc");
  assert_int_equal(r.code, 125);
}

/* An append reads only the end of the file for the counts; where the end
 * holds no whole record (kilobytes of garbage, then a write cut short),
 * the counts still go on from the last one before it. */
static void counts_go_on_past_a_long_unreadable_end(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char path[600];
  for (int i = 0; i < 3; i++)
    E2E_RUN(t, &r, "-n", "y", "--", "@child", "exit", "0");
  snprintf(path, sizeof path, "%s/y.history", t->state);
  FILE *f = fopen(path, "a");
  assert_non_null(f);
  for (int i = 0; i < 40; i++)
    fprintf(f, "%099d\n", i);
  fputs("{\"v\":1,\"id\":\"cut", f);
  fclose(f);
  E2E_RUN(t, &r, "-n", "y", "--", "@child", "exit", "4");
  assert_int_equal(r.code, 4);
  char *text = e2e_read(path);
  char *rec = strstr(text, "\"exit_code\":4,");
  assert_non_null(rec);
  assert_non_null(strstr(rec, "\"runs\":[3,1,0,0]}"));
  assert_int_equal(text[strlen(text) - 1], '\n');
  free(text);
}

/* The dead man's switch: OK while the job succeeded within its bound,
 * CRITICAL as time passes (CTRUN_NOW), WARNING when the last run failed,
 * CRITICAL when it never ran. */
static void check_job_is_a_dead_mans_switch(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char now[32], cmd[1024];
  E2E_RUN(t, &r, "-n", "backup", "--", "@child", "exit", "0");
  E2E_RUN(t, &r, "check", "--job", "backup=26h");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, " job_backup=0s;;93600"));
  /* 28 hours later. */
  snprintf(now, sizeof now, "%lld", (long long)time(NULL) + 28 * 3600);
  snprintf(cmd, sizeof cmd, "CTRUN_NOW=%s CTRUN_STATE_DIR='%s' '%s' check --job backup=26h", now,
           t->state, getenv("CTRUN"));
  FILE *p = popen(cmd, "r");
  char out[2048] = "";
  size_t got = fread(out, 1, sizeof out - 1, p);
  out[got] = '\0';
  int st = pclose(p);
  assert_int_equal(WEXITSTATUS(st), 2);
  assert_non_null(strstr(out, "CTRUN CRITICAL"));
  assert_non_null(strstr(out, "job backup: no success for 1d3h (limit 1d2h)"));
  E2E_RUN(t, &r, "-n", "backup", "--", "@child", "exit", "1");
  E2E_RUN(t, &r, "check", "--job", "backup=26h");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.out, "job backup: last run failed (exit 1)"));
  E2E_RUN(t, &r, "check", "--job", "backup=26h", "--job", "never=1h");
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.out, "job never never succeeded"));
  assert_non_null(strstr(r.out, " job_never=U;;3600"));
  E2E_RUN(t, &r, "check", "--job", "backup");
  assert_int_equal(r.code, 125);
  E2E_RUN(t, &r, "check", "--job", "backup=0");
  assert_int_equal(r.code, 125);
}

/* Prometheus text format, as promtool reads it; -o replaces the file. */
static void metrics_pass_promtool(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char cmd[1024];
  const char *prom = e2e_path(t, "ctrun.prom");
  E2E_RUN(t, &r, "-n", "a", "--", "@child", "exit", "0");
  E2E_RUN(t, &r, "-n", "a", "--", "@child", "exit", "7");
  E2E_RUN(t, &r, "-n", "b.c-d_e", "-t", "0.1", "--", "@child", "sleep", "10");
  E2E_RUN(t, &r, "metrics", "-o", prom);
  assert_int_equal(r.code, 0);
  char *text = e2e_read(prom);
  assert_non_null(strstr(text, "ctrun_runs_total{name=\"a\",result=\"success\"} 1\n"));
  assert_non_null(strstr(text, "ctrun_runs_total{name=\"a\",result=\"failure\"} 1\n"));
  assert_non_null(strstr(text, "ctrun_last_exit_code{name=\"a\"} 7\n"));
  assert_non_null(strstr(text, "ctrun_runs_total{name=\"b.c-d_e\",result=\"timeout\"} 1\n"));
  assert_non_null(strstr(text, "ctrun_running_runs 0\n"));
  free(text);
  snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' 2>&1", prom);
  if (system("command -v promtool >/dev/null 2>&1") != 0)
    fail_msg("promtool is not installed (Debian package prometheus)");
  FILE *p = popen(cmd, "r");
  char out[4096] = "";
  size_t got = fread(out, 1, sizeof out - 1, p);
  out[got] = '\0';
  if (pclose(p) != 0)
    fail_msg("promtool check metrics: %s", out);
  E2E_RUN(t, &r, "metrics", "-o", "/nonexistent/dir/x.prom");
  assert_int_equal(r.code, 125);
}

/* --ok-exit: 24 is a success for --quiet-success, the history and retry;
 * the exit status stays 24. */
static void ok_exit_counts_as_success(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char l[1024], v[32];
  E2E_RUN(t, &r, "-n", "rsync", "--ok-exit", "1,24", "--quiet-success", "--retry", "2",
          "--retry-delay", "0.01", "--", "@child", "out", "noise", "exit", "24");
  assert_int_equal(r.code, 24);
  assert_string_equal(r.out, "");
  char *h = history_of(t, "rsync");
  line(h, 0, l, sizeof l);
  assert_string_equal(field(l, "outcome", v, sizeof v), "success");
  assert_string_equal(field(l, "attempts", v, sizeof v), "1");
  free(h);
  E2E_RUN(t, &r, "-n", "rsync", "--ok-exit", "24", "--quiet-success", "--", "@child", "out",
          "noise", "exit", "23");
  assert_int_equal(r.code, 23);
  assert_string_equal(r.out, "noise\n");
  E2E_RUN(t, &r, "--ok-exit", "300", "--", "@child", "exit", "0");
  assert_int_equal(r.code, 125);
}

/* --jitter: a wait below the bound before anything, not in the run's
 * duration, shown as waiting, and ended at once by a signal. */
static void jitter_waits_and_can_be_interrupted(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  E2E_RUN(t, &r, "-n", "j", "--jitter", "0.5", "--", "@child", "exit", "0");
  assert_int_equal(r.code, 0);
  assert_true(r.secs < 2);
  pid_t run = E2E_START(t, "-n", "j", "--jitter", "1h", "--", "@child", "pidfile",
                        e2e_path(t, "ran"));
  e2e_sleep(0.3);
  E2E_RUN(t, &r, "ps", "--json");
  assert_non_null(strstr(r.out, "\"state\":\"waiting\""));
  double t0 = e2e_now();
  kill(run, SIGTERM);
  assert_int_equal(e2e_wait(run, 10), 128 + SIGTERM);
  assert_true(e2e_now() - t0 < 1);
  assert_false(e2e_wait_file(e2e_path(t, "ran"), 0.1));
  E2E_RUN(t, &r, "--jitter", "0", "--", "@child", "exit", "0");
  assert_int_equal(r.code, 125);
}

/* --on-finish: the run's facts in its environment, contained (what it
 * leaves is killed), and its failure said without changing the exit. */
static void on_finish_runs_contained_with_the_facts(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char cmd[1024], id[64];
  snprintf(cmd, sizeof cmd,
           "echo \"$CTRUN_RUN_ID $CTRUN_NAME $CTRUN_EXIT $CTRUN_REASON $CTRUN_LOG\" > '%s'; "
           "'%s' sleep 300 & exit 3",
           e2e_path(t, "facts"), getenv("CTRUN_TESTCHILD"));
  E2E_RUN(t, &r, "-n", "fin", "-o", e2e_path(t, "log"), "--report", e2e_path(t, "report.json"),
          "--on-finish", cmd, "--", "@child", "exit", "5");
  assert_int_equal(r.code, 5);
  assert_non_null(strstr(r.err, "--on-finish exited 3"));
  char *facts = e2e_read(e2e_path(t, "facts")), *rep = e2e_read(e2e_path(t, "report.json")),
       want[800];
  snprintf(want, sizeof want, "%s fin 5 exit %s\n", field(rep, "id", id, sizeof id),
           e2e_path(t, "log"));
  assert_string_equal(facts, want);
  free(facts);
  free(rep);
  /* The hook's background sleep was its leftover: killed (teardown checks). */
  E2E_RUN(t, &r, "--on-finish", "", "--", "@child", "exit", "0");
  assert_int_equal(r.code, 125);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(every_end_is_recorded),
    E2E_TEST(concurrent_runs_never_tear_a_record),
    E2E_TEST(the_history_stays_bounded),
    E2E_TEST(last_reads_through_corruption),
    E2E_TEST(counts_go_on_past_a_long_unreadable_end),
    E2E_TEST(check_job_is_a_dead_mans_switch),
    E2E_TEST(metrics_pass_promtool),
    E2E_TEST(ok_exit_counts_as_success),
    E2E_TEST(jitter_waits_and_can_be_interrupted),
    E2E_TEST(on_finish_runs_contained_with_the_facts),
  };
  return e2e_main("e2e-history", tests, sizeof tests / sizeof tests[0]);
}
