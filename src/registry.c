/* The registry of tracked runs.  One file a run, "<id>.run", in the state
 * directory.  Its supervisor writes it to a temporary name, locks it, then
 * renames it into place, so the entry never exists unlocked, and holds that
 * lock until the run is over: a reader that can take the lock knows the
 * supervisor is gone, whatever became of its pid.  A held lock does not
 * tell who holds it (a cleanup holds a dead run's while it works), so the
 * entry also says which process its supervisor is: signed by it where the
 * host can (ctrun_proc_sign_entry), else by its start time.  The
 * signature is a record lock, which goes with any descriptor of the file
 * its owner closes: so a process never opens its own entry again, and
 * reads it, when it lists the registry, through the one that holds it. */
#include "ctrun/registry.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "ctrun/msg.h"
#include "ctrun/proc.h"

/* Larger is corrupt.  An entry holds the command's argv, which Linux caps
 * at 6 MiB (with every byte possibly escaped to four), so that a run with a
 * long command line can still be listed, stopped and cleaned up. */
#define ENTRY_MAX (32 * 1024 * 1024)
#define MAGIC "ctrun-run 1\n"

int ctrun_statedir_open(struct ctrun_dir **out, char *err, size_t errlen) {
  char path[4096];
  int r = ctrun_statedir_path(path, sizeof path, err, errlen);
  if (r != 0)
    return r;
  return ctrun_dir_open(path, true, out, err, errlen);
}

void ctrun_new_run_id(char id[CTRUN_ID_LEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[CTRUN_ID_LEN / 2];
  if (uv_random(NULL, NULL, b, sizeof b, 0, NULL) != 0) {
    /* No entropy source: time and pid are still unique on this machine. */
    uint64_t x = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)uv_os_getpid() ^ uv_hrtime();
    for (size_t i = 0; i < sizeof b; i++, x >>= 8)
      b[i] = (unsigned char)x;
  }
  for (size_t i = 0; i < sizeof b; i++) {
    id[2 * i] = hex[b[i] >> 4];
    id[2 * i + 1] = hex[b[i] & 15];
  }
  id[CTRUN_ID_LEN] = '\0';
}

