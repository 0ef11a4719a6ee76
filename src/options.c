#include "ctrun/options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrun/duration.h"
#include "ctrun/lease.h"
#include "ctrun/ping.h"
#include "ctrun/size.h"
#include "ctrun/signals.h"

/* A small getopt_long: the same rules on every platform, messages in
 * ctrun's words, and parsing stops at the first operand so that the
 * command's own options are never read as ctrun's. */
struct optdef {
  char short_name; /* 0: long only */
  const char *long_name;
  int has_arg;
  int id;
};

struct parser {
  int argc;
  char **argv;
  int index;        /* next argv element */
  const char *rest; /* the rest of a bundle of short options ("-qv") */
  const struct optdef *defs;
  const char *arg;  /* the value of the option just returned */
  const char *used; /* the option as the user spelled it, for messages */
  char spelled[80];
  struct ctrun_parse_error *err;
};

static int fail(struct parser *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
  va_end(ap);
  /* The message quotes what the user typed; a newline or an escape
   * sequence in it must not forge lines on the terminal or in a log. */
  for (char *c = p->err->msg; *c != '\0'; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      *c = '?';
  return -1;
}

/* Returns an option id, 0 at the first operand (p->index points to it), or
 * -1 on error. */
static int next_opt(struct parser *p) {
  const struct optdef *d;

  p->arg = NULL;
  if (p->rest == NULL || *p->rest == '\0') {
    const char *a;
    p->rest = NULL;
    if (p->index >= p->argc)
      return 0;
    a = p->argv[p->index];
    if (a[0] != '-' || a[1] == '\0')
      return 0;
    p->index++;
    if (strcmp(a, "--") == 0)
      return 0;
    if (a[1] == '-') {
      const char *name = a + 2, *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      for (d = p->defs; d->id != 0; d++)
        if (strlen(d->long_name) == len && strncmp(d->long_name, name, len) == 0)
          break;
      snprintf(p->spelled, sizeof p->spelled, "--%.*s", (int)(len < 60 ? len : 60), name);
      p->used = p->spelled;
      if (d->id == 0)
        return fail(p, "unknown option '%s'", p->spelled);
      if (!d->has_arg) {
        if (eq)
          return fail(p, "option '%s' takes no value", p->spelled);
        return d->id;
      }
      if (eq) {
        p->arg = eq + 1;
      } else {
        if (p->index >= p->argc)
          return fail(p, "option '%s' needs a value", p->spelled);
        p->arg = p->argv[p->index++];
      }
      return d->id;
    }
    p->rest = a + 1;
  }
  for (d = p->defs; d->id != 0; d++)
    if (d->short_name != 0 && d->short_name == *p->rest)
      break;
  snprintf(p->spelled, sizeof p->spelled, "-%c", *p->rest);
  p->used = p->spelled;
  if (d->id == 0)
    return fail(p, "unknown option '%s'", p->spelled);
  p->rest++;
  if (d->has_arg) {
    if (*p->rest != '\0') {
      p->arg = p->rest;
    } else {
      if (p->index >= p->argc)
        return fail(p, "option '%s' needs a value", p->spelled);
      p->arg = p->argv[p->index++];
    }
    p->rest = NULL;
  }
  return d->id;
}

static void parser_init(struct parser *p, int argc, char **argv, const struct optdef *defs,
                        struct ctrun_parse_error *e) {
  memset(p, 0, sizeof *p);
  p->argc = argc;
  p->argv = argv;
  p->index = 1;
  p->defs = defs;
  p->err = e;
  e->msg[0] = '\0';
}

static int get_duration(struct parser *p, uint64_t *ms, int allow_inf) {
  int r = ctrun_duration_parse(p->arg, ms);
  if (r == -ERANGE)
    return fail(p, "duration '%s' for %s is out of range (at most 10 years)", p->arg, p->used);
  if (r != 0 || (!allow_inf && *ms == CTRUN_DURATION_INF))
    return fail(p, "invalid duration '%s' for %s (examples: 5, 0.5, 250ms, 1h30m%s)", p->arg,
                p->used, allow_inf ? ", inf" : "");
  return 0;
}

static int get_signal(struct parser *p, int *sig) {
  int s = ctrun_signal_parse(p->arg);
  if (s < 0)
    return fail(p, "invalid signal '%s' for %s", p->arg, p->used);
  *sig = s;
  return 0;
}

static int get_count_range(struct parser *p, long *v, long min, long max) {
  char *end;
  errno = 0;
  long n = strtol(p->arg, &end, 10);
  if (p->arg[0] < '0' || p->arg[0] > '9' || *end != '\0' || errno != 0 || n < min || n > max)
    return fail(p, "invalid number '%s' for %s (%ld to %ld)", p->arg, p->used, min, max);
  *v = n;
  return 0;
}

static int get_count_max(struct parser *p, long *v, long max) {
  return get_count_range(p, v, 0, max);
}

static int get_count(struct parser *p, long *v) { return get_count_max(p, v, 1000000000L); }

/* A duration that must be more than nothing: 0 would mean "at once", which
 * no one wants of these; inf means none (0). */
static int get_limit(struct parser *p, uint64_t *ms) {
  if (get_duration(p, ms, 1) != 0)
    return -1;
  if (*ms == 0)
    return fail(p, "invalid duration '%s' for %s: it must be more than 0 (inf: none)", p->arg,
                p->used);
  if (*ms == CTRUN_DURATION_INF)
    *ms = 0;
  return 0;
}

/* A memory size that must be more than nothing; inf means none (0). */
static int get_size(struct parser *p, uint64_t *bytes) {
  int r = ctrun_size_parse(p->arg, bytes);
  if (r == -ERANGE)
    return fail(p, "size '%s' for %s is out of range (at most 4194304T)", p->arg, p->used);
  if (r != 0)
    return fail(p, "invalid size '%s' for %s (a number of bytes, or with K, M, G or T: 512M, "
                "1.5G, inf)", p->arg, p->used);
  if (*bytes == 0)
    return fail(p, "invalid size '%s' for %s: it must be more than 0 (inf: none)", p->arg, p->used);
  if (*bytes == CTRUN_SIZE_INF)
    *bytes = 0;
  return 0;
}

/* --nice: an integer from -20 to 19. */
static int get_nice(struct parser *p, int *v) {
  char *end;
  const char *s = p->arg[0] == '-' || p->arg[0] == '+' ? p->arg + 1 : p->arg;
  errno = 0;
  long n = strtol(p->arg, &end, 10);
  if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || n < -20 || n > 19)
    return fail(p, "invalid niceness '%s' for %s (-20 to 19)", p->arg, p->used);
  *v = (int)n;
  return 0;
}

