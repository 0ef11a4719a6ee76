/* --retry: the policy between attempts.  The attempts themselves are run
 * by run.c, in one run: same id, lock held, one container. */
#include "ctrun/retry.h"

#include <uv.h>

#include "ctrun/duration.h"

bool ctrun_exit_ok(const uint32_t ok_exit[8], enum ctrun_reason reason, int exit_code) {
  unsigned c = (unsigned)exit_code;
  if (reason != CTRUN_REASON_EXIT && reason != CTRUN_REASON_LEFTOVERS)
    return false;
  return c == 0 || (c <= 255 && (ok_exit[c / 32] >> (c % 32) & 1) != 0);
}

bool ctrun_retry_wanted(const struct ctrun_retry_on *on, const struct ctrun_attempt *a) {
  int c = a->exit_code;
  if (a->ok)
    return false;
  switch (a->reason) {
  case CTRUN_REASON_STOPPED:
  case CTRUN_REASON_SKIPPED:
    return false;
  case CTRUN_REASON_TIMEOUT:
  case CTRUN_REASON_IDLE:
    if (on->timeout)
      return true;
    break;
  default:
    if (on->fail && c != 0)
      return true;
    break;
  }
  return c >= 0 && c <= 255 && (on->codes[c / 32] >> (c % 32) & 1) != 0;
}

uint64_t ctrun_retry_delay_ms(uint64_t base_ms, int n, double u) {
  double ms = (double)base_ms;
  for (int i = 1; i < n && ms < (double)CTRUN_DURATION_MAX_MS; i++)
    ms *= 2;
  if (u < 0)
    u = 0;
  if (u >= 1)
    u = 0.999999;
  ms *= 0.8 + 0.4 * u;
  if (ms >= (double)CTRUN_DURATION_MAX_MS)
    return CTRUN_DURATION_MAX_MS;
  return (uint64_t)(ms + 0.5);
}

double ctrun_retry_jitter(void) {
  uint32_t x;
  /* No entropy: no jitter is still a valid delay. */
  if (uv_random(NULL, NULL, &x, sizeof x, 0, NULL) != 0)
    return 0.5;
  return (double)x / 4294967296.0;
}
