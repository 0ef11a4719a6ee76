/* The history of finished runs (see history.h). */
#include "ctrun/history.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ctrun/duration.h"

/* A history is compacted once its file grows past this. */
#define COMPACT_AT (64 * 1024)
/* The longest line a record can be (names, ids and numbers are bounded). */
#define LINE_MAX_LEN 1024
/* How much of its end an append reads: the last record, and a torn line. */
#define TAIL (2 * LINE_MAX_LEN + 1)
#define SUFFIX ".history"
#define VERSION "1"

static const char *const outcome_names[CTRUN_OUTCOMES] = { "success", "failure", "timeout",
                                                           "skipped" };

const char *ctrun_outcome_name(enum ctrun_outcome o) {
  return (unsigned)o < CTRUN_OUTCOMES ? outcome_names[o] : "failure";
}

static enum ctrun_outcome outcome_of(enum ctrun_reason r, bool ok) {
  if (ok)
    return CTRUN_OUTCOME_SUCCESS;
  switch (r) {
  case CTRUN_REASON_SKIPPED: return CTRUN_OUTCOME_SKIPPED;
  case CTRUN_REASON_TIMEOUT:
  case CTRUN_REASON_IDLE:
  case CTRUN_REASON_STOPPED:
  case CTRUN_REASON_MEMORY:
  case CTRUN_REASON_PROCS:
  case CTRUN_REASON_CPU:
  case CTRUN_REASON_LOCK_LOST: return CTRUN_OUTCOME_TIMEOUT;
  default: return CTRUN_OUTCOME_FAILURE;
  }
}

void ctrun_hrec_from_result(const struct ctrun_result *res, struct ctrun_hrec *out) {
  memset(out, 0, sizeof *out);
  snprintf(out->id, sizeof out->id, "%s", res->id);
  snprintf(out->rid, sizeof out->rid, "%s", res->rid ? res->rid : "");
  snprintf(out->name, sizeof out->name, "%s", res->name);
  out->started_ms = res->started_ms;
  out->ended_ms = res->ended_ms;
  out->reason = res->reason;
  out->exit_code = (uint32_t)res->exit_code;
  out->ok = res->ok;
  out->attempts = res->attempts;
  out->peak_rss_bytes = res->peak_rss_bytes;
  out->cpu_user_ms = res->cpu_user_ms;
  out->cpu_sys_ms = res->cpu_sys_ms;
  out->outcome = outcome_of(res->reason, res->ok);
}

size_t ctrun_hrec_format(const struct ctrun_hrec *r, char *buf, size_t size) {
  int n = snprintf(buf, size,
                   "{\"v\":" VERSION ",\"id\":\"%s\",\"rid\":\"%s\",\"name\":\"%s\",\"started\":%" PRId64
                   ",\"ended\":%" PRId64 ",\"reason\":\"%s\",\"exit_code\":%" PRIu32
                   ",\"ok\":%s,\"outcome\":\"%s\",\"attempts\":%d,\"peak_rss_bytes\":%" PRIu64
                   ",\"cpu_user_ms\":%" PRIu64 ",\"cpu_sys_ms\":%" PRIu64 ",\"runs\":[%" PRIu64
                   ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "]}\n",
                   r->id, r->rid, r->name, r->started_ms, r->ended_ms, ctrun_reason_name(r->reason),
                   r->exit_code, r->ok ? "true" : "false", ctrun_outcome_name(r->outcome),
                   r->attempts, r->peak_rss_bytes, r->cpu_user_ms, r->cpu_sys_ms, r->total[0],
                   r->total[1], r->total[2], r->total[3]);
  return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* ---- Reading: strict, for lines that may be torn or corrupt --------------- */

struct scan {
  const char *s, *end;
};

static bool lit(struct scan *c, const char *text) {
  size_t n = strlen(text);
  if ((size_t)(c->end - c->s) < n || memcmp(c->s, text, n) != 0)
    return false;
  c->s += n;
  return true;
}

/* A string of [A-Za-z0-9._-] (all a record's strings are), into BUF. */
static bool str(struct scan *c, const char *key, char *buf, size_t size) {
  size_t n = 0;
  if (!lit(c, key) || !lit(c, ":\""))
    return false;
  while (c->s < c->end && *c->s != '"') {
    char ch = *c->s++;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '_' || ch == '-') ||
        n + 1 >= size)
      return false;
    buf[n++] = ch;
  }
  buf[n] = '\0';
  return lit(c, "\"");
}

