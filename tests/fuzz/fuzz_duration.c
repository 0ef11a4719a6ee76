/* Fuzz ctrun_duration_parse against an independent reference, and
 * ctrun_duration_format against the parser. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/duration.h"
#include "fuzz_common.h"

typedef unsigned __int128 u128;

/* A cap far above ten years, so that saturated sums stay comparable. */
#define REF_CAP ((u128)1 << 100)

static u128 sat_add(u128 a, u128 b) { return a + b > REF_CAP ? REF_CAP : a + b; }

/* The grammar of the documentation, evaluated exactly in 128 bits.  A part
 * is NUMBER[UNIT]; its fraction of a millisecond rounds up, so the exact
 * value lies in [*lo, *hi].  Returns false when S is not a duration. */
static bool reference(const char *s, u128 *lo, u128 *hi) {
  *lo = *hi = 0;
  if (*s == '\0')
    return false;
  while (*s != '\0') {
    u128 whole = 0, frac = 0, scale = 1, unit;
    int nwhole = 0, nfrac = 0;
    bool sticky = false;
    for (; *s >= '0' && *s <= '9'; s++, nwhole++)
      whole = whole >= REF_CAP ? REF_CAP : whole * 10 + (u128)(*s - '0');
    if (*s == '.') {
      for (s++; *s >= '0' && *s <= '9'; s++, nfrac++) {
        if (nfrac < 18) {
          frac = frac * 10 + (u128)(*s - '0');
          scale *= 10;
        } else if (*s != '0') {
          sticky = true;
        }
      }
      if (nfrac == 0)
        return false;
    }
    if (nwhole == 0 && nfrac == 0)
      return false;
    if (s[0] == 'm' && s[1] == 's') {
      unit = 1;
      s += 2;
    } else if (*s == 's' || *s == 'm' || *s == 'h' || *s == 'd') {
      unit = *s == 's' ? 1000 : *s == 'm' ? 60000 : *s == 'h' ? 3600000 : 86400000;
      s++;
    } else if (*s == '\0') {
      unit = 1000; /* a bare number, only as the last part */
    } else {
      return false;
    }
    u128 part = whole >= REF_CAP ? REF_CAP : whole * unit;
    u128 fl = frac * unit / scale;
    bool inexact = frac * unit % scale != 0 || sticky;
    *lo = sat_add(*lo, sat_add(part, fl));
    *hi = sat_add(*hi, sat_add(part, fl + (inexact ? 1 : 0)));
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fuzz_cstring(data, size);
  uint64_t ms = 777, back = 777;
  int r = ctrun_duration_parse(s, &ms);
  u128 lo, hi;

  FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
  FUZZ_CHECK(r == 0 || ms == 777); /* untouched on error */
  if (strcmp(s, "inf") == 0) {
    FUZZ_CHECK(r == 0 && ms == CTRUN_DURATION_INF);
  } else if (!reference(s, &lo, &hi)) {
    FUZZ_CHECK(r != 0);
  } else {
    if (hi <= CTRUN_DURATION_MAX_MS)
      FUZZ_CHECK(r == 0);
    if (lo > CTRUN_DURATION_MAX_MS)
      FUZZ_CHECK(r == -ERANGE);
    if (r == 0) {
      FUZZ_CHECK(ms <= CTRUN_DURATION_MAX_MS);
      FUZZ_CHECK(lo <= ms && ms <= hi);
      /* Any positive amount, however small, must not become 0 (none). */
      FUZZ_CHECK(hi == 0 || ms > 0);
    }
  }
  if (r == 0) {
    /* What ctrun prints for people parses back, never above the value. */
    char buf[64];
    ctrun_duration_format(ms, buf, sizeof buf);
    FUZZ_CHECK(memchr(buf, '\0', sizeof buf) != NULL);
    FUZZ_CHECK(ctrun_duration_parse(buf, &back) == 0);
    FUZZ_CHECK(back <= ms);
    /* What a message prints for a duration given: exactly the value. */
    ctrun_duration_format_exact(ms, buf, sizeof buf);
    FUZZ_CHECK(memchr(buf, '\0', sizeof buf) != NULL);
    FUZZ_CHECK(ctrun_duration_parse(buf, &back) == 0 && back == ms);
  }
  free(s);
  return 0;
}
