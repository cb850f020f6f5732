#!/usr/bin/env python3
"""Traffic peer for the differential forward audit.

server SPEC_JSON ADDR PORT OUTFILE  -- accept connections, one thread each, log one JSON line per conn
client SPEC_JSON ADDR PORT          -- run spec['clients'] connections at once, print JSON list
udpserver ADDR PORT                 -- echo datagrams back (reply = sha of request + request)
udpclient SPEC_JSON ADDR PORT       -- several clients, request/reply and bulk; print JSON
"""
import hashlib, json, os, random, socket, struct, sys, threading, time

BLOCK = random.Random(7).randbytes(1 << 16)


def stream(tag, n):
    """Deterministic content: 64 KiB blocks, each rotated by its index and the tag."""
    out = bytearray()
    k = 0
    while len(out) < n:
        r = (k * 131 + tag * 977) % len(BLOCK)
        out += BLOCK[r:] + BLOCK[:r]
        k += 1
    return bytes(out[:n])


def family(addr):
    if addr.startswith('/'):
        return socket.AF_UNIX
    return socket.AF_INET6 if ':' in addr else socket.AF_INET


def linger0(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))


class Side:
    """Both directions of one connection, from one end."""

    def __init__(self, sock, n_send, tag_send, n_expect, tag_expect, slow=False, reset_at=None):
        self.s = sock
        self.n_send = n_send
        self.tag_send = tag_send
        self.n_expect = n_expect
        self.tag_expect = tag_expect
        self.slow = slow
        self.reset_at = reset_at  # ('recv'|'send', nbytes) -> linger0 close
        self.sent = 0
        self.recvd = bytearray()
        self.recv_end = None
        self.send_err = None
        self.t0 = time.time()
        self.t_end = None
        self.did_reset = False
        self.lock = threading.Lock()
        self.closed = False

    def do_reset(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.did_reset = True
            try:
                linger0(self.s)
                self.s.close()
            except OSError:
                pass

    def sender(self, data, after_send=None):
        try:
            view = memoryview(data)
            while self.sent < len(data):
                if self.closed:
                    return
                lim = len(data)
                if self.reset_at and self.reset_at[0] == 'send':
                    lim = min(lim, self.reset_at[1])
                    if self.sent >= lim:
                        self.do_reset()
                        return
                n = self.s.send(view[self.sent:min(lim, self.sent + 65536)])
                self.sent += n
            if self.reset_at and self.reset_at[0] == 'send' and self.sent >= self.reset_at[1]:
                self.do_reset()
                return
            if after_send:
                after_send()
        except OSError as e:
            if not self.closed:
                self.send_err = e.__class__.__name__ + ':' + (os.strerror(e.errno) if e.errno else str(e))

    def receiver(self):
        try:
            while True:
                if self.closed:
                    self.recv_end = self.recv_end or 'self-closed'
                    return
                want = 65536
                if self.reset_at and self.reset_at[0] == 'recv':
                    want = max(1, min(want, self.reset_at[1] - len(self.recvd)))
                    if len(self.recvd) >= self.reset_at[1]:
                        self.do_reset()
                        self.recv_end = 'self-reset'
                        return
                if self.slow:
                    want = min(want, 4096)
                    time.sleep(0.002)
                b = self.s.recv(want)
                if not b:
                    self.recv_end = 'eof'
                    self.t_end = time.time() - self.t0
                    return
                self.recvd += b
        except socket.timeout:
            self.recv_end = 'timeout'
        except ConnectionResetError:
            self.recv_end = 'rst'
            self.t_end = time.time() - self.t0
        except OSError as e:
            if self.closed:
                self.recv_end = self.recv_end or 'self-closed'
            else:
                self.recv_end = 'err:' + str(e.errno)

    def summary(self):
        exp = stream(self.tag_expect, len(self.recvd)) if len(self.recvd) <= self.n_expect else None
        return {
            'sent': self.sent,
            'recv': len(self.recvd),
            'recv_full': len(self.recvd) == self.n_expect,
            'recv_prefix_ok': exp is not None and hashlib.sha256(exp).digest() == hashlib.sha256(bytes(self.recvd)).digest(),
            'recv_sha': hashlib.sha256(bytes(self.recvd)).hexdigest()[:16],
            'end': self.recv_end,
            'send_err': self.send_err,
            'did_reset': self.did_reset,
            't_end': None if self.t_end is None else round(self.t_end, 3),
        }


def serve_conn(conn, spec, idx, out, lock):
    conn.settimeout(spec.get('io_timeout', 60))
    # the client sends its index in the first 4 bytes? No: tag by spec only (same for every client)
    side = Side(conn, spec['n_s2c'], 2, spec['n_c2s'], 1, reset_at=spec.get('srv_reset'))
    data = stream(2, spec['n_s2c'])

    def after_send():
        if spec.get('srv_halfclose_first'):
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    if spec.get('server_first'):
        side.sender(data, after_send)
        rt = threading.Thread(target=side.receiver)
        rt.start()
        rt.join()
    else:
        st = threading.Thread(target=side.sender, args=(data, after_send))
        rt = threading.Thread(target=side.receiver)
        st.start(); rt.start(); st.join(); rt.join()
    # after the client's EOF: close (sends our FIN if not yet sent)
    if not side.closed:
        try:
            if spec.get('srv_linger_close'):
                linger0(conn)
            conn.close()
        except OSError:
            pass
    r = side.summary()
    r['idx'] = idx
    with lock:
        out.write(json.dumps(r) + '\n')
        out.flush()


def server(spec, addr, port, outfile):
    ls = socket.socket(family(addr), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if addr.startswith('/'):
        try:
            os.unlink(addr)
        except OSError:
            pass
        ls.bind(addr)
    else:
        ls.bind((addr, port))
    ls.listen(512)
    out = open(outfile, 'a')
    lock = threading.Lock()
    idx = 0
    print('ready', flush=True)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_conn, args=(c, spec, idx, out, lock), daemon=True).start()
        idx += 1


def one_client(spec, addr, port, res, i):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(spec.get('io_timeout', 60))
    t0 = time.time()
    try:
        if addr.startswith('/'):
            pass
        s.connect(addr if addr.startswith('/') else (addr, port))
    except OSError as e:
        res[i] = {'connect': 'fail:' + e.__class__.__name__}
        return
    side = Side(s, spec['n_c2s'], 1, spec['n_s2c'], 2, slow=spec.get('slow'), reset_at=spec.get('cli_reset'))
    data = stream(1, spec['n_c2s'])
    hc = spec.get('halfclose', 'before')

    def shut():
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    st = threading.Thread(target=side.sender, args=(data, shut if hc == 'before' else None))
    rt = threading.Thread(target=side.receiver)
    st.start(); rt.start()
    st.join()
    if hc == 'after':
        while rt.is_alive() and len(side.recvd) < spec['n_s2c']:
            time.sleep(0.005)
        if not side.closed:
            shut()
    if hc == 'never':
        while rt.is_alive() and len(side.recvd) < spec['n_s2c']:
            time.sleep(0.005)
        if rt.is_alive() and not side.closed:
            # close without a half-close first: the receiver is told it closed itself
            with side.lock:
                side.closed = True
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    rt.join()
    if side.recv_end == 'self-closed' and len(side.recvd) == spec['n_s2c']:
        side.recv_end = 'eof'  # closed after receiving everything: an end as good as EOF
    if True:
        try:
            s.close()
        except OSError:
            pass
    r = side.summary()
    r['connect'] = 'ok'
    r['t'] = round(time.time() - t0, 3)
    res[i] = r


def client(spec, addr, port):
    n = spec.get('clients', 1)
    res = [None] * n
    ts = [threading.Thread(target=one_client, args=(spec, addr, port, res, i)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps(res))


def udpserver(addr, port):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    print('ready', flush=True)
    while True:
        b, a = s.recvfrom(65535)
        s.sendto(hashlib.sha256(b).digest()[:8] + b[:64], a)


def udpclient(spec, addr, port):
    n = spec.get('clients', 3)
    res = [None] * n

    def run(i):
        s = socket.socket(family(addr), socket.SOCK_DGRAM)
        s.settimeout(spec.get('wait', 1.0))
        s.connect((addr, port))
        rng = random.Random(i * 1000 + spec.get('seed', 0))
        sent = got = bad = 0
        for k in range(spec.get('count', 20)):
            size = rng.choice([0, 1, 100, 1400, 1472, 8000, 30000, 65000]) if spec.get('bulk') else rng.randint(1, 200)
            b = bytes([i]) + struct.pack('!I', k) + rng.randbytes(max(0, size - 5))
            b = b[:size] if size < 5 else b
            try:
                s.send(b)
                sent += 1
            except OSError:
                continue
            if spec.get('bulk'):
                continue
            want = hashlib.sha256(b).digest()[:8] + b[:64]
            try:
                while True:
                    r = s.recv(65535)
                    if r == want:
                        got += 1
                        break
                    if r[8:13] != b[:5] and r[8:9] != b[:1]:
                        bad += 1  # not an earlier reply of this client either
            except OSError:
                pass
        if spec.get('bulk'):
            t_end = time.time() + spec.get('wait', 1.0)
            s.settimeout(0.2)
            while time.time() < t_end:
                try:
                    s.recv(65535)
                    got += 1
                except OSError:
                    pass
        res[i] = {'sent': sent, 'got': got, 'bad': bad}

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps(res))


if __name__ == '__main__':
    m = sys.argv[1]
    if m == 'server':
        server(json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif m == 'client':
        client(json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif m == 'udpserver':
        udpserver(sys.argv[2], int(sys.argv[3]))
    elif m == 'udpclient':
        udpclient(json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
