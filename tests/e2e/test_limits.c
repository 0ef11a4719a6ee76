/* End-to-end: limits on the whole tree (--memory, --max-procs, --cpu-time),
 * --nice, and the accounting every run reports.  On this host ctrun
 * enforces the limits by sampling the tree; where the platform has no
 * process table (the generic POSIX path) the limits are refused. */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_check.h"

/* The number after "KEY": in JSON text S; -1 if absent. */
static long long json_num(const char *s, const char *key) {
  char want[64];
  const char *p;
  snprintf(want, sizeof want, "\"%s\":", key);
  p = strstr(s, want);
  return p == NULL ? -1 : strtoll(p + strlen(want), NULL, 10);
}

#define NEED_TABLE()                                                                               \
  do {                                                                                             \
    if (!e2e_has_extras())                                                                         \
      skip(); /* the generic POSIX path refuses limits: see limits_need_a_process_table */         \
  } while (0)

/* 20 processes that together touch 1 GiB: the tree is killed at once over
 * --memory 200M, reason memory, and nothing of it survives (teardown). */
static void memory_cap_kills_the_whole_tree(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *argv[160] = { "--memory", "200M", "-k", "60", "--report", NULL, "--", "@child" };
  size_t n = 8;
  NEED_TABLE();
  argv[5] = e2e_path(t, "report.json");
  for (int i = 0; i < 20; i++) {
    argv[n++] = "{";
    argv[n++] = "touch";
    argv[n++] = "50";
    argv[n++] = "sleep";
    argv[n++] = "300";
    argv[n++] = "}";
  }
  argv[n++] = "sleep";
  argv[n++] = "300";
  argv[n] = NULL;
  e2e_run(t, &r, argv);
  assert_int_equal(r.code, 124);
  /* The hard kill comes at once (-k 60 is not waited for). */
  assert_true(r.secs < 20);
  char *rep = e2e_read(e2e_path(t, "report.json"));
  assert_true(json_valid(rep));
  assert_non_null(strstr(rep, "\"reason\":\"memory\""));
  assert_non_null(strstr(rep, "\"killed_hard\":true"));
  assert_non_null(strstr(rep, "\"limits_enforced_by\":\"sampling\""));
  /* What was seen over the cap is the peak: more than 200 MiB. */
  assert_true(json_num(rep, "peak_rss_bytes") > 200LL << 20);
  assert_non_null(strstr(r.err, "over --memory 200M; killed"));
  free(rep);
}

/* Under the cap nothing happens, and the peak is what the tree touched. */
static void under_the_cap_the_tree_is_untouched_and_measured(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  NEED_TABLE();
  E2E_RUN(t, &r, "--memory", "1G", "--report", e2e_path(t, "report.json"), "--", "@child",
          "touch", "100", "sleep", "0.6", "exit", "3");
  assert_int_equal(r.code, 3);
  char *rep = e2e_read(e2e_path(t, "report.json"));
  long long peak = json_num(rep, "peak_rss_bytes");
  if (peak < 100LL << 20 || peak > 120LL << 20)
    fail_msg("peak_rss_bytes %lld is not within 20%% of the 100 MiB touched", peak);
  assert_non_null(strstr(rep, "\"reason\":\"exit\""));
  free(rep);
}

/* A tree that grows to 100 processes is ended at 50. */
static void process_cap_ends_a_growing_tree(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *argv[700] = { "--max-procs", "50", "--report", NULL, "--", "@child" };
  size_t n = 6;
  NEED_TABLE();
  argv[3] = e2e_path(t, "report.json");
  for (int i = 0; i < 100; i++) {
    argv[n++] = "{";
    argv[n++] = "sleep";
    argv[n++] = "300";
    argv[n++] = "}";
    argv[n++] = "sleep";
    argv[n++] = "0.01";
  }
  argv[n++] = "sleep";
  argv[n++] = "300";
  argv[n] = NULL;
  e2e_run(t, &r, argv);
  assert_int_equal(r.code, 124);
  char *rep = e2e_read(e2e_path(t, "report.json"));
  assert_non_null(strstr(rep, "\"reason\":\"procs\""));
  assert_true(json_num(rep, "peak_procs") > 50);
  assert_non_null(strstr(r.err, "over --max-procs 50; killed"));
  free(rep);
}

