/* Shared bits of the fuzz targets. */
#ifndef CTRUN_FUZZ_COMMON_H
#define CTRUN_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A broken property is a crash, so that libFuzzer keeps the input and
 * stops, exactly as for a sanitizer report. */
#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);            \
      abort();                                                                               \
    }                                                                                        \
  } while (0)

/* The fuzz input as a C string in a buffer of its own exact size, so that
 * ASan sees any read past its end. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (s == NULL)
    abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

#endif
