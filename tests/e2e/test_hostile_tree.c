/* End-to-end: trees that work against their supervisor.  A process whose
 * main thread has exited, a pid hopper, a fork storm, a tag buried under a
 * large environment, a member ctrun may not signal, children that ctrun
 * had before it started, ctrun as PID 1 with and without its own /proc.
 * Each test says why it is skipped (77) where the host cannot show it. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Skip this test, saying why. */
#define SKIP_BECAUSE(...)                                                                          \
  do {                                                                                             \
    fprintf(stderr, "skipped: " __VA_ARGS__);                                                      \
    fputc('\n', stderr);                                                                           \
    skip();                                                                                        \
  } while (0)

/* What the generic POSIX path (process group only, no process table)
 * documents it cannot do; such a test is skipped there, saying why. */
#define NEED_EXTRAS(why)                                                                           \
  do {                                                                                             \
    if (!e2e_has_extras())                                                                         \
      SKIP_BECAUSE("generic POSIX containment: %s", why);                                          \
  } while (0)
#define LEAVES_GROUP "a process that leaves the command's group (setsid) is out of its reach"
#define NO_TABLE "no process table: no counts, and cleanup cannot verify a stale run's remains"

static pid_t pid_in(const char *path);

/* Wait up to SECS for ctrun PID; fail (after killing it) if it hangs. */
static int finish(pid_t pid, double secs) {
  int code = e2e_wait(pid, secs);
  if (code == -1) {
    kill(pid, SIGKILL);
    e2e_wait(pid, 5);
  }
  return code;
}

#define SPAWN E2E_SPAWN

/* ---- A process whose main thread has exited ---------------------------- */

static void thread_leader_exited_leftover_is_killed(void **state) {
  struct e2e *t = *state;
  /* The command exits at once; what it leaves reads Z in /proc/PID/stat
   * and has no /proc/PID/environ, while its thread runs on. */
  pid_t pid = E2E_START(t, "-t", "5", "-k", "0.5", "-l", e2e_path(t, "lock"), "--", "@child", "{",
                        "zleader", "ignore-term", "sleep", "300", "}", "exit", "0");
  assert_int_equal(finish(pid, 30), 0);
  assert_int_equal(e2e_count_marked(t), 0);
  /* The lock went with the tree. */
  struct e2e_result r;
  E2E_RUN(t, &r, "-l", e2e_path(t, "lock"), "--", "@child", "exit", "0");
  assert_int_equal(r.code, 0);
}

static void thread_leader_exited_process_times_out(void **state) {
  struct e2e *t = *state;
  NEED_EXTRAS(LEAVES_GROUP);
  pid_t pid = E2E_START(t, "-t", "0.5", "-k", "0.5", "--", "@child", "{", "setsid", "zleader",
                        "ignore-term", "sleep", "300", "}", "sleep", "300");
  assert_int_equal(finish(pid, 30), 124);
  assert_int_equal(e2e_count_marked(t), 0);
}

/* Without a subreaper the tree is found by its tag, which such a process
 * shows only through the threads that still run. */
static void thread_leader_exited_escapee_dies_without_subreaper(void **state) {
  struct e2e *t = *state;
  NEED_EXTRAS(LEAVES_GROUP);
  pid_t pid = SPAWN(t, e2e_forbid_subreaper, "@ctrun", "-t", "0.5", "-k", "0.5", "--", "@child", "{", "setsid",
                    "zleader", "ignore-term", "sleep", "300", "}", "sleep", "300");
  int code = finish(pid, 30);
  if (code == 77)
    SKIP_BECAUSE("no seccomp filter here to refuse the subreaper");
  assert_int_equal(code, 124);
  assert_int_equal(e2e_count_marked(t), 0);
  e2e_forgive_orphans(); /* without a subreaper, orphans come to the runner */
}

/* ps and check count it; after ctrun's SIGKILL, cleanup finds it by its
 * tag, which only a running thread still shows. */
