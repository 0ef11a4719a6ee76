/* The Windows part of --ping: one HTTP request through WinHTTP (when built
 * with it: CTRUN_HTTP_WINHTTP), and the files a ping reads.  WinHTTP uses
 * the system's certificate store and its own proxy setting (netsh winhttp
 * set proxy). */
#include "ctrun/ping.h"

#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <windows.h>
#include <winerror.h>

#ifdef CTRUN_HTTP_WINHTTP
#include <winhttp.h>
#endif

#include "internal.h"

static wchar_t *wide_path(const char *path) {
  wchar_t *w = ctrun_win_wide(path);
  for (wchar_t *p = w; p != NULL && *p; p++)
    if (*p == L'/')
      *p = L'\\';
  return w;
}

int ctrun_ping_os_open(const char *path) {
  wchar_t *w = wide_path(path);
  BY_HANDLE_FILE_INFORMATION info;
  HANDLE h;
  int fd;

  if (w == NULL)
    return UV_EINVAL;
  /* Never through a reparse point (a link), as -o itself. */
  h = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT, NULL);
  free(w);
  if (h == INVALID_HANDLE_VALUE)
    return ctrun_win_error(GetLastError());
  if (GetFileType(h) != FILE_TYPE_DISK || !GetFileInformationByHandle(h, &info) ||
      (info.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT))) {
    CloseHandle(h);
    return UV_EINVAL;
  }
  fd = _open_osfhandle((intptr_t)h, _O_RDONLY | _O_BINARY);
  if (fd < 0) {
    CloseHandle(h);
    return UV_EMFILE;
  }
  return fd;
}

int ctrun_ping_os_read_small(const char *path, char *buf, size_t size) {
  wchar_t *w = wide_path(path);
  DWORD a, got = 0, n;
  HANDLE h;
  int e = 0;

  if (w == NULL)
    return UV_EINVAL;
  a = GetFileAttributesW(w);
  if (a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY)) {
    free(w);
    return UV_EISDIR;
  }
  h = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  OPEN_EXISTING, 0, NULL);
  free(w);
  if (h == INVALID_HANDLE_VALUE)
    return ctrun_win_error(GetLastError());
  if (GetFileType(h) != FILE_TYPE_DISK && GetFileType(h) != FILE_TYPE_PIPE) {
    CloseHandle(h);
    return UV_EINVAL;
  }
  while (got + 1 < size) {
    if (!ReadFile(h, buf + got, (DWORD)(size - 1 - got), &n, NULL)) {
      DWORD err = GetLastError();
      if (err != ERROR_BROKEN_PIPE && err != ERROR_HANDLE_EOF)
        e = ctrun_win_error(err);
      break;
    }
    if (n == 0)
      break;
    got += n;
    if (memchr(buf + got - n, '\n', n) != NULL)
      break;
  }
  CloseHandle(h);
  buf[got] = '\0';
  return e;
}

int ctrun_ping_os_tail(int fd, char *buf, size_t max, size_t *len) {
  HANDLE h = (HANDLE)_get_osfhandle(fd);
  LARGE_INTEGER size;
  uint64_t from;
  size_t got = 0;

  *len = 0;
  if (h == INVALID_HANDLE_VALUE || GetFileType(h) != FILE_TYPE_DISK)
    return UV_EINVAL;
  if (!GetFileSizeEx(h, &size))
    return ctrun_win_error(GetLastError());
  from = (uint64_t)size.QuadPart > max ? (uint64_t)size.QuadPart - max : 0;
  while (got < max) {
    OVERLAPPED ov;
    DWORD n = 0;
    uint64_t at = from + got;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)at;
    ov.OffsetHigh = (DWORD)(at >> 32);
    /* At an offset, whether the handle is overlapped or not. */
    if (!ReadFile(h, buf + got, (DWORD)(max - got), &n, &ov)) {
      DWORD err = GetLastError();
      if (err == ERROR_IO_PENDING)
        err = GetOverlappedResult(h, &ov, &n, TRUE) ? 0 : GetLastError();
      if (err == ERROR_HANDLE_EOF)
        break;
      if (err != 0)
        return ctrun_win_error(err);
    }
    if (n == 0)
      break;
    got += n;
  }
  *len = got;
  return 0;
}

#ifdef CTRUN_HTTP_WINHTTP

bool ctrun_http_available(void) { return true; }

int ctrun_http_init(void) { return 0; }

static void say_error(DWORD e, uint64_t timeout_ms, char *why, size_t whylen) {
  switch (e) {
  case ERROR_WINHTTP_TIMEOUT:
  case WSAETIMEDOUT: /* what Wine's WinHTTP says */
    snprintf(why, whylen, "no answer within %llus", (unsigned long long)(timeout_ms / 1000));
    break;
  case ERROR_WINHTTP_CANNOT_CONNECT: snprintf(why, whylen, "cannot connect to the server"); break;
  case ERROR_WINHTTP_NAME_NOT_RESOLVED: snprintf(why, whylen, "cannot resolve the host"); break;
  case ERROR_WINHTTP_CONNECTION_ERROR: snprintf(why, whylen, "the connection was reset"); break;
  case ERROR_WINHTTP_SECURE_FAILURE: case ERROR_WINHTTP_SECURE_CHANNEL_ERROR:
  case ERROR_WINHTTP_SECURE_INVALID_CA: case ERROR_WINHTTP_SECURE_CERT_CN_INVALID:
  case ERROR_WINHTTP_SECURE_CERT_DATE_INVALID:
    snprintf(why, whylen, "TLS: the server's certificate is not trusted, or the handshake failed "
                          "(WinHTTP error %lu)", (unsigned long)e);
    break;
  case ERROR_WINHTTP_INVALID_SERVER_RESPONSE:
    snprintf(why, whylen, "the server's answer is not HTTP");
    break;
  default: snprintf(why, whylen, "WinHTTP error %lu", (unsigned long)e); break;
  }
}

