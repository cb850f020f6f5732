#!/usr/bin/env python3
"""Randomized differential audit of netkit forward vs direct/HAProxy/socat/rinetd.
usage: driver.py [--tag TAG] SEED COUNT DEADLINE_EPOCH NETKIT_BIN
       driver.py [--tag TAG] replay RESULTS I,J NETKIT_BIN N
The lab tag (default dfwSEED, replays dfwrPID) also names the work directory
/tmp/dfw/run-TAG, so runs with different tags can go at once.
"""
import json, os, random, signal, subprocess, sys, time

from common import LAB, check_tag, claim
PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'peer.py')
FAR4, FAR6 = '198.18.1.10', '2001:db8:1::10'
TAG = None
if len(sys.argv) > 2 and sys.argv[1] == '--tag':
    TAG = sys.argv[2]
    del sys.argv[1:3]
REPLAY = sys.argv[1] == 'replay'
if REPLAY:
    seed, count, deadline, NETKIT = 999, 0, 0.0, sys.argv[4]
    TAG = TAG or f'dfwr{os.getpid()}'
else:
    seed, count, deadline, NETKIT = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    TAG = TAG or f'dfw{seed}'
check_tag(TAG, 'driver.py')
D = os.environ.get('DFW_D', f'/tmp/dfw/run-{TAG}')
os.makedirs(D, exist_ok=True)


claim(D)
rng = random.Random(seed)
LOG = open(f'/tmp/dfw/results-{seed}.jsonl', 'a') if not REPLAY else None


def sh(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def start(args, out, err=subprocess.DEVNULL):
    return subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)


def stop(p, sig=signal.SIGTERM, wait=5):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return p.returncode


class Lab:
    def __init__(self, params):
        self.params = params
        args = [LAB, 'up', '--tag', TAG, '--host', FAR4, '--host', FAR6, '--seed', str(rng.randint(1, 99999))] + params
        self.out = open(f'{D}/lab.out', 'w')
        self.p = start(args, self.out, subprocess.STDOUT)
        for _ in range(100):
            time.sleep(0.1)
            t = open(f'{D}/lab.out').read()
            if 'far=' in t:
                break
        kv = dict(x.split('=', 1) for x in t.split() if '=' in x)
        self.scanner, self.far = kv['scanner'], kv['far']

    def down(self):
        stop(self.p, signal.SIGTERM, 10)


def ns(n, args):
    return ['ip', 'netns', 'exec', n] + args


def wait_listen(nsname, port, unix=None, tcp=True, t=5):
    for _ in range(int(t * 20)):
        if unix:
            if os.path.exists(unix):
                return True
        else:
            o = sh(ns(nsname, ['ss', '-Hln' + ('t' if tcp else 'u'), f'sport = :{port}'])).stdout
            if o.strip():
                return True
        time.sleep(0.05)
    return False


def fdcount(pid):
    try:
        n = 0
        for f in os.listdir(f'/proc/{pid}/fd'):
            try:
                if not os.readlink(f'/proc/{pid}/fd/{f}').startswith('pipe:'):
                    n += 1
            except OSError:
                pass
        return n
    except OSError:
        return -1


def children(pid):
    o = sh(['pgrep', '-P', str(pid)]).stdout.split()
    return o


def draw_lab():
    p = []
    if rng.random() < 0.7:
        dl = rng.choice([1, 5, 20, 50])
        p += ['--delay', f'{dl}ms']
        if rng.random() < 0.4:
            p += ['--jitter', f'{min(dl, rng.choice([1, 3, 5]))}ms']
        if rng.random() < 0.4:
            p += ['--reorder', f'{rng.choice([1, 5, 20])}%']
    if rng.random() < 0.5:
        p += ['--loss', f'{rng.choice([0.5, 1, 3, 8])}%']
    if rng.random() < 0.3:
        p += ['--dup', f'{rng.choice([1, 5, 20])}%']
    if rng.random() < 0.3:
        p += ['--rate', rng.choice(['2mbit', '10mbit', '50mbit'])]
    # DFW_LAB_PARAMS (netkit-lab options) replaces every lab drawn; the draw still runs, so
    # the scenarios a seed draws stay the same.
    return os.environ['DFW_LAB_PARAMS'].split() if os.environ.get('DFW_LAB_PARAMS') else p


