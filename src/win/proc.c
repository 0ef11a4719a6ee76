/* The Windows container: two job objects per run.  The command is created
 * suspended, put in both and only then resumed, so none of its
 * instructions runs outside.  The inner job holds the tree: it forbids
 * breakaway and kills everything when its last handle closes, which is
 * when ctrun dies; it has no name, and ctrun's own process lets no one
 * duplicate a handle out of it, so only ctrun can ever change it or keep
 * it open.  The outer job, nested around it, has the same members and is
 * named after the run so that ps, stop and cleanup can re-open it; its
 * security descriptor lets them (and every process of the tree, which
 * runs as the same user) only query and terminate it.  A thread waits on
 * the inner job's completion port and wakes the libuv loop; since the
 * port's messages are not guaranteed, it also polls the job's count.
 *
 * The caps of --memory and --max-procs, and the priority class of --nice,
 * go on the outer job: it holds the whole tree as the inner one does, and
 * there ps and anyone of this user can read them back (none may change
 * them).  Windows does not end a tree over these caps: it refuses the
 * allocation or the process and posts a message to the job's port, which
 * the watcher notes for ctrun_tree_limit_hit; the core then kills the
 * tree. */
#include "ctrun/proc.h"

#include <aclapi.h>
#include <fcntl.h>
#include <psapi.h>
#include <io.h>
#include <sddl.h>
#include <stddef.h>
#include <shellapi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ctrun/registry.h"
#include "internal.h"

/* Completion keys of the watcher thread's port. */
enum { KEY_JOB = 1, KEY_STARTED, KEY_STOP_EVENT, KEY_QUIT, KEY_LIMITS };

/* The limits every job of a run has (see new_job).  Wine keeps a job's
 * limits without ever reading them back (a query gives all zeros), so
 * whoever changes a job's limits ORs these in rather than trusting the
 * query alone. */
#define JOB_BASE_FLAGS \
  (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION)

/* How often the watcher re-checks the job without a message. */
#define POLL_MS 100

/* The exit code of a process killed hard, as a shell reports SIGKILL, so
 * that --preserve-status reads the same on every platform. */
#define KILLED_CODE (128 + SIGKILL)

struct ctrun_tree {
  uv_async_t async;
  ctrun_tree_cb cb, stop_cb;
  void *data;
  HANDLE port, thread, process, stop_event;
  HANDLE job;   /* the inner job: the tree, kill-on-close, nameless */
  HANDLE named; /* the outer job, named for ps, stop and cleanup */
  HANDLE held; /* the command's first thread, suspended until started */
  DWORD pid;
  struct ctrun_limits limits; /* the caps the outer job carries (0: none) */
  bool has_limits;
  bool named_port; /* the outer job reports to the watcher's port too */
  volatile LONG limit_hit; /* enum ctrun_limit: the first cap the kernel reported */
  volatile LONG stop_requested;
  bool exited, closing;
  int status;
};

/* The job's name for run ID: "Local\ctrun-<id>". */
static void job_name(wchar_t *buf, size_t size, const char *prefix, const char *id) {
  _snwprintf(buf, size - 1, L"Local\\%hs%hs", prefix, id);
  buf[size - 1] = L'\0';
}

/* A security descriptor that grants this user (and LocalSystem) only
 * ACCESS (0: nothing), and the object's owner nothing beyond reading it:
 * without the OWNER RIGHTS entry, the owner, who is this same user, could
 * rewrite the DACL and then take every right.  Free with LocalFree.
 * Processes of the tree run as the same user: this is what they get. */
static PSECURITY_DESCRIPTOR user_only(DWORD access) {
  union {
    TOKEN_USER user;
    char buf[512];
  } info;
  PSECURITY_DESCRIPTOR sd = NULL;
  wchar_t *sid = NULL, sddl[256];
  HANDLE token;
  DWORD n;
  BOOL ok;

  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
    return NULL;
  ok = GetTokenInformation(token, TokenUser, &info, sizeof info, &n) &&
       ConvertSidToStringSidW(info.user.User.Sid, &sid);
  CloseHandle(token);
  if (!ok)
    return NULL;
  if (access != 0)
    _snwprintf(sddl, sizeof sddl / sizeof sddl[0] - 1,
               L"D:P(A;;0x%lx;;;%ls)(A;;0x%lx;;;SY)(A;;0x%lx;;;OW)", (unsigned long)access, sid,
               (unsigned long)access, (unsigned long)READ_CONTROL);
  else
    _snwprintf(sddl, sizeof sddl / sizeof sddl[0] - 1, L"D:P(A;;0x%lx;;;OW)",
               (unsigned long)READ_CONTROL);
  sddl[sizeof sddl / sizeof sddl[0] - 1] = L'\0';
  LocalFree(sid);
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL))
    return NULL;
  return sd;
}

