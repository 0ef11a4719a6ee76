/* The Windows container: a job object per run, named after the run so that
 * ps and cleanup can re-open it.  The command is created suspended, put in
 * the job and only then resumed, so none of its instructions runs outside;
 * the job forbids breakaway and kills everything when its last handle
 * closes, which is when ctrun dies.  A thread waits on the job's completion
 * port and wakes the libuv loop; since the port's messages are not
 * guaranteed, it also polls the job's count. */
#include "ctrun/proc.h"

#include <io.h>
#include <shellapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ctrun/registry.h"
#include "internal.h"

/* Completion keys of the watcher thread's port. */
enum { KEY_JOB = 1, KEY_STARTED, KEY_STOP_EVENT, KEY_QUIT };

/* How often the watcher re-checks the job without a message. */
#define POLL_MS 100

/* The exit code of a process killed hard, as a shell reports SIGKILL, so
 * that --preserve-status reads the same on every platform. */
#define KILLED_CODE (128 + SIGKILL)

struct ctrun_tree {
  uv_async_t async;
  ctrun_tree_cb cb, stop_cb;
  void *data;
  HANDLE port, thread, job, process, stop_event;
  HANDLE held; /* the command's first thread, suspended until started */
  DWORD pid;
  volatile LONG stop_requested;
  bool exited, closing;
  int status;
};

/* The job's name for run ID: "Local\ctrun-<id>". */
static void job_name(wchar_t *buf, size_t size, const char *prefix, const char *id) {
  _snwprintf(buf, size - 1, L"Local\\%hs%hs", prefix, id);
  buf[size - 1] = L'\0';
}

static DWORD active_processes(HANDLE job) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION info;
  if (job == NULL ||
      !QueryInformationJobObject(job, JobObjectBasicAccountingInformation, &info, sizeof info, NULL))
    return 0;
  return info.ActiveProcesses;
}

/* Whether H is a console host, which Windows (and Wine) starts inside the
 * job for a command given a console of its own, and which ends by itself
 * with its last client. */
static bool is_console_host(HANDLE h) {
  wchar_t path[MAX_PATH];
  DWORD n = MAX_PATH;
  const wchar_t *base;
  if (!QueryFullProcessImageNameW(h, 0, path, &n))
    return false;
  base = wcsrchr(path, L'\\');
  return _wcsicmp(base ? base + 1 : path, L"conhost.exe") == 0;
}

/* The processes of the tree that still run, console hosts aside.  The
 * job's count lags behind an exit for a moment (a process is signalled
 * before it leaves its job), so members that have exited are not
 * counted. */
static int live_members(HANDLE job, DWORD main_pid, bool main_exited) {
  struct {
    JOBOBJECT_BASIC_PROCESS_ID_LIST list;
    ULONG_PTR more[1023];
  } ids;
  DWORD active = active_processes(job);
  int n = 0;

  if (active == 0)
    return 0;
  if (!QueryInformationJobObject(job, JobObjectBasicProcessIdList, &ids, sizeof ids, NULL) ||
      ids.list.NumberOfProcessIdsInList < ids.list.NumberOfAssignedProcesses)
    return (int)active;
  for (DWORD i = 0; i < ids.list.NumberOfProcessIdsInList; i++) {
    DWORD pid = (DWORD)ids.list.ProcessIdList[i];
    HANDLE h;

    if (pid == main_pid) {
      n += !main_exited;
      continue;
    }
    h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (h == NULL) {
      n++; /* cannot tell: count it */
      continue;
    }
    n += WaitForSingleObject(h, 0) != WAIT_OBJECT_0 && !is_console_host(h);
    CloseHandle(h);
  }
  return n;
}

/* The watcher thread: every message of the job, every stop request and
 * every change the polling sees becomes one uv_async_send; the loop thread
 * then looks for itself what changed. */
