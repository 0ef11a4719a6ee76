/* Linux: a cgroup v2 of the run's own, where ctrun may create one below
 * its own cgroup.  It gives the run the kernel's limits (memory.max,
 * pids.max) where those controllers are enabled for ctrun's cgroup, an
 * atomic kill of every process in it (cgroup.kill), and its emptiness
 * (cgroup.events) and CPU time (cpu.stat) as the kernel counts them.
 *
 * Nothing but the run's own command is ever moved into it (written to
 * cgroup.procs while it is held before exec, so everything it starts is
 * born inside), and it is removed when the run ends; ctrun cleanup removes
 * those of stale runs.  A host with cgroup v1 only, or where ctrun may not
 * create a cgroup (not root, no delegated subtree), has none: ctrun then
 * samples the tree. */
#include "contain.h"

#ifdef __linux__

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

struct ctrun_os_cgroup {
  int dir;                /* the run's cgroup, O_PATH | O_DIRECTORY */
  char path[PATH_MAX];    /* its absolute path, for the registry */
  uint64_t oom_kills_before;
};

static ssize_t read_at(int dir, const char *name, char *buf, size_t size) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
  ssize_t n, got = 0;
  if (fd < 0)
    return -errno;
  while ((size_t)got < size - 1 && (n = read(fd, buf + got, size - 1 - (size_t)got)) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      got = -errno;
      break;
    }
    got += n;
  }
  close(fd);
  if (got >= 0)
    buf[got] = '\0';
  return got;
}

static int write_at(int dir, const char *name, const char *text) {
  int fd = openat(dir, name, O_WRONLY | O_CLOEXEC), r = 0;
  if (fd < 0)
    return -errno;
  if (write(fd, text, strlen(text)) < 0)
    r = -errno;
  close(fd);
  return r;
}

/* The number after "KEY " at the start of a line of TEXT; 0 if none. */
static uint64_t field(const char *text, const char *key) {
  size_t n = strlen(key);
  for (const char *s = text; s != NULL && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL)
    if (strncmp(s, key, n) == 0 && s[n] == ' ')
      return strtoull(s + n + 1, NULL, 10);
  return 0;
}

/* Whether WORD is one of the space-separated words of TEXT. */
static bool has_word(const char *text, const char *word) {
  size_t n = strlen(word);
  for (const char *s = text; (s = strstr(s, word)) != NULL; s += n)
    if ((s == text || s[-1] == ' ') && (s[n] == ' ' || s[n] == '\n' || s[n] == '\0'))
      return true;
  return false;
}

/* Where cgroup v2 is mounted ("/sys/fs/cgroup", or ".../unified" on a
 * hybrid host) in MOUNT, and ctrun's own cgroup in it in PATH, without a
 * trailing slash; 0 or UV_ENOSYS. */
static int own_cgroup(char *path, size_t size, char mount[PATH_MAX]) {
  char buf[8192], *line, *save;
  int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  ssize_t n;
  if (fd < 0)
    return UV_ENOSYS;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return UV_ENOSYS;
  buf[n] = '\0';
  mount[0] = '\0';
  /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE ..." */
  for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    char root[PATH_MAX], point[PATH_MAX];
    const char *dash = strstr(line, " - ");
    if (dash == NULL || strncmp(dash + 3, "cgroup2 ", 8) != 0)
      continue;
    if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, point) == 2 && strcmp(root, "/") == 0) {
      snprintf(mount, PATH_MAX, "%s", point);
      break;
    }
  }
  if (mount[0] == '\0')
    return UV_ENOSYS; /* cgroup v1 only */
  fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return UV_ENOSYS;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return UV_ENOSYS;
  buf[n] = '\0';
  line = strstr(buf, "0::");
  if (line == NULL || (line != buf && line[-1] != '\n'))
    return UV_ENOSYS;
  line += 3;
  line[strcspn(line, "\n")] = '\0';
  if (strcmp(line, "/") == 0)
    line[0] = '\0';
  if (strstr(line, "/..") != NULL || snprintf(path, size, "%s%s", mount, line) >= (int)size)
    return UV_ENOSYS;
  return 0;
}

