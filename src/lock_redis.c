/* Fleet locks on Redis: libuv's TCP, hiredis's protocol.
 *
 * Not hiredis's own connection and libuv adapter: in the hiredis of
 * Debian 12 (0.14) an asynchronous connect resolves its host name with a
 * blocking getaddrinfo, nothing bounds a connect or a request in time, and
 * the adapter polls a raw descriptor, which is no socket handle on
 * Windows.  Here the name is resolved once, off the loop, every request is
 * bounded by the lease core, and hiredis formats the commands and parses
 * the replies.
 *
 * Each request is one script, so that its test and its change are one
 * step on the server (KEYS[1] the lock, KEYS[2] its fencing counter
 * "KEY:fence", ARGV[1] our value, ARGV[2] the TTL in ms). */
#include "ctrun/lease_backend.h"

#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrun/ping.h"

static const char ACQUIRE[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v then return {0, v} end "
    "local t = redis.call('INCR', KEYS[2]) "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "return {1, t}";
static const char RENEW[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
static const char RELEASE[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) end return 0";

struct conn;

/* One TCP connection, freed once its handle is closed. */
struct link {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  struct conn *c; /* NULL once dropped */
  redisReader *reader;
  char *out;       /* what is being written */
  bool connected, ready; /* ready: AUTH and SELECT were answered */
  int expect;      /* replies still due for the request in flight */
  bool sent;       /* the request has left */
  char in[4096];
};

struct conn {
  uv_loop_t *loop;
  const struct ctrun_lease_url *u;
  ctrun_lease_done_cb done;
  void *data;
  struct link *link;
  struct ctrun_lease_request rq;
  bool pending;
  struct sockaddr_storage addr;
  bool resolved, resolving;
  uv_getaddrinfo_t gai;
  char password[512];
  /* DONE may close the connection: while replies are read, its freeing
   * waits until the reading is over. */
  bool reading, closing;
};

static void reply_error(struct conn *c, int status, bool maybe, const char *fmt, const char *what) {
  struct ctrun_lease_reply r;
  memset(&r, 0, sizeof r);
  r.status = status;
  r.maybe_applied = maybe;
  snprintf(r.error, sizeof r.error, fmt, what);
  /* The server's words, shown: printable ASCII only. */
  for (char *s = r.error; *s; s++)
    if (*s < 0x20 || *s > 0x7e)
      *s = '?';
  c->pending = false;
  c->done(c->data, &r);
}

static void on_link_closed(uv_handle_t *h) {
  struct link *k = h->data;
  if (k->reader != NULL)
    redisReaderFree(k->reader);
  free(k->out);
  free(k);
}

static void link_drop(struct conn *c) {
  struct link *k = c->link;
  if (k == NULL)
    return;
  c->link = NULL;
  k->c = NULL;
  uv_close((uv_handle_t *)&k->tcp, on_link_closed);
}

/* The connection failed: the request in flight fails with it. */
static void link_failed(struct conn *c, int e) {
  bool maybe = c->link != NULL && c->link->sent;
  link_drop(c);
  if (c->pending)
    reply_error(c, e, maybe, "connection: %s", uv_strerror(e));
}

static void after_write(uv_write_t *w, int status) {
  struct link *k = w->data;
  free(k->out);
  k->out = NULL;
  if (k->c != NULL && status != 0)
    link_failed(k->c, status);
}

/* Queue ARGC strings as one command into the link's outgoing bytes. */
static int append_command(char **out, size_t *len, int argc, const char **argv) {
  char *cmd, *more;
  int n = redisFormatCommandArgv(&cmd, argc, argv, NULL);
  if (n < 0)
    return UV_ENOMEM;
  more = realloc(*out, *len + (size_t)n);
  if (more == NULL) {
    redisFreeCommand(cmd);
    return UV_ENOMEM;
  }
  memcpy(more + *len, cmd, (size_t)n);
  *out = more;
  *len += (size_t)n;
  redisFreeCommand(cmd);
  return 0;
}

/* Write the request (after AUTH and SELECT on a new connection). */
static void link_send(struct conn *c) {
  struct link *k = c->link;
  const struct ctrun_lease_url *u = c->u;
  char ttl[24], fence[300], db[16];
  const char *script = c->rq.op == CTRUN_LEASE_ACQUIRE ? ACQUIRE
                       : c->rq.op == CTRUN_LEASE_RENEW ? RENEW
                                                       : RELEASE;
  const char *eval[] = { "EVAL", script, "2", c->rq.key, fence, c->rq.value, ttl };
  char *out = NULL;
  size_t len = 0;
  uv_buf_t buf;
  int e = 0;

  snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)c->rq.ttl_ms);
  snprintf(fence, sizeof fence, "%s:fence", c->rq.key);
  k->expect = 0;
  if (!k->ready) {
    if (c->password[0] != '\0') {
      const char *auth[] = { "AUTH", u->user, c->password };
      e = u->user[0] ? append_command(&out, &len, 3, auth)
                     : append_command(&out, &len, 2, (const char *[]){ "AUTH", c->password });
      k->expect++;
    }
    if (e == 0 && u->db != 0) {
      snprintf(db, sizeof db, "%d", u->db);
      e = append_command(&out, &len, 2, (const char *[]){ "SELECT", db });
      k->expect++;
    }
  }
  if (e == 0)
    e = append_command(&out, &len, 7, eval);
  k->expect++;
  if (e != 0) {
    free(out);
    link_failed(c, e);
    return;
  }
  k->out = out;
  k->sent = true;
  k->write.data = k;
  buf = uv_buf_init(out, (unsigned)len);
  e = uv_write(&k->write, (uv_stream_t *)&k->tcp, &buf, 1, after_write);
  if (e != 0) {
    free(k->out);
    k->out = NULL;
    link_failed(c, e);
  }
}