/* --ok-exit: a comma-separated list of exit statuses, 0-255. */
static int get_ok_exit(struct parser *p, uint32_t codes[8]) {
  const char *s = p->arg;
  for (;;) {
    size_t len = strcspn(s, ",");
    char item[8], *end;
    long code;
    if (len == 0 || len >= sizeof item)
      break;
    memcpy(item, s, len);
    item[len] = '\0';
    code = strtol(item, &end, 10);
    if (item[0] < '0' || item[0] > '9' || *end != '\0' || code > 255)
      break;
    codes[code / 32] |= 1u << (code % 32);
    if (s[len] == '\0')
      return 0;
    s += len + 1;
  }
  return fail(p, "invalid value '%s' for %s (a list of exit statuses 0-255, such as 24 or 1,24)",
              p->arg, p->used);
}

/* --retry-on: a comma-separated list of fail, timeout and exit codes. */
static int get_retry_on(struct parser *p, struct ctrun_retry_on *on) {
  const char *s = p->arg;
  memset(on, 0, sizeof *on);
  for (;;) {
    size_t len = strcspn(s, ",");
    char item[16];
    if (len == 0 || len >= sizeof item)
      goto bad;
    memcpy(item, s, len);
    item[len] = '\0';
    if (strcmp(item, "fail") == 0) {
      on->fail = true;
    } else if (strcmp(item, "timeout") == 0) {
      on->timeout = true;
    } else {
      char *end;
      long code = strtol(item, &end, 10);
      if (item[0] < '0' || item[0] > '9' || *end != '\0' || code > 255)
        goto bad;
      on->codes[code / 32] |= 1u << (code % 32);
    }
    if (s[len] == '\0')
      return 0;
    s += len + 1;
  }
bad:
  return fail(p, "invalid value '%s' for %s (a list of fail, timeout and exit codes 0-255, "
              "such as fail,timeout or 1,75)", p->arg, p->used);
}