int ctrun_os_cgroup_new(const char *id, const struct ctrun_limits *l, bool *kernel,
                        struct ctrun_os_cgroup **out) {
  struct ctrun_os_cgroup *cg;
  char own[PATH_MAX], mount[PATH_MAX], text[512], num[32];
  bool mem, pids;
  int fd;

  *kernel = false;
  if (own_cgroup(own, sizeof own, mount) != 0)
    return UV_ENOSYS;
  cg = calloc(1, sizeof *cg);
  if (cg == NULL)
    return UV_ENOMEM;
  if (snprintf(cg->path, sizeof cg->path, "%s/ctrun-%s", own, id) >=
          (int)sizeof cg->path ||
      mkdir(cg->path, 0755) != 0) {
    free(cg);
    return UV_ENOSYS; /* not ours to create here */
  }
  cg->dir = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  /* Usable only if the command can be moved in: a cgroup ctrun may make
   * but not fill (a delegation that stops short) is no use. */
  if (cg->dir < 0 || read_at(cg->dir, "cgroup.events", text, sizeof text) < 0 ||
      (fd = openat(cg->dir, "cgroup.procs", O_WRONLY | O_CLOEXEC)) < 0) {
    ctrun_os_cgroup_free(cg);
    return UV_ENOSYS;
  }
  close(fd);
  /* The controllers enabled for ctrun's cgroup's children: the caps the
   * kernel can hold.  All of them, or none (ctrun then samples). */
  if (read_at(cg->dir, "cgroup.controllers", text, sizeof text) < 0)
    text[0] = '\0';
  mem = has_word(text, "memory");
  pids = has_word(text, "pids");
  if ((l->memory_bytes == 0 || mem) && (l->max_procs == 0 || pids) && l->cpu_time_ms == 0 &&
      (l->memory_bytes != 0 || l->max_procs != 0)) {
    int r = 0;
    if (l->memory_bytes != 0) {
      snprintf(num, sizeof num, "%llu", (unsigned long long)l->memory_bytes);
      r = write_at(cg->dir, "memory.max", num);
      /* Swap would let the tree go past the cap unseen; the whole tree
       * goes when the kernel has to kill for the cap. */
      if (r == 0 && write_at(cg->dir, "memory.swap.max", "0") == -EACCES)
        r = -EACCES;
      if (r == 0)
        r = write_at(cg->dir, "memory.oom.group", "1");
    }
    if (r == 0 && l->max_procs != 0) {
      snprintf(num, sizeof num, "%d", l->max_procs);
      r = write_at(cg->dir, "pids.max", num);
    }
    if (r == 0) {
      *kernel = true;
    } else {
      write_at(cg->dir, "memory.max", "max");
      write_at(cg->dir, "pids.max", "max");
    }
  }
  *out = cg;
  return 0;
}

const char *ctrun_os_cgroup_path(const struct ctrun_os_cgroup *cg) { return cg->path; }

int ctrun_os_cgroup_add(struct ctrun_os_cgroup *cg, pid_t pid) {
  char num[32];
  snprintf(num, sizeof num, "%d", (int)pid);
  return write_at(cg->dir, "cgroup.procs", num);
}

int ctrun_os_cgroup_kill(struct ctrun_os_cgroup *cg) {
  return write_at(cg->dir, "cgroup.kill", "1");
}

int ctrun_os_cgroup_populated(struct ctrun_os_cgroup *cg) {
  char text[256];
  ssize_t n = read_at(cg->dir, "cgroup.events", text, sizeof text);
  if (n < 0)
    return (int)n;
  return field(text, "populated") != 0;
}