void ctrun_new_uuid(char uuid[CTRUN_UUID_LEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  size_t n = 0;
  if (uv_random(NULL, NULL, b, sizeof b, 0, NULL) != 0) {
    uint64_t x = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)uv_os_getpid() ^ uv_hrtime();
    for (size_t i = 0; i < sizeof b; i++, x = x * 6364136223846793005ULL + 1442695040888963407ULL)
      b[i] = (unsigned char)(x >> 56);
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
  for (size_t i = 0; i < sizeof b; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      uuid[n++] = '-';
    uuid[n++] = hex[b[i] >> 4];
    uuid[n++] = hex[b[i] & 15];
  }
  uuid[n] = '\0';
}

/* A growable text buffer. */
struct buf {
  char *s;
  size_t len, cap;
  bool failed;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *bigger = realloc(b->s, cap);
    if (bigger == NULL) {
      b->failed = true;
      return;
    }
    b->s = bigger;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

static void putf(struct buf *b, const char *fmt, ...) CTRUN_PRINTF(2, 3);
static void putf(struct buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* KEY=VALUE with backslash, newline and control bytes escaped. */
static void put_escaped(struct buf *b, const char *key, const char *v) {
  put(b, key, strlen(key));
  put(b, "=", 1);
  for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
    if (*s == '\\')
      put(b, "\\\\", 2);
    else if (*s < 0x20 || *s == 0x7f)
      putf(b, "\\x%02x", *s);
    else
      put(b, (const char *)s, 1);
  }
  put(b, "\n", 1);
}

char *ctrun_entry_format(const struct ctrun_entry *e, size_t *len) {
  struct buf b = { 0 };
  put(&b, MAGIC, strlen(MAGIC));
  /* The name and the boot id are escaped like every other string: a
   * newline or a backslash in them must read back as the same text. */
  putf(&b, "id=%s\n", e->id);
  put_escaped(&b, "name", e->name);
  putf(&b, "pid=%ld\npid_start=%llu\n", e->pid, (unsigned long long)e->pid_start);
  putf(&b, "child_pid=%ld\nchild_start=%llu\npgid=%ld\n", e->child_pid,
       (unsigned long long)e->child_start, e->pgid);
  put_escaped(&b, "boot_id", e->boot_id);
  putf(&b, "started=%lld\ndeadline=%lld\n", (long long)e->started_ms, (long long)e->deadline_ms);
  putf(&b, "signal=%d\nkill_after=%llu\n", e->signal, (unsigned long long)e->kill_after_ms);
  if (e->lock)
    put_escaped(&b, "lock", e->lock);
  if (e->lock_id[0] != '\0')
    put_escaped(&b, "lock_id", e->lock_id);
  if (e->log)
    put_escaped(&b, "log", e->log);
  if (e->children_killed > 0)
    putf(&b, "children_killed=%d\n", e->children_killed);
  if (e->limits_by[0] != '\0')
    put_escaped(&b, "limits", e->limits_by);
  if (e->container != NULL)
    put_escaped(&b, "container", e->container);
  for (int i = 0; i < e->nleases && i < CTRUN_ENTRY_LEASES; i++) {
    char v[sizeof e->leases[i].where + 64];
    snprintf(v, sizeof v, "%s %s %lld %s", e->leases[i].backend, e->leases[i].token,
             (long long)e->leases[i].expires_ms, e->leases[i].where);
    put_escaped(&b, "lease", v);
  }
  for (int i = 0; i < e->argc; i++)
    put_escaped(&b, "arg", e->argv[i]);
  put(&b, "end\n", 4);
  if (b.failed) {
    free(b.s);
    return NULL;
  }
  *len = b.len;
  return b.s;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Unescape S[0..n) into a new string; NULL if malformed. */
static char *unescape(const char *s, size_t n) {
  char *out = malloc(n + 1), *o = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\0') {
      /* Never written (a NUL is not escapable): a corrupt entry, which
       * would otherwise be cut short here without a word. */
      free(out);
      return NULL;
    }
    if (s[i] != '\\') {
      *o++ = s[i];
      continue;
    }
    if (i + 1 < n && s[i + 1] == '\\') {
      *o++ = '\\';
      i++;
    } else if (i + 3 < n && s[i + 1] == 'x' && hexval(s[i + 2]) >= 0 && hexval(s[i + 3]) >= 0 &&
               (hexval(s[i + 2]) << 4 | hexval(s[i + 3])) != 0) {
      *o++ = (char)(hexval(s[i + 2]) << 4 | hexval(s[i + 3]));
      i += 3;
    } else {
      free(out);
      return NULL;
    }
  }
  *o = '\0';
  return out;
}

static int parse_num(const char *v, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (v[0] == '\0' || *end != '\0' || errno != 0 || n < lo || n > hi)
    return -1;
  *out = n;
  return 0;
}

static int parse_unum(const char *v, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0)
    return -1;
  *out = n;
  return 0;
}

bool ctrun_id_valid(const char *s) {
  if (strlen(s) != CTRUN_ID_LEN)
    return false;
  for (; *s; s++)
    if (hexval(*s) < 0)
      return false;
  return true;
}

/* "BACKEND TOKEN EXPIRES WHERE": a backend's name, a token of digits, a
 * time, and the rest. */
static int parse_lease(const char *v, struct ctrun_entry_lease *l) {
  const char *sp1 = strchr(v, ' '), *sp2, *sp3;
  long long n;
  char num[24];
  if (sp1 == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL || (sp3 = strchr(sp2 + 1, ' ')) == NULL)
    return -1;
  if ((size_t)(sp1 - v) >= sizeof l->backend || (size_t)(sp2 - sp1 - 1) >= sizeof l->token ||
      (size_t)(sp3 - sp2 - 1) >= sizeof num || strlen(sp3 + 1) >= sizeof l->where)
    return -1;
  memcpy(l->backend, v, (size_t)(sp1 - v));
  l->backend[sp1 - v] = '\0';
  memcpy(l->token, sp1 + 1, (size_t)(sp2 - sp1 - 1));
  l->token[sp2 - sp1 - 1] = '\0';
  for (const char *c = l->token; *c; c++)
    if (*c < '0' || *c > '9')
      return -1;
  memcpy(num, sp2 + 1, (size_t)(sp3 - sp2 - 1));
  num[sp3 - sp2 - 1] = '\0';
  if (parse_num(num, 0, INT64_MAX, &n) != 0)
    return -1;
  l->expires_ms = n;
  strcpy(l->where, sp3 + 1);
  return 0;
}

