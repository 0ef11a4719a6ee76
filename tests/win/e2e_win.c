/* End-to-end tests of ctrun.exe and ctrunw.exe on Windows (here: under
 * Wine).  The binaries come from the environment: CTRUN, CTRUNW and
 * CTRUN_CHILD (ctrun-child-win.exe, whose scripts are described in
 * child_win.c).  Each test has a scratch directory and a state directory
 * of its own; every process a test starts writes its pid to a file, and
 * the test checks afterwards that each one is gone. */
#include <windows.h>
#include <aclapi.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <cmocka.h>

#include "e2e.h"

static wchar_t ctrun[MAX_PATH], ctrunw[MAX_PATH], child[MAX_PATH];

static void env_path(const wchar_t *name, wchar_t *buf) { env_path_of("e2e-win", name, buf); }

static int setup(void **state) {
  struct e2e *t = e2e_new(L"ctrun-e2e");
  wchar_t pids[MAX_PATH];
  /* Every test child started from now on lists itself here. */
  _snwprintf(pids, MAX_PATH, L"%ls\\all-pids", t->dir);
  SetEnvironmentVariableW(L"CTRUN_TEST_PIDS", pids);
  *state = t;
  return 0;
}

static int alive(const wchar_t *file, int *listed);

/* Fails the test if any test child it started is still running. */
static int teardown(void **state) {
  struct e2e *t = *state;
  wchar_t all[MAX_PATH];
  int listed, left;
  _snwprintf(all, MAX_PATH, L"%ls\\all-pids", t->dir);
  left = alive(all, &listed);
  if (left > 0)
    fprintf(stderr, "LEFT BEHIND: %d of %d test processes still running\n", left, listed);
  e2e_free(t);
  return left > 0 ? -1 : 0;
}

#define RUN(t, ...) run_exe((t), ctrun, (const wchar_t *const[]){ __VA_ARGS__, NULL })
#define START(t, tag, ...) start_exe((t), ctrun, (tag), (const wchar_t *const[]){ __VA_ARGS__, NULL })

/* How many of the pids listed in FILE still run. */
static int alive(const wchar_t *file, int *listed) {
  char text[4096], *s, *end;
  int n = 0;
  read_file(file, text, sizeof text, NULL);
  *listed = 0;
  for (s = text;; s = end) {
    DWORD code = 0;
    unsigned long pid = strtoul(s, &end, 10);
    HANDLE h;
    if (end == s)
      break;
    ++*listed;
    h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (h == NULL)
      continue;
    if (GetExitCodeProcess(h, &code) && code == STILL_ACTIVE)
      n++;
    CloseHandle(h);
  }
  return n;
}

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

/* How many lines FILE has. */
static int count_lines(const wchar_t *file) {
  char buf[8192];
  int n = 0;
  read_file(file, buf, sizeof buf, NULL);
  for (char *s = buf; (s = strchr(s, '\n')) != NULL; s++)
    n++;
  return n;
}

static void wait_for_lines(const wchar_t *file, int n, double secs) {
  for (double waited = 0; waited < secs; waited += 0.05) {
    if (count_lines(file) >= n)
      return;
    Sleep(50);
  }
  fail_msg("%ls never had %d lines", file, n);
}

static bool file_has(const wchar_t *file, const char *text) {
  static char buf[65536];
  read_file(file, buf, sizeof buf, NULL);
  return strstr(buf, text) != NULL;
}

static void exit_codes(void **state) {
  struct e2e *t = *state;
  assert_int_equal(RUN(t, L"--", child, L"exit", L"7"), 7);
  assert_int_equal(RUN(t, L"--", child, L"out", L"hello", L"exit", L"0"), 0);
  assert_non_null(strstr(t->out, "hello"));
  assert_int_equal(run_exe(t, ctrunw, (const wchar_t *const[]){ L"--", child, L"exit", L"5", NULL }),
                   5);
  /* --quiet-success holds the output in a private temporary file. */
  assert_int_equal(RUN(t, L"--quiet-success", L"--", child, L"out", L"hidden", L"exit", L"0"), 0);
  assert_null(strstr(t->out, "hidden"));
  assert_int_equal(RUN(t, L"--quiet-success", L"--", child, L"out", L"shown", L"exit", L"3"), 3);
  assert_non_null(strstr(t->out, "shown"));
}

