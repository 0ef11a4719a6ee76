#include "ctrun/msg.h"

#include <stdarg.h>
#include <stdio.h>

int ctrun_verbosity = 0;

static void vsay(const char *fmt, va_list ap) {
  char buf[2048];
  vsnprintf(buf, sizeof buf, fmt, ap);
  /* One write, so that lines of concurrent runs do not interleave. */
  fprintf(stderr, "ctrun: %s\n", buf);
  fflush(stderr);
}

void ctrun_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
}

void ctrun_notice(const char *fmt, ...) {
  va_list ap;
  if (ctrun_verbosity < 0)
    return;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
}

void ctrun_debug(const char *fmt, ...) {
  va_list ap;
  if (ctrun_verbosity < 1)
    return;
  va_start(ap, fmt);
  vsay(fmt, ap);
  va_end(ap);
}
