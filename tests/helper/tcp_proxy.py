#!/usr/bin/env python3
"""A fault-injecting TCP proxy, on 127.0.0.1 only.

    tcp_proxy.py PORTFILE TARGET_PORT [--delay SECS]

Every connection accepted on its port is forwarded to 127.0.0.1:TARGET_PORT,
both ways. The port it listens on is written to PORTFILE, one line, once it
listens (the file appears whole: written aside, then renamed).

Modes, switched by signals at any time, for existing and new connections:
  pass        (at first; SIGUSR2) bytes are forwarded as they come
  black-hole  (SIGUSR1) like a partition that drops every packet: the
              proxy neither reads nor writes nor closes anything, so nothing
              reaches either side, not even a close. New connections are
              accepted and connected upstream, and are as silent. Nothing
              is dropped: what was sent meanwhile waits in the socket
              buffers and flows on after SIGUSR2, as TCP would retransmit
              it once the partition heals.
  slow        (SIGHUP) each chunk read is forwarded --delay SECS (default
              1.0) after it was read, in order per direction (a request and
              its answer: twice SECS)

Signals are taken in the order they arrive, but signals sent at once may
arrive lowest number first (SIGHUP 1, SIGUSR1 10, SIGUSR2 12): leave the
proxy a moment (0.1 s) between two.

A connection ends when one side closes or fails: what was read from that
side is forwarded first (after a clean close), then both are closed. If
TARGET_PORT refuses, the client is closed. At most 4 MiB wait per
direction; beyond that the proxy stops reading that side.

SIGTERM (or SIGINT) closes everything and exits 0."""
import argparse
import collections
import os
import select
import signal
import socket
import sys
import time

PASS, BLACK, SLOW = "pass", "black-hole", "slow"
MODES = {signal.SIGUSR1: BLACK, signal.SIGUSR2: PASS, signal.SIGHUP: SLOW}
STOP = (signal.SIGTERM, signal.SIGINT)
LIMIT = 4 << 20


def on_signal(signum, frame):
    pass  # taken from the wakeup pipe, in the order they came


class Flow:
    """One direction: chunks read from src, (time read, bytes), for dst."""

    def __init__(self, src, dst):
        self.src, self.dst = src, dst
        self.chunks = collections.deque()
        self.size = 0
        self.eof = False


class Conn:
    def __init__(self, client, target_port):
        up = socket.socket()
        up.setblocking(False)
        up.connect_ex(("127.0.0.1", target_port))
        for s in (client, up):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socks = (client, up)
        self.flows = (Flow(client, up), Flow(up, client))
        self.closed = False

    def close(self):
        self.closed = True
        for s in self.socks:
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("portfile")
    ap.add_argument("target_port", type=int)
    ap.add_argument("--delay", type=float, default=1.0)
    args = ap.parse_args()

    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    for s in STOP + tuple(MODES):
        signal.signal(s, on_signal)

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    lsock.setblocking(False)
    tmp = args.portfile + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{lsock.getsockname()[1]}\n")
    os.rename(tmp, args.portfile)

    conns = []
    mode = PASS
    while True:
        try:
            for signum in os.read(rfd, 512):
                if signum in STOP:
                    for c in conns:
                        c.close()
                    lsock.close()
                    return 0
                mode = MODES.get(signum, mode)
        except BlockingIOError:
            pass
        now = time.monotonic()
        lag = args.delay if mode == SLOW else 0.0
        timeout = None
        want = {rfd: select.POLLIN, lsock.fileno(): select.POLLIN}
        owner = {}
        if mode != BLACK:
            for c in conns:
                for fl in c.flows:
                    if not fl.eof and fl.size < LIMIT:
                        want[fl.src.fileno()] = want.get(fl.src.fileno(), 0) | select.POLLIN
                    if fl.chunks:
                        wait = fl.chunks[0][0] + lag - now
                        if wait <= 0:
                            want[fl.dst.fileno()] = want.get(fl.dst.fileno(), 0) | select.POLLOUT
                        elif timeout is None or wait < timeout:
                            timeout = wait
                for s in c.socks:
                    owner[s.fileno()] = c
        poller = select.poll()
        for fd, ev in want.items():
            poller.register(fd, ev)
        events = poller.poll(None if timeout is None else timeout * 1000 + 1)
        if any(fd == rfd for fd, ev in events):
            continue  # a signal: decide again
        now = time.monotonic()
        for fd, ev in events:
            if fd == lsock.fileno():
                while True:
                    try:
                        client, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    except OSError:
                        time.sleep(0.1)  # e.g. out of descriptors: later
                        break
                    try:
                        conns.append(Conn(client, args.target_port))
                    except OSError:
                        client.close()
            else:
                c = owner[fd]
                if c.closed:
                    continue
                try:
                    for fl in c.flows:
                        if fl.src.fileno() == fd and ev & ~select.POLLOUT \
                                and want[fd] & select.POLLIN:
                            data = fl.src.recv(65536)
                            if data:
                                fl.chunks.append((now, data))
                                fl.size += len(data)
                            else:
                                fl.eof = True
                        if fl.dst.fileno() == fd and ev & ~select.POLLIN \
                                and want[fd] & select.POLLOUT:
                            while fl.chunks and fl.chunks[0][0] + lag <= now:
                                t, data = fl.chunks[0]
                                n = fl.dst.send(data)
                                fl.size -= n
                                if n < len(data):
                                    fl.chunks[0] = (t, data[n:])
                                    break
                                fl.chunks.popleft()
                except BlockingIOError:
                    pass
                except OSError:
                    c.close()
        for c in conns:
            if not c.closed and any(fl.eof and not fl.chunks for fl in c.flows):
                c.close()
        conns = [c for c in conns if not c.closed]


if __name__ == "__main__":
    sys.exit(main())
