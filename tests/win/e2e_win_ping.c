/* End-to-end tests of --ping on Windows (here: under Wine), through
 * WinHTTP, against a recording HTTP server of the test's own: a thread
 * that listens on 127.0.0.1 and keeps each request (method, path with
 * query, body).  ctrun.exe, ctrunw.exe and the test child come from
 * CTRUN, CTRUNW and CTRUN_CHILD, as for e2e-win.
 *
 * Not here, and why: HTTPS (WinHTTP trusts the system's certificate
 * store; a test CA would have to be added to it), and a server that
 * answers after 30 s (the tries' bound: ~42 s, measured by hand under
 * Wine 8.0, where the timeout comes back as WSAETIMEDOUT; e2e-ping covers
 * both on Linux). */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <cmocka.h>

#include "e2e.h"

static wchar_t ctrun[MAX_PATH], ctrunw[MAX_PATH], child[MAX_PATH];

/* ------------------------------------------------------ the HTTP server */

struct req {
  char method[8];
  char path[1024];
  char *body;
  size_t len;
};

static struct {
  SOCKET listener;
  HANDLE thread;
  int port;
  int status; /* what it answers */
  CRITICAL_SECTION lock;
  struct req reqs[32];
  int n;
} srv;

/* Read one request from S: headers, then Content-Length bytes of body. */
static bool read_request(SOCKET s, struct req *r) {
  static char buf[65536];
  size_t got = 0, len = 0;
  char *end = NULL, *cl;
  memset(r, 0, sizeof *r);
  while (end == NULL) {
    int n = recv(s, buf + got, (int)(sizeof buf - 1 - got), 0);
    if (n <= 0)
      return false;
    got += (size_t)n;
    buf[got] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  if (sscanf(buf, "%7s %1023s", r->method, r->path) != 2)
    return false;
  for (cl = buf; cl < end; cl++)
    if (_strnicmp(cl, "\r\nContent-Length:", 17) == 0)
      len = strtoul(cl + 17, NULL, 10);
  r->body = calloc(1, len + 1);
  r->len = got - (size_t)(end + 4 - buf);
  if (r->len > len)
    r->len = len;
  memcpy(r->body, end + 4, r->len);
  while (r->len < len) {
    int n = recv(s, r->body + r->len, (int)(len - r->len), 0);
    if (n <= 0)
      break;
    r->len += (size_t)n;
  }
  return true;
}

static DWORD WINAPI serve(void *arg) {
  (void)arg;
  for (;;) {
    struct req r;
    char answer[200];
    SOCKET s = accept(srv.listener, NULL, NULL);
    if (s == INVALID_SOCKET)
      return 0; /* closed: the test is over */
    if (read_request(s, &r)) {
      EnterCriticalSection(&srv.lock);
      if (srv.n < 32)
        srv.reqs[srv.n++] = r;
      else
        free(r.body);
      LeaveCriticalSection(&srv.lock);
      snprintf(answer, sizeof answer,
               "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK", srv.status);
      send(s, answer, (int)strlen(answer), 0);
    }
    shutdown(s, SD_SEND);
    closesocket(s);
  }
}

static void server_start(int status) {
  struct sockaddr_in a;
  int alen = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  srv.listener = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  assert_true(srv.listener != INVALID_SOCKET);
  assert_int_equal(bind(srv.listener, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(srv.listener, (struct sockaddr *)&a, &alen), 0);
  assert_int_equal(listen(srv.listener, 16), 0);
  srv.port = ntohs(a.sin_port);
  srv.status = status;
  srv.n = 0;
  srv.thread = CreateThread(NULL, 0, serve, NULL, 0, NULL);
  assert_non_null(srv.thread);
}

static void server_stop(void) {
  if (srv.thread == NULL)
    return;
  closesocket(srv.listener);
  WaitForSingleObject(srv.thread, 10000);
  CloseHandle(srv.thread);
  srv.thread = NULL;
  for (int i = 0; i < srv.n; i++)
    free(srv.reqs[i].body);
  srv.n = 0;
}

static int requests(void) {
  int n;
  EnterCriticalSection(&srv.lock);
  n = srv.n;
  LeaveCriticalSection(&srv.lock);
  return n;
}

/* ------------------------------------------------------- running ctrun */

static void env_path(const wchar_t *name, wchar_t *buf) { env_path_of("e2e-win-ping", name, buf); }

static int setup(void **state) {
  *state = e2e_new(L"ctrun-ping");
  return 0;
}

static int teardown(void **state) {
  struct e2e *t = *state;
  server_stop();
  e2e_free(t);
  return 0;
}

#define RUN(t, ...) run_exe((t), ctrun, (const wchar_t *const[]){ __VA_ARGS__, NULL })

/* The ping URL of the server: a secret path, as healthchecks gives. */
static const wchar_t *url(void) {
  static wchar_t u[100];
  _snwprintf(u, 100, L"http://127.0.0.1:%d/s3cr3t-uuid", srv.port);
  return u;
}

static void report_rid(const wchar_t *report, char rid[37]) {
  char text[8192], *at;
  read_file(report, text, sizeof text, NULL);
  at = strstr(text, "\"rid\":\"");
  assert_non_null(at);
  snprintf(rid, 37, "%.36s", at + 7);
}

static void expect(int i, const char *method, const char *path) {
  struct req *r = &srv.reqs[i];
  if (strcmp(r->method, method) != 0 || strcmp(r->path, path) != 0)
    fail_msg("request %d: %s %s, not %s %s", i, r->method, r->path, method, path);
}

/* ------------------------------------------------------------- tests */

/* start, then success, with the report's rid; from ctrun.exe and from
 * ctrunw.exe (Task Scheduler's), whose failures would go nowhere. */
static void start_then_success(void **state) {
  struct e2e *t = *state;
  const wchar_t *report = path_in(t, L"report.json");
  char rid[37], want[300];

  server_start(200);
  assert_int_equal(RUN(t, L"--ping", url(), L"--report", report, L"--", child, L"exit", L"0"), 0);
  assert_string_equal(t->err, "");
  report_rid(report, rid);
  assert_int_equal(requests(), 2);
  snprintf(want, sizeof want, "/s3cr3t-uuid/start?rid=%s", rid);
  expect(0, "GET", want);
  snprintf(want, sizeof want, "/s3cr3t-uuid?rid=%s", rid);
  expect(1, "GET", want);

  assert_int_equal(run_exe(t, ctrunw,
                           (const wchar_t *const[]){ L"--ping", url(), L"--report", report, L"--",
                                                     child, L"exit", L"3", NULL }),
                   3);
  report_rid(report, rid);
  assert_int_equal(requests(), 4);
  snprintf(want, sizeof want, "/s3cr3t-uuid/start?rid=%s", rid);
  expect(2, "GET", want);
  snprintf(want, sizeof want, "/s3cr3t-uuid/3?rid=%s", rid);
  expect(3, "GET", want);
}

/* The end ping's body is the tail of the log: this run's part of it. */
static void the_body_is_the_log(void **state) {
  struct e2e *t = *state;
  const wchar_t *log = path_in(t, L"job.log");
  static char text[65536];
  DWORD len;

  server_start(200);
  assert_int_equal(RUN(t, L"--ping", url(), L"-o", log, L"--", child, L"out", L"first", L"exit",
                       L"0"),
                   0);
  assert_int_equal(RUN(t, L"--ping", url(), L"-o", log, L"-t", L"1s", L"--", child, L"out",
                       L"second", L"sleep", L"30"),
                   124);
  assert_int_equal(requests(), 4);
  assert_string_equal(srv.reqs[3].method, "POST");
  assert_non_null(strstr(srv.reqs[3].path, "/s3cr3t-uuid/fail?rid="));
  read_file(log, text, sizeof text, &len);
  assert_true(srv.reqs[3].len > 0 && srv.reqs[3].len < len);
  assert_memory_equal(srv.reqs[3].body, text + len - srv.reqs[3].len, srv.reqs[3].len);
  assert_non_null(strstr(srv.reqs[3].body, "second"));
  assert_null(strstr(srv.reqs[3].body, "first"));
}

/* A 500 and a refused connection: the status stands; a line each on
 * stderr, naming the server and not the secret path. */
static void failed_pings_change_nothing(void **state) {
  struct e2e *t = *state;
  char shown[100];
  int port;

  server_start(500);
  assert_int_equal(RUN(t, L"--ping", url(), L"--", child, L"exit", L"4"), 4);
  snprintf(shown, sizeof shown, "ping http://127.0.0.1:%d failed: HTTP 500", srv.port);
  assert_non_null(strstr(t->err, shown));
  assert_non_null(strstr(t->err, "(failure ping, 3 tries)"));
  assert_null(strstr(t->err, "s3cr3t"));
  port = srv.port;
  server_stop();
  /* Nothing listens there now. */
  wchar_t u[100];
  _snwprintf(u, 100, L"http://127.0.0.1:%d/s3cr3t-uuid", port);
  assert_int_equal(RUN(t, L"--ping", u, L"--", child, L"exit", L"0"), 0);
  snprintf(shown, sizeof shown, "ping http://127.0.0.1:%d failed: ", port);
  assert_non_null(strstr(t->err, shown));
  assert_null(strstr(t->err, "s3cr3t"));
}

/* --ping-file, and the refusals before anything runs. */
static void ping_file(void **state) {
  struct e2e *t = *state;
  const wchar_t *file = path_in(t, L"hc.url");
  char text[200];
  HANDLE h;
  DWORD n;

  server_start(200);
  snprintf(text, sizeof text, " %ls \r\n", url());
  h = CreateFileW(file, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
  WriteFile(h, text, (DWORD)strlen(text), &n, NULL);
  CloseHandle(h);
  assert_int_equal(RUN(t, L"--ping-file", file, L"--", child, L"exit", L"0"), 0);
  assert_int_equal(requests(), 2);
  assert_non_null(strstr(srv.reqs[1].path, "/s3cr3t-uuid?rid="));
  assert_int_equal(RUN(t, L"--ping-file", path_in(t, L"missing"), L"--", child, L"out", L"ran"),
                   125);
  assert_null(strstr(t->out, "ran"));
  assert_non_null(strstr(t->err, "cannot read --ping-file"));
  assert_int_equal(RUN(t, L"--ping", L"ftp://host/x", L"--", child, L"out", L"ran"), 125);
  assert_null(strstr(t->out, "ran"));
  assert_int_equal(requests(), 2);
}

int main(void) {
  WSADATA wsa;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(start_then_success, setup, teardown),
    cmocka_unit_test_setup_teardown(the_body_is_the_log, setup, teardown),
    cmocka_unit_test_setup_teardown(failed_pings_change_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(ping_file, setup, teardown),
  };
  env_path(L"CTRUN", ctrun);
  env_path(L"CTRUNW", ctrunw);
  env_path(L"CTRUN_CHILD", child);
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
    return 1;
  InitializeCriticalSection(&srv.lock);
  return cmocka_run_group_tests_name("e2e-win-ping", tests, NULL, NULL);
}