/* Once per supervisor, before the command exists: no process of this user
 * but ctrun itself may duplicate ctrun's handles (the inner job's among
 * them), write its memory or start threads in it; asking whether it still
 * runs, waiting for it and ending it stay open to all of this user's. */
static int protect_self(void) {
  static bool done;
  PSECURITY_DESCRIPTOR sd;
  PACL dacl = NULL;
  BOOL present = FALSE, defaulted;
  DWORD r;

  if (done)
    return 0;
  sd = user_only(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | PROCESS_TERMINATE);
  if (sd == NULL)
    return ctrun_win_error(GetLastError());
  if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) || !present) {
    LocalFree(sd);
    return UV_EINVAL;
  }
  r = SetSecurityInfo(GetCurrentProcess(), SE_KERNEL_OBJECT,
                      DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL, NULL,
                      dacl, NULL);
  LocalFree(sd);
  if (r != ERROR_SUCCESS)
    return ctrun_win_error(r);
  done = true;
  return 0;
}

/* The inner job of the run, for the console's end: taken (shared) by the
 * handler, cleared (exclusive) before the job's handle closes. */
static SRWLOCK end_lock = SRWLOCK_INIT;
static HANDLE end_job;

/* How long the console handler waits for the killed tree to be gone:
 * Windows ends ctrun about 5 s after the console closes. */
#define END_WAIT_MS 3000

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

/* The pids of JOB's processes, *N of them (free() the result); NULL when
 * the job cannot be asked.  The list is sized for what the job reports,
 * and asked again when it grew in between: ProcessIdList is declared with
 * one element, so it is only ever read through a pointer into the
 * allocation, never indexed past its declared size. */
static ULONG_PTR *job_pids(HANDLE job, DWORD *n) {
  const size_t head = offsetof(JOBOBJECT_BASIC_PROCESS_ID_LIST, ProcessIdList);
  DWORD want = active_processes(job) + 16;

  for (int tries = 0; tries < 8; tries++) {
    size_t size = head + (size_t)want * sizeof(ULONG_PTR);
    char *buf = malloc(size);
    JOBOBJECT_BASIC_PROCESS_ID_LIST list;
    BOOL ok;

    if (buf == NULL)
      return NULL;
    ok = QueryInformationJobObject(job, JobObjectBasicProcessIdList, buf, (DWORD)size, NULL);
    memcpy(&list, buf, head);
    if ((ok || GetLastError() == ERROR_MORE_DATA) &&
        list.NumberOfProcessIdsInList >= list.NumberOfAssignedProcesses) {
      ULONG_PTR *ids = (ULONG_PTR *)(void *)buf;
      *n = list.NumberOfProcessIdsInList;
      memmove(ids, buf + head, (size_t)*n * sizeof *ids);
      return ids;
    }
    free(buf);
    if (!ok && GetLastError() != ERROR_MORE_DATA)
      return NULL;
    want = list.NumberOfAssignedProcesses + 16;
  }
  return NULL;
}

/* The processes of the tree that still run, console hosts aside.  The
 * job's count lags behind an exit for a moment (a process is signalled
 * before it leaves its job), so members that have exited are not
 * counted. */
static int live_members(HANDLE job, DWORD main_pid, bool main_exited) {
  DWORD active = active_processes(job), count = 0;
  ULONG_PTR *ids;
  int n = 0;

  if (active == 0)
    return 0;
  ids = job_pids(job, &count);
  if (ids == NULL)
    return (int)active;
  for (DWORD i = 0; i < count; i++) {
    DWORD pid = (DWORD)ids[i];
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
  free(ids);
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
      /* The job was written by the loop thread before the post: safe to
       * read now.  The process comes as a handle of the watcher's own, so
       * that the loop thread may close its own when the next command
       * (--retry) replaces it. */
      job = t->job;
      if (process != NULL)
        CloseHandle(process);
      process = (HANDLE)ov;
      main_gone = false;
      wake = true;
    } else if (ok && key == KEY_STOP_EVENT) {
      stop = (HANDLE)ov;
    } else if (ok && (key == KEY_JOB || key == KEY_LIMITS) &&
               (msg == JOB_OBJECT_MSG_JOB_MEMORY_LIMIT ||
                msg == JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT)) {
      /* The kernel refused an allocation or a process over a cap of the
       * outer job (whichever job of the chain it tells): noted before the
       * wake, so that the loop reads it before it can see an exit that
       * followed. */
      InterlockedCompareExchange(&t->limit_hit,
                                 msg == JOB_OBJECT_MSG_JOB_MEMORY_LIMIT ? CTRUN_LIMIT_MEMORY
                                                                        : CTRUN_LIMIT_PROCS,
                                 CTRUN_LIMIT_NONE);
      wake = true;
    } else if (ok && key == KEY_JOB) {
      /* A new process too: the run samples the tree's size on each wake,
       * and a short-lived peak would otherwise fall between two polls. */
      wake = msg == JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO || msg == JOB_OBJECT_MSG_NEW_PROCESS ||
             msg == JOB_OBJECT_MSG_EXIT_PROCESS || msg == JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS;
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
  if (process != NULL)
    CloseHandle(process);
  return 0;
}

BOOL WINAPI ctrun_win_console_end(DWORD type) {
  HANDLE job;
  if (type != CTRL_CLOSE_EVENT && type != CTRL_LOGOFF_EVENT && type != CTRL_SHUTDOWN_EVENT)
    return FALSE;
  AcquireSRWLockShared(&end_lock);
  job = end_job;
  if (job != NULL) {
    TerminateJobObject(job, KILLED_CODE);
    for (int waited = 0; waited < END_WAIT_MS && active_processes(job) > 0; waited += 10)
      Sleep(10);
  }
  ReleaseSRWLockShared(&end_lock);
  return FALSE;
}

/* Note the command's exit, once it has happened: its 32-bit code as it
 * is (Windows has no signals to tell apart from an exit). */
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
  /* After libuv's (set up with the loop), so that it is called first. */
  SetConsoleCtrlHandler(ctrun_win_console_end, TRUE);
  *out = t;
  return 0;
}

