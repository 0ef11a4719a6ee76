/* End-to-end: --retry (attempts in one run, the lock held throughout,
 * nothing of an attempt left before the next), and the reasons and
 * messages every run ends with. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "json_check.h"

/* How many of the pids listed in FILE are alive; how many listed. */
static int alive_in(const char *file, int *listed) {
  char *text = e2e_read(file), *s = text, *end;
  int n = 0;
  *listed = 0;
  for (long pid; (pid = strtol(s, &end, 10)) > 0; s = end) {
    ++*listed;
    n += e2e_running((pid_t)pid);
  }
  free(text);
  return n;
}

/* Fails twice, then succeeds: three attempts in one run (one id), exit 0,
 * and the lock is never free in between: an outside flock never gets it. */
static void fails_twice_then_succeeds_with_the_lock_held(void **state) {
  struct e2e *t = *state;
  const char *lock = e2e_path(t, "job.lock"), *count = e2e_path(t, "count");
  const char *report = e2e_path(t, "report.json"), *log = e2e_path(t, "log");
  pid_t run = E2E_START(t, "--retry", "2", "--retry-delay", "0.25", "-l", lock, "-o", log,
                        "--report", report, "--", "@child", "env", "CTRUN_RUN_ID", "fails", count,
                        "2", "out", "succeeded");
  int code = -1, probes = 0;
  double t0 = e2e_now();
  assert_true(e2e_wait_file(count, 5));
  /* Probe the lock until the run is over: held every time before the
   * last attempt (after it, ctrun lets go just before it exits). */
  while (e2e_now() - t0 < 30) {
    code = e2e_wait(run, 0.005);
    if (code != -1 || !e2e_running(run))
      break;
    if (!e2e_locked(lock)) {
      char *c = e2e_read(count);
      bool last = strcmp(c, "3\n") == 0;
      free(c);
      if (!last)
        fail_msg("the lock was free between attempts (probe %d)", probes);
    }
    probes++;
  }
  if (code == -1)
    code = e2e_wait(run, 30);
  assert_int_equal(code, 0);
  assert_true(probes > 20);
  assert_false(e2e_locked(lock));
  char *text = e2e_read(log), *rep = e2e_read(report), *c = e2e_read(count);
  assert_string_equal(c, "3\n");
  /* One run id for every attempt: the command printed it each time. */
  char *at = strstr(text, " run="), line[32];
  assert_non_null(at);
  snprintf(line, sizeof line, "\n%.12s\n", at + 5);
  int ids = 0;
  for (char *s = text; (s = strstr(s, line)) != NULL; s++)
    ids++;
  assert_int_equal(ids, 3);
  assert_non_null(strstr(text, "attempt 1 of 3: exit 1; retrying in"));
  assert_non_null(strstr(text, "attempt 2 of 3: exit 1; retrying in"));
  assert_non_null(strstr(text, "succeeded\n"));
  assert_non_null(strstr(text, "end: exit 0 after"));
  assert_non_null(strstr(text, "(3 attempts)"));
  assert_true(json_valid(rep));
  assert_non_null(strstr(rep, "\"exit_code\":0,"));
  assert_non_null(strstr(rep, "\"attempts\":3,\"attempt_results\":[{\"exit_code\":1,\"reason\":\"exit\","));
  assert_non_null(strstr(rep, "},{\"exit_code\":0,\"reason\":\"exit\",\"duration_ms\":"));
  free(text);
  free(rep);
  free(c);
}

/* Each attempt leaves a process behind, one of them ignoring TERM: it is
 * gone before the next attempt starts, so at most one is alive at any
 * time, and none after the run. */
