/* ctrun-bench: measures ctrun against the tools it replaces, in the same
 * run, so that the ratios hold on any machine however loaded it is.
 *
 *   ctrun-bench overhead|memory|instructions|kill|registry|contention|hook|relay|govern|limits
 *
 * Paths come from the environment, set by tests/bench/meson.build:
 * CTRUN, CTRUN_TESTCHILD, CTRUN_BENCH_RSS, BENCH_TRUE, BENCH_SLEEP, BENCH_TIMEOUT,
 * BENCH_FLOCK, BENCH_CAT and (optional) BENCH_VALGRIND.  CTRUN_BENCH_ROUNDS scales the
 * repeat counts down (or up) for a quick look.  Each benchmark prints a
 * table of medians; samples of the variants being compared are taken
 * interleaved, round by round, so that drift of a shared machine hits them
 * alike.  Exit 0 also when a target is missed (the table says so): a noisy
 * machine must not fail the build.  Exit 1 means ctrun misbehaved, 77 that a
 * peer tool is missing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctrun/proc.h"
#include "ctrun/registry.h"

#define SKIP 77

extern char **environ;

static int devnull = -1;
static char root[4096]; /* this run's scratch directory */
static const char *CTRUN, *TESTCHILD, *RSS, *TRUE_, *SLEEP, *TIMEOUT, *FLOCK, *VALGRIND;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ctrun-bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static const char *env_path(const char *name, bool required) {
  const char *v = getenv(name);
  if (v != NULL && v[0] != '\0' && access(v, X_OK) == 0)
    return v;
  if (required)
    die("%s is not set to an executable (run me through meson test --benchmark)", name);
  return NULL;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void nap_ms(double ms) {
  struct timespec ts = { (time_t)(ms / 1e3), (long)(fmod(ms, 1e3) * 1e6) };
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Repeat counts scale with CTRUN_BENCH_ROUNDS (a percentage, default 100). */
static int rounds(int n) {
  const char *v = getenv("CTRUN_BENCH_ROUNDS");
  int pct = v != NULL ? atoi(v) : 100;
  int r = pct > 0 ? n * pct / 100 : n;
  return r < 3 ? 3 : r;
}

/* Start ARGV with stdin from /dev/null and stdout, stderr on OUT, ERR (-1:
 * /dev/null).  posix_spawn, so that the driver's own cost is the same small
 * vfork for every variant. */
static pid_t start(char *const argv[], int out, int err) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int r;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, devnull, 0);
  posix_spawn_file_actions_adddup2(&fa, out >= 0 ? out : devnull, 1);
  posix_spawn_file_actions_adddup2(&fa, err >= 0 ? err : devnull, 2);
  r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (r != 0)
    die("cannot run %s: %s", argv[0], strerror(r));
  return pid;
}

/* Wait for PID; its exit code, 128+N for a signal. */
static int finish(pid_t pid, struct rusage *ru) {
  struct rusage dummy;
  int st;
  while (wait4(pid, &st, 0, ru ? ru : &dummy) < 0)
    if (errno != EINTR)
      die("wait4: %s", strerror(errno));
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run ARGV to its end; wall time in ms. */
static double timed(char *const argv[], int want, struct rusage *ru) {
  double t0 = now_ms();
  int code = finish(start(argv, -1, -1), ru);
  double t = now_ms() - t0;
  if (code != want)
    die("%s ... exited %d, expected %d", argv[0], code, want);
  return t;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The P-th percentile of V[0..N) (sorts V). */
static double pct(double *v, int n, double p) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  double pos = p / 100.0 * (n - 1);
  int i = (int)pos;
  return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[n - 1];
}

static double median(double *v, int n) { return pct(v, n, 50); }

/* The order in which to run NV variants in the next round: shuffled anew
 * each round (by a fixed sequence, the same in every run), so that no
 * variant always follows the same one.  Rotating the order would not do:
 * it keeps each variant's predecessor, and what a run leaves behind (its
 * exit still being cleaned up on the other CPU, caches) cost the next one
 * up to 0.035 ms here, enough to tilt a ratio by 0.03. */
static void next_order(int *order, int nv) {
  static uint32_t s = 2463534242u; /* xorshift32 */
  for (int j = 0; j < nv; j++)
    order[j] = j;
  for (int j = nv - 1; j > 0; j--) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    int q = (int)(s % (uint32_t)(j + 1)), x = order[j];
    order[j] = order[q];
    order[q] = x;
  }
}

static void header(const char *title) {
  double load[1] = { -1 };
  getloadavg(load, 1);
  printf("== %s ==\n(%ld cores, load average %.2f at start)\n", title,
         sysconf(_SC_NPROCESSORS_ONLN), load[0]);
}

static const char *verdict(bool ok) { return ok ? "met" : "MISSED"; }

/* A fresh state directory under the scratch root, and CTRUN_STATE_DIR
 * pointing at it for every ctrun started from now on. */
static void use_state_dir(char *buf, size_t size, const char *tag) {
  snprintf(buf, size, "%s/%s", root, tag);
  if (mkdir(buf, 0700) != 0 && errno != EEXIST)
    die("mkdir %s: %s", buf, strerror(errno));
  setenv("CTRUN_STATE_DIR", buf, 1);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f) {
  (void)st;
  (void)type;
  (void)f;
  remove(path);
  return 0;
}

static void remove_root(void) {
  if (root[0] != '\0')
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs started in the background, stopped on any way out, so that a
 * failed benchmark leaves nothing running. */
static pid_t bg[256];
static int nbg;

static pid_t start_bg(char *const argv[]) {
  pid_t pid = start(argv, -1, -1);
  if (nbg < (int)(sizeof bg / sizeof *bg))
    bg[nbg++] = pid;
  return pid;
}

static void stop_bg(void) {
  for (int i = 0; i < nbg; i++)
    kill(bg[i], SIGTERM);
  for (int i = 0; i < nbg; i++)
    while (waitpid(bg[i], NULL, 0) < 0 && errno == EINTR)
      ;
  nbg = 0;
}

static int count_runs(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    return 0;
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    if (len > 4 && strcmp(de->d_name + len - 4, ".run") == 0)
      n++;
  }
  closedir(d);
  return n;
}

/* ---- 1. per-run overhead ------------------------------------------------ */

/* A scratch directory on tmpfs, where ctrun's state lives by default
 * ($XDG_RUNTIME_DIR/ctrun), for comparison with TMPDIR, which is often on
 * disk as ~/.local/state is.  Empty when there is none. */
static char tmpfs_root[4096];

