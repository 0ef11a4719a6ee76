/* End-to-end tests of fleet locks on Windows (here: under Wine), on Redis:
 * ctrun.exe against a real redis-server, Debian's Linux one, which the
 * test starts itself on 127.0.0.1 (Wine runs a Linux program named by its
 * Unix path, and Wine's programs share the host's network).  ctrun.exe
 * and the test child come from CTRUN and CTRUN_CHILD, as for e2e-win.
 *
 * Wine gives no handle to a Linux process: the server's pid comes from
 * its pid file, its state from /proc (through Wine's Z: drive), and
 * /bin/kill stops, wakes and ends it.  It runs under timeout(1), so that a
 * test that dies cannot leave it behind for long.
 *
 * A server that cannot be started here (not under Wine, no redis-server,
 * a ctrun.exe built without Redis locks) skips the whole test (77),
 * saying why; where CTRUN_FLEET_REQUIRED=1 (CI) that fails it instead. */
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

static wchar_t ctrun[MAX_PATH], child[MAX_PATH];

/* ----------------------------------------------------- Linux, from Wine */

typedef char *(CDECL *to_unix_fn)(const WCHAR *);
typedef WCHAR *(CDECL *to_dos_fn)(const char *);
static to_unix_fn to_unix_name;
static to_dos_fn to_dos_name;

/* The Unix path of the Windows path W, into BUF; false if it has none. */
static bool unix_path(const wchar_t *w, char *buf, size_t size) {
  char *u = to_unix_name(w);
  if (u == NULL)
    return false;
  snprintf(buf, size, "%s", u);
  HeapFree(GetProcessHeap(), 0, u);
  return true;
}

/* The Windows path of the Unix path U, into BUF. */
static bool dos_path(const char *u, wchar_t *buf, size_t size) {
  wchar_t *w = to_dos_name(u);
  if (w == NULL)
    return false;
  _snwprintf(buf, size, L"%ls", w);
  HeapFree(GetProcessHeap(), 0, w);
  return true;
}

static bool unix_file_exists(const char *u) {
  wchar_t w[MAX_PATH];
  return dos_path(u, w, MAX_PATH) && GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES;
}

/* Start the Linux program of command line LINE (split as Windows splits
 * it), its standard handles on NUL: nothing of it reaches meson's pipes.
 * Under Wine there is no handle to wait on. */
static bool unix_spawn(const char *line) {
  static char buf[4096];
  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  BOOL ok;
  snprintf(buf, sizeof buf, "%s", line);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = CreateFileA("NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                             OPEN_EXISTING, 0, NULL);
  si.hStdOutput = CreateFileA("NUL", GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                              OPEN_EXISTING, 0, NULL);
  si.hStdError = si.hStdOutput;
  ok = CreateProcessA(NULL, buf, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
  CloseHandle(si.hStdInput);
  CloseHandle(si.hStdOutput);
  if (ok) {
    if (pi.hProcess != NULL)
      CloseHandle(pi.hProcess);
    if (pi.hThread != NULL)
      CloseHandle(pi.hThread);
  }
  return ok;
}

/* The state letter of Linux process PID (/proc/PID/stat), '\0' if gone. */
static char linux_state(int pid) {
  char u[64], text[512], *p;
  wchar_t w[MAX_PATH];
  HANDLE h;
  DWORD n = 0;
  snprintf(u, sizeof u, "/proc/%d/stat", pid);
  if (!dos_path(u, w, MAX_PATH))
    return '\0';
  h = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
  if (h == INVALID_HANDLE_VALUE)
    return '\0';
  ReadFile(h, text, sizeof text - 1, &n, NULL);
  CloseHandle(h);
  text[n] = '\0';
  p = strrchr(text, ')');
  return p != NULL && p[1] == ' ' ? p[2] : '\0';
}

/* ------------------------------------------------------------ the server */

static struct {
  int port, pid; /* pid: Linux's */
  bool stopped;  /* by SIGSTOP */
  wchar_t dir[MAX_PATH];
  char udir[3 * MAX_PATH];
} rs;

static int free_port(void) {
  struct sockaddr_in a;
  int alen = sizeof a, port = 0;
  SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s != INVALID_SOCKET && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(s, (struct sockaddr *)&a, &alen) == 0)
    port = ntohs(a.sin_port);
  closesocket(s);
  return port;
}

/* Send CMD (an inline command) to the server; its reply in REPLY (as
 * much as one read gives: replies here are a few bytes), or false. */
static bool redis_ask(const char *cmd, char *reply, size_t size) {
  struct sockaddr_in a;
  DWORD ms = 2000;
  int n = -1;
  SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  reply[0] = '\0';
  if (s == INVALID_SOCKET)
    return false;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((unsigned short)rs.port);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof ms);
  if (connect(s, (struct sockaddr *)&a, sizeof a) == 0 &&
      send(s, cmd, (int)strlen(cmd), 0) == (int)strlen(cmd))
    n = recv(s, reply, (int)size - 1, 0);
  closesocket(s);
  reply[n > 0 ? n : 0] = '\0';
  return n > 0;
}

