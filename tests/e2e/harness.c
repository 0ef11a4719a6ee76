
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

static int serial;

/* Statuses of children reaped while waiting for another one. */
static struct { pid_t pid; int code; } reaped[256];
static int nreaped;

/* Processes the runner started itself (ctrun), and how many others it had
 * to reap: with a subreaper, every process of a tree is reaped by its own
 * ctrun, so an orphan that reaches the runner outlived its ctrun. */
static pid_t started[4096];
static int nstarted, orphans;

static bool started_here(pid_t pid) {
  for (int i = 0; i < nstarted; i++)
    if (started[i] == pid)
      return true;
  return false;
}

/* The command name of (zombie) PID, from /proc/PID/stat. */
static void comm_of(pid_t pid, char *buf, size_t size) {
  char path[64], stat[512];
  FILE *f;
  size_t n;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  buf[0] = '\0';
  if ((f = fopen(path, "r")) == NULL)
    return;
  n = fread(stat, 1, sizeof stat - 1, f);
  fclose(f);
  stat[n] = '\0';
  char *a = strchr(stat, '('), *b = strrchr(stat, ')');
  if (a && b && b > a)
    snprintf(buf, size, "%.*s", (int)(b - a - 1), a + 1);
}

/* Count an adopted child about to be reaped, unless it is a ctrun (a
 * detached supervisor is adopted by design) or one the runner started. */
static void note_adopted(pid_t pid) {
  char comm[64];
  if (started_here(pid))
    return;
  comm_of(pid, comm, sizeof comm);
  if (strcmp(comm, "ctrun") != 0)
    orphans++;
}

/* Reap every child that has ended, noting orphans; statuses kept. */
static void reap_all(void) {
  siginfo_t si;
  for (;;) {
    int st;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
      return;
    note_adopted(si.si_pid);
    pid_t r = waitpid(si.si_pid, &st, 0);
    if (r <= 0)
      continue;
    /* Kept for e2e_wait.  When full, a status of no process the runner
     * started gives way: thousands of orphans (a pid hopper's) must not
     * crowd out a ctrun's. */
    int at = nreaped < 256 ? nreaped++ : -1;
    for (int i = 0; at < 0 && i < 256; i++)
      if (!started_here(reaped[i].pid))
        at = i;
    if (at >= 0) {
      reaped[at].pid = r;
      reaped[at].code = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
    }
  }
}

void e2e_own(pid_t pid) {
  if (nstarted < 4096)
    started[nstarted++] = pid;
}

void e2e_forgive_orphans(void) {
  reap_all();
  orphans = 0;
}

double e2e_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void e2e_sleep(double secs) {
  struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

bool e2e_has_extras(void) {
  const char *v = getenv("CTRUN_CONTAINMENT");
  return v == NULL || strcmp(v, "linux") == 0;
}

const char *e2e_path(struct e2e *t, const char *name) {
  static char buf[4][512];
  static int k;
  char *p = buf[k++ % 4];
  snprintf(p, 512, "%s/%s", t->dir, name);
  return p;
}

char *e2e_read(const char *path) {
  FILE *f = fopen(path, "r");
  char *buf = calloc(1, 1 << 20);
  if (f != NULL) {
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
  }
  return buf;
}

/* Reap whatever the runner adopted; count zombies left among its children. */
static int reap_adopted(void) {
  reap_all();
  nreaped = 0;
  return 0;
}

/* The state letter of /proc/DIR/stat ('?' if unreadable). */
static char state_of(const char *dir) {
  char path[600], buf[1024];
  int fd;
  ssize_t n;
  snprintf(path, sizeof path, "%s/stat", dir);
  if ((fd = open(path, O_RDONLY)) < 0)
    return '?';
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return '?';
  buf[n] = '\0';
  char *s = strrchr(buf, ')');
  return s != NULL && s[1] == ' ' ? s[2] : '?';
}

/* Whether any thread of process PID runs.  Once its main thread has
 * called pthread_exit(), /proc/PID/stat reads Z while the others run on. */
static bool alive(const char *pid) {
  char path[300], task[600];
  DIR *d;
  struct dirent *de;
  bool live = false;
  snprintf(path, sizeof path, "/proc/%s", pid);
  char st = state_of(path);
  if (st != 'Z' && st != 'X')
    return st != '?';
  snprintf(path, sizeof path, "/proc/%s/task", pid);
  if ((d = opendir(path)) == NULL)
    return false;
  while (!live && (de = readdir(d)) != NULL) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    snprintf(task, sizeof task, "%s/%s", path, de->d_name);
    st = state_of(task);
    live = st != 'Z' && st != 'X' && st != '?';
  }
  closedir(d);
  return live;
}

