/* Fuzz the lock URL parser (-l redis://..., -l postgres://...): anything
 * parses or is refused with a reason; what parses has a valid key, a Redis
 * URL reads back the same from its `where`, and what libpq is given holds
 * no password and no key=, read as libpq reads a URI. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ctrun/lease.h"
#include "fuzz_common.h"

#define TERMINATED(field) FUZZ_CHECK(strnlen(field, sizeof field) < sizeof field)

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* A parameter's name S[0..n), %-decoded as libpq decodes it. */
static void decode_name(const char *s, size_t n, char *out, size_t outlen) {
  size_t o = 0;
  for (size_t i = 0; i < n && o + 1 < outlen; i++) {
    if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      out[o++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
}

/* URL as libpq's URI parser reads it (conninfo_uri_parse_options and
 * conninfo_uri_parse_params, PostgreSQL 15): no password after a : in the
 * user part (up to the first @ before the first /), no password= among
 * the parameters, and no key= unless KEY_OK.  A URL libpq refuses (an
 * unclosed [, a parameter without =) holds nothing libpq would use. */
static void check_libpq_view(const char *url, bool key_ok) {
  const char *p = strstr(url, "://"), *start;
  FUZZ_CHECK(p != NULL);
  start = p += 3;
  while (*p != '\0' && *p != '@' && *p != '/')
    p++;
  if (*p == '@') {
    for (const char *c = start; c < p; c++)
      FUZZ_CHECK(*c != ':');
    start = p + 1;
  }
  p = start;
  for (;;) {
    if (*p == '[') {
      while (*p != '\0' && *p != ']')
        p++;
      if (*p == '\0')
        return;
      p++;
      if (*p != '\0' && *p != ':' && *p != '/' && *p != '?' && *p != ',')
        return;
    } else {
      while (*p != '\0' && *p != ':' && *p != '/' && *p != '?' && *p != ',')
        p++;
    }
    if (*p == ':') {
      p++;
      while (*p != '\0' && *p != '/' && *p != '?' && *p != ',')
        p++;
    }
    if (*p != ',')
      break;
    p++;
  }
  if (*p == '/')
    while (*p != '\0' && *p != '?')
      p++;
  if (*p != '?')
    return;
  p++;
  /* libpq refuses the whole URL for one parameter without its = or with
   * two ("?key=k&key", "?a=1&&b=2"): nothing in it is used. */
  for (const char *c = p; *c != '\0';) {
    size_t len = strcspn(c, "&");
    const char *eq = memchr(c, '=', len);
    if (eq == NULL || memchr(eq + 1, '=', len - (size_t)(eq + 1 - c)) != NULL)
      return;
    c += len;
    if (*c == '&')
      c++;
  }
  while (*p != '\0') {
    size_t len = strcspn(p, "&"), nlen = strcspn(p, "=&");
    char name[600];
    decode_name(p, nlen, name, sizeof name);
    FUZZ_CHECK(strcmp(name, "password") != 0);
    if (!key_ok)
      FUZZ_CHECK(strcmp(name, "key") != 0);
    p += len;
    if (*p == '&')
      p++;
  }
}

static void check_key(const char *k) {
  size_t n = strlen(k);
  FUZZ_CHECK(n >= 1 && n <= 200);
  for (const char *c = k; *c; c++)
    FUZZ_CHECK(*c >= 0x21 && *c <= 0x7e && *c != '?' && *c != '#' && *c != '&');
}

static void check_parsed(const char *arg, const struct ctrun_lease_url *u) {
  TERMINATED(u->where);
  TERMINATED(u->key);
  TERMINATED(u->host);
  TERMINATED(u->user);
  TERMINATED(u->password_file);
  TERMINATED(u->conninfo);
  check_key(u->key);
  FUZZ_CHECK(u->where[0] != '\0');
  if (u->kind == CTRUN_LEASE_REDIS) {
    struct ctrun_lease_url again;
    char why[256];
    FUZZ_CHECK(u->port >= 1 && u->port <= 65535);
    FUZZ_CHECK(u->host[0] != '\0');
    FUZZ_CHECK(strchr(u->user, ':') == NULL);
    FUZZ_CHECK(strncmp(arg, u->tls ? "rediss://" : "redis://", u->tls ? 9 : 8) == 0);
    /* Its where names the same lock, and is where's own where. */
    if (ctrun_lease_url_parse(u->where, &again, why, sizeof why) != 0) {
      fprintf(stderr, "%s: where %s does not parse: %s\n", arg, u->where, why);
      abort();
    }
    FUZZ_CHECK(again.kind == CTRUN_LEASE_REDIS && again.tls == u->tls);
    FUZZ_CHECK(strcmp(again.host, u->host) == 0);
    FUZZ_CHECK(again.port == u->port && again.db == u->db);
    FUZZ_CHECK(strcmp(again.key, u->key) == 0);
    FUZZ_CHECK(strcmp(again.user, u->user) == 0);
    FUZZ_CHECK(strcmp(again.where, u->where) == 0);
  } else {
    FUZZ_CHECK(u->kind == CTRUN_LEASE_POSTGRES);
    FUZZ_CHECK(strncmp(arg, "postgres://", 11) == 0 || strncmp(arg, "postgresql://", 13) == 0);
    FUZZ_CHECK(strcmp(u->where, arg) == 0);
    /* The URL up to its parameters, unchanged. */
    FUZZ_CHECK(strncmp(u->conninfo, arg, strcspn(u->conninfo, "?")) == 0);
    check_libpq_view(u->conninfo, false);
    /* Nor a password in what ps shows. */
    check_libpq_view(u->where, true);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *arg = fuzz_cstring(data, size);
  struct ctrun_lease_url u;
  char why[256];
  bool is_url = ctrun_lease_is_url(arg);
  int r;

  memset(why, 0, sizeof why);
  r = ctrun_lease_url_parse(arg, &u, why, sizeof why);
  if (r == 0) {
    FUZZ_CHECK(is_url);
    check_parsed(arg, &u);
  } else {
    FUZZ_CHECK(r == UV_EINVAL);
    FUZZ_CHECK(why[0] != '\0' && memchr(why, '\0', sizeof why) != NULL);
  }
  free(arg);
  return 0;
}
