/* End-to-end: --on-busy=queue (at most one run waits behind the holder;
 * later ones exit 0), and -d with a busy lock decided in the caller. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int lines(const char *path) {
  char *text = e2e_read(path);
  int n = 0;
  for (char *s = text; *s; s++)
    n += *s == '\n';
  free(text);
  return n;
}

/* A run holding LOCK for SECS, once it has made its own pass through the
 * critical section of DIR (the lock is taken before the command starts:
 * the lock alone does not say that the pass is made). */
static pid_t hold(struct e2e *t, const char *lock, const char *dir, const char *secs) {
  char entered[600];
  pid_t pid = E2E_START(t, "-n", "holder", "-l", lock, "--", "@child", "crit", dir, "sleep", secs);
  snprintf(entered, sizeof entered, "%s/entered", dir);
  for (int i = 0; i < 500 && lines(entered) < 1; i++)
    e2e_sleep(0.01);
  assert_int_equal(lines(entered), 1);
  assert_true(e2e_locked(lock));
  return pid;
}

/* 30 runs at once against a holder: exactly one more pass through the
 * critical section after the holder's, never two at once; the rest exit 0
 * at once. */
static void thirty_queued_runs_make_one_more_run(void **state) {
  struct e2e *t = *state;
  enum { N = 30 };
  pid_t pids[N];
  const char *lock = e2e_path(t, "job.lock"), *entered = e2e_path(t, "entered");
  char dir[512];
  snprintf(dir, sizeof dir, "%s", t->dir);
  pid_t holder = hold(t, lock, dir, "1.5");
  for (int i = 0; i < N; i++)
    pids[i] = E2E_START(t, "-l", lock, "--on-busy=queue", "--", "@child", "crit", dir);
  for (int i = 0; i < N; i++)
    assert_int_equal(e2e_wait(pids[i], 60), 0);
  assert_int_equal(e2e_wait(holder, 30), 0);
  assert_int_equal(lines(entered), 2);
}

/* The same with -d: every caller returns at once (0), the one waiter runs
 * after the holder, the others cost no supervisor at all. */
static void detached_queue_returns_at_once(void **state) {
  struct e2e *t = *state;
  enum { N = 20 };
  pid_t pids[N];
  const char *lock = e2e_path(t, "job.lock"), *entered = e2e_path(t, "entered");
  char dir[512];
  snprintf(dir, sizeof dir, "%s", t->dir);
  pid_t holder = hold(t, lock, dir, "1.5");
  double t0 = e2e_now();
  for (int i = 0; i < N; i++)
    pids[i] = E2E_START(t, "-d", "-l", lock, "--on-busy=queue", "--", "@child", "crit", dir);
  for (int i = 0; i < N; i++)
    assert_int_equal(e2e_wait(pids[i], 30), 0);
  /* All back long before the holder lets go. */
  assert_true(e2e_now() - t0 < 1.2);
  assert_int_equal(lines(entered), 1);
  assert_int_equal(e2e_wait(holder, 30), 0);
  for (int i = 0; i < 500 && lines(entered) < 2; i++)
    e2e_sleep(0.01);
  assert_true(e2e_wait_unmarked(t, 10));
  assert_int_equal(lines(entered), 2);
  e2e_forgive_orphans(); /* the detached supervisor was adopted by the runner */
}

/* -w bounds the one waiter's wait: then 75, saying so; while it waits,
 * another queued run exits 0 at once. */
static void the_waiter_is_bounded_by_w(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  char dir[512];
  snprintf(dir, sizeof dir, "%s", t->dir);
  pid_t holder = hold(t, lock, dir, "300");
  pid_t waiter = E2E_START(t, "-l", lock, "--on-busy=queue", "-w", "1.5", "--", "@child",
                           "pidfile", ran);
  e2e_sleep(0.3);
  E2E_RUN(t, &r, "-v", "-l", lock, "--on-busy=queue", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 0);
  assert_true(r.secs < 1);
  assert_non_null(strstr(r.err, "another run already waits"));
  assert_int_equal(e2e_wait(waiter, 10), 75);
  char *err = NULL;
  for (int i = 1; i < 100; i++) {
    char path[64];
    snprintf(path, sizeof path, "bg-%d.err", i);
    if (access(e2e_path(t, path), F_OK) == 0) {
      free(err);
      err = e2e_read(e2e_path(t, path));
    }
  }
  assert_non_null(err);
  assert_non_null(strstr(err, "still held after waiting 1.5s in the queue"));
  free(err);
  assert_false(e2e_wait_file(ran, 0));
  kill(holder, SIGTERM);
  assert_int_equal(e2e_wait(holder, 10), 128 + SIGTERM);
}

