/* What the Windows end-to-end programs share: each test's scratch
 * directory (its own state directory inside), and starting a program with
 * its output in files there.  Include after cmocka.h. */
#ifndef CTRUN_TEST_WIN_E2E_H
#define CTRUN_TEST_WIN_E2E_H

#include <string.h>

#include "util.h"

struct e2e {
  wchar_t dir[MAX_PATH];
  char out[65536], err[65536]; /* the last run's output */
  wchar_t paths[64][MAX_PATH]; /* what path_in gave out, for the test's life */
  int npaths;
};

/* DIR\NAME of test T, in a slot that lives as long as the test (64 of
 * them, reused in turn). */
static inline wchar_t *path_in(struct e2e *t, const wchar_t *name) {
  wchar_t *p = t->paths[t->npaths++ % 64];
  _snwprintf(p, MAX_PATH, L"%ls\\%ls", t->dir, name);
  return p;
}

/* A test's scratch directory, PREFIX-pid-time-n in the temporary directory
 * (pids repeat from one Wine session to the next: the time too), and
 * CTRUN_STATE_DIR in it for every ctrun started from now on. */
static inline struct e2e *e2e_new(const wchar_t *prefix) {
  static int seq;
  struct e2e *t = calloc(1, sizeof *t);
  wchar_t tmp[MAX_PATH], st[MAX_PATH];
  assert_non_null(t);
  GetTempPathW(MAX_PATH, tmp);
  do
    _snwprintf(t->dir, MAX_PATH, L"%ls%ls-%lu-%llu-%d", tmp, prefix, GetCurrentProcessId(),
               (unsigned long long)GetTickCount64(), ++seq);
  while (!CreateDirectoryW(t->dir, NULL) && GetLastError() == ERROR_ALREADY_EXISTS);
  _snwprintf(st, MAX_PATH, L"%ls\\state", t->dir);
  SetEnvironmentVariableW(L"CTRUN_STATE_DIR", st);
  return t;
}

static inline void e2e_free(struct e2e *t) {
  remove_tree(t->dir);
  free(t);
}

/* The command line of EXE with ARGS (NULL-terminated), in a buffer that
 * the next call reuses. */
static inline wchar_t *command_line(const wchar_t *exe, const wchar_t *const *args) {
  static wchar_t line[32768];
  _snwprintf(line, 32768, L"\"%ls\"", exe);
  for (size_t i = 0; args[i] != NULL; i++)
    quote(line, 32768, args[i]);
  return line;
}

/* Start EXE with ARGS (NULL-terminated): stdin from NUL, stdout and
 * stderr to TAG.out and TAG.err in the scratch directory, files, never a
 * pipe that a leftover could hold open. */
static inline HANDLE start_exe(struct e2e *t, const wchar_t *exe, const wchar_t *tag,
                               const wchar_t *const *args) {
  wchar_t *line = command_line(exe, args), name[64];
  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  BOOL ok;

  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                             OPEN_EXISTING, 0, NULL);
  _snwprintf(name, 64, L"%ls.out", tag);
  si.hStdOutput = open_out(path_in(t, name));
  if (si.hStdOutput == INVALID_HANDLE_VALUE)
    fail_msg("cannot open %ls: error %lu (still held by an earlier run?)", name, GetLastError());
  _snwprintf(name, 64, L"%ls.err", tag);
  si.hStdError = open_out(path_in(t, name));
  if (si.hStdError == INVALID_HANDLE_VALUE)
    fail_msg("cannot open %ls: error %lu (still held by an earlier run?)", name, GetLastError());
  ok = start_process(exe, line, TRUE, 0, &si, &pi);
  if (!ok)
    fail_msg("cannot start %ls (%ls): error %lu", exe, tag, GetLastError());
  CloseHandle(si.hStdInput);
  CloseHandle(si.hStdOutput);
  CloseHandle(si.hStdError);
  CloseHandle(pi.hThread);
  return pi.hProcess;
}

/* Wait up to SECS for P; its exit code (all 32 bits), or -1 (and P
 * killed) on timeout. */
static inline long long finish(HANDLE p, double secs) {
  DWORD code = (DWORD)-1;
  if (WaitForSingleObject(p, (DWORD)(secs * 1000)) != WAIT_OBJECT_0) {
    TerminateProcess(p, 1);
    WaitForSingleObject(p, 5000);
    CloseHandle(p);
    return -1;
  }
  GetExitCodeProcess(p, &code);
  CloseHandle(p);
  return (long long)code;
}

/* The output that start_exe sent to files named after TAG, into T. */
static inline void outputs(struct e2e *t, const wchar_t *tag) {
  wchar_t name[64];
  _snwprintf(name, 64, L"%ls.out", tag);
  read_file(path_in(t, name), t->out, sizeof t->out, NULL);
  _snwprintf(name, 64, L"%ls.err", tag);
  read_file(path_in(t, name), t->err, sizeof t->err, NULL);
}

/* Run EXE with ARGS to the end (60 s at most): its exit code, its output
 * in T. */
static inline long long run_exe(struct e2e *t, const wchar_t *exe, const wchar_t *const *args) {
  long long code = finish(start_exe(t, exe, L"run", args), 60);
  outputs(t, L"run");
  return code;
}

#endif
