#!/usr/bin/env bash
# The bash completion, driven as bash drives it: set COMP_WORDS and
# COMP_CWORD, call _ctrun, read COMPREPLY.  `stop <TAB>` must list a live
# run, so a real detached run is started in a state directory of our own,
# and stopped at the end: nothing may be left running.  The checks run in
# plain bash, and again with bash-completion loaded where it is installed
# (the command after the options then goes to its _command_offset).
#
# Usage: test_completion.sh COMPLETION_FILE OPTIONS_C   (CTRUN in the env)
set -u
completion="$1"
options_c="$2"
ctrun="${CTRUN:?CTRUN must name the ctrun binary}"

work="$(mktemp -d /tmp/ctrun-completion.XXXXXX)"
export CTRUN_STATE_DIR="$work/state"
# Every process of the test's run carries this, to prove none is left.
marker="CTRUN_COMPLETION_TEST=$$"

leftovers() { grep -lsxz "$marker" /proc/[0-9]*/environ; }

finish() {
  "$ctrun" stop -k 1s compl-web >/dev/null 2>&1
  for _ in $(seq 100); do
    [ -z "$(leftovers)" ] && [ -z "$(ls "$CTRUN_STATE_DIR"/*.run 2>/dev/null)" ] && break
    sleep 0.1
  done
  rm -rf "$work"
}
trap finish EXIT

id="$(env "$marker" "$ctrun" -d -n compl-web -t 120 -- sleep 300)" || {
  echo "FAIL: could not start a detached run"
  exit 1
}