static void not_found_and_not_executable(void **state) {
  struct e2e *t = *state;
  HANDLE h;
  DWORD n;
  assert_int_equal(RUN(t, L"--", L"ctrun-no-such-program"), 127);
  assert_non_null(strstr(t->err, "ctrun-no-such-program"));
  /* Found, but not a program. */
  h = CreateFileW(path_in(t, L"text.exe"), GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
  WriteFile(h, "not a program\r\n", 15, &n, NULL);
  CloseHandle(h);
  assert_int_equal(RUN(t, L"--", path_in(t, L"text.exe")), 126);
  assert_int_equal(RUN(t, L"-t", L"1x", L"--", child), 125);
}

/* The whole tree dies on timeout, also grandchildren that tried to break
 * away from the job or started detached, and one that ignores CTRL_BREAK. */
static void timeout_kills_the_tree(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  int listed;
  DWORD t0 = GetTickCount();
  assert_int_equal(RUN(t, L"-t", L"1s", L"-k", L"1s", L"--", child, L"ignore-break", L"pidfile", pids,
                       L"spawn", L"breakaway", pids, L"spawn", L"detached", pids, L"spawn",
                       L"plain", pids, L"out", L"ready", L"sleep", L"300"),
                   124);
  assert_true(GetTickCount() - t0 < 30000);
  assert_non_null(strstr(t->out, "ready"));
  assert_non_null(strstr(t->out, "breakaway refused"));
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(listed, 4);
}

/* The command exits; what it started is killed, and its code stays. */
static void leftovers_are_killed(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  int listed;
  assert_int_equal(RUN(t, L"-k", L"500ms", L"--", child, L"spawn", L"plain", pids, L"spawn",
                       L"detached", pids, L"exit", L"3"),
                   3);
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(listed, 2);
}

/* ps and check count every process of the tree (five here), not only the
 * first one the job lists. */
static void every_process_is_counted(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  int listed;
  HANDLE h = START(t, L"tree", L"-n", L"tree", L"-t", L"60s", L"-k", L"1s", L"--", child, L"spawn",
                   L"plain", pids, L"spawn", L"plain", pids, L"spawn", L"plain", pids, L"spawn",
                   L"plain", pids, L"pidfile", pids, L"sleep", L"300");
  wait_for_lines(pids, 5, 20);
  assert_int_equal(RUN(t, L"ps", L"--json"), 0);
  assert_non_null(strstr(t->out, "\"procs\":5}"));
  assert_int_equal(RUN(t, L"check", L"--warn", L"3"), 1);
  assert_non_null(strstr(t->out, "CTRUN WARNING - 1 runs, 5 processes"));
  assert_int_equal(RUN(t, L"stop", L"tree"), 0);
  assert_int_equal(finish(h, 30), 124);
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(listed, 5);
}

/* --leftovers wait: ctrun returns when the last process of the tree has
 * ended by itself, not when the command has. */
static void leftovers_wait_for_the_last_process(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids"), *done = path_in(t, L"done");
  wchar_t script[2 * MAX_PATH];
  DWORD t0 = GetTickCount();
  _snwprintf(script, 2 * MAX_PATH, L"sleep 1.5 append \"%ls\" finished", done);
  assert_int_equal(RUN(t, L"--leftovers", L"wait", L"--", child, L"spawn-with", L"plain", pids, script,
                       L"exit", L"0"),
                   0);
  assert_true(GetTickCount() - t0 >= 1400);
  assert_true(file_has(done, "finished"));
}

/* The report counts the leftovers ctrun stopped and the most processes it
 * saw. */
static void leftovers_are_counted_in_the_report(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids"), *report = path_in(t, L"report.json");
  int listed;
  assert_int_equal(RUN(t, L"-k", L"1s", L"--report", report, L"--", child, L"spawn", L"plain", pids,
                       L"spawn", L"plain", pids, L"sleep", L"1", L"exit", L"0"),
                   0);
  if (!file_has(report, "\"leftovers_killed\":2,") || !file_has(report, "\"peak_procs\":3,")) {
    char text[4096];
    read_file(report, text, sizeof text, NULL);
    fail_msg("report: %s", text);
  }
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(listed, 2);
}

/* A leftover that holds a handle of the run's job (which kill-on-close
 * would wait for) is killed all the same, and before the lock is free. */
static void a_leftover_holding_its_job_dies_before_the_lock_is_free(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids"), *lock = path_in(t, L"the.lock");
  int listed;
  assert_int_equal(RUN(t, L"-l", lock, L"-k", L"500ms", L"--", child, L"spawn-with", L"plain", pids,
                       L"hold-job sleep 300", L"sleep", L"0.5", L"exit", L"0"),
                   0);
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(listed, 1);
  assert_int_equal(RUN(t, L"-l", lock, L"--", child, L"exit", L"0"), 0);
}

/* A process of the tree cannot change its job, whether it opens it by the
 * name its CTRUN_RUN_ID gives away or duplicates ctrun's own handles: it
 * cannot allow itself a breakaway, and the timeout still takes the tree. */
static void the_tree_cannot_take_over_its_job(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  int listed;
  assert_int_equal(RUN(t, L"-t", L"4s", L"-k", L"500ms", L"--", child, L"hijack-job", L"spawn",
                       L"breakaway", pids, L"spawn", L"plain", pids, L"pidfile", pids, L"out",
                       L"ready", L"sleep", L"300"),
                   124);
  assert_non_null(strstr(t->out, "ready"));
  assert_non_null(strstr(t->out, "hijack name-set: refused"));
  assert_non_null(strstr(t->out, "hijack name-all: refused"));
  assert_non_null(strstr(t->out, "hijack parent-dup: refused"));
  assert_non_null(strstr(t->out, "breakaway refused"));
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(listed, 3);
}

/* Nor can it keep its job alive after ctrun is killed: not by clearing
 * kill-on-close, not by holding a handle of the job ps and cleanup open. */
static void the_tree_cannot_outlive_ctrun(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  int listed, n = 1;
  HANDLE h = START(t, L"victim", L"-n", L"victim", L"--", child, L"hijack-job", L"hold-job", L"spawn",
                   L"plain", pids, L"pidfile", pids, L"sleep", L"300");
  for (int i = 0; i < 400 && alive(pids, &listed) < 2; i++)
    Sleep(50);
  assert_int_equal(listed, 2);
  assert_true(file_has(path_in(t, L"victim.out"), "job held"));
  assert_true(TerminateProcess(h, 1));
  CloseHandle(h);
  for (int i = 0; i < 200 && (n = alive(pids, &listed)) > 0; i++)
    Sleep(50);
  assert_int_equal(n, 0);
  assert_int_equal(RUN(t, L"cleanup"), 0);
}

static bool is_dir(const wchar_t *path) {
  DWORD a = GetFileAttributesW(path);
  return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
}

static bool is_file(const wchar_t *path) {
  DWORD a = GetFileAttributesW(path);
  return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
}

/* Paths outside ASCII (and outside any ANSI code page: Latin and
 * Cyrillic at once) reach the file system exactly: the state directory,
 * the log, the report and the lock. */
static void unicode_paths(void **state) {
  struct e2e *t = *state;
  wchar_t home[MAX_PATH], st[MAX_PATH], log[MAX_PATH], report[MAX_PATH], lock[MAX_PATH];
  _snwprintf(home, MAX_PATH, L"%ls\\Jos\u00e9-\u0434\u043e\u043c", t->dir);
  _snwprintf(st, MAX_PATH, L"%ls\\\u0441\u043e\u0441\u0442\u043e\u044f\u043d\u0438\u0435", home);
  _snwprintf(log, MAX_PATH, L"%ls\\\u0436\u0443\u0440\u043d\u0430\u043b.log", home);
  _snwprintf(report, MAX_PATH, L"%ls\\\u043e\u0442\u0447\u0451\u0442.json", home);
  _snwprintf(lock, MAX_PATH, L"%ls\\\u0437\u0430\u043c\u043e\u043a.lock", home);
  assert_true(CreateDirectoryW(home, NULL));
  SetEnvironmentVariableW(L"CTRUN_STATE_DIR", st);
  assert_int_equal(RUN(t, L"-n", L"uni", L"-o", log, L"--report", report, L"-l", lock, L"--", child,
                       L"out", L"\u043f\u0440\u0438\u0432\u0435\u0442", L"exit", L"0"),
                   0);
  assert_true(is_dir(st));
  assert_true(file_has(log, "start: ")); /* the argv, as UTF-8: */
  assert_true(file_has(log, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"));
  assert_true(file_has(log, "end: exit 0"));
  assert_true(file_has(report, "\"exit_code\":0,"));
  assert_true(is_file(lock));
  assert_int_equal(RUN(t, L"check"), 0);
  assert_non_null(strstr(t->out, "CTRUN OK"));
}

/* The default state directory, under a profile outside ASCII; and, with
 * no usable profile, a message that says what to set. */
static void state_directory_under_a_unicode_profile(void **state) {
  struct e2e *t = *state;
  wchar_t saved[MAX_PATH] = L"", local[MAX_PATH], mine[MAX_PATH], missing[MAX_PATH];
  DWORD had = GetEnvironmentVariableW(L"LOCALAPPDATA", saved, MAX_PATH);
  _snwprintf(local, MAX_PATH, L"%ls\\Jos\u00e9 \u0416\u0443\u043a\u043e\u0432", t->dir);
  assert_true(CreateDirectoryW(local, NULL));
  _snwprintf(local + wcslen(local), MAX_PATH - wcslen(local), L"\\AppData");
  assert_true(CreateDirectoryW(local, NULL));
  _snwprintf(local + wcslen(local), MAX_PATH - wcslen(local), L"\\Local");
  assert_true(CreateDirectoryW(local, NULL));
  _snwprintf(mine, MAX_PATH, L"%ls\\ctrun", local);
  _snwprintf(missing, MAX_PATH, L"%ls\\gone", local);
  SetEnvironmentVariableW(L"CTRUN_STATE_DIR", NULL);

  SetEnvironmentVariableW(L"LOCALAPPDATA", local);
  assert_int_equal(RUN(t, L"--", child, L"exit", L"0"), 0);
  assert_true(is_dir(mine));
  assert_int_equal(RUN(t, L"check"), 0);
  assert_non_null(strstr(t->out, "CTRUN OK"));

  SetEnvironmentVariableW(L"LOCALAPPDATA", NULL);
  assert_int_equal(RUN(t, L"--", child, L"out", L"ran"), 125);
  assert_non_null(strstr(t->err, "CTRUN_STATE_DIR"));
  assert_non_null(strstr(t->err, "LOCALAPPDATA"));
  assert_null(strstr(t->err, "HOME"));
  assert_int_equal(RUN(t, L"check"), 3);

  SetEnvironmentVariableW(L"LOCALAPPDATA", missing);
  assert_int_equal(RUN(t, L"--", child, L"out", L"ran"), 125);
  assert_non_null(strstr(t->err, "is not a directory"));
  assert_false(is_dir(missing));
  assert_null(strstr(t->out, "ran"));

  SetEnvironmentVariableW(L"LOCALAPPDATA", had > 0 && had < MAX_PATH ? saved : NULL);
}

/* Exit codes of 0x80000000 and above (exceptions, exit(-1)) pass through
 * whole: as ctrun's own exit code, in the log and in the report. */
static void exception_exit_codes_pass_through(void **state) {
  static const struct {
    const wchar_t *code;
    long long want;
    const char *log, *report;
  } cases[] = {
    { L"0xC0000005", 0xC0000005, "end: exit 3221225477 (0xC0000005)", "\"exit_code\":3221225477," },
    { L"0xFFFFFFFF", 0xFFFFFFFF, "end: exit 4294967295 (0xFFFFFFFF)", "\"exit_code\":4294967295," },
    { L"0xC000013A", 0xC000013A, "end: exit 3221225786 (0xC000013A)", "\"exit_code\":3221225786," },
  };
  struct e2e *t = *state;
  const wchar_t *log = path_in(t, L"run.log"), *report = path_in(t, L"report.json");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    assert_int_equal(RUN(t, L"-o", log, L"--report", report, L"--", child, L"exit", cases[i].code),
                     cases[i].want);
    assert_true(file_has(log, cases[i].log));
    assert_true(file_has(report, cases[i].report));
    assert_true(file_has(report, "\"signal\":null,"));
  }
  /* A real access violation, unhandled: the process ends with its code. */
  assert_int_equal(RUN(t, L"--report", report, L"--", child, L"crash"), 0xC0000005);
  assert_true(file_has(report, "\"exit_code\":3221225477,"));
  /* And ctrunw, which Task Scheduler reads the result of. */
  assert_int_equal(run_exe(t, ctrunw, (const wchar_t *const[]){ L"--", child, L"exit", L"0xC0000005",
                                                               NULL }),
                   0xC0000005);
}

/* Wine emulates some of what Windows does in the kernel, not atomically. */
static bool under_wine(void) {
  return GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") != NULL;
}

static void write_file(const wchar_t *path, const char *text) {
  HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  DWORD n;
  assert_true(h != INVALID_HANDLE_VALUE);
  assert_true(WriteFile(h, text, (DWORD)strlen(text), &n, NULL));
  CloseHandle(h);
}

/* How many files in the scratch directory have names matching PATTERN. */
static int files_like(struct e2e *t, const wchar_t *pattern) {
  WIN32_FIND_DATAW fd;
  wchar_t p[MAX_PATH];
  int n = 0;
  HANDLE h;
  _snwprintf(p, MAX_PATH, L"%ls\\%ls", t->dir, pattern);
  h = FindFirstFileW(p, &fd);
  if (h == INVALID_HANDLE_VALUE)
    return 0;
  do
    n++;
  while (FindNextFileW(h, &fd));
  FindClose(h);
  return n;
}

/* --report replaces a report that exists, also while a reader holds it
 * open: at once if the reader shares delete, else once it lets go. */
static void report_replaces_the_old_one(void **state) {
  static const wchar_t *const shares[] = { L"read-delete", L"read" };
  struct e2e *t = *state;
  const wchar_t *report = path_in(t, L"report.json");
  write_file(report, "old report\n");
  assert_int_equal(RUN(t, L"--report", report, L"--", child, L"exit", L"3"), 3);
  assert_true(file_has(report, "\"exit_code\":3,"));
  for (size_t i = 0; i < sizeof shares / sizeof shares[0]; i++) {
    wchar_t tag[32];
    char want[32];
    HANDLE reader;
    _snwprintf(tag, 32, L"reader%zu", i);
    reader = start_exe(t, child, tag, (const wchar_t *const[]){ L"hold", report, L"1", shares[i], NULL });
    wait_for_text(path_in(t, wcscat(tag, L".out")), "held", 20);
    _snwprintf(tag, 32, L"%zu", 10 + i);
    snprintf(want, sizeof want, "\"exit_code\":%zu,", 10 + i);
    assert_int_equal(RUN(t, L"--report", report, L"--", child, L"exit", tag), 10 + i);
    assert_null(strstr(t->err, "report"));
    assert_true(file_has(report, want));
    assert_int_equal(finish(reader, 20), 0);
  }
  /* Nothing left beside it. */
  assert_int_equal(files_like(t, L"report.json?*"), 0);
}

/* Two runs appending to one log while their commands write many lines
 * each: every line of both arrives whole, none overwrites another. */
static void concurrent_runs_append_to_one_log(void **state) {
  static char text[256 * 1024];
  struct e2e *t = *state;
  const wchar_t *log = path_in(t, L"shared.log");
  HANDLE a, b;
  int na = 0, nb = 0, nctrun = 0, other = 0;
  DWORD len;
  a = START(t, L"a", L"-o", log, L"--", child, L"lines", L"300", L"A", L"2");
  b = START(t, L"b", L"-o", log, L"--", child, L"lines", L"300", L"B", L"2");
  assert_int_equal(finish(a, 60), 0);
  assert_int_equal(finish(b, 60), 0);
  read_file(log, text, sizeof text, &len);
  for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
    char tag = 0, whole[128] = "";
    int i = -1;
    *nl = '\0';
    if (sscanf(line, "%c %d", &tag, &i) == 2)
      snprintf(whole, sizeof whole, "%c %04d abcdefghijklmnopqrstuvwxyz0123456789", tag, i);
    if (strcmp(line, whole) == 0 && (tag == 'A' || tag == 'B'))
      na += tag == 'A', nb += tag == 'B';
    else if (strstr(line, " ctrun run=") != NULL)
      nctrun++;
    else
      other++;
  }
  if (under_wine()) {
    /* Wine appends by asking the file's size, then writing there: two
     * processes can pick the same end, and the later line replaces the
     * earlier one -- the command's or ctrun's own; where the later is the
     * shorter, the earlier's tail stays behind, a fragment.  How many
     * follows the load (seen: 0-4 lost on a quiet host, 4 lost and more
     * fragments than that while another test suite ran).  Windows appends
     * atomically.  What can be checked here: a handle that wrote at its
     * own offset would lose half the lines, an append loses a few. */
    int lost = 604 - na - nb - nctrun;
    if (lost != 0 || other != 0)
      fprintf(stderr, "note: %d of 604 lines lost to Wine's emulated append, %d fragment(s)\n",
              lost, other);
    assert_true(na + nb + nctrun >= 574);
    assert_true(other <= 30);
  } else {
    assert_int_equal(other, 0);
    assert_int_equal(nctrun, 4);
    assert_int_equal(na, 300);
    assert_int_equal(nb, 300);
  }
  /* The null device is a log too (a character device, as /dev/null). */
  assert_int_equal(RUN(t, L"-o", L"NUL", L"--", child, L"out", L"gone", L"exit", L"0"), 0);
  assert_null(strstr(t->out, "gone"));
}

/* Write TEXT over PATH, sharing it with everyone (ctrun may hold it). */
static void overwrite_file(const wchar_t *path, const char *text) {
  HANDLE h = CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  DWORD n;
  assert_true(h != INVALID_HANDLE_VALUE);
  assert_true(WriteFile(h, text, (DWORD)strlen(text), &n, NULL));
  CloseHandle(h);
}

static long long report_number(const wchar_t *report, const char *key) {
  char text[8192], *at;
  read_file(report, text, sizeof text, NULL);
  at = strstr(text, key);
  return at != NULL ? strtoll(at + strlen(key), NULL, 10) : -1;
}

/* A lock file that another program holds open and shares with no one is
 * busy, as a held lock is: -w waits for it, without -w the run fails (75)
 * or skips, and nothing runs meanwhile. */
static void a_lock_file_open_elsewhere_is_busy(void **state) {
  struct e2e *t = *state;
  const wchar_t *lock = path_in(t, L"shared.lock"), *report = path_in(t, L"report.json");
  HANDLE holder = start_exe(t, child, L"holder", (const wchar_t *const[]){ L"hold", lock, L"60", L"none",
                                                                      NULL });
  DWORD t0;
  wait_for_text(path_in(t, L"holder.out"), "held", 20);
  t0 = GetTickCount();
  assert_int_equal(RUN(t, L"-l", lock, L"-w", L"500ms", L"--", child, L"out", L"ran"), 75);
  assert_true(GetTickCount() - t0 >= 450);
  assert_non_null(strstr(t->err, "open in another program"));
  assert_int_equal(RUN(t, L"-l", lock, L"--on-busy=skip", L"--", child, L"out", L"ran"), 0);
  assert_null(strstr(t->out, "ran"));
  TerminateProcess(holder, 0);
  finish(holder, 20);
  /* Held for a second: -w outlasts it. */
  holder = start_exe(t, child, L"holder2", (const wchar_t *const[]){ L"hold", lock, L"1", L"none", NULL });
  wait_for_text(path_in(t, L"holder2.out"), "held", 20);
  assert_int_equal(RUN(t, L"-l", lock, L"-w", L"30s", L"--report", report, L"--", child, L"out",
                       L"ran"),
                   0);
  assert_non_null(strstr(t->out, "ran"));
  assert_true(report_number(report, "\"lock_wait_ms\":") >= 100);
  assert_int_equal(finish(holder, 20), 0);
}

/* -l on a file that is not ctrun's own leaves its content alone: the
 * script of the "lock $0" idiom runs, and data stays data. */
static void a_lock_file_with_content_keeps_it(void **state) {
  static const char script[] = "@echo off\r\necho job ran %1\r\nexit /b 4\r\n";
  static const char data[] = "precious data\n";
  struct e2e *t = *state;
  const wchar_t *bat = path_in(t, L"job.bat"), *txt = path_in(t, L"data.txt");
  const wchar_t *linked = path_in(t, L"linked.lock"), *link = path_in(t, L"link.lock");
  const wchar_t *pids = path_in(t, L"pids");
  char text[4096];
  HANDLE h;

  write_file(bat, script);
  assert_int_equal(RUN(t, L"-l", bat, L"--", bat, L"arg"), 4);
  assert_non_null(strstr(t->out, "job ran"));
  read_file(bat, text, sizeof text, NULL);
  assert_string_equal(text, script);

  write_file(txt, data);
  h = START(t, L"holder", L"-l", txt, L"-t", L"60s", L"-k", L"1s", L"--", child, L"pidfile", pids,
            L"sleep", L"300");
  wait_for_lines(pids, 1, 20);
  assert_int_equal(RUN(t, L"-l", txt, L"--", child, L"exit", L"0"), 75);
  read_file(txt, text, sizeof text, NULL);
  assert_string_equal(text, data);
  TerminateProcess(h, 1);
  finish(h, 20);
  read_file(txt, text, sizeof text, NULL);
  assert_string_equal(text, data);

  /* An empty file with a second name is another's too. */
  write_file(linked, "");
  if (CreateHardLinkW(link, linked, NULL)) {
    assert_int_equal(RUN(t, L"-l", link, L"--", child, L"exit", L"0"), 0);
    read_file(linked, text, sizeof text, NULL);
    assert_string_equal(text, "");
  } else {
    fprintf(stderr, "no hard links here (error %lu): that part skipped\n", GetLastError());
  }
}

/* --on-busy=replace stops the tracked run that holds this very lock file
 * (its registry entry records the file), never the run that the file's
 * text names: anyone who can write the file can write that text. */
static void replace_stops_only_the_real_holder(void **state) {
  struct e2e *t = *state;
  const wchar_t *vlock = path_in(t, L"victim.lock"), *hlock = path_in(t, L"holder.lock");
  const wchar_t *flock = path_in(t, L"forged.lock");
  char forged[512];
  HANDLE victim, holder, locker;

  victim = START(t, L"victim", L"-n", L"victim", L"-t", L"60s", L"-k", L"1s", L"-l", vlock, L"--",
                 child, L"sleep", L"300");
  holder = START(t, L"holder", L"-n", L"holder", L"-t", L"60s", L"-k", L"1s", L"-l", hlock, L"--",
                 child, L"sleep", L"300");
  wait_for_text(vlock, "name=victim", 20);
  wait_for_text(hlock, "name=holder", 20);
  read_file(vlock, forged, sizeof forged, NULL);

  /* Held by a process that is no tracked run, its text naming the victim. */
  overwrite_file(flock, forged);
  locker = start_exe(t, child, L"locker", (const wchar_t *const[]){ L"lock", flock, L"60", NULL });
  wait_for_text(path_in(t, L"locker.out"), "locked", 20);
  assert_int_equal(RUN(t, L"-l", flock, L"--on-busy=replace", L"--", child, L"out", L"ran"), 75);
  assert_non_null(strstr(t->err, "not a tracked run"));
  assert_null(strstr(t->out, "ran"));

  /* The holder's own lock file, its text rewritten to name the victim. */
  overwrite_file(hlock, forged);
  assert_int_equal(RUN(t, L"-l", hlock, L"--on-busy=replace", L"--", child, L"out", L"replaced"), 0);
  assert_non_null(strstr(t->out, "replaced"));
  assert_int_equal(finish(holder, 30), 124);

  /* The victim ran on all along. */
  assert_int_equal(RUN(t, L"ps", L"--json"), 0);
  assert_non_null(strstr(t->out, "\"name\":\"victim\",\"state\":\"running\""));
  assert_int_equal(RUN(t, L"stop", L"victim"), 0);
  assert_int_equal(finish(victim, 30), 124);
  TerminateProcess(locker, 0);
  finish(locker, 20);
}

/* Windows takes ctrun_run_id for CTRUN_RUN_ID: a variable of the caller
 * that differs from one of ctrun's only in case neither hides ctrun's nor
 * survives beside it.  (That the block is sorted is test_win_spawn's:
 * Wine appends variables of its own to every process's block.)  A stray
 * variable named like the detached supervisor's marker neither reaches a
 * command nor makes a caller take itself for the supervisor. */
static void environment_names_ignore_case(void **state) {
  static char text[65536];
  struct e2e *t = *state;
  const wchar_t *dump = path_in(t, L"env"), *pids = path_in(t, L"pids");
  int ids = 0, names = 0, markers = 0;
  char id[64] = "", name[64] = "";

  SetEnvironmentVariableW(L"ctrun_run_id", L"forged");
  SetEnvironmentVariableW(L"Ctrun_Name", L"forged");
  SetEnvironmentVariableW(L"ctrun_detached_supervisor", L"4:0123456789ab");
  assert_int_equal(RUN(t, L"-n", L"envtest", L"--", child, L"env-dump", dump), 0);
  read_file(dump, text, sizeof text, NULL);
  for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
    char *eq = strchr(line + 1, '=');
    wchar_t wname[256];
    int n;
    *nl = '\0';
    if (eq == NULL)
      continue;
    n = MultiByteToWideChar(CP_UTF8, 0, line, (int)(eq - line), wname, 255);
    wname[n > 0 ? n : 0] = L'\0';
    if (_wcsicmp(wname, L"CTRUN_RUN_ID") == 0 && ++ids)
      snprintf(id, sizeof id, "%s", eq + 1);
    if (_wcsicmp(wname, L"CTRUN_NAME") == 0 && ++names)
      snprintf(name, sizeof name, "%s", eq + 1);
    markers += _wcsicmp(wname, L"CTRUN_DETACHED_SUPERVISOR") == 0;
  }
  assert_int_equal(ids, 1);
  assert_int_equal(strlen(id), 12);
  assert_int_equal(strspn(id, "0123456789abcdef"), 12);
  assert_int_equal(names, 1);
  assert_string_equal(name, "envtest");
  assert_int_equal(markers, 0);

  assert_int_equal(RUN(t, L"-d", L"--", child, L"pidfile", pids, L"exit", L"0"), 0);
  assert_int_equal(strspn(t->out, "0123456789abcdef"), 12);
  wait_for_lines(pids, 1, 20);
  SetEnvironmentVariableW(L"ctrun_run_id", NULL);
  SetEnvironmentVariableW(L"Ctrun_Name", NULL);
  SetEnvironmentVariableW(L"ctrun_detached_supervisor", NULL);
}

