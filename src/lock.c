/* Lock files.  The lock belongs to ctrun's own close-on-exec descriptor,
 * so no process of the command ever holds it: an inherited lock held by a
 * stray daemon would wedge every later run.  The file is never deleted,
 * since deleting a lock file lets two holders in. */
#include "ctrun/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ctrun/clock.h"
#include "ctrun/duration.h"
#include "ctrun/fs.h"
#include "ctrun/msg.h"
#include "ctrun/options.h"

/* Holder text is short; a longer file is someone else's. */
#define HOLDER_TEXT_MAX 512

/* Whether the file open on FD is ctrun's own to write holder text into:
 * one name only (a hard link to another file is not), and empty or
 * holding nothing but holder text and blank lines. */
static bool owns_text(int fd, const struct ctrun_file_info *f) {
  char *text = NULL;
  size_t len = 0;
  bool ours;
  if (f->links != 1 || f->size > HOLDER_TEXT_MAX)
    return false;
  if (f->size == 0)
    return true;
  ours = ctrun_fd_read_all(fd, HOLDER_TEXT_MAX, &text, &len) == 0 &&
         ctrun_lock_text_is_holder(text, len);
  free(text);
  return ours;
}

/* How often a lock file that another program holds open is tried again. */
#define BUSY_RETRY_MS 50

int ctrun_lock_take(struct ctrun_lock *l, const char *path, uint64_t wait_ms, char *err,
                    size_t errlen) {
  uint64_t t0 = uv_hrtime(), waited = 0;
  int fd, r;

  l->fd = -1;
  l->path = path;
  l->owns_text = false;
  l->text_len = 0;
  memset(&l->file, 0, sizeof l->file);
  /* A file that another program holds open without sharing (Windows) is
   * as busy as a held lock: waited for, within the same -w. */
  while ((fd = ctrun_file_open(path, CTRUN_FILE_LOCK, err, errlen)) == UV_EBUSY) {
    uint64_t nap = BUSY_RETRY_MS;
    if (wait_ms != CTRUN_DURATION_INF) {
      if (waited >= wait_ms)
        return UV_EBUSY;
      if (wait_ms - waited < nap)
        nap = wait_ms - waited;
    }
    uv_sleep((unsigned)nap);
    waited = (uv_hrtime() - t0) / 1000000;
  }
  if (fd < 0)
    return fd;
  if (wait_ms != CTRUN_DURATION_INF)
    wait_ms = waited < wait_ms ? wait_ms - waited : 0;
  r = ctrun_fd_info(fd, &l->file);
  if (r == 0)
    r = ctrun_fd_lock(fd, CTRUN_LOCK_EXCLUSIVE, wait_ms);
  if (r != 0) {
    if (r != UV_EBUSY)
      snprintf(err, errlen, "cannot lock '%s': %s", path, ctrun_strerror(r));
    ctrun_fd_close(fd);
    return r;
  }
  l->fd = fd;
  /* Read only now, under the lock: the previous holder may have changed it. */
  if (ctrun_fd_info(fd, &l->file) == 0)
    l->owns_text = owns_text(fd, &l->file);
  return 0;
}

/* The holder text goes over what the file holds (the previous holder's,
 * blanked by its release, or left whole by a crash), padded with newlines
 * to its length, and the release blanks it again: the file never shrinks.
 * Truncating it costs a journalled change of the file's blocks (0.025 ms
 * a run on ext4), overwriting bytes in place does not. */
void ctrun_lock_set_holder(struct ctrun_lock *l, long pid, const char *run_id, const char *name,
                           int64_t started_ms) {
  char text[HOLDER_TEXT_MAX];
  int n = snprintf(text, sizeof text, "pid=%ld\nid=%s\nname=%s\nstarted=%lld\n", pid, run_id, name,
                   (long long)started_ms);
  size_t len = (size_t)n, had;
  /* Best effort: a read-only lock file still locks, it just cannot say who. */
  if (l->fd < 0 || !l->owns_text || n <= 0 || len >= sizeof text)
    return;
  had = l->text_len > l->file.size ? l->text_len : (size_t)l->file.size; /* <= HOLDER_TEXT_MAX */
  if (had > len) {
    memset(text + len, '\n', had - len);
    len = had;
  }
  if (ctrun_fd_write_at(l->fd, text, len, 0) == 0)
    l->text_len = len;
}

/* A decimal number of digits only, in [0, MAX]; -1 otherwise. */
static long long holder_num(const char *v, long long max) {
  char *e;
  long long n;
  if (v[0] < '0' || v[0] > '9')
    return -1;
  errno = 0;
  n = strtoll(v, &e, 10);
  return *e != '\0' || errno != 0 || n > max ? -1 : n;
}

static bool holder_id_valid(const char *v) {
  for (const char *c = v; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
      return false;
  return true;
}

/* A host name as a fleet lock's holder gives it: letters, digits, dots,
 * dashes and underscores. */
static bool host_valid(const char *v) {
  if (*v == '\0')
    return false;
  for (const char *c = v; *c; c++)
    if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
          *c == '.' || *c == '-' || *c == '_'))
      return false;
  return true;
}

