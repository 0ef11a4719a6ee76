/* End-to-end: lock files (-l, -w, --on-busy). */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* A run holding the lock until it is stopped. */
static pid_t hold(struct e2e *t, const char *lock, const char *name) {
  pid_t pid = E2E_START(t, "-n", name, "-l", lock, "--", "@child", "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 5)); /* ctrun holds the lock once its command runs */
  return pid;
}

static void release(pid_t holder) {
  kill(holder, SIGTERM);
  assert_int_equal(e2e_wait(holder, 10), 128 + SIGTERM);
}

static void busy_lock_fails_with_75_and_names_the_holder(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  char want[64];
  pid_t holder = hold(t, lock, "nightly-sync");
  E2E_RUN(t, &r, "-l", lock, "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 75);
  assert_true(r.secs < 5);
  assert_false(exists(ran));
  snprintf(want, sizeof want, "held by pid %d (nightly-sync, running for", (int)holder);
  if (strstr(r.err, want) == NULL)
    fail_msg("message '%s' does not name the holder", r.err);
  release(holder);
  assert_true(exists(lock)); /* never deleted */
}

static void skip_exits_0_without_running(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  pid_t holder = hold(t, lock, "holder");
  E2E_RUN(t, &r, "-l", lock, "--on-busy=skip", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 0);
  assert_string_equal(r.err, "");
  assert_false(exists(ran));
  E2E_RUN(t, &r, "-v", "-l", lock, "--on-busy", "skip", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.err, "skipping"));
  assert_false(exists(ran));
  release(holder);
}

static void wait_then_run_and_the_timeout_starts_after_the_lock(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  double t0 = e2e_now();
  pid_t holder = E2E_START(t, "-l", lock, "--", "@child", "sleep", "3");
  assert_true(e2e_wait_marked(t, 2, 30));
  /* -t 2 would expire during the wait (about 3 s, on a quiet machine) if
   * it counted from the start. */
  E2E_RUN(t, &r, "-l", lock, "-w", "30", "-t", "2", "--", "@child", "sleep", "0.2", "pidfile", ran);
  assert_int_equal(r.code, 0);
  assert_true(e2e_now() - t0 >= 3);
  assert_true(exists(ran));
  assert_int_equal(e2e_wait(holder, 10), 0);
}

static void wait_expires_with_75(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  pid_t holder = hold(t, lock, "holder");
  E2E_RUN(t, &r, "-l", lock, "-w", "0.4", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 75);
  assert_true(r.secs >= 0.35 && r.secs < 5);
  assert_false(exists(ran));
  release(holder);
}

static void command_does_not_inherit_the_lock(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-l", e2e_path(*state, "job.lock"), "--", "@child", "fds");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "none\n");
}

/* Whether the file at PATH holds LEN bytes, all newlines: a holder's
 * text blanked by its release. */
static bool blank(const char *path, size_t len) {
  char *text = e2e_read(path);
  bool ok = text != NULL && strlen(text) == len && strspn(text, "\n") == len;
  free(text);
  return ok;
}

/* The busy message names NAME as the holder of LOCK. */
static void busy_names(struct e2e *t, const char *lock, const char *name, pid_t holder) {
  struct e2e_result r;
  char want[128];
  E2E_RUN(t, &r, "-l", lock, "--", "@child", "exit", "0");
  assert_int_equal(r.code, 75);
  snprintf(want, sizeof want, "held by pid %d (%s, running for", (int)holder, name);
  if (strstr(r.err, want) == NULL)
    fail_msg("message '%s' does not name the holder", r.err);
}

static void lock_is_free_when_ctrun_returns(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock");
  struct stat st;
  pid_t holder;
  /* The command leaves a background process; ctrun kills it, then lets go. */
  E2E_RUN(t, &r, "-l", lock, "--", "@child", "{", "sleep", "300", "}", "exit", "0");
  assert_int_equal(r.code, 0);
  E2E_RUN(t, &r, "-n", "a-rather-long-name-for-a-run", "-l", lock, "--", "@child", "exit", "0");
  assert_int_equal(r.code, 0);
  /* The holder text goes with the holder: blanked in place, not cut off
   * (the file keeps the longest text's length). */
  assert_int_equal(stat(lock, &st), 0);
  assert_true(st.st_size > 0);
  assert_true(blank(lock, (size_t)st.st_size));
  /* A shorter text over the blank reads whole, and goes the same way. */
  holder = hold(t, lock, "s");
  busy_names(t, lock, "s", holder);
  release(holder);
  assert_true(blank(lock, (size_t)st.st_size));
  /* A holder killed outright leaves its text, longer than any so far;
   * the next one, shorter, writes over it, and nothing of the old one is
   * read. */
  FILE *f = fopen(lock, "w");
  assert_non_null(f);
  fputs("pid=4194304\nid=0123456789ab\nname=an-even-longer-name-of-a-killed-run\n"
        "started=1700000000000\n", f);
  fclose(f);
  assert_int_equal(stat(lock, &st), 0);
  holder = hold(t, lock, "s");
  busy_names(t, lock, "s", holder);
  release(holder);
  assert_true(blank(lock, (size_t)st.st_size));
}

static void bad_lock_paths_are_usage_errors(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *ran = e2e_path(t, "ran");
  const char *bad[] = { "/nonexistent-dir-ctrun/x.lock", t->dir, "/etc/passwd/x.lock" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    E2E_RUN(t, &r, "-l", bad[i], "--", "@child", "pidfile", ran);
    assert_int_equal(r.code, 125);
    assert_non_null(strstr(r.err, bad[i]));
    assert_false(exists(ran));
  }
  E2E_RUN(t, &r, "-l", "", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  /* A link planted where the lock should be is refused. */
  const char *link = e2e_path(t, "planted.lock");
  assert_int_equal(symlink(e2e_path(t, "target"), link), 0);
  E2E_RUN(t, &r, "-l", link, "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "symbolic link"));
  assert_false(exists(e2e_path(t, "target")));
  assert_false(exists(ran));
}

/* Many runs of one locked command with -w inf never overlap, and all run. */
static void contention_never_overlaps(void **state) {
  struct e2e *t = *state;
  enum { N = 16 };
  pid_t pids[N];
  const char *lock = e2e_path(t, "job.lock");
  char dir[512];
  snprintf(dir, sizeof dir, "%s", t->dir);
  for (int i = 0; i < N; i++)
    pids[i] = E2E_START(t, "-l", lock, "-w", "inf", "--", "@child", "crit", dir);
  for (int i = 0; i < N; i++)
    assert_int_equal(e2e_wait(pids[i], 60), 0);
  char *entered = e2e_read(e2e_path(t, "entered"));
  int lines = 0;
  for (char *s = entered; *s; s++)
    lines += *s == '\n';
  free(entered);
  assert_int_equal(lines, N);
}

static void many_skips_against_a_held_lock_run_nothing(void **state) {
  struct e2e *t = *state;
  enum { N = 30 };
  pid_t pids[N];
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  pid_t holder = hold(t, lock, "holder");
  for (int i = 0; i < N; i++)
    pids[i] = E2E_START(t, "-l", lock, "--on-busy=skip", "--", "@child", "pidfile", ran);
  for (int i = 0; i < N; i++)
    assert_int_equal(e2e_wait(pids[i], 30), 0);
  assert_false(exists(ran));
  release(holder);
}

static void replace_stops_the_holder_then_runs(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock");
  pid_t holder = E2E_START(t, "-n", "old", "-k", "0.3", "-l", lock, "--", "@child", "ignore-term",
                           "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 5));
  E2E_RUN(t, &r, "-l", lock, "--on-busy=replace", "--", "@child", "out", "replaced");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "replaced\n");
  assert_int_equal(e2e_wait(holder, 10), 124); /* stopped as a timeout would */
}

static void replace_refuses_an_untracked_holder(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock");
  char cmd[1024];
  /* Hold the lock with flock(1)-style code outside ctrun: a holder that no
   * registry knows. */
  pid_t pid = fork();
  if (pid == 0) {
    snprintf(cmd, sizeof cmd, "exec 9>'%s'; flock 9; : >'%s'; exec sleep 300", lock,
             e2e_path(t, "ready"));
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(1);
  }
  e2e_own(pid);
  assert_true(e2e_wait_file(e2e_path(t, "ready"), 5)); /* it holds the lock */
  E2E_RUN(t, &r, "-l", lock, "--on-busy=replace", "--", "@child", "out", "ran");
  assert_int_equal(r.code, 75);
  assert_non_null(strstr(r.err, "not a tracked run"));
  assert_string_equal(r.out, "");
  kill(pid, SIGKILL);
  e2e_wait(pid, 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(busy_lock_fails_with_75_and_names_the_holder),
    E2E_TEST(skip_exits_0_without_running),
    E2E_TEST(wait_then_run_and_the_timeout_starts_after_the_lock),
    E2E_TEST(wait_expires_with_75),
    E2E_TEST(command_does_not_inherit_the_lock),
    E2E_TEST(lock_is_free_when_ctrun_returns),
    E2E_TEST(bad_lock_paths_are_usage_errors),
    E2E_TEST(contention_never_overlaps),
    E2E_TEST(many_skips_against_a_held_lock_run_nothing),
    E2E_TEST(replace_stops_the_holder_then_runs),
    E2E_TEST(replace_refuses_an_untracked_holder),
  };
  return e2e_main("e2e-lock", tests, sizeof tests / sizeof tests[0]);
}