static DWORD WINAPI watch(void *arg) {
  struct ctrun_tree *t = arg;
  HANDLE job = NULL, process = NULL, stop = NULL;
  DWORD last = (DWORD)-1;
  bool main_gone = false;

  for (;;) {
    DWORD msg = 0, n;
    ULONG_PTR key = 0;
    OVERLAPPED *ov = NULL;
    bool wake = false;
    BOOL ok = GetQueuedCompletionStatus(t->port, &msg, &key, &ov, POLL_MS);

    if (ok && key == KEY_QUIT)
      break;
    if (ok && key == KEY_STARTED) {
      /* Written by the loop thread before the post: safe to read now. */
      job = t->job;
      process = t->process;
      wake = true;
    } else if (ok && key == KEY_STOP_EVENT) {
      stop = (HANDLE)ov;
    } else if (ok && key == KEY_JOB) {
      wake = msg == JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO || msg == JOB_OBJECT_MSG_EXIT_PROCESS ||
             msg == JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS;
    }
    if (job != NULL) {
      n = active_processes(job);
      if (n != last) {
        last = n;
        wake = true;
      }
      if (!main_gone && WaitForSingleObject(process, 0) == WAIT_OBJECT_0) {
        main_gone = true;
        wake = true;
      }
    }
    if (stop != NULL && WaitForSingleObject(stop, 0) == WAIT_OBJECT_0) {
      InterlockedExchange(&t->stop_requested, 1);
      wake = true;
    }
    if (wake)
      uv_async_send(&t->async);
  }
  return 0;
}

/* Note the command's exit, once it has happened. */
static void refresh(struct ctrun_tree *t) {
  DWORD code;
  if (t->process == NULL || t->exited || WaitForSingleObject(t->process, 0) != WAIT_OBJECT_0)
    return;
  t->exited = true;
  t->status = GetExitCodeProcess(t->process, &code) ? (int)code : 1;
}

static void on_async(uv_async_t *h) {
  struct ctrun_tree *t = h->data;
  if (t->closing)
    return;
  refresh(t);
  if (InterlockedExchange(&t->stop_requested, 0) && t->stop_cb != NULL) {
    t->stop_cb(t, t->data);
    if (t->closing)
      return; /* the callback ended the run */
  }
  t->cb(t, t->data);
}

int ctrun_tree_new(uv_loop_t *loop, ctrun_tree_cb cb, void *data, struct ctrun_tree **out) {
  struct ctrun_tree *t = calloc(1, sizeof *t);
  int r;

  if (t == NULL)
    return UV_ENOMEM;
  t->cb = cb;
  t->data = data;
  t->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  if (t->port == NULL) {
    r = ctrun_win_error(GetLastError());
    free(t);
    return r;
  }
  r = uv_async_init(loop, &t->async, on_async);
  if (r != 0) {
    CloseHandle(t->port);
    free(t);
    return r;
  }
  t->async.data = t;
  t->thread = CreateThread(NULL, 0, watch, t, 0, NULL);
  if (t->thread == NULL) {
    r = ctrun_win_error(GetLastError());
    ctrun_tree_free(t);
    return r;
  }
  *out = t;
  return 0;
}

int ctrun_tree_watch_stop(struct ctrun_tree *t, const char *run_id, ctrun_tree_cb cb) {
  wchar_t name[64];
  job_name(name, sizeof name / sizeof name[0], "ctrun-stop-", run_id);
  /* Auto-reset: each ctrun stop is one request. */
  t->stop_event = CreateEventW(NULL, FALSE, FALSE, name);
  if (t->stop_event == NULL)
    return ctrun_win_error(GetLastError());
  if (GetLastError() == ERROR_ALREADY_EXISTS) {
    CloseHandle(t->stop_event);
    t->stop_event = NULL;
    return UV_EEXIST; /* not ours: someone squats the name */
  }
  t->stop_cb = cb;
  PostQueuedCompletionStatus(t->port, 0, KEY_STOP_EVENT, (OVERLAPPED *)t->stop_event);
  return 0;
}

/* S->ENV as a UTF-16 environment block. */
static wchar_t *env_block(char **env) {
  size_t total = 1, at = 0;
  wchar_t *block, **w;
  size_t n = 0;

  while (env[n] != NULL)
    n++;
  w = calloc(n + 1, sizeof *w);
  if (w == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    w[i] = ctrun_win_wide(env[i]);
    if (w[i] != NULL)
      total += wcslen(w[i]) + 1;
  }
  block = malloc(total * sizeof *block);
  for (size_t i = 0; i < n; i++) {
    if (block != NULL && w[i] != NULL) {
      size_t len = wcslen(w[i]) + 1;
      wmemcpy(block + at, w[i], len);
      at += len;
    }
    free(w[i]);
  }
  free(w);
  if (block != NULL)
    block[at] = L'\0';
  return block;
}

