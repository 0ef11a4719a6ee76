/* End-to-end: fleet locks on real servers (Debian's redis-server, and
 * PostgreSQL run as an unprivileged user), started by the tests on
 * 127.0.0.1 with free ports in the test's directory
 * (tests/helper/fleet_server.py), faults injected by a TCP proxy of the
 * test's own (tests/helper/tcp_proxy.py).  "Hosts" are ctrun processes
 * with state directories of their own.  Every critical section is logged
 * by the test child ("section"), with CLOCK_MONOTONIC times: no two may
 * overlap, and their fencing tokens must rise in the order they began.
 *
 * A server that cannot be started here skips its tests, saying why;
 * where CTRUN_FLEET_REQUIRED=1 (CI) that fails them instead. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

/* The helpers a test started, stopped by the teardown should it fail. */
static pid_t helpers[8];
static int nhelpers;

struct server {
  const char *kind; /* "redis", "postgres" */
  pid_t helper, pid;
  int port;
  char portfile[600];
};

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A Python helper of the tests (ARGS: the script and its arguments). */
static pid_t helper_start(struct e2e *t, const char *tag, const char *const *args) {
  const char *argv[12];
  int n = 0;
  argv[n++] = getenv("CTRUN_PYTHON");
  for (; *args != NULL && n < 11; args++)
    argv[n++] = *args;
  argv[n] = NULL;
  assert_non_null(argv[0]);
  pid_t pid = e2e_helper(t, tag, argv);
  helpers[nhelpers++] = pid;
  return pid;
}

static void helper_stop(pid_t pid) {
  kill(pid, SIGTERM);
  assert_int_equal(e2e_wait(pid, 20), 0);
  for (int i = 0; i < nhelpers; i++)
    if (helpers[i] == pid)
      helpers[i] = helpers[--nhelpers];
}

static void server_read(struct server *s) {
  char *text = e2e_read(s->portfile);
  int port = 0, pid = 0;
  assert_int_equal(sscanf(text, "%d %d", &port, &pid), 2);
  s->port = port;
  s->pid = pid;
  free(text);
}

/* Whether this ctrun was built with KIND's backend (CTRUN_FLEET_BUILT). */
static bool built(const char *kind) {
  const char *b = getenv("CTRUN_FLEET_BUILT");
  return b != NULL && strstr(b, kind) != NULL;
}

/* Start KIND's server; false when it cannot run here (the test then
 * skips, or fails where CTRUN_FLEET_REQUIRED=1). */
static bool server_start(struct e2e *t, struct server *s, const char *kind, bool persistent) {
  char dir[400], err[600];
  const char *required = getenv("CTRUN_FLEET_REQUIRED");
  if (!built(kind)) {
    print_message("this ctrun was built without %s locks\n", kind);
    return false;
  }
  memset(s, 0, sizeof *s);
  s->kind = kind;
  snprintf(dir, sizeof dir, "%s/%s", t->dir, kind);
  assert_int_equal(mkdir(dir, 0755), 0);
  chmod(t->dir, 0711); /* PostgreSQL runs as nobody where the tests run as root */
  snprintf(s->portfile, sizeof s->portfile, "%s/port", dir);
  snprintf(err, sizeof err, "%s/%s.err", t->dir, kind);
  s->helper = helper_start(t, kind, (const char *const[]){ getenv("CTRUN_FLEET_SERVER"), kind, dir,
                                                          s->portfile,
                                                          persistent ? "--appendonly" : NULL, NULL });
  for (double end = e2e_now() + 60; e2e_now() < end && access(s->portfile, F_OK) != 0;) {
    if (!e2e_running(s->helper)) {
      int code = e2e_wait(s->helper, 5);
      char *why = e2e_read(err);
      for (int i = 0; i < nhelpers; i++)
        if (helpers[i] == s->helper)
          helpers[i] = helpers[--nhelpers];
      if (code == 77 && !(required != NULL && strcmp(required, "1") == 0)) {
        print_message("%s cannot be started here: %s\n", kind, why);
        free(why);
        return false;
      }
      fail_msg("%s did not start (exit %d): %s", kind, code, why);
    }
    e2e_sleep(0.05);
  }
  assert_int_equal(access(s->portfile, F_OK), 0);
  server_read(s);
  return true;
}
#define SERVER(t, s, kind, persistent)                                                        \
  do {                                                                                        \
    if (!server_start((t), (s), (kind), (persistent)))                                        \
      skip();                                                                                 \
  } while (0)

