/* Fuzz the state-entry reader: anything parses or is rejected without a
 * leak, and what parses survives format -> parse with the same fields. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrun/registry.h"
#include "fuzz_common.h"

static bool str_eq(const char *a, const char *b) {
  return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_valid(const struct ctrun_entry *e) {
  FUZZ_CHECK(strlen(e->id) == CTRUN_ID_LEN);
  FUZZ_CHECK(strnlen(e->name, sizeof e->name) < sizeof e->name);
  FUZZ_CHECK(strnlen(e->boot_id, sizeof e->boot_id) < sizeof e->boot_id);
  FUZZ_CHECK(e->pid > 0);
  FUZZ_CHECK(e->argc >= 0 && e->argv != NULL && e->argv[e->argc] == NULL);
  for (int i = 0; i < e->argc; i++)
    FUZZ_CHECK(e->argv[i] != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The reader gets exactly the bytes, no terminator, as from a file. */
  char *text = malloc(size ? size : 1);
  struct ctrun_entry e, back;
  size_t len;

  if (text == NULL)
    abort();
  memcpy(text, data, size);
  if (ctrun_entry_parse(text, size, &e) != 0) {
    /* A rejected entry leaves nothing to free. */
    FUZZ_CHECK(e.argv == NULL && e.lock == NULL && e.log == NULL && e.argc == 0);
    free(text);
    return 0;
  }
  check_valid(&e);
  char *again = ctrun_entry_format(&e, &len);
  FUZZ_CHECK(again != NULL);
  FUZZ_CHECK(memchr(again, '\0', len) == NULL);
  if (ctrun_entry_parse(again, len, &back) != 0) {
    fprintf(stderr, "the formatted entry does not parse back:\n%.*s\n", (int)len, again);
    abort();
  }
  check_valid(&back);
  FUZZ_CHECK(strcmp(e.id, back.id) == 0);
  FUZZ_CHECK(strcmp(e.name, back.name) == 0);
  FUZZ_CHECK(e.pid == back.pid && e.pid_start == back.pid_start);
  FUZZ_CHECK(e.child_pid == back.child_pid && e.child_start == back.child_start);
  FUZZ_CHECK(e.pgid == back.pgid);
  FUZZ_CHECK(strcmp(e.boot_id, back.boot_id) == 0);
  FUZZ_CHECK(e.started_ms == back.started_ms && e.deadline_ms == back.deadline_ms);
  FUZZ_CHECK(e.signal == back.signal && e.kill_after_ms == back.kill_after_ms);
  FUZZ_CHECK(str_eq(e.lock, back.lock) && str_eq(e.log, back.log));
  FUZZ_CHECK(e.argc == back.argc);
  for (int i = 0; i < e.argc; i++)
    FUZZ_CHECK(strcmp(e.argv[i], back.argv[i]) == 0);
  ctrun_entry_free(&back);
  ctrun_entry_free(&e);
  free(again);
  free(text);
  return 0;
}