int ctrun_tree_watch_stop(struct ctrun_tree *t, const char *run_id, ctrun_tree_cb cb) {
  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, FALSE };
  wchar_t name[64];
  DWORD err;

  job_name(name, sizeof name / sizeof name[0], "ctrun-stop-", run_id);
  /* Others of this user may set it (that is ctrun stop), not take it over. */
  sa.lpSecurityDescriptor = user_only(EVENT_MODIFY_STATE | SYNCHRONIZE);
  if (sa.lpSecurityDescriptor == NULL)
    return ctrun_win_error(GetLastError());
  /* Auto-reset: each ctrun stop is one request. */
  t->stop_event = CreateEventW(&sa, FALSE, FALSE, name);
  err = GetLastError();
  LocalFree(sa.lpSecurityDescriptor);
  if (t->stop_event == NULL)
    return ctrun_win_error(err);
  if (err == ERROR_ALREADY_EXISTS) {
    CloseHandle(t->stop_event);
    t->stop_event = NULL;
    return UV_EEXIST; /* not ours: someone squats the name */
  }
  t->stop_cb = cb;
  PostQueuedCompletionStatus(t->port, 0, KEY_STOP_EVENT, (OVERLAPPED *)t->stop_event);
  return 0;
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

/* A new job, named NAME (or none), granting others ACCESS, with the
 * limits every job of a run has.  Returns NULL with *R set. */
static HANDLE new_job(const wchar_t *name, DWORD access, int *r) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, FALSE };
  HANDLE job;
  DWORD err;

  sa.lpSecurityDescriptor = user_only(access);
  if (sa.lpSecurityDescriptor == NULL) {
    *r = ctrun_win_error(GetLastError());
    return NULL;
  }
  /* A name still taken may be the job of a run of the same id that has
   * just ended (its --on-finish runs under its id): the job goes with its
   * last reference, which the system drops a moment after the processes
   * have exited.  Given that moment, a name still taken is a squatter's. */
  for (int tries = 0;; tries++) {
    job = CreateJobObjectW(&sa, name);
    err = GetLastError();
    if (job != NULL && (name == NULL || err != ERROR_ALREADY_EXISTS))
      break;
    if (job != NULL)
      CloseHandle(job);
    if (name == NULL || (err != ERROR_ALREADY_EXISTS && err != ERROR_ACCESS_DENIED) || tries == 100) {
      LocalFree(sa.lpSecurityDescriptor);
      *r = job != NULL || err == ERROR_ALREADY_EXISTS ? UV_EEXIST : ctrun_win_error(err);
      return NULL;
    }
    Sleep(20);
  }
  LocalFree(sa.lpSecurityDescriptor);
  memset(&li, 0, sizeof li);
  /* Neither BREAKAWAY_OK nor SILENT_BREAKAWAY_OK: a process of the tree
   * cannot leave it.  An unhandled crash ends the process instead of
   * waiting on an error dialog that nobody will see. */
  li.BasicLimitInformation.LimitFlags = JOB_BASE_FLAGS;
  if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li)) {
    *r = ctrun_win_error(GetLastError());
    CloseHandle(job);
    return NULL;
  }
  *r = 0;
  return job;
}

/* JOB's extended limits as they are, with the limits ctrun gave every job
 * of a run ORed in (which Wine does not read back). */
