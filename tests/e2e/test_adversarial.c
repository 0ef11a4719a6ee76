/* End-to-end: ctrun started by a hostile parent or on a broken host, and
 * the files and signals a hostile user controls.  Each test stands for a
 * class of defect: fatal signals to ctrun, blocked signals, closed
 * standard descriptors, too few descriptors, a cleanup racing with starts,
 * a deadline inside the leftovers' grace, output paths that are links or
 * FIFOs, a signal during the wait for a lock, a missing HOME, lock files
 * that are not ctrun's own, and forged holder text. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* How many names in DIR end in SUFFIX. */
static int count_suffix(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  size_t sl = strlen(suffix);
  while (d != NULL && (de = readdir(d)) != NULL) {
    size_t l = strlen(de->d_name);
    n += l >= sl && strcmp(de->d_name + l - sl, suffix) == 0;
  }
  if (d)
    closedir(d);
  return n;
}

/* Any signal whose default would end ctrun ends the run instead: the tree
 * (a setsid escapee included) is gone before ctrun exits, and the lock is
 * held until then. */
static void fatal_signals_to_ctrun_end_the_run_not_ctrun(void **state) {
  struct e2e *t = *state;
  const int sigs[] = { SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGPWR, SIGRTMIN + 2, SIGRTMAX };
  const char *lock = e2e_path(t, "job.lock");
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    /* A setsid escapee in the tree, where the host lets ctrun catch one. */
    pid_t pid = e2e_has_extras()
                  ? E2E_START(t, "-k", "0.3", "-l", lock, "--", "@child", "{", "setsid",
                              "ignore-term", "sleep", "300", "}", "ignore-term", "sleep", "300")
                  : E2E_START(t, "-k", "0.3", "-l", lock, "--", "@child", "{", "ignore-term",
                              "sleep", "300", "}", "ignore-term", "sleep", "300");
    assert_true(e2e_wait_marked(t, 3, 30));
    kill(pid, sigs[i]);
    double end = e2e_now() + 10;
    int code = -1;
    while (code == -1 && e2e_now() < end) {
      /* Whenever a process of the tree lives, the lock is held.  (ctrun
       * itself is not counted: a sanitizer build's leak check runs beside
       * it after the release, in a process sharing its memory.) */
      if (!e2e_locked(lock) && e2e_count_tree(t) > 0)
        fail_msg("signal %d: the lock was free while the tree ran", sigs[i]);
      code = e2e_wait(pid, 0.02);
    }
    assert_int_not_equal(code, -1);
    if (e2e_count_marked(t) != 0)
      fail_msg("signal %d: ctrun exited (%d) and left its tree running", sigs[i], code);
    assert_false(e2e_locked(lock));
  }
}

/* ctrun's own notice into a closed pipe (`ctrun ... 2>&1 | grep -m1 x`)
 * is an error to ignore, not a SIGPIPE death that orphans the tree. */
static void closed_stderr_pipe_does_not_kill_ctrun(void **state) {
  struct e2e_result r;
  E2E_RUN_CMD(*state, &r, "@child", "default", "13", "brokenpipe", "2", "exec", "@ctrun", "-t",
              "0.3", "-k", "0.3", "--", "@child", "{", e2e_has_extras() ? "setsid" : "wait",
              "sleep", "300", "}", "sleep", "300");
  assert_int_equal(r.code, 124);
  assert_int_equal(e2e_count_marked(*state), 0);
}

/* --quiet-success printing a failed run's output into `| head -1` that is
 * gone: the command's status, the log's end line and the report all stay. */
static void quiet_success_into_a_closed_pipe_keeps_the_result(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *log = e2e_path(t, "run.log"), *rep = e2e_path(t, "report.json");
  E2E_RUN_CMD(t, &r, "@child", "default", "13", "brokenpipe", "1", "exec", "@ctrun",
              "--quiet-success", "-o", log, "--report", rep, "--", "@child", "out", "hello", "exit",
              "3");
  assert_int_equal(r.code, 3);
  char *text = e2e_read(log);
  assert_non_null(strstr(text, "end: exit 3"));
  free(text);
  text = e2e_read(rep);
  assert_non_null(strstr(text, "\"exit_code\":3"));
  free(text);
  assert_int_equal(count_suffix(t->dir, ".tmp"), 0);
}