static void remove_tmpfs_root(void) {
  if (tmpfs_root[0] != '\0')
    nftw(tmpfs_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool make_tmpfs_root(void) {
  const char *bases[] = { getenv("XDG_RUNTIME_DIR"), "/dev/shm" };
  for (size_t i = 0; i < sizeof bases / sizeof *bases; i++) {
    struct statfs sf;
    if (bases[i] == NULL || bases[i][0] != '/' || statfs(bases[i], &sf) != 0 ||
        sf.f_type != TMPFS_MAGIC)
      continue;
    snprintf(tmpfs_root, sizeof tmpfs_root, "%s/ctrun-bench.XXXXXX", bases[i]);
    if (mkdtemp(tmpfs_root) != NULL) {
      atexit(remove_tmpfs_root);
      return true;
    }
  }
  tmpfs_root[0] = '\0';
  return false;
}

static const char *fs_name(const char *path) {
  struct statfs sf;
  if (statfs(path, &sf) != 0)
    return "?";
  switch (sf.f_type) {
  case TMPFS_MAGIC: return "tmpfs";
  case EXT4_SUPER_MAGIC: return "ext4";
  case XFS_SUPER_MAGIC: return "xfs";
  case BTRFS_SUPER_MAGIC: return "btrfs";
  case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
  default: return "other";
  }
}

static int bench_overhead(void) {
  char state[4200], fast[4200], lock[4200];
  if (TIMEOUT == NULL || FLOCK == NULL) {
    printf("overhead: skipped: timeout(1) or flock(1) not found\n");
    return SKIP;
  }
  use_state_dir(state, sizeof state, "state");
  snprintf(lock, sizeof lock, "%s/L", root);
  bool have_tmpfs = make_tmpfs_root() && snprintf(fast, sizeof fast, "%s/state", tmpfs_root) > 0 &&
                    mkdir(fast, 0700) == 0;

  char *v_bare[] = { (char *)TRUE_, NULL };
  char *v_t[] = { (char *)TIMEOUT, "5", (char *)TRUE_, NULL };
  char *v_ft[] = { (char *)FLOCK, lock, (char *)TIMEOUT, "5", (char *)TRUE_, NULL };
  char *v_c[] = { (char *)CTRUN, "-t", "5", "-l", lock, "--", (char *)TRUE_, NULL };
  char **variants[] = { v_bare, v_t, v_ft, v_c, v_c };
  /* The same ctrun command twice: its state directory in TMPDIR, then on
   * tmpfs.  The lock file stays in TMPDIR for ctrun and flock alike. */
  const char *states[] = { state, state, state, state, fast };
  const char *names[] = { "true (bare)", "timeout 5 true", "flock L timeout 5 true",
                          "ctrun -t 5 -l L -- true", "  the same, state on tmpfs" };
  enum { NV_MAX = 5, WARMUP = 20 };
  int nv = have_tmpfs ? 5 : 4, n = rounds(300);
  double *t[NV_MAX], *ratio[2], med[NV_MAX];

  for (int k = 0; k < NV_MAX; k++)
    t[k] = calloc((size_t)n, sizeof **t);
  ratio[0] = calloc((size_t)n, sizeof **ratio);
  ratio[1] = calloc((size_t)n, sizeof **ratio);
  for (int i = -WARMUP; i < n; i++) {
    int order[NV_MAX];
    next_order(order, nv);
    for (int j = 0; j < nv; j++) {
      int k = order[j];
      setenv("CTRUN_STATE_DIR", states[k], 1);
      double ms = timed(variants[k], 0, NULL);
      if (i >= 0)
        t[k][i] = ms;
    }
    for (int c = 0; i >= 0 && c < nv - 3; c++)
      if (t[2][i] > t[0][i])
        ratio[c][i] = (t[3 + c][i] - t[0][i]) / (t[2][i] - t[0][i]);
  }
  if (count_runs(state) != 0 || (have_tmpfs && count_runs(fast) != 0))
    die("overhead: ctrun left entries behind in its state directory");

  header("per-run overhead: wall time of one run, ms");
  printf("%d interleaved runs of each; lock file L and ctrun's state directory in\n"
         "TMPDIR (%s)%s\n", n, fs_name(state),
         have_tmpfs ? ", and once more with the state directory on tmpfs" : "");
  printf("  %-28s %8s %8s %8s %12s\n", "variant", "median", "p10", "p90", "minus bare");
  for (int k = 0; k < nv; k++) {
    double p10 = pct(t[k], n, 10), p90 = pct(t[k], n, 90);
    med[k] = median(t[k], n);
    printf("  %-28s %8.3f %8.3f %8.3f %12.3f\n", names[k], med[k], p10, p90, med[k] - med[0]);
  }
  for (int c = 0; c < nv - 3; c++) {
    double r = (med[3 + c] - med[0]) / (med[2] - med[0]);
    double r_t = (med[3 + c] - med[0]) / (med[1] - med[0]);
    printf("  state on %-6s (ctrun - bare) / (flock+timeout - bare) = %.2f (median of per-round "
           "ratios %.2f)\n", c == 0 ? fs_name(state) : "tmpfs", r, median(ratio[c], n));
    printf("  %-15s   target <= 1.0: %s; stretch <= 0.7: %s\n", "", verdict(r <= 1.0),
           verdict(r <= 0.7));
    printf("  %-15s (ctrun - bare) / (timeout - bare)       = %.2f\n", "", r_t);
    printf("  %-15s   target <= 1.0: %s\n", "", verdict(r_t <= 1.0));
  }
  return 0;
}

/* ---- 2. peak memory ------------------------------------------------------ */

/* Peak RSS of ARGV in KiB, through the small static ctrun-bench-rss (see
 * rss.c for why not straight from here). */
static double maxrss_kb(char *const argv[]) {
  char *v[32], buf[64];
  int p[2], k = 0, code;
  ssize_t n, got = 0;

  v[k++] = (char *)RSS;
  for (int i = 0; argv[i] != NULL && k < 31; i++)
    v[k++] = argv[i];
  v[k] = NULL;
  if (pipe2(p, O_CLOEXEC) != 0)
    die("pipe: %s", strerror(errno));
  pid_t pid = start(v, p[1], -1);
  close(p[1]);
  while ((n = read(p[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0 ||
         (n < 0 && errno == EINTR))
    got += n > 0 ? n : 0;
  close(p[0]);
  buf[got] = '\0';
  if ((code = finish(pid, NULL)) != 0)
    die("%s ... exited %d under ctrun-bench-rss", argv[0], code);
  return atof(buf);
}

static int bench_memory(void) {
  char state[4200], lock[4200];
  if (TIMEOUT == NULL || FLOCK == NULL) {
    printf("memory: skipped: timeout(1) or flock(1) not found\n");
    return SKIP;
  }
  use_state_dir(state, sizeof state, "state");
  snprintf(lock, sizeof lock, "%s/L", root);

  char *v_bare[] = { (char *)TRUE_, NULL };
  char *v_t[] = { (char *)TIMEOUT, "5", (char *)TRUE_, NULL };
  char *v_f[] = { (char *)FLOCK, lock, (char *)TRUE_, NULL };
  char *v_ft[] = { (char *)FLOCK, lock, (char *)TIMEOUT, "5", (char *)TRUE_, NULL };
  char *v_c0[] = { (char *)CTRUN, "--", (char *)TRUE_, NULL };
  char *v_c[] = { (char *)CTRUN, "-t", "5", "-l", lock, "--", (char *)TRUE_, NULL };
  char **variants[] = { v_bare, v_t, v_f, v_ft, v_c0, v_c };
  const char *names[] = { "true (bare)", "timeout 5 true", "flock L true", "flock L timeout 5 true",
                          "ctrun -- true", "ctrun -t 5 -l L -- true" };
  enum { NV = 6 };
  int n = rounds(30);
  double *kb[NV], med[NV];

  for (int k = 0; k < NV; k++)
    kb[k] = calloc((size_t)n, sizeof **kb);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < NV; j++) {
      int k = (i + j) % NV;
      kb[k][i] = maxrss_kb(variants[k]);
    }

  header("peak memory: max RSS from wait4(), KiB");
  printf("%d interleaved runs of each; wait4 reports the larger of the process's own\n"
         "peak and that of the children it reaped, so the command (true) counts too\n"
         "(started by a static helper, whose RSS is below every row)\n", n);
  printf("  %-26s %8s %8s %8s\n", "variant", "median", "min", "max");
  for (int k = 0; k < NV; k++) {
    double lo = pct(kb[k], n, 0), hi = pct(kb[k], n, 100);
    med[k] = median(kb[k], n);
    printf("  %-26s %8.0f %8.0f %8.0f\n", names[k], med[k], lo, hi);
  }
  double r = med[5] / med[1];
  printf("  ctrun / timeout = %.2f; ctrun / flock = %.2f; ctrun / (flock+timeout) = %.2f\n", r,
         med[5] / med[2], med[5] / med[3]);
  printf("  target ctrun <= 1.5 x timeout: %s\n", verdict(r <= 1.5));
  return 0;
}

/* ---- 3. instructions ----------------------------------------------------- */

/* The "summary:" (or "totals:") count of one callgrind output file. */
static double callgrind_total(const char *path) {
  FILE *f = fopen(path, "r");
  char line[512];
  double total = -1;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "summary:", 8) == 0)
      total = atof(line + 8);
    else if (total < 0 && strncmp(line, "totals:", 7) == 0)
      total = atof(line + 7);
  }
  fclose(f);
  return total;
}

/* Instructions of the process ARGV under callgrind.  Its children are not
 * traced: callgrind writes nothing for a forked child that goes on to exec,
 * so what the wrapper's child does before exec is not counted, for ctrun and
 * the peers alike. */
static double callgrind(char *const argv[], const char *dir) {
  char out[4300], path[4608];
  char *v[32];
  int k = 0;
  pid_t pid;
  DIR *d;
  struct dirent *de;

  snprintf(out, sizeof out, "--callgrind-out-file=%s/cg.%%p", dir);
  v[k++] = (char *)VALGRIND;
  v[k++] = "--tool=callgrind";
  v[k++] = "-q";
  v[k++] = out;
  for (int i = 0; argv[i] != NULL && k < 31; i++)
    v[k++] = argv[i];
  v[k] = NULL;
  pid = start(v, -1, -1);
  if (finish(pid, NULL) != 0)
    die("%s ... failed under valgrind", argv[0]);
  double main = 0;
  if ((d = opendir(dir)) == NULL)
    die("opendir %s: %s", dir, strerror(errno));
  while ((de = readdir(d)) != NULL) {
    if (strncmp(de->d_name, "cg.", 3) != 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    double n = callgrind_total(path);
    if (atol(de->d_name + 3) == (long)pid)
      main = n;
    unlink(path);
  }
  closedir(d);
  if (main <= 0)
    die("no callgrind output for %s", argv[0]);
  return main;
}

static int bench_instructions(void) {
  char state[4200], lock[4200], dir[4200];
  if (VALGRIND == NULL) {
    printf("instructions: skipped: valgrind not found (install valgrind for this table)\n");
    return SKIP;
  }
  if (TIMEOUT == NULL || FLOCK == NULL) {
    printf("instructions: skipped: timeout(1) or flock(1) not found\n");
    return SKIP;
  }
  use_state_dir(state, sizeof state, "state");
  snprintf(lock, sizeof lock, "%s/L", root);
  snprintf(dir, sizeof dir, "%s/cg", root);
  mkdir(dir, 0700);

  char *v_bare[] = { (char *)TRUE_, NULL };
  char *v_t[] = { (char *)TIMEOUT, "5", (char *)TRUE_, NULL };
  char *v_f[] = { (char *)FLOCK, lock, (char *)TRUE_, NULL };
  char *v_ft[] = { (char *)FLOCK, lock, (char *)TIMEOUT, "5", (char *)TRUE_, NULL };
  char *v_cv[] = { (char *)CTRUN, "--version", NULL };
  char *v_c0[] = { (char *)CTRUN, "--", (char *)TRUE_, NULL };
  char *v_c[] = { (char *)CTRUN, "-t", "5", "-l", lock, "--", (char *)TRUE_, NULL };
  char **variants[] = { v_bare, v_t, v_f, v_ft, v_cv, v_c0, v_c };
  const char *names[] = { "true (bare)",         "timeout 5 true",          "flock L true",
                          "flock L timeout 5 true", "ctrun --version (start-up)", "ctrun -- true",
                          "ctrun -t 5 -l L -- true" };
  enum { NV = 7 };
  int n = rounds(3);
  double *m[NV], med[NV];

  for (int k = 0; k < NV; k++)
    m[k] = calloc((size_t)n, sizeof **m);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < NV; k++)
      m[k][i] = callgrind(variants[k], dir);

  header("instructions executed (valgrind --tool=callgrind)");
  printf("median of %d runs; the wrapper process only, from its first instruction\n"
         "(the dynamic loader's) to exit; for flock+timeout only flock is traced\n", n);
  printf("  %-28s %12s %10s %12s\n", "variant", "instructions", "x timeout", "minus true");
  for (int k = 0; k < NV; k++)
    med[k] = median(m[k], n);
  for (int k = 0; k < NV; k++)
    printf("  %-28s %11.0fk %10.2f %11.0fk\n", names[k], med[k] / 1e3, med[k] / med[1],
           (med[k] - med[0]) / 1e3);
  printf("  ctrun -t 5 -l L -- true / timeout 5 true = %.2f; beyond start-up (--version): %.0fk\n",
         med[6] / med[1], (med[6] - med[4]) / 1e3);
  return 0;
}

/* ---- 4. kill latency ----------------------------------------------------- */

/* Run ARGV (a ctrun with -t TIMEOUT_MS) and time, on the driver's clock,
 * the arrival of its "timed out" notice (printed at the deadline) and its
 * exit.  The tree inherits the stderr pipe, so its EOF comes when the last
 * process is gone. */
static void kill_once(char **argv, double timeout_ms, double *after_deadline, double *wall_over) {
  int p[2], code;
  char buf[8192];
  size_t have = 0;
  double t0, t_notice = -1, t_exit;
  pid_t pid;

  if (pipe2(p, O_CLOEXEC) != 0)
    die("pipe: %s", strerror(errno));
  t0 = now_ms();
  pid = start(argv, -1, p[1]);
  close(p[1]);
  for (;;) {
    ssize_t n = read(p[0], buf + have, sizeof buf - 1 - have);
    double t = now_ms();
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    have += (size_t)n;
    buf[have] = '\0';
    if (t_notice < 0 && strstr(buf, "timed out") != NULL)
      t_notice = t;
    if (have > sizeof buf / 2)
      have = 0; /* only the first lines matter */
  }
  close(p[0]);
  code = finish(pid, NULL);
  t_exit = now_ms();
  if (code != 124)
    die("kill: ctrun exited %d, expected 124", code);
  if (t_notice < 0)
    die("kill: ctrun printed no \"timed out\" notice");
  *after_deadline = t_exit - t_notice;
  *wall_over = t_exit - t0 - timeout_ms;
}

static int bench_kill(void) {
  char state[4200];
  enum { PROCS = 100, ESCAPEES = 20 };
  char *obedient[8 + 4 * PROCS], *hard[8 + 6 * PROCS];
  int a = 0, b = 0;

  use_state_dir(state, sizeof state, "state");
  /* 99 forked sleepers and the main process: 100 processes that die of
   * TERM.  The sleeps are short enough to end by themselves should ctrun
   * ever fail to kill them. */
  const char *head_o[] = { CTRUN, "-t", "1", "-k", "5", "--", TESTCHILD };
  for (size_t i = 0; i < sizeof head_o / sizeof *head_o; i++)
    obedient[a++] = (char *)head_o[i];
  for (int i = 0; i < PROCS - 1; i++) {
    obedient[a++] = "{";
    obedient[a++] = "sleep";
    obedient[a++] = "20";
    obedient[a++] = "}";
  }
  obedient[a++] = "sleep";
  obedient[a++] = "20";
  obedient[a] = NULL;
  /* The same 100, but 20 of them left their group with setsid() and ignore
   * TERM: only the hard kill after -k ends them. */
  const char *head_h[] = { CTRUN, "-t", "1", "-k", "0.5", "--", TESTCHILD };
  for (size_t i = 0; i < sizeof head_h / sizeof *head_h; i++)
    hard[b++] = (char *)head_h[i];
  for (int i = 0; i < PROCS - 1; i++) {
    hard[b++] = "{";
    if (i < ESCAPEES) {
      hard[b++] = "setsid";
      hard[b++] = "ignore-term";
    }
    hard[b++] = "sleep";
    hard[b++] = "20";
    hard[b++] = "}";
  }
  hard[b++] = "sleep";
  hard[b++] = "20";
  hard[b] = NULL;

  int n = rounds(7);
  double *o_lat = calloc((size_t)n, sizeof(double)), *o_wall = calloc((size_t)n, sizeof(double));
  double *h_lat = calloc((size_t)n, sizeof(double)), *h_wall = calloc((size_t)n, sizeof(double));
  for (int i = 0; i < n; i++) {
    kill_once(obedient, 1000, &o_lat[i], &o_wall[i]);
    kill_once(hard, 1000, &h_lat[i], &h_wall[i]);
    h_lat[i] -= 500; /* the grace of -k 0.5 is policy, not latency */
    h_wall[i] -= 500;
  }
  if (count_runs(state) != 0)
    die("kill: ctrun left entries behind in its state directory");

  header("kill latency: from the deadline (ctrun's \"timed out\" notice) to ctrun's exit, ms");
  printf("%d runs of each, a tree of %d processes, -t 1\n", n, PROCS);
  printf("  %-44s %8s %8s %8s %14s\n", "tree", "median", "min", "max", "wall - t (- k)");
  double om = median(o_lat, n), omin = pct(o_lat, n, 0), omax = pct(o_lat, n, 100);
  double hm = median(h_lat, n), hmin = pct(h_lat, n, 0), hmax = pct(h_lat, n, 100);
  printf("  %-44s %8.1f %8.1f %8.1f %14.1f\n", "100 obeying TERM", om, omin, omax,
         median(o_wall, n));
  printf("  %-44s %8.1f %8.1f %8.1f %14.1f\n", "80 obeying + 20 setsid ignoring TERM, -k 0.5", hm,
         hmin, hmax, median(h_wall, n));
  printf("  (hard-kill row: minus the 500 ms grace; the wall column, from the driver's\n"
         "  spawn of ctrun, also holds ctrun's start-up and the timer's slack)\n");
  printf("  target obedient tree <= 50 ms: %s\n", verdict(om <= 50));
  return 0;
}

/* ---- 5. scale of tracking ----------------------------------------------- */

/* Time ARGV (ctrun ps or cleanup), R times; the median.  LINES, if not
 * NULL, gets the line count of the first run's output. */
static double time_cmd(char **argv, int r, int *lines) {
  double *t = calloc((size_t)r, sizeof *t), m;
  for (int i = 0; i < r; i++) {
    if (i == 0 && lines != NULL) {
      char path[4300], buf[4096];
      snprintf(path, sizeof path, "%s/out", root);
      int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      double t0 = now_ms();
      int code = finish(start(argv, fd, -1), NULL);
      t[i] = now_ms() - t0;
      if (code != 0)
        die("%s %s exited %d", argv[0], argv[1], code);
      *lines = 0;
      lseek(fd, 0, SEEK_SET);
      for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
        for (ssize_t j = 0; j < n; j++)
          *lines += buf[j] == '\n';
      close(fd);
    } else {
      t[i] = timed(argv, 0, NULL);
    }
  }
  m = median(t, r);
  free(t);
  return m;
}

/* Write N stale entries into DIR, formatted by ctrun's own
 * ctrun_entry_format, for a supervisor that crashed in this boot (so that
 * ps and cleanup take the full path: process table, tags, group check). */
static void forge(const char *dir, int n, long dead_pid) {
  char boot[40], path[4300];
  char *argv[] = { (char *)SLEEP, "120", NULL };
  struct timespec now;

  clock_gettime(CLOCK_REALTIME, &now);
  ctrun_proc_boot_id(boot, sizeof boot);
  for (int i = 0; i < n; i++) {
    struct ctrun_entry e;
    size_t len;
    memset(&e, 0, sizeof e);
    ctrun_new_run_id(e.id);
    snprintf(e.name, sizeof e.name, "sleep");
    e.pid = e.child_pid = e.pgid = dead_pid;
    e.pid_start = e.child_start = 4242;
    snprintf(e.boot_id, sizeof e.boot_id, "%s", boot);
    e.started_ms = (int64_t)now.tv_sec * 1000 - 60000 + i;
    e.deadline_ms = e.started_ms + 120000;
    e.signal = SIGTERM;
    e.kill_after_ms = 5000;
    e.argv = argv;
    e.argc = 2;
    char *text = ctrun_entry_format(&e, &len);
    snprintf(path, sizeof path, "%s/%s.run", dir, e.id);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || text == NULL || write(fd, text, len) != (ssize_t)len)
      die("cannot forge %s: %s", path, strerror(errno));
    close(fd);
    free(text);
  }
}

