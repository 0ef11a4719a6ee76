/* End-to-end: detached runs (-d), logs (-o), --quiet-success, --report. */
#include "harness.h"
#include "json_check.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Wait until ctrun ps lists no run; true if it came to that. */
static bool registry_empties(struct e2e *t, double secs) {
  struct e2e_result r;
  double end = e2e_now() + secs;
  do {
    E2E_RUN(t, &r, "ps", "--json");
    if (strcmp(r.out, "[]\n") == 0)
      return true;
    e2e_sleep(0.05);
  } while (e2e_now() < end);
  return false;
}

static void detach_returns_at_once_and_the_run_is_tracked(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *done = e2e_path(t, "done");
  E2E_RUN(t, &r, "-d", "-n", "bgjob", "--", "@child", "sleep", "0.8", "pidfile", done);
  assert_int_equal(r.code, 0);
  assert_true(r.secs < 0.5);
  assert_int_equal(strlen(r.out), 13); /* the run id and a newline */
  assert_int_equal(strspn(r.out, "0123456789abcdef"), 12);
  assert_false(exists(done));
  E2E_RUN(t, &r, "ps");
  assert_non_null(strstr(r.out, "bgjob"));
  assert_true(registry_empties(t, 10));
  assert_true(exists(done)); /* it ran to its end */
}

/* A detached command inherits no descriptor of its caller's, however high
 * (a hook's pipe would keep the hook's reader waiting). */
static void detached_command_inherits_no_descriptor(void **state) {
  struct e2e *t = *state;
  const char *log = e2e_path(t, "fds.log");
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open("/dev/null", O_RDONLY);
    dup2(fd, 1500); /* above the old loop's limit of 1024 */
    dup2(fd, 7);
    close(fd);
    setenv("CTRUN_STATE_DIR", t->state, 1);
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    fd = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    close(fd);
    execl(getenv("CTRUN"), "ctrun", "-d", "-o", log, "--", getenv("CTRUN_TESTCHILD"), "fds",
          (char *)NULL);
    _exit(200);
  }
  e2e_own(pid);
  assert_int_equal(e2e_wait(pid, 10), 0);
  assert_true(registry_empties(t, 10));
  char *text = e2e_read(log);
  if (strstr(text, "\nnone\n") == NULL)
    fail_msg("the detached command inherited descriptors: %s", text);
  free(text);
}

static void detached_timeout_kills_the_whole_tree(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  if (e2e_has_extras())
    E2E_RUN(t, &r, "-d", "-t", "0.3", "-k", "0.3", "--", "@child", "ignore-term", "{", "setsid",
            "ignore-term", "sleep", "300", "}", "sleep", "300");
  else
    E2E_RUN(t, &r, "-d", "-t", "0.3", "-k", "0.3", "--", "@child", "ignore-term", "{",
            "ignore-term", "sleep", "300", "}", "sleep", "300");
  assert_int_equal(r.code, 0);
  assert_true(e2e_wait_marked(t, 2, 5));
  assert_true(registry_empties(t, 10));
  assert_int_equal(e2e_count_marked(t), 0);
}

/* The seed of the project: a hook that backgrounds work on every prompt. */
static void sixty_hook_style_runs_leave_nothing(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  for (int i = 0; i < 60; i++) {
    E2E_RUN(t, &r, "-d", "--", "@child", "{", "sleep", "0.3", "}", "{", "{", "sleep", "0.2", "}",
            "}", "sleep", "0.1");
    assert_int_equal(r.code, 0);
  }
  assert_true(registry_empties(t, 20));
  assert_int_equal(e2e_count_marked(t), 0);
}

static void detached_lock_holder_blocks_others_until_it_ends(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *lock = e2e_path(t, "job.lock");
  E2E_RUN(t, &r, "-d", "-l", lock, "--", "@child", "sleep", "0.6");
  assert_int_equal(r.code, 0);
  E2E_RUN(t, &r, "-l", lock, "--", "@child", "exit", "0");
  assert_int_equal(r.code, 75);
  /* Detaching against a busy lock is refused synchronously too. */
  E2E_RUN(t, &r, "-d", "-l", lock, "--", "@child", "exit", "0");
  assert_int_equal(r.code, 75);
  assert_string_equal(r.out, "");
  assert_non_null(strstr(r.err, "held by"));
  assert_true(registry_empties(t, 10));
  E2E_RUN(t, &r, "-l", lock, "--", "@child", "exit", "0");
  assert_int_equal(r.code, 0);
}

static void detached_missing_command_is_127_at_once(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "-d", "--", "no-such-program-ctrun-test");
  assert_int_equal(r.code, 127);
  assert_string_equal(r.out, "");
  assert_non_null(strstr(r.err, "no-such-program-ctrun-test"));
  assert_true(registry_empties(*state, 5));
}

