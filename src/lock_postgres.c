/* Fleet locks on PostgreSQL: libpq's asynchronous interface on ctrun's
 * loop.  libpq is loaded at the first such lock (it brings TLS, Kerberos
 * and LDAP libraries that no other run needs).
 *
 * The locks are rows of one table, made on first use:
 *
 *   ctrun_locks (key text PRIMARY KEY, holder text, token bigint,
 *                expires timestamptz)  and the sequence ctrun_lock_fence
 *
 * A lease's expiry is the server's clock_timestamp() at the request + TTL:
 * an expired row is anyone's to take (one statement), a renewal and a
 * release touch only a row that holds our own value. */
#include "ctrun/lease_backend.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrun/dl.h"
#include "ctrun/msg.h"

static struct {
  PQconninfoOption *(*conninfoParse)(const char *, char **);
  void (*conninfoFree)(PQconninfoOption *);
  void (*freemem)(void *);
  PGconn *(*connectStartParams)(const char *const *, const char *const *, int);
  PostgresPollingStatusType (*connectPoll)(PGconn *);
  ConnStatusType (*status)(const PGconn *);
  int (*socket)(const PGconn *);
  char *(*errorMessage)(const PGconn *);
  void (*finish)(PGconn *);
  int (*setnonblocking)(PGconn *, int);
  int (*sendQueryParams)(PGconn *, const char *, int, const Oid *, const char *const *,
                         const int *, const int *, int);
  int (*sendQuery)(PGconn *, const char *);
  int (*flush)(PGconn *);
  int (*consumeInput)(PGconn *);
  int (*isBusy)(PGconn *);
  PGresult *(*getResult)(PGconn *);
  ExecStatusType (*resultStatus)(const PGresult *);
  char *(*resultErrorField)(const PGresult *, int);
  char *(*resultErrorMessage)(const PGresult *);
  void (*clear)(PGresult *);
  int (*ntuples)(const PGresult *);
  char *(*getvalue)(const PGresult *, int, int);
  char *(*cmdTuples)(PGresult *);
  PQnoticeProcessor (*setNoticeProcessor)(PGconn *, PQnoticeProcessor, void *);
} pq;

static int load_libpq(void) {
  char err[300] = "";
  size_t errlen = sizeof err;
  static const char *const names[] = {
#ifdef __APPLE__
    "libpq.5.dylib", "libpq.dylib",
#else
    "libpq.so.5", "libpq.so",
#endif
  };
  static const char *const fns[] = {
    "PQconninfoParse", "PQconninfoFree",  "PQfreemem",       "PQconnectStartParams",
    "PQconnectPoll",   "PQstatus",        "PQsocket",        "PQerrorMessage",
    "PQfinish",        "PQsetnonblocking", "PQsendQueryParams", "PQsendQuery",
    "PQflush",         "PQconsumeInput",  "PQisBusy",        "PQgetResult",
    "PQresultStatus",  "PQresultErrorField", "PQresultErrorMessage", "PQclear",
    "PQntuples",       "PQgetvalue",      "PQcmdTuples",     "PQsetNoticeProcessor",
  };
  static int loaded;
  _Static_assert(sizeof pq == sizeof fns / sizeof fns[0] * sizeof(void *), "one slot per function");
  if (loaded == 0)
    loaded = ctrun_lib_load(names, sizeof names / sizeof names[0], fns, (void **)&pq,
                            sizeof fns / sizeof fns[0], err, errlen) == 0 ? 1 : -1;
  if (loaded != 1)
    ctrun_error("PostgreSQL locks: %s", err[0] ? err : "libpq could not be loaded");
  return loaded == 1 ? 0 : UV_ENOTSUP;
}

static const char ACQUIRE[] =
    "WITH taken AS ("
    " INSERT INTO ctrun_locks AS l (key, holder, token, expires)"
    " VALUES ($1, $2, nextval('ctrun_lock_fence'),"
    "         clock_timestamp() + $3::bigint * interval '1 millisecond')"
    " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, token = excluded.token,"
    "   expires = excluded.expires WHERE l.expires <= clock_timestamp()"
    " RETURNING token)"
    " SELECT 1, token::text FROM taken"
    " UNION ALL SELECT 0, holder FROM ctrun_locks"
    "   WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM taken)";
static const char RENEW[] =
    "UPDATE ctrun_locks SET expires = clock_timestamp() + $3::bigint * interval '1 millisecond'"
    " WHERE key = $1 AND holder = $2 AND expires > clock_timestamp()";