struct scale_row {
  const char *kind;
  int n;
  double ps, cleanup;
};

static void print_growth(const struct scale_row *x, const struct scale_row *y) {
  double ex_ps = log(y->ps / x->ps) / log((double)y->n / x->n);
  double ex_cl = log(y->cleanup / x->cleanup) / log((double)y->n / x->n);
  printf("  %-14s %4d -> %-4d  ps x%.2f (exponent %.2f)   cleanup x%.2f (exponent %.2f)\n",
         x->kind, x->n, y->n, y->ps / x->ps, ex_ps, y->cleanup / x->cleanup, ex_cl);
}

static int bench_registry(void) {
  char state[4200], tag[32];
  struct scale_row rows[8];
  int nrows = 0, lines;
  const int real_n[] = { 10, 100 }, forged_n[] = { 10, 100, 1000 };
  char *ps[] = { (char *)CTRUN, "ps", NULL };
  char *cleanup[] = { (char *)CTRUN, "cleanup", NULL };
  int reps = rounds(11);

  /* Real runs: N supervisors with a sleeper each, all alive: ps reads N
   * locked entries and counts N trees; cleanup finds nothing stale. */
  for (size_t s = 0; s < sizeof real_n / sizeof *real_n; s++) {
    int n = real_n[s];
    char *run[] = { (char *)CTRUN, "-t", "120", "--", (char *)SLEEP, "120", NULL };
    snprintf(tag, sizeof tag, "real%d", n);
    use_state_dir(state, sizeof state, tag);
    for (int i = 0; i < n; i++)
      start_bg(run);
    double t0 = now_ms();
    while (count_runs(state) < n && now_ms() - t0 < 60000)
      nap_ms(20);
    if (count_runs(state) < n)
      die("registry: only %d of %d runs started", count_runs(state), n);
    nap_ms(200); /* let the last supervisors finish their start-up */
    rows[nrows].kind = "real (live)";
    rows[nrows].n = n;
    rows[nrows].ps = time_cmd(ps, reps, &lines);
    if (lines != n + 1)
      die("registry: ps listed %d lines for %d runs", lines, n);
    rows[nrows].cleanup = time_cmd(cleanup, reps, NULL);
    nrows++;
    /* TERM reaches each tree through its ctrun, as a user's would. */
    stop_bg();
    if (count_runs(state) != 0)
      die("registry: %d runs left entries behind", count_runs(state));
  }

  /* Forged stale entries: the supervisor of each is gone.  ps reads them;
   * cleanup claims, checks for remains and removes every one, so each of
   * its samples needs a fresh set. */
  pid_t dead = start((char *[]){ (char *)TRUE_, NULL }, -1, -1);
  finish(dead, NULL);
  for (size_t s = 0; s < sizeof forged_n / sizeof *forged_n; s++) {
    int n = forged_n[s], creps = n >= 1000 ? rounds(3) : rounds(5);
    double *ct = calloc((size_t)creps, sizeof *ct);
    snprintf(tag, sizeof tag, "forged%d", n);
    use_state_dir(state, sizeof state, tag);
    forge(state, n, (long)dead);
    rows[nrows].kind = "forged (stale)";
    rows[nrows].n = n;
    rows[nrows].ps = time_cmd(ps, reps, &lines);
    if (lines != n + 1)
      die("registry: ps listed %d lines for %d forged runs", lines, n);
    for (int i = 0; i < creps; i++) {
      if (i > 0)
        forge(state, n, (long)dead);
      ct[i] = time_cmd(cleanup, 1, NULL);
      if (count_runs(state) != 0)
        die("registry: cleanup left %d of %d stale entries", count_runs(state), n);
    }
    rows[nrows].cleanup = median(ct, creps);
    free(ct);
    nrows++;
  }

  header("scale of tracking: ctrun ps and ctrun cleanup, ms");
  printf("real runs: N x 'ctrun -t 120 -- sleep 120', alive (cleanup finds nothing to do);\n"
         "forged: N stale entries in ctrun's own format, supervisor dead in this boot\n"
         "(cleanup claims, checks and removes each); median of %d ps runs\n", reps);
  printf("  %-16s %6s %10s %10s %12s %12s\n", "entries", "N", "ps", "ps/run", "cleanup",
         "cleanup/run");
  for (int i = 0; i < nrows; i++)
    printf("  %-16s %6d %10.2f %10.3f %12.2f %12.3f\n", rows[i].kind, rows[i].n, rows[i].ps,
           rows[i].ps / rows[i].n, rows[i].cleanup, rows[i].cleanup / rows[i].n);
  printf("growth (exponent 1 = linear):\n");
  print_growth(&rows[0], &rows[1]);
  print_growth(&rows[2], &rows[3]);
  print_growth(&rows[3], &rows[4]);
  double ps1000 = rows[4].ps;
  double ex = log(rows[4].ps / rows[3].ps) / log(10.0);
  printf("  target ps over 1000 runs <= 100 ms: %s; growth linear or better: %s\n",
         verdict(ps1000 <= 100), verdict(ex <= 1.1));
  return 0;
}

