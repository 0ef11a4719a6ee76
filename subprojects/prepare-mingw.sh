#!/usr/bin/env bash
# Prepare the libuv, cmocka and hiredis subprojects for the mingw-w64
# cross build from Debian's source packages: subprojects/prepare.sh does
# the work.
#
# Usage (from the repository top):
#   bash subprojects/prepare-mingw.sh [--force]
exec bash "$(dirname "${BASH_SOURCE[0]}")/prepare.sh" "$@" libuv cmocka hiredis
