/* ctrun-testchild: the programs that the end-to-end tests run under ctrun.
 * Its arguments are a little script, run in order:
 *
 *   sleep SECS      out TEXT        err TEXT        exit N
 *   die SIG         ignore-term     setsid          wait
 *   env NAME        fds             pidfile FILE    crit DIR
 *   envcount NAME   prints how many entries of the environment set NAME
 *   sigstate SIG    prints "ignored", "default" or "handled"
 *   sigmask         prints the blocked signals ("none" or "2 15 ...")
 *   comm NAME       this process's command name becomes NAME (Linux)
 *   fails FILE N    count this run in FILE; exit 1 while the count is <= N
 *                   (so a retried command fails N times, then goes on)
 *   spew FD BYTES   write BYTES of a fixed pattern to FD, in pieces of
 *                   varied sizes
 *   mix BYTES SEED  write BYTES in all, in pieces of varied sizes, now to
 *                   stdout, now to stderr, each piece different (SEED)
 *   touch MIB       allocate MIB MiB and write to every page (resident)
 *   spin SECS       burn SECS of CPU time in a busy loop
 *   section FILE SECS  a critical section of SECS, logged in FILE (one
 *                   append a line, CLOCK_MONOTONIC seconds): "start T PID
 *                   TOKEN" ($CTRUN_LOCK_TOKEN), "tick T PID" every 20 ms,
 *                   "end T PID"; it ends early once FILE.done exists; a
 *                   section killed midway ends at its last tick
 *
 * and, to start ctrun itself in a hostile state:
 *   block SIG,...   block these signals      default SIG  SIG_DFL for SIG
 *   close FD        close a descriptor       nofile N     RLIMIT_NOFILE = N
 *   setenv NAME VALUE                        unsetenv NAME
 *   nproc N         RLIMIT_NPROC = N         setuid UID   become UID (and its group)
 *   fsize N         RLIMIT_FSIZE = N bytes   ignore SIG   SIG_IGN for SIG
 *   brokenpipe FD   FD becomes a pipe whose reader is gone
 *   { ... }         fork: the child runs the block, then exits 0;
 *                   the parent goes on after the block.
 *   zleader         the rest of the script runs in a new thread, and the
 *                   main thread calls pthread_exit(): /proc then shows
 *                   the process as a zombie while it runs on
 *   trap-term FILE  on SIGTERM, create FILE and exit 0 (the handler is
 *                   inherited by every later fork)
 *   hopper          for ever: fork a successor, and exit (a pid hopper)
 *   forkstorm N     N workers that for ever fork a child that forks a
 *                   grandchild, both exiting at once (orphans galore)
 *   exec ARG...     replace this process with ARG... (the rest of the
 *                   script, or of its block, is its command line)
 *   umount PATH     detach the mount at PATH (in a mount namespace of its
 *                   own: "unshare -m")
 *
 * So "{ { ignore-term sleep 300 } }" double-forks a grandchild that ignores
 * TERM, and "{ setsid sleep 300 } exit 0" leaves a setsid escapee behind.
 * No shell is needed, so the same scripts run wherever the tests do. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void nap(double secs) {
  struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Index just past the block that opens at I ("{" at I-1). */
static int block_end(int argc, char **argv, int i) {
  for (int depth = 1; i < argc; i++) {
    if (strcmp(argv[i], "{") == 0)
      depth++;
    else if (strcmp(argv[i], "}") == 0 && --depth == 0)
      return i + 1;
  }
  return argc;
}

static void say(int fd, const char *text) {
  size_t n = strlen(text);
  char *line = malloc(n + 1);
  memcpy(line, text, n);
  line[n] = '\n';
  if (write(fd, line, n + 1) < 0) {
    /* nothing to do: the reader is gone */
  }
  free(line);
}

/* One line of a section's log: WHAT, the time, the pid, and EXTRA. */
static int section_line(const char *file, const char *what, const char *extra) {
  struct timespec ts;
  char line[128];
  int fd = open(file, O_CREAT | O_APPEND | O_WRONLY, 0644), n, e;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  n = snprintf(line, sizeof line, "%s %lld.%09ld %d%s%s\n", what, (long long)ts.tv_sec, ts.tv_nsec,
               (int)getpid(), extra[0] ? " " : "", extra);
  e = fd >= 0 && write(fd, line, (size_t)n) == n ? 0 : 96;
  if (fd >= 0)
    close(fd);
  return e;
}

