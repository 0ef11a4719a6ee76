#include "ctrun/output.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ctrun/clock.h"
#include "ctrun/duration.h"
#include "ctrun/exit.h"
#include "ctrun/fs.h"
#include "ctrun/json.h"
#include "ctrun/msg.h"
#include "ctrun/signals.h"
#include "ctrun/size.h"

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
   * the command ran, so refuse it now like any other unwritable path.  (A
   * link or a FIFO there is replaced, never followed.) */
  if (ctrun_path_is_dir(path)) {
    snprintf(err, errlen, "cannot write report file '%s': it is a directory", path);
    return UV_EISDIR;
  }
  /* Written beside its final name, under a name no one can guess, and
   * renamed into place at the end: a reader never sees half a report. */
  out->report_tmp = malloc(len);
  if (out->report_tmp == NULL)
    return UV_ENOMEM;
  snprintf(out->report_tmp, len, "%s.%s.tmp", path, id);
  out->report_fd = ctrun_file_open(out->report_tmp, CTRUN_FILE_REPORT, err, errlen);
  if (out->report_fd < 0) {
    int e = out->report_fd;
    free(out->report_tmp);
    out->report_tmp = NULL;
    return e;
  }
  return 0;
}

int ctrun_output_open(struct ctrun_output *out, const struct ctrun_run_opts *o, const char *id,
                      char *err, size_t errlen) {
  if (o->log_path != NULL) {
    out->log_fd = ctrun_file_open(o->log_path, CTRUN_FILE_LOG, err, errlen);
    if (out->log_fd < 0)
      return out->log_fd;
    out->child_fd = out->log_fd;
  } else if (o->detach) {
    out->child_fd = 1; /* the detached supervisor's stdout is /dev/null */
  }
  if (o->quiet_success) {
    out->capture_fd = ctrun_tmpfile();
    if (out->capture_fd < 0) {
      snprintf(err, errlen, "cannot create a file to hold the output in: %s",
               ctrun_strerror(out->capture_fd));
      return out->capture_fd;
    }
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
  ctrun_fd_write_all(fd, line, (size_t)n);
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

void ctrun_output_note(struct ctrun_output *out, const char *id, const char *name,
                       const char *text) {
  if (out->log_fd >= 0)
    log_line(out->log_fd, id, name, text);
}

void ctrun_output_finish(struct ctrun_output *out, const struct ctrun_result *res) {
  char text[500], result[120], attempts[32] = "", note[240] = "", usage[100] = "";
  int64_t ms = res->ended_ms - res->started_ms;
  if (out->capture_fd >= 0) {
    if (out->log_fd >= 0)
      ctrun_fd_copy(out->capture_fd, out->log_fd);
    if (!res->ok) { /* --ok-exit statuses stay quiet too */
      fflush(stdout);
      ctrun_fd_copy(out->capture_fd, 1);
    }
  }
  if (out->log_fd < 0)
    return;
  ctrun_reason_text(res->reason, res->exit_code, res->termsig, result, sizeof result);
  if (res->attempts > 1)
    snprintf(attempts, sizeof attempts, " (%d attempts)", res->attempts);
  if (res->unkillable > 0) {
    int n = snprintf(note, sizeof note, "; %d process(es) could not be signalled:", res->unkillable);
    for (int i = 0; i < res->unkillable && i < CTRUN_UNKILLABLE_LISTED && (size_t)n < sizeof note; i++)
      n += snprintf(note + n, sizeof note - (size_t)n, " %ld", res->unkillable_pid[i]);
  }
  if (ms < 0)
    ms = 0;
  if (res->attempts > 0) {
    char u[32], sy[32], peak[24];
    snprintf(usage, sizeof usage, "; cpu %s user, %s sys; peak %s",
             ctrun_duration_format_exact(res->cpu_user_ms, u, sizeof u),
             ctrun_duration_format_exact(res->cpu_sys_ms, sy, sizeof sy),
             ctrun_size_format(res->peak_rss_bytes, peak, sizeof peak));
  }
  snprintf(text, sizeof text, "end: %s after %lld.%03llds%s%s%s", result, (long long)(ms / 1000),
           (long long)(ms % 1000), attempts, usage, note);
  log_line(out->log_fd, res->id, res->name, text);
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
  int e = fclose(out->report) == 0 ? 0 : UV_EIO;
  if (e == 0)
    e = ctrun_file_replace(out->report_tmp, out->report_path);
  if (e != 0) {
    ctrun_error("cannot write report file '%s': %s", out->report_path, ctrun_strerror(e));
    ctrun_file_remove(out->report_tmp);
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
    ctrun_fd_close(out->report_fd);
  if (out->report_tmp != NULL) {
    ctrun_file_remove(out->report_tmp); /* no report for a run that never ran */
    free(out->report_tmp);
    out->report_tmp = NULL;
  }
  if (out->log_fd >= 0)
    ctrun_fd_close(out->log_fd);
  if (out->capture_fd >= 0)
    ctrun_fd_close(out->capture_fd);
  out->log_fd = out->capture_fd = out->report_fd = -1;
}