/* A fork storm (bounded by RLIMIT_NPROC where that binds: not as root) is
 * ended by --max-procs, and nothing of it survives. */
static void process_cap_ends_a_fork_storm(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  NEED_TABLE();
  E2E_RUN(t, &r, "--max-procs", "50", "-t", "60", "--report", e2e_path(t, "report.json"), "--",
          "@child", "nproc", "4000", "forkstorm", "60");
  assert_int_equal(r.code, 124);
  assert_true(r.secs < 30);
  char *rep = e2e_read(e2e_path(t, "report.json"));
  assert_non_null(strstr(rep, "\"reason\":\"procs\""));
  free(rep);
}

/* A busy loop hits --cpu-time; CPU of reaped processes counts too. */
static void cpu_budget_ends_a_busy_loop(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  NEED_TABLE();
  E2E_RUN(t, &r, "--cpu-time", "1s", "-o", e2e_path(t, "log"), "--", "@child", "{", "spin", "0.6",
          "}", "wait", "spin", "300");
  assert_int_equal(r.code, 124);
  /* 0.6 s by the reaped child, then 0.4 s more: well before 1 s of the
   * busy loop alone, and long before 300 s. */
  assert_true(r.secs < 10);
  char *log = e2e_read(e2e_path(t, "log"));
  assert_non_null(strstr(log, "end: over --cpu-time, exit 124 after"));
  free(log);
}

/* With --preserve-status, a run over a limit exits as the command died. */
static void preserve_status_over_a_limit(void **state) {
  struct e2e_result r;
  NEED_TABLE();
  E2E_RUN(*state, &r, "--preserve-status", "--cpu-time", "0.2", "--", "@child", "spin", "300");
  assert_int_equal(r.code, 128 + SIGKILL);
}

/* The command and its children run at the niceness asked for. */
static void nice_is_the_trees_niceness(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  E2E_RUN(t, &r, "--nice", "10", "--", "sh", "-c",
          "cut -d' ' -f19 /proc/self/stat; sh -c 'cut -d\" \" -f19 /proc/self/stat'");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "10\n10\n");
}

/* A niceness below ctrun's own needs privileges: without them, 125 with
 * the system's reason, and the command never runs. */
static void nice_refused_is_125(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *ran = e2e_path(t, "ran"), *dir = e2e_path(t, "nobody");
  char nstate[600];
  snprintf(nstate, sizeof nstate, "%s/state", dir);
  if (getuid() != 0) {
    E2E_RUN(t, &r, "--nice", "-5", "--", "@child", "pidfile", ran);
  } else {
    /* nobody, with a state directory of its own it may write */
    assert_int_equal(chmod(t->dir, 0711), 0);
    assert_int_equal(mkdir(dir, 0777), 0);
    assert_int_equal(chmod(dir, 01777), 0);
    E2E_RUN_CMD(t, &r, "@child", "setenv", "CTRUN_STATE_DIR", nstate, "setuid", "65534", "exec",
                "@ctrun", "--nice", "-5", "--", "@child", "pidfile", ran);
  }
  assert_int_equal(r.code, 125);
  if (strstr(r.err, "cannot run the command at niceness -5") == NULL)
    fail_msg("no refusal of niceness -5 on stderr: %s", r.err);
  assert_false(e2e_wait_file(ran, 0.3));
}

/* A command that burns 0.5 s of CPU reports about that; every run has the
 * accounting fields, in the report and in the log's end line. */
