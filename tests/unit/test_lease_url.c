/* Lock URLs (-l redis://..., -l postgres://...): what parses into which
 * fields, and what is refused with which reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "ctrun/lease.h"

/* ARG parses; its fields are in U. */
static void parses(const char *arg, struct ctrun_lease_url *u) {
  char why[256] = "";
  int r = ctrun_lease_url_parse(arg, u, why, sizeof why);
  if (r != 0)
    fail_msg("%s: %d (%s)", arg, r, why);
}

/* ARG is refused with UV_EINVAL, and WHY says so with SUBSTR in it. */
static void refused(const char *arg, const char *substr) {
  struct ctrun_lease_url u;
  char why[256] = "";
  int r = ctrun_lease_url_parse(arg, &u, why, sizeof why);
  if (r != UV_EINVAL)
    fail_msg("%s: %d, not UV_EINVAL (why: %s)", arg, r, why);
  if (strstr(why, substr) == NULL)
    fail_msg("%s: why \"%s\" does not say \"%s\"", arg, why, substr);
}

static void tells_urls_from_paths(void **state) {
  static const char *const urls[] = { "redis://h/k", "postgres://x", "a+b.c-d://" };
  static const char *const paths[] = { "/var/lock/x", "./redis://x", "C:\\locks\\x", "redis:/x",
                                       "", "1redis://x" };
  (void)state;
  for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
    assert_true(ctrun_lease_is_url(urls[i]));
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
    assert_false(ctrun_lease_is_url(paths[i]));
}

static void redis_defaults(void **state) {
  struct ctrun_lease_url u;
  (void)state;
  parses("redis://127.0.0.1/job", &u);
  assert_int_equal(u.kind, CTRUN_LEASE_REDIS);
  assert_false(u.tls);
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 6379);
  assert_int_equal(u.db, 0);
  assert_string_equal(u.key, "job");
  assert_string_equal(u.user, "");
  assert_string_equal(u.password_file, "");
  assert_string_equal(u.where, "redis://127.0.0.1:6379/0/job");
}

static void redis_port_db_and_path_keys(void **state) {
  struct ctrun_lease_url u;
  (void)state;
  parses("redis://cache.local:6380/3/jobs/nightly", &u);
  assert_string_equal(u.host, "cache.local");
  assert_int_equal(u.port, 6380);
  assert_int_equal(u.db, 3);
  assert_string_equal(u.key, "jobs/nightly");
  assert_string_equal(u.where, "redis://cache.local:6380/3/jobs/nightly");

  parses("redis://h/jobs/nightly", &u);
  assert_int_equal(u.db, 0);
  assert_string_equal(u.key, "jobs/nightly");

  parses("redis://h/12/k", &u);
  assert_int_equal(u.db, 12);
  assert_string_equal(u.key, "k");

  /* A lone number is the key, not a database. */
  parses("redis://h/12", &u);
  assert_int_equal(u.db, 0);
  assert_string_equal(u.key, "12");
  assert_string_equal(u.where, "redis://h:6379/0/12");
}

static void redis_ipv6_user_password_file_tls(void **state) {
  struct ctrun_lease_url u;
  (void)state;
  parses("redis://[::1]:7000/k", &u);
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.port, 7000);
  assert_string_equal(u.key, "k");
  assert_string_equal(u.where, "redis://[::1]:7000/0/k");

  parses("redis://alice@h/k", &u);
  assert_string_equal(u.user, "alice");
  assert_string_equal(u.host, "h");
  assert_string_equal(u.where, "redis://alice@h:6379/0/k");

  parses("redis://h/k?password-file=/etc/ctrun/redis.pw", &u);
  assert_string_equal(u.password_file, "/etc/ctrun/redis.pw");
  assert_string_equal(u.key, "k");
  /* The file's name is no secret, but it is not part of the lock's name. */
  assert_string_equal(u.where, "redis://h:6379/0/k");

  parses("rediss://h/k", &u);
  assert_int_equal(u.kind, CTRUN_LEASE_REDIS);
  assert_true(u.tls);
  assert_string_equal(u.where, "rediss://h:6379/0/k");
}

