#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h> /* SIGKILL, which Windows' signal.h lacks */

#include "ctrun/duration.h"
#include "ctrun/options.h"

#define ARGV(...) ((char *[]){ "ctrun", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "ctrun", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(o, e, ...) ctrun_parse_run(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (o), (e))

static void defaults(void **state) {
  struct ctrun_run_opts o;
  struct ctrun_parse_error e;
  (void)state;
  assert_int_equal(PARSE(&o, &e, "git", "status"), CTRUN_PARSE_OK);
  assert_int_equal(o.timeout_ms, 0);
  assert_int_equal(o.signal, SIGTERM);
  assert_int_equal(o.kill_after_ms, 5000);
  assert_int_equal(o.leftovers, CTRUN_LEFTOVERS_KILL);
  assert_int_equal(o.on_busy, CTRUN_BUSY_FAIL);
  assert_null(o.lock_path);
  assert_false(o.detach);
  assert_int_equal(o.argc, 2);
  assert_string_equal(o.argv[0], "git");
  assert_string_equal(o.name, "git");
  assert_int_equal(o.child_timeout_ms, 0);
  assert_int_equal(o.idle_timeout_ms, 0);
  assert_int_equal(o.retry, 0);
  assert_int_equal(o.retry_delay_ms, 1000);
  assert_true(o.retry_on.fail && o.retry_on.timeout);
  for (int i = 0; i < 8; i++)
    assert_int_equal(o.retry_on.codes[i], 0);
}

/* The options that govern a run while it runs. */
static void governing_options(void **state) {
  struct ctrun_run_opts o;
  struct ctrun_parse_error e;
  (void)state;
  assert_int_equal(PARSE(&o, &e, "--child-timeout", "30s", "--idle-timeout=1.5m", "--retry", "2",
                         "--retry-delay", "250ms", "--retry-on", "timeout,1,75,255", "cmd"),
                   CTRUN_PARSE_OK);
  assert_int_equal(o.child_timeout_ms, 30000);
  assert_int_equal(o.idle_timeout_ms, 90000);
  assert_int_equal(o.retry, 2);
  assert_int_equal(o.retry_delay_ms, 250);
  assert_false(o.retry_on.fail);
  assert_true(o.retry_on.timeout);
  assert_int_equal(o.retry_on.codes[0], 1u << 1);
  assert_int_equal(o.retry_on.codes[75 / 32], 1u << (75 % 32));
  assert_int_equal(o.retry_on.codes[7], 1u << 31);
  /* inf means none; --retry 0 is no retry; a delay of 0 is allowed. */
  assert_int_equal(PARSE(&o, &e, "--child-timeout=inf", "--idle-timeout", "inf", "--retry=0",
                         "--retry-delay=0", "cmd"),
                   CTRUN_PARSE_OK);
  assert_int_equal(o.child_timeout_ms, 0);
  assert_int_equal(o.idle_timeout_ms, 0);
  assert_int_equal(o.retry_delay_ms, 0);
  assert_int_equal(PARSE(&o, &e, "--retry", "1000", "--retry-on", "fail", "cmd"), CTRUN_PARSE_OK);
  assert_true(o.retry_on.fail && !o.retry_on.timeout);
  /* queue waits as long as it takes unless -w says otherwise. */
  assert_int_equal(PARSE(&o, &e, "-l", "x.lock", "--on-busy=queue", "cmd"), CTRUN_PARSE_OK);
  assert_int_equal(o.on_busy, CTRUN_BUSY_QUEUE);
  assert_int_equal(o.lock_wait_ms, CTRUN_DURATION_INF);
  assert_int_equal(PARSE(&o, &e, "-w", "10s", "-l", "x.lock", "--on-busy", "queue", "cmd"),
                   CTRUN_PARSE_OK);
  assert_int_equal(o.lock_wait_ms, 10000);
  assert_int_equal(PARSE(&o, &e, "-l", "x.lock", "--on-busy=skip", "cmd"), CTRUN_PARSE_OK);
  assert_int_equal(o.lock_wait_ms, 0);
}

/* Each bad or conflicting value of the new options: one line that names
 * the option and quotes the value. */
