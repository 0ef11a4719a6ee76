/* What the Windows backend's files share: UTF-8 <-> UTF-16 at the API
 * boundary, error translation, and how a command line is built. */
#ifndef CTRUN_WIN_INTERNAL_H
#define CTRUN_WIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <windows.h>

/* S (UTF-8) as a new UTF-16 string, or NULL when S is not valid UTF-8 or
 * memory is short.  Free with free(). */
wchar_t *ctrun_win_wide(const char *s);

/* W (UTF-16) as a new UTF-8 string, or NULL.  Free with free(). */
char *ctrun_win_utf8(const wchar_t *w);

/* A Windows error code as a negative libuv error. */
int ctrun_win_error(DWORD err);

/* Find the program NAME as cmd.exe would: a name with a directory part is
 * taken as it is, else the current directory (unless
 * NoDefaultCurrentDirectoryInExePath is set) and then each directory of
 * PATH are searched, in order; in each, the name itself if it has an
 * extension, then the name with each extension of PATHEXT, ".exe" always
 * among them.  Returns 0 with *PATH (free()) or UV_ENOENT. */
int ctrun_win_search(const char *name, wchar_t **path);

/* The next directory of the PATH list at *P, read as cmd.exe reads it: an
 * entry ends at a ';' outside double quotes, and the quotes themselves
 * are dropped, so that "C:\My Tools", "C:;b" and C:"My Tools" are each
 * one directory.  Returns a new string ("" for an empty entry; free()),
 * or NULL at the end of the list. */
wchar_t *ctrun_win_path_next(const wchar_t **p);

/* Whether Windows runs PATH as a batch file, that is through cmd.exe, with
 * a command line that cmd reads by its own rules: when the extension of
 * its last component begins with ".bat" or ".cmd", in any case, once the
 * path is normalized as Windows normalizes it before opening it ("x.bat.",
 * "x.bat  ", "X.BAT" and "x.bat::$DATA" all name x.bat).  A \?\ path is
 * taken as it is. */
bool ctrun_win_is_batch(const wchar_t *path);

/* ENV (UTF-8 "NAME=value" strings) as a UTF-16 environment block for
 * CreateProcessW: sorted by name without regard to case, as Windows
 * requires, and with one entry a name, where names that differ only in
 * case are one (the last given wins, so an entry appended overrides). */
wchar_t *ctrun_win_env_block(char *const *env);

/* The application and command line that start ARGV: ARGV[0] is searched
 * for; batch files run under %ComSpec%.  The command line quotes every
 * argument so that CommandLineToArgvW in the child gives ARGV back.
 * Returns 0, UV_ENOENT, or UV_EINVAL for an argument a batch file cannot
 * receive intact (or a script path with a % in it). */
int ctrun_win_command(char *const *argv, wchar_t **app, wchar_t **cmdline);

/* ARGV quoted into one command line (the rules of CommandLineToArgvW). */
wchar_t *ctrun_win_quote_argv(char *const *argv);

/* Start a process with only the handles in INHERIT[0..N) inherited (N may
 * be 0).  Like CreateProcessW otherwise; returns 0 or a Windows error. */
DWORD ctrun_win_create_process(const wchar_t *app, wchar_t *cmdline, DWORD flags, void *env,
                               HANDLE stdio[3], HANDLE *inherit, size_t n,
                               PROCESS_INFORMATION *pi);

/* First thing: take the detached supervisor's marker (set by the ctrun
 * that started this one) out of the environment, where no command may
 * see it; a variable of that name from elsewhere is dropped all the same. */
void ctrun_win_detach_init(void);

/* The console handler of a supervising ctrun: when the console closes,
 * or the user logs off or the system shuts down, it kills the tree hard
 * and returns only once it is gone (or 3 s have passed), for Windows ends
 * ctrun a few seconds later whatever it does, and the lock must outlive
 * the tree.  Returns FALSE, so that libuv's handler then tells the loop
 * (SIGHUP), which ends the run as usual. */
BOOL WINAPI ctrun_win_console_end(DWORD type);

#endif