static bool job_limits(HANDLE job, JOBOBJECT_EXTENDED_LIMIT_INFORMATION *li) {
  memset(li, 0, sizeof *li);
  if (!QueryInformationJobObject(job, JobObjectExtendedLimitInformation, li, sizeof *li, NULL))
    return false;
  li->BasicLimitInformation.LimitFlags |= JOB_BASE_FLAGS;
  return true;
}

/* The active process limit that lets the tree have MAX processes: a
 * command given a console of its own (ctrun has none: ctrunw, a detached
 * run) has it served by a console host in the job, which Windows counts
 * and ctrun does not.  A console that the tree makes for itself
 * (CREATE_NEW_CONSOLE) brings one more host that counts against the cap. */
static DWORD process_limit(int max) { return (DWORD)max + (has_console() ? 0 : 1); }

/* Put the caps L on JOB, keeping every limit it has, and read them back:
 * 0 once the job holds them all; else UV_ENOTSUP with the job as it was
 * (a kernel that refuses a cap, or a Wine that takes them all and keeps
 * none).  The job's port, if it is the outer job, is the watcher's from
 * then on, for the messages of the caps. */
static int put_limits(struct ctrun_tree *t, HANDLE job, const struct ctrun_limits *l) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION was, li, got;
  DWORD flags = 0, want;
  bool held;

  if (l->cpu_time_ms != 0 || l->max_procs < 0 ||
      (uint64_t)(SIZE_T)l->memory_bytes != l->memory_bytes)
    return UV_ENOTSUP;
  if (!job_limits(job, &was))
    return UV_ENOTSUP;
  li = was;
  if (l->memory_bytes != 0) {
    flags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
    li.JobMemoryLimit = (SIZE_T)l->memory_bytes;
  }
  if (l->max_procs != 0) {
    flags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
    li.BasicLimitInformation.ActiveProcessLimit = process_limit(l->max_procs);
  }
  li.BasicLimitInformation.LimitFlags |= flags;
  if (!SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li))
    return UV_ENOTSUP; /* nothing changed */
  /* The kernel keeps the memory cap in pages. */
  memset(&got, 0, sizeof got);
  want = flags | JOB_BASE_FLAGS;
  held = QueryInformationJobObject(job, JobObjectExtendedLimitInformation, &got, sizeof got,
                                   NULL) &&
         (got.BasicLimitInformation.LimitFlags & want) == want &&
         (l->memory_bytes == 0 ||
          (got.JobMemoryLimit > 0 && got.JobMemoryLimit <= li.JobMemoryLimit &&
           li.JobMemoryLimit - got.JobMemoryLimit < 65536)) &&
         (l->max_procs == 0 || got.BasicLimitInformation.ActiveProcessLimit ==
                                 li.BasicLimitInformation.ActiveProcessLimit);
  if (!held) {
    SetInformationJobObject(job, JobObjectExtendedLimitInformation, &was, sizeof was);
    return UV_ENOTSUP;
  }
  if (t != NULL && job == t->named && !t->named_port) {
    JOBOBJECT_ASSOCIATE_COMPLETION_PORT acp;
    acp.CompletionKey = (void *)(ULONG_PTR)KEY_LIMITS;
    acp.CompletionPort = t->port;
    if (!SetInformationJobObject(job, JobObjectAssociateCompletionPortInformation, &acp,
                                 sizeof acp)) {
      int r = ctrun_win_error(GetLastError());
      SetInformationJobObject(job, JobObjectExtendedLimitInformation, &was, sizeof was);
      return r;
    }
    t->named_port = true;
  }
  return 0;
}

/* Create the run's jobs: the named outer one, which others may only query
 * and terminate, and the nameless inner one, which reports to the
 * watcher's port and which no one but ctrun can reach. */