int ctrun_entry_parse(const char *text, size_t len, struct ctrun_entry *e) {
  const char *s = text, *end = text + len;
  bool ended = false;
  int have = 0;
  size_t argcap = 0;

  memset(e, 0, sizeof *e);
  if (len < strlen(MAGIC) || memcmp(text, MAGIC, strlen(MAGIC)) != 0)
    return UV_EINVAL;
  s += strlen(MAGIC);
  while (s < end && !ended) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *eq;
    char *v = NULL;
    long long n = 0;
    size_t klen;
    int bad = 0;

    if (nl == NULL)
      goto bad; /* torn: the last line has no end */
    if (nl - s == 3 && memcmp(s, "end", 3) == 0) {
      ended = true;
      break;
    }
    eq = memchr(s, '=', (size_t)(nl - s));
    if (eq == NULL)
      goto bad;
    klen = (size_t)(eq - s);
    v = unescape(eq + 1, (size_t)(nl - eq - 1));
    if (v == NULL)
      goto bad;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(s, k, klen) == 0)
    if (KEY("id")) {
      bad = !ctrun_id_valid(v);
      if (!bad)
        memcpy(e->id, v, CTRUN_ID_LEN + 1);
      have |= 1;
    } else if (KEY("name")) {
      bad = strlen(v) >= sizeof e->name;
      if (!bad)
        strcpy(e->name, v);
    } else if (KEY("pid")) {
      bad = parse_num(v, 1, 0x7fffffff, &n);
      e->pid = (long)n;
      have |= 2;
    } else if (KEY("pid_start")) {
      bad = parse_unum(v, &e->pid_start);
    } else if (KEY("child_pid")) {
      bad = parse_num(v, 0, 0x7fffffff, &n);
      e->child_pid = (long)n;
    } else if (KEY("child_start")) {
      bad = parse_unum(v, &e->child_start);
    } else if (KEY("pgid")) {
      bad = parse_num(v, 0, 0x7fffffff, &n);
      e->pgid = (long)n;
    } else if (KEY("boot_id")) {
      bad = strlen(v) >= sizeof e->boot_id;
      if (!bad)
        strcpy(e->boot_id, v);
    } else if (KEY("started")) {
      bad = parse_num(v, 0, INT64_MAX, &n);
      e->started_ms = n;
    } else if (KEY("deadline")) {
      bad = parse_num(v, 0, INT64_MAX, &n);
      e->deadline_ms = n;
    } else if (KEY("signal")) {
      bad = parse_num(v, 0, 1024, &n);
      e->signal = (int)n;
    } else if (KEY("kill_after")) {
      bad = parse_unum(v, &e->kill_after_ms);
    } else if (KEY("children_killed")) {
      bad = parse_num(v, 0, 0x7fffffff, &n);
      e->children_killed = (int)n;
    } else if (KEY("limits")) {
      bad = strlen(v) >= sizeof e->limits_by;
      if (!bad)
        strcpy(e->limits_by, v);
    } else if (KEY("lock_id")) {
      bad = strlen(v) >= sizeof e->lock_id;
      if (!bad)
        strcpy(e->lock_id, v);
    } else if (KEY("lease")) {
      bad = e->nleases == CTRUN_ENTRY_LEASES || parse_lease(v, &e->leases[e->nleases++]) != 0;
    } else if (KEY("lock") && e->lock == NULL) {
      e->lock = v;
      v = NULL;
    } else if (KEY("log") && e->log == NULL) {
      e->log = v;
      v = NULL;
    } else if (KEY("container") && e->container == NULL) {
      e->container = v;
      v = NULL;
    } else if (KEY("arg")) {
      if ((size_t)e->argc + 1 >= argcap) {
        size_t cap = argcap ? argcap * 2 : 8;
        char **bigger = realloc(e->argv, cap * sizeof *bigger);
        if (bigger == NULL) {
          bad = 1;
        } else {
          e->argv = bigger;
          argcap = cap;
        }
      }
      if (!bad) {
        e->argv[e->argc++] = v;
        e->argv[e->argc] = NULL;
        v = NULL;
      }
    } /* unknown keys: from a newer ctrun; skipped */
#undef KEY
    free(v);
    if (bad)
      goto bad;
    s = nl + 1;
  }
  if (!ended || have != 3)
    goto bad;
  if (e->argv == NULL) {
    e->argv = calloc(1, sizeof *e->argv);
    if (e->argv == NULL)
      goto bad;
  }
  return 0;
