/* ctrun: run a command with a timeout, a lock and tracking, and leave
 * nothing behind.  argv -> subcommand; the only place that picks exit codes. */
#include <stdio.h>
#include <string.h>

#include "ctrun/commands.h"
#include "ctrun/monitor.h"
#include "ctrun/exit.h"
#include "ctrun/fs.h"
#include "ctrun/msg.h"
#include "ctrun/options.h"
#include "ctrun/proc.h"
#include "ctrun/run.h"

#ifndef CTRUN_VERSION
#define CTRUN_VERSION "unknown"
#endif

static const char usage_text[] =
  "Usage: ctrun [OPTION]... [--] COMMAND [ARG]...\n"
  "       ctrun ps [--json]\n"
  "       ctrun stop [-s SIG] [-k DUR] RUN...\n"
  "       ctrun cleanup [--dry-run] [--json]\n"
  "       ctrun check [--warn N] [--crit N] [--max-age DUR] [--mem-warn SIZE]\n"
  "                   [--mem-crit SIZE] [--job NAME=DUR]... [--cleanup] [-q]\n"
  "                   [--json]\n"
  "       ctrun last [--json] [NAME]...\n"
  "       ctrun metrics [-o FILE]\n"
  "Run COMMAND with an enforced timeout, kill its whole process tree when it\n"
  "ends, hold an optional lock, and track the run so that nothing is left\n"
  "behind.\n"
  "\n"
  "Run options:\n"
  "  -t, --timeout DUR      after DUR, send the soft signal to the whole tree\n"
  "                         (default: none; 0 = none)\n"
  "  -s, --signal SIG       the soft signal: name (TERM, SIGTERM, term) or number\n"
  "                         (default: TERM)\n"
  "  -k, --kill-after DUR   after the soft signal, wait DUR, then kill the whole\n"
  "                         tree hard (default: 5s)\n"
  "      --preserve-status  on timeout, exit with the command's status, not 124\n"
  "      --leftovers MODE   when the command exits but processes it started\n"
  "                         remain: kill them (default) or wait for them\n"
  "                         (still bounded by -t)\n"
  "  -l, --lock FILE|URL    hold an exclusive lock on FILE for the life of the\n"
  "                         whole tree; created if missing, never deleted.  A\n"
  "                         URL is a fleet lock, on a server all hosts reach:\n"
  "                         redis://[USER@]HOST[:PORT][/DB]/KEY or\n"
  "                         postgres://[USER@]HOST[:PORT]/DBNAME?key=KEY.  May\n"
  "                         be given twice (one lock file at most): taken in\n"
  "                         order, held until the whole tree is gone\n"
  "  -w, --lock-wait DUR    wait up to DUR for the lock, or for both together\n"
  "                         (inf = forever; default 0)\n"
  "      --on-busy MODE     lock still held: fail (exit 75, default), skip\n"
  "                         (exit 0), replace (stop the tracked holder; not\n"
  "                         with a fleet lock), or queue (wait behind the\n"
  "                         holder, -w inf by default, unless another run\n"
  "                         already waits: then exit 0)\n"
  "      --lock-ttl DUR     the lease of a fleet lock (default: 30s, at least\n"
  "                         3s), renewed every DUR/3; a renewal not confirmed\n"
  "                         in time kills the tree hard before the lease can\n"
  "                         run out (exit 124, reason lock-lost)\n"
  "      --lock-unavailable fail|skip\n"
  "                         a fleet lock's server cannot be reached: fail\n"
  "                         (exit 75, default) or skip (exit 0, nothing runs)\n"
  "      --child-timeout DUR\n"
  "                         any process of the tree but the command that has\n"
  "                         lived DUR gets the soft signal, then the hard kill\n"
  "                         after -k; the run goes on\n"
  "      --idle-timeout DUR\n"
  "                         no output for DUR ends the run (exit 124, reason\n"
  "                         idle); ctrun then relays the output itself\n"
  "      --retry N          run the command again, up to N more times, in the\n"
  "                         same run (lock held, -t for each attempt)\n"
  "      --retry-delay DUR  wait before the first retry, doubled each time,\n"
  "                         +-20%% (default: 1s)\n"
  "      --retry-on LIST    what is retried: fail, timeout, exit codes\n"
  "                         (default: fail,timeout)\n"
  "      --ok-exit LIST     exit statuses that count as success (such as 24 or\n"
  "                         1,24) for --quiet-success, --retry, the history and\n"
  "                         check --job; the exit status is unchanged\n"
  "      --jitter DUR       wait a random time below DUR before the lock (not\n"
  "                         counted in -t)\n"
  "      --on-finish CMD    after the run, run CMD through the shell, with\n"
  "                         CTRUN_EXIT, CTRUN_REASON, CTRUN_DURATION_MS, CTRUN_LOG\n"
  "                         (30s at most; never changes the exit status)\n"
  "      --memory SIZE      cap on the resident memory of the whole tree\n"
  "                         together; over it, the tree is killed (exit 124,\n"
  "                         reason memory)\n"
  "      --max-procs N      at most N processes in the tree at once (reason\n"
  "                         procs)\n"
  "      --cpu-time DUR     CPU time (user + system) of the whole tree, reaped\n"
  "                         processes included (reason cpu)\n"
  "      --nice N           run the tree at niceness N, -20 to 19 (Windows: the\n"
  "                         nearest priority class)\n"
  "  -n, --name NAME        name for ps and stop, [A-Za-z0-9._-]{1,64}\n"
  "                         (default: the command's base name)\n"
  "  -d, --detach           run in the background under a detached supervisor;\n"
  "                         print the run id and return at once\n"
  "  -o, --log FILE         append the command's output to FILE, framed by a\n"
  "                         start and an end line\n"
  "      --quiet-success    hold the output back; print it only if the run\n"
  "                         fails or times out\n"
  "      --report FILE      write a JSON summary of the run to FILE (- = stderr)\n"
  "      --ping URL         tell a monitor (healthchecks.io protocol) of the run:\n"
  "                         URL/start?rid=RID, then URL?rid=RID on success or\n"
  "                         URL/EXIT?rid=RID (URL/fail when ctrun ended it),\n"
  "                         with the output's last 10 KB; never changes the\n"
  "                         exit status\n"
  "      --ping-file FILE   the same, the URL read from FILE (out of ps)\n"
  "  -q, --quiet            print only errors\n"
  "  -v, --verbose          say more about what ctrun does\n"
  "  -h, --help             print this help and exit\n"
  "  -V, --version          print the version and exit\n"
  "\n"
  "DUR is one or more NUMBER[UNIT] parts, UNIT one of ms s m h d (default s):\n"
  "5, 0.5, 250ms, 1.5m, 1h30m, 2d, or inf.  SIZE is NUMBER[K|M|G|T], powers of\n"
  "1024 (default: bytes): 512M, 1.5G, or inf.\n"
  "\n"
  "The command's environment gains CTRUN_RUN_ID and CTRUN_NAME, and with a\n"
  "fleet lock CTRUN_LOCK_TOKEN (its fencing token: higher at every taking of\n"
  "the lock).\n"
  "\n"
  "Runs are recorded in $CTRUN_STATE_DIR, else %s, with the\n"
  "history of each name (the last 100 runs).\n"
  "\n"
  "Subcommands:\n"
  "  ps                     list live and stale runs (--json: as JSON)\n"
  "  stop RUN...            stop runs by id or name as a timeout would\n"
  "                         (-s SIG, -k DUR: signal and grace)\n"
  "  cleanup                kill what remains of stale runs and forget them\n"
  "                         (--dry-run: only tell)\n"
  "  check                  monitoring-plugin status of tracked processes\n"
  "                         (--warn N, --crit N; --max-age DUR: WARNING for a\n"
  "                         live run older than DUR; --mem-warn SIZE,\n"
  "                         --mem-crit SIZE: on the resident memory of all\n"
  "                         tracked trees; --job NAME=DUR: CRITICAL when NAME\n"
  "                         has not succeeded within DUR, WARNING when its last\n"
  "                         run failed; --cleanup when CRITICAL; -q, --quiet:\n"
  "                         print nothing when OK)\n"
  "  last [NAME]...         per job name: the last run, the last success,\n"
  "                         failures since, runs in 24 hours (--json)\n"
  "  metrics                Prometheus text format of the history and the runs\n"
  "                         (-o, --output FILE: written aside, then renamed into\n"
  "                         place)\n"
  "\n"
  "Exit status:\n"
  "  the command's  it ran and exited by itself\n"
  "  124            timed out, idle, over a limit, stopped by ctrun stop, or a\n"
  "                 fleet lock lost (with --preserve-status: the command's\n"
  "                 status)\n"
  "  125            ctrun itself failed (usage, bad value, state directory)\n"
  "  126            COMMAND found but could not be executed\n"
  "  127            COMMAND not found\n"
  "  128+N          the command died of signal N\n"
  "  75             lock busy and --on-busy=fail, or a fleet lock's server\n"
  "                 unavailable (--lock-unavailable=fail)\n"
  "  ctrun stop: 0 all stopped, 1 no such run, 125 error.\n"
  "  ctrun cleanup: 0, 125 error.\n"
  "  ctrun check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n";

