#!/usr/bin/env python3
"""Docs move with code: every option of the option tables and every exit
code of include/ctrun/exit.h must appear in --help, the man page and the
README.  Fails (exit 1) naming each one that is missing."""
import re
import subprocess
import sys

ctrun, top = sys.argv[1], sys.argv[2]

def read(path):
    with open(f"{top}/{path}", encoding="utf-8") as f:
        return f.read()

options_c = read("src/options.c")
longs = sorted(set(re.findall(r'\{ *(?:\'.\'|0), *"([a-z-]+)", *[01],', options_c)))
shorts = sorted(set(re.findall(r"\{ *'(.)', *\"[a-z-]+\"", options_c)))
codes = sorted(set(int(v) for v in re.findall(r"CTRUN_EXIT_\w+ = (\d+)", read("include/ctrun/exit.h"))))

help_text = subprocess.run([ctrun, "--help"], capture_output=True, text=True, check=True).stdout
# The man page escapes minus signs; read it as a person would.
man = read("man/ctrun.1").replace("\\-", "-").replace("\\fB", "").replace("\\fR", "").replace("\\fI", "")
readme = read("README.md")
docs = {"--help": help_text, "man/ctrun.1": man, "README.md": readme}

missing = []
assert len(longs) > 20 and codes, "the option or exit-code tables were not found"
for name, text in docs.items():
    for opt in longs:
        if not re.search(r"--" + re.escape(opt) + r"\b", text):
            missing.append(f"{name}: option --{opt}")
    for opt in shorts:
        if not re.search(r"(^|[\s`\[(|,])-" + re.escape(opt) + r"\b", text, re.M):
            missing.append(f"{name}: option -{opt}")
    for code in codes:
        if not re.search(r"\b" + str(code) + r"\b", text):
            missing.append(f"{name}: exit status {code}")
for m in missing:
    print("missing:", m)
print(f"checked {len(longs)} long options, {len(shorts)} short options, {len(codes)} exit codes "
      f"in {len(docs)} documents")
sys.exit(1 if missing else 0)
