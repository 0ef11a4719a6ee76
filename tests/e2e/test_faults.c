/* End-to-end: fault injection and load.  The supervisor is SIGKILLed at
 * random moments; afterwards ctrun cleanup must leave no process of any of
 * those runs and no entry.  A full disk must give a clear error and never
 * a half-written entry.  Two hundred concurrent runs must all end right. */
#include "harness.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

/* How many files DIR holds, histories too unless ALL is false; each one
 * counted is named on stderr, so that a failure says what was left. */
static int count_files(const char *dir, bool all) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  while (d && (de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (de->d_name[0] == '.' ||
        (!all && len > 8 && strcmp(de->d_name + len - 8, ".history") == 0))
      continue;
    fprintf(stderr, "left in %s: %s\n", dir, de->d_name);
    n++;
  }
  if (d)
    closedir(d);
  return n;
}

static void random_sigkill_then_cleanup_leaves_nothing(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  enum { N = 40 };
  srand((unsigned)getpid());
  for (int i = 0; i < N; i++) {
    pid_t pid;
    /* Half of them die while the hard kill of a TERM-ignoring tree runs. */
    if (i % 2 == 0)
      pid = E2E_START(t, "-n", "victim", "--", "@child", "{", "setsid", "sleep", "300", "}", "{",
                      "{", "sleep", "300", "}", "}", "sleep", "300");
    else
      pid = E2E_START(t, "-n", "victim", "-t", "0.01", "-k", "0.01", "--", "@child",
                      "ignore-term", "{", "setsid", "ignore-term", "sleep", "300", "}", "{",
                      "ignore-term", "sleep", "300", "}", "sleep", "300");
    e2e_sleep((double)(rand() % 30) / 1000.0);
    kill(pid, SIGKILL);
    e2e_wait(pid, 10);
  }
  E2E_RUN(t, &r, "cleanup");
  assert_int_equal(r.code, 0);
  /* Anything spawned after the cleanup listed it is caught by a second one:
   * no supervisor is alive any more, so nothing new can start. */
  E2E_RUN(t, &r, "cleanup");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_count_marked(t), 0);
  E2E_RUN(t, &r, "ps", "--json");
  assert_string_equal(r.out, "[]\n");
  /* No entry, no temporary file.  A run may have ended before its kill
   * came (the timed-out ones take some 20 ms): its history is no leftover. */
  assert_int_equal(count_files(t->state, false), 0);
  e2e_forgive_orphans();
}

static void full_disk_is_a_clear_error(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char err[1024], *text;
  E2E_RUN(t, &r, "ps"); /* creates the state directory */
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit rl = { 64, 64 }; /* smaller than any entry */
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &rl);
    setenv("CTRUN_STATE_DIR", t->state, 1);
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    snprintf(err, sizeof err, "%s/err", t->dir);
    if (freopen(err, "w", stderr) == NULL)
      _exit(99);
    execl(getenv("CTRUN"), "ctrun", "--", getenv("CTRUN_TESTCHILD"), "out", "ran", (char *)NULL);
    _exit(200);
  }
  e2e_own(pid);
  assert_int_equal(e2e_wait(pid, 10), 125);
  text = e2e_read(e2e_path(t, "err"));
  assert_non_null(strstr(text, "cannot record the run"));
  free(text);
  assert_int_equal(count_files(t->state, true), 0); /* nothing half-written */
  E2E_RUN(t, &r, "ps", "--json");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "[]\n");
}

static void two_hundred_concurrent_runs(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  enum { N = 200 };
  pid_t pids[N];
  int want[N];
  const char *lock = e2e_path(t, "load.lock");
  char code[16], dir[512];
  snprintf(dir, sizeof dir, "%s", t->dir);
  for (int i = 0; i < N; i++) {
    snprintf(code, sizeof code, "%d", i % 7);
    switch (i % 4) {
    case 0: /* foreground, own exit code */
      pids[i] = E2E_START(t, "--", "@child", "sleep", "0.2", "exit", code);
      want[i] = i % 7;
      break;
    case 1: /* foreground, timed out, with a leftover */
      pids[i] = E2E_START(t, "-t", "0.1", "--", "@child", "{", "sleep", "300", "}", "sleep", "300");
      want[i] = 124;
      break;
    case 2: /* detached */
      pids[i] = E2E_START(t, "-d", "-q", "--", "@child", "{", "sleep", "0.2", "}", "sleep", "0.3");
      want[i] = 0;
      break;
    default: /* locked, all in turn */
      pids[i] = E2E_START(t, "-l", lock, "-w", "inf", "--", "@child", "crit", dir);
      want[i] = 0;
    }
  }
  for (int i = 0; i < N; i++)
    if (e2e_wait(pids[i], 120) != want[i])
      fail_msg("run %d did not exit %d", i, want[i]);
  double end = e2e_now() + 20;
  do
    E2E_RUN(t, &r, "ps", "--json");
  while (strcmp(r.out, "[]\n") != 0 && e2e_now() < end && (e2e_sleep(0.1), 1));
  assert_string_equal(r.out, "[]\n");
  assert_int_equal(e2e_count_marked(t), 0);
  char *entered = e2e_read(e2e_path(t, "entered"));
  int lines = 0;
  for (char *s = entered; *s; s++)
    lines += *s == '\n';
  free(entered);
  assert_int_equal(lines, N / 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(random_sigkill_then_cleanup_leaves_nothing),
    E2E_TEST(full_disk_is_a_clear_error),
    E2E_TEST(two_hundred_concurrent_runs),
  };
  if (!e2e_has_extras()) {
    fprintf(stderr, "generic POSIX containment: cleanup cannot verify stale runs by design\n");
    return 77;
  }
  return e2e_main("e2e-faults", tests, sizeof tests / sizeof tests[0]);
}