bad:
  ctrun_entry_free(e);
  return UV_EINVAL;
}

void ctrun_entry_free(struct ctrun_entry *e) {
  for (int i = 0; i < e->argc; i++)
    free(e->argv[i]);
  free(e->argv);
  free(e->lock);
  free(e->log);
  free(e->container);
  e->argv = NULL;
  e->argc = 0;
  e->lock = e->log = e->container = NULL;
}

static void entry_file(char *buf, size_t size, const char *id, const char *suffix) {
  snprintf(buf, size, "%s%s", id, suffix);
}

/* The record of this process's own run, while it has one (read_entry). */
static const struct ctrun_record *own_record;

/* Write E, this process's own entry, to a new, locked and signed
 * temporary file in DIR; returns its descriptor. */
static int write_locked(struct ctrun_dir *dir, const char *tmp, const struct ctrun_entry *e) {
  struct ctrun_entry own = *e;
  char *text = NULL;
  size_t len;
  int fd = ctrun_dir_openat(dir, tmp, O_RDWR | O_CREAT | O_TRUNC), r;
  if (fd < 0)
    return fd;
  r = ctrun_fd_lock(fd, CTRUN_LOCK_EXCLUSIVE, 0);
  own.pid_start = 0;
  if (r == 0 && ctrun_proc_sign_entry(fd) != 0)
    ctrun_proc_start_time(own.pid, &own.pid_start);
  if (r == 0 && (text = ctrun_entry_format(&own, &len)) == NULL)
    r = UV_ENOMEM;
  if (r == 0) /* empty (O_TRUNC), and no other writer has its name: no truncation after */
    r = ctrun_fd_write_at(fd, text, len, 0);
  free(text);
  if (r != 0) {
    ctrun_fd_close(fd);
    ctrun_dir_unlink(dir, tmp);
    return r;
  }
  return fd;
}

int ctrun_record_write(struct ctrun_record *rec, struct ctrun_dir *dir, const struct ctrun_entry *e) {
  char tmp[CTRUN_ID_LEN + 8];
  int fd, r;

  entry_file(tmp, sizeof tmp, e->id, ".tmp");
  entry_file(rec->file, sizeof rec->file, e->id, ".run");
  /* Between its creation and its lock, the temporary file looks like one
   * a dead writer left, and a concurrent cleanup may remove it (or hold
   * its lock for a moment while checking): then write it again. */
  for (int tries = 0;; tries++) {
    fd = write_locked(dir, tmp, e);
    r = fd < 0 ? fd : ctrun_dir_rename(dir, tmp, rec->file);
    if (r == 0)
      break;
    if (fd >= 0) {
      ctrun_fd_close(fd);
      ctrun_dir_unlink(dir, tmp);
    }
    if ((r != UV_ENOENT && r != UV_EBUSY) || tries == 10)
      return r;
  }
  if (rec->fd >= 0 && rec->dir == dir)
    ctrun_fd_close(rec->fd);
  rec->dir = dir;
  rec->fd = fd;
  own_record = rec;
  return 0;
}

void ctrun_record_remove(struct ctrun_record *rec) {
  if (rec->fd < 0)
    return;
  /* Unlink while still holding the lock: nobody can see the entry unlocked. */
  ctrun_dir_unlink(rec->dir, rec->file);
  ctrun_fd_close(rec->fd);
  rec->fd = -1;
  if (own_record == rec)
    own_record = NULL;
}

struct list_ctx {
  struct ctrun_dir *dir;
  struct ctrun_entry *v;
  size_t n, cap;
  int err;
};

/* Read one entry; UV_EAGAIN when it was replaced under us. */
static int read_entry(struct ctrun_dir *dir, const char *name, struct ctrun_entry *e) {
  char *text = NULL;
  size_t len;
  int fd, r;
  bool stale;

  if (own_record != NULL && own_record->fd >= 0 && own_record->dir == dir &&
      strcmp(name, own_record->file) == 0) {
    r = ctrun_fd_read_all(own_record->fd, ENTRY_MAX, &text, &len);
    if (r == 0)
      r = ctrun_entry_parse(text, len, e); /* stale: no, it is ours */
    free(text);
    return r;
  }
  fd = ctrun_dir_openat(dir, name, O_RDONLY);
  if (fd < 0)
    return fd;
  r = ctrun_fd_lock(fd, CTRUN_LOCK_SHARED, 0);
  stale = r == 0;
  if (stale && !ctrun_dir_same_file(dir, name, fd)) {
    ctrun_fd_close(fd);
    return UV_EAGAIN;
  }
  r = ctrun_fd_read_all(fd, ENTRY_MAX, &text, &len);
  ctrun_fd_close(fd);
  if (r != 0)
    return r;
  r = ctrun_entry_parse(text, len, e);
  free(text);
  if (r == 0)
    e->stale = stale;
  return r;
}

