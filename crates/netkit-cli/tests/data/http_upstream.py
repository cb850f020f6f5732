#!/usr/bin/env python3
"""An HTTP/1.1 upstream for netkit's forward tests, built on Python's own http.server parser.

Binds 127.0.0.1:0 (or the Unix socket given with --unix PATH), prints "listening PORT", then
one JSON line per request it parsed on stdout:
  {"method", "target", "hosts": [every Host field], "body": bytes read}
and {"rejected": request line} for what its parser refused.

What it answers:
  GET /big?n=N          N bytes of "x"
  Upgrade to /ws...     101 Switching Protocols, then echoes raw bytes until EOF
  CONNECT HOST:443      200 when HOST is the --connect-ok host, then echoes; else 405
  CONNECT HOST:8443     200 with Content-Length: answered as any request, no tunnel
  GET /close            200 without Content-Length, a body, then the connection closes
  HEAD                  the headers of a 200 with Content-Length, no body
  anything else         200 "METHOD TARGET host=HOST"
"""
import argparse
import json
import os
import socket
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None


def log(record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def parse_request(self):
        ok = super().parse_request()
        if not ok:
            log({"rejected": getattr(self, "requestline", "")})
            return False
        self.body_len = self.read_body()
        log({
            "method": self.command,
            "target": self.path,
            "hosts": self.headers.get_all("Host") or [],
            "body": self.body_len,
        })
        return True

    def read_body(self):
        if self.command == "CONNECT":
            return 0
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                total += len(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return len(self.rfile.read(length)) if length else 0

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.serve
        raise AttributeError(name)

    def reply(self, status, body, extra=()):
        self.send_response(status)
        for key, value in extra:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def serve(self):
        if self.command == "CONNECT":
            return self.connect()
        if self.headers.get("Upgrade") and self.path.startswith("/ws"):
            return self.switch()
        if self.path == "/close":
            return self.until_close()
        if self.path.startswith("/big?n="):
            return self.big(int(self.path.split("=", 1)[1]))
        host = ",".join(self.headers.get_all("Host") or [])
        self.reply(200, f"{self.command} {self.path} host={host}\n".encode("latin-1"))

    def big(self, n):
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        chunk = b"x" * 65536
        while n > 0:
            self.wfile.write(chunk[: min(n, len(chunk))])
            n -= min(n, len(chunk))

    def until_close(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"a body that runs until the connection closes\n")
        self.wfile.flush()
        # The end of the body: a FIN; what the client sent after is read and dropped (closing
        # with it unread would reset the connection).
        self.connection.shutdown(socket.SHUT_WR)
        while self.rfile.read1(65536):
            pass
        self.close_connection = True

    def connect(self):
        if self.path.endswith(":8443"):
            return self.reply(200, b"CONNECT answered as any request\n")
        if self.path.rsplit(":", 1)[0] != ARGS.connect_ok:
            return self.reply(405, b"CONNECT refused\n")
        self.send_response(200)
        self.end_headers()
        self.tunnel()

    def switch(self):
        self.send_response(101)
        self.send_header("Upgrade", self.headers.get("Upgrade"))
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.tunnel()

    def tunnel(self):
        self.wfile.flush()
        while True:
            data = self.rfile.read1(65536)
            if not data:
                break
            log({"tunnel": len(data)})
            self.wfile.write(data)
            self.wfile.flush()
        self.close_connection = True


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class UnixHandler(Handler):
    def address_string(self):
        return "unix"


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--connect-ok", default="")
    parser.add_argument("--unix")
    ARGS = parser.parse_args()
    if ARGS.unix:
        server = UnixServer(ARGS.unix, UnixHandler)
        print("listening unix", flush=True)
    else:
        ThreadingHTTPServer.daemon_threads = True
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        if ARGS.unix:
            os.unlink(ARGS.unix)


if __name__ == "__main__":
    main()