static int get_choice(struct parser *p, const char *const *choices, int *v) {
  for (int i = 0; choices[i] != NULL; i++)
    if (strcmp(p->arg, choices[i]) == 0) {
      *v = i;
      return 0;
    }
  char list[128] = "";
  for (int i = 0; choices[i] != NULL; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", choices[i]);
  return fail(p, "invalid value '%s' for %s (one of: %s)", p->arg, p->used, list);
}

bool ctrun_name_valid(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > CTRUN_NAME_MAX)
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return false;
  }
  return true;
}

void ctrun_default_name(const char *argv0, char out[CTRUN_NAME_MAX + 1]) {
  const char *base = argv0;
  size_t n = 0;
  for (const char *s = argv0; *s; s++)
    if (*s == '/' || *s == '\\')
      base = s + 1;
  for (; *base && n < CTRUN_NAME_MAX; base++) {
    char c = *base;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    out[n++] = ok ? c : '_';
  }
  if (n == 0)
    out[n++] = '_';
  out[n] = '\0';
}

enum {
  OPT_TIMEOUT = 1, OPT_SIGNAL, OPT_KILL_AFTER, OPT_PRESERVE, OPT_LEFTOVERS, OPT_LOCK,
  OPT_LOCK_WAIT, OPT_ON_BUSY, OPT_NAME, OPT_DETACH, OPT_LOG, OPT_QUIET_SUCCESS, OPT_REPORT,
  OPT_QUIET, OPT_VERBOSE, OPT_HELP, OPT_VERSION, OPT_JSON, OPT_DRY_RUN, OPT_WARN, OPT_CRIT,
  OPT_CLEANUP, OPT_CHILD_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_RETRY, OPT_RETRY_DELAY, OPT_RETRY_ON,
  OPT_MAX_AGE, OPT_JOB, OPT_OUTPUT, OPT_JITTER, OPT_ON_FINISH, OPT_OK_EXIT, OPT_MEMORY,
  OPT_MAX_PROCS, OPT_CPU_TIME, OPT_NICE, OPT_MEM_WARN, OPT_MEM_CRIT, OPT_PING, OPT_PING_FILE,
  OPT_LOCK_TTL, OPT_LOCK_UNAVAILABLE
};

static const struct optdef run_defs[] = {
  { 't', "timeout", 1, OPT_TIMEOUT },
  { 's', "signal", 1, OPT_SIGNAL },
  { 'k', "kill-after", 1, OPT_KILL_AFTER },
  { 0, "preserve-status", 0, OPT_PRESERVE },
  { 0, "leftovers", 1, OPT_LEFTOVERS },
  { 'l', "lock", 1, OPT_LOCK },
  { 'w', "lock-wait", 1, OPT_LOCK_WAIT },
  { 0, "on-busy", 1, OPT_ON_BUSY },
  { 0, "lock-ttl", 1, OPT_LOCK_TTL },
  { 0, "lock-unavailable", 1, OPT_LOCK_UNAVAILABLE },
  { 0, "child-timeout", 1, OPT_CHILD_TIMEOUT },
  { 0, "idle-timeout", 1, OPT_IDLE_TIMEOUT },
  { 0, "retry", 1, OPT_RETRY },
  { 0, "retry-delay", 1, OPT_RETRY_DELAY },
  { 0, "retry-on", 1, OPT_RETRY_ON },
  { 0, "ok-exit", 1, OPT_OK_EXIT },
  { 0, "jitter", 1, OPT_JITTER },
  { 0, "on-finish", 1, OPT_ON_FINISH },
  { 0, "memory", 1, OPT_MEMORY },
  { 0, "max-procs", 1, OPT_MAX_PROCS },
  { 0, "cpu-time", 1, OPT_CPU_TIME },
  { 0, "nice", 1, OPT_NICE },
  { 'n', "name", 1, OPT_NAME },
  { 'd', "detach", 0, OPT_DETACH },
  { 'o', "log", 1, OPT_LOG },
  { 0, "quiet-success", 0, OPT_QUIET_SUCCESS },
  { 0, "report", 1, OPT_REPORT },
  { 0, "ping", 1, OPT_PING },
  { 0, "ping-file", 1, OPT_PING_FILE },
  { 'q', "quiet", 0, OPT_QUIET },
  { 'v', "verbose", 0, OPT_VERBOSE },
  { 'h', "help", 0, OPT_HELP },
  { 'V', "version", 0, OPT_VERSION },
  { 0, NULL, 0, 0 },
};