/* Anyone who can write the lock file writes this text: only a real pid, a
 * run id, a valid run name and a time since the epoch are taken from it, so
 * that nothing else reaches the busy message (or the terminal) and the age
 * computed from the start time cannot overflow. */
int ctrun_lock_holder_parse(const char *text, size_t len, struct ctrun_lock_holder *h) {
  const char *s = text, *end = text + len;
  int seen = 0;

  memset(h, 0, sizeof *h);
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    const char *eq = memchr(s, '=', (size_t)((nl ? nl : end) - s));
    size_t klen, vlen;
    char val[80];
    if (nl == NULL || eq == NULL)
      break;
    klen = (size_t)(eq - s);
    vlen = (size_t)(nl - eq - 1);
    if (vlen >= sizeof val)
      return UV_EINVAL;
    memcpy(val, eq + 1, vlen);
    val[vlen] = '\0';
    if (klen == 3 && memcmp(s, "pid", 3) == 0) {
      long long pid = holder_num(val, 0x7fffffff);
      if (pid <= 0)
        return UV_EINVAL;
      h->pid = (long)pid;
      seen |= 1;
    } else if (klen == 2 && memcmp(s, "id", 2) == 0 && vlen < sizeof h->id &&
               holder_id_valid(val)) {
      memcpy(h->id, val, vlen + 1);
    } else if (klen == 4 && memcmp(s, "name", 4) == 0 && ctrun_name_valid(val)) {
      memcpy(h->name, val, vlen + 1);
    } else if (klen == 4 && memcmp(s, "host", 4) == 0 && vlen < sizeof h->host &&
               host_valid(val)) {
      memcpy(h->host, val, vlen + 1);
    } else if (klen == 7 && memcmp(s, "started", 7) == 0) {
      long long started = holder_num(val, INT64_MAX);
      h->started_ms = started > 0 ? started : 0;
    }
    s = nl + 1;
  }
  return (seen & 1) ? 0 : UV_EINVAL;
}

bool ctrun_lock_text_is_holder(const char *text, size_t len) {
  static const char *const keys[] = { "pid=", "id=", "name=", "started=" };
  const char *s = text, *end = text + len;
  while (s < end) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    size_t k = 0;
    if (nl == NULL)
      return false;
    if (nl == s) { /* blank: a holder's text blanked, or its padding */
      s++;
      continue;
    }
    while (k < sizeof keys / sizeof keys[0] &&
           ((size_t)(nl - s) < strlen(keys[k]) || memcmp(s, keys[k], strlen(keys[k])) != 0))
      k++;
    if (k == sizeof keys / sizeof keys[0])
      return false;
    s = nl + 1;
  }
  return true;
}

void ctrun_lock_holder(const char *path, char *buf, size_t size) {
  char err[256], *text = NULL, age[32];
  size_t len = 0;
  struct ctrun_lock_holder h;
  int fd = ctrun_file_open(path, CTRUN_FILE_LOCK, err, sizeof err);

  snprintf(buf, size, "another process");
  if (fd < 0)
    return;
  if (ctrun_fd_read_all(fd, HOLDER_TEXT_MAX, &text, &len) == 0 &&
      ctrun_lock_text_is_holder(text, len) && ctrun_lock_holder_parse(text, len, &h) == 0) {
    int64_t ms = ctrun_now_ms() - h.started_ms;
    ctrun_duration_format(ms > 0 ? (uint64_t)ms : 0, age, sizeof age);
    snprintf(buf, size, "pid %ld (%s, running for %s)", h.pid, h.name[0] ? h.name : "?", age);
  }
  free(text);
  ctrun_fd_close(fd);
}

void ctrun_lock_release(struct ctrun_lock *l) {
  if (l->fd < 0)
    return;
  /* Blank the holder text while still holding the lock, then let go. */
  if (l->text_len > 0) {
    char blank[HOLDER_TEXT_MAX];
    memset(blank, '\n', l->text_len);
    ctrun_fd_write_at(l->fd, blank, l->text_len, 0);
    l->text_len = 0;
  }
  ctrun_fd_unlock(l->fd);
  ctrun_fd_close(l->fd);
  l->fd = -1;
}

int ctrun_lock_waiter_take(struct ctrun_dir *dir, const char *id) {
  char name[80];
  int fd, r;
  /* "queue-<device>-<inode>.lock": a name for every path of that file, and
   * only of it.  Never deleted, like any lock file: deleting it would let a
   * second waiter in. */
  snprintf(name, sizeof name, "queue-%s.lock", id);
  for (char *c = name; *c != '\0'; c++)
    if (*c == ':')
      *c = '-';
  fd = ctrun_dir_openat(dir, name, O_RDWR | O_CREAT);
  if (fd < 0)
    return fd;
  r = ctrun_fd_lock(fd, CTRUN_LOCK_EXCLUSIVE, 0);
  if (r != 0) {
    ctrun_fd_close(fd);
    return r;
  }
  return fd;
}

void ctrun_lock_waiter_release(int fd) {
  if (fd < 0)
    return;
  ctrun_fd_unlock(fd);
  ctrun_fd_close(fd);
}