/* Send SIG to the server and every process it started. */
static void server_signal(const struct server *s, int sig) {
  DIR *d = opendir("/proc");
  struct dirent *de;
  kill(s->pid, sig);
  while (d != NULL && (de = readdir(d)) != NULL) {
    char path[300], buf[512], *p;
    int ppid = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    if (fgets(buf, sizeof buf, f) != NULL && (p = strrchr(buf, ')')) != NULL &&
        sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == s->pid)
      kill(atoi(de->d_name), sig);
    fclose(f);
  }
  if (d != NULL)
    closedir(d);
}

/* A proxy to TARGET; DELAY: its slow mode's delay ("1.0" if NULL). */
static int proxy_start_slow(struct e2e *t, pid_t *pid, int target, const char *delay) {
  char portfile[600], port[16], *text;
  int p;
  snprintf(portfile, sizeof portfile, "%s/proxy.port", t->dir);
  snprintf(port, sizeof port, "%d", target);
  *pid = helper_start(t, "proxy",
                      (const char *const[]){ getenv("CTRUN_TCP_PROXY"), portfile, port, "--delay",
                                             delay != NULL ? delay : "1.0", NULL });
  assert_true(e2e_wait_file(portfile, 20));
  text = e2e_read(portfile);
  p = atoi(text);
  free(text);
  assert_true(p > 0);
  return p;
}

static int proxy_start(struct e2e *t, pid_t *pid, int target) {
  return proxy_start_slow(t, pid, target, NULL);
}

static int teardown(void **state) {
  for (int i = 0; i < nhelpers; i++) {
    kill(helpers[i], SIGTERM);
    if (e2e_wait(helpers[i], 20) == -1) {
      kill(helpers[i], SIGKILL);
      e2e_wait(helpers[i], 5);
    }
  }
  nhelpers = 0;
  return e2e_teardown(state);
}

static void url(const struct server *s, int port, const char *key, char *buf, size_t size) {
  if (strcmp(s->kind, "redis") == 0)
    snprintf(buf, size, "redis://127.0.0.1:%d/%s", port, key);
  else
    snprintf(buf, size, "postgres://postgres@127.0.0.1:%d/postgres?key=%s&sslmode=disable", port,
             key);
}

/* ctrun on "host" H: a state directory of its own. */
static pid_t on_host(struct e2e *t, int h, const char *const *args) {
  char env[400];
  const char *argv[40];
  int n = 0;
  snprintf(env, sizeof env, "CTRUN_STATE_DIR=%s/host%d", t->dir, h);
  argv[n++] = "/usr/bin/env";
  argv[n++] = env;
  argv[n++] = "@ctrun";
  for (; *args != NULL && n < 39; args++)
    argv[n++] = *args;
  argv[n] = NULL;
  return e2e_start_cmd(t, argv);
}
#define ON_HOST(t, h, ...) on_host((t), (h), (const char *const[]){ __VA_ARGS__, NULL })

/* The sections of the log, in the order they began. */
struct sect {
  int pid;
  double start, last;
  long long token;
};

static int sections(const char *log, struct sect *v, int max) {
  char *text = e2e_read(log), *line = text;
  int n = 0;
  while (line != NULL && *line != '\0') {
    char *next = strchr(line, '\n'), what[8];
    double at;
    int pid;
    long long token = -1;
    if (next != NULL)
      *next++ = '\0';
    if (sscanf(line, "%7s %lf %d %lld", what, &at, &pid, &token) >= 3) {
      int i = 0;
      while (i < n && v[i].pid != pid)
        i++;
      if (strcmp(what, "start") == 0 && i == n && n < max) {
        v[n].pid = pid;
        v[n].start = v[n].last = at;
        v[n++].token = token;
      } else if (i < n && at > v[i].last) {
        v[i].last = at;
      }
    }
    line = next;
  }
  free(text);
  return n;
}

/* No two sections overlap, and each began with a higher token. */
static void assert_serial(const struct sect *v, int n) {
  for (int i = 1; i < n; i++) {
    if (v[i].start <= v[i - 1].last)
      fail_msg("sections overlap: pid %d ran until %.3f, pid %d began at %.3f", v[i - 1].pid,
               v[i - 1].last, v[i].pid, v[i].start);
    if (v[i].token <= v[i - 1].token)
      fail_msg("token %lld (pid %d) after token %lld (pid %d)", v[i].token, v[i].pid,
               v[i - 1].token, v[i - 1].pid);
  }
}

