/* End-to-end: a battery of bad input.  Every malformed option value or
 * combination a user could type gets the documented exit code, one line on
 * stderr that names the option and the value (plus the --help hint for usage
 * errors), nothing on stdout, and never a crash or a started command. */

#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HINT "Try 'ctrun --help' for more information.\n"
#define NAME65 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* One bad command line: ARGS (NULL-terminated, "@child" for the test
 * child) and up to three texts its error line must contain. */
struct bad {
  const char *args[10];
  const char *want[3];
};

/* The results are large; one static buffer serves every run. */
static struct e2e_result res;

static char *join(const char *const *args) {
  static char buf[2048];
  size_t n = 0;
  buf[0] = '\0';
  for (; *args != NULL && n < sizeof buf - 4; args++)
    n += (size_t)snprintf(buf + n, sizeof buf - n, "'%s' ", *args);
  return buf;
}

/* The error line (without "ctrun: " and the newline) if ERR is exactly one
 * "ctrun: ..." line followed by HINT (when HINTED), else NULL. */
static const char *one_error_line(const char *err, int hinted) {
  static char line[4096];
  const char *nl = strchr(err, '\n');
  if (strncmp(err, "ctrun: ", 7) != 0 || nl == NULL || (size_t)(nl - err) >= sizeof line)
    return NULL;
  if (hinted ? strcmp(nl + 1, HINT) != 0 : nl[1] != '\0')
    return NULL;
  snprintf(line, sizeof line, "%.*s", (int)(nl - err - 7), err + 7);
  return line;
}

/* Run one bad command line and check everything a user relies on. */
static void expect_error(struct e2e *t, const char *const *args, int code, int hinted,
                         const char *const *want, size_t nwant) {
  const char *line;
  e2e_run(t, &res, args);
  if (res.code != code)
    fail_msg("%s: exit %d, want %d; stderr: %s", join(args), res.code, code, res.err);
  if (res.out[0] != '\0')
    fail_msg("%s: stdout is not empty: %s", join(args), res.out);
  if ((line = one_error_line(res.err, hinted)) == NULL)
    fail_msg("%s: stderr is not one 'ctrun:' line%s: [%s]", join(args),
             hinted ? " and the hint" : "", res.err);
  for (size_t i = 0; i < nwant && want[i] != NULL; i++)
    if (strstr(line, want[i]) == NULL)
      fail_msg("%s: '%s' does not mention %s", join(args), line, want[i]);
}

static void expect_usage_all(struct e2e *t, const struct bad *cases, size_t n) {
  for (size_t i = 0; i < n; i++)
    expect_error(t, cases[i].args, 125, 1, cases[i].want, 3);
}
#define USAGE_ALL(t, cases) expect_usage_all((t), (cases), sizeof(cases) / sizeof(cases)[0])

static void missing_values(void **state) {
  static const struct bad cases[] = {
    { { "-t" }, { "'-t'", "needs a value" } },
    { { "--timeout" }, { "'--timeout'", "needs a value" } },
    { { "-s" }, { "'-s'", "needs a value" } },
    { { "--signal" }, { "'--signal'", "needs a value" } },
    { { "-k" }, { "'-k'", "needs a value" } },
    { { "--kill-after" }, { "'--kill-after'", "needs a value" } },
    { { "--leftovers" }, { "'--leftovers'", "needs a value" } },
    { { "-l" }, { "'-l'", "needs a value" } },
    { { "--lock" }, { "'--lock'", "needs a value" } },
    { { "-w" }, { "'-w'", "needs a value" } },
    { { "--lock-wait" }, { "'--lock-wait'", "needs a value" } },
    { { "--on-busy" }, { "'--on-busy'", "needs a value" } },
    { { "-n" }, { "'-n'", "needs a value" } },
    { { "--name" }, { "'--name'", "needs a value" } },
    { { "-o" }, { "'-o'", "needs a value" } },
    { { "--log" }, { "'--log'", "needs a value" } },
    { { "--report" }, { "'--report'", "needs a value" } },
    { { "-q", "-v", "-t" }, { "'-t'", "needs a value" } },
    { { "-qt" }, { "'-t'", "needs a value" } },
    /* The next word is the value, whatever it looks like. */
    { { "-t", "--", "@child", "exit", "0" }, { "'--'", "-t" } },
    { { "-t", "-q", "@child", "exit", "0" }, { "'-q'", "-t" } },
    { { "stop", "-s" }, { "'-s'", "needs a value" } },
    { { "stop", "-k" }, { "'-k'", "needs a value" } },
    { { "check", "--warn" }, { "'--warn'", "needs a value" } },
    { { "check", "--crit" }, { "'--crit'", "needs a value" } },
  };
  USAGE_ALL(*state, cases);
}

