/* --ping and --ping-file: the healthchecks.io protocol (see ping.h).  The
 * URL rules, the order of the pings, their tries and what a failure says
 * live here; the HTTP request itself is the platform's (src/unix/ping.c,
 * src/win/ping.c). */
#include "ctrun/ping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#ifndef _WIN32
#include <signal.h>
#endif

#include "ctrun/fs.h"
#include "ctrun/msg.h"
#include "ctrun/registry.h"

bool ctrun_ping_supported(void) { return ctrun_http_available(); }

static bool lower_prefix(const char *s, const char *prefix) {
  for (; *prefix != '\0'; s++, prefix++)
    if ((*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s) != *prefix)
      return false;
  return true;
}

/* The parts of a URL that the pings need.  Returns 0, or -1 with WHY. */
static int parse(const char *url, struct ctrun_ping *p, char *why, size_t whylen) {
  const char *s, *auth, *host, *end, *path;
  size_t n = strlen(url), scheme;

  if (n == 0 || n >= CTRUN_PING_URL_MAX - 64) {
    snprintf(why, whylen, n == 0 ? "it is empty" : "it is longer than %d bytes",
             CTRUN_PING_URL_MAX - 65);
    return -1;
  }
  for (s = url; *s != '\0'; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
      snprintf(why, whylen, "a URL has no spaces, control bytes or non-ASCII bytes "
                            "(percent-encode them)");
      return -1;
    }
  if (lower_prefix(url, "http://"))
    scheme = 4;
  else if (lower_prefix(url, "https://"))
    scheme = 5;
  else {
    snprintf(why, whylen, "only http:// and https:// URLs are supported");
    return -1;
  }
  if (strchr(url, '#') != NULL) {
    snprintf(why, whylen, "a fragment (#...) is never sent to a server");
    return -1;
  }
  auth = url + scheme + 3;
  end = auth + strcspn(auth, "/?");
  path = end;
  /* user:password@ is allowed (and never shown); the host follows. */
  host = auth;
  for (s = auth; s < end; s++)
    if (*s == '@')
      host = s + 1;
  if (*host == '[') {
    s = host + 1;
    while (s < end && (strchr("0123456789abcdefABCDEF:.", *s) != NULL))
      s++;
    if (s == host + 1 || s >= end || *s != ']') {
      snprintf(why, whylen, "the IPv6 address in brackets is not valid");
      return -1;
    }
    s++;
  } else {
    s = host;
    while (s < end && (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_~%",
                              *s) != NULL))
      s++;
    if (s == host) {
      snprintf(why, whylen, "it names no host");
      return -1;
    }
  }
  if (s < end && *s == ':') {
    const char *digits = ++s;
    long port = 0;
    while (s < end && *s >= '0' && *s <= '9' && s - digits < 6)
      port = port * 10 + (*s++ - '0');
    if (s == digits || s != end || port < 1 || port > 65535) {
      snprintf(why, whylen, "the port is not a number from 1 to 65535");
      return -1;
    }
  }
  if (s != end) {
    snprintf(why, whylen, "the host part holds a character a host name cannot");
    return -1;
  }
  if (p == NULL)
    return 0;
  /* The base: everything up to the query, without trailing slashes, so
   * that "/start" and "/EXIT" are appended to the check's own path. */
  n = strcspn(url, "?");
  while (n > (size_t)(path - url) && url[n - 1] == '/')
    n--;
  snprintf(p->base, sizeof p->base, "%.*s", (int)n, url);
  s = strchr(url, '?');
  snprintf(p->query, sizeof p->query, "%s", s != NULL ? s + 1 : "");
  /* Shown: scheme://host[:port], never the user, the path or the query. */
  snprintf(p->shown, sizeof p->shown, "%.*s%.*s", (int)(scheme + 3), url,
           (int)(end - host) < 200 ? (int)(end - host) : 200, host);
  for (char *c = p->shown; *c != '\0'; c++)
    if (*c >= 'A' && *c <= 'Z')
      *c = (char)(*c - 'A' + 'a');
  return 0;
}

int ctrun_ping_url_check(const char *url, char *why, size_t whylen) {
  return parse(url, NULL, why, whylen);
}