static bool wait_sections(const char *log, int n, double secs) {
  struct sect v[64];
  for (double end = e2e_now() + secs; e2e_now() < end; e2e_sleep(0.02))
    if (sections(log, v, 64) >= n)
      return true;
  return false;
}

/* 20 hosts contend for one key, 30 rounds: with --on-busy=fail and skip
 * exactly one runs in each round (its section lasts until all others have
 * given up), with -w all run, one after another. */
static void contention(struct e2e *t, const char *kind) {
  enum { HOSTS = 20, ROUNDS = 30 };
  struct server s;
  struct sect v[HOSTS * ROUNDS];
  char u[300], log[600], done[700];
  int total = 0;

  SERVER(t, &s, kind, false);
  url(&s, s.port, "contended", u, sizeof u);
  snprintf(log, sizeof log, "%s/sections", t->dir);
  snprintf(done, sizeof done, "%s.done", log);
  for (int round = 0; round < ROUNDS; round++) {
    int mode = round % 3; /* 0: fail, 1: skip, 2: wait */
    pid_t p[HOSTS];
    int codes[HOSTS], ran, busy = 0, ok = 0;
    if (mode == 2) {
      int fd = open(done, O_CREAT | O_WRONLY, 0644); /* short sections */
      close(fd);
    } else {
      unlink(done);
    }
    for (int h = 0; h < HOSTS; h++)
      p[h] = ON_HOST(t, h, "-l", u, "--on-busy", mode == 1 ? "skip" : "fail", "-w",
                     mode == 2 ? "120s" : "0", "--", "@child", "section", log, "60");
    if (mode != 2) {
      /* The losers give up while the winner is inside; then it may leave. */
      for (double end = e2e_now() + 60; e2e_now() < end;) {
        int gone = 0;
        for (int h = 0; h < HOSTS; h++)
          gone += !e2e_running(p[h]);
        if (gone >= HOSTS - 1)
          break;
        e2e_sleep(0.02);
      }
      int fd = open(done, O_CREAT | O_WRONLY, 0644);
      close(fd);
    }
    for (int h = 0; h < HOSTS; h++) {
      codes[h] = e2e_wait(p[h], 180);
      busy += codes[h] == 75;
      ok += codes[h] == 0;
    }
    ran = sections(log, v, HOSTS * ROUNDS) - total;
    total += ran;
    if (mode == 0 && (ran != 1 || ok != 1 || busy != HOSTS - 1))
      fail_msg("round %d (fail): %d ran, %d exited 0, %d exited 75", round, ran, ok, busy);
    if (mode == 1 && (ran != 1 || ok != HOSTS))
      fail_msg("round %d (skip): %d ran, %d exited 0", round, ran, ok);
    if (mode == 2 && (ran != HOSTS || ok != HOSTS))
      fail_msg("round %d (wait): %d ran, %d exited 0", round, ran, ok);
  }
  assert_int_equal(sections(log, v, HOSTS * ROUNDS), 10 + 10 + 10 * HOSTS);
  assert_serial(v, total);
  helper_stop(s.helper);
  /* Twenty first acquisitions at once make the server's table together:
   * what the server notes about that is no business of anyone's stderr. */
  DIR *d = opendir(t->dir);
  struct dirent *de;
  while (d != NULL && (de = readdir(d)) != NULL) {
    char path[700], *text;
    if (strncmp(de->d_name, "bg-", 3) != 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", t->dir, de->d_name);
    text = e2e_read(path);
    if (strstr(text, "NOTICE") != NULL)
      fail_msg("%s: %s", de->d_name, text);
    free(text);
  }
  if (d != NULL)
    closedir(d);
}

static void redis_contention(void **state) { contention(*state, "redis"); }
static void postgres_contention(void **state) { contention(*state, "postgres"); }

/* Holder A reaches the server through a proxy that then black-holes
 * everything: A's tree is dead before its lease can expire (TTL after the
 * last renewal A saw confirmed, which was before the cut), and B, on
 * another host, gets the lock only after that. */
static void partition(struct e2e *t, const char *kind) {
  struct server s;
  struct sect v[4];
  char direct[300], via[300], log[600];
  pid_t proxy, a, b;
  double cut;
  char *err, a_err[600];

  SERVER(t, &s, kind, false);
  int pport = proxy_start(t, &proxy, s.port);
  url(&s, pport, "part", via, sizeof via);
  url(&s, s.port, "part", direct, sizeof direct);
  snprintf(log, sizeof log, "%s/sections", t->dir);
  a = ON_HOST(t, 0, "--lock-ttl", "3s", "-l", via, "--", "@child", "section", log, "60");
  assert_true(wait_sections(log, 1, 20));
  snprintf(a_err, sizeof a_err, "%s", e2e_bg_err(t));
  e2e_sleep(0.5);
  cut = mono();
  kill(proxy, SIGUSR1);
  b = ON_HOST(t, 1, "--lock-ttl", "3s", "-w", "30s", "-l", direct, "--", "@child", "section",
              log, "0.2");
  assert_int_equal(e2e_wait(a, 30), 124);
  err = e2e_read(a_err);
  assert_non_null(strstr(err, "lost"));
  free(err);
  assert_int_equal(e2e_wait(b, 30), 0);
  assert_int_equal(sections(log, v, 4), 2);
  /* Dead within the TTL of the cut (the lease, confirmed at the latest at
   * the cut, lasts a TTL on the server), and before B began. */
  if (v[0].last - cut >= 3.0)
    fail_msg("A's tree ran %.3fs after the partition, past its 3s lease", v[0].last - cut);
  assert_serial(v, 2);
  kill(proxy, SIGUSR2);
  helper_stop(proxy);
  helper_stop(s.helper);
}

static void redis_partition(void **state) { partition(*state, "redis"); }

/* The server answers, but slowly (2.5s each way through the proxy): a
 * renewal confirmed too late confirms nothing, and the tree dies at the
 * deadline the last timely confirmation set. */
static void slow_server(void **state) {
  struct e2e *t = *state;
  struct server s;
  struct sect v[4];
  char via[300], log[600];
  pid_t proxy, a;
  double slow;

  SERVER(t, &s, "redis", false);
  int pport = proxy_start_slow(t, &proxy, s.port, "2.5");
  url(&s, pport, "slow", via, sizeof via);
  snprintf(log, sizeof log, "%s/sections", t->dir);
  a = ON_HOST(t, 0, "--lock-ttl", "3s", "-l", via, "--", "@child", "section", log, "60");
  assert_true(wait_sections(log, 1, 20));
  e2e_sleep(0.3);
  slow = mono();
  kill(proxy, SIGHUP);
  assert_int_equal(e2e_wait(a, 30), 124);
  assert_int_equal(sections(log, v, 4), 1);
  if (v[0].last - slow >= 3.0)
    fail_msg("the tree ran %.3fs after the server slowed down, past its 3s lease", v[0].last - slow);
  helper_stop(proxy);
  helper_stop(s.helper);
}

/* --on-busy=queue on a fleet lock: one run of this host waits and runs
 * after the holder, a second coalesces into it (0, nothing run); -w
 * bounds the wait of two locks together. */
static void queue_and_wait(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  struct server s;
  struct sect v[8];
  char u[300], log[600], done[700];
  pid_t holder, first;

  SERVER(t, &s, "redis", false);
  url(&s, s.port, "queued", u, sizeof u);
  snprintf(log, sizeof log, "%s/sections", t->dir);
  snprintf(done, sizeof done, "%s.done", log);
  holder = ON_HOST(t, 1, "-l", u, "--", "@child", "section", log, "60");
  assert_true(wait_sections(log, 1, 20));
  first = E2E_START(t, "--on-busy=queue", "-l", u, "--", "@child", "section", log, "0.1");
  e2e_sleep(0.5);
  E2E_RUN(t, &r, "--on-busy=queue", "-l", u, "--", "@child", "section", log, "0.1");
  assert_int_equal(r.code, 0); /* coalesced into the waiting run */
  /* Two locks, the second held: -w 1s bounds the whole wait. */
  E2E_RUN(t, &r, "-w", "1s", "-l", e2e_path(t, "free.lock"), "-l", u, "--", "true");
  assert_int_equal(r.code, 75);
  assert_true(r.secs >= 0.9 && r.secs < 10);
  assert_non_null(strstr(r.err, "still held after waiting 1s"));
  int fd = open(done, O_CREAT | O_WRONLY, 0644);
  close(fd);
  assert_int_equal(e2e_wait(holder, 30), 0);
  assert_int_equal(e2e_wait(first, 30), 0);
  assert_int_equal(sections(log, v, 8), 2);
  assert_serial(v, 2);
  helper_stop(s.helper);
}
static void postgres_partition(void **state) { partition(*state, "postgres"); }

/* The server stops answering (SIGSTOP) for longer than the TTL: the
 * holder's tree dies in time; after the server wakes, B gets the lock. */
static void server_stopped(struct e2e *t, const char *kind) {
  struct server s;
  struct sect v[4];
  char u[300], log[600];
  pid_t a, b;
  double stop;

  SERVER(t, &s, kind, false);
  url(&s, s.port, "stopped", u, sizeof u);
  snprintf(log, sizeof log, "%s/sections", t->dir);
  a = ON_HOST(t, 0, "--lock-ttl", "3s", "-l", u, "--", "@child", "section", log, "60");
  assert_true(wait_sections(log, 1, 20));
  e2e_sleep(0.5);
  stop = mono();
  server_signal(&s, SIGSTOP);
  b = ON_HOST(t, 1, "--lock-ttl", "3s", "-w", "40s", "-l", u, "--", "@child", "section", log,
              "0.2");
  e2e_sleep(5);
  server_signal(&s, SIGCONT);
  assert_int_equal(e2e_wait(a, 30), 124);
  assert_int_equal(e2e_wait(b, 40), 0);
  assert_int_equal(sections(log, v, 4), 2);
  if (v[0].last - stop >= 3.0)
    fail_msg("A's tree ran %.3fs after the server stopped, past its 3s lease", v[0].last - stop);
  assert_serial(v, 2);
  helper_stop(s.helper);
}

static void redis_server_stopped(void **state) { server_stopped(*state, "redis"); }
static void postgres_server_stopped(void **state) { server_stopped(*state, "postgres"); }

/* The server is killed and restarted under the holder (its data kept):
 * the holder either keeps its lease or dies, and nothing runs twice; the
 * next holder's token is higher. */
static void server_restarted(struct e2e *t, const char *kind) {
  struct server s;
  struct sect v[4];
  char u[300], log[600];
  pid_t a, b;
  int old;

  SERVER(t, &s, kind, true);
  url(&s, s.port, "restarted", u, sizeof u);
  snprintf(log, sizeof log, "%s/sections", t->dir);
  a = ON_HOST(t, 0, "--lock-ttl", "3s", "-l", u, "--", "@child", "section", log, "6");
  assert_true(wait_sections(log, 1, 20));
  old = s.pid;
  kill(s.helper, SIGUSR1);
  for (double end = e2e_now() + 30; e2e_now() < end && s.pid == old; e2e_sleep(0.05))
    server_read(&s);
  assert_int_not_equal(s.pid, old);
  b = ON_HOST(t, 1, "--lock-ttl", "3s", "-w", "40s", "-l", u, "--", "@child", "section", log,
              "0.2");
  int code = e2e_wait(a, 30);
  assert_true(code == 0 || code == 124);
  assert_int_equal(e2e_wait(b, 40), 0);
  assert_int_equal(sections(log, v, 4), 2);
  assert_serial(v, 2);
  helper_stop(s.helper);
  e2e_forgive_orphans(); /* the killed server's children, adopted by the runner */
}

static void redis_server_restarted(void **state) { server_restarted(*state, "redis"); }
static void postgres_server_restarted(void **state) { server_restarted(*state, "postgres"); }

/* ctrun is SIGKILLed while it holds the lock: nobody renews, the lease
 * runs out after its TTL and the next run gets the lock; ctrun cleanup
 * ends what the dead run left on its host. */
static void holder_killed(struct e2e *t, const char *kind) {
  struct server s;
  struct sect v[4];
  char u[300], log[600], state_dir[400];
  pid_t a, b;
  double killed;

  SERVER(t, &s, kind, false);
  url(&s, s.port, "killed", u, sizeof u);
  snprintf(log, sizeof log, "%s/sections", t->dir);
  a = ON_HOST(t, 0, "--lock-ttl", "3s", "-l", u, "--", "@child", "section", log, "60");
  assert_true(wait_sections(log, 1, 20));
  killed = mono();
  kill(a, SIGKILL);
  e2e_wait(a, 10);
  b = ON_HOST(t, 1, "--lock-ttl", "3s", "-w", "30s", "-l", u, "--", "@child", "section", log,
              "0.2");
  assert_int_equal(e2e_wait(b, 40), 0);
  assert_int_equal(sections(log, v, 4), 2);
  /* Not before the lease ran out: renewed at the latest TTL/3 before the
   * kill, it lasted until 2s after it at least. */
  if (v[1].start - killed < 1.9)
    fail_msg("B began %.3fs after the holder was killed, before its lease ran out",
             v[1].start - killed);
  assert_true(v[1].token > v[0].token);
  /* What the dead run left on its host: ctrun cleanup ends it. */
  snprintf(state_dir, sizeof state_dir, "CTRUN_STATE_DIR=%s/host0", t->dir);
  pid_t c = E2E_START_CMD(t, "/usr/bin/env", state_dir, "@ctrun", "cleanup");
  assert_int_equal(e2e_wait(c, 30), 0);
  helper_stop(s.helper);
  assert_true(e2e_wait_unmarked(t, 10));
  e2e_forgive_orphans(); /* the killed run's command, adopted by the runner */
}

static void redis_holder_killed(void **state) { holder_killed(*state, "redis"); }
static void postgres_holder_killed(void **state) { holder_killed(*state, "postgres"); }

/* Run a server's client (redis-cli or psql) on it; its output in OUT. */
static int client(struct e2e *t, const struct server *s, const char *what, char *out, size_t size) {
  char port[16], cmd[1200];
  snprintf(port, sizeof port, "%d", s->port);
  if (strcmp(s->kind, "redis") == 0)
    snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %s %s > %s/client.out 2>&1", port, what,
             t->dir);
  else
    snprintf(cmd, sizeof cmd,
             "psql -X -q -t -A -h 127.0.0.1 -p %s -U postgres -d postgres -c \"%s\" > %s/client.out "
             "2>&1",
             port, what, t->dir);
  int code = system(cmd);
  char *text = e2e_read(e2e_path(t, "client.out"));
  snprintf(out, size, "%s", text);
  free(text);
  return code;
}