/* Send SIG (STOP, CONT, TERM) to the server, and wait until it shows. */
static bool server_signal(const char *sig) {
  char line[100];
  snprintf(line, sizeof line, "/bin/kill -%s %d", sig, rs.pid);
  if (!unix_spawn(line))
    return false;
  for (int i = 0; i < 200; i++) {
    char st = linux_state(rs.pid);
    if (strcmp(sig, "STOP") == 0 ? st == 'T' : strcmp(sig, "CONT") == 0 ? st != 'T' : st == '\0')
      return true;
    Sleep(25);
  }
  return false;
}

/* The log's last lines, for a server that would not start. */
static void log_tail(char *buf, size_t size) {
  static char text[65536];
  wchar_t log[MAX_PATH];
  HANDLE h;
  DWORD n = 0;
  char *p;
  _snwprintf(log, MAX_PATH, L"%ls\\redis.log", rs.dir);
  buf[0] = '\0';
  h = CreateFileW(log, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0,
                  NULL);
  if (h == INVALID_HANDLE_VALUE) {
    snprintf(buf, size, "no log");
    return;
  }
  ReadFile(h, text, sizeof text - 1, &n, NULL);
  CloseHandle(h);
  text[n] = '\0';
  p = n > 400 ? text + n - 400 : text;
  snprintf(buf, size, "%s", p);
}

/* Start redis-server on a free port; false, with WHY, if it cannot run. */
static bool server_start(char *why, size_t size) {
  wchar_t tmp[MAX_PATH], pidfile[MAX_PATH];
  static char line[4 * MAX_PATH + 300];
  char tail[500];
  bool answered = false;

  to_unix_name = (to_unix_fn)(void (*)(void))GetProcAddress(GetModuleHandleW(L"kernel32.dll"),
                                                             "wine_get_unix_file_name");
  to_dos_name = (to_dos_fn)(void (*)(void))GetProcAddress(GetModuleHandleW(L"kernel32.dll"),
                                                           "wine_get_dos_file_name");
  if (to_unix_name == NULL || to_dos_name == NULL) {
    snprintf(why, size, "not under Wine: no Linux redis-server to start");
    return false;
  }
  if (!unix_file_exists("/usr/bin/redis-server")) {
    snprintf(why, size, "no /usr/bin/redis-server (Debian's package redis-server)");
    return false;
  }
  GetTempPathW(MAX_PATH, tmp);
  do
    _snwprintf(rs.dir, MAX_PATH, L"%lsctrun-fleet-%lu-%llu", tmp, GetCurrentProcessId(),
               (unsigned long long)GetTickCount64());
  while (!CreateDirectoryW(rs.dir, NULL) && GetLastError() == ERROR_ALREADY_EXISTS);
  if (!unix_path(rs.dir, rs.udir, sizeof rs.udir)) {
    snprintf(why, size, "no Unix path for %ls", rs.dir);
    return false;
  }
  rs.port = free_port();
  snprintf(line, sizeof line,
           "%s/usr/bin/redis-server --port %d --bind 127.0.0.1 --save \"\" --appendonly no "
           "--daemonize no --dir \"%s\" --pidfile \"%s/redis.pid\" --logfile \"%s/redis.log\"",
           unix_file_exists("/usr/bin/timeout") ? "/usr/bin/timeout 900 " : "", rs.port, rs.udir,
           rs.udir, rs.udir);
  if (!unix_spawn(line)) {
    snprintf(why, size, "cannot start /usr/bin/redis-server (error %lu)", GetLastError());
    return false;
  }
  _snwprintf(pidfile, MAX_PATH, L"%ls\\redis.pid", rs.dir);
  for (int i = 0; i < 400 && (!answered || rs.pid == 0); i++) {
    char reply[64];
    if (!answered)
      answered = redis_ask("PING\r\n", reply, sizeof reply) && strncmp(reply, "+PONG", 5) == 0;
    if (rs.pid == 0) {
      char text[32];
      HANDLE h = CreateFileW(pidfile, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                             OPEN_EXISTING, 0, NULL);
      DWORD n = 0;
      if (h != INVALID_HANDLE_VALUE) {
        ReadFile(h, text, sizeof text - 1, &n, NULL);
        CloseHandle(h);
        text[n] = '\0';
        rs.pid = atoi(text);
      }
    }
    Sleep(50);
  }
  if (!answered || rs.pid == 0) {
    log_tail(tail, sizeof tail);
    snprintf(why, size, "redis-server on port %d: %s within 20s; its log: %s", rs.port,
             answered ? "no pid file" : "no answer", tail);
    if (rs.pid != 0)
      server_signal("TERM");
    rs.pid = 0;
    return false;
  }
  return true;
}

