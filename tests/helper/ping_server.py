#!/usr/bin/env python3
"""A recording HTTP(S) server for the --ping tests, on 127.0.0.1 only.

Each request is one line in LOG, written (and flushed) as it arrives:

    SEQ ARRIVED METHOD PATH?QUERY BODYLEN

ARRIVED in seconds since the epoch; the body itself goes to LOG.body.SEQ.
The port it listens on is written to PORTFILE once it listens (the file
appears whole: written aside, then renamed).

Options:
  --delay SECS        answer every request after SECS
  --delay-start SECS  answer requests to .../start after SECS
  --status N          answer N (default 200)
  --tls CERT KEY      HTTPS with this certificate chain and key

It runs until killed (SIGTERM)."""
import argparse
import http.server
import os
import ssl
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("portfile")
    ap.add_argument("log")
    ap.add_argument("--delay", type=float, default=0)
    ap.add_argument("--delay-start", type=float, default=0)
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()

    lock = threading.Lock()
    seq = [0]
    log = open(args.log, "a", encoding="ascii")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # no chatter on stderr
            pass

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n > 0 else b""
            with lock:
                seq[0] += 1
                k = seq[0]
                with open(f"{args.log}.body.{k}", "wb") as f:
                    f.write(body)
                log.write(f"{k} {time.time():.3f} {self.command} {self.path} {len(body)}\n")
                log.flush()
            delay = args.delay
            if self.path.split("?", 1)[0].endswith("/start"):
                delay = max(delay, args.delay_start)
            if delay > 0:
                time.sleep(delay)
            text = b"OK" if args.status == 200 else b"error"
            try:
                self.send_response(args.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except OSError:
                pass  # the client gave up first

        do_GET = do_POST = do_HEAD = handle_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    tmp = args.portfile + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(tmp, args.portfile)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
