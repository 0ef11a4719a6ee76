#include "ctrun/signals.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h> /* SIGHUP and SIGKILL, which Windows' signal.h lacks */

static const struct { int sig; const char *name; } table[] = {
#ifdef SIGHUP
  { SIGHUP, "HUP" },
#endif
  { SIGINT, "INT" },
#ifdef SIGQUIT
  { SIGQUIT, "QUIT" },
#endif
  { SIGILL, "ILL" },
#ifdef SIGTRAP
  { SIGTRAP, "TRAP" },
#endif
  { SIGABRT, "ABRT" },
#ifdef SIGBUS
  { SIGBUS, "BUS" },
#endif
  { SIGFPE, "FPE" },
#ifdef SIGKILL
  { SIGKILL, "KILL" },
#endif
#ifdef SIGUSR1
  { SIGUSR1, "USR1" },
#endif
  { SIGSEGV, "SEGV" },
#ifdef SIGUSR2
  { SIGUSR2, "USR2" },
#endif
#ifdef SIGPIPE
  { SIGPIPE, "PIPE" },
#endif
#ifdef SIGALRM
  { SIGALRM, "ALRM" },
#endif
  { SIGTERM, "TERM" },
#ifdef SIGCHLD
  { SIGCHLD, "CHLD" },
#endif
#ifdef SIGCONT
  { SIGCONT, "CONT" },
#endif
#ifdef SIGSTOP
  { SIGSTOP, "STOP" },
#endif
#ifdef SIGTSTP
  { SIGTSTP, "TSTP" },
#endif
#ifdef SIGTTIN
  { SIGTTIN, "TTIN" },
#endif
#ifdef SIGTTOU
  { SIGTTOU, "TTOU" },
#endif
#ifdef SIGURG
  { SIGURG, "URG" },
#endif
#ifdef SIGXCPU
  { SIGXCPU, "XCPU" },
#endif
#ifdef SIGXFSZ
  { SIGXFSZ, "XFSZ" },
#endif
#ifdef SIGVTALRM
  { SIGVTALRM, "VTALRM" },
#endif
#ifdef SIGPROF
  { SIGPROF, "PROF" },
#endif
#ifdef SIGWINCH
  { SIGWINCH, "WINCH" },
#endif
#ifdef SIGIO
  { SIGIO, "IO" },
#endif
#ifdef SIGSYS
  { SIGSYS, "SYS" },
#endif
};

/* The highest signal number accepted by number. */
#if defined(NSIG)
#define SIG_LIMIT NSIG
#elif defined(_NSIG)
#define SIG_LIMIT _NSIG
#else
#define SIG_LIMIT 65
#endif

int ctrun_signal_parse(const char *s) {
  char up[16];
  size_t n;

  if (s == NULL || *s == '\0')
    return -EINVAL;
  if (isdigit((unsigned char)*s)) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0 || v >= SIG_LIMIT)
      return -EINVAL;
    return (int)v;
  }
  n = strlen(s);
  if (n >= sizeof up)
    return -EINVAL;
  for (size_t i = 0; i <= n; i++)
    up[i] = (char)toupper((unsigned char)s[i]);
  const char *name = strncmp(up, "SIG", 3) == 0 ? up + 3 : up;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(name, table[i].name) == 0)
      return table[i].sig;
  return -EINVAL;
}

const char *ctrun_signal_name(int sig) {
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (table[i].sig == sig)
      return table[i].name;
  return NULL;
}