static int section(const char *file, double secs) {
  const char *token = getenv("CTRUN_LOCK_TOKEN");
  char done_file[4096];
  int e = section_line(file, "start", token ? token : "-");
  snprintf(done_file, sizeof done_file, "%s.done", file);
  for (double done = 0; e == 0 && done < secs; done += 0.02) {
    nap(0.02);
    e = section_line(file, "tick", "");
    if (access(done_file, F_OK) == 0)
      break;
  }
  return e != 0 ? e : section_line(file, "end", "");
}

/* The critical-section check of the lock tests: a second holder inside at
 * the same time fails with 99. */
static int crit(const char *dir) {
  char in[4096], log[4096], line[64];
  int fd;
  snprintf(in, sizeof in, "%s/inside", dir);
  snprintf(log, sizeof log, "%s/entered", dir);
  fd = open(in, O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd < 0)
    return 99;
  close(fd);
  nap(0.02);
  unlink(in);
  fd = open(log, O_CREAT | O_APPEND | O_WRONLY, 0644);
  snprintf(line, sizeof line, "%d\n", (int)getpid());
  if (fd >= 0 && write(fd, line, strlen(line)) < 0)
    return 98;
  if (fd >= 0)
    close(fd);
  return 0;
}

static int run(int argc, char **argv, int i);

/* Where "spin" puts its work, so that the compiler keeps the loop. */
static volatile unsigned long spin_sink;
/* What "touch" holds. */
static volatile char *volatile touched;

/* zleader: the rest of the script, in a thread that outlives main's. */
struct script { int argc, i; char **argv; };

static void *run_thread(void *arg) {
  struct script *s = arg;
  exit(run(s->argc, s->argv, s->i));
}

static const char *term_file;

static void on_term(int sig) {
  (void)sig;
  int fd = open(term_file, O_CREAT | O_WRONLY, 0644);
  if (fd >= 0)
    close(fd);
  _exit(0);
}

/* One worker of forkstorm: never returns. */
static void storm(void) {
  for (;;) {
    pid_t pid = fork();
    if (pid == 0) {
      if (fork() == 0)
        _exit(0);
      _exit(0);
    }
    if (pid > 0)
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    else
      nap(0.001);
  }
}