static int get_path(struct parser *p, const char **out) {
  if (p->arg[0] == '\0')
    return fail(p, "empty file name for %s", p->used);
  *out = p->arg;
  return 0;
}

/* -l FILE or -l URL: up to two, one file at most; a URL must parse, and
 * name a backend this ctrun has. */
static int get_lock(struct parser *p, struct ctrun_run_opts *o) {
  static const char *const backend[] = { "Redis", "PostgreSQL" };
  struct ctrun_lease_url u;
  char why[200];
  if (o->nlocks == CTRUN_LOCKS_MAX)
    return fail(p, "at most %d locks (-l)", CTRUN_LOCKS_MAX);
  if (!ctrun_lease_is_url(p->arg)) {
    if (o->lock_path != NULL)
      return fail(p, "one lock file at most (-l); a second lock may be a fleet lock URL");
    if (get_path(p, &o->lock_path) != 0)
      return -1;
  } else if (ctrun_lease_url_parse(p->arg, &u, why, sizeof why) != 0) {
    /* A password is not repeated: stderr goes to logs and mail. */
    if (strstr(why, "password") != NULL)
      return fail(p, "invalid lock URL for %s: %s", p->used, why);
    return fail(p, "invalid lock URL '%s' for %s: %s", p->arg, p->used, why);
  } else if (!ctrun_lease_supported(u.kind)) {
    return fail(p, "%s: this ctrun was built without %s locks", p->arg, backend[u.kind]);
  } else if (u.tls) {
    return fail(p, "%s: this ctrun has no TLS for Redis (rediss://)", p->arg);
  } else if (ctrun_lease_check(&u, why, sizeof why) != 0) {
    return fail(p, "invalid lock URL '%s' for %s: %s", p->arg, p->used, why);
  }
  o->locks[o->nlocks++] = p->arg;
  return 0;
}

/* --ping URL, --ping-file FILE (whose URL is read when the run starts). */
static int get_ping(struct parser *p, const char **out, bool file) {
  char why[160];
  if (!ctrun_ping_supported())
    return fail(p, "%s: this ctrun was built without HTTP support", p->used);
  if (file)
    return get_path(p, out);
  if (ctrun_ping_url_check(p->arg, why, sizeof why) != 0)
    return fail(p, "invalid URL '%s' for %s: %s", p->arg, p->used, why);
  *out = p->arg;
  return 0;
}