/* ---- 6. lock contention -------------------------------------------------- */

/* Start N copies of ARGV at once and wait for all; total wall time. */
static double burst(char **argv, int n, int want) {
  pid_t *pids = calloc((size_t)n, sizeof *pids);
  double t0 = now_ms();
  int bad = 0;
  for (int i = 0; i < n; i++)
    pids[i] = start(argv, -1, -1);
  for (int i = 0; i < n; i++)
    bad += finish(pids[i], NULL) != want;
  double t = now_ms() - t0;
  free(pids);
  if (bad)
    die("contention: %d of %d %s ... did not exit %d", bad, n, argv[0], want);
  return t;
}

static int bench_contention(void) {
  char state[4200], lock[4200];
  enum { N = 100 };
  if (FLOCK == NULL) {
    printf("contention: skipped: flock(1) not found\n");
    return SKIP;
  }
  use_state_dir(state, sizeof state, "state");
  snprintf(lock, sizeof lock, "%s/L", root);

  /* The holder is a tracked run, as in the cron use that --on-busy=skip is
   * for. */
  char *holder[] = { (char *)CTRUN, "-t", "120", "-l", lock, "--", (char *)SLEEP, "120", NULL };
  start_bg(holder);
  double t0 = now_ms();
  for (;;) {
    int fd = open(lock, O_RDONLY | O_CLOEXEC);
    bool held = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (fd >= 0)
      close(fd); /* also lets go of the lock if we got it */
    if (held)
      break;
    if (now_ms() - t0 > 30000)
      die("contention: the holder never took the lock");
    nap_ms(10);
  }

  char *v_c[] = { (char *)CTRUN, "-l", lock, "--on-busy=skip", "--", (char *)TRUE_, NULL };
  char *v_f[] = { (char *)FLOCK, "-n", lock, (char *)TRUE_, NULL };
  char *v_b[] = { (char *)TRUE_, NULL };
  char **variants[] = { v_b, v_f, v_c };
  const int want[] = { 0, 1, 0 };
  const char *names[] = { "true (bare)", "flock -n L true", "ctrun -l L --on-busy=skip -- true" };
  enum { NV = 3 };
  int n = rounds(7);
  double *t[NV], med[NV];
  for (int k = 0; k < NV; k++)
    t[k] = calloc((size_t)n, sizeof **t);
  for (int i = 0; i < n; i++) {
    int order[NV];
    next_order(order, NV);
    for (int j = 0; j < NV; j++) {
      int k = order[j];
      t[k][i] = burst(variants[k], N, want[k]);
    }
  }
  stop_bg();

  header("lock contention: 100 concurrent runs against a held lock, total ms");
  printf("%d interleaved bursts of each; the lock is held by a tracked ctrun run\n", n);
  printf("  %-34s %8s %8s %8s %10s\n", "variant (x100 at once)", "median", "min", "max", "per run");
  for (int k = 0; k < NV; k++) {
    double lo = pct(t[k], n, 0), hi = pct(t[k], n, 100);
    med[k] = median(t[k], n);
    printf("  %-34s %8.1f %8.1f %8.1f %10.2f\n", names[k], med[k], lo, hi, med[k] / N);
  }
  printf("  ctrun / flock -n = %.2f; (ctrun - bare) / (flock -n - bare) = %.2f\n", med[2] / med[1],
         (med[2] - med[0]) / (med[1] - med[0]));
  if (count_runs(state) != 0)
    die("contention: entries left behind in the state directory");
  return 0;
}


