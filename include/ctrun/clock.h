/* Time: the wall clock for what people read (logs, reports, entries).
 * Durations are measured on the monotonic clock (uv_hrtime) instead. */
#ifndef CTRUN_CLOCK_H
#define CTRUN_CLOCK_H

#include <stdint.h>

/* Wall-clock time, epoch milliseconds. */
int64_t ctrun_now_ms(void);

#endif
