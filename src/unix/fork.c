/* Starting the command's process where the host has nothing cheaper than
 * fork (see ctrun_os_start_child in contain.h; Linux shares memory
 * instead, linux.c): every Unix backend but Linux's, and Linux's generic
 * POSIX build, so that this path is tested too. */
#include "contain.h"

#include <errno.h>
#include <unistd.h>

extern char **environ;

pid_t ctrun_os_start_child(int (*fn)(void *), void *arg, size_t argc, uint64_t *start) {
  pid_t pid = fork();
  (void)argc;
  *start = 0;
  if (pid == 0)
    _exit(fn(arg));
  return pid < 0 ? -errno : pid;
}

void ctrun_os_exec(char *const argv[], char *const env[]) {
  /* A forked process has a copy of environ of its own to set. */
  environ = (char **)env;
  execvp(argv[0], argv);
}