/* What is left of the try's time, for the next step's timeouts. */
static int remaining(uint64_t until) {
  uint64_t now = uv_hrtime() / 1000000u;
  return now >= until ? 1 : (int)(until - now);
}

static void set_timeouts(HINTERNET h, uint64_t until) {
  int t = remaining(until);
  DWORD d = (DWORD)t;
  WinHttpSetTimeouts(h, t, t, t, t);
  /* Waiting for the answer's headers has a timeout of its own (90 s by
   * default), which the receive timeout above does not shorten. */
  WinHttpSetOption(h, WINHTTP_OPTION_RECEIVE_RESPONSE_TIMEOUT, &d, sizeof d);
}

enum ctrun_http_result ctrun_http_send(const char *url, const char *body, size_t len,
                                       uint64_t timeout_ms, char *why, size_t whylen) {
  static const wchar_t agent[] = L"ctrun/" CTRUN_VERSION;
  uint64_t until = uv_hrtime() / 1000000u + timeout_ms;
  HINTERNET s = NULL, c = NULL, r = NULL;
  enum ctrun_http_result res = CTRUN_HTTP_RETRY;
  URL_COMPONENTS u;
  wchar_t *w = ctrun_win_wide(url), host[256], path[CTRUN_PING_URL_MAX + 64];
  DWORD status = 0, size = sizeof status, e = 0;

  if (w == NULL) {
    snprintf(why, whylen, "the URL is not valid UTF-8");
    return CTRUN_HTTP_FAIL;
  }
  memset(&u, 0, sizeof u);
  u.dwStructSize = sizeof u;
  u.lpszHostName = host;
  u.dwHostNameLength = sizeof host / sizeof host[0];
  u.lpszUrlPath = path;
  u.dwUrlPathLength = sizeof path / sizeof path[0];
  if (!WinHttpCrackUrl(w, 0, 0, &u)) {
    free(w);
    snprintf(why, whylen, "WinHTTP cannot read the URL (error %lu)", (unsigned long)GetLastError());
    return CTRUN_HTTP_FAIL;
  }
  free(w);
  /* The query comes with the path: WinHttpCrackUrl puts it in the path
   * when no separate buffer for it is given. */
  s = WinHttpOpen(agent, WINHTTP_ACCESS_TYPE_DEFAULT_PROXY, WINHTTP_NO_PROXY_NAME,
                  WINHTTP_NO_PROXY_BYPASS, 0);
  if (s != NULL) {
    set_timeouts(s, until);
    c = WinHttpConnect(s, host, u.nPort, 0);
  }
  if (c != NULL)
    r = WinHttpOpenRequest(c, body != NULL ? L"POST" : L"GET", path, NULL, WINHTTP_NO_REFERER,
                           WINHTTP_DEFAULT_ACCEPT_TYPES,
                           u.nScheme == INTERNET_SCHEME_HTTPS ? WINHTTP_FLAG_SECURE : 0);
  if (r != NULL) {
    DWORD off = WINHTTP_DISABLE_REDIRECTS;
    WinHttpSetOption(r, WINHTTP_OPTION_DISABLE_FEATURE, &off, sizeof off);
    set_timeouts(r, until);
    if (WinHttpSendRequest(r,
                           body != NULL ? L"Content-Type: text/plain; charset=utf-8\r\n"
                                        : WINHTTP_NO_ADDITIONAL_HEADERS,
                           body != NULL ? (DWORD)-1L : 0, (void *)body, (DWORD)len, (DWORD)len, 0)) {
      set_timeouts(r, until);
      if (WinHttpReceiveResponse(r, NULL) &&
          WinHttpQueryHeaders(r, WINHTTP_QUERY_STATUS_CODE | WINHTTP_QUERY_FLAG_NUMBER,
                              WINHTTP_HEADER_NAME_BY_INDEX, &status, &size,
                              WINHTTP_NO_HEADER_INDEX)) {
        if (status >= 200 && status < 300) {
          res = CTRUN_HTTP_OK;
        } else {
          snprintf(why, whylen, "HTTP %lu", (unsigned long)status);
          res = status == 408 || status == 429 || status >= 500 ? CTRUN_HTTP_RETRY
                                                                 : CTRUN_HTTP_FAIL;
        }
      }
    }
  }
  if (res != CTRUN_HTTP_OK && status == 0) {
    e = GetLastError();
    say_error(e, timeout_ms, why, whylen);
    if (e == ERROR_WINHTTP_SECURE_FAILURE || e == ERROR_WINHTTP_SECURE_CHANNEL_ERROR ||
        e == ERROR_WINHTTP_SECURE_INVALID_CA || e == ERROR_WINHTTP_SECURE_CERT_CN_INVALID ||
        e == ERROR_WINHTTP_SECURE_CERT_DATE_INVALID || e == ERROR_WINHTTP_UNRECOGNIZED_SCHEME ||
        e == ERROR_WINHTTP_INVALID_URL)
      res = CTRUN_HTTP_FAIL;
  }
  if (r != NULL)
    WinHttpCloseHandle(r);
  if (c != NULL)
    WinHttpCloseHandle(c);
  if (s != NULL)
    WinHttpCloseHandle(s);
  return res;
}

#endif
