#!/bin/sh
# `zig.sh ZIG cc|ar|ranlib ARGS...`: run the Zig binary ZIG for the macOS
# cross files (see macos-x86_64.ini).
#
# Meson 1.0 does not know Zig's own Mach-O linker by name ("zig ld") and
# stops at its probe.  That linker takes Apple ld64's command line, as
# LLVM's ld64.lld does, so the two probes are answered as ld64.lld would
# answer them; everything else goes to Zig unchanged.
zig="$1"
shift
if [ "$1" = cc ]; then
  case " $* " in
    *" -Wl,--version "*)
      printf 'LLD 16.0.6 (zig ld %s, ld64 command line)\n' "$("$zig" version)"
      exit 0 ;;
    *" -Wl,-v "*)
      echo 'ld64.lld: zig ld' >&2
      exit 0 ;;
  esac
fi
exec "$zig" "$@"
