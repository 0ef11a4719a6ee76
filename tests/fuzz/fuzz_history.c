/* Fuzz the history's record reader: any bytes are refused or read back as
 * a record that formats to exactly the same line. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/history.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ctrun_hrec rec, again;
  char line[2048];
  size_t len;
  if (ctrun_hrec_parse((const char *)data, size, &rec) != 0)
    return 0;
  /* What was read is what would be written. */
  len = ctrun_hrec_format(&rec, line, sizeof line);
  FUZZ_CHECK(len > 0 && line[len - 1] == '\n');
  FUZZ_CHECK(len - 1 == size && memcmp(line, data, size) == 0);
  FUZZ_CHECK(ctrun_hrec_parse(line, len - 1, &again) == 0);
  FUZZ_CHECK(memcmp(&rec, &again, sizeof rec) == 0);
  return 0;
}