static int make_job(struct ctrun_tree *t, const char *run_id) {
  JOBOBJECT_ASSOCIATE_COMPLETION_PORT acp;
  wchar_t name[64];
  int r = protect_self();
  if (r != 0)
    return r;
  job_name(name, sizeof name / sizeof name[0], "ctrun-", run_id);
  t->named = new_job(name, JOB_OBJECT_QUERY | JOB_OBJECT_TERMINATE | SYNCHRONIZE, &r);
  if (t->named == NULL)
    return r;
  /* The caps that ctrun_tree_set_limits found the kernel enforces: the
   * run may not start without them. */
  if (t->has_limits && (r = put_limits(t, t->named, &t->limits)) != 0)
    return r;
  t->job = new_job(NULL, 0, &r);
  if (t->job == NULL)
    return r;
  acp.CompletionKey = (void *)(ULONG_PTR)KEY_JOB;
  acp.CompletionPort = t->port;
  if (!SetInformationJobObject(t->job, JobObjectAssociateCompletionPortInformation, &acp, sizeof acp))
    return ctrun_win_error(GetLastError());
  AcquireSRWLockExclusive(&end_lock);
  end_job = t->job;
  ReleaseSRWLockExclusive(&end_lock);
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
  env = ctrun_win_env_block(s->env);
  if (env == NULL) {
    r = UV_ENOMEM;
    goto out;
  }
  /* One job for the run: a later command (--retry) goes into the same. */
  if (t->job == NULL && (r = make_job(t, s->run_id)) != 0)
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
  /* The outer job first: the inner one, still empty, then nests in it. */
  if (!AssignProcessToJobObject(t->named, pi.hProcess) ||
      !AssignProcessToJobObject(t->job, pi.hProcess)) {
    r = ctrun_win_error(GetLastError());
    TerminateProcess(pi.hProcess, KILLED_CODE);
    WaitForSingleObject(pi.hProcess, INFINITE);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    goto out;
  }
  if (t->process != NULL)
    CloseHandle(t->process);
  t->process = pi.hProcess;
  t->pid = pi.dwProcessId;
  t->exited = false;
  t->status = 0;
  t->held = pi.hThread; /* resumed by ctrun_tree_start */
  {
    HANDLE mine = NULL;
    DuplicateHandle(GetCurrentProcess(), pi.hProcess, GetCurrentProcess(), &mine, 0, FALSE,
                    DUPLICATE_SAME_ACCESS);
    PostQueuedCompletionStatus(t->port, 0, KEY_STARTED, (OVERLAPPED *)mine);
  }
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

/* The creation time of the process H, as ctrun_proc_start_time gives it. */
static uint64_t created_at(HANDLE h) {
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(h, &created, &exited, &kernel, &user))
    return 0;
  return (uint64_t)created.dwHighDateTime << 32 | created.dwLowDateTime;
}

int ctrun_tree_pid_start(const struct ctrun_tree *t, uint64_t *start) {
  *start = t->process != NULL ? created_at(t->process) : 0;
  return *start != 0 ? 0 : ctrun_proc_start_time((long)t->pid, start);
}

/* The working set of the process H: what of it is resident now. */
static uint64_t working_set(HANDLE h) {
  PROCESS_MEMORY_COUNTERS pmc;
  memset(&pmc, 0, sizeof pmc);
  pmc.cb = sizeof pmc;
  return GetProcessMemoryInfo(h, &pmc, sizeof pmc) ? (uint64_t)pmc.WorkingSetSize : 0;
}

int ctrun_tree_members(struct ctrun_tree *t, struct ctrun_member **out, size_t *n) {
  ULONG_PTR *ids;
  struct ctrun_member *m;
  FILETIME now_ft;
  uint64_t now;
  size_t k = 0;
  DWORD count = 0;

  *out = NULL;
  *n = 0;
  if (t->job == NULL)
    return 0;
  refresh(t);
  if ((ids = job_pids(t->job, &count)) == NULL)
    return ctrun_win_error(GetLastError());
  m = calloc((size_t)count + 1, sizeof *m);
  if (m == NULL) {
    free(ids);
    return UV_ENOMEM;
  }
  GetSystemTimeAsFileTime(&now_ft);
  now = (uint64_t)now_ft.dwHighDateTime << 32 | now_ft.dwLowDateTime;
  for (DWORD i = 0; i < count; i++) {
    DWORD pid = (DWORD)ids[i];
    wchar_t path[MAX_PATH];
    DWORD len = MAX_PATH;
    HANDLE h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (h == NULL)
      continue;
    if (WaitForSingleObject(h, 0) == WAIT_OBJECT_0 || is_console_host(h)) {
      CloseHandle(h);
      continue;
    }
    m[k].pid = (long)pid;
    m[k].start = created_at(h);
    /* FILETIMEs count 100 ns. */
    m[k].age_ms = now > m[k].start ? (now - m[k].start) / 10000 : 0;
    m[k].command = pid == t->pid && !t->exited;
    m[k].rss_bytes = working_set(h);
    if (QueryFullProcessImageNameW(h, 0, path, &len)) {
      const wchar_t *base = wcsrchr(path, L'\\');
      char *name = ctrun_win_utf8(base ? base + 1 : path);
      if (name != NULL)
        snprintf(m[k].name, sizeof m[k].name, "%s", name);
      free(name);
    }
    CloseHandle(h);
    k++;
  }
  free(ids);
  *out = m;
  *n = k;
  return 0;
}

bool ctrun_tree_can_list(void) { return true; /* every job lists its processes */ }

/* FILETIME-like 100 ns units in milliseconds. */
static uint64_t ticks_ms(LONGLONG t) { return t > 0 ? (uint64_t)t / 10000 : 0; }

