/* The exit-status contract of ctrun, written once.  main() is the only place
 * that picks an exit code; --help and the man page list this table. */
#ifndef CTRUN_EXIT_H
#define CTRUN_EXIT_H

enum ctrun_exit {
  CTRUN_EXIT_LOCK_BUSY = 75,    /* lock busy and --on-busy=fail (EX_TEMPFAIL) */
  CTRUN_EXIT_TIMEOUT = 124,     /* the command timed out */
  CTRUN_EXIT_FAILURE = 125,     /* ctrun itself failed */
  CTRUN_EXIT_CANNOT_EXEC = 126, /* command found but not executable */
  CTRUN_EXIT_NOT_FOUND = 127,   /* command not found */
  CTRUN_EXIT_SIGNAL_BASE = 128  /* 128+N: the command died of signal N */
};

/* Exit codes of the subcommands. */
enum ctrun_stop_exit { CTRUN_STOP_OK = 0, CTRUN_STOP_NO_SUCH_RUN = 1 };
enum ctrun_check_exit {
  CTRUN_CHECK_OK = 0,
  CTRUN_CHECK_WARNING = 1,
  CTRUN_CHECK_CRITICAL = 2,
  CTRUN_CHECK_UNKNOWN = 3
};

#endif
