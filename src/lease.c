/* The lease of a fleet lock: its timing, whatever the server.
 *
 * The safety argument, on ctrun's monotonic clock: a request sent at S
 * that the server confirms sets the lease to expire at the server's clock
 * of its execution + TTL, which is no earlier than S + TTL (clocks running
 * at the same rate).  So after a confirmed renewal sent at S the lease is
 * ours until S + TTL at least, and ctrun kills the whole tree at
 * S + TTL − margin unless a later renewal was confirmed by then.  A
 * request that is slow, lost, or answered by a server that forgot us
 * changes nothing of that deadline: only a confirmation moves it. */
#include "ctrun/lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrun/clock.h"
#include "ctrun/duration.h"
#include "ctrun/lease_backend.h"
#include "ctrun/lock.h"
#include "ctrun/msg.h"
#include "ctrun/proc.h"
#include "ctrun/retry.h"

enum state { TAKING, HELD, LOST, RELEASING, CLOSING };

struct ctrun_lease {
  uv_loop_t *loop;
  const struct ctrun_lease_backend *be;
  void *conn;
  struct ctrun_lease_url url;
  struct ctrun_lease_hooks hooks;
  uint64_t ttl_ms, margin_ms;
  enum state state;
  /* The holder value of the acquisition in hand: the holder text of a lock
   * file, plus the host and a nonce that makes it this acquisition's. */
  char value[400];
  char holder_text[300]; /* without the nonce */
  char token[24];
  /* An acquisition whose outcome is unknown (its answer never came): its
   * value, deleted (compare-and-delete) before anything else. */
  char unknown[400];
  /* The request in flight */
  struct ctrun_lease_request rq;
  struct ctrun_lease_reply reply;
  bool busy, replied;
  uint64_t sent_at;     /* loop ms */
  int64_t sent_wall_ms;
  /* The lease */
  uint64_t confirmed_at; /* the send time of the last confirmed acquire or renewal */
  int64_t expires_wall_ms;
  char last_error[1024];
  uv_timer_t op_timer, renew_timer, expire_timer, nap_timer;
  bool napping;
  int handles;
};

static const struct ctrun_lease_backend *backend_of(enum ctrun_lease_kind kind) {
  switch (kind) {
#ifdef CTRUN_WITH_REDIS
  case CTRUN_LEASE_REDIS: return &ctrun_lease_redis;
#endif
#ifdef CTRUN_WITH_POSTGRES
  case CTRUN_LEASE_POSTGRES: return &ctrun_lease_postgres;
#endif
  default: return NULL;
  }
}

bool ctrun_lease_supported(enum ctrun_lease_kind kind) { return backend_of(kind) != NULL; }

int ctrun_lease_check(const struct ctrun_lease_url *u, char *why, size_t whylen) {
  const struct ctrun_lease_backend *be = backend_of(u->kind);
  if (be == NULL)
    return UV_ENOTSUP;
  return be->check != NULL ? be->check(u, why, whylen) : 0;
}

static void on_reply(void *data, const struct ctrun_lease_reply *reply);

int ctrun_lease_new(uv_loop_t *loop, const struct ctrun_lease_url *u, uint64_t ttl_ms,
                    const struct ctrun_lease_holder *who, struct ctrun_lease **out) {
  struct ctrun_lease *l;
  char host[65];
  size_t len = sizeof host;
  int e;

  *out = NULL;
  if (backend_of(u->kind) == NULL)
    return UV_ENOTSUP;
  if ((l = calloc(1, sizeof *l)) == NULL)
    return UV_ENOMEM;
  l->loop = loop;
  l->be = backend_of(u->kind);
  l->url = *u;
  l->ttl_ms = ttl_ms;
  l->margin_ms = ttl_ms / 5 > 1000 ? ttl_ms / 5 : 1000;
  if (uv_os_gethostname(host, &len) != 0)
    snprintf(host, sizeof host, "?");
  snprintf(l->holder_text, sizeof l->holder_text, "pid=%ld\nid=%s\nname=%s\nstarted=%lld\nhost=%s\n",
           who->pid, who->run_id, who->name, (long long)who->started_ms, host);
  e = l->be->open(loop, &l->url, on_reply, l, &l->conn);
  if (e != 0) {
    free(l);
    return e;
  }
  uv_timer_init(loop, &l->op_timer);
  uv_timer_init(loop, &l->renew_timer);
  uv_timer_init(loop, &l->expire_timer);
  uv_timer_init(loop, &l->nap_timer);
  l->op_timer.data = l->renew_timer.data = l->expire_timer.data = l->nap_timer.data = l;
  l->handles = 4;
  *out = l;
  return 0;
}