enum ctrun_limit ctrun_os_cgroup_limit_hit(struct ctrun_os_cgroup *cg) {
  char text[512];
  if (read_at(cg->dir, "memory.events", text, sizeof text) > 0 &&
      (field(text, "oom_kill") > 0 || field(text, "oom_group_kill") > 0))
    return CTRUN_LIMIT_MEMORY;
  if (read_at(cg->dir, "pids.events", text, sizeof text) > 0 && field(text, "max") > 0)
    return CTRUN_LIMIT_PROCS;
  return CTRUN_LIMIT_NONE;
}

void ctrun_os_cgroup_usage(struct ctrun_os_cgroup *cg, struct ctrun_usage *u) {
  char text[1024];
  if (read_at(cg->dir, "cpu.stat", text, sizeof text) > 0) {
    u->cpu_user_ms = field(text, "user_usec") / 1000;
    u->cpu_sys_ms = field(text, "system_usec") / 1000;
  }
  if (read_at(cg->dir, "memory.peak", text, sizeof text) > 0) {
    u->peak_rss_bytes = strtoull(text, NULL, 10);
    u->peak_is_tree = true;
  }
}

/* Remove the cgroup at PATH: kill what is in it, wait for it to empty
 * (bounded), then rmdir.  Returns 0 or a negative errno. */
static int remove_path(const char *path) {
  for (int i = 0; i < 100; i++) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
      return errno == ENOENT ? 0 : -errno;
    if (i == 0 || i % 20 == 0)
      write_at(fd, "cgroup.kill", "1");
    close(fd);
    if (rmdir(path) == 0 || errno == ENOENT)
      return 0;
    if (errno != EBUSY)
      return -errno;
    usleep(10000);
  }
  return -EBUSY;
}

void ctrun_os_cgroup_free(struct ctrun_os_cgroup *cg) {
  if (cg == NULL)
    return;
  if (cg->dir >= 0)
    close(cg->dir);
  remove_path(cg->path);
  free(cg);
}

int ctrun_os_cgroup_remove_stale(const char *path, const char *id) {
  char own[PATH_MAX], mount[PATH_MAX], name[64];
  const char *slash = strrchr(path, '/');
  size_t m;
  /* Only a cgroup of ctrun's naming, for this run, on the cgroup v2 mount. */
  snprintf(name, sizeof name, "ctrun-%s", id);
  if (slash == NULL || strcmp(slash + 1, name) != 0 || strstr(path, "/..") != NULL ||
      own_cgroup(own, sizeof own, mount) != 0 || strncmp(path, mount, m = strlen(mount)) != 0 ||
      path[m] != '/')
    return 0;
  return remove_path(path);
}

#else /* no cgroups */

int ctrun_os_cgroup_new(const char *id, const struct ctrun_limits *l, bool *kernel,
                        struct ctrun_os_cgroup **out) {
  (void)id;
  (void)l;
  (void)out;
  *kernel = false;
  return UV_ENOSYS;
}
const char *ctrun_os_cgroup_path(const struct ctrun_os_cgroup *cg) { (void)cg; return ""; }
int ctrun_os_cgroup_add(struct ctrun_os_cgroup *cg, pid_t pid) { (void)cg; (void)pid; return UV_ENOSYS; }
int ctrun_os_cgroup_kill(struct ctrun_os_cgroup *cg) { (void)cg; return UV_ENOSYS; }
int ctrun_os_cgroup_populated(struct ctrun_os_cgroup *cg) { (void)cg; return UV_ENOSYS; }
enum ctrun_limit ctrun_os_cgroup_limit_hit(struct ctrun_os_cgroup *cg) {
  (void)cg;
  return CTRUN_LIMIT_NONE;
}
void ctrun_os_cgroup_usage(struct ctrun_os_cgroup *cg, struct ctrun_usage *u) {
  (void)cg;
  (void)u;
}
void ctrun_os_cgroup_free(struct ctrun_os_cgroup *cg) { (void)cg; }
int ctrun_os_cgroup_remove_stale(const char *path, const char *id) {
  (void)path;
  (void)id;
  return 0;
}

#endif