/* The job counts the CPU time of every process it has held, the live ones
 * included, and the peak of its memory.  That peak is committed memory
 * (private bytes, what the job's memory cap limits), not the working set
 * that --report's name suggests and that Unix reports: the one peak the
 * kernel keeps for a whole tree.  Wine counts neither (all zeros): then
 * the peak is unknown here, and the sampler's stands. */
int ctrun_tree_usage(struct ctrun_tree *t, struct ctrun_usage *u) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acct;
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;

  memset(u, 0, sizeof *u);
  if (t->job == NULL)
    return 0; /* no command was ever created */
  if (!QueryInformationJobObject(t->job, JobObjectBasicAccountingInformation, &acct, sizeof acct,
                                 NULL))
    return ctrun_win_error(GetLastError());
  u->cpu_user_ms = ticks_ms(acct.TotalUserTime.QuadPart);
  u->cpu_sys_ms = ticks_ms(acct.TotalKernelTime.QuadPart);
  memset(&li, 0, sizeof li);
  if (QueryInformationJobObject(t->job, JobObjectExtendedLimitInformation, &li, sizeof li, NULL) &&
      li.PeakJobMemoryUsed > 0) {
    u->peak_rss_bytes = (uint64_t)li.PeakJobMemoryUsed;
    u->peak_is_tree = true;
  }
  return 0;
}

/* Memory and processes: the outer job's caps, which the kernel enforces by
 * refusing the allocation or the process that would pass them.  CPU time:
 * never here, and then none of the caps, so that ctrun samples them all.
 * A job's CPU time cap (JOB_OBJECT_LIMIT_JOB_TIME) counts user time only,
 * which is not what --cpu-time means; and the sampler, reading the job's
 * own totals (ctrun_tree_usage), is exact, if up to a sampling interval
 * late.  The caps are tried on a job of their own first, when the run's
 * is not made yet (it is, at the first spawn): they are taken only if the
 * kernel keeps them there, which Wine does not. */
int ctrun_tree_set_limits(struct ctrun_tree *t, const char *run_id, const struct ctrun_limits *l) {
  int r;
  (void)run_id; /* the job is named at the first spawn */
  if (l->cpu_time_ms != 0 || (l->memory_bytes == 0 && l->max_procs == 0))
    return UV_ENOTSUP;
  if (t->named != NULL) {
    r = put_limits(t, t->named, l);
  } else {
    HANDLE probe = new_job(NULL, 0, &r);
    if (probe == NULL)
      return UV_ENOTSUP;
    r = put_limits(NULL, probe, l);
    CloseHandle(probe);
  }
  if (r != 0)
    return UV_ENOTSUP;
  t->limits = *l;
  t->has_limits = true;
  return 0;
}

/* The job goes with its last handle: nothing outlives ctrun to remove. */
const char *ctrun_tree_container(const struct ctrun_tree *t) {
  (void)t;
  return NULL;
}

int ctrun_proc_container_remove(const struct ctrun_entry *e) {
  (void)e;
  return 0;
}

enum ctrun_limit ctrun_tree_limit_hit(struct ctrun_tree *t) {
  return (enum ctrun_limit)InterlockedCompareExchange(&t->limit_hit, 0, 0);
}

/* The priority class nearest to niceness NICE. */
static DWORD priority_class(int nice) {
  if (nice >= 10)
    return IDLE_PRIORITY_CLASS;
  if (nice >= 1)
    return BELOW_NORMAL_PRIORITY_CLASS;
  if (nice == 0)
    return NORMAL_PRIORITY_CLASS;
  if (nice >= -9)
    return ABOVE_NORMAL_PRIORITY_CLASS;
  if (nice >= -19)
    return HIGH_PRIORITY_CLASS;
  return REALTIME_PRIORITY_CLASS;
}

/* Enable (ON) or disable the privilege to raise priorities in ctrun's
 * token, where it holds it (an elevated administrator does, disabled);
 * false where it does not.  Disabled again once used, so that a later
 * command (--retry) does not inherit it enabled. */
static bool base_priority_privilege(bool on) {
  TOKEN_PRIVILEGES tp;
  HANDLE token;
  bool ok;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &token))
    return false;
  tp.PrivilegeCount = 1;
  tp.Privileges[0].Attributes = on ? SE_PRIVILEGE_ENABLED : 0;
  ok = LookupPrivilegeValueW(NULL, L"SeIncreaseBasePriorityPrivilege", &tp.Privileges[0].Luid) &&
       AdjustTokenPrivileges(token, FALSE, &tp, 0, NULL, NULL) && GetLastError() == ERROR_SUCCESS;
  CloseHandle(token);
  return ok;
}

/* The class goes on the command itself, and on the outer job, so that
 * every process of the tree runs in it, now and later, and none may change
 * it (Windows gives a child its parent's class only below normal).  Above
 * normal, a job takes HIGH or REALTIME only with the privilege to raise
 * priorities, and a process asked for REALTIME without it quietly gets
 * HIGH: the class is read back, and anything but the class asked for is
 * UV_EPERM, as a lower niceness without privileges is on Unix. */
