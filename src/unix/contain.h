/* What each Unix host offers to contain and find a process tree beyond a
 * process group.  One file implements it per host: linux.c, freebsd.c,
 * darwin.c, and posix.c, the generic fallback that has nothing extra. */
#ifndef CTRUN_UNIX_CONTAIN_H
#define CTRUN_UNIX_CONTAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctrun/proc.h"
#include "ctrun/registry.h"

/* Make this process the reaper of every orphan among its descendants.
 * Returns 0, or UV_ENOSYS where the host cannot. */
int ctrun_os_reaper_acquire(void);

/* In the command's process, before exec: die when PARENT does.  Async-signal
 * safe, writes nothing but errno.  Returns 0, or -1 when PARENT is already gone. */
int ctrun_os_child_die_with_parent(pid_t parent);

/* Start a process that runs FN(ARG), which ends in ctrun_os_exec or
 * _exit, and return its pid, or a negative error.  ARGC is the length of
 * the argument vector it will exec (exec may copy it on the stack).
 *
 * Linux: the process shares ctrun's memory until it execs
 * (clone(CLONE_VM) on a stack of its own), for copying ctrun's address
 * space on fork and the copy-on-write faults after it were the largest
 * part of what a short run cost beyond timeout(1).  So, as after vfork,
 * FN writes to nothing but its own stack and errno, which is ctrun's:
 * while ctrun runs on, FN makes only calls that cannot fail; ctrun waits
 * while it makes others (proc.c: held until a word, then ctrun waits
 * until it has exec'd), and no handler of ctrun's acts in it
 * (ctrun_unix_signal_elsewhere).  One such
 * process at a time: the previous one has exec'd or been reaped.  Under
 * valgrind, which cannot run such a clone, and where the host refuses
 * one, fork.  Elsewhere (fork.c): fork.
 *
 * *START is the process's start time as ctrun_os_proc_start would give
 * it, where the clock around its birth tells it exactly; else 0. */
pid_t ctrun_os_start_child(int (*fn)(void *), void *arg, size_t argc, uint64_t *start);

/* In the process ctrun_os_start_child started: exec ARGV[0], searched in
 * PATH, with environment ENV.  Returns only on failure (errno). */
void ctrun_os_exec(char *const argv[], char *const env[]);

/* One row of the process table. */
struct ctrun_pinfo {
  pid_t pid, ppid, pgid;
  pid_t sid;       /* its session; 0 where the host does not tell */
  uint64_t start;  /* start time: changes when a pid is reused */
  uint64_t age_ms; /* how long it has lived, when the table was read */
  uint64_t rss_bytes; /* resident memory; 0 where the host does not tell */
  uint64_t cpu_ms;    /* CPU time, user and system, with that of the
                         children it has reaped; 0 where not told */
  bool zombie;
  char comm[20];   /* the command name the kernel keeps (16 bytes on Linux) */
};

/* The whole process table, or UV_ENOSYS.  Free *V with free(). */
int ctrun_os_proc_list(struct ctrun_pinfo **v, size_t *n);

/* The live descendants of this process, found by walking down from it
 * (Linux: /proc/PID/task/TID/children), so that the cost follows the size
 * of the tree, not of the process table.  UV_ENOSYS where the host has no
 * such walk; the caller then reads the whole table.  Free *V with free(). */
int ctrun_os_descendants(struct ctrun_pinfo **v, size_t *n);

/* The start time of PID. */
int ctrun_os_proc_start(pid_t pid, uint64_t *start);

/* The value of CTRUN_RUN_ID in PID's environment; UV_ENOENT if it has none,
 * UV_ENOSYS where the host cannot tell. */
int ctrun_os_proc_tag(pid_t pid, char *buf, size_t size);

/* Send SIG to PID only if it is still the process that started at START;
 * race-free where the host has process handles (pidfd). */
int ctrun_os_signal_verified(pid_t pid, uint64_t start, int sig);

/* Sign FD, this process's open entry (see ctrun_proc_sign_entry); UV_ENOSYS
 * where the host cannot. */
int ctrun_os_sign_entry(int fd);

/* Send SIG to PID only if the kernel names it as the signer of the entry
 * open on FD; UV_ESRCH when it does not, UV_ENOSYS where entries are not
 * signed.  Race-free where the host has process handles (pidfd). */
int ctrun_os_signal_signer(int fd, pid_t pid, int sig);

/* The id of this boot ("" where none). */
void ctrun_os_boot_id(char *buf, size_t size);

/* The first thing each handler of ctrun's asks.  The command's process,
 * until it execs, is a copy of ctrun or shares its memory, and so has
 * ctrun's handlers: there one must not run (it would take the signal for
 * ctrun's).  So, in any process but the one that installed them (see
 * ctrun_proc_protect), SIG gets its default action back and is sent
 * again, to act as the handler returns, as it would on the command: the
 * answer is then true.  Async-signal-safe, writes no errno. */
