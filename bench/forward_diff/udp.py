#!/usr/bin/env python3
"""UDP differential: direct vs netkit vs socat, random lab, request/reply and bulk, several clients.
usage: udp.py [--tag TAG] SEED COUNT DEADLINE_EPOCH NETKIT_BIN
The lab tag (default dfwuSEED) also names the work directory /tmp/dfw/urun-TAG.
"""
import json, os, random, signal, subprocess, sys, time

from common import LAB, check_tag, claim
TAG = None
if len(sys.argv) > 2 and sys.argv[1] == '--tag':
    TAG = sys.argv[2]
    del sys.argv[1:3]
seed, count, deadline, NETKIT = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
TAG = TAG or f'dfwu{seed}'
check_tag(TAG, 'udp.py')
rng = random.Random(seed)
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'peer.py'); D = f'/tmp/dfw/urun-{TAG}'
os.makedirs(D, exist_ok=True)
claim(D)
FAR4, FAR6 = '198.18.1.10', '2001:db8:1::10'
LOG = open(f'/tmp/dfw/udp-{seed}.jsonl', 'a')
def start(a, out=subprocess.DEVNULL, err=subprocess.DEVNULL):
    return subprocess.Popen(a, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        os.killpg(p.pid, sig)
        try: p.wait(5)
        except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL); p.wait()
    return p.returncode
def ns(n, a): return ['ip', 'netns', 'exec', n] + a
def fds(pid):
    try: return sum(1 for f in os.listdir(f'/proc/{pid}/fd') if not os.readlink(f'/proc/{pid}/fd/{f}').startswith('pipe:'))
    except OSError: return -1
