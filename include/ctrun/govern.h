/* Policies that govern a run while it runs, as timers on the loop: the
 * child timeout reads one snapshot of the tree's members per tick (one
 * sampler serves every policy on the tree), the idle timeout reads when
 * output was last seen.  They act through the platform interface and tell
 * the run what they did; the run loop only starts and stops them. */
#ifndef CTRUN_GOVERN_H
#define CTRUN_GOVERN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ctrun/options.h"
#include "ctrun/proc.h"

struct ctrun_govern;

struct ctrun_govern_hooks {
  void *data;
  /* A process of the tree other than the command reached --child-timeout
   * and was sent the soft signal (or, after -k, the hard kill is due).
   * TEXT says so for people: "killed hung child git (pid 4242) after 30s". */
  void (*child_killed)(void *data, const char *text);
  /* No output for --idle-timeout: the run is to end as a timeout would. */
  void (*idle)(void *data);
  /* The tree went over a limit that ctrun enforces by sampling: the run is
   * to end.  TEXT says so: "used 1.2 GiB, over --memory 512M; killed". */
  void (*limit)(void *data, enum ctrun_limit which, const char *text);
};

/* The governor of run O, whose container is T, on LOOP; SAMPLE_LIMITS
 * when O's limits are ctrun's to enforce (the kernel does not).  Costs
 * nothing (no timer runs, no process table is read) when O sets no policy
 * and asks for no report.  Returns 0 or a negative libuv error; UV_ENOSYS
 * when O asks for what the platform cannot do (--child-timeout, or limits
 * to sample, without a process table). */
int ctrun_govern_new(uv_loop_t *loop, struct ctrun_tree *t, const struct ctrun_run_opts *o,
                     bool sample_limits, const struct ctrun_govern_hooks *hooks,
                     struct ctrun_govern **out);

/* Watch the tree: an attempt's command has just started. */
void ctrun_govern_start(struct ctrun_govern *g);

/* Stop acting: the tree is being stopped, or is gone. */
void ctrun_govern_stop(struct ctrun_govern *g);

/* The output relay's report, for --idle-timeout: output was just seen
 * (HELD false), or the relay holds the command back because the reader
 * of ctrun's own output is slow (HELD true): a command kept from writing
 * is not idle.  DATA is the governor. */
void ctrun_govern_output(void *data, bool held);

/* Where the kernel holds the limits: if it found the tree over one, end
 * the run (the limit hook).  Also done on each tick of the sampler. */
void ctrun_govern_kernel_check(struct ctrun_govern *g);

/* The most processes, and the most resident memory together, that the
 * sampler saw in the tree (0 where it did not run). */
void ctrun_govern_peaks(const struct ctrun_govern *g, int *procs, uint64_t *rss);

/* Processes killed for --child-timeout so far. */
int ctrun_govern_children_killed(const struct ctrun_govern *g);

/* How often the child timeout looks at the tree: a tenth of the limit,
 * between 50 ms and 1 s. */
uint64_t ctrun_govern_interval_ms(uint64_t child_timeout_ms);

/* Close the timers; the governor is freed once they are. */
void ctrun_govern_close(struct ctrun_govern *g);

#endif