static void on_op_timeout(uv_timer_t *h) {
  struct ctrun_lease *l = h->data;
  struct ctrun_lease_reply r;
  char d[32];
  memset(&r, 0, sizeof r);
  l->be->drop(l->conn);
  r.status = UV_ETIMEDOUT;
  r.maybe_applied = true;
  snprintf(r.error, sizeof r.error, "no answer within %s",
           ctrun_duration_format_exact(CTRUN_LEASE_OP_TIMEOUT_MS, d, sizeof d));
  on_reply(l, &r);
}

static void send_request(struct ctrun_lease *l, enum ctrun_lease_op op, const char *value) {
  uv_update_time(l->loop);
  l->rq.op = op;
  l->rq.key = l->url.key;
  l->rq.value = value;
  l->rq.ttl_ms = l->ttl_ms;
  l->busy = true;
  l->replied = false;
  l->sent_at = uv_now(l->loop);
  l->sent_wall_ms = ctrun_now_ms();
  uv_timer_start(&l->op_timer, on_op_timeout, CTRUN_LEASE_OP_TIMEOUT_MS, 0);
  l->be->send(l->conn, &l->rq);
}

/* The lease is over for us: say so once, with the last error. */
static void lose(struct ctrun_lease *l, const char *why) {
  if (l->state != HELD)
    return;
  l->state = LOST;
  uv_timer_stop(&l->renew_timer);
  uv_timer_stop(&l->expire_timer);
  snprintf(l->last_error, sizeof l->last_error, "%s", why);
  if (l->hooks.lost != NULL)
    l->hooks.lost(l->hooks.data, why);
}

static void on_expire(uv_timer_t *h) {
  struct ctrun_lease *l = h->data;
  char why[2200], d[32];
  snprintf(why, sizeof why, "lock '%s' lost: no renewal confirmed for %s (%s)", l->url.where,
           ctrun_duration_format_exact(l->ttl_ms - l->margin_ms, d, sizeof d),
           l->last_error[0] ? l->last_error : "no answer");
  lose(l, why);
}

/* The lease is ours until CONFIRMED_AT + TTL: the tree must be dead by
 * then, so ctrun acts a margin before. */
static void arm_expiry(struct ctrun_lease *l) {
  uint64_t deadline = l->confirmed_at + l->ttl_ms - l->margin_ms, now;
  uv_update_time(l->loop);
  now = uv_now(l->loop);
  uv_timer_start(&l->expire_timer, on_expire, deadline > now ? deadline - now : 0, 0);
}

static void on_renew(uv_timer_t *h) {
  struct ctrun_lease *l = h->data;
  if (l->state == HELD && !l->busy)
    send_request(l, CTRUN_LEASE_RENEW, l->value);
}

static void on_reply(void *data, const struct ctrun_lease_reply *reply) {
  struct ctrun_lease *l = data;
  uv_timer_stop(&l->op_timer);
  l->busy = false;
  l->replied = true;
  l->reply = *reply;
  if (reply->status != 0 && reply->status != UV_EBUSY && reply->status != UV_ENOENT)
    snprintf(l->last_error, sizeof l->last_error, "%s: %s", l->be->name, reply->error);
  switch (l->state) {
  case HELD:
    if (l->rq.op != CTRUN_LEASE_RENEW)
      break;
    if (reply->status == 0) {
      l->confirmed_at = l->sent_at;
      l->expires_wall_ms = l->sent_wall_ms + (int64_t)l->ttl_ms;
      l->last_error[0] = '\0';
      arm_expiry(l);
      uv_timer_start(&l->renew_timer, on_renew, l->ttl_ms / 3, 0);
      if (l->hooks.renewed != NULL)
        l->hooks.renewed(l->hooks.data);
    } else if (reply->status == UV_ENOENT) {
      char why[1400];
      snprintf(why, sizeof why, "lock '%s' lost: the server no longer holds it for this run",
               l->url.where);
      lose(l, why);
    } else {
      /* Try again soon; the expiry stands where the last confirmation put it. */
      ctrun_debug("lock '%s': renewal failed: %s", l->url.where, l->last_error);
      uv_timer_start(&l->renew_timer, on_renew, l->ttl_ms / 10 > 500 ? l->ttl_ms / 10 : 500, 0);
    }
    break;
  case RELEASING:
    ctrun_lease_release(l);
    break;
  default:
    break;
  }
}

