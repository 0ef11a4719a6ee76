/* End-to-end: the pile-up ctrun is for, in miniature.  A shell prompt
 * comes every 150 ms and runs two hooks, both detached: one starts a
 * long-lived helper once per machine (--on-busy=skip), whose subprocesses
 * hang now and then (--child-timeout bounds them); the other syncs after
 * every prompt (--on-busy=queue).  Meanwhile a scheduler starts a job
 * every 400 ms that takes 700 ms, so its runs overlap (--on-busy=queue,
 * --retry).  Sampled all along, and checked at the end: no hung child
 * lives much past its bound, never more than one sync waits, no critical
 * section is entered twice at once, and nothing survives. */
#include "harness.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PROMPTS 12
#define PROMPT_EVERY 0.15
#define JOB_EVERY 0.4
#define CHILD_BOUND 0.5 /* --child-timeout */

static long ticks_per_sec;

/* The whole of /proc/PID/FILE into BUF; its length, or -1. */
static long proc_read(const char *pid, const char *file, char *buf, size_t size) {
  char path[128];
  FILE *f;
  size_t n;
  snprintf(path, sizeof path, "/proc/%s/%s", pid, file);
  if ((f = fopen(path, "r")) == NULL)
    return -1;
  n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (long)n;
}

static bool has_mark(const char *pid, const char *mark) {
  static char env[65536];
  long n = proc_read(pid, "environ", env, sizeof env);
  char want[96];
  snprintf(want, sizeof want, "CTRUN_TEST_MARK=%s", mark);
  for (char *s = env; n > 0 && s < env + n; s += strlen(s) + 1)
    if (strcmp(s, want) == 0)
      return true;
  return false;
}

/* Seconds since boot, on the clock of /proc/PID/stat's start times. */
static double uptime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct sample {
  double oldest_hung; /* the oldest live "hungchild", seconds */
  int waiting_syncs;  /* sync supervisors blocked waiting for the lock */
};

/* One look at the test's processes. */
static void look(struct e2e *t, struct sample *s) {
  DIR *d = opendir("/proc");
  struct dirent *de;
  double now = uptime();
  int waiting = 0;
  while (d != NULL && (de = readdir(d)) != NULL) {
    char stat[1024], cmd[4096], sys[128];
    long n;
    if (de->d_name[0] < '1' || de->d_name[0] > '9' || !has_mark(de->d_name, t->mark))
      continue;
    if (proc_read(de->d_name, "stat", stat, sizeof stat) <= 0)
      continue;
    char *open = strchr(stat, '('), *close = strrchr(stat, ')');
    if (open == NULL || close == NULL || close[2] == 'Z')
      continue;
    if (close - open - 1 == 9 && strncmp(open + 1, "hungchild", 9) == 0) {
      unsigned long long start = 0;
      sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                        "%*d %llu", &start);
      double age = now - (double)start / (double)ticks_per_sec;
      if (age > s->oldest_hung)
        s->oldest_hung = age;
      continue;
    }
    /* A sync's supervisor blocked in flock is the one waiting in the queue
     * (a run that finds the queue taken never blocks). */
    n = proc_read(de->d_name, "cmdline", cmd, sizeof cmd);
    for (long i = 0; i < n; i++)
      if (cmd[i] == '\0')
        cmd[i] = ' ';
    if (n > 0 && strstr(cmd, " -n sync ") != NULL && proc_read(de->d_name, "syscall", sys, sizeof sys) > 0 &&
        atol(sys) == SYS_flock)
      waiting++;
  }
  if (d != NULL)
    closedir(d);
  if (waiting > s->waiting_syncs)
    s->waiting_syncs = waiting;
}

static int count_lines(const char *path, const char *what) {
  char *text = e2e_read(path);
  int n = 0;
  for (char *s = text; (s = strstr(s, what)) != NULL; s++)
    n++;
  free(text);
  return n;
}

static bool runs_left(struct e2e *t) {
  DIR *d = opendir(t->state);
  struct dirent *de;
  bool any = false;
  while (d != NULL && (de = readdir(d)) != NULL)
    any |= strstr(de->d_name, ".run") != NULL;
  if (d != NULL)
    closedir(d);
  return any;
}

