/* Fuzz the lock-holder text reader, directly and through
 * ctrun_lock_holder, which turns the text into the message a busy run
 * prints (pid, name, age). */
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "ctrun/lock.h"
#include "fuzz_common.h"

/* One scratch lock file for the whole session, removed at exit. */
static char lock_path[64];

static void remove_lock_file(void) { unlink(lock_path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *tmp = getenv("TMPDIR");
  int fd;
  (void)argc;
  (void)argv;
  snprintf(lock_path, sizeof lock_path, "%s/ctrun-fuzz-XXXXXX",
           tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
  fd = mkstemp(lock_path);
  if (fd < 0)
    abort();
  close(fd);
  atexit(remove_lock_file);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size ? size : 1);
  struct ctrun_lock_holder h;
  char buf[256];

  if (text == NULL)
    abort();
  memcpy(text, data, size);
  if (ctrun_lock_holder_parse(text, size, &h) == 0) {
    FUZZ_CHECK(h.pid > 0);
    FUZZ_CHECK(strnlen(h.id, sizeof h.id) < sizeof h.id);
    FUZZ_CHECK(strnlen(h.name, sizeof h.name) < sizeof h.name);
  }
  /* Holder text is only ever whole lines of ctrun's keys: a file that
   * ends in a torn line is someone else's, never rewritten. */
  if (ctrun_lock_text_is_holder(text, size))
    FUZZ_CHECK(size == 0 || text[size - 1] == '\n');
  free(text);

  FILE *f = fopen(lock_path, "wb");
  if (f == NULL)
    abort();
  if (size > 0 && fwrite(data, 1, size, f) != size)
    abort();
  fclose(f);
  ctrun_lock_holder(lock_path, buf, sizeof buf);
  FUZZ_CHECK(memchr(buf, '\0', sizeof buf) != NULL && buf[0] != '\0');
  /* The file is anyone's to write; what it says must not reach the
   * terminal as control bytes. */
  for (const char *c = buf; *c; c++)
    FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
  return 0;
}