static void no_attempt_leaves_its_tree_running(void **state) {
  struct e2e *t = *state;
  const char *left = e2e_path(t, "left"), *count = e2e_path(t, "count");
  pid_t run = E2E_START(t, "--retry", "3", "--retry-delay", "0.05", "-k", "0.3", "--", "@child",
                        "{", "ignore-term", "pidfile", left, "sleep", "300", "}", "sleep", "0.1",
                        "fails", count, "3");
  int code = -1, most = 0, listed = 0;
  while ((code = e2e_wait(run, 0.002)) == -1 && e2e_running(run)) {
    int n = alive_in(left, &listed);
    if (n > most)
      most = n;
  }
  if (code == -1)
    code = e2e_wait(run, 30);
  assert_int_equal(code, 0);
  assert_int_equal(alive_in(left, &listed), 0);
  assert_int_equal(listed, 4);
  if (most > 1)
    fail_msg("%d leftovers of different attempts were alive at once", most);
}

/* --retry-on timeout: a timeout is retried, a failure is final. */
static void retry_on_timeout_only(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *report = e2e_path(t, "report.json");
  E2E_RUN(t, &r, "--retry", "2", "--retry-on", "timeout", "--retry-delay", "0", "--", "@child",
          "exit", "1");
  assert_int_equal(r.code, 1);
  assert_null(strstr(r.err, "retrying"));
  E2E_RUN(t, &r, "--retry", "2", "--retry-on", "timeout", "--retry-delay", "10ms", "-t", "0.2",
          "--report", report, "--", "@child", "sleep", "30");
  assert_int_equal(r.code, 124);
  char *rep = e2e_read(report);
  assert_non_null(strstr(rep, "\"attempts\":3,"));
  assert_non_null(strstr(rep, "\"reason\":\"timeout\",\"ok\":false,\"timed_out\":true"));
  /* -t counts for each attempt on its own: three of them took 0.6 s. */
  assert_true(r.secs >= 0.55);
  free(rep);
}

/* Exit codes in --retry-on: those, and only those, are retried. */
static void retry_on_exit_codes(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *count = e2e_path(t, "count");
  E2E_RUN(t, &r, "--retry", "3", "--retry-on", "1,75", "--retry-delay", "0", "--", "@child",
          "fails", count, "9");
  assert_int_equal(r.code, 1);
  char *c = e2e_read(count);
  assert_string_equal(c, "4\n");
  free(c);
  E2E_RUN(t, &r, "--retry", "3", "--retry-on", "1,75", "--retry-delay", "0", "--", "@child",
          "exit", "2");
  assert_int_equal(r.code, 2);
  assert_null(strstr(r.err, "retrying"));
}

/* A signal that ends a run, during the wait to retry, ends it at once. */
static void term_during_the_delay_ends_the_run_at_once(void **state) {
  struct e2e *t = *state;
  const char *report = e2e_path(t, "report.json"), *err;
  pid_t run = E2E_START(t, "--retry", "5", "--retry-delay", "30", "--report", report, "--",
                        "@child", "exit", "3");
  double t0 = e2e_now();
  e2e_sleep(0.05);
  err = e2e_bg_err(t);
  char *text = NULL;
  while (e2e_now() - t0 < 10) {
    free(text);
    text = e2e_read(err);
    if (strstr(text, "retrying in") != NULL)
      break;
    e2e_sleep(0.01);
  }
  assert_non_null(strstr(text, "attempt 1 of 6: exit 3; retrying in"));
  free(text);
  t0 = e2e_now();
  kill(run, SIGTERM);
  assert_int_equal(e2e_wait(run, 10), 128 + SIGTERM);
  assert_true(e2e_now() - t0 < 2);
  char *rep = e2e_read(report);
  assert_non_null(strstr(rep, "\"reason\":\"signal\""));
  assert_non_null(strstr(rep, "\"attempts\":1,"));
  free(rep);
}

/* ctrun stop: the log and the report say stopped, not timed out, and the
 * status is 124; during the wait to retry too. */
