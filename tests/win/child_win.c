/* ctrun-child-win: the program that the Windows end-to-end tests run under
 * ctrun.exe.  Its arguments are a little script, run in order:
 *
 *   sleep SECS          exit N              out TEXT
 *   pidfile FILE        append this process's pid to FILE
 *   spawn MODE FILE     start "sleep 300" of this program and append its
 *                       pid to FILE; MODE: plain, detached
 *                       (DETACHED_PROCESS) or breakaway
 *                       (CREATE_BREAKAWAY_FROM_JOB; when refused, it says
 *                       "breakaway refused" and starts it plainly)
 *   ignore-break        ignore CTRL_BREAK, so only a hard kill ends it
 *   argv FILE -- ARG... write each ARG as UTF-8, NUL-terminated, to FILE
 *                       (as CommandLineToArgvW gives them) and exit 0
 *
 * Every instance also appends its pid to the file named by CTRUN_TEST_PIDS,
 * so that a test's teardown can check that none of them is left.
 *
 * No shell is needed, so the scripts mean the same under Wine. */
#include <windows.h>
#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static void append(const wchar_t *file, const char *text) {
  HANDLE h = CreateFileW(file, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                         OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  DWORD n;
  if (h == INVALID_HANDLE_VALUE)
    return;
  WriteFile(h, text, (DWORD)strlen(text), &n, NULL);
  CloseHandle(h);
}

static void append_pid(const wchar_t *file, DWORD pid) {
  char line[32];
  snprintf(line, sizeof line, "%lu\n", (unsigned long)pid);
  append(file, line);
}

static void say(const char *text) {
  printf("%s\n", text);
  fflush(stdout);
}

/* Start "sleep 300" of this very program with FLAGS. */
static BOOL spawn(DWORD flags, DWORD *pid) {
  wchar_t self[MAX_PATH], cmd[MAX_PATH + 32];
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  GetModuleFileNameW(NULL, self, MAX_PATH);
  _snwprintf(cmd, sizeof cmd / sizeof cmd[0], L"\"%ls\" sleep 300", self);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  if (!CreateProcessW(self, cmd, NULL, NULL, FALSE, flags, NULL, NULL, &si, &pi))
    return FALSE;
  *pid = pi.dwProcessId;
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return TRUE;
}

static BOOL WINAPI ignore(DWORD type) { return type == CTRL_BREAK_EVENT || type == CTRL_C_EVENT; }

static int write_argv(const wchar_t *file, int argc, wchar_t **argv) {
  HANDLE h = CreateFileW(file, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  if (h == INVALID_HANDLE_VALUE)
    return 2;
  for (int i = 0; i < argc; i++) {
    char buf[4096];
    DWORD n;
    int len = WideCharToMultiByte(CP_UTF8, 0, argv[i], -1, buf, sizeof buf, NULL, NULL);
    if (len <= 0)
      return 3;
    WriteFile(h, buf, (DWORD)len, &n, NULL); /* with its NUL */
  }
  CloseHandle(h);
  return 0;
}

int main(void) {
  int argc;
  wchar_t **argv = CommandLineToArgvW(GetCommandLineW(), &argc);
  wchar_t all[MAX_PATH];

  if (GetEnvironmentVariableW(L"CTRUN_TEST_PIDS", all, MAX_PATH) - 1u < MAX_PATH - 1u)
    append_pid(all, GetCurrentProcessId());

  for (int i = 1; i < argc; i++) {
    const wchar_t *a = argv[i];
    if (wcscmp(a, L"sleep") == 0 && i + 1 < argc) {
      Sleep((DWORD)(_wtof(argv[++i]) * 1000));
    } else if (wcscmp(a, L"exit") == 0 && i + 1 < argc) {
      return _wtoi(argv[++i]);
    } else if (wcscmp(a, L"out") == 0 && i + 1 < argc) {
      printf("%ls\n", argv[++i]);
      fflush(stdout);
    } else if (wcscmp(a, L"pidfile") == 0 && i + 1 < argc) {
      append_pid(argv[++i], GetCurrentProcessId());
    } else if (wcscmp(a, L"spawn") == 0 && i + 2 < argc) {
      const wchar_t *mode = argv[++i], *file = argv[++i];
      DWORD pid = 0, flags = wcscmp(mode, L"detached") == 0 ? DETACHED_PROCESS : 0;
      if (wcscmp(mode, L"breakaway") == 0) {
        if (spawn(CREATE_BREAKAWAY_FROM_JOB, &pid))
          say("breakaway allowed");
        else
          say("breakaway refused");
      }
      if (pid == 0 && !spawn(flags, &pid)) {
        say("spawn failed");
        return 90;
      }
      append_pid(file, pid);
    } else if (wcscmp(a, L"ignore-break") == 0) {
      SetConsoleCtrlHandler(ignore, TRUE);
    } else if (wcscmp(a, L"argv") == 0 && i + 2 < argc && wcscmp(argv[i + 2], L"--") == 0) {
      return write_argv(argv[i + 1], argc - (i + 3), argv + i + 3);
    } else {
      fprintf(stderr, "ctrun-child-win: bad script at '%ls'\n", a);
      return 99;
    }
  }
  return 0;
}
