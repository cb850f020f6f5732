#!/usr/bin/env python3
"""Reloads under load (loopback): `netkit forward --config` sent SIGHUP every RELOAD_EVERY
seconds while CLIENTS connections echo random-sized streams through it, the config
alternating between two versions (the same TCP listen address to target A, then to target B
with other options and a second rule; a `udp:` rule to echo A, then to echo B, sessions idle after 2 s), beside
HAProxy in master-worker mode reloaded by SIGUSR2 (TCP only: it has no UDP). Every TCP
stream must come back whole (sha256 of the echo equals what was sent), no connect may be
refused, no connection reset; UDP datagrams carry their client's id and sequence number, so a
reply reaching another client or coming twice is seen; a lost one is counted (a changed udp:
rule hands its socket to the new rule at once, docs/forward-config.md: none should be).

    python3 reload_busy.py NETKIT[,NETKIT2] [SECONDS] [CLIENTS] [RELOAD_EVERY] [BASE] [TOOLS]

TOOLS: comma-separated of netkit, haproxy (both by default). Ports BASE..BASE+9.
"""
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def echo_tcp(port, served):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', port))
    ls.listen(512)

    def one(c):
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            served[port] = served.get(port, 0) + 1
            threading.Thread(target=one, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return ls


def echo_udp(port, served):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', port))

    def loop():
        while True:
            try:
                b, a = s.recvfrom(65536)
            except OSError:
                return
            served[port] = served.get(port, 0) + 1
            s.sendto(b, a)

    threading.Thread(target=loop, daemon=True).start()
    return s


def tcp_client(port, until, out, lock, rnd):
    while time.time() < until:
        n = rnd.choice([0, 1, 1000, 65536, 300_000, 2_000_000])
        data = rnd.randbytes(n)
        got = bytearray()
        try:
            c = socket.create_connection(('127.0.0.1', port), timeout=10)
        except OSError as e:
            with lock:
                out.append(('connect', type(e).__name__))
            continue

        def send():
            try:
                c.sendall(data)
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        t = threading.Thread(target=send, daemon=True)
        t.start()
        end = 'eof'
        try:
            while True:
                b = c.recv(262144)
                if not b:
                    break
                got += b
        except ConnectionResetError:
            end = 'rst'
        except socket.timeout:
            end = 'timeout'
        except OSError as e:
            end = type(e).__name__
        t.join(10)
        c.close()
        ok = end == 'eof' and hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        with lock:
            out.append(('ok',) if ok else ('bad', n, len(got), end))


def udp_client(port, until, cid, out, lock):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.005)
    seq = 0
    got = {}
    wrong = 0

    def tally(reply):
        # 1 when the reply is another client's (routed to the wrong one), else counted in got.
        parts = reply.split(b':', 2)
        if int(parts[0]) != cid:
            return 1
        got[int(parts[1])] = got.get(int(parts[1]), 0) + 1
        return 0

    while time.time() < until:
        s.sendto(b'%d:%d:' % (cid, seq) + b'x' * (seq % 300), ('127.0.0.1', port))
        seq += 1
        t_end = time.time() + 0.01
        while time.time() < t_end:
            try:
                b = s.recv(65536)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                break
            wrong += tally(b)
    time.sleep(0.3)
    s.settimeout(0.05)
    while True:
        try:
            b = s.recv(65536)
        except (socket.timeout, OSError):
            break
        wrong += tally(b)
    with lock:
        out.append((seq, len(got), sum(v - 1 for v in got.values()), wrong))
    s.close()


def nk_conf(base, v):
    a, b, ua, ub = base + 1, base + 2, base + 3, base + 4
    if v == 0:
        return (f'[[rule]]\nlisten = "127.0.0.1:{base}"\ntarget = "127.0.0.1:{a}"\n\n'
                f'[[rule]]\nlisten = "udp:127.0.0.1:{base + 5}"\ntarget = "udp:127.0.0.1:{ua}"\n'
                'idle_timeout = "2s"\n')
    return (f'[[rule]]\nlisten = "127.0.0.1:{base}"\ntarget = "127.0.0.1:{b}"\nmax_conns = 500\n'
            f'idle_timeout = "30s"\nkeepalive = "20s"\n\n'
            f'[[rule]]\nlisten = "127.0.0.1:{base + 6}"\ntarget = "127.0.0.1:{a}"\n\n'
            f'[[rule]]\nlisten = "udp:127.0.0.1:{base + 5}"\ntarget = "udp:127.0.0.1:{ub}"\n'
            'idle_timeout = "2s"\n')


