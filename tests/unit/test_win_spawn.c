/* The Windows backend's rules for starting a command: which names are
 * batch files (and so go through cmd.exe), how PATH is read, how the
 * program is found, and the environment block the command gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <cmocka.h>
#include <uv.h>

#include "../../src/win/internal.h"
#include "../win/util.h"

/* Windows normalizes a path before it opens it (trailing dots and spaces
 * of the last component go), and CreateProcess decides "batch file" by
 * the extension: every spelling that reaches a .bat or .cmd file counts. */
static void batch_files_by_every_name(void **state) {
  static const wchar_t *const batch[] = {
    L"C:\\d\\x.bat",         L"C:\\d\\X.BAT",       L"C:\\d\\x.Cmd",
    L"C:\\d\\x.bat.",        L"C:\\d\\x.bat ",      L"C:\\d\\x.cmd  ",
    L"C:\\d\\x.bat. . .",    L"C:\\d\\x.bat..",     L"C:\\d\\x.bat::$DATA",
    L"C:\\dir.exe\\x.BaT",   L"x.bat.",             L"C:\\d\\x.bat.\\.",
    L"\\\\?\\C:\\d\\x.bat",  L"C:/d/x.cmd.",        L"x.batch",
    L"\\\\?\\C:\\d\\x.bat ",
  };
  static const wchar_t *const not_batch[] = {
    L"C:\\d\\x.exe",   L"C:\\d\\x.bat.exe", L"C:\\dir.bat\\x.exe", L"C:\\d\\xbat",
    L"C:\\d\\x.ba",    L"C:\\d\\bat",       L"C:\\d\\.cm",         L"\\\\?\\C:\\d\\x.bat.",
  };
  (void)state;
  for (size_t i = 0; i < sizeof batch / sizeof batch[0]; i++)
    if (!ctrun_win_is_batch(batch[i]))
      fail_msg("'%ls' is a batch file", batch[i]);
  for (size_t i = 0; i < sizeof not_batch / sizeof not_batch[0]; i++)
    if (ctrun_win_is_batch(not_batch[i]))
      fail_msg("'%ls' is not a batch file", not_batch[i]);
}

static void path_is(const wchar_t *list, const wchar_t *const *want) {
  const wchar_t *p = list;
  wchar_t *dir;
  size_t i = 0;
  while ((dir = ctrun_win_path_next(&p)) != NULL) {
    if (want[i] == NULL || wcscmp(dir, want[i]) != 0)
      fail_msg("PATH '%ls': entry %u is '%ls', not '%ls'", list, (unsigned)i, dir,
               want[i] ? want[i] : L"(end)");
    free(dir);
    i++;
  }
  if (want[i] != NULL)
    fail_msg("PATH '%ls': entry %u '%ls' missing", list, (unsigned)i, want[i]);
}

/* cmd.exe's reading of PATH: ';' separates outside quotes, quotes go. */
static void path_entries_as_cmd_reads_them(void **state) {
  (void)state;
  path_is(L"a;b", (const wchar_t *const[]){ L"a", L"b", NULL });
  path_is(L"\"C:\\My Tools\";C:\\x", (const wchar_t *const[]){ L"C:\\My Tools", L"C:\\x", NULL });
  path_is(L"\"C:\\a;b\";c", (const wchar_t *const[]){ L"C:\\a;b", L"c", NULL });
  path_is(L"C:\\\"My Tools\"\\bin", (const wchar_t *const[]){ L"C:\\My Tools\\bin", NULL });
  path_is(L";;a;", (const wchar_t *const[]){ L"", L"", L"a", NULL });
  path_is(L"\"open;x", (const wchar_t *const[]){ L"open;x", NULL });
  path_is(L"", (const wchar_t *const[]){ NULL });
}

static wchar_t root[MAX_PATH];