bool e2e_running(pid_t pid) {
  char s[24];
  snprintf(s, sizeof s, "%d", (int)pid);
  return pid > 0 && alive(s);
}

bool e2e_locked(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  bool held = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  if (fd >= 0)
    close(fd); /* and with it the lock, if we got it */
  return held;
}

const char *e2e_bg_err(struct e2e *t) {
  static char path[600];
  DIR *d = opendir(t->dir);
  struct dirent *de;
  path[0] = '\0';
  while (d != NULL && (de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    if (strncmp(de->d_name, "bg-", 3) == 0 && n > 4 && strcmp(de->d_name + n - 4, ".err") == 0)
      snprintf(path, sizeof path, "%s/%s", t->dir, de->d_name);
  }
  if (d != NULL)
    closedir(d);
  return path;
}

/* Read all of PATH (at most 16 MiB) into a new buffer; its length in *LEN. */
static char *slurp(const char *path, size_t *len) {
  size_t cap = 65536, n = 0;
  char *buf = malloc(cap + 1);
  int fd = open(path, O_RDONLY);
  ssize_t r;
  *len = 0;
  if (fd < 0 || buf == NULL) {
    if (fd >= 0)
      close(fd);
    free(buf);
    return NULL;
  }
  while ((r = read(fd, buf + n, cap - n)) > 0 || (r < 0 && errno == EINTR)) {
    if (r < 0)
      continue;
    n += (size_t)r;
    if (n == cap && cap < (16u << 20)) {
      char *bigger = realloc(buf, 2 * cap + 1);
      if (bigger == NULL)
        break;
      buf = bigger;
      cap *= 2;
    } else if (n == cap) {
      break;
    }
  }
  close(fd);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* Whether the environment of process PID holds the string WANT and, unless
 * PREFIX is NULL, a string that begins with PREFIX.  A process whose main
 * thread has exited shows no environment under /proc/PID, only under the
 * tasks that still run. */
static bool env_has(const char *pid, const char *want, const char *prefix) {
  char path[600];
  size_t len;
  char *env;
  DIR *d;
  struct dirent *de;
  bool found = false;

  snprintf(path, sizeof path, "/proc/%s/environ", pid);
  env = slurp(path, &len);
  if (env == NULL || len == 0) {
    free(env);
    env = NULL;
    snprintf(path, sizeof path, "/proc/%s/task", pid);
    d = opendir(path);
    while (d != NULL && env == NULL && (de = readdir(d)) != NULL) {
      if (de->d_name[0] < '0' || de->d_name[0] > '9')
        continue;
      snprintf(path, sizeof path, "/proc/%s/task/%s/environ", pid, de->d_name);
      env = slurp(path, &len);
      if (env != NULL && len == 0) {
        free(env);
        env = NULL;
      }
    }
    if (d)
      closedir(d);
  }
  bool prefixed = prefix == NULL;
  for (char *s = env; env != NULL && s < env + len; s += strlen(s) + 1) {
    found = found || strcmp(s, want) == 0;
    prefixed = prefixed || strncmp(s, prefix, strlen(prefix)) == 0;
  }
  free(env);
  return found && prefixed;
}

/* Marked processes alive; with TREE, only those carrying a CTRUN_RUN_ID. */
static int count_marked(struct e2e *t, bool tree) {
  char want[80];
  DIR *d = opendir("/proc");
  struct dirent *de;
  int n = 0;

  snprintf(want, sizeof want, "CTRUN_TEST_MARK=%s", t->mark);
  while (d != NULL && (de = readdir(d)) != NULL) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9')
      continue;
    if (alive(de->d_name) && env_has(de->d_name, want, tree ? "CTRUN_RUN_ID=" : NULL))
      n++;
  }
  if (d)
    closedir(d);
  return n;
}

int e2e_count_marked(struct e2e *t) {
  return count_marked(t, false);
}

int e2e_count_tree(struct e2e *t) {
  return count_marked(t, true);
}

char *e2e_start_err(struct e2e *t) {
  size_t len = 0, n = 0;
  char *text = slurp(e2e_bg_err(t), &len);
  if (text == NULL)
    return strdup("");
  for (size_t i = 0; i < len; i++)
    if (text[i] != '\0')
      text[n++] = text[i];
  text[n] = '\0';
  return text;
}

bool e2e_wait_file(const char *path, double secs) {
  double end = e2e_now() + secs;
  /* Looked at once at least: a wait of 0 asks whether it is there now. */
  for (;;) {
    if (access(path, F_OK) == 0)
      return true;
    if (e2e_now() >= end)
      return false;
    e2e_sleep(0.005);
  }
}

bool e2e_wait_marked(struct e2e *t, int n, double secs) {
  double end = e2e_now() + secs;
  for (;;) {
    if (e2e_count_marked(t) >= n)
      return true;
    if (e2e_now() >= end)
      return false;
    e2e_sleep(0.01);
  }
}

bool e2e_wait_unmarked(struct e2e *t, double secs) {
  double end = e2e_now() + secs;
  for (int quiet = 0; e2e_now() < end; e2e_sleep(0.02)) {
    quiet = e2e_count_marked(t) == 0 ? quiet + 1 : 0;
    if (quiet == 3)
      return true;
  }
  return false;
}

pid_t e2e_spawn(struct e2e *t, int (*confine)(void), const char *const *argv) {
  size_t n = 0;
  while (argv[n] != NULL)
    n++;
  const char **v = calloc(n + 1, sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = strcmp(argv[i], "@ctrun") == 0   ? getenv("CTRUN")
           : strcmp(argv[i], "@child") == 0 ? getenv("CTRUN_TESTCHILD")
                                            : argv[i];
  pid_t pid = fork();
  if (pid == 0) {
    if (confine != NULL && confine() != 0)
      _exit(77);
    char path[600];
    setenv("CTRUN_STATE_DIR", t->state, 1);
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    int in = open("/dev/null", O_RDONLY);
    snprintf(path, sizeof path, "%s/spawn.out", t->dir);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    snprintf(path, sizeof path, "%s/spawn.err", t->dir);
    int err = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execvp(v[0], (char *const *)v);
    _exit(200);
  }
  free(v);
  e2e_own(pid);
  return pid;
}

int e2e_setup(void **state) {
  struct e2e *t = calloc(1, sizeof *t);
  const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(t->dir, sizeof t->dir, "%s/ctrun-e2e-%d-%d-XXXXXX", tmp, (int)getpid(), ++serial);
  if (mkdtemp(t->dir) == NULL)
    return -1;
  snprintf(t->state, sizeof t->state, "%s/state", t->dir);
  snprintf(t->mark, sizeof t->mark, "e2e-%d-%d-%ld", (int)getpid(), serial, (long)time(NULL));
  *state = t;
  return 0;
}

static void remove_tree(const char *path) {
  DIR *d = opendir(path);
  struct dirent *de;
  char sub[1024];
  while (d != NULL && (de = readdir(d)) != NULL) {
    struct stat st;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
    if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
      remove_tree(sub);
    else
      unlink(sub);
  }
  if (d)
    closedir(d);
  chmod(path, 0700);
  rmdir(path);
}

int e2e_teardown(void **state) {
  struct e2e *t = *state;
  int left = e2e_count_marked(t), zombies;
  /* Whatever a failed test left is killed here, so the next test starts
   * clean; but the test still fails. */
  if (left > 0) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "CTRUN_STATE_DIR='%s' '%s' cleanup -q >/dev/null 2>&1", t->state,
             getenv("CTRUN"));
    if (system(cmd) != 0) {
      /* reported below anyway */
    }
  }
  e2e_sleep(0.01);
  reap_adopted();
  zombies = e2e_has_extras() ? orphans : 0;
  orphans = 0;
  nstarted = 0;
  remove_tree(t->dir);
  free(t);
  if (left > 0)
    fprintf(stderr, "LEFT BEHIND: %d process(es) of the test still alive\n", left);
  if (zombies > 0)
    fprintf(stderr, "LEFT BEHIND: %d process(es) outlived their ctrun (reaped by the runner)\n",
            zombies);
  return left > 0 || zombies > 0 ? -1 : 0;
}