static void redis_refusals(void **state) {
  char long_key[260];
  (void)state;
  refused("redis://h", "no key");
  refused("redis://h/", "no key");
  refused("redis://h/3/", "no key");
  refused("redis:///k", "no host");
  refused("redis://h:0/k", "port");
  refused("redis://h:65536/k", "port");
  refused("redis://h:x/k", "port");
  refused("redis://h:/k", "port");
  refused("redis://u:p@h/k", "password");
  refused("redis://:p@h/k", "password");
  refused("redis://h/k?password=x", "password");
  refused("redis://h/k?foo=1", "unknown parameter");
  refused("redis://h/k?password-file=", "unknown parameter");
  refused("redis://h/k#x", "#");
  refused("redis://h#x/k", "#");
  refused("redis://u#@h/k", "#");
  refused("redis://h/k?password-file=/a#b", "#");
  refused("redis://h/a b", "space");
  refused("redis://h/a\tb", "control");
  refused("redis://h/a\x7f", "control");
  refused("redis://h/a\xc3\xa9", "control");
  snprintf(long_key, sizeof long_key, "redis://h/%0201d", 0); /* 201 characters */
  refused(long_key, "200");
  snprintf(long_key, sizeof long_key, "redis://h/%0200d", 0); /* 200: the most */
  struct ctrun_lease_url u;
  parses(long_key, &u);
  assert_int_equal(strlen(u.key), 200);
  refused("redis://[::1/k", "]");
  refused("redis://[::1:7000/k", "]");
  refused("redis://[]/k", "no host");
  refused("redis://[::1]x/k", "port");
  /* Fuzzing: "[[x]" gave the host "[x", whose where did not parse back. */
  refused("redis://[[x]/k", "host");
  refused("redis://h/k?x", "unknown parameter");
  refused("redis://h/k&x", "key");
  refused("mysql://h/k", "unknown scheme");
  refused("etcd://h/k", "unknown scheme");
  refused("/var/lock/x", "not a URL");
}

static void postgres_fields(void **state) {
  static const char arg[] = "postgres://app@db.internal:5433/ops?key=nightly&sslmode=require";
  struct ctrun_lease_url u;
  (void)state;
  parses(arg, &u);
  assert_int_equal(u.kind, CTRUN_LEASE_POSTGRES);
  assert_string_equal(u.key, "nightly");
  assert_string_equal(u.conninfo, "postgres://app@db.internal:5433/ops?sslmode=require");
  assert_string_equal(u.where, arg);

  parses("postgresql://h/db?key=k", &u);
  assert_int_equal(u.kind, CTRUN_LEASE_POSTGRES);
  assert_string_equal(u.key, "k");
  assert_string_equal(u.conninfo, "postgresql://h/db");
  assert_string_equal(u.where, "postgresql://h/db?key=k");

  /* key= anywhere among the parameters; the others keep their order. */
  parses("postgres://h/db?sslmode=disable&key=k&application_name=x", &u);
  assert_string_equal(u.key, "k");
  assert_string_equal(u.conninfo, "postgres://h/db?sslmode=disable&application_name=x");
  parses("postgres://h/db?sslmode=disable&application_name=x&key=k", &u);
  assert_string_equal(u.conninfo, "postgres://h/db?sslmode=disable&application_name=x");

  /* Empty parameters are dropped (libpq refuses "&&"). */
  parses("postgres://h/db?sslmode=disable&&key=k&", &u);
  assert_string_equal(u.conninfo, "postgres://h/db?sslmode=disable");

  /* No host: libpq's default, or a socket directory given as host=. */
  parses("postgres:///db?host=/run/postgresql&key=k", &u);
  assert_string_equal(u.key, "k");
  assert_string_equal(u.conninfo, "postgres:///db?host=/run/postgresql");

  /* libpq's other forms: IPv6, several hosts. */
  parses("postgres://[::1]:5432/db?key=k&application_name=a@b", &u);
  assert_string_equal(u.conninfo, "postgres://[::1]:5432/db?application_name=a@b");
  parses("postgres://h1:5432,h2:5433/db?key=k", &u);
  assert_string_equal(u.conninfo, "postgres://h1:5432,h2:5433/db");
}