bool ctrun_unix_signal_elsewhere(int sig);

/* Mark this process as the one whose handlers they are. */
void ctrun_unix_own_handlers(void);

/* A cgroup v2 of the run's own (Linux; see cgroup.c): for run ID, with
 * the caps of L set where the kernel can hold them all (*KERNEL), else
 * none.  UV_ENOSYS where ctrun may create none. */
struct ctrun_os_cgroup;
int ctrun_os_cgroup_new(const char *id, const struct ctrun_limits *l, bool *kernel,
                        struct ctrun_os_cgroup **out);
const char *ctrun_os_cgroup_path(const struct ctrun_os_cgroup *cg);
/* Move PID (the held command: nothing else) into it. */
int ctrun_os_cgroup_add(struct ctrun_os_cgroup *cg, pid_t pid);
/* SIGKILL every process in it at once. */
int ctrun_os_cgroup_kill(struct ctrun_os_cgroup *cg);
/* 1 while a process is in it, 0 once none is, or a negative error. */
int ctrun_os_cgroup_populated(struct ctrun_os_cgroup *cg);
/* The cap the kernel enforced (an OOM kill, a refused fork), if any. */
enum ctrun_limit ctrun_os_cgroup_limit_hit(struct ctrun_os_cgroup *cg);
/* The kernel's counts for the whole cgroup: CPU time, and peak memory
 * where the memory controller keeps it. */
void ctrun_os_cgroup_usage(struct ctrun_os_cgroup *cg, struct ctrun_usage *u);
/* Remove it (killing what is still in it), and free CG. */
void ctrun_os_cgroup_free(struct ctrun_os_cgroup *cg);
/* Remove the cgroup PATH that stale run ID recorded, if it is one of
 * ctrun's making for that run. */
int ctrun_os_cgroup_remove_stale(const char *path, const char *id);

/* Call FN on every row of the process table; where the host reads the
 * table row by row (Linux), as each is read, so that a process can be
 * signalled moments after it was seen.  UV_ENOSYS where there is none. */
int ctrun_os_proc_each(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg);

/* Call FN on the rows of the N newest pids, where the table is read row
 * by row (Linux; elsewhere a listing is one snapshot, and this does
 * nothing).  A process hopping from pid to pid is always among them, and
 * gone from its row before a pass in pid order reaches it on a loaded
 * host.  Rows may come again in the next full pass. */
void ctrun_os_proc_newest(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg, int n);

/* A set of processes, each by pid and start time (a small hash table). */
struct ctrun_pidset {
  struct ctrun_pidslot { pid_t pid; uint64_t start; size_t val; } *s;
  size_t cap, n;
};

/* What the supervisor of one tree knows of the processes below it; the
 * tree functions of proctab.c read and update it. */
struct ctrun_unix_tree {
  pid_t command;                 /* the command, once spawned */
  char run_id[CTRUN_ID_LEN + 1]; /* its tag */
  /* ctrun had children before the run (a shell exec'd it, keeping its
   * background jobs): those, and their descendants, are no part of the
   * run, and each pass remembers which processes are whose. */
  bool mixed;
  struct ctrun_pidset foreign, ours;
  struct ctrun_pidset denied; /* members ctrun may not signal (EPERM) */
};

/* Before the command is spawned: note what already runs below ctrun. */
void ctrun_unix_tree_init(struct ctrun_unix_tree *u);
void ctrun_unix_tree_free(struct ctrun_unix_tree *u);

/* Signal (SIG > 0) or count (SIG == 0) the live processes of the run: its
 * processes below ctrun, or (TAGGED, where ctrun is no reaper) those in
 * the command's group or carrying its tag.  A signal is sent until a
 * pass over the process table finds no member it has not yet signalled
 * (bounded), so that a process that forks a successor and exits cannot
 * slip past.  Returns how many, or UV_ENOSYS where there is no process
 * table. */
int ctrun_unix_tree_walk(struct ctrun_unix_tree *u, bool tagged, int sig);

/* The live processes of the run now, as ctrun_unix_tree_walk finds
 * them (without signalling any), as rows of the process table: for the
 * policies that govern a run.  Free *V with free(). */
int ctrun_unix_tree_list(struct ctrun_unix_tree *u, bool tagged, struct ctrun_pinfo **v,
                         size_t *n);

/* Check PID's start time, then signal it: for hosts without a handle for an
 * existing process, the two are two system calls apart. */
int ctrun_unix_signal_if_same(pid_t pid, uint64_t start, int sig);

#endif
