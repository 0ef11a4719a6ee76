/* End-to-end: ctrun as PID 1 of a PID namespace (as in a container) reaps
 * every orphan and forwards signals.  The namespace gets its own /proc
 * (unshare --mount-proc) where it can; where only that fails (in a chroot
 * whose root is no mount point, unshare cannot make the mounts private),
 * the same tests run in a PID namespace that sees the host's /proc, as
 * they check ctrun from outside.  Skipped (77), naming what failed, where
 * there are no PID namespaces at all. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* "unshare -pf --mount-proc", or "unshare -pf" where --mount-proc fails. */
static const char *unshare_argv[] = { "unshare", "-pf", "--mount-proc", NULL };

/* Start "unshare -pf [--mount-proc] ctrun ARGS..." with the test's marker. */
static pid_t start_pid1(struct e2e *t, const char *const *args) {
  const char *argv[64];
  int n = 0;
  for (; unshare_argv[n] != NULL; n++)
    argv[n] = unshare_argv[n];
  argv[n++] = getenv("CTRUN");
  for (; *args && n < 63; args++)
    argv[n++] = strcmp(*args, "@child") == 0 ? getenv("CTRUN_TESTCHILD") : *args;
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    setenv("CTRUN_STATE_DIR", t->state, 1);
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    int fd = open("/dev/null", O_RDWR);
    dup2(fd, 0);
    dup2(fd, 1);
    execvp("unshare", (char *const *)argv);
    _exit(200);
  }
  e2e_own(pid);
  return pid;
}

/* Scan PARENT's children (in our namespace): returns one of them (0 if
 * none) and counts the zombies among them in *ZOMBIES. */
static pid_t children_of(pid_t parent, int *zombies) {
  char path[300], buf[512];
  DIR *d = opendir("/proc");
  struct dirent *de;
  pid_t found = 0;
  *zombies = 0;
  while (d && (de = readdir(d)) != NULL) {
    int ppid;
    char st;
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *s = strrchr(buf, ')');
    if (s == NULL || sscanf(s + 1, " %c %d", &st, &ppid) != 2 || ppid != parent)
      continue;
    found = (pid_t)atoi(de->d_name);
    *zombies += st == 'Z';
  }
  if (d)
    closedir(d);
  return found;
}

/* The ctrun that unshare PID started (its only child). */
static pid_t ctrun_of(pid_t pid) {
  int zombies;
  pid_t ctrun = 0;
  for (int i = 0; i < 200 && ctrun == 0; i++, e2e_sleep(0.01))
    ctrun = children_of(pid, &zombies);
  return ctrun;
}

static void pid1_reaps_every_orphan(void **state) {
  struct e2e *t = *state;
  /* Ten orphans that exit at once, while the command runs on. */
  pid_t pid = start_pid1(t, (const char *const[]){
    "--", "@child", "{", "{", "exit", "0", "}", "}", "{", "{", "exit", "0", "}", "}", "{", "{",
    "exit", "0", "}", "}", "{", "{", "exit", "0", "}", "}", "{", "{", "exit", "0", "}", "}",
    "sleep", "1.5", NULL });
  pid_t ctrun = ctrun_of(pid);
  int zombies;
  assert_true(ctrun > 0);
  e2e_sleep(0.8);
  children_of(ctrun, &zombies);
  assert_int_equal(zombies, 0);
  assert_int_equal(e2e_wait(pid, 10), 0);
}

static void pid1_forwards_signals(void **state) {
  struct e2e *t = *state;
  pid_t pid = start_pid1(t, (const char *const[]){ "--", "@child", "sleep", "300", NULL });
  pid_t ctrun = ctrun_of(pid);
  assert_true(ctrun > 0);
  assert_true(e2e_wait_marked(t, 3, 5)); /* unshare, ctrun, command */
  kill(ctrun, SIGTERM);
  assert_int_equal(e2e_wait(pid, 10), 128 + SIGTERM);
}

