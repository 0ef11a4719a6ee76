#!/usr/bin/env bash
# Prepare the libuv, cmocka and hiredis subprojects from Debian's source
# packages (no WrapDB / upstream download needed), for the cross builds:
# mingw-w64 (prepare-mingw.sh) and macOS (.ci/macos.sh).
#
# Usage (from the repository top):
#   bash subprojects/prepare.sh [--force] [NAME...]
#
# NAME is libuv, cmocka or hiredis; without one, all three.  What it
# does, idempotently:
#   1. makes sure apt has deb-src entries (enables them in the existing apt
#      sources if there are none) and source indexes (apt-get update);
#   2. fetches the Debian source packages (apt-get source --download-only)
#      into a temporary directory;
#   3. extracts the upstream (.orig) tarballs, without Debian's patches, to
#      subprojects/<wrap directory> and copies the Meson overlay from
#      subprojects/packagefiles/<name>/ into each tree.
#
# Meson then finds the directories named in the .wrap files and uses them
# without downloading anything. --force re-extracts existing trees.
#
# Needs root (or sudo) for the apt steps, plus tar and xz-utils.

set -euo pipefail

# name in subprojects/ | Debian source package
all_packages=(
  "libuv:libuv1"
  "cmocka:cmocka"
  "hiredis:hiredis"
)

force=0
packages=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    -*) echo "prepare: unknown argument: $arg" >&2; exit 2 ;;
    *)
      found=
      for entry in "${all_packages[@]}"; do
        [ "${entry%%:*}" = "$arg" ] && found="$entry"
      done
      if [ -z "$found" ]; then
        echo "prepare: unknown subproject: $arg (one of: libuv cmocka hiredis)" >&2
        exit 2
      fi
      packages+=("$found") ;;
  esac
done
[ "${#packages[@]}" -gt 0 ] || packages=("${all_packages[@]}")

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"   # subprojects/

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  SUDO=()
fi

log() { echo "prepare: $*"; }

# Read "directory = NAME-VERSION" from a wrap file.
wrap_directory() {
  sed -n 's/^[[:space:]]*directory[[:space:]]*=[[:space:]]*//p' "$here/$1.wrap" | head -n1
}

# Overlay files of subprojects/packagefiles/NAME/ into DIR.
copy_overlay() {
  local name="$1" dir="$2"
  cp -R "$here/packagefiles/$name/." "$dir/"
}

# ---------------------------------------------------------------- trees done?
todo=()
for entry in "${packages[@]}"; do
  name="${entry%%:*}"
  dir="$(wrap_directory "$name")"
  if [ -z "$dir" ]; then
    echo "prepare: no 'directory' in subprojects/$name.wrap" >&2
    exit 1
  fi
  if [ "$force" -eq 0 ] && [ -f "$here/$dir/.prepared-from-debian" ]; then
    copy_overlay "$name" "$here/$dir"   # keep the overlay up to date
    log "$dir already present (overlay refreshed)"
  else
    todo+=("$entry")
  fi
done

if [ "${#todo[@]}" -eq 0 ]; then
  log "nothing to do"
  exit 0
fi

# ------------------------------------------------------------- deb-src setup
have_deb_src() {
  grep -Eqs '^[[:space:]]*Types:.*\bdeb-src\b' /etc/apt/sources.list.d/*.sources \
    || grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}

if ! have_deb_src; then
  log "no deb-src entries found, enabling them in the apt sources"
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    "${SUDO[@]}" sed -i -E 's/^([[:space:]]*Types:[[:space:]]*)deb[[:space:]]*$/\1deb deb-src/' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    grep -Eq '^[[:space:]]*deb[[:space:]]' "$f" || continue
    tmp="$(mktemp)"
    awk '{ print } /^[[:space:]]*deb[[:space:]]/ { l = $0; sub(/deb/, "deb-src", l); print l }' "$f" > "$tmp"
    "${SUDO[@]}" cp "$tmp" "$f"
    rm -f "$tmp"
  done
  shopt -u nullglob
  if ! have_deb_src; then
    echo "prepare: could not enable deb-src entries; add them by hand" >&2
    exit 1
  fi
  "${SUDO[@]}" apt-get update -qq
fi

# Source indexes may be missing even with deb-src entries (no update yet).
for entry in "${todo[@]}"; do
  if [ -z "$(apt-cache showsrc "${entry#*:}" 2>/dev/null)" ]; then
    log "source index missing, running apt-get update"
    "${SUDO[@]}" apt-get update -qq
    break
  fi
done

# ------------------------------------------------------- fetch and extract
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# apt-get source run as root downloads as the _apt user when it can write.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
  chown _apt "$work"
fi

for entry in "${todo[@]}"; do
  name="${entry%%:*}"
  srcpkg="${entry#*:}"
  dir="$(wrap_directory "$name")"
  version="${dir#"$name"-}"

  log "fetching Debian source package $srcpkg ($version)"
  (cd "$work" && apt-get source --download-only -qq "$srcpkg" >/dev/null)

  orig="$(find "$work" -maxdepth 1 -name "${srcpkg}_${version}.orig.tar.*" ! -name '*.asc' | head -n1)"
  if [ -z "$orig" ]; then
    echo "prepare: Debian's $srcpkg is not upstream version $version:" >&2
    ls "$work" >&2
    echo "prepare: update subprojects/$name.wrap and packagefiles/$name/ to match" >&2
    exit 1
  fi

  log "extracting $(basename "$orig") to subprojects/$dir"
  rm -rf "${here:?}/$dir" "$work/extract"
  mkdir -p "$work/extract"
  tar --no-same-owner -xf "$orig" -C "$work/extract"
  top=("$work"/extract/*)
  if [ "${#top[@]}" -ne 1 ] || [ ! -d "${top[0]}" ]; then
    echo "prepare: unexpected layout in $(basename "$orig")" >&2
    exit 1
  fi
  mv "${top[0]}" "$here/$dir"
  copy_overlay "$name" "$here/$dir"
  basename "$orig" > "$here/$dir/.prepared-from-debian"
done

log "done: $(for e in "${packages[@]}"; do printf 'subprojects/%s ' "$(wrap_directory "${e%%:*}")"; done)"
