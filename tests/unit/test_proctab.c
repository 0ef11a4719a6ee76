/* The process table's counts of a stale run's remains, and
 * ctrun_proctab_recount: the second look that cleanup takes for stale runs
 * its one listing showed nothing of.  A real process carries a run's tag;
 * the recount must find it for that run, and leave every other run as it
 * was.  (That one listing can miss a process hopping from pid to pid is
 * shown end to end, under load, by e2e-hostile_tree.) */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "ctrun/proc.h"
#include "ctrun/registry.h"

#define TAGGED "0123456789ab"

/* A sleeping process carrying CTRUN_RUN_ID=TAGGED, as a run's remains do. */
static pid_t start_tagged(void) {
  int ready[2];
  char c;
  pid_t pid;
  assert_int_equal(pipe(ready), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char *const argv[] = { "sleep", "300", NULL };
    char *const envp[] = { "CTRUN_RUN_ID=" TAGGED, "PATH=/usr/bin:/bin", NULL };
    close(ready[0]);
    fcntl(ready[1], F_SETFD, FD_CLOEXEC);
    execve("/bin/sleep", argv, envp);
    _exit(127);
  }
  close(ready[1]);
  /* EOF once the exec closed the pipe: the tag is then in place. */
  assert_int_equal(read(ready[0], &c, 1), 0);
  close(ready[0]);
  return pid;
}

static void stale_entry(struct ctrun_entry *e, const char *id, const char *boot) {
  memset(e, 0, sizeof *e);
  snprintf(e->id, sizeof e->id, "%s", id);
  snprintf(e->boot_id, sizeof e->boot_id, "%s", boot);
  e->stale = true;
}

static void recount_finds_the_tagged_run_only(void **state) {
  const char *backend = getenv("CTRUN_CONTAINMENT");
  bool tags = backend == NULL || strcmp(backend, "posix") != 0;
  char boot[40];
  struct ctrun_entry v[5];
  int procs[5] = { 0, 0, 0, 0, 7 }, status;
  bool have_tab;
  struct ctrun_proctab *tab;
  pid_t pid;
  (void)state;

  ctrun_proc_boot_id(boot, sizeof boot);
  pid = start_tagged();
  stale_entry(&v[0], TAGGED, boot);                           /* found */
  stale_entry(&v[1], "ba9876543210", boot);                   /* nothing carries its tag */
  stale_entry(&v[2], TAGGED, boot);                           /* live: not looked for */
  v[2].stale = false;
  stale_entry(&v[3], TAGGED, boot[0] ? "an-earlier-boot" : ""); /* another boot */
  stale_entry(&v[4], TAGGED, boot);                           /* already counted */
  tab = ctrun_proctab_load(false);
  have_tab = tab != NULL;
  ctrun_proctab_recount(tab, v, 5, procs);
  ctrun_proctab_free(tab);
  kill(pid, SIGKILL);
  assert_int_equal(waitpid(pid, &status, 0), pid); /* nothing left behind */

  /* The generic POSIX host has no process table to read (no TAB): there
   * the recount can find nothing, and says so by changing nothing. */
  assert_true(have_tab == tags);
  assert_int_equal(procs[0], tags ? 1 : 0);
  assert_int_equal(procs[1], 0);
  assert_int_equal(procs[2], 0);
  assert_int_equal(procs[3], tags && boot[0] == '\0' ? 1 : 0);
  assert_int_equal(procs[4], 7);
}

/* A stale run's remains counted the same whether the tags came with the
 * table (cleanup's waits) or were read at the first count (ps). */
static void remains_are_counted_with_tags_read_either_way(void **state) {
  const char *backend = getenv("CTRUN_CONTAINMENT");
  bool tags = backend == NULL || strcmp(backend, "posix") != 0;
  char boot[40];
  struct ctrun_entry found, other;
  int counts[2][2], status;
  pid_t pid;
  (void)state;

  ctrun_proc_boot_id(boot, sizeof boot);
  stale_entry(&found, TAGGED, boot);
  stale_entry(&other, "ba9876543210", boot);
  pid = start_tagged();
  for (int with = 0; with < 2; with++) {
    struct ctrun_proctab *tab = ctrun_proctab_load(with);
    counts[with][0] = ctrun_proctab_count(tab, &found);
    counts[with][1] = ctrun_proctab_count(tab, &other);
    ctrun_proctab_free(tab);
  }
  kill(pid, SIGKILL);
  assert_int_equal(waitpid(pid, &status, 0), pid);

  for (int with = 0; with < 2; with++) {
    assert_int_equal(counts[with][0], tags ? 1 : -1); /* -1: no table to tell */
    assert_int_equal(counts[with][1], tags ? 0 : -1);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(recount_finds_the_tagged_run_only),
    cmocka_unit_test(remains_are_counted_with_tags_read_either_way),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
