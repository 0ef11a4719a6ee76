/* The Windows backend's rules for starting a command: the environment
 * block the command gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <cmocka.h>
#include <uv.h>

#include "../../src/win/internal.h"

static const char *const env_in[] = {
  "b=1", "A=2", "ctrun_run_id=forged", "Path=p1", "CTRUN_RUN_ID=real", "=C:=C:\\x", "a=3", "\xff=bad",
  NULL,
};
static const wchar_t env_out[] = L"=C:=C:\\x\0a=3\0b=1\0CTRUN_RUN_ID=real\0Path=p1\0";

/* One entry a name, Windows' way (without case), the last given winning;
 * sorted as Windows requires; what has no UTF-16 form left out. */
static void environment_block(void **state) {
  wchar_t *block = ctrun_win_env_block((char *const *)env_in);
  (void)state;
  assert_non_null(block);
  assert_memory_equal(block, env_out, sizeof env_out);
  free(block);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(environment_block),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
