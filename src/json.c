#include "ctrun/json.h"


/* Length of the valid UTF-8 sequence at S (1-4), or 0 if invalid. */
static int utf8_len(const unsigned char *s) {
  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xC2 && s[0] <= 0xDF)
    return (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (s[0] >= 0xE0 && s[0] <= 0xEF) {
    if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
      return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] > 0x9F))
      return 0; /* overlong, or a UTF-16 surrogate */
    return 3;
  }
  if (s[0] >= 0xF0 && s[0] <= 0xF4) {
    if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
      return 0;
    if ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] > 0x8F))
      return 0;
    return 4;
  }
  return 0;
}

void ctrun_json_string(FILE *f, const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  putc('"', f);
  while (*s) {
    int n = utf8_len(s);
    if (n == 0) {
      fputs("\\ufffd", f);
      s++;
      continue;
    }
    if (n > 1) {
      fwrite(s, 1, (size_t)n, f);
      s += n;
      continue;
    }
    switch (*s) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    default:
      if (*s < 0x20 || *s == 0x7f)
        fprintf(f, "\\u%04x", *s);
      else
        putc(*s, f);
    }
    s++;
  }
  putc('"', f);
}

void ctrun_json_string_or_null(FILE *f, const char *s) {
  if (s == NULL)
    fputs("null", f);
  else
    ctrun_json_string(f, s);
}

/* UTC, computed rather than asked of the C library, which spells it
 * differently on every platform: days since the epoch to a civil date, by
 * H. Hinnant's algorithm (proleptic Gregorian, eras of 400 years). */
const char *ctrun_rfc3339(int64_t ms, char *buf, size_t size) {
  int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  int64_t rem = secs - days * 86400, z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2);
  snprintf(buf, size, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", (long long)year,
           (long long)month, (long long)day, (long long)(rem / 3600), (long long)(rem / 60 % 60),
           (long long)(rem % 60), (long long)(ms - secs * 1000));
  return buf;
}

void ctrun_json_time(FILE *f, int64_t ms) {
  char buf[40];
  if (ms == 0)
    fputs("null", f);
  else
    fprintf(f, "\"%s\"", ctrun_rfc3339(ms, buf, sizeof buf));
}

void ctrun_json_argv(FILE *f, char *const *argv) {
  putc('[', f);
  for (size_t i = 0; argv != NULL && argv[i] != NULL; i++) {
    if (i)
      putc(',', f);
    ctrun_json_string(f, argv[i]);
  }
  putc(']', f);
}