/* A signal ends the wait in the queue: nothing runs (128+N). */
static void a_signal_ends_the_wait_in_the_queue(void **state) {
  struct e2e *t = *state;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  char dir[512];
  snprintf(dir, sizeof dir, "%s", t->dir);
  pid_t holder = hold(t, lock, dir, "300");
  pid_t waiter = E2E_START(t, "-l", lock, "--on-busy=queue", "--", "@child", "pidfile", ran);
  e2e_sleep(0.3);
  kill(waiter, SIGTERM);
  assert_int_equal(e2e_wait(waiter, 10), 128 + SIGTERM);
  assert_false(e2e_wait_file(ran, 0));
  kill(holder, SIGTERM);
  assert_int_equal(e2e_wait(holder, 10), 128 + SIGTERM);
}

/* -d --on-busy=skip or fail against a held lock is decided before any
 * fork: shown as an ordinary user allowed no second process, for whom a
 * fork would fail ("cannot detach", 125). */
static void busy_detached_runs_decide_before_forking(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  char dir[512], nstate[600];
  if (geteuid() != 0)
    skip(); /* needs root to become another user */
  snprintf(dir, sizeof dir, "%s", t->dir);
  pid_t holder = hold(t, lock, dir, "300");
  assert_int_equal(chmod(t->dir, 0777), 0);
  assert_int_equal(chmod(lock, 0666), 0);
  snprintf(nstate, sizeof nstate, "%s/nobody-state", t->dir);
  assert_int_equal(mkdir(nstate, 0700), 0);
  assert_int_equal(chown(nstate, 65534, 65534), 0);
  /* (LeakSanitizer's exit check needs a thread of its own, which nproc 1
   * refuses: off for these runs, in a sanitized build.) */
  E2E_RUN_CMD(t, &r, "@child", "setenv", "CTRUN_STATE_DIR", nstate, "setenv", "ASAN_OPTIONS",
              "detect_leaks=0", "nproc", "1", "setuid", "65534", "exec", "@ctrun", "-d", "-l", lock,
              "--on-busy=skip", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "");
  E2E_RUN_CMD(t, &r, "@child", "setenv", "CTRUN_STATE_DIR", nstate, "setenv", "ASAN_OPTIONS",
              "detect_leaks=0", "nproc", "1", "setuid", "65534", "exec", "@ctrun", "-d", "-l", lock,
              "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 75);
  assert_non_null(strstr(r.err, "is held by pid"));
  /* The lock free: the fork is needed, and refused, as before. */
  kill(holder, SIGTERM);
  assert_int_equal(e2e_wait(holder, 10), 128 + SIGTERM);
  E2E_RUN_CMD(t, &r, "@child", "setenv", "CTRUN_STATE_DIR", nstate, "setenv", "ASAN_OPTIONS",
              "detect_leaks=0", "nproc", "1", "setuid", "65534", "exec", "@ctrun", "-d", "-l", lock,
              "--on-busy=skip", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_false(e2e_wait_file(ran, 0));
}

/* A skipped detached run with --report still writes it, from the caller. */
static void skipped_detached_run_reports(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock"), *report = e2e_path(t, "report.json");
  char dir[512];
  snprintf(dir, sizeof dir, "%s", t->dir);
  pid_t holder = hold(t, lock, dir, "300");
  E2E_RUN(t, &r, "-d", "-l", lock, "--on-busy=skip", "--report", report, "--", "@child", "exit",
          "0");
  assert_int_equal(r.code, 0);
  char *rep = e2e_read(report);
  assert_non_null(strstr(rep, "\"skipped\":true"));
  assert_non_null(strstr(rep, "\"reason\":\"skipped\""));
  assert_non_null(strstr(rep, "\"attempts\":0,"));
  free(rep);
  kill(holder, SIGTERM);
  assert_int_equal(e2e_wait(holder, 10), 128 + SIGTERM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(thirty_queued_runs_make_one_more_run),
    E2E_TEST(detached_queue_returns_at_once),
    E2E_TEST(the_waiter_is_bounded_by_w),
    E2E_TEST(a_signal_ends_the_wait_in_the_queue),
    E2E_TEST(busy_detached_runs_decide_before_forking),
    E2E_TEST(skipped_detached_run_reports),
  };
  return e2e_main("e2e-queue", tests, sizeof tests / sizeof tests[0]);
}
