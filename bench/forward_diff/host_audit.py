#!/usr/bin/env python3
"""Randomized differential audit of `netkit forward --http-host` against HAProxy (mode http,
`http-request set-header Host`) and nginx (`proxy_set_header Host`).

Every scenario is a byte stream a client sends (python raw sockets: keep-alive, pipelined,
split at a byte boundary, byte by byte, bodies, chunked with extensions and trailers, Expect,
duplicate/odd Host fields, absolute-form, obs-fold, bare LF, long heads, Upgrade, CONNECT,
HEAD/204/304, TE+CL, invalid requests) or a real client (curl, ab, wrk). Each goes through
netkit, HAProxy and nginx to a recording backend that logs every byte per connection. The
property checked: every request the backend parses (and every request a parser with another
reading of the framing would parse) carries exactly one Host, the configured one, and an
absolute-form or CONNECT authority equal to it. Client statuses and what reached the backend
are compared across the three proxies.

    python3 host_audit.py run SEED COUNT [--netkit BIN] [--lab "--delay 20ms --rate 2mbit"]
                                         [--only I,J] [--deadline EPOCH] [--base PORT]
    python3 host_audit.py run 0 0 --replay results-SEED.jsonl --only I,J   # scenarios again
    python3 host_audit.py report results-*.jsonl          # differences grouped by kind
    python3 host_audit.py early [NETKIT]                  # heads that cannot become valid
    python3 host_audit.py backend ADDR PORT LOGDIR      # the recording backend alone

Results: /tmp/hostaudit/results-SEED[-lab].jsonl, one line per scenario; a summary on stdout.
Needs root for --lab (namespaces), python3, haproxy, nginx, curl, ab, wrk.
"""
import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from common import LAB, NETKIT, haproxy_http, nginx_conf

NAME = 'audit.example'
FAR4 = '198.18.1.10'
ROOT = '/tmp/hostaudit'

# --------------------------------------------------------------------------------------------
# An HTTP/1.x request parser with a choice of readings, used by the backend (to answer) and by
# the checker (to find every request any reading would see in what the backend got).


class Incomplete(Exception):
    pass


class Bad(Exception):
    pass


def lines_of(head, lf_ok):
    if lf_ok:
        return [ln[:-1] if ln.endswith(b'\r') else ln for ln in head.split(b'\n')]
    return head.split(b'\r\n')


def find_head_end(buf, pos, lf_ok):
    if lf_ok:
        m = re.compile(rb'\r?\n\r?\n').search(buf, pos)
        return (m.start(), m.end()) if m else None
    i = buf.find(b'\r\n\r\n', pos)
    return (i, i + 4) if i >= 0 else None


def parse_request(buf, pos, prefer='te', lf_ok=True, fold=True):
    """One request at buf[pos:]: (request dict, end) or raises Incomplete / Bad."""
    # empty lines before a request are skipped
    while buf.startswith(b'\r\n', pos) or buf.startswith(b'\n', pos):
        pos += 2 if buf.startswith(b'\r\n', pos) else 1
    if pos >= len(buf):
        raise Incomplete()
    he = find_head_end(buf, pos, lf_ok)
    if he is None:
        if len(buf) - pos > 1 << 20:
            raise Bad('head too long')
        raise Incomplete()
    head = buf[pos:he[0]]
    lines = lines_of(head, lf_ok)
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith(b'HTTP/'):
        raise Bad('request line')
    method, target, version = parts
    fields = []
    for ln in lines[1:]:
        if ln[:1] in (b' ', b'\t') and fields and fold:
            fields[-1] = (fields[-1][0], fields[-1][1] + b' ' + ln.strip())
            continue
        name, colon, value = ln.partition(b':')
        if not colon:
            raise Bad('field without colon')
        fields.append((name.strip().lower(), value.strip()))
    hosts = [v for n, v in fields if n == b'host']
    te = [v for n, v in fields if n == b'transfer-encoding']
    cl = [v for n, v in fields if n == b'content-length']
    chunked = bool(te) and b'chunked' in b','.join(te).lower()
    end = he[1]
    body = b''
    use_te = chunked and (prefer == 'te' or not cl)
    if use_te:
        at = end
        chunks = []
        while True:
            nl = buf.find(b'\n', at)
            if nl < 0:
                raise Incomplete()
            size_txt = buf[at:nl].split(b';')[0].strip()
            try:
                size = int(size_txt, 16)
            except ValueError:
                raise Bad('chunk size')
            at = nl + 1
            if size == 0:
                # trailers until an empty line
                while True:
                    nl = buf.find(b'\n', at)
                    if nl < 0:
                        raise Incomplete()
                    line = buf[at:nl]
                    at = nl + 1
                    if line in (b'', b'\r'):
                        break
                break
            if len(buf) < at + size:
                raise Incomplete()
            chunks.append(buf[at:at + size])
            at += size
            nl = buf.find(b'\n', at)
            if nl < 0:
                raise Incomplete()
            at = nl + 1
        body = b''.join(chunks)
        end = at
    elif cl:
        try:
            n = int(cl[0].split(b',')[0].strip())
        except ValueError:
            raise Bad('content-length')
        if n < 0:
            raise Bad('content-length')
        if len(buf) < end + n:
            raise Incomplete()
        body = buf[end:end + n]
        end += n
    req = {
        'm': method.decode('latin-1'), 't': target.decode('latin-1'), 'v': version.decode('latin-1'),
        'hosts': [h.decode('latin-1') for h in hosts], 'body': hashlib.sha256(body).hexdigest()[:10],
        'blen': len(body), 'fields': [(n.decode('latin-1'), v.decode('latin-1')) for n, v in fields],
        'raw_head': buf[pos:he[1]],
    }
    return req, end


def authority_of(req):
    m, t = req['m'], req['t']
    if m == 'CONNECT':
        return t.rsplit(':', 1)[0] if ':' in t else t
    mm = re.match(r'^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)', t)
    if mm:
        auth = mm.group(1).rsplit('@', 1)[-1]
        return auth
    return None


def violations_of(req):
    v = []
    if req['hosts'] != [NAME]:
        v.append(f"hosts={req['hosts']!r} target={req['t'][:60]!r}")
    a = authority_of(req)
    if a is not None and a not in (NAME,) and a.split(':')[0] != NAME:
        v.append(f"authority={a!r} target={req['t'][:60]!r}")
    return v


# --------------------------------------------------------------------------------------------
# The recording backend.


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key + b'258EAFA5-E914-47DA-95CA-C5AB0DC11B85').digest())


