#!/usr/bin/env python3
"""How a connection the proxy decides to close ends for a client behind a slow link:
`netkit forward --http-host`, HAProxy (mode http) and nginx, each in the far namespace of a
netkit-lab (`--delay 50ms --rate 1mbit` by default), the client in the scanner namespace.
Needs root, haproxy, nginx.

Scenarios (the client reads everything to EOF/RST; what counts is whether it got all of the
response it is owed):
  drain     GET /big (300 KB, answered after 0.3 s); the proxy is stopped gracefully (SIGTERM,
            HAProxy SIGUSR1, nginx SIGQUIT) before the answer, so that answer is the last one,
            marked `Connection: close`; the client pipelines a next request every 0.25 s.
  bad400    GET /big then a malformed request; the client goes on sending 1 KB every 0.1 s.
  upload413 POST with Content-Length 8 MB; the backend answers 413 and closes after the head
            (nginx answers its own 413: client_max_body_size 1m); the client sends until its
            write fails or 4 s pass, then reads.
  idle      (item 2) keep-alive client, one request answered, idle; the proxy is stopped, the
            client sends its next request after DELAY: answered, or reset/EOF?

    python3 http_linger.py NETKIT[,NETKIT2] [SCENARIOS] [ROUNDS] [LAB_ARGS...]
"""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time

from common import KEEPALIVE_60S, OK, haproxy_http, http_backend, nginx_proxy, read_all

HERE = os.path.abspath(__file__)
BIG = 300_000
FAR = '198.19.254.6'
BACKEND = 9001
PORTS = {'haproxy': 9011, 'nginx': 9012}


# ---------------------------------------------------------------- backend (far namespace)
def answer(line):
    """The backend's reply to a request line: 413 then close for /upload, 300 KB 0.3 s later
    for /big, else `ok`."""
    if b'/upload' in line:
        return (b'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n'
                b'Connection: close\r\n\r\n'), 0.1
    if b'/big' in line:
        time.sleep(0.3)
        return b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % BIG + b'b' * BIG, None
    return OK, None


# ---------------------------------------------------------------- client (scanner namespace)
def first_response(got):
    """Status, whether it says Connection: close, and how much of its body came (of how much)."""
    if b'\r\n\r\n' not in got:
        return {'status': got[:12].decode('latin1'), 'body': 0}
    head, rest = got.split(b'\r\n\r\n', 1)
    lines = head.decode('latin1').split('\r\n')
    length = 0
    close = False
    for l in lines[1:]:
        k, _, v = l.partition(':')
        if k.strip().lower() == 'content-length':
            length = int(v)
        if k.strip().lower() == 'connection' and 'close' in v.lower():
            close = True
    return {'status': lines[0][9:12], 'close': close, 'body': min(len(rest), length),
            'whole': len(rest) >= length, 'after': len(rest) - length}


def keep_sending(s, piece, every, count):
    def run():
        for _ in range(count):
            time.sleep(every)
            try:
                s.send(piece)
            except OSError:
                return
    threading.Thread(target=run, daemon=True).start()