static void unknown_options(void **state) {
  static const struct bad cases[] = {
    { { "--bogus", "@child", "exit", "0" }, { "unknown option", "'--bogus'" } },
    { { "--time=5", "@child", "exit", "0" }, { "unknown option", "'--time'" } },
    { { "--TIMEOUT=5", "@child", "exit", "0" }, { "unknown option", "'--TIMEOUT'" } },
    { { "-x", "@child", "exit", "0" }, { "unknown option", "'-x'" } },
    { { "-Z", "@child", "exit", "0" }, { "unknown option", "'-Z'" } },
    { { "-qz", "@child", "exit", "0" }, { "unknown option", "'-z'" } },
    { { "---", "@child", "exit", "0" }, { "unknown option", "'---'" } },
    { { "--preserve-status=yes", "@child", "exit", "0" }, { "'--preserve-status'", "no value" } },
    { { "--detach=1", "@child", "exit", "0" }, { "'--detach'", "no value" } },
    { { "--json", "@child", "exit", "0" }, { "unknown option", "'--json'" } },
    { { "ps", "--bogus" }, { "unknown option", "'--bogus'" } },
    { { "ps", "-x" }, { "unknown option", "'-x'" } },
    { { "ps", "--json=1" }, { "'--json'", "no value" } },
    { { "stop", "--bogus", "x" }, { "unknown option", "'--bogus'" } },
    { { "cleanup", "-t", "5" }, { "unknown option", "'-t'" } },
    { { "check", "--warning=5" }, { "unknown option", "'--warning'" } },
  };
  USAGE_ALL(*state, cases);
}

static void bad_signals(void **state) {
  static const struct bad cases[] = {
    { { "-s", "0", "@child", "exit", "0" }, { "invalid signal", "'0'", "-s" } },
    { { "-s", "65", "@child", "exit", "0" }, { "invalid signal", "'65'", "-s" } },
    { { "-s", "1000", "@child", "exit", "0" }, { "invalid signal", "'1000'", "-s" } },
    { { "-s", "-1", "@child", "exit", "0" }, { "invalid signal", "'-1'", "-s" } },
    { { "--signal=", "@child", "exit", "0" }, { "invalid signal", "''", "--signal" } },
    { { "--signal=FOO", "@child", "exit", "0" }, { "invalid signal", "'FOO'", "--signal" } },
    { { "-s", "SIG", "@child", "exit", "0" }, { "invalid signal", "'SIG'", "-s" } },
    { { "-s", "15x", "@child", "exit", "0" }, { "invalid signal", "'15x'", "-s" } },
    { { "-s", "99999999999999999999", "@child", "exit", "0" }, { "invalid signal", "-s" } },
    { { "stop", "-s", "0", "x" }, { "invalid signal", "'0'", "-s" } },
    { { "stop", "--signal=65", "x" }, { "invalid signal", "'65'", "--signal" } },
  };
  USAGE_ALL(*state, cases);
}

static void bad_names(void **state) {
  static const struct bad cases[] = {
    { { "-n", "", "@child", "exit", "0" }, { "invalid name", "''", "-n" } },
    { { "--name", NAME65, "@child", "exit", "0" }, { "invalid name", "'" NAME65 "'", "--name" } },
    { { "-n", "two words", "@child", "exit", "0" }, { "invalid name", "'two words'", "-n" } },
    { { "-n", "a/b", "@child", "exit", "0" }, { "invalid name", "'a/b'", "-n" } },
    { { "--name=../x", "@child", "exit", "0" }, { "invalid name", "'../x'", "--name" } },
    { { "-n", "caf\xc3\xa9", "@child", "exit", "0" }, { "invalid name", "-n" } },
  };
  USAGE_ALL(*state, cases);
}