def size():
    return rng.choice([0, 1, rng.randint(2, 1500), rng.randint(1500, 200000), rng.randint(200000, 3000000), rng.randint(3000000, 20000000)])


CAP = 20_000_000


def draw_tcp():
    s = {'n_c2s': size(), 'n_s2c': size()}
    s['halfclose'] = rng.choice(['before', 'after', 'never'])
    if s['halfclose'] == 'never' and rng.random() < 0.7:
        # a client that never half-closes needs the target to finish first
        s['srv_halfclose_first'] = True
    if rng.random() < 0.3:
        s['srv_halfclose_first'] = True
    if rng.random() < 0.25:
        s['server_first'] = True
    if rng.random() < 0.2:
        s['slow'] = True
    r = rng.random()
    if r < 0.12:
        s['cli_reset'] = [rng.choice(['recv', 'send']), rng.randint(0, 300000)]
    elif r < 0.24:
        s['srv_reset'] = [rng.choice(['recv', 'send']), rng.randint(0, 300000)]
    s['clients'] = rng.choice([1, 1, 1, 2, 5, 20, 60])
    # bound the total volume (2 cores, shared)
    while s['clients'] * (s['n_c2s'] + s['n_s2c']) > CAP:
        s['n_c2s'] //= 4
        s['n_s2c'] //= 4
    s['io_timeout'] = 60
    if os.environ.get('DFW_BOTHWAYS'):
        both_ways(s)
    return s


def both_ways(s):
    """DFW_BOTHWAYS: 1-4 MB each way at once, one or two clients, and the end moved into the
    transfer: a half-close from either side, or a reset by either side at a byte inside it (a
    second generator, so the seed's main draw is not shifted)."""
    r = random.Random(s['n_c2s'] * 7 + s['n_s2c'])
    s['n_c2s'], s['n_s2c'] = r.randint(1_000_000, 4_000_000), r.randint(1_000_000, 4_000_000)
    s['clients'] = r.choice([1, 2])
    for k in ('cli_reset', 'srv_reset', 'srv_halfclose_first', 'server_first'):
        s.pop(k, None)
    end = r.choice(['cli_half', 'srv_half', 'cli_reset', 'srv_reset'])
    s['halfclose'] = 'before' if end == 'cli_half' else r.choice(['before', 'after', 'never'])
    if end == 'srv_half' or s['halfclose'] == 'never':
        s['srv_halfclose_first'] = True
    if end.endswith('reset'):
        s[end] = [r.choice(['recv', 'send']), r.randint(100_000, 900_000)]


def peer_cmd(name, lport, target, v6, opts, unix_listen=None, unix_target=None):
    """Return (argv, cfgpath) for a peer listening on lport (loopback-side address depends on placement)."""
    pass


def lst(host, port, v6):
    return f'[{host}]:{port}' if v6 else f'{host}:{port}'