enum ctrun_parse_result ctrun_parse_run(int argc, char **argv, struct ctrun_run_opts *o,
                                        struct ctrun_parse_error *e) {
  static const char *const leftovers[] = { "kill", "wait", NULL };
  static const char *const on_busy[] = { "fail", "skip", "replace", "queue", NULL };
  struct parser p;
  int id, v, r = 0;
  long n;
  static const char *const unavailable[] = { "fail", "skip", NULL };
  bool lock_wait_given = false, retry_given = false, lock_ttl_given = false;
  bool lock_unavailable_given = false;
  const char *retry_extra = NULL;

  memset(o, 0, sizeof *o);
  o->signal = ctrun_signal_parse("TERM");
  o->kill_after_ms = 5000;
  o->retry_delay_ms = 1000;
  o->retry_on.fail = o->retry_on.timeout = true;
  o->lock_ttl_ms = CTRUN_LEASE_TTL_DEFAULT_MS;
  parser_init(&p, argc, argv, run_defs, e);
  while ((id = next_opt(&p)) > 0) {
    switch (id) {
    case OPT_TIMEOUT:
      r = get_duration(&p, &o->timeout_ms, 1);
      if (o->timeout_ms == CTRUN_DURATION_INF)
        o->timeout_ms = 0;
      break;
    case OPT_SIGNAL: r = get_signal(&p, &o->signal); break;
    case OPT_KILL_AFTER: r = get_duration(&p, &o->kill_after_ms, 1); break;
    case OPT_PRESERVE: o->preserve_status = true; break;
    case OPT_LEFTOVERS:
      r = get_choice(&p, leftovers, &v);
      o->leftovers = (enum ctrun_leftovers)v;
      break;
    case OPT_LOCK: r = get_lock(&p, o); break;
    case OPT_LOCK_TTL:
      r = get_duration(&p, &o->lock_ttl_ms, 0);
      if (r == 0 && (o->lock_ttl_ms < CTRUN_LEASE_TTL_MIN_MS || o->lock_ttl_ms == CTRUN_DURATION_INF))
        r = fail(&p, "--lock-ttl must be at least 3s (and finite)");
      lock_ttl_given = true;
      break;
    case OPT_LOCK_UNAVAILABLE:
      r = get_choice(&p, unavailable, &v);
      o->lock_unavailable_skip = v == 1;
      lock_unavailable_given = true;
      break;
    case OPT_LOCK_WAIT:
      r = get_duration(&p, &o->lock_wait_ms, 1);
      lock_wait_given = true;
      break;
    case OPT_ON_BUSY:
      r = get_choice(&p, on_busy, &v);
      o->on_busy = (enum ctrun_on_busy)v;
      break;
    case OPT_CHILD_TIMEOUT: r = get_limit(&p, &o->child_timeout_ms); break;
    case OPT_IDLE_TIMEOUT: r = get_limit(&p, &o->idle_timeout_ms); break;
    case OPT_RETRY:
      r = get_count_max(&p, &n, CTRUN_RETRY_MAX);
      o->retry = (int)n;
      retry_given = true;
      break;
    case OPT_RETRY_DELAY:
      r = get_duration(&p, &o->retry_delay_ms, 0);
      retry_extra = "--retry-delay";
      break;
    case OPT_RETRY_ON:
      r = get_retry_on(&p, &o->retry_on);
      retry_extra = "--retry-on";
      break;
    case OPT_OK_EXIT: r = get_ok_exit(&p, o->ok_exit); break;
    case OPT_JITTER: r = get_limit(&p, &o->jitter_ms); break;
    case OPT_ON_FINISH:
      if (p.arg[0] == '\0')
        r = fail(&p, "empty command for %s", p.used);
      o->on_finish = p.arg;
      break;
    case OPT_MEMORY: r = get_size(&p, &o->memory_bytes); break;
    case OPT_MAX_PROCS:
      /* At least 1: the command itself. */
      r = get_count_range(&p, &n, 1, 1000000000L);
      o->max_procs = (int)n;
      break;
    case OPT_CPU_TIME: r = get_limit(&p, &o->cpu_time_ms); break;
    case OPT_NICE:
      r = get_nice(&p, &o->nice);
      o->has_nice = true;
      break;
    case OPT_NAME:
      if (!ctrun_name_valid(p.arg))
        r = fail(&p, "invalid name '%s' for %s (1 to 64 of A-Z a-z 0-9 . _ -)", p.arg, p.used);
      else
        snprintf(o->name, sizeof o->name, "%s", p.arg);
      break;
    case OPT_DETACH: o->detach = true; break;
    case OPT_LOG: r = get_path(&p, &o->log_path); break;
    case OPT_QUIET_SUCCESS: o->quiet_success = true; break;
    case OPT_REPORT: r = get_path(&p, &o->report_path); break;
    case OPT_PING: r = get_ping(&p, &o->ping_url, false); break;
    case OPT_PING_FILE: r = get_ping(&p, &o->ping_file, true); break;
    case OPT_QUIET: o->verbosity = -1; break;
    case OPT_VERBOSE: o->verbosity = 1; break;
    case OPT_HELP: return CTRUN_PARSE_HELP;
    case OPT_VERSION: return CTRUN_PARSE_VERSION;
    }
    if (r != 0)
      return CTRUN_PARSE_ERROR;
  }
  if (id < 0)
    return CTRUN_PARSE_ERROR;
  if (p.index >= argc) {
    fail(&p, "no command given");
    return CTRUN_PARSE_ERROR;
  }
  if (argv[p.index][0] == '\0') {
    fail(&p, "the command is an empty string");
    return CTRUN_PARSE_ERROR;
  }
  if (o->nlocks == 0 && (o->lock_wait_ms != 0 || o->on_busy != CTRUN_BUSY_FAIL)) {
    if (o->lock_wait_ms != 0)
      fail(&p, "--lock-wait needs a lock (-l FILE or -l URL)");
    else
      fail(&p, "--on-busy=%s needs a lock (-l FILE or -l URL)", on_busy[o->on_busy]);
    return CTRUN_PARSE_ERROR;
  }
  {
    /* What only a fleet lock has, and what it cannot do. */
    bool fleet = o->nlocks > (o->lock_path != NULL ? 1 : 0);
    const char *needs = lock_ttl_given ? "--lock-ttl" : lock_unavailable_given ? "--lock-unavailable" : NULL;
    if (!fleet && needs != NULL) {
      fail(&p, "%s needs a fleet lock (-l redis://... or -l postgres://...)", needs);
      return CTRUN_PARSE_ERROR;
    }
    if (fleet && o->on_busy == CTRUN_BUSY_REPLACE) {
      fail(&p, "--on-busy=replace cannot reach the holder of a fleet lock on another host");
      return CTRUN_PARSE_ERROR;
    }
  }
  if (o->ping_url != NULL && o->ping_file != NULL) {
    fail(&p, "--ping and --ping-file: give one of them");
    return CTRUN_PARSE_ERROR;
  }
  if (retry_extra != NULL && !retry_given) {
    fail(&p, "%s needs --retry N", retry_extra);
    return CTRUN_PARSE_ERROR;
  }
  /* The one waiting run waits as long as it takes, unless told. */
  if (o->on_busy == CTRUN_BUSY_QUEUE && !lock_wait_given)
    o->lock_wait_ms = CTRUN_DURATION_INF;
  o->argv = argv + p.index;
  o->argc = argc - p.index;
  if (o->name[0] == '\0')
    ctrun_default_name(o->argv[0], o->name);
  return CTRUN_PARSE_OK;
}

