/* Fleet locks (-l redis://..., -l postgres://...): a lock on a server that
 * every host reaches, held as a lease.  The lease lives TTL on the server
 * unless renewed; ctrun renews it every TTL/3 and, when it cannot confirm
 * a renewal in time, kills the whole tree before the lease can expire
 * (SPEC: Fleet locks).
 *
 * The core here (src/lease.c) owns the timing: the lease's deadline, the
 * renewals, the bound on every request, the wait of -w.  A backend
 * (src/lock_redis.c, src/lock_postgres.c) owns one connection and knows
 * how to acquire, renew and release on its server, one request at a time,
 * without ever blocking ctrun's loop. */
#ifndef CTRUN_LEASE_H
#define CTRUN_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum ctrun_lease_kind { CTRUN_LEASE_REDIS, CTRUN_LEASE_POSTGRES };

/* The shortest --lock-ttl: the margin is 1 s at least, and a renewal must
 * have time to go and come back before it. */
#define CTRUN_LEASE_TTL_MIN_MS 3000
#define CTRUN_LEASE_TTL_DEFAULT_MS 30000
/* How long a connection or a request may take. */
#define CTRUN_LEASE_OP_TIMEOUT_MS 5000

/* A lock URL, as parsed.  Nothing secret is in it: a password in the URL
 * is refused (it would show in ps). */
struct ctrun_lease_url {
  enum ctrun_lease_kind kind;
  char where[1024]; /* the URL as shown in messages and ps */
  char key[256];    /* the lock's name on the server */
  /* Redis: redis://[USER@]HOST[:PORT][/DB]/KEY[?password-file=FILE] */
  bool tls;         /* rediss:// */
  char host[256];   /* a name, an IPv4 or an IPv6 address (no brackets) */
  int port;
  int db;
  char user[128];
  char password_file[1024];
  /* PostgreSQL: the URL without key=, for libpq. */
  char conninfo[2048];
};

/* Whether ARG names a lock on a server (it has a scheme: "x://"). */
bool ctrun_lease_is_url(const char *arg);

/* Parse a lock URL: 0, or UV_EINVAL with WHY saying what is wrong in one
 * phrase ("no key", "a password in the URL would show in ps; ..."). */
int ctrun_lease_url_parse(const char *arg, struct ctrun_lease_url *u, char *why, size_t whylen);

/* Whether this ctrun was built with the backend for KIND. */
bool ctrun_lease_supported(enum ctrun_lease_kind kind);

/* What only the backend can tell of a parsed URL before the run (libpq's
 * own reading of a PostgreSQL URL): 0, or a negative libuv error with
 * WHY saying what is wrong. */
int ctrun_lease_check(const struct ctrun_lease_url *u, char *why, size_t whylen);

/* What a held lease tells its run. */
struct ctrun_lease_hooks {
  void *data;
  /* The lease could not be kept: WHY names the backend's error.  Called
   * once, at the latest at the last confirmed renewal's send + TTL −
   * margin; the run must kill its whole tree at once. */
  void (*lost)(void *data, const char *why);
  /* A renewal was confirmed (the lease's expiry moved). */
  void (*renewed)(void *data);
};

/* Who holds a lease: what is written into it, and read back to name the
 * holder in a busy message. */
struct ctrun_lease_holder {
  long pid;
  const char *run_id, *name;
  int64_t started_ms;
};

struct ctrun_lease;

/* A lease on U (copied), not yet taken, whose requests run on LOOP. */
int ctrun_lease_new(uv_loop_t *loop, const struct ctrun_lease_url *u, uint64_t ttl_ms,
                    const struct ctrun_lease_holder *who, struct ctrun_lease **out);

/* Take the lease, trying again until WAIT_MS have passed (0: once;
 * CTRUN_DURATION_INF: forever) or a held signal arrives.  Runs LOOP
 * meanwhile, so that leases already held are renewed.  Returns 0 when
 * taken; UV_EBUSY when held by another, ERR naming the holder ("run
 * 3f2a... (nightly) on host web-3, running for 2m"); UV_ECANCELED when a
 * signal came; else the backend could not be reached or refused
 * (ERR says why: the caller's --lock-unavailable decides). */
int ctrun_lease_take(struct ctrun_lease *l, uint64_t wait_ms, char *err, size_t errlen);

/* Keep the taken lease: renew it, and call HOOKS->lost if that fails.
 * Until then nothing is renewed (take to hold is short). */
void ctrun_lease_hold(struct ctrun_lease *l, const struct ctrun_lease_hooks *hooks);

/* Whether the lease is still certainly ours for MS more (a run is not
 * started on a lease about to run out). */
bool ctrun_lease_valid_for(struct ctrun_lease *l, uint64_t ms);

/* Release (compare-and-delete: only our own value) and free, on the loop:
 * the caller runs LOOP until its handles are closed.  A lease not taken is
 * just freed.  NULL is fine. */
void ctrun_lease_release(struct ctrun_lease *l);

/* For ps and the registry: "redis", "postgres"; the fencing token of this
 * acquisition ("" until taken); the lease's expiry on the server, as ctrun
 * reckons it (epoch ms: the last confirmed renewal's send + TTL). */
const char *ctrun_lease_backend(const struct ctrun_lease *l);
const char *ctrun_lease_token(const struct ctrun_lease *l);
int64_t ctrun_lease_expires_ms(const struct ctrun_lease *l);
const char *ctrun_lease_where(const struct ctrun_lease *l);

#endif
