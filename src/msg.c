#include "ctrun/msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <uv.h>

#include "ctrun/fs.h"

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

void ctrun_file_error(char *err, size_t errlen, enum ctrun_file_use use, const char *path, int e) {
  static const char *const what[] = {
    [CTRUN_FILE_LOCK] = "lock file",
    [CTRUN_FILE_LOG] = "log file",
    [CTRUN_FILE_REPORT] = "report file",
  };
  const char *w = what[use];
  switch (e) {
  case UV_EILSEQ: snprintf(err, errlen, "%s '%s' is not a valid path", w, path); break;
  case UV_ELOOP: snprintf(err, errlen, "%s '%s' is a symbolic link (refused)", w, path); break;
  case UV_EBUSY:
    snprintf(err, errlen, "%s '%s' is open in another program that does not share it", w, path);
    break;
  case UV_EINVAL:
  case UV_EISDIR: snprintf(err, errlen, "%s '%s' is not a regular file", w, path); break;
  case UV_ENOENT:
    snprintf(err, errlen, "cannot open %s '%s': its directory does not exist", w, path);
    break;
  default: snprintf(err, errlen, "cannot open %s '%s': %s", w, path, ctrun_strerror(e)); break;
  }
}
