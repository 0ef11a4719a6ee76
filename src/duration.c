#include "ctrun/duration.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Milliseconds per unit; *s advanced past the unit.  A missing unit, only
 * allowed at the end, means seconds; 0 for anything else. */
static uint64_t unit_ms(const char **s) {
  const char *p = *s;
  if (p[0] == 'm' && p[1] == 's') {
    *s = p + 2;
    return 1;
  }
  switch (p[0]) {
  case 's': *s = p + 1; return 1000;
  case 'm': *s = p + 1; return 60 * 1000;
  case 'h': *s = p + 1; return 3600 * 1000;
  case 'd': *s = p + 1; return 24 * 3600 * 1000;
  case '\0':
    return 1000;
  default:
    return 0;
  }
}

int ctrun_duration_parse(const char *s, uint64_t *ms) {
  /* Every part is bounded well below 2^64 ms before multiplying, so that
   * checking the sum against the ten-year limit is enough: WHOLE * unit is
   * checked against the limit by division, and a fraction keeps at most 9
   * digits, since 10^9 times a day in ms (8.64e7) still fits in 64 bits. */
  const uint64_t digits_cap = 1000000000000ULL; /* 10^12 */
  const uint64_t frac_cap = 1000000000ULL;      /* 10^9 */
  uint64_t total = 0;

  if (s == NULL || *s == '\0')
    return -EINVAL;
  if (strcmp(s, "inf") == 0) {
    *ms = CTRUN_DURATION_INF;
    return 0;
  }
  while (*s != '\0') {
    uint64_t whole = 0, frac = 0, scale = 1, unit;
    int nwhole = 0, nfrac = 0;
    int big = 0, dropped = 0;

    for (; is_digit(*s); s++, nwhole++) {
      if (whole < digits_cap)
        whole = whole * 10 + (uint64_t)(*s - '0');
      else
        big = 1;
    }
    if (*s == '.') {
      for (s++; is_digit(*s); s++, nfrac++) {
        if (scale < frac_cap) {
          frac = frac * 10 + (uint64_t)(*s - '0');
          scale *= 10;
        } else if (*s != '0') {
          dropped = 1; /* a digit too fine to keep, but not nothing */
        }
      }
      if (nfrac == 0)
        return -EINVAL;
    }
    if (nwhole == 0 && nfrac == 0)
      return -EINVAL;
    unit = unit_ms(&s);
    if (unit == 0)
      return -EINVAL;
    if (big || whole > CTRUN_DURATION_MAX_MS / unit)
      return -ERANGE;
    total += whole * unit;
    /* Round a fraction of a millisecond up, so that "0.0001" is not 0 (none),
     * nor is a fraction whose only non-zero digits were dropped. */
    if (frac != 0 || dropped)
      total += (frac * unit + (uint64_t)dropped + scale - 1) / scale;
    if (total > CTRUN_DURATION_MAX_MS)
      return -ERANGE;
  }
  *ms = total;
  return 0;
}

const char *ctrun_duration_format(uint64_t ms, char *buf, size_t size) {
  static const struct { uint64_t ms; const char *unit; } units[] = {
    { 24ULL * 3600 * 1000, "d" }, { 3600 * 1000, "h" }, { 60 * 1000, "m" }, { 1000, "s" }, { 1, "ms" },
  };
  size_t used = 0;
  int parts = 0;

  if (size == 0)
    return buf;
  buf[0] = '\0';
  if (ms == CTRUN_DURATION_INF) {
    snprintf(buf, size, "inf");
    return buf;
  }
  if (ms == 0) {
    snprintf(buf, size, "0s");
    return buf;
  }
  /* Two most significant units are enough for people: "3m12s", "2d4h";
   * milliseconds only below a second. */
  if (ms >= 1000)
    ms -= ms % 1000;
  for (size_t i = 0; i < sizeof units / sizeof units[0] && parts < 2; i++) {
    uint64_t n = ms / units[i].ms;
    if (n == 0) {
      if (parts > 0)
        break;
      continue;
    }
    int w = snprintf(buf + used, size - used, "%llu%s", (unsigned long long)n, units[i].unit);
    if (w < 0 || (size_t)w >= size - used)
      break;
    used += (size_t)w;
    ms -= n * units[i].ms;
    parts++;
  }
  return buf;
}

const char *ctrun_duration_format_exact(uint64_t ms, char *buf, size_t size) {
  static const struct { uint64_t ms; char unit; } units[] = {
    { 24ULL * 3600 * 1000, 'd' }, { 3600 * 1000, 'h' }, { 60 * 1000, 'm' },
  };
  size_t used = 0;
  uint64_t secs, frac;

  if (size == 0)
    return buf;
  buf[0] = '\0';
  if (ms == CTRUN_DURATION_INF || ms == 0 || ms < 1000) {
    snprintf(buf, size, ms == CTRUN_DURATION_INF ? "inf" : ms == 0 ? "0s" : "%llums",
             (unsigned long long)ms);
    return buf;
  }
  /* Every unit that is not zero, then the seconds with their fraction
   * (trailing zeros cut): "1d2h3m4.5s".  A remainder below a second after
   * larger units reads as milliseconds: "1m500ms". */
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    uint64_t n = ms / units[i].ms;
    if (n == 0)
      continue;
    int w = snprintf(buf + used, size - used, "%llu%c", (unsigned long long)n, units[i].unit);
    if (w < 0 || (size_t)w >= size - used)
      return buf;
    used += (size_t)w;
    ms -= n * units[i].ms;
  }
  secs = ms / 1000;
  frac = ms % 1000;
  if (secs == 0 && frac != 0) {
    snprintf(buf + used, size - used, "%llums", (unsigned long long)frac);
  } else if (frac == 0) {
    if (secs != 0)
      snprintf(buf + used, size - used, "%llus", (unsigned long long)secs);
  } else {
    char f[8];
    int len = snprintf(f, sizeof f, "%03llu", (unsigned long long)frac);
    while (len > 1 && f[len - 1] == '0')
      f[--len] = '\0';
    snprintf(buf + used, size - used, "%llu.%ss", (unsigned long long)secs, f);
  }
  return buf;
}