int ctrun_ping_open(struct ctrun_ping *p, const struct ctrun_run_opts *o) {
  char why[160], line[CTRUN_PING_URL_MAX];
  const char *url = o->ping_url;
  int e;

  memset(p, 0, sizeof *p);
  if (o->ping_url == NULL && o->ping_file == NULL)
    return 0;
  if (!ctrun_ping_supported()) {
    ctrun_error("%s: this ctrun was built without HTTP support", o->ping_url ? "--ping" : "--ping-file");
    return -1;
  }
  if (url == NULL) {
    e = ctrun_ping_os_read_small(o->ping_file, line, sizeof line);
    if (e != 0) {
      ctrun_error("cannot read --ping-file '%s': %s", o->ping_file,
                  e == UV_EINVAL ? "not a regular file" : ctrun_strerror(e));
      return -1;
    }
    /* The first line, trimmed of blanks (and of a CR from Windows). */
    line[strcspn(line, "\n")] = '\0';
    size_t n = strlen(line), i = 0;
    while (n > 0 && strchr(" \t\r", line[n - 1]) != NULL)
      line[--n] = '\0';
    while (line[i] == ' ' || line[i] == '\t')
      i++;
    url = line + i;
  }
  if (parse(url, p, why, sizeof why) != 0) {
    /* The URL itself is never printed from the file: it is a secret. */
    if (o->ping_url != NULL)
      ctrun_error("invalid URL '%s' for --ping: %s", o->ping_url, why);
    else
      ctrun_error("invalid URL in --ping-file '%s' (its first line): %s", o->ping_file, why);
    return -1;
  }
  p->on = true;
  return 0;
}

void ctrun_ping_end_path(const struct ctrun_result *res, char *buf, size_t size) {
  switch (res->reason) {
  case CTRUN_REASON_TIMEOUT: case CTRUN_REASON_IDLE: case CTRUN_REASON_STOPPED:
  case CTRUN_REASON_MEMORY: case CTRUN_REASON_PROCS: case CTRUN_REASON_CPU:
  case CTRUN_REASON_LOCK_LOST:
    if (!res->ok) {
      snprintf(buf, size, "/fail");
      return;
    }
    break;
  default: break;
  }
  if (res->ok)
    snprintf(buf, size, "%s", "");
  else if (res->exit_code > 0 && res->exit_code <= 255)
    snprintf(buf, size, "/%d", res->exit_code);
  else /* 0 that is no success, or a Windows status beyond 255 */
    snprintf(buf, size, "/fail");
}

/* BASE + SUFFIX + ? + the URL's own query & + rid=RID */
static void make_url(const struct ctrun_ping *p, const char *suffix, const char *rid, char *buf,
                     size_t size) {
  snprintf(buf, size, "%s%s?%s%srid=%s", p->base, suffix, p->query, p->query[0] ? "&" : "", rid);
}

/* A ping of any kind, with its tries, as the thread of the start ping or
 * the end of the run sends it. */
struct ping_job {
  char url[2 * CTRUN_PING_URL_MAX + 64]; /* base and query are each shorter than 2000 */
  char shown[CTRUN_PING_SHOWN_MAX];
  char id[CTRUN_ID_LEN + 1], name[CTRUN_NAME_MAX + 1];
  const char *what; /* "start", "success", "failure" */
  const char *body;
  size_t len;
};

/* The start ping in the background: its thread, and how the end of the
 * run waits for it.  Freed by whichever of the two lets go last. */
struct ctrun_ping_bg {
  struct ping_job job;
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cv;
  bool done;      /* the thread is through with its tries */
  bool finishing; /* the run is over: no further try */
  bool abandoned; /* the end stopped waiting: the thread frees this */
};

/* Wait MS, or until the run is over (BG set).  True when it is over. */
static bool pause_for(struct ctrun_ping_bg *bg, uint64_t ms) {
  bool over;
  if (bg == NULL) {
    uv_sleep((unsigned)ms);
    return false;
  }
  uint64_t until = uv_hrtime() + ms * 1000000u;
  uv_mutex_lock(&bg->mu);
  while (!bg->finishing) {
    uint64_t now = uv_hrtime();
    if (now >= until)
      break;
    (void)uv_cond_timedwait(&bg->cv, &bg->mu, until - now);
  }
  over = bg->finishing;
  uv_mutex_unlock(&bg->mu);
  return over;
}

