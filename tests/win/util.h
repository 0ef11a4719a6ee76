/* Helpers that the Windows tests share. */
#ifndef CTRUN_TEST_WIN_UTIL_H
#define CTRUN_TEST_WIN_UTIL_H

#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

/* CreateProcessW, tried again while Wine fails to start the new process:
 * ERROR_INTERNAL_ERROR, after "failed to map the shared user data" (an
 * address the new process could not reserve), now and then on a loaded
 * host.  Windows does not fail so, and a test must not fail by it. */
static inline BOOL start_process(const wchar_t *app, wchar_t *line, BOOL inherit, DWORD flags,
                                 STARTUPINFOW *si, PROCESS_INFORMATION *pi) {
  for (int tries = 1;; tries++) {
    BOOL ok = CreateProcessW(app, line, NULL, NULL, inherit, flags, NULL, NULL, si, pi);
    if (ok || GetLastError() != ERROR_INTERNAL_ERROR || tries == 5)
      return ok;
    Sleep(100);
  }
}

/* Delete DIR and everything in it. */
static inline void remove_tree(const wchar_t *dir) {
  WIN32_FIND_DATAW fd;
  wchar_t pattern[MAX_PATH], path[MAX_PATH];
  HANDLE h;
  _snwprintf(pattern, MAX_PATH, L"%ls\\*", dir);
  h = FindFirstFileW(pattern, &fd);
  if (h != INVALID_HANDLE_VALUE) {
    do {
      if (wcscmp(fd.cFileName, L".") == 0 || wcscmp(fd.cFileName, L"..") == 0)
        continue;
      _snwprintf(path, MAX_PATH, L"%ls\\%ls", dir, fd.cFileName);
      if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
        remove_tree(path);
      else
        DeleteFileW(path);
    } while (FindNextFileW(h, &fd));
    FindClose(h);
  }
  RemoveDirectoryW(dir);
}

/* The path in environment variable NAME, made absolute into BUF: under
 * Wine, meson passes Unix paths, which the current drive maps.  Exits 2,
 * naming PROG, when it is not set. */
static inline void env_path_of(const char *prog, const wchar_t *name, wchar_t *buf) {
  wchar_t raw[MAX_PATH];
  DWORD n = GetEnvironmentVariableW(name, raw, MAX_PATH);
  if (n == 0 || n >= MAX_PATH) {
    fprintf(stderr, "%s: set %ls to the built program\n", prog, name);
    exit(2);
  }
  GetFullPathNameW(raw, MAX_PATH, buf, NULL);
}

/* One argument quoted for CommandLineToArgvW, appended to LINE, written
 * here from its documented rules rather than taken from ctrun. */
static inline void quote(wchar_t *line, size_t size, const wchar_t *a) {
  size_t n = wcslen(line);
  if (a[0] != L'\0' && wcspbrk(a, L" \t\n\v\"") == NULL) {
    _snwprintf(line + n, size - n, L" %ls", a);
    return;
  }
  line[n++] = L' ';
  line[n++] = L'"';
  for (const wchar_t *p = a;; p++) {
    size_t bs = 0;
    while (*p == L'\\') {
      bs++;
      p++;
    }
    /* Backslashes are literal, except before a quote (and before the
     * closing quote): there each one is doubled. */
    for (size_t i = 0; i < (*p == L'\0' ? bs * 2 : *p == L'"' ? bs * 2 + 1 : bs); i++)
      line[n++] = L'\\';
    if (*p == L'\0')
      break;
    line[n++] = *p;
  }
  line[n++] = L'"';
  line[n] = L'\0';
}

/* A file for a child's stdout or stderr, inheritable. */
static inline HANDLE open_out(const wchar_t *path) {
  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };
  return CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa, CREATE_ALWAYS,
                     FILE_ATTRIBUTE_NORMAL, NULL);
}

/* Read up to SIZE - 1 bytes of PATH into BUF, NUL-terminated ("" when it
 * cannot be read); their count in *LEN unless NULL. */
static inline void read_file(const wchar_t *path, char *buf, size_t size, DWORD *len) {
  HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, OPEN_EXISTING, 0, NULL);
  DWORD n = 0;
  buf[0] = '\0';
  if (h != INVALID_HANDLE_VALUE) {
    ReadFile(h, buf, (DWORD)size - 1, &n, NULL);
    CloseHandle(h);
  }
  buf[n] = '\0';
  if (len != NULL)
    *len = n;
}

#endif
