/* The --report sink: one JSON object from the run's result. */
#include "ctrun/output.h"

#include "ctrun/json.h"
#include "ctrun/result.h"
#include "ctrun/signals.h"

const char *ctrun_reason_name(enum ctrun_reason r) {
  static const char *const names[] = { "exit",    "signal",    "timeout", "idle",
                                       "stopped", "leftovers", "skipped" };
  return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "exit";
}

void ctrun_report_write(struct ctrun_output *out, const struct ctrun_result *res) {
  FILE *f = ctrun_output_report_begin(out);
  const char *sig = res->attempts > 0 && res->termsig > 0 ? ctrun_signal_name(res->termsig) : NULL;
  if (f == NULL)
    return;
  fputs("{\"id\":", f);
  ctrun_json_string(f, res->id);
  fputs(",\"name\":", f);
  ctrun_json_string(f, res->name);
  fputs(",\"argv\":", f);
  ctrun_json_argv(f, res->argv);
  fputs(",\"started\":", f);
  ctrun_json_time(f, res->started_ms);
  fputs(",\"ended\":", f);
  ctrun_json_time(f, res->ended_ms);
  fprintf(f, ",\"duration_ms\":%lld", (long long)(res->ended_ms - res->started_ms));
  /* Exit codes are unsigned: 0xC0000005 is 3221225477, as Windows has it. */
  fprintf(f, ",\"exit_code\":%lu,\"signal\":", (unsigned long)(unsigned)res->exit_code);
  ctrun_json_string_or_null(f, sig);
  fprintf(f, ",\"reason\":\"%s\"", ctrun_reason_name(res->reason));
  fprintf(f, ",\"timed_out\":%s,\"killed_hard\":%s,\"leftovers_killed\":%d,\"lock\":",
          res->timed_out ? "true" : "false", res->killed_hard ? "true" : "false",
          res->leftovers_killed);
  ctrun_json_string_or_null(f, res->lock);
  fprintf(f, ",\"lock_wait_ms\":%lld,\"skipped\":%s,\"peak_procs\":%d", (long long)res->lock_wait_ms,
          res->reason == CTRUN_REASON_SKIPPED ? "true" : "false", res->peak_procs);
  fprintf(f, ",\"children_killed\":%d,\"attempts\":%d,\"attempt_results\":[", res->children_killed,
          res->attempts);
  for (int i = 0; i < res->attempts; i++)
    fprintf(f, "%s{\"exit_code\":%lu,\"reason\":\"%s\",\"duration_ms\":%lld}", i ? "," : "",
            (unsigned long)(unsigned)res->attempt[i].exit_code, ctrun_reason_name(res->attempt[i].reason),
            (long long)res->attempt[i].duration_ms);
  fputs("]}\n", f);
  ctrun_output_report_end(out);
}
