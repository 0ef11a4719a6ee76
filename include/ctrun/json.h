/* A small JSON writer: valid output for any input bytes. */
#ifndef CTRUN_JSON_H
#define CTRUN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Write S as a JSON string: control characters escaped, invalid UTF-8
 * replaced by U+FFFD, so that the output is always valid JSON. */
void ctrun_json_string(FILE *f, const char *s);
/* A string or null. */
void ctrun_json_string_or_null(FILE *f, const char *s);
/* An RFC 3339 UTC timestamp ("2026-11-29T05:16:24.123Z") from epoch ms, or null for 0. */
void ctrun_json_time(FILE *f, int64_t ms);
/* A string array. */
void ctrun_json_argv(FILE *f, char *const *argv);

/* RFC 3339 text of epoch MS into BUF. */
const char *ctrun_rfc3339(int64_t ms, char *buf, size_t size);

#endif
