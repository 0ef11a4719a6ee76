/* Fuzz ctrun_signal_parse: only real signal numbers come out, and names
 * parse back to their numbers. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/signals.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fuzz_cstring(data, size);
  int sig = ctrun_signal_parse(s);

  FUZZ_CHECK(sig == -EINVAL || (sig >= 1 && sig <= 64));
  if (sig > 0) {
    const char *name = ctrun_signal_name(sig);
    if (isdigit((unsigned char)s[0])) {
      FUZZ_CHECK(strtol(s, NULL, 10) == sig);
    } else {
      /* A name was given, so the number has one, and it reads back. */
      char prefixed[32];
      FUZZ_CHECK(name != NULL);
      FUZZ_CHECK(ctrun_signal_parse(name) == sig);
      snprintf(prefixed, sizeof prefixed, "SIG%s", name);
      FUZZ_CHECK(ctrun_signal_parse(prefixed) == sig);
    }
  }
  free(s);
  return 0;
}
