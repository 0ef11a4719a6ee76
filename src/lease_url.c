/* Lock URLs: what -l names when it is not a file.
 *
 *   redis://[USER@]HOST[:PORT][/DB]/KEY[?password-file=FILE]   (rediss://)
 *   postgres://[USER@]HOST[:PORT]/DBNAME?key=KEY[&LIBPQ-PARAM=VALUE...]
 *
 * A password is refused wherever it would appear: the command line is
 * anyone's to read in ps. */
#include "ctrun/lease.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ctrun_lease_is_url(const char *arg) {
  const char *c = arg;
  if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
    return false;
  while ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
         *c == '+' || *c == '-' || *c == '.')
    c++;
  return strncmp(c, "://", 3) == 0;
}

static int bad(char *why, size_t whylen, const char *text) {
  snprintf(why, whylen, "%s", text);
  return UV_EINVAL;
}

/* A key: 1 to 200 visible ASCII characters, none of them ? # &. */
static bool key_valid(const char *k, size_t len) {
  if (len == 0 || len > 200)
    return false;
  for (size_t i = 0; i < len; i++)
    if (k[i] < 0x21 || k[i] > 0x7e || k[i] == '?' || k[i] == '#' || k[i] == '&')
      return false;
  return true;
}

static const char *const PASSWORD_REDIS =
    "a password in the URL would show in ps; use password-file=FILE or REDISCLI_AUTH";
static const char *const PASSWORD_PG =
    "a password in the URL would show in ps; use ~/.pgpass, PGPASSFILE or a service file";
/* libpq looks for USER@ up to the first /, across any ?. */
static const char *const AT_IN_PARAMS =
    "an @ after a ? that libpq would read as the end of a user name (write %40, or add /DBNAME)";

/* Split "[USER[:PASSWORD]@]HOSTPORT" of AUTH (LEN bytes): the user into U
 * (USERLEN), the rest's offset returned; -1 on a password. */
static long split_user(const char *auth, size_t len, char *u, size_t ulen) {
  const char *at = NULL;
  for (size_t i = 0; i < len; i++)
    if (auth[i] == '@')
      at = auth + i;
  u[0] = '\0';
  if (at == NULL)
    return 0;
  if (memchr(auth, ':', (size_t)(at - auth)) != NULL)
    return -1;
  if ((size_t)(at - auth) >= ulen)
    return -2;
  memcpy(u, auth, (size_t)(at - auth));
  u[at - auth] = '\0';
  return at - auth + 1;
}

