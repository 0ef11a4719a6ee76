/* The console's end, on Windows: when the console closes (or the user
 * logs off, or the system shuts down), Windows ends ctrun a few seconds
 * later whatever it does.  ctrun's handler must have killed the tree by
 * the time it returns, so that the lock, released after the tree, never
 * outlives it.  Wine has no console to close: the handler is called here
 * as Windows would call it, on a real tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "ctrun/proc.h"
#include "../../src/win/internal.h"

static void on_tree(struct ctrun_tree *t, void *data) {
  (void)t;
  (void)data;
}

static void console_close_kills_the_tree_before_returning(void **state) {
  wchar_t wself[MAX_PATH];
  char self[4 * MAX_PATH], id[16];
  char *argv[] = { self, "sleep", NULL };
  struct ctrun_spawn s;
  struct ctrun_tree *t;
  uv_loop_t loop;
  char **env = ctrun_proc_environ(); /* as the core hands it on */
  (void)state;

  assert_non_null(env);
  GetModuleFileNameW(NULL, wself, MAX_PATH);
  WideCharToMultiByte(CP_UTF8, 0, wself, -1, self, sizeof self, NULL, NULL);
  snprintf(id, sizeof id, "%012lx", (unsigned long)GetTickCount() ^ GetCurrentProcessId());
  memset(&s, 0, sizeof s);
  s.argv = argv;
  s.env = env;
  s.stdio[0] = s.stdio[1] = s.stdio[2] = -1;
  s.run_id = id;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ctrun_tree_new(&loop, on_tree, NULL, &t), 0);
  assert_int_equal(ctrun_tree_spawn(t, &s), 0);
  assert_int_equal(ctrun_tree_start(t), 0);
  assert_int_equal(ctrun_tree_count(t), 1);

  /* Ctrl+C and Ctrl+Break are the loop's to pass on, as signals. */
  assert_false(ctrun_win_console_end(CTRL_C_EVENT));
  assert_false(ctrun_win_console_end(CTRL_BREAK_EVENT));
  assert_int_equal(ctrun_tree_count(t), 1);

  /* The console closes: by the time the handler lets go, nothing is left,
   * and libuv's handler (next in line) gets its turn. */
  assert_false(ctrun_win_console_end(CTRL_CLOSE_EVENT));
  assert_true(ctrun_tree_empty(t));
  assert_int_equal(ctrun_tree_count(t), 0);

  ctrun_tree_free(t);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  ctrun_proc_environ_free(env);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(console_close_kills_the_tree_before_returning),
  };
  if (argc > 1 && strcmp(argv[1], "sleep") == 0) {
    Sleep(60000);
    return 0;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
