#!/usr/bin/env python3
"""The FreeBSD and DragonFly backend (src/unix/freebsd.c) against what
FreeBSD's own definitions say, as far as Debian's packages carry them: no
Debian or npm package ships FreeBSD's C headers (Zig 0.11 bundles no
FreeBSD libc), so the file cannot be compiled here.  What is checked:

- against the Rust libc crate (Debian's librust-libc-dev), whose FreeBSD
  and DragonFly definitions are transcribed from those systems' headers
  and tested against them upstream: every system constant the file uses
  exists, for the system whose branch uses it; every kinfo_proc field
  exists in that system's struct kinfo_proc (FreeBSD 12, 13 and 14), with
  the type the code assumes; procctl, sysctl and sysctlbyname exist; and
  every name tested by #ifdef exists on one of the two systems (a
  misspelt #ifdef would silently drop a feature);
- against FreeBSD's manual pages (Debian's freebsd-manpages): the headers
  procctl(2) and sysctl(3) name are included, the procctl commands and
  sysctl names used are documented, PROC_PDEATHSIG_CTL takes a pointer
  to an int, and KERN_BOOTTIME is a struct timeval.

Usage: freebsd-names.py SOURCE LIBC_CRATE MAN_DIR
  SOURCE      src/unix/freebsd.c
  LIBC_CRATE  the crate's directory (.../registry/libc-0.2.*)
  MAN_DIR     the manual's top (/usr/share/man: man2/procctl.2freebsd.gz,
              man3/sysctl.3freebsd.gz)
"""
import glob
import gzip
import os
import re
import sys

if len(sys.argv) != 4:
    sys.exit(__doc__)
source_path, crate, man_dir = sys.argv[1:]
bsd = os.path.join(crate, "src", "unix", "bsd")
problems = []


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def rust_files(system):
    """The crate's files that define SYSTEM's names (freebsd or dragonfly)."""
    files = [os.path.join(crate, "src", "unix", "mod.rs"), os.path.join(bsd, "mod.rs"),
             os.path.join(bsd, "freebsdlike", "mod.rs")]
    files += glob.glob(os.path.join(bsd, "freebsdlike", system, "**", "*.rs"), recursive=True)
    return files


def consts(system):
    """Constants, and the members of C enums (DragonFly's SZOMB is one)."""
    names = set()
    for f in rust_files(system):
        text = read(f)
        names |= set(re.findall(r"^\s*pub const (\w+)\s*:", text, re.M))
        for body in re.findall(r"\bpub enum \w+ \{(.*?)\}", text, re.S):
            names |= set(re.findall(r"^\s*(\w+)\s*(?:=[^,]*)?,", body, re.M))
    return names


def functions(system):
    names = set()
    for f in rust_files(system):
        names |= set(re.findall(r"\bpub fn (\w+)\s*\(", read(f)))
    return names


def kinfo_fields(path):
    text = read(path)
    m = re.search(r"pub struct kinfo_proc \{(.*?)\n\s*\}", text, re.S)
    if m is None:
        sys.exit(f"freebsd-names: no struct kinfo_proc in {path}")
    return dict(re.findall(r"pub (\w+):\s*([^,]+),", m.group(1)))


def strip(code):
    """Comments and string literals out: only code is read for names."""
    code = re.sub(r"/\*.*?\*/", " ", code, flags=re.S)
    code = re.sub(r"//[^\n]*", " ", code)
    return re.sub(r'"(\\.|[^"\\])*"', '""', code)


def branch(code, defined):
    """The code a preprocessor keeps where DEFINED(name) answers #ifdef;
    any other #if keeps both sides."""
    out, stack = [], []  # stack of (kind, keeping)
    keep = True
    for line in code.splitlines():
        s = line.strip()
        m = re.match(r"#\s*if(n?)def\s+(\w+)", s)
        if m:
            stack.append(("ifdef", keep))
            cond = defined(m.group(2))
            keep = keep and (cond if m.group(1) == "" else not cond)
            continue
        if re.match(r"#\s*if\b", s):
            stack.append(("if", keep))
            continue
        if re.match(r"#\s*else\b", s):
            kind, outer = stack[-1]
            if kind == "ifdef":
                keep = outer and not keep
            continue
        if re.match(r"#\s*endif\b", s):
            kind, outer = stack.pop()
            keep = outer
            continue
        if keep:
            out.append(line)
    return "\n".join(out)