def run_one(sc, lab):
    v6 = sc['v6']
    place = sc['place']  # 'client' (forwarder next to the client) or 'server'
    fam_any = '::' if v6 else '0.0.0.0'
    far = FAR6 if v6 else FAR4
    lo = '::1' if v6 else '127.0.0.1'
    sport = rng.randint(20000, 29999)
    fport = sport + 10000
    unix = sc.get('unix')  # None | 'listen' | 'target' | 'both'
    u_listen, u_target = unix in ('listen', 'both'), unix in ('target', 'both')
    results = {}
    for ti, tool in enumerate(sc['tools']):
        fport = sport + 10000 + 1000 * ti
        srv_out = f'{D}/srv-{tool}.jsonl'
        if os.path.exists(srv_out):
            os.unlink(srv_out)
        usock = f'{D}/t.sock'
        lsock = f'{D}/l.sock'
        for f in (usock, lsock):
            if os.path.exists(f):
                os.unlink(f)
        if u_target and tool != 'direct':
            srv = start(ns(lab.far, ['python3', PEER, 'server', json.dumps(sc['spec']), usock, '0', srv_out]), subprocess.DEVNULL)
            wait_listen(lab.far, 0, unix=usock)
        else:
            srv = start(ns(lab.far, ['python3', PEER, 'server', json.dumps(sc['spec']), fam_any, str(sport), srv_out]), subprocess.DEVNULL)
            wait_listen(lab.far, sport)
        # where the forwarder runs / listens and what it targets
        if place == 'client':
            fns, lhost, thost = lab.scanner, lo, far
        else:
            fns, lhost, thost = lab.far, far, lo
        targets = [lst(thost, sport, v6)]
        if u_target:
            targets = [f'unix:{usock}']
        extra_dead = sc['opts'].get('dead')
        if extra_dead:
            dead = lst(thost, sport + 5000, v6)
            targets = targets + [dead] if rng.random() < 0.5 else [dead] + targets
        fw = None
        nkout = f'{D}/nk.out'
        cfg = None
        if tool == 'netkit':
            args = [NETKIT, 'forward', '--json', f'unix:{lsock}' if u_listen else lst(lhost, fport, v6), ','.join(targets)]
            o = sc['opts']
            if o.get('balance'):
                args += ['--balance', o['balance']]
            if o.get('check'):
                args += ['--check', 'tcp', '--check-interval', '500ms']
            if o.get('max_conns'):
                args += ['--max-conns', str(o['max_conns'])]
            if o.get('idle'):
                args += ['--idle-timeout', o['idle']]
            if o.get('keepalive'):
                args += ['--keepalive', o['keepalive']]
            fw = start(ns(fns, args), open(nkout, 'w'), open(f'{D}/nk.err', 'w'))
        elif tool == 'haproxy':
            cfg = f'{D}/h.cfg'
            o = sc['opts']
            bind = f'unix@{lsock}' if u_listen else (f'[{lhost}]:{fport}' if v6 else f'{lhost}:{fport}')
            servers = ''
            for i, t in enumerate(targets):
                a = t[5:] if t.startswith('unix:') else t.replace('[', '').replace(']', '')
                if t.startswith('unix:'):
                    a = 'unix@' + a
                elif v6:
                    host, port = t.rsplit(':', 1)
                    a = f'ipv6@{host.strip("[]")}:{port}'
                servers += f'  server s{i} {a}' + (' check inter 500' if o.get('check') else '') + '\n'
            bal = {'round-robin': 'roundrobin', 'least-conn': 'leastconn', 'hash': 'source'}.get(o.get('balance'), 'roundrobin')
            open(cfg, 'w').write(f"""global
  maxconn 4000
defaults
  mode tcp
  timeout connect 10s
  timeout client 300s
  timeout server 300s
  retries 3
  option redispatch
frontend f
  bind {bind}
  {'maxconn ' + str(o['max_conns']) if o.get('max_conns') else ''}
  default_backend b
backend b
  balance {bal}
{servers}""")
            fw = start(ns(fns, ['haproxy', '-db', '-f', cfg]), subprocess.DEVNULL, open(f'{D}/h.err', 'w'))
        elif tool == 'socat':
            la = f'UNIX-LISTEN:{lsock},fork' if u_listen else (f'TCP6-LISTEN:{fport},bind=[{lhost}],fork,reuseaddr' if v6 else f'TCP-LISTEN:{fport},bind={lhost},fork,reuseaddr')
            ta = f'UNIX-CONNECT:{usock}' if u_target else (f'TCP6:[{thost}]:{sport}' if v6 else f'TCP4:{thost}:{sport}')
            fw = start(ns(fns, ['socat', la, ta]), subprocess.DEVNULL, open(f'{D}/s.err', 'w'))
        elif tool == 'rinetd':
            cfg = f'{D}/r.cfg'
            open(cfg, 'w').write(f'{lhost} {fport} {thost} {sport}\n')
            fw = start(ns(fns, ['rinetd', '-f', '-c', cfg]), subprocess.DEVNULL, open(f'{D}/r.err', 'w'))
        if fw:
            if not wait_listen(fns, fport, unix=lsock if u_listen else None):
                results[tool] = {'error': 'no listen'}
                stop(fw); stop(srv)
                continue
            time.sleep(0.6 if sc['opts'].get('check') else 0.1)
        # the process whose fds we watch: the forwarder itself (ip netns exec execs it)
        base_fd = fdcount(fw.pid) if fw else None
        if tool == 'direct':
            caddr, cport = far, sport
        elif u_listen:
            caddr, cport = lsock, 0
        else:
            caddr, cport = lhost, fport
        cns = lab.scanner if (tool == 'direct' or place == 'server') else fns
        t0 = time.time()
        try:
            c = sh(ns(cns, ['timeout', '150', 'python3', PEER, 'client', json.dumps(sc['spec']), caddr, str(cport)]), timeout=160)
            cres = json.loads(c.stdout) if c.stdout.strip() else {'rc': c.returncode, 'err': c.stderr[-300:]}
        except Exception as e:
            cres = {'err': repr(e)}
        el = time.time() - t0
        n = sc['spec']['clients']
        sres = []
        for _ in range(300):
            if os.path.exists(srv_out):
                sres = [json.loads(x) for x in open(srv_out) if x.strip()]
                if sc['opts'].get('check'):
                    sres = [x for x in sres if x['recv'] > 0]
            if len(sres) >= n:
                break
            time.sleep(0.1)
        r = {'client': cres, 'server': sres, 'elapsed': round(el, 2)}
        if fw:
            time.sleep(0.3)
            fd_after = fdcount(fw.pid)
            for _ in range(30):
                if fd_after <= base_fd:
                    break
                time.sleep(0.2)
                fd_after = fdcount(fw.pid)
            r['fd'] = [base_fd, fd_after]
            r['children'] = children(fw.pid)
            r['rc'] = stop(fw, signal.SIGTERM, 10)
            if tool == 'netkit':
                r['records'] = [json.loads(x) for x in open(nkout) if x.strip().startswith('{')]
                r['stderr'] = open(f'{D}/nk.err').read()[-2000:]
        stop(srv, signal.SIGKILL)
        results[tool] = r
    return results