static int list_one(const char *name, void *arg) {
  struct list_ctx *c = arg;
  size_t n = strlen(name);
  int r = UV_EAGAIN;

  if (n != CTRUN_ID_LEN + 4 || strcmp(name + CTRUN_ID_LEN, ".run") != 0)
    return 0;
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 16;
    struct ctrun_entry *bigger = realloc(c->v, cap * sizeof *bigger);
    if (bigger == NULL)
      return UV_ENOMEM;
    c->v = bigger;
    c->cap = cap;
  }
  for (int tries = 0; r == UV_EAGAIN && tries < 5; tries++)
    r = read_entry(c->dir, name, &c->v[c->n]);
  if (r == UV_ENOENT)
    return 0; /* the run ended while we listed */
  if (r != 0) {
    ctrun_error("skipping unreadable run entry '%s/%s': %s", ctrun_dir_path(c->dir), name,
                r == UV_EINVAL ? "corrupt or truncated" : ctrun_strerror(r));
    return 0;
  }
  if (strncmp(c->v[c->n].id, name, CTRUN_ID_LEN) != 0) {
    ctrun_error("skipping run entry '%s/%s': it names another run", ctrun_dir_path(c->dir), name);
    ctrun_entry_free(&c->v[c->n]);
    return 0;
  }
  c->n++;
  return 0;
}

static int by_start(const void *a, const void *b) {
  const struct ctrun_entry *x = a, *y = b;
  if (x->started_ms != y->started_ms)
    return x->started_ms < y->started_ms ? -1 : 1;
  return strcmp(x->id, y->id);
}

int ctrun_registry_list(struct ctrun_dir *dir, struct ctrun_entry **out, size_t *n) {
  struct list_ctx c = { .dir = dir };
  int r = ctrun_dir_each(dir, list_one, &c);
  if (r != 0) {
    ctrun_registry_free(c.v, c.n);
    return r;
  }
  if (c.n > 1)
    qsort(c.v, c.n, sizeof *c.v, by_start);
  *out = c.v;
  *n = c.n;
  return 0;
}

void ctrun_registry_free(struct ctrun_entry *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    ctrun_entry_free(&v[i]);
  free(v);
}

size_t ctrun_registry_match(const struct ctrun_entry *v, size_t n, const char *what, size_t *idx,
                            size_t max) {
  size_t k = 0;
  for (size_t i = 0; i < n && k < max; i++)
    if (strcmp(v[i].id, what) == 0 || strcmp(v[i].name, what) == 0)
      idx[k++] = i;
  return k;
}

int ctrun_registry_open(struct ctrun_dir *dir, const char *id) {
  char name[CTRUN_ID_LEN + 8];
  entry_file(name, sizeof name, id, ".run");
  return ctrun_dir_openat(dir, name, O_RDONLY);
}

int ctrun_registry_claim(struct ctrun_dir *dir, const char *id) {
  char name[CTRUN_ID_LEN + 8];
  int fd, r;

  entry_file(name, sizeof name, id, ".run");
  fd = ctrun_dir_openat(dir, name, O_RDWR);
  if (fd < 0)
    return fd;
  /* A reader's brief shared lock must not pass for a living supervisor. */
  r = ctrun_fd_lock(fd, CTRUN_LOCK_EXCLUSIVE, 200);
  if (r == 0 && !ctrun_dir_same_file(dir, name, fd))
    r = UV_EBUSY; /* replaced: its supervisor is alive and rewrote it */
  if (r != 0) {
    ctrun_fd_close(fd);
    return r;
  }
  return fd;
}

void ctrun_registry_drop(struct ctrun_dir *dir, const char *id, int fd) {
  char name[CTRUN_ID_LEN + 8];
  entry_file(name, sizeof name, id, ".run");
  ctrun_dir_unlink(dir, name);
  entry_file(name, sizeof name, id, ".stop");
  ctrun_dir_unlink(dir, name);
  ctrun_fd_close(fd);
}

