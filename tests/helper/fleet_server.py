#!/usr/bin/env python3
"""A real Redis or PostgreSQL server for a test, on 127.0.0.1 only.

    fleet_server.py KIND DIR PORTFILE [--appendonly]

KIND is redis or postgres. DIR must exist; everything the server keeps
lives in it (use short paths: Unix socket paths are limited to 107 bytes).

  redis     redis-server --port P --bind 127.0.0.1 --dir DIR --save ''
            --daemonize no --unixsocket DIR/redis.sock --unixsocketperm 700
            --logfile DIR/redis.log, and --appendonly yes --appendfsync always
            with --appendonly (the keys survive a kill and restart),
            --appendonly no without. Ready once PING answers +PONG (20 s).
  postgres  initdb (highest /usr/lib/postgresql/*/bin) -U postgres
            --auth=trust -E UTF8 --locale=C --no-sync into DIR/pgdata, its
            output in DIR/initdb.log; then postgres -D DIR/pgdata -p P
            -c listen_addresses=127.0.0.1
            -c unix_socket_directories=DIR/pgsock -c fsync=off
            -c full_page_writes=off (a commit is written before it is
            answered: a lease survives a kill and restart)
            -c max_connections=200 -c logging_collector=off, its output in
            DIR/postgres.log (initdb is skipped when DIR/pgdata already
            holds a cluster). Superuser postgres, no password, database
            postgres. Ready once a startup packet is answered with
            authentication (not "starting up"), 30 s. As root, both run as
            nobody:nogroup: DIR gets o+x, DIR/pgdata and DIR/pgsock belong
            to nobody.

The port P is a free one, chosen anew (up to 3 times) if the first start
dies. Once the server is ready PORTFILE holds one line (the file appears
whole: written aside, then renamed):

    PORT SERVERPID

SERVERPID is redis-server or the postmaster itself, to SIGSTOP, SIGCONT or
SIGKILL it directly. The server runs in a session of its own and gets
SIGKILL should this helper die.

Signals:
  SIGTERM, SIGINT, SIGHUP  stop the server (redis SIGTERM, postgres SIGINT,
                           a fast shutdown; SIGKILL after 10 s), exit 0
  SIGUSR1                  SIGKILL the server and all its processes, start
                           it again on the same port with the same data
                           (postgres recovers from its crash), rewrite
                           PORTFILE with the new pid once it is ready (wait
                           for the pid to change); several SIGUSR1 close
                           together may make one restart

Exit status: 0 when stopped by a signal; 77, with one line on stderr, if
the server cannot be started at first; 1, with one line on stderr, if it
dies on its own or a restart fails. No server process outlives it."""
import argparse
import ctypes
import glob
import os
import pwd
import select
import signal
import socket
import struct
import subprocess
import sys
import time

STOP = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
got = {"stop": False, "usr1": 0}


class Stopped(Exception):
    pass


class Failed(Exception):
    pass


def on_signal(signum, frame):
    if signum in STOP:
        got["stop"] = True
    elif signum == signal.SIGUSR1:
        got["usr1"] += 1


_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent():  # in the child, after any change of user
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_line(path):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(empty log)"
    except OSError:
        return "(no log)"


