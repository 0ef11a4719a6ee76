/* End-to-end: --ping and --ping-file against a recording HTTP server of
 * the test's own (tests/helper/ping_server.py, on 127.0.0.1): the
 * healthchecks.io sequence with the run's rid, the log's tail as the end
 * ping's body, and a server that is slow, failing, refusing or not
 * trusted never changing the run's exit status nor showing the URL's
 * secret part. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json_check.h"

/* The servers a test started: stopped by the teardown too, should the
 * test fail before it stops them itself. */
static pid_t servers[8];
static int nservers;

struct server {
  pid_t pid;
  int port;
  char log[600];
  char url[400]; /* http(s)://127.0.0.1:PORT/s3cr3t-uuid: the check's URL */
};

struct req {
  double at;
  char method[8];
  char path[1200];
  size_t len;
  int seq;
};

static void server_start(struct e2e *t, struct server *s, const char *tag, const char *const *opts) {
  char portfile[600], out[600], *text;
  const char *argv[16];
  int n = 0;
  memset(s, 0, sizeof *s);
  snprintf(portfile, sizeof portfile, "%s/%s.port", t->dir, tag);
  snprintf(s->log, sizeof s->log, "%s/%s.log", t->dir, tag);
  argv[n++] = getenv("CTRUN_PYTHON");
  argv[n++] = getenv("CTRUN_PING_SERVER");
  argv[n++] = portfile;
  argv[n++] = s->log;
  for (; *opts != NULL && n < 15; opts++)
    argv[n++] = *opts;
  argv[n] = NULL;
  assert_non_null(argv[0]);
  assert_non_null(argv[1]);
  pid_t pid = e2e_helper(t, tag, argv);
  servers[nservers++] = pid;
  s->pid = pid;
  if (!e2e_wait_file(portfile, 20)) {
    snprintf(out, sizeof out, "%s/%s.err", t->dir, tag);
    text = e2e_read(out);
    fail_msg("the recording server did not start: %s", text);
  }
  text = e2e_read(portfile);
  s->port = atoi(text);
  free(text);
  assert_true(s->port > 0);
  snprintf(s->url, sizeof s->url, "%s://127.0.0.1:%d/s3cr3t-uuid",
           strncmp(tag, "tls", 3) == 0 ? "https" : "http", s->port);
}
#define SERVER(t, s, tag, ...) server_start((t), (s), (tag), (const char *const[]){ __VA_ARGS__ })

static void server_stop(struct server *s) {
  if (s->pid <= 0)
    return;
  kill(s->pid, SIGTERM);
  assert_int_not_equal(e2e_wait(s->pid, 10), -1);
  for (int i = 0; i < nservers; i++)
    if (servers[i] == s->pid)
      servers[i] = servers[--nservers];
  s->pid = 0;
}

static int teardown(void **state) {
  for (int i = 0; i < nservers; i++) {
    kill(servers[i], SIGKILL);
    e2e_wait(servers[i], 10);
  }
  nservers = 0;
  return e2e_teardown(state);
}
#define PING_TEST(f) cmocka_unit_test_setup_teardown(f, e2e_setup, teardown)

/* The requests the server has recorded so far, in the order they came. */
static int requests(const struct server *s, struct req *r, int max) {
  char *text = e2e_read(s->log), *line = text;
  int n = 0;
  while (n < max && line != NULL && *line != '\0') {
    char *next = strchr(line, '\n');
    if (next != NULL)
      *next++ = '\0';
    if (sscanf(line, "%d %lf %7s %1199s %zu", &r[n].seq, &r[n].at, r[n].method, r[n].path,
               &r[n].len) == 5)
      n++;
    line = next;
  }
  free(text);
  return n;
}

/* Request R's body. */
static char *body_of(const struct server *s, const struct req *r, size_t *len) {
  char path[700];
  FILE *f;
  char *buf = calloc(1, r->len + 1);
  snprintf(path, sizeof path, "%s.body.%d", s->log, r->seq);
  f = fopen(path, "rb");
  assert_non_null(f);
  *len = fread(buf, 1, r->len, f);
  fclose(f);
  return buf;
}

/* The rid in the report at PATH. */
static void report_rid(const char *path, char rid[37]) {
  char *rep = e2e_read(path), *at = strstr(rep, "\"rid\":\"");
  assert_true(json_valid(rep));
  assert_non_null(at);
  snprintf(rid, 37, "%.36s", at + 7);
  free(rep);
}