/* A number as written: digits, no leading zero. */
static bool unum(struct scan *c, uint64_t max, uint64_t *v) {
  uint64_t x = 0;
  int digits = 0;
  if (c->end - c->s >= 2 && c->s[0] == '0' && c->s[1] >= '0' && c->s[1] <= '9')
    return false;
  while (c->s < c->end && *c->s >= '0' && *c->s <= '9') {
    unsigned d = (unsigned)(*c->s++ - '0');
    if (x > (max - d) / 10)
      return false;
    x = x * 10 + d;
    digits++;
  }
  *v = x;
  return digits > 0 && digits <= 20;
}

static bool num(struct scan *c, const char *key, uint64_t max, uint64_t *v) {
  return lit(c, key) && lit(c, ":") && unum(c, max, v);
}

int ctrun_hrec_parse(const char *line, size_t len, struct ctrun_hrec *out) {
  struct scan c = { line, line + len };
  char reason[16], outcome[16];
  uint64_t started, ended, code, attempts;
  bool found = false;

  memset(out, 0, sizeof *out);
  if (!lit(&c, "{\"v\":" VERSION ",") || !str(&c, "\"id\"", out->id, sizeof out->id) ||
      !lit(&c, ",") || !str(&c, "\"rid\"", out->rid, sizeof out->rid) || !lit(&c, ",") ||
      !str(&c, "\"name\"", out->name, sizeof out->name) || !lit(&c, ",") ||
      !num(&c, "\"started\"", INT64_MAX, &started) || !lit(&c, ",") ||
      !num(&c, "\"ended\"", INT64_MAX, &ended) || !lit(&c, ",") ||
      !str(&c, "\"reason\"", reason, sizeof reason) || !lit(&c, ",") ||
      !num(&c, "\"exit_code\"", UINT32_MAX, &code) || !lit(&c, ",\"ok\":"))
    return UV_EINVAL;
  if (lit(&c, "true"))
    out->ok = true;
  else if (!lit(&c, "false"))
    return UV_EINVAL;
  if (!lit(&c, ",") || !str(&c, "\"outcome\"", outcome, sizeof outcome) || !lit(&c, ",") ||
      !num(&c, "\"attempts\"", CTRUN_RETRY_MAX + 1, &attempts) || !lit(&c, ",") ||
      !num(&c, "\"peak_rss_bytes\"", UINT64_MAX, &out->peak_rss_bytes) || !lit(&c, ",") ||
      !num(&c, "\"cpu_user_ms\"", UINT64_MAX, &out->cpu_user_ms) || !lit(&c, ",") ||
      !num(&c, "\"cpu_sys_ms\"", UINT64_MAX, &out->cpu_sys_ms) || !lit(&c, ",\"runs\":["))
    return UV_EINVAL;
  for (int i = 0; i < CTRUN_OUTCOMES; i++)
    if ((i > 0 && !lit(&c, ",")) || !unum(&c, UINT64_MAX, &out->total[i]))
      return UV_EINVAL;
  if (!lit(&c, "]}") || c.s != c.end || out->id[0] == '\0' || out->name[0] == '\0')
    return UV_EINVAL;
  for (int r = 0; r <= CTRUN_REASON_LAST && !found; r++)
    if (strcmp(reason, ctrun_reason_name((enum ctrun_reason)r)) == 0) {
      out->reason = (enum ctrun_reason)r;
      found = true;
    }
  if (!found)
    return UV_EINVAL;
  found = false;
  for (int o = 0; o < CTRUN_OUTCOMES && !found; o++)
    if (strcmp(outcome, outcome_names[o]) == 0) {
      out->outcome = (enum ctrun_outcome)o;
      found = true;
    }
  if (!found)
    return UV_EINVAL;
  out->started_ms = (int64_t)started;
  out->ended_ms = (int64_t)ended;
  out->exit_code = (uint32_t)code;
  out->attempts = (int)attempts;
  return 0;
}

