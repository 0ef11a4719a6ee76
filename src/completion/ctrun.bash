# bash completion for ctrun                                -*- shell-script -*-
#
# Completes ctrun's options and their values (--on-busy, --leftovers and
# --lock-unavailable modes, --retry-on items, signal names for -s), the
# subcommands and their options, the run
# names and ids that `ctrun stop` takes (read from `ctrun ps`), and, after
# the options, the command to run and its own arguments (through
# bash-completion's _command_offset where it is loaded).  Works in plain
# bash too.

# The options that take a value, long and short.
_ctrun_takes_value() {
  case "$1" in
    -t | --timeout | -s | --signal | -k | --kill-after | --leftovers | -l | --lock | \
      -w | --lock-wait | --on-busy | --lock-ttl | --lock-unavailable | -n | --name | \
      -o | --log | --report | \
      --child-timeout | --idle-timeout | --retry | --retry-delay | --retry-on | \
      --memory | --max-procs | --cpu-time | --nice | --ok-exit | --jitter | --on-finish | \
      --ping | --ping-file | \
      --warn | --crit | --max-age | --mem-warn | --mem-crit | --job | -o | --output)
      return 0 ;;
  esac
  return 1
}

# A value with a colon in it (a lock URL, a ping URL) comes split, as bash
# breaks words at ':' (COMP_WORDBREAKS): "redis" ":" "//host/key".  Print
# the index of the value's last part, its first being at $1.
_ctrun_value_end() {
  local k="$1"
  while [ "${COMP_WORDS[k + 1]-}" = ":" ]; do
    k=$((k + 2))
  done
  printf '%s' "$k"
}

# Fill COMPREPLY with the words of $1 that start with $2.
_ctrun_words() {
  local IFS=$' \t\n'
  COMPREPLY=($(compgen -W "$1" -- "$2"))
}

# Values of the option $1, for the word $2 being typed.
_ctrun_value() {
  local opt="$1" cur="$2"
  case "$opt" in
    -s | --signal)
      # ctrun takes TERM, SIGTERM and term alike: offer the names in
      # capitals, with SIG where the word being typed has it.
      local name names="HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE
        ALRM TERM CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO SYS"
      cur="${cur^^}"
      if [[ "$cur" == SIG* ]]; then
        names="$(for name in $names; do printf 'SIG%s ' "$name"; done)"
      fi
      _ctrun_words "$names" "$cur"
      ;;
    --on-busy) _ctrun_words "fail skip replace queue" "$cur" ;;
    --retry-on)
      # A comma-separated list: complete the item after the last comma.
      local head="" item="$cur"
      if [[ "$cur" == *,* ]]; then
        head="${cur%,*},"
        item="${cur##*,}"
      fi
      local IFS=$' \t\n' w
      COMPREPLY=()
      for w in $(compgen -W "fail timeout" -- "$item"); do
        COMPREPLY+=("$head$w")
      done
      ;;
    --leftovers) _ctrun_words "kill wait" "$cur" ;;
    --lock-unavailable) _ctrun_words "fail skip" "$cur" ;;
    -l | --lock | -o | --log | --report | --ping-file)
      local IFS=$'\n'
      COMPREPLY=($(compgen -f -- "$cur"))
      compopt -o filenames 2>/dev/null
      ;;
    -w | --lock-wait | -k | --kill-after | --child-timeout | --idle-timeout | --cpu-time | \
      --memory | --mem-warn | --mem-crit)
      _ctrun_words "inf" "$cur" ;;
    *) COMPREPLY=() ;;
  esac
}

# The ids and names of the runs in `ctrun ps` (ID and NAME columns).
_ctrun_runs() {
  "$1" ps 2>/dev/null | while read -r id name _; do
    [ "$id" = ID ] && continue
    printf '%s %s\n' "$id" "$name"
  done
}