static void accounting_is_plausible(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  E2E_RUN(t, &r, "--report", e2e_path(t, "report.json"), "-o", e2e_path(t, "log"), "--", "@child",
          "{", "spin", "0.25", "}", "wait", "spin", "0.25");
  assert_int_equal(r.code, 0);
  char *rep = e2e_read(e2e_path(t, "report.json")), *log = e2e_read(e2e_path(t, "log"));
  long long cpu = json_num(rep, "cpu_user_ms") + json_num(rep, "cpu_sys_ms");
  if (cpu < 400 || cpu > 700)
    fail_msg("cpu_user_ms + cpu_sys_ms = %lld, not 400-700 for 0.5 s burnt", cpu);
  assert_true(json_num(rep, "peak_rss_bytes") > 0);
  assert_non_null(strstr(rep, "\"limits_enforced_by\":null"));
  assert_non_null(strstr(log, " user, "));
  assert_non_null(strstr(log, " sys; peak "));
  free(rep);
  free(log);
}

/* ps shows what a live run holds; check thresholds the total. */
static void ps_and_check_see_resident_memory(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  NEED_TABLE();
  pid_t run = E2E_START(t, "-n", "holder", "--memory", "1G", "--", "@child", "{", "touch", "64",
                        "pidfile", e2e_path(t, "ready"), "sleep", "300", "}", "sleep", "300");
  assert_true(e2e_wait_file(e2e_path(t, "ready"), 10));
  e2e_sleep(0.2);
  E2E_RUN(t, &r, "ps", "--json");
  assert_int_equal(r.code, 0);
  assert_true(json_valid(r.out));
  assert_true(json_num(r.out, "rss_bytes") >= 64LL << 20);
  assert_non_null(strstr(r.out, "\"limits_enforced_by\":\"sampling\""));
  E2E_RUN(t, &r, "ps");
  assert_non_null(strstr(r.out, "RSS"));
  assert_non_null(strstr(r.out, " MiB "));
  E2E_RUN(t, &r, "check", "--mem-warn", "32M");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.out, "CTRUN WARNING"));
  assert_non_null(strstr(r.out, ";33554432;"));
  E2E_RUN(t, &r, "check", "--mem-warn", "32M", "--mem-crit", "48M");
  assert_int_equal(r.code, 2);
  E2E_RUN(t, &r, "check", "--mem-crit", "1G");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, " mem="));
  E2E_RUN(t, &r, "stop", "holder");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_wait(run, 30), 124);
}

/* ---- The run's own cgroup (Linux, where ctrun may create one) ---------- */

/* The cgroup v2 line of /proc/PID/cgroup ("/ctrun-ID"), or "". */
static char *cgroup_of(pid_t pid) {
  char path[64], *text, *s;
  snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
  text = e2e_read(path);
  s = strstr(text, "0::");
  if (s == NULL || (s != text && s[-1] != '\n')) {
    text[0] = '\0';
    return text;
  }
  memmove(text, s + 3, strlen(s + 3) + 1);
  text[strcspn(text, "\n")] = '\0';
  return text;
}

/* A process the run put out of every other reach — its own session,
 * no CTRUN_RUN_ID in its environment, and no subreaper to inherit it — is
 * still in the run's cgroup: the hard kill reaches it through
 * cgroup.kill, and the run waits until the cgroup is empty. */
