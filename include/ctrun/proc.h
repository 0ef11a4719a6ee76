/* The process container: one per run.  Each backend implements this header:
 * src/unix (a process group, plus a child subreaper where the platform has
 * one) and src/win (a job object).  The core never asks which. */
#ifndef CTRUN_PROC_H
#define CTRUN_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct ctrun_tree;
struct ctrun_entry;
struct ctrun_dir;

/* Called on the loop whenever the tree changed: the command exited, or a
 * process of the tree was reaped. */
typedef void (*ctrun_tree_cb)(struct ctrun_tree *t, void *data);

struct ctrun_spawn {
  char **argv;        /* argv[0] is looked up in PATH */
  char **env;         /* the whole environment; where a name repeats (on
                         Windows: differing only in case), the first wins */
  int stdio[3];       /* descriptors for 0, 1, 2; -1: inherit ctrun's */
  const char *run_id; /* names the container where the platform names them */
};

/* Make the container; after this, ctrun adopts (and reaps) every orphan of
 * the tree where the platform allows. */
int ctrun_tree_new(uv_loop_t *loop, ctrun_tree_cb cb, void *data, struct ctrun_tree **out);

/* Create the command's process inside the container, held before its
 * first instruction, so that the run can be recorded with the command's pid
 * before anything of it runs; if ctrun dies meanwhile, the held process
 * dies without running.  Once the tree is empty, the container may take
 * the next command (--retry's next attempt).  Returns 0, or a negative libuv error: UV_ENOENT
 * (not found), UV_EACCES and others (cannot execute); where the platform
 * learns these only at exec, ctrun_tree_start returns them. */
int ctrun_tree_spawn(struct ctrun_tree *t, const struct ctrun_spawn *s);

/* Let the held command run.  Returns 0, or why it cannot be executed. */
int ctrun_tree_start(struct ctrun_tree *t);

long ctrun_tree_pid(const struct ctrun_tree *t);  /* the command's pid */
long ctrun_tree_pgid(const struct ctrun_tree *t); /* its process group; 0 where none */
/* The command's start time, as ctrun_proc_start_time gives it (the spawn
 * may know it without asking the process table). */
int ctrun_tree_pid_start(const struct ctrun_tree *t, uint64_t *start);

/* True once the command itself has exited.  *termsig is the signal it died
 * of, then *status is -1; or 0 when it exited by itself, then *status is
 * its exit code: on Windows all 32 bits of it, so that an exception code
 * such as 0xC0000005 reads as a negative int. */
bool ctrun_tree_exited(const struct ctrun_tree *t, int *status, int *termsig);

/* True when no process of the tree is left (the command included). */
bool ctrun_tree_empty(struct ctrun_tree *t);

/* How many processes the tree holds now, the command included; -1 where the
 * platform cannot tell. */
int ctrun_tree_count(struct ctrun_tree *t);

/* Send SIG to every process of the tree.  SIGKILL (or the platform's hard
 * kill) must be repeated until the tree is empty: each killed parent hands
 * its children to ctrun. */
void ctrun_tree_signal(struct ctrun_tree *t, int sig);

/* The processes of the tree that ctrun was not permitted to signal (they
 * became another user's): how many, and up to MAX of their pids in PIDS.
 * Each was named on stderr when first found. */
int ctrun_tree_unkillable(struct ctrun_tree *t, long *pids, int max);
/* One process of the tree, as the policies that govern a run see it. */
struct ctrun_member {
  long pid;
  uint64_t start;  /* its identity, as ctrun_proc_start_time gives it */
  uint64_t age_ms; /* how long it has lived */
  bool command;    /* the command itself (not yet exited) */
  char name[32];   /* its command name ("git"), as the system keeps it */
  uint64_t rss_bytes; /* resident memory; 0 where the platform does not tell */
  uint64_t cpu_ms;    /* CPU time (user and system) not counted yet by
                         ctrun_tree_usage: its own, and that of the children it
                         reaped (Unix); 0 on Windows, whose job counts all */
};

/* The live processes of the tree now, in one pass over the process table
 * (Windows: the job's process list): *OUT (free with free()) holds *N of
 * them.  Where the host cannot reach escapees cheaply (no reaper), the
 * command's descendants and its process group.  Returns 0, or UV_ENOSYS
 * where the platform has no process table. */
int ctrun_tree_members(struct ctrun_tree *t, struct ctrun_member **out, size_t *n);

/* Whether ctrun_tree_members can list a tree here at all: false where
 * the platform has no process table (the generic POSIX host).  Cheap. */
bool ctrun_tree_can_list(void);

/* Send SIG to the member M alone, if it is still that process (its start
 * time, and on Windows its job, are checked).  Windows has no soft signal
 * for one process: any SIG terminates it at once. */
