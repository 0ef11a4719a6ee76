/* Durations: one or more NUMBER[UNIT] parts, UNIT one of ms s m h d. */
#ifndef CTRUN_DURATION_H
#define CTRUN_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* "inf": no limit. */
#define CTRUN_DURATION_INF UINT64_MAX
/* The longest finite duration accepted: ten years. */
#define CTRUN_DURATION_MAX_MS (3650ULL * 24 * 3600 * 1000)

/* Parse S into milliseconds (a positive fraction of a millisecond rounds up
 * to 1).  Returns 0, or -EINVAL for a malformed value, -ERANGE past
 * CTRUN_DURATION_MAX_MS. */
int ctrun_duration_parse(const char *s, uint64_t *ms);

/* Format MS compactly for people ("3m12s", "250ms", "inf") into BUF: the
 * two most significant units, rounded down.  For ages ("running for
 * 3m12s"), where the last second is noise. */
const char *ctrun_duration_format(uint64_t ms, char *buf, size_t size);

/* Format MS exactly, to the millisecond ("1.67s", "1h30m", "2m0.5s",
 * "250ms", "inf"), so that it parses back to MS: for the durations a user
 * gave, which a message must never round ("timed out after 1.67s", not
 * "after 1s").  BUF needs at most 32 bytes. */
const char *ctrun_duration_format_exact(uint64_t ms, char *buf, size_t size);

#endif
