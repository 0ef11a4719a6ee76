/* End-to-end: tracked runs, ctrun ps, stop, cleanup and check. */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <dirent.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#endif

/* A check status line: WANT, then the memory perfdata (its value varies). */
static void assert_check_line(const char *out, const char *want) {
  size_t n = strlen(want);
  const char *p = out + n;
  if (strncmp(out, want, n) != 0 || strncmp(p, " mem=", 5) != 0)
    fail_msg("check printed '%s', not '%s mem=...'", out, want);
  for (p += 5; *p >= '0' && *p <= '9'; p++)
    ;
  if (strcmp(p, "B\n") != 0)
    fail_msg("check's mem= perfdata is malformed: '%s'", out);
}

/* The value of "key": in JSON text S, copied into BUF (strings unquoted). */
static const char *field(const char *s, const char *key, char *buf, size_t size) {
  char want[64];
  const char *p;
  size_t n = 0;
  snprintf(want, sizeof want, "\"%s\":", key);
  p = strstr(s, want);
  if (p == NULL)
    return NULL;
  p += strlen(want);
  if (*p == '"')
    p++;
  while (*p && *p != '"' && *p != ',' && *p != '}' && n + 1 < size)
    buf[n++] = *p++;
  buf[n] = '\0';
  return buf;
}

static int count(const char *s, const char *what) {
  int n = 0;
  for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
    n++;
  return n;
}

static void ps_shows_a_running_run_with_every_field(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char v[256], want[32];
  const char *lock = e2e_path(t, "a.lock");
  pid_t pid = E2E_START(t, "-n", "web", "-t", "60", "-l", lock, "-o", e2e_path(t, "log"), "--",
                        "@child", "{", "sleep", "300", "}", "sleep", "300");
  assert_true(e2e_wait_marked(t, 3, 5));
  E2E_RUN(t, &r, "ps", "--json");
  assert_int_equal(r.code, 0);
  static const char *const keys[] = { "id", "name", "state", "pid", "child_pid", "pgid",
                                      "started", "deadline", "argv", "lock", "log", "procs" };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (field(r.out, keys[i], v, sizeof v) == NULL)
      fail_msg("ps --json lacks '%s': %s", keys[i], r.out);
  assert_string_equal(field(r.out, "name", v, sizeof v), "web");
  assert_string_equal(field(r.out, "state", v, sizeof v), "running");
  snprintf(want, sizeof want, "%d", (int)pid);
  assert_string_equal(field(r.out, "pid", v, sizeof v), want);
  assert_string_equal(field(r.out, "lock", v, sizeof v), lock);
  assert_non_null(strstr(field(r.out, "started", v, sizeof v), "T"));
  assert_non_null(strstr(field(r.out, "deadline", v, sizeof v), "Z"));
  if (e2e_has_extras())
    assert_string_equal(field(r.out, "procs", v, sizeof v), "2");
  assert_non_null(strstr(r.out, "\"argv\":[\""));

  E2E_RUN(t, &r, "ps");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "ID"));
  assert_non_null(strstr(r.out, "web"));
  assert_non_null(strstr(r.out, "running"));

  kill(pid, SIGTERM);
  assert_int_equal(e2e_wait(pid, 10), 128 + SIGTERM);
  E2E_RUN(t, &r, "ps", "--json");
  assert_string_equal(r.out, "[]\n"); /* removed when it ends */
}

static void stop(struct e2e *t, bool by_id) {
  struct e2e_result r;
  char id[64];
  pid_t pid;
  if (e2e_has_extras())
    pid = E2E_START(t, "-n", "victim", "-k", "0.3", "--", "@child", "ignore-term", "{", "setsid",
                    "ignore-term", "sleep", "300", "}", "sleep", "300");
  else
    pid = E2E_START(t, "-n", "victim", "-k", "0.3", "--", "@child", "ignore-term", "{", "sleep",
                    "300", "}", "sleep", "300");
  assert_true(e2e_wait_marked(t, 3, 5));
  E2E_RUN(t, &r, "ps", "--json");
  assert_non_null(field(r.out, "id", id, sizeof id));
  E2E_RUN(t, &r, "stop", by_id ? id : "victim");
  assert_int_equal(r.code, 0);
  assert_int_equal(e2e_wait(pid, 10), 124); /* as a timeout would */
  assert_int_equal(e2e_count_marked(t), 0);
}

