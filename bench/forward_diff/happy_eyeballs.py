#!/usr/bin/env python3
"""A target name with two addresses, the first black-holed, on a lossy link: `he.test` is
2001:db8:1::10 (SYNs to its port dropped) and 198.18.1.10 (an echo), in the lab's scanner
namespace's own /etc/hosts (a private mount namespace: nothing outside changes). CLIENTS
clients one after another send 100 bytes through each forwarder beside them and read them
back: netkit forward (Happy Eyeballs), HAProxy (`server he.test:PORT`, its resolver at start)
and socat (`TCP:he.test:PORT`); the time of each and whether the echo came back whole.
usage: happy_eyeballs.py NETKIT[,NETKIT2] [CLIENTS] [LAB_OPTIONS...]  # lab tag LAB_TAG (f7e)
"""
import json, os, signal, socket, subprocess, sys, tempfile, time

FAR4, FAR6, PORT = '198.18.1.10', '2001:db8:1::10', 7070
BASE = 27870


def inner(netkits, clients):
    """Runs in the scanner namespace with he.test in /etc/hosts."""
    print('resolves to', [a[4][0] for a in socket.getaddrinfo('he.test', PORT, type=socket.SOCK_STREAM)], flush=True)
    w = tempfile.mkdtemp(prefix='he')
    cfg = f"""global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch
listen he
    bind 127.0.0.1:{BASE + 9}
    server s he.test:{PORT}
"""
    open(f'{w}/h.cfg', 'w').write(cfg)
    proxies = [(f'netkit{k}', [nk, 'forward', '-q', f'127.0.0.1:{BASE + k}', f'he.test:{PORT}', '--connect-timeout', '5s'],
                BASE + k) for k, nk in enumerate(netkits)]
    proxies += [('haproxy', ['haproxy', '-f', f'{w}/h.cfg'], BASE + 9),
                ('socat', ['socat', f'TCP-LISTEN:{BASE + 8},bind=127.0.0.1,reuseaddr,fork',
                           f'TCP:he.test:{PORT},connect-timeout=5'], BASE + 8)]
    for name, argv, port in proxies:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(1.0)
        times, fails = [], []
        for i in range(clients):
            t0 = time.time()
            s = socket.socket()
            s.settimeout(12)
            try:
                s.connect(('127.0.0.1', port))
                msg = bytes([i % 256]) * 100
                s.sendall(msg)
                got = b''
                while len(got) < 100:
                    b = s.recv(100 - len(got))
                    if not b:
                        break
                    got += b
                if got != msg:
                    fails.append(f'{len(got)} B')
            except OSError as e:
                fails.append(type(e).__name__)
            finally:
                s.close()
            times.append(time.time() - t0)
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(5)
        ts = sorted(times)
        print(json.dumps({'proxy': name, 'whole': clients - len(fails), 'of': clients, 'fails': fails,
                          'median_s': round(ts[len(ts) // 2], 3), 'max_s': round(ts[-1], 3),
                          'over_1s': sum(t > 1 for t in ts)}), flush=True)


def main():
    netkits = sys.argv[1].split(',')
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    lab_opts = sys.argv[3:] or ['--delay', '10ms', '--loss', '2%']
    lab_bin = os.environ.get('DFW_LAB', '/tmp/base-bin/netkit-lab')
    tag = os.environ.get('LAB_TAG', 'f7e')
    out = tempfile.NamedTemporaryFile('w+', delete=False)
    lab = subprocess.Popen([lab_bin, 'up', '--tag', tag, '--host', FAR4, '--host', FAR6, '--drop', f'[{FAR6}]:{PORT}',
                            '--echo', f'{FAR4}:{PORT}'] + lab_opts, stdout=out, stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        t = ''
        for _ in range(100):
            time.sleep(0.1)
            t = open(out.name).read()
            if 'far=' in t:
                break
        kv = dict(x.split('=', 1) for x in t.split() if '=' in x)
        hosts = tempfile.NamedTemporaryFile('w', delete=False)
        hosts.write(f'127.0.0.1 localhost\n{FAR6} he.test\n{FAR4} he.test\n')
        hosts.close()
        print('lab', ' '.join(lab_opts), flush=True)
        me = os.path.abspath(__file__)
        subprocess.run(['ip', 'netns', 'exec', kv['scanner'], 'unshare', '-m', 'sh', '-c',
                        f'mount --bind {hosts.name} /etc/hosts && exec python3 {me} inner {",".join(netkits)} {clients}'],
                       timeout=900)
        os.unlink(hosts.name)
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        lab.wait(15)
        os.unlink(out.name)


if __name__ == '__main__':
    if sys.argv[1] == 'inner':
        inner(sys.argv[2].split(','), int(sys.argv[3]))
    else:
        main()