static int parse_redis(const char *rest, struct ctrun_lease_url *u, char *why, size_t whylen) {
  const char *auth_end = rest + strcspn(rest, "/?#"), *h, *p, *q;
  long off = split_user(rest, (size_t)(auth_end - rest), u->user, sizeof u->user);
  size_t hlen;

  if (off == -1)
    return bad(why, whylen, PASSWORD_REDIS);
  /* Anywhere, not only in the path: "redis://h#x/k" is no "no key". */
  if (strchr(rest, '#') != NULL)
    return bad(why, whylen, "a # in the URL");
  if (off < 0)
    return bad(why, whylen, "the user name is too long");
  h = rest + off;
  if (*h == '[') {
    const char *close = memchr(h, ']', (size_t)(auth_end - h));
    if (close == NULL)
      return bad(why, whylen, "an IPv6 address without its closing ]");
    hlen = (size_t)(close - h - 1);
    p = close + 1;
    h++;
  } else {
    const char *colon = memchr(h, ':', (size_t)(auth_end - h));
    p = colon != NULL ? colon : auth_end;
    hlen = (size_t)(p - h);
  }
  if (hlen == 0)
    return bad(why, whylen, "no host");
  if (hlen >= sizeof u->host)
    return bad(why, whylen, "the host name is too long");
  for (size_t i = 0; i < hlen; i++)
    if (h[i] <= 0x20 || h[i] > 0x7e || h[i] == '@' || h[i] == '%' || h[i] == '[' || h[i] == ']')
      return bad(why, whylen, "a host name with a character no host name has");
  /* (A [ or ] left in the host, as from "[[x]", would make a `where` that
   * does not parse back.) */
  memcpy(u->host, h, hlen);
  u->host[hlen] = '\0';
  u->port = 6379;
  if (p < auth_end) {
    char *e;
    long port;
    if (*p != ':' || p + 1 == auth_end)
      return bad(why, whylen, "a malformed port");
    port = strtol(p + 1, &e, 10);
    if (e != auth_end || port < 1 || port > 65535 || p[1] < '0' || p[1] > '9')
      return bad(why, whylen, "a port that is not a number from 1 to 65535");
    u->port = (int)port;
  }
  /* The path: [/DB]/KEY */
  if (*auth_end != '/')
    return bad(why, whylen, "no key (redis://HOST[:PORT][/DB]/KEY)");
  p = auth_end + 1;
  q = p + strcspn(p, "?#");
  if (*q == '#')
    return bad(why, whylen, "a # in the URL");
  {
    const char *slash = memchr(p, '/', (size_t)(q - p));
    size_t dlen = slash != NULL ? (size_t)(slash - p) : 0;
    bool digits = dlen > 0 && dlen <= 6;
    for (size_t i = 0; digits && i < dlen; i++)
      digits = p[i] >= '0' && p[i] <= '9';
    if (digits) {
      u->db = atoi(p);
      p = slash + 1;
    }
  }
  if (!key_valid(p, (size_t)(q - p)))
    return bad(why, whylen, (q == p) ? "no key (redis://HOST[:PORT][/DB]/KEY)"
                                     : "a key of 1 to 200 visible characters, none of ? # &");
  memcpy(u->key, p, (size_t)(q - p));
  u->key[q - p] = '\0';
  /* ?password-file=FILE, nothing else */
  while (*q == '?' || *q == '&') {
    const char *v = q + 1, *end = v + strcspn(v, "&#");
    if (*end == '#')
      return bad(why, whylen, "a # in the URL");
    if (strncmp(v, "password-file=", 14) == 0 && end > v + 14) {
      if ((size_t)(end - v - 14) >= sizeof u->password_file)
        return bad(why, whylen, "the password file's name is too long");
      memcpy(u->password_file, v + 14, (size_t)(end - v - 14));
      u->password_file[end - v - 14] = '\0';
    } else if (strncmp(v, "password=", 9) == 0) {
      return bad(why, whylen, PASSWORD_REDIS);
    } else {
      return bad(why, whylen, "an unknown parameter (only password-file=FILE)");
    }
    q = end;
  }
  {
    char host[sizeof u->host + 2];
    snprintf(host, sizeof host, strchr(u->host, ':') != NULL ? "[%s]" : "%s", u->host);
    snprintf(u->where, sizeof u->where, "%s://%s%s%s:%d/%d/%s", u->tls ? "rediss" : "redis",
             u->user, u->user[0] ? "@" : "", host, u->port, u->db, u->key);
  }
  return 0;
}

/* How libpq reads a postgres:// URL (conninfo_uri_parse_options), REST
 * being what follows "://": the user part runs to the first @ before the
 * first / (even across a ?), a password in it after a :; then hosts, each
 * maybe in [ ] (which holds anything but ]), with ports, comma-separated;
 * then /DBNAME; then ?PARAMS.  Returns where ?PARAMS begins (its ?, or
 * the terminating NUL), *AT the @ or NULL; NULL for a [ never closed.
 * Anything else libpq refuses on its own, when it connects. */
static const char *pg_layout(const char *rest, const char **at) {
  const char *p = rest + strcspn(rest, "@/");
  *at = *p == '@' ? p : NULL;
  p = *at != NULL ? *at + 1 : rest;
  for (;;) {
    if (*p == '[') {
      p = strchr(p, ']');
      if (p == NULL)
        return NULL;
    }
    p += strcspn(p, ":/?,");
    if (*p == ':')
      p += strcspn(p, "/?,");
    if (*p != ',')
      break;
    p++;
  }
  if (*p == '/')
    p += strcspn(p, "?");
  return p;
}

