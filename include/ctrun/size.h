/* Sizes of memory: NUMBER[K|M|G|T], powers of 1024, or "inf". */
#ifndef CTRUN_SIZE_H
#define CTRUN_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* "inf": no limit. */
#define CTRUN_SIZE_INF UINT64_MAX
/* The largest finite size accepted: 2^62 bytes (4 EiB). */
#define CTRUN_SIZE_MAX (1ULL << 62)

/* Parse S into bytes: digits, an optional fraction, an optional unit (K,
 * M, G or T, either case; none: bytes), or "inf".  A fraction of a byte
 * rounds up.  Returns 0, or -EINVAL for a malformed value ("12Q", "-1M",
 * "1e9", ""), -ERANGE past CTRUN_SIZE_MAX. */
int ctrun_size_parse(const char *s, uint64_t *bytes);

/* BYTES for people, to one decimal in the largest unit it reaches: "17
 * B", "300.0 KiB", "1.2 GiB".  BUF needs at most 24 bytes. */
const char *ctrun_size_format(uint64_t bytes, char *buf, size_t size);

/* BYTES exactly, in the largest unit that divides it ("512M", "1536K",
 * "1000"), so that it parses back to BYTES: for the limits a user gave.
 * BUF needs at most 24 bytes. */
const char *ctrun_size_format_exact(uint64_t bytes, char *buf, size_t size);

#endif