def backend_conn(conn, path):
    log = open(path + '.bin', 'wb')
    meta = {'reqs': [], 'tunnel_at': None, 'closed_by': None}
    buf = b''
    pos = 0
    seq = 0
    conn.settimeout(20)

    def more():
        nonlocal buf
        d = conn.recv(65536)
        if not d:
            return False
        log.write(d)
        log.flush()
        buf += d
        return True

    drip = [False]
    prng = random.Random(path)

    def send(b):
        if not drip[0] or len(b) > 4096:
            conn.sendall(b)
            return
        # the response in pieces of 1-7 bytes: the proxies must follow it across reads
        at = 0
        while at < len(b):
            n = prng.randint(1, 7)
            conn.sendall(b[at:at + n])
            at += n
            time.sleep(0.0005)

    try:
        while True:
            # parse the head only first (for Expect / early answers)
            while True:
                try:
                    he = find_head_end(buf, pos, True)
                    if he is None:
                        raise Incomplete()
                    break
                except Incomplete:
                    if not more():
                        meta['closed_by'] = 'client'
                        return
            # fields of the head for decisions
            text = buf[pos:he[1]]
            lines = lines_of(text[:he[0] - pos], True)
            while lines and lines[0] == b'':
                lines = lines[1:]
            parts = lines[0].split() if lines else []
            if len(parts) != 3:
                send(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
                meta['closed_by'] = 'bad'
                return
            method, target = parts[0], parts[1]
            low = b'\n'.join(lines[1:]).lower()
            q = re.search(rb'[?&]r=([a-z0-9]+)', target)
            mode = q.group(1).decode() if q else 'cl'
            drip[0] = b'drip=1' in target or b'drip=1' in low
            xr = re.search(rb'(?:^|\n)x-r:\s*([a-z0-9]+)', low)
            mode = xr.group(1).decode() if xr else mode
            expect = b'expect: 100-continue' in low
            if expect and mode == '417':
                send(b'HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
                meta['reqs'].append({'partial': True, 'raw_head': buf[pos:he[1]]})
                meta['closed_by'] = 'server'
                return
            if mode in ('skipbody', '417ka'):
                # a backend that answers before the body and never reads it: the body is
                # parsed as the next request (RFC 9110 §10.1.1 wants it read or the
                # connection closed)
                code = b'417 Expectation Failed' if mode == '417ka' else b'200 OK'
                send(b'HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n' % code)
                meta['reqs'].append({'partial': True, 'raw_head': buf[pos:he[1]]})
                pos = he[1]
                continue
            if expect:
                send(b'HTTP/1.1 100 Continue\r\n\r\n')
            if mode == 'early':
                send(b'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Early: 1\r\n\r\nearly\n')
            while True:
                try:
                    req, end = parse_request(buf, pos)
                    break
                except Incomplete:
                    if not more():
                        meta['closed_by'] = 'client-midrequest'
                        meta['reqs'].append({'partial': True, 'raw_head': buf[pos:he[1]]})
                        return
                except Bad as e:
                    send(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
                    meta['closed_by'] = f'bad: {e}'
                    return
            meta['reqs'].append(req)
            pos = end
            seq += 1
            fields = dict(req['fields'])
            conn_close = req['v'] == 'HTTP/1.0' and 'keep-alive' not in fields.get('connection', '').lower()
            conn_close |= 'close' in fields.get('connection', '').lower()
            hostv = ','.join(req['hosts'])
            if req['m'] == 'CONNECT':
                if mode == '405':
                    send(b'HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n')
                    continue
                send(b'HTTP/1.1 200 Connection Established\r\n\r\n')
                meta['tunnel_at'] = pos
                break
            if 'upgrade' in fields and req['t'].startswith('/ws') and 'websocket' in fields['upgrade'].lower():
                key = fields.get('sec-websocket-key', 'x').encode()
                send(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                     b'Sec-WebSocket-Accept: ' + ws_accept(key) + b'\r\n\r\n')
                meta['tunnel_at'] = pos
                break
            if mode == 'early':
                if conn_close:
                    meta['closed_by'] = 'server'
                    return
                continue
            body = f'seq {seq} host {hostv}\n'.encode()
            extra = b'Connection: close\r\n' if conn_close else b''
            if req['v'] == 'HTTP/1.0' and not conn_close:
                extra = b'Connection: keep-alive\r\n'
            if mode == '103':
                send(b'HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n')
            if req['m'] == 'HEAD' and mode == 'ch':
                send(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n' % extra)
            elif req['m'] == 'HEAD':
                send(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n' % (len(body), extra))
            elif mode == '204':
                send(b'HTTP/1.1 204 No Content\r\n%s\r\n' % extra)
            elif mode == '304':
                send(b'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n%s\r\n' % extra)
            elif mode == 'ch':
                send(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n%s\r\n' % extra
                     + b'%x;ext=1\r\n%s\r\n0\r\nX-T: 1\r\n\r\n' % (len(body), body))
            elif mode == 'big':
                n = 300000
                send(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n' % (n, extra) + b'b' * n)
            elif mode == 'close':
                send(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n' + body)
                meta['closed_by'] = 'server'
                return
            else:
                send(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Seq: %d\r\n%s\r\n' % (len(body), seq, extra) + body)
            if conn_close:
                meta['closed_by'] = 'server'
                return
        # tunnel: echo
        rest = buf[pos:]
        if rest:
            send(rest)
        while True:
            d = conn.recv(65536)
            if not d:
                meta['closed_by'] = 'client'
                break
            log.write(d)
            log.flush()
            send(d)
    except OSError as e:
        meta['closed_by'] = f'error: {e}'
    finally:
        for r in meta['reqs']:
            r['raw_head'] = base64.b64encode(r['raw_head']).decode()
        try:
            conn.close()
        except OSError:
            pass
        log.close()
        with open(path + '.tmp', 'w') as f:
            json.dump(meta, f)
        os.rename(path + '.tmp', path + '.json')


def backend_main(addr, port, logdir):
    os.makedirs(logdir, exist_ok=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(512)
    n = 0
    while True:
        c, _ = s.accept()
        n += 1
        try:
            epoch = open(f'{logdir}.epoch').read().strip()
        except OSError:
            epoch = 'none'
        t = threading.Thread(target=backend_conn, args=(c, f'{logdir}/{epoch}_{n:06d}'), daemon=True)
        t.start()


# --------------------------------------------------------------------------------------------
# The raw-socket client.


def parse_response(buf, pos, method):
    head_req = method == 'HEAD'
    he = find_head_end(buf, pos, True)
    if he is None:
        raise Incomplete()
    lines = lines_of(buf[pos:he[0]], True)
    parts = lines[0].split(b' ', 2)
    try:
        code = int(parts[1])
    except (IndexError, ValueError):
        raise Bad('status line')
    f = {}
    for ln in lines[1:]:
        n, _, v = ln.partition(b':')
        f.setdefault(n.strip().lower(), v.strip())
    end = he[1]
    if 100 <= code < 200 and code != 101:
        return code, end, False
    if head_req or code in (204, 304) or code == 101:
        return code, end, code == 101
    if method == 'CONNECT' and 200 <= code < 300:
        return code, end, True
    if b'chunked' in f.get(b'transfer-encoding', b'').lower():
        at = end
        while True:
            nl = buf.find(b'\n', at)
            if nl < 0:
                raise Incomplete()
            size = int(buf[at:nl].split(b';')[0].strip() or b'0', 16)
            at = nl + 1
            if size == 0:
                while True:
                    nl = buf.find(b'\n', at)
                    if nl < 0:
                        raise Incomplete()
                    ln = buf[at:nl]
                    at = nl + 1
                    if ln in (b'', b'\r'):
                        return code, at, False
            if len(buf) < at + size + 2:
                raise Incomplete()
            at += size
            nl = buf.find(b'\n', at)
            at = nl + 1
    if b'content-length' in f:
        n = int(f[b'content-length'])
        if len(buf) < end + n:
            raise Incomplete()
        return code, end + n, False
    raise Incomplete()  # until close


def run_client(sc, host, port, timeout=6.0):
    """Runs one raw scenario; returns the client's view."""
    res = {'statuses': [], 'end': None, 'echo': None}
    try:
        s = socket.create_connection((host, port), timeout=3)
    except OSError as e:
        res['end'] = f'connect: {e}'
        return res
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b''
    pos = 0
    methods = list(sc['methods'])
    tunnel = None
    t_end = time.time() + timeout
    eof = False

    def pump(wait):
        nonlocal buf, eof
        s.settimeout(max(0.001, wait))
        try:
            d = s.recv(65536)
        except socket.timeout:
            return False
        except OSError as e:
            res['end'] = f'rst: {e.__class__.__name__}'
            eof = True
            return False
        if not d:
            eof = True
            return False
        buf += d
        return True

    def consume():
        nonlocal pos, tunnel
        while tunnel is None:
            try:
                code, end, tun = parse_response(buf, pos, methods[0] if methods else None)
            except (Incomplete, Bad, ValueError):
                return
            res['statuses'].append(code)
            pos = end
            if code >= 200 or code == 101:
                m = methods.pop(0) if methods else None
                if code == 101 or (m == 'CONNECT' and 200 <= code < 300):
                    tunnel = pos

    def wait_status(codes, wait):
        t = time.time() + wait
        while time.time() < t and not eof:
            consume()
            if any(c in codes for c in res['statuses']):
                return
            pump(t - time.time())

    try:
        for step in sc['steps']:
            kind = step[0]
            if kind == 'send':
                data = bytes.fromhex(step[1])
                s.sendall(data)
                if step[2]:
                    time.sleep(step[2])
                    while pump(0.001):
                        pass
            elif kind == 'wait':
                wait_status(step[1], step[2])
            elif kind == 'shut':
                s.shutdown(socket.SHUT_WR)
        last = time.time()
        while time.time() < t_end and not eof:
            consume()
            if tunnel is None and not methods:
                break
            if tunnel is not None and sc.get('echo') is not None and len(buf) - tunnel >= len(bytes.fromhex(sc['echo'])):
                break
            if pump(0.1):
                last = time.time()
            elif time.time() - last > sc.get('idle', 0.8):
                res['end'] = res['end'] or 'idle'
                break
        consume()
        if eof and not res['end']:
            res['end'] = 'eof'
        if tunnel is not None:
            res['echo'] = hashlib.sha256(buf[tunnel:]).hexdigest()[:10]
        res['left'] = len(methods)
    except OSError as e:
        res['end'] = f'error: {e.__class__.__name__}'
    finally:
        s.close()
    return res


# --------------------------------------------------------------------------------------------
# Scenarios.

EVIL = ['evil.test', 'EVIL.TEST', '127.0.0.1', 'audit.example.evil.test', 'evil.test:8080', '',
        'audit.example', 'a@evil.test', '[::1]:80', 'evil.test.']


def crlf(lines, eol=b'\r\n'):
    return eol.join(lines) + eol + eol


def mkreq(rng, method='GET', target=None, version='HTTP/1.1', host=True, extra=(), body=None,
          chunks=None, eol=b'\r\n', mode=None, host_line=None, te_line=None, trailers=(), ext=False):
    if target is None:
        target = f'/p{rng.randint(0, 999)}'
    if mode:
        target += ('&' if '?' in target else '?') + f'r={mode}'
    lines = [f'{method} {target} {version}'.encode('latin-1')]
    if host_line is not None:
        lines.append(host_line)
    elif host:
        lines.append(b'Host: ' + rng.choice(EVIL).encode())
    lines.append(b'User-Agent: hostaudit')
    for e in extra:
        lines.append(e if isinstance(e, bytes) else e.encode('latin-1'))
    data = b''
    if chunks is not None:
        lines.append(te_line or b'Transfer-Encoding: chunked')
        parts = []
        for c in chunks:
            e = b''
            if ext:
                e = rng.choice([b';a=b', b';x="q;y"', b' ;n', b';', b';k=v;k2'])
            parts.append(b'%x%s%s%s%s' % (len(c), e, eol, c, eol))
        parts.append(b'0' + eol + b''.join(t + eol for t in trailers) + eol)
        data = b''.join(parts)
    elif body is not None:
        lines.append(b'Content-Length: %d' % len(body))
        data = body
    return crlf(lines, eol) + data


def smuggle(rng):
    return mkreq(rng, 'GET', '/smuggled', host_line=b'Host: evil.test')


def split_steps(data, how, rng):
    """The send steps for one stream: whole, at a boundary, random pieces, byte by byte."""
    if how == 'whole':
        return [['send', data.hex(), 0]]
    if how == 'byte':
        return [['send', data[i:i + 1].hex(), 0.002] for i in range(len(data))]
    if isinstance(how, int):
        i = max(1, min(len(data) - 1, how))
        return [['send', data[:i].hex(), 0.03], ['send', data[i:].hex(), 0]]
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(2, 8)))) if len(data) > 2 else []
    steps, last = [], 0
    for c in cuts + [len(data)]:
        steps.append(['send', data[last:c].hex(), 0.01])
        last = c
    return steps


def gen(rng, i):
    """One scenario: dict with category, steps (or tool), methods (one per final response)."""
    cats = ['keepalive', 'pipelined', 'split', 'bytewise', 'cl_body', 'chunked', 'expect',
            'dup_host', 'odd_host', 'no_host', 'absolute', 'obs_fold', 'bare_lf', 'long_head',
            'beyond_buffer', 'upgrade', 'connect', 'head_204_304', 'te_cl', 'invalid', 'early',
            'tool', 'skipbody', 'deep_pipeline']
    cat = rng.choice(cats)
    sc = {'i': i, 'cat': cat}
    reqs = []   # (bytes, method)
    how = rng.choice(['whole', 'whole', 'pieces', rng.randint(1, 200)])
    modes = ['cl', 'cl', 'ch', 'big', '103', '204', '304']

    def tail(n=1):
        for _ in range(n):
            m = rng.choice(['GET', 'GET', 'HEAD', 'POST'])
            body = b'x' * rng.randint(0, 40) if m == 'POST' else None
            mode = rng.choice(modes)
            if mode != 'big' and rng.random() < 0.25:
                mode += '&drip=1'
            reqs.append((mkreq(rng, m, body=body, mode=mode), m))

    if cat in ('keepalive', 'pipelined', 'split', 'bytewise'):
        tail(rng.randint(2, 6) if cat != 'bytewise' else rng.randint(1, 2))
        if cat == 'keepalive':
            # one request at a time, each after the answer to the one before has had time
            sc['steps'] = [['send', r.hex(), 0.15] for r, _ in reqs]
        elif cat == 'bytewise':
            how = 'byte'
        elif cat == 'split':
            how = rng.randint(1, sum(len(r) for r, _ in reqs) - 1)
        else:
            how = 'whole'
    elif cat == 'cl_body':
        body = rng.choice([smuggle(rng), b'GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n' * 2, b'a' * rng.randint(1, 70000)])
        reqs.append((mkreq(rng, 'POST', body=body, mode=rng.choice(modes)), 'POST'))
        tail(rng.randint(1, 2))
    elif cat == 'chunked':
        eol = rng.choice([b'\r\n', b'\r\n', b'\n'])
        chunks = [rng.choice([smuggle(rng), b'y' * rng.randint(1, 300), b'0\r\n\r\n', b'z' * rng.randint(5000, 40000)])
                  for _ in range(rng.randint(1, 4))]
        trailers = rng.choice([(), (b'X-Trailer: 1',), (b'X-A: b', b'X-C: d'), (b'Host: evil.test',)])
        reqs.append((mkreq(rng, 'POST', chunks=chunks, ext=rng.random() < 0.6, eol=eol, trailers=trailers,
                           mode=rng.choice(modes)), 'POST'))
        tail(rng.randint(1, 2))
    elif cat == 'expect':
        body = rng.choice([b'e' * rng.randint(1, 3000), smuggle(rng)])
        mode = rng.choice(['cl', 'cl', '417'])
        r = mkreq(rng, 'POST', body=body, extra=['Expect: 100-continue'], mode=mode + rng.choice(['', '&drip=1']))
        head, _, _ = r.partition(b'\r\n\r\n')
        nxt = mkreq(rng, 'GET', mode='cl')
        sc['methods'] = ['POST', 'GET']
        if rng.random() < 0.5:
            sc['steps'] = [['send', (head + b'\r\n\r\n').hex(), 0], ['wait', [100, 417, 400, 200], 1.0],
                           ['send', (body + nxt).hex(), 0]]
        else:
            sc['steps'] = split_steps(r + nxt, 'whole', rng)
        sc['variant'] = mode
        return sc
    elif cat == 'dup_host':
        a, b = rng.choice(EVIL).encode(), rng.choice([NAME, 'evil.test', 'other.test']).encode()
        hl = rng.choice([b'Host: ' + a + b'\r\nHost: ' + b, b'Host: ' + a + b'\r\nhost: ' + b,
                         b'Host: ' + a + b'\r\nX-Pad: 1\r\nHOST: ' + b, b'Host: ' + a + b', ' + b])
        reqs.append((mkreq(rng, host_line=hl, mode='cl'), 'GET'))
        tail(rng.randint(0, 2))
    elif cat == 'odd_host':
        v = rng.choice(EVIL).encode()
        hl = rng.choice([b'hOsT: ' + v, b'HOST:' + v, b'Host:   ' + v + b'   ', b'Host:\t' + v + b'\t',
                         b'Host : ' + v, b'Host\t: ' + v, b' Host: ' + v, b'Host: ' + v + b'\x00x',
                         b'Host: ' + v + b'\rX: y', b'Ho\x00st: ' + v, b'Host: \xe9vil', b'Host:',
                         b'X-Host: ' + v, b'Host: ' + v + b'\r\nX-Forwarded-Host: evil.test'])
        reqs.append((mkreq(rng, host_line=hl, mode='cl'), 'GET'))
        tail(rng.randint(0, 2))
    elif cat == 'no_host':
        v = rng.choice(['HTTP/1.0', 'HTTP/1.0', 'HTTP/1.1'])
        extra = rng.choice([[], ['Connection: keep-alive']])
        reqs.append((mkreq(rng, version=v, host=False, extra=extra, mode='cl'), 'GET'))
        if extra or v == 'HTTP/1.1':
            tail(rng.randint(0, 2))
    elif cat == 'absolute':
        t = rng.choice(['http://evil.test/a', 'http://evil.test:8080/x?y=1', 'HTTP://EVIL.TEST/', 'http://u:p@evil.test/',
                        'https://evil.test/s', 'http://evil.test?q=1', 'http://[::1]:8/v6', 'http://evil.test',
                        f'http://{NAME}/ok', 'http://evil.test#frag', 'ftp://evil.test/f', 'http:evil.test/x',
                        '//evil.test/path', 'http://evil.test\\@good/x', 'http://evil.test/x@y'])
        m = rng.choice(['GET', 'GET', 'POST', 'OPTIONS'])
        body = b'abc' if m == 'POST' else None
        reqs.append((mkreq(rng, m, target=t, body=body, host=rng.random() < 0.7, mode='cl'), m))
        if rng.random() < 0.3:
            reqs.append((mkreq(rng, 'OPTIONS', target='*', mode=None), 'OPTIONS'))
        tail(rng.randint(0, 2))
    elif cat == 'obs_fold':
        v = rng.choice(EVIL).encode()
        hl = rng.choice([b'Host: ' + NAME.encode() + b'\r\n ' + v, b'X-A: b\r\n Host: ' + v,
                         b'Host: ' + v + b'\r\n\tcontinued', b'X-A: b\r\n\tHost: ' + v,
                         b'Transfer-Encoding: identity\r\n chunked\r\nHost: ' + v])
        reqs.append((mkreq(rng, host_line=hl, mode='cl'), 'GET'))
        tail(rng.randint(0, 2))
    elif cat == 'bare_lf':
        for _ in range(rng.randint(1, 3)):
            m = rng.choice(['GET', 'POST'])
            r = mkreq(rng, m, eol=b'\n', body=b'bf' if m == 'POST' else None, mode=rng.choice(modes))
            if rng.random() < 0.3:
                r = b'\r\n' + r  # an empty line before
            if rng.random() < 0.2:
                r = r.replace(b'\nUser-Agent', b'\r\nUser-Agent', 1)  # mixed
            reqs.append((r, m))
    elif cat == 'long_head':
        n = rng.choice([4000, 9000, 17000, 40000, 70000])
        kind = rng.choice(['one', 'many', 'url'])
        if kind == 'one':
            r = mkreq(rng, extra=['X-Long: ' + 'l' * n], mode='cl')
        elif kind == 'many':
            k = rng.choice([50, 99, 101, 150])
            r = mkreq(rng, extra=[f'X-F{j}: {"v" * (n // k)}' for j in range(k)], mode='cl')
        else:
            r = mkreq(rng, target='/' + 'u' * n, mode='cl')
        reqs.append((r, 'GET'))
        tail(rng.randint(0, 2))
        sc['variant'] = f'{kind}{n}'
    elif cat == 'beyond_buffer':
        # the Host line of the 2nd/3rd request straddles a read-buffer boundary (4K, 8K, 16K, 64K)
        bnd = rng.choice([4096, 8192, 16384, 65536])
        first = mkreq(rng, 'POST', body=b'q' * 10, mode='cl')
        pad = bnd - len(first) - rng.randint(0, 40) - 40
        first = mkreq(rng, 'POST', body=b'q' * max(0, pad), mode='cl')
        reqs.append((first, 'POST'))
        reqs.append((mkreq(rng, host_line=b'Host: evil.test', mode='cl'), 'GET'))
        tail(rng.randint(0, 1))
        how = rng.choice(['whole', bnd, bnd - 20, bnd + 10])
        sc['variant'] = str(bnd)
    elif cat == 'upgrade':
        ok = rng.random() < 0.6
        proto = rng.choice(['websocket', 'websocket', 'h2c', 'WebSocket, h2c', 'HTTP/2.0'])
        path = ('/ws' if ok else '/nows') + rng.choice(['', '', '?drip=1'])
        ubody = rng.choice([None, None, b'', b'upgrade-body'])
        r = mkreq(rng, target=path, extra=['Connection: Upgrade', f'Upgrade: {proto}',
                                           'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'],
                  body=ubody)
        payload = smuggle(rng) + b'\x81\x05hello'
        sc['methods'] = ['GET']
        if ok and 'websocket' in proto.lower():
            sc['echo'] = payload.hex()
            if rng.random() < 0.5:
                sc['steps'] = [['send', r.hex(), 0], ['wait', [101, 200, 400, 426, 502], 1.0], ['send', payload.hex(), 0]]
            else:
                sc['steps'] = [['send', (r + payload).hex(), 0]]
            sc['variant'] = 'tunnel'
            return sc
        # refused upgrade: the next request must still be rewritten
        reqs.append((r, 'GET'))
        tail(rng.randint(1, 2))
        sc['variant'] = f'refused {proto}'
    elif cat == 'connect':
        ok = rng.random() < 0.5
        drip = rng.choice([b'', b'X-R: cl&drip=1\r\n'])
        r = (b'CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n' + drip + b'\r\n' if ok
             else mkreq(rng, 'CONNECT', target='evil.test:443?r=405', host_line=b'Host: evil.test:443'))
        if ok:
            payload = smuggle(rng)
            sc['methods'] = ['CONNECT']
            sc['echo'] = payload.hex()
            sc['steps'] = [['send', r.hex(), 0], ['wait', [200, 400, 405, 502], 1.0], ['send', payload.hex(), 0]]
            sc['variant'] = 'tunnel'
            return sc
        reqs.append((b'CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\nX-R: 405\r\n\r\n', 'CONNECT'))
        tail(1)
        sc['variant'] = 'refused'
    elif cat == 'head_204_304':
        for _ in range(rng.randint(2, 5)):
            m = rng.choice(['HEAD', 'GET', 'GET'])
            reqs.append((mkreq(rng, m, mode=rng.choice(['204', '304', 'cl', 'ch'])), m))
    elif cat == 'te_cl':
        sm = smuggle(rng)
        k = rng.choice(['clte', 'tecl', 'te_space', 'te_x', 'te_dup', 'te_10', 'cl_dup', 'cl_plus', 'te_tab', 'te_id'])
        chunk_body = b'%x\r\n%s\r\n0\r\n\r\n' % (len(sm), sm)
        lines = [b'POST /s?r=cl HTTP/1.1', b'Host: evil.test']
        if k == 'clte':
            lines += [b'Content-Length: %d' % len(chunk_body), b'Transfer-Encoding: chunked']
            body = chunk_body
        elif k == 'tecl':
            lines += [b'Transfer-Encoding: chunked', b'Content-Length: 4']
            body = chunk_body
        elif k == 'te_space':
            lines += [b'Transfer-Encoding : chunked', b'Content-Length: %d' % len(chunk_body)]
            body = chunk_body
        elif k == 'te_x':
            lines += [b'Transfer-Encoding: xchunked', b'Content-Length: %d' % len(chunk_body)]
            body = chunk_body
        elif k == 'te_dup':
            lines += [b'Transfer-Encoding: chunked', b'Transfer-Encoding: identity']
            body = chunk_body
        elif k == 'te_10':
            lines[0] = b'POST /s?r=cl HTTP/1.0'
            lines += [b'Transfer-Encoding: chunked', b'Connection: keep-alive']
            body = chunk_body
        elif k == 'cl_dup':
            lines += [b'Content-Length: 0', b'Content-Length: %d' % len(sm)]
            body = sm
        elif k == 'cl_plus':
            lines += [b'Content-Length: +%d' % len(sm)]
            body = sm
        elif k == 'te_tab':
            lines += [b'Transfer-Encoding:\tchunked']
            body = chunk_body
        else:
            lines += [b'Transfer-Encoding: chunked, identity']
            body = chunk_body
        reqs.append((crlf(lines) + body, 'POST'))
        tail(1)
        sc['variant'] = k
    elif cat == 'invalid':
        bad = rng.choice([b'GET / HTTP/2.0\r\nHost: evil.test\r\n\r\n', b'GET  / HTTP/1.1\r\nHost: evil.test\r\n\r\n',
                          b'GET /\r\n\r\n', b'get / HTTP/1.1\r\nHost: evil.test\r\n\r\n',
                          b'GET / HTTP/1.1\rHost: evil.test\r\n\r\n', b'GET /\x00 HTTP/1.1\r\nHost: evil.test\r\n\r\n',
                          b'GET / HTTP/1.1\r\nHost evil.test\r\n\r\n', b'GET / HTTP/1.1\r\n: evil\r\nHost: evil.test\r\n\r\n',
                          b'\x16\x03\x01\x00\x05hello', b'GET /a b HTTP/1.1\r\nHost: evil.test\r\n\r\n',
                          b'GET / HTTP/1.1 \r\nHost: evil.test\r\n\r\n', b'GET\t/ HTTP/1.1\r\nHost: evil.test\r\n\r\n',
                          b'POST / HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n' + smuggle(rng),
                          b'POST / HTTP/1.1\r\nHost: evil.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n' + smuggle(rng),
                          b'POST / HTTP/1.1\r\nHost: evil.test\r\nContent-Length: -1\r\n\r\n' + smuggle(rng)])
        if rng.random() < 0.5:
            tail(1)
        reqs.append((bad, 'GET'))
        tail(rng.randint(0, 1))
    elif cat == 'early':
        body = smuggle(rng) + b'p' * rng.randint(0, 20000)
        reqs.append((mkreq(rng, 'POST', body=body, mode='early'), 'POST'))
        tail(rng.randint(1, 2))
    elif cat == 'deep_pipeline':
        # more requests in flight than netkit's 1024
        n = rng.choice([200, 1030, 1500])
        for _ in range(n):
            m = rng.choice(['GET', 'HEAD', 'POST'])
            reqs.append((mkreq(rng, m, body=b'd' if m == 'POST' else None, mode=rng.choice(['cl', 'ch', '204'])), m))
        sc['idle'] = 3.0
        sc['variant'] = str(n)
    elif cat == 'skipbody':
        mode = rng.choice(['skipbody', '417ka'])
        extra = ['Expect: 100-continue'] if mode == '417ka' or rng.random() < 0.5 else []
        body = smuggle(rng)
        r = mkreq(rng, 'POST', body=body, extra=extra, mode=mode)
        head = r[:len(r) - len(body)]
        nxt = mkreq(rng, 'GET', mode='cl')
        sc['methods'] = ['POST', 'GET', 'GET']
        if rng.random() < 0.5:
            sc['steps'] = [['send', head.hex(), 0], ['wait', [100, 200, 417], 1.0], ['send', (body + nxt).hex(), 0]]
        else:
            sc['steps'] = split_steps(r + nxt, 'whole', rng)
        sc['variant'] = mode + (' expect' if extra else '') + (' waits' if len(sc['steps']) == 3 else '')
        return sc
    elif cat == 'tool':
        sc['tool'] = rng.choice(['curl_keepalive', 'curl_proxy', 'curl_chunked', 'curl_expect', 'curl_http10', 'curl_head',
                                 'ab', 'wrk'])
        sc['seed'] = rng.randint(1, 1 << 30)
        return sc
    data = b''.join(r for r, _ in reqs)
    sc['methods'] = [m for _, m in reqs]
    if 'steps' not in sc:
        sc['steps'] = split_steps(data, how, rng)
        sc['how'] = how if isinstance(how, str) else f'at {how}'
    if rng.random() < 0.15 and cat not in ('keepalive',):
        sc['steps'].append(['shut'])
    return sc


# --------------------------------------------------------------------------------------------
# Real clients.


def tool_cmd(sc, host, port):
    t = sc['tool']
    u = f'http://{host}:{port}'
    r = random.Random(sc['seed'])
    if t == 'curl_keepalive':
        n = r.randint(2, 6)
        return ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}\n', '-H', 'Host: evil.test'] + \
            [f'{u}/k{j}?r={r.choice(["cl", "ch", "103"])}' for j in range(n)], n
    if t == 'curl_proxy':
        return ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}\n', '-x', u,
                f'http://evil.test/p?r=cl', 'http://evil.test:81/q?r=ch'], 2
    if t == 'curl_chunked':
        return ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}\n', '-H', 'Transfer-Encoding: chunked', '-H', 'Host: evil.test',
                '--data-binary', 'GET /x HTTP/1.1\r\nHost: evil.test\r\n\r\n' * r.randint(1, 50), f'{u}/c?r=cl', f'{u}/c2?r=cl'], 2
    if t == 'curl_expect':
        body = f'{ROOT}/expect-body-{sc["seed"]}'
        with open(body, 'w') as f:
            f.write('e' * r.randint(1025, 200000))
        return ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}\n', '-H', 'Expect: 100-continue', '-H', 'Host: evil.test',
                '--data-binary', '@' + body, f'{u}/e?r={r.choice(["cl", "417"])}'], 1
    if t == 'curl_http10':
        return ['curl', '-sS', '--http1.0', '-o', '/dev/null', '-w', '%{http_code}\n', '-H', 'Host:', f'{u}/ten?r=cl'], 1
    if t == 'curl_head':
        return ['curl', '-sS', '-I', '-o', '/dev/null', '-w', '%{http_code}\n', '-H', 'Host: evil.test',
                f'{u}/h?r=cl', f'{u}/h2?r=304'], 2
    if t == 'ab':
        n = r.randint(10, 60)
        return ['ab', '-q', '-k', '-n', str(n), '-c', str(r.randint(1, 4)), '-H', 'Host: evil.test', f'{u}/ab?r=cl'], n
    if t == 'wrk':
        return ['wrk', '-t1', '-c4', '-d1s', '-H', 'Host: evil.test', f'{u}/wrk?r={r.choice(["cl", "ch"])}'], None
    raise ValueError(t)