static void server_stop(void) {
  if (rs.pid != 0) {
    if (rs.stopped)
      server_signal("CONT");
    if (!server_signal("TERM"))
      fprintf(stderr, "e2e-win-fleet: redis-server (pid %d) did not end\n", rs.pid);
    rs.pid = 0;
  }
  if (rs.dir[0] != L'\0')
    remove_tree(rs.dir);
}

/* ------------------------------------------------------- running ctrun */

static void env_path(const wchar_t *name, wchar_t *buf) { env_path_of("e2e-win-fleet", name, buf); }

static int setup(void **state) {
  *state = e2e_new(L"ctrun-fleet-e2e");
  return 0;
}

static int teardown(void **state) {
  struct e2e *t = *state;
  if (rs.stopped && server_signal("CONT"))
    rs.stopped = false;
  e2e_free(t);
  return 0;
}

#define RUN(t, ...) run_exe((t), ctrun, (const wchar_t *const[]){ __VA_ARGS__, NULL })
#define START(t, tag, ...) start_exe((t), ctrun, (tag), (const wchar_t *const[]){ __VA_ARGS__, NULL })

static void wait_for_text(const wchar_t *file, const char *text, double secs) {
  char buf[4096];
  for (double waited = 0; waited < secs; waited += 0.05) {
    read_file(file, buf, sizeof buf, NULL);
    if (strstr(buf, text) != NULL)
      return;
    Sleep(50);
  }
  fail_msg("'%s' never appeared in %ls", text, file);
}

static bool exists(const wchar_t *path) { return GetFileAttributesW(path) != INVALID_FILE_ATTRIBUTES; }

/* The lock URL of KEY on the test's server. */
static const wchar_t *url(const wchar_t *key) {
  static wchar_t u[4][200];
  static int i;
  wchar_t *p = u[i++ % 4];
  _snwprintf(p, 200, L"redis://127.0.0.1:%d/%ls", rs.port, key);
  return p;
}

/* CTRUN_LOCK_TOKEN from an env-dump of the test child, or -1. */
static long long token_in(const wchar_t *dump) {
  static char text[65536];
  char *at;
  read_file(dump, text, sizeof text, NULL);
  at = strstr(text, "\nCTRUN_LOCK_TOKEN=");
  if (at == NULL && strncmp(text, "CTRUN_LOCK_TOKEN=", 17) == 0)
    at = text - 1;
  return at == NULL ? -1 : strtoll(at + 18, NULL, 10);
}

/* ------------------------------------------------------------- tests */

/* The lock is taken, its fencing token reaches the command and rises at
 * the next taking; the lock is released at the end, the token counter
 * ("KEY:fence") kept. */
static void the_lock_is_taken_with_a_token(void **state) {
  struct e2e *t = *state;
  const wchar_t *dump = path_in(t, L"env.txt");
  char reply[64], want[64];
  long long first, second;

  assert_int_equal(RUN(t, L"-l", url(L"win-token"), L"--", child, L"env-dump", dump), 0);
  assert_string_equal(t->err, "");
  first = token_in(dump);
  if (first < 1)
    fail_msg("no CTRUN_LOCK_TOKEN in the command's environment");
  assert_int_equal(RUN(t, L"-l", url(L"win-token"), L"--", child, L"env-dump", dump), 0);
  second = token_in(dump);
  if (second <= first)
    fail_msg("the token did not rise: %lld, then %lld", first, second);
  assert_true(redis_ask("GET win-token\r\n", reply, sizeof reply));
  assert_string_equal(reply, "$-1\r\n");
  assert_true(redis_ask("GET win-token:fence\r\n", reply, sizeof reply));
  snprintf(want, sizeof want, "%lld\r\n", second);
  assert_non_null(strstr(reply, want));
}

/* While one run holds the lock, another on the same key exits 75 naming
 * the holder (its name, its pid) and runs nothing; once the holder is
 * done, it gets the lock. */