/* The request's own reply (the last one). */
static void answer(struct conn *c, redisReply *r) {
  struct ctrun_lease_reply a;
  memset(&a, 0, sizeof a);
  if (r->type == REDIS_REPLY_ERROR) {
    reply_error(c, UV_EPROTO, false, "%s", r->str);
    return;
  }
  if (c->rq.op == CTRUN_LEASE_ACQUIRE) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
      reply_error(c, UV_EPROTO, true, "%s", "an unexpected reply to the acquire script");
      return;
    }
    if (r->element[0]->integer == 1 && r->element[1]->type == REDIS_REPLY_INTEGER) {
      snprintf(a.token, sizeof a.token, "%lld", r->element[1]->integer);
    } else {
      a.status = UV_EBUSY;
      if (r->element[1]->type == REDIS_REPLY_STRING)
        snprintf(a.holder, sizeof a.holder, "%.*s", (int)r->element[1]->len, r->element[1]->str);
    }
  } else if (r->type != REDIS_REPLY_INTEGER) {
    reply_error(c, UV_EPROTO, true, "%s", "an unexpected reply to a script");
    return;
  } else if (c->rq.op == CTRUN_LEASE_RENEW && r->integer != 1) {
    a.status = UV_ENOENT;
  }
  c->pending = false;
  c->done(c->data, &a);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  struct link *k = h->data;
  (void)size;
  *buf = uv_buf_init(k->in, sizeof k->in);
}

/* The replies in what was read; each answer may close C (c->closing). */
static void read_replies(struct conn *c, struct link *k, ssize_t n, const uv_buf_t *buf) {
  void *reply;

  if (n < 0) {
    link_failed(c, (int)n);
    return;
  }
  if (redisReaderFeed(k->reader, buf->base, (size_t)n) != REDIS_OK) {
    link_failed(c, UV_EPROTO);
    return;
  }
  while (!c->closing && c->link == k && redisReaderGetReply(k->reader, &reply) == REDIS_OK &&
         reply != NULL) {
    redisReply *r = reply;
    if (!c->pending || k->expect == 0) {
      freeReplyObject(r); /* nothing asked for it */
      link_failed(c, UV_EPROTO);
      return;
    }
    if (--k->expect > 0) {
      /* AUTH or SELECT: anything but OK ends the request. */
      if (r->type == REDIS_REPLY_ERROR) {
        char what[300];
        snprintf(what, sizeof what, "%s", r->str);
        freeReplyObject(r);
        link_drop(c);
        reply_error(c, UV_EACCES, false, "%s", what);
        return;
      }
    } else {
      k->ready = true;
      k->sent = false;
      answer(c, r);
    }
    freeReplyObject(r);
  }
  if (!c->closing && c->link == k && k->reader->err != 0)
    link_failed(c, UV_EPROTO);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct link *k = s->data;
  struct conn *c = k->c;
  if (c == NULL || n == 0)
    return;
  c->reading = true;
  read_replies(c, k, n, buf);
  c->reading = false;
  if (c->closing && !c->resolving)
    free(c);
}