static const struct optdef ps_defs[] = {
  { 0, "json", 0, OPT_JSON }, { 'h', "help", 0, OPT_HELP }, { 0, NULL, 0, 0 },
};
static const struct optdef stop_defs[] = {
  { 's', "signal", 1, OPT_SIGNAL }, { 'k', "kill-after", 1, OPT_KILL_AFTER },
  { 'h', "help", 0, OPT_HELP },     { 0, NULL, 0, 0 },
};
static const struct optdef cleanup_defs[] = {
  { 0, "dry-run", 0, OPT_DRY_RUN }, { 0, "json", 0, OPT_JSON },
  { 'h', "help", 0, OPT_HELP },     { 0, NULL, 0, 0 },
};
static const struct optdef check_defs[] = {
  { 0, "warn", 1, OPT_WARN },       { 0, "crit", 1, OPT_CRIT }, { 0, "cleanup", 0, OPT_CLEANUP },
  { 0, "max-age", 1, OPT_MAX_AGE }, { 0, "mem-warn", 1, OPT_MEM_WARN }, { 0, "job", 1, OPT_JOB },
  { 0, "mem-crit", 1, OPT_MEM_CRIT },
  { 0, "json", 0, OPT_JSON },       { 'q', "quiet", 0, OPT_QUIET }, { 'h', "help", 0, OPT_HELP },
  { 0, NULL, 0, 0 },
};

