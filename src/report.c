/* The --report sink: one JSON object from the run's result. */
#include "ctrun/output.h"

#include "ctrun/json.h"
#include "ctrun/result.h"
#include "ctrun/signals.h"

const char *ctrun_reason_name(enum ctrun_reason r) {
  static const char *const names[] = { "exit",    "signal",    "timeout", "idle",
                                       "stopped", "leftovers", "skipped", "memory",
                                       "procs",   "cpu",       "lock-lost" };
  return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "exit";
}

/* "exit N": N unsigned, and for the codes of Windows exceptions
 * (0x80000000 and above) also in the hexadecimal they are known by. */
static void format_exit(int code, char *buf, size_t size) {
  unsigned c = (unsigned)code;
  if (c >= 0x80000000u)
    snprintf(buf, size, "exit %u (0x%08X)", c, c);
  else
    snprintf(buf, size, "exit %u", c);
}

const char *ctrun_reason_text(enum ctrun_reason r, int exit_code, int termsig, char *buf,
                              size_t size) {
  const char *sig = ctrun_signal_name(termsig);
  char ended[40];
  format_exit(exit_code, ended, sizeof ended);
  switch (r) {
  case CTRUN_REASON_TIMEOUT: snprintf(buf, size, "timed out, %s", ended); break;
  case CTRUN_REASON_IDLE: snprintf(buf, size, "idle, %s", ended); break;
  case CTRUN_REASON_STOPPED: snprintf(buf, size, "stopped, %s", ended); break;
  case CTRUN_REASON_SIGNAL: snprintf(buf, size, "killed by signal %s, %s", sig ? sig : "?", ended); break;
  case CTRUN_REASON_LEFTOVERS: snprintf(buf, size, "%s, leftovers killed", ended); break;
  case CTRUN_REASON_SKIPPED: snprintf(buf, size, "skipped, %s", ended); break;
  case CTRUN_REASON_MEMORY: snprintf(buf, size, "over --memory, %s", ended); break;
  case CTRUN_REASON_PROCS: snprintf(buf, size, "over --max-procs, %s", ended); break;
  case CTRUN_REASON_CPU: snprintf(buf, size, "over --cpu-time, %s", ended); break;
  case CTRUN_REASON_LOCK_LOST: snprintf(buf, size, "lock lost, %s", ended); break;
  default: snprintf(buf, size, "%s", ended); break;
  }
  return buf;
}

void ctrun_report_write(struct ctrun_output *out, const struct ctrun_result *res) {
  FILE *f = ctrun_output_report_begin(out);
  const char *sig = res->attempts > 0 && res->termsig > 0 ? ctrun_signal_name(res->termsig) : NULL;
  if (f == NULL)
    return;
  fputs("{\"id\":", f);
  ctrun_json_string(f, res->id);
  fputs(",\"rid\":", f);
  ctrun_json_string_or_null(f, res->rid);
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
  fprintf(f, ",\"reason\":\"%s\",\"ok\":%s", ctrun_reason_name(res->reason),
          res->ok ? "true" : "false");
  fprintf(f, ",\"timed_out\":%s,\"killed_hard\":%s,\"leftovers_killed\":%d,\"lock\":",
          res->timed_out ? "true" : "false", res->killed_hard ? "true" : "false",
          res->leftovers_killed);
  ctrun_json_string_or_null(f, res->lock);
  fprintf(f, ",\"lock_wait_ms\":%lld,\"skipped\":%s,\"peak_procs\":%d", (long long)res->lock_wait_ms,
          res->reason == CTRUN_REASON_SKIPPED ? "true" : "false", res->peak_procs);
  fprintf(f, ",\"peak_rss_bytes\":%llu,\"cpu_user_ms\":%llu,\"cpu_sys_ms\":%llu",
          (unsigned long long)res->peak_rss_bytes, (unsigned long long)res->cpu_user_ms,
          (unsigned long long)res->cpu_sys_ms);
  fputs(",\"limits_enforced_by\":", f);
  ctrun_json_string_or_null(f, res->limits_by);
  fputs(",\"lock_token\":", f);
  ctrun_json_string_or_null(f, res->lock_token);
  fputs(",\"unkillable\":[", f);
  for (int i = 0; i < res->unkillable && i < CTRUN_UNKILLABLE_LISTED; i++)
    fprintf(f, "%s%ld", i ? "," : "", res->unkillable_pid[i]);
  fputc(']', f);
  fprintf(f, ",\"children_killed\":%d,\"attempts\":%d,\"attempt_results\":[", res->children_killed,
          res->attempts);
  for (int i = 0; i < res->attempts; i++)
    fprintf(f, "%s{\"exit_code\":%lu,\"reason\":\"%s\",\"duration_ms\":%lld}", i ? "," : "",
            (unsigned long)(unsigned)res->attempt[i].exit_code, ctrun_reason_name(res->attempt[i].reason),
            (long long)res->attempt[i].duration_ms);
  fputs("]}\n", f);
  ctrun_output_report_end(out);
}
