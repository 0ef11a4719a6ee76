/* Helpers that the Windows tests share. */
#ifndef CTRUN_TEST_WIN_UTIL_H
#define CTRUN_TEST_WIN_UTIL_H

#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

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

#endif
