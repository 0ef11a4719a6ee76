/* The registry entry format: round trip, and no crash on anything torn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "ctrun/registry.h"

static void sample(struct ctrun_entry *e, char **argv) {
  memset(e, 0, sizeof *e);
  strcpy(e->id, "0123456789ab");
  strcpy(e->name, "nightly");
  e->pid = 4242;
  e->pid_start = 123456789;
  e->child_pid = 4243;
  e->child_start = 123456790;
  e->pgid = 4243;
  strcpy(e->boot_id, "b0d7c2a4-0000");
  e->started_ms = 1764393600000;
  e->deadline_ms = 1764393660000;
  e->signal = 15;
  e->kill_after_ms = 5000;
  e->lock = "/tmp/a lock\nwith newline";
  e->log = NULL;
  e->argv = argv;
  e->argc = 4;
  e->children_killed = 3;
}

static void round_trip(void **state) {
  char *argv[] = { "sh", "-c", "echo 'a\\b'\n\tdone\x01", "", NULL };
  struct ctrun_entry e, back;
  size_t len;
  (void)state;
  sample(&e, argv);
  char *text = ctrun_entry_format(&e, &len);
  assert_non_null(text);
  assert_null(memchr(text, '\0', len));
  assert_int_equal(ctrun_entry_parse(text, len, &back), 0);
  assert_string_equal(back.id, e.id);
  assert_string_equal(back.name, e.name);
  assert_int_equal(back.pid, 4242);
  assert_int_equal(back.pid_start, 123456789);
  assert_int_equal(back.child_pid, 4243);
  assert_int_equal(back.pgid, 4243);
  assert_string_equal(back.boot_id, e.boot_id);
  assert_int_equal(back.started_ms, e.started_ms);
  assert_int_equal(back.deadline_ms, e.deadline_ms);
  assert_int_equal(back.kill_after_ms, 5000);
  assert_string_equal(back.lock, e.lock);
  assert_null(back.log);
  assert_int_equal(back.children_killed, 3);
  assert_int_equal(back.argc, 4);
  for (int i = 0; i < 4; i++)
    assert_string_equal(back.argv[i], argv[i]);
  assert_null(back.argv[4]);
  ctrun_entry_free(&back);
  free(text);
}

/* Every prefix of a valid entry (a torn write) is rejected, never a crash. */
static void torn_entries_are_rejected(void **state) {
  char *argv[] = { "sleep", "1", NULL };
  struct ctrun_entry e, back;
  size_t len;
  (void)state;
  sample(&e, argv);
  e.argc = 2;
  char *text = ctrun_entry_format(&e, &len);
  for (size_t n = 0; n < len; n++) {
    char *copy = malloc(n + 1);
    memcpy(copy, text, n);
    assert_int_equal(ctrun_entry_parse(copy, n, &back), UV_EINVAL);
    free(copy);
  }
  assert_int_equal(ctrun_entry_parse(text, len, &back), 0);
  ctrun_entry_free(&back);
  free(text);
}

static void corrupt_entries_are_rejected(void **state) {
  static const char *const bad[] = {
    "",
    "garbage",
    "ctrun-run 1\nend\n",                                  /* no id, no pid */
    "ctrun-run 1\nid=0123456789ab\nend\n",                 /* no pid */
    "ctrun-run 1\nid=xyz\npid=1\nend\n",                   /* bad id */
    "ctrun-run 1\nid=0123456789ab\npid=-5\nend\n",         /* bad pid */
    "ctrun-run 1\nid=0123456789ab\npid=1x\nend\n",
    "ctrun-run 1\nid=0123456789ab\npid=99999999999999999999\nend\n",
    "ctrun-run 1\nid=0123456789ab\npid=1\narg=\\q\nend\n", /* bad escape */
    "ctrun-run 1\nid=0123456789ab\npid=1\narg=\\x00\nend\n",
    "ctrun-run 1\nid=0123456789ab\npid=1\nno equals sign\nend\n",
    "ctrun-run 1\nid=0123456789ab\npid=1\nname=" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "\nend\n",
    "ctrun-run 2\nid=0123456789ab\npid=1\nend\n",
  };
  struct ctrun_entry back;
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(ctrun_entry_parse(bad[i], strlen(bad[i]), &back), UV_EINVAL);
  const char ok[] = "ctrun-run 1\nid=0123456789ab\npid=1\nfuture_key=1\nend\n";
  assert_int_equal(ctrun_entry_parse(ok, strlen(ok), &back), 0);
  assert_int_equal(back.argc, 0);
  assert_non_null(back.argv);
  ctrun_entry_free(&back);
}

/* Fuzzing: a name or boot id holding a newline or a backslash was written
 * unescaped, so the entry did not read back; a raw NUL cut a value short. */
static void every_string_round_trips(void **state) {
  char *argv[] = { "x", NULL };
  struct ctrun_entry e, back;
  size_t len;
  (void)state;
  sample(&e, argv);
  e.argc = 1;
  strcpy(e.name, "a\\b\nc");
  strcpy(e.boot_id, "b0d7\nlock=\\x");
  char *text = ctrun_entry_format(&e, &len);
  assert_non_null(text);
  assert_int_equal(ctrun_entry_parse(text, len, &back), 0);
  assert_string_equal(back.name, e.name);
  assert_string_equal(back.boot_id, e.boot_id);
  assert_string_equal(back.lock, e.lock);
  ctrun_entry_free(&back);
  free(text);
  const char nul[] = "ctrun-run 1\nid=0123456789ab\npid=1\narg=a\0b\nend\n";
  assert_int_equal(ctrun_entry_parse(nul, sizeof nul - 1, &back), UV_EINVAL);
}

static void run_ids_are_fresh_hex(void **state) {
  char a[CTRUN_ID_LEN + 1], b[CTRUN_ID_LEN + 1];
  (void)state;
  ctrun_new_run_id(a);
  ctrun_new_run_id(b);
  assert_int_equal(strlen(a), CTRUN_ID_LEN);
  assert_int_equal(strspn(a, "0123456789abcdef"), CTRUN_ID_LEN);
  assert_string_not_equal(a, b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(round_trip),
    cmocka_unit_test(torn_entries_are_rejected),
    cmocka_unit_test(corrupt_entries_are_rejected),
    cmocka_unit_test(every_string_round_trips),
    cmocka_unit_test(run_ids_are_fresh_hex),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
