#!/usr/bin/env python3
"""`--balance hash` while a target flaps, beside HAProxy `balance source` (map-based, its
default, and `hash-type consistent`), on loopback. Three targets (127.0.1.1-3) answer each
connection with their name; CLIENTS clients, each from its own address (127.0.2.N), connect
once per round. Rounds: all up; B down (its listener closed: refused); B down, later; B back;
B back, later; then B flapping (down/up every FLAP s) while rounds run. Per proxy and round:
clients served, clients not on their all-up target (moved), and of those, clients of A or C
(moved for nothing: stickiness lost). A client answered by nobody is a wrong answer; so is a
client of an up target moved.
usage: balance_flap.py NETKIT[,NETKIT2] [CLIENTS] [BASE_PORT] [ROUNDS_OF_FLAP]
"""
import os, signal, socket, subprocess, sys, tempfile, threading, time

NETKITS = sys.argv[1].split(',')
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 60
BASE = int(sys.argv[3]) if len(sys.argv) > 3 else 27900
FLAPS = int(sys.argv[4]) if len(sys.argv) > 4 else 6
NAMES = ['A', 'B', 'C']
TPORT = BASE


class Target:
    """A listener on 127.0.1.N:TPORT sending its name to each connection; `down()` closes it
    (connects are refused), `up()` opens it again."""

    def __init__(self, i):
        self.addr, self.name, self.sock = f'127.0.1.{i + 1}', NAMES[i], None
        self.lock = threading.Lock()
        self.up()

    def up(self):
        with self.lock:
            if self.sock:
                return
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((self.addr, TPORT))
            s.listen(512)
            self.sock = s
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def down(self):
        with self.lock:
            if self.sock:
                self.sock.shutdown(socket.SHUT_RDWR)
                self.sock.close()
                self.sock = None

    def serve(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                c.sendall(self.name.encode())
                c.close()
            except OSError:
                pass


def ask(port, i):
    """The name that answers client i (from 127.0.2.i+1) through the proxy on `port`, else why not."""
    s = socket.socket()
    s.settimeout(5)
    try:
        s.bind((f'127.0.2.{i + 1}', 0))
        s.connect(('127.0.0.1', port))
        d = s.recv(10)
        return d.decode() or 'eof'
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()


def round_(port):
    out = [None] * CLIENTS
    ts = [threading.Thread(target=lambda i=i: out.__setitem__(i, ask(port, i))) for i in range(CLIENTS)]
    for t in ts:
        t.start()
        time.sleep(0.002)
    for t in ts:
        t.join()
    return out


def haproxy(port, cfgdir, consistent, check):
    lines = ['global', '  maxconn 1000', 'defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 10s',
             '  timeout server 10s', '  retries 2', '  option redispatch', 'listen l', f'  bind 127.0.0.1:{port}',
             '  balance source'] + (['  hash-type consistent'] if consistent else [])
    for i, n in enumerate(NAMES):
        lines.append(f'  server {n} 127.0.1.{i + 1}:{TPORT}' + (' check inter 500ms fall 1 rise 1' if check else ''))
    path = os.path.join(cfgdir, f'h{port}.cfg')
    open(path, 'w').write('\n'.join(lines) + '\n')
    return subprocess.Popen(['haproxy', '-f', path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    targets = [Target(i) for i in range(3)]
    cfgdir = tempfile.mkdtemp(prefix='bflap')
    tgt = ','.join(f'127.0.1.{i + 1}:{TPORT}' for i in range(3))
    proxies = []
    for k, nk in enumerate(NETKITS):
        proxies.append((f'netkit{k}', lambda p, nk=nk: [nk, 'forward', '-q', f'127.0.0.1:{p}', tgt, '--balance', 'hash']))
        proxies.append((f'netkit{k} --check', lambda p, nk=nk: [nk, 'forward', '-q', f'127.0.0.1:{p}', tgt, '--balance', 'hash',
                                                               '--check', 'tcp', '--check-interval', '500ms']))
    proxies += [('haproxy map', 'map', False), ('haproxy consistent', 'cons', False),
                ('haproxy map check', 'map', True), ('haproxy consistent check', 'cons', True)]
    for j, p in enumerate(proxies):
        name = p[0]
        port = BASE + 10 + j
        for t in targets:
            t.up()
        if name.startswith('netkit'):
            proc = subprocess.Popen(p[1](port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            proc = haproxy(port, cfgdir, p[1] == 'cons', p[2])
        time.sleep(1.2)
        try:
            base = round_(port)
            rows = [('all up', base)]
            targets[1].down()
            rows.append(('B down', round_(port)))
            time.sleep(1.5)
            rows.append(('B down, 1.5 s on', round_(port)))
            targets[1].up()
            rows.append(('B back', round_(port)))
            time.sleep(1.5)
            rows.append(('B back, 1.5 s on', round_(port)))
            for f in range(FLAPS):
                (targets[1].down if f % 2 == 0 else targets[1].up)()
                rows.append((f'flap {f} ({"down" if f % 2 == 0 else "up"})', round_(port)))
                time.sleep(0.3)
            targets[1].up()
            time.sleep(1.5)
            rows.append(('B up again, 1.5 s on', round_(port)))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        share = {n: base.count(n) for n in NAMES}
        print(f'== {name}: all-up shares {share}')
        for label, got in rows:
            served = sum(1 for g in got if g in NAMES)
            moved = [i for i in range(CLIENTS) if got[i] != base[i]]
            of_up = [i for i in moved if base[i] != 'B']
            on_b = sum(1 for g in got if g == 'B')
            fails = sorted({g for g in got if g not in NAMES})
            print(f'  {label:22} served {served}/{CLIENTS} on B {on_b:2} moved {len(moved):2} '
                  f'(clients of A/C: {len(of_up)}) {fails if fails else ""}', flush=True)


if __name__ == '__main__':
    main()