int ctrun_tree_signal_member(struct ctrun_tree *t, const struct ctrun_member *m, int sig);

/* What the tree has used, as far as the kernel has counted it. */
struct ctrun_usage {
  uint64_t cpu_user_ms, cpu_sys_ms; /* Unix: every process of the tree that
                                       ctrun has reaped (it reaps them all);
                                       Windows: the job, live processes too */
  uint64_t peak_rss_bytes;          /* the kernel's peak for the tree where it
                                       keeps one (a job), else the largest
                                       of a single reaped process; 0: unknown */
  bool peak_is_tree;                /* peak_rss_bytes is the whole tree's */
};
int ctrun_tree_usage(struct ctrun_tree *t, struct ctrun_usage *u);

/* Caps on the whole tree together; 0: none. */
struct ctrun_limits {
  uint64_t memory_bytes;
  int max_procs;
  uint64_t cpu_time_ms;
};

/* Which cap ended a run. */
enum ctrun_limit { CTRUN_LIMIT_NONE, CTRUN_LIMIT_MEMORY, CTRUN_LIMIT_PROCS, CTRUN_LIMIT_CPU };

/* Before the first command of run RUN_ID is spawned: have the kernel
 * enforce L on the whole tree where it can (Windows: the run's job; Linux:
 * a cgroup v2 of the run's own, where ctrun may create one below its own
 * and the memory and pids controllers are enabled there).  Returns 0 when
 * the kernel enforces every cap of L, UV_ENOTSUP when it enforces none of
 * them and ctrun must sample the tree, or another negative libuv error. */
int ctrun_tree_set_limits(struct ctrun_tree *t, const char *run_id, const struct ctrun_limits *l);

/* The name of the kernel's container of the run that outlives ctrun, to
 * be removed by ctrun cleanup if ctrun dies (Linux: the run's cgroup);
 * NULL if none. */
const char *ctrun_tree_container(const struct ctrun_tree *t);

/* Remove what stale run E left of such a container (its processes are
 * gone, or are killed with it).  0, or a negative libuv error. */
int ctrun_proc_container_remove(const struct ctrun_entry *e);

/* The cap the kernel found exceeded since ctrun_tree_set_limits, if any:
 * the tree's callback runs when that happens. */
enum ctrun_limit ctrun_tree_limit_hit(struct ctrun_tree *t);

/* Run the held command, and so its whole tree, at niceness NICE (-20 to
 * 19; on Windows the nearest priority class).  Returns 0, or why not (a
 * lower niceness than ctrun's own needs privileges): UV_EPERM, UV_EACCES. */
int ctrun_tree_set_nice(struct ctrun_tree *t, int nice);

/* Close the container's handles; the tree must be empty. */
void ctrun_tree_free(struct ctrun_tree *t);

/* Call CB (with the tree's data) on the loop whenever ctrun_proc_request_stop
 * reaches this supervisor of run RUN_ID: SIGUSR1 on Unix, the named event
 * "Local\ctrun-stop-<id>" on Windows. */
int ctrun_tree_watch_stop(struct ctrun_tree *t, const char *run_id, ctrun_tree_cb cb);

/* ctrun's environment, "NAME=VALUE" strings in UTF-8 up to a NULL: on
 * Unix environ itself (valid until it changes), on Windows a copy; give
 * it back to ctrun_proc_environ_free.  NULL when out of memory. */
char **ctrun_proc_environ(void);
void ctrun_proc_environ_free(char **vars);

/* Process identity, for the registry: a value that changes when a pid is
 * reused (the start time).  Returns 0 or a negative libuv error. */
int ctrun_proc_start_time(long pid, uint64_t *start);

/* Sign FD, this process's own open entry, so that the kernel names this
 * process to whoever asks which one holds it, for as long as it lives
 * (Linux: a record lock, whose owner F_GETLK tells; flock locks tell no
 * owner, and the two kinds never meet there).  The entry then proves its
 * supervisor by itself, and needs no start time, whose only source on
 * Linux, /proc/self/stat, costs a run more than all of the rest of its
 * registry work.  UV_ENOSYS where the host cannot (the entry records the
 * start time instead), or a negative libuv error. */
int ctrun_proc_sign_entry(int fd);

/* The id of this boot of the machine, to tell that a recorded run cannot
 * have survived a reboot; "" where the platform has none. */
void ctrun_proc_boot_id(char *buf, size_t size);

/* A snapshot of the process table, so that one listing serves many runs.
 * With TAGS each process's run tag is read with its row, in the same pass;
 * without, the tags are read (the table with them) when a stale run is
 * first counted.  Ask for them when only stale runs will be counted. */
struct ctrun_proctab;
struct ctrun_proctab *ctrun_proctab_load(bool tags);
void ctrun_proctab_free(struct ctrun_proctab *tab);