def verdict(sc, res):
    """Return a list of differences (strings)."""
    diffs = []
    spec = sc['spec']
    resetting = 'cli_reset' in spec or 'srv_reset' in spec
    d = res.get('direct')

    def outcome(r):
        if not isinstance(r.get('client'), list):
            return None
        cl = sorted(((x.get('connect'), x.get('recv_full'), x.get('recv_prefix_ok'), x.get('end'), x.get('did_reset')) for x in r['client'] if x), key=str)
        sv = sorted(((x.get('recv_full'), x.get('recv_prefix_ok'), x.get('end'), x.get('did_reset')) for x in r['server']), key=str)
        return cl, sv

    for tool, r in res.items():
        if 'error' in r:
            diffs.append(f'{tool}: {r["error"]}')
            continue
        o = outcome(r)
        if o is None:
            diffs.append(f'{tool}: client failed {str(r.get("client"))[:200]}')
            continue
        cl, sv = o
        if len(sv) != spec['clients']:
            diffs.append(f'{tool}: server saw {len(sv)} of {spec["clients"]} conns')
        bad_prefix = [x for x in cl if x[2] is False] + [x for x in sv if x[1] is False]
        if bad_prefix:
            diffs.append(f'{tool}: CORRUPT data {bad_prefix[:2]}')
        if not resetting:
            notfull = [x for x in cl if not x[1] or x[3] != 'eof'] + [x for x in sv if not x[0] or x[2] != 'eof']
            if notfull:
                diffs.append(f'{tool}: incomplete/odd end {notfull[:3]}')
        elif tool != 'direct' and d and outcome(d):
            dcl, dsv = outcome(d)
            # compare how the non-resetting side saw the end
            if 'cli_reset' in spec:
                a, b = sorted((x[2] for x in sv), key=str), sorted((x[2] for x in dsv), key=str)
                if a != b:
                    diffs.append(f'{tool}: server ends {a[:4]} vs direct {b[:4]}')
            else:
                a, b = sorted((x[3] for x in cl), key=str), sorted((x[3] for x in dcl), key=str)
                if a != b:
                    diffs.append(f'{tool}: client ends {a[:4]} vs direct {b[:4]}')
        if tool != 'direct':
            fd = r.get('fd')
            if fd and fd[1] > fd[0]:
                diffs.append(f'{tool}: fds {fd[0]} -> {fd[1]}')
            if r.get('children'):
                diffs.append(f'{tool}: children left {r["children"]}')
            if tool == 'netkit':
                if r.get('rc') not in (0, None):
                    diffs.append(f'netkit: exit {r["rc"]}')
                conns = [x for x in r.get('records', []) if x.get('type') == 'conn']
                if len(conns) != spec['clients']:
                    diffs.append(f'netkit: {len(conns)} conn records for {spec["clients"]} clients')
                up = sum(x.get('bytes_up', 0) for x in conns)
                down = sum(x.get('bytes_down', 0) for x in conns)
                srecv = sum(x['recv'] for x in r['server'])
                crecv = sum(x.get('recv', 0) for x in r['client'] if x)
                closes = sorted(set(x.get('close') for x in conns))
                if not resetting:
                    if up != srecv or down != crecv:
                        diffs.append(f'netkit: records up {up} down {down} vs delivered {srecv} {crecv}')
                    if closes != ['done']:
                        diffs.append(f'netkit: closes {closes}')
                else:
                    if up < srecv or down < crecv:
                        diffs.append(f'netkit: records up {up} down {down} below delivered {srecv} {crecv}')
    return diffs


