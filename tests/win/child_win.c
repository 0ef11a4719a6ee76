/* ctrun-child-win: the program that the Windows end-to-end tests run under
 * ctrun.exe.  Its arguments are a little script, run in order:
 *
 *   sleep SECS          out TEXT            append FILE TEXT (and a newline)
 *   exit N              exit with N: decimal, or 0x... hex; all 32 bits
 *   crash               write through a null pointer (an access violation
 *                       that nobody handles)
 *   pidfile FILE        append this process's pid to FILE
 *   spawn MODE FILE     start "sleep 300" of this program and append its
 *                       pid to FILE; MODE: plain, detached
 *                       (DETACHED_PROCESS) or breakaway
 *                       (CREATE_BREAKAWAY_FROM_JOB; when refused, it says
 *                       "breakaway refused" and starts it plainly)
 *   spawn-with MODE FILE SCRIPT
 *                       the same, running SCRIPT (one argument, read as a
 *                       command line) instead of "sleep 300"
 *   ignore-break        ignore CTRL_BREAK, so only a hard kill ends it
 *   argv FILE -- ARG... write each ARG as UTF-8, NUL-terminated, to FILE
 *                       (as CommandLineToArgvW gives them) and exit 0
 *   lines N TAG MS      write N lines "TAG <i> ..." of one length to stdout,
 *                       each with one WriteFile and MS milliseconds apart,
 *                       as a program that logs does
 *   env-dump FILE       write the environment block to FILE, one UTF-8 line
 *                       an entry, in the block's order
 *   stdio FILE          write the types (GetFileType) of the standard
 *                       handles to FILE: "in=T out=T err=T", each T
 *                       followed by "c" when the handle is a console
 *   hold FILE SECS SHARE
 *                       keep FILE open (created if missing) for SECS with
 *                       share mode SHARE: none, read or read-delete; says
 *                       "held" once it is open
 *   lock FILE SECS      hold the lock ctrun takes on FILE (LockFileEx on
 *                       the byte at 2^62) for SECS; says "locked"
 *   hold-job            open this run's job by its name (from CTRUN_RUN_ID)
 *                       for query only and keep the handle, as a process
 *                       that wants to outlive ctrun would
 *   burn SECS           keep a CPU busy for SECS (by the clock)
 *   alloc MIB           commit MIB MiB, 4 MiB at a time, and write to every
 *                       page; says "allocated N MiB", and "alloc refused"
 *                       if an allocation failed (the script goes on)
 *   spawn-n N FILE      start N "sleep 300" of this program, appending each
 *                       pid to FILE; says "spawned K of N" (the script goes
 *                       on when some could not be started)
 *   priority FILE       append this process's priority class (hex) to FILE
 *   job-info FILE       append, from this run's job opened by its name, its
 *                       limits and accounting to FILE: "flags=0x.. jobmem=N
 *                       active=N prio=0x.. user=N kernel=N peak=N"
 *                       (times in 100 ns), or "job-info failed"
 *   hijack-job          try to take control of the job this process runs
 *                       in: open it by name with the right to change it
 *                       (then with all rights), and duplicate ctrun's own
 *                       handles; with any job handle so won, allow
 *                       breakaway and clear kill-on-close.  Says
 *                       "hijack ROUTE: refused" or "hijack ROUTE: done"
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
#include <tlhelp32.h>
#include <wchar.h>

#include "util.h"

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

/* Start this very program with SCRIPT and FLAGS. */
static BOOL spawn(DWORD flags, const wchar_t *script, DWORD *pid) {
  static wchar_t cmd[32768];
  wchar_t self[MAX_PATH];
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  GetModuleFileNameW(NULL, self, MAX_PATH);
  _snwprintf(cmd, sizeof cmd / sizeof cmd[0], L"\"%ls\" %ls", self, script);
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  if (!start_process(self, cmd, FALSE, flags, &si, &pi))
    return FALSE;
  *pid = pi.dwProcessId;
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return TRUE;
}