static void the_cgroup_holds_what_nothing_else_sees(void **state) {
  struct e2e *t = *state;
  const char *pids = e2e_path(t, "escapee");
  NEED_TABLE();
  pid_t run = E2E_SPAWN(t, e2e_forbid_subreaper, "@ctrun", "--memory", "1G", "--leftovers", "wait", "-t", "1",
                        "-k", "0.5", "--report", e2e_path(t, "report.json"), "--", "@child", "{",
                        "{", "setsid", "pidfile", pids, "unsetenv", "CTRUN_RUN_ID", "exec", "@child",
                        "sleep", "300", "}", "}", "exit", "0");
  assert_true(e2e_wait_file(pids, 10));
  e2e_sleep(0.2);
  char *text = e2e_read(pids);
  pid_t escapee = (pid_t)atoi(text);
  free(text);
  char *cg = cgroup_of(escapee);
  if (strncmp(cg, "/ctrun-", 7) != 0 && strstr(cg, "/ctrun-") == NULL) {
    kill(escapee, SIGKILL);
    e2e_wait(run, 30);
    skip(); /* no cgroup v2 that ctrun may create here: the sampling tests cover the limits */
  }
  int code = e2e_wait(run, 30);
  if (code == 77)
    skip(); /* the subreaper could not be refused here */
  if (code != 124)
    fail_msg("exit %d, not 124: %s", code, e2e_read(e2e_path(t, "spawn.err")));
  assert_false(e2e_running(escapee));
  /* The cgroup went with the run. */
  char path[600];
  snprintf(path, sizeof path, "/sys/fs/cgroup%s", cg);
  char alt[600];
  snprintf(alt, sizeof alt, "/sys/fs/cgroup/unified%s", cg);
  assert_int_not_equal(access(path, F_OK) == 0 || access(alt, F_OK) == 0, 1);
  free(cg);
  e2e_forgive_orphans();
}

/* ctrun SIGKILLed: its run's cgroup outlives it, with what is left in it;
 * cleanup kills that and removes the cgroup. */
static void cleanup_removes_a_stale_runs_cgroup(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  const char *pids = e2e_path(t, "left");
  NEED_TABLE();
  pid_t run = E2E_START(t, "--memory", "1G", "--", "@child", "{", "setsid", "pidfile", pids,
                        "sleep", "300", "}", "sleep", "300");
  assert_true(e2e_wait_file(pids, 10));
  e2e_sleep(0.2);
  char *text = e2e_read(pids);
  pid_t left = (pid_t)atoi(text);
  free(text);
  char *cg = cgroup_of(left), path[600], alt[600];
  snprintf(path, sizeof path, "/sys/fs/cgroup%s", cg);
  snprintf(alt, sizeof alt, "/sys/fs/cgroup/unified%s", cg);
  kill(run, SIGKILL);
  assert_int_equal(e2e_wait(run, 10), 128 + SIGKILL);
  if (strstr(cg, "/ctrun-") == NULL) {
    E2E_RUN(t, &r, "cleanup");
    free(cg);
    e2e_forgive_orphans();
    skip(); /* no cgroup v2 that ctrun may create here */
  }
  assert_true(access(path, F_OK) == 0 || access(alt, F_OK) == 0);
  E2E_RUN(t, &r, "cleanup");
  assert_int_equal(r.code, 0);
  assert_false(e2e_running(left));
  assert_false(access(path, F_OK) == 0 || access(alt, F_OK) == 0);
  free(cg);
  e2e_forgive_orphans();
}

/* Where the memory and pids controllers are enabled for ctrun's cgroup,
 * the kernel holds the caps: the same ends, with limits_enforced_by
 * kernel.  Elsewhere this test says precisely what the host lacks. */