/* A holder whose lease ran out (its ctrun stopped meanwhile) never deletes
 * nor renews the lock of the holder after it: forged here on the server. */
static void forged_holder(struct e2e *t, const char *kind) {
  struct server s;
  char u[300], log[600], out[600];
  pid_t a;
  bool redis = strcmp(kind, "redis") == 0;

  SERVER(t, &s, kind, false);
  url(&s, s.port, "forged", u, sizeof u);
  snprintf(log, sizeof log, "%s/sections", t->dir);
  a = ON_HOST(t, 0, "--lock-ttl", "3s", "-l", u, "--", "@child", "section", log, "60");
  assert_true(wait_sections(log, 1, 20));
  kill(a, SIGSTOP);
  e2e_sleep(4); /* its lease runs out on the server */
  if (redis)
    assert_int_equal(client(t, &s, "SET forged someone-else PX 60000", out, sizeof out), 0);
  else
    assert_int_equal(client(t, &s,
                            "UPDATE ctrun_locks SET holder = 'someone-else', expires = "
                            "clock_timestamp() + interval '60 s' WHERE key = 'forged' AND "
                            "expires <= clock_timestamp()",
                            out, sizeof out),
                     0);
  kill(a, SIGCONT);
  assert_int_equal(e2e_wait(a, 30), 124);
  if (redis)
    client(t, &s, "GET forged", out, sizeof out);
  else
    client(t, &s, "SELECT holder FROM ctrun_locks WHERE key = 'forged'", out, sizeof out);
  if (strstr(out, "someone-else") == NULL)
    fail_msg("the forged holder's lock is gone: '%s'", out);
  helper_stop(s.helper);
}

