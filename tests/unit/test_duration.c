#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctrun/duration.h"

static void valid_durations(void **state) {
  static const struct { const char *in; uint64_t ms; } cases[] = {
    { "0", 0 },         { "5", 5000 },         { "0.5", 500 },           { "250ms", 250 },
    { "1.5m", 90000 },  { "1h30m", 5400000 },  { "2d", 172800000 },      { "1m30", 90000 },
    { "10s", 10000 },   { "1ms", 1 },          { "0.0001", 1 },          { "3h2m1s", 10921000 },
    { ".5s", 500 },     { "1.25s", 1250 },     { "3650d", 315360000000ULL },
    { "inf", CTRUN_DURATION_INF },
    /* Fuzzing: a fraction times a day overflowed 64 bits, and digits past
     * the kept precision were dropped even when they were all there was. */
    { "0.999999999999d", 86400000 }, { "1.555935595552d05", 134437836 },
    { "0.0000000000001", 1 },
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint64_t ms = 12345;
    assert_int_equal(ctrun_duration_parse(cases[i].in, &ms), 0);
    assert_int_equal(ms, cases[i].ms);
  }
}

static void invalid_durations(void **state) {
  static const char *const bad[] = {
    "", " ", "5 s", " 5", "5 ", "-1", "+1", "1x", "s", "ms", "1e3", "1e999", "5.", ".",
    "1..5", "1.5.5", "infinity", "INF", "1h-30m", "0x10", "1sm", "5mss", "nan", "1,5",
  };
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t ms = 7;
    assert_int_equal(ctrun_duration_parse(bad[i], &ms), -EINVAL);
    assert_int_equal(ms, 7); /* untouched on error */
  }
  assert_int_equal(ctrun_duration_parse(NULL, NULL), -EINVAL);
}

static void overflow_is_a_range_error(void **state) {
  static const char *const big[] = {
    "3651d", "99999999999999999999999", "315360000.001", "87601h", "3650d1ms",
    "18446744073709551616ms", "1000000000000000000000000000000d",
    /* Fuzzing: whole days times ms per day wrapped around to 9.5 hours. */
    "213503982335d",
  };
  (void)state;
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    uint64_t ms = 7;
    assert_int_equal(ctrun_duration_parse(big[i], &ms), -ERANGE);
  }
}

static void format_for_people(void **state) {
  char buf[32];
  (void)state;
  assert_string_equal(ctrun_duration_format(0, buf, sizeof buf), "0s");
  assert_string_equal(ctrun_duration_format(250, buf, sizeof buf), "250ms");
  assert_string_equal(ctrun_duration_format(192000, buf, sizeof buf), "3m12s");
  assert_string_equal(ctrun_duration_format(192999, buf, sizeof buf), "3m12s");
  assert_string_equal(ctrun_duration_format(3600000, buf, sizeof buf), "1h");
  assert_string_equal(ctrun_duration_format(CTRUN_DURATION_INF, buf, sizeof buf), "inf");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(valid_durations),
    cmocka_unit_test(invalid_durations),
    cmocka_unit_test(overflow_is_a_range_error),
    cmocka_unit_test(format_for_people),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