/* Copy the test child to DIR\NAME (DIR made first). */
static void install_child(const wchar_t *dir, const wchar_t *name) {
  wchar_t to[MAX_PATH];
  CreateDirectoryW(dir, NULL);
  _snwprintf(to, MAX_PATH, L"%ls\\%ls", dir, name);
  assert_true(CopyFileW(child, to, FALSE));
}

/* A command is found along PATH as cmd.exe finds it, quoted entries and
 * semicolons inside quotes included. */
static void path_search_reads_quotes_as_cmd_does(void **state) {
  struct e2e *t = *state;
  static wchar_t saved[32768], path[32768];
  DWORD had = GetEnvironmentVariableW(L"PATH", saved, 32768);
  install_child(path_in(t, L"My Tools"), L"mytool.exe");
  install_child(path_in(t, L"semi;colon"), L"semi.exe");
  install_child(path_in(t, L"part q"), L"partq.exe");
  _snwprintf(path, 32768, L"\"%ls\\My Tools\";\"%ls\\semi;colon\";%ls\\\"part q\";%ls", t->dir,
             t->dir, t->dir, had > 0 && had < 32768 ? saved : L"");
  SetEnvironmentVariableW(L"PATH", path);
  assert_int_equal(RUN(t, L"--", L"mytool", L"exit", L"5"), 5);
  assert_int_equal(RUN(t, L"--", L"semi", L"exit", L"6"), 6);
  assert_int_equal(RUN(t, L"--", L"partq", L"exit", L"7"), 7);
  SetEnvironmentVariableW(L"PATH", had > 0 && had < 32768 ? saved : NULL);
}