/* The records in TEXT (LEN bytes), oldest first. */
static int parse_all(const char *text, size_t len, struct ctrun_hrec **v, size_t *n, int *corrupt) {
  size_t cap = 0;
  *v = NULL;
  *n = 0;
  *corrupt = 0;
  for (const char *s = text, *end = text + len; s < end;) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    size_t l = nl ? (size_t)(nl - s) : (size_t)(end - s);
    if (*n == cap) {
      struct ctrun_hrec *bigger = realloc(*v, (cap ? 2 * cap : 64) * sizeof **v);
      if (bigger == NULL) {
        free(*v);
        *v = NULL;
        return UV_ENOMEM;
      }
      *v = bigger;
      cap = cap ? 2 * cap : 64;
    }
    /* A last line without its newline is a write in progress or torn. */
    if (nl != NULL && ctrun_hrec_parse(s, l, &(*v)[*n]) == 0)
      (*n)++;
    else if (l > 0)
      (*corrupt)++;
    s += l + 1;
  }
  return 0;
}

/* The last whole record of TEXT (the last line, ended by its newline,
 * that parses), found from the end: an append needs only its counts, and
 * parsing a whole history for them was most of a run's instructions. */
static bool last_record(const char *text, size_t len, struct ctrun_hrec *out) {
  const char *end = text + len;
  while (end > text) {
    const char *nl = end, *s;
    while (nl > text && nl[-1] != '\n')
      nl--; /* a last line without its newline (torn) is passed over */
    if (nl == text)
      return false;
    end = nl - 1; /* the newline that ends the line before */
    s = end;
    while (s > text && s[-1] != '\n')
      s--;
    if (ctrun_hrec_parse(s, (size_t)(end - s), out) == 0)
      return true;
    end = s;
  }
  return false;
}

static void file_of(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s" SUFFIX, name);
}

int ctrun_history_read(struct ctrun_dir *dir, const char *name, struct ctrun_hrec **v, size_t *n,
                       int *corrupt) {
  char file[CTRUN_NAME_MAX + 16], *text;
  size_t len;
  int fd, r;
  *v = NULL;
  *n = 0;
  *corrupt = 0;
  if (!ctrun_name_valid(name))
    return UV_EINVAL;
  file_of(file, sizeof file, name);
  fd = ctrun_dir_openat(dir, file, O_RDONLY);
  if (fd == UV_ENOENT)
    return 0;
  if (fd < 0)
    return fd;
  r = ctrun_fd_read_all(fd, 16 * 1024 * 1024, &text, &len);
  ctrun_fd_close(fd);
  if (r != 0)
    return r;
  r = parse_all(text, len, v, n, corrupt);
  free(text);
  return r;
}

/* Rewrite the history open on FD (locked) as its last KEEP records: a new
 * file, renamed over the old, so that a crash leaves one or the other.
 * Appenders that wait on the old file's lock find it replaced, and reopen. */
static int compact(struct ctrun_dir *dir, const char *file, const struct ctrun_hrec *v, size_t n) {
  char tmp[CTRUN_NAME_MAX + 32], *text;
  size_t from = n > CTRUN_HISTORY_KEEP ? n - CTRUN_HISTORY_KEEP : 0, len = 0;
  int fd, r;
  snprintf(tmp, sizeof tmp, "%s.tmp", file);
  text = malloc((n - from) * LINE_MAX_LEN + 1);
  if (text == NULL)
    return UV_ENOMEM;
  for (size_t i = from; i < n; i++)
    len += ctrun_hrec_format(&v[i], text + len, LINE_MAX_LEN);
  fd = ctrun_dir_openat(dir, tmp, O_RDWR | O_CREAT);
  if (fd < 0) {
    free(text);
    return fd;
  }
  r = ctrun_fd_rewrite(fd, text, len);
  free(text);
  if (ctrun_fd_close(fd) != 0 && r == 0)
    r = UV_EIO;
  if (r == 0)
    r = ctrun_dir_rename(dir, tmp, file);
  if (r != 0)
    ctrun_dir_unlink(dir, tmp);
  return r;
}