static const struct optdef last_defs[] = {
  { 0, "json", 0, OPT_JSON }, { 'h', "help", 0, OPT_HELP }, { 0, NULL, 0, 0 },
};
static const struct optdef metrics_defs[] = {
  { 'o', "output", 1, OPT_OUTPUT }, { 'h', "help", 0, OPT_HELP }, { 0, NULL, 0, 0 },
};

/* check --job NAME=DUR. */
static int get_job(struct parser *p, struct ctrun_check_opts *o) {
  const char *eq = strchr(p->arg, '=');
  size_t n = eq ? (size_t)(eq - p->arg) : 0;
  struct ctrun_check_job *j = &o->jobs[o->njobs];
  uint64_t ms;
  if (o->njobs == CTRUN_CHECK_JOBS_MAX)
    return fail(p, "too many %s (at most %d)", p->used, CTRUN_CHECK_JOBS_MAX);
  if (eq == NULL || n == 0 || n > CTRUN_NAME_MAX)
    return fail(p, "invalid value '%s' for %s (NAME=DUR, such as backup=26h)", p->arg, p->used);
  memcpy(j->name, p->arg, n);
  j->name[n] = '\0';
  if (!ctrun_name_valid(j->name))
    return fail(p, "invalid name '%s' in %s %s (1 to 64 of A-Z a-z 0-9 . _ -)", j->name, p->used,
                p->arg);
  if (ctrun_duration_parse(eq + 1, &ms) != 0 || ms == 0 || ms == CTRUN_DURATION_INF)
    return fail(p, "invalid duration '%s' in %s %s (more than 0, such as 26h or 1d)", eq + 1,
                p->used, p->arg);
  j->within_ms = ms;
  o->njobs++;
  return 0;
}

/* The subcommands: argv[0] is the subcommand's name. */
static enum ctrun_parse_result no_operands(struct parser *p) {
  if (p->index < p->argc) {
    fail(p, "%s: unexpected argument '%s'", p->argv[0], p->argv[p->index]);
    return CTRUN_PARSE_ERROR;
  }
  return CTRUN_PARSE_OK;
}

enum ctrun_parse_result ctrun_parse_ps(int argc, char **argv, struct ctrun_ps_opts *o,
                                       struct ctrun_parse_error *e) {
  struct parser p;
  int id;
  memset(o, 0, sizeof *o);
  parser_init(&p, argc, argv, ps_defs, e);
  while ((id = next_opt(&p)) > 0) {
    if (id == OPT_HELP)
      return CTRUN_PARSE_HELP;
    o->json = true;
  }
  return id < 0 ? CTRUN_PARSE_ERROR : no_operands(&p);
}

enum ctrun_parse_result ctrun_parse_stop(int argc, char **argv, struct ctrun_stop_opts *o,
                                         struct ctrun_parse_error *e) {
  struct parser p;
  int id, r = 0;
  memset(o, 0, sizeof *o);
  parser_init(&p, argc, argv, stop_defs, e);
  while ((id = next_opt(&p)) > 0) {
    if (id == OPT_HELP)
      return CTRUN_PARSE_HELP;
    if (id == OPT_SIGNAL)
      r = get_signal(&p, &o->signal);
    else {
      r = get_duration(&p, &o->kill_after_ms, 1);
      o->has_kill_after = true;
    }
    if (r != 0)
      return CTRUN_PARSE_ERROR;
  }
  if (id < 0)
    return CTRUN_PARSE_ERROR;
  if (p.index >= argc) {
    fail(&p, "stop: no run given (a run id or name, see 'ctrun ps')");
    return CTRUN_PARSE_ERROR;
  }
  o->runs = argv + p.index;
  o->nruns = argc - p.index;
  return CTRUN_PARSE_OK;
}