/* How many lines of TEXT hold NEEDLE. */
static int lines_with(const char *text, const char *needle) {
  int n = 0;
  for (const char *line = text; line != NULL && *line != '\0';) {
    const char *end = strchr(line, '\n');
    size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
    char *copy = strndup(line, len);
    n += strstr(copy, needle) != NULL;
    free(copy);
    line = end != NULL ? end + 1 : NULL;
  }
  return n;
}

static void expect_path(const struct req *r, const char *method, const char *path) {
  if (strcmp(r->method, method) != 0 || strcmp(r->path, path) != 0)
    fail_msg("request %d: %s %s, not %s %s", r->seq, r->method, r->path, method, path);
}

/* The whole sequence: start, then success, both with the report's rid;
 * and a URL with a query of its own keeps it. */
static void start_then_success_with_the_run_id(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  struct req r[8];
  char rid[37], want[600], url[500];
  const char *report = e2e_path(t, "report.json");

  SERVER(t, &s, "hc", NULL);
  E2E_RUN(t, &res, "--ping", s.url, "--report", report, "--", "@child", "out", "hi", "exit", "0");
  assert_int_equal(res.code, 0);
  assert_string_equal(res.err, "");
  report_rid(report, rid);
  assert_int_equal(requests(&s, r, 8), 2);
  snprintf(want, sizeof want, "/s3cr3t-uuid/start?rid=%s", rid);
  expect_path(&r[0], "GET", want);
  snprintf(want, sizeof want, "/s3cr3t-uuid?rid=%s", rid);
  expect_path(&r[1], "GET", want);

  /* healthchecks' slug URLs carry ?create=1; a trailing slash is not doubled. */
  snprintf(url, sizeof url, "http://127.0.0.1:%d/key/my-job/?create=1", s.port);
  E2E_RUN(t, &res, "--ping", url, "--report", report, "--", "@child", "exit", "0");
  assert_int_equal(res.code, 0);
  report_rid(report, rid);
  assert_int_equal(requests(&s, r, 8), 4);
  snprintf(want, sizeof want, "/key/my-job/start?create=1&rid=%s", rid);
  expect_path(&r[2], "GET", want);
  snprintf(want, sizeof want, "/key/my-job?create=1&rid=%s", rid);
  expect_path(&r[3], "GET", want);

  /* A detached run: its supervisor pings, after the caller has returned. */
  E2E_RUN(t, &res, "-d", "--ping", s.url, "--", "@child", "sleep", "0.3", "exit", "0");
  assert_int_equal(res.code, 0);
  for (int i = 0; i < 500 && requests(&s, r, 8) < 6; i++)
    e2e_sleep(0.02);
  assert_int_equal(requests(&s, r, 8), 6);
  assert_non_null(strstr(r[4].path, "/s3cr3t-uuid/start?rid="));
  assert_non_null(strstr(r[5].path, "/s3cr3t-uuid?rid="));
  assert_string_equal(r[4].path + strlen("/s3cr3t-uuid/start"), r[5].path + strlen("/s3cr3t-uuid"));
  /* The supervisor goes once the end ping is sent (the server, marked too, stays). */
  for (int i = 0; i < 500 && e2e_count_marked(t) > 1; i++)
    e2e_sleep(0.02);
  assert_int_equal(e2e_count_marked(t), 1);
  server_stop(&s);
}

/* A failure pings /EXIT; a run ctrun ended (here a timeout) pings /fail. */
static void failures_ping_the_exit_status_or_fail(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  struct req r[8];
  char rid[37], want[600];
  const char *report = e2e_path(t, "report.json");

  SERVER(t, &s, "hc", NULL);
  E2E_RUN(t, &res, "--ping", s.url, "--report", report, "-t", "0.3", "--", "@child", "sleep", "30");
  assert_int_equal(res.code, 124);
  report_rid(report, rid);
  assert_int_equal(requests(&s, r, 8), 2);
  snprintf(want, sizeof want, "/s3cr3t-uuid/start?rid=%s", rid);
  expect_path(&r[0], "GET", want);
  snprintf(want, sizeof want, "/s3cr3t-uuid/fail?rid=%s", rid);
  expect_path(&r[1], "GET", want);

  E2E_RUN(t, &res, "--ping", s.url, "--report", report, "--", "@child", "exit", "3");
  assert_int_equal(res.code, 3);
  report_rid(report, rid);
  assert_int_equal(requests(&s, r, 8), 4);
  snprintf(want, sizeof want, "/s3cr3t-uuid/3?rid=%s", rid);
  expect_path(&r[3], "GET", want);

  /* A command that cannot start: no start ping, the end says 127. */
  E2E_RUN(t, &res, "--ping", s.url, "--report", report, "--", "/nonexistent/program");
  assert_int_equal(res.code, 127);
  report_rid(report, rid);
  assert_int_equal(requests(&s, r, 8), 5);
  snprintf(want, sizeof want, "/s3cr3t-uuid/127?rid=%s", rid);
  expect_path(&r[4], "GET", want);
  server_stop(&s);
}

