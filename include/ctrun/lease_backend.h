/* What a fleet-lock backend implements for the lease core (src/lease.c):
 * one connection to its server, one request at a time, on the loop.  The
 * core bounds every request in time and drops the connection when it is
 * late; the backend never waits itself. */
#ifndef CTRUN_LEASE_BACKEND_H
#define CTRUN_LEASE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ctrun/lease.h"

enum ctrun_lease_op { CTRUN_LEASE_ACQUIRE, CTRUN_LEASE_RENEW, CTRUN_LEASE_RELEASE };

struct ctrun_lease_request {
  enum ctrun_lease_op op;
  const char *key;
  const char *value; /* this acquisition's holder value, unique to it */
  uint64_t ttl_ms;
};

struct ctrun_lease_reply {
  /* 0: done (ACQUIRE: taken; RENEW: renewed; RELEASE: deleted, or not
   * ours); UV_EBUSY: ACQUIRE found another holder; UV_ENOENT: RENEW found
   * the lease no longer ours; else the request failed, ERROR says why. */
  int status;
  bool maybe_applied; /* failed after the request left: it may have been done */
  char token[24];     /* ACQUIRE: the fencing token */
  char holder[256];   /* ACQUIRE, busy: the holder's value */
  char error[256];
};

typedef void (*ctrun_lease_done_cb)(void *data, const struct ctrun_lease_reply *reply);

struct ctrun_lease_backend {
  const char *name; /* "redis", "postgres" */
  /* The connection's state for U: no I/O yet.  DONE answers each request. */
  int (*open)(uv_loop_t *loop, const struct ctrun_lease_url *u, ctrun_lease_done_cb done,
              void *data, void **conn);
  /* Send RQ, connecting first when not connected.  DONE is called once,
   * from the loop, never from within send. */
  void (*send)(void *conn, const struct ctrun_lease_request *rq);
  /* Drop the connection: the request in flight is forgotten, DONE is not
   * called for it.  The next send connects again. */
  void (*drop)(void *conn);
  /* Drop, and free once the connection's handles are closed. */
  void (*close)(void *conn);
  /* What only the backend's library can tell of U before any run: 0, or
   * UV_EINVAL with WHY ("invalid connection option \"bogus\"").  NULL:
   * nothing to check. */
  int (*check)(const struct ctrun_lease_url *u, char *why, size_t whylen);
};

#ifdef CTRUN_WITH_REDIS
extern const struct ctrun_lease_backend ctrun_lease_redis;
#endif
#ifdef CTRUN_WITH_POSTGRES
extern const struct ctrun_lease_backend ctrun_lease_postgres;
#endif

#endif
