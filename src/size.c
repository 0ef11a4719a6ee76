#include "ctrun/size.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char units[] = "KMGT";

/* FRAC / SCALE of a unit of 2^SHIFT bytes, rounded up to a whole byte
 * (also when DROPPED digits were not kept): FRAC * 2^SHIFT / SCALE by long
 * division, one bit at a time, so that nothing overflows (FRAC < SCALE <
 * 2^63, SHIFT <= 40). */
static uint64_t fraction_of(uint64_t frac, uint64_t scale, int shift, int dropped) {
  uint64_t q = 0, r = frac;
  if (shift == 0) /* bytes: what is left of one is one */
    return frac != 0 || dropped ? 1 : 0;
  for (int i = 0; i < shift; i++) {
    r <<= 1;
    q <<= 1;
    if (r >= scale) {
      r -= scale;
      q |= 1;
    }
  }
  return q + (r != 0 || dropped ? 1 : 0);
}

int ctrun_size_parse(const char *s, uint64_t *bytes) {
  uint64_t whole = 0, frac = 0, scale = 1, unit = 1;
  int nwhole = 0, nfrac = 0, dropped = 0, big = 0, shift = 0;
  const char *u;

  if (s == NULL || *s == '\0')
    return -EINVAL;
  if (strcmp(s, "inf") == 0) {
    *bytes = CTRUN_SIZE_INF;
    return 0;
  }
  for (; *s >= '0' && *s <= '9'; s++, nwhole++) {
    if (whole <= (UINT64_MAX - 9) / 10)
      whole = whole * 10 + (uint64_t)(*s - '0');
    else
      big = 1; /* and stays so: no digit brings it back */
  }
  if (*s == '.') {
    /* Eighteen digits are kept (SCALE stays below 2^63); a non-zero digit
     * beyond them rounds up. */
    for (s++; *s >= '0' && *s <= '9'; s++, nfrac++)
      if (scale < 1000000000000000000ULL) {
        frac = frac * 10 + (uint64_t)(*s - '0');
        scale *= 10;
      } else if (*s != '0') {
        dropped = 1;
      }
    if (nfrac == 0)
      return -EINVAL;
  }
  if (nwhole == 0 && nfrac == 0)
    return -EINVAL;
  if (*s != '\0') {
    char c = (char)(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s);
    if ((u = strchr(units, c)) == NULL || s[1] != '\0')
      return -EINVAL;
    shift = 10 * (int)(u - units + 1);
    unit = 1ULL << shift;
  }
  if (big || whole > CTRUN_SIZE_MAX / unit)
    return -ERANGE;
  whole *= unit;
  whole += fraction_of(frac, scale, shift, dropped);
  if (whole > CTRUN_SIZE_MAX)
    return -ERANGE;
  *bytes = whole;
  return 0;
}

const char *ctrun_size_format(uint64_t bytes, char *buf, size_t size) {
  static const char *const names[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
  double v = (double)bytes;
  int i = -1;
  if (bytes < 1024) {
    snprintf(buf, size, "%llu B", (unsigned long long)bytes);
    return buf;
  }
  while (v >= 1024 && i < 5) {
    v /= 1024;
    i++;
  }
  snprintf(buf, size, "%.1f %s", v, names[i]);
  return buf;
}

const char *ctrun_size_format_exact(uint64_t bytes, char *buf, size_t size) {
  int i = -1;
  if (bytes == CTRUN_SIZE_INF) {
    snprintf(buf, size, "inf");
    return buf;
  }
  while (bytes != 0 && bytes % 1024 == 0 && i < 3) {
    bytes /= 1024;
    i++;
  }
  if (i < 0)
    snprintf(buf, size, "%llu", (unsigned long long)bytes);
  else
    snprintf(buf, size, "%llu%c", (unsigned long long)bytes, units[i]);
  return buf;
}