static void thread_leader_exited_process_is_counted_and_cleaned(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  NEED_EXTRAS(NO_TABLE);
  pid_t pid = E2E_START(t, "-n", "zl", "--", "@child", "{", "setsid", "zleader", "sleep", "300",
                        "}", "sleep", "300");
  assert_true(e2e_wait_marked(t, 3, 10)); /* ctrun, its command, the zleader */
  E2E_RUN(t, &r, "ps", "--json");
  assert_non_null(strstr(r.out, "\"procs\":2"));
  E2E_RUN(t, &r, "check");
  assert_non_null(strstr(r.out, "2 processes"));
  kill(pid, SIGKILL);
  assert_int_equal(e2e_wait(pid, 5), 128 + SIGKILL);
  e2e_sleep(0.2);
  assert_int_equal(e2e_count_marked(t), 1); /* the zleader lives on */
  E2E_RUN(t, &r, "ps", "--json");
  assert_non_null(strstr(r.out, "\"procs\":1"));
  E2E_RUN(t, &r, "cleanup");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "cleaned stale run"));
  assert_int_equal(e2e_count_marked(t), 0);
  E2E_RUN(t, &r, "ps", "--json");
  assert_string_equal(r.out, "[]\n");
  e2e_forgive_orphans();
}

/* ---- A run tag behind a large environment ------------------------------ */

/* The escapee of a killed supervisor is found by its tag however large
 * the environment in front of it. */
static void tag_is_found_behind_a_large_environment(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  NEED_EXTRAS(NO_TABLE);
  char *big = malloc(40 * 1024 + 1);
  memset(big, 'x', 40 * 1024);
  big[40 * 1024] = '\0';
  setenv("CTRUN_TEST_A_LARGE_VARIABLE", big, 1);
  free(big);
  pid_t pid = E2E_START(t, "-n", "big", "-k", "0.5", "--", "@child", "{", "setsid", "ignore-term",
                        "sleep", "300", "}", "sleep", "300");
  unsetenv("CTRUN_TEST_A_LARGE_VARIABLE");
  assert_true(e2e_wait_marked(t, 3, 10));
  kill(pid, SIGKILL);
  assert_int_equal(e2e_wait(pid, 5), 128 + SIGKILL);
  e2e_sleep(0.2);
  assert_int_equal(e2e_count_marked(t), 1); /* the escapee */
  E2E_RUN(t, &r, "ps", "--json");
  assert_non_null(strstr(r.out, "\"procs\":1"));
  E2E_RUN(t, &r, "cleanup");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_count_marked(t), 0);
  e2e_forgive_orphans();
}

/* ---- Bounded cleanup and stop ------------------------------------------- */

/* A supervisor SIGKILLed with an escapee that ignores TERM under -k inf. */
static void crash_an_endless_run(struct e2e *t, const char *name) {
  pid_t pid = E2E_START(t, "-n", name, "-k", "inf", "--", "@child", "{", "setsid", "ignore-term",
                        "sleep", "300", "}", "sleep", "300");
  assert_true(e2e_wait_marked(t, 3, 10));
  kill(pid, SIGKILL);
  assert_int_equal(e2e_wait(pid, 5), 128 + SIGKILL);
  e2e_sleep(0.2);
  assert_int_equal(e2e_count_marked(t), 1);
}

static void cleanup_is_bounded_under_kill_after_inf(void **state) {
  struct e2e *t = *state;
  NEED_EXTRAS(NO_TABLE);
  crash_an_endless_run(t, "endless");
  double t0 = e2e_now();
  pid_t pid = E2E_START(t, "cleanup");
  assert_int_equal(finish(pid, 60), 0);
  assert_true(e2e_now() - t0 < 30);
  assert_int_equal(e2e_count_marked(t), 0);
  e2e_forgive_orphans();
}

static void check_cleanup_is_bounded_under_kill_after_inf(void **state) {
  struct e2e *t = *state;
  NEED_EXTRAS(NO_TABLE);
  crash_an_endless_run(t, "endless");
  double t0 = e2e_now();
  pid_t pid = E2E_START(t, "check", "--crit", "1", "--cleanup");
  assert_int_equal(finish(pid, 60), 2);
  assert_true(e2e_now() - t0 < 30);
  assert_int_equal(e2e_count_marked(t), 0);
  e2e_forgive_orphans();
}

/* A supervisor that cannot act (stopped) makes stop -k 0 give up after
 * its bound of about 10 s, by the clock. */