void ctrun_registry_unclaim(int fd) { ctrun_fd_close(fd); }

/* Whether NAME is "<id><suffix>" for a well-formed run id; the id goes to ID. */
static bool named(const char *name, const char *suffix, char id[CTRUN_ID_LEN + 1]) {
  if (strlen(name) != CTRUN_ID_LEN + strlen(suffix) || strcmp(name + CTRUN_ID_LEN, suffix) != 0)
    return false;
  memcpy(id, name, CTRUN_ID_LEN);
  id[CTRUN_ID_LEN] = '\0';
  return ctrun_id_valid(id);
}

/* Whether NAME is a stop request being written, "<id>.<nonce>.stoptmp". */
static bool stop_tmp(const char *name, char id[CTRUN_ID_LEN + 1]) {
  size_t n = strlen(name);
  if (n != 2 * CTRUN_ID_LEN + 9 || name[CTRUN_ID_LEN] != '.' ||
      strcmp(name + 2 * CTRUN_ID_LEN + 1, ".stoptmp") != 0)
    return false;
  memcpy(id, name, CTRUN_ID_LEN);
  id[CTRUN_ID_LEN] = '\0';
  return ctrun_id_valid(id);
}

static int sweep_one(const char *name, void *arg) {
  struct ctrun_dir *dir = arg;
  char id[CTRUN_ID_LEN + 1], entry[CTRUN_ID_LEN + 8];
  int fd;

  if (named(name, ".tmp", id)) {
    /* Its writer holds the lock until the rename: free means it died. */
    fd = ctrun_dir_openat(dir, name, O_RDONLY);
    if (fd >= 0 && ctrun_fd_lock(fd, CTRUN_LOCK_EXCLUSIVE, 0) == 0 &&
        ctrun_dir_same_file(dir, name, fd))
      ctrun_dir_unlink(dir, name);
    if (fd >= 0)
      ctrun_fd_close(fd);
  } else if (named(name, ".stop", id) || named(name, ".stoptmp", id) || stop_tmp(name, id)) {
    /* A stop request outlives its run only if the run ended first. */
    entry_file(entry, sizeof entry, id, ".run");
    fd = ctrun_dir_openat(dir, entry, O_RDONLY);
    if (fd == UV_ENOENT)
      ctrun_dir_unlink(dir, name);
    if (fd >= 0)
      ctrun_fd_close(fd);
  }
  return 0;
}

void ctrun_registry_sweep(struct ctrun_dir *dir) { ctrun_dir_each(dir, sweep_one, dir); }

int ctrun_stop_request_write(struct ctrun_dir *dir, const char *id, int sig, uint64_t kill_after_ms) {
  char tmp[2 * CTRUN_ID_LEN + 16], nonce[CTRUN_ID_LEN + 1], name[CTRUN_ID_LEN + 8], text[64];
  int n = snprintf(text, sizeof text, "signal=%d\nkill_after=%llu\n", sig,
                   (unsigned long long)kill_after_ms);
  int fd, r;

  /* A temporary name of this writer's own: two stops of one run at once
   * must not truncate or rename each other's request. */
  ctrun_new_run_id(nonce);
  snprintf(tmp, sizeof tmp, "%s.%s.stoptmp", id, nonce);
  entry_file(name, sizeof name, id, ".stop");
  fd = ctrun_dir_openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC);
  if (fd < 0)
    return fd;
  r = ctrun_fd_rewrite(fd, text, (size_t)n);
  ctrun_fd_close(fd);
  if (r == 0)
    r = ctrun_dir_rename(dir, tmp, name);
  return r;
}

int ctrun_stop_request_read(struct ctrun_dir *dir, const char *id, int *sig, uint64_t *kill_after_ms) {
  char name[CTRUN_ID_LEN + 8], *text;
  size_t len;
  int fd, r;
  unsigned long long ka;

  entry_file(name, sizeof name, id, ".stop");
  fd = ctrun_dir_openat(dir, name, O_RDONLY);
  if (fd < 0)
    return fd;
  r = ctrun_fd_read_all(fd, 256, &text, &len);
  ctrun_fd_close(fd);
  ctrun_dir_unlink(dir, name);
  if (r != 0)
    return r;
  if (sscanf(text, "signal=%d\nkill_after=%llu", sig, &ka) != 2 || *sig < 0)
    r = UV_EINVAL;
  else
    *kill_after_ms = ka;
  free(text);
  return r;
}