static void redis_forged_holder(void **state) { forged_holder(*state, "redis"); }
static void postgres_forged_holder(void **state) { forged_holder(*state, "postgres"); }

/* A Redis that asks for a password: from REDISCLI_AUTH, from
 * password-file=, for an ACL user; none, and the lock is unavailable (75)
 * with the server's word for it.  The lock lives in the URL's DB. */
static void redis_auth(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  struct server s;
  char u[1000], pwfile[600], out[600];

  SERVER(t, &s, "redis", false);
  assert_int_equal(client(t, &s, "ACL SETUSER alice on '>alicepw' '~*' '+@all'", out, sizeof out), 0);
  assert_int_equal(client(t, &s, "CONFIG SET requirepass s3cret", out, sizeof out), 0);
  snprintf(u, sizeof u, "redis://127.0.0.1:%d/3/authed", s.port);
  E2E_RUN(t, &r, "-l", u, "--", "true");
  assert_int_equal(r.code, 75);
  assert_non_null(strstr(r.err, "NOAUTH"));
  setenv("REDISCLI_AUTH", "s3cret", 1);
  E2E_RUN(t, &r, "-l", u, "--", "@child", "env", "CTRUN_LOCK_TOKEN");
  unsetenv("REDISCLI_AUTH");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "1\n");
  /* The fencing counter is in DB 3, where the lock is. */
  snprintf(out, sizeof out, "-a s3cret --no-auth-warning -n 3 GET authed:fence");
  client(t, &s, out, out, sizeof out);
  assert_string_equal(out, "1\n");
  snprintf(pwfile, sizeof pwfile, "%s/redis.pw", t->dir);
  FILE *f = fopen(pwfile, "w");
  fputs("s3cret\n", f);
  fclose(f);
  snprintf(u, sizeof u, "redis://127.0.0.1:%d/3/authed?password-file=%s", s.port, pwfile);
  E2E_RUN(t, &r, "-l", u, "--", "@child", "env", "CTRUN_LOCK_TOKEN");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "2\n");
  setenv("REDISCLI_AUTH", "alicepw", 1);
  snprintf(u, sizeof u, "redis://alice@127.0.0.1:%d/3/authed", s.port);
  E2E_RUN(t, &r, "-l", u, "--", "@child", "env", "CTRUN_LOCK_TOKEN");
  unsetenv("REDISCLI_AUTH");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "3\n");
  /* A password file that cannot be read: 125, saying so. */
  snprintf(u, sizeof u, "redis://127.0.0.1:%d/3/authed?password-file=%s/none", s.port, t->dir);
  E2E_RUN(t, &r, "-l", u, "--", "true");
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "password file"));
  helper_stop(s.helper);
}

