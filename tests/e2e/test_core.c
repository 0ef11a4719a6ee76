/* End-to-end: timeouts, exit codes, leftovers, signals (any POSIX host). */

#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void timeout_gives_124(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-t", "0.3", "--", "@child", "sleep", "30");
  assert_int_equal(r.code, 124);
  assert_true(r.secs >= 0.25 && r.secs < 10);
  assert_non_null(strstr(r.err, "timed out"));
}

static void quiet_timeout_says_nothing(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-q", "-t", "0.2", "--", "@child", "sleep", "30");
  assert_int_equal(r.code, 124);
  assert_string_equal(r.err, "");
}

static void exit_code_and_output_pass_through(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--", "@child", "out", "hello", "err", "oops", "exit", "3");
  assert_int_equal(r.code, 3);
  assert_string_equal(r.out, "hello\n");
  assert_string_equal(r.err, "oops\n");
  E2E_RUN(*state, &r, "@child", "exit", "0");
  assert_int_equal(r.code, 0);
}

static void command_options_are_not_ctrun_options(void **state) {
  struct e2e_result r;
  /* Parsing stops at the first operand: "-t" belongs to the command. */
  E2E_RUN(*state, &r, "@child", "out", "-t", "exit", "4");
  assert_int_equal(r.code, 4);
  assert_string_equal(r.out, "-t\n");
}

static void not_found_gives_127(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--", "no-such-program-ctrun-test");
  assert_int_equal(r.code, 127);
  assert_non_null(strstr(r.err, "no-such-program-ctrun-test"));
}

static void not_executable_gives_126(void **state) {
  struct e2e_result r;
  const char *file = e2e_path(*state, "not-executable");
  FILE *f = fopen(file, "w");
  fputs("#!/bin/sh\nexit 0\n", f);
  fclose(f);
  chmod(file, 0644);
  E2E_RUN(*state, &r, "--", file);
  assert_int_equal(r.code, 126);
}

static void death_by_signal_gives_128_plus_n(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--", "@child", "die", "9");
  assert_int_equal(r.code, 128 + 9);
  E2E_RUN(*state, &r, "--", "@child", "die", "15");
  assert_int_equal(r.code, 128 + 15);
}

static void preserve_status_on_timeout(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-t", "0.2", "--preserve-status", "--", "@child", "sleep", "30");
  assert_int_equal(r.code, 128 + SIGTERM);
  E2E_RUN(*state, &r, "-t", "0.2", "-s", "INT", "--preserve-status", "--", "@child", "sleep", "30");
  assert_int_equal(r.code, 128 + SIGINT);
}

static void tree_in_the_group_is_killed(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-t", "0.3", "--", "@child", "{", "sleep", "300", "}", "{", "{", "sleep",
          "300", "}", "sleep", "300", "}", "sleep", "300");
  assert_int_equal(r.code, 124);
  assert_true(r.secs < 10);
}

static void term_ignoring_tree_is_killed_hard(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-t", "0.2", "-k", "0.3", "--", "@child", "ignore-term", "{", "sleep",
          "300", "}", "sleep", "300");
  assert_int_equal(r.code, 124);
  assert_true(r.secs >= 0.45 && r.secs < 10);
}

static void leftovers_are_killed_by_default(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--", "@child", "{", "sleep", "300", "}", "exit", "5");
  assert_int_equal(r.code, 5);
  assert_true(r.secs < 10);
}

static void leftovers_can_be_waited_for(void **state) {
  struct e2e_result r;
  const char *done = e2e_path(*state, "done");
  E2E_RUN(*state, &r, "--leftovers", "wait", "--", "@child", "{", "sleep", "0.4", "pidfile", done,
          "}", "exit", "0");
  assert_int_equal(r.code, 0);
  assert_true(r.secs >= 0.35);
  char *text = e2e_read(done);
  assert_true(strlen(text) > 0); /* the leftover finished its work */
  free(text);
}

static void waiting_for_leftovers_is_bounded_by_the_timeout(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--leftovers", "wait", "-t", "0.3", "--", "@child", "{", "sleep", "300", "}",
          "exit", "0");
  assert_int_equal(r.code, 124);
  assert_true(r.secs < 10);
}