static void bad_modes(void **state) {
  const char *lock = e2e_path(*state, "lock");
  const struct bad cases[] = {
    { { "--on-busy", "maybe", "-l", lock, "@child", "exit", "0" },
      { "'maybe'", "--on-busy", "fail, skip, replace" } },
    { { "--on-busy=", "-l", lock, "@child", "exit", "0" }, { "''", "--on-busy" } },
    { { "--on-busy=SKIP", "-l", lock, "@child", "exit", "0" }, { "'SKIP'", "--on-busy" } },
    { { "--leftovers", "keep", "@child", "exit", "0" }, { "'keep'", "--leftovers", "kill, wait" } },
    { { "--leftovers=", "@child", "exit", "0" }, { "''", "--leftovers" } },
    { { "--leftovers=KILL", "@child", "exit", "0" }, { "'KILL'", "--leftovers" } },
    /* Lock options without a lock. */
    { { "--on-busy=skip", "@child", "exit", "0" }, { "--on-busy", "-l FILE" } },
    { { "-w", "5", "@child", "exit", "0" }, { "--lock-wait", "-l FILE" } },
    { { "-l", "", "@child", "exit", "0" }, { "empty", "-l" } },
    { { "--log=", "@child", "exit", "0" }, { "empty", "--log" } },
    { { "--report", "", "@child", "exit", "0" }, { "empty", "--report" } },
  };
  USAGE_ALL(*state, cases);
  assert_int_equal(access(lock, F_OK), -1); /* refused before anything was done */
}

static void bad_durations(void **state) {
  static const char *const values[] = { "", "-1", "1x", "5 s", "1e999", "1..5", "5.", "INF" };
  static const char *const opts[] = { "-t", "--timeout", "-k", "--kill-after", "-w" };
  const char *lock = e2e_path(*state, "lock");
  char quoted[64];
  for (size_t o = 0; o < sizeof opts / sizeof opts[0]; o++)
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
      const char *args[] = { "-l", lock, opts[o], values[v], "@child", "exit", "0", NULL };
      const char *want[] = { "invalid duration", quoted, opts[o] };
      snprintf(quoted, sizeof quoted, "'%s'", values[v]);
      expect_error(*state, args, 125, 1, want, 3);
    }
  /* Past ten years: 11 years, and the first day too many. */
  static const struct bad range[] = {
    { { "-t", "4015d", "@child", "exit", "0" }, { "out of range", "'4015d'", "-t" } },
    { { "-t", "3651d", "@child", "exit", "0" }, { "out of range", "'3651d'", "-t" } },
    { { "--kill-after=96360h", "@child", "exit", "0" }, { "out of range", "--kill-after" } },
    { { "-t", "213503982335d", "@child", "exit", "0" }, { "out of range", "'213503982335d'" } },
    { { "-t", "99999999999999999999999", "@child", "exit", "0" }, { "out of range", "-t" } },
    { { "stop", "-k", "1x", "run" }, { "invalid duration", "'1x'", "-k" } },
    { { "stop", "-k", "11000d", "run" }, { "out of range", "'11000d'", "-k" } },
  };
  USAGE_ALL(*state, range);
  assert_int_equal(access(lock, F_OK), -1);
}

/* Files ctrun cannot write are refused before the command starts (the
 * command would print "ran" on stdout), with one line naming the file. */
static void unwritable_paths(void **state) {
  struct e2e *t = *state;
  const char *file = e2e_path(t, "plain-file");
  char under_file[600], missing[600];
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  snprintf(under_file, sizeof under_file, "%s/x", file);
  snprintf(missing, sizeof missing, "%s/no-such-dir/x", t->dir);
  const char *paths[] = { missing, under_file, t->dir };
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    const char *log_args[] = { "-o", paths[i], "@child", "out", "ran", NULL };
    const char *report_args[] = { "--report", paths[i], "@child", "out", "ran", NULL };
    const char *lock_args[] = { "-l", paths[i], "@child", "out", "ran", NULL };
    const char *detached_args[] = { "-d", "-o", paths[i], "@child", "out", "ran", NULL };
    const char *want[] = { paths[i] };
    expect_error(t, log_args, 125, 0, want, 1);
    expect_error(t, report_args, 125, 0, want, 1);
    expect_error(t, lock_args, 125, 0, want, 1);
    expect_error(t, detached_args, 125, 0, want, 1);
  }
}

static void bad_commands(void **state) {
  static const struct bad cases[] = {
    { { "" }, { "command", "empty" } },
    { { "--", "" }, { "command", "empty" } },
    { { "-t", "5", "" }, { "command", "empty" } },
    { { "-t", "5" }, { "no command" } },
    { { "--" }, { "no command" } },
    { { "-q", "--" }, { "no command" } },
  };
  static const char *const none[] = { NULL };
  static const char *const want[] = { "no command" };
  USAGE_ALL(*state, cases);
  expect_error(*state, none, 125, 1, want, 1);
}