static void governing_errors(void **state) {
  static const struct { const char *a, *b, *want; } cases[] = {
    { "--child-timeout", "0", "'0' for --child-timeout" },
    { "--child-timeout", "-1s", "'-1s' for --child-timeout" },
    { "--idle-timeout", "0ms", "'0ms' for --idle-timeout" },
    { "--idle-timeout", "soon", "'soon' for --idle-timeout" },
    { "--retry", "-1", "'-1' for --retry" },
    { "--retry", "1001", "'1001' for --retry (0 to 1000)" },
    { "--retry", "two", "'two' for --retry" },
    { "--retry", "", "'' for --retry" },
    { "--retry", "+2", "'+2' for --retry" },
    { "--retry-delay", "inf", "'inf' for --retry-delay" },
    { "--retry-on", "nope", "'nope' for --retry-on" },
    { "--retry-on", "fail,", "'fail,' for --retry-on" },
    { "--retry-on", "256", "'256' for --retry-on" },
    { "--retry-on", "-1", "'-1' for --retry-on" },
    { "--retry-on", "", "'' for --retry-on" },
    { "--retry-on", "fail,,timeout", "'fail,,timeout' for --retry-on" },
    { "--on-busy", "later", "'later' for --on-busy" },
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ctrun_run_opts o;
    struct ctrun_parse_error e;
    char *argv[] = { "ctrun", "--retry", "1", (char *)cases[i].a, (char *)cases[i].b, "cmd", NULL };
    assert_int_equal(ctrun_parse_run(6, argv, &o, &e), CTRUN_PARSE_ERROR);
    assert_null(strchr(e.msg, '\n'));
    if (strstr(e.msg, cases[i].want) == NULL)
      fail_msg("case %u: '%s' does not say %s", (unsigned)i, e.msg, cases[i].want);
  }
  struct ctrun_run_opts o;
  struct ctrun_parse_error e;
  assert_int_equal(PARSE(&o, &e, "--on-busy=queue", "cmd"), CTRUN_PARSE_ERROR);
  assert_string_equal(e.msg, "--on-busy=queue needs a lock (-l FILE or -l URL)");
  assert_int_equal(PARSE(&o, &e, "--retry-on", "fail", "cmd"), CTRUN_PARSE_ERROR);
  assert_string_equal(e.msg, "--retry-on needs --retry N");
  assert_int_equal(PARSE(&o, &e, "--retry-delay=2s", "cmd"), CTRUN_PARSE_ERROR);
  assert_string_equal(e.msg, "--retry-delay needs --retry N");
}

static void every_option(void **state) {
  struct ctrun_run_opts o;
  struct ctrun_parse_error e;
  (void)state;
  assert_int_equal(PARSE(&o, &e, "-t", "5s", "-s", "INT", "-k1m", "--preserve-status",
                         "--leftovers=wait", "-l", "/tmp/x.lock", "-w", "inf", "--on-busy", "skip",
                         "-n", "nightly.sync_1", "-d", "-o", "/tmp/log", "--quiet-success",
                         "--report", "-", "-v", "--", "cmd", "-t", "9"),
                   CTRUN_PARSE_OK);
  assert_int_equal(o.timeout_ms, 5000);
  assert_int_equal(o.signal, SIGINT);
  assert_int_equal(o.kill_after_ms, 60000);
  assert_true(o.preserve_status);
  assert_int_equal(o.leftovers, CTRUN_LEFTOVERS_WAIT);
  assert_string_equal(o.lock_path, "/tmp/x.lock");
  assert_int_equal(o.lock_wait_ms, CTRUN_DURATION_INF);
  assert_int_equal(o.on_busy, CTRUN_BUSY_SKIP);
  assert_string_equal(o.name, "nightly.sync_1");
  assert_true(o.detach);
  assert_string_equal(o.log_path, "/tmp/log");
  assert_true(o.quiet_success);
  assert_string_equal(o.report_path, "-");
  assert_int_equal(o.verbosity, 1);
  assert_int_equal(o.argc, 3);
  assert_string_equal(o.argv[1], "-t");
}

static void stops_at_first_operand(void **state) {
  struct ctrun_run_opts o;
  struct ctrun_parse_error e;
  (void)state;
  assert_int_equal(PARSE(&o, &e, "-q", "ls", "-t", "5", "--help"), CTRUN_PARSE_OK);
  assert_int_equal(o.verbosity, -1);
  assert_int_equal(o.timeout_ms, 0);
  assert_int_equal(o.argc, 4);
  /* "--" makes "ps" a command, not a subcommand (main sees it as argv[1]). */
  assert_int_equal(PARSE(&o, &e, "--", "ps"), CTRUN_PARSE_OK);
  assert_string_equal(o.argv[0], "ps");
  /* Bundled short flags. */
  assert_int_equal(PARSE(&o, &e, "-qd", "x"), CTRUN_PARSE_OK);
  assert_true(o.detach);
}

