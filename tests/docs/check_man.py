#!/usr/bin/env python3
"""The man page as people read it: render man/ctrun.1 at 80 columns with
mandoc (-Tutf8 -Owidth=80) and, where it is installed, man-db's `man -l`
(groff), and fail on any rendered line wider than 80 columns (an example
that a terminal would wrap) or on a doubled backslash (an escape written
twice, such as \\e\\e for one backslash).

Usage: check_man.py MANPAGE [--require-man]
Exit 77 (skipped) when mandoc is missing; with --require-man, fail when
man -l is missing too."""
import os
import re
import shutil
import subprocess
import sys
import unicodedata

WIDTH = 80

def columns(line):
    line = line.expandtabs(8)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)

def plain(text):
    """Drop overstrike (bold, underline) and SGR escapes: what is seen."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    while True:
        stripped = re.sub(r"[^\x08]\x08", "", text)
        if stripped == text:
            return text
        text = stripped

def render(argv, env=None):
    p = subprocess.run(argv, capture_output=True, env=env)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace").strip()
    if p.returncode != 0 or not out.strip():
        sys.exit(f"check_man: {' '.join(argv)} failed ({p.returncode}): {err}")
    return plain(out), err

def problems(name, text):
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        if columns(line) > WIDTH:
            found.append(f"{name}: line {n} is {columns(line)} columns wide: {line.strip()}")
        if "\\\\" in line:
            found.append(f"{name}: line {n} has a doubled backslash: {line.strip()}")
    return found

def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    require_man = "--require-man" in sys.argv[1:]
    if len(args) != 1:
        sys.exit(__doc__)
    page = os.path.abspath(args[0])
    if shutil.which("mandoc") is None:
        print("check_man: mandoc is not installed; skipped")
        return 77
    found, renderers = [], []
    text, _ = render(["mandoc", "-Tutf8", f"-Owidth={WIDTH}", page])
    found += problems("mandoc -Tutf8 -Owidth=80", text)
    renderers.append("mandoc")
    if shutil.which("man") is not None:
        env = dict(os.environ, MANWIDTH=str(WIDTH), MANPAGER="cat", PAGER="cat",
                   LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="0")
        env.pop("MANOPT", None)
        text, err = render(["man", "-l", page], env)
        found += problems("man -l (MANWIDTH=80)", text)
        if err:
            found.append(f"man -l: {err}")
        renderers.append("man -l")
    elif require_man:
        found.append("man -l: man is not installed")
    for f in found:
        print(f)
    print(f"check_man: {os.path.basename(page)} rendered by {' and '.join(renderers)}: "
          f"{len(found)} problem(s)")
    return 1 if found else 0

sys.exit(main())
