#!/usr/bin/env python3
"""How connection ends pass through `netkit forward --http-host` beside direct and HAProxy
(mode http): half-closes, resets, clients and targets leaving, the Host a request sent after
a close-delimited response carries, the forwarder's socket fds before and after.
Loopback only (ports BASE..BASE+1, BASE+9). Each scenario runs direct, netkit, HAProxy in turn;
netkit is judged against direct (timings left out) and its socket fds must come back.

    python3 http_ends.py NETKIT [all|NAME,NAME] [ROUNDS] [BASE]
"""
import os, socket, struct, subprocess, sys, threading, time, signal

from common import haproxy_http, read_all

NK = sys.argv[1]
ONLY = sys.argv[2].split(',') if len(sys.argv) > 2 and sys.argv[2] != 'all' else None
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1
BASE = int(sys.argv[4]) if len(sys.argv) > 4 else 27700
W = f'/tmp/dfw/http-ends-{BASE}'
os.makedirs(W, exist_ok=True)
NAME = 'audit.example'


def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()


def read_head(s, timeout=6):
    s.settimeout(timeout)
    got = b''
    try:
        while b'\r\n\r\n' not in got:
            b = s.recv(1)
            if not b:
                return got, 'eof'
            got += b
        return got, 'ok'
    except ConnectionResetError:
        return got, 'rst'
    except socket.timeout:
        return got, 'timeout'


def send_all(s, data, timeout=6):
    s.settimeout(timeout)
    try:
        s.sendall(data)
        return 'ok'
    except (BrokenPipeError, ConnectionResetError) as e:
        return type(e).__name__
    except socket.timeout:
        return 'timeout'


REQ = b'GET /x HTTP/1.1\r\nHost: evil\r\n\r\n'


def resp(body, extra=b''):
    return b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n' % (len(body), extra) + body


# Each scenario: (client(sock) -> dict, backend(conn) -> dict)
def c_halfclose(s):
    send_all(s, REQ)
    s.shutdown(socket.SHUT_WR)
    b, end = read_all(s)
    return {'got': len(b), 'end': end}


def b_halfclose(c):
    h, st = read_head(c)
    rest, end = read_all(c, timeout=3)
    send_all(c, resp(b'hello'))
    c.close()
    return {'head': st, 'then': end, 'extra': len(rest)}


def c_plain(s):
    send_all(s, REQ)
    b, end = read_all(s)
    return {'got': len(b), 'end': end}


def b_reset_mid(c):
    read_head(c)
    send_all(c, b'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' + b'a' * 1000)
    time.sleep(0.3)
    rst(c)
    return {}


def c_reset_mid(s):
    send_all(s, REQ)
    s.settimeout(6)
    got = 0
    while got < 20000:
        b = s.recv(4096)
        if not b:
            break
        got += len(b)
    rst(s)
    return {'got_20k': got >= 20000}


def b_big_slow(c):
    read_head(c)
    st = send_all(c, b'HTTP/1.1 200 OK\r\nContent-Length: 50000000\r\n\r\n')
    t0 = time.time()
    sent = 0
    c.settimeout(8)
    try:
        while sent < 50_000_000:
            sent += c.send(b'b' * 65536)
        st = 'all'
    except (BrokenPipeError, ConnectionResetError):
        # which error a failed write takes (EPIPE or ECONNRESET) is timing
        st = 'failed'
    except socket.timeout:
        st = 'timeout'
    return {'write': st, 'after': round(time.time() - t0, 1)}


def c_close_early(s):
    send_all(s, REQ)
    s.close()
    return {}


def b_late_answer(c):
    read_head(c)
    _, end = read_all(c, timeout=1)
    time.sleep(0.5)
    r = b_big_slow_send(c)
    return {'saw': end, 'write': r}


def b_big_slow_send(c):
    c.settimeout(8)
    try:
        c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 4000000\r\n\r\n')
        for _ in range(60):
            c.sendall(b'c' * 65536)
            time.sleep(0.01)
        return 'all'
    except (BrokenPipeError, ConnectionResetError) as e:
        return type(e).__name__
    except socket.timeout:
        return 'timeout'


def b_close_no_answer(c):
    read_head(c)
    c.close()
    return {}