static int usage_error(const struct ctrun_parse_error *e) {
  ctrun_error("%s", e->msg);
  fprintf(stderr, "Try 'ctrun --help' for more information.\n");
  return CTRUN_EXIT_FAILURE;
}

static int help(void) {
  printf(usage_text, ctrun_statedir_default());
  return fflush(stdout) == 0 ? 0 : CTRUN_EXIT_FAILURE;
}

int main(int argc, char **argv) {
  struct ctrun_parse_error e;
  enum ctrun_parse_result r;
  const char *sub;

  ctrun_proc_init(&argc, &argv);
  sub = argc > 1 ? argv[1] : "";

  if (strcmp(sub, "ps") == 0) {
    struct ctrun_ps_opts o;
    r = ctrun_parse_ps(argc - 1, argv + 1, &o, &e);
    return r == CTRUN_PARSE_OK ? ctrun_cmd_ps(&o) : r == CTRUN_PARSE_HELP ? help() : usage_error(&e);
  }
  if (strcmp(sub, "stop") == 0) {
    struct ctrun_stop_opts o;
    r = ctrun_parse_stop(argc - 1, argv + 1, &o, &e);
    return r == CTRUN_PARSE_OK ? ctrun_cmd_stop(&o) : r == CTRUN_PARSE_HELP ? help() : usage_error(&e);
  }
  if (strcmp(sub, "cleanup") == 0) {
    struct ctrun_cleanup_opts o;
    r = ctrun_parse_cleanup(argc - 1, argv + 1, &o, &e);
    return r == CTRUN_PARSE_OK ? ctrun_cmd_cleanup(&o)
           : r == CTRUN_PARSE_HELP ? help() : usage_error(&e);
  }
  if (strcmp(sub, "last") == 0) {
    struct ctrun_last_opts o;
    r = ctrun_parse_last(argc - 1, argv + 1, &o, &e);
    return r == CTRUN_PARSE_OK ? ctrun_cmd_last(&o) : r == CTRUN_PARSE_HELP ? help() : usage_error(&e);
  }
  if (strcmp(sub, "metrics") == 0) {
    struct ctrun_metrics_opts o;
    r = ctrun_parse_metrics(argc - 1, argv + 1, &o, &e);
    return r == CTRUN_PARSE_OK   ? ctrun_cmd_metrics(&o)
           : r == CTRUN_PARSE_HELP ? help()
                                   : usage_error(&e);
  }
  if (strcmp(sub, "check") == 0) {
    static struct ctrun_check_opts o; /* 5 KiB: not on the stack of every run */
    r = ctrun_parse_check(argc - 1, argv + 1, &o, &e);
    return r == CTRUN_PARSE_OK ? ctrun_cmd_check(&o)
           : r == CTRUN_PARSE_HELP ? help() : usage_error(&e);
  }

  struct ctrun_run_opts o;
  r = ctrun_parse_run(argc, argv, &o, &e);
  switch (r) {
  case CTRUN_PARSE_OK: return ctrun_run(&o);
  case CTRUN_PARSE_HELP: return help();
  case CTRUN_PARSE_VERSION: printf("ctrun %s\n", CTRUN_VERSION); return 0;
  default: return usage_error(&e);
  }
}
