#include "ctrun/size.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char units[] = "KMGT";

int ctrun_size_parse(const char *s, uint64_t *bytes) {
  uint64_t whole = 0, frac = 0, scale = 1, unit = 1;
  int nwhole = 0, nfrac = 0, dropped = 0, big = 0;
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
    /* Six digits are kept (so that FRAC times a unit of at most 2^40
     * fits in 64 bits); a non-zero digit beyond them rounds up. */
    for (s++; *s >= '0' && *s <= '9'; s++, nfrac++)
      if (scale < 1000000) {
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
    for (long i = 0; i <= u - units; i++)
      unit *= 1024;
  }
  if (big || whole > CTRUN_SIZE_MAX / unit)
    return -ERANGE;
  whole *= unit;
  /* The fraction of a unit, rounded up to a whole byte. */
  whole += (frac * unit + (uint64_t)dropped + scale - 1) / scale;
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