/* The table exists, its sequence does not (a half-made schema, or an
 * administrator's own table): ctrun makes what is missing, and what the
 * server notes meanwhile ("already exists, skipping") reaches no one. */
static void postgres_schema(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  struct server s;
  char u[300], out[600];

  SERVER(t, &s, "postgres", false);
  assert_int_equal(client(t, &s,
                          "CREATE TABLE ctrun_locks (key text PRIMARY KEY, holder text NOT NULL, "
                          "token bigint NOT NULL, expires timestamptz NOT NULL)",
                          out, sizeof out),
                   0);
  url(&s, s.port, "schema", u, sizeof u);
  E2E_RUN(t, &r, "-l", u, "--", "@child", "env", "CTRUN_LOCK_TOKEN");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "1\n");
  if (r.err[0] != '\0')
    fail_msg("stderr: %s", r.err);
  helper_stop(s.helper);
}

/* A free port nobody listens on. */
static int closed_port(void) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* No server at the port: 75 naming the lock and the error, or with
 * --lock-unavailable=skip nothing runs and ctrun exits 0; a server that
 * never answers (black-holed) fails in bounded time. */
static void unavailable(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  struct server s;
  char u[300], log[600];
  pid_t proxy;

  snprintf(u, sizeof u, "redis://127.0.0.1:%d/k", closed_port());
  snprintf(log, sizeof log, "%s/sections", t->dir);
  E2E_RUN(t, &r, "-l", u, "--", "@child", "section", log, "0");
  assert_int_equal(r.code, 75);
  assert_non_null(strstr(r.err, "is unavailable"));
  assert_non_null(strstr(r.err, "refused"));
  E2E_RUN(t, &r, "--lock-unavailable=skip", "-l", u, "--", "@child", "section", log, "0");
  assert_int_equal(r.code, 0);
  assert_int_equal(access(log, F_OK), -1);

  SERVER(t, &s, "redis", false);
  int pport = proxy_start(t, &proxy, s.port);
  kill(proxy, SIGUSR1);
  e2e_sleep(0.2);
  snprintf(u, sizeof u, "redis://127.0.0.1:%d/k", pport);
  E2E_RUN(t, &r, "-l", u, "--", "@child", "section", log, "0");
  assert_int_equal(r.code, 75);
  assert_non_null(strstr(r.err, "no answer within 5s"));
  assert_true(r.secs < 15);
  assert_int_equal(access(log, F_OK), -1);
  helper_stop(proxy);
  helper_stop(s.helper);
}

