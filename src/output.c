#include "ctrun/output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "ctrun/exit.h"
#include "ctrun/json.h"
#include "ctrun/msg.h"
#include "ctrun/run.h"
#include "ctrun/signals.h"

#ifdef _WIN32
#include <io.h>
#define O_CLOEXEC (O_NOINHERIT | O_BINARY) /* and no CRLF translation */
#else
#include <unistd.h>
#endif

/* Say which file operation failed and why (the C library's errno, which
 * is not a libuv code on every platform); returns a negative error. */
static int file_error(char *err, size_t errlen, const char *what, const char *path) {
  int e = errno;
  snprintf(err, errlen, "%s '%s': %s", what, path, strerror(e));
  return e > 0 ? -e : UV_EIO;
}

void ctrun_format_command(char *const *argv, char *buf, size_t size) {
  size_t n = 0;
  if (size == 0)
    return;
  buf[0] = '\0';
  for (size_t i = 0; argv[i] != NULL && n + 1 < size; i++) {
    const char *a = argv[i];
    bool plain = a[0] != '\0' && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789-_./=:,+@%") == strlen(a);
    if (i > 0)
      buf[n++] = ' ';
    if (!plain && n + 1 < size)
      buf[n++] = '\'';
    for (; *a && n + 1 < size; a++) {
      unsigned char c = (unsigned char)*a;
      if (c == '\'' && !plain) {
        n += (size_t)snprintf(buf + n, size - n, "'\\''");
        if (n >= size)
          n = size - 1;
      } else {
        buf[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
      }
    }
    if (!plain && n + 1 < size)
      buf[n++] = '\'';
    buf[n] = '\0';
  }
  buf[n < size ? n : size - 1] = '\0';
}

static int open_report(struct ctrun_output *out, const char *path, const char *id, char *err,
                       size_t errlen) {
  size_t len = strlen(path) + CTRUN_NAME_MAX + 16;
  out->report_path = path;
  if (strcmp(path, "-") == 0) {
    out->report = stderr;
    return 0;
  }
  /* A directory there would only fail the rename at the very end, after
   * the command ran, so refuse it now like any other unwritable path. */
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    return file_error(err, errlen, "cannot write report file", path);
  }
  /* Written beside its final name and renamed into place at the end: a
   * reader never sees half a report. */
  out->report_tmp = malloc(len);
  if (out->report_tmp == NULL)
    return UV_ENOMEM;
  snprintf(out->report_tmp, len, "%s.%s.tmp", path, id);
  out->report_fd = open(out->report_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out->report_fd < 0) {
    int e = file_error(err, errlen, "cannot write report file", path);
    free(out->report_tmp);
    out->report_tmp = NULL;
    return e;
  }
  return 0;
}

int ctrun_output_open(struct ctrun_output *out, const struct ctrun_run_opts *o, const char *id,
                      char *err, size_t errlen) {
  int e;
  if (o->log_path != NULL) {
    out->log_fd = open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (out->log_fd < 0)
      return file_error(err, errlen, "cannot open log file", o->log_path);
    out->child_fd = out->log_fd;
  } else if (o->detach) {
    out->child_fd = 1; /* the detached supervisor's stdout is /dev/null */
  }
  if (o->quiet_success) {
    FILE *f = tmpfile();
    if (f == NULL || (out->capture_fd = dup(fileno(f))) < 0) {
      e = file_error(err, errlen, "cannot create a file to hold the output in", "tmpfile");
      if (f)
        fclose(f);
      return e;
    }
    fclose(f);
#ifndef _WIN32
    fcntl(out->capture_fd, F_SETFD, FD_CLOEXEC);
#endif
    out->child_fd = out->capture_fd;
  }
  if (o->report_path != NULL)
    return open_report(out, o->report_path, id, err, errlen);
  return 0;
}

/* One write a line, so that lines from concurrent runs never interleave. */
static void log_line(int fd, const char *id, const char *name, const char *text) {
  char line[8192], when[40];
  int n = snprintf(line, sizeof line, "%s ctrun run=%s name=%s %s\n",
                   ctrun_rfc3339(ctrun_now_ms(), when, sizeof when), id, name, text);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof line) {
    n = sizeof line - 1;
    line[n - 1] = '\n';
  }
  while (write(fd, line, (size_t)n) < 0 && errno == EINTR)
    ;
}

void ctrun_output_start(struct ctrun_output *out, const struct ctrun_run_opts *o, const char *id,
                        int64_t started_ms) {
  char cmd[7000], text[7100];
  (void)started_ms;
  if (out->log_fd < 0)
    return;
  ctrun_format_command(o->argv, cmd, sizeof cmd);
  snprintf(text, sizeof text, "start: %s", cmd);
  log_line(out->log_fd, id, o->name, text);
}

static void copy_fd(int from, int to) {
  char buf[65536];
  ssize_t n;
  if (lseek(from, 0, SEEK_SET) != 0)
    return;
  while ((n = read(from, buf, sizeof buf)) > 0) {
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(to, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return;
      off += w;
    }
  }
}

void ctrun_output_finish(struct ctrun_output *out, const struct ctrun_run_opts *o, const char *id,
                         int code, int status, int termsig, bool timed_out, int64_t duration_ms) {
  char text[400], result[64];
  if (out->capture_fd >= 0) {
    if (out->log_fd >= 0)
      copy_fd(out->capture_fd, out->log_fd);
    if (code != 0) {
      fflush(stdout);
      copy_fd(out->capture_fd, 1);
    }
  }
  if (out->log_fd < 0)
    return;
  if (timed_out)
    snprintf(result, sizeof result, "timed out, exit %d", code);
  else if (status < 0 && termsig > 0)
    snprintf(result, sizeof result, "killed by signal %s, exit %d",
             ctrun_signal_name(termsig) ? ctrun_signal_name(termsig) : "?", code);
  else
    snprintf(result, sizeof result, "exit %d", code);
  snprintf(text, sizeof text, "end: %s after %lld.%03llds%s%s", result,
           (long long)(duration_ms / 1000), (long long)(duration_ms % 1000),
           out->end_note[0] ? "; " : "", out->end_note);
  log_line(out->log_fd, id, o->name, text);
}

FILE *ctrun_output_report_begin(struct ctrun_output *out) {
  if (out->report == NULL && out->report_fd >= 0) {
    out->report = fdopen(out->report_fd, "w");
    if (out->report != NULL)
      out->report_fd = -1;
  }
  return out->report;
}

void ctrun_output_report_end(struct ctrun_output *out) {
  if (out->report == NULL)
    return;
  if (out->report == stderr) {
    fflush(stderr);
    out->report = NULL;
    return;
  }
  if (fclose(out->report) != 0 || rename(out->report_tmp, out->report_path) != 0) {
    ctrun_error("cannot write report file '%s': %s", out->report_path, strerror(errno));
    remove(out->report_tmp);
  }
  out->report = NULL;
  free(out->report_tmp);
  out->report_tmp = NULL;
}

void ctrun_output_close(struct ctrun_output *out) {
  if (out->report != NULL && out->report != stderr)
    fclose(out->report);
  out->report = NULL;
  if (out->report_fd >= 0)
    close(out->report_fd);
  if (out->report_tmp != NULL) {
    remove(out->report_tmp); /* no report for a run that never ran */
    free(out->report_tmp);
    out->report_tmp = NULL;
  }
  if (out->log_fd >= 0)
    close(out->log_fd);
  if (out->capture_fd >= 0)
    close(out->capture_fd);
  out->log_fd = out->capture_fd = out->report_fd = -1;
}
