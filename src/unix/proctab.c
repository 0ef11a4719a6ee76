/* The process table, read once and used for many questions: which
 * processes descend from a supervisor, which remain of a stale run. */
#include "contain.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "ctrun/msg.h"
#include "ctrun/proc.h"
#include "ctrun/registry.h"

struct ctrun_proctab {
  struct ctrun_pinfo *v; /* sorted by pid */
  size_t n;
  int *desc;        /* live descendants of each row */
  uint64_t *rss;    /* their resident memory together */
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

/* A row and its run tag, as the table is read. */
struct tagged_row {
  struct ctrun_pinfo p;
  char tag[CTRUN_ID_LEN + 1];
};

struct collect {
  struct tagged_row *v;
  size_t n, cap;
  bool tags, failed;
};

static void collect_row(const struct ctrun_pinfo *p, void *arg) {
  struct collect *c = arg;
  struct tagged_row *r;
  if (c->failed)
    return;
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 256;
    struct tagged_row *bigger = realloc(c->v, cap * sizeof *bigger);
    if (bigger == NULL) {
      c->failed = true;
      return;
    }
    c->v = bigger;
    c->cap = cap;
  }
  r = &c->v[c->n++];
  r->p = *p;
  r->tag[0] = '\0';
  /* Read at once, while the process surely still runs: one that forks a
   * successor and exits is gone a moment later. */
  if (c->tags && !p->zombie && ctrun_os_proc_tag(p->pid, r->tag, sizeof r->tag) != 0)
    r->tag[0] = '\0';
}

static int by_row_pid(const void *a, const void *b) {
  return by_pid(&((const struct tagged_row *)a)->p, &((const struct tagged_row *)b)->p);
}

/* (Re)read TAB from the process table, with the run tags if TAGS. */
static int fill(struct ctrun_proctab *tab, bool tags) {
  struct collect c = { NULL, 0, 0, tags, false };
  int r = ctrun_os_proc_each(collect_row, &c);
  if (r == 0 && c.failed)
    r = UV_ENOMEM;
  if (r != 0) {
    free(c.v);
    return r;
  }
  qsort(c.v, c.n, sizeof *c.v, by_row_pid);
  free(tab->v);
  free(tab->desc);
  free(tab->rss);
  free(tab->tag);
  tab->n = c.n;
  tab->v = malloc((c.n + 1) * sizeof *tab->v);
  tab->desc = calloc(c.n + 1, sizeof *tab->desc);
  tab->rss = calloc(c.n + 1, sizeof *tab->rss);
  tab->tag = calloc(c.n + 1, sizeof *tab->tag);
  if (tab->v == NULL || tab->desc == NULL || tab->rss == NULL || tab->tag == NULL) {
    free(c.v);
    tab->n = 0;
    return UV_ENOMEM;
  }
  for (size_t i = 0; i < c.n; i++) {
    tab->v[i] = c.v[i].p;
    memcpy(tab->tag[i], c.v[i].tag, sizeof tab->tag[i]);
  }
  free(c.v);
  /* Credit every live process to each of its ancestors, up to the top
   * (pid 1 too: a supervisor may be PID 1 of a namespace); the depth bound
   * guards against a torn snapshot that looks like a cycle. */
  for (size_t i = 0; i < tab->n; i++) {
    if (tab->v[i].zombie)
      continue;
    long a = find(tab, tab->v[i].ppid);
    for (size_t depth = 0; a >= 0 && depth < tab->n; depth++) {
      tab->desc[a]++;
      tab->rss[a] += tab->v[i].rss_bytes;
      a = find(tab, tab->v[a].ppid);
    }
  }
  tab->tags_loaded = tags;
  return 0;
}

struct ctrun_proctab *ctrun_proctab_load(bool tags) {
  struct ctrun_proctab *tab = calloc(1, sizeof *tab);
  if (tab == NULL)
    return NULL;
  if (fill(tab, tags) != 0) {
    ctrun_proctab_free(tab);
    return NULL;
  }
  ctrun_os_boot_id(tab->boot_id, sizeof tab->boot_id);
  return tab;
}