static int spawn_mode(const wchar_t *mode, const wchar_t *file, const wchar_t *script) {
  DWORD pid = 0, flags = wcscmp(mode, L"detached") == 0 ? DETACHED_PROCESS : 0;
  if (wcscmp(mode, L"breakaway") == 0) {
    if (spawn(CREATE_BREAKAWAY_FROM_JOB, script, &pid))
      say("breakaway allowed");
    else
      say("breakaway refused");
  }
  if (pid == 0 && !spawn(flags, script, &pid)) {
    say("spawn failed");
    return 90;
  }
  append_pid(file, pid);
  return 0;
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

static void lines(int n, const wchar_t *tag, DWORD ms) {
  HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
  for (int i = 0; i < n; i++) {
    char line[256];
    DWORD w;
    int len = snprintf(line, sizeof line, "%ls %04d abcdefghijklmnopqrstuvwxyz0123456789\n", tag, i);
    WriteFile(out, line, (DWORD)len, &w, NULL);
    if (ms > 0)
      Sleep(ms);
  }
}

static int env_dump(const wchar_t *file) {
  wchar_t *env = GetEnvironmentStringsW();
  HANDLE h = CreateFileW(file, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  if (env == NULL || h == INVALID_HANDLE_VALUE)
    return 2;
  for (wchar_t *e = env; *e; e += wcslen(e) + 1) {
    char buf[8192];
    DWORD n;
    int len = WideCharToMultiByte(CP_UTF8, 0, e, -1, buf, sizeof buf - 1, NULL, NULL);
    if (len <= 0)
      continue;
    buf[len - 1] = '\n';
    WriteFile(h, buf, (DWORD)len, &n, NULL);
  }
  CloseHandle(h);
  FreeEnvironmentStringsW(env);
  return 0;
}

static void stdio_types(const wchar_t *file) {
  static const DWORD which[3] = { STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE };
  static const char *const names[3] = { "in", "out", "err" };
  char line[64];
  int n = 0;
  for (int i = 0; i < 3; i++) {
    HANDLE h = GetStdHandle(which[i]);
    DWORD mode;
    n += snprintf(line + n, sizeof line - n, "%s%s=%lu%s", i ? " " : "", names[i],
                  (unsigned long)GetFileType(h), GetConsoleMode(h, &mode) ? "c" : "");
  }
  snprintf(line + n, sizeof line - n, "\n");
  append(file, line);
}

static int hold(const wchar_t *file, double secs, const wchar_t *share) {
  DWORD mode = wcscmp(share, L"read") == 0          ? FILE_SHARE_READ
               : wcscmp(share, L"read-delete") == 0 ? FILE_SHARE_READ | FILE_SHARE_DELETE
                                                    : 0;
  HANDLE h = CreateFileW(file, GENERIC_READ | GENERIC_WRITE, mode, NULL, OPEN_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, NULL);
  if (h == INVALID_HANDLE_VALUE) {
    say("hold failed");
    return 91;
  }
  say("held");
  Sleep((DWORD)(secs * 1000));
  CloseHandle(h);
  return 0;
}

static int lock(const wchar_t *file, double secs) {
  OVERLAPPED ov;
  HANDLE h = CreateFileW(file, GENERIC_READ | GENERIC_WRITE,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_ALWAYS,
                         FILE_ATTRIBUTE_NORMAL, NULL);
  memset(&ov, 0, sizeof ov);
  ov.OffsetHigh = 1u << 30;
  if (h == INVALID_HANDLE_VALUE ||
      !LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ov)) {
    say("lock failed");
    return 92;
  }
  say("locked");
  Sleep((DWORD)(secs * 1000));
  CloseHandle(h);
  return 0;
}

/* "Local\ctrun-<id>": how ctrun names the job of run <id>. */
static HANDLE open_job_by_name(DWORD access) {
  wchar_t id[64], name[96];
  DWORD n = GetEnvironmentVariableW(L"CTRUN_RUN_ID", id, 64);
  if (n == 0 || n >= 64)
    return NULL;
  _snwprintf(name, 96, L"Local\\ctrun-%ls", id);
  return OpenJobObjectW(access, FALSE, name);
}

/* Allow breakaway from JOB and let it outlive ctrun. */
static BOOL take_over(HANDLE job) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  if (!QueryInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li, NULL))
    return FALSE;
  li.BasicLimitInformation.LimitFlags |=
    JOB_OBJECT_LIMIT_BREAKAWAY_OK | JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK;
  li.BasicLimitInformation.LimitFlags &= ~(DWORD)JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  return SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li);
}

