/* Fuzz the command-line parsers: the input, split on NUL bytes, is the
 * argv handed to the run option parser and to every subcommand parser. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/duration.h"
#include "ctrun/options.h"
#include "fuzz_common.h"

/* An error message is one non-empty line without control bytes: it goes to
 * a terminal or a log as is, so a value must not forge lines there. */
static void check_error(const struct ctrun_parse_error *e) {
  size_t n = strnlen(e->msg, sizeof e->msg);
  FUZZ_CHECK(n > 0 && n < sizeof e->msg);
  for (size_t i = 0; i < n; i++)
    FUZZ_CHECK((unsigned char)e->msg[i] >= 0x20 && e->msg[i] != 0x7f);
}

static bool in_argv(char **argv, int argc, char **p) { return p >= argv && p <= argv + argc; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Each word is its own allocation, so that ASan catches a read past one. */
  int argc = 1;
  for (size_t i = 0; i < size; i++)
    argc += data[i] == '\0';
  argc += 1;
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  if (argv == NULL)
    abort();
  argv[0] = fuzz_cstring((const uint8_t *)"ctrun", 5);
  for (size_t start = 0, i = 0, k = 1; i <= size; i++) {
    if (i == size || data[i] == '\0') {
      argv[k++] = fuzz_cstring(data + start, i - start);
      start = i + 1;
    }
  }

  struct ctrun_parse_error e;
  enum ctrun_parse_result r;

  struct ctrun_run_opts ro;
  r = ctrun_parse_run(argc, argv, &ro, &e);
  FUZZ_CHECK(r >= CTRUN_PARSE_ERROR && r <= CTRUN_PARSE_VERSION);
  if (r == CTRUN_PARSE_ERROR)
    check_error(&e);
  if (r == CTRUN_PARSE_OK) {
    FUZZ_CHECK(ro.argc >= 1 && in_argv(argv, argc, ro.argv) && ro.argv + ro.argc == argv + argc);
    FUZZ_CHECK(ro.argv[0][0] != '\0' && ro.argv[ro.argc] == NULL);
    FUZZ_CHECK(ctrun_name_valid(ro.name));
    FUZZ_CHECK(ro.timeout_ms <= CTRUN_DURATION_MAX_MS);
    FUZZ_CHECK(ro.signal >= 1 && ro.signal <= 64);
    FUZZ_CHECK(ro.kill_after_ms <= CTRUN_DURATION_MAX_MS || ro.kill_after_ms == CTRUN_DURATION_INF);
    /* Waiting and --on-busy need a lock: a file or a fleet lock (a URL,
     * which leaves lock_path NULL). */
    FUZZ_CHECK(ro.nlocks >= 0 && ro.nlocks <= CTRUN_LOCKS_MAX);
    FUZZ_CHECK(ro.lock_path == NULL || ro.nlocks > 0);
    FUZZ_CHECK(ro.nlocks > 0 || (ro.lock_wait_ms == 0 && ro.on_busy == CTRUN_BUSY_FAIL));
    FUZZ_CHECK(ro.lock_path == NULL || ro.lock_path[0] != '\0');
    FUZZ_CHECK(ro.log_path == NULL || ro.log_path[0] != '\0');
    FUZZ_CHECK(ro.report_path == NULL || ro.report_path[0] != '\0');
    /* Limits are real durations (0: none), never "at once". */
    FUZZ_CHECK(ro.child_timeout_ms <= CTRUN_DURATION_MAX_MS);
    FUZZ_CHECK(ro.idle_timeout_ms <= CTRUN_DURATION_MAX_MS);
    FUZZ_CHECK(ro.retry >= 0 && ro.retry <= CTRUN_RETRY_MAX);
    FUZZ_CHECK(ro.retry_delay_ms <= CTRUN_DURATION_MAX_MS);
    FUZZ_CHECK(ro.on_busy >= CTRUN_BUSY_FAIL && ro.on_busy <= CTRUN_BUSY_QUEUE);
  }

  /* The subcommands see argv[1..] with their own name first. */
  int sargc = argc - 1;
  char **sargv = argv + 1;

  struct ctrun_ps_opts po;
  r = ctrun_parse_ps(sargc, sargv, &po, &e);
  FUZZ_CHECK(r == CTRUN_PARSE_OK || r == CTRUN_PARSE_HELP || r == CTRUN_PARSE_ERROR);
  if (r == CTRUN_PARSE_ERROR)
    check_error(&e);

  struct ctrun_stop_opts so;
  r = ctrun_parse_stop(sargc, sargv, &so, &e);
  FUZZ_CHECK(r == CTRUN_PARSE_OK || r == CTRUN_PARSE_HELP || r == CTRUN_PARSE_ERROR);
  if (r == CTRUN_PARSE_ERROR)
    check_error(&e);
  if (r == CTRUN_PARSE_OK) {
    FUZZ_CHECK(so.nruns >= 1 && so.runs + so.nruns == sargv + sargc && so.runs[so.nruns] == NULL);
    FUZZ_CHECK(so.signal >= 0 && so.signal <= 64);
  }

  struct ctrun_cleanup_opts co;
  r = ctrun_parse_cleanup(sargc, sargv, &co, &e);
  FUZZ_CHECK(r == CTRUN_PARSE_OK || r == CTRUN_PARSE_HELP || r == CTRUN_PARSE_ERROR);
  if (r == CTRUN_PARSE_ERROR)
    check_error(&e);

  struct ctrun_check_opts ko;
  r = ctrun_parse_check(sargc, sargv, &ko, &e);
  FUZZ_CHECK(r == CTRUN_PARSE_OK || r == CTRUN_PARSE_HELP || r == CTRUN_PARSE_ERROR);
  if (r == CTRUN_PARSE_ERROR)
    check_error(&e);
  if (r == CTRUN_PARSE_OK)
    FUZZ_CHECK(ko.warn >= -1 && ko.crit >= -1 && (ko.warn < 0 || ko.crit < 0 || ko.warn <= ko.crit));
  if (r == CTRUN_PARSE_OK)
    FUZZ_CHECK(ko.max_age_ms <= CTRUN_DURATION_MAX_MS);

  for (int i = 0; i < argc; i++)
    free(argv[i]);
  free(argv);
  return 0;
}