int ctrun_tree_set_nice(struct ctrun_tree *t, int nice) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  DWORD cls = priority_class(nice), err = 0;
  bool privileged;

  if (t->process == NULL || t->named == NULL || t->exited)
    return UV_ESRCH;
  privileged = (cls == HIGH_PRIORITY_CLASS || cls == REALTIME_PRIORITY_CLASS) &&
               base_priority_privilege(true);
  if (!SetPriorityClass(t->process, cls))
    err = GetLastError();
  if (err == 0 && !job_limits(t->named, &li))
    err = GetLastError();
  if (err == 0) {
    li.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_PRIORITY_CLASS;
    li.BasicLimitInformation.PriorityClass = cls;
    if (!SetInformationJobObject(t->named, JobObjectExtendedLimitInformation, &li, sizeof li))
      err = GetLastError();
  }
  if (privileged)
    base_priority_privilege(false);
  if (err == ERROR_PRIVILEGE_NOT_HELD)
    return UV_EPERM;
  if (err != 0)
    return ctrun_win_error(err);
  return GetPriorityClass(t->process) == cls ? 0 : UV_EPERM;
}

/* No soft signal reaches one process (CTRL_BREAK goes to the whole console
 * group): the member is terminated, once it is proven to be the one seen,
 * and in this run's job. */
int ctrun_tree_signal_member(struct ctrun_tree *t, const struct ctrun_member *m, int sig) {
  /* IsProcessInJob wants more than the limited query right (Wine says so). */
  HANDLE h = OpenProcess(PROCESS_TERMINATE | PROCESS_QUERY_INFORMATION, FALSE, (DWORD)m->pid);
  BOOL in = FALSE;
  int r = 0;
  (void)sig;
  if (h == NULL)
    return ctrun_win_error(GetLastError());
  if (created_at(h) != m->start || !IsProcessInJob(h, t->job, &in) || !in)
    r = UV_ESRCH;
  else if (!TerminateProcess(h, KILLED_CODE))
    r = ctrun_win_error(GetLastError());
  CloseHandle(h);
  return r;
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
  SetConsoleCtrlHandler(ctrun_win_console_end, FALSE);
  AcquireSRWLockExclusive(&end_lock);
  if (end_job == t->job)
    end_job = NULL;
  ReleaseSRWLockExclusive(&end_lock);
  /* Whatever might remain is killed here, not left to kill-on-close: that
   * fires only with the job's last handle, and a process of the tree may
   * hold one of its own. */
  if (t->job != NULL) {
    if (active_processes(t->job) > 0)
      TerminateJobObject(t->job, KILLED_CODE);
    CloseHandle(t->job);
  }
  if (t->named != NULL)
    CloseHandle(t->named);
  if (t->process != NULL)
    CloseHandle(t->process);
  if (t->stop_event != NULL)
    CloseHandle(t->stop_event);
  CloseHandle(t->port);
  uv_close((uv_handle_t *)&t->async, free_tree);
}

char **ctrun_proc_environ(void) {
  uv_env_item_t *items;
  int count;
  char **vars;

  if (uv_os_environ(&items, &count) != 0)
    return NULL;
  vars = calloc((size_t)count + 1, sizeof *vars);
  for (int i = 0, k = 0; vars != NULL && i < count; i++) {
    size_t len = strlen(items[i].name) + strlen(items[i].value) + 2;
    if ((vars[k] = malloc(len)) == NULL) {
      ctrun_proc_environ_free(vars);
      vars = NULL;
      break;
    }
    snprintf(vars[k++], len, "%s=%s", items[i].name, items[i].value);
  }
  uv_os_free_environ(items, count);
  return vars;
}

void ctrun_proc_environ_free(char **vars) {
  for (size_t i = 0; vars != NULL && vars[i] != NULL; i++)
    free(vars[i]);
  free(vars);
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

struct ctrun_proctab *ctrun_proctab_load(bool tags) {
  (void)tags;
  return calloc(1, sizeof(struct ctrun_proctab));
}

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

/* The working sets of the processes in run E's job together, console
 * hosts aside, as ctrun_proctab_count counts them. */
uint64_t ctrun_proctab_rss(struct ctrun_proctab *tab, const struct ctrun_entry *e) {
  uint64_t rss = 0;
  ULONG_PTR *ids;
  DWORD count = 0;
  HANDLE job;
  int r;

  if (tab == NULL || (job = open_job(e, JOB_OBJECT_QUERY, &r)) == NULL)
    return 0;
  ids = job_pids(job, &count);
  CloseHandle(job);
  for (DWORD i = 0; ids != NULL && i < count; i++) {
    HANDLE h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)ids[i]);
    if (h == NULL)
      continue;
    if (WaitForSingleObject(h, 0) != WAIT_OBJECT_0 && !is_console_host(h))
      rss += working_set(h);
    CloseHandle(h);
  }
  free(ids);
  return rss;
}

