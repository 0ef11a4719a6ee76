#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctrun/duration.h"
#include "ctrun/options.h"
#include "ctrun/retry.h"

static void delay_doubles_with_jitter_bounds(void **state) {
  (void)state;
  /* Without jitter (U = 0.5 is the middle: factor 1.0). */
  assert_int_equal(ctrun_retry_delay_ms(1000, 1, 0.5), 1000);
  assert_int_equal(ctrun_retry_delay_ms(1000, 2, 0.5), 2000);
  assert_int_equal(ctrun_retry_delay_ms(1000, 3, 0.5), 4000);
  assert_int_equal(ctrun_retry_delay_ms(250, 5, 0.5), 4000);
  /* The jitter spans 80% to 120%. */
  assert_int_equal(ctrun_retry_delay_ms(1000, 1, 0), 800);
  assert_in_range(ctrun_retry_delay_ms(1000, 1, 0.999999), 1199, 1200);
  assert_int_equal(ctrun_retry_delay_ms(1000, 2, 0.25), 1800);
  /* Out-of-range U is clamped; 0 stays 0; no overflow, ever. */
  assert_int_equal(ctrun_retry_delay_ms(1000, 1, -3), 800);
  assert_in_range(ctrun_retry_delay_ms(1000, 1, 7), 1199, 1200);
  assert_int_equal(ctrun_retry_delay_ms(0, 10, 0.9), 0);
  assert_int_equal(ctrun_retry_delay_ms(CTRUN_DURATION_MAX_MS, 1000, 0.9), CTRUN_DURATION_MAX_MS);
  assert_int_equal(ctrun_retry_delay_ms(1000, 1000, 0.1), CTRUN_DURATION_MAX_MS);
  /* The random U lies in [0, 1), and so every delay in its band. */
  for (int i = 0; i < 1000; i++) {
    double u = ctrun_retry_jitter();
    assert_true(u >= 0 && u < 1);
    assert_in_range(ctrun_retry_delay_ms(1000, 2, u), 1600, 2400);
  }
}

static void which_ends_are_retried(void **state) {
  struct ctrun_retry_on dflt = { .fail = true, .timeout = true }, on;
  struct ctrun_attempt a = { 0 };
  (void)state;
#define A(code, why) (a.exit_code = (code), a.reason = CTRUN_REASON_##why, &a)
  assert_false(ctrun_retry_wanted(&dflt, A(0, EXIT)));
  assert_true(ctrun_retry_wanted(&dflt, A(1, EXIT)));
  assert_true(ctrun_retry_wanted(&dflt, A(3, LEFTOVERS)));
  assert_false(ctrun_retry_wanted(&dflt, A(0, LEFTOVERS)));
  assert_true(ctrun_retry_wanted(&dflt, A(137, SIGNAL)));
  assert_true(ctrun_retry_wanted(&dflt, A(124, TIMEOUT)));
  assert_true(ctrun_retry_wanted(&dflt, A(124, IDLE)));
  assert_false(ctrun_retry_wanted(&dflt, A(124, STOPPED)));
  /* timeout alone: a failure is final. */
  memset(&on, 0, sizeof on);
  on.timeout = true;
  assert_false(ctrun_retry_wanted(&on, A(1, EXIT)));
  assert_true(ctrun_retry_wanted(&on, A(124, TIMEOUT)));
  assert_true(ctrun_retry_wanted(&on, A(143, TIMEOUT))); /* --preserve-status */
  /* fail alone: a timeout is final. */
  memset(&on, 0, sizeof on);
  on.fail = true;
  assert_false(ctrun_retry_wanted(&on, A(124, TIMEOUT)));
  /* Exit codes: only those. */
  memset(&on, 0, sizeof on);
  on.codes[0] = 1u << 1;
  on.codes[75 / 32] |= 1u << (75 % 32);
  assert_true(ctrun_retry_wanted(&on, A(1, EXIT)));
  assert_true(ctrun_retry_wanted(&on, A(75, EXIT)));
  assert_false(ctrun_retry_wanted(&on, A(2, EXIT)));
  assert_false(ctrun_retry_wanted(&on, A(0, EXIT)));
  assert_false(ctrun_retry_wanted(&on, A(124, TIMEOUT)));
  assert_false(ctrun_retry_wanted(&on, A(1000, EXIT)));
  assert_false(ctrun_retry_wanted(&on, A(-1, EXIT)));
#undef A
}

/* --ok-exit: what counts as success, and a success is never retried. */
static void what_counts_as_success(void **state) {
  uint32_t ok[8] = { 0 };
  struct ctrun_retry_on dflt = { .fail = true, .timeout = true };
  struct ctrun_attempt a = { 24, CTRUN_REASON_EXIT, 0, true };
  (void)state;
  ok[24 / 32] |= 1u << (24 % 32);
  assert_true(ctrun_exit_ok(ok, CTRUN_REASON_EXIT, 0));
  assert_true(ctrun_exit_ok(ok, CTRUN_REASON_EXIT, 24));
  assert_true(ctrun_exit_ok(ok, CTRUN_REASON_LEFTOVERS, 24));
  assert_false(ctrun_exit_ok(ok, CTRUN_REASON_EXIT, 23));
  assert_false(ctrun_exit_ok(ok, CTRUN_REASON_EXIT, 24 + 256)); /* a Windows status */
  assert_false(ctrun_exit_ok(ok, CTRUN_REASON_TIMEOUT, 0));     /* --preserve-status */
  assert_false(ctrun_exit_ok(ok, CTRUN_REASON_SIGNAL, 0));
  assert_false(ctrun_exit_ok(ok, CTRUN_REASON_MEMORY, 24));
  assert_false(ctrun_retry_wanted(&dflt, &a));
  a.ok = false;
  assert_true(ctrun_retry_wanted(&dflt, &a));
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(delay_doubles_with_jitter_bounds),
    cmocka_unit_test(which_ends_are_retried),
    cmocka_unit_test(what_counts_as_success),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