/* ---- 7. the output relay of --idle-timeout ------------------------------- */

/* Start ARGV with stdin from IN and stdout on OUT (stderr: /dev/null). */
static pid_t start_io(char *const argv[], int in, int out) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int r;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in >= 0 ? in : devnull, 0);
  posix_spawn_file_actions_adddup2(&fa, out, 1);
  posix_spawn_file_actions_adddup2(&fa, devnull, 2);
  r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (r != 0)
    die("cannot run %s: %s", argv[0], strerror(r));
  return pid;
}

/* Run the producer ARGV, through CAT when given, into a pipe that the
 * driver reads to its end; wall time in ms.  All of BYTES must arrive. */
static double through_pipe(char *const argv[], char *const cat[], long long bytes, struct rusage *ru) {
  static char buf[1 << 20];
  int p[2], q[2];
  long long got = 0;
  pid_t a, b = -1;
  double t0;
  if (pipe2(p, O_CLOEXEC) != 0)
    die("pipe: %s", strerror(errno));
  t0 = now_ms();
  if (cat != NULL) {
    if (pipe2(q, O_CLOEXEC) != 0)
      die("pipe: %s", strerror(errno));
    a = start_io(argv, -1, q[1]);
    close(q[1]);
    b = start_io(cat, q[0], p[1]);
    close(q[0]);
  } else {
    a = start_io(argv, -1, p[1]);
  }
  close(p[1]);
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) != 0;)
    if (n > 0)
      got += n;
    else if (errno != EINTR)
      die("read: %s", strerror(errno));
  close(p[0]);
  if (finish(a, ru) != 0 || (b > 0 && finish(b, NULL) != 0))
    die("relay: %s ... failed", argv[0]);
  if (got != bytes)
    die("relay: %lld bytes arrived of %lld", got, bytes);
  return now_ms() - t0;
}