def c_keepalive_leave(s):
    send_all(s, REQ)
    h, _ = read_head(s)
    s.recv(5)
    s.close()
    return {'head': h[:12]}


def b_keepalive_wait(c):
    read_head(c)
    send_all(c, resp(b'hello'))
    rest, end = read_all(c, timeout=4)
    return {'then': end, 'extra': len(rest)}


def c_post_halfclose_mid_body(s):
    send_all(s, b'POST /x HTTP/1.1\r\nHost: evil\r\nContent-Length: 1000\r\n\r\n' + b'p' * 500)
    time.sleep(0.2)
    s.shutdown(socket.SHUT_WR)
    b, end = read_all(s)
    return {'got': len(b), 'end': end, 'status': b[:12]}


def b_read_body_then_answer(c):
    h, _ = read_head(c)
    rest, end = read_all(c, timeout=3)
    st = send_all(c, resp(b'ok'))
    c.close()
    return {'body': len(rest), 'then': end, 'write': st}


def c_upload_early_answer(s):
    st = send_all(s, b'POST /x HTTP/1.1\r\nHost: evil\r\nContent-Length: 8000000\r\n\r\n')
    sent = 0
    s.settimeout(4)
    try:
        while sent < 8_000_000:
            sent += s.send(b'u' * 65536)
        st = 'all'
    except (BrokenPipeError, ConnectionResetError):
        st = 'failed'
    except socket.timeout:
        st = 'timeout'
    b, end = read_all(s, timeout=4)
    return {'sent': sent // 1000, 'write': st, 'status': b[:12], 'end': end}


def b_early_413(c):
    read_head(c)
    c.recv(1000)
    send_all(c, b'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    time.sleep(0.1)
    c.close()
    return {}


def c_pipelined_after_closedelim(s):
    send_all(s, b'GET /sse HTTP/1.1\r\nHost: evil\r\n\r\n')
    h, _ = read_head(s)
    time.sleep(0.3)
    send_all(s, b'POST /admin HTTP/1.1\r\nHost: evil2\r\nContent-Length: 0\r\n\r\n')
    time.sleep(0.5)
    s.shutdown(socket.SHUT_WR)
    b, end = read_all(s, timeout=4)
    return {'head': h[:12], 'end': end}


def b_closedelim_keep_reading(c):
    h, _ = read_head(c)
    send_all(c, b'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n')
    rest, end = read_all(c, timeout=3)
    hosts = [l for l in (h + rest).split(b'\r\n') if l.lower().startswith(b'host:')]
    c.close()
    return {'hosts': [x.decode() for x in hosts], 'then': end}


def c_upgrade_then_halfclose(s):
    send_all(s, b'GET /ws HTTP/1.1\r\nHost: evil\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    h, _ = read_head(s)
    send_all(s, b'tunnel-bytes')
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        return {'head': h[:12], 'shutdown': str(e)}
    b, end = read_all(s)
    return {'head': h[:12], 'got': b, 'end': end}


def b_upgrade_echo(c):
    h, _ = read_head(c)
    send_all(c, b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n')
    rest, end = read_all(c, timeout=3)
    send_all(c, b'back:' + rest)
    c.close()
    return {'got': rest, 'then': end}


def c_chunked_halfclose(s):
    send_all(s, b'POST /x HTTP/1.1\r\nHost: evil\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
    s.shutdown(socket.SHUT_WR)
    b, end = read_all(s)
    return {'status': b[:12], 'end': end}


SCEN = {
    'halfclose_after_request': (c_halfclose, b_halfclose),
    'target_reset_mid_response': (c_plain, b_reset_mid),
    'client_reset_mid_response': (c_reset_mid, b_big_slow),
    'client_gone_before_answer': (c_close_early, b_late_answer),
    'target_close_no_answer': (c_plain, b_close_no_answer),
    'keepalive_client_leaves': (c_keepalive_leave, b_keepalive_wait),
    'halfclose_mid_body': (c_post_halfclose_mid_body, b_read_body_then_answer),
    'early_413_during_upload': (c_upload_early_answer, b_early_413),
    'pipelined_after_close_delimited': (c_pipelined_after_closedelim, b_closedelim_keep_reading),
    'upgrade_then_halfclose': (c_upgrade_then_halfclose, b_upgrade_echo),
    'chunked_halfclose_mid_body': (c_chunked_halfclose, b_read_body_then_answer),
}


def fds(pid):
    try:
        return sorted(os.readlink(f'/proc/{pid}/fd/{f}') for f in os.listdir(f'/proc/{pid}/fd'))
    except FileNotFoundError:
        return None


def sock_fds(pid):
    f = fds(pid)
    return None if f is None else sum(1 for x in f if x.startswith('socket:'))


TIMING = {'after', 'sent'}


def untimed(d):
    return {k: (untimed(v) if isinstance(v, dict) else v) for k, v in d.items() if k not in TIMING}


def judge(name, row):
    """netkit against direct: the same ends and bytes (timings left out), every socket back;
    the Host shape: every request the backend saw carries the rewritten Host."""
    nk, direct = dict(row['netkit']), row['direct']
    before, after = nk.pop('fds')
    out = []
    if before != after:
        out.append(f'socket fds {before} -> {after}')
    if name == 'pipelined_after_close_delimited':
        hosts = nk['backend'].get('hosts', [])
        if len(hosts) != 2 or any(h != f'Host: {NAME}' for h in hosts):
            out.append(f'hosts {hosts}')
        nk, direct = untimed(nk), untimed(direct)
        for d in (nk, direct):
            d['backend'].pop('hosts', None)
    if name == 'early_413_during_upload':
        # after relaying the answer the forwarder reads and drops the client's late bytes for
        # a while (as nginx's lingering close) so that a reset does not destroy the answer: a
        # client that finishes its upload in that time sees its write taken, where directly
        # (and through HAProxy) it fails; the answer and the clean end are what count
        nk, direct = untimed(nk), untimed(direct)
        nk['client'].pop('write', None)
        direct['client'].pop('write', None)
    if untimed(nk) != untimed(direct):
        out.append(f'differs: netkit {untimed(nk)} direct {untimed(direct)}')
    return '; '.join(out) or 'same as direct'


def main():
    bport = BASE + 9
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', bport))
    srv.listen(64)
    cfg = haproxy_http(f'127.0.0.1:{BASE + 1}', f'127.0.0.1:{bport}', NAME, extra='    http-reuse never\n')
    open(f'{W}/haproxy.cfg', 'w').write(cfg)
    log = open(f'{W}/stack.log', 'w')
    nk = subprocess.Popen(['timeout', '900', NK, '--json', 'forward', f'127.0.0.1:{BASE}', f'127.0.0.1:{bport}', '--http-host', NAME],
                          stdout=open(f'{W}/nk.jsonl', 'a'), stderr=log, start_new_session=True)
    hp = subprocess.Popen(['timeout', '900', 'haproxy', '-q', '-f', f'{W}/haproxy.cfg'], stdout=log, stderr=log, start_new_session=True)
    time.sleep(1)
    nkpid = int(subprocess.run(['pgrep', '-P', str(nk.pid)], capture_output=True, text=True).stdout.split()[0])
    bad = 0
    try:
        for name, (cf, bf) in SCEN.items():
            if ONLY and name not in ONLY:
                continue
            for r in range(ROUNDS):
                row = {}
                for via, port in (('direct', bport), ('netkit', BASE), ('haproxy', BASE + 1)):
                    before = sock_fds(nkpid)
                    bres = {}

                    def backend():
                        srv.settimeout(8)
                        try:
                            c, _ = srv.accept()
                        except socket.timeout:
                            bres['accept'] = 'timeout'
                            return
                        bres.update(bf(c))
                    t = threading.Thread(target=backend)
                    t.start()
                    s = socket.create_connection(('127.0.0.1', port), timeout=5)
                    cres = cf(s)
                    t.join(15)
                    try:
                        s.close()
                    except OSError:
                        pass
                    time.sleep(2.5)
                    after = sock_fds(nkpid)
                    row[via] = {'client': cres, 'backend': bres}
                    if via == 'netkit':
                        row[via]['fds'] = (before, after)
                verdict = judge(name, row)
                bad += verdict != 'same as direct'
                print(name, r, verdict)
                for via, v in row.items():
                    print('   ', via.ljust(8), v)
                sys.stdout.flush()
        print(f'{bad} scenario runs where netkit differs from direct or kept a socket')
    finally:
        for p in (nk, hp):
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(10)


main()