static void stop_by_name_leaves_nothing(void **state) { stop(*state, false); }
static void stop_by_id_leaves_nothing(void **state) { stop(*state, true); }

static void stop_of_an_unknown_run_is_1(void **state) {
  struct e2e_result r;
  E2E_RUN(*state, &r, "stop", "no-such-run");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "no-such-run"));
}

static void fifty_concurrent_runs_are_listed_and_stopped(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  enum { N = 50 };
  pid_t pids[N];
  for (int i = 0; i < N; i++)
    pids[i] = E2E_START(t, "-n", "many", "--", "@child", "sleep", "300");
  /* Each run is listed once recorded, just before its command starts. */
  double end = e2e_now() + 20;
  do
    E2E_RUN(t, &r, "ps", "--json");
  while (count(r.out, "\"name\":\"many\"") < N && e2e_now() < end);
  assert_int_equal(count(r.out, "\"name\":\"many\""), N);
  E2E_RUN(t, &r, "stop", "-k", "1", "many");
  assert_int_equal(r.code, 0);
  for (int i = 0; i < N; i++)
    assert_int_equal(e2e_wait(pids[i], 20), 124);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static void corrupt_entries_crash_nothing(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char path[600];
  E2E_RUN(t, &r, "ps"); /* creates the state directory */
  snprintf(path, sizeof path, "%s/0123456789ab.run", t->state);
  write_file(path, "\x01\x02garbage\xff");
  snprintf(path, sizeof path, "%s/abcdefabcdef.run", t->state);
  write_file(path, "ctrun-run 1\nid=abcdefabcdef\npid=1\nname=torn"); /* torn */
  snprintf(path, sizeof path, "%s/aaaaaaaaaaaa.run", t->state);
  write_file(path, "ctrun-run 1\nid=bbbbbbbbbbbb\npid=1\nend\n"); /* names another run */
  E2E_RUN(t, &r, "ps");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.err, "skipping"));
  E2E_RUN(t, &r, "ps", "--json");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "[]\n");
  E2E_RUN(t, &r, "stop", "torn");
  assert_int_equal(r.code, 1);
  E2E_RUN(t, &r, "cleanup");
  assert_int_equal(r.code, 0);
  E2E_RUN(t, &r, "check");
  assert_int_equal(r.code, 0);
  /* A run still works beside them. */
  E2E_RUN(t, &r, "--", "@child", "exit", "0");
  assert_int_equal(r.code, 0);
}

static void bad_state_directories_are_refused(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char target[600];
  /* A symbolic link. */
  snprintf(target, sizeof target, "%s/real", t->dir);
  mkdir(target, 0700);
  assert_int_equal(symlink(target, t->state), 0);
  E2E_RUN(t, &r, "--", "@child", "out", "ran");
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "symbolic link"));
  assert_string_equal(r.out, "");
  E2E_RUN(t, &r, "ps");
  assert_int_equal(r.code, 125);
  unlink(t->state);
  /* Writable by others. */
  mkdir(t->state, 0700);
  chmod(t->state, 0777);
  E2E_RUN(t, &r, "--", "@child", "out", "ran");
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "writable by group or others"));
  E2E_RUN(t, &r, "check");
  assert_int_equal(r.code, 3); /* UNKNOWN */
  chmod(t->state, 0700);
  /* Owned by another user (needs root to arrange). */
  if (geteuid() == 0) {
    assert_int_equal(chown(t->state, 65534, 65534), 0);
    E2E_RUN(t, &r, "--", "@child", "out", "ran");
    assert_int_equal(r.code, 125);
    assert_non_null(strstr(r.err, "owned by uid 65534"));
    assert_int_equal(chown(t->state, 0, 0), 0);
  }
}

