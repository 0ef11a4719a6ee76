#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "ctrun/lock.h"

static void parses_the_holder(void **state) {
  struct ctrun_lock_holder h;
  const char text[] = "pid=4242\nid=0123456789ab\nname=nightly-sync\nstarted=1764393600000\n";
  (void)state;
  assert_int_equal(ctrun_lock_holder_parse(text, strlen(text), &h), 0);
  assert_int_equal(h.pid, 4242);
  assert_string_equal(h.id, "0123456789ab");
  assert_string_equal(h.name, "nightly-sync");
  assert_int_equal(h.started_ms, 1764393600000);
  /* Padded with newlines over a longer text that went before. */
  const char padded[] = "pid=7\nname=s\n\n\n\n\n";
  assert_int_equal(ctrun_lock_holder_parse(padded, strlen(padded), &h), 0);
  assert_int_equal(h.pid, 7);
  assert_string_equal(h.name, "s");
}

static void rejects_garbage(void **state) {
  static const char *const bad[] = { "", "\n\n\n", "pid=\n", "pid=-1\n", "pid=12x\n", "name=x\n",
                                     "pid=1", /* torn: no newline */
                                     "garbage\n",
                                     "pid=1234567890123456789012345678901234567890123456789012345678901234567890123456789012345\n" };
  struct ctrun_lock_holder h;
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(ctrun_lock_holder_parse(bad[i], strlen(bad[i]), &h), UV_EINVAL);
  /* Overlong fields are dropped, not overflowed. */
  const char long_name[] = "pid=7\nname=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
  assert_int_equal(ctrun_lock_holder_parse(long_name, strlen(long_name), &h), 0);
  assert_string_equal(h.name, "");
}

/* Fuzzing: the lock file is anyone's to write.  Control bytes in the name
 * reached the busy message, a huge pid was clamped to LONG_MAX, and a
 * negative start time overflowed the age computed from it. */
static void distrusts_the_text(void **state) {
  struct ctrun_lock_holder h;
  const char ctl[] = "pid=42\nid=0123456789ab\nname=nigh\x1b[2Jt\nstarted=-9223372036854775808\n";
  (void)state;
  assert_int_equal(ctrun_lock_holder_parse(ctl, strlen(ctl), &h), 0);
  assert_int_equal(h.pid, 42);
  assert_string_equal(h.name, "");
  assert_int_equal(h.started_ms, 0);
  const char odd_id[] = "pid=42\nid=../../x\n";
  assert_int_equal(ctrun_lock_holder_parse(odd_id, strlen(odd_id), &h), 0);
  assert_string_equal(h.id, "");
  static const char *const bad[] = { "pid=99999999999999999999\n", "pid=4294967296\n", "pid= 5\n",
                                     "pid=+5\n" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(ctrun_lock_holder_parse(bad[i], strlen(bad[i]), &h), UV_EINVAL);
}

/* Holder text is written only into a file that holds nothing else: a
 * script locked by the "flock $0" idiom must never be taken for it. */
/* Blank lines are ours too: a released holder's text, blanked in place,
 * and the padding of a shorter text written over a longer one. */
static void tells_holder_text_from_other_data(void **state) {
  static const char *const ours[] = { "", "pid=42\n", "pid=42\nid=0123456789ab\nname=x\nstarted=1\n",
                                      "\n", "\n\n\n\n", "pid=42\nname=x\n\n\n" };
  static const char *const theirs[] = { "#!/bin/sh\npid=1\n", "pid=42", "pid=42\nPATH=/bin\n",
                                        "pidfile=x\n", "\n\n#!/bin/sh\n", "pid=42\n\n\n " };
  (void)state;
  for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
    assert_true(ctrun_lock_text_is_holder(ours[i], strlen(ours[i])));
  for (size_t i = 0; i < sizeof theirs / sizeof theirs[0]; i++)
    assert_false(ctrun_lock_text_is_holder(theirs[i], strlen(theirs[i])));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(parses_the_holder),
    cmocka_unit_test(rejects_garbage),
    cmocka_unit_test(distrusts_the_text),
    cmocka_unit_test(tells_holder_text_from_other_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