/* --ok-exit 24: 24 is a success to the monitor too; without it, /24. */
static void ok_exit_pings_success(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  struct req r[8];
  char rid[37], want[600];
  const char *report = e2e_path(t, "report.json");

  SERVER(t, &s, "hc", NULL);
  E2E_RUN(t, &res, "--ping", s.url, "--ok-exit", "24", "--report", report, "--", "@child", "exit",
          "24");
  assert_int_equal(res.code, 24);
  report_rid(report, rid);
  assert_int_equal(requests(&s, r, 8), 2);
  snprintf(want, sizeof want, "/s3cr3t-uuid?rid=%s", rid);
  expect_path(&r[1], "GET", want);
  E2E_RUN(t, &res, "--ping", s.url, "--report", report, "--", "@child", "exit", "24");
  assert_int_equal(res.code, 24);
  report_rid(report, rid);
  assert_int_equal(requests(&s, r, 8), 4);
  snprintf(want, sizeof want, "/s3cr3t-uuid/24?rid=%s", rid);
  expect_path(&r[3], "GET", want);
  server_stop(&s);
}

/* The end ping is a POST of the log's last 10 KB exactly; of this run's
 * part of the log only; and, under --quiet-success alone, of the held
 * back output. */
static void the_body_is_the_tail_of_the_output(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  struct req r[8];
  const char *log = e2e_path(t, "job.log");
  size_t len;
  char *body, *text;

  SERVER(t, &s, "hc", NULL);
  E2E_RUN(t, &res, "--ping", s.url, "-o", log, "--", "@child", "spew", "1", "30000", "exit", "2");
  assert_int_equal(res.code, 2);
  assert_int_equal(requests(&s, r, 8), 2);
  assert_string_equal(r[1].method, "POST");
  assert_int_equal(r[1].len, 10240);
  body = body_of(&s, &r[1], &len);
  text = e2e_read(log);
  assert_true(strlen(text) > 30000);
  assert_memory_equal(body, text + strlen(text) - 10240, 10240);
  assert_non_null(strstr(body, " end: exit 2 after "));
  free(body);

  /* A second, small run into the same log: only its own lines. */
  E2E_RUN(t, &res, "--ping", s.url, "-o", log, "--", "@child", "out", "small run", "exit", "0");
  assert_int_equal(res.code, 0);
  assert_int_equal(requests(&s, r, 8), 4);
  assert_string_equal(r[3].method, "POST");
  body = body_of(&s, &r[3], &len);
  free(text);
  text = e2e_read(log);
  assert_true(len < 1000);
  assert_memory_equal(body, text + strlen(text) - len, len);
  assert_non_null(strstr(body, " start: "));
  assert_non_null(strstr(body, "small run\n"));
  assert_null(strstr(body, "end: exit 2"));
  /* It begins with the run's start line. */
  char *nl = strchr(body, '\n');
  assert_non_null(nl);
  *nl = '\0';
  assert_non_null(strstr(body, " ctrun run="));
  assert_non_null(strstr(body, " start: "));
  free(body);
  free(text);

  /* --quiet-success without -o: the held-back output, which is not printed. */
  E2E_RUN(t, &res, "--ping", s.url, "--quiet-success", "--", "@child", "out", "held back", "exit",
          "0");
  assert_int_equal(res.code, 0);
  assert_null(strstr(res.out, "held back"));
  assert_int_equal(requests(&s, r, 8), 6);
  assert_string_equal(r[5].method, "POST");
  body = body_of(&s, &r[5], &len);
  assert_string_equal(body, "held back\n");
  free(body);

  /* Nothing captured: a GET. */
  E2E_RUN(t, &res, "--ping", s.url, "--", "@child", "out", "shown", "exit", "0");
  assert_int_equal(requests(&s, r, 8), 8);
  assert_string_equal(r[7].method, "GET");
  assert_int_equal(r[7].len, 0);
  server_stop(&s);
}