static void stop_is_logged_as_stopped(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *log = e2e_path(t, "log"), *report = e2e_path(t, "report.json");
  pid_t run = E2E_START(t, "-n", "to-stop", "-o", log, "--report", report, "--", "@child",
                        "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 5));
  E2E_RUN(t, &r, "stop", "to-stop");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_wait(run, 10), 124);
  char *text = e2e_read(log), *rep = e2e_read(report), *err = e2e_read(e2e_bg_err(t));
  assert_non_null(strstr(text, "end: stopped, exit 124 after"));
  assert_null(strstr(text, "timed out"));
  assert_null(strstr(err, "timed out"));
  assert_non_null(strstr(err, "stopped on request"));
  assert_non_null(strstr(rep, "\"reason\":\"stopped\""));
  free(text);
  free(rep);
  free(err);
  /* While it waits to retry. */
  run = E2E_START(t, "-n", "to-stop", "--retry", "3", "--retry-delay", "30", "--report", report,
                  "--", "@child", "exit", "1");
  for (int i = 0; i < 1000 && strstr(err = e2e_read(e2e_bg_err(t)), "retrying") == NULL;
       i++) {
    free(err);
    e2e_sleep(0.01);
  }
  free(err);
  E2E_RUN(t, &r, "stop", "to-stop");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_wait(run, 10), 124);
  rep = e2e_read(report);
  assert_non_null(strstr(rep, "\"reason\":\"stopped\""));
  free(rep);
}

/* A duration given is printed as given, to the millisecond: never
 * rounded down. */
static void messages_print_durations_exactly(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-t", "1.67s", "--", "@child", "sleep", "30");
  assert_int_equal(r.code, 124);
  assert_non_null(strstr(r.err, "timed out after 1.67s;"));
  E2E_RUN(*state, &r, "-t", "250ms", "--", "@child", "sleep", "30");
  assert_non_null(strstr(r.err, "timed out after 250ms;"));
  E2E_RUN(*state, &r, "--idle-timeout", "0.3", "--", "@child", "sleep", "30");
  assert_non_null(strstr(r.err, "no output for 300ms;"));
}

/* ctrun check --max-age: a live run older than that is a WARNING. */
static void check_warns_of_old_runs(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  pid_t run = E2E_START(t, "-n", "old-one", "--", "@child", "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 5));
  E2E_RUN(t, &r, "check", "--max-age", "1h");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, " old=0 "));
  e2e_sleep(0.5);
  E2E_RUN(t, &r, "check", "--max-age", "0.3s");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.out, "CTRUN WARNING - 1 runs,"));
  assert_non_null(strstr(r.out, ", 1 older than 300ms |"));
  assert_non_null(strstr(r.out, " old=1 "));
  E2E_RUN(t, &r, "check", "--json", "--max-age", "0.3s");
  assert_true(json_valid(r.out));
  assert_non_null(strstr(r.out, "\"old\":1,"));
  E2E_RUN(t, &r, "stop", "old-one");
  assert_int_equal(e2e_wait(run, 10), 124);
}

/* Where there is no process table (the generic POSIX host), --child-timeout
 * is refused before anything runs: 125, no log, no command. */
static void child_timeout_without_a_process_table_is_refused(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *ran = e2e_path(t, "ran"), *log = e2e_path(t, "log");
  if (e2e_has_extras())
    skip(); /* this host has one: e2e-govern tests the option */
  E2E_RUN(t, &r, "-d", "-o", log, "--child-timeout", "1s", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "--child-timeout needs a process table"));
  assert_false(e2e_wait_file(ran, 0.2));
  assert_false(e2e_wait_file(log, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(fails_twice_then_succeeds_with_the_lock_held),
    E2E_TEST(no_attempt_leaves_its_tree_running),
    E2E_TEST(retry_on_timeout_only),
    E2E_TEST(retry_on_exit_codes),
    E2E_TEST(term_during_the_delay_ends_the_run_at_once),
    E2E_TEST(stop_is_logged_as_stopped),
    E2E_TEST(messages_print_durations_exactly),
    E2E_TEST(check_warns_of_old_runs),
    E2E_TEST(child_timeout_without_a_process_table_is_refused),
  };
  return e2e_main("e2e-retry", tests, sizeof tests / sizeof tests[0]);
}