static const char RELEASE[] = "DELETE FROM ctrun_locks WHERE key = $1 AND holder = $2";
static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS ctrun_locks (key text PRIMARY KEY, holder text NOT NULL,"
    " token bigint NOT NULL, expires timestamptz NOT NULL);"
    "CREATE SEQUENCE IF NOT EXISTS ctrun_lock_fence";

struct conn;

/* The poll handle of one socket, freed once closed. */
struct watch {
  uv_poll_t poll;
  struct conn *c;
  int fd;
};

struct conn {
  uv_loop_t *loop;
  const struct ctrun_lease_url *u;
  ctrun_lease_done_cb done;
  void *data;
  PGconn *pg;
  struct watch *watch;
  bool connected, making_schema, schema_tried, sent;
  struct ctrun_lease_request rq;
  bool pending;
  PGresult *result; /* the request's first result, until the last arrives */
  /* The connection's parameters: the URL's, and the host's address,
   * resolved once off the loop (libpq would resolve it blocking). */
  const char *kw[40], *val[40];
  PQconninfoOption *opts;
  char hostaddr[64];
  bool resolving, closing;
  bool polling; /* in on_poll: DONE may close C, whose freeing then waits */
  uv_getaddrinfo_t gai;
};

static void on_poll(uv_poll_t *h, int status, int events);

static void on_watch_closed(uv_handle_t *h) { free(h->data); }

static void unwatch(struct conn *c) {
  if (c->watch == NULL)
    return;
  c->watch->c = NULL;
  uv_close((uv_handle_t *)&c->watch->poll, on_watch_closed);
  c->watch = NULL;
}

static void disconnect(struct conn *c) {
  unwatch(c); /* before the socket is closed */
  if (c->result != NULL)
    pq.clear(c->result);
  c->result = NULL;
  if (c->pg != NULL)
    pq.finish(c->pg);
  c->pg = NULL;
  c->connected = c->making_schema = c->sent = false;
}

static void fail(struct conn *c, int status, const char *what) {
  struct ctrun_lease_reply r;
  char *s;
  memset(&r, 0, sizeof r);
  r.status = status;
  r.maybe_applied = c->sent;
  snprintf(r.error, sizeof r.error, "%s", what);
  /* libpq's messages end in a newline, and may have more lines. */
  for (s = r.error; *s; s++)
    if (*s == '\n' || *s == '\t')
      *s = (s[1] == '\0') ? '\0' : ' ';
    else if (*s < 0x20 || *s > 0x7e)
      *s = '?';
  disconnect(c);
  c->pending = false;
  c->done(c->data, &r);
}

/* Watch the connection's socket (libpq may change it while connecting). */
static void watch(struct conn *c, int events) {
  int fd = pq.socket(c->pg), e;
  if (c->watch != NULL && c->watch->fd != fd)
    unwatch(c);
  if (c->watch == NULL) {
    struct watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
      fail(c, UV_ENOMEM, "out of memory");
      return;
    }
    if ((e = uv_poll_init(c->loop, &w->poll, fd)) != 0) {
      free(w);
      fail(c, e, uv_strerror(e));
      return;
    }
    w->poll.data = w;
    w->c = c;
    w->fd = fd;
    c->watch = w;
  }
  if ((e = uv_poll_start(&c->watch->poll, events, on_poll)) != 0)
    fail(c, e, uv_strerror(e));
}

static void send_query(struct conn *c) {
  char ttl[24];
  const char *params[3] = { c->rq.key, c->rq.value, ttl };
  const char *sql = c->rq.op == CTRUN_LEASE_ACQUIRE ? ACQUIRE
                    : c->rq.op == CTRUN_LEASE_RENEW ? RENEW
                                                    : RELEASE;
  int ok, f;
  snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)c->rq.ttl_ms);
  if (c->making_schema)
    ok = pq.sendQuery(c->pg, SCHEMA);
  else
    ok = pq.sendQueryParams(c->pg, sql, c->rq.op == CTRUN_LEASE_RELEASE ? 2 : 3, NULL, params,
                            NULL, NULL, 0);
  if (!ok) {
    fail(c, UV_EIO, pq.errorMessage(c->pg));
    return;
  }
  c->sent = true;
  f = pq.flush(c->pg);
  if (f < 0)
    fail(c, UV_EIO, pq.errorMessage(c->pg));
  else
    watch(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
}

