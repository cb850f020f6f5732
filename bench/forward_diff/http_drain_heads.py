#!/usr/bin/env python3
"""The last response of a connection busy when a graceful stop begins, through
`netkit forward --http-host` (SIGTERM), HAProxy (SIGUSR1) and nginx (SIGQUIT): the status lines
and Connection fields the client gets. Cases: ka (the target answers `Connection: keep-alive,
X-Trace`), cont (100 Continue, then 200), h10 (an HTTP/1.0 client asking keep-alive), partial
(the stop comes while the target's head is half sent). Loopback, ports 27870-27871. Reuses
http_drain.py's proxy set-ups.

    python3 http_drain_heads.py NETKIT [CASE,CASE...]
"""
import os, sys, socket, threading, time, tempfile
here = os.path.dirname(os.path.abspath(__file__))
src = open(os.path.join(here, 'http_drain.py')).read().rsplit('\nmain()', 1)[0]
chosen = (sys.argv[2] if len(sys.argv) > 2 else 'ka,cont,h10,partial').split(',')
sys.argv = ['http_drain.py', sys.argv[1], '1', '27870']
exec(src)
CASES = {
  'ka':   (b'GET /ka HTTP/1.1\r\nHost: x\r\n\r\n', b'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Trace\r\nContent-Length: 2\r\n\r\nok'),
  'cont': (b'GET /cont HTTP/1.1\r\nHost: x\r\n\r\n', b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
  'h10':  (b'GET /h10 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
  'partial': (b'GET /p HTTP/1.1\r\nHost: x\r\n\r\n', None),
}
def be():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', BACKEND)); s.listen(16)
    def serve(c):
        buf = b''
        while b'\r\n\r\n' not in buf:
            b = c.recv(4096)
            if not b: return
            buf += b
        path = buf.split(b' ')[1]
        time.sleep(1.2)
        if path == b'/p':
            c.sendall(b'HTTP/1.1 200 OK\r\nContent-Le'); time.sleep(0.8)
            c.sendall(b'ngth: 2\r\n\r\nok')
        else:
            c.sendall(CASES[path.strip(b'/').decode()][1])
        try:
            while c.recv(100): pass
        except OSError: pass
        c.close()
    def loop():
        while True:
            c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
be()
CRLF = b'\r\n'
work = tempfile.mkdtemp()
for case, (req, _) in [i for i in CASES.items() if i[0] in chosen]:
    for kind in ('netkit', 'haproxy', 'nginx'):
        p, sig = start(kind, work)
        try:
            time.sleep(0.8)
            c = socket.create_connection(('127.0.0.1', PROXY)); c.settimeout(10)
            c.sendall(req)
            time.sleep(0.3 if case != 'partial' else 1.5)
            p.send_signal(sig)
            got = b''
            try:
                while True:
                    b = c.recv(4096)
                    if not b: break
                    got += b
            except OSError as e:
                got += f' <{e}>'.encode()
            heads = [h for h in got.split(b'\r\n\r\n') if h.upper().startswith(b'HTTP/')]
            conn = [l for h in heads for l in h.split(b'\r\n') if l.lower().startswith(b'connection')]
            lines = [h.split(CRLF)[0].decode() for h in heads]
            print(f'{case:8} {kind:8} {lines} {conn}', flush=True)
            try:
                p.wait(10)
            except Exception:
                print("  (did not exit in 10 s)")
        finally:
            if p.poll() is None: p.kill(); p.wait()