static void the_kernel_holds_the_caps(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char own[600] = "", ctl[700], *text, *line, *controllers;
  NEED_TABLE();
  line = cgroup_of(getpid());
  snprintf(own, sizeof own, "%s", line);
  free(line);
  snprintf(ctl, sizeof ctl, "/sys/fs/cgroup%s/cgroup.subtree_control", strcmp(own, "/") ? own : "");
  controllers = e2e_read(ctl);
  if (controllers[0] == '\0') {
    snprintf(ctl, sizeof ctl, "/sys/fs/cgroup/unified%s/cgroup.subtree_control",
             strcmp(own, "/") ? own : "");
    free(controllers);
    controllers = e2e_read(ctl);
  }
  if (strstr(controllers, "memory") == NULL || strstr(controllers, "pids") == NULL) {
    text = e2e_read("/sys/fs/cgroup/unified/cgroup.controllers");
    print_message("SKIP: the kernel path needs the memory and pids controllers enabled for the "
                  "children of ctrun's cgroup %s; its %s reads '%.*s'%s\n", own, ctl,
                  (int)strcspn(controllers, "\n"), controllers,
                  text[0] ? " (a hybrid host: cgroup v2 is mounted beside v1, which holds those "
                            "controllers)" : "");
    free(text);
    free(controllers);
    skip();
  }
  free(controllers);
  E2E_RUN(t, &r, "--memory", "64M", "--report", e2e_path(t, "report.json"), "--", "@child",
          "touch", "256", "sleep", "300");
  assert_int_equal(r.code, 124);
  text = e2e_read(e2e_path(t, "report.json"));
  assert_non_null(strstr(text, "\"reason\":\"memory\""));
  assert_non_null(strstr(text, "\"limits_enforced_by\":\"kernel\""));
  free(text);
  E2E_RUN(t, &r, "--max-procs", "5", "--report", e2e_path(t, "report.json"), "--", "sh", "-c",
          "for i in 1 2 3 4 5 6 7 8; do sleep 300 & done; wait");
  assert_int_equal(r.code, 124);
  text = e2e_read(e2e_path(t, "report.json"));
  assert_non_null(strstr(text, "\"reason\":\"procs\""));
  free(text);
}

/* Bad values: 125, naming option and value; nothing runs. */
static void bad_values_are_refused(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  static const char *const bad[][2] = {
    { "--memory", "12Q" },     { "--memory", "-1M" },   { "--memory", "1e9" },
    { "--memory", "9999999T" },  { "--memory", "0" },     { "--max-procs", "0" },
    { "--max-procs", "-3" },   { "--nice", "99" },      { "--nice", "-21" },
    { "--nice", "ten" },       { "--cpu-time", "0" },   { "--cpu-time", "1x" },
  };
  const char *ran = e2e_path(t, "ran");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    E2E_RUN(t, &r, bad[i][0], bad[i][1], "--", "@child", "pidfile", ran);
    assert_int_equal(r.code, 125);
    if (strstr(r.err, bad[i][0]) == NULL || strstr(r.err, bad[i][1]) == NULL)
      fail_msg("the message for %s %s names neither: %s", bad[i][0], bad[i][1], r.err);
  }
  E2E_RUN(t, &r, "check", "--mem-warn", "lots");
  assert_int_equal(r.code, 125);
  assert_false(e2e_wait_file(ran, 0.2));
}

/* Where there is no process table, sampling is impossible: refused. */
static void limits_need_a_process_table(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  if (e2e_has_extras())
    skip(); /* this host has one: the tests above exercise the limits */
  E2E_RUN(t, &r, "--memory", "1G", "--", "@child", "pidfile", e2e_path(t, "ran"));
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "--memory needs a process table"));
  assert_false(e2e_wait_file(e2e_path(t, "ran"), 0.2));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(memory_cap_kills_the_whole_tree),
    E2E_TEST(under_the_cap_the_tree_is_untouched_and_measured),
    E2E_TEST(process_cap_ends_a_growing_tree),
    E2E_TEST(process_cap_ends_a_fork_storm),
    E2E_TEST(cpu_budget_ends_a_busy_loop),
    E2E_TEST(preserve_status_over_a_limit),
    E2E_TEST(nice_is_the_trees_niceness),
    E2E_TEST(nice_refused_is_125),
    E2E_TEST(accounting_is_plausible),
    E2E_TEST(ps_and_check_see_resident_memory),
    E2E_TEST(the_cgroup_holds_what_nothing_else_sees),
    E2E_TEST(cleanup_removes_a_stale_runs_cgroup),
    E2E_TEST(the_kernel_holds_the_caps),
    E2E_TEST(bad_values_are_refused),
    E2E_TEST(limits_need_a_process_table),
  };
  return e2e_main("e2e-limits", tests, sizeof tests / sizeof tests[0]);
}
