/* End-to-end: --idle-timeout, and the output relay it needs: silence ends
 * a run, output passes unchanged, a slow reader holds the command back
 * without ctrun's memory growing. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_check.h"

/* The whole of a file, however long; its length in *LEN. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  size_t cap = 1 << 20, n = 0;
  char *buf = malloc(cap);
  assert_non_null(f);
  for (size_t got; (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap)
      buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  *len = n;
  return buf;
}

static void assert_same_file(const char *a, const char *b) {
  size_t la, lb;
  char *x = slurp(a, &la), *y = slurp(b, &lb);
  if (la != lb || memcmp(x, y, la) != 0)
    fail_msg("%s (%zu bytes) and %s (%zu bytes) differ", a, la, b, lb);
  free(x);
  free(y);
}

/* No output for the limit ends the run as a timeout would: 124, reason
 * idle, in the message, the log and the report. */
static void a_silent_run_ends_idle(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *log = e2e_path(t, "log"), *report = e2e_path(t, "report.json");
  E2E_RUN(t, &r, "--idle-timeout", "0.5", "-o", log, "--report", report, "--", "@child", "out",
          "hello", "sleep", "30");
  assert_int_equal(r.code, 124);
  assert_true(r.secs >= 0.45 && r.secs < 10);
  assert_non_null(strstr(r.err, "idle: no output for 500ms; sending TERM"));
  char *text = e2e_read(log), *rep = e2e_read(report);
  assert_non_null(strstr(text, "hello\n"));
  assert_non_null(strstr(text, "end: idle, exit 124 after"));
  assert_true(json_valid(rep));
  assert_non_null(strstr(rep, "\"reason\":\"idle\""));
  assert_non_null(strstr(rep, "\"timed_out\":true"));
  free(text);
  free(rep);
}

/* Output now and then, each time within the limit: the run is left alone,
 * and its output is all there, stdout and stderr apart. */
static void a_chatty_run_is_left_alone(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--idle-timeout", "0.6", "--", "@child", "out", "1", "sleep", "0.35", "err",
          "2", "sleep", "0.35", "out", "3", "sleep", "0.35", "err", "4", "sleep", "0.35", "out",
          "5", "exit", "7");
  assert_int_equal(r.code, 7);
  assert_string_equal(r.out, "1\n3\n5\n");
  assert_string_equal(r.err, "2\n4\n");
}

/* The relayed output is byte for byte what a direct run writes, stdout
 * and stderr each on its own. */
static void relayed_output_is_byte_identical(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char out[600], err[600];
  E2E_RUN_CMD(t, &r, "@child", "mix", "900000", "11");
  assert_int_equal(r.code, 0);
  snprintf(out, sizeof out, "%s", e2e_path(t, "direct.out"));
  snprintf(err, sizeof err, "%s", e2e_path(t, "direct.err"));
  assert_int_equal(rename(e2e_path(t, "run.out"), out), 0);
  assert_int_equal(rename(e2e_path(t, "run.err"), err), 0);
  E2E_RUN(t, &r, "--idle-timeout", "10", "--", "@child", "mix", "900000", "11");
  assert_int_equal(r.code, 0);
  assert_same_file(out, e2e_path(t, "run.out"));
  assert_same_file(err, e2e_path(t, "run.err"));
}

/* Into the log, one stream arrives whole and in order; what leftovers
 * write before they are gone is there too. */
static void the_log_gets_everything_leftovers_included(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *log = e2e_path(t, "log");
  size_t len, dlen;
  E2E_RUN_CMD(t, &r, "@child", "spew", "1", "700000");
  char *direct = slurp(e2e_path(t, "run.out"), &dlen);
  E2E_RUN(t, &r, "--idle-timeout", "5", "-o", log, "--leftovers", "wait", "--", "@child", "spew",
          "1", "700000", "{", "sleep", "0.4", "out", "late-leftover", "}", "exit", "0");
  assert_int_equal(r.code, 0);
  char *text = slurp(log, &len);
  char *body = memchr(text, '\n', len);
  assert_non_null(body);
  body++;
  assert_true(len - (size_t)(body - text) > dlen);
  assert_memory_equal(body, direct, dlen);
  assert_non_null(strstr(body + dlen, "late-leftover\n"));
  assert_non_null(strstr(body + dlen, " end: exit 0 after "));
  free(text);
  free(direct);
  /* A leftover that is killed: what it wrote first is kept. */
  E2E_RUN(t, &r, "--idle-timeout", "5", "--", "@child", "{", "out", "early", "sleep", "300", "}",
          "sleep", "0.3", "exit", "0");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "early\n");
}

/* --quiet-success holds the relayed output back as it held the direct. */
static void quiet_success_with_the_relay(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "--quiet-success", "--idle-timeout", "5", "--", "@child", "out", "fine");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "");
  E2E_RUN(*state, &r, "--quiet-success", "--idle-timeout", "0.3", "--", "@child", "out", "stuck",
          "sleep", "30");
  assert_int_equal(r.code, 124);
  assert_string_equal(r.out, "stuck\n");
}

/* ctrun's own stdout is a pipe nobody reads for a while: ctrun stops
 * reading (the command waits in write, which is not idle), keeps its
 * memory bounded, and loses nothing once the reader comes back. */
static void a_slow_reader_holds_the_command_back(void **state) {
  struct e2e *t = *state;
  int p[2];
  long long total = 0;
  char buf[65536], path[64], status[4096];
  long rss_kb = 0;
  assert_int_equal(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], 1);
    setenv("CTRUN_STATE_DIR", t->state, 1);
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    execl(getenv("CTRUN"), "ctrun", "--idle-timeout", "0.5", "--", getenv("CTRUN_TESTCHILD"),
          "spew", "1", "30000000", (char *)NULL);
    _exit(200);
  }
  e2e_own(pid);
  close(p[1]);
  e2e_sleep(1.5); /* three times the limit, with nobody reading */
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  while (fgets(status, sizeof status, f) != NULL)
    if (strncmp(status, "VmRSS:", 6) == 0)
      rss_kb = atol(status + 6);
  fclose(f);
  if (rss_kb > 16 * 1024)
    fail_msg("ctrun grew to %ld KiB while its reader was away", rss_kb);
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) != 0;)
    if (n > 0)
      total += n;
  close(p[0]);
  assert_int_equal(e2e_wait(pid, 60), 0);
  assert_int_equal(total, 30000000);
}

/* A closed stdout: the writes fail, which ctrun ignores; the command runs
 * to its end, and its status is the run's. */
static void a_closed_stdout_is_no_reason_to_stop(void **state) {
  struct e2e_result r;
  E2E_RUN_CMD(*state, &r, "@child", "brokenpipe", "1", "exec", "@ctrun", "--idle-timeout", "5",
              "--", "@child", "spew", "1", "2000000", "err", "still-here", "exit", "4");
  assert_int_equal(r.code, 4);
  assert_non_null(strstr(r.err, "still-here"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(a_silent_run_ends_idle),
    E2E_TEST(a_chatty_run_is_left_alone),
    E2E_TEST(relayed_output_is_byte_identical),
    E2E_TEST(the_log_gets_everything_leftovers_included),
    E2E_TEST(quiet_success_with_the_relay),
    E2E_TEST(a_slow_reader_holds_the_command_back),
    E2E_TEST(a_closed_stdout_is_no_reason_to_stop),
  };
  return e2e_main("e2e-idle", tests, sizeof tests / sizeof tests[0]);
}