/* A process that entered the namespace from outside (nsenter, docker
 * exec) has no parent there: its parent pid reads as 0.  It is no part of
 * the run, and ctrun's walk of the tree must not take it for one when the
 * run ends with an escapee to hunt down. */
static void pid1_spares_a_process_entered_from_outside(void **state) {
  struct e2e *t = *state;
  char host[32], pidfile[600], termfile[600];
  if (!e2e_has_extras()) {
    /* With no process table, PID 1 reaches its escapees the only way it
     * can: every process of the namespace at once (kill -1). */
    print_message("generic POSIX containment: as PID 1 it signals the whole namespace\n");
    skip();
  }
  snprintf(pidfile, sizeof pidfile, "%s/bystander.pid", t->dir);
  snprintf(termfile, sizeof termfile, "%s/bystander-got-term", t->dir);
  pid_t pid = start_pid1(t, (const char *const[]){ "-t", "2", "-k", "2", "--", "@child", "{",
                                                   "setsid", "sleep", "300", "}", "sleep", "300",
                                                   NULL });
  pid_t ctrun = ctrun_of(pid);
  assert_true(ctrun > 0);
  snprintf(host, sizeof host, "%d", (int)ctrun);
  pid_t by = fork();
  if (by == 0) {
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    execlp("nsenter", "nsenter", "-t", host, "-p", "--", getenv("CTRUN_TESTCHILD"), "pidfile",
           pidfile, "trap-term", termfile, "sleep", "300", (char *)NULL);
    _exit(200);
  }
  e2e_own(by);
  if (!e2e_wait_file(pidfile, 10)) {
    kill(ctrun, SIGKILL);
    e2e_wait(pid, 10);
    e2e_wait(by, 10);
    print_message("nsenter cannot enter the namespace here\n");
    skip();
  }
  assert_int_equal(e2e_wait(pid, 20), 124);
  /* PID 1 gone, the kernel killed what was left in the namespace: hard. */
  e2e_wait(by, 10);
  assert_int_equal(access(termfile, F_OK), -1);
}

/* Run the shell command CMD; 0 if it succeeds, else its first line of
 * output (unshare's message) or its exit status in WHY. */
static int try_command(const char *cmd, char *why, size_t size) {
  char line[256] = "";
  FILE *p = popen(cmd, "r");
  int st;
  if (p == NULL) {
    snprintf(why, size, "cannot run the shell");
    return -1;
  }
  if (fgets(line, sizeof line, p) != NULL)
    line[strcspn(line, "\n")] = '\0';
  while (fgetc(p) != EOF)
    ;
  st = pclose(p);
  if (st == 0)
    return 0;
  if (line[0] != '\0')
    snprintf(why, size, "%s", line);
  else if (st > 0 && WIFEXITED(st))
    snprintf(why, size, "exit status %d", WEXITSTATUS(st));
  else
    snprintf(why, size, "no exit status");
  return -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(pid1_reaps_every_orphan),
    E2E_TEST(pid1_spares_a_process_entered_from_outside),
    E2E_TEST(pid1_forwards_signals),
  };
  char why_proc[256], why_pid[256];
  if (try_command("unshare -pf --mount-proc true 2>&1", why_proc, sizeof why_proc) != 0) {
    if (try_command("unshare -pf true 2>&1", why_pid, sizeof why_pid) != 0) {
      fprintf(stderr, "no PID namespace: 'unshare -pf true' failed: %s; skipped\n", why_pid);
      return 77;
    }
    /* A PID namespace, but no /proc of its own: the tests look at ctrun
     * from outside, through the host's /proc, so they still hold. */
    fprintf(stderr,
            "'unshare -pf --mount-proc true' failed: %s; running as PID 1 of a PID namespace "
            "without its own /proc ('unshare -pf')\n",
            why_proc);
    unshare_argv[2] = NULL;
  }
  return e2e_main("e2e-pid1", tests, sizeof tests / sizeof tests[0]);
}