/* The start ping goes in the background: the command starts at once,
 * however slow the server; and the end ping waits for the start ping, so
 * the two arrive in order. */
static void the_start_ping_neither_delays_nor_overtakes(void **state) {
  struct e2e *t = *state;
  struct server s;
  struct req r[8];
  const char *ran = e2e_path(t, "ran");
  double t0;

  SERVER(t, &s, "hc", "--delay-start", "2", NULL);
  t0 = e2e_now();
  pid_t run = E2E_START(t, "--ping", s.url, "--", "@child", "pidfile", ran, "exit", "0");
  assert_true(e2e_wait_file(ran, 1.5));
  assert_true(e2e_now() - t0 < 1.5);
  assert_int_equal(e2e_wait(run, 30), 0);
  assert_true(e2e_now() - t0 >= 1.9);
  assert_int_equal(requests(&s, r, 8), 2);
  assert_non_null(strstr(r[0].path, "/start?rid="));
  assert_null(strstr(r[1].path, "/start"));
  /* The end came only once the start was answered (2 s after it came). */
  if (r[1].at < r[0].at + 1.9)
    fail_msg("the end ping came %.3f s after the start ping, before its answer", r[1].at - r[0].at);
  server_stop(&s);
}

/* The start ping of a slow server is still in flight when --retry starts
 * the next attempt: its socket is not inherited. */
static void a_retry_does_not_inherit_the_pings_socket(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  const char *count = e2e_path(t, "count");

  SERVER(t, &s, "hc", "--delay-start", "3", NULL);
  E2E_RUN(t, &res, "--ping", s.url, "--retry", "1", "--retry-delay", "0.5", "--", "@child", "fds",
          "fails", count, "1");
  assert_int_equal(res.code, 0);
  /* Both attempts print their descriptors above 2 ("none", unless the
   * test itself inherited some): the same. */
  char first[256], second[256];
  if (sscanf(res.out, "%255[^\n]\n%255[^\n]", first, second) != 2 || strcmp(first, second) != 0)
    fail_msg("the second attempt had other descriptors open: %s", res.out);
  server_stop(&s);
}

/* A server that answers after 30 s: each try gives up at 10 s; the run
 * waits for the start ping's try (10 s), then the end ping's three
 * (3 x 10 s + 2 pauses of 1 s): about 42 s, and the exit status stands. */
static void a_slow_server_holds_the_run_only_so_long(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  struct req r[16];

  SERVER(t, &s, "hc", "--delay", "30", NULL);
  E2E_RUN(t, &res, "--ping", s.url, "--", "@child", "exit", "3");
  assert_int_equal(res.code, 3);
  if (res.secs < 35 || res.secs > 47)
    fail_msg("the run took %.1f s, not about 42 s", res.secs);
  assert_int_equal(lines_with(res.err, "ping "), 2);
  assert_int_equal(lines_with(res.err, "failed: no answer within 10s"), 2);
  assert_null(strstr(res.err, "s3cr3t"));
  assert_int_equal(requests(&s, r, 16), 4); /* one start, three ends */
  server_stop(&s);
}

/* A 500 and a refused connection: the status stands, one line a ping on
 * stderr, naming the server but not the URL's secret path. */
static void failed_pings_change_nothing(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  struct req r[16];
  char url[200], shown[100];
  int ends = 0;

  SERVER(t, &s, "hc", "--status", "500", NULL);
  E2E_RUN(t, &res, "--ping", s.url, "--", "@child", "exit", "0");
  assert_int_equal(res.code, 0);
  snprintf(shown, sizeof shown, "ping http://127.0.0.1:%d failed: HTTP 500", s.port);
  assert_int_equal(lines_with(res.err, "ctrun: run "), 2);
  assert_int_equal(lines_with(res.err, shown), 2);
  assert_int_equal(lines_with(res.err, "(success ping, 3 tries)"), 1);
  assert_null(strstr(res.err, "s3cr3t"));
  int n = requests(&s, r, 16);
  for (int i = 0; i < n; i++)
    ends += strstr(r[i].path, "/start?") == NULL;
  assert_int_equal(ends, 3); /* the end ping was tried three times */
  server_stop(&s);

  /* A port nothing listens on. */
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
  close(fd);
  snprintf(url, sizeof url, "http://user:pw@127.0.0.1:%d/s3cr3t-uuid", ntohs(a.sin_port));
  E2E_RUN(t, &res, "--ping", url, "--", "@child", "exit", "7");
  assert_int_equal(res.code, 7);
  snprintf(shown, sizeof shown, "ping http://127.0.0.1:%d failed: ", ntohs(a.sin_port));
  assert_int_equal(lines_with(res.err, "ctrun: run "), 2);
  assert_int_equal(lines_with(res.err, shown), 2);
  assert_null(strstr(res.err, "s3cr3t"));
  assert_null(strstr(res.err, "user:pw"));
  assert_true(res.secs < 8); /* a refusal is quick, with its two pauses */
}

