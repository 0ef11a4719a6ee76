/* End-to-end: processes that leave the process group (setsid, double fork)
 * and the death of ctrun itself.  Needs the Linux extras (subreaper,
 * parent-death signal, /proc); skipped (77) on the generic POSIX path,
 * which documents that it cannot catch these. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void setsid_escapee_is_killed_on_timeout(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-t", "0.3", "-k", "0.3", "--", "@child", "{", "setsid", "ignore-term",
          "sleep", "300", "}", "sleep", "300");
  assert_int_equal(r.code, 124);
  assert_true(r.secs < 10);
}

static void double_fork_setsid_escapee_is_killed_as_leftover(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--", "@child", "{", "{", "setsid", "sleep", "300", "}", "}", "sleep", "0.1",
          "exit", "0");
  assert_int_equal(r.code, 0);
  assert_true(r.secs < 10);
}

static void escapee_ignoring_term_needs_the_hard_kill(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-k", "0.3", "--", "@child", "{", "{", "setsid", "ignore-term", "sleep",
          "300", "}", "}", "sleep", "0.1", "exit", "7");
  assert_int_equal(r.code, 7);
  assert_true(r.secs >= 0.35 && r.secs < 10);
}

static void sigkill_of_ctrun_kills_its_direct_child(void **state) {
  struct e2e *t = *state;
  pid_t pid = E2E_START(t, "--", "@child", "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 5)); /* ctrun and its command */
  kill(pid, SIGKILL);
  assert_int_equal(e2e_wait(pid, 5), 128 + SIGKILL);
  double end = e2e_now() + 5;
  while (e2e_count_marked(t) > 0 && e2e_now() < end)
    e2e_sleep(0.01);
  assert_int_equal(e2e_count_marked(t), 0);
  e2e_forgive_orphans(); /* the dead child came to the runner, as it must */
}

/* Fault injection: the supervisor dies with its tree (and a setsid
 * escapee) still running; ps must call the run stale, cleanup --dry-run
 * must change nothing, and cleanup must leave nothing of it. */
static void cleanup_finds_what_a_killed_supervisor_left(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  pid_t pid = E2E_START(t, "-n", "crashy", "--", "@child", "{", "setsid", "ignore-term", "sleep",
                        "300", "}", "{", "sleep", "300", "}", "sleep", "300");
  assert_true(e2e_wait_marked(t, 4, 5));
  kill(pid, SIGKILL);
  assert_int_equal(e2e_wait(pid, 5), 128 + SIGKILL);
  e2e_sleep(0.2);
  /* The direct child died with ctrun; its children and the escapee live. */
  assert_int_equal(e2e_count_marked(t), 2);

  E2E_RUN(t, &r, "ps", "--json");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "\"state\":\"stale\""));
  assert_non_null(strstr(r.out, "\"procs\":2"));

  E2E_RUN(t, &r, "cleanup", "--dry-run");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "would clean"));
  assert_int_equal(e2e_count_marked(t), 2);

  E2E_RUN(t, &r, "check");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.out, "1 stale"));

  E2E_RUN(t, &r, "cleanup");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "cleaned stale run"));
  assert_int_equal(e2e_count_marked(t), 0);

  E2E_RUN(t, &r, "ps", "--json");
  assert_string_equal(r.out, "[]\n");
  e2e_forgive_orphans(); /* what cleanup killed was the runner's to reap */
}

/* Where the kernel refuses the subreaper, a setsid escapee is still found,
 * by its run tag in the process table, and killed. */
static void escapee_dies_even_where_the_subreaper_is_refused(void **state) {
  struct e2e *t = *state;
  pid_t pid = fork();
  if (pid == 0) {
    if (e2e_forbid_subreaper() != 0)
      _exit(77);
    setenv("CTRUN_STATE_DIR", t->state, 1);
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    int fd = open("/dev/null", O_RDWR);
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(getenv("CTRUN"), "ctrun", "-t", "0.3", "-k", "0.3", "--", getenv("CTRUN_TESTCHILD"), "{",
          "setsid", "ignore-term", "sleep", "300", "}", "sleep", "300", (char *)NULL);
    _exit(200);
  }
  e2e_own(pid);
  int code = e2e_wait(pid, 20);
  if (code == 77)
    skip(); /* no seccomp here */
  assert_int_equal(code, 124);
  assert_int_equal(e2e_count_marked(t), 0);
  e2e_forgive_orphans(); /* without a subreaper, orphans come to the runner */
}

/* A supervisor killed with its tree running: a stale run with remains. */
static void crash_a_run(struct e2e *t, const char *name) {
  pid_t pid = E2E_START(t, "-n", name, "--", "@child", "{", "setsid", "sleep", "300", "}", "{",
                        "sleep", "300", "}", "sleep", "300");
  assert_true(e2e_wait_marked(t, 4, 5));
  kill(pid, SIGKILL);
  assert_int_equal(e2e_wait(pid, 5), 128 + SIGKILL);
  e2e_sleep(0.2);
  assert_int_equal(e2e_count_marked(t), 2);
}

static void stop_of_a_stale_run_cleans_it(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  crash_a_run(t, "crashed");
  E2E_RUN(t, &r, "stop", "crashed");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_count_marked(t), 0);
  E2E_RUN(t, &r, "ps", "--json");
  assert_string_equal(r.out, "[]\n");
  e2e_forgive_orphans();
}

static void check_cleans_up_when_critical(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  crash_a_run(t, "crashed");
  /* Not critical: --cleanup does nothing. */
  E2E_RUN(t, &r, "check", "--crit", "3", "--cleanup");
  assert_int_equal(r.code, 1); /* WARNING: a stale run */
  assert_int_equal(e2e_count_marked(t), 2);
  E2E_RUN(t, &r, "check", "--warn", "1", "--crit", "2", "--cleanup");
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.out, "CTRUN CRITICAL - 1 runs, 2 processes, 1 stale"));
  assert_non_null(strstr(r.out, "stale runs cleaned up"));
  assert_int_equal(e2e_count_marked(t), 0);
  E2E_RUN(t, &r, "check");
  assert_int_equal(r.code, 0);
  e2e_forgive_orphans();
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(setsid_escapee_is_killed_on_timeout),
    E2E_TEST(double_fork_setsid_escapee_is_killed_as_leftover),
    E2E_TEST(escapee_ignoring_term_needs_the_hard_kill),
    E2E_TEST(sigkill_of_ctrun_kills_its_direct_child),
    E2E_TEST(cleanup_finds_what_a_killed_supervisor_left),
    E2E_TEST(stop_of_a_stale_run_cleans_it),
    E2E_TEST(escapee_dies_even_where_the_subreaper_is_refused),
    E2E_TEST(check_cleans_up_when_critical),
  };
  if (!e2e_has_extras()) {
    fprintf(stderr, "generic POSIX containment: escapees are out of reach by design\n");
    return 77;
  }
  return e2e_main("e2e-escape", tests, sizeof tests / sizeof tests[0]);
}