/* The whole answer to the request is in: what it means. */
static void answer(struct conn *c, PGresult *res) {
  struct ctrun_lease_reply r;
  ExecStatusType st = pq.resultStatus(res);
  const char *state = pq.resultErrorField(res, PG_DIAG_SQLSTATE);

  if (c->making_schema) {
    c->making_schema = false;
    /* Made, or made by another host at the same moment: either way there. */
    if (st != PGRES_COMMAND_OK && !(state && (strcmp(state, "23505") == 0 ||
                                              strcmp(state, "42P07") == 0))) {
      fail(c, UV_EIO, pq.resultErrorMessage(res));
      return;
    }
    send_query(c);
    return;
  }
  memset(&r, 0, sizeof r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    if (state != NULL && strcmp(state, "42P01") == 0) { /* no table yet */
      if (c->rq.op == CTRUN_LEASE_ACQUIRE && !c->schema_tried) {
        c->schema_tried = c->making_schema = true;
        c->sent = false;
        send_query(c);
        return;
      }
      r.status = c->rq.op == CTRUN_LEASE_RENEW ? UV_ENOENT : 0;
    } else {
      fail(c, UV_EPROTO, pq.resultErrorMessage(res));
      return;
    }
  } else if (c->rq.op == CTRUN_LEASE_ACQUIRE) {
    if (pq.ntuples(res) == 1 && strcmp(pq.getvalue(res, 0, 0), "1") == 0) {
      snprintf(r.token, sizeof r.token, "%s", pq.getvalue(res, 0, 1));
    } else {
      r.status = UV_EBUSY;
      if (pq.ntuples(res) == 1)
        snprintf(r.holder, sizeof r.holder, "%s", pq.getvalue(res, 0, 1));
    }
  } else if (c->rq.op == CTRUN_LEASE_RENEW && strcmp(pq.cmdTuples(res), "1") != 0) {
    r.status = UV_ENOENT;
  }
  c->sent = false;
  c->pending = false;
  c->done(c->data, &r);
}

/* What the socket's events mean; a failure (fail: the connection gone,
 * c->pg NULL) or an answer ends it, and C may then be closed. */
