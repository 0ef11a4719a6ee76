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

/* What a message prints for a duration the user gave: exact to the
 * millisecond, and parsed back to the very same value. */
static void format_exact(void **state) {
  static const struct { uint64_t ms; const char *text; } cases[] = {
    { 0, "0s" },           { 1, "1ms" },             { 250, "250ms" },        { 999, "999ms" },
    { 1000, "1s" },        { 1670, "1.67s" },        { 1001, "1.001s" },      { 1500, "1.5s" },
    { 59999, "59.999s" },  { 60000, "1m" },          { 60500, "1m500ms" },    { 61500, "1m1.5s" },
    { 90000, "1m30s" },    { 3600000, "1h" },        { 3600001, "1h1ms" },    { 5400000, "1h30m" },
    { 86400000, "1d" },    { 93784005, "1d2h3m4.005s" },
    { CTRUN_DURATION_MAX_MS, "3650d" },              { CTRUN_DURATION_INF, "inf" },
  };
  char buf[32];
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint64_t back = 7;
    assert_string_equal(ctrun_duration_format_exact(cases[i].ms, buf, sizeof buf), cases[i].text);
    assert_int_equal(ctrun_duration_parse(buf, &back), 0);
    assert_int_equal(back, cases[i].ms);
  }
  /* Round trip over a spread of values, the largest included. */
  for (uint64_t ms = 1; ms < CTRUN_DURATION_MAX_MS; ms = ms * 3 + 7) {
    uint64_t back = 0;
    ctrun_duration_format_exact(ms, buf, sizeof buf);
    assert_int_equal(ctrun_duration_parse(buf, &back), 0);
    assert_int_equal(back, ms);
  }
  /* A buffer too small holds a cut, terminated string. */
  assert_string_equal(ctrun_duration_format_exact(93784005, buf, 5), "1d2h");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(valid_durations),
    cmocka_unit_test(invalid_durations),
    cmocka_unit_test(overflow_is_a_range_error),
    cmocka_unit_test(format_for_people),
    cmocka_unit_test(format_exact),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