int ctrun_history_append(struct ctrun_dir *dir, const struct ctrun_result *res) {
  char file[CTRUN_NAME_MAX + 16], line[LINE_MAX_LEN], *text = NULL;
  struct ctrun_hrec rec, last, *v = NULL;
  struct ctrun_file_info info;
  uint64_t from = 0;
  size_t len = 0, n = 0;
  int fd = -1, r = 0, corrupt;
  bool found;

  if (!ctrun_name_valid(res->name))
    return UV_EINVAL;
  ctrun_hrec_from_result(res, &rec);
  file_of(file, sizeof file, res->name);
  /* Locked, and still the file at that name (not compacted away). */
  for (int tries = 0;; tries++) {
    fd = ctrun_dir_openat(dir, file, O_RDWR | O_CREAT);
    if (fd < 0)
      return fd;
    r = ctrun_fd_lock(fd, CTRUN_LOCK_EXCLUSIVE, 5000);
    if (r == 0 && ctrun_dir_same_file(dir, file, fd))
      break;
    ctrun_fd_close(fd);
    if (r != 0 || tries == 10)
      return r != 0 ? r : UV_EAGAIN;
  }
  /* The counts go on from the last whole record, which the file's tail
   * holds (a record is a line of at most LINE_MAX_LEN, one torn line may
   * follow it): only the tail is read, unless a record cannot be found
   * there, or the file is due for compaction (below), which reads it all. */
  r = ctrun_fd_info(fd, &info);
  if (r == 0 && info.size > TAIL && info.size + LINE_MAX_LEN <= COMPACT_AT)
    from = info.size - TAIL;
  if (r == 0)
    r = ctrun_fd_read_from(fd, from, 16 * 1024 * 1024, &text, &len);
  found = r == 0 && last_record(text, strlen(text), &last);
  if (r == 0 && from > 0 && !found) {
    free(text);
    text = NULL;
    from = 0;
    r = ctrun_fd_read_all(fd, 16 * 1024 * 1024, &text, &len);
    found = r == 0 && last_record(text, strlen(text), &last);
  }
  if (r == 0) {
    size_t tail = strlen(text);
    uint64_t had = from + tail; /* where the file's text ends */
    if (found)
      memcpy(rec.total, last.total, sizeof rec.total);
    rec.total[rec.outcome]++;
    /* A line a crashed writer left unfinished is ended first: it reads as
     * one unreadable record, and this one stays whole. */
    line[0] = '\n';
    len = ctrun_hrec_format(&rec, line + 1, sizeof line - 1);
    if (tail > 0 && text[tail - 1] != '\n')
      r = ctrun_fd_write_at(fd, line, len + 1, had);
    else
      r = ctrun_fd_write_at(fd, line + 1, len, had);
    /* A write cut short (a full disk, a file size limit): the history as it
     * was, or none at all if it was empty. */
    if (r != 0) {
      if (had == 0)
        ctrun_dir_unlink(dir, file);
      else
        ctrun_fd_truncate(fd, had);
    }
  }
  /* Past its bound, the file is parsed whole, once, to keep its last
   * records. */
  if (r == 0 && from == 0 && len + (text ? strlen(text) : 0) > COMPACT_AT &&
      parse_all(text, strlen(text), &v, &n, &corrupt) == 0) {
    struct ctrun_hrec *all = realloc(v, (n + 1) * sizeof *v);
    if (all != NULL) {
      v = all;
      v[n++] = rec;
      compact(dir, file, v, n); /* best effort: the record is written */
    }
  }
  free(v);
  free(text);
  ctrun_fd_close(fd); /* and with it the lock */
  return r;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

struct names {
  char **v;
  size_t n, cap;
};

static int one_name(const char *file, void *arg) {
  struct names *c = arg;
  size_t len = strlen(file), s = strlen(SUFFIX);
  char name[CTRUN_NAME_MAX + 1];
  if (len <= s || len - s > CTRUN_NAME_MAX || strcmp(file + len - s, SUFFIX) != 0)
    return 0;
  memcpy(name, file, len - s);
  name[len - s] = '\0';
  if (!ctrun_name_valid(name))
    return 0;
  if (c->n == c->cap) {
    char **bigger = realloc(c->v, (c->cap ? 2 * c->cap : 16) * sizeof *bigger);
    if (bigger == NULL)
      return UV_ENOMEM;
    c->v = bigger;
    c->cap = c->cap ? 2 * c->cap : 16;
  }
  if ((c->v[c->n] = strdup(name)) == NULL)
    return UV_ENOMEM;
  c->n++;
  return 0;
}

int ctrun_history_names(struct ctrun_dir *dir, char ***names, size_t *n) {
  struct names c = { NULL, 0, 0 };
  int r = ctrun_dir_each(dir, one_name, &c);
  if (r != 0) {
    for (size_t i = 0; i < c.n; i++)
      free(c.v[i]);
    free(c.v);
    return r;
  }
  if (c.n > 1)
    qsort(c.v, c.n, sizeof *c.v, by_name);
  *names = c.v;
  *n = c.n;
  return 0;
}
