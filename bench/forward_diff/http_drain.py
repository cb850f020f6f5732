#!/usr/bin/env python3
"""A graceful stop of `netkit forward --http-host` (SIGTERM), HAProxy (soft stop, SIGUSR1) and
nginx (graceful quit, SIGQUIT). Loopback only.

MODE idle: a keep-alive client idle between requests: how long its connection is held and
the proxy lives on. MODE busy: CLIENTS keep-alive clients sending requests back to back when
the stop comes: how many requests met the close without an answer (read errors), and how many
connections ended on a response marked `Connection: close`. MODE wrk: wrk stopped mid-run
(its socket errors).

    python3 http_drain.py NETKIT [ROUNDS] [BASE] [MODE]  # ports BASE (proxy), BASE+1 (backend)
"""
import os, shutil, signal, socket, subprocess, sys, tempfile, threading, time

NK = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
BASE = int(sys.argv[3]) if len(sys.argv) > 3 else 27750
MODE = sys.argv[4] if len(sys.argv) > 4 else 'idle'
CLIENTS = 8
PROXY, BACKEND = BASE, BASE + 1


def backend():
    """Answers every request `ok` (Content-Length) on the same connection."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', BACKEND))
    s.listen(16)

    def serve(c):
        buf = b''
        c.settimeout(60)
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                buf += b
                while b'\r\n\r\n' in buf:
                    _, buf = buf.split(b'\r\n\r\n', 1)
                    c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
        except OSError:
            pass
        c.close()

    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def start(kind, work):
    if kind == 'netkit':
        args = [NK, 'forward', f'127.0.0.1:{PROXY}', f'127.0.0.1:{BACKEND}', '--http-host', 'a.example']
        return subprocess.Popen(args, stderr=subprocess.DEVNULL), signal.SIGTERM
    if kind == 'haproxy':
        cfg = f'{work}/haproxy.cfg'
        open(cfg, 'w').write(f"""defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
listen a
  bind 127.0.0.1:{PROXY}
  http-request set-header Host a.example
  server s 127.0.0.1:{BACKEND}
""")
        return subprocess.Popen(['haproxy', '-db', '-f', cfg], stderr=subprocess.DEVNULL), signal.SIGUSR1
    os.makedirs(f'{work}/ngx', exist_ok=True)
    w = f'{work}/ngx'
    open(f'{w}/nginx.conf', 'w').write(f"""user root;
worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/err.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {w}/cb; proxy_temp_path {w}/pt;
  fastcgi_temp_path {w}/ft; uwsgi_temp_path {w}/ut; scgi_temp_path {w}/st;
  keepalive_timeout 60s;
  server {{
    listen 127.0.0.1:{PROXY};
    location / {{ proxy_pass http://127.0.0.1:{BACKEND}; proxy_http_version 1.1; proxy_set_header Host a.example; }}
  }}
}}
""")
    args = ['nginx', '-c', f'{w}/nginx.conf', '-p', w, '-g', 'daemon off;']
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
        return f'{kind:8} {CLIENTS} busy clients: ' + ', '.join(f'{k} {v}' for k, v in counts.items())
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
        return f'{kind:8} wrk: {errors[0]}'
    finally:
        for q in (p,):
            if q.poll() is None:
                q.kill()
                q.wait()


def main():
    backend()
    work = tempfile.mkdtemp(prefix='http-drain-')
    try:
        for _ in range(ROUNDS):
            for kind in ('netkit', 'haproxy', 'nginx'):
                run = {'idle': one, 'busy': busy, 'wrk': wrk}[MODE]
                print(run(kind, work), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


main()
