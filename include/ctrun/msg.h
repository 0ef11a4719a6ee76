/* ctrun's own messages on stderr, "ctrun: ..." */
#ifndef CTRUN_MSG_H
#define CTRUN_MSG_H

/* -1 quiet (errors only), 0 normal, 1 verbose. */
extern int ctrun_verbosity;

#if defined(__GNUC__)
#define CTRUN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CTRUN_PRINTF(a, b)
#endif

/* An error: always printed. */
void ctrun_error(const char *fmt, ...) CTRUN_PRINTF(1, 2);
/* A notice: printed unless -q. */
void ctrun_notice(const char *fmt, ...) CTRUN_PRINTF(1, 2);
/* A detail: printed only with -v. */
void ctrun_debug(const char *fmt, ...) CTRUN_PRINTF(1, 2);

/* The text of a negative libuv error, in the platform's own words
 * (implemented by the platform backend, beside its file operations). */
const char *ctrun_strerror(int err);

#endif