_ctrun() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local prev="${COMP_WORDS[COMP_CWORD - 1]}"
  local ctrun="${COMP_WORDS[0]}"
  local sub="" i w

  COMPREPLY=()
  # --opt=value: complete the value.  Bash splits the words at '=' (it is
  # in COMP_WORDBREAKS), so this comes as "--opt" "=" "value" or, right
  # after the '=', as "--opt" "="; a caller that does not split gives
  # "--opt=value".
  if [[ "$cur" == --*=* ]]; then
    _ctrun_value "${cur%%=*}" "${cur#*=}"
    return 0
  fi
  if [ "$cur" = "=" ] && [[ "$prev" == --* ]]; then
    _ctrun_value "$prev" ""
    return 0
  fi
  if [ "$prev" = "=" ] && [ "$COMP_CWORD" -gt 2 ] && [[ "${COMP_WORDS[COMP_CWORD - 2]}" == --* ]]; then
    _ctrun_value "${COMP_WORDS[COMP_CWORD - 2]}" "$cur"
    return 0
  fi

  if [ "$COMP_CWORD" -gt 1 ]; then
    case "${COMP_WORDS[1]}" in
      ps | stop | cleanup | check | last | metrics) sub="${COMP_WORDS[1]}" ;;
    esac
  fi

  if [ -n "$sub" ]; then
    # A value of the option before?
    if _ctrun_takes_value "$prev" && [ "$COMP_CWORD" -gt 2 ]; then
      _ctrun_value "$prev" "$cur"
      return 0
    fi
    case "$sub" in
      ps) _ctrun_words "--json --help" "$cur" ;;
      cleanup) _ctrun_words "--dry-run --json --help" "$cur" ;;
      check)
        _ctrun_words "--warn --crit --max-age --mem-warn --mem-crit --job --cleanup -q --quiet
          --json --help" "$cur"
        ;;
      metrics) _ctrun_words "-o --output --help" "$cur" ;;
      last)
        if [[ "$cur" == -* ]]; then
          _ctrun_words "--json --help" "$cur"
        else
          _ctrun_words "$("$ctrun" last 2>/dev/null | while read -r name _; do
            [ "$name" = NAME ] || printf '%s ' "$name"
          done)" "$cur"
        fi
        ;;
      stop)
        if [[ "$cur" == -* ]]; then
          _ctrun_words "-s --signal -k --kill-after --help" "$cur"
        else
          _ctrun_words "$(_ctrun_runs "$ctrun")" "$cur"
        fi
        ;;
    esac
    return 0
  fi

  # Run options, up to the first operand: the command.
  local valfor="" after_dashes=0
  i=1
  while [ "$i" -lt "$COMP_CWORD" ]; do
    w="${COMP_WORDS[i]}"
    if [ "$w" = -- ]; then
      after_dashes=1
      i=$((i + 1))
      break
    elif [[ "$w" == --*=* ]]; then
      :
    elif [[ "$w" == --* ]]; then
      if _ctrun_takes_value "$w"; then
        [ "${COMP_WORDS[i + 1]}" = "=" ] && i=$((i + 1)) # "--opt" "=" "value"
        [ $((i + 1)) -eq "$COMP_CWORD" ] && { valfor="$w"; break; }
        i=$(_ctrun_value_end $((i + 1)))
        [ "$i" -ge "$COMP_CWORD" ] && return 0 # within a URL: nothing to offer
      fi
    elif [[ "$w" == -?* ]]; then
      # A bundle such as -dt5 or -dt 5: a value-taking letter with nothing
      # after it takes the next word.
      local j c
      for ((j = 1; j < ${#w}; j++)); do
        c="${w:j:1}"
        if _ctrun_takes_value "-$c"; then
          if [ "$j" -eq $((${#w} - 1)) ]; then
            [ $((i + 1)) -eq "$COMP_CWORD" ] && valfor="-$c"
            [ -z "$valfor" ] && i=$(_ctrun_value_end $((i + 1)))
          fi
          break
        fi
      done
      [ -n "$valfor" ] && break
      [ "$i" -ge "$COMP_CWORD" ] && return 0 # within a URL: nothing to offer
    else
      break
    fi
    i=$((i + 1))
  done

  if [ -n "$valfor" ]; then
    _ctrun_value "$valfor" "$cur"
    return 0
  fi
  if [ "$i" -lt "$COMP_CWORD" ]; then
    # Past the options: the command (at word i) and its arguments.
    if declare -F _command_offset >/dev/null; then
      _command_offset "$i"
    else
      local IFS=$'\n'
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
  fi
  if [ "$after_dashes" -eq 1 ]; then
    COMPREPLY=($(compgen -c -- "$cur"))
    return 0
  fi

  case "$cur" in
    -*)
      _ctrun_words "-t --timeout -s --signal -k --kill-after --preserve-status --leftovers
        -l --lock -w --lock-wait --on-busy --lock-ttl --lock-unavailable
        --child-timeout --idle-timeout --retry
        --retry-delay --retry-on --ok-exit --jitter --on-finish --memory --max-procs
        --cpu-time --nice -n --name -d
        --detach -o --log --quiet-success
        --report --ping --ping-file -q --quiet -v --verbose -h --help -V --version --" "$cur"
      ;;
    *)
      if [ "$COMP_CWORD" -eq 1 ]; then
        # A subcommand; once something is typed, a command to run too.
        _ctrun_words "ps stop cleanup check last metrics" "$cur"
        [ -n "$cur" ] && COMPREPLY+=($(compgen -c -- "$cur"))
      else
        COMPREPLY=($(compgen -c -- "$cur"))
      fi
      ;;
  esac
  return 0
}

complete -F _ctrun ctrun