/* Exec ctrun with ARGS, or (BARE) the command line ARGS itself; "@child"
 * and "@ctrun" stand for the two programs. */
static void exec_ctrun(struct e2e *t, const char *const *args, const char *out, const char *err,
                       bool bare) {
  size_t count = 0;
  int n = 0, fd;
  while (args[count] != NULL)
    count++;
  const char **argv = calloc(count + 2, sizeof *argv); /* any length: the tests pass 20 000 */
  if (argv == NULL)
    _exit(201);
  if (!bare)
    argv[n++] = getenv("CTRUN");
  for (; *args != NULL; args++)
    argv[n++] = strcmp(*args, "@child") == 0   ? getenv("CTRUN_TESTCHILD")
                : strcmp(*args, "@ctrun") == 0 ? getenv("CTRUN")
                                               : *args;
  argv[n] = NULL;
  setenv("CTRUN_STATE_DIR", t->state, 1);
  setenv("CTRUN_TEST_MARK", t->mark, 1);
  fd = open("/dev/null", O_RDONLY);
  dup2(fd, 0);
  close(fd);
  fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 1);
  close(fd);
  fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 2);
  close(fd);
  execv(argv[0], (char *const *)argv);
  _exit(200);
}

static pid_t start_args(struct e2e *t, const char *const *args, bool bare) {
  char out[1024], err[1024];
  pid_t pid;
  snprintf(out, sizeof out, "%s/bg-%d.out", t->dir, serial);
  snprintf(err, sizeof err, "%s/bg-%d.err", t->dir, serial);
  pid = fork();
  if (pid == 0)
    exec_ctrun(t, args, out, err, bare);
  if (nstarted < 4096)
    started[nstarted++] = pid;
  return pid;
}