def run_tool(sc, host, port, prefix):
    cmd, n = tool_cmd(sc, host, port)
    try:
        p = subprocess.run(prefix + cmd, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return {'statuses': [], 'end': 'timeout'}
    out = p.stdout
    if sc['tool'].startswith('curl'):
        st = [int(x) for x in out.split() if x.isdigit() and len(x) == 3]
    elif sc['tool'] == 'ab':
        comp = re.search(r'Complete requests:\s+(\d+)', out)
        non2 = re.search(r'Non-2xx responses:\s+(\d+)', out)
        st = [f'complete={comp.group(1) if comp else "?"}', f'non2xx={non2.group(1) if non2 else 0}']
    else:
        m = re.search(r'(\d+) requests in', out)
        non2 = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
        st = [f'requests>0={bool(m and int(m.group(1)) > 0)}', f'non2xx={non2.group(1) if non2 else 0}']
    return {'statuses': st, 'end': f'rc={p.returncode}', 'expected': n}


# --------------------------------------------------------------------------------------------
# The proxies.

PORTS = {'netkit': 0, 'haproxy': 1, 'nginx': 2}


def start(args, log):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def stop(p):
    if p and p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def write_configs(work, listen, base, bport):
    hp = haproxy_http(f'{listen}:{base + 1}', f'127.0.0.1:{bport}', NAME, extra='    http-reuse never\n')
    open(f'{work}/haproxy.cfg', 'w').write(hp)
    ng = nginx_conf(work, f'{listen}:{base + 2}', bport, NAME, connections=1024, upgrade=True)
    open(f'{work}/nginx.conf', 'w').write(ng)


class Stack:
    """Backend + the three proxies, in one namespace (or the host's)."""

    def __init__(self, netkit, work, netns=None, listen='127.0.0.1', base=18600):
        self.work, self.netns, self.listen, self.base = work, netns, listen, base
        self.bport = base + 9
        self.logdir = f'{work}/backend'
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(self.logdir)
        pre = ['ip', 'netns', 'exec', netns] if netns else []
        write_configs(work, listen, base, self.bport)
        log = open(f'{work}/stack.log', 'w')
        self.procs = [
            start(pre + ['python3', os.path.abspath(__file__), 'backend', '127.0.0.1', str(self.bport), self.logdir], log),
            start(pre + [netkit, '-q', 'forward', f'{listen}:{base}', f'127.0.0.1:{self.bport}', '--http-host', NAME], log),
            start(pre + ['haproxy', '-q', '-f', f'{work}/haproxy.cfg'], log),
            start(pre + ['nginx', '-c', f'{work}/nginx.conf', '-p', work, '-g', 'daemon off;'], log),
        ]
        time.sleep(1.0)
        for p in self.procs:
            if p.poll() is not None:
                raise SystemExit(f'a server failed to start: {p.args}\n' + open(f'{work}/stack.log').read())

    def port(self, proxy):
        return self.base + PORTS[proxy]

    def set_epoch(self, epoch):
        with open(self.logdir + '.epoch.tmp', 'w') as f:
            f.write(epoch)
        os.rename(self.logdir + '.epoch.tmp', self.logdir + '.epoch')
        self.epoch = epoch

    def collect(self, wait=3.0):
        """The backend connections accepted in this epoch, once each has closed."""
        t = time.time() + wait
        while True:
            names = [n for n in os.listdir(self.logdir) if n.startswith(self.epoch + '_')]
            bins = {n[:-4] for n in names if n.endswith('.bin')}
            done = {n[:-5] for n in names if n.endswith('.json')}
            if bins <= done or time.time() > t:
                break
            time.sleep(0.05)
        conns = []
        for b in sorted(bins):
            data = open(f'{self.logdir}/{b}.bin', 'rb').read()
            meta = json.load(open(f'{self.logdir}/{b}.json')) if b in done else {'reqs': [], 'tunnel_at': None, 'closed_by': 'open'}
            conns.append((data, meta))
            for ext in ('.bin', '.json'):
                try:
                    os.unlink(f'{self.logdir}/{b}{ext}')
                except FileNotFoundError:
                    pass
        return conns

    def down(self):
        for p in self.procs:
            stop(p)


def judge_backend(conns, canonical_check):
    """Requests the backend saw, and every violation of the property under any reading."""
    reqs, viol, notes = [], [], []
    for data, meta in conns:
        upto = meta.get('tunnel_at') or len(data)
        for r in meta['reqs']:
            if r.get('partial'):
                raw = base64.b64decode(r['raw_head'])
                hosts = [ln.split(b':', 1)[1].strip().decode('latin-1') for ln in re.split(rb'\r?\n', raw)
                         if ln.lower().startswith(b'host:')]
                if hosts != [NAME]:
                    viol.append(f'partial request head hosts={hosts}')
                reqs.append(('partial', ''))
                continue
            reqs.append((r['m'], r['t'].split('?')[0], r['blen']))
            viol += [f'backend: {v}' for v in violations_of(r)]
        # other readings of the same bytes: CL over TE, CRLF-only lines, no folding
        for prefer, lf_ok, fold in (('cl', True, True), ('te', False, True), ('te', True, False), ('cl', False, False)):
            pos = 0
            seg = data[:upto]
            n = 0
            while pos < len(seg) and n < 2000:
                try:
                    r, pos = parse_request(seg, pos, prefer, lf_ok, fold)
                except (Incomplete, Bad, ValueError):
                    break
                n += 1
                for v in violations_of(r):
                    viol.append(f'reading {prefer}/{"lf" if lf_ok else "crlf"}/{"fold" if fold else "nofold"}: {v}')
        if canonical_check:
            for r in meta['reqs']:
                raw = base64.b64decode(r['raw_head'])
                if re.search(rb'(?<!\r)\n', raw) or b'\n ' in raw or b'\n\t' in raw:
                    notes.append('non-canonical head')
    return reqs, sorted(set(viol)), notes


def final(statuses):
    return [s for s in statuses if not (isinstance(s, int) and 100 <= s < 200 and s != 101)]


def run_scenario(stack, sc, client_prefix, host):
    out = {'i': sc['i'], 'cat': sc['cat'], 'variant': sc.get('variant'), 'how': sc.get('how'), 'tool': sc.get('tool')}
    for proxy in ('netkit', 'haproxy', 'nginx'):
        stack.set_epoch(f"{sc['i']}-{proxy}")
        if 'tool' in sc:
            cres = run_tool(sc, host, stack.port(proxy), client_prefix)
        elif client_prefix:
            scf = f'{stack.work}/scenario.json'
            with open(scf, 'w') as f:
                json.dump(sc, f)
            p = subprocess.run(client_prefix + ['python3', os.path.abspath(__file__), 'client', scf, host,
                                                str(stack.port(proxy))], capture_output=True, text=True, timeout=40)
            cres = json.loads(p.stdout) if p.stdout.strip() else {'statuses': [], 'end': 'client crashed: ' + p.stderr[-300:]}
        else:
            cres = run_client(sc, host, stack.port(proxy))
        conns = stack.collect(4.0)
        reqs, viol, notes = judge_backend(conns, proxy == 'netkit')
        out[proxy] = {'client': cres, 'backend': reqs, 'violations': viol, 'notes': notes,
                      'closed_by': [m.get('closed_by') for _, m in conns]}
    return out


def diff_of(res):
    """The differences between netkit and each peer, as short strings."""
    d = []
    nk = res['netkit']
    for peer in ('haproxy', 'nginx'):
        p = res[peer]
        if final(nk['client']['statuses']) != final(p['client']['statuses']):
            d.append(f"{peer} status: nk={final(nk['client']['statuses'])} {peer}={final(p['client']['statuses'])}")
        nkb = [tuple(x) for x in nk['backend']]
        pb = [tuple(x) for x in p['backend']]
        # nginx sends bodies with its own framing; compare method/path/length
        if nkb != pb:
            d.append(f'{peer} backend: nk={nkb} {peer}={pb}')
        if nk['client'].get('echo') != p['client'].get('echo'):
            d.append(f"{peer} tunnel echo: nk={nk['client'].get('echo')} {peer}={p['client'].get('echo')}")
    return d


def main_run(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument('seed', type=int)
    ap.add_argument('count', type=int)
    ap.add_argument('--netkit', default=NETKIT)
    ap.add_argument('--lab', default=None)
    ap.add_argument('--only', default=None)
    ap.add_argument('--deadline', type=float, default=0)
    ap.add_argument('--tag', default='hostaudit')
    ap.add_argument('--cats', default=None, help='only these categories (comma-separated)')
    ap.add_argument('--replay', default=None, help='take the scenarios from this results file (with --only)')
    ap.add_argument('--base', type=int, default=18600, help='first of the ports (base..base+2, base+9)')
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    if a.replay:
        scs = [json.loads(line)['scenario'] for line in open(a.replay) if '"scenario"' in line]
    else:
        scs = [gen(rng, i) for i in range(a.count)]
    if a.cats:
        scs = [s for s in scs if s['cat'] in a.cats.split(',')]
    if a.only:
        keep = {int(x) for x in a.only.split(',')}
        scs = [s for s in scs if s['i'] in keep]
    os.makedirs(ROOT, exist_ok=True)
    lab = None
    client_prefix, host = [], '127.0.0.1'
    work = f'{ROOT}/work-{a.seed}-{a.base}'
    if a.lab is not None:
        args = [LAB, 'up', '--tag', a.tag, '--host', FAR4] + a.lab.split()
        lab_out = f'{ROOT}/lab-{a.seed}.out'
        lab = start(args, open(lab_out, 'w'))
        kv = {}
        for _ in range(100):
            time.sleep(0.1)
            t = open(lab_out).read()
            if 'far=' in t:
                kv = dict(x.split('=', 1) for x in t.split() if '=' in x)
                break
        if 'far' not in kv:
            stop(lab)
            raise SystemExit('lab did not come up: ' + open(lab_out).read())
        client_prefix = ['ip', 'netns', 'exec', kv['scanner']]
        host = FAR4
        stack = Stack(a.netkit, work, kv['far'], FAR4, a.base)
    else:
        stack = Stack(a.netkit, work, base=a.base)
    suffix = '-lab' if a.lab is not None else ''
    resf = open(f'{ROOT}/results-{a.seed}{suffix}{"-only" if a.only else ""}.jsonl', 'w')
    counts = {'run': 0, 'violations': {'netkit': 0, 'haproxy': 0, 'nginx': 0}, 'differ': 0}
    try:
        for sc in scs:
            if a.deadline and time.time() > a.deadline:
                print('deadline reached', flush=True)
                break
            try:
                res = run_scenario(stack, sc, client_prefix, host)
            except Exception as e:  # a harness fault: recorded, the run goes on
                print(f"#{sc['i']:4d} harness error: {e!r}", flush=True)
                resf.write(json.dumps({'i': sc['i'], 'cat': sc['cat'], 'harness_error': repr(e)}) + '\n')
                continue
            res['diff'] = diff_of(res)
            res['scenario'] = sc
            res['lab'] = a.lab
            counts['run'] += 1
            for p in ('netkit', 'haproxy', 'nginx'):
                if res[p]['violations']:
                    counts['violations'][p] += 1
            if res['diff']:
                counts['differ'] += 1
            resf.write(json.dumps(res) + '\n')
            resf.flush()
            flag = ' VIOLATION(netkit)' if res['netkit']['violations'] else ''

            def short(p):
                st = final(res[p]['client']['statuses'])
                return st if len(st) <= 8 else f'[{len(st)} answers, {sum(1 for x in st if x == 400)} x 400]'
            print(f"#{sc['i']:4d} {sc['cat']:13s} {str(sc.get('variant') or sc.get('tool') or ''):18s} "
                  f"nk={short('netkit')} hp={short('haproxy')} ng={short('nginx')}{flag}", flush=True)
    finally:
        stack.down()
        if lab:
            stop(lab)
    print(json.dumps(counts))


def klass(res, peer):
    """A short class for how netkit differs from one peer."""
    nk, p = res['netkit'], res[peer]
    fs, ps = final(nk['client']['statuses']), final(p['client']['statuses'])
    rej = lambda st: [x for x in st if isinstance(x, int) and x >= 400]
    if fs == ps and [tuple(x) for x in nk['backend']] == [tuple(x) for x in p['backend']]:
        return 'same' if nk['client'].get('echo') == p['client'].get('echo') else 'tunnel differs'
    if rej(fs) and not rej(ps):
        return f'netkit refuses ({rej(fs)[0]}), {peer} passes'
    if rej(ps) and not rej(fs):
        return f'{peer} refuses ({rej(ps)[0]}), netkit passes'
    if fs == ps:
        return 'same statuses, backend differs'
    return 'statuses differ'


def main_report(files):
    import collections
    groups = collections.defaultdict(list)
    total = viol = 0
    for fn in files:
        for line in open(fn):
            r = json.loads(line)
            if 'harness_error' in r:
                groups[('harness error', '')].append(r['i'])
                continue
            total += 1
            if r['netkit']['violations']:
                viol += 1
                groups[('NETKIT VIOLATION', r['cat'])].append(r['i'])
            for peer in ('haproxy', 'nginx'):
                if r[peer]['violations']:
                    groups[(f'{peer} violation', r['cat'])].append(r['i'])
                k = klass(r, peer)
                if k != 'same':
                    groups[(k, f"{r['cat']} {r.get('variant') or r.get('tool') or ''}".strip())].append(r['i'])
    print(f'{total} scenarios, {viol} with a netkit violation')
    for (k, cat), ids in sorted(groups.items()):
        print(f'{len(ids):4d}  {k:45s} {cat:28s} e.g. {ids[:6]}')


EARLY = [b'\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03', b'SSH-2.0-OpenSSH_9.2\r\n', b'\x00\x00\x00\x00',
         b'G\x01ET / HTTP/1.1\r\n', b'GET /\x00 x', b'GET / HTTP/9.9\r\n', b'GET  / HTTP/1.1\r\n',
         b'GET / HTTP/1.1\r\nHo st: a\r\n', b'GET / HTTP/1.1\r\nX: a\r\n b\r\n', b'GET / HTTP/1.1\r\nHost: a\x00b',
         b'GET / HTTP/1.1\r\nHost: a\r\nHost:']


def main_early(netkit):
    """Unfinished heads that cannot become valid: who answers while the client waits."""
    stack = Stack(netkit, f'{ROOT}/work-early', base=18900)
    try:
        for case in EARLY:
            row = []
            for proxy in ('netkit', 'haproxy', 'nginx'):
                s = socket.create_connection(('127.0.0.1', stack.port(proxy)))
                s.sendall(case)
                s.settimeout(2.0)
                try:
                    row.append(f'{proxy} {s.recv(100)[:12]!r}')
                except socket.timeout:
                    row.append(f'{proxy} no answer in 2 s')
                s.close()
            print(f'{case!r:50.50s}', ' | '.join(row))
    finally:
        stack.down()


if __name__ == '__main__':
    if sys.argv[1] == 'early':
        main_early(sys.argv[2] if len(sys.argv) > 2 else NETKIT)
        sys.exit(0)
    if sys.argv[1] == 'report':
        main_report(sys.argv[2:])
        sys.exit(0)
    if sys.argv[1] == 'backend':
        backend_main(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == 'client':
        print(json.dumps(run_client(json.load(open(sys.argv[2])), sys.argv[3], int(sys.argv[4]))))
    elif sys.argv[1] == 'run':
        main_run(sys.argv[2:])
    else:
        print(__doc__)