/* `ctrun -- sh -c 'sleep 300 & exit 0' | cat` must return at once. */
static void leftover_holding_the_pipe_does_not_hang_the_reader(void **state) {
  struct e2e *t = *state;
  int p[2];
  char buf[256];
  double t0 = e2e_now();
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    setenv("CTRUN_STATE_DIR", t->state, 1);
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    execl(getenv("CTRUN"), "ctrun", "--", getenv("CTRUN_TESTCHILD"), "{", "sleep", "300", "}",
          "out", "bye", "exit", "0", (char *)NULL);
    _exit(200);
  }
  close(p[1]);
  /* Read to EOF as `| cat` would, reaping orphans meanwhile as an init
   * would (the runner is their subreaper). */
  struct pollfd pfd = { p[0], POLLIN, 0 };
  int code = -1;
  while (e2e_now() - t0 < 20) {
    int st;
    pid_t w;
    while ((w = waitpid(-1, &st, WNOHANG)) > 0)
      if (w == pid)
        code = WEXITSTATUS(st);
    if (poll(&pfd, 1, 10) > 0 && read(p[0], buf, sizeof buf) <= 0)
      break;
  }
  close(p[0]);
  assert_true(e2e_now() - t0 < 10); /* EOF came: nobody holds the pipe */
  if (code < 0)
    code = e2e_wait(pid, 10);
  assert_int_equal(code, 0);
}

static void forwarded_signal(struct e2e *t, int sig, const char *const *extra, int want) {
  const char *args[16] = { "--" };
  int n = 0;
  for (; extra && *extra; extra++)
    args[n++] = *extra;
  args[n++] = "--";
  args[n++] = "@child";
  args[n++] = "sleep";
  args[n++] = "300";
  args[n] = NULL;
  pid_t pid = e2e_start(t, args);
  assert_true(e2e_wait_marked(t, 2, 5)); /* ctrun and its command */
  kill(pid, sig);
  assert_int_equal(e2e_wait(pid, 10), want);
}

static void signals_are_forwarded_to_the_tree(void **state) {
  forwarded_signal(*state, SIGTERM, NULL, 128 + SIGTERM);
  forwarded_signal(*state, SIGINT, NULL, 128 + SIGINT);
  forwarded_signal(*state, SIGHUP, NULL, 128 + SIGHUP);
  forwarded_signal(*state, SIGQUIT, NULL, 128 + SIGQUIT);
}

static void forwarded_signal_is_followed_by_the_hard_kill(void **state) {
  struct e2e *t = *state;
  double t0;
  const char *ready = e2e_path(t, "ready");
  pid_t pid = E2E_START(t, "-k", "0.3", "--", "@child", "ignore-term", "pidfile", ready, "sleep",
                        "300");
  assert_true(e2e_wait_file(ready, 5)); /* TERM is ignored from here on */
  t0 = e2e_now();
  kill(pid, SIGTERM);
  assert_int_equal(e2e_wait(pid, 10), 128 + SIGKILL);
  assert_true(e2e_now() - t0 >= 0.25);
}

/* What ctrun catches is default again in the command; what ctrun's parent
 * ignored (a shell's "cmd &" ignores INT and QUIT) stays ignored. */
static void signal_dispositions_reach_the_command(void **state) {
  struct e2e_result r;
  char term[8], intr[8];
  snprintf(term, sizeof term, "%d", SIGTERM);
  snprintf(intr, sizeof intr, "%d", SIGINT);
  E2E_RUN(*state, &r, "--", "@child", "sigstate", term, "sigstate", intr);
  assert_string_equal(r.out, "default\ndefault\n");
  signal(SIGINT, SIG_IGN); /* inherited by the ctrun started next */
  E2E_RUN(*state, &r, "--", "@child", "sigstate", term, "sigstate", intr);
  signal(SIGINT, SIG_DFL);
  assert_string_equal(r.out, "default\nignored\n");
}

static void environment_names_the_run(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-n", "my-run", "--", "@child", "env", "CTRUN_NAME", "env", "CTRUN_RUN_ID");
  assert_int_equal(r.code, 0);
  assert_memory_equal(r.out, "my-run\n", 7);
  assert_int_equal(strlen(r.out), 7 + 12 + 1);
}

/* A run inside a run (a hook that calls a hook): the inner run's names
 * replace the outer's, each once; a fencing token it does not hold is
 * gone; the rest of the environment comes through as it was. */