static void postgres_refusals(void **state) {
  (void)state;
  refused("postgres://h/db", "no key");
  refused("postgres://h/db?sslmode=require", "no key");
  refused("postgres://h/db?key=", "no key");
  refused("postgres://h/db?key=a&key=b", "twice");
  refused("postgres://u:p@h/db?key=k", "password");
  refused("postgres://h/db?key=k&password=x", "password");
  refused("postgres://h/db?key=k#x", "#");
  refused("postgres://h#/db?key=k", "#");
  refused("postgres://h/db?key=a?b", "key");
  refused("postgres://[::1/db?key=k", "]");
  refused("postgres://h/db?key=k x", "space");
  /* What libpq would refuse only at the lock: a parameter not NAME=VALUE. */
  refused("postgres://h/db?key=k&sslmode", "NAME=VALUE");
  refused("postgres://h/db?key=k&key", "NAME=VALUE");
  refused("postgres://h/db?key=k&a=b=c", "NAME=VALUE");
  refused("postgres://h/db?key=k&=x", "NAME=VALUE");
}

/* Found by reading the URLs as libpq does (PQconninfoParse): each was
 * accepted, and libpq found a password in what ctrun passed it. */
static void postgres_passwords_as_libpq_reads_them(void **state) {
  (void)state;
  /* The user part runs to the first @ before the first /, across a ?. */
  refused("postgres://u:p?key=k&x@h/db", "password");
  refused("postgres://a?key=k&b@h/db?password=x", "@");
  refused("postgres://h?key=k&application_name=a@b", "@");
  /* An IPv6 host in [ ] holds anything but ], a ? included. */
  refused("postgres://[a?key=k&b]/db?password=x", "password");
  /* Parameter names are %-decoded: %70assword is password. */
  refused("postgres://h/db?%70assword=x&key=k", "%");
  refused("postgres://h/db?key=k&k%65y=x", "%");
  /* Once key= (and the / in its value) is taken out, the @ of a later
   * parameter ends a user part "h:1?x=1", with a password. */
  refused("postgres://h:1?key=a/b&x=1@y", "password");
  refused("postgres://h?key=a/b&x=1@y", "@");
}

/* Long inputs are refused, never copied past a field. */
static void overlong_urls_are_refused(void **state) {
  char arg[700];
  struct ctrun_lease_url u;
  (void)state;
  memset(arg, 'a', sizeof arg);
  memcpy(arg, "redis://h/", 10);
  arg[600] = '\0';
  refused(arg, "too long");
  memcpy(arg, "postgres://h/db?key=k&application_name=", 39);
  refused(arg, "too long");
  /* Just under the limit, with a host too long for its field. */
  memset(arg, 'h', sizeof arg);
  memcpy(arg, "redis://", 8);
  memcpy(arg + 500, "/k", 3);
  refused(arg, "host name is too long");
  /* A user too long for its field. */
  memset(arg, 'u', sizeof arg);
  memcpy(arg, "redis://", 8);
  memcpy(arg + 300, "@h/k", 5);
  refused(arg, "user name is too long");
  memcpy(arg, "postgres://", 11);
  memcpy(arg + 300, "@h/db?key=k", 12);
  refused(arg, "user name is too long");
  /* The longest URL accepted: 511 characters, the where whole. */
  memset(arg, 'x', sizeof arg);
  memcpy(arg, "postgres://h/db?key=k&application_name=", 39);
  arg[511] = '\0';
  parses(arg, &u);
  assert_string_equal(u.where, arg);
  assert_int_equal(strlen(u.conninfo), 511 - 6);
  /* WHY is cut to its size, never overrun. */
  char why[8];
  memset(why, '!', sizeof why);
  assert_int_equal(ctrun_lease_url_parse("redis://h", &u, why, 4), UV_EINVAL);
  assert_string_equal(why, "no ");
  assert_int_equal(why[4], '!');
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(tells_urls_from_paths),
    cmocka_unit_test(redis_defaults),
    cmocka_unit_test(redis_port_db_and_path_keys),
    cmocka_unit_test(redis_ipv6_user_password_file_tls),
    cmocka_unit_test(redis_refusals),
    cmocka_unit_test(postgres_fields),
    cmocka_unit_test(postgres_refusals),
    cmocka_unit_test(postgres_passwords_as_libpq_reads_them),
    cmocka_unit_test(overlong_urls_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