static void check_reports_ok_warning_critical(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  E2E_RUN(t, &r, "check");
  assert_int_equal(r.code, 0);
  assert_check_line(r.out, "CTRUN OK - 0 runs, 0 processes, 0 stale | runs=0 procs=0 stale=0 children_killed=0");
  if (!e2e_has_extras())
    return; /* no process counts on the generic path */
  pid_t pid = E2E_START(t, "--", "@child", "{", "sleep", "300", "}", "sleep", "300");
  assert_true(e2e_wait_marked(t, 3, 5));
  E2E_RUN(t, &r, "check", "--warn", "3", "--crit", "5");
  assert_int_equal(r.code, 0);
  assert_check_line(r.out, "CTRUN OK - 1 runs, 2 processes, 0 stale | runs=1 procs=2;3;5 stale=0 children_killed=0");
  E2E_RUN(t, &r, "check", "--warn", "2", "--crit", "5");
  assert_int_equal(r.code, 1);
  assert_check_line(r.out,
                      "CTRUN WARNING - 1 runs, 2 processes, 0 stale | runs=1 procs=2;2;5 stale=0 children_killed=0");
  E2E_RUN(t, &r, "check", "--warn", "1", "--crit", "2");
  assert_int_equal(r.code, 2);
  assert_check_line(r.out,
                      "CTRUN CRITICAL - 1 runs, 2 processes, 0 stale | runs=1 procs=2;1;2 stale=0 children_killed=0");
  E2E_RUN(t, &r, "check", "--json", "--crit", "9");
  assert_non_null(strstr(r.out, "\"status\":\"OK\""));
  assert_non_null(strstr(r.out, "\"procs\":2,"));
  assert_non_null(strstr(r.out, "\"warn\":null,\"crit\":9"));
  kill(pid, SIGTERM);
  e2e_wait(pid, 10);
}

/* For cron, which mails any output: -q prints nothing while all is well,
 * and the full line, with the same exit status, when it is not. */
static void check_quiet_prints_only_when_not_ok(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  E2E_RUN(t, &r, "check", "-q");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "");
  assert_string_equal(r.err, "");
  E2E_RUN(t, &r, "check", "--quiet", "--json", "--warn", "5");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "");
  /* --warn 0 makes any state a WARNING. */
  E2E_RUN(t, &r, "check", "--quiet", "--warn", "0", "--cleanup");
  assert_int_equal(r.code, 1);
  assert_check_line(r.out, "CTRUN WARNING - 0 runs, 0 processes, 0 stale | runs=0 procs=0;0; stale=0 children_killed=0");
  E2E_RUN(t, &r, "check", "-q", "--json", "--warn", "0");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.out, "\"status\":\"WARNING\""));
  if (!e2e_has_extras())
    return; /* no process counts on the generic path */
  pid_t pid = E2E_START(t, "--", "@child", "{", "sleep", "300", "}", "sleep", "300");
  assert_true(e2e_wait_marked(t, 3, 5));
  E2E_RUN(t, &r, "check", "-q", "--warn", "3", "--crit", "5");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "");
  E2E_RUN(t, &r, "check", "-q", "--warn", "1", "--crit", "2");
  assert_int_equal(r.code, 2);
  assert_check_line(r.out,
                      "CTRUN CRITICAL - 1 runs, 2 processes, 0 stale | runs=1 procs=2;1;2 stale=0 children_killed=0");
  kill(pid, SIGTERM);
  e2e_wait(pid, 10);
}

/* An entry whose recorded processes now belong to strangers (pid reuse)
 * must never make stop or cleanup signal them. */
#ifdef __linux__
/* Field 22 of /proc/PID/stat: the start time every identity check reads. */
static unsigned long long proc_start(long pid) {
  char path[64], *text, *p;
  unsigned long long v = 0;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  text = e2e_read(path);
  assert_non_null(text);
  p = strrchr(text, ')');
  for (int field = 2; p != NULL && field < 22; field++)
    p = strchr(p + 1, ' ');
  assert_non_null(p);
  v = strtoull(p + 1, NULL, 10);
  free(text);
  return v;
}