static void poll_once(struct conn *c, int status, int events) {
  /* While connecting, libpq says best what went wrong. */
  if (status < 0 && c->connected) {
    fail(c, status, uv_strerror(status));
    return;
  }
  if (!c->connected) {
    switch (pq.connectPoll(c->pg)) {
    case PGRES_POLLING_READING: watch(c, UV_READABLE); return;
    case PGRES_POLLING_WRITING: watch(c, UV_WRITABLE); return;
    case PGRES_POLLING_OK:
      c->connected = true;
      pq.setnonblocking(c->pg, 1);
      if (c->pending)
        send_query(c);
      else
        watch(c, UV_READABLE);
      return;
    default: fail(c, UV_ECONNREFUSED, pq.errorMessage(c->pg)); return;
    }
  }
  if (events & UV_WRITABLE) {
    int f = pq.flush(c->pg);
    if (f < 0) {
      fail(c, UV_EIO, pq.errorMessage(c->pg));
      return;
    }
    watch(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
  }
  if (!(events & UV_READABLE) || c->pg == NULL)
    return;
  if (!pq.consumeInput(c->pg)) {
    fail(c, UV_ECONNRESET, pq.errorMessage(c->pg));
    return;
  }
  while (c->pg != NULL && !pq.isBusy(c->pg)) {
    PGresult *res = pq.getResult(c->pg);
    if (res == NULL) {
      PGresult *first = c->result;
      c->result = NULL;
      if (first == NULL) {
        if (c->pending && c->sent)
          fail(c, UV_EPROTO, "no result");
        return;
      }
      answer(c, first);
      pq.clear(first);
      return;
    }
    if (c->result == NULL)
      c->result = res;
    else
      pq.clear(res);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  struct watch *w = h->data;
  struct conn *c = w->c;
  if (c == NULL)
    return;
  c->polling = true;
  poll_once(c, status, events);
  c->polling = false;
  if (c->closing && !c->resolving) {
    pq.conninfoFree(c->opts);
    free(c);
  }
}

/* The server's notices ("relation ctrun_locks already exists, skipping"
 * when two hosts make the table at once) are no business of the command's
 * stderr, where libpq would print them. */
static void no_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static void start_connect(struct conn *c) {
  c->pg = pq.connectStartParams(c->kw, c->val, 0);
  if (c->pg == NULL) {
    fail(c, UV_ENOMEM, "out of memory");
    return;
  }
  pq.setNoticeProcessor(c->pg, no_notice, NULL);
  if (pq.status(c->pg) == CONNECTION_BAD) {
    fail(c, UV_ECONNREFUSED, pq.errorMessage(c->pg));
    return;
  }
  watch(c, UV_WRITABLE);
}

/* The value of libpq parameter NAME among the connection's, or NULL. */
static const char *param(struct conn *c, const char *name) {
  for (int i = 0; c->kw[i] != NULL; i++)
    if (strcmp(c->kw[i], name) == 0)
      return c->val[i];
  return NULL;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct conn *c = req->data;
  c->resolving = false;
  if (status == 0 && res != NULL) {
    if (res->ai_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, c->hostaddr, sizeof c->hostaddr);
    else
      uv_ip4_name((struct sockaddr_in *)res->ai_addr, c->hostaddr, sizeof c->hostaddr);
  }
  uv_freeaddrinfo(res);
  if (c->closing) {
    pq.conninfoFree(c->opts);
    free(c);
    return;
  }
  if (!c->pending)
    return;
  if (c->hostaddr[0] == '\0') {
    char what[300];
    snprintf(what, sizeof what, "cannot resolve host %s: %s", param(c, "host"),
             uv_strerror(status ? status : UV_EAI_NONAME));
    fail(c, status ? status : UV_EAI_NONAME, what);
    return;
  }
  start_connect(c);
}

static void pg_send(void *conn, const struct ctrun_lease_request *rq) {
  struct conn *c = conn;
  const char *host = param(c, "host");
  c->rq = *rq;
  c->pending = true;
  c->sent = false;
  if (c->connected) {
    send_query(c);
    return;
  }
  if (c->pg != NULL || c->resolving)
    return; /* sent once connected */
  /* A single host name (not a socket directory, not a list) is resolved
   * on libuv's threads, and libpq given its address. */
  if (c->hostaddr[0] == '\0' && host != NULL && host[0] != '/' && host[0] != '@' &&
      strchr(host, ',') == NULL && param(c, "hostaddr") == NULL) {
    struct addrinfo hints;
    int e;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    e = uv_getaddrinfo(c->loop, &c->gai, on_resolved, host, NULL, &hints);
    if (e != 0) {
      fail(c, e, uv_strerror(e));
      return;
    }
    c->resolving = true;
    return;
  }
  start_connect(c);
}

static void pg_drop(void *conn) {
  struct conn *c = conn;
  c->pending = false;
  disconnect(c);
}

static void pg_close(void *conn) {
  struct conn *c = conn;
  pg_drop(c);
  c->closing = true;
  if (!c->resolving && !c->polling) {
    pq.conninfoFree(c->opts);
    free(c);
  }
}

static int pg_open(uv_loop_t *loop, const struct ctrun_lease_url *u, ctrun_lease_done_cb done,
                   void *data, void **out) {
  struct conn *c;
  char *msg = NULL;
  int n = 0, e;

  if ((e = load_libpq()) != 0)
    return e;
  if ((c = calloc(1, sizeof *c)) == NULL)
    return UV_ENOMEM;
  c->loop = loop;
  c->u = u;
  c->done = done;
  c->data = data;
  c->opts = pq.conninfoParse(u->conninfo, &msg);
  if (c->opts == NULL) {
    if (msg != NULL)
      pq.freemem(msg);
    free(c);
    return UV_EINVAL;
  }
  for (PQconninfoOption *o = c->opts; o->keyword != NULL && n < 36; o++) {
    if (o->val == NULL || o->val[0] == '\0')
      continue;
    if (strcmp(o->keyword, "password") == 0) {
      pq.conninfoFree(c->opts);
      free(c);
      return UV_EPERM;
    }
    c->kw[n] = o->keyword;
    c->val[n++] = o->val;
  }
  if (param(c, "application_name") == NULL) {
    c->kw[n] = "application_name";
    c->val[n++] = "ctrun";
  }
  /* The resolved address, once known: this slot, filled in place. */
  if (param(c, "hostaddr") == NULL) {
    c->kw[n] = "hostaddr";
    c->val[n++] = c->hostaddr;
  }
  c->kw[n] = c->val[n] = NULL;
  *out = c;
  return 0;
}

/* libpq's own reading of the URL, before any run: an unknown or
 * malformed parameter is a usage error, named as libpq names it. */
static int pg_check(const struct ctrun_lease_url *u, char *why, size_t whylen) {
  char *msg = NULL;
  PQconninfoOption *opts;
  int e = load_libpq();
  if (e != 0) {
    snprintf(why, whylen, "libpq cannot be loaded");
    return e;
  }
  opts = pq.conninfoParse(u->conninfo, &msg);
  if (opts == NULL) {
    snprintf(why, whylen, "%s", msg != NULL ? msg : "libpq cannot read it");
    why[strcspn(why, "\n")] = '\0';
    if (msg != NULL)
      pq.freemem(msg);
    return UV_EINVAL;
  }
  pq.conninfoFree(opts);
  return 0;
}

const struct ctrun_lease_backend ctrun_lease_postgres = {
  "postgres", pg_open, pg_send, pg_drop, pg_close, pg_check,
};
