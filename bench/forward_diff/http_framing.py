#!/usr/bin/env python3
"""Response framing through `--http-host` (loopback): the backend answers a first request with
an odd shape (a 204 or 304 with a Content-Length or chunked, a HEAD answered with
Transfer-Encoding, 1xx answers unasked and several in a row, a 1xx with a Content-Length, a
response with both Content-Length and chunked, chunked in an HTTP/1.0 answer, a body without
a length under keep-alive), then a second request is sent on the same connection (after the
first answer, or pipelined behind it) and answered `two`. The framing decides where the second
answer starts: the client must get the second answer whole, or a clean end, never bytes of one
taken for the other; the second request must reach the backend with the Host rewritten.
Beside a direct connection and HAProxy (mode http).
usage: http_framing.py NETKIT [BASE_PORT]
"""
import re, socket, subprocess, sys, tempfile, time

from common import haproxy_http, read_all, serve_each

NETKIT = sys.argv[1]
BASE = int(sys.argv[2]) if len(sys.argv) > 2 else 27960
TWO = b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo'
SHAPES = {
    '204 with Content-Length 5': (b'GET', b'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n'),
    '204 chunked': (b'GET', b'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n'),
    '304 with Content-Length 5': (b'GET', b'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n'),
    '304 chunked': (b'GET', b'HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n'),
    'HEAD answered chunked': (b'HEAD', b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'),
    'HEAD answered Content-Length 5': (b'HEAD', b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'),
    '100 unasked then 200': (b'GET', b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    '100, 102, 103 then 200': (b'GET', b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n'
                                       b'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    '103 with Content-Length 5 then 200': (b'GET', b'HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\n'
                                                   b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    'CL and chunked': (b'GET', b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'),
    'HTTP/1.0 answer chunked': (b'GET', b'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n2\r\nok\r\n0\r\n\r\n'),
    'chunked with trailers': (b'GET', b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n'),
    'chunk sizes 0x, ext': (b'GET', b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n002;a=b\r\nok\r\n000\r\n\r\n'),
    '205 with Content-Length 0': (b'GET', b'HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n'),
    '200 without length (keep-alive asked)': (b'GET', b'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nbody until close'),
    '1.0 keep-alive with length': (b'GET10', b'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok'),
    '1.0 keep-alive, no length': (b'GET10', b'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody until close'),
}
CURRENT = {'shape': None}
SEEN = []


def backend(port):
    def serve(c):
        buf = b''
        n = 0
        c.settimeout(3)
        try:
            while True:
                while b'\r\n\r\n' not in buf:
                    b = c.recv(65536)
                    if not b:
                        return
                    buf += b
                head, buf = buf.split(b'\r\n\r\n', 1)
                SEEN.append(head)
                n += 1
                if n == 1:
                    reply = SHAPES[CURRENT['shape']][1]
                    c.sendall(reply)
                    if b'until close' in reply:
                        c.close()
                        return
                else:
                    c.sendall(TWO)
        except OSError:
            pass
        finally:
            c.close()

    serve_each(port, serve)


def request(method, path):
    if method == b'GET10':
        return b'GET ' + path + b' HTTP/1.0\r\nHost: old.example\r\nConnection: keep-alive\r\n\r\n'
    return method + b' ' + path + b' HTTP/1.1\r\nHost: old.example\r\n\r\n'


def run(port, shape, pipelined):
    CURRENT['shape'] = shape
    del SEEN[:]
    method = SHAPES[shape][0]
    s = socket.create_connection(('127.0.0.1', port))
    second = b'GET /two HTTP/1.1\r\nHost: evil.example\r\n\r\n'
    if pipelined:
        s.sendall(request(method, b'/one') + second)
        got, end = read_all(s, timeout=2)
    else:
        s.sendall(request(method, b'/one'))
        first, _ = read_all(s, timeout=0.7)
        try:
            s.sendall(second)
            more, end = read_all(s, timeout=2)
        except OSError as e:
            more, end = b'', type(e).__name__
        got = first + more
    s.close()
    time.sleep(0.1)
    statuses = [m.decode() for m in re.findall(rb'HTTP/1\.[01] (\d{3})', got)]
    two_whole = got.endswith(b'\r\n\r\ntwo')
    hosts = [re.findall(rb'(?im)^host:[ \t]*([^\r\n]*)', h) for h in SEEN]
    return statuses, two_whole, end, len(SEEN), hosts


def main():
    w = tempfile.mkdtemp(prefix='hfr')
    backend(BASE)
    nk = subprocess.Popen([NETKIT, 'forward', '-q', f'127.0.0.1:{BASE + 1}', f'127.0.0.1:{BASE}', '--http-host',
                           'audit.example'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    open(f'{w}/h.cfg', 'w').write(haproxy_http(f'127.0.0.1:{BASE + 2}', f'127.0.0.1:{BASE}', 'audit.example'))
    hp = subprocess.Popen(['haproxy', '-f', f'{w}/h.cfg'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    bad = 0
    try:
        for shape in SHAPES:
            for pipelined in (False, True):
                row = []
                for name, port in (('direct', BASE), ('netkit', BASE + 1), ('haproxy', BASE + 2)):
                    st, whole, end, nreq, hosts = run(port, shape, pipelined)
                    escaped = name != 'direct' and any(h != [b'audit.example'] for h in hosts)
                    if name == 'netkit' and escaped:
                        bad += 1
                    row.append(f'{name}: {",".join(st) or "-"}{" two" if whole else ""} {end} req {nreq}'
                               f'{" HOST ESCAPED " + repr(hosts) if escaped else ""}')
                print(f'{shape[:38]:38} {"pipe" if pipelined else "seq ":4} | ' + ' | '.join(row), flush=True)
    finally:
        nk.terminate()
        hp.terminate()
        nk.wait(5)
        hp.wait(5)
    print('netkit rows with a Host escaping:', bad)


if __name__ == '__main__':
    main()