/* The number after "KEY=" on a line of entry text S. */
static unsigned long long entry_number(const char *s, const char *key) {
  char want[32];
  const char *p;
  snprintf(want, sizeof want, "\n%s=", key);
  p = strstr(s, want);
  if (p == NULL)
    fail_msg("the entry lacks %s: %s", key, s);
  return strtoull(p + strlen(want), NULL, 10);
}

/* The pid of the process whose record lock F_GETLK finds on the file at
 * PATH; 0 if none. */
static long record_lock_owner(const char *path) {
  struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(fcntl(fd, F_GETLK, &l), 0);
  close(fd);
  return l.l_type == F_UNLCK ? 0 : (long)l.l_pid;
}

/* Start a run named NAME whose command sleeps; once the command runs, the
 * text of the run's entry (its path in PATH), and the supervisor's pid in
 * *PID. */
static char *start_sleeper(struct e2e *t, const char *name, pid_t *pid, char *path, size_t size) {
  struct e2e_result r;
  char id[64], *text;
  const char *ran = e2e_path(t, "ran");
  unlink(ran);
  *pid = E2E_START(t, "-n", name, "--", "@child", "pidfile", ran, "sleep", "300");
  /* The command runs: its entry was written before it could. */
  assert_true(e2e_wait_file(ran, 5));
  E2E_RUN(t, &r, "ps", "--json");
  assert_non_null(field(r.out, "id", id, sizeof id));
  snprintf(path, size, "%s/%s.run", t->state, id);
  text = e2e_read(path);
  assert_non_null(text);
  return text;
}

/* The entry proves who its supervisor is, and names the command by the
 * start time /proc gives it, however it was learnt (from the clock around
 * its birth, where that tells it): a wrong one would make stop and cleanup
 * take the run's own processes for strangers.  The supervisor signs the
 * entry instead of recording its start time (a record lock, which the
 * kernel shows with its pid).  Many runs, so that some are born across a
 * clock tick. */
static void entries_prove_the_supervisor_and_the_command(void **state) {
  struct e2e *t = *state;
  bool table = e2e_has_extras();
  for (int i = 0; i < 40; i++) {
    char path[600];
    pid_t pid;
    char *text = start_sleeper(t, "born", &pid, path, sizeof path);
    long child = (long)entry_number(text, "child_pid");
    assert_int_equal(entry_number(text, "pid"), (unsigned long long)pid);
    /* The generic POSIX build has no process table: no start times, and
     * no signature either. */
    assert_int_equal(entry_number(text, "pid_start"), 0);
    assert_int_equal(record_lock_owner(path), table ? (long)pid : 0);
    assert_int_equal(entry_number(text, "child_start"), table ? proc_start(child) : 0);
    free(text);
    kill(pid, SIGTERM);
    assert_int_equal(e2e_wait(pid, 10), 128 + SIGTERM);
    assert_int_equal(e2e_count_marked(t), 0);
  }
}
#endif

/* A process that is no run's: a sleep in a process group of its own. */
static pid_t start_stranger(void) {
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execlp("sleep", "sleep", "300", (char *)NULL);
    _exit(1);
  }
  e2e_own(pid);
  return pid;
}

/* An entry for run ID named NAME, written by hand into T's state
 * directory (its path in PATH), naming PID as its supervisor, command and
 * group, with PID_START as the supervisor's start time and one for the
 * command that matches nothing.  Its text in TEXT. */
static void forge_entry(struct e2e *t, const char *id, const char *name, pid_t pid, int pid_start,
                        char *path, size_t size, char *text, size_t tsize) {
  struct e2e_result r;
  E2E_RUN(t, &r, "ps"); /* creates the state directory */
  snprintf(text, tsize,
           "ctrun-run 1\nid=%s\nname=%s\npid=%d\npid_start=%d\nchild_pid=%d\n"
           "child_start=2\npgid=%d\nboot_id=\nstarted=1\ndeadline=0\nsignal=9\nkill_after=0\n"
           "arg=sleep\nend\n",
           id, name, (int)pid, pid_start, (int)pid, (int)pid);
  snprintf(path, size, "%s/%s.run", t->state, id);
  write_file(path, text);
  chmod(path, 0600);
}

