#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <uv.h> /* SIGHUP and SIGKILL, which Windows' signal.h lacks */

#include "ctrun/signals.h"

static void names_and_numbers(void **state) {
  (void)state;
  assert_int_equal(ctrun_signal_parse("TERM"), SIGTERM);
  assert_int_equal(ctrun_signal_parse("SIGTERM"), SIGTERM);
  assert_int_equal(ctrun_signal_parse("term"), SIGTERM);
  assert_int_equal(ctrun_signal_parse("sigint"), SIGINT);
  assert_int_equal(ctrun_signal_parse("KILL"), SIGKILL);
  assert_int_equal(ctrun_signal_parse("9"), 9);
  assert_int_equal(ctrun_signal_parse("15"), 15);
#ifdef SIGHUP
  assert_int_equal(ctrun_signal_parse("Hup"), SIGHUP);
#endif
  assert_string_equal(ctrun_signal_name(SIGTERM), "TERM");
  assert_string_equal(ctrun_signal_name(SIGKILL), "KILL");
}

static void bad_signals(void **state) {
  static const char *const bad[] = { "", "0", "-1", "SIG", "TERMX", "SIGSIGTERM", "15x", " 15",
                                     "99999", "1000", "9999999999999999999", "sig term",
                                     "TERMTERMTERMTERMTERM" };
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(ctrun_signal_parse(bad[i]), -EINVAL);
  assert_int_equal(ctrun_signal_parse(NULL), -EINVAL);
  assert_null(ctrun_signal_name(0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(names_and_numbers),
    cmocka_unit_test(bad_signals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