static void pile_up_in_miniature(void **state) {
  struct e2e *t = *state;
  char sync_dir[512], job_dir[512], helper_lock[512], sync_lock[512], job_lock[512];
  char helper_log[512], sync_log[512], helpers[512];
  struct sample s = { 0, 0 };
  pid_t hooks[2 * PROMPTS], jobs[16];
  int nhooks = 0, njobs = 0;
  double t0 = e2e_now(), next_prompt = 0, next_job = 0;

  /* (e2e_path's buffers are few: these are the test's own) */
  snprintf(helper_lock, sizeof helper_lock, "%s/helper.lock", t->dir);
  snprintf(sync_lock, sizeof sync_lock, "%s/sync.lock", t->dir);
  snprintf(job_lock, sizeof job_lock, "%s/job.lock", t->dir);
  snprintf(helper_log, sizeof helper_log, "%s/helper.log", t->dir);
  snprintf(sync_log, sizeof sync_log, "%s/sync.log", t->dir);
  snprintf(helpers, sizeof helpers, "%s/helpers", t->dir);
  snprintf(sync_dir, sizeof sync_dir, "%s/sync", t->dir);
  snprintf(job_dir, sizeof job_dir, "%s/job", t->dir);
  mkdir(sync_dir, 0755);
  mkdir(job_dir, 0755);
  while (nhooks < 2 * PROMPTS) {
    double now = e2e_now() - t0;
    if (now >= next_prompt && nhooks < 2 * PROMPTS) {
      /* The helper: once per machine; a subprocess of it hangs now and
       * then, and the helper itself runs on in the foreground. */
      hooks[nhooks++] = E2E_START(t, "-d", "-n", "ctx-monitor", "-l", helper_lock,
                                  "--on-busy=skip", "--child-timeout", "0.5", "-k", "0.2", "-o",
                                  helper_log, "--", "@child", "pidfile", helpers, "{", "comm",
                                  "hungchild", "sleep", "300", "}", "sleep", "0.6", "{", "comm",
                                  "hungchild", "ignore-term", "sleep", "300", "}", "sleep", "1.2",
                                  "out", "helper-done");
      /* The sync after every prompt. */
      hooks[nhooks++] = E2E_START(t, "-d", "-n", "sync", "-l", sync_lock, "--on-busy=queue", "-t",
                                  "5", "-o", sync_log, "--", "@child", "crit", sync_dir, "sleep",
                                  "0.3");
      next_prompt += PROMPT_EVERY;
    }
    if (now >= next_job && njobs < 16) {
      /* The scheduler: a job that overlaps its previous run. */
      jobs[njobs++] = E2E_START(t, "-n", "job", "-l", job_lock, "--on-busy=queue", "-t", "3",
                                "--retry", "1", "--", "@child", "crit", job_dir, "sleep", "0.7");
      next_job += JOB_EVERY;
    }
    look(t, &s);
    e2e_sleep(0.02);
  }
  /* Every hook's caller came back at once, with 0. */
  for (int i = 0; i < nhooks; i++)
    assert_int_equal(e2e_wait(hooks[i], 10), 0);
  /* The scheduled runs: 0 each (one ran, or it was covered by the one
   * waiting); 99 would be two in the critical section at once. */
  for (int i = 0; i < njobs; i++) {
    int code;
    while ((code = e2e_wait(jobs[i], 0.02)) == -1)
      look(t, &s);
    assert_int_equal(code, 0);
  }
  /* Until every detached run is over. */
  for (double end = e2e_now() + 30; e2e_now() < end && (runs_left(t) || e2e_count_marked(t) > 0);)
    look(t, &s), e2e_sleep(0.02);
  assert_false(runs_left(t));

  if (s.oldest_hung > CHILD_BOUND + 0.2 + 0.6)
    fail_msg("a hung child lived %.2f s, past its bound of %.1f s and -k", s.oldest_hung,
             CHILD_BOUND);
  if (s.waiting_syncs > 1)
    fail_msg("%d syncs waited at once", s.waiting_syncs);
  /* One helper for all prompts, its two hung children killed, itself run
   * to its end. */
  assert_int_equal(count_lines(helpers, "\n"), 1);
  assert_int_equal(count_lines(helper_log, "killed hung child hungchild"), 2);
  assert_int_equal(count_lines(helper_log, "\nhelper-done\n"), 1);
  assert_int_equal(count_lines(helper_log, " end: exit 0 after"), 1);
  /* Syncs: fewer than prompts (they coalesced), at least two (the last
   * prompts' changes were synced by a run that started after them). */
  int syncs = count_lines(sync_log, " end: exit 0 after");
  fprintf(stderr, "%d prompts, %d scheduled runs: %d syncs ran, at most %d waited at once; the "
          "oldest hung child seen lived %.2f s\n", PROMPTS, njobs, syncs, s.waiting_syncs,
          s.oldest_hung);
  if (syncs < 2 || syncs >= PROMPTS)
    fail_msg("%d syncs for %d prompts", syncs, PROMPTS);
  e2e_forgive_orphans(); /* detached supervisors are the runner's by design */
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(pile_up_in_miniature),
  };
  ticks_per_sec = sysconf(_SC_CLK_TCK);
  if (!e2e_has_extras()) {
    fprintf(stderr, "generic POSIX containment: no process table for --child-timeout\n");
    return 77;
  }
  return e2e_main("e2e-scenario", tests, sizeof tests / sizeof tests[0]);
}