/* Every name that Windows resolves to a batch file goes through cmd.exe
 * with the same care: it runs, with arguments cmd passes on intact, and is
 * refused (126) an argument that cmd would expand or split. */
static void batch_files_by_any_name_get_the_same_care(void **state) {
  struct e2e *t = *state;
  const wchar_t *bat = path_in(t, L"job.bat");
  wchar_t names[4][MAX_PATH];
  static wchar_t saved[32768], path[32768];
  DWORD had;

  write_file(bat, "@echo off\r\necho job ran %1\r\nexit /b 4\r\n");
  _snwprintf(names[0], MAX_PATH, L"%ls", bat);
  _snwprintf(names[1], MAX_PATH, L"%ls.", bat);
  _snwprintf(names[2], MAX_PATH, L"%ls  ", bat);
  _snwprintf(names[3], MAX_PATH, L"%ls\\JOB.BAT", t->dir);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(RUN(t, L"--", names[i], L"a&b"), 4);
    assert_non_null(strstr(t->out, "job ran \"a&b\""));
    assert_int_equal(RUN(t, L"--", names[i], L"a%PATH%b"), 126);
    assert_null(strstr(t->out, "job ran"));
    assert_int_equal(RUN(t, L"--", names[i], L"x\"&echo injected"), 126);
    assert_null(strstr(t->out, "injected"));
  }
  /* Found along PATH by PATHEXT, the same. */
  had = GetEnvironmentVariableW(L"PATH", saved, 32768);
  _snwprintf(path, 32768, L"%ls;%ls", t->dir, had > 0 && had < 32768 ? saved : L"");
  SetEnvironmentVariableW(L"PATH", path);
  assert_int_equal(RUN(t, L"--", L"job", L"ok"), 4);
  assert_int_equal(RUN(t, L"--", L"job", L"%PATH%"), 126);
  SetEnvironmentVariableW(L"PATH", had > 0 && had < 32768 ? saved : NULL);
}

