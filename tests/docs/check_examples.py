#!/usr/bin/env python3
"""The examples a newcomer copies first, run as that newcomer would run
them, so that each stays right:

- README's Quick start is exactly two commands (the first installs with
  --no-install-recommends, builds and runs ctrun; the second runs the whole
  test suite), and its "nothing left" check sees the example's own
  processes only: it reports a live marked process, and no unrelated
  `sleep` elsewhere on the machine.
- The bash-hook examples (README, man page) work for an account with no
  ~/.cache yet.
- The crontabs (README, man page) set a PATH that holds the directory
  `meson install` puts ctrun in, as cron's own PATH (/usr/bin:/bin) does
  not, and their `ctrun check` lines print nothing while all is well.

Usage: check_examples.py CTRUN SOURCE_ROOT BINDIR"""
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

ctrun, top, bindir = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def read(path):
    with open(os.path.join(top, path), encoding="utf-8") as f:
        return f.read()


def section(markdown, title):
    """The text of the section headed TITLE, up to the next heading of the
    same or a higher level."""
    m = re.search(r"^(#+) " + re.escape(title) + r"\s*$", markdown, re.M)
    if m is None:
        sys.exit(f"check_examples: README has no section '{title}'")
    level = len(m.group(1))
    end = re.compile(r"^#{1,%d} " % level, re.M).search(markdown, m.end())
    return markdown[m.end():end.start() if end else len(markdown)]


def blocks(markdown, lang):
    return re.findall(r"^```" + lang + r"\n(.*?)^```", markdown, re.M | re.S)


def man_examples(man):
    """The .EX/.EE blocks of the man page, as a reader sees them."""
    out = []
    for b in re.findall(r"^\.EX\n(.*?)^\.EE", man, re.M | re.S):
        b = re.sub(r"\\f[BIRP]", "", b)
        b = b.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")
        out.append(b)
    return out