static void errors_name_the_option_and_value(void **state) {
  static const struct { const char *a, *b, *c; const char *want; } cases[] = {
    { "-t", "1x", "cmd", "'1x'" },          { "--timeout", "5 s", "cmd", "--timeout" },
    { "-k", "-1", "cmd", "'-1'" },          { "-s", "FOO", "cmd", "'FOO'" },
    { "--leftovers", "maybe", "cmd", "'maybe'" }, { "--on-busy", "x", "cmd", "--on-busy" },
    { "-n", "bad name", "cmd", "'bad name'" }, { "--bogus", "cmd", NULL, "'--bogus'" },
    { "-x", "cmd", NULL, "'-x'" },          { "-t", "1e999", "cmd", "'1e999'" },
    { "-l", "", "cmd", "empty" },           { "--on-busy=skip", "cmd", NULL, "-l FILE" },
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct ctrun_run_opts o;
    struct ctrun_parse_error e;
    char *argv[] = { "ctrun", (char *)cases[i].a, (char *)cases[i].b, (char *)cases[i].c, NULL };
    int argc = cases[i].c ? 4 : 3;
    assert_int_equal(ctrun_parse_run(argc, argv, &o, &e), CTRUN_PARSE_ERROR);
    if (strstr(e.msg, cases[i].want) == NULL)
      fail_msg("case %u: '%s' does not mention %s", (unsigned)i, e.msg, cases[i].want);
  }
}

/* Fuzzing: a value with a newline or an escape made a multi-line error
 * message; control bytes are shown as '?'. */
static void errors_are_one_line(void **state) {
  struct ctrun_run_opts o;
  struct ctrun_parse_error e;
  (void)state;
  assert_int_equal(PARSE(&o, &e, "-t", "5\nctrun: forged", "cmd"), CTRUN_PARSE_ERROR);
  assert_null(strchr(e.msg, '\n'));
  assert_non_null(strstr(e.msg, "'5?ctrun: forged'"));
  assert_int_equal(PARSE(&o, &e, "-\x0f", "cmd"), CTRUN_PARSE_ERROR);
  assert_string_equal(e.msg, "unknown option '-?'");
  assert_int_equal(PARSE(&o, &e, "--\x1b[2J", "cmd"), CTRUN_PARSE_ERROR);
  assert_null(strchr(e.msg, '\x1b'));
}

static void missing_values_and_commands(void **state) {
  struct ctrun_run_opts o;
  struct ctrun_parse_error e;
  (void)state;
  char *a1[] = { "ctrun", "-t", NULL };
  assert_int_equal(ctrun_parse_run(2, a1, &o, &e), CTRUN_PARSE_ERROR);
  assert_non_null(strstr(e.msg, "needs a value"));
  char *a2[] = { "ctrun", "-t", "5", NULL };
  assert_int_equal(ctrun_parse_run(3, a2, &o, &e), CTRUN_PARSE_ERROR);
  assert_non_null(strstr(e.msg, "no command"));
  char *a3[] = { "ctrun", "--", "", NULL };
  assert_int_equal(ctrun_parse_run(3, a3, &o, &e), CTRUN_PARSE_ERROR);
  char *a4[] = { "ctrun", "--preserve-status=yes", "x", NULL };
  assert_int_equal(ctrun_parse_run(3, a4, &o, &e), CTRUN_PARSE_ERROR);
  assert_non_null(strstr(e.msg, "takes no value"));
}

static void names(void **state) {
  char out[CTRUN_NAME_MAX + 1];
  char long_name[100];
  (void)state;
  assert_true(ctrun_name_valid("a"));
  assert_true(ctrun_name_valid("A-z_0.9"));
  assert_false(ctrun_name_valid(""));
  assert_false(ctrun_name_valid("a b"));
  assert_false(ctrun_name_valid("a/b"));
  memset(long_name, 'x', 65);
  long_name[65] = '\0';
  assert_false(ctrun_name_valid(long_name));
  long_name[64] = '\0';
  assert_true(ctrun_name_valid(long_name));
  ctrun_default_name("/usr/bin/git", out);
  assert_string_equal(out, "git");
  ctrun_default_name("C:\\Python\\python.exe", out);
  assert_string_equal(out, "python.exe");
  ctrun_default_name("my script", out);
  assert_string_equal(out, "my_script");
  ctrun_default_name("dir/", out);
  assert_string_equal(out, "_");
}