static void report(const char *route, BOOL done) {
  char line[96];
  snprintf(line, sizeof line, "hijack %s: %s", route, done ? "done" : "refused");
  say(line);
}

static DWORD parent_pid(void) {
  PROCESSENTRY32W pe;
  DWORD self = GetCurrentProcessId(), parent = 0;
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  if (snap == INVALID_HANDLE_VALUE)
    return 0;
  pe.dwSize = sizeof pe;
  for (BOOL ok = Process32FirstW(snap, &pe); ok; ok = Process32NextW(snap, &pe))
    if (pe.th32ProcessID == self)
      parent = pe.th32ParentProcessID;
  CloseHandle(snap);
  return parent;
}

/* Every handle won is kept open on purpose: it is what would keep the job
 * alive after ctrun. */
static void hijack(void) {
  HANDLE job, parent;
  BOOL done = FALSE;

  job = open_job_by_name(JOB_OBJECT_SET_ATTRIBUTES | JOB_OBJECT_QUERY);
  report("name-set", job != NULL && take_over(job));
  job = open_job_by_name(JOB_OBJECT_ALL_ACCESS);
  report("name-all", job != NULL && take_over(job));
  /* The supervising ctrun holds every job of the run with all rights. */
  parent = OpenProcess(PROCESS_DUP_HANDLE, FALSE, parent_pid());
  for (ULONG_PTR v = 4; parent != NULL && v < 0x10000; v += 4) {
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION info;
    BOOL in = FALSE;
    if (!DuplicateHandle(parent, (HANDLE)v, GetCurrentProcess(), &job, 0, FALSE,
                         DUPLICATE_SAME_ACCESS))
      continue;
    if (QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &info, sizeof info,
                                  NULL) &&
        IsProcessInJob(GetCurrentProcess(), job, &in) && in && take_over(job))
      done = TRUE;
    else
      CloseHandle(job);
  }
  report("parent-dup", done);
}

static void burn(double secs) {
  volatile unsigned long x = 0;
  ULONGLONG until = GetTickCount64() + (ULONGLONG)(secs * 1000);
  while (GetTickCount64() < until)
    for (int k = 0; k < 100000; k++)
      x += (unsigned long)k;
}

/* Kept, and resident, until the process exits. */
static void alloc(int mib) {
  char line[64];
  int done = 0;
  for (; done < mib; done += 4) {
    volatile char *p = VirtualAlloc(NULL, 4 << 20, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (p == NULL)
      break;
    for (size_t k = 0; k < (4u << 20); k += 4096)
      p[k] = 1;
  }
  snprintf(line, sizeof line, "allocated %d MiB", done);
  say(line);
  if (done < mib)
    say("alloc refused");
}

static void spawn_n(int n, const wchar_t *file) {
  char line[64];
  int k = 0;
  for (int i = 0; i < n; i++) {
    DWORD pid;
    if (spawn(0, L"sleep 300", &pid)) {
      append_pid(file, pid);
      k++;
    }
  }
  snprintf(line, sizeof line, "spawned %d of %d", k, n);
  say(line);
}

static void priority(const wchar_t *file) {
  char line[32];
  snprintf(line, sizeof line, "0x%lx\n", (unsigned long)GetPriorityClass(GetCurrentProcess()));
  append(file, line);
}

static void job_info(const wchar_t *file) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
  HANDLE job = open_job_by_name(JOB_OBJECT_QUERY);
  char line[256];
  memset(&li, 0, sizeof li);
  memset(&acct, 0, sizeof acct);
  if (job == NULL ||
      !QueryInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li, NULL) ||
      !QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &acct, sizeof acct,
                                 NULL)) {
    append(file, "job-info failed\n");
    return;
  }
  snprintf(line, sizeof line,
           "flags=0x%lx jobmem=%llu active=%lu prio=0x%lx user=%lld kernel=%lld peak=%llu\n",
           (unsigned long)li.BasicLimitInformation.LimitFlags,
           (unsigned long long)li.JobMemoryLimit,
           (unsigned long)li.BasicLimitInformation.ActiveProcessLimit,
           (unsigned long)li.BasicLimitInformation.PriorityClass,
           (long long)acct.TotalUserTime.QuadPart, (long long)acct.TotalKernelTime.QuadPart,
           (unsigned long long)li.PeakJobMemoryUsed);
  append(file, line);
  CloseHandle(job);
}