/* Start EXE with ARGS and every standard handle V (NULL, or
 * INVALID_HANDLE_VALUE), as a service or a careless parent does. */
static long long run_bare(const wchar_t *exe, HANDLE v, const wchar_t *const *args) {
  wchar_t *line = command_line(exe, args);
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = si.hStdOutput = si.hStdError = v;
  assert_true(start_process(exe, line, FALSE, 0, &si, &pi));
  CloseHandle(pi.hThread);
  return finish(pi.hProcess, 60);
}

/* ctrun and ctrunw started without standard handles: a run, its timeout
 * notice (which must go nowhere, and never into the lock file) and -d all
 * work, and the command gets the null device for all three. */
static void no_standard_handles(void **state) {
  static const HANDLE bad[] = { NULL, INVALID_HANDLE_VALUE };
  struct e2e *t = *state;
  const wchar_t *lock = path_in(t, L"the.lock"), *types = path_in(t, L"types");
  const wchar_t *pids = path_in(t, L"pids");
  const wchar_t *exes[] = { ctrun, ctrunw };
  int runs = 0;
  for (size_t e = 0; e < 2; e++) {
    for (size_t b = 0; b < 2; b++) {
      char text[4096];
      write_file(types, "");
      assert_int_equal(run_bare(exes[e], bad[b],
                                (const wchar_t *const[]){ L"-l", lock, L"-t", L"1s", L"-k", L"100ms", L"--",
                                                          child, L"stdio", types, L"sleep", L"30", NULL }),
                       124);
      read_file(types, text, sizeof text, NULL);
      assert_string_equal(text, "in=2 out=2 err=2\n"); /* FILE_TYPE_CHAR: NUL */
      assert_false(file_has(lock, "ctrun"));
      assert_int_equal(run_bare(exes[e], bad[b],
                                (const wchar_t *const[]){ L"-d", L"--", child, L"pidfile", pids, NULL }),
                       0);
      wait_for_lines(pids, ++runs, 20);
    }
  }
}

/* A state directory owned by someone else (here LocalSystem) is refused,
 * as on Unix.  Skipped (and shown so) where the owner cannot be changed:
 * Wine does not keep a file's owner. */
static void foreign_state_directory_is_refused(void **state) {
  struct e2e *t = *state;
  wchar_t dir[MAX_PATH];
  PSID system = NULL;
  SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
  DWORD r;

  _snwprintf(dir, MAX_PATH, L"%ls\\foreign", t->dir);
  assert_true(CreateDirectoryW(dir, NULL));
  assert_true(AllocateAndInitializeSid(&nt, 1, SECURITY_LOCAL_SYSTEM_RID, 0, 0, 0, 0, 0, 0, 0,
                                       &system));
  r = SetNamedSecurityInfoW(dir, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, system, NULL, NULL,
                            NULL);
  if (r == ERROR_SUCCESS) {
    /* Read it back: some file systems (and Wine on some) do not keep it. */
    PSID owner = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    r = GetNamedSecurityInfoW(dir, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL,
                              NULL, &sd);
    if (r == ERROR_SUCCESS && !EqualSid(owner, system))
      r = ERROR_NOT_SUPPORTED;
    LocalFree(sd);
  }
  FreeSid(system);
  if (r != ERROR_SUCCESS) {
    fprintf(stderr, "cannot give a directory away here (error %lu): skipped\n", r);
    skip();
  }
  SetEnvironmentVariableW(L"CTRUN_STATE_DIR", dir);
  assert_int_equal(RUN(t, L"--", child, L"out", L"ran"), 125);
  assert_non_null(strstr(t->err, "owned by another user"));
  assert_null(strstr(t->out, "ran"));
}

/* A held lock: a second run fails with 75 (or skips with 0); ctrun stop
 * ends the holder through its stop event, and the lock is free again. */
static void lock_busy_and_stop(void **state) {
  struct e2e *t = *state;
  const wchar_t *lock = path_in(t, L"the.lock"), *pids = path_in(t, L"pids");
  int listed;
  HANDLE holder = START(t, L"holder", L"-n", L"holder", L"-t", L"60s", L"-k", L"1s", L"-l", lock,
                        L"--", child, L"pidfile", pids, L"sleep", L"300");
  /* The holder's text is readable while it holds the lock. */
  wait_for_text(lock, "name=holder", 20);
  assert_int_equal(RUN(t, L"-l", lock, L"--", child, L"exit", L"0"), 75);
  assert_non_null(strstr(t->err, "holder"));
  assert_int_equal(RUN(t, L"-l", lock, L"--on-busy=skip", L"--", child, L"exit", L"9"), 0);
  assert_int_equal(RUN(t, L"ps", L"--json"), 0);
  assert_non_null(strstr(t->out, "\"name\":\"holder\""));
  assert_int_equal(RUN(t, L"stop", L"holder"), 0);
  assert_int_equal(finish(holder, 30), 124);
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(listed, 1);
  assert_int_equal(RUN(t, L"-l", lock, L"--", child, L"exit", L"0"), 0);
}

/* -d: the run id at once, the run in ps, and stop ends it. */
static void detach_then_stop(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  wchar_t id[16];
  int listed;
  assert_int_equal(RUN(t, L"-d", L"-t", L"60s", L"-k", L"1s", L"--", child, L"pidfile", pids,
                       L"sleep", L"300"),
                   0);
  assert_int_equal(strspn(t->out, "0123456789abcdef"), 12);
  _snwprintf(id, 16, L"%.12hs", t->out);
  wait_for_text(pids, "\n", 20);
  assert_int_equal(RUN(t, L"ps", L"--json"), 0);
  assert_non_null(strstr(t->out, "\"state\":\"running\""));
  assert_int_equal(RUN(t, L"stop", id), 0);
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(RUN(t, L"ps", L"--json"), 0);
  assert_null(strstr(t->out, "\"id\""));
}

/* ctrun killed outright: the job dies with its last handle, and so does
 * the tree; cleanup then forgets the stale run. */
static void killed_ctrun_takes_the_tree_along(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  int listed, n = 1;
  HANDLE h = START(t, L"victim", L"-n", L"victim", L"--", child, L"pidfile", pids, L"spawn",
                   L"detached", pids, L"sleep", L"300");
  for (int i = 0; i < 400 && alive(pids, &listed) < 2; i++)
    Sleep(50);
  assert_int_equal(listed, 2);
  assert_true(TerminateProcess(h, 1));
  CloseHandle(h);
  for (int i = 0; i < 200 && (n = alive(pids, &listed)) > 0; i++)
    Sleep(50);
  assert_int_equal(n, 0);
  assert_int_equal(RUN(t, L"ps", L"--json"), 0);
  assert_non_null(strstr(t->out, "\"state\":\"stale\""));
  assert_int_equal(RUN(t, L"cleanup"), 0);
  assert_int_equal(RUN(t, L"ps", L"--json"), 0);
  assert_null(strstr(t->out, "\"id\""));
}

/* The command gets exactly the argv ctrun got: spaces, quotes and
 * backslashes, empty arguments, non-ASCII text. */
static void argv_round_trip(void **state) {
  static const wchar_t *const args[] = {
    L"plain", L"two words", L"", L"quote\"inside", L"\"quoted\"", L"back\\slash",
    L"trailing\\", L"trailing two\\\\", L"\\\"", L"a\\\\\"b", L"tab\there", L"%PATH%",
    L"caf\u00e9 \u65e5\u672c", L"-t", L"--",
  };
  struct e2e *t = *state;
  const wchar_t *file = path_in(t, L"argv");
  const wchar_t *cmd[64] = { L"--", child, L"argv", file, L"--" };
  size_t n = 5, nargs = sizeof args / sizeof args[0];
  char got[8192], want[8192];
  DWORD len, wlen = 0;

  for (size_t i = 0; i < nargs; i++)
    cmd[n++] = args[i];
  cmd[n] = NULL;
  assert_int_equal(run_exe(t, ctrun, cmd), 0);
  read_file(file, got, sizeof got, &len);
  for (size_t i = 0; i < nargs; i++)
    wlen += (DWORD)WideCharToMultiByte(CP_UTF8, 0, args[i], -1, want + wlen, (int)(sizeof want - wlen),
                                       NULL, NULL);
  assert_int_equal(len, wlen);
  assert_memory_equal(got, want, wlen);
}