def draw_scenario():
    sc = {'v6': rng.random() < 0.4, 'place': rng.choice(['client', 'server']), 'spec': draw_tcp()}
    o = {}
    if rng.random() < 0.3:
        o['dead'] = True
        o['balance'] = rng.choice(['round-robin', 'least-conn', 'hash'])
    if rng.random() < 0.2 and sc['spec']['n_c2s'] > 0 and not sc['spec'].get('cli_reset'):
        o['check'] = True
    if rng.random() < 0.2:
        o['max_conns'] = rng.choice([1, 3, 10])
    if rng.random() < 0.2:
        o['keepalive'] = rng.choice(['1s', '5s', 'off'])
    if rng.random() < 0.15:
        o['idle'] = '100s'
    sc['opts'] = o
    u = rng.random()
    if u < 0.15:
        sc['unix'] = 'listen'
        sc['place'] = 'client'
    elif u < 0.25 and not o.get('dead'):
        sc['unix'] = 'target'
        sc['place'] = 'server'
    elif u < 0.32 and not o.get('dead'):
        # both legs Unix: the forwarder beside the server, the client reaching the socket's
        # path from the scanner namespace (the link's impairments are for direct alone)
        sc['unix'] = 'both'
        sc['place'] = 'server'
    tools = ['netkit', 'haproxy']
    if not o.get('dead') and not o.get('max_conns'):
        tools.append('socat')
        if not sc.get('unix'):
            tools.append('rinetd')
    rng.shuffle(tools)
    sc['tools'] = ['direct'] + tools
    return sc


lab = None
done = 0
if REPLAY:
    # replay FILE I1,I2,.. NETKIT REPEAT: the scenarios again, direct and netkit only
    rows = {json.loads(l)['i']: json.loads(l) for l in open(sys.argv[2])}
    for i in [int(x) for x in sys.argv[3].split(',')]:
        sc = rows[i]['sc']
        sc['tools'] = ['direct', 'netkit', 'haproxy']
        lab = Lab(sc['lab'])
        for k in range(int(sys.argv[5])):
            res = run_one(sc, lab)
            diffs = verdict(sc, res)
            ends = {t: [(x.get('recv'), x.get('end')) for x in r.get('server', [])] for t, r in res.items()}
            cends = {t: [(x.get('recv'), x.get('end')) for x in r.get('client', []) if x] for t, r in res.items()}
            print(i, k, 'elapsed', {t: r.get('elapsed') for t, r in res.items()}, 'server', ends, 'client', cends, diffs, flush=True)
            if os.environ.get('DFW_DUMP'):
                json.dump({'sc': sc, 'res': res}, open(f"{os.environ['DFW_DUMP']}-{i}-{k}.json", 'w'))
        lab.down()
    sys.exit(0)
for i in range(count):
    if time.time() > deadline:
        break
    if lab is None or i % 4 == 0:
        if lab:
            lab.down()
        lab = Lab(draw_lab())
        CAP = 20_000_000
        if any(x in lab.params for x in ('2mbit', '3%', '8%')):
            CAP = 1_500_000
        elif any(x in lab.params for x in ('10mbit', '50ms')):
            CAP = 6_000_000
    sc = draw_scenario()
    sc['lab'] = lab.params
    t0 = time.time()
    try:
        res = run_one(sc, lab)
        diffs = verdict(sc, res)
    except Exception as e:
        import traceback
        res, diffs = {}, ['driver: ' + traceback.format_exc()[-500:]]
    done += 1
    LOG.write(json.dumps({'i': i, 'seed': seed, 'sc': sc, 'diffs': diffs, 'res': res, 'secs': round(time.time() - t0, 1)}) + '\n')
    LOG.flush()
    print(i, round(time.time() - t0, 1), sc['lab'], json.dumps(sc['spec']), sc['opts'], sc.get('unix'), sc['place'], 'v6' if sc['v6'] else 'v4', diffs, flush=True)
if lab:
    lab.down()
print('scenarios', done)
