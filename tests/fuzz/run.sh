#!/usr/bin/env bash
# Build the libFuzzer targets (if needed) and run each for SECONDS on a copy
# of its seed corpus.  Exits non-zero on any crash, leak or sanitizer report.
#
#   bash tests/fuzz/run.sh 60
#
# Needs: clang libclang-rt-14-dev meson ninja-build pkg-config libuv1-dev.
# FUZZ_BUILD_DIR (default: build-fuzz at the top of the tree) is configured
# with -Dfuzz=true and ASan+UBSan on first use.  Findings are saved in
# FUZZ_ARTIFACTS (default: a temporary directory, printed).
set -euo pipefail

secs=${1:-}
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 SECONDS [TARGET...]" >&2
  exit 2
fi
shift

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(duration signal options entry lock_holder size history lease_url)
fi

if [ ! -f "$build/build.ninja" ]; then
  CC=${CC:-clang} meson setup "$build" "$top" -Dfuzz=true -Dtests=false \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
fi
ninja -C "$build"

work=$(mktemp -d "${TMPDIR:-/tmp}/ctrun-fuzz.XXXXXX")
artifacts=${FUZZ_ARTIFACTS:-$work/artifacts}
mkdir -p "$artifacts"
failed=0
# Keep the temporary corpora only when something was found.
trap 'if [ "$failed" -eq 0 ]; then rm -rf "$work"; fi' EXIT

# Any sanitizer report is fatal; leaks are checked by libFuzzer itself.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

for t in "${targets[@]}"; do
  exe="$build/tests/fuzz/fuzz-$t"
  seeds="$top/tests/fuzz/corpus/$t"
  if [ ! -x "$exe" ] || [ ! -d "$seeds" ]; then
    echo "run.sh: no fuzz target '$t'" >&2
    failed=1
    continue
  fi
  corpus="$work/corpus-$t"
  mkdir -p "$corpus"
  cp -R "$seeds/." "$corpus/"
  log="$work/$t.log"
  echo "== fuzz-$t: ${secs}s"
  # The fuzzer writes only to the copy; the checked-in seeds stay as they are.
  if "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t-" "$corpus" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" || true
    # A sanitizer report that did not stop the run is still a finding.
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:' "$log"; then
      echo "run.sh: fuzz-$t printed a sanitizer report (log: $log)" >&2
      failed=1
    fi
  else
    echo "run.sh: fuzz-$t FAILED (log: $log, artifacts: $artifacts)" >&2
    tail -n 40 "$log" >&2
    failed=1
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "run.sh: findings; the inputs are in $artifacts" >&2
  exit 1
fi
echo "run.sh: all targets clean"