static void on_nap(uv_timer_t *h) {
  struct ctrun_lease *l = h->data;
  l->napping = false;
}

/* Run the loop until the request in flight is answered, or a signal that
 * ends the run is held (then the request is dropped: its effect unknown). */
static bool wait_reply(struct ctrun_lease *l) {
  while (l->busy) {
    if (ctrun_proc_held_signal() != 0) {
      uv_timer_stop(&l->op_timer);
      l->be->drop(l->conn);
      l->busy = false;
      return false;
    }
    /* The nap timer wakes the loop to look at held signals. */
    if (!l->napping)
      uv_timer_start(&l->nap_timer, on_nap, 50, 0);
    l->napping = true;
    uv_run(l->loop, UV_RUN_ONCE);
  }
  return true;
}

/* Delete an acquisition whose outcome is unknown, if the server is there
 * to do it; if not, its lease runs out by itself. */
static void forget_unknown(struct ctrun_lease *l) {
  if (l->unknown[0] == '\0')
    return;
  send_request(l, CTRUN_LEASE_RELEASE, l->unknown);
  if (wait_reply(l) && l->reply.status == 0)
    l->unknown[0] = '\0';
}

/* "run 3f2a9c01d4e5 (nightly) on host web-3, pid 4242, running for 2m" from
 * the holder's value: only what parses as holder text is shown. */
static void describe(const char *value, char *buf, size_t size) {
  struct ctrun_lock_holder h;
  char age[32];
  if (ctrun_lock_holder_parse(value, strlen(value), &h) != 0) {
    snprintf(buf, size, "another holder");
    return;
  }
  int64_t ms = ctrun_now_ms() - h.started_ms;
  snprintf(buf, size, "run %s (%s) on host %s, pid %ld, running for %s", h.id[0] ? h.id : "?",
           h.name[0] ? h.name : "?", h.host[0] ? h.host : "?", h.pid,
           ctrun_duration_format(ms > 0 && h.started_ms > 0 ? (uint64_t)ms : 0, age, sizeof age));
}

/* How long a busy lock is left alone before the next try: about 100 ms,
 * spread so that waiting hosts do not knock together. */
static uint64_t next_try_ms(void) { return 50 + (uint64_t)(ctrun_retry_jitter() * 100.0); }