static void subcommand_junk(void **state) {
  static const struct bad cases[] = {
    { { "stop" }, { "stop", "no run" } },
    { { "stop", "-s", "KILL" }, { "stop", "no run" } },
    { { "check", "--warn", "x" }, { "invalid number", "'x'", "--warn" } },
    { { "check", "--warn", "-1" }, { "invalid number", "'-1'", "--warn" } },
    { { "check", "--crit=", "" }, { "invalid number", "''", "--crit" } },
    { { "check", "--crit", "99999999999999999999" }, { "invalid number", "--crit" } },
    { { "check", "--warn", "5", "--crit", "3" }, { "--warn 5", "--crit 3" } },
    { { "check", "extra" }, { "check", "unexpected argument", "'extra'" } },
    { { "ps", "extra" }, { "ps", "unexpected argument", "'extra'" } },
    { { "ps", "--json", "--", "x" }, { "ps", "unexpected argument", "'x'" } },
    { { "cleanup", "extra" }, { "cleanup", "unexpected argument", "'extra'" } },
    { { "cleanup", "--dry-run=no" }, { "'--dry-run'", "no value" } },
  };
  USAGE_ALL(*state, cases);
  /* A well-formed stop of a run that does not exist: 1, not a usage error. */
  static const char *const stop_none[] = { "stop", "no-such-run", NULL };
  static const char *const want[] = { "no-such-run" };
  expect_error(*state, stop_none, 1, 0, want, 1);
}

/* A value is quoted in the message, but never as raw control bytes that
 * could forge a second line or drive the terminal. */
static void control_bytes_are_not_echoed(void **state) {
  static const struct bad cases[] = {
    { { "-t", "5\nctrun: forged", "@child", "exit", "0" }, { "'5?ctrun: forged'", "-t" } },
    { { "-n", "x\x1b[2J", "@child", "exit", "0" }, { "'x?[2J'", "-n" } },
    { { "--bogus\r", "@child", "exit", "0" }, { "'--bogus?'" } },
  };
  USAGE_ALL(*state, cases);
}

/* Run ARGV (argv[0] is ctrun itself) through the harness; its exit code. */
static int run_big(struct e2e *t, char **argv) {
  e2e_run(t, &res, (const char *const *)(argv + 1));
  return res.code;
}

/* The command's process execs from a stack of its own (on Linux it shares
 * ctrun's memory until then), where exec's PATH search builds each
 * candidate and where, for a script without "#!", glibc copies the whole
 * argument vector to hand it to /bin/sh.  A PATH of some 4 000 bytes and
 * such a script with 20 000 words run as from a shell; a stack too small
 * would kill the command (a guard page) rather than corrupt ctrun. */
static void exec_has_room_on_its_stack(void **state) {
  struct e2e *t = *state;
  enum { WORDS = 20000 };
  const char *script = e2e_path(t, "count-words");
  char *path = malloc(8192), *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
  char **argv = calloc(WORDS + 8, sizeof *argv);
  FILE *f = fopen(script, "w");
  int n = 0;

  assert_non_null(path);
  assert_non_null(argv);
  assert_non_null(f);
  fputs("echo $#\n", f);
  fclose(f);
  chmod(script, 0755);
  path[0] = '\0';
  while (strlen(path) < 3900)
    strcat(path, "/no-such-directory-of-ctrun-tests:");
  strcat(path, t->dir);
  strcat(path, ":/usr/bin:/bin");
  argv[n++] = getenv("CTRUN");
  argv[n++] = "-t";
  argv[n++] = "60";
  argv[n++] = "count-words";
  for (int i = 0; i < WORDS; i++)
    argv[n++] = "w";
  argv[n] = NULL;
  setenv("PATH", path, 1);
  int code = run_big(t, argv);
  if (old != NULL)
    setenv("PATH", old, 1);
  free(old);
  free(path);
  free(argv);
  if (code != 0)
    fail_msg("exit %d, not 0: %s", code, res.err);
  assert_string_equal(res.out, "20000\n");
}

/* 20 000 words fit easily in Linux's argument space (a quarter of the
 * stack limit, 2 MiB by default), so the command must simply run with all
 * of them: ctrun neither truncates nor chokes on a long argv. */
