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
- The recipes do what they say, run as documented (only their durations
  shortened): the hook-started helper runs once per machine while its
  hung child is killed; the queued sync runs once more behind a running
  one however many prompts come; the flaky job is retried after a
  timeout, in one run.

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
         if "~/.cache/sync." in b]
hooks += [("man page", b) for b in man_examples(man) if "~/.cache/sync." in b]
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

# ------------------------------------------------------------- recipes
def marked_alive(marker):
    """Pids of live processes whose environment holds MARKER."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if marker.encode() in f.read().split(b"\0"):
                    found.append(int(d))
        except OSError:
            pass
    return found


def wait_for(pred, secs):
    deadline = time.time() + secs
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def runs_left(state):
    return any(n.endswith(".run") for n in os.listdir(state)) if os.path.isdir(state) else False


def recipe_env(tmp, tag):
    home = os.path.join(tmp, "home")
    os.makedirs(home, exist_ok=True)
    env = clean_env(home)
    env["CTRUN_STATE_DIR"] = os.path.join(tmp, "state")
    env["RECIPE_MARK"] = tag
    return env, home


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# (1) A helper started from a hook once per machine, its children bounded.
HELPER = """import os, subprocess, sys, time
with open("helper.pids", "a") as f:
    f.write(f"{os.getpid()}\\n")
hung = subprocess.Popen(["sleep", "300"])
for i in range(40):
    print("tick", i, "hung child", "alive" if hung.poll() is None else "gone", flush=True)
    time.sleep(0.1)
"""
helpers = [("README", b) for b in blocks(section(readme, "In a bash hook"), "sh") if "ctx-monitor" in b]
helpers += [("man page", b) for b in man_examples(man) if "ctx-monitor" in b]
if len(helpers) < 2:
    fail("no ctx-monitor helper recipe in README and man page")
# The generic POSIX build has no process table, and refuses --child-timeout.
probe = subprocess.run([ctrun, "--child-timeout", "1h", "--", "true"], capture_output=True,
                       text=True, env=clean_env(tempfile.gettempdir()), timeout=60)
if probe.returncode == 125 and "process table" in probe.stderr:
    print("check_examples: this build has no process table: the helper recipe is not run")
    helpers = []
for where, script in helpers:
    if "--child-timeout 30s" not in script or "--on-busy=skip" not in script or " -d " not in script:
        fail(f"{where} helper recipe lost its -d, --on-busy=skip or --child-timeout 30s")
        continue
    with tempfile.TemporaryDirectory(prefix="ctrun-recipe.") as tmp:
        tag = f"helper{os.getpid()}"
        env, home = recipe_env(tmp, tag)
        with open(os.path.join(tmp, "helper.py"), "w") as f:
            f.write(HELPER)
        fast = script.replace("--child-timeout 30s", "--child-timeout 1s")
        for i in range(3):  # three prompts: one helper
            code, out, err = run_shell("set -e\n" + fast, tmp, env)
            if code != 0:
                fail(f"{where} helper recipe, prompt {i + 1}: exit {code}: {err.strip()}")
        log = os.path.join(home, ".cache", "ctx-monitor.log")
        if not wait_for(lambda: " end: " in read_text(log), 30):
            fail(f"{where} helper recipe: the helper's run never ended: {read_text(log)!r}")
        text = read_text(log)
        pids = read_text(os.path.join(tmp, "helper.pids")).split()
        if len(pids) != 1:
            fail(f"{where} helper recipe: {len(pids)} helpers ran for three prompts, not one")
        m = re.search(r"killed hung child sleep \(pid \d+\) after 1s", text)
        if m is None or "hung child gone" not in text[m.end():] or " end: exit 0 " not in text:
            fail(f"{where} helper recipe: the hung child was not killed while the helper ran on: "
                 f"{text[-600:]!r}")
        wait_for(lambda: not runs_left(env["CTRUN_STATE_DIR"]), 20)
        # The supervisor itself goes a moment after its end line (it still
        # writes the report and the history): given that, nothing stays.
        if not wait_for(lambda: not marked_alive(f"RECIPE_MARK={tag}"), 10):
            fail(f"{where} helper recipe left processes behind")

# (2) A sync after every prompt: ten prompts while one sync runs make
# exactly one more sync, after it.
queues = [("README", b) for b in blocks(section(readme, "In a bash hook"), "sh")
          if "--on-busy=queue" in b]
queues += [("man page", b) for b in man_examples(man) if "--on-busy=queue" in b]
if len(queues) < 2:
    fail("no --on-busy=queue sync recipe in README and man page")
for where, script in queues:
    with tempfile.TemporaryDirectory(prefix="ctrun-recipe.") as tmp:
        tag = f"queue{os.getpid()}"
        env, home = recipe_env(tmp, tag)
        for name in ("sync-contexts", "sync.sh"):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write("#!/bin/sh\necho start >> syncs\nsleep 1\necho synced\n")
            os.chmod(path, 0o755)
        t0 = time.time()
        for i in range(10):
            code, out, err = run_shell("set -e\n" + script, tmp, env)
            if code != 0:
                fail(f"{where} queue recipe, prompt {i + 1}: exit {code}: {err.strip()}")
        if time.time() - t0 > 8:
            fail(f"{where} queue recipe: ten prompts took {time.time() - t0:.1f}s: they waited")
        wait_for(lambda: not runs_left(env["CTRUN_STATE_DIR"]) and
                 read_text(os.path.join(tmp, "syncs")).count("start") >= 2, 30)
        wait_for(lambda: not runs_left(env["CTRUN_STATE_DIR"]), 30)
        syncs = read_text(os.path.join(tmp, "syncs")).count("start")
        if syncs != 2:
            fail(f"{where} queue recipe: {syncs} syncs for ten prompts during one, not 2")
        if not wait_for(lambda: not marked_alive(f"RECIPE_MARK={tag}"), 10):
            fail(f"{where} queue recipe left processes behind")

# (3) A flaky scheduled job: a timeout is retried, in one run.
flaky = []
for where, tab in [("README", b) for b in blocks(readme, "crontab")] + \
        [("man page", b) for b in man_examples(man)]:
    for line in tab.splitlines():
        m = SCHEDULE.match(line)
        if m and "--retry" in line:
            flaky.append((where, shlex.split(m.group(1))))
if len(flaky) < 2:
    fail("no flaky-job crontab line with --retry in README and man page")
for where, argv in flaky:
    with tempfile.TemporaryDirectory(prefix="ctrun-recipe.") as tmp:
        env, home = recipe_env(tmp, f"flaky{os.getpid()}")
        job = argv[-1]
        with open(os.path.join(tmp, os.path.basename(job)), "w") as f:
            # The first try hangs past -t; the second works.
            f.write("#!/bin/sh\necho try >> tries\n[ $(wc -l < tries) -ge 2 ] || sleep 30\n")
        os.chmod(os.path.join(tmp, os.path.basename(job)), 0o755)
        args = [ctrun] + [os.path.join(tmp, "fetch.lock") if a.startswith("/tmp/") else
                          "1s" if a == "2m" else a for a in argv[1:]]
        p = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, timeout=60)
        tries = read_text(os.path.join(tmp, "tries")).count("try")
        if p.returncode != 0 or tries != 2 or "retrying in" not in p.stderr:
            fail(f"{where} flaky-job recipe: exit {p.returncode} after {tries} tries: {p.stderr!r}")

print(f"check_examples: {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