/* The handle behind FD for the child, or ctrun's own standard handle. */
static HANDLE std_handle(int fd, DWORD which) {
  if (fd >= 0)
    return (HANDLE)_get_osfhandle(fd);
  return GetStdHandle(which);
}

static bool valid(HANDLE h) { return h != NULL && h != INVALID_HANDLE_VALUE; }

/* Whether ctrun is attached to a console at all; one without a window
 * (a windowless console of a service or a scheduled task) still counts. */
static bool has_console(void) { return GetConsoleWindow() != NULL || GetConsoleCP() != 0; }

/* Create the run's job: named, no breakaway, kill on close, reporting to
 * the watcher's port. */
static int make_job(struct ctrun_tree *t, const char *run_id) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  JOBOBJECT_ASSOCIATE_COMPLETION_PORT acp;
  wchar_t name[64];

  job_name(name, sizeof name / sizeof name[0], "ctrun-", run_id);
  t->job = CreateJobObjectW(NULL, name);
  if (t->job == NULL)
    return ctrun_win_error(GetLastError());
  if (GetLastError() == ERROR_ALREADY_EXISTS) {
    CloseHandle(t->job);
    t->job = NULL;
    return UV_EEXIST;
  }
  memset(&li, 0, sizeof li);
  /* Neither BREAKAWAY_OK nor SILENT_BREAKAWAY_OK: a process of the tree
   * cannot leave it.  An unhandled crash ends the process instead of
   * waiting on an error dialog that nobody will see. */
  li.BasicLimitInformation.LimitFlags =
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
  if (!SetInformationJobObject(t->job, JobObjectExtendedLimitInformation, &li, sizeof li))
    return ctrun_win_error(GetLastError());
  acp.CompletionKey = (void *)(ULONG_PTR)KEY_JOB;
  acp.CompletionPort = t->port;
  if (!SetInformationJobObject(t->job, JobObjectAssociateCompletionPortInformation, &acp, sizeof acp))
    return ctrun_win_error(GetLastError());
  return 0;
}

int ctrun_tree_spawn(struct ctrun_tree *t, const struct ctrun_spawn *s) {
  static const DWORD which[3] = { STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE };
  HANDLE stdio[3] = { NULL, NULL, NULL }, inherit[3];
  wchar_t *app = NULL, *cmdline = NULL, *env = NULL;
  PROCESS_INFORMATION pi;
  DWORD flags, err;
  size_t n = 0;
  int r;

  r = ctrun_win_command(s->argv, &app, &cmdline);
  if (r != 0)
    return r;
  env = env_block(s->env);
  if (env == NULL) {
    r = UV_ENOMEM;
    goto out;
  }
  r = make_job(t, s->run_id);
  if (r != 0)
    goto out;
  for (int i = 0; i < 3; i++) {
    HANDLE h = std_handle(s->stdio[i], which[i]);
    if (valid(h) && DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), &stdio[i], 0, TRUE,
                                    DUPLICATE_SAME_ACCESS))
      inherit[n++] = stdio[i];
    else
      stdio[i] = NULL;
  }
  /* Suspended until it is in the job; its own process group so that
   * CTRL_BREAK reaches the tree and not ctrun; no console window when
   * ctrun has no console (ctrunw, a detached run), where a console
   * program would otherwise open one. */
  flags = CREATE_SUSPENDED | CREATE_NEW_PROCESS_GROUP | CREATE_UNICODE_ENVIRONMENT;
  if (!has_console())
    flags |= CREATE_NO_WINDOW;
  err = ctrun_win_create_process(app, cmdline, flags, env, stdio, inherit, n, &pi);
  if (err != 0) {
    r = err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND ? UV_ENOENT
        : err == ERROR_ACCESS_DENIED ? UV_EACCES : ctrun_win_error(err);
    goto out;
  }
  if (!AssignProcessToJobObject(t->job, pi.hProcess)) {
    r = ctrun_win_error(GetLastError());
    TerminateProcess(pi.hProcess, KILLED_CODE);
    WaitForSingleObject(pi.hProcess, INFINITE);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    goto out;
  }
  t->process = pi.hProcess;
  t->pid = pi.dwProcessId;
  t->held = pi.hThread; /* resumed by ctrun_tree_start */
  PostQueuedCompletionStatus(t->port, 0, KEY_STARTED, NULL);