def client(scen, port, arg):
    s = socket.create_connection((FAR, port), timeout=10)
    res = {}
    if scen == 'drain':
        s.sendall(b'GET /big HTTP/1.1\r\nHost: x\r\n\r\n')
        print('sent', flush=True)
        time.sleep(0.4)
        keep_sending(s, b'GET /next HTTP/1.1\r\nHost: x\r\n\r\n', 0.25, 40)
        got, end = read_all(s, 20)
        res = first_response(got)
    elif scen == 'bad400':
        s.sendall(b'GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n')
        keep_sending(s, b'j' * 1000, 0.1, 150)
        got, end = read_all(s, 20)
        res = first_response(got)
        second = got.find(b'HTTP/1.1 400')
        res['400'] = second >= 0
    elif scen == 'upload413':
        s.sendall(b'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\n\r\n')
        sent, st = 0, 'all'
        s.settimeout(4)
        try:
            while sent < 8_000_000:
                sent += s.send(b'u' * 65536)
        except (BrokenPipeError, ConnectionResetError):
            st = 'failed'
        except socket.timeout:
            st = 'timeout'
        got, end = read_all(s, 10)
        res = {'write': st, 'sent_kb': sent // 1000, 'status': got[9:12].decode('latin1')}
    elif scen == 'idle':
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        s.settimeout(5)
        s.recv(65536)
        print('sent', flush=True)
        time.sleep(float(arg))
        try:
            s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
            got, end = read_all(s, 5)
        except OSError as e:
            got, end = b'', 'write ' + type(e).__name__
        res = {'status': got[9:12].decode('latin1') or '-'}
    res['end'] = end
    print(json.dumps(res), flush=True)


# ---------------------------------------------------------------- main (host namespace)
def ns(name, args, **kw):
    return subprocess.Popen(['ip', 'netns', 'exec', name] + args, **kw)


def start(kind, far, work, nk=None):
    if kind.startswith('netkit'):
        port = 9010 + int(kind[6:] or 0) * 10
        p = ns(far, ['timeout', '120', nk, 'forward', f'0.0.0.0:{port}', f'127.0.0.1:{BACKEND}',
                     '--http-host', 'a.example'], stderr=subprocess.DEVNULL)
        return p, signal.SIGTERM, port
    if kind == 'haproxy':
        cfg = f'{work}/haproxy.cfg'
        open(cfg, 'w').write(haproxy_http(f'0.0.0.0:{PORTS[kind]}', f'127.0.0.1:{BACKEND}',
                                          'a.example', KEEPALIVE_60S))
        return ns(far, ['haproxy', '-db', '-f', cfg], stderr=subprocess.DEVNULL), \
            signal.SIGUSR1, PORTS[kind]
    args = ['timeout', '120'] + nginx_proxy(work, f'0.0.0.0:{PORTS[kind]}', BACKEND, 'a.example')
    return ns(far, args, stderr=subprocess.DEVNULL), signal.SIGQUIT, PORTS[kind]


def run_one(kind, scen, scanner, far, work, nk, arg):
    p, sig, port = start(kind, far, work, nk)
    try:
        time.sleep(0.7)
        c = ns(scanner, ['timeout', '60', sys.executable, HERE, 'client', scen, str(port), str(arg)],
               stdout=subprocess.PIPE, text=True)
        if scen in ('drain', 'idle'):
            c.stdout.readline()
            time.sleep(0.1)
            p.send_signal(sig)
        out = c.communicate(timeout=70)[0].strip().splitlines()
        return out[-1] if out else 'no output'
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM if kind != 'nginx' else signal.SIGINT)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    nks = sys.argv[1].split(',')
    scens = (sys.argv[2] if len(sys.argv) > 2 else 'drain,bad400,upload413').split(',')
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    lab_args = sys.argv[4:] or ['--delay', '50ms', '--rate', '1mbit']
    lab_bin = os.environ.get('DFW_LAB', 'netkit-lab')
    tag = os.environ.get('LAB_TAG', 'fwl')
    lab = subprocess.Popen(['timeout', '1800', lab_bin, 'up', '--tag', tag] + lab_args,
                           stdout=subprocess.PIPE, text=True)
    work = tempfile.mkdtemp(prefix='http-linger-')
    be = None
    try:
        line = lab.stdout.readline()
        names = dict(kv.split('=', 1) for kv in line.split())
        scanner, far = names['scanner'], names['far']
        be = ns(far, ['timeout', '1800', sys.executable, HERE, 'backend'])
        time.sleep(0.5)
        kinds = [f'netkit{i}' for i in range(len(nks))] + ['haproxy', 'nginx']
        for r in range(rounds):
            for scen in scens:
                name, _, arg = scen.partition(':')
                for kind in kinds:
                    nk = nks[int(kind[6:])] if kind.startswith('netkit') else None
                    label = nk if nk else kind
                    print(f'{name}{":" + arg if arg else ""} r{r} {label}: '
                          f'{run_one(kind, name, scanner, far, work, nk, arg or 0)}', flush=True)
    finally:
        if be:
            be.terminate()
            be.wait(10)
        lab.terminate()
        lab.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    if sys.argv[1] == 'backend':
        http_backend(BACKEND, answer, wait=True)
    elif sys.argv[1] == 'client':
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