/* --ping-file: the URL is the file's first line, trimmed; a file that
 * cannot be read, or whose URL is bad, is 125 before anything runs (and
 * the bad URL is not printed); --ping with a bad URL names it. */
static void ping_file_and_bad_urls(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  struct req r[8];
  const char *file = e2e_path(t, "hc.url"), *ran = e2e_path(t, "ran");
  FILE *f;

  SERVER(t, &s, "hc", NULL);
  f = fopen(file, "w");
  fprintf(f, "  %s  \r\nsecond line\n", s.url);
  fclose(f);
  E2E_RUN(t, &res, "--ping-file", file, "--", "@child", "exit", "0");
  assert_int_equal(res.code, 0);
  assert_int_equal(requests(&s, r, 8), 2);
  assert_non_null(strstr(r[0].path, "/s3cr3t-uuid/start?rid="));
  assert_non_null(strstr(r[1].path, "/s3cr3t-uuid?rid="));

  E2E_RUN(t, &res, "--ping-file", e2e_path(t, "missing"), "--", "@child", "pidfile", ran);
  assert_int_equal(res.code, 125);
  assert_non_null(strstr(res.err, "cannot read --ping-file '"));
  E2E_RUN(t, &res, "--ping-file", t->dir, "-d", "--", "@child", "pidfile", ran);
  assert_int_equal(res.code, 125);
  f = fopen(file, "w");
  fprintf(f, "ftp://host/s3cr3t-token\n");
  fclose(f);
  E2E_RUN(t, &res, "--ping-file", file, "--", "@child", "pidfile", ran);
  assert_int_equal(res.code, 125);
  assert_non_null(strstr(res.err, "invalid URL in --ping-file"));
  assert_null(strstr(res.err, "s3cr3t-token"));
  E2E_RUN(t, &res, "--ping", "hxxp://host/x", "--", "@child", "pidfile", ran);
  assert_int_equal(res.code, 125);
  assert_non_null(strstr(res.err, "invalid URL 'hxxp://host/x' for --ping"));
  E2E_RUN(t, &res, "--ping", "http:///x", "--", "@child", "pidfile", ran);
  assert_int_equal(res.code, 125);
  E2E_RUN(t, &res, "--ping", s.url, "--ping-file", file, "--", "@child", "pidfile", ran);
  assert_int_equal(res.code, 125);
  assert_false(e2e_wait_file(ran, 0.2));
  assert_int_equal(requests(&s, r, 8), 2);
  server_stop(&s);
}

/* A run skipped for a busy lock sends nothing. */
static void a_skipped_run_sends_nothing(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  struct req r[8];
  const char *lock = e2e_path(t, "job.lock");
  int fd = open(lock, O_RDWR | O_CREAT, 0644);

  SERVER(t, &s, "hc", NULL);
  assert_int_equal(flock(fd, LOCK_EX), 0);
  E2E_RUN(t, &res, "--ping", s.url, "-l", lock, "--on-busy=skip", "--", "@child", "exit", "0");
  assert_int_equal(res.code, 0);
  E2E_RUN(t, &res, "--ping", s.url, "-l", lock, "-d", "--on-busy=skip", "--", "@child", "exit", "0");
  assert_int_equal(res.code, 0);
  close(fd);
  e2e_sleep(0.3);
  assert_int_equal(requests(&s, r, 8), 0);
  server_stop(&s);
}

/* HTTPS, against a CA made here: trusted through CURL_CA_BUNDLE, as the
 * curl tool does; without it the certificate is refused (one try each,
 * no request reaches the server) and the run's status stands. */