out:
  for (int i = 0; i < 3; i++)
    if (stdio[i] != NULL)
      CloseHandle(stdio[i]);
  free(app);
  free(cmdline);
  free(env);
  return r;
}

int ctrun_tree_start(struct ctrun_tree *t) {
  DWORD r;
  if (t->held == NULL)
    return UV_EINVAL;
  r = ResumeThread(t->held);
  CloseHandle(t->held);
  t->held = NULL;
  return r == (DWORD)-1 ? ctrun_win_error(GetLastError()) : 0;
}

long ctrun_tree_pid(const struct ctrun_tree *t) { return (long)t->pid; }

/* With CREATE_NEW_PROCESS_GROUP the command's pid names its console
 * process group. */
long ctrun_tree_pgid(const struct ctrun_tree *t) { return (long)t->pid; }

bool ctrun_tree_exited(const struct ctrun_tree *t, int *status, int *termsig) {
  if (t->exited) {
    *status = t->status;
    *termsig = 0;
  }
  return t->exited;
}

bool ctrun_tree_empty(struct ctrun_tree *t) {
  refresh(t);
  if (t->process == NULL)
    return true;
  return t->exited && live_members(t->job, t->pid, t->exited) == 0;
}

int ctrun_tree_count(struct ctrun_tree *t) {
  if (t->job == NULL)
    return 0;
  refresh(t);
  return live_members(t->job, t->pid, t->exited);
}

/* CTRL_BREAK needs a console shared with the group.  A ctrun without one
 * (ctrunw, a detached run) borrows the command's for the moment of the
 * event, keeping its own standard handles. */
static void ctrl_break(DWORD group) {
  HANDLE saved[3];
  if (GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, group) || has_console())
    return;
  saved[0] = GetStdHandle(STD_INPUT_HANDLE);
  saved[1] = GetStdHandle(STD_OUTPUT_HANDLE);
  saved[2] = GetStdHandle(STD_ERROR_HANDLE);
  if (!AttachConsole(group))
    return;
  SetConsoleCtrlHandler(NULL, TRUE);
  GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, group);
  FreeConsole();
  SetConsoleCtrlHandler(NULL, FALSE);
  SetStdHandle(STD_INPUT_HANDLE, saved[0]);
  SetStdHandle(STD_OUTPUT_HANDLE, saved[1]);
  SetStdHandle(STD_ERROR_HANDLE, saved[2]);
}

void ctrun_tree_signal(struct ctrun_tree *t, int sig) {
  if (t->job == NULL)
    return;
  if (sig == SIGKILL)
    TerminateJobObject(t->job, KILLED_CODE);
  else if (t->pid != 0)
    ctrl_break(t->pid); /* Windows has one soft signal for a group */
}

/* TerminateJobObject ends every process of the job, whoever it runs as. */
int ctrun_tree_unkillable(struct ctrun_tree *t, long *pids, int max) {
  (void)t;
  (void)pids;
  (void)max;
  return 0;
}

static void free_tree(uv_handle_t *h) { free(h->data); }

void ctrun_tree_free(struct ctrun_tree *t) {
  if (t == NULL)
    return;
  t->closing = true;
  if (t->thread != NULL) {
    PostQueuedCompletionStatus(t->port, 0, KEY_QUIT, NULL);
    WaitForSingleObject(t->thread, INFINITE);
    CloseHandle(t->thread);
  }
  if (t->held != NULL)
    CloseHandle(t->held);
  /* Kill-on-close: whatever might remain dies with the handle. */
  if (t->job != NULL)
    CloseHandle(t->job);
  if (t->process != NULL)
    CloseHandle(t->process);
  if (t->stop_event != NULL)
    CloseHandle(t->stop_event);
  CloseHandle(t->port);
  uv_close((uv_handle_t *)&t->async, free_tree);
}

/* ---- identity and the runs of others ---- */