void ctrun_proctab_free(struct ctrun_proctab *tab) {
  if (tab == NULL)
    return;
  free(tab->v);
  free(tab->desc);
  free(tab->rss);
  free(tab->tag);
  free(tab);
}

/* The run tags are read only when a stale run asks for them, and then
 * with the table read again, each tag right after its row. */
static void load_tags(struct ctrun_proctab *tab) {
  if (!tab->tags_loaded)
    fill(tab, true);
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

/* Whether stale run E may have left anything: a run of an earlier boot
 * cannot have. */
static bool this_boot(const struct ctrun_proctab *tab, const struct ctrun_entry *e) {
  return e->boot_id[0] == '\0' || tab->boot_id[0] == '\0' || strcmp(e->boot_id, tab->boot_id) == 0;
}

/* How many processes remain of stale run E, and their memory in *RSS. */
static int count_remains(struct ctrun_proctab *tab, const struct ctrun_entry *e, uint64_t *rss) {
  bool group;
  int n = 0;
  pid_t self = getpid();

  *rss = 0;
  if (!this_boot(tab, e))
    return 0;
  load_tags(tab);
  group = group_is_ours(tab, e);
  for (size_t i = 0; i < tab->n; i++) {
    const struct ctrun_pinfo *p = &tab->v[i];
    if (p->zombie || p->pid == self || p->pid <= 1)
      continue;
    if (strcmp(tab->tag[i], e->id) == 0 || (group && p->pgid == e->pgid)) {
      n++;
      *rss += p->rss_bytes;
    }
  }
  return n;
}

/* The row of live run E's supervisor, or -1. */
static long supervisor(struct ctrun_proctab *tab, const struct ctrun_entry *e) {
  long s = find(tab, (pid_t)e->pid);
  return s < 0 || (e->pid_start != 0 && tab->v[s].start != e->pid_start) ? -1 : s;
}

uint64_t ctrun_proctab_rss(struct ctrun_proctab *tab, const struct ctrun_entry *e) {
  uint64_t rss = 0;
  long s;
  if (tab == NULL)
    return 0;
  if (!e->stale)
    return (s = supervisor(tab, e)) < 0 ? 0 : tab->rss[s];
  count_remains(tab, e, &rss);
  return rss;
}

int ctrun_proctab_count(struct ctrun_proctab *tab, const struct ctrun_entry *e) {
  uint64_t rss;
  long s;
  if (tab == NULL)
    return -1;
  if (!e->stale)
    return (s = supervisor(tab, e)) < 0 ? 0 : tab->desc[s];
  return count_remains(tab, e, &rss);
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

int ctrun_proc_request_stop(struct ctrun_dir *dir, const struct ctrun_entry *e) {
  int fd, r;
  if (e->pid_start != 0)
    return ctrun_os_signal_verified((pid_t)e->pid, e->pid_start, SIGUSR1);
  fd = ctrun_registry_open(dir, e->id);
  if (fd < 0)
    return fd == UV_ENOENT ? UV_ESRCH : fd;
  r = ctrun_os_signal_signer(fd, (pid_t)e->pid, SIGUSR1);
  ctrun_fd_close(fd);
  /* Neither start times nor signatures (the generic host): the entry lock
   * that the caller found held is what proves the supervisor is this pid. */
  if (r == UV_ENOSYS)
    r = kill((pid_t)e->pid, SIGUSR1) == 0 ? 0 : -errno;
  return r;
}

int ctrun_proc_sign_entry(int fd) { return ctrun_os_sign_entry(fd); }

int ctrun_proc_start_time(long pid, uint64_t *start) {
  return ctrun_os_proc_start((pid_t)pid, start);
}

void ctrun_proc_boot_id(char *buf, size_t size) { ctrun_os_boot_id(buf, size); }

/* ---- The tree of a live run ------------------------------------------- */

static size_t slot_of(pid_t pid, size_t cap) {
  return (size_t)((uint32_t)pid * 2654435761u) & (cap - 1);
}

static struct ctrun_pidslot *set_find(const struct ctrun_pidset *m, pid_t pid) {
  /* 0 marks a free slot: no process has it.  A parent pid of 0 (a
   * process entered into the namespace from outside, or the namespace's
   * init) must find no row, not the first free slot's. */
  if (m->cap == 0 || pid <= 0)
    return NULL;
  for (size_t i = slot_of(pid, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->s[i].pid == pid)
      return &m->s[i];
    if (m->s[i].pid == 0)
      return NULL;
  }
}

/* Whether P (by pid and start time) is in M. */
static bool set_has(const struct ctrun_pidset *m, const struct ctrun_pinfo *p) {
  const struct ctrun_pidslot *s = set_find(m, p->pid);
  return s != NULL && s->start == p->start;
}

/* Put PID in M (replacing what was there under that pid).  -1: no memory,
 * and the set is unchanged. */
static int set_put(struct ctrun_pidset *m, pid_t pid, uint64_t start, size_t val) {
  struct ctrun_pidslot *s;
  if (pid <= 0)
    return UV_EINVAL; /* 0 marks a free slot */
  if (2 * (m->n + 1) > m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 64;
    struct ctrun_pidslot *bigger = calloc(cap, sizeof *bigger), *old = m->s;
    size_t oldcap = m->cap;
    if (bigger == NULL)
      return -1;
    m->s = bigger;
    m->cap = cap;
    m->n = 0;
    for (size_t i = 0; i < oldcap; i++)
      if (old[i].pid != 0)
        set_put(m, old[i].pid, old[i].start, old[i].val);
    free(old);
  }
  s = set_find(m, pid);
  if (s == NULL) {
    for (size_t i = slot_of(pid, m->cap);; i = (i + 1) & (m->cap - 1))
      if (m->s[i].pid == 0) {
        s = &m->s[i];
        break;
      }
    m->n++;
  }
  s->pid = pid;
  s->start = start;
  s->val = val;
  return 0;
}

static void set_free(struct ctrun_pidset *m) {
  free(m->s);
  memset(m, 0, sizeof *m);
}

/* What a process is to the run. */
enum { UNKNOWN, OURS, FOREIGN, OUTSIDE };

/* One pass over the process table. */
struct pass {
  struct ctrun_unix_tree *u;
  bool tagged;
  int sig;
  pid_t self;
  struct row { struct ctrun_pinfo p; int cls; } *rows;
  size_t n, cap;
  pid_t self_sid;
  struct ctrun_pidset index;      /* pid -> row */
  struct ctrun_pidset *signalled; /* by this walk, over all its passes */
  struct ctrun_pidset *groups;    /* process groups signalled as a whole */
  int members, fresh;
  bool failed;
};

/* A direct child of ctrun: the command's, unless ctrun had children
 * before the run.  Then it is the run's if it is the command, or was seen
 * as the run's, or (an orphan never seen before) carries the run's tag. */
static int top_class(struct pass *w, const struct ctrun_pinfo *p) {
  struct ctrun_unix_tree *u = w->u;
  char tag[CTRUN_ID_LEN + 1];
  int r;
  if (!u->mixed || p->pid == u->command || set_has(&u->ours, p))
    return OURS;
  if (set_has(&u->foreign, p))
    return FOREIGN;
  r = ctrun_os_proc_tag(p->pid, tag, sizeof tag);
  /* Unreadable (another user's): rather waited for than left behind. */
  if (r == UV_EACCES || (r == 0 && strcmp(tag, u->run_id) == 0))
    return OURS;
  return FOREIGN;
}

/* Signal the process group of member P as a whole, once per walk, where
 * every process in it is the run's: the command's group, or one in a
 * session that a process of the run created (no other process can enter
 * such a session).  kill() on a group reaches at once every member, one
 * being forked included, so that a process hopping from pid to pid
 * within its group cannot slip past. */
static void signal_group(struct pass *w, const struct ctrun_pinfo *p) {
  if (p->pgid <= 1 || (p->pgid != w->u->command && (p->sid <= 0 || p->sid == w->self_sid)))
    return;
  if (set_find(w->groups, p->pgid) != NULL || set_put(w->groups, p->pgid, 0, 0) != 0)
    return;
  kill(-p->pgid, w->sig);
}

/* Signal a member of the run, once per walk; say so, once, of a member
 * ctrun may not signal. */
static void act(struct pass *w, struct row *r) {
  w->members++;
  if (w->sig <= 0 || set_has(w->signalled, &r->p))
    return;
  if (set_put(w->signalled, r->p.pid, r->p.start, 0) != 0) {
    w->failed = true;
    return;
  }
  w->fresh++;
  signal_group(w, &r->p);
  if (kill(r->p.pid, w->sig) == 0 || errno != EPERM || set_has(&w->u->denied, &r->p))
    return;
  set_put(&w->u->denied, r->p.pid, r->p.start, 0);
  ctrun_error("cannot signal process %d of run %s: %s; it is not ctrun's to stop, and the run "
              "lasts as long as it does",
              (int)r->p.pid, w->u->run_id, strerror(EPERM));
}

static void on_row(const struct ctrun_pinfo *p, void *arg) {
  struct pass *w = arg;
  struct row *r;
  char tag[CTRUN_ID_LEN + 1];

  if (p->zombie && p->ppid == w->self && p->pid != w->u->command && w->u->command != 0)
    waitpid(p->pid, NULL, WNOHANG); /* lest a hopper's past selves fill the table */
  if (w->failed || p->zombie || p->pid == w->self || p->pid <= 0)
    return;
  if (w->n == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 256;
    struct row *bigger = realloc(w->rows, cap * sizeof *bigger);
    if (bigger == NULL) {
      w->failed = true;
      return;
    }
    w->rows = bigger;
    w->cap = cap;
  }
  r = &w->rows[w->n];
  r->p = *p;
  if (w->tagged) {
    r->cls = (w->u->command > 0 && p->pgid == w->u->command) ||
                     (ctrun_os_proc_tag(p->pid, tag, sizeof tag) == 0 &&
                      strcmp(tag, w->u->run_id) == 0)
                 ? OURS
                 : OUTSIDE;
  } else if (p->ppid == w->self) {
    r->cls = top_class(w, p);
  } else {
    struct ctrun_pidslot *parent = set_find(&w->index, p->ppid);
    r->cls = parent != NULL ? w->rows[parent->val].cls : UNKNOWN;
  }
  if (set_put(&w->index, p->pid, p->start, w->n) != 0) {
    w->failed = true;
    return;
  }
  w->n++;
  /* Signalled at once: a process that forks and exits is not given the
   * time of a whole listing to do so. */
  if (r->cls == OURS)
    act(w, r);
}

/* The class of row I, from its ancestors: rows read before their parent
 * (pids wrap) are placed once the whole table has been read. */
static int resolve(struct pass *w, size_t i, size_t depth) {
  struct row *r = &w->rows[i];
  struct ctrun_pidslot *parent;
  if (r->cls != UNKNOWN)
    return r->cls;
  if (depth > w->n || (parent = set_find(&w->index, r->p.ppid)) == NULL)
    r->cls = OUTSIDE; /* its line of ancestors does not reach ctrun */
  else
    r->cls = resolve(w, parent->val, depth + 1);
  if (r->cls == OURS)
    act(w, r);
  return r->cls;
}

/* Remember which processes are whose, for orphans whose line is gone. */
static void remember(struct pass *w) {
  struct ctrun_unix_tree *u = w->u;
  set_free(&u->ours);
  set_free(&u->foreign);
  for (size_t i = 0; i < w->n; i++)
    if (w->rows[i].cls == OURS || w->rows[i].cls == FOREIGN)
      set_put(w->rows[i].cls == OURS ? &u->ours : &u->foreign, w->rows[i].p.pid,
              w->rows[i].p.start, 0);
}

/* One pass: returns 0 or a negative error; fills W's counts. */
static int pass(struct pass *w) {
  int r;
  w->n = 0;
  w->members = w->fresh = 0;
  set_free(&w->index);
  w->self = getpid();
  w->self_sid = getsid(0);
  r = ctrun_os_proc_each(on_row, w);
  if (r != 0)
    return r;
  if (w->failed)
    return UV_ENOMEM;
  for (size_t i = 0; i < w->n; i++)
    resolve(w, i, 0);
  if (w->u->mixed && !w->tagged)
    remember(w);
  return w->failed ? UV_ENOMEM : 0;
}

/* A signal goes out until a pass finds no member it has not yet signalled,
 * for at most this many passes or this long. */
#define WALK_PASSES 32
#define WALK_MS 250
/* How many of the newest pids a pass over a stale run's remains reads
 * first. */
#define NEWEST_PIDS 16

int ctrun_unix_tree_walk(struct ctrun_unix_tree *u, bool tagged, int sig) {
  struct ctrun_pidset signalled = { NULL, 0, 0 }, groups = { NULL, 0, 0 };
  struct pass w;
  uint64_t t0 = uv_hrtime();
  int r;

  memset(&w, 0, sizeof w);
  w.u = u;
  w.tagged = tagged;
  w.sig = sig;
  w.signalled = &signalled;
  w.groups = &groups;
  /* Two quiet passes in a row: one pass can miss a process that hops
   * just as its row is read. */
  for (int i = 0, quiet = 0; i < WALK_PASSES; i++) {
    r = pass(&w);
    quiet = w.fresh == 0 ? quiet + 1 : 0;
    if (r != 0 || sig <= 0 || quiet == 2 || uv_hrtime() - t0 > (uint64_t)WALK_MS * 1000000)
      break;
  }
  if (r == 0)
    r = sig > 0 ? (int)signalled.n : w.members;
  free(w.rows);
  set_free(&w.index);
  set_free(&signalled);
  set_free(&groups);
  return r;
}

int ctrun_unix_tree_list(struct ctrun_unix_tree *u, bool tagged, struct ctrun_pinfo **v,
                         size_t *n) {
  struct pass w;
  size_t k = 0;
  int r;

  /* A reaper that had no children before the run: everything below it
   * is the run's, and a walk down (where the host has one) costs what
   * the tree's size costs, not the machine's. */
  if (!tagged && !u->mixed && (r = ctrun_os_descendants(v, n)) != UV_ENOSYS) {
    if (r != 0)
      return r;
    for (size_t i = 0; i < *n; i++)
      if (!(*v)[i].zombie)
        (*v)[k++] = (*v)[i];
    *n = k;
    return 0;
  }
  memset(&w, 0, sizeof w);
  w.u = u;
  w.tagged = tagged;
  r = pass(&w);
  set_free(&w.index);
  if (r == 0 && (*v = malloc((w.n + 1) * sizeof **v)) == NULL)
    r = UV_ENOMEM;
  for (size_t i = 0; r == 0 && i < w.n; i++)
    if (w.rows[i].cls == OURS)
      (*v)[k++] = w.rows[i].p;
  free(w.rows);
  *n = k;
  return r;
}

/* Every process below ctrun now is no part of the run to come. */
static void note_foreign(const struct ctrun_pinfo *p, void *arg) {
  struct pass *w = arg;
  on_row(p, w);
}

void ctrun_unix_tree_init(struct ctrun_unix_tree *u) {
  struct pass w;
  memset(u, 0, sizeof *u);
  /* Children already (a shell exec'd ctrun and keeps its jobs)?  One
   * system call says; the table is read only then. */
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD)
    return;
  u->mixed = true;
  memset(&w, 0, sizeof w);
  w.u = u;
  w.self = getpid();
  /* Before the run, anything found below is foreign: mark the direct
   * children so, and their descendants follow. */
  u->command = -1;
  if (ctrun_os_proc_each(note_foreign, &w) == 0 && !w.failed) {
    for (size_t i = 0; i < w.n; i++)
      resolve(&w, i, 0);
    for (size_t i = 0; i < w.n; i++)
      if (w.rows[i].cls != OUTSIDE)
        set_put(&u->foreign, w.rows[i].p.pid, w.rows[i].p.start, 0);
  }
  u->command = 0;
  free(w.rows);
  set_free(&w.index);
}

void ctrun_unix_tree_free(struct ctrun_unix_tree *u) {
  set_free(&u->foreign);
  set_free(&u->ours);
  set_free(&u->denied);
}

/* ---- What remains of a stale run ---------------------------------------- */

struct remains {
  const struct ctrun_entry *e;
  bool group; /* the recorded group is still the run's */
  int sig, fresh, done;
  pid_t self, own_group;
  struct ctrun_pidset signalled;
  struct ctrun_pidset groups;  /* sessions' groups signalled as a whole */
  struct ctrun_pidset foreign; /* rows whose tag was read: not the run's */
};

/* A remain P that leads-group of a session of its own (it or an ancestor
 * called setsid): its group is signalled as a whole, once, so that a
 * process hopping from pid to pid there is reached at once, however fast
 * it hops.  Not when the group's leader lives and is not the run's: that
 * is a session the run did not make (a login shell's), which a process of
 * the run may have joined. */
static void signal_session_group(struct remains *w, const struct ctrun_pinfo *p) {
  char tag[CTRUN_ID_LEN + 1];
  uint64_t start;
  if (p->sid <= 1 || p->pgid != p->sid || p->pgid == w->own_group || p->pgid == w->e->pgid ||
      set_find(&w->groups, p->pgid) != NULL)
    return;
  if (p->pgid != p->pid && ctrun_os_proc_start(p->pgid, &start) == 0 &&
      (ctrun_os_proc_tag(p->pgid, tag, sizeof tag) != 0 || strcmp(tag, w->e->id) != 0))
    return;
  if (set_put(&w->groups, p->pgid, 0, 0) == 0)
    kill(-p->pgid, w->sig);
}

/* A remain of the run is signalled as soon as it is read, and once.  A
 * process's tag is read once over all passes (the passes after the first
 * read only the processes born since); its group every time, as a process
 * may join the run's group after its tag was read. */
static void on_remain(const struct ctrun_pinfo *p, void *arg) {
  struct remains *w = arg;
  char tag[CTRUN_ID_LEN + 1];
  int r;
  if (p->zombie || p->pid == w->self || p->pid <= 1 || set_has(&w->signalled, p))
    return;
  if (!(w->group && p->pgid == w->e->pgid)) {
    if (set_has(&w->foreign, p))
      return;
    r = ctrun_os_proc_tag(p->pid, tag, sizeof tag);
    if (r != 0 || strcmp(tag, w->e->id) != 0) {
      if (r != UV_ESRCH)
        set_put(&w->foreign, p->pid, p->start, 0); /* no memory: read again */
      return;
    }
  }
  signal_session_group(w, p);
  if (set_put(&w->signalled, p->pid, p->start, 0) != 0)
    return;
  w->fresh++;
  if (ctrun_os_signal_verified(p->pid, p->start, w->sig) == 0)
    w->done++;
}

/* Read the table again and again, FN on each row as soon as it is read,
 * until two passes in a row find nothing new (FN leaves *FRESH at 0), for
 * at most WALK_PASSES passes or WALK_MS: one pass can miss a process that
 * hops from pid to pid just as its row is read.  The newest pids first: a
 * hopper is there, and gone from its row before a pass in pid order
 * reaches it when the host is loaded.  FN must judge each row by itself
 * (no ancestry): the rows come in no order. */
static int read_until_quiet(void (*fn)(const struct ctrun_pinfo *p, void *arg), void *arg,
                            int *fresh) {
  uint64_t t0 = uv_hrtime();
  int r = 0;
  for (int i = 0, quiet = 0; i < WALK_PASSES && quiet < 2; i++) {
    *fresh = 0;
    ctrun_os_proc_newest(fn, arg, NEWEST_PIDS);
    if ((r = ctrun_os_proc_each(fn, arg)) != 0)
      break;
    quiet = *fresh == 0 ? quiet + 1 : 0;
    if (uv_hrtime() - t0 > (uint64_t)WALK_MS * 1000000)
      break;
  }
  return r;
}

int ctrun_proctab_signal(struct ctrun_proctab *tab, const struct ctrun_entry *e, int sig) {
  struct remains w;
  int r;

  if (tab == NULL)
    return UV_ENOSYS;
  if (!this_boot(tab, e))
    return 0;
  load_tags(tab);
  memset(&w, 0, sizeof w);
  w.e = e;
  w.group = group_is_ours(tab, e);
  w.sig = sig;
  w.self = getpid();
  w.own_group = getpgrp();
  /* Not from TAB, read before: each remain is signalled as it is read. */
  r = read_until_quiet(on_remain, &w, &w.fresh);
  set_free(&w.signalled);
  set_free(&w.groups);
  set_free(&w.foreign);
  return r != 0 ? r : w.done;
}

/* ---- Remains one listing missed ----------------------------------------- */

/* A stale run looked for, by its tag. */
struct sought {
  const char *id;
  size_t i; /* its index in the caller's arrays */
};

struct seek {
  struct sought *runs; /* by id */
  size_t n;
  int *procs, fresh;
  pid_t self;
  struct ctrun_pidset read; /* rows whose tag was read, over all passes */
};

static int by_id(const void *a, const void *b) {
  return strcmp(((const struct sought *)a)->id, ((const struct sought *)b)->id);
}

/* Each process's tag is read once: the passes after the first read only
 * the processes born since. */
static void on_sought(const struct ctrun_pinfo *p, void *arg) {
  struct seek *s = arg;
  struct sought key, *run;
  char tag[CTRUN_ID_LEN + 1];
  int r;
  if (p->zombie || p->pid == s->self || p->pid <= 1 || set_has(&s->read, p))
    return;
  r = ctrun_os_proc_tag(p->pid, tag, sizeof tag);
  if (r == UV_ESRCH || set_put(&s->read, p->pid, p->start, 0) != 0 || r != 0)
    return;
  key.id = tag;
  if ((run = bsearch(&key, s->runs, s->n, sizeof *s->runs, by_id)) != NULL) {
    s->procs[run->i]++;
    s->fresh++;
  }
}

void ctrun_proctab_recount(struct ctrun_proctab *tab, const struct ctrun_entry *v, size_t n,
                           int *procs) {
  struct seek s;

  if (tab == NULL)
    return;
  memset(&s, 0, sizeof s);
  s.procs = procs;
  s.self = getpid();
  if ((s.runs = malloc((n + 1) * sizeof *s.runs)) == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    if (v[i].stale && procs[i] == 0 && this_boot(tab, &v[i]))
      s.runs[s.n++] = (struct sought){ v[i].id, i };
  if (s.n > 0) {
    qsort(s.runs, s.n, sizeof *s.runs, by_id);
    read_until_quiet(on_sought, &s, &s.fresh);
  }
  free(s.runs);
  set_free(&s.read);
}
