/* --retry: whether an attempt's end calls for another, and how long to
 * wait before it. */
#ifndef CTRUN_RETRY_H
#define CTRUN_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "ctrun/options.h"
#include "ctrun/result.h"

/* Whether an end counts as success: the command exited by itself (its
 * leftovers killed or not) with 0 or one of the statuses in OK_EXIT (a
 * bit per status, as --ok-exit sets them).  Timeouts, signals, limits and
 * stops never do. */
bool ctrun_exit_ok(const uint32_t ok_exit[8], enum ctrun_reason reason, int exit_code);

/* Whether attempt A, over, matches ON (a successful attempt never does): `fail` matches a command that
 * exited non-zero or died of a signal by itself, `timeout` one that ctrun
 * ended for -t or --idle-timeout, a code any attempt that ends with it.
 * A stopped run never matches. */
bool ctrun_retry_wanted(const struct ctrun_retry_on *on, const struct ctrun_attempt *a);

/* The wait before retry N (1: the first): BASE_MS doubled N-1 times, times
 * a jitter of 0.8 + 0.4 * U for U in [0, 1), so that runs that failed
 * together do not retry together; at most CTRUN_DURATION_MAX_MS. */
uint64_t ctrun_retry_delay_ms(uint64_t base_ms, int n, double u);

/* A random U in [0, 1) for the jitter. */
double ctrun_retry_jitter(void);

#endif
