#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#ifndef _WIN32
#include <sys/wait.h>
#include <unistd.h>
#endif
#include <uv.h> /* SIGHUP and SIGKILL, which Windows' signal.h lacks */

#include "ctrun/proc.h"
#include "ctrun/signals.h"

static void names_and_numbers(void **state) {
  (void)state;
  assert_int_equal(ctrun_signal_parse("TERM"), SIGTERM);
  assert_int_equal(ctrun_signal_parse("SIGTERM"), SIGTERM);
  assert_int_equal(ctrun_signal_parse("term"), SIGTERM);
  assert_int_equal(ctrun_signal_parse("sigint"), SIGINT);
  assert_int_equal(ctrun_signal_parse("KILL"), SIGKILL);
  assert_int_equal(ctrun_signal_parse("9"), 9);
  assert_int_equal(ctrun_signal_parse("15"), 15);
#ifdef SIGHUP
  assert_int_equal(ctrun_signal_parse("Hup"), SIGHUP);
#endif
  assert_string_equal(ctrun_signal_name(SIGTERM), "TERM");
  assert_string_equal(ctrun_signal_name(SIGKILL), "KILL");
}

static void bad_signals(void **state) {
  static const char *const bad[] = { "", "0", "-1", "SIG", "TERMX", "SIGSIGTERM", "15x", " 15",
                                     "99999", "1000", "9999999999999999999", "sig term",
                                     "TERMTERMTERMTERMTERM" };
  (void)state;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(ctrun_signal_parse(bad[i]), -EINVAL);
  assert_int_equal(ctrun_signal_parse(NULL), -EINVAL);
  assert_null(ctrun_signal_name(0));
}

#ifndef _WIN32
/* The command's process, until it execs, is a copy of ctrun (or shares its
 * memory), handlers included.  A signal that reaches it there must act as
 * it would on the command, never be taken for ctrun's: each kind of
 * ctrun's handlers, in a forked copy, lets the signal end the copy. */
static void handlers_act_only_in_ctrun(void **state) {
  static const int sigs[] = { SIGTERM, SIGHUP, SIGUSR2, SIGPIPE, SIGXFSZ };
  char err[256];
  (void)state;
  assert_int_equal(ctrun_proc_protect(err, sizeof err), 0);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    int st;
    pid_t pid = fork();
    if (pid == 0) {
      kill(getpid(), sigs[i]);
      _exit(0); /* the handler returned: the signal was taken for ctrun's */
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != sigs[i])
      fail_msg("signal %d in a copy of ctrun: status %#x", sigs[i], st);
  }
  /* In ctrun itself, an ending signal is held, not fatal. */
  kill(getpid(), SIGUSR2);
  assert_int_equal(ctrun_proc_held_signal(), SIGUSR2);
}

/* What a run's signal callback saw, and the watcher it closes. */
struct seen {
  struct ctrun_signals *watcher;
  int calls;
};

static void end_the_run(int sig, void *data) {
  struct seen *s = data;
  (void)sig;
  s->calls++;
  ctrun_signals_close(s->watcher);
}

/* Two signals that end a run, come in the same turn of the loop: the first
 * one's callback ends the run and closes the watcher, and the second
 * never reaches the run that is over (it would end it a second time). */
static void no_signal_reaches_a_closed_watcher(void **state) {
  char err[256];
  uv_loop_t loop;
  struct seen s = { NULL, 0 };
  (void)state;
  assert_int_equal(ctrun_proc_protect(err, sizeof err), 0);
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ctrun_signals_watch(&loop, end_the_run, &s, &s.watcher), 0);
  kill(getpid(), SIGHUP);
  kill(getpid(), SIGUSR2);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(s.calls, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(names_and_numbers),
    cmocka_unit_test(bad_signals),
#ifndef _WIN32
    cmocka_unit_test(handlers_act_only_in_ctrun),
    cmocka_unit_test(no_signal_reaches_a_closed_watcher),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