# The checks, in a bash of their own: FIRST_ARG is "plain" or the path of
# bash-completion's main script to load first.
run_checks() {
  bash -s "$1" "$completion" "$options_c" "$ctrun" "$id" <<'CHECKS'
set -u
mode="$1" completion="$2" options_c="$3" ctrun="$4" id="$5"
if [ "$mode" != plain ]; then
  # shellcheck disable=SC1090
  . "$mode" || exit 1
fi
# shellcheck disable=SC1090
. "$completion" || exit 1
failed=0

# Complete the words given, the last one being typed; print COMPREPLY.
reply() {
  COMP_WORDS=("$ctrun" "$@")
  COMP_CWORD=$#
  COMP_LINE="${COMP_WORDS[*]}"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _ctrun "$ctrun" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort -u
}

# exactly WORDS...: the reply is these words and no others.
exactly() {
  local got want
  got="$(reply "${words[@]}" | tr '\n' ' ')"
  want="$(printf '%s\n' "$@" | sort -u | tr '\n' ' ')"
  if [ "$got" != "$want" ]; then
    echo "FAIL [$mode]: ctrun ${words[*]}<TAB> gave '$got', not '$want'"
    failed=1
  fi
}

# has WORDS...: the reply holds each of these words.
has() {
  local got w
  got="$(reply "${words[@]}")"
  for w in "$@"; do
    if ! grep -qxF -- "$w" <<<"$got"; then
      echo "FAIL [$mode]: ctrun ${words[*]}<TAB> lacks '$w' (gave: $(tr '\n' ' ' <<<"$got"))"
      failed=1
    fi
  done
}

# lacks WORDS...: the reply holds none of these words.
lacks() {
  local got w
  got="$(reply "${words[@]}")"
  for w in "$@"; do
    if grep -qxF -- "$w" <<<"$got"; then
      echo "FAIL [$mode]: ctrun ${words[*]}<TAB> offers '$w'"
      failed=1
    fi
  done
}

# The long options of one option table of src/options.c.
table() {
  sed -n "/ $1\[\] = {/,/^};/p" "$options_c" | grep -o '"[a-z-]*"' | tr -d '"' | sed 's/^/--/'
}

words=("");               exactly ps stop cleanup check last metrics
words=(st);               has stop
words=(--on-busy "");     exactly fail skip replace queue
words=(--on-busy q);      exactly queue
words=(--retry-on "");    exactly fail timeout
words=(--retry-on fail,t); exactly fail,timeout
words=(--retry-on = 1,75,f); exactly 1,75,fail
words=(--child-timeout i); exactly inf
words=(--memory i);       exactly inf
words=(--memory 1G --max-procs 50 --cpu-time 1s --nice 10 -- slee); has sleep
words=(check --mem-warn 1G --mem-crit 2G -); has --json --mem-crit
words=(--nice "");        lacks --json
words=(metrics -);        exactly -o --output --help
words=(last --j);         exactly --json
words=(check --job x=1h -); has --job --json
words=(--retry 2 --retry-delay 1s -s ""); has TERM
words=(--idle-timeout 5 -- slee); has sleep
words=(check --max-age 1h -); has --json --warn
words=(--on-busy=s);      exactly skip
# As bash splits the words, at '=':
words=(--on-busy = s);    exactly skip
words=(--on-busy =);      exactly fail skip replace queue
words=(--leftovers = kill -t 5 --on-busy = r); exactly replace
words=(--leftovers = kill -- slee); has sleep
words=(--leftovers = kill -s ""); has TERM KILL
words=(check --warn = "");  lacks --json
words=(-l x.lock --on-busy r); exactly replace
words=(--lock-unavailable ""); exactly fail skip
words=(--lock-unavailable s); exactly skip
words=(--lock-unavailable = f); exactly fail
words=(-l redis://h/k --lock-unavailable=s); exactly skip
words=(--lock-ttl "");    lacks --json fail skip inf
words=(--lock-t);         exactly --lock-ttl
words=(--lock-u);         exactly --lock-unavailable
words=(-l redis://h/k --lock-ttl 10s --lock-unavailable skip -- slee); has sleep
words=(-l redis://h/k --lock-ttl 10s --on-busy ""); exactly fail skip replace queue
# A URL as bash splits it, at ':': its parts are one value.
words=(-l redis : //h/k --lock-unavailable ""); exactly fail skip
words=(-l redis : //h:6380/k --lock-t); exactly --lock-ttl
words=(--lock = redis : //h/k -l /tmp/x.lock -- slee); has sleep
words=(-dl redis : //h/k --on-busy s); exactly skip
words=(-l redis : //h/k sleep --on); lacks --on-busy
words=(-l redis : //h);   exactly
words=(-l redis :);       exactly
words=(--leftovers "");   exactly kill wait
words=(-s "");            has TERM KILL HUP INT QUIT USR1
words=(-s te);            exactly TERM
words=(-s SIGT);          has SIGTERM SIGTRAP
words=(-s sigk);          exactly SIGKILL
words=(-t 5 --signal k);  exactly KILL
words=(-dt5 -s "");       has TERM
words=(-dt 5 -s "");      has TERM
words=(--ti);             exactly --timeout
words=(-);                has -t -s -k -l -w -n -d -o -q -v -h -V
words=(-t 5 -- slee);     has sleep
words=(-t 5 sleep --on);  lacks --on-busy
words=(ps "");            has --json
words=(cleanup --);       has --dry-run --json
words=(check -);          has -q --quiet --warn --crit --max-age --cleanup --json
words=(stop "");          has compl-web "$id"
words=(stop compl);       exactly compl-web
words=(stop -s "");       has TERM KILL
words=(stop -k 2s "");    has compl-web
words=(stop -);           has -s -k

# Every option ctrun parses is offered.
words=(-);       has $(table run_defs)
words=(ps -);    has $(table ps_defs)
words=(stop -);  has $(table stop_defs)
words=(cleanup -); has $(table cleanup_defs)
words=(check -); has $(table check_defs)

exit "$failed"
CHECKS
}

status=0
run_checks plain || status=1
checked="plain bash"
for bc in /usr/share/bash-completion/bash_completion /etc/bash_completion; do
  if [ -f "$bc" ]; then
    run_checks "$bc" || status=1
    checked="$checked, and with $bc"
    break
  fi
done

# Stop the run; nothing of it may be left.
"$ctrun" stop -k 1s compl-web >/dev/null || { echo "FAIL: ctrun stop compl-web"; status=1; }
for _ in $(seq 100); do
  [ -z "$(leftovers)" ] && break
  sleep 0.1
done
if [ -n "$(leftovers)" ]; then
  echo "FAIL: processes of the test's run outlived ctrun stop: $(leftovers)"
  status=1
fi
echo "completion: checked in $checked: $([ "$status" = 0 ] && echo ok || echo FAILED)"
exit "$status"
