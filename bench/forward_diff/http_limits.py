#!/usr/bin/env python3
"""`--http-host` at its size limits (loopback): request heads of 64 KiB (`MAX_HEAD`) -3..+3
bytes with the Host field first or last, 99-102 fields (`MAX_FIELDS` 100), chunk-size lines
(with an extension) of 8 KiB (`MAX_LINE`) -2..+2, 15- and 16-digit chunk sizes, response heads
of 64 KiB -2..+2 and a 99-102 field response; each followed on the same connection by a
second, small request. The verdict is the backend's view: every request it reads (parsed as
host_audit.py parses) carries exactly one Host, `audit.example`; a refused request reaches it
not at all, and the client's answers are one per request the backend answered, then the
refusal, in order. HAProxy (mode http, tune.bufsize 96 KiB so that its buffer is not the
limit) runs beside it.
usage: http_limits.py NETKIT [BASE_PORT]
"""
import os, re, socket, subprocess, sys, tempfile, threading, time

from common import haproxy_http, read_all
from host_audit import Bad, Incomplete, parse_request, violations_of

NETKIT = sys.argv[1]
BASE = int(sys.argv[2]) if len(sys.argv) > 2 else 27950
HEAD = 64 * 1024
LOG = {}  # connection number -> bytes the backend read
RESP = {}  # path -> the response head's padding


def backend(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', port))
    s.listen(64)
    n = 0

    def serve(c, k):
        buf, pos = b'', 0
        c.settimeout(10)
        try:
            while True:
                try:
                    req, end = parse_request(buf, pos)
                except Incomplete:
                    b = c.recv(262144)
                    if not b:
                        return
                    buf += b
                    LOG[k] = buf
                    continue
                except Bad:
                    return
                pos = end
                path = req['t']
                pad = RESP.get(path.split('?')[0], None)
                head = b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n'
                if pad is not None:
                    head += pad
                c.sendall(head + b'\r\nok')
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        nonlocal n
        while True:
            c, _ = s.accept()
            n += 1
            threading.Thread(target=serve, args=(c, n), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def pad_head(total, host_last, fields=None):
    """A GET head of exactly `total` bytes (to its final CRLF CRLF)."""
    line = b'GET /one HTTP/1.1\r\n'
    host = b'Host: old.example\r\n'
    if fields:
        extra = b''.join(b'X-F%d: v\r\n' % i for i in range(fields - 1))
        return line + (extra + host if host_last else host + extra) + b'\r\n'
    fixed = len(line) + len(host) + len(b'X-Pad: \r\n') + 2
    pad = b'X-Pad: ' + b'a' * (total - fixed) + b'\r\n'
    return line + (pad + host if host_last else host + pad) + b'\r\n'


def chunked(line_len, digits=None):
    head = b'POST /one HTTP/1.1\r\nHost: old.example\r\nTransfer-Encoding: chunked\r\n\r\n'
    if digits:
        size = b'0' * (digits - 1) + b'5'
        return head + size + b'\r\nhello\r\n0\r\n\r\n'
    ext = b'5;e=' + b'x' * (line_len - 4)
    return head + ext + b'\r\nhello\r\n0\r\n\r\n'


SECOND = b'GET /two HTTP/1.1\r\nHost: evil.example\r\n\r\n'


def cases():
    out = []
    for d in range(-3, 4):
        for last in (False, True):
            out.append((f'head {HEAD + d} B, Host {"last" if last else "first"}', pad_head(HEAD + d, last), None))
    for f in (99, 100, 101, 102):
        out.append((f'{f} fields, Host last', pad_head(0, True, f), None))
    for d in range(-2, 3):
        out.append((f'chunk line {8192 + d} B', chunked(8192 + d), None))
    for dg in (15, 16):
        out.append((f'chunk size of {dg} digits', chunked(0, dg), None))
    for d in range(-2, 3):
        total = HEAD + d
        fixed = len(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n') + len(b'X-Pad: \r\n') + 2
        out.append((f'response head {total} B', b'GET /big HTTP/1.1\r\nHost: old\r\n\r\n',
                    b'X-Pad: ' + b'b' * (total - fixed) + b'\r\n'))
    for f in (99, 100, 101, 102):
        out.append((f'response of {f} fields', b'GET /big HTTP/1.1\r\nHost: old\r\n\r\n',
                    b''.join(b'X-R%d: v\r\n' % i for i in range(f - 1))))
    return out


def statuses(data):
    return [m.decode() for m in re.findall(rb'HTTP/1\.[01] (\d{3}) ', data)]


def run(port, name, req, resp_pad):
    if resp_pad is not None:
        RESP['/big'] = resp_pad
    else:
        RESP.pop('/big', None)
    before = set(LOG)
    s = socket.create_connection(('127.0.0.1', port))
    s.sendall(req + SECOND)
    s.shutdown(socket.SHUT_WR)
    got, end = read_all(s, timeout=4)
    s.close()
    time.sleep(0.2)
    new = [LOG[k] for k in sorted(set(LOG) - before)]
    reqs, viol = [], []
    for buf in new:
        pos = 0
        while pos < len(buf):
            try:
                r, pos = parse_request(buf, pos)
            except (Incomplete, Bad) as e:
                viol.append(f'backend left {type(e).__name__}')
                break
            reqs.append(r['t'])
            viol += violations_of(r)
    return statuses(got), end, reqs, viol, len(got)


def main():
    w = tempfile.mkdtemp(prefix='hlim')
    bport = BASE
    backend(bport)
    nk = subprocess.Popen([NETKIT, 'forward', '-q', f'127.0.0.1:{BASE + 1}', f'127.0.0.1:{bport}', '--http-host',
                           'audit.example'], stdout=subprocess.DEVNULL, stderr=open(f'{w}/nk.err', 'w'))
    cfg = haproxy_http(f'127.0.0.1:{BASE + 2}', f'127.0.0.1:{bport}', 'audit.example')
    cfg = cfg.replace('global\n', 'global\n    tune.bufsize 98304\n    tune.maxrewrite 1024\n', 1)
    open(f'{w}/h.cfg', 'w').write(cfg)
    hp = subprocess.Popen(['haproxy', '-f', f'{w}/h.cfg'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    try:
        fd0 = len(os.listdir(f'/proc/{nk.pid}/fd'))
        bad = 0
        for name, req, pad in cases():
            row = []
            for proxy, port in (('netkit', BASE + 1), ('haproxy', BASE + 2)):
                st, end, reqs, viol, n = run(port, name, req, pad)
                row.append(f'{proxy}: {",".join(st) or "-"} ({n} B) {end} backend {reqs} {viol if viol else ""}')
                if proxy == 'netkit':
                    bad += bool(viol)
            print(f'{name:34} | ' + ' | '.join(row), flush=True)
        time.sleep(0.5)
        print(f'netkit fds {fd0} -> {len(os.listdir(f"/proc/{nk.pid}/fd"))}; netkit rows with a violation: {bad}; '
              f'alive: {nk.poll() is None}')
    finally:
        nk.terminate()
        hp.terminate()
        nk.wait(5)
        hp.wait(5)


if __name__ == '__main__':
    main()