static void subcommands(void **state) {
  struct ctrun_parse_error e;
  struct ctrun_stop_opts s;
  struct ctrun_check_opts c;
  struct ctrun_cleanup_opts cl;
  struct ctrun_ps_opts p;
  (void)state;
  char *a1[] = { "stop", "-s", "KILL", "-k", "2s", "abc", "def", NULL };
  assert_int_equal(ctrun_parse_stop(7, a1, &s, &e), CTRUN_PARSE_OK);
  assert_int_equal(s.signal, SIGKILL);
  assert_int_equal(s.kill_after_ms, 2000);
  assert_int_equal(s.nruns, 2);
  char *a2[] = { "stop", NULL };
  assert_int_equal(ctrun_parse_stop(1, a2, &s, &e), CTRUN_PARSE_ERROR);
  char *a3[] = { "check", "--warn", "10", "--crit=20", "--cleanup", NULL };
  assert_int_equal(ctrun_parse_check(5, a3, &c, &e), CTRUN_PARSE_OK);
  assert_int_equal(c.warn, 10);
  assert_int_equal(c.crit, 20);
  assert_true(c.cleanup);
  assert_false(c.quiet);
  char *q1[] = { "check", "-q", "--cleanup", NULL };
  assert_int_equal(ctrun_parse_check(3, q1, &c, &e), CTRUN_PARSE_OK);
  assert_true(c.quiet && c.cleanup);
  char *q2[] = { "check", "--crit", "5", "--quiet", NULL };
  assert_int_equal(ctrun_parse_check(4, q2, &c, &e), CTRUN_PARSE_OK);
  assert_true(c.quiet);
  assert_int_equal(c.crit, 5);
  char *q3[] = { "check", "--quiet=yes", NULL };
  assert_int_equal(ctrun_parse_check(2, q3, &c, &e), CTRUN_PARSE_ERROR);
  assert_non_null(strstr(e.msg, "'--quiet' takes no value"));
  char *q4[] = { "check", "-qx", NULL };
  assert_int_equal(ctrun_parse_check(2, q4, &c, &e), CTRUN_PARSE_ERROR);
  assert_non_null(strstr(e.msg, "'-x'"));
  char *a4[] = { "check", "--warn", "30", "--crit", "20", NULL };
  assert_int_equal(ctrun_parse_check(5, a4, &c, &e), CTRUN_PARSE_ERROR);
  char *a5[] = { "check", "--warn", "-3", NULL };
  assert_int_equal(ctrun_parse_check(3, a5, &c, &e), CTRUN_PARSE_ERROR);
  char *a6[] = { "cleanup", "--dry-run", "--json", NULL };
  assert_int_equal(ctrun_parse_cleanup(3, a6, &cl, &e), CTRUN_PARSE_OK);
  assert_true(cl.dry_run && cl.json);
  char *m1[] = { "check", "--max-age", "1h", NULL };
  assert_int_equal(ctrun_parse_check(3, m1, &c, &e), CTRUN_PARSE_OK);
  assert_int_equal(c.max_age_ms, 3600000);
  char *m2[] = { "check", "--max-age=0", NULL };
  assert_int_equal(ctrun_parse_check(2, m2, &c, &e), CTRUN_PARSE_ERROR);
  assert_non_null(strstr(e.msg, "'0' for --max-age"));
  char *a7[] = { "ps", "extra", NULL };
  assert_int_equal(ctrun_parse_ps(2, a7, &p, &e), CTRUN_PARSE_ERROR);
  assert_non_null(strstr(e.msg, "extra"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(defaults),
    cmocka_unit_test(every_option),
    cmocka_unit_test(governing_options),
    cmocka_unit_test(governing_errors),
    cmocka_unit_test(stops_at_first_operand),
    cmocka_unit_test(errors_name_the_option_and_value),
    cmocka_unit_test(errors_are_one_line),
    cmocka_unit_test(missing_values_and_commands),
    cmocka_unit_test(names),
    cmocka_unit_test(subcommands),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
