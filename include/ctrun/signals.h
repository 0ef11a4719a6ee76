/* Signal names and numbers. */
#ifndef CTRUN_SIGNALS_H
#define CTRUN_SIGNALS_H

/* Parse "TERM", "SIGTERM", "term" or "15".  Returns the signal number, or
 * -EINVAL for an unknown name or a number out of range. */
int ctrun_signal_parse(const char *s);

/* "TERM" for SIGTERM, or NULL for a number without a name. */
const char *ctrun_signal_name(int sig);

#endif