static void stop_gives_up_in_time(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  pid_t pid = E2E_START(t, "-n", "frozen", "--", "@child", "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 10));
  kill(pid, SIGSTOP);
  E2E_RUN(t, &r, "stop", "-k", "0", "frozen");
  assert_int_equal(r.code, 125);
  assert_true(r.secs >= 9 && r.secs < 30);
  assert_non_null(strstr(r.err, "did not stop in time"));
  kill(pid, SIGCONT); /* it reads the request now */
  assert_int_equal(finish(pid, 30), 124);
}

static void stop_has_no_cap_on_runs(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  for (int i = 0; i < 70; i++) {
    E2E_RUN(t, &r, "-d", "-n", "many", "-k", "0.2", "--", "@child", "sleep", "300");
    assert_int_equal(r.code, 0);
  }
  E2E_RUN(t, &r, "stop", "many");
  assert_int_equal(r.code, 0);
  E2E_RUN(t, &r, "ps", "--json");
  assert_string_equal(r.out, "[]\n");
  double end = e2e_now() + 20;
  while (e2e_count_marked(t) > 0 && e2e_now() < end)
    e2e_sleep(0.05);
  e2e_forgive_orphans(); /* detached supervisors come to the runner */
}

/* Two stops at once, right as the run has started: both succeed.  The
 * run outlives the first stop by -k (it ignores TERM): long enough for
 * the second to find it however the two are scheduled (with 0.2s, a
 * loaded host started the second after the run was gone).  The stops
 * wait until the command ignores TERM: a TERM in the moments between its
 * exec and that ends the run at once, and a stop that comes after the
 * run is over says "no such run" (1), as it should. */
static void concurrent_stops_are_idempotent(void **state) {
  struct e2e *t = *state;
  const char *ready = e2e_path(t, "ready");
  for (int round = 0; round < 20; round++) {
    unlink(ready);
    pid_t run = E2E_START(t, "-n", "twin", "-k", "1", "--", "@child", "ignore-term", "pidfile",
                          ready, "sleep", "300");
    assert_true(e2e_wait_file(ready, 10));
    pid_t a = E2E_START(t, "stop", "twin"), b = E2E_START(t, "stop", "twin");
    int ca = finish(a, 30), cb = finish(b, 30);
    if (ca != 0 || cb != 0)
      fprintf(stderr, "round %d: the stops exited %d and %d\n", round, ca, cb);
    assert_int_equal(ca, 0);
    assert_int_equal(cb, 0);
    int code = finish(run, 30);
    if (code != 124) {
      /* A message is cut at 1 KiB; a sanitizer's report is longer. */
      fprintf(stderr, "round %d: the run exited %d, not 124; its standard error:\n%s\n", round,
              code, e2e_start_err(t));
      fail();
    }
  }
}

/* The line of /proc/PID/status that begins with KEY (which ends in ':'),
 * as a number in BASE; 0 if there is none. */
static unsigned long long status_field(pid_t pid, const char *key, int base) {
  char path[64], *text, *at;
  unsigned long long v = 0;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  text = e2e_read(path);
  if ((at = strstr(text, key)) != NULL)
    v = strtoull(at + strlen(key), NULL, base);
  free(text);
  return v;
}

/* A stop that reaches the supervisor in the same turn of its loop as the
 * end of the command finds the run over: the run keeps the command's own
 * status, the stop succeeds, and ctrun closes nothing twice (it did: the
 * stop was taken for one between two attempts, and the run's handles,
 * already closed, were closed again; libuv aborts on that).  Both are
 * made to arrive at once by holding ctrun stopped while the command is
 * killed (from outside: its own end, 128+9) and the stop asks. */
static void stop_as_the_run_ends_finds_it_over(void **state) {
  struct e2e *t = *state;
  const char *ready = e2e_path(t, "ready");
  char *text;
  pid_t run = E2E_START(t, "-n", "ending", "--", "@child", "pidfile", ready, "sleep", "300");
  assert_true(e2e_wait_file(ready, 10));
  e2e_sleep(0.05); /* the pid is written whole */
  text = e2e_read(ready);
  pid_t child = (pid_t)atoi(text);
  free(text);
  assert_true(child > 0);
  kill(run, SIGSTOP);
  kill(child, SIGKILL);
  /* The command is gone (a zombie: ctrun, stopped, has not reaped it). */
  double end = e2e_now() + 10;
  while (e2e_running(child) && e2e_now() < end)
    e2e_sleep(0.01);
  assert_false(e2e_running(child));
  /* The stop writes its request and signals ctrun (SIGUSR1, pending). */
  pid_t stop = E2E_START(t, "stop", "ending");
  end = e2e_now() + 10;
  while (!(status_field(run, "ShdPnd:", 16) & (1ull << (SIGUSR1 - 1))) && e2e_now() < end)
    e2e_sleep(0.01);
  assert_true(status_field(run, "ShdPnd:", 16) & (1ull << (SIGUSR1 - 1)));
  kill(run, SIGCONT);
  int code = finish(run, 10);
  if (code != 128 + SIGKILL) {
    fprintf(stderr, "the run exited %d, not 137; its standard error:\n%s\n", code,
            e2e_start_err(t));
    fail();
  }
  assert_int_equal(finish(stop, 30), 0);
}

/* ---- A pid hopper and a fork storm ------------------------------------- */

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* A process that forks a successor and exits, for ever, outside the
 * command's group: the soft signal must reach it, not just the hard kill. */
static void pid_hopper_gets_the_soft_signal(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  NEED_EXTRAS(LEAVES_GROUP);
  E2E_RUN(t, &r, "-t", "0.5", "-k", "20", "--report", e2e_path(t, "report.json"), "--", "@child",
          "{", "setsid", "trap-term", e2e_path(t, "hopper-got-term"), "hopper", "}", "sleep",
          "300");
  assert_int_equal(r.code, 124);
  assert_true(r.secs < 15);
  assert_true(exists(e2e_path(t, "hopper-got-term")));
  char *report = e2e_read(e2e_path(t, "report.json"));
  assert_non_null(strstr(report, "\"killed_hard\":false"));
  free(report);
}

/* What a killed supervisor left includes a pid hopper: cleanup's soft
 * signal reaches it too. */
static void cleanup_reaches_a_pid_hopper(void **state) {
  struct e2e *t = *state;
  NEED_EXTRAS(LEAVES_GROUP);
  pid_t pid = E2E_START(t, "-n", "hop", "-k", "20", "--", "@child", "{", "setsid", "pidfile",
                        e2e_path(t, "leader"), "trap-term", e2e_path(t, "hopper-got-term"), "hopper",
                        "}", "sleep", "300");
  assert_true(e2e_wait_file(e2e_path(t, "leader"), 10));
  e2e_sleep(0.3);
  kill(pid, SIGKILL);
  assert_int_equal(e2e_wait(pid, 5), 128 + SIGKILL);
  pid_t cleanup = E2E_START(t, "cleanup");
  int code = finish(cleanup, 60);
  bool got = exists(e2e_path(t, "hopper-got-term"));
  /* Whatever happened, the hopper's group (its session leader's pid) goes,
   * and what it leaves reaches the runner before the orphans are forgiven:
   * ctrun was killed on purpose. */
  double end = e2e_now() + 10;
  do {
    kill(-pid_in(e2e_path(t, "leader")), SIGKILL);
    e2e_sleep(0.05);
  } while (e2e_count_marked(t) > 0 && e2e_now() < end);
  e2e_sleep(0.2);
  e2e_forgive_orphans();
  assert_int_equal(code, 0);
  assert_true(got);
}

/* Orphans dying by the thousand, each a SIGCHLD to ctrun: with --report,
 * the deadline must still fire on time. */
static void fork_storm_does_not_starve_the_deadline(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  NEED_EXTRAS("without a subreaper the storm's orphans are not ctrun's to reap, and a storm "
              "that escaped could not be ended");
  E2E_RUN(t, &r, "-t", "1", "-k", "1", "--report", e2e_path(t, "report.json"), "--", "@child",
          "forkstorm", "4");
  assert_int_equal(r.code, 124);
  assert_true(r.secs < 6);
  char *report = e2e_read(e2e_path(t, "report.json"));
  assert_non_null(strstr(report, "\"peak_procs\":"));
  assert_null(strstr(report, "\"peak_procs\":0"));
  free(report);
}

/* ---- ctrun as PID 1 of a PID namespace ------------------------------------ */

/* Whether "unshare FLAGS true" works here; the reason in WHY if not. */
static bool can_unshare(const char *flags, char *why, size_t size) {
  pid_t pid = fork();
  int st = 0;
  if (pid == 0) {
    int fd = open("/dev/null", O_RDWR);
    dup2(fd, 1);
    dup2(fd, 2);
    execlp("unshare", "unshare", flags, "true", (char *)NULL);
    _exit(127);
  }
  waitpid(pid, &st, 0);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return true;
  snprintf(why, size, "'unshare %s true' %s here: no PID namespaces for this test", flags,
           WIFEXITED(st) && WEXITSTATUS(st) == 127 ? "is not installed" : "fails");
  return false;
}

/* A tree, under a command that ignores TERM: a setsid child with a child
 * of its own (both alive: their parents are), that each note the soft
 * signal, and an escapee that ignores it. */
#define NOTING_TREE(t)                                                                             \
  "--", "@child", "{", "setsid", "trap-term", e2e_path(t, "child-got-term"), "{", "trap-term",     \
    e2e_path(t, "grandchild-got-term"), "sleep", "300", "}", "sleep", "300", "}", "{", "setsid",   \
    "ignore-term", "sleep", "300", "}", "ignore-term", "sleep", "300"

static void check_noting_tree(struct e2e *t, pid_t pid) {
  double t0 = e2e_now();
  int code = finish(pid, 30);
  assert_true(e2e_now() - t0 < 20);
  assert_true(code == 124 || code == 0); /* ctrun's, or PID 1's that waited for it */
  assert_true(exists(e2e_path(t, "child-got-term")));
  assert_true(exists(e2e_path(t, "grandchild-got-term")));
  assert_int_equal(e2e_count_marked(t), 0);
}

/* PID 1 with the namespace's own /proc: its children's ppid is 1, which
 * is ctrun itself. */
static void pid1_soft_signal_reaches_grandchildren(void **state) {
  struct e2e *t = *state;
  char why[200];
  NEED_EXTRAS(LEAVES_GROUP);
  if (!can_unshare("-pf", why, sizeof why) || !can_unshare("--mount-proc", why, sizeof why))
    SKIP_BECAUSE("%s", why);
  pid_t pid = SPAWN(t, NULL, "unshare", "-pf", "--mount-proc", "@ctrun", "-t", "0.5", "-k", "3",
                    NOTING_TREE(t));
  check_noting_tree(t, pid);
}

/* PID 1 whose /proc is the parent namespace's: its numbers are not our
 * pids, and the tree must still be found. */
static void pid1_without_its_own_proc_finds_the_tree(void **state) {
  struct e2e *t = *state;
  char why[200];
  NEED_EXTRAS(LEAVES_GROUP);
  if (!can_unshare("-pf", why, sizeof why))
    SKIP_BECAUSE("%s", why);
  pid_t pid = SPAWN(t, NULL, "unshare", "-pf", "@ctrun", "-t", "0.5", "-k", "3", NOTING_TREE(t));
  check_noting_tree(t, pid);
}

/* The same for a ctrun that is not PID 1 there (no kill(-1) to fall back
 * on): PID 1 is a test child that waits for it.  A few children first, so
 * that ctrun's pid there is not 2, kthreadd's in the parent namespace:
 * read as that, the kernel threads' pids, which are small, would name the
 * tree's processes here and hide the fault. */
static void namespaced_ctrun_without_its_own_proc_finds_the_tree(void **state) {
  struct e2e *t = *state;
  char why[200];
  NEED_EXTRAS(LEAVES_GROUP);
  if (!can_unshare("-pf", why, sizeof why))
    SKIP_BECAUSE("%s", why);
  pid_t pid = SPAWN(t, NULL, "unshare", "-pf", "@child", "{", "exit", "0", "}", "{", "exit", "0",
                    "}", "{", "exit", "0", "}", "{", "exec", "@ctrun", "-t", "0.5", "-k", "3",
                    NOTING_TREE(t), "}", "wait");
  check_noting_tree(t, pid);
}

/* PID 1 with no /proc at all: kill(-1) reaches every process of the
 * namespace, the escapee too. */
static void pid1_without_proc_kills_the_escapee(void **state) {
  struct e2e *t = *state;
  char why[200];
  NEED_EXTRAS(LEAVES_GROUP);
  if (!can_unshare("-pfm", why, sizeof why))
    SKIP_BECAUSE("%s", why);
  if (e2e_sanitized())
    SKIP_BECAUSE("a sanitizer build cannot run without /proc (LeakSanitizer reads it at exit)");
  pid_t pid = SPAWN(t, NULL, "unshare", "-pfm", "@child", "umount", "/proc", "exec", "@ctrun",
                    "-t", "0.5", "-k", "0.5", "--", "@child", "{", "setsid", "ignore-term", "sleep",
                    "300", "}", "sleep", "300");
  double t0 = e2e_now();
  assert_int_equal(finish(pid, 30), 124);
  assert_true(e2e_now() - t0 < 20);
  assert_int_equal(e2e_count_marked(t), 0);
}

/* ---- Children that ctrun had before the run ------------------------------ */

static pid_t pid_in(const char *path) {
  char *text = e2e_read(path);
  pid_t pid = (pid_t)atoi(text);
  free(text);
  return pid;
}

/* How many zombies PARENT has. */
static int zombies_of(pid_t parent) {
  DIR *d = opendir("/proc");
  struct dirent *de;
  int n = 0;
  while (d != NULL && (de = readdir(d)) != NULL) {
    char path[300], *text, *s, st;
    int ppid;
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
    text = e2e_read(path);
    s = strrchr(text, ')');
    if (s != NULL && sscanf(s + 1, " %c %d", &st, &ppid) == 2 && ppid == parent && st == 'Z')
      n++;
    free(text);
  }
  if (d)
    closedir(d);
  return n;
}

/* A shell's "job & exec ctrun ...": ctrun keeps the shell's children,
 * which are no part of the run: neither signalled, counted nor waited
 * for, nor are their descendants; but reaped when they exit. */
static void exec_ctrun_leaves_earlier_children_alone(void **state) {
  struct e2e *t = *state;
  pid_t pid = SPAWN(t, NULL, "@child",
                    /* a job that runs on */
                    "{", "pidfile", e2e_path(t, "job"), "sleep", "300", "}",
                    /* one that leaves an orphan to ctrun once the run is on */
                    "{", "sleep", "0.5", "{", "pidfile", e2e_path(t, "orphan"), "sleep", "300", "}",
                    "exit", "0", "}",
                    /* one that ends during the run */
                    "{", "sleep", "0.3", "exit", "0", "}",
                    "exec", "@ctrun", "-t", "20", "-k", "1", "--report",
                    e2e_path(t, "report.json"), "--", "@child", "{", "sleep", "300", "}", "sleep",
                    "1.5", "exit", "0");
  e2e_sleep(1);
  assert_int_equal(zombies_of(pid), 0);
  double t0 = e2e_now();
  assert_int_equal(finish(pid, 30), 0);
  assert_true(e2e_now() - t0 < 10);
  pid_t job = pid_in(e2e_path(t, "job")), orphan = pid_in(e2e_path(t, "orphan"));
  assert_true(e2e_running(job));
  assert_true(e2e_running(orphan));
  char *report = e2e_read(e2e_path(t, "report.json"));
  assert_non_null(strstr(report, "\"leftovers_killed\":1,"));
  assert_non_null(strstr(report, "\"killed_hard\":false"));
  free(report);
  kill(job, SIGKILL);
  kill(orphan, SIGKILL);
  double end = e2e_now() + 5;
  while (e2e_count_marked(t) > 0 && e2e_now() < end)
    e2e_sleep(0.01);
  e2e_forgive_orphans(); /* the job and the orphan were ours to end */
}

/* --child-timeout hits the run's children only: a job of the shell that
 * exec'd ctrun is as old as any, but no part of the run. */
static void exec_ctrun_child_timeout_spares_earlier_children(void **state) {
  struct e2e *t = *state;
  NEED_EXTRAS("it has no process table to read ages from");
  pid_t pid = SPAWN(t, NULL, "@child", "{", "pidfile", e2e_path(t, "job"), "sleep", "300", "}",
                    "sleep", "0.5", "exec", "@ctrun", "--child-timeout", "0.4", "-k", "1",
                    "--report", e2e_path(t, "report.json"), "--", "@child", "{", "pidfile",
                    e2e_path(t, "victim"), "sleep", "300", "}", "sleep", "2", "exit", "0");
  pid_t victim = pid_in(e2e_path(t, "victim"));
  assert_int_equal(finish(pid, 30), 0);
  pid_t job = pid_in(e2e_path(t, "job"));
  assert_false(e2e_running(victim));
  assert_true(e2e_running(job));
  char *report = e2e_read(e2e_path(t, "report.json"));
  assert_non_null(strstr(report, "\"children_killed\":1,"));
  free(report);
  kill(job, SIGKILL);
  double end = e2e_now() + 5;
  while (e2e_count_marked(t) > 0 && e2e_now() < end)
    e2e_sleep(0.01);
  e2e_forgive_orphans(); /* the job was ours to end */
}

/* ---- A member ctrun may not signal ------------------------------------- */

/* As root without CAP_KILL, ctrun may not signal a child that became
 * nobody: it must say so at once, in the report and in the log. */
static void unkillable_member_is_named(void **state) {
  struct e2e *t = *state;
  NEED_EXTRAS("it signals the group as a whole and cannot tell which member refused");
  if (getuid() != 0)
    SKIP_BECAUSE("needs root: to drop CAP_KILL from ctrun and to setuid a child to nobody");
  pid_t pid = fork();
  if (pid == 0) {
    /* Dropped from the bounding set, CAP_KILL is gone after exec. */
    if (prctl(PR_CAPBSET_DROP, 5 /* CAP_KILL */, 0, 0, 0) != 0)
      _exit(77);
    setenv("CTRUN_STATE_DIR", t->state, 1);
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    int in = open("/dev/null", O_RDONLY);
    int err = open(e2e_path(t, "ctrun.err"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(err, 1);
    dup2(err, 2);
    execl(getenv("CTRUN"), "ctrun", "-t", "0.3", "-k", "0.3", "-o", e2e_path(t, "log"), "--report",
          e2e_path(t, "report.json"), "--", getenv("CTRUN_TESTCHILD"), "{", "pidfile",
          e2e_path(t, "nobody"), "setuid", "65534", "sleep", "4", "}", "sleep", "300",
          (char *)NULL);
    _exit(200);
  }
  e2e_own(pid);
  /* Said at once: well before the member ends by itself. */
  double t0 = e2e_now();
  char *err = NULL;
  while (e2e_now() - t0 < 3) {
    free(err);
    err = e2e_read(e2e_path(t, "ctrun.err"));
    if (strstr(err, "cannot signal process") != NULL)
      break;
    if (e2e_wait(pid, 0) == 77)
      SKIP_BECAUSE("cannot drop CAP_KILL here (PR_CAPBSET_DROP failed)");
    e2e_sleep(0.02);
  }
  pid_t nobody = pid_in(e2e_path(t, "nobody"));
  char line[64];
  snprintf(line, sizeof line, "cannot signal process %d ", (int)nobody);
  assert_non_null(strstr(err, line));
  assert_true(e2e_running(nobody));
  free(err);
  /* The run lasts as long as the member it could not stop. */
  assert_int_equal(finish(pid, 30), 124);
  err = e2e_read(e2e_path(t, "ctrun.err"));
  assert_int_equal(strstr(strstr(err, line) + 1, "cannot signal process"), NULL); /* once */
  free(err);
  char want[64];
  snprintf(want, sizeof want, "\"unkillable\":[%d]", (int)nobody);
  char *report = e2e_read(e2e_path(t, "report.json"));
  assert_non_null(strstr(report, want));
  free(report);
  snprintf(want, sizeof want, "could not be signalled: %d", (int)nobody);
  char *log = e2e_read(e2e_path(t, "log"));
  assert_non_null(strstr(log, want));
  free(log);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(thread_leader_exited_leftover_is_killed),
    E2E_TEST(thread_leader_exited_process_times_out),
    E2E_TEST(thread_leader_exited_escapee_dies_without_subreaper),
    E2E_TEST(thread_leader_exited_process_is_counted_and_cleaned),
    E2E_TEST(tag_is_found_behind_a_large_environment),
    E2E_TEST(cleanup_is_bounded_under_kill_after_inf),
    E2E_TEST(check_cleanup_is_bounded_under_kill_after_inf),
    E2E_TEST(stop_gives_up_in_time),
    E2E_TEST(stop_has_no_cap_on_runs),
    E2E_TEST(concurrent_stops_are_idempotent),
    E2E_TEST(stop_as_the_run_ends_finds_it_over),
    E2E_TEST(pid_hopper_gets_the_soft_signal),
    E2E_TEST(cleanup_reaches_a_pid_hopper),
    E2E_TEST(fork_storm_does_not_starve_the_deadline),
    E2E_TEST(pid1_soft_signal_reaches_grandchildren),
    E2E_TEST(pid1_without_its_own_proc_finds_the_tree),
    E2E_TEST(namespaced_ctrun_without_its_own_proc_finds_the_tree),
    E2E_TEST(pid1_without_proc_kills_the_escapee),
    E2E_TEST(exec_ctrun_leaves_earlier_children_alone),
    E2E_TEST(exec_ctrun_child_timeout_spares_earlier_children),
    E2E_TEST(unkillable_member_is_named),
  };
  return e2e_main("e2e-hostile_tree", tests, sizeof tests / sizeof tests[0]);
}
