#!/usr/bin/env bash
# The FreeBSD and DragonFly backend, checked as far as Debian allows: no
# Debian or npm package ships FreeBSD's C headers (Zig 0.11 bundles no
# FreeBSD libc), so src/unix/freebsd.c cannot be compiled here.  Instead
# .ci/freebsd-names.py checks every system name it uses against the Rust
# libc crate's FreeBSD and DragonFly definitions (librust-libc-dev) and
# FreeBSD's manual pages (freebsd-manpages).
#
#   bash .ci/freebsd.sh            # from the top of the repository
#
# Environment: SKIP_APT=1 to skip apt-get.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${SKIP_APT:-0}" != 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends librust-libc-dev freebsd-manpages python3 >/dev/null
fi

crate="$(ls -d /usr/share/cargo/registry/libc-0.2.* | sort -V | tail -n1)"
[ -d "$crate" ] || { echo "freebsd.sh: the Rust libc crate is not installed" >&2; exit 1; }
echo "freebsd.sh: checking src/unix/freebsd.c against $(basename "$crate") and FreeBSD's manual"
python3 .ci/freebsd-names.py src/unix/freebsd.c "$crate" /usr/share/man