/* A small deterministic generator for the output verbs. */
static unsigned long next_rand(unsigned long *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return (unsigned long)(*x * 2685821657736338717ULL >> 32);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* BYTES in pieces of 1 byte to 128 KiB, to FD, or (FD < 0) to stdout and
 * stderr in turn by the generator's choice. */
static int spew(int fd, long long bytes, unsigned long seed) {
  static char buf[1 << 17];
  unsigned long x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (char)('a' + (i * 7 + i / 61) % 26 + (i % 83 == 82 ? '\n' - 'a' : 0));
  while (bytes > 0) {
    unsigned long r = next_rand(&x);
    size_t n = r % 4 == 0 ? 1 + r % 100 : r % 4 == 1 ? 1 + r % 4096 : 1 + r % sizeof buf;
    if ((long long)n > bytes)
      n = (size_t)bytes;
    if (n > sizeof buf - 16)
      n = sizeof buf - 16;
    if (write_all(fd >= 0 ? fd : (r >> 11) % 2 ? 1 : 2, buf + r % 16, n) != 0)
      return 94;
    bytes -= (long long)n;
  }
  return 0;
}

/* Count this run in FILE; fail while the count is at most N. */
static int fails(const char *file, int n) {
  char text[32] = "";
  int count = 0, fd = open(file, O_RDWR | O_CREAT, 0644);
  ssize_t len;
  if (fd < 0)
    return 97;
  len = read(fd, text, sizeof text - 1);
  if (len > 0) {
    text[len] = '\0';
    count = atoi(text);
  }
  snprintf(text, sizeof text, "%d\n", ++count);
  if (pwrite(fd, text, strlen(text), 0) < 0)
    return 97;
  close(fd);
  return count <= n ? 1 : 0;
}

static int run(int argc, char **argv, int i) {
  while (i < argc) {
    const char *cmd = argv[i++];
    const char *arg = i < argc ? argv[i] : "";
    if (strcmp(cmd, "{") == 0) {
      int end = block_end(argc, argv, i);
      pid_t pid = fork();
      if (pid == 0)
        _exit(run(end - 1, argv, i));
      i = end;
    } else if (strcmp(cmd, "}") == 0) {
      return 0;
    } else if (strcmp(cmd, "sleep") == 0) {
      nap(atof(arg));
      i++;
    } else if (strcmp(cmd, "out") == 0) {
      say(1, arg);
      i++;
    } else if (strcmp(cmd, "err") == 0) {
      say(2, arg);
      i++;
    } else if (strcmp(cmd, "exit") == 0) {
      exit(atoi(arg));
    } else if (strcmp(cmd, "die") == 0) {
      signal(atoi(arg), SIG_DFL);
      raise(atoi(arg));
      i++;
    } else if (strcmp(cmd, "ignore-term") == 0) {
      signal(SIGTERM, SIG_IGN);
    } else if (strcmp(cmd, "setsid") == 0) {
      setsid();
    } else if (strcmp(cmd, "wait") == 0) {
      while (wait(NULL) > 0 || errno == EINTR)
        ;
    } else if (strcmp(cmd, "env") == 0) {
      const char *v = getenv(arg);
      say(1, v ? v : "(unset)");
      i++;
    } else if (strcmp(cmd, "envcount") == 0) {
      extern char **environ;
      char buf[32];
      size_t len = strlen(arg);
      int n = 0;
      for (char **e = environ; *e != NULL; e++)
        n += strncmp(*e, arg, len) == 0 && (*e)[len] == '=';
      snprintf(buf, sizeof buf, "%d", n);
      say(1, buf);
      i++;
    } else if (strcmp(cmd, "sigstate") == 0) {
      struct sigaction sa;
      sigaction(atoi(arg), NULL, &sa);
      say(1, sa.sa_handler == SIG_IGN ? "ignored" : sa.sa_handler == SIG_DFL ? "default" : "handled");
      i++;
    } else if (strcmp(cmd, "sigmask") == 0) {
      char buf[1024] = "";
      sigset_t set;
      sigprocmask(SIG_BLOCK, NULL, &set);
      for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(&set, sig) == 1)
          snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%d ", sig);
      say(1, buf[0] ? buf : "none");
    } else if (strcmp(cmd, "block") == 0) {
      sigset_t set;
      sigemptyset(&set);
      for (char *s = argv[i], *end; *s; s = *end ? end + 1 : end)
        sigaddset(&set, (int)strtol(s, &end, 10));
      sigprocmask(SIG_BLOCK, &set, NULL);
      i++;
    } else if (strcmp(cmd, "default") == 0) {
      signal(atoi(arg), SIG_DFL);
      i++;
    } else if (strcmp(cmd, "setenv") == 0) {
      setenv(arg, i + 1 < argc ? argv[i + 1] : "", 1);
      i += 2;
    } else if (strcmp(cmd, "unsetenv") == 0) {
      unsetenv(arg);
      i++;
    } else if (strcmp(cmd, "nproc") == 0) {
      struct rlimit rl = { (rlim_t)atol(arg), (rlim_t)atol(arg) };
      if (setrlimit(RLIMIT_NPROC, &rl) != 0)
        return 96;
      i++;
    } else if (strcmp(cmd, "fsize") == 0) {
      struct rlimit rl = { (rlim_t)atol(arg), (rlim_t)atol(arg) };
      if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 96;
      i++;
    } else if (strcmp(cmd, "ignore") == 0) {
      signal(atoi(arg), SIG_IGN);
      i++;
    } else if (strcmp(cmd, "setuid") == 0) {
      if (setgid((gid_t)atol(arg)) != 0 || setuid((uid_t)atol(arg)) != 0)
        return 96;
      i++;
    } else if (strcmp(cmd, "close") == 0) {
      close(atoi(arg));
      i++;
    } else if (strcmp(cmd, "nofile") == 0) {
      struct rlimit rl = { (rlim_t)atol(arg), (rlim_t)atol(arg) };
      if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 96;
      i++;
    } else if (strcmp(cmd, "brokenpipe") == 0) {
      int p[2];
      if (pipe(p) != 0 || dup2(p[1], atoi(arg)) < 0)
        return 96;
      close(p[0]);
      if (p[1] != atoi(arg))
        close(p[1]);
      i++;
    } else if (strcmp(cmd, "fds") == 0) {
      char buf[4096] = "";
      long max = sysconf(_SC_OPEN_MAX);
      if (max < 0 || max > 65536)
        max = 65536;
      for (int fd = 3; fd < max; fd++)
        if (fcntl(fd, F_GETFD) != -1)
          snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%d ", fd);
      say(1, buf[0] ? buf : "none");
    } else if (strcmp(cmd, "pidfile") == 0) {
      char line[32];
      int fd = open(arg, O_CREAT | O_APPEND | O_WRONLY, 0644);
      snprintf(line, sizeof line, "%d\n", (int)getpid());
      if (fd < 0 || write(fd, line, strlen(line)) < 0)
        return 97;
      close(fd);
      i++;
    } else if (strcmp(cmd, "zleader") == 0) {
      static struct script s;
      pthread_t th;
      s.argc = argc;
      s.argv = argv;
      s.i = i;
      if (pthread_create(&th, NULL, run_thread, &s) != 0)
        return 96;
      pthread_exit(NULL);
    } else if (strcmp(cmd, "trap-term") == 0) {
      struct sigaction sa;
      memset(&sa, 0, sizeof sa);
      term_file = arg;
      sa.sa_handler = on_term;
      sigaction(SIGTERM, &sa, NULL);
      i++;
    } else if (strcmp(cmd, "hopper") == 0) {
      for (;;) {
        pid_t pid = fork();
        if (pid > 0)
          _exit(0);
        if (pid < 0)
          nap(0.001);
      }
    } else if (strcmp(cmd, "forkstorm") == 0) {
      for (int n = atoi(arg); n > 1; n--)
        if (fork() == 0)
          break;
      storm();
    } else if (strcmp(cmd, "exec") == 0) {
      char **args = calloc((size_t)(argc - i + 1), sizeof *args);
      for (int k = i; k < argc; k++)
        args[k - i] = argv[k];
      execvp(args[0], args);
      return 127;
    } else if (strcmp(cmd, "umount") == 0) {
      if (umount2(arg, MNT_DETACH) != 0)
        return 95;
      i++;
    } else if (strcmp(cmd, "touch") == 0) {
      size_t n = (size_t)atol(arg) << 20;
      volatile char *p = malloc(n); /* volatile: the writes must happen */
      if (p == NULL)
        return 93;
      touched = p; /* reachable, for a leak checker */
      for (size_t k = 0; k < n; k += 4096)
        p[k] = 1;
      i++; /* kept, and resident, until the process exits */
    } else if (strcmp(cmd, "spin") == 0) {
      struct timespec ts;
      double until = atof(arg), used = 0;
      while (used < until) {
        for (int k = 0; k < 100000; k++)
          spin_sink += (unsigned long)k;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        used = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
      }
      i++;
    } else if (strcmp(cmd, "comm") == 0) {
#ifdef __linux__
      prctl(PR_SET_NAME, arg, 0, 0, 0);
#endif
      i++;
    } else if (strcmp(cmd, "fails") == 0) {
      int r = fails(arg, i + 1 < argc ? atoi(argv[i + 1]) : 0);
      if (r != 0)
        return r;
      i += 2;
    } else if (strcmp(cmd, "spew") == 0) {
      int r = spew(atoi(arg), i + 1 < argc ? atoll(argv[i + 1]) : 0, 1);
      if (r != 0)
        return r;
      i += 2;
    } else if (strcmp(cmd, "mix") == 0) {
      int r = spew(-1, atoll(arg), i + 1 < argc ? strtoul(argv[i + 1], NULL, 10) : 1);
      if (r != 0)
        return r;
      i += 2;
    } else if (strcmp(cmd, "section") == 0 && i + 1 < argc) {
      int r = section(arg, atof(argv[i + 1]));
      if (r != 0)
        return r;
      i += 2;
    } else if (strcmp(cmd, "crit") == 0) {
      int r = crit(arg);
      if (r != 0)
        return r;
      i++;
    } else {
      fprintf(stderr, "ctrun-testchild: unknown step '%s'\n", cmd);
      return 2;
    }
  }
  return 0;
}

int main(int argc, char **argv) { return run(argc, argv, 1); }
