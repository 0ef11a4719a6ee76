#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ctrun/size.h"

static void valid_sizes(void **state) {
  static const struct { const char *in; uint64_t bytes; } cases[] = {
    { "0", 0 },
    { "1", 1 },
    { "512M", 512ULL << 20 },
    { "512m", 512ULL << 20 },
    { "1G", 1ULL << 30 },
    { "1.5G", 3ULL << 29 },
    { "2T", 2ULL << 40 },
    { "100K", 102400 },
    { ".5K", 512 },
    { "0.0001K", 1 }, /* a fraction of a byte rounds up */
    { "1.0000001T", (1ULL << 40) + 109952 }, /* 0.0000001 TiB, rounded up */
    { "4194304T", 1ULL << 62 },
    /* Fuzzing: digits of a fraction past the sixth were dropped, 639 bytes
     * of a GiB. */
    { ".222220595G", 238607548 },
    { "inf", CTRUN_SIZE_INF },
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint64_t b = 12345;
    assert_int_equal(ctrun_size_parse(cases[i].in, &b), 0);
    assert_int_equal(b, cases[i].bytes);
  }
}

static void invalid_sizes(void **state) {
  static const char *const bad[] = {
    "", " ", "12Q", "-1M", "+1M", "1e9", "1 M", " 1M", "1M ", "M", "1.", ".", "1..5M",
    "1MB", "1MiB", "1KK", "0x10", "INF", "infinity", "nan", "1,5M", "1P",
  };
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t b = 7;
    if (ctrun_size_parse(bad[i], &b) != -EINVAL)
      fail_msg("'%s' was not refused as malformed", bad[i]);
    assert_int_equal(b, 7); /* untouched on error */
  }
}

static void overflow_is_a_range_error(void **state) {
  static const char *const big[] = {
    "4194305T", "4194304.5T", "99999999999999999999999999", "18446744073709551616",
    "9999999999999999999T", "4611686018427387905",
  };
  (void)state;
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    uint64_t b = 7;
    if (ctrun_size_parse(big[i], &b) != -ERANGE)
      fail_msg("'%s' was not refused as too large", big[i]);
    assert_int_equal(b, 7);
  }
}

static void format_for_people(void **state) {
  char buf[24];
  (void)state;
  assert_string_equal(ctrun_size_format(17, buf, sizeof buf), "17 B");
  assert_string_equal(ctrun_size_format(1024, buf, sizeof buf), "1.0 KiB");
  assert_string_equal(ctrun_size_format(1288490189, buf, sizeof buf), "1.2 GiB");
  assert_string_equal(ctrun_size_format(UINT64_MAX, buf, sizeof buf), "16.0 EiB");
}

static void format_exact(void **state) {
  char buf[24];
  (void)state;
  assert_string_equal(ctrun_size_format_exact(512ULL << 20, buf, sizeof buf), "512M");
  assert_string_equal(ctrun_size_format_exact(1536 * 1024, buf, sizeof buf), "1536K");
  assert_string_equal(ctrun_size_format_exact(1000, buf, sizeof buf), "1000");
  assert_string_equal(ctrun_size_format_exact(3ULL << 40, buf, sizeof buf), "3T");
  assert_string_equal(ctrun_size_format_exact(CTRUN_SIZE_INF, buf, sizeof buf), "inf");
  for (uint64_t b = 1; b < CTRUN_SIZE_MAX; b = b * 3 + 7) {
    uint64_t back = 0;
    ctrun_size_format_exact(b, buf, sizeof buf);
    assert_int_equal(ctrun_size_parse(buf, &back), 0);
    assert_int_equal(back, b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(valid_sizes),
    cmocka_unit_test(invalid_sizes),
    cmocka_unit_test(overflow_is_a_range_error),
    cmocka_unit_test(format_for_people),
    cmocka_unit_test(format_exact),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