pid_t e2e_start(struct e2e *t, const char *const *args) { return start_args(t, args, false); }

pid_t e2e_start_cmd(struct e2e *t, const char *const *args) { return start_args(t, args, true); }


pid_t e2e_helper(struct e2e *t, const char *tag, const char *const *argv) {
  char out[600];
  pid_t pid;
  snprintf(out, sizeof out, "%s/%s.err", t->dir, tag);
  pid = fork();
  if (pid == 0) {
    setenv("CTRUN_TEST_MARK", t->mark, 1);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], (char *const *)argv);
    _exit(200);
  }
  assert_true(pid > 0);
  e2e_own(pid);
  return pid;
}

/* Like an init: while waiting for PID, reap every child and orphan, so that
 * none lingers as a zombie in a process group ctrun watches; the statuses
 * of other children of ours are kept for their own e2e_wait. */
int e2e_wait(pid_t pid, double secs) {
  double end = e2e_now() + secs;
  for (;;) {
    reap_all();
    for (int i = 0; i < nreaped; i++)
      if (reaped[i].pid == pid) {
        int code = reaped[i].code;
        reaped[i] = reaped[--nreaped];
        return code;
      }
    if (kill(pid, 0) != 0 || e2e_now() > end)
      return -1;
    e2e_sleep(0.005);
  }
}