int main(void) {
  int argc;
  wchar_t **argv = CommandLineToArgvW(GetCommandLineW(), &argc);
  wchar_t all[MAX_PATH];

  if (GetEnvironmentVariableW(L"CTRUN_TEST_PIDS", all, MAX_PATH) - 1u < MAX_PATH - 1u)
    append_pid(all, GetCurrentProcessId());

  for (int i = 1; i < argc; i++) {
    const wchar_t *a = argv[i];
    int r = 0;
    if (wcscmp(a, L"sleep") == 0 && i + 1 < argc) {
      Sleep((DWORD)(_wtof(argv[++i]) * 1000));
    } else if (wcscmp(a, L"exit") == 0 && i + 1 < argc) {
      fflush(NULL);
      ExitProcess((UINT)wcstoul(argv[++i], NULL, 0));
    } else if (wcscmp(a, L"crash") == 0) {
      SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
      *(volatile int *)(uintptr_t)argc = 0; /* argc is far below any mapping */
    } else if (wcscmp(a, L"out") == 0 && i + 1 < argc) {
      printf("%ls\n", argv[++i]);
      fflush(stdout);
    } else if (wcscmp(a, L"append") == 0 && i + 2 < argc) {
      char text[1024];
      snprintf(text, sizeof text, "%ls\n", argv[i + 2]);
      append(argv[i + 1], text);
      i += 2;
    } else if (wcscmp(a, L"pidfile") == 0 && i + 1 < argc) {
      append_pid(argv[++i], GetCurrentProcessId());
    } else if (wcscmp(a, L"spawn") == 0 && i + 2 < argc) {
      r = spawn_mode(argv[i + 1], argv[i + 2], L"sleep 300");
      i += 2;
    } else if (wcscmp(a, L"spawn-with") == 0 && i + 3 < argc) {
      r = spawn_mode(argv[i + 1], argv[i + 2], argv[i + 3]);
      i += 3;
    } else if (wcscmp(a, L"ignore-break") == 0) {
      SetConsoleCtrlHandler(ignore, TRUE);
    } else if (wcscmp(a, L"argv") == 0 && i + 2 < argc && wcscmp(argv[i + 2], L"--") == 0) {
      return write_argv(argv[i + 1], argc - (i + 3), argv + i + 3);
    } else if (wcscmp(a, L"lines") == 0 && i + 3 < argc) {
      lines(_wtoi(argv[i + 1]), argv[i + 2], (DWORD)_wtoi(argv[i + 3]));
      i += 3;
    } else if (wcscmp(a, L"env-dump") == 0 && i + 1 < argc) {
      r = env_dump(argv[++i]);
    } else if (wcscmp(a, L"stdio") == 0 && i + 1 < argc) {
      stdio_types(argv[++i]);
    } else if (wcscmp(a, L"hold") == 0 && i + 3 < argc) {
      r = hold(argv[i + 1], _wtof(argv[i + 2]), argv[i + 3]);
      i += 3;
    } else if (wcscmp(a, L"lock") == 0 && i + 2 < argc) {
      r = lock(argv[i + 1], _wtof(argv[i + 2]));
      i += 2;
    } else if (wcscmp(a, L"hold-job") == 0) {
      say(open_job_by_name(JOB_OBJECT_QUERY) != NULL ? "job held" : "job not held");
    } else if (wcscmp(a, L"burn") == 0 && i + 1 < argc) {
      burn(_wtof(argv[++i]));
    } else if (wcscmp(a, L"alloc") == 0 && i + 1 < argc) {
      alloc(_wtoi(argv[++i]));
    } else if (wcscmp(a, L"spawn-n") == 0 && i + 2 < argc) {
      spawn_n(_wtoi(argv[i + 1]), argv[i + 2]);
      i += 2;
    } else if (wcscmp(a, L"priority") == 0 && i + 1 < argc) {
      priority(argv[++i]);
    } else if (wcscmp(a, L"job-info") == 0 && i + 1 < argc) {
      job_info(argv[++i]);
    } else if (wcscmp(a, L"hijack-job") == 0) {
      hijack();
    } else {
      fprintf(stderr, "ctrun-child-win: bad script at '%ls'\n", a);
      return 99;
    }
    if (r != 0)
      return r;
  }
  return 0;
}