static void pid_reuse_never_kills_a_stranger(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char path[600], text[1024];
  pid_t stranger = start_stranger();
  /* A stale entry (nobody holds its lock) naming the stranger as its
   * supervisor, command and group, with start times that do not match. */
  forge_entry(t, "0a0a0a0a0a0a", "forged", stranger, 1, path, sizeof path, text, sizeof text);
  E2E_RUN(t, &r, "stop", "forged");
  assert_int_equal(r.code, 0);
  e2e_sleep(0.1);
  assert_int_equal(kill(stranger, 0), 0);
  write_file(path, text);
  E2E_RUN(t, &r, "cleanup");
  assert_int_equal(r.code, 0);
  e2e_sleep(0.1);
  assert_int_equal(kill(stranger, 0), 0); /* still alive */
  assert_int_equal(waitpid(stranger, NULL, WNOHANG), 0);
  kill(stranger, SIGKILL);
  waitpid(stranger, NULL, 0);
}

#ifdef __linux__
static bool in_memory(const char *path) {
  struct statfs fs;
  return statfs(path, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC);
}

/* The boot id line that a run's entry gets with its state directory DIR. */
static char *entry_boot_id(struct e2e *t, const char *dir) {
  char saved[sizeof t->state], to[sizeof t->state], path[600], *text, *line, *end;
  pid_t pid;
  snprintf(saved, sizeof saved, "%s", t->state);
  snprintf(to, sizeof to, "%s", dir); /* DIR may be t->state itself */
  memcpy(t->state, to, sizeof to);
  text = start_sleeper(t, "boot", &pid, path, sizeof path);
  kill(pid, SIGTERM);
  assert_int_equal(e2e_wait(pid, 10), 128 + SIGTERM);
  snprintf(t->state, sizeof t->state, "%s", saved);
  line = strstr(text, "\nboot_id=");
  assert_non_null(line);
  line += strlen("\nboot_id=");
  end = strchr(line, '\n');
  assert_non_null(end);
  *end = '\0';
  line = strdup(line);
  free(text);
  return line;
}

/* An entry says which boot it is of only where it could outlive that
 * boot: a state directory on tmpfs is gone after a reboot, and reading
 * the id would cost every run for nothing.  Elsewhere the id is the
 * kernel's (on Linux: the generic host has none). */
static void entries_tell_their_boot_where_it_can_end(void **state) {
  struct e2e *t = *state;
  char boot[64] = "", shm[] = "/dev/shm/ctrun-e2e-XXXXXX", *got;
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
  int checked = 0;
  assert_non_null(f);
  assert_non_null(fgets(boot, sizeof boot, f));
  fclose(f);
  boot[strcspn(boot, "\n")] = '\0';
  /* The test's own state directory, wherever TMPDIR is (the generic
   * POSIX host knows no boot id). */
  got = entry_boot_id(t, t->state);
  assert_string_equal(got, in_memory(t->state) || !e2e_has_extras() ? "" : boot);
  checked |= in_memory(t->state) ? 1 : 2;
  free(got);
  /* One in memory. */
  if (mkdtemp(shm) != NULL && in_memory(shm)) {
    got = entry_boot_id(t, shm);
    assert_string_equal(got, "");
    checked |= 1;
    free(got);
  }
  if (shm[strlen(shm) - 1] != 'X') {
    /* The run is over: what is left is its history. */
    DIR *d = opendir(shm);
    struct dirent *de;
    char path[600];
    while (d != NULL && (de = readdir(d)) != NULL)
      if (de->d_name[0] != '.' && snprintf(path, sizeof path, "%s/%s", shm, de->d_name) > 0)
        unlink(path);
    if (d != NULL)
      closedir(d);
    assert_int_equal(rmdir(shm), 0);
  }
  assert_true(checked & 1);
}

/* The path of the entry in T's state directory of the run named NAME
 * (in BUF); NULL if none. */