static int bench_relay(void) {
  char state[4200], size[32];
  const char *CAT = env_path("BENCH_CAT", false);
  long long bytes = 1000000000LL * rounds(100) / 100;
  if (CAT == NULL) {
    printf("relay: skipped: cat(1) not found\n");
    return SKIP;
  }
  use_state_dir(state, sizeof state, "state");
  snprintf(size, sizeof size, "%lld", bytes);
  char *producer[] = { (char *)TESTCHILD, "spew", "1", size, NULL };
  char *cat[] = { (char *)CAT, NULL };
  char *v_plain[] = { (char *)CTRUN, "--", (char *)TESTCHILD, "spew", "1", size, NULL };
  char *v_relay[] = { (char *)CTRUN, "--idle-timeout", "1h", "--", (char *)TESTCHILD, "spew", "1",
                      size, NULL };
  char *v_log[] = { (char *)CTRUN, "--idle-timeout", "1h", "-o", "/dev/null", "--",
                    (char *)TESTCHILD, "spew", "1", size, NULL };
  enum { NV = 5 };
  const char *names[] = { "producer | driver", "producer | cat | driver",
                          "ctrun -- producer | driver", "ctrun --idle-timeout 1h -- producer | driver",
                          "ctrun --idle-timeout 1h -o /dev/null" };
  int n = rounds(5) < 3 ? 3 : rounds(5);
  double *t[NV], med[NV], cpu = 0;
  struct rusage ru;
  for (int k = 0; k < NV; k++)
    t[k] = calloc((size_t)n, sizeof **t);
  for (int i = 0; i < n; i++) {
    int order[NV];
    next_order(order, NV);
    for (int j = 0; j < NV; j++) {
      int k = order[j];
      switch (k) {
      case 0: t[k][i] = through_pipe(producer, NULL, bytes, NULL); break;
      case 1: t[k][i] = through_pipe(producer, cat, bytes, NULL); break;
      case 2: t[k][i] = through_pipe(v_plain, NULL, bytes, NULL); break;
      case 3:
        t[k][i] = through_pipe(v_relay, NULL, bytes, &ru);
        cpu += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
        break;
      default: t[k][i] = timed(v_log, 0, NULL); break;
      }
    }
  }
  header("the output relay of --idle-timeout: a command writing to stdout");
  printf("%d interleaved runs of each, %lld bytes in pieces of 1 B to 128 KiB, read by\n"
         "the driver from a pipe (the last row: into ctrun's log, /dev/null)\n", n, bytes);
  printf("  %-44s %9s %9s\n", "variant", "median ms", "MB/s");
  for (int k = 0; k < NV; k++) {
    med[k] = median(t[k], n);
    printf("  %-44s %9.0f %9.0f\n", names[k], med[k], (double)bytes / 1e3 / med[k]);
  }
  printf("  relay hop (ctrun --idle-timeout - ctrun) / cat hop (| cat - direct) = %.2f\n",
         (med[3] - med[2]) / (med[1] - med[0]));
  printf("  relay throughput / cat's = %.2f; ctrun CPU through the relay (its own and the\n"
         "  command's): %.0f ms a run\n", med[1] / med[3], cpu / n);
  if (count_runs(state) != 0)
    die("relay: entries left behind in the state directory");
  return 0;
}

/* The per-run cost of OPT (NULL-terminated, before "--"): N interleaved
 * runs of "ctrun OPT -- true" and "ctrun -- true"; medians in *BASE and
 * *WITH, in ms. */
static void per_run_cost(char *const *opt, int n, double *base, double *with) {
  char *v_c[] = { (char *)CTRUN, "--", (char *)TRUE_, NULL };
  char *v_o[16];
  int a = 0;
  double *t0 = calloc((size_t)n, sizeof(double)), *t1 = calloc((size_t)n, sizeof(double));
  v_o[a++] = (char *)CTRUN;
  for (; *opt != NULL && a < 12; opt++)
    v_o[a++] = *opt;
  v_o[a++] = "--";
  v_o[a++] = (char *)TRUE_;
  v_o[a] = NULL;
  for (int i = -10; i < n; i++) {
    double x = timed(i % 2 ? v_c : v_o, 0, NULL), y = timed(i % 2 ? v_o : v_c, 0, NULL);
    if (i >= 0) {
      t0[i] = i % 2 ? x : y;
      t1[i] = i % 2 ? y : x;
    }
  }
  *base = median(t0, n);
  *with = median(t1, n);
  free(t0);
  free(t1);
}

/* The CPU (ms) that ctrun's loop thread burns over the first 11 s of a
 * tree of TREE_PROCS sleeping processes, without OPT (cpu[0]) and with it
 * (cpu[1]), averaged over *NRUNS interleaved runs of each; read from
 * schedstat just before the deadline ends the run. */
