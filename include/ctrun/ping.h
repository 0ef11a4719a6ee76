/* --ping URL and --ping-file FILE: tell a monitoring service such as
 * healthchecks.io that a run started and how it ended, in that service's
 * protocol:
 *
 *   start      GET  URL/start?rid=RID   (first attempt only, in the background)
 *   success    URL?rid=RID
 *   failure    URL/EXIT?rid=RID, EXIT the exit status (0-255), or
 *              URL/fail?rid=RID for a run ctrun ended (timeout, idle,
 *              stopped, over a limit) or a status outside 0-255
 *
 * The end is a POST whose body is the last CTRUN_PING_BODY_MAX bytes of
 * the run's captured output (its part of the -o log, else the
 * --quiet-success capture), else a GET.  A ping never changes the run's
 * exit status: a failed one is a line on stderr naming only the URL's
 * scheme and host, for the rest of a ping URL is a secret. */
#ifndef CTRUN_PING_H
#define CTRUN_PING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/options.h"
#include "ctrun/output.h"
#include "ctrun/result.h"

#define CTRUN_PING_URL_MAX 2048      /* the longest URL accepted, NUL included */
#define CTRUN_PING_SHOWN_MAX 300     /* scheme://host[:port], NUL included */
#define CTRUN_PING_BODY_MAX 10240    /* the most of the output sent */
#define CTRUN_PING_TIMEOUT_MS 10000  /* each try of a ping, all of it */
#define CTRUN_PING_RETRIES 2         /* tries after the first */
#define CTRUN_PING_PAUSE_MS 1000     /* between two tries */

struct ctrun_ping_bg;

/* The pings of one run.  Lives in the run; nothing to free unless
 * ctrun_ping_start was called, and then ctrun_ping_finish frees it. */
struct ctrun_ping {
  bool on;
  char base[CTRUN_PING_URL_MAX];  /* scheme://authority/path, no trailing '/' */
  char query[CTRUN_PING_URL_MAX]; /* the URL's own query, without '?' */
  char shown[CTRUN_PING_SHOWN_MAX];
  struct ctrun_ping_bg *bg;       /* the start ping, while in the background */
};

/* Whether this build can send pings at all. */
bool ctrun_ping_supported(void);

/* Check URL as --ping takes it: http:// or https://, a host, an optional
 * port, no spaces, control bytes or fragment.  0, or -1 with WHY (which
 * never quotes the URL: it may come from --ping-file). */
int ctrun_ping_url_check(const char *url, char *why, size_t whylen);

/* Set P up from --ping or --ping-file of O (P->on stays false with
 * neither).  --ping-file is read here: its first line, trimmed.  Returns
 * 0, or -1 after an error message (the run then exits 125). */
int ctrun_ping_open(struct ctrun_ping *p, const struct ctrun_run_opts *o);

/* The command of the run's first attempt has started: send the start
 * ping in the background.  RID is the run's UUID; ID and NAME name the
 * run in messages. */
void ctrun_ping_start(struct ctrun_ping *p, const char *id, const char *name, const char *rid);

/* The run is over and its log written: wait for the start ping (bounded),
 * then send the end ping of RES, with the output's tail from OUT (LOG_PATH
 * is -o's, read back). */
void ctrun_ping_finish(struct ctrun_ping *p, const struct ctrun_result *res,
                       const struct ctrun_output *out, const char *log_path);

/* What the end ping of RES adds to the URL: "" (success), "/3", "/fail". */
void ctrun_ping_end_path(const struct ctrun_result *res, char *buf, size_t size);

/* The platform's part: src/unix/ping.c (libcurl), src/win/ping.c
 * (WinHTTP), src/ping_none.c (neither). */
enum ctrun_http_result {
  CTRUN_HTTP_OK,    /* a 2xx answer */
  CTRUN_HTTP_RETRY, /* worth another try: no answer, a timeout, 408, 429, 5xx */
  CTRUN_HTTP_FAIL,  /* not worth another: another answer, a certificate refused */
};

/* Whether the platform has an HTTP client in this build. */
bool ctrun_http_available(void);

/* Set the HTTP client up, once, before any thread uses it.  0, or -1. */
int ctrun_http_init(void);

/* One try: GET URL (BODY NULL) or POST BODY[0..LEN), giving up after
 * TIMEOUT_MS.  WHY says what failed, in words that never quote the URL's
 * path or query. */
enum ctrun_http_result ctrun_http_send(const char *url, const char *body, size_t len,
                                       uint64_t timeout_ms, char *why, size_t whylen);

/* Open PATH for reading, never through a symbolic link or reparse point,
 * only a regular file: a descriptor, or a negative libuv error. */
int ctrun_ping_os_open(const char *path);

/* Read the first line's worth of the file at PATH (a regular file or a
 * pipe, at most SIZE - 1 bytes) into BUF, NUL-terminated.  0, or a
 * negative libuv error (UV_EISDIR, UV_EINVAL for another kind of file). */
int ctrun_ping_os_read_small(const char *path, char *buf, size_t size);

/* Read the last MAX bytes (fewer if the file is shorter) of the regular
 * file FD into BUF; their count in *LEN.  0 or a negative libuv error. */
int ctrun_ping_os_tail(int fd, char *buf, size_t max, size_t *len);

#endif