static void send_job(const struct ping_job *j, struct ctrun_ping_bg *bg) {
  char why[256] = "";
  enum ctrun_http_result r = CTRUN_HTTP_FAIL;
  int tries = 0;

  for (; tries <= CTRUN_PING_RETRIES; tries++) {
    if (tries > 0 && pause_for(bg, CTRUN_PING_PAUSE_MS))
      break; /* the run ended meanwhile: the end ping comes next */
    r = ctrun_http_send(j->url, j->body, j->len, CTRUN_PING_TIMEOUT_MS, why, sizeof why);
    ctrun_debug("run %s (%s): %s ping to %s, try %d: %s", j->id, j->name, j->what, j->shown,
                tries + 1, r == CTRUN_HTTP_OK ? "sent" : why);
    if (r != CTRUN_HTTP_RETRY) {
      tries++;
      break;
    }
  }
  if (r != CTRUN_HTTP_OK)
    ctrun_error("run %s (%s): ping %s failed: %s (%s ping, %d %s)", j->id, j->name, j->shown, why,
                j->what, tries, tries == 1 ? "try" : "tries");
}

static void start_thread(void *arg) {
  struct ctrun_ping_bg *bg = arg;
  bool last;
  send_job(&bg->job, bg);
  uv_mutex_lock(&bg->mu);
  bg->done = true;
  last = bg->abandoned;
  uv_cond_broadcast(&bg->cv);
  uv_mutex_unlock(&bg->mu);
  if (last) {
    uv_cond_destroy(&bg->cv);
    uv_mutex_destroy(&bg->mu);
    free(bg);
  }
}

static void job_init(struct ping_job *j, const struct ctrun_ping *p, const char *id,
                     const char *name, const char *what) {
  memset(j, 0, sizeof *j);
  snprintf(j->shown, sizeof j->shown, "%s", p->shown);
  snprintf(j->id, sizeof j->id, "%s", id);
  snprintf(j->name, sizeof j->name, "%s", name);
  j->what = what;
}

void ctrun_ping_start(struct ctrun_ping *p, const char *id, const char *name, const char *rid) {
  struct ctrun_ping_bg *bg;
  int e;

  if (!p->on || p->bg != NULL || ctrun_http_init() != 0)
    return;
  bg = calloc(1, sizeof *bg);
  if (bg == NULL)
    return;
  job_init(&bg->job, p, id, name, "start");
  make_url(p, "/start", rid, bg->job.url, sizeof bg->job.url);
  if (uv_mutex_init(&bg->mu) != 0) {
    free(bg);
    return;
  }
  if (uv_cond_init(&bg->cv) != 0) {
    uv_mutex_destroy(&bg->mu);
    free(bg);
    return;
  }
  {
#ifndef _WIN32
    /* The thread starts with every signal blocked: ctrun's handlers run
     * in the loop's thread, and a write to a closed socket there only
     * fails. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
#endif
    e = uv_thread_create(&bg->thread, start_thread, bg);
#ifndef _WIN32
    pthread_sigmask(SIG_SETMASK, &old, NULL);
#endif
  }
  if (e != 0) {
    /* No thread: the start ping goes now, in the run's own time. */
    ctrun_debug("cannot start a thread for the start ping (%s): sending it now", ctrun_strerror(e));
    send_job(&bg->job, NULL);
    uv_cond_destroy(&bg->cv);
    uv_mutex_destroy(&bg->mu);
    free(bg);
    return;
  }
  p->bg = bg;
}

/* The start ping is done, or given up on: it may not overrun its try in
 * progress by more than this. */
#define START_WAIT_MS (CTRUN_PING_TIMEOUT_MS + 5000)

