/* End-to-end: --child-timeout, a timeout on every process of the tree but
 * the command.  Skipped (77) on the generic POSIX path, which has no
 * process table to find the tree's processes and their ages in. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "json_check.h"

/* The first pid listed in FILE, waiting up to 5 s for it. */
static pid_t pid_in(const char *file) {
  char *text;
  pid_t pid;
  assert_true(e2e_wait_file(file, 5));
  for (int i = 0; i < 500; i++) {
    text = e2e_read(file);
    pid = (pid_t)atoi(text);
    free(text);
    if (pid > 0)
      return pid;
    e2e_sleep(0.01);
  }
  fail_msg("no pid in %s", file);
  return -1;
}

/* Seconds until PID is gone (at most LIMIT; -1 if it outlived that). */
static double gone_within(pid_t pid, double limit) {
  double t0 = e2e_now();
  while (e2e_now() - t0 < limit) {
    if (!e2e_running(pid))
      return e2e_now() - t0;
    e2e_sleep(0.01);
  }
  return -1;
}

/* The helper keeps running while its hung grandchild is killed at the
 * limit; the command exits by itself with its own status. */
static void hung_grandchild_is_killed_and_the_helper_runs_on(void **state) {
  struct e2e *t = *state;
  const char *pids = e2e_path(t, "grandchild"), *log = e2e_path(t, "log");
  const char *report = e2e_path(t, "report.json");
  double t0 = e2e_now();
  pid_t run = E2E_START(t, "--child-timeout", "0.6s", "-o", log, "--report", report, "--",
                        "@child", "{", "{", "comm", "hungchild", "pidfile", pids, "sleep", "300",
                        "}", "}", "sleep", "2", "out", "helper-done", "exit", "3");
  pid_t victim = pid_in(pids);
  double left = gone_within(victim, 10);
  double at = e2e_now() - t0;
  assert_true(left >= 0);
  /* Killed at 0.6 s (plus one check interval and slack), long before the
   * helper ends at 2 s. */
  if (at < 0.5 || at > 1.8)
    fail_msg("the hung grandchild went at %.2f s, not at about 0.6 s", at);
  assert_int_equal(e2e_wait(run, 30), 3);
  assert_true(e2e_now() - t0 >= 1.9);
  char *text = e2e_read(log), *rep = e2e_read(report), *err = e2e_read(e2e_bg_err(t));
  char want[128];
  snprintf(want, sizeof want, "killed hung child hungchild (pid %d) after 600ms", (int)victim);
  if (strstr(text, want) == NULL)
    fail_msg("the log does not say '%s': %s", want, text);
  assert_non_null(strstr(text, "helper-done"));
  assert_non_null(strstr(text, "end: exit 3 after"));
  assert_non_null(strstr(err, want));
  assert_true(json_valid(rep));
  assert_non_null(strstr(rep, "\"children_killed\":1,"));
  assert_non_null(strstr(rep, "\"reason\":\"exit\""));
  free(text);
  free(rep);
  free(err);
}

/* One that ignores TERM gets the hard kill after -k; -q says nothing. */
static void term_ignoring_child_is_killed_at_k(void **state) {
  struct e2e *t = *state;
  const char *pids = e2e_path(t, "child");
  double t0 = e2e_now();
  pid_t run = E2E_START(t, "-q", "--child-timeout", "0.4", "-k", "0.8", "--", "@child", "{",
                        "ignore-term", "pidfile", pids, "sleep", "300", "}", "sleep", "2.5");
  pid_t victim = pid_in(pids);
  assert_true(gone_within(victim, 10) >= 0);
  double at = e2e_now() - t0;
  if (at < 1.1 || at > 2.4)
    fail_msg("the TERM-ignoring child went at %.2f s, not at about 0.4 + 0.8 s", at);
  assert_true(e2e_running(run));
  assert_int_equal(e2e_wait(run, 30), 0);
  char *err = e2e_read(e2e_bg_err(t));
  assert_string_equal(err, "");
  free(err);
}

/* The command itself is never hit, however long it runs. */
static void the_command_itself_is_never_hit(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--child-timeout", "0.2", "--", "@child", "sleep", "1", "out", "done");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "done\n");
  assert_string_equal(r.err, "");
}

/* The first victim being the only other process of the tree is how a
 * self-daemonizing helper looks: the message says what to do. */
static void a_lone_child_gets_the_daemon_hint(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--child-timeout", "0.3", "--leftovers", "wait", "--", "@child", "{",
          "setsid", "sleep", "300", "}", "exit", "0");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.err, "killed hung child"));
  assert_non_null(strstr(r.err, "foreground"));
  /* Two children, the first killed is not alone: no hint. */
  E2E_RUN(*state, &r, "--child-timeout", "0.3", "--", "@child", "{", "sleep", "300", "}", "{",
          "sleep", "0.8", "}", "sleep", "1.2");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.err, "killed hung child"));
  assert_null(strstr(r.err, "foreground"));
}

/* ctrun ps --json counts the children killed while the run lives. */
static void ps_counts_children_killed(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *pids = e2e_path(t, "child");
  pid_t run = E2E_START(t, "-n", "govern-ps", "--child-timeout", "0.3", "--", "@child", "{",
                        "pidfile", pids, "sleep", "300", "}", "sleep", "300");
  assert_true(gone_within(pid_in(pids), 10) >= 0);
  e2e_sleep(0.1);
  E2E_RUN(t, &r, "ps", "--json");
  assert_int_equal(r.code, 0);
  assert_true(json_valid(r.out));
  if (strstr(r.out, "\"children_killed\":1") == NULL)
    fail_msg("ps --json does not count the child: %s", r.out);
  E2E_RUN(t, &r, "check");
  assert_non_null(strstr(r.out, "children_killed=1"));
  E2E_RUN(t, &r, "stop", "govern-ps");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_wait(run, 30), 124);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(hung_grandchild_is_killed_and_the_helper_runs_on),
    E2E_TEST(term_ignoring_child_is_killed_at_k),
    E2E_TEST(the_command_itself_is_never_hit),
    E2E_TEST(a_lone_child_gets_the_daemon_hint),
    E2E_TEST(ps_counts_children_killed),
  };
  if (!e2e_has_extras()) {
    fprintf(stderr, "generic POSIX containment: no process table, so no --child-timeout\n");
    return 77;
  }
  return e2e_main("e2e-govern", tests, sizeof tests / sizeof tests[0]);
}