static void a_second_run_is_busy(void **state) {
  struct e2e *t = *state;
  const wchar_t *held = path_in(t, L"held"), *ran = path_in(t, L"ran");
  char pid[40];
  HANDLE a;

  a = START(t, L"holder", L"-n", L"holder", L"-l", url(L"win-busy"), L"--", child, L"append", held,
            L"x", L"sleep", L"4");
  wait_for_text(held, "x", 20);
  assert_int_equal(RUN(t, L"-l", url(L"win-busy"), L"--", child, L"append", ran, L"y"), 75);
  assert_false(exists(ran));
  assert_non_null(strstr(t->err, "redis://127.0.0.1:"));
  assert_non_null(strstr(t->err, "/win-busy' is held by run "));
  assert_non_null(strstr(t->err, "(holder)"));
  snprintf(pid, sizeof pid, "pid %lu,", GetProcessId(a));
  if (strstr(t->err, pid) == NULL)
    fail_msg("the holder's %s is not named: %s", pid, t->err);
  assert_int_equal(finish(a, 30), 0);
  assert_int_equal(RUN(t, L"-l", url(L"win-busy"), L"--", child, L"append", ran, L"y"), 0);
  wait_for_text(ran, "y", 1);
}

/* No server at the port: --lock-unavailable=skip exits 0 and runs
 * nothing; without it, 75 naming the lock and the error. */
static void an_unreachable_server(void **state) {
  struct e2e *t = *state;
  const wchar_t *ran = path_in(t, L"ran");
  wchar_t u[100];

  _snwprintf(u, 100, L"redis://127.0.0.1:%d/win-gone", free_port());
  assert_int_equal(RUN(t, L"--lock-unavailable=skip", L"-l", u, L"--", child, L"append", ran, L"y"),
                   0);
  assert_false(exists(ran));
  assert_int_equal(RUN(t, L"-l", u, L"--", child, L"append", ran, L"y"), 75);
  assert_false(exists(ran));
  assert_non_null(strstr(t->err, "/win-gone' is unavailable: redis: connection: "));
}

/* The server stops answering (SIGSTOP): with a 3 s lease, the tree is
 * killed before the lease can run out on the server, and ctrun exits 124
 * with reason lock-lost. */
static void a_stopped_server_kills_the_tree(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids"), *report = path_in(t, L"report.json");
  static char text[8192];
  ULONGLONG stop, died;
  HANDLE a, c;

  a = START(t, L"holder", L"--lock-ttl", L"3s", L"--report", report, L"-l", url(L"win-lost"), L"--",
            child, L"pidfile", pids, L"sleep", L"60");
  wait_for_text(pids, "\n", 20);
  read_file(pids, text, sizeof text, NULL);
  c = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)strtoul(text, NULL, 10));
  assert_non_null(c);
  Sleep(500); /* a renewal or so */
  stop = GetTickCount64();
  rs.stopped = true;
  assert_true(server_signal("STOP"));
  if (WaitForSingleObject(c, 10000) != WAIT_OBJECT_0)
    fail_msg("the command still runs 10s after the server stopped");
  died = GetTickCount64();
  CloseHandle(c);
  if (died - stop >= 3000)
    fail_msg("the command ran %.3fs after the server stopped, past its 3s lease",
             (double)(died - stop) / 1000);
  print_message("the command died %.3fs after the server stopped\n", (double)(died - stop) / 1000);
  assert_int_equal(finish(a, 30), 124);
  outputs(t, L"holder");
  assert_non_null(strstr(t->err, "/win-lost' lost: no renewal confirmed for "));
  read_file(report, text, sizeof text, NULL);
  assert_non_null(strstr(text, "\"reason\":\"lock-lost\""));
  assert_true(server_signal("CONT"));
  rs.stopped = false;
}

int main(void) {
  WSADATA wsa;
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(the_lock_is_taken_with_a_token, setup, teardown),
    cmocka_unit_test_setup_teardown(a_second_run_is_busy, setup, teardown),
    cmocka_unit_test_setup_teardown(an_unreachable_server, setup, teardown),
    cmocka_unit_test_setup_teardown(a_stopped_server_kills_the_tree, setup, teardown),
  };
  const char *built = getenv("CTRUN_FLEET_BUILT"), *required = getenv("CTRUN_FLEET_REQUIRED");
  char why[1000];
  int rc;

  env_path(L"CTRUN", ctrun);
  env_path(L"CTRUN_CHILD", child);
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
    return 1;
  if (built == NULL || strstr(built, "redis") == NULL)
    snprintf(why, sizeof why, "this ctrun.exe was built without Redis locks");
  else if (server_start(why, sizeof why))
    why[0] = '\0';
  if (why[0] != '\0') {
    server_stop();
    if (required != NULL && strcmp(required, "1") == 0) {
      fprintf(stderr, "e2e-win-fleet: FAILED: %s (CTRUN_FLEET_REQUIRED=1)\n", why);
      return 1;
    }
    fprintf(stderr, "e2e-win-fleet: skipped: %s\n", why);
    return 77;
  }
  rc = cmocka_run_group_tests_name("e2e-win-fleet", tests, NULL, NULL);
  server_stop();
  return rc;
}