/* A lock file and a fleet lock together: both held for the whole run,
 * each found busy by a run that needs it, ps shows both. */
static void two_locks(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  struct server s;
  char u[300], other[300], log[600];
  const char *file = e2e_path(t, "job.lock"), *file2 = e2e_path(t, "other.lock");
  char f1[600], f2[600];
  pid_t a;

  snprintf(f1, sizeof f1, "%s", file);
  snprintf(f2, sizeof f2, "%s", file2);
  SERVER(t, &s, "redis", false);
  url(&s, s.port, "both", u, sizeof u);
  url(&s, s.port, "another", other, sizeof other);
  snprintf(log, sizeof log, "%s/sections", t->dir);
  a = E2E_START(t, "-n", "holder", "-l", f1, "-l", u, "--", "@child", "section", log, "60");
  assert_true(wait_sections(log, 1, 20));
  assert_true(e2e_locked(f1));
  E2E_RUN(t, &r, "-l", f1, "-l", other, "--", "true");
  assert_int_equal(r.code, 75);
  assert_non_null(strstr(r.err, "job.lock"));
  E2E_RUN(t, &r, "-l", f2, "-l", u, "--", "true");
  assert_int_equal(r.code, 75);
  assert_non_null(strstr(r.err, "(holder) on host"));
  assert_non_null(strstr(r.err, "running for"));
  assert_false(e2e_locked(f2)); /* the first lock, let go when the second was busy */
  E2E_RUN(t, &r, "ps", "--json");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "\"backend\":\"file\""));
  assert_non_null(strstr(r.out, "\"backend\":\"redis\""));
  assert_non_null(strstr(r.out, "\"token\":\"1\""));
  assert_non_null(strstr(r.out, "\"lease_expires\":\""));
  int fd = open(e2e_path(t, "sections.done"), O_CREAT | O_WRONLY, 0644);
  close(fd);
  assert_int_equal(e2e_wait(a, 30), 0);
  assert_false(e2e_locked(f1));
  E2E_RUN(t, &r, "--report", "-", "-l", f1, "-l", u, "--", "true");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.err, "\"lock_token\":\"2\"")); /* the key's second acquisition */
  helper_stop(s.helper);
}