static const char *entry_named(struct e2e *t, const char *name, char *buf, size_t size) {
  char want[128];
  DIR *d = opendir(t->state);
  struct dirent *de;
  const char *found = NULL;
  snprintf(want, sizeof want, "\nname=%s\n", name);
  while (found == NULL && d != NULL && (de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    char *text;
    if (n < 4 || strcmp(de->d_name + n - 4, ".run") != 0)
      continue;
    snprintf(buf, size, "%s/%s", t->state, de->d_name);
    text = e2e_read(buf);
    if (text != NULL && strstr(text, want) != NULL)
      found = buf;
    free(text);
  }
  if (d != NULL)
    closedir(d);
  return found;
}

/* A supervisor may read the registry while its own entry exists:
 * --jitter records the run before its lock, and --on-busy=replace then
 * looks there for the holder.  A record lock goes with any descriptor of
 * the file its owner closes, so the supervisor must read its own entry
 * through the one that holds it, or lose the signature by which ctrun stop
 * reaches it (while it waits for the holder to go, here). */
static void listing_the_registry_keeps_the_signature(void **state) {
  struct e2e *t = *state;
  char path[600];
  const char *lock = e2e_path(t, "job.lock"), *ran = e2e_path(t, "ran");
  pid_t holder, taker;
  if (!e2e_has_extras())
    skip(); /* no signatures on the generic host */
  holder = E2E_START(t, "-n", "holder", "-k", "2", "-l", lock, "--", "@child", "ignore-term",
                     "sleep", "300");
  assert_true(e2e_wait_marked(t, 2, 5));
  taker = E2E_START(t, "-n", "taker", "--jitter", "0.01", "--on-busy=replace", "-l", lock, "--",
                    "@child", "pidfile", ran, "exit", "0");
  /* It has found the holder and stopped it, which takes 2 s to go. */
  e2e_sleep(0.7);
  assert_int_not_equal(access(ran, F_OK), 0);
  assert_non_null(entry_named(t, "taker", path, sizeof path));
  assert_int_equal(record_lock_owner(path), (long)taker);
  assert_int_equal(e2e_wait(holder, 10), 124);
  assert_int_equal(e2e_wait(taker, 10), 0);
  assert_int_equal(access(ran, F_OK), 0);
}

/* A held entry lock does not say who holds it: a cleanup holds a dead
 * run's while it kills what remains, and the supervisor's pid may belong
 * to a stranger by then.  So stop signals a supervisor only when its
 * entry is signed by it: here the entry names a stranger and is held by
 * this test, as by a cleanup, and stop must fail without touching it
 * (SIGUSR1 would kill a sleep). */
static void a_held_entry_is_not_a_live_supervisor(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  char path[600], text[1024];
  int fd;
  pid_t stranger;

  if (!e2e_has_extras())
    skip(); /* the generic host has nothing but the lock to go by (man page) */
  stranger = start_stranger();
  forge_entry(t, "0b0b0b0b0b0b", "held", stranger, 0, path, sizeof path, text, sizeof text);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0);
  E2E_RUN(t, &r, "stop", "held");
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "cannot signal the supervisor"));
  e2e_sleep(0.1);
  assert_int_equal(waitpid(stranger, NULL, WNOHANG), 0); /* still alive */
  close(fd);
  unlink(path);
  kill(stranger, SIGKILL);
  waitpid(stranger, NULL, 0);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(ps_shows_a_running_run_with_every_field),
    E2E_TEST(stop_by_name_leaves_nothing),
    E2E_TEST(stop_by_id_leaves_nothing),
    E2E_TEST(stop_of_an_unknown_run_is_1),
    E2E_TEST(fifty_concurrent_runs_are_listed_and_stopped),
    E2E_TEST(corrupt_entries_crash_nothing),
    E2E_TEST(bad_state_directories_are_refused),
    E2E_TEST(check_reports_ok_warning_critical),
    E2E_TEST(check_quiet_prints_only_when_not_ok),
    E2E_TEST(pid_reuse_never_kills_a_stranger),
#ifdef __linux__
    E2E_TEST(entries_prove_the_supervisor_and_the_command),
    E2E_TEST(a_held_entry_is_not_a_live_supervisor),
    E2E_TEST(entries_tell_their_boot_where_it_can_end),
    E2E_TEST(listing_the_registry_keeps_the_signature),
#endif
  };
  return e2e_main("e2e-registry", tests, sizeof tests / sizeof tests[0]);
}