/* A job knows its members: its count misses nothing to count again. */
void ctrun_proctab_recount(struct ctrun_proctab *tab, const struct ctrun_entry *v, size_t n,
                           int *procs) {
  (void)tab;
  (void)v;
  (void)n;
  (void)procs;
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

/* Not needed: a process's creation time, which the entry records, is
 * one cheap call here. */
int ctrun_proc_sign_entry(int fd) {
  (void)fd;
  return UV_ENOSYS;
}

int ctrun_proc_request_stop(struct ctrun_dir *dir, const struct ctrun_entry *e) {
  wchar_t name[64];
  HANDLE ev;
  BOOL ok;

  (void)dir;
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

/* libuv reports Ctrl+C as INT, Ctrl+Break as BREAK and the closing of the
 * console as HUP; by then ctrun_win_console_end has killed the tree, for
 * Windows ends ctrun a few seconds later, whatever it does.  A Ctrl+C that
 * ctrun's parent told it to ignore never arrives. */
static const int run_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGBREAK };
#define N_RUN_SIGNALS (sizeof run_signals / sizeof run_signals[0])

struct ctrun_signals {
  uv_signal_t h[N_RUN_SIGNALS];
  int open;
  ctrun_signal_cb cb;
  void *data;
};

static void on_run_signal(uv_signal_t *h, int sig) {
  struct ctrun_signals *s = h->data;
  s->cb(sig, s->data);
}

static void free_signals(uv_handle_t *h) {
  struct ctrun_signals *s = h->data;
  if (--s->open == 0)
    free(s);
}

int ctrun_signals_watch(uv_loop_t *loop, ctrun_signal_cb cb, void *data, struct ctrun_signals **out) {
  struct ctrun_signals *s = calloc(1, sizeof *s);
  int r = 0;
  if (s == NULL)
    return UV_ENOMEM;
  s->cb = cb;
  s->data = data;
  *out = s;
  for (size_t i = 0; i < N_RUN_SIGNALS && r == 0; i++) {
    r = uv_signal_init(loop, &s->h[i]);
    if (r != 0)
      break;
    s->h[i].data = s;
    s->open++;
    r = uv_signal_start(&s->h[i], on_run_signal, run_signals[i]);
  }
  return r;
}

void ctrun_signals_close(struct ctrun_signals *s) {
  int n;
  if (s == NULL)
    return;
  if ((n = s->open) == 0)
    free(s);
  for (int i = 0; i < n; i++)
    uv_close((uv_handle_t *)&s->h[i], free_signals);
}

int ctrun_proc_protect(char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  return 0;
}

int ctrun_proc_held_signal(void) { return 0; }

/* Whether H can serve as a standard handle: a parent may pass NULL,
 * INVALID_HANDLE_VALUE, or the value of a handle that is not open here
 * (which names whatever ctrun opens next under that value). */
static bool usable(HANDLE h) {
  if (!valid(h))
    return false;
  SetLastError(NO_ERROR);
  return GetFileType(h) != FILE_TYPE_UNKNOWN || GetLastError() == NO_ERROR;
}

/* Every standard handle ctrun lacks becomes the null device, before ctrun
 * opens anything: for the C runtime's descriptors 0-2 and for
 * GetStdHandle alike.  So a message never lands in a lock file or a log
 * that took over a stale handle's value, a handle value the parent left
 * stale is never passed on to the command, and the command gets the null
 * device where ctrun has nothing (as on Unix, /dev/null). */
static void safe_std_handles(void) {
  static const DWORD which[3] = { STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE };
  for (int i = 0; i < 3; i++) {
    HANDLE null;
    int fd;
    if (usable(GetStdHandle(which[i])))
      continue;
    null = CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                       NULL, OPEN_EXISTING, 0, NULL);
    if (null == INVALID_HANDLE_VALUE)
      continue;
    fd = _open_osfhandle((intptr_t)null, (i == 0 ? _O_RDONLY : _O_WRONLY) | _O_BINARY);
    if (fd < 0) {
      CloseHandle(null);
      continue;
    }
    if (fd != i) {
      _dup2(fd, i);
      _close(fd);
    }
    SetStdHandle(which[i], (HANDLE)_get_osfhandle(i));
  }
}

void ctrun_proc_init(int *argc, char ***argv) {
  int n = 0;
  wchar_t **w;
  char **v;

  safe_std_handles();
  ctrun_win_detach_init();
  w = CommandLineToArgvW(GetCommandLineW(), &n);

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