/* Bad fleet-lock input: 125 and one line saying what is wrong. */
static void bad_input(void **state) {
  struct e2e *t = *state;
  struct e2e_result r;
  if (!built("redis") || !built("postgres")) {
    print_message("this ctrun was built without Redis or PostgreSQL locks\n");
    skip();
  }
  static const struct {
    const char *args[8];
    const char *says;
  } cases[] = {
    { { "-l", "redis://", "--", "true" }, "no host" },
    { { "-l", "redis://h", "--", "true" }, "no key" },
    { { "-l", "redis://h:99999/k", "--", "true" }, "port" },
    { { "-l", "etcd://h/k", "--", "true" }, "unknown scheme" },
    { { "-l", "redis://u:secret@h/k", "--", "true" }, "password" },
    { { "-l", "postgres://u:secret@h/db?key=k", "--", "true" }, "password" },
    { { "-l", "postgres://h/db?password=x&key=k", "--", "true" }, "password" },
    { { "-l", "postgres://h/db", "--", "true" }, "no key" },
    { { "-l", "postgres://h/db?key=k&bogus=1", "--", "true" }, "bogus" },
    { { "--on-busy=replace", "-l", "redis://h/k", "--", "true" }, "replace" },
    { { "--lock-ttl", "2s", "-l", "redis://h/k", "--", "true" }, "at least 3s" },
    { { "--lock-ttl", "10s", "--", "true" }, "needs a fleet lock" },
    { { "--lock-unavailable=skip", "-l", "/tmp/x.lock", "--", "true" }, "needs a fleet lock" },
    { { "--lock-unavailable=maybe", "-l", "redis://h/k", "--", "true" }, "maybe" },
    { { "-l", "/tmp/a.lock", "-l", "/tmp/b.lock", "--", "true" }, "one lock file" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    e2e_run(t, &r, cases[i].args);
    if (r.code != 125 || strstr(r.err, cases[i].says) == NULL || strstr(r.err, "secret") != NULL)
      fail_msg("case %zu: exit %d, '%s'", i, r.code, r.err);
  }
  E2E_RUN(t, &r, "-l", "redis://h/a", "-l", "redis://h/b", "-l", "redis://h/c", "--", "true");
  assert_int_equal(r.code, 125);
  assert_non_null(strstr(r.err, "at most 2 locks"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(bad_input, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(unavailable, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(two_locks, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(slow_server, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(queue_and_wait, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(postgres_schema, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(redis_auth, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(redis_contention, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(postgres_contention, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(redis_partition, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(postgres_partition, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(redis_server_stopped, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(postgres_server_stopped, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(redis_server_restarted, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(postgres_server_restarted, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(redis_holder_killed, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(postgres_holder_killed, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(redis_forged_holder, e2e_setup, teardown),
    cmocka_unit_test_setup_teardown(postgres_forged_holder, e2e_setup, teardown),
  };
  return e2e_main("e2e-fleet", tests, sizeof tests / sizeof tests[0]);
}