enum ctrun_parse_result ctrun_parse_cleanup(int argc, char **argv, struct ctrun_cleanup_opts *o,
                                            struct ctrun_parse_error *e) {
  struct parser p;
  int id;
  memset(o, 0, sizeof *o);
  parser_init(&p, argc, argv, cleanup_defs, e);
  while ((id = next_opt(&p)) > 0) {
    if (id == OPT_HELP)
      return CTRUN_PARSE_HELP;
    if (id == OPT_DRY_RUN)
      o->dry_run = true;
    else
      o->json = true;
  }
  return id < 0 ? CTRUN_PARSE_ERROR : no_operands(&p);
}

enum ctrun_parse_result ctrun_parse_last(int argc, char **argv, struct ctrun_last_opts *o,
                                        struct ctrun_parse_error *e) {
  struct parser p;
  int id;
  memset(o, 0, sizeof *o);
  parser_init(&p, argc, argv, last_defs, e);
  while ((id = next_opt(&p)) > 0) {
    if (id == OPT_HELP)
      return CTRUN_PARSE_HELP;
    o->json = true;
  }
  if (id < 0)
    return CTRUN_PARSE_ERROR;
  o->names = argv + p.index;
  o->nnames = argc - p.index;
  for (int i = 0; i < o->nnames; i++)
    if (!ctrun_name_valid(o->names[i])) {
      fail(&p, "last: invalid name '%s' (1 to 64 of A-Z a-z 0-9 . _ -)", o->names[i]);
      return CTRUN_PARSE_ERROR;
    }
  return CTRUN_PARSE_OK;
}

enum ctrun_parse_result ctrun_parse_metrics(int argc, char **argv, struct ctrun_metrics_opts *o,
                                           struct ctrun_parse_error *e) {
  struct parser p;
  int id;
  memset(o, 0, sizeof *o);
  parser_init(&p, argc, argv, metrics_defs, e);
  while ((id = next_opt(&p)) > 0) {
    if (id == OPT_HELP)
      return CTRUN_PARSE_HELP;
    if (get_path(&p, &o->out_path) != 0)
      return CTRUN_PARSE_ERROR;
  }
  return id < 0 ? CTRUN_PARSE_ERROR : no_operands(&p);
}

enum ctrun_parse_result ctrun_parse_check(int argc, char **argv, struct ctrun_check_opts *o,
                                          struct ctrun_parse_error *e) {
  struct parser p;
  int id, r = 0;
  memset(o, 0, sizeof *o);
  o->warn = o->crit = -1;
  parser_init(&p, argc, argv, check_defs, e);
  while ((id = next_opt(&p)) > 0) {
    switch (id) {
    case OPT_HELP: return CTRUN_PARSE_HELP;
    case OPT_WARN: r = get_count(&p, &o->warn); break;
    case OPT_CRIT: r = get_count(&p, &o->crit); break;
    case OPT_CLEANUP: o->cleanup = true; break;
    case OPT_MAX_AGE: r = get_limit(&p, &o->max_age_ms); break;
    case OPT_MEM_WARN: r = get_size(&p, &o->mem_warn); break;
    case OPT_MEM_CRIT: r = get_size(&p, &o->mem_crit); break;
    case OPT_JOB: r = get_job(&p, o); break;
    case OPT_JSON: o->json = true; break;
    case OPT_QUIET: o->quiet = true; break;
    }
    if (r != 0)
      return CTRUN_PARSE_ERROR;
  }
  if (id < 0)
    return CTRUN_PARSE_ERROR;
  if (o->warn >= 0 && o->crit >= 0 && o->warn > o->crit) {
    fail(&p, "check: --warn %ld is above --crit %ld", o->warn, o->crit);
    return CTRUN_PARSE_ERROR;
  }
  return no_operands(&p);
}
