#!/usr/bin/env python3
"""A graceful stop of `netkit forward --http-host` (SIGTERM), HAProxy (soft stop, SIGUSR1) and
nginx (graceful quit, SIGQUIT). Loopback only.

MODE idle: a keep-alive client idle between requests: how long its connection is held and
the proxy lives on; MODE idleopen: the same with a backend that keeps its side of a
connection open after the proxy's FIN. MODE busy: CLIENTS keep-alive clients sending requests back to back when
the stop comes: how many requests met the close without an answer (read errors), and how many
connections ended on a response marked `Connection: close`. MODE wrk: wrk stopped mid-run
(its socket errors). NETKIT may name several binaries, comma-separated (main's and a
branch's, run in turn in every round); ROUNDS is the number of stops of each proxy, and a
busy or wrk run ends with each one's errors over all its stops.

    python3 http_drain.py NETKIT[,NETKIT2] [ROUNDS] [BASE] [MODE]  # ports BASE (proxy), BASE+1
"""
import shutil, signal, socket, subprocess, sys, tempfile, threading, time

from common import KEEPALIVE_60S, haproxy_http, http_backend, nginx_proxy

NETKITS = sys.argv[1].split(',')
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BASE = int(sys.argv[3]) if len(sys.argv) > 3 else 27750
MODE = sys.argv[4] if len(sys.argv) > 4 else 'idle'
CLIENTS = 8
PROXY, BACKEND = BASE, BASE + 1


def start(kind, work):
    if kind.startswith('netkit'):
        args = [NETKITS[int(kind[6:] or 1) - 1], 'forward', f'127.0.0.1:{PROXY}', f'127.0.0.1:{BACKEND}', '--http-host', 'a.example']
        return subprocess.Popen(args, stderr=subprocess.DEVNULL), signal.SIGTERM
    if kind == 'haproxy':
        cfg = f'{work}/haproxy.cfg'
        open(cfg, 'w').write(haproxy_http(f'127.0.0.1:{PROXY}', f'127.0.0.1:{BACKEND}', 'a.example',
                                          KEEPALIVE_60S))
        return subprocess.Popen(['haproxy', '-db', '-f', cfg], stderr=subprocess.DEVNULL), signal.SIGUSR1
    args = nginx_proxy(work, f'127.0.0.1:{PROXY}', BACKEND, 'a.example')
    return subprocess.Popen(args, stderr=subprocess.DEVNULL), signal.SIGQUIT


def one(kind, work):
    p, sig = start(kind, work)
    try:
        time.sleep(1)
        c = socket.create_connection(('127.0.0.1', PROXY))
        c.settimeout(60)
        c.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        got = b''
        while not got.endswith(b'ok'):
            got += c.recv(100)
        time.sleep(0.5)
        t0 = time.time()
        p.send_signal(sig)
        try:
            rest = c.recv(100)
            seen = 'end of file' if rest == b'' else repr(rest)
            held = f'{seen} at {time.time() - t0:.2f} s'
        except OSError as e:
            held = f'{e} at {time.time() - t0:.2f} s'
        p.wait(60)
        return f'{kind:8} idle client: {held}; exited after {time.time() - t0:.2f} s (rc {p.returncode})'
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def response(c, buf):
    """Reads one response (Content-Length framed) from `c`: (head, rest of buf) or None when
    the connection ended (or failed) before it was whole."""
    try:
        while b'\r\n\r\n' not in buf:
            b = c.recv(65536)
            if not b:
                return None
            buf += b
        head, buf = buf.split(b'\r\n\r\n', 1)
        length = 0
        for line in head.lower().split(b'\r\n')[1:]:
            if line.startswith(b'content-length:'):
                length = int(line.split(b':')[1])
        while len(buf) < length:
            b = c.recv(65536)
            if not b:
                return None
            buf += b
        return head.lower(), buf[length:]
    except OSError:
        return None


def hammer(counts, lock, until):
    """One keep-alive client: requests back to back, reconnecting after a close, until the
    proxy refuses connections or `until`."""
    while time.time() < until:
        try:
            c = socket.create_connection(('127.0.0.1', PROXY), timeout=5)
        except OSError:
            return
        buf, served = b'', 0
        while time.time() < until:
            try:
                c.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            except OSError:
                got = None
            else:
                got = response(c, buf)
            if got is None:
                with lock:
                    counts['read errors'] += 1
                break
            head, buf = got
            served += 1
            if b'connection: close' in head:
                with lock:
                    counts['ended on Connection: close'] += 1
                break
        with lock:
            counts['responses'] += served
        c.close()


def busy(kind, work):
    p, sig = start(kind, work)
    try:
        time.sleep(1)
        counts, lock = dict.fromkeys(['responses', 'read errors', 'ended on Connection: close'], 0), threading.Lock()
        until = time.time() + 10
        threads = [threading.Thread(target=hammer, args=(counts, lock, until)) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(1)
        p.send_signal(sig)
        for t in threads:
            t.join()
        p.wait(60)
        line = f'{kind:8} {CLIENTS} busy clients: ' + ', '.join(f'{k} {v}' for k, v in counts.items())
        return line, counts['read errors']
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def wrk(kind, work):
    p, sig = start(kind, work)
    try:
        time.sleep(1)
        w = subprocess.Popen(['wrk', '-t2', f'-c{CLIENTS}', '-d3s', f'http://127.0.0.1:{PROXY}/'],
                             stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        p.send_signal(sig)
        out = w.communicate(timeout=60)[0]
        p.wait(60)
        errors = [l.strip() for l in out.splitlines() if 'errors' in l] or ['no socket errors']
        read = errors[0].split('read ')[1].split(',')[0] if 'read ' in errors[0] else '0'
        return f'{kind:8} wrk: {errors[0]}', int(read)
    finally:
        for q in (p,):
            if q.poll() is None:
                q.kill()
                q.wait()


def summary(errors):
    """Each proxy's read errors over all its stops."""
    for kind, counts in errors.items():
        hit = sum(1 for n in counts if n)
        print(f'{kind:8} {len(counts)} stops: {sum(counts)} read errors, in {hit} stops '
              f'(most {max(counts, default=0)} in one)', flush=True)


def main():
    http_backend(BACKEND, keep_open=MODE == 'idleopen')
    work = tempfile.mkdtemp(prefix='http-drain-')
    kinds = ['netkit'] if len(NETKITS) == 1 else [f'netkit{i + 1}' for i in range(len(NETKITS))]
    kinds += ['haproxy', 'nginx']
    errors = {kind: [] for kind in kinds}
    try:
        for _ in range(ROUNDS):
            for kind in kinds:
                if MODE in ('idle', 'idleopen'):
                    print(one(kind, work), flush=True)
                    continue
                line, n = {'busy': busy, 'wrk': wrk}[MODE](kind, work)
                errors[kind].append(n)
                print(line, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if MODE not in ('idle', 'idleopen'):
        summary(errors)


main()
