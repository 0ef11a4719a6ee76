/* The end-to-end harness: runs the built ctrun (from $CTRUN) on scripts of
 * ctrun-testchild (from $CTRUN_TESTCHILD), each test in a state directory
 * of its own and with a marker in the environment of every process it
 * starts, so that anything left behind can be found afterwards. */
#ifndef CTRUN_TEST_HARNESS_H
#define CTRUN_TEST_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <sys/types.h>
#include <cmocka.h>

struct e2e {
  char dir[256];   /* scratch directory of this test */
  char state[300]; /* its CTRUN_STATE_DIR */
  char mark[64];   /* CTRUN_TEST_MARK of every process of the test */
};

struct e2e_result {
  int code;    /* exit status, or 128+N if ctrun died of signal N */
  double secs; /* how long ctrun took */
  char out[65536], err[65536];
};

/* cmocka setup and teardown: the teardown fails the test if any process
 * carrying the test's marker is still alive, or (with the Linux extras) if
 * any process of a tree outlived its ctrun and came to the runner. */
int e2e_setup(void **state);
int e2e_teardown(void **state);

/* Run ctrun with ARGS (NULL-terminated); "@child" stands for the test
 * child program.  Output goes to files, never to a pipe that a leftover
 * could hold open. */
void e2e_run(struct e2e *t, struct e2e_result *res, const char *const *args);
#define E2E_RUN(t, res, ...) e2e_run((t), (res), (const char *const[]){ __VA_ARGS__, NULL })

/* Run the command line ARGS instead (it will exec ctrun, "@ctrun"), in the
 * same way: to start ctrun in a hostile state that the test child sets up,
 * e.g. E2E_RUN_CMD(t, &r, "@child", "close", "0", "exec", "@ctrun", ...). */
void e2e_run_cmd(struct e2e *t, struct e2e_result *res, const char *const *args);
#define E2E_RUN_CMD(t, res, ...) e2e_run_cmd((t), (res), (const char *const[]){ __VA_ARGS__, NULL })

/* Start ctrun in the background; its output goes to files in the test dir. */
pid_t e2e_start(struct e2e *t, const char *const *args);
#define E2E_START(t, ...) e2e_start((t), (const char *const[]){ __VA_ARGS__, NULL })
/* Start the command line ARGS (see e2e_run_cmd) in the background. */
pid_t e2e_start_cmd(struct e2e *t, const char *const *args);
#define E2E_START_CMD(t, ...) e2e_start_cmd((t), (const char *const[]){ __VA_ARGS__, NULL })
/* Wait up to SECS for PID; returns its exit status (128+N on signal N) or -1. */
int e2e_wait(pid_t pid, double secs);

/* A process the test forked itself (not ctrun, not an orphan). */
void e2e_own(pid_t pid);

/* For tests that kill ctrun on purpose: what its tree leaves to the
 * runner is expected there. */
void e2e_forgive_orphans(void);

/* Processes alive whose environment carries the test's mark, wherever in
 * it: a process counts while any of its threads runs (its main thread may
 * have exited), and its environment is read from a thread that runs. */
int e2e_count_marked(struct e2e *t);
/* The marked processes a run started: those carrying a CTRUN_RUN_ID.  Not
 * ctrun itself, nor a process sharing its memory (the helper a sanitizer's
 * leak check starts as ctrun exits, after the lock is released). */
int e2e_count_tree(struct e2e *t);
/* Wait up to SECS for PATH to exist (a child's "pidfile" step); with 0,
 * whether it exists now. */
bool e2e_wait_file(const char *path, double secs);
/* What the processes E2E_START started wrote to their standard error (the
 * file they share, e2e_bg_err), for a failure's message; a new string.
 * Each start truncates that file: what an earlier process writes after
 * that follows a run of NULs, which are dropped. */
char *e2e_start_err(struct e2e *t);
/* Wait up to SECS for at least N marked processes to exist (0: whether
 * they do now).  ctrun itself carries the mark too. */
bool e2e_wait_marked(struct e2e *t, int n, double secs);

/* Whether process PID runs: any of its threads (not a zombie). */
bool e2e_running(pid_t pid);
/* True when someone holds an exclusive flock on PATH. */
bool e2e_locked(const char *path);
/* The stderr file of the last run started in the background (E2E_START). */
const char *e2e_bg_err(struct e2e *t);

/* Wait up to SECS until no marked process is left, as three listings in a
 * row see it (one listing can miss a process in the middle of exec). */
bool e2e_wait_unmarked(struct e2e *t, double secs);

/* A path inside the test's scratch directory. */
const char *e2e_path(struct e2e *t, const char *name);
/* Read a whole small file ("" if missing). */
char *e2e_read(const char *path);
double e2e_now(void);
void e2e_sleep(double secs);

/* True where the Linux extras (subreaper, parent-death signal) are built. */
bool e2e_has_extras(void);

/* Start ARGV ("@ctrun" and "@child" stand for the programs under test)
 * with the test's marker and state directory, its stdout and stderr in
 * spawn.out and spawn.err of the test directory; confined by CONFINE
 * (one of the e2e_forbid_ functions below) unless it is NULL.  77 from
 * the process: that could not be arranged. */
pid_t e2e_spawn(struct e2e *t, int (*confine)(void), const char *const *argv);
#define E2E_SPAWN(t, confine, ...) e2e_spawn((t), (confine), (const char *const[]){ __VA_ARGS__, NULL })

/* Start a helper of the test's own (a server, a proxy: ARGV, argv[0] a
 * full path) with the test's marker, so that the teardown finds it should
 * it be left running; its stdout and stderr in TAG.err of the test
 * directory.  The caller stops it. */
pid_t e2e_helper(struct e2e *t, const char *tag, const char *const *argv);

/* Make prctl(PR_SET_CHILD_SUBREAPER) fail with EPERM in this process and
 * what it execs, as some sandboxes do (a seccomp filter).  Returns 0, or
 * -1 where it cannot. */
int e2e_forbid_subreaper(void);

/* Make clone(2) with CLONE_VM but without CLONE_THREAD (a process that
 * shares its parent's memory, as ctrun starts its command on Linux) fail
 * with EPERM in this process and what it execs, as sandboxes and
 * emulators may.  Returns 0, or -1 where it cannot. */
int e2e_forbid_shared_clone(void);

/* Whether the ctrun under test was built with AddressSanitizer. */
bool e2e_sanitized(void);

/* Run the tests, with the runner as a child subreaper that reaps what it
 * adopts (some sandboxes' PID 1 never reaps). */
int e2e_main(const char *name, const struct CMUnitTest *tests, size_t n);
#define E2E_TEST(f) cmocka_unit_test_setup_teardown(f, e2e_setup, e2e_teardown)

#endif