static void log_is_framed(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *log = e2e_path(t, "run.log");
  E2E_RUN(t, &r, "-o", log, "-n", "framed", "--", "@child", "out", "hello", "err", "world", "exit",
          "3");
  assert_int_equal(r.code, 3);
  assert_string_equal(r.out, ""); /* it went to the log */
  E2E_RUN(t, &r, "-d", "-o", log, "-n", "framed2", "-t", "0.2", "--", "@child", "out", "again",
          "sleep", "30");
  assert_int_equal(r.code, 0);
  assert_true(registry_empties(t, 10));
  char *text = e2e_read(log);
  char *start = strstr(text, " start: ");
  assert_non_null(start);
  assert_non_null(strstr(text, "run="));
  assert_non_null(strstr(text, "name=framed "));
  assert_non_null(strstr(text, "hello\nworld\n"));
  assert_non_null(strstr(text, "end: exit 3 after "));
  assert_true(strstr(text, "hello") > start);
  assert_true(strstr(text, "end: exit 3") > strstr(text, "world"));
  assert_non_null(strstr(text, "name=framed2 start: "));
  assert_non_null(strstr(text, "again\n"));
  assert_non_null(strstr(text, "end: timed out, exit 124"));
  free(text);
}

static void log_in_a_missing_directory_is_125(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *ran = e2e_path(t, "ran");
  E2E_RUN(t, &r, "-o", "/nonexistent-dir-ctrun/x.log", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "/nonexistent-dir-ctrun/x.log"));
  assert_false(exists(ran));
  E2E_RUN(t, &r, "-d", "-o", "/nonexistent-dir-ctrun/x.log", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  E2E_RUN(t, &r, "--report", "/nonexistent-dir-ctrun/r.json", "--", "@child", "pidfile", ran);
  assert_int_equal(r.code, 125);
  assert_false(exists(ran));
}

static void quiet_success(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  E2E_RUN(t, &r, "--quiet-success", "--", "@child", "out", "one", "err", "two", "exit", "0");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "");
  assert_string_equal(r.err, "");
  E2E_RUN(t, &r, "--quiet-success", "--", "@child", "out", "one", "err", "two", "out", "three",
          "exit", "1");
  assert_int_equal(r.code, 1);
  assert_string_equal(r.out, "one\ntwo\nthree\n"); /* in the original order */
  E2E_RUN(t, &r, "-q", "--quiet-success", "-t", "0.2", "--", "@child", "out", "slow", "sleep", "30");
  assert_int_equal(r.code, 124);
  assert_string_equal(r.out, "slow\n");
}

static void report_is_valid_json_with_every_field(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *report = e2e_path(t, "report.json");
  E2E_RUN(t, &r, "--report", report, "-n", "rep", "--", "@child", "exit", "3", "\x01\xff\"\\\n");
  assert_int_equal(r.code, 3);
  char *text = e2e_read(report);
  if (!json_valid(text))
    fail_msg("invalid JSON: %s", text);
  static const char *const keys[] = { "\"id\":", "\"name\":\"rep\"", "\"argv\":[", "\"started\":\"",
                                      "\"ended\":\"", "\"duration_ms\":", "\"exit_code\":3",
                                      "\"signal\":null", "\"timed_out\":false",
                                      "\"killed_hard\":false", "\"leftovers_killed\":0",
                                      "\"lock\":null", "\"lock_wait_ms\":", "\"skipped\":false",
                                      "\"peak_procs\":" };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (strstr(text, keys[i]) == NULL)
      fail_msg("report lacks %s: %s", keys[i], text);
  free(text);
  E2E_RUN(t, &r, "--report", "-", "-q", "-k", "0.2", "-t", "0.2", "--", "@child", "ignore-term",
          "sleep", "30");
  assert_int_equal(r.code, 124);
  assert_true(json_valid(r.err));
  assert_non_null(strstr(r.err, "\"timed_out\":true"));
  assert_non_null(strstr(r.err, "\"killed_hard\":true"));
  assert_non_null(strstr(r.err, "\"signal\":\"KILL\""));
  assert_non_null(strstr(r.err, "\"exit_code\":124"));
  E2E_RUN(t, &r, "--report", "-", "--", "@child", "{", "sleep", "300", "}", "exit", "0");
  assert_int_equal(r.code, 0);
  assert_true(json_valid(r.err));
  assert_non_null(strstr(r.err, "\"leftovers_killed\":1"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(detach_returns_at_once_and_the_run_is_tracked),
    E2E_TEST(detached_command_inherits_no_descriptor),
    E2E_TEST(detached_timeout_kills_the_whole_tree),
    E2E_TEST(sixty_hook_style_runs_leave_nothing),
    E2E_TEST(detached_lock_holder_blocks_others_until_it_ends),
    E2E_TEST(detached_missing_command_is_127_at_once),
    E2E_TEST(log_is_framed),
    E2E_TEST(log_in_a_missing_directory_is_125),
    E2E_TEST(quiet_success),
    E2E_TEST(report_is_valid_json_with_every_field),
  };
  return e2e_main("e2e-detach", tests, sizeof tests / sizeof tests[0]);
}