static void make(const wchar_t *rel, bool dir) {
  wchar_t p[MAX_PATH];
  _snwprintf(p, MAX_PATH, L"%ls\\%ls", root, rel);
  if (dir) {
    assert_true(CreateDirectoryW(p, NULL));
  } else {
    HANDLE h = CreateFileW(p, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
    assert_true(h != INVALID_HANDLE_VALUE);
    CloseHandle(h);
  }
}

static void found_at(const char *name, const wchar_t *rel) {
  wchar_t *path = NULL, want[MAX_PATH];
  int r = ctrun_win_search(name, &path);
  if (rel == NULL) {
    assert_int_equal(r, UV_ENOENT);
    return;
  }
  _snwprintf(want, MAX_PATH, L"%ls\\%ls", root, rel);
  if (r != 0 || _wcsicmp(path, want) != 0)
    fail_msg("'%s' found as '%ls', not '%ls'", name, r == 0 ? path : L"(nothing)", want);
  free(path);
}

/* The search itself: quoted PATH entries, PATH order, PATHEXT order, a
 * name with an extension of its own. */
static void programs_are_found_as_cmd_finds_them(void **state) {
  static const wchar_t *const tree[] = {
    L"My Tools", L"semi;colon", L"part q", L"first", L"second", NULL,
  };
  wchar_t tmp[MAX_PATH], path[4 * MAX_PATH];
  (void)state;
  GetTempPathW(MAX_PATH, tmp);
  _snwprintf(root, MAX_PATH, L"%lsctrun-unit-%lu-%llu", tmp, GetCurrentProcessId(),
             (unsigned long long)GetTickCount64());
  assert_true(CreateDirectoryW(root, NULL));
  for (size_t i = 0; tree[i] != NULL; i++)
    make(tree[i], true);
  make(L"My Tools\\mytool.exe", false);
  make(L"semi;colon\\semi.exe", false);
  make(L"part q\\partq.exe", false);
  make(L"first\\both.cmd", false);
  make(L"first\\both.exe", false);
  make(L"first\\dup.exe", false);
  make(L"second\\dup.exe", false);
  make(L"second\\noext", false);
  _snwprintf(path, 4 * MAX_PATH, L"\"%ls\\My Tools\";\"%ls\\semi;colon\";%ls\\\"part q\";;%ls\\first;%ls\\second",
             root, root, root, root, root);
  SetEnvironmentVariableW(L"PATH", path);
  SetEnvironmentVariableW(L"PATHEXT", L".COM;.EXE;.BAT;.CMD");
  found_at("mytool", L"My Tools\\mytool.exe");
  found_at("semi", L"semi;colon\\semi.exe");
  found_at("partq", L"part q\\partq.exe");
  found_at("both", L"first\\both.exe"); /* .EXE before .CMD */
  found_at("both.cmd", L"first\\both.cmd");
  found_at("dup", L"first\\dup.exe"); /* the first directory */
  found_at("noext", NULL);             /* no extension, nothing to run */
  found_at("ctrun-no-such-program", NULL);
  remove_tree(root);
}

static const char *const env_in[] = {
  "CTRUN_RUN_ID=real", "b=1", "A=2", "ctrun_run_id=forged", "Path=p1", "=C:=C:\\x", "a=3",
  "\xff=bad", "CTRUN_RUN_ID=later",
  NULL,
};
static const wchar_t env_out[] = L"=C:=C:\\x\0A=2\0b=1\0CTRUN_RUN_ID=real\0Path=p1\0";

/* One entry a name, Windows' way (without case), the first given winning
 * (ctrun gives its own first); three of one name keep only the first;
 * sorted as Windows requires; what has no UTF-16 form left out. */
static void environment_block(void **state) {
  wchar_t *block = ctrun_win_env_block((char *const *)env_in);
  (void)state;
  assert_non_null(block);
  assert_memory_equal(block, env_out, sizeof env_out);
  free(block);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(batch_files_by_every_name),
    cmocka_unit_test(path_entries_as_cmd_reads_them),
    cmocka_unit_test(programs_are_found_as_cmd_finds_them),
    cmocka_unit_test(environment_block),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
