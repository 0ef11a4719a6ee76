/* Detached runs on Windows, which has no fork: ctrun starts its own exe
 * again with the same command line, as a detached process in a process
 * group of its own, and tells it through the environment that it is the
 * supervisor, which pipe to report on, and which run id the caller chose.
 * The caller waits on that pipe as it does on Unix. */
#include "ctrun/proc.h"

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrun/registry.h"
#include "internal.h"

/* "<pipe handle>:<run id>", present only in the supervisor. */
#define MARKER L"CTRUN_DETACHED_SUPERVISOR"

/* The marker as ctrun found it at start, taken out of the environment. */
static wchar_t marker_found[96];

void ctrun_win_detach_init(void) {
  DWORD size = sizeof marker_found / sizeof marker_found[0];
  DWORD len = GetEnvironmentVariableW(MARKER, marker_found, size);
  if (len == 0 || len >= size)
    marker_found[0] = L'\0';
  SetEnvironmentVariableW(MARKER, NULL);
}

struct report {
  int code;
  int started;
};

static HANDLE open_null(bool inherit) {
  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, inherit };
  return CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                     OPEN_EXISTING, 0, NULL);
}

/* The supervisor's side: take the pipe and the run id out of the marker.
 * UV_EINVAL when the marker is not one a caller set: environment
 * variables are anyone's, and Windows takes ctrun_detached_supervisor for
 * the same name. */
static int become_supervisor(struct ctrun_detach *d, const wchar_t *marker) {
  unsigned long long h = 0;
  char id[CTRUN_ID_LEN + 1] = "";
  int fd;

  if (swscanf(marker, L"%llu:%12hs", &h, id) != 2 || strlen(id) != CTRUN_ID_LEN ||
      strspn(id, "0123456789abcdef") != CTRUN_ID_LEN ||
      GetFileType((HANDLE)(uintptr_t)h) != FILE_TYPE_PIPE)
    return UV_EINVAL;
  SetHandleInformation((HANDLE)(uintptr_t)h, HANDLE_FLAG_INHERIT, 0);
  fd = _open_osfhandle((intptr_t)h, 0);
  if (fd < 0)
    return UV_EBADF;
  if (d->run_id != NULL)
    memcpy(d->run_id, id, sizeof id);
  d->ready_fd = fd;
  return 0;
}

int ctrun_detach_start(struct ctrun_detach *d) {
  wchar_t self[32768], marker[96], *cmdline = NULL;
  HANDLE rd = NULL, wr = NULL, stdio[3] = { NULL, NULL, NULL }, inherit[4];
  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, FALSE };
  PROCESS_INFORMATION pi;
  DWORD err, len;
  size_t n = 0;
  int r = 0;

  if (marker_found[0] != L'\0' && become_supervisor(d, marker_found) == 0)
    return 0;

  len = GetModuleFileNameW(NULL, self, sizeof self / sizeof self[0]);
  if (len == 0 || len >= sizeof self / sizeof self[0])
    return ctrun_win_error(GetLastError());
  cmdline = _wcsdup(GetCommandLineW());
  if (cmdline == NULL)
    return UV_ENOMEM;
  if (!CreatePipe(&rd, &wr, &sa, 0)) {
    free(cmdline);
    return ctrun_win_error(GetLastError());
  }
  SetHandleInformation(wr, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
  inherit[n++] = wr;
  /* stdin and stdout: the null device.  stderr: the caller's, so that an
   * error before the start still reaches the user. */
  stdio[0] = open_null(true);
  if (stdio[0] != INVALID_HANDLE_VALUE)
    inherit[n++] = stdio[0];
  else
    stdio[0] = NULL;
  stdio[1] = stdio[0];
  {
    HANDLE e = GetStdHandle(STD_ERROR_HANDLE);
    if (e != NULL && e != INVALID_HANDLE_VALUE &&
        DuplicateHandle(GetCurrentProcess(), e, GetCurrentProcess(), &stdio[2], 0, TRUE,
                        DUPLICATE_SAME_ACCESS))
      inherit[n++] = stdio[2];
    else
      stdio[2] = stdio[0];
  }
  _snwprintf(marker, sizeof marker / sizeof marker[0] - 1, L"%llu:%hs",
             (unsigned long long)(uintptr_t)wr, d->run_id != NULL ? d->run_id : "");
  marker[sizeof marker / sizeof marker[0] - 1] = L'\0';
  /* Set only for the moment of the start, so that the supervisor
   * inherits it with the rest of the environment. */
  SetEnvironmentVariableW(MARKER, marker);
  err = ctrun_win_create_process(self, cmdline,
                                 DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP |
                                   CREATE_UNICODE_ENVIRONMENT,
                                 NULL, stdio, inherit, n, &pi);
  SetEnvironmentVariableW(MARKER, NULL);
  if (err != 0) {
    r = ctrun_win_error(err);
  } else {
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
  }
  CloseHandle(wr);
  if (stdio[0] != NULL)
    CloseHandle(stdio[0]);
  if (stdio[2] != NULL && stdio[2] != stdio[0])
    CloseHandle(stdio[2]);
  free(cmdline);
  if (r != 0) {
    CloseHandle(rd);
    return r;
  }
  d->ready_fd = _open_osfhandle((intptr_t)rd, _O_RDONLY);
  if (d->ready_fd < 0) {
    CloseHandle(rd);
    return UV_EMFILE;
  }
  return 1;
}

void ctrun_detach_ready(struct ctrun_detach *d, int code, bool started, int err_fd) {
  struct report rep = { code, started };
  int fd;
  if (d->ready_fd < 0)
    return;
  _write(d->ready_fd, &rep, sizeof rep);
  /* A supervisor that failed keeps the pipe until it exits, so that the
   * caller, who waits for EOF then, returns only once it is gone. */
  if (!started)
    return;
  _close(d->ready_fd);
  d->ready_fd = -1;
  /* From now on the caller is gone: ctrun's own messages go to the log. */
  fflush(stderr);
  if (err_fd >= 0) {
    _dup2(err_fd, 2);
  } else {
    HANDLE null = open_null(false);
    if (null != INVALID_HANDLE_VALUE && (fd = _open_osfhandle((intptr_t)null, _O_WRONLY)) >= 0) {
      _dup2(fd, 2);
      _close(fd);
    } else if (null != INVALID_HANDLE_VALUE) {
      CloseHandle(null);
    }
  }
  SetStdHandle(STD_ERROR_HANDLE, (HANDLE)_get_osfhandle(2));
}

int ctrun_detach_wait(struct ctrun_detach *d, int *code, bool *started) {
  struct report rep;
  int n = 0, got;
  while (n < (int)sizeof rep && (got = _read(d->ready_fd, (char *)&rep + n, sizeof rep - n)) > 0)
    n += got;
  if (n == (int)sizeof rep && !rep.started) {
    char rest;
    while (_read(d->ready_fd, &rest, 1) > 0)
      ;
  }
  _close(d->ready_fd);
  d->ready_fd = -1;
  if (n != (int)sizeof rep)
    return UV_EPIPE;
  *code = rep.code;
  *started = rep.started != 0;
  return 0;
}