/* --child-timeout: a process of the tree other than the command that has
 * lived that long is terminated (Windows has no soft signal for one
 * process); the command goes on and keeps its exit code. */
static void child_timeout_kills_the_child_not_the_command(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  int listed;
  DWORD t0 = GetTickCount();
  assert_int_equal(RUN(t, L"--child-timeout", L"1s", L"--", child, L"spawn", L"plain", pids,
                       L"sleep", L"4", L"out", L"command-done", L"exit", L"3"),
                   3);
  assert_true(GetTickCount() - t0 >= 3900);
  assert_non_null(strstr(t->out, "command-done"));
  assert_non_null(strstr(t->err, "killed hung child"));
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(listed, 1);
}

/* The hung child is gone at the limit, long before the command ends. */
static void child_timeout_acts_at_the_limit(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  int listed, n = 1;
  HANDLE h = START(t, L"run", L"--child-timeout", L"1s", L"--", child, L"spawn", L"plain", pids,
                   L"sleep", L"30");
  DWORD t0 = GetTickCount();
  wait_for_text(pids, "\n", 20);
  for (int i = 0; i < 400 && (n = alive(pids, &listed)) > 0; i++)
    Sleep(25);
  assert_int_equal(n, 0);
  assert_true(GetTickCount() - t0 < 10000);
  assert_true(WaitForSingleObject(h, 0) == WAIT_TIMEOUT); /* the command runs on */
  TerminateProcess(h, 1);
  assert_int_equal(finish(h, 30), 1);
}

/* --on-busy=queue: against a holder, five queued runs make exactly one
 * more run; the others exit 0 at once. */
static void queue_makes_one_more_run(void **state) {
  struct e2e *t = *state;
  const wchar_t *lock = path_in(t, L"q.lock"), *ran = path_in(t, L"ran"), *held = path_in(t, L"held");
  HANDLE q[5];
  wchar_t tag[16];
  char text[4096];
  int lines = 0;
  HANDLE holder = START(t, L"holder", L"-n", L"holder", L"-l", lock, L"--", child, L"pidfile",
                        held, L"sleep", L"3");
  wait_for_text(held, "\n", 20);
  for (int i = 0; i < 5; i++) {
    _snwprintf(tag, 16, L"q%d", i);
    q[i] = START(t, tag, L"-l", lock, L"--on-busy=queue", L"--", child, L"pidfile", ran);
  }
  for (int i = 0; i < 5; i++)
    assert_int_equal(finish(q[i], 60), 0);
  assert_int_equal(finish(holder, 30), 0);
  read_file(ran, text, sizeof text, NULL);
  for (char *s = text; *s; s++)
    lines += *s == '\n';
  assert_int_equal(lines, 1);
}

/* --idle-timeout relays the output and ends a silent run (124); --retry
 * runs the command again in the same run. */
static void idle_timeout_and_retry(void **state) {
  struct e2e *t = *state;
  const wchar_t *report = path_in(t, L"report.json");
  char text[4096];
  assert_int_equal(RUN(t, L"--idle-timeout", L"1s", L"-k", L"1s", L"--", child, L"out",
                       L"relayed", L"sleep", L"30"),
                   124);
  assert_non_null(strstr(t->out, "relayed"));
  assert_non_null(strstr(t->err, "idle"));
  assert_int_equal(RUN(t, L"--retry", L"2", L"--retry-delay", L"100ms", L"--report", report, L"--",
                       child, L"exit", L"3"),
                   3);
  read_file(report, text, sizeof text, NULL);
  assert_non_null(strstr(text, "\"attempts\":3,"));
}

/* ---- history and monitoring ---- */

/* ctrun.exe and ctrunw.exe write the history; last, check --job and
 * metrics read it; --ok-exit, --on-finish (through cmd.exe) and --jitter
 * work as on Unix. */
static void history_and_monitoring(void **state) {
  struct e2e *t = *state;
  wchar_t hook[600], facts[MAX_PATH];
  char text[8192];
  assert_int_equal(RUN(t, L"-n", L"job", L"--", child, L"exit", L"0"), 0);
  assert_int_equal(run_exe(t, ctrunw, (const wchar_t *const[]){ L"-n", L"job", L"--", child,
                                                                  L"exit", L"3", NULL }),
                   3);
  assert_int_equal(RUN(t, L"-n", L"job", L"--ok-exit", L"24", L"--", child, L"exit", L"24"), 24);
  assert_int_equal(RUN(t, L"last", L"--json", L"job"), 0);
  if (strstr(t->out, "\"records\":3") == NULL)
    fail_msg("last --json: %s / %s", t->out, t->err);
  assert_non_null(strstr(t->out, "\"consecutive_failures\":0"));
  assert_int_equal(RUN(t, L"check", L"--job", L"job=1h"), 0);
  assert_int_equal(RUN(t, L"check", L"--job", L"nosuch=1h"), 2);
  assert_int_equal(RUN(t, L"metrics"), 0);
  assert_non_null(strstr(t->out, "ctrun_runs_total{name=\"job\",result=\"success\"} 2"));
  assert_non_null(strstr(t->out, "ctrun_runs_total{name=\"job\",result=\"failure\"} 1"));
  /* --on-finish through cmd.exe, with the run's facts. */
  _snwprintf(facts, MAX_PATH, L"%ls\\facts.txt", t->dir);
  _snwprintf(hook, 600, L"echo %%CTRUN_NAME%% %%CTRUN_EXIT%% %%CTRUN_REASON%%> %ls", facts);
  assert_int_equal(RUN(t, L"-n", L"fin", L"--on-finish", hook, L"--", child, L"exit", L"5"), 5);
  read_file(facts, text, sizeof text, NULL);
  assert_non_null(strstr(text, "fin 5 exit"));
  /* --jitter: below its bound. */
  ULONGLONG t0 = GetTickCount64();
  assert_int_equal(RUN(t, L"--jitter", L"300ms", L"--", child, L"exit", L"0"), 0);
  assert_true(GetTickCount64() - t0 < 5000);
}

/* ---- limits, accounting and priority ---- */

/* The number after "KEY": in TEXT (a report, ps --json); false if none. */
static bool json_number(const char *text, const char *key, unsigned long long *v) {
  char pat[64];
  const char *p;
  snprintf(pat, sizeof pat, "\"%s\":", key);
  if ((p = strstr(text, pat)) == NULL)
    return false;
  *v = strtoull(p + strlen(pat), NULL, 10);
  return true;
}

/* Whether ctrun has a console: ctrun, started as the tests start it,
 * shares this process's (its test for a console is the same). */
static bool have_console(void) { return GetConsoleWindow() != NULL || GetConsoleCP() != 0; }

/* Run the test child with SCRIPT (a command line) in a job of the test's
 * own that carries LI's limits, and read those limits back into *BACK:
 * what this system's jobs do with a cap, measured.  The child's stdout is
 * in OUT. */
static void child_in_job(struct e2e *t, JOBOBJECT_EXTENDED_LIMIT_INFORMATION *li,
                         const wchar_t *script, JOBOBJECT_EXTENDED_LIMIT_INFORMATION *back,
                         char *out, size_t size) {
  static wchar_t line[4096];
  const wchar_t *file = path_in(t, L"in-job.out");
  HANDLE job = CreateJobObjectW(NULL, NULL);
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;

  assert_non_null(job);
  li->BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  assert_true(SetInformationJobObject(job, JobObjectExtendedLimitInformation, li, sizeof *li));
  memset(back, 0, sizeof *back);
  assert_true(QueryInformationJobObject(job, JobObjectExtendedLimitInformation, back, sizeof *back,
                                        NULL));
  _snwprintf(line, 4096, L"\"%ls\" %ls", child, script);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = NULL;
  si.hStdOutput = si.hStdError = open_out(file);
  assert_true(start_process(child, line, TRUE, CREATE_SUSPENDED, &si, &pi));
  CloseHandle(si.hStdOutput);
  assert_true(AssignProcessToJobObject(job, pi.hProcess));
  ResumeThread(pi.hThread);
  WaitForSingleObject(pi.hProcess, 60000);
  TerminateJobObject(job, 1);
  for (int i = 0; i < 100; i++) {
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
    if (!QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct, sizeof acct,
                                   NULL) ||
        acct.ActiveProcesses == 0)
      break;
    Sleep(50);
  }
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  CloseHandle(job);
  read_file(file, out, size, NULL);
}

