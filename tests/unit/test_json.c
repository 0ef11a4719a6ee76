#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctrun/json.h"

static char *render(const char *s) {
  static char buf[1024];
  FILE *f = tmpfile();
  size_t n;
  ctrun_json_string(f, s);
  rewind(f);
  n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void escapes(void **state) {
  (void)state;
  assert_string_equal(render("plain"), "\"plain\"");
  assert_string_equal(render("a\"b\\c"), "\"a\\\"b\\\\c\"");
  assert_string_equal(render("l1\nl2\tt\r"), "\"l1\\nl2\\tt\\r\"");
  assert_string_equal(render("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
  assert_string_equal(render(""), "\"\"");
}

static void utf8_kept_and_invalid_replaced(void **state) {
  (void)state;
  assert_string_equal(render("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                      "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  assert_string_equal(render("\xff"), "\"\\ufffd\"");
  assert_string_equal(render("\xc3"), "\"\\ufffd\"");           /* truncated */
  assert_string_equal(render("\xc0\xaf"), "\"\\ufffd\\ufffd\""); /* overlong */
  assert_string_equal(render("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
  assert_string_equal(render("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
}

static void timestamps(void **state) {
  char buf[40];
  (void)state;
  assert_string_equal(ctrun_rfc3339(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
  assert_string_equal(ctrun_rfc3339(1764393600123, buf, sizeof buf), "2025-11-29T05:20:00.123Z");
  /* Computed, not asked of the C library: leap days, century rules, the
   * last millisecond of a year and times before the epoch. */
  assert_string_equal(ctrun_rfc3339(951782400000, buf, sizeof buf), "2000-02-29T00:00:00.000Z");
  assert_string_equal(ctrun_rfc3339(4107542399999, buf, sizeof buf), "2100-02-28T23:59:59.999Z");
  assert_string_equal(ctrun_rfc3339(4107542400000, buf, sizeof buf), "2100-03-01T00:00:00.000Z");
  assert_string_equal(ctrun_rfc3339(1704067199999, buf, sizeof buf), "2023-12-31T23:59:59.999Z");
  assert_string_equal(ctrun_rfc3339(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(escapes),
    cmocka_unit_test(utf8_kept_and_invalid_replaced),
    cmocka_unit_test(timestamps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