/* How many processes belong to run E now: a live run's supervised tree, or
 * what remains of a stale one (found by its process group and its
 * CTRUN_RUN_ID tag, each verified by start time).  -1: cannot tell. */
int ctrun_proctab_count(struct ctrun_proctab *tab, const struct ctrun_entry *e);

/* Count again the stale runs of V (N entries) whose PROCS[i] is 0, as
 * one listing of the table (TAB's) showed nothing of them: it can miss a
 * process that hops from pid to pid.  The table is read again and again,
 * for all of them at once, until two passes find nothing new (bounded);
 * PROCS[i] becomes how many processes of run V[i] were found.  Nothing
 * changes where a listing misses nothing (Windows: a job knows its
 * members) or memory runs out. */
void ctrun_proctab_recount(struct ctrun_proctab *tab, const struct ctrun_entry *v, size_t n,
                           int *procs);

/* The resident memory of run E's processes together now, in bytes; 0
 * where the platform does not tell or the run has none. */
uint64_t ctrun_proctab_rss(struct ctrun_proctab *tab, const struct ctrun_entry *e);

/* Send SIG to every remaining process of the stale run E, each checked
 * against its start time right before the signal.  Returns how many were
 * signalled, or a negative libuv error. */
int ctrun_proctab_signal(struct ctrun_proctab *tab, const struct ctrun_entry *e, int sig);

/* Ask the supervising ctrun of run E, whose entry is in DIR, if it is
 * still the process that was recorded (by its start time, else by its
 * signed entry), to read its stop request (ctrun_stop_request_write).
 * UV_ESRCH when it is not. */
int ctrun_proc_request_stop(struct ctrun_dir *dir, const struct ctrun_entry *e);

/* Before a run owns anything (the lock, the entry, the tree): make sure it
 * can finish what it starts.  No signal may end ctrun unseen: those whose
 * default would (TERM, INT, HUP, QUIT, USR2, ALRM, the real-time ones ...)
 * are held (ctrun_proc_held_signal) until the loop watches them, and
 * writes into a closed pipe or over a file size limit fail as errors
 * instead.  Also checks that enough descriptors are free.  Returns 0, or a
 * negative libuv error with ERR saying why. */
int ctrun_proc_protect(char *err, size_t errlen);

/* The first signal held since ctrun_proc_protect that ends a run; 0 if
 * none.  A wait for a lock ends when one arrives. */
int ctrun_proc_held_signal(void);

/* From now on, call CB on the loop with each signal that ends a run, to
 * be passed on to the tree as it is: on Unix every catchable signal whose
 * default action would end ctrun (see ctrun_proc_protect), on Windows
 * Ctrl+C, Ctrl+Break and the closing of the console.  One that was ignored
 * when ctrun started (a shell's "cmd &" ignores INT and QUIT) is not
 * watched: it stays ignored, for ctrun and the command alike.  Close the
 * watcher with ctrun_signals_close before the loop ends. */
struct ctrun_signals;
typedef void (*ctrun_signal_cb)(int sig, void *data);
int ctrun_signals_watch(uv_loop_t *loop, ctrun_signal_cb cb, void *data, struct ctrun_signals **out);
void ctrun_signals_close(struct ctrun_signals *s);

/* First thing in main: what the platform must set up.  On Unix: open
 * descriptors 0-2 (to /dev/null) where they are closed, unblock every
 * signal and stop ignoring SIGCHLD, whatever the parent left.  On Windows:
 * ARGV is re-read from the UTF-16 command line as UTF-8. */
void ctrun_proc_init(int *argc, char ***argv);

/* Detached runs (-d): the run continues in a supervisor that is no child
 * of the caller's and has no terminal; the caller waits only until the
 * supervisor reports how the start went. */
struct ctrun_detach {
  int ready_fd; /* supervisor: where to report; caller: where to read */
  char *run_id; /* the run's id: where there is no fork (Windows), the
                   supervisor is a new process and receives the caller's */
};

/* Returns 1 in the caller, 0 in the supervisor, or a negative libuv error.
 * The supervisor's stdin and stdout are /dev/null and every other
 * descriptor but stderr is closed; stderr still reaches the caller until
 * ctrun_detach_ready. */
int ctrun_detach_start(struct ctrun_detach *d);

/* Supervisor: report CODE (an exit code) and whether the command started.
 * If it started, point stderr at ERR_FD (-1: /dev/null); if not, the caller
 * waits until this process has exited. */
void ctrun_detach_ready(struct ctrun_detach *d, int code, bool started, int err_fd);

/* Caller: wait for the report.  Returns 0, or UV_EPIPE if the supervisor
 * died before reporting. */
int ctrun_detach_wait(struct ctrun_detach *d, int *code, bool *started);

#endif