static void wait_for_start(struct ctrun_ping *p) {
  struct ctrun_ping_bg *bg = p->bg;
  uint64_t until = uv_hrtime() + (uint64_t)START_WAIT_MS * 1000000u;
  bool done;

  if (bg == NULL)
    return;
  p->bg = NULL;
  uv_mutex_lock(&bg->mu);
  bg->finishing = true;
  uv_cond_broadcast(&bg->cv);
  while (!bg->done) {
    uint64_t now = uv_hrtime();
    if (now >= until)
      break;
    (void)uv_cond_timedwait(&bg->cv, &bg->mu, until - now);
  }
  done = bg->done;
  if (!done)
    bg->abandoned = true;
  uv_mutex_unlock(&bg->mu);
  if (!done) {
    ctrun_debug("the start ping did not end in time; sending the end ping all the same");
    return;
  }
  uv_thread_join(&bg->thread);
  uv_cond_destroy(&bg->cv);
  uv_mutex_destroy(&bg->mu);
  free(bg);
}

/* The run's part of the tail of the file FD: from its start line on, if
 * that is within the tail. */
static void run_part(char *buf, size_t *len, const char *id, const char *name) {
  char mark[CTRUN_ID_LEN + CTRUN_NAME_MAX + 40];
  size_t m = (size_t)snprintf(mark, sizeof mark, " ctrun run=%s name=%s start: ", id, name);
  size_t at = *len;
  for (size_t i = 0; i + m <= *len; i++)
    if (memcmp(buf + i, mark, m) == 0) {
      at = i;
      break;
    }
  if (at == *len)
    return;
  while (at > 0 && buf[at - 1] != '\n')
    at--;
  memmove(buf, buf + at, *len - at);
  *len -= at;
}

/* The body of the end ping: the tail of the run's output, where ctrun
 * kept it.  *LEN 0 (and a GET) when nothing was kept. */
static void read_body(const struct ctrun_output *out, const char *log_path,
                      const struct ctrun_result *res, char *buf, size_t *len) {
  *len = 0;
  if (out->log_fd >= 0 && log_path != NULL) {
    /* -o is open for append only: read it again by its path, if that
     * still names the very file the run wrote (a regular file). */
    struct ctrun_file_info a, b;
    int fd = ctrun_ping_os_open(log_path);
    if (fd >= 0) {
      if (ctrun_fd_info(fd, &a) == 0 && ctrun_fd_info(out->log_fd, &b) == 0 &&
          strcmp(a.id, b.id) == 0 && ctrun_ping_os_tail(fd, buf, CTRUN_PING_BODY_MAX, len) == 0)
        run_part(buf, len, res->id, res->name);
      else
        *len = 0;
      ctrun_fd_close(fd);
      if (*len > 0)
        return;
    }
  }
  if (out->capture_fd >= 0 && ctrun_ping_os_tail(out->capture_fd, buf, CTRUN_PING_BODY_MAX, len) != 0)
    *len = 0;
}

void ctrun_ping_finish(struct ctrun_ping *p, const struct ctrun_result *res,
                       const struct ctrun_output *out, const char *log_path) {
  struct ping_job j;
  char path[16];
  char *body;

  if (!p->on)
    return;
  wait_for_start(p);
  if (res->reason == CTRUN_REASON_SKIPPED || ctrun_http_init() != 0)
    return;
  ctrun_ping_end_path(res, path, sizeof path);
  job_init(&j, p, res->id, res->name, path[0] == '\0' ? "success" : "failure");
  make_url(p, path, res->rid, j.url, sizeof j.url);
  body = malloc(CTRUN_PING_BODY_MAX);
  if (body != NULL) {
    read_body(out, log_path, res, body, &j.len);
    j.body = j.len > 0 ? body : NULL;
  }
  send_job(&j, NULL);
  free(body);
}

#if !defined(CTRUN_HTTP_CURL) && !defined(CTRUN_HTTP_WINHTTP)
/* Built without an HTTP client (-Dping=disabled, or none found): --ping
 * is refused before anything runs. */
bool ctrun_http_available(void) { return false; }

int ctrun_http_init(void) { return -1; }

enum ctrun_http_result ctrun_http_send(const char *url, const char *body, size_t len,
                                       uint64_t timeout_ms, char *why, size_t whylen) {
  (void)url;
  (void)body;
  (void)len;
  (void)timeout_ms;
  snprintf(why, whylen, "ctrun was built without HTTP support");
  return CTRUN_HTTP_FAIL;
}
#endif