int ctrun_proc_start_time(long pid, uint64_t *start) {
  FILETIME created, exited, kernel, user;
  HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
  int r = 0;

  *start = 0;
  if (h == NULL)
    return ctrun_win_error(GetLastError());
  if (GetProcessTimes(h, &created, &exited, &kernel, &user))
    *start = (uint64_t)created.dwHighDateTime << 32 | created.dwLowDateTime;
  else
    r = ctrun_win_error(GetLastError());
  CloseHandle(h);
  return r;
}

/* Windows tells no boot id; a stale run's job dies with its supervisor
 * anyway, so nothing depends on one. */
void ctrun_proc_boot_id(char *buf, size_t size) {
  if (size > 0)
    buf[0] = '\0';
}

/* Nothing to snapshot: each run is asked through its job. */
struct ctrun_proctab {
  int unused;
};

struct ctrun_proctab *ctrun_proctab_load(void) { return calloc(1, sizeof(struct ctrun_proctab)); }

void ctrun_proctab_free(struct ctrun_proctab *tab) { free(tab); }

/* Run E's job, re-opened by name; NULL with *R = 0 when it is gone. */
static HANDLE open_job(const struct ctrun_entry *e, DWORD access, int *r) {
  wchar_t name[64];
  HANDLE job;
  job_name(name, sizeof name / sizeof name[0], "ctrun-", e->id);
  job = OpenJobObjectW(access, FALSE, name);
  *r = 0;
  if (job == NULL && GetLastError() != ERROR_FILE_NOT_FOUND)
    *r = ctrun_win_error(GetLastError());
  return job;
}

int ctrun_proctab_count(struct ctrun_proctab *tab, const struct ctrun_entry *e) {
  int r;
  HANDLE job;
  DWORD n;
  if (tab == NULL)
    return -1;
  job = open_job(e, JOB_OBJECT_QUERY, &r);
  if (job == NULL)
    return r == 0 ? 0 : -1;
  n = (DWORD)live_members(job, 0, false);
  CloseHandle(job);
  return (int)n;
}

/* The job is the run's identity, so no pid is trusted here; and what is in
 * it is killed outright: a stale run has no console to send CTRL_BREAK on. */
int ctrun_proctab_signal(struct ctrun_proctab *tab, const struct ctrun_entry *e, int sig) {
  int r;
  HANDLE job;
  DWORD n;
  (void)sig;
  if (tab == NULL)
    return UV_ENOSYS;
  job = open_job(e, JOB_OBJECT_QUERY | JOB_OBJECT_TERMINATE, &r);
  if (job == NULL)
    return r;
  n = active_processes(job);
  if (n > 0 && !TerminateJobObject(job, KILLED_CODE))
    r = ctrun_win_error(GetLastError());
  CloseHandle(job);
  return r != 0 ? r : (int)n;
}

/* True when PID is still the process that started at START. */
static bool same_process(long pid, uint64_t start) {
  uint64_t now;
  return ctrun_proc_start_time(pid, &now) == 0 && (start == 0 || now == start);
}

int ctrun_proc_request_stop(const struct ctrun_entry *e) {
  wchar_t name[64];
  HANDLE ev;
  BOOL ok;

  if (!same_process(e->pid, e->pid_start))
    return UV_ESRCH;
  job_name(name, sizeof name / sizeof name[0], "ctrun-stop-", e->id);
  ev = OpenEventW(EVENT_MODIFY_STATE, FALSE, name);
  if (ev == NULL)
    return ctrun_win_error(GetLastError());
  ok = SetEvent(ev);
  CloseHandle(ev);
  return ok ? 0 : ctrun_win_error(GetLastError());
}

void ctrun_proc_init(int *argc, char ***argv) {
  int n = 0;
  wchar_t **w = CommandLineToArgvW(GetCommandLineW(), &n);
  char **v;

  /* The CRT's argv is in the ANSI code page; ctrun speaks UTF-8.  Kept for
   * the life of the process, as argv is. */
  if (w == NULL || (v = calloc((size_t)n + 1, sizeof *v)) == NULL)
    return;
  for (int i = 0; i < n; i++) {
    if ((v[i] = ctrun_win_utf8(w[i])) == NULL) {
      LocalFree(w);
      return;
    }
  }
  LocalFree(w);
  *argc = n;
  *argv = v;
}