/* A parent's blocked signals are not ctrun's, nor the command's. */
static void blocked_signals_are_unblocked(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  /* SIGCHLD blocked: the command's end must still be seen (it was taken
   * for a timeout). */
  E2E_RUN_CMD(t, &r, "@child", "block", "17", "exec", "@ctrun", "-t", "20", "--", "@child",
              "sigmask", "exit", "0");
  assert_int_equal(r.code, 0);
  assert_true(r.secs < 15);
  assert_string_equal(r.out, "none\n");
  /* SIGALRM blocked: -w must still end. */
  const char *lock = e2e_path(t, "job.lock");
  write_file(lock, "");
  int fd = open(lock, O_RDONLY | O_CLOEXEC);
  assert_int_equal(flock(fd, LOCK_EX), 0);
  E2E_RUN_CMD(t, &r, "@child", "block", "14", "exec", "@ctrun", "-w", "0.3", "-l", lock, "--",
              "@child", "exit", "0");
  close(fd);
  assert_int_equal(r.code, 75);
  /* TERM blocked: still forwarded.  USR1 blocked: ctrun stop still works. */
  pid_t pid = E2E_START_CMD(t, "@child", "block", "10,15", "exec", "@ctrun", "-n", "victim", "--",
                            "@child", "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 30));
  E2E_RUN(t, &r, "stop", "-k", "1", "victim");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_wait(pid, 10), 124);
  pid = E2E_START_CMD(t, "@child", "block", "15", "exec", "@ctrun", "--", "@child", "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 30));
  kill(pid, SIGTERM);
  assert_int_equal(e2e_wait(pid, 10), 128 + SIGTERM);
}

/* With 0-2 closed, ctrun's own files must not land there. */
static void closed_standard_descriptors_are_made_safe(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  /* -d with stdin and stdout closed: the report pipe is not fd 0 or 1. */
  E2E_RUN_CMD(t, &r, "@child", "close", "0", "close", "1", "exec", "@ctrun", "-d", "-l", lock, "--",
              "@child", "pidfile", ran, "sleep", "0.2");
  assert_int_equal(r.code, 0);
  assert_true(e2e_wait_file(ran, 5));
  double end = e2e_now() + 10;
  while (e2e_locked(lock) && e2e_now() < end)
    e2e_sleep(0.02);
  /* stderr closed: the timeout notice must not go into the lock file. */
  E2E_RUN_CMD(t, &r, "@child", "close", "2", "exec", "@ctrun", "-l", lock, "-t", "0.2", "--",
              "@child", "sleep", "300");
  assert_int_equal(r.code, 124);
  char *text = e2e_read(lock);
  assert_null(strstr(text, "ctrun:"));
  free(text);
}

/* Out of descriptors is ctrun's own failure, 125 with a message, before
 * anything runs: never an abort, a crash, or 126. */
static void too_few_descriptors_is_a_clear_125(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  const char *limits[] = { "4", "5", "8", "12", "16", "20" };
  for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
    E2E_RUN_CMD(t, &r, "@child", "nofile", limits[i], "exec", "@ctrun", "-l", lock, "--", "@child",
                "pidfile", ran);
    if (r.code != 125 || strstr(r.err, "file descriptors") == NULL)
      fail_msg("ulimit -n %s: exit %d, '%s'", limits[i], r.code, r.err);
    assert_false(e2e_wait_file(ran, 0));
  }
  E2E_RUN_CMD(t, &r, "@child", "nofile", "64", "exec", "@ctrun", "-l", lock, "-o",
              e2e_path(t, "log"), "--report", e2e_path(t, "rep"), "--quiet-success", "--",
              "@child", "exit", "0");
  assert_int_equal(r.code, 0);
}