int ctrun_lease_take(struct ctrun_lease *l, uint64_t wait_ms, char *err, size_t errlen) {
  uint64_t t0 = uv_hrtime();
  static unsigned long long seq;
  int e;

  for (;;) {
    uint64_t waited, nap;
    forget_unknown(l);
    if (ctrun_proc_held_signal() != 0)
      return UV_ECANCELED;
    snprintf(l->value, sizeof l->value, "%snonce=%08x%08x%llx\n", l->holder_text,
             (unsigned)(ctrun_retry_jitter() * 4294967295.0),
             (unsigned)(ctrun_retry_jitter() * 4294967295.0), ++seq);
    send_request(l, CTRUN_LEASE_ACQUIRE, l->value);
    if (!wait_reply(l)) {
      snprintf(l->unknown, sizeof l->unknown, "%s", l->value);
      forget_unknown(l); /* a signal came: one bounded try */
      return UV_ECANCELED;
    }
    e = l->reply.status;
    if (e == 0) {
      l->state = HELD;
      snprintf(l->token, sizeof l->token, "%s", l->reply.token);
      l->confirmed_at = l->sent_at;
      l->expires_wall_ms = l->sent_wall_ms + (int64_t)l->ttl_ms;
      /* Confirmed too late to be of use (the answer took most of the TTL):
       * given back, and tried again. */
      if (ctrun_lease_valid_for(l, l->ttl_ms / 3)) {
        arm_expiry(l);
        return 0;
      }
      l->state = TAKING;
      snprintf(l->unknown, sizeof l->unknown, "%s", l->value);
      snprintf(l->last_error, sizeof l->last_error, "%s: the answer came too late", l->be->name);
      e = UV_ETIMEDOUT;
    }
    if (e == UV_EBUSY) {
      describe(l->reply.holder, err, errlen);
    } else {
      snprintf(err, errlen, "%s", l->last_error);
      if (l->reply.maybe_applied)
        snprintf(l->unknown, sizeof l->unknown, "%s", l->value);
    }
    waited = (uv_hrtime() - t0) / 1000000;
    if (wait_ms != CTRUN_DURATION_INF && waited >= wait_ms) {
      forget_unknown(l);
      return e;
    }
    nap = next_try_ms();
    if (wait_ms != CTRUN_DURATION_INF && wait_ms - waited < nap)
      nap = wait_ms - waited;
    uv_timer_start(&l->nap_timer, on_nap, nap, 0);
    l->napping = true;
    while (l->napping && ctrun_proc_held_signal() == 0)
      uv_run(l->loop, UV_RUN_ONCE);
    /* (a held signal: seen at the top) */
    uv_timer_stop(&l->nap_timer);
    l->napping = false;
  }
}

void ctrun_lease_hold(struct ctrun_lease *l, const struct ctrun_lease_hooks *hooks) {
  l->hooks = *hooks;
  if (l->state != HELD)
    return;
  /* Counted from the acquisition's send, like every renewal after it. */
  uv_update_time(l->loop);
  uint64_t next = l->confirmed_at + l->ttl_ms / 3, now = uv_now(l->loop);
  uv_timer_start(&l->renew_timer, on_renew, next > now ? next - now : 0, 0);
  /* Lost already while the run was set up: said now. */
  uv_update_time(l->loop);
  if (!ctrun_lease_valid_for(l, 0))
    on_expire(&l->expire_timer);
}

bool ctrun_lease_valid_for(struct ctrun_lease *l, uint64_t ms) {
  uv_update_time(l->loop);
  return l->state == HELD && uv_now(l->loop) + ms < l->confirmed_at + l->ttl_ms - l->margin_ms;
}

static void on_closed(uv_handle_t *h) {
  struct ctrun_lease *l = h->data;
  if (--l->handles == 0)
    free(l);
}

void ctrun_lease_release(struct ctrun_lease *l) {
  if (l == NULL || l->state == CLOSING)
    return;
  uv_timer_stop(&l->renew_timer);
  uv_timer_stop(&l->expire_timer);
  /* Compare-and-delete of our own value, once, bounded; what could not be
   * deleted runs out by itself. */
  if (l->state == HELD || l->state == LOST) {
    if (l->busy) {
      uv_timer_stop(&l->op_timer);
      l->be->drop(l->conn);
      l->busy = false;
    }
    l->state = RELEASING;
    send_request(l, CTRUN_LEASE_RELEASE, l->value);
    return;
  }
  if (l->state == RELEASING && l->busy)
    return;
  if (l->state == RELEASING && l->reply.status != 0)
    ctrun_debug("lock '%s': not released (%s); it runs out by itself", l->url.where, l->last_error);
  l->state = CLOSING;
  l->be->close(l->conn);
  uv_close((uv_handle_t *)&l->op_timer, on_closed);
  uv_close((uv_handle_t *)&l->renew_timer, on_closed);
  uv_close((uv_handle_t *)&l->expire_timer, on_closed);
  uv_close((uv_handle_t *)&l->nap_timer, on_closed);
}

const char *ctrun_lease_backend(const struct ctrun_lease *l) { return l->be->name; }
const char *ctrun_lease_token(const struct ctrun_lease *l) { return l->token; }
int64_t ctrun_lease_expires_ms(const struct ctrun_lease *l) { return l->expires_wall_ms; }
const char *ctrun_lease_where(const struct ctrun_lease *l) { return l->url.where; }
