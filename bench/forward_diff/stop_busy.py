#!/usr/bin/env python3
"""A graceful stop while plain TCP transfers are under way behind an impaired link: netkit
forward (SIGTERM; SIGTERM twice with `twice`), HAProxy tcp mode (SIGUSR1, soft stop) and socat
(SIGTERM; `haproxy-hard`: SIGTERM), the forwarder beside the client in the scanner namespace of a netkit-lab, the
target (peer.py server) in the far one. CLIENTS connections each move C2S bytes up and S2C
down (the client half-closes after sending); the stop comes STOP_AFTER seconds in. Does every
byte arrive, how does each side see the end, when does the forwarder exit? New connections
after the stop must be refused.

    python3 stop_busy.py NETKIT [ROUNDS] [CLIENTS] [C2S] [S2C] [STOP_AFTER] [LAB_ARGS...]

Needs root, haproxy, socat; `DFW_LAB` names the netkit-lab binary, `LAB_TAG` the tag
(`fsb` by default).
"""
import json, os, signal, subprocess, sys, time

from common import LAB
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'peer.py')
FAR = '198.18.1.10'
TAG = os.environ.get('LAB_TAG', 'fsb')
# netkit-twice: a second SIGTERM 0.3 s after the first (netkit closes the rest at once);
# haproxy-hard: SIGTERM (HAProxy's hard stop)
TOOLS = os.environ.get('TOOLS', 'netkit,netkit-twice,haproxy,haproxy-hard,socat').split(',')


def start(args, out=subprocess.DEVNULL):
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def ns(n, args):
    return ['ip', 'netns', 'exec', n] + args


def kill(p, sig=signal.SIGKILL):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass


def listening(n, port):
    for _ in range(100):
        if subprocess.run(ns(n, ['ss', '-Hlnt', f'sport = :{port}']), capture_output=True, text=True).stdout.strip():
            return True
        time.sleep(0.05)
    return False


def main():
    netkit = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    c2s = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000_000
    s2c = int(sys.argv[5]) if len(sys.argv) > 5 else 3_000_000
    after = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
    lab_args = sys.argv[7:] or ['--delay', '20ms', '--rate', '20mbit', '--loss', '0.5%']
    work = f'/tmp/dfw/stop-{TAG}'
    os.makedirs(work, exist_ok=True)
    lab = start([LAB, 'up', '--tag', TAG, '--host', FAR] + lab_args, open(f'{work}/lab.out', 'w'))
    try:
        kv = {}
        for _ in range(100):
            time.sleep(0.1)
            t = open(f'{work}/lab.out').read()
            if 'far=' in t:
                kv = dict(x.split('=', 1) for x in t.split() if '=' in x)
                break
        S, F = kv['scanner'], kv['far']
        spec = {'n_c2s': c2s, 'n_s2c': s2c, 'halfclose': 'after', 'clients': clients, 'io_timeout': 60}
        for r in range(rounds):
            for k, tool in enumerate(TOOLS):
                sport = 21000 + 10 * r + k
                fport = sport + 1000
                sout = f'{work}/srv.jsonl'
                if os.path.exists(sout):
                    os.unlink(sout)
                srv = start(ns(F, ['python3', PEER, 'server', json.dumps(spec), '0.0.0.0', str(sport), sout]))
                listening(F, sport)
                if tool.startswith('netkit'):
                    fw = start(ns(S, [netkit, 'forward', '--json', f'127.0.0.1:{fport}', f'{FAR}:{sport}']), open(f'{work}/nk.out', 'w'))
                    sig = signal.SIGTERM
                elif tool.startswith('haproxy'):
                    open(f'{work}/h.cfg', 'w').write(f"""global
  maxconn 1000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen l
  bind 127.0.0.1:{fport}
  server s {FAR}:{sport}
""")
                    fw = start(ns(S, ['haproxy', '-db', '-f', f'{work}/h.cfg']))
                    sig = signal.SIGUSR1 if tool == 'haproxy' else signal.SIGTERM
                else:
                    fw = start(ns(S, ['socat', f'TCP-LISTEN:{fport},bind=127.0.0.1,fork,reuseaddr', f'TCP4:{FAR}:{sport}']))
                    sig = signal.SIGTERM
                listening(S, fport)
                time.sleep(0.2)
                cl = start(ns(S, ['timeout', '90', 'python3', PEER, 'client', json.dumps(spec), '127.0.0.1', str(fport)]),
                           open(f'{work}/cl-{tool}.out', 'w'))
                time.sleep(after)
                t0 = time.time()
                os.killpg(fw.pid, sig)
                if tool == 'netkit-twice':
                    time.sleep(0.3)
                    os.killpg(fw.pid, sig)
                time.sleep(0.3)
                late = subprocess.run(ns(S, ['timeout', '3', 'python3', '-c',
                                             f'import socket; s=socket.create_connection(("127.0.0.1",{fport}),2); s.settimeout(2); print(repr(s.recv(1)))']),
                                      capture_output=True, text=True)
                late = 'refused' if 'Refused' in late.stderr else (late.stdout.strip() or late.stderr.strip()[-60:])
                try:
                    fw.wait(60)
                    exited = round(time.time() - t0, 2)
                except subprocess.TimeoutExpired:
                    exited = 'no'
                    kill(fw)
                cl.wait(100)
                try:
                    cres = json.loads(open(f'{work}/cl-{tool}.out').read())
                except ValueError:
                    cres = []
                time.sleep(0.5)
                sres = [json.loads(x) for x in open(sout)] if os.path.exists(sout) else []
                kill(srv)
                cfull = sum(1 for x in cres if x and x.get('recv_full'))
                sfull = sum(1 for x in sres if x.get('recv_full'))
                cends = sorted({str(x.get('end')) for x in cres if x})
                sends = sorted({str(x.get('end')) for x in sres})
                bad = [x for x in cres if x and x.get('recv_prefix_ok') is False] + [x for x in sres if x.get('recv_prefix_ok') is False]
                print(f'round {r} {tool:13s} exit {fw.returncode} after {exited}s  client full {cfull}/{clients} ends {cends}  '
                      f'server full {sfull}/{clients} ends {sends}  corrupt {len(bad)}  late connect: {late}', flush=True)
    finally:
        kill(lab, signal.SIGTERM)
        lab.wait(10)


if __name__ == '__main__':
    main()