static void run_args(struct e2e *t, struct e2e_result *res, const char *const *args, bool bare) {
  char out[1024], err[1024];
  char *text;
  double t0 = e2e_now();
  pid_t pid;

  snprintf(out, sizeof out, "%s/run.out", t->dir);
  snprintf(err, sizeof err, "%s/run.err", t->dir);
  pid = fork();
  if (pid == 0)
    exec_ctrun(t, args, out, err, bare);
  if (nstarted < 4096)
    started[nstarted++] = pid;
  res->code = e2e_wait(pid, 120);
  res->secs = e2e_now() - t0;
  text = e2e_read(out);
  snprintf(res->out, sizeof res->out, "%s", text);
  free(text);
  text = e2e_read(err);
  snprintf(res->err, sizeof res->err, "%s", text);
  free(text);
  if (res->code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
}

void e2e_run(struct e2e *t, struct e2e_result *res, const char *const *args) {
  run_args(t, res, args, false);
}

void e2e_run_cmd(struct e2e *t, struct e2e_result *res, const char *const *args) {
  run_args(t, res, args, true);
}

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* The start of each filter below: a call of another architecture passes;
 * the call's number is loaded. */
#define SYSCALL_NUMBER                                                                             \
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),                         \
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),                                  \
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),                                                \
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))

/* Install the seccomp filter F of N instructions in this process. */
static int confine_with(struct sock_filter *f, size_t n) {
  struct sock_fprog prog = { (unsigned short)n, f };
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
                 prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0
             ? 0
             : -1;
}

int e2e_forbid_subreaper(void) {
#ifdef TEST_AUDIT_ARCH
  struct sock_filter f[] = {
    SYSCALL_NUMBER,
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_prctl, 0, 3),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_SET_CHILD_SUBREAPER, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  if (confine_with(f, sizeof f / sizeof f[0]) == 0 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 &&
      errno == EPERM)
    return 0;
#endif
  return -1;
}

int e2e_forbid_shared_clone(void) {
#ifdef TEST_AUDIT_ARCH
  /* clone's flags are its first argument on both architectures (the low
   * word holds CLONE_VM and CLONE_THREAD); clone3 passes them in memory,
   * out of a filter's reach, and glibc's clone() does not use it. */
  struct sock_filter f[] = {
    SYSCALL_NUMBER,
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
    BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 2, 0),
    BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_VM, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  return confine_with(f, sizeof f / sizeof f[0]);
#else
  return -1;
#endif
}

bool e2e_sanitized(void) {
  static int found = -1;
  size_t n = 0;
  char *bin = NULL;
  FILE *f;

  if (found >= 0)
    return found;
  f = fopen(getenv("CTRUN"), "rb");
  found = 0;
  if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = (size_t)ftell(f)) > 0 &&
      fseek(f, 0, SEEK_SET) == 0 && (bin = malloc(n)) != NULL && fread(bin, 1, n, f) == n)
    found = memmem(bin, n, "AddressSanitizer", 16) != NULL;
  if (f != NULL)
    fclose(f);
  free(bin);
  return found;
}

int e2e_main(const char *name, const struct CMUnitTest *tests, size_t n) {
  if (getenv("CTRUN") == NULL || getenv("CTRUN_TESTCHILD") == NULL) {
    fprintf(stderr, "set CTRUN and CTRUN_TESTCHILD (meson test does)\n");
    return 1;
  }
  /* Orphans of the tests come to the runner, which reaps them, instead of
   * to a PID 1 that may never reap. */
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  /* However the runner was started (a background job of a script ignores
   * INT and QUIT, nohup HUP), the tests start their processes with those
   * at their defaults: ctrun keeps ignored what it finds ignored, by
   * design, and a test that sends one would wait in vain. */
  for (int sig = 1; sig < NSIG; sig++) {
    struct sigaction sa;
    if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
      signal(sig, SIG_DFL);
  }
  signal(SIGPIPE, SIG_IGN);
  /* A suite itself run under ctrun: its run's tag must not make ctrun
   * look like a process of the runs under test (e2e_count_tree). */
  unsetenv("CTRUN_RUN_ID");
  /* E2E_FILTER=pattern runs only the tests it matches ('*' and '?');
   * E2E_SKIP=pattern skips those it matches. */
  if (getenv("E2E_FILTER") != NULL)
    cmocka_set_test_filter(getenv("E2E_FILTER"));
  if (getenv("E2E_SKIP") != NULL)
    cmocka_set_skip_filter(getenv("E2E_SKIP"));
  return _cmocka_run_group_tests(name, tests, n, NULL, NULL);
}
