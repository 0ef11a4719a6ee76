/* What each Unix host offers to contain and find a process tree beyond a
 * process group.  One file implements it per host: linux.c, freebsd.c,
 * darwin.c, and posix.c, the generic fallback that has nothing extra. */
#ifndef CTRUN_UNIX_CONTAIN_H
#define CTRUN_UNIX_CONTAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Make this process the reaper of every orphan among its descendants.
 * Returns 0, or UV_ENOSYS where the host cannot. */
int ctrun_os_reaper_acquire(void);

/* In the forked child, before exec: die when PARENT does.  Async-signal
 * safe.  Returns 0, or -1 when PARENT is already gone. */
int ctrun_os_child_die_with_parent(pid_t parent);

/* One row of the process table. */
struct ctrun_pinfo {
  pid_t pid, ppid, pgid;
  uint64_t start;  /* start time: changes when a pid is reused */
  uint64_t age_ms; /* how long it has lived, when the table was read */
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

/* The id of this boot ("" where none). */
void ctrun_os_boot_id(char *buf, size_t size);

/* Make every signal for which ctrun installed a handler default again (in
 * the forked command, before exec).  Async-signal-safe. */
void ctrun_unix_default_signals(void);

/* Built on the above for every host (proctab.c): signal or count the live
 * descendants of this process.  UV_ENOSYS where there is no process table. */
int ctrun_unix_signal_descendants(int sig);
int ctrun_unix_count_descendants(void);

/* The live processes that descend from this process or belong to process
 * group PGID (0: none), as rows of the process table, for the policies
 * that govern a run; with PGID 0, by a walk down the tree where the host
 * has one.  UV_ENOSYS where there is no process table.  Free *V with
 * free(). */
int ctrun_unix_members(pid_t pgid, struct ctrun_pinfo **v, size_t *n);

/* Where ctrun is no reaper, the tree is found by its run tag: signal (SIG
 * > 0) or count (SIG == 0) the live processes carrying CTRUN_RUN_ID=ID.
 * Returns how many, or UV_ENOSYS where there is no process table. */
int ctrun_unix_tagged(const char *id, int sig);

/* Check PID's start time, then signal it: for hosts without a handle for an
 * existing process, the two are two system calls apart. */
int ctrun_unix_signal_if_same(pid_t pid, uint64_t start, int sig);

#endif