static int parse_postgres(const char *arg, const char *rest, struct ctrun_lease_url *u, char *why,
                          size_t whylen) {
  const char *at, *q = pg_layout(rest, &at);
  size_t n;

  /* The user part as libpq finds it: "u:p?x@h" is user u, password p?x. */
  if (at != NULL && memchr(rest, ':', (size_t)(at - rest)) != NULL)
    return bad(why, whylen, PASSWORD_PG);
  if (at != NULL && memchr(rest, '?', (size_t)(at - rest)) != NULL)
    return bad(why, whylen, AT_IN_PARAMS);
  if (at != NULL && (size_t)(at - rest) >= sizeof u->user)
    return bad(why, whylen, "the user name is too long");
  if (strchr(arg, '#') != NULL)
    return bad(why, whylen, "a # in the URL");
  if (q == NULL)
    return bad(why, whylen, "an IPv6 address without its closing ]");
  if (*q != '?')
    return bad(why, whylen, "no key (postgres://HOST[:PORT]/DBNAME?key=KEY)");
  /* The URL up to the query, then every parameter but key= for libpq. */
  n = (size_t)(q - arg);
  if (n >= sizeof u->conninfo)
    return bad(why, whylen, "the URL is too long");
  memcpy(u->conninfo, arg, n);
  u->conninfo[n] = '\0';
  while (*q == '?' || *q == '&') {
    const char *v = q + 1, *end = v + strcspn(v, "&");
    size_t len = (size_t)(end - v);
    /* libpq %-decodes a parameter's name: %70assword=x is a password. */
    if (memchr(v, '%', strcspn(v, "=&")) != NULL)
      return bad(why, whylen, "a %-encoded parameter name");
    if (len >= 4 && strncmp(v, "key=", 4) == 0) {
      if (u->key[0] != '\0')
        return bad(why, whylen, "key= given twice");
      if (!key_valid(v + 4, len - 4))
        return bad(why, whylen, len == 4 ? "no key (postgres://HOST[:PORT]/DBNAME?key=KEY)"
                                         : "a key of 1 to 200 visible characters, none of ? # &");
      memcpy(u->key, v + 4, len - 4);
      u->key[len - 4] = '\0';
    } else if (len >= 9 && strncmp(v, "password=", 9) == 0) {
      return bad(why, whylen, PASSWORD_PG);
    } else if (len > 0) {
      /* libpq refuses the whole URL for one "?sslmode" or "?a=b=c": at
       * the lock, long after the options were read. */
      const char *eq = memchr(v, '=', len);
      size_t have = strlen(u->conninfo);
      if (eq == NULL || eq == v || memchr(eq + 1, '=', (size_t)(end - eq - 1)) != NULL)
        return bad(why, whylen, "a parameter that is not NAME=VALUE");
      if (have + len + 2 >= sizeof u->conninfo)
        return bad(why, whylen, "the URL is too long");
      u->conninfo[have] = strchr(u->conninfo, '?') ? '&' : '?';
      memcpy(u->conninfo + have + 1, v, len);
      u->conninfo[have + 1 + len] = '\0';
    }
    q = end;
  }
  if (u->key[0] == '\0')
    return bad(why, whylen, "no key (postgres://HOST[:PORT]/DBNAME?key=KEY)");
  /* Without key= (and a / in its value), an @ among the parameters can
   * become libpq's end of the user part: "h:1?key=a/b&x=1@y" leaves
   * "h:1?x=1@y", user h, password 1?x=1.  libpq must read what we checked. */
  {
    const char *at2, *q2 = pg_layout(u->conninfo + (rest - arg), &at2);
    if (at2 != NULL && memchr(u->conninfo + (rest - arg), ':',
                              (size_t)(at2 - (u->conninfo + (rest - arg)))) != NULL)
      return bad(why, whylen, PASSWORD_PG);
    if (q2 != u->conninfo + n)
      return bad(why, whylen, AT_IN_PARAMS);
  }
  snprintf(u->where, sizeof u->where, "%s", arg);
  return 0;
}

int ctrun_lease_url_parse(const char *arg, struct ctrun_lease_url *u, char *why, size_t whylen) {
  const char *sep = strstr(arg, "://");
  size_t slen;

  memset(u, 0, sizeof *u);
  if (!ctrun_lease_is_url(arg) || sep == NULL)
    return bad(why, whylen, "not a URL");
  slen = (size_t)(sep - arg);
  if (strlen(arg) >= 512)
    return bad(why, whylen, "the URL is too long");
  for (const char *c = arg; *c; c++)
    if (*c <= 0x20 || *c > 0x7e)
      return bad(why, whylen, "a space or a control character in the URL");
  if ((slen == 5 && strncmp(arg, "redis", 5) == 0) || (slen == 6 && strncmp(arg, "rediss", 6) == 0)) {
    u->kind = CTRUN_LEASE_REDIS;
    u->tls = slen == 6;
    return parse_redis(sep + 3, u, why, whylen);
  }
  if ((slen == 8 && strncmp(arg, "postgres", 8) == 0) ||
      (slen == 10 && strncmp(arg, "postgresql", 10) == 0)) {
    u->kind = CTRUN_LEASE_POSTGRES;
    return parse_postgres(arg, sep + 3, u, why, whylen);
  }
  return bad(why, whylen, "an unknown scheme (redis://, rediss://, postgres://, postgresql://)");
}