enum { TREE_PROCS = 100 };
static void tree_cpu(char *const *opt, const char *what, double cpu[2], int *nruns) {
  char *tree[2][16 + 4 * TREE_PROCS];
  int m = rounds(2) < 2 ? 2 : rounds(2);
  for (int v = 0; v < 2; v++) {
    int a = 0;
    tree[v][a++] = (char *)CTRUN;
    tree[v][a++] = "-t";
    tree[v][a++] = "12";
    for (char *const *o = opt; v == 1 && *o != NULL; o++)
      tree[v][a++] = *o;
    tree[v][a++] = "--";
    tree[v][a++] = (char *)TESTCHILD;
    for (int i = 0; i < TREE_PROCS - 1; i++) {
      tree[v][a++] = "{";
      tree[v][a++] = "sleep";
      tree[v][a++] = "60";
      tree[v][a++] = "}";
    }
    tree[v][a++] = "sleep";
    tree[v][a++] = "60";
    tree[v][a] = NULL;
  }
  cpu[0] = cpu[1] = 0;
  for (int i = 0; i < m; i++)
    for (int v = 0; v < 2; v++) {
      int k = (i + v) % 2;
      char path[64], text[256];
      pid_t pid = start(tree[k], -1, -1);
      nap_ms(11000);
      snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
      FILE *f = fopen(path, "r");
      if (f == NULL || fgets(text, sizeof text, f) == NULL)
        die("%s: cannot read %s", what, path);
      fclose(f);
      cpu[k] += atof(text) / 1e6;
      if (finish(pid, NULL) != 124)
        die("%s: the tree's run did not time out", what);
    }
  cpu[0] /= m;
  cpu[1] /= m;
  *nruns = m;
}

/* ---- 8. the cost of --child-timeout --------------------------------------- */

static int bench_govern(void) {
  char state[4200];
  char *opt[] = { "--child-timeout", "30s", NULL }, *slow[] = { "--child-timeout", "1h", NULL };
  double base, with, cpu[2];
  int n = rounds(200), m, procs = 0;
  use_state_dir(state, sizeof state, "state");
  /* Per run: a command with no tree at all. */
  per_run_cost(opt, n, &base, &with);
  /* While a tree of 100 processes runs: --child-timeout 1h looks at it
   * once a second (its longest interval; at the shortest, 50 ms, the
   * processes would be killed), so the cost of one look is measured over
   * ten of them. */
  tree_cpu(slow, "govern", cpu, &m);
  DIR *d = opendir("/proc");
  for (struct dirent *de; d != NULL && (de = readdir(d)) != NULL;)
    procs += de->d_name[0] >= '1' && de->d_name[0] <= '9';
  if (d != NULL)
    closedir(d);
  double look = (cpu[1] - cpu[0]) / 10;
  header("the cost of --child-timeout");
  printf("per run, %d interleaved runs of each, ms:\n", n);
  printf("  %-40s %8.3f\n", "ctrun -- true", base);
  printf("  %-40s %8.3f\n", "ctrun --child-timeout 30s -- true", with);
  printf("CPU of ctrun's loop over the first 11 s of a tree of %d sleeping\n"
         "processes (%d runs each; %d processes on the machine):\n", TREE_PROCS, m, procs);
  printf("  %-40s %8.2f ms\n", "without", cpu[0]);
  printf("  %-40s %8.2f ms\n", "--child-timeout 1h (a look a second)", cpu[1]);
  printf("  one look at the tree: %.3f ms of CPU; at the shortest interval (50 ms),\n"
         "  %.1f%% of one core\n", look, look / 50 * 100);
  if (count_runs(state) != 0)
    die("govern: entries left behind in the state directory");
  return 0;
}

/* ---- 9. a skipped detached hook ----------------------------------------- */

/* The bash-hook recipe against a busy lock: `ctrun -d -l L --on-busy=skip`
 * started at every prompt while the previous run still holds the lock.  Its
 * whole cost is what the hook pays; compared with flock -n, the plain-tool
 * way to skip. */
/* What the limits cost: per run, with --memory (on Linux as root, that
 * is the run's own cgroup as well as the sampler), and the CPU ctrun's
 * loop burns sampling a tree of 100 processes every 100 ms for 11 s. */
static int bench_limits(void) {
  char state[4200];
  char *opt[] = { "--memory", "10G", NULL };
  double base, with, cpu[2];
  int n = rounds(200), m;
  use_state_dir(state, sizeof state, "state");
  per_run_cost(opt, n, &base, &with);
  tree_cpu(opt, "limits", cpu, &m);
  double sample = (cpu[1] - cpu[0]) / 110;
  header("the cost of the limits (--memory)");
  printf("per run, %d interleaved runs of each, ms:\n", n);
  printf("  %-40s %8.3f\n", "ctrun -- true", base);
  printf("  %-40s %8.3f\n", "ctrun --memory 10G -- true", with);
  printf("CPU of ctrun's loop over the first 11 s of a tree of %d sleeping\n"
         "processes (%d runs each):\n", TREE_PROCS, m);
  printf("  %-40s %8.2f ms\n", "without", cpu[0]);
  printf("  %-40s %8.2f ms\n", "--memory 10G (a sample every 100 ms)", cpu[1]);
  printf("  one sample of the tree: %.3f ms of CPU, %.2f%% of one core\n", sample, sample);
  if (count_runs(state) != 0)
    die("limits: entries left behind in the state directory");
  return 0;
}

/* ---- fleet locks ---------------------------------------------------------- */

/* Start KIND's server (tests/helper/fleet_server.py) in DIR: its port, or
 * 0 when it cannot run here. */
static int fleet_server(const char *kind, const char *dir) {
  char portfile[4300];
  const char *py = getenv("BENCH_PYTHON"), *script = getenv("CTRUN_FLEET_SERVER");
  int port = 0;
  if (py == NULL || script == NULL || mkdir(dir, 0755) != 0)
    return 0;
  chmod(root, 0711); /* PostgreSQL runs as nobody when we are root */
  snprintf(portfile, sizeof portfile, "%s/port", dir);
  char *argv[] = { (char *)py, (char *)script, (char *)kind, (char *)dir, portfile, NULL };
  pid_t pid = start_bg(argv);
  for (int i = 0; i < 600 && access(portfile, F_OK) != 0; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid)
      return 0;
    nap_ms(50);
  }
  FILE *f = fopen(portfile, "r");
  if (f == NULL || fscanf(f, "%d", &port) != 1)
    port = 0;
  if (f != NULL)
    fclose(f);
  return port;
}

/* Bytes the Redis server at PORT has read from its clients so far. */
static long long redis_bytes_in(int port) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  char buf[8192], *p;
  size_t got = 0;
  ssize_t n;
  long long v = -1;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      write(fd, "INFO stats\r\n", 12) != 12) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0) {
    got += (size_t)n;
    buf[got] = '\0';
    if ((p = strstr(buf, "total_net_input_bytes:")) != NULL && strchr(p, '\n') != NULL) {
      v = atoll(p + 22);
      break;
    }
  }
  close(fd);
  return v;
}

