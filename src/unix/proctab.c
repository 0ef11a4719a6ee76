/* The process table, read once and used for many questions: which
 * processes descend from a supervisor, which remain of a stale run. */
#include "contain.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "ctrun/proc.h"
#include "ctrun/registry.h"

struct ctrun_proctab {
  struct ctrun_pinfo *v; /* sorted by pid */
  size_t n;
  int *desc;        /* live descendants of each row */
  char (*tag)[CTRUN_ID_LEN + 1];
  bool tags_loaded;
  char boot_id[40];
};

static int by_pid(const void *a, const void *b) {
  pid_t x = ((const struct ctrun_pinfo *)a)->pid, y = ((const struct ctrun_pinfo *)b)->pid;
  return (x > y) - (x < y);
}

static long find(const struct ctrun_proctab *tab, pid_t pid) {
  size_t lo = 0, hi = tab->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (tab->v[mid].pid == pid)
      return (long)mid;
    if (tab->v[mid].pid < pid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

struct ctrun_proctab *ctrun_proctab_load(void) {
  struct ctrun_proctab *tab = calloc(1, sizeof *tab);
  if (tab == NULL)
    return NULL;
  if (ctrun_os_proc_list(&tab->v, &tab->n) != 0) {
    free(tab);
    return NULL;
  }
  qsort(tab->v, tab->n, sizeof *tab->v, by_pid);
  tab->desc = calloc(tab->n + 1, sizeof *tab->desc);
  tab->tag = calloc(tab->n + 1, sizeof *tab->tag);
  if (tab->desc == NULL || tab->tag == NULL) {
    ctrun_proctab_free(tab);
    return NULL;
  }
  /* Credit every live process to each of its ancestors; the depth bound
   * guards against a torn snapshot that looks like a cycle. */
  for (size_t i = 0; i < tab->n; i++) {
    if (tab->v[i].zombie)
      continue;
    long a = find(tab, tab->v[i].ppid);
    for (size_t depth = 0; a >= 0 && depth < tab->n; depth++) {
      tab->desc[a]++;
      if (tab->v[a].ppid <= 1)
        break;
      a = find(tab, tab->v[a].ppid);
    }
  }
  ctrun_os_boot_id(tab->boot_id, sizeof tab->boot_id);
  return tab;
}

void ctrun_proctab_free(struct ctrun_proctab *tab) {
  if (tab == NULL)
    return;
  free(tab->v);
  free(tab->desc);
  free(tab->tag);
  free(tab);
}

static void load_tags(struct ctrun_proctab *tab) {
  if (tab->tags_loaded)
    return;
  for (size_t i = 0; i < tab->n; i++)
    if (tab->v[i].zombie || ctrun_os_proc_tag(tab->v[i].pid, tab->tag[i], sizeof tab->tag[i]) != 0)
      tab->tag[i][0] = '\0';
  tab->tags_loaded = true;
}

/* Whether the recorded process group still belongs to run E: its leader is
 * the recorded process, or a member carries the run's tag.  A group id
 * alone could have been reused by strangers. */
static bool group_is_ours(struct ctrun_proctab *tab, const struct ctrun_entry *e) {
  long leader;
  if (e->pgid <= 1)
    return false;
  leader = find(tab, (pid_t)e->pgid);
  if (leader >= 0 && e->child_pid == e->pgid && tab->v[leader].start == e->child_start &&
      !tab->v[leader].zombie)
    return true;
  for (size_t i = 0; i < tab->n; i++)
    if (tab->v[i].pgid == e->pgid && strcmp(tab->tag[i], e->id) == 0)
      return true;
  return false;
}

/* Call FN on every remaining process of stale run E. */
static int each_remain(struct ctrun_proctab *tab, const struct ctrun_entry *e,
                       void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg) {
  bool group;
  int n = 0;
  pid_t self = getpid();

  /* A run of an earlier boot cannot have left anything running. */
  if (e->boot_id[0] != '\0' && tab->boot_id[0] != '\0' && strcmp(e->boot_id, tab->boot_id) != 0)
    return 0;
  load_tags(tab);
  group = group_is_ours(tab, e);
  for (size_t i = 0; i < tab->n; i++) {
    const struct ctrun_pinfo *p = &tab->v[i];
    if (p->zombie || p->pid == self || p->pid <= 1)
      continue;
    if (strcmp(tab->tag[i], e->id) == 0 || (group && p->pgid == e->pgid)) {
      n++;
      if (fn)
        fn(p, arg);
    }
  }
  return n;
}

int ctrun_proctab_count(struct ctrun_proctab *tab, const struct ctrun_entry *e) {
  long s;
  if (tab == NULL)
    return -1;
  if (!e->stale) {
    s = find(tab, (pid_t)e->pid);
    if (s < 0 || (e->pid_start != 0 && tab->v[s].start != e->pid_start))
      return 0;
    return tab->desc[s];
  }
  return each_remain(tab, e, NULL, NULL);
}

struct signal_arg { int sig, done; };

static void signal_one(const struct ctrun_pinfo *p, void *arg) {
  struct signal_arg *a = arg;
  if (ctrun_os_signal_verified(p->pid, p->start, a->sig) == 0)
    a->done++;
}

int ctrun_proctab_signal(struct ctrun_proctab *tab, const struct ctrun_entry *e, int sig) {
  struct signal_arg a = { sig, 0 };
  if (tab == NULL)
    return UV_ENOSYS;
  each_remain(tab, e, signal_one, &a);
  return a.done;
}

int ctrun_unix_tagged(const char *id, int sig) {
  struct ctrun_pinfo *v;
  size_t n;
  int found = 0, r = ctrun_os_proc_list(&v, &n);
  pid_t self = getpid();
  char tag[CTRUN_ID_LEN + 1];

  if (r != 0)
    return r;
  for (size_t i = 0; i < n; i++) {
    if (v[i].zombie || v[i].pid == self || v[i].pid <= 1 ||
        ctrun_os_proc_tag(v[i].pid, tag, sizeof tag) != 0 || strcmp(tag, id) != 0)
      continue;
    found++;
    if (sig > 0)
      ctrun_unix_signal_if_same(v[i].pid, v[i].start, sig);
  }
  free(v);
  return found;
}

int ctrun_unix_signal_if_same(pid_t pid, uint64_t start, int sig) {
  uint64_t now;
  int r;
  /* kill() would read 0 and -1 as "my group" and "everyone". */
  if (pid <= 0)
    return UV_EINVAL;
  r = ctrun_os_proc_start(pid, &now);
  if (r != 0)
    return r;
  if (now != start)
    return UV_ESRCH;
  return kill(pid, sig) == 0 ? 0 : -errno;
}

int ctrun_proc_request_stop(const struct ctrun_entry *e) {
  /* Without start times (no process table), the entry lock that the caller
   * found held is what proves the supervisor is this pid. */
  if (e->pid_start == 0)
    return kill((pid_t)e->pid, SIGUSR1) == 0 ? 0 : -errno;
  return ctrun_os_signal_verified((pid_t)e->pid, e->pid_start, SIGUSR1);
}

int ctrun_proc_start_time(long pid, uint64_t *start) {
  return ctrun_os_proc_start((pid_t)pid, start);
}

void ctrun_proc_boot_id(char *buf, size_t size) { ctrun_os_boot_id(buf, size); }

/* The live descendants of this process, deepest last. */
static int descendants(struct ctrun_pinfo **out, size_t *count) {
  struct ctrun_pinfo *v;
  size_t n, k = 0;
  pid_t self = getpid();
  int r = ctrun_os_proc_list(&v, &n);
  if (r != 0)
    return r;
  qsort(v, n, sizeof *v, by_pid);
  struct ctrun_proctab tab = { .v = v, .n = n };
  for (size_t i = 0; i < n; i++) {
    long a = find(&tab, v[i].ppid);
    size_t depth = 0;
    if (v[i].zombie)
      continue;
    while (a >= 0 && v[a].pid != self && v[a].ppid > 1 && depth++ < n)
      a = find(&tab, v[a].ppid);
    if (v[i].ppid == self || (a >= 0 && v[a].pid == self))
      v[k++] = v[i];
  }
  *out = v;
  *count = k;
  return 0;
}

int ctrun_unix_members(pid_t pgid, struct ctrun_pinfo **out, size_t *count) {
  struct ctrun_pinfo *v;
  size_t n, k = 0;
  pid_t self = getpid();
  int r;
  /* Without a group to look for, a walk down from here is enough. */
  if (pgid == 0 && (r = ctrun_os_descendants(&v, &n)) != UV_ENOSYS) {
    if (r != 0)
      return r;
    for (size_t i = 0; i < n; i++)
      if (!v[i].zombie)
        v[k++] = v[i];
    *out = v;
    *count = k;
    return 0;
  }
  r = ctrun_os_proc_list(&v, &n);
  if (r != 0)
    return r;
  qsort(v, n, sizeof *v, by_pid);
  struct ctrun_proctab tab = { .v = v, .n = n };
  for (size_t i = 0; i < n; i++) {
    long a = find(&tab, v[i].ppid);
    size_t depth = 0;
    if (v[i].zombie || v[i].pid == self)
      continue;
    if (pgid > 0 && v[i].pgid == pgid) {
      v[k++] = v[i];
      continue;
    }
    while (a >= 0 && v[a].pid != self && v[a].ppid > 1 && depth++ < n)
      a = find(&tab, v[a].ppid);
    if (v[i].ppid == self || (a >= 0 && v[a].pid == self))
      v[k++] = v[i];
  }
  *out = v;
  *count = k;
  return 0;
}

int ctrun_unix_signal_descendants(int sig) {
  struct ctrun_pinfo *v;
  size_t n;
  int r = descendants(&v, &n);
  if (r != 0)
    return r;
  for (size_t i = 0; i < n; i++)
    kill(v[i].pid, sig);
  free(v);
  return (int)n;
}

int ctrun_unix_count_descendants(void) {
  struct ctrun_pinfo *v;
  size_t n;
  int r = descendants(&v, &n);
  if (r != 0)
    return r;
  free(v);
  return (int)n;
}