/* Starts racing with a cleanup that sweeps temporary entries never fail. */
static void cleanup_racing_with_starts_fails_no_start(void **state) {
  struct e2e *t = *state;
  enum { ROUNDS = 4, N = 40 }; /* N pairs at once: the harness keeps 256 statuses */
  pid_t runs[N], cleanups[N];
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < N; i++) {
      runs[i] = E2E_START(t, "--", "@child", "exit", "0");
      cleanups[i] = E2E_START(t, "cleanup");
    }
    for (int i = 0; i < N; i++) {
      int code = e2e_wait(runs[i], 60);
      if (code != 0)
        fail_msg("round %d, run %d exited %d", round, i, code);
      assert_int_equal(e2e_wait(cleanups[i], 60), 0);
    }
  }
}

/* The command exited 0 and its leftover ignores TERM: a deadline that
 * falls in the leftover's grace does not turn 0 into 124. */
static void deadline_in_the_leftovers_grace_keeps_the_status(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-t", "0.4", "-k", "1", "--", "@child", "{", "ignore-term", "sleep", "300",
          "}", "sleep", "0.1", "exit", "0");
  assert_int_equal(r.code, 0);
}

/* -o and --report follow the lock file's path rules: no link followed, no
 * FIFO opened (which would block before the deadline is armed). */
static void output_paths_are_never_links_or_fifos(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char target[512], link[512], fifo[512], ran[512], rlink[512];
  snprintf(target, sizeof target, "%s", e2e_path(t, "target"));
  snprintf(link, sizeof link, "%s", e2e_path(t, "log.link"));
  snprintf(fifo, sizeof fifo, "%s", e2e_path(t, "log.fifo"));
  snprintf(ran, sizeof ran, "%s", e2e_path(t, "ran"));
  snprintf(rlink, sizeof rlink, "%s", e2e_path(t, "report.link"));
  assert_int_equal(symlink(target, link), 0);
  E2E_RUN(t, &r, "-o", link, "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "symbolic link"));
  assert_int_equal(access(target, F_OK), -1);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  E2E_RUN(t, &r, "-t", "1", "-o", fifo, "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_true(r.secs < 10);
  E2E_RUN(t, &r, "-d", "-o", fifo, "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_true(r.secs < 10);
  assert_false(e2e_wait_file(ran, 0));
  /* A report at a link replaces the link, never writes through it. */
  write_file(target, "precious\n");
  assert_int_equal(symlink(target, rlink), 0);
  E2E_RUN(t, &r, "--report", rlink, "--", "@child", "exit", "0");
  assert_int_equal(r.code, 0);
  char *text = e2e_read(target);
  assert_string_equal(text, "precious\n");
  free(text);
  text = e2e_read(rlink);
  assert_non_null(strstr(text, "\"exit_code\":0"));
  free(text);
}

/* TERM while waiting for a lock: nothing runs, ctrun exits 128+15 and
 * leaves no temporary report behind. */
static void signal_while_waiting_for_the_lock_leaves_nothing(void **state) {
  struct e2e *t = *state;
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  write_file(lock, "");
  int fd = open(lock, O_RDONLY | O_CLOEXEC);
  assert_int_equal(flock(fd, LOCK_EX), 0);
  for (int bounded = 0; bounded < 2; bounded++) {
    pid_t pid = E2E_START(t, "-w", bounded ? "30" : "inf", "-l", lock, "--report",
                          e2e_path(t, "report.json"), "--", "@child", "pidfile", ran);
    e2e_sleep(0.3);
    kill(pid, SIGTERM);
    assert_int_equal(e2e_wait(pid, 10), 128 + SIGTERM);
    assert_int_equal(count_suffix(t->dir, ".tmp"), 0);
    assert_false(e2e_wait_file(ran, 0));
  }
  close(fd);
}

/* A HOME that does not exist is a broken environment: ctrun says so and
 * creates nothing there (as root it could create it anywhere). */
static void missing_home_is_not_created(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *home = e2e_path(t, "no/such/home");
  E2E_RUN_CMD(t, &r, "@child", "unsetenv", "CTRUN_STATE_DIR", "unsetenv", "XDG_RUNTIME_DIR",
              "unsetenv", "XDG_STATE_HOME", "setenv", "HOME", home, "exec", "@ctrun", "--",
              "@child", "exit", "0");
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "HOME"));
  assert_int_equal(access(e2e_path(t, "no"), F_OK), -1);
}

/* A stop request that cannot be written (a state directory gone read-only
 * or full) is said to be that, not "cannot signal the supervisor".  As an
 * ordinary user: root writes anywhere. */
static void stop_on_an_unwritable_state_directory_names_the_cause(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char dir[512];
  if (geteuid() != 0)
    skip(); /* needs root to become another user */
  snprintf(dir, sizeof dir, "%s/user-state", t->dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(chown(dir, 65534, 65534), 0);
  assert_int_equal(chmod(t->dir, 0777), 0);
  pid_t pid = E2E_START_CMD(t, "@child", "setenv", "CTRUN_STATE_DIR", dir, "setuid", "65534",
                            "exec", "@ctrun", "-n", "victim", "--", "@child", "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 30));
  assert_int_equal(chmod(dir, 0500), 0);
  E2E_RUN_CMD(t, &r, "@child", "setenv", "CTRUN_STATE_DIR", dir, "setuid", "65534", "exec",
              "@ctrun", "stop", "victim");
  assert_int_equal(chmod(dir, 0700), 0);
  assert_int_equal(r.code, 125);
  if (strstr(r.err, "cannot write the stop request") == NULL)
    fail_msg("'%s' does not name the cause", r.err);
  E2E_RUN_CMD(t, &r, "@child", "setenv", "CTRUN_STATE_DIR", dir, "setuid", "65534", "exec",
              "@ctrun", "stop", "victim");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_wait(pid, 30), 124);
}

/* No HOME and no XDG directory at all: a clear 125 naming what to set. */
static void no_home_at_all_is_a_clear_125(void **state) {
  struct e2e_result r;
  E2E_RUN_CMD(*state, &r, "@child", "unsetenv", "CTRUN_STATE_DIR", "unsetenv", "XDG_RUNTIME_DIR",
              "unsetenv", "XDG_STATE_HOME", "unsetenv", "HOME", "exec", "@ctrun", "--", "@child",
              "exit", "0");
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "CTRUN_STATE_DIR"));
}