static int bench_fleet(void) {
  char state[4200], lock[4200], rdir[4200], pdir[4200], redis[200], pg[300];
  use_state_dir(state, sizeof state, "state");
  snprintf(lock, sizeof lock, "%s/L", root);
  snprintf(rdir, sizeof rdir, "%s/redis", root);
  snprintf(pdir, sizeof pdir, "%s/pg", root);
  int rport = fleet_server("redis", rdir), pport = fleet_server("postgres", pdir);
  if (rport == 0 || pport == 0) {
    printf("fleet: skipped: redis-server or PostgreSQL cannot be started here\n");
    return SKIP;
  }
  snprintf(redis, sizeof redis, "redis://127.0.0.1:%d/bench", rport);
  snprintf(pg, sizeof pg, "postgres://postgres@127.0.0.1:%d/postgres?key=bench&sslmode=disable",
           pport);
  char *v0[] = { (char *)CTRUN, "-t", "5", "--", (char *)TRUE_, NULL };
  char *v1[] = { (char *)CTRUN, "-t", "5", "-l", lock, "--", (char *)TRUE_, NULL };
  char *v2[] = { (char *)CTRUN, "-t", "5", "-l", redis, "--", (char *)TRUE_, NULL };
  char *v3[] = { (char *)CTRUN, "-t", "5", "-l", pg, "--", (char *)TRUE_, NULL };
  char **variants[] = { v0, v1, v2, v3 };
  const char *names[] = { "no lock", "lock file", "Redis (loopback)", "PostgreSQL (loopback)" };
  enum { NV = 4, WARMUP = 10 };
  int n = rounds(200);
  double *t[NV], med0;
  for (int k = 0; k < NV; k++)
    t[k] = calloc((size_t)n, sizeof **t);
  for (int i = -WARMUP; i < n; i++) {
    int order[NV];
    next_order(order, NV);
    for (int j = 0; j < NV; j++) {
      int k = order[j];
      double ms = timed(variants[k], 0, NULL);
      if (i >= 0)
        t[k][i] = ms;
    }
  }
  header("fleet locks: one run taking and releasing its lock, ms");
  printf("%d interleaved runs of each of ctrun -t 5 -l LOCK -- true\n", n);
  printf("  %-24s %8s %8s %16s\n", "lock", "median", "p99", "minus no lock");
  med0 = median(t[0], n);
  for (int k = 0; k < NV; k++)
    printf("  %-24s %8.3f %8.3f %16.3f\n", names[k], median(t[k], n), pct(t[k], n, 99),
           median(t[k], n) - med0);
  /* Renewals: what the server reads while a run holds its lease. */
  char *hold[] = { (char *)CTRUN, "--lock-ttl", "3s", "-l", redis, "--", (char *)SLEEP, "6", NULL };
  long long b0 = redis_bytes_in(rport);
  timed(hold, 0, NULL);
  long long b1 = redis_bytes_in(rport);
  if (b0 >= 0 && b1 > b0) {
    /* One acquisition, a renewal a second for 6 s, one release, and the
     * INFO request itself (12 bytes). */
    double per = (double)(b1 - b0 - 12) / 8;
    printf("Redis: %lld bytes read by the server over a 6 s hold at --lock-ttl 3s (8 requests):\n"
           "  %.0f bytes a request; at the default 30s TTL (6 renewals a minute): %.1f KiB a held "
           "minute\n", b1 - b0 - 12, per, per * 6 / 1024);
  }
  stop_bg();
  if (count_runs(state) != 0)
    die("fleet: entries left behind in the state directory");
  return 0;
}

static int bench_hook(void) {
  char state[4200], lock[4200];
  if (FLOCK == NULL) {
    printf("hook: skipped: flock(1) not found\n");
    return SKIP;
  }
  use_state_dir(state, sizeof state, "state");
  snprintf(lock, sizeof lock, "%s/L", root);
  char *holder[] = { (char *)CTRUN, "-t", "120", "-l", lock, "--", (char *)SLEEP, "120", NULL };
  start_bg(holder);
  double t0 = now_ms();
  while (count_runs(state) < 1 && now_ms() - t0 < 30000)
    nap_ms(10);
  nap_ms(100);

  char *v_c[] = { (char *)CTRUN, "-d", "-l", lock, "--on-busy=skip", "--", (char *)TRUE_, NULL };
  char *v_f[] = { (char *)FLOCK, "-n", lock, (char *)TRUE_, NULL };
  char *v_b[] = { (char *)TRUE_, NULL };
  char **variants[] = { v_b, v_f, v_c };
  const int want[] = { 0, 1, 0 };
  const char *names[] = { "true (bare)", "flock -n L true", "ctrun -d -l L --on-busy=skip -- true" };
  enum { NV = 3 };
  int n = rounds(300);
  double *t[NV], med[NV];
  struct rusage ru;
  double cpu = 0;
  for (int k = 0; k < NV; k++)
    t[k] = calloc((size_t)n, sizeof **t);
  for (int i = 0; i < n; i++) {
    int order[NV];
    next_order(order, NV);
    for (int j = 0; j < NV; j++) {
      int k = order[j];
      t[k][i] = timed(variants[k], want[k], k == 2 ? &ru : NULL);
      if (k == 2)
        cpu += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    }
  }
  stop_bg();
  header("a skipped detached hook: one run against a held lock, ms");
  printf("%d interleaved runs of each, one at a time; the lock is held by a tracked run\n", n);
  printf("  %-40s %8s %8s %8s\n", "variant", "median", "p10", "p90");
  for (int k = 0; k < NV; k++) {
    double p10 = pct(t[k], n, 10), p90 = pct(t[k], n, 90);
    med[k] = median(t[k], n);
    printf("  %-40s %8.3f %8.3f %8.3f\n", names[k], med[k], p10, p90);
  }
  printf("  ctrun CPU (user+sys, its own and any waited-for child's): %.3f ms a run\n", cpu / n);
  printf("  (ctrun - bare) / (flock -n - bare) = %.2f\n", (med[2] - med[0]) / (med[1] - med[0]));
  if (count_runs(state) != 0)
    die("hook: entries left behind in the state directory");
  return 0;
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*fn)(void);
  } benches[] = {
    { "overhead", bench_overhead }, { "memory", bench_memory },     { "instructions", bench_instructions },
    { "kill", bench_kill },         { "registry", bench_registry }, { "contention", bench_contention },
    { "hook", bench_hook },         { "relay", bench_relay },       { "govern", bench_govern },
    { "limits", bench_limits },     { "fleet", bench_fleet },
  };
  const char *tmp = getenv("TMPDIR");
  int code = -1;

  if (argc != 2) {
    fprintf(stderr, "usage: ctrun-bench overhead|memory|instructions|kill|registry|contention|hook|relay|govern|limits|fleet\n");
    return 2;
  }
  CTRUN = env_path("CTRUN", true);
  TESTCHILD = env_path("CTRUN_TESTCHILD", true);
  RSS = env_path("CTRUN_BENCH_RSS", true);
  TRUE_ = env_path("BENCH_TRUE", true);
  SLEEP = env_path("BENCH_SLEEP", true);
  TIMEOUT = env_path("BENCH_TIMEOUT", false);
  FLOCK = env_path("BENCH_FLOCK", false);
  VALGRIND = env_path("BENCH_VALGRIND", false);
  devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  snprintf(root, sizeof root, "%s/ctrun-bench.XXXXXX", tmp != NULL && tmp[0] == '/' ? tmp : "/tmp");
  if (devnull < 0 || mkdtemp(root) == NULL)
    die("cannot set up: %s", strerror(errno));
  /* Handlers run last-registered first: stop the runs, then remove their
   * directory. */
  atexit(remove_root);
  atexit(stop_bg);
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (size_t i = 0; i < sizeof benches / sizeof *benches; i++)
    if (strcmp(argv[1], benches[i].name) == 0)
      code = benches[i].fn();
  if (code < 0) {
    fprintf(stderr, "ctrun-bench: unknown benchmark '%s'\n", argv[1]);
    return 2;
  }
  return code;
}