done = 0
for i in range(count):
    if time.time() > deadline: break
    lp = []
    if rng.random() < .7: lp += ['--delay', f'{rng.choice([1,5,20])}ms']
    if rng.random() < .5: lp += ['--loss', f'{rng.choice([1,5,20])}%']
    if rng.random() < .3: lp += ['--dup', f'{rng.choice([5,30])}%']
    if rng.random() < .3 and '--delay' in lp: lp += ['--reorder', '20%']
    lab = start([LAB, 'up', '--tag', TAG, '--host', FAR4, '--host', FAR6, '--seed', str(rng.randint(1, 9999))] + lp, open(f'{D}/lab.out', 'w'))
    for _ in range(100):
        time.sleep(.1)
        t = open(f'{D}/lab.out').read()
        if 'far=' in t: break
    kv = dict(x.split('=', 1) for x in t.split() if '=' in x)
    S, F = kv['scanner'], kv['far']
    v6 = rng.random() < .4
    far = FAR6 if v6 else FAR4; lo = '::1' if v6 else '127.0.0.1'
    place = rng.choice(['client', 'server'])
    sport = rng.randint(20000, 29999); fport = sport + 10000
    spec = {'clients': rng.choice([1, 3, 10, 30]), 'count': rng.choice([5, 20, 60]), 'bulk': rng.random() < .4, 'seed': rng.randint(0, 999), 'wait': 1.0}
    mc = rng.choice([None, None, 2, 5])
    res = {}
    srv = start(ns(F, ['python3', PEER, 'udpserver', far, str(sport)]))
    srv2 = start(ns(F, ['python3', PEER, 'udpserver', lo, str(sport)]))
    time.sleep(.4)
    for ti, tool in enumerate(['direct'] + rng.sample(['netkit', 'socat'], 2)):
        fport = sport + 10000 + 1000 * ti
        fns, lh, th = (S, lo, far) if place == 'client' else (F, far, lo)
        L = f'[{lh}]:{fport}' if v6 else f'{lh}:{fport}'; T = f'[{th}]:{sport}' if v6 else f'{th}:{sport}'
        fw = None
        if tool == 'netkit':
            a = [NETKIT, 'forward', '--json', 'udp:' + L, 'udp:' + T, '--idle-timeout', '3s']
            if mc: a += ['--max-conns', str(mc)]
            fw = start(ns(fns, a), open(f'{D}/nk.out', 'w'), open(f'{D}/nk.err', 'w'))
        elif tool == 'socat':
            fw = start(ns(fns, ['socat', (f'UDP6-RECVFROM:{fport},bind=[{lh}],fork' if v6 else f'UDP4-RECVFROM:{fport},bind={lh},fork'), (f'UDP6:[{th}]:{sport}' if v6 else f'UDP4:{th}:{sport}')]))
        if fw:  # bound before the clients send (a slow start on a busy machine: ICMP refusals)
            for _ in range(100):
                if subprocess.run(ns(fns, ['ss', '-Hlnu', f'sport = :{fport}']), capture_output=True, text=True).stdout.strip():
                    break
                time.sleep(.05)
        time.sleep(.4)
        base = fds(fw.pid) if fw else None
        cns = S if (tool == 'direct' or place == 'server') else fns
        ca, cp = (far, sport) if tool == 'direct' else (lh, fport)
        try:
            c = subprocess.run(ns(cns, ['timeout', '120', 'python3', PEER, 'udpclient', json.dumps(spec), ca, str(cp)]), capture_output=True, text=True, timeout=130)
            cr = json.loads(c.stdout)
        except Exception as e:
            cr = repr(e)
        r = {'client': cr}
        if fw:
            if tool == 'netkit':
                time.sleep(4.5)  # idle-timeout 3s ends the sessions
                r['fd'] = [base, fds(fw.pid)]
            r['rc'] = stop(fw)
            if tool == 'netkit':
                r['records'] = [json.loads(x) for x in open(f'{D}/nk.out') if x.startswith('{')]
        res[tool] = r
    stop(srv, signal.SIGKILL); stop(srv2, signal.SIGKILL); stop(lab)
    diffs = []
    def tot(r, k): return sum(x[k] for x in r['client']) if isinstance(r['client'], list) else None
    for t, r in res.items():
        if not isinstance(r['client'], list): diffs.append(f'{t}: client failed {r["client"]}'); continue
        if tot(r, 'bad'): diffs.append(f'{t}: bad replies {tot(r, "bad")}')
    d = res['direct']; nk = res.get('netkit')
    if nk and isinstance(nk['client'], list):
        sess = [x for x in nk['records'] if x.get('type') == 'session']
        got = tot(nk, 'got'); sent = tot(nk, 'sent')
        if not mc and not spec['bulk']:
            loss = 0 if not any('%' in x for x in lp) else 1
            if not loss and got != sent: diffs.append(f'netkit: got {got}/{sent} on a lossless lab')
        if mc is None and len(sess) != spec['clients']: diffs.append(f'netkit: {len(sess)} sessions for {spec["clients"]} clients')
        if mc and len(sess) > mc * 1 and False: pass
        # a client across the lab from netkit (place server) may get the lab's duplicates too
        if sum(x['datagrams_down'] for x in sess) < got and not ('--dup' in lp and place == 'server'): diffs.append(f'netkit: records down {sum(x["datagrams_down"] for x in sess)} < got {got}')
        if nk.get('fd') and nk['fd'][1] > nk['fd'][0]: diffs.append(f'netkit: fds {nk["fd"]}')
        if nk['rc'] != 0: diffs.append(f'netkit rc {nk["rc"]}')
    summ = {t: (tot(r, 'sent'), tot(r, 'got')) if isinstance(r['client'], list) else None for t, r in res.items()}
    done += 1
    LOG.write(json.dumps({'i': i, 'lab': lp, 'spec': spec, 'mc': mc, 'v6': v6, 'place': place, 'res': res, 'diffs': diffs}) + '\n'); LOG.flush()
    print(i, lp, spec, 'mc', mc, 'v6' if v6 else 'v4', place, summ, diffs, flush=True)
print('scenarios', done)
