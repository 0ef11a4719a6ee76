#!/usr/bin/env bash
# The Windows build and its tests, from a clean checkout on Debian 12 as
# root: cross-compile with mingw-w64, run every test under Wine in a fresh
# prefix, and leave no Wine process behind.
#
#   bash .ci/windows.sh            # from the top of the repository
#
# Environment: BUILD_DIR (default build-win), SKIP_APT=1 to skip apt-get.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build="${BUILD_DIR:-build-win}"

log() { echo "windows.sh: $*"; }

if [ "${SKIP_APT:-0}" != 1 ]; then
  log "installing the cross toolchain and Wine"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # redis-server: e2e-win-fleet runs Debian's, a Linux program, from Wine.
  apt-get install -y -qq gcc-mingw-w64-x86-64 wine wine64 meson ninja-build pkg-config \
    xz-utils redis-server >/dev/null
fi

log "preparing the libuv, cmocka and hiredis subprojects"
bash subprojects/prepare-mingw.sh

# The tests run the build that ships: debugoptimized (-O2), where undefined
# behaviour turns into wrong code; named here so that a reused build
# directory configured otherwise is set back.
opts=(--cross-file cross/mingw-w64.ini -Dwerror=true --buildtype=debugoptimized)
if [ -d "$build" ]; then
  meson setup --reconfigure "$build" "${opts[@]}"
else
  meson setup "$build" "${opts[@]}"
fi
ninja -C "$build"

# A prefix of our own, thrown away afterwards, and a wineserver that is
# always killed, whatever happens to the tests.
WINEPREFIX="$(mktemp -d /tmp/ctrun-wine.XXXXXX)"
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
cleanup() {
  wineserver -k 2>/dev/null || true
  wineserver -w 2>/dev/null || true
  rm -rf "$WINEPREFIX"
}
trap cleanup EXIT

log "creating the Wine prefix"
# wineboot has failed once in CI (exit 53) and worked on the next try: a
# prefix that cannot be made after three tries is a real failure.
for try in 1 2 3; do
  if wineboot -i >/dev/null 2>&1 && wineserver -w; then
    break
  fi
  [ "$try" = 3 ] && { log "cannot create the Wine prefix"; exit 1; }
  log "wineboot failed (try $try); again"
  wineserver -k 2>/dev/null || true
  sleep 2
done
# One server for the whole run: each test would otherwise pay its start-up.
# Its helper processes (services.exe and co.) start with the first program
# and keep that program's stdout and stderr: start them here, on /dev/null,
# or meson would wait for the end of the first test's output for ever.
wineserver -p
wine wineboot </dev/null >/dev/null 2>&1

log "running the tests"
meson test -C "$build" --print-errorlogs --timeout-multiplier 3