/* As an ordinary user (root can write anywhere and fork without limit):
 * a state directory it may not write, and no process left to fork, are
 * ctrun's own failures (125), not the command's (126). */
static void unwritable_state_and_no_processes_are_125(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char dir[512], ran[512];
  if (geteuid() != 0)
    skip(); /* needs root to become another user */
  snprintf(dir, sizeof dir, "%s/ro-state", t->dir);
  snprintf(ran, sizeof ran, "%s/ran", t->dir);
  assert_int_equal(mkdir(dir, 0500), 0);
  assert_int_equal(chown(dir, 65534, 65534), 0);
  assert_int_equal(chmod(t->dir, 0777), 0); /* the command may leave its mark */
  E2E_RUN_CMD(t, &r, "@child", "setenv", "CTRUN_STATE_DIR", dir, "setuid", "65534", "exec",
              "@ctrun", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "cannot record the run"));
  assert_false(e2e_wait_file(ran, 0));
  assert_int_equal(chmod(dir, 0700), 0);
  /* (LeakSanitizer, in a sanitizer build, needs a thread that nproc 1
   * forbids.) */
  E2E_RUN_CMD(t, &r, "@child", "setenv", "CTRUN_STATE_DIR", dir, "setenv", "ASAN_OPTIONS",
              "detect_leaks=0", "nproc", "1", "setuid", "65534", "exec", "@ctrun", "--", "@child",
              "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_false(e2e_wait_file(ran, 0));
}

/* `ctrun -l "$0"` (the flock idiom) and a lock file with a second name:
 * the file locks, and its content is never touched. */