/* Why the caps of --memory and --max-procs cannot be the kernel's here,
 * measured on a job of the test's own: what it kept of MEM and PROCS. */
static void limits_kept(char *why, size_t size, unsigned long long mem, DWORD procs) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li, back;
  HANDLE job = CreateJobObjectW(NULL, NULL);
  memset(&li, 0, sizeof li);
  memset(&back, 0, sizeof back);
  li.BasicLimitInformation.LimitFlags =
    JOB_OBJECT_LIMIT_JOB_MEMORY | JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
  li.JobMemoryLimit = (SIZE_T)mem;
  li.BasicLimitInformation.ActiveProcessLimit = procs;
  if (job == NULL ||
      !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li))
    snprintf(why, size, "a job refuses JobMemoryLimit %llu with ActiveProcessLimit %lu (error %lu)",
             mem, (unsigned long)procs, (unsigned long)GetLastError());
  else if (!QueryInformationJobObject(job, JobObjectExtendedLimitInformation, &back, sizeof back,
                                      NULL))
    snprintf(why, size, "a job's limits cannot be read back (error %lu)",
             (unsigned long)GetLastError());
  else
    snprintf(why, size,
             "a job set to JobMemoryLimit %llu and ActiveProcessLimit %lu (flags 0x%lx) reads back "
             "JobMemoryLimit %llu, ActiveProcessLimit %lu, flags 0x%lx",
             mem, (unsigned long)procs, (unsigned long)li.BasicLimitInformation.LimitFlags,
             (unsigned long long)back.JobMemoryLimit,
             (unsigned long)back.BasicLimitInformation.ActiveProcessLimit,
             (unsigned long)back.BasicLimitInformation.LimitFlags);
  if (job != NULL)
    CloseHandle(job);
  if (back.JobMemoryLimit == (SIZE_T)mem && back.BasicLimitInformation.ActiveProcessLimit == procs)
    why[0] = '\0'; /* kept */
}

/* --memory and --max-procs are caps on the run's job, which the kernel
 * enforces: the command reads them from its job while it runs, every limit
 * the job had before is still there, and the report says who enforces. */
static void limits_are_set_on_the_job(void **state) {
  struct e2e *t = *state;
  const wchar_t *report = path_in(t, L"report.json"), *info = path_in(t, L"info");
  unsigned long flags = 0, active = 0;
  unsigned long long mem = 0;
  char text[4096], why[512];

  assert_int_equal(RUN(t, L"--memory", L"300M", L"--max-procs", L"40", L"--report", report, L"--",
                       child, L"job-info", info, L"exit", L"0"),
                   0);
  read_file(report, text, sizeof text, NULL);
  if (strstr(text, "\"limits_enforced_by\":\"sampling\"") != NULL) {
    limits_kept(why, sizeof why, 300ull << 20, 40);
    if (why[0] != '\0' && under_wine()) {
      fprintf(stderr,
              "Wine does not keep a job's limits (%s), so ctrun samples the tree: skipped\n", why);
      skip();
    }
    fail_msg("ctrun sampled, where the job keeps its limits: %s", text);
  }
  assert_non_null(strstr(text, "\"limits_enforced_by\":\"kernel\""));
  read_file(info, text, sizeof text, NULL);
  if (sscanf(text, "flags=0x%lx jobmem=%llu active=%lu", &flags, &mem, &active) != 3)
    fail_msg("job-info: %s", text);
  assert_true((flags & JOB_OBJECT_LIMIT_JOB_MEMORY) && (flags & JOB_OBJECT_LIMIT_ACTIVE_PROCESS));
  assert_true((flags & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE) &&
              (flags & JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION));
  assert_int_equal(mem, 300ull << 20);
  /* A command given a console of its own has a console host in its job. */
  assert_int_equal(active, 40 + (have_console() ? 0 : 1));
}

/* Every run reports what its tree used: CPU time (the job's count) and
 * its peak of memory. */
static void the_report_tells_cpu_and_memory(void **state) {
  struct e2e *t = *state;
  const wchar_t *report = path_in(t, L"report.json"), *info = path_in(t, L"info");
  unsigned long long user = 0, peak = 0, job_user = 0;
  char text[4096], acct[512];
  const char *u;

  assert_int_equal(RUN(t, L"--report", report, L"--", child, L"alloc", L"32", L"burn", L"1.5",
                       L"job-info", info, L"exit", L"0"),
                   0);
  read_file(report, text, sizeof text, NULL);
  if (!json_number(text, "peak_rss_bytes", &peak) || !json_number(text, "cpu_user_ms", &user))
    fail_msg("report: %s", text);
  if (peak < 32ull << 20)
    fail_msg("peak_rss_bytes %llu, under the 32 MiB the command used: %s", peak, text);
  if (user > 0)
    return;
  read_file(info, acct, sizeof acct, NULL);
  acct[strcspn(acct, "\n")] = '\0';
  if ((u = strstr(acct, "user=")) != NULL)
    job_user = strtoull(u + 5, NULL, 10);
  if (u != NULL && job_user == 0 && under_wine()) {
    fprintf(stderr, "Wine's job accounting counts no CPU time (the job read TotalUserTime 0 right "
                    "after its command kept a CPU busy for 1.5 s: \"%s\"); peak_rss_bytes passed, "
                    "cpu_user_ms skipped\n", acct);
    skip();
  }
  fail_msg("cpu_user_ms 0 after 1.5 s of CPU (the job: %s): %s", acct, text);
}

/* The kernel enforces a cap; where it does not, the test says exactly what
 * this system's jobs failed to do with it, measured, and is skipped.  A
 * run that ctrun sampled instead still had to end at the cap. */
static void kernel_or_skip(struct e2e *t, const char *report,
                           JOBOBJECT_EXTENDED_LIMIT_INFORMATION *li, const wchar_t *script,
                           const char *kept_all, const char *what) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION back;
  char out[4096];
  if (strstr(report, "\"limits_enforced_by\":\"kernel\"") != NULL)
    return;
  assert_non_null(strstr(report, "\"limits_enforced_by\":\"sampling\""));
  child_in_job(t, li, script, &back, out, sizeof out);
  if (strstr(out, kept_all) != NULL && under_wine()) {
    fprintf(stderr,
            "Wine does not enforce a job's %s: a child in a job with it (read back: flags 0x%lx, "
            "JobMemoryLimit %llu, ActiveProcessLimit %lu) said \"%s\"; ctrun ended the run by "
            "sampling, the kernel's part is skipped\n",
            what, (unsigned long)back.BasicLimitInformation.LimitFlags,
            (unsigned long long)back.JobMemoryLimit,
            (unsigned long)back.BasicLimitInformation.ActiveProcessLimit, kept_all);
    skip();
  }
  fail_msg("ctrun sampled the %s, which the job enforces (a child in such a job said: %s): %s",
           what, out, report);
}

/* A tree that allocates past --memory is killed: 124, reason memory. */
static void memory_cap_ends_the_run(void **state) {
  struct e2e *t = *state;
  const wchar_t *report = path_in(t, L"report.json");
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  char text[4096];
  DWORD t0 = GetTickCount();
  assert_int_equal(RUN(t, L"-t", L"30s", L"--memory", L"100M", L"--report", report, L"--", child,
                       L"alloc", L"400", L"sleep", L"30"),
                   124);
  assert_true(GetTickCount() - t0 < 20000);
  read_file(report, text, sizeof text, NULL);
  if (strstr(text, "\"reason\":\"memory\"") == NULL)
    fail_msg("report: %s", text);
  assert_non_null(strstr(t->err, "--memory"));
  memset(&li, 0, sizeof li);
  li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_JOB_MEMORY;
  li.JobMemoryLimit = 100 << 20;
  kernel_or_skip(t, text, &li, L"alloc 400", "allocated 400 MiB", "memory cap (JobMemoryLimit)");
}

/* A tree that starts more processes than --max-procs is killed: 124,
 * reason procs, and none of its processes is left. */