def hap_conf(base, v):
    a, b = base + 1, base + 2
    srv = f'127.0.0.1:{a}' if v == 0 else f'127.0.0.1:{b}'
    extra = '' if v == 0 else f'\nlisten l2\n  bind 127.0.0.1:{base + 6}\n  server s1 127.0.0.1:{a}\n'
    return ('global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 10s\n'
            '  timeout client 60s\n  timeout server 60s\n'
            f'listen l1\n  bind 127.0.0.1:{base}\n  server s1 {srv}\n' + extra)


def fds(pid):
    try:
        return len(os.listdir(f'/proc/{pid}/fd'))
    except OSError:
        return -1


def run(tool, binary, seconds, clients, every, base):
    served = {}
    socks = [echo_tcp(base + 1, served), echo_tcp(base + 2, served),
             echo_udp(base + 3, served), echo_udp(base + 4, served)]
    work = tempfile.mkdtemp(prefix='reload-busy-')
    cfg = os.path.join(work, 'cfg')
    conf = nk_conf if tool == 'netkit' else hap_conf
    with open(cfg, 'w') as f:
        f.write(conf(base, 0))
    log = open(os.path.join(work, 'log'), 'w')
    if tool == 'netkit':
        p = subprocess.Popen([binary, 'forward', '--config', cfg] + ([] if os.environ.get('VERBOSE') else ['-q']), stdout=log, stderr=log,
                             start_new_session=True)
    else:
        p = subprocess.Popen(['haproxy', '-W', '-db', '-f', cfg], stdout=log, stderr=log,
                             start_new_session=True)
    time.sleep(0.8)
    fd0 = fds(p.pid)
    until = time.time() + seconds
    out, uout, lock = [], [], threading.Lock()
    ths = [threading.Thread(target=tcp_client, args=(base, until, out, lock, random.Random(i)))
           for i in range(clients)]
    if tool == 'netkit':
        ths += [threading.Thread(target=udp_client, args=(base + 5, until, i, uout, lock))
                for i in range(4)]
    for t in ths:
        t.start()
    reloads, v = 0, 0
    while time.time() < until:
        time.sleep(every)
        if time.time() >= until:
            break
        v ^= 1
        with open(cfg + '.new', 'w') as f:
            f.write(conf(base, v))
        os.rename(cfg + '.new', cfg)
        os.kill(p.pid, signal.SIGHUP if tool == 'netkit' else signal.SIGUSR2)
        reloads += 1
    for t in ths:
        t.join(60)
    time.sleep(3)
    fd1 = fds(p.pid)
    if fd1 > fd0:
        subprocess.run(f'ls -l /proc/{p.pid}/fd | tail -n +2 | sed "s/.*-> //" | sort | uniq -c | sort -rn | head -5; '
                       f'ss -anp | grep "pid={p.pid}," | awk \'{{print $1, $2, $5, $6}}\' | sort | uniq -c | head -20',
                       shell=True)
    alive = p.poll() is None
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    log.close()
    for s in socks:
        s.close()
    ok = sum(1 for o in out if o[0] == 'ok')
    bad = [o for o in out if o[0] != 'ok']
    print(f'{tool} {binary if tool == "netkit" else ""}: {reloads} reloads, streams {ok} whole, '
          f'{len(bad)} not: {bad[:8]}; alive {alive}; fds {fd0} -> {fd1}; '
          f'target A {served.get(base + 1, 0)} B {served.get(base + 2, 0)}', flush=True)
    if uout:
        sent = sum(u[0] for u in uout)
        got = sum(u[1] for u in uout)
        print(f'  udp: {sent} sent, {got} answered, {sum(u[2] for u in uout)} twice, '
              f'{sum(u[3] for u in uout)} to another client; echo A {served.get(base + 3, 0)} '
              f'B {served.get(base + 4, 0)}', flush=True)
    print(f'  log: {work}/log', flush=True)


def main():
    bins = sys.argv[1].split(',')
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    every = float(sys.argv[4]) if len(sys.argv) > 4 else 0.25
    base = int(sys.argv[5]) if len(sys.argv) > 5 else 29400
    tools = sys.argv[6].split(',') if len(sys.argv) > 6 else ['netkit', 'haproxy']
    for tool in tools:
        for b in (bins if tool == 'netkit' else [None]):
            run(tool, b, seconds, clients, every, base)
            base += 10


if __name__ == '__main__':
    main()