static void https_with_a_private_ca(void **state) {
  struct e2e *t = *state;
  struct e2e_result res;
  struct server s;
  struct req r[8];
  char cmd[4096], shown[100];

  if (system("openssl version >/dev/null 2>&1") != 0)
    skip(); /* no openssl(1) to make a CA with (.ci/run installs it) */
  snprintf(cmd, sizeof cmd,
           "cd '%s' && exec >openssl.log 2>&1 && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout ca.key -out ca.pem -days 2 -subj /CN=ctrun-test-ca && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && "
           "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' >ext && "
           "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out srv.pem -days 2 -extfile ext",
           t->dir);
  if (system(cmd) != 0) {
    char *log = e2e_read(e2e_path(t, "openssl.log"));
    fail_msg("openssl: %s", log);
  }
  SERVER(t, &s, "tls", "--tls", e2e_path(t, "srv.pem"), e2e_path(t, "srv.key"), NULL);
  assert_non_null(strstr(s.url, "https://"));

  setenv("CURL_CA_BUNDLE", e2e_path(t, "ca.pem"), 1);
  E2E_RUN(t, &res, "--ping", s.url, "--", "@child", "exit", "0");
  unsetenv("CURL_CA_BUNDLE");
  assert_int_equal(res.code, 0);
  assert_string_equal(res.err, "");
  assert_int_equal(requests(&s, r, 8), 2);
  assert_non_null(strstr(r[0].path, "/s3cr3t-uuid/start?rid="));
  assert_non_null(strstr(r[1].path, "/s3cr3t-uuid?rid="));

  /* The system's CAs do not know this one. */
  E2E_RUN(t, &res, "--ping", s.url, "--", "@child", "exit", "5");
  assert_int_equal(res.code, 5);
  snprintf(shown, sizeof shown, "ping https://127.0.0.1:%d failed: ", s.port);
  assert_int_equal(lines_with(res.err, shown), 2);
  assert_int_equal(lines_with(res.err, "(failure ping, 1 try)"), 1);
  assert_null(strstr(res.err, "s3cr3t"));
  assert_int_equal(requests(&s, r, 8), 2);
  server_stop(&s);
}

/* Whether libcurl is mapped into process PID. */
static bool maps_curl(pid_t pid) {
  char path[64], *text;
  bool found;
  snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
  text = e2e_read(path);
  found = strstr(text, "libcurl") != NULL;
  free(text);
  return found;
}

/* A run that pings nothing does not load libcurl (its thirty libraries
 * tripled the cost of every run); one that pings does, when it pings. */
static void only_runs_that_ping_load_libcurl(void **state) {
  struct e2e *t = *state;
  struct server s;
  const char *ready = e2e_path(t, "ready");
  pid_t run = E2E_START(t, "--", "@child", "pidfile", ready, "sleep", "1");
  assert_true(e2e_wait_file(ready, 10));
  assert_false(maps_curl(run));
  assert_int_equal(e2e_wait(run, 30), 0);
  SERVER(t, &s, "hc", NULL);
  unlink(ready);
  run = E2E_START(t, "--ping", s.url, "--", "@child", "pidfile", ready, "sleep", "1");
  assert_true(e2e_wait_file(ready, 10));
  e2e_sleep(0.3);
  assert_true(maps_curl(run));
  assert_int_equal(e2e_wait(run, 30), 0);
}

int main(void) {
  /* The test's requests go to its own server, never through a proxy. */
  static const char *const proxies[] = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY",
                                         "all_proxy", "CURL_CA_BUNDLE" };
  for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
    unsetenv(proxies[i]);
  if (getenv("CTRUN_PING_BUILT") != NULL && strcmp(getenv("CTRUN_PING_BUILT"), "0") == 0) {
    fprintf(stderr, "e2e-ping: ctrun is built without HTTP support (-Dping=disabled)\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
    PING_TEST(start_then_success_with_the_run_id),
    PING_TEST(failures_ping_the_exit_status_or_fail),
    PING_TEST(ok_exit_pings_success),
    PING_TEST(the_body_is_the_tail_of_the_output),
    PING_TEST(the_start_ping_neither_delays_nor_overtakes),
    PING_TEST(a_retry_does_not_inherit_the_pings_socket),
    PING_TEST(failed_pings_change_nothing),
    PING_TEST(ping_file_and_bad_urls),
    PING_TEST(a_skipped_run_sends_nothing),
    PING_TEST(https_with_a_private_ca),
    PING_TEST(a_slow_server_holds_the_run_only_so_long),
    PING_TEST(only_runs_that_ping_load_libcurl),
  };
  return e2e_main("e2e-ping", tests, sizeof tests / sizeof tests[0]);
}