static void process_cap_ends_the_run(void **state) {
  struct e2e *t = *state;
  const wchar_t *report = path_in(t, L"report.json"), *pids = path_in(t, L"pids");
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  wchar_t script[2 * MAX_PATH];
  char text[4096];
  int listed;
  DWORD t0 = GetTickCount();
  assert_int_equal(RUN(t, L"-t", L"30s", L"--max-procs", L"3", L"--report", report, L"--", child,
                       L"spawn-n", L"6", pids, L"sleep", L"30"),
                   124);
  assert_true(GetTickCount() - t0 < 20000);
  read_file(report, text, sizeof text, NULL);
  if (strstr(text, "\"reason\":\"procs\"") == NULL)
    fail_msg("report: %s", text);
  assert_non_null(strstr(t->err, "--max-procs"));
  assert_int_equal(alive(pids, &listed), 0);
  memset(&li, 0, sizeof li);
  li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
  li.BasicLimitInformation.ActiveProcessLimit = 3;
  _snwprintf(script, 2 * MAX_PATH, L"spawn-n 6 \"%ls\"", path_in(t, L"in-job-pids"));
  kernel_or_skip(t, text, &li, script, "spawned 6 of 6", "process cap (ActiveProcessLimit)");
}

/* --nice N runs the command in the nearest priority class. */
static void nice_sets_the_priority_class(void **state) {
  static const struct {
    const wchar_t *nice;
    const char *cls;
  } cases[] = {
    { L"--nice=10", "0x40\n" },    /* IDLE */
    { L"--nice=19", "0x40\n" },    /* IDLE */
    { L"--nice=5", "0x4000\n" },   /* BELOW_NORMAL */
    { L"--nice=0", "0x20\n" },     /* NORMAL */
    { L"--nice=-5", "0x8000\n" },  /* ABOVE_NORMAL */
  };
  struct e2e *t = *state;
  const wchar_t *file = path_in(t, L"priority");
  char text[64];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_file(file, "");
    assert_int_equal(RUN(t, cases[i].nice, L"--", child, L"priority", file), 0);
    read_file(file, text, sizeof text, NULL);
    if (strcmp(text, cases[i].cls) != 0)
      fail_msg("%ls: priority class %s, not %s", cases[i].nice, text, cases[i].cls);
  }
}

/* The class is the whole tree's: a child of the command has it too, also
 * one above normal, which Windows would not pass on by itself. */
static void nice_reaches_the_whole_tree(void **state) {
  struct e2e *t = *state;
  const wchar_t *mine = path_in(t, L"mine"), *kid = path_in(t, L"kid"), *info = path_in(t, L"info");
  const wchar_t *pids = path_in(t, L"pids");
  wchar_t script[2 * MAX_PATH];
  char a[64], b[64], job[512];
  _snwprintf(script, 2 * MAX_PATH, L"priority \"%ls\"", kid);
  assert_int_equal(RUN(t, L"--nice=-5", L"--", child, L"priority", mine, L"job-info", info,
                       L"spawn-with", L"plain", pids, script, L"sleep", L"2", L"exit", L"0"),
                   0);
  read_file(mine, a, sizeof a, NULL);
  read_file(kid, b, sizeof b, NULL);
  assert_string_equal(a, "0x8000\n");
  if (strcmp(b, "0x8000\n") == 0)
    return;
  read_file(info, job, sizeof job, NULL);
  job[strcspn(job, "\n")] = '\0';
  if (under_wine() && strstr(job, " prio=0x0 ") != NULL) {
    b[strcspn(b, "\n")] = '\0';
    fprintf(stderr, "Wine does not apply a job's priority class: the command's child ran at %s, "
                    "not 0x8000 (ABOVE_NORMAL), and the job read back \"%s\": skipped\n", b, job);
    skip();
  }
  fail_msg("the command's child ran at priority class %s (job: %s)", b, job);
}

/* ps tells how much memory each run's tree holds. */
static void ps_tells_the_memory_of_a_run(void **state) {
  struct e2e *t = *state;
  const wchar_t *pids = path_in(t, L"pids");
  unsigned long long rss = 0;
  long long code;
  char ps[4096];
  bool ok;
  int listed;
  HANDLE h = START(t, L"mem", L"-n", L"mem", L"-t", L"60s", L"-k", L"1s", L"--", child, L"pidfile",
                   pids, L"alloc", L"64", L"sleep", L"300");
  wait_for_text(path_in(t, L"mem.out"), "allocated 64 MiB", 30);
  code = RUN(t, L"ps", L"--json");
  ok = json_number(t->out, "rss_bytes", &rss);
  snprintf(ps, sizeof ps, "%s", t->out);
  assert_int_equal(RUN(t, L"stop", L"mem"), 0);
  assert_int_equal(finish(h, 30), 124);
  assert_int_equal(alive(pids, &listed), 0);
  assert_int_equal(code, 0);
  if (!ok || rss < 64ull << 20)
    fail_msg("ps: %s", ps);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(exit_codes, setup, teardown),
    cmocka_unit_test_setup_teardown(foreign_state_directory_is_refused, setup, teardown),
    cmocka_unit_test_setup_teardown(history_and_monitoring, setup, teardown),
    cmocka_unit_test_setup_teardown(not_found_and_not_executable, setup, teardown),
    cmocka_unit_test_setup_teardown(timeout_kills_the_tree, setup, teardown),
    cmocka_unit_test_setup_teardown(leftovers_are_killed, setup, teardown),
    cmocka_unit_test_setup_teardown(lock_busy_and_stop, setup, teardown),
    cmocka_unit_test_setup_teardown(detach_then_stop, setup, teardown),
    cmocka_unit_test_setup_teardown(killed_ctrun_takes_the_tree_along, setup, teardown),
    cmocka_unit_test_setup_teardown(argv_round_trip, setup, teardown),
    cmocka_unit_test_setup_teardown(every_process_is_counted, setup, teardown),
    cmocka_unit_test_setup_teardown(leftovers_wait_for_the_last_process, setup, teardown),
    cmocka_unit_test_setup_teardown(leftovers_are_counted_in_the_report, setup, teardown),
    cmocka_unit_test_setup_teardown(a_leftover_holding_its_job_dies_before_the_lock_is_free, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(the_tree_cannot_take_over_its_job, setup, teardown),
    cmocka_unit_test_setup_teardown(the_tree_cannot_outlive_ctrun, setup, teardown),
    cmocka_unit_test_setup_teardown(unicode_paths, setup, teardown),
    cmocka_unit_test_setup_teardown(exception_exit_codes_pass_through, setup, teardown),
    cmocka_unit_test_setup_teardown(report_replaces_the_old_one, setup, teardown),
    cmocka_unit_test_setup_teardown(concurrent_runs_append_to_one_log, setup, teardown),
    cmocka_unit_test_setup_teardown(a_lock_file_open_elsewhere_is_busy, setup, teardown),
    cmocka_unit_test_setup_teardown(a_lock_file_with_content_keeps_it, setup, teardown),
    cmocka_unit_test_setup_teardown(replace_stops_only_the_real_holder, setup, teardown),
    cmocka_unit_test_setup_teardown(environment_names_ignore_case, setup, teardown),
    cmocka_unit_test_setup_teardown(path_search_reads_quotes_as_cmd_does, setup, teardown),
    cmocka_unit_test_setup_teardown(batch_files_by_any_name_get_the_same_care, setup, teardown),
    cmocka_unit_test_setup_teardown(no_standard_handles, setup, teardown),
    cmocka_unit_test_setup_teardown(state_directory_under_a_unicode_profile, setup, teardown),
    cmocka_unit_test_setup_teardown(child_timeout_kills_the_child_not_the_command, setup, teardown),
    cmocka_unit_test_setup_teardown(child_timeout_acts_at_the_limit, setup, teardown),
    cmocka_unit_test_setup_teardown(queue_makes_one_more_run, setup, teardown),
    cmocka_unit_test_setup_teardown(idle_timeout_and_retry, setup, teardown),
    cmocka_unit_test_setup_teardown(limits_are_set_on_the_job, setup, teardown),
    cmocka_unit_test_setup_teardown(the_report_tells_cpu_and_memory, setup, teardown),
    cmocka_unit_test_setup_teardown(memory_cap_ends_the_run, setup, teardown),
    cmocka_unit_test_setup_teardown(process_cap_ends_the_run, setup, teardown),
    cmocka_unit_test_setup_teardown(nice_sets_the_priority_class, setup, teardown),
    cmocka_unit_test_setup_teardown(nice_reaches_the_whole_tree, setup, teardown),
    cmocka_unit_test_setup_teardown(ps_tells_the_memory_of_a_run, setup, teardown),
  };
  env_path(L"CTRUN", ctrun);
  env_path(L"CTRUNW", ctrunw);
  env_path(L"CTRUN_CHILD", child);
  /* E2E_FILTER=pattern runs only the tests it matches, as on Unix. */
  if (getenv("E2E_FILTER") != NULL)
    cmocka_set_test_filter(getenv("E2E_FILTER"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
