/* ctrun-bench-rss PROGRAM [ARG]...: run PROGRAM, print its peak RSS in KiB
 * (ru_maxrss from wait4) on stdout, exit with its status.
 *
 * Why a helper: at exec, Linux carries the exec'ing process's peak RSS into
 * the new program's ru_maxrss, so a measured wrapper can never report less
 * than the RSS of whoever started it.  The benchmark driver links libuv and
 * is bigger than timeout(1) itself; this helper is built static and tiny, so
 * the floor it sets lies well below every program measured. */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct rusage ru;
  int st;
  pid_t pid;

  if (argc < 2)
    return 2;
  pid = vfork();
  if (pid == 0) {
    execv(argv[1], argv + 1);
    _exit(127);
  }
  if (pid < 0 || wait4(pid, &st, 0, &ru) != pid)
    return 2;
  printf("%ld\n", ru.ru_maxrss);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
