#!/usr/bin/env python3
"""A pipelined HTTP/1.1 exchange through `netkit forward --http-host`, split in two at every
byte boundary: once the request stream (the target must get the same rewritten bytes however
the client's stream was cut), once the response stream (the client must get every response
byte, in order, however the target's stream was cut). One connection per cut, loopback.

The exchange: GET (Content-Length answer), HEAD (a Content-Length and no body), POST chunked
with extensions and a trailer (a chunked answer with extensions and trailers), GET answered
103 then 304 with a Content-Length, POST with Expect: 100-continue and a Content-Length body
(100 then 200), GET answered 204, GET answered with a 200 KB body (the relay's splice path),
GET answered chunked with 3 chunks. Every request carries `Host: evil.test`.

    python3 http_split.py NETKIT [requests|responses|both] [BASE]   # ports BASE, BASE+1

Prints the cuts whose result differs from the whole exchange's, and a summary line.
"""
import os, signal, socket, subprocess, sys, threading, time

NAME = 'audit.example'
EVIL = b'Host: evil.test\r\n'


def requests():
    r = b''
    r += b'GET /a HTTP/1.1\r\n' + EVIL + b'\r\n'
    r += b'HEAD /b HTTP/1.1\r\n' + EVIL + b'\r\n'
    r += (b'POST /c HTTP/1.1\r\n' + EVIL + b'Transfer-Encoding: chunked\r\n\r\n'
          b'5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n')
    r += b'GET /d HTTP/1.1\r\n' + EVIL + b'\r\n'
    r += b'POST /e HTTP/1.1\r\n' + EVIL + b'Expect: 100-continue\r\nContent-Length: 4\r\n\r\nbody'
    r += b'GET /f HTTP/1.1\r\n' + EVIL + b'\r\n'
    r += b'GET /big HTTP/1.1\r\n' + EVIL + b'\r\n'
    r += b'GET /h HTTP/1.1\r\n' + EVIL + b'\r\n'
    return r


BIG = 200000


def responses():
    s = b''
    s += b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\naaa'
    s += b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'
    s += b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;e=1\r\nok\r\n0\r\nX-R: 2\r\n\r\n'
    s += b'HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n'
    s += b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nee'
    s += b'HTTP/1.1 204 No Content\r\n\r\n'
    s += b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % BIG + bytes(i % 251 for i in range(BIG))
    s += b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\na\r\n0123456789\r\n0\r\n\r\n'
    return s


REQ, RESP = requests(), responses()


def read_n(sock, n, timeout):
    sock.settimeout(timeout)
    got = b''
    end = time.time() + timeout
    try:
        while len(got) < n and time.time() < end:
            d = sock.recv(262144)
            if not d:
                break
            got += d
    except OSError:
        pass
    return got


class Backend:
    """Takes one connection per cut: reads `expect` bytes (or until quiet), then answers."""

    def __init__(self, port):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(('127.0.0.1', port))
        self.ls.listen(16)
        self.plan = None
        self.got = None
        self.done = threading.Event()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            c, _ = self.ls.accept()
            expect, cut = self.plan
            got = read_n(c, expect, 2.0) if expect else read_n(c, 1 << 30, 0.5)
            self.got = got
            try:
                if cut is None:
                    c.sendall(RESP)
                else:
                    c.sendall(RESP[:cut])
                    time.sleep(0.005)
                    c.sendall(RESP[cut:])
                time.sleep(0.05)
            except OSError:
                pass
            c.close()
            self.done.set()


def one(be, port, expect, req_cut=None, resp_cut=None):
    be.plan = (expect, resp_cut)
    be.done.clear()
    s = socket.create_connection(('127.0.0.1', port))
    if req_cut is None:
        s.sendall(REQ)
    else:
        s.sendall(REQ[:req_cut])
        time.sleep(0.005)
        s.sendall(REQ[req_cut:])
    got = read_n(s, len(RESP), 3.0)
    s.close()
    be.done.wait(5)
    return be.got, got


def main():
    netkit = sys.argv[1]
    what = sys.argv[2] if len(sys.argv) > 2 else 'both'
    base = int(sys.argv[3]) if len(sys.argv) > 3 else 18950
    be = Backend(base + 1)
    p = subprocess.Popen([netkit, '-q', 'forward', f'127.0.0.1:{base}', f'127.0.0.1:{base + 1}',
                          '--http-host', NAME], start_new_session=True)
    try:
        time.sleep(0.5)
        sent, back = one(be, base, 0)
        bad_host = sent.count(b'\r\nHost: ') != REQ.count(EVIL) or b'evil' in sent
        print(f'whole: target got {len(sent)} bytes (Hosts rewritten: {not bad_host}), '
              f'client {len(back)} of {len(RESP)} response bytes, same: {back == RESP}')
        if bad_host or back != RESP:
            print('the whole exchange already differs; cuts not run')
            return 1
        bad = 0
        if what in ('requests', 'both'):
            for i in range(1, len(REQ)):
                s, b = one(be, base, len(sent), req_cut=i)
                if s != sent or b != RESP:
                    bad += 1
                    print(f'request cut at {i}: target {len(s)} bytes (same {s == sent}), client {len(b)} (same {b == RESP})')
            print(f'request cuts: {len(REQ) - 1}, differing {bad}')
        rbad = 0
        if what in ('responses', 'both'):
            head_end = RESP.index(b'\r\n\r\n', RESP.index(b'Content-Length: %d' % BIG)) + 4
            cuts = [j for j in range(1, len(RESP)) if j < head_end + 8 or j > head_end + BIG - 8]
            for j in cuts:
                s, b = one(be, base, len(sent), resp_cut=j)
                if b != RESP:
                    rbad += 1
                    print(f'response cut at {j}: client {len(b)} of {len(RESP)} bytes, same prefix {RESP.startswith(b)}')
            print(f'response cuts: {len(cuts)}, differing {rbad}')
        return 1 if bad or rbad else 0
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(5)


if __name__ == '__main__':
    sys.exit(main())