static void on_connect(uv_connect_t *req, int status) {
  struct link *k = req->data;
  struct conn *c = k->c;
  if (c == NULL)
    return;
  if (status != 0) {
    link_failed(c, status);
    return;
  }
  k->connected = true;
  uv_tcp_nodelay(&k->tcp, 1);
  status = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
  if (status != 0) {
    link_failed(c, status);
    return;
  }
  if (c->pending)
    link_send(c);
}

static void connect_now(struct conn *c) {
  struct link *k = calloc(1, sizeof *k);
  int e;
  if (k == NULL || (k->reader = redisReaderCreate()) == NULL) {
    free(k);
    reply_error(c, UV_ENOMEM, false, "%s", uv_strerror(UV_ENOMEM));
    return;
  }
  e = uv_tcp_init(c->loop, &k->tcp);
  if (e != 0) {
    redisReaderFree(k->reader);
    free(k);
    reply_error(c, e, false, "connection: %s", uv_strerror(e));
    return;
  }
  k->c = c;
  k->tcp.data = k->connect.data = k;
  c->link = k;
  e = uv_tcp_connect(&k->connect, &k->tcp, (const struct sockaddr *)&c->addr, on_connect);
  if (e != 0)
    link_failed(c, e);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct conn *c = req->data;
  c->resolving = false;
  if (status == 0 && res != NULL) {
    memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
    c->resolved = true;
  }
  uv_freeaddrinfo(res);
  if (c->closing) {
    free(c);
    return;
  }
  if (!c->pending)
    return;
  if (!c->resolved) {
    reply_error(c, status ? status : UV_EAI_NONAME, false, "cannot resolve host %s",
                c->u->host);
    return;
  }
  connect_now(c);
}

static void redis_send(void *conn, const struct ctrun_lease_request *rq) {
  struct conn *c = conn;
  c->rq = *rq;
  c->pending = true;
  if (c->link != NULL && c->link->connected) {
    link_send(c);
  } else if (c->link != NULL) {
    /* connecting: sent once connected */
  } else if (c->resolved) {
    connect_now(c);
  } else if (!c->resolving) {
    char port[8];
    struct addrinfo hints;
    int e;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", c->u->port);
    c->gai.data = c;
    /* On libuv's threads: a slow name server never stalls the loop. */
    e = uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->u->host, port, &hints);
    if (e != 0)
      reply_error(c, e, false, "cannot resolve host: %s", uv_strerror(e));
    else
      c->resolving = true;
  }
}

static void redis_drop(void *conn) {
  struct conn *c = conn;
  c->pending = false;
  link_drop(c);
}

static void redis_close(void *conn) {
  struct conn *c = conn;
  redis_drop(c);
  c->closing = true;
  if (!c->resolving && !c->reading)
    free(c);
}

/* The password: from password-file= (its first line), else REDISCLI_AUTH
 * as redis-cli reads it. */
static int read_password(const struct ctrun_lease_url *u, char *buf, size_t size) {
  const char *env = getenv("REDISCLI_AUTH");
  buf[0] = '\0';
  if (u->password_file[0] != '\0') {
    int e = ctrun_ping_os_read_small(u->password_file, buf, size);
    buf[e == 0 ? strcspn(buf, "\r\n") : 0] = '\0';
    return e;
  }
  if (env != NULL)
    snprintf(buf, size, "%s", env);
  return 0;
}

static int redis_open(uv_loop_t *loop, const struct ctrun_lease_url *u, ctrun_lease_done_cb done,
                      void *data, void **out) {
  struct conn *c;
  int e;
  if (u->tls)
    return UV_ENOTSUP;
  if ((c = calloc(1, sizeof *c)) == NULL)
    return UV_ENOMEM;
  c->loop = loop;
  c->u = u;
  c->done = done;
  c->data = data;
  if ((e = read_password(u, c->password, sizeof c->password)) != 0) {
    free(c);
    return e;
  }
  /* An address needs no resolving. */
  if (uv_ip4_addr(u->host, u->port, (struct sockaddr_in *)&c->addr) == 0 ||
      uv_ip6_addr(u->host, u->port, (struct sockaddr_in6 *)&c->addr) == 0)
    c->resolved = true;
  *out = c;
  return 0;
}

const struct ctrun_lease_backend ctrun_lease_redis = {
  "redis", redis_open, redis_send, redis_drop, redis_close, NULL,
};
