/* Fuzz ctrun_size_parse against an independent reference, and the
 * formatters against the parser. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/size.h"
#include "fuzz_common.h"

typedef unsigned __int128 u128;

#define REF_CAP ((u128)1 << 100)

/* The documented grammar, exactly in 128 bits: the value lies in [*lo,
 * *hi] (a fraction of a byte rounds up).  False when S is no size. */
static bool reference(const char *s, u128 *lo, u128 *hi) {
  u128 whole = 0, frac = 0, scale = 1, unit = 1;
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
  if (*s != '\0') {
    const char *units = "KkMmGgTt";
    const char *u = strchr(units, *s);
    if (u == NULL || s[1] != '\0')
      return false;
    for (long i = 0; i <= (u - units) / 2; i++)
      unit *= 1024;
  }
  u128 part = whole >= REF_CAP ? REF_CAP : whole * unit;
  *lo = part + frac * unit / scale;
  *hi = *lo + (frac * unit % scale != 0 || sticky ? 1 : 0);
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fuzz_cstring(data, size);
  uint64_t b = 777, back = 777;
  int r = ctrun_size_parse(s, &b);
  u128 lo, hi;

  FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
  FUZZ_CHECK(r == 0 || b == 777); /* untouched on error */
  if (strcmp(s, "inf") == 0) {
    FUZZ_CHECK(r == 0 && b == CTRUN_SIZE_INF);
  } else if (!reference(s, &lo, &hi)) {
    FUZZ_CHECK(r == -EINVAL);
  } else {
    if (hi <= CTRUN_SIZE_MAX)
      FUZZ_CHECK(r == 0);
    if (lo > CTRUN_SIZE_MAX)
      FUZZ_CHECK(r == -ERANGE);
    if (r == 0) {
      FUZZ_CHECK(b <= CTRUN_SIZE_MAX);
      FUZZ_CHECK(lo <= b && b <= hi);
      FUZZ_CHECK(hi == 0 || b > 0); /* any amount is not none */
    }
  }
  if (r == 0) {
    char buf[32];
    ctrun_size_format(b, buf, sizeof buf);
    FUZZ_CHECK(memchr(buf, '\0', sizeof buf) != NULL);
    ctrun_size_format_exact(b, buf, sizeof buf);
    FUZZ_CHECK(ctrun_size_parse(buf, &back) == 0 && back == b);
  }
  free(s);
  return 0;
}
