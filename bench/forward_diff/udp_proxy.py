#!/usr/bin/env python3
"""`udp:` with `--proxy-protocol v2` on impaired links: every datagram that reaches the target
must carry exactly one PROXY v2 header (version 2, PROXY command, DGRAM transport) naming the
client's real address and port and the address the client sent to (on a wildcard listener
too), before the client's bytes unchanged; the target's answers go back to that client only.
No peer speaks PROXY over UDP (HAProxy has no UDP, nginx's stream module sends no PROXY header
on UDP, socat has none): the target's view is the verdict.
usage: udp_proxy.py [--tag TAG] SEED COUNT DEADLINE_EPOCH NETKIT_BIN   # /tmp/dfw/uproxy-SEED.jsonl
       udp_proxy.py target ADDR PORT LOG        # (the lab's far end runs this)
       udp_proxy.py client SPEC_JSON ADDR PORT  # (the clients)
"""
import hashlib, json, os, random, signal, socket, struct, subprocess, sys, threading, time

SIG = b'\r\n\r\n\0\r\nQUIT\n'


def parse_v2(d):
    """(src, dst, payload) of a datagram opening with a v2 DGRAM header, else (why, None, None)."""
    if len(d) < 16 or d[:12] != SIG:
        return 'no signature', None, None
    ver, fam, ln = d[12], d[13], struct.unpack('!H', d[14:16])[0]
    if ver != 0x21:
        return f'version/command {ver:#x}', None, None
    body = d[16:16 + ln]
    if len(body) != ln:
        return 'short header', None, None
    if fam == 0x12 and ln >= 12:
        src = (socket.inet_ntop(socket.AF_INET, body[0:4]), struct.unpack('!H', body[8:10])[0])
        dst = (socket.inet_ntop(socket.AF_INET, body[4:8]), struct.unpack('!H', body[10:12])[0])
    elif fam == 0x22 and ln >= 36:
        src = (socket.inet_ntop(socket.AF_INET6, body[0:16]), struct.unpack('!H', body[32:34])[0])
        dst = (socket.inet_ntop(socket.AF_INET6, body[16:32]), struct.unpack('!H', body[34:36])[0])
    else:
        return f'family {fam:#x} len {ln}', None, None
    return src, dst, d[16 + ln:]


def payload_ok(p):
    """The client's payload: `ip|port|client|seq|` + filler, then the sha256 of all before it."""
    if len(p) < 32 or hashlib.sha256(p[:-32]).digest() != p[-32:]:
        return None
    f = p[:-32].split(b'|', 4)
    return f[0].decode(), int(f[1]), int(f[2]), int(f[3])


def target(addr, port, log):
    fam = socket.AF_INET6 if ':' in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, port))
    out = open(log, 'a')
    while True:
        d, peer = s.recvfrom(70000)
        src, dst, p = parse_v2(d)
        rec = {'n': len(d), 'from': list(peer[:2])}
        if dst is None:
            rec['bad'] = src
        else:
            rec['src'], rec['dst'] = list(src), list(dst)
            if p[:12] == SIG:
                rec['bad'] = 'a second header'
            who = payload_ok(p)
            if who is None:
                rec['bad'] = 'payload corrupt'
            else:
                rec['claim'] = list(who)
                s.sendto(p, peer)
        out.write(json.dumps(rec) + '\n')
        out.flush()


def client(spec, addr, port):
    res = [None] * spec['clients']

    def run(i):
        rng = random.Random(spec['seed'] * 100 + i)
        fam = socket.AF_INET6 if ':' in addr else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.connect((addr, port))
        me = s.getsockname()
        sent, got, bad, seen = 0, 0, 0, set()
        s.settimeout(0.02)
        end = None
        seq = 0
        while True:
            if seq < spec['count']:
                n = rng.choice(spec['sizes'])
                head = f'{me[0]}|{me[1]}|{i}|{seq}|'.encode()
                body = head + rng.randbytes(max(0, n - len(head) - 32))
                try:
                    s.send(body + hashlib.sha256(body).digest())
                    sent += 1
                except OSError:
                    pass
                seq += 1
                if seq == spec['count']:
                    end = time.time() + spec['wait']
            elif time.time() > end:
                break
            try:
                while True:
                    r = s.recv(70000)
                    who = payload_ok(r)
                    if who is None or who[2] != i or (who[0], who[1]) != (me[0], me[1]):
                        bad += 1
                    elif who[3] not in seen:
                        seen.add(who[3])
                        got += 1
            except (socket.timeout, BlockingIOError, ConnectionRefusedError):
                pass
        res[i] = {'me': list(me[:2]), 'sent': sent, 'got': got, 'bad': bad}

    ts = [threading.Thread(target=run, args=(i,)) for i in range(spec['clients'])]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print(json.dumps(res))


def canon(ip):
    return ip[7:] if ip.startswith('::ffff:') and '.' in ip else ip