def redis_ready(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def postgres_ready(port):
    params = b"user\0postgres\0database\0postgres\0\0"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
            ok = s.recv(1) == b"R"  # authentication, not an error
            s.sendall(b"X\0\0\0\4")
            return ok
    except OSError:
        return False


class Server:
    def __init__(self, kind, dir, appendonly):
        self.kind = kind
        self.dir = os.path.realpath(dir)
        if not os.path.isdir(self.dir):
            raise Failed(f"no directory {dir}")
        self.proc = None
        self.port = None
        self.cred = {}
        if kind == "redis":
            self.log = os.path.join(self.dir, "redis.log")
            self.stopsig = signal.SIGTERM
            self.timeout = 20
            self.ready = redis_ready
            if not os.access("/usr/bin/redis-server", os.X_OK):
                raise Failed("redis-server missing")
        else:
            self.log = os.path.join(self.dir, "postgres.log")
            self.stopsig = signal.SIGINT
            self.timeout = 30
            self.ready = postgres_ready
            bins = glob.glob("/usr/lib/postgresql/*/bin/postgres")
            if not bins:
                raise Failed("postgres missing")
            self.bin = os.path.dirname(max(bins, key=lambda b: int(b.split("/")[4])))
            self.pgdata = os.path.join(self.dir, "pgdata")
            self.pgsock = os.path.join(self.dir, "pgsock")
        self.appendonly = appendonly

    def argv(self):
        if self.kind == "redis":
            return (["/usr/bin/redis-server", "--port", str(self.port),
                    "--bind", "127.0.0.1", "--dir", self.dir, "--save", "",
                    "--daemonize", "no",
                    "--unixsocket", os.path.join(self.dir, "redis.sock"),
                    "--unixsocketperm", "700", "--logfile", self.log]
                    + (["--appendonly", "yes", "--appendfsync", "always"]
                       if self.appendonly else ["--appendonly", "no"]))
        return [os.path.join(self.bin, "postgres"), "-D", self.pgdata,
                "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", "unix_socket_directories=" + self.pgsock,
                "-c", "fsync=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200",
                "-c", "logging_collector=off"]

    def prepare(self):
        if os.geteuid() == 0:  # postgres refuses to run as root
            self.cred = {"user": "nobody", "group": "nogroup", "extra_groups": []}
            nobody = pwd.getpwnam("nobody")
            os.chmod(self.dir, os.stat(self.dir).st_mode | 0o001)
        for d in (self.pgdata, self.pgsock):
            os.makedirs(d, mode=0o700, exist_ok=True)
            if self.cred:
                os.chown(d, nobody.pw_uid, nobody.pw_gid)
        if os.path.exists(os.path.join(self.pgdata, "PG_VERSION")):
            return
        log = os.path.join(self.dir, "initdb.log")
        with open(log, "wb") as out:
            try:
                r = subprocess.run(
                    [os.path.join(self.bin, "initdb"), "-U", "postgres",
                     "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync",
                     "-D", self.pgdata],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    cwd=self.dir, start_new_session=True,
                    preexec_fn=die_with_parent, timeout=120, **self.cred)
            except subprocess.TimeoutExpired:
                raise Failed("initdb failed: timed out")
        if r.returncode != 0:
            raise Failed("initdb failed: " + last_line(log))

    def spawn(self):
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                cwd=self.dir, start_new_session=True,
                preexec_fn=die_with_parent, **self.cred)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if got["stop"]:
                raise Stopped()
            if self.proc.poll() is not None:
                return False
            if self.ready(self.port):
                return True
            time.sleep(0.1)
        raise Failed(f"{self.kind} not ready in {self.timeout} s: "
                     + last_line(self.log))

    def start(self):
        if self.kind == "postgres":
            self.prepare()
        for _ in range(3):
            self.port = free_port()
            if self.spawn():
                return
            self.kill()
        raise Failed(f"{self.kind} died at start: " + last_line(self.log))

    def restart(self):
        self.kill()
        if not self.spawn():
            self.kill()
            raise Failed(f"{self.kind} died at restart: " + last_line(self.log))

    def members(self):
        """Live processes of this server: its process group and, for
        postgres, whatever keeps its cwd in pgdata (the postmaster's children
        make sessions of their own)."""
        found = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat", "rb") as f:
                    stat = f.read().rsplit(b")", 1)[1].split()
                if stat[0] == b"Z":
                    continue
                if int(stat[2]) == self.proc.pid or (
                        self.kind == "postgres"
                        and os.readlink(f"/proc/{p}/cwd") == self.pgdata):
                    found.append(int(p))
            except (OSError, IndexError, ValueError):
                pass
        return found

    def kill(self):
        if self.proc is None:
            return
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is None:  # not reaped: the pid is still its
                os.kill(self.proc.pid, signal.SIGKILL)
            left = self.members()
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.proc = None

    def stop(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                os.kill(p.pid, self.stopsig)
                os.kill(p.pid, signal.SIGCONT)  # in case the test stopped it
                p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


def write_portfile(path, server):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{server.port} {server.proc.pid}\n")
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=("redis", "postgres"))
    ap.add_argument("dir")
    ap.add_argument("portfile")
    ap.add_argument("--appendonly", action="store_true")
    args = ap.parse_args()

    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    for s in STOP + (signal.SIGUSR1, signal.SIGCHLD):
        signal.signal(s, on_signal)

    server = None
    try:
        try:
            server = Server(args.kind, args.dir, args.appendonly)
            server.start()
        except (Failed, OSError) as e:
            print(f"fleet_server: {e}", file=sys.stderr)
            return 77
        write_portfile(args.portfile, server)
        restarts = 0
        while True:
            select.select([rfd], [], [], 1.0)
            try:
                os.read(rfd, 512)
            except BlockingIOError:
                pass
            if got["stop"]:
                return 0
            if restarts < got["usr1"]:  # a few at once make one restart
                restarts = got["usr1"]
                try:
                    server.restart()
                except (Failed, OSError) as e:
                    print(f"fleet_server: {e}", file=sys.stderr)
                    return 1
                write_portfile(args.portfile, server)
                continue
            if server.proc.poll() is not None:
                rc = server.proc.returncode
                how = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
                print(f"fleet_server: {args.kind} died ({how})", file=sys.stderr)
                return 1
    except Stopped:
        return 0
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