static void lock_file_that_is_not_ctruns_own_is_never_written(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char started[3][512];
  for (int k = 0; k < 3; k++)
    snprintf(started[k], sizeof started[k], "%s/started-%d", t->dir, k);
  const char *script = e2e_path(t, "job.sh");
  const char *body = "#!/bin/sh\necho the job\n";
  write_file(script, body);
  pid_t pid = E2E_START(t, "-l", script, "--", "@child", "pidfile", started[0], "sleep", "1");
  assert_true(e2e_wait_file(started[0], 30));
  assert_true(e2e_locked(script));
  char *text = e2e_read(script);
  assert_string_equal(text, body);
  free(text);
  assert_int_equal(e2e_wait(pid, 10), 0);
  text = e2e_read(script);
  assert_string_equal(text, body);
  free(text);
  /* Empty, but with a second name: someone else's file all the same. */
  const char *a = e2e_path(t, "a.lock"), *b = e2e_path(t, "b.data");
  write_file(a, "");
  assert_int_equal(link(a, b), 0);
  pid = E2E_START(t, "-l", a, "--", "@child", "pidfile", started[1], "sleep", "1");
  assert_true(e2e_wait_file(started[1], 30));
  text = e2e_read(b);
  assert_string_equal(text, "");
  free(text);
  assert_int_equal(e2e_wait(pid, 10), 0);
  /* A file of ctrun's own still names its holder while held. */
  const char *own = e2e_path(t, "own.lock");
  pid = E2E_START(t, "-n", "holder", "-l", own, "--", "@child", "pidfile", started[2], "sleep", "1");
  assert_true(e2e_wait_file(started[2], 30));
  text = e2e_read(own);
  assert_non_null(strstr(text, "name=holder"));
  free(text);
  assert_int_equal(e2e_wait(pid, 10), 0);
  E2E_RUN(t, &r, "-l", own, "--", "@child", "exit", "0");
  assert_int_equal(r.code, 0);
}

/* A user who holds a lock in a shared directory writes another run's id
 * into it: --on-busy=replace must not stop that run, which holds another
 * lock. */
static void replace_ignores_forged_holder_text(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *theirs = e2e_path(t, "victim.lock"), *shared = e2e_path(t, "shared.lock");
  const char *ran = e2e_path(t, "ran");
  pid_t victim = E2E_START(t, "-n", "victim", "-l", theirs, "--", "@child", "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 30));
  char *text = e2e_read(theirs);
  assert_non_null(strstr(text, "name=victim"));
  /* The forger holds the shared lock and copies the victim's holder text. */
  write_file(shared, text);
  free(text);
  int fd = open(shared, O_RDONLY | O_CLOEXEC);
  assert_int_equal(flock(fd, LOCK_EX), 0);
  E2E_RUN(t, &r, "-l", shared, "--on-busy=replace", "--", "@child", "pidfile", ran);
  close(fd);
  assert_int_equal(r.code, 75);
  assert_non_null(strstr(r.err, "not a tracked run"));
  assert_false(e2e_wait_file(ran, 0));
  assert_int_equal(kill(victim, 0), 0); /* untouched */
  assert_true(e2e_count_marked(t) >= 2);
  kill(victim, SIGTERM);
  assert_int_equal(e2e_wait(victim, 10), 128 + SIGTERM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(fatal_signals_to_ctrun_end_the_run_not_ctrun),
    E2E_TEST(closed_stderr_pipe_does_not_kill_ctrun),
    E2E_TEST(quiet_success_into_a_closed_pipe_keeps_the_result),
    E2E_TEST(blocked_signals_are_unblocked),
    E2E_TEST(closed_standard_descriptors_are_made_safe),
    E2E_TEST(too_few_descriptors_is_a_clear_125),
    E2E_TEST(cleanup_racing_with_starts_fails_no_start),
    E2E_TEST(deadline_in_the_leftovers_grace_keeps_the_status),
    E2E_TEST(output_paths_are_never_links_or_fifos),
    E2E_TEST(signal_while_waiting_for_the_lock_leaves_nothing),
    E2E_TEST(missing_home_is_not_created),
    E2E_TEST(no_home_at_all_is_a_clear_125),
    E2E_TEST(stop_on_an_unwritable_state_directory_names_the_cause),
    E2E_TEST(unwritable_state_and_no_processes_are_125),
    E2E_TEST(lock_file_that_is_not_ctruns_own_is_never_written),
    E2E_TEST(replace_ignores_forged_holder_text),
  };
  return e2e_main("adversarial", tests, sizeof tests / sizeof tests[0]);
}
