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

/* The fleet locks a run holds: two at most, each read back whole. */
static void leases_round_trip(void **state) {
  char *argv[] = { "x", NULL };
  struct ctrun_entry e, back;
  size_t len;
  (void)state;
  sample(&e, argv);
  e.argc = 1;
  e.nleases = 2;
  strcpy(e.leases[0].backend, "redis");
  strcpy(e.leases[0].token, "18446744073709551615");
  e.leases[0].expires_ms = 1764393690000;
  strcpy(e.leases[0].where, "redis://cache.local:6380/3/jobs/nightly");
  strcpy(e.leases[1].backend, "postgres");
  strcpy(e.leases[1].token, "7");
  e.leases[1].expires_ms = 0;
  strcpy(e.leases[1].where, "postgres://app@db.internal:5433/ops?key=nightly&sslmode=require");
  char *text = ctrun_entry_format(&e, &len);
  assert_non_null(text);
  assert_non_null(strstr(text, "\nlease=redis 18446744073709551615 1764393690000 "
                               "redis://cache.local:6380/3/jobs/nightly\n"));
  assert_int_equal(ctrun_entry_parse(text, len, &back), 0);
  assert_int_equal(back.nleases, 2);
  for (int i = 0; i < 2; i++) {
    assert_string_equal(back.leases[i].backend, e.leases[i].backend);
    assert_string_equal(back.leases[i].token, e.leases[i].token);
    assert_int_equal(back.leases[i].expires_ms, e.leases[i].expires_ms);
    assert_string_equal(back.leases[i].where, e.leases[i].where);
  }
  /* The rest of the entry is untouched by them. */
  assert_string_equal(back.lock, e.lock);
  assert_int_equal(back.argc, 1);
  ctrun_entry_free(&back);
  free(text);

  /* None: no lease= line at all. */
  e.nleases = 0;
  text = ctrun_entry_format(&e, &len);
  assert_null(strstr(text, "lease="));
  assert_int_equal(ctrun_entry_parse(text, len, &back), 0);
  assert_int_equal(back.nleases, 0);
  ctrun_entry_free(&back);
  free(text);

  /* The longest where (511 characters) still fits. */
  e.nleases = 1;
  memset(e.leases[0].where, 'w', sizeof e.leases[0].where - 1);
  e.leases[0].where[sizeof e.leases[0].where - 1] = '\0';
  text = ctrun_entry_format(&e, &len);
  assert_int_equal(ctrun_entry_parse(text, len, &back), 0);
  assert_int_equal(back.nleases, 1);
  assert_string_equal(back.leases[0].where, e.leases[0].where);
  ctrun_entry_free(&back);
  free(text);
}

/* An entry around LINES (each ending in a newline). */
static char *entry_text(const char *lines) {
  static const char head[] = "ctrun-run 1\nid=0123456789ab\npid=1\n";
  char *text = malloc(sizeof head + strlen(lines) + 4);
  assert_non_null(text);
  strcpy(text, head);
  strcat(text, lines);
  strcat(text, "end\n");
  return text;
}

static void malformed_leases_are_rejected(void **state) {
  static const char *const bad[] = {
    /* A third lock: an entry holds two at most. */
    ("lease=redis 1 1 redis://h:6379/0/a\nlease=redis 2 2 redis://h:6379/0/b\n"
     "lease=redis 3 3 redis://h:6379/0/c\n"),
    /* Missing fields. */
    "lease=\n",
    "lease=redis\n",
    "lease=redis 42\n",
    "lease=redis 42 1764393690000\n",
    /* A token that is not digits. */
    "lease=redis 4x2 1764393690000 redis://h:6379/0/k\n",
    "lease=redis -42 1764393690000 redis://h:6379/0/k\n",
    "lease=redis 0123456789012345678901234 1 redis://h:6379/0/k\n", /* too long */
    /* An expiry that is negative, not a number, or too large. */
    "lease=redis 42 -1 redis://h:6379/0/k\n",
    "lease=redis 42 soon redis://h:6379/0/k\n",
    "lease=redis 42 12x redis://h:6379/0/k\n",
    "lease=redis 42  redis://h:6379/0/k\n",
    "lease=redis 42 99999999999999999999 redis://h:6379/0/k\n",
    /* A backend's name too long for its field. */
    "lease=redisredisredis 42 1 redis://h:6379/0/k\n",
  };
  struct ctrun_entry back;
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *text = entry_text(bad[i]);
    if (ctrun_entry_parse(text, strlen(text), &back) != UV_EINVAL)
      fail_msg("accepted: %s", bad[i]);
    free(text);
  }
  /* Two are fine. */
  char *text = entry_text("lease=redis 1 1 redis://h:6379/0/a\n"
                          "lease=postgres 2 2 postgres://h/db?key=b\n");
  assert_int_equal(ctrun_entry_parse(text, strlen(text), &back), 0);
  assert_int_equal(back.nleases, 2);
  assert_string_equal(back.leases[1].where, "postgres://h/db?key=b");
  ctrun_entry_free(&back);
  free(text);
  /* A where of 512 characters (or more) does not fit: refused, not cut. */
  char line[700];
  for (size_t n = 512; n <= 600; n += 88) {
    int k = snprintf(line, sizeof line, "lease=redis 42 1 ");
    memset(line + k, 'w', n);
    strcpy(line + k + n, "\n");
    text = entry_text(line);
    assert_int_equal(ctrun_entry_parse(text, strlen(text), &back), UV_EINVAL);
    free(text);
  }
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
    cmocka_unit_test(leases_round_trip),
    cmocka_unit_test(malformed_leases_are_rejected),
    cmocka_unit_test(run_ids_are_fresh_hex),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