source = strip(read(source_path))
local = set(re.findall(r"#\s*define\s+(\w+)", source))
# Names that are not the system's: ours, libuv's, C's, the flavor tests.
ours = re.compile(r"^(UV_\w+|KP_\w+|NULL|__DragonFly__|__FreeBSD__)$")
flavors = {
    "freebsd": {"consts": consts("freebsd"), "fns": functions("freebsd"),
                "kinfo": [os.path.join(bsd, "freebsdlike", "freebsd", f"freebsd{v}", "mod.rs")
                          for v in (12, 13, 14)]},
    "dragonfly": {"consts": consts("dragonfly"), "fns": functions("dragonfly"),
                  "kinfo": [os.path.join(bsd, "freebsdlike", "dragonfly", "mod.rs")]},
}
# What the code assumes of each field it reads.
field_types = {
    "ki_pid": "::pid_t", "ki_ppid": "::pid_t", "ki_pgid": "::pid_t", "ki_stat": "::c_char",
    "ki_start": "::timeval", "ki_structsize": "::c_int",
    "kp_pid": "::pid_t", "kp_ppid": "::pid_t", "kp_pgid": "::pid_t", "kp_start": "::timeval",
    # NUL-terminated names, read with "%s".
    "ki_comm": "[::c_char; ::COMMLEN + 1]", "kp_comm": "[::c_char; MAXCOMLEN+1]",
}

checked = {}
for system, f in flavors.items():
    code = branch(source, lambda n, f=f, system=system:
                  n == "__DragonFly__" and system == "dragonfly" or n in f["consts"])
    used = {n for n in re.findall(r"\b[A-Z_][A-Z0-9_]{2,}\b", code)
            if not ours.match(n) and n not in local}
    for n in sorted(used - f["consts"]):
        problems.append(f"{system}: {n} is not a {system} constant")
    # Local macros expand to these fields; read them from the #defines too.
    fields = set(re.findall(r"\b((?:ki|kp)_\w+)\b", code))
    prefix = "kp_" if system == "dragonfly" else "ki_"
    fields = {x for x in fields if x.startswith(prefix)}
    for path in f["kinfo"]:
        have = kinfo_fields(path)
        rel = os.path.relpath(path, crate)
        for x in sorted(fields):
            if x not in have:
                problems.append(f"{system}: struct kinfo_proc has no {x} ({rel})")
            elif x in field_types and have[x].strip() != field_types[x]:
                problems.append(f"{system}: kinfo_proc.{x} is {have[x].strip()}, "
                                f"the code takes it for {field_types[x]} ({rel})")
    for fn in ("sysctl", "sysctlbyname", "procctl"):
        if re.search(r"\b" + fn + r"\s*\(", code) and fn not in f["fns"]:
            problems.append(f"{system}: no function {fn}")
    checked[system] = (len(used), len(fields))

# Every #ifdef tests a name that exists somewhere: a misspelt one would
# silently turn a feature off.
for n in sorted(set(re.findall(r"#\s*ifn?def\s+(\w+)", source))):
    if not ours.match(n) and not any(n in f["consts"] for f in flavors.values()):
        problems.append(f"#ifdef {n}: no such name on FreeBSD or DragonFly")

# The manual pages.
def man(name):
    with gzip.open(os.path.join(man_dir, "man" + name.split(".")[1][0], name), "rt", encoding="utf-8", errors="replace") as f:
        return f.read()

includes = set(re.findall(r"#\s*include\s*<([^>]+)>", read(source_path)))
if "sys/param.h" in includes:
    includes.add("sys/types.h")  # <sys/param.h> includes it, on every BSD
procctl, sysctl = man("procctl.2freebsd.gz"), man("sysctl.3freebsd.gz")
for page, text in (("procctl(2)", procctl), ("sysctl(3)", sysctl)):
    synopsis = re.search(r"^\.Sh SYNOPSIS\n(.*?)^\.Sh ", text, re.M | re.S).group(1)
    for h in re.findall(r"^\.In (\S+)", synopsis, re.M):
        if h not in includes:
            problems.append(f"{page} wants <{h}>, which freebsd.c does not include")
for n in ("PROC_REAP_ACQUIRE", "PROC_PDEATHSIG_CTL"):
    if not re.search(r"^\.It Dv " + n + r"\b", procctl, re.M):
        problems.append(f"procctl(2) does not document {n}")
m = re.search(r"^\.It Dv PROC_PDEATHSIG_CTL\n(.*?)^\.It ", procctl, re.M | re.S)
if m is None or not re.search(r"must point to a value of type\s+\.Vt int", m.group(1)):
    problems.append("procctl(2): PROC_PDEATHSIG_CTL's argument is not documented as an int")
for n in ("KERN_PROC", "KERN_PROC_PID", "KERN_BOOTTIME"):
    if not re.search(r"^\.It Dv " + n + r"\b", sysctl, re.M):
        problems.append(f"sysctl(3) does not document {n}")
if not re.search(r"^\.It Dv KERN_BOOTTIME Ta struct timeval\b", sysctl, re.M):
    problems.append("sysctl(3): KERN_BOOTTIME is not a struct timeval")

for p in problems:
    print("freebsd-names:", p)
print("freebsd-names: " + ", ".join(f"{s}: {c} constants, {k} kinfo_proc fields"
                                     for s, (c, k) in checked.items())
      + f"; {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