def clean_env(home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CTRUN", "XDG_"))}
    env["HOME"] = home
    env["PATH"] = os.path.dirname(ctrun) + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    return env


def run_shell(script, cwd, env, timeout=60):
    p = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# ------------------------------------------------------------ Quick start
readme = read("README.md")
quick = section(readme, "Quick start")
cmds = blocks(quick, "sh")
if len(cmds) != 2 or any(len(c.strip().splitlines()) != 1 for c in cmds):
    fail(f"Quick start must be exactly two one-line commands, found: {cmds!r}")
else:
    first, second = cmds[0].strip(), cmds[1].strip()
    for needed in ("apt-get install -y --no-install-recommends", "meson setup build",
                   "meson compile -C build", "./build/ctrun"):
        if needed not in first:
            fail(f"Quick start's first command lacks '{needed}'")
    if second != "meson test -C build":
        fail(f"Quick start's second command is '{second}', not 'meson test -C build'")
    # What runs once ctrun is built: the example and its check, with a
    # marker of this test's own, so that a newcomer trying the Quick start
    # on the same machine at the same time cannot disturb it.
    after = first.split("meson compile -C build && ", 1)[-1]
    if after.count("CTRUN_QS=1") != 2:
        fail(f"Quick start: the example and its check must both use CTRUN_QS=1: {after}")
    qs = f"CTRUN_QS=test{os.getpid()}"
    after = after.replace("CTRUN_QS=1", qs)
    m = re.match(r"(.*?echo \"exit status \$\?\"; )(.*)$", after)
    if m is None:
        fail(f"Quick start: cannot find the example and its check in: {after}")
    else:
        check = m.group(2)
        with tempfile.TemporaryDirectory(prefix="ctrun-qs.") as tmp:
            os.mkdir(os.path.join(tmp, "build"))
            os.symlink(ctrun, os.path.join(tmp, "build", "ctrun"))
            env = clean_env(tmp)
            env["CTRUN_STATE_DIR"] = os.path.join(tmp, "state")
            # An unrelated sleep elsewhere on the machine must not count.
            decoy = subprocess.Popen(["sleep", "600"], env=clean_env(tmp))
            try:
                code, out, err = run_shell(after, tmp, env)
                if "exit status 124" not in out:
                    fail(f"Quick start: no 'exit status 124': {out!r} {err!r}")
                if "left running: nothing" not in out:
                    fail(f"Quick start reports a leftover with none left: {out!r}")
                # ...and the check does see a process of the example.
                marked = subprocess.Popen(["sleep", "600"],
                                          env=dict(env, CTRUN_QS=qs.split("=", 1)[1]))
                try:
                    time.sleep(0.2)
                    code, out, err = run_shell(check, tmp, env)
                    if f"/proc/{marked.pid}/" not in out:
                        fail(f"Quick start's check misses a live process of the example: {out!r}")
                finally:
                    marked.kill()
                    marked.wait()
            finally:
                decoy.kill()
                decoy.wait()

# ------------------------------------------------------ bash hook examples
man = read("man/ctrun.1")
hooks = [("README", b) for b in blocks(section(readme, "In a bash hook"), "sh")
         if "~/.cache/" in b]
hooks += [("man page", b) for b in man_examples(man) if "~/.cache/" in b]
if len(hooks) < 2:
    fail("no bash-hook example using ~/.cache in README and man page")
for where, script in hooks:
    with tempfile.TemporaryDirectory(prefix="ctrun-hook.") as tmp:
        home = os.path.join(tmp, "home")
        os.mkdir(home)  # a new account: no ~/.cache
        for name in ("sync-contexts", "sync.sh"):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write("#!/bin/sh\necho synced\n")
            os.chmod(path, 0o755)
        env = clean_env(home)
        env["CTRUN_STATE_DIR"] = os.path.join(tmp, "state")
        code, out, err = run_shell("set -e\n" + script, tmp, env)
        if code != 0:
            fail(f"{where} hook example fails for a new account (exit {code}): {err.strip()}")
            continue
        log = os.path.join(home, ".cache", "sync.log")
        deadline = time.time() + 20
        text = ""
        while time.time() < deadline:
            if os.path.exists(log):
                with open(log, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                if " end: " in text:
                    break
            time.sleep(0.05)
        if "synced" not in text or " end: exit 0 " not in text:
            fail(f"{where} hook example: the detached run did not finish well: {text!r}")
        # The detached run leaves its entry until it is gone: wait for that.
        while time.time() < deadline and any(
                n.endswith(".run") for n in os.listdir(env["CTRUN_STATE_DIR"])):
            time.sleep(0.05)

# -------------------------------------------------------------- crontabs
SCHEDULE = re.compile(r"^\s*(?:[0-9*/,-]+\s+){5}(.*)$")
crontabs = [("README", b) for b in blocks(readme, "crontab")]
crontabs += [("man page", b) for b in man_examples(man)
             if any(SCHEDULE.match(line) for line in b.splitlines())]
if len(crontabs) < 2:
    fail("no crontab example in README and man page")
for where, tab in crontabs:
    path_dirs = None
    checks = 0
    for line in tab.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"PATH\s*=\s*(.*)$", line)
        if m:
            path_dirs = m.group(1).split(":")
            continue
        m = SCHEDULE.match(line)
        if m is None:
            fail(f"{where} crontab: neither a job, a comment nor PATH=: {line}")
            continue
        argv = shlex.split(m.group(1))
        if argv[0] == "ctrun":
            if path_dirs is None or bindir not in path_dirs:
                fail(f"{where} crontab runs 'ctrun' with cron's PATH, which lacks {bindir}: {line}")
        elif argv[0] != os.path.join(bindir, "ctrun"):
            continue
        if len(argv) > 1 and argv[1] == "check":
            checks += 1
            with tempfile.TemporaryDirectory(prefix="ctrun-cron.") as tmp:
                env = clean_env(tmp)
                env["CTRUN_STATE_DIR"] = os.path.join(tmp, "state")
                p = subprocess.run([ctrun] + argv[1:], env=env, capture_output=True, text=True,
                                   timeout=60)
                if p.returncode != 0 or p.stdout or p.stderr:
                    fail(f"{where} crontab's check prints while all is well (cron mails it): "
                         f"{line} -> exit {p.returncode}, {p.stdout!r} {p.stderr!r}")
    if checks == 0:
        fail(f"{where} crontab has no 'ctrun check' line")

print(f"check_examples: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