def audit():
    from common import LAB, check_tag, claim
    tag = None
    if sys.argv[1] == '--tag':
        tag = sys.argv[2]
        del sys.argv[1:3]
    seed, count, deadline, netkit = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    tag = tag or f'dfwp{seed}'
    check_tag(tag, 'udp_proxy.py')
    rng = random.Random(seed)
    d = f'/tmp/dfw/uprun-{tag}'
    os.makedirs(d, exist_ok=True)
    claim(d)
    log = open(f'/tmp/dfw/uproxy-{seed}.jsonl', 'a')
    me = os.path.abspath(__file__)
    far4, far6 = '198.18.1.10', '2001:db8:1::10'

    def start(a, out=subprocess.DEVNULL, err=subprocess.DEVNULL):
        return subprocess.Popen(a, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)

    def stop(p, sig=signal.SIGTERM):
        if p.poll() is None:
            os.killpg(p.pid, sig)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        return p.returncode

    def ns(n, a):
        return ['ip', 'netns', 'exec', n] + a

    for i in range(count):
        if time.time() > deadline:
            break
        lp = ['--delay', f'{rng.choice([1, 5, 20])}ms']
        lp += ['--loss', f'{rng.choice([1, 5, 20])}%']
        if rng.random() < .7:
            lp += ['--dup', f'{rng.choice([5, 30])}%']
        if rng.random() < .5:
            lp += ['--reorder', '20%']
        lab = start([LAB, 'up', '--tag', tag, '--host', far4, '--host', far6, '--seed', str(rng.randint(1, 9999))] + lp,
                    open(f'{d}/lab.out', 'w'))
        t = ''
        for _ in range(100):
            time.sleep(.1)
            t = open(f'{d}/lab.out').read()
            if 'far=' in t:
                break
        kv = dict(x.split('=', 1) for x in t.split() if '=' in x)
        S, F = kv['scanner'], kv['far']
        v6 = rng.random() < .4
        far = far6 if v6 else far4
        lo = '::1' if v6 else '127.0.0.1'
        place = rng.choice(['client', 'server'])
        wild = rng.random() < .4
        sport = rng.randint(20000, 29999)
        fport = sport + 10000
        fns, lh, th = (S, lo, far) if place == 'client' else (F, far, lo)
        bind = ('[::]' if v6 or rng.random() < .5 else '0.0.0.0') if wild else (f'[{lh}]' if v6 else lh)
        tgt = f'[{th}]:{sport}' if v6 else f'{th}:{sport}'
        sizes = rng.choice([[40, 200, 1400], [40, 1400, 8000], [0 + 60, 30000, 65000]])
        spec = {'clients': rng.choice([1, 5, 20]), 'count': rng.choice([20, 100]), 'sizes': sizes,
                'seed': rng.randint(0, 999), 'wait': 1.5}
        tlog = f'{d}/target-{i}.jsonl'
        open(tlog, 'w').close()
        srv = start(ns(fns if place == 'server' else F, ['python3', me, 'target', th, str(sport), tlog]))
        fw = start(ns(fns, [netkit, 'forward', '--json', f'udp:{bind}:{fport}', f'udp:{tgt}', '--proxy-protocol', 'v2',
                            '--idle-timeout', '3s']), open(f'{d}/nk.out', 'w'), open(f'{d}/nk.err', 'w'))
        for _ in range(100):
            if subprocess.run(ns(fns, ['ss', '-Hlnu', f'sport = :{fport}']), capture_output=True, text=True).stdout.strip():
                break
            time.sleep(.05)
        time.sleep(.4)
        try:
            fds0 = len(os.listdir(f'/proc/{fw.pid}/fd'))
        except OSError:
            fds0 = -1
        cns = fns if place == 'client' else S
        ca = lh
        try:
            c = subprocess.run(ns(cns, ['timeout', '120', 'python3', me, 'client', json.dumps(spec), ca, str(fport)]),
                               capture_output=True, text=True, timeout=130)
            cr = json.loads(c.stdout)
        except Exception as e:
            cr = repr(e)
        time.sleep(4.5)
        try:
            fds1 = len(os.listdir(f'/proc/{fw.pid}/fd'))
        except OSError:
            fds1 = -1
        rc = stop(fw)
        stop(srv, signal.SIGKILL)
        stop(lab)
        recs = [json.loads(x) for x in open(f'{d}/nk.out') if x.startswith('{')]
        sess = [x for x in recs if x.get('type') == 'session']
        seen = [json.loads(x) for x in open(tlog)]
        diffs = []
        if not isinstance(cr, list):
            diffs.append(f'client failed {cr}')
            cr = []
        clients = {(canon(c['me'][0]), c['me'][1]) for c in cr}
        bad = [r for r in seen if 'bad' in r]
        if bad:
            diffs.append(f'{len(bad)} bad datagrams at the target: {bad[:3]}')
        for r in seen:
            if 'bad' in r:
                continue
            src, dst = (canon(r['src'][0]), r['src'][1]), (canon(r['dst'][0]), r['dst'][1])
            claim_ = (canon(r['claim'][0]), r['claim'][1])
            if src != claim_ or src not in clients:
                diffs.append(f'header source {src} for client {claim_}')
                break
            if dst != (canon(lh), fport):
                diffs.append(f'header destination {dst}, the client sent to {lh}:{fport}')
                break
        if sum(c['bad'] for c in cr):
            diffs.append(f'{sum(c["bad"] for c in cr)} wrong replies at the clients')
        if len(sess) != len(cr):
            diffs.append(f'{len(sess)} sessions for {len(cr)} clients')
        if fds1 > fds0:
            diffs.append(f'fds {fds0} -> {fds1}')
        if rc != 0:
            diffs.append(f'rc {rc}')
        good = len(seen) - len(bad)
        summ = {'sent': sum(c['sent'] for c in cr), 'target': good, 'got': sum(c['got'] for c in cr),
                'up': sum(x.get('datagrams_up', 0) for x in sess), 'dropped_up': sum(x.get('dropped', 0) for x in sess)}
        log.write(json.dumps({'i': i, 'lab': lp, 'v6': v6, 'place': place, 'bind': bind, 'spec': spec, 'summ': summ,
                              'diffs': diffs, 'sessions': sess}) + '\n')
        log.flush()
        print(i, lp, 'v6' if v6 else 'v4', place, bind, spec['clients'], spec['count'], sizes, summ, diffs, flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'target':
        target(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == 'client':
        client(json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        audit()