static void environment_of_a_nested_run_names_the_inner(void **state) {
  struct e2e_result r;
  E2E_RUN_CMD(*state, &r, "@child", "setenv", "CTRUN_NAME", "outer", "setenv", "CTRUN_RUN_ID",
              "0123456789ab", "setenv", "CTRUN_LOCK_TOKEN", "7", "setenv", "NESTED_KEEP",
              "a=b c", "exec", "@ctrun", "-n", "inner", "--", "@child", "env", "CTRUN_NAME",
              "envcount", "CTRUN_NAME", "envcount", "CTRUN_RUN_ID", "env", "CTRUN_RUN_ID",
              "env", "CTRUN_LOCK_TOKEN", "env", "NESTED_KEEP", "envcount", "NESTED_KEEP");
  assert_int_equal(r.code, 0);
  assert_memory_equal(r.out, "inner\n1\n1\n", 10);
  assert_int_equal(strlen(r.out), 10 + 13 + strlen("(unset)\na=b c\n1\n"));
  assert_string_equal(r.out + 10 + 13, "(unset)\na=b c\n1\n");
  assert_null(strstr(r.out, "0123456789ab"));
}

/* Where the kernel refuses a process that shares ctrun's memory (a
 * sandbox's seccomp filter, an emulator), the command is forked instead:
 * it runs, its output and exit code come through. */
static void command_runs_where_a_shared_clone_is_refused(void **state) {
  struct e2e *t = *state;
  /* (LeakSanitizer's exit check, in a sanitizer build, starts such a
   * clone itself: off for this run.) */
  pid_t run = E2E_SPAWN(t, e2e_forbid_shared_clone, "@child", "setenv", "ASAN_OPTIONS",
                        "detect_leaks=0", "exec", "@ctrun", "-t", "30", "--", "@child", "out", "ran",
                        "exit", "3");
  int code = e2e_wait(run, 30);
  if (code == 77)
    skip(); /* no seccomp filter here */
  char *out = e2e_read(e2e_path(t, "spawn.out"));
  if (code != 3)
    fail_msg("exit %d, not 3: %s", code, e2e_read(e2e_path(t, "spawn.err")));
  assert_string_equal(out, "ran\n");
  free(out);
}

/* The full path of NAME in PATH, or NULL. */
static const char *in_path(const char *name, char *buf, size_t size) {
  const char *path = getenv("PATH");
  while (path != NULL && *path != '\0') {
    size_t len = strcspn(path, ":");
    snprintf(buf, size, "%.*s/%s", (int)len, path, name);
    if (len > 0 && access(buf, X_OK) == 0)
      return buf;
    path += len + (path[len] == ':');
  }
  return NULL;
}

/* Under valgrind, which cannot run a process that shares its parent's
 * memory (it aborts), ctrun forks the command: a whole run, memcheck
 * finding no error in it. */
static void runs_under_valgrind(void **state) {
  struct e2e_result r;
  char valgrind[4096];
  if (in_path("valgrind", valgrind, sizeof valgrind) == NULL || e2e_sanitized())
    skip(); /* no valgrind here, or a sanitizer build, which valgrind cannot run */
  E2E_RUN_CMD(*state, &r, valgrind, "-q", "--error-exitcode=99", "@ctrun", "-t", "60", "--",
              "@child", "out", "ran", "exit", "3");
  if (r.code != 3)
    fail_msg("exit %d, not 3: %s", r.code, r.err);
  assert_string_equal(r.out, "ran\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(timeout_gives_124),
    E2E_TEST(quiet_timeout_says_nothing),
    E2E_TEST(exit_code_and_output_pass_through),
    E2E_TEST(command_options_are_not_ctrun_options),
    E2E_TEST(not_found_gives_127),
    E2E_TEST(not_executable_gives_126),
    E2E_TEST(death_by_signal_gives_128_plus_n),
    E2E_TEST(preserve_status_on_timeout),
    E2E_TEST(tree_in_the_group_is_killed),
    E2E_TEST(term_ignoring_tree_is_killed_hard),
    E2E_TEST(leftovers_are_killed_by_default),
    E2E_TEST(leftovers_can_be_waited_for),
    E2E_TEST(waiting_for_leftovers_is_bounded_by_the_timeout),
    E2E_TEST(leftover_holding_the_pipe_does_not_hang_the_reader),
    E2E_TEST(signals_are_forwarded_to_the_tree),
    E2E_TEST(forwarded_signal_is_followed_by_the_hard_kill),
    E2E_TEST(signal_dispositions_reach_the_command),
    E2E_TEST(environment_names_the_run),
    E2E_TEST(environment_of_a_nested_run_names_the_inner),
    E2E_TEST(command_runs_where_a_shared_clone_is_refused),
    E2E_TEST(runs_under_valgrind),
  };
  return e2e_main("e2e-core", tests, sizeof tests / sizeof tests[0]);
}
