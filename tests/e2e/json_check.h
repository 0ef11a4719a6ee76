/* A strict JSON validator for the tests: true if S is one valid JSON value
 * (RFC 8259), nothing but white space around it. */
#ifndef CTRUN_TEST_JSON_CHECK_H
#define CTRUN_TEST_JSON_CHECK_H

#include <stdbool.h>
#include <string.h>

static const char *jv_value(const char *s, int depth);

static const char *jv_ws(const char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
    s++;
  return s;
}

static const char *jv_string(const char *s) {
  if (*s++ != '"')
    return NULL;
  while (*s != '"') {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20)
      return NULL;
    if (c == '\\') {
      s++;
      if (*s == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!strchr("0123456789abcdefABCDEF", s[i]) || s[i] == '\0')
            return NULL;
        s += 5;
        continue;
      }
      if (!strchr("\"\\/bfnrt", *s) || *s == '\0')
        return NULL;
      s++;
      continue;
    }
    /* UTF-8: a lead byte and the right number of continuation bytes. */
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    if (n < 0 || (c >= 0x80 && c < 0xC2))
      return NULL;
    s++;
    for (int i = 0; i < n; i++, s++)
      if (((unsigned char)*s & 0xC0) != 0x80)
        return NULL;
  }
  return s + 1;
}

static const char *jv_number(const char *s) {
  if (*s == '-')
    s++;
  if (*s == '0')
    s++;
  else if (*s >= '1' && *s <= '9')
    while (*s >= '0' && *s <= '9')
      s++;
  else
    return NULL;
  if (*s == '.') {
    s++;
    if (!(*s >= '0' && *s <= '9'))
      return NULL;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  return s;
}

static const char *jv_value(const char *s, int depth) {
  if (depth > 64)
    return NULL;
  s = jv_ws(s);
  if (*s == '{' || *s == '[') {
    char close = *s == '{' ? '}' : ']';
    bool obj = *s == '{';
    s = jv_ws(s + 1);
    if (*s == close)
      return s + 1;
    for (;;) {
      if (obj) {
        s = jv_string(jv_ws(s));
        if (s == NULL || *(s = jv_ws(s)) != ':')
          return NULL;
        s++;
      }
      s = jv_value(s, depth + 1);
      if (s == NULL)
        return NULL;
      s = jv_ws(s);
      if (*s == close)
        return s + 1;
      if (*s++ != ',')
        return NULL;
    }
  }
  if (*s == '"')
    return jv_string(s);
  if (strncmp(s, "true", 4) == 0)
    return s + 4;
  if (strncmp(s, "false", 5) == 0)
    return s + 5;
  if (strncmp(s, "null", 4) == 0)
    return s + 4;
  return jv_number(s);
}

static bool json_valid(const char *s) {
  s = jv_value(s, 0);
  return s != NULL && *jv_ws(s) == '\0';
}

#endif