static void twenty_thousand_words(void **state) {
  struct e2e *t = *state;
  enum { WORDS = 20000 };
  char **argv = calloc(WORDS + 8, sizeof *argv);
  int n = 0;
  assert_non_null(argv);

  /* The command: "out x" 10 000 times prints 10 000 lines. */
  argv[n++] = getenv("CTRUN");
  argv[n++] = "-t";
  argv[n++] = "60";
  argv[n++] = getenv("CTRUN_TESTCHILD");
  for (int i = 0; i < WORDS / 2; i++) {
    argv[n++] = "out";
    argv[n++] = "x";
  }
  argv[n] = NULL;
  assert_int_equal(run_big(t, argv), 0);
  assert_string_equal(res.err, "");
  size_t lines = 0;
  for (const char *s = res.out; (s = strstr(s, "x\n")) != NULL; s += 2)
    lines++;
  assert_int_equal(lines, WORDS / 2);
  assert_int_equal(strlen(res.out), WORDS);

  /* 20 000 of ctrun's own options before the command. */
  n = 0;
  argv[n++] = getenv("CTRUN");
  for (int i = 0; i < WORDS / 2; i++) {
    argv[n++] = "-t";
    argv[n++] = "30";
  }
  argv[n++] = getenv("CTRUN_TESTCHILD");
  argv[n++] = "exit";
  argv[n++] = "7";
  argv[n] = NULL;
  assert_int_equal(run_big(t, argv), 7);
  assert_string_equal(res.out, "");

  /* 20 000 words of junk after a subcommand: one usage error. */
  n = 0;
  argv[n++] = getenv("CTRUN");
  argv[n++] = "ps";
  for (int i = 0; i < WORDS; i++)
    argv[n++] = "extra";
  argv[n] = NULL;
  assert_int_equal(run_big(t, argv), 125);
  assert_string_equal(res.out, "");
  assert_string_equal(res.err, "ctrun: ps: unexpected argument 'extra'\n" HINT);
  free(argv);
}

/* A command line over a megabyte (Linux allows 2 MiB by default) made a
 * run entry too large to read back: ps skipped the run and stop could not
 * find it.  Such a run is listed and stopped like any other. */
static void long_command_line_is_tracked(void **state) {
  struct e2e *t = *state;
  enum { PAIRS = 10000 };
  static char word[121];
  char **argv = calloc(2 * PAIRS + 16, sizeof *argv);
  char id[64];
  int n = 0;
  assert_non_null(argv);
  memset(word, 'w', sizeof word - 1);

  argv[n++] = getenv("CTRUN");
  argv[n++] = "-d";
  argv[n++] = "-t";
  argv[n++] = "60";
  argv[n++] = getenv("CTRUN_TESTCHILD");
  argv[n++] = "sleep";
  argv[n++] = "60";
  for (int i = 0; i < PAIRS; i++) {
    argv[n++] = "out";
    argv[n++] = word;
  }
  argv[n] = NULL;
  assert_int_equal(run_big(t, argv), 0);
  assert_int_equal(sscanf(res.out, "%63s", id), 1);

  const char *ps_args[] = { "ps", "--json", NULL };
  e2e_run(t, &res, ps_args);
  assert_int_equal(res.code, 0);
  assert_non_null(strstr(res.out, id));
  assert_string_equal(res.err, "");

  const char *stop_args[] = { "stop", "-k", "1", id, NULL };
  e2e_run(t, &res, stop_args);
  assert_int_equal(res.code, 0);
  /* The detached supervisor ends once its tree is gone. */
  double end = e2e_now() + 20;
  while (e2e_count_marked(t) > 0 && e2e_now() < end)
    e2e_sleep(0.02);
  assert_int_equal(e2e_count_marked(t), 0);
  free(argv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    E2E_TEST(missing_values),
    E2E_TEST(unknown_options),
    E2E_TEST(bad_signals),
    E2E_TEST(bad_names),
    E2E_TEST(bad_modes),
    E2E_TEST(bad_durations),
    E2E_TEST(unwritable_paths),
    E2E_TEST(bad_commands),
    E2E_TEST(subcommand_junk),
    E2E_TEST(control_bytes_are_not_echoed),
    E2E_TEST(twenty_thousand_words),
    E2E_TEST(exec_has_room_on_its_stack),
    E2E_TEST(long_command_line_is_tracked),
  };
  return e2e_main("e2e-input", tests, sizeof tests / sizeof tests[0]);
}
