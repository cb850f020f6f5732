#!/usr/bin/env python3
"""Audit of `netkit sweep --every` on a network that changes while it runs, against the truth and
beside the peers doing the same job (a loop of `fping -a -r R` rounds, a loop of `nmap -sn -PE`).

Run (root, from the repository):
  bench/sweep_every_diff.py --scenario NAME [--seed S] [--rounds N] [--every S] \
      [--netkit target/release/netkit] [--lab target/release/netkit-lab] [--peers]
  bench/sweep_every_diff.py --list
Scenarios: clean, loss, delay, jitter, police, fast (a /24, 150 rounds, memory and fds), sigint.

A netkit-lab with the scenario's impairment serves 198.18.1.0/27 from its far namespace; the
script adds and deletes /32 addresses there (on lo), drops echo with iptables, takes the far link
down and up, and makes one host answer only every other round. Changes are drawn with --seed,
made between rounds (right after a summary) or during one (0.1-0.4 s after its scheduled start).
Every change is timestamped: a host up (or down) from before a round's start to after its end
must be reported alive (inactive) in it; the rest is ambiguous and not judged. The change records
must be the differences between consecutive rounds, once each; round numbers 1..N; round starts
on the --every grid (start_k - start_1 - (k-1)*every); --rounds N stops after N. Peers run in the
same lab at the same time (--peers), on their own schedule, judged by the same truth.
Sends only inside the lab's namespaces (198.18.0.0/15). Needs root.

Results on main 5ca0e66 (host-rounds judged / wrong; peers in the same lab at the same time):
  clean 20x3s   netkit 515/0 (0.9-2.1 s a round, start drift <= 3 ms)  fping 328/0 (4.35 s)  nmap 572/0
  loss 10%      netkit 231/0 (1.5-2.5 s)   fping 199/0 (4.36 s)   nmap -sn 276/3
  delay 300ms   netkit 228/0 (5.4-8.5 s)   fping 272/0 (4.36 s)   nmap -sn 290/0 (1.9 s)
  jitter 100+-80ms 3%  netkit 203/0 (5-11 s, over a 4 s interval)  fping 523/0 (4.37 s)  nmap 614/1
  police 50/s   netkit 205/0   fping 547/0   nmap 621/42 (the policer drops its probes)
  fast /24 110x1.5s  netkit 27859/0, RSS 7676 kB and 10 fds from round 3 to 110, drift <= 12 ms
  sigint        exit 130, summary interrupted, alive+dead+unreachable+unsettled = 32
A host alive in the round before and silent now costs 3 more probes (MISS_CONFIRM): +3 s at a
600 ms round trip (8.5 s rounds beside 5.4 s). A path that dies just after a round started
(the far link down 10 ms in) makes that round last 21-36 s (controls lost: 89 % loss measured,
taken for a possible throttle; fping -r 3 4.4 s, nmap -sn 4.1 s); one that is down before the
round starts costs nothing (1.5 s).
"""
import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--scenario", default="clean")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--rounds", type=int, default=20)
ap.add_argument("--every", type=float, default=2.0)
ap.add_argument("--netkit", default="target/release/netkit")
ap.add_argument("--lab", default="target/release/netkit-lab")
ap.add_argument("--peers", action="store_true")
ap.add_argument("--list", action="store_true")
ap.add_argument("--tag", default="everyaudit", help="the lab's tag (namespace names)")
args = ap.parse_args()

SCEN = {
    "clean": [],
    "loss": ["--loss", "10%"],
    "delay": ["--delay", "300ms"],
    "jitter": ["--delay", "100ms", "--jitter", "80ms", "--loss", "3%"],
    "police": ["--icmp-police", "50"],
    "fast": [],
    "sigint": ["--delay", "200ms"],
}
if args.list:
    print(" ".join(SCEN))
    sys.exit(0)
rng = random.Random(args.seed)
NET = "198.18.1"
N_HOSTS = 32 if args.scenario != "fast" else 256
TARGET = f"{NET}.0/27" if args.scenario != "fast" else f"{NET}.0/24"


def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True)


class Lab:
    def __init__(self, extra):
        argv = [args.lab, "up", "--tag", args.tag, "--seed", str(args.seed)] + extra
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, start_new_session=True)
        line = self.p.stdout.readline()
        kv = dict(x.split("=") for x in line.split())
        self.scanner, self.far = kv["scanner"], kv["far"]

    def close(self):
        os.killpg(self.p.pid, signal.SIGTERM)
        self.p.wait(timeout=20)


class Truth:
    """Each host's state over time: a list of (t, up) per address."""

    def __init__(self, lab):
        self.lab, self.hist, self.lock = lab, {}, threading.RLock()
        self.dropped, self.present, self.link = set(), set(), True

    def _up(self, a):
        return self.link and a in self.present and a not in self.dropped

    def _mark(self, before):
        t = time.monotonic()
        for a in range(N_HOSTS):
            now = self._up(a)
            if before.get(a) != now:
                self.hist.setdefault(a, []).append((t, now))

    def change(self, fn):
        with self.lock:
            before = {a: self._up(a) for a in range(N_HOSTS)}
            fn()
            self._mark(before)

    def add(self, a):
        def f():
            sh(f"ip -n {self.lab.far} addr add {NET}.{a}/32 dev lo")
            self.present.add(a)
        self.change(f)

    def delete(self, a):
        def f():
            self.present.discard(a)
            sh(f"ip -n {self.lab.far} addr del {NET}.{a}/32 dev lo")
        self.change(f)

    def drop(self, a, on):
        if (a in self.dropped) == on:
            return
        op = "-A" if on else "-D"
        def f():
            (self.dropped.add if on else self.dropped.discard)(a)
            sh(f"ip netns exec {self.lab.far} iptables {op} INPUT -d {NET}.{a} -p icmp "
               f"--icmp-type echo-request -j DROP")
        self.change(f)

    def set_link(self, on):
        def f():
            self.link = on
            sh(f"ip -n {self.lab.far} link set lab0 {'up' if on else 'down'}")
            if on:  # the route through the link went with it
                sh(f"ip -n {self.lab.far} route replace 198.18.0.0/15 via 198.19.254.5 dev lab0",
                   check=False)
        self.change(f)

    def state(self, a, t0, t1, margin):
        """True/False if the host kept one state over [t0 - margin, t1 + margin], else None."""
        h = self.hist.get(a, [])
        st = None
        for t, up in h:
            if t <= t0 - margin:
                st = up
        if st is None:
            st = False
        for t, up in h:
            if t0 - margin < t <= t1 + margin and up != st:
                return None
        return st


lab = Lab(SCEN[args.scenario])
truth = Truth(lab)
margin = 1.0 if args.scenario in ("delay", "jitter", "sigint") else 0.3
for a in range(1, N_HOSTS - 1):  # .0 and .31 (.255) never hosts
    if rng.random() < 0.5:
        truth.add(a)
FLIP = 5  # answers only every other round
if FLIP not in truth.present:
    truth.add(FLIP)

# The changes between or during rounds, drawn per round.
def plan(k):
    acts = []
    for _ in range(rng.randint(1, 3)):
        a = rng.randint(1, N_HOSTS - 2)
        if a == FLIP:
            continue
        kind = rng.choice(["addr", "addr", "drop"])
        when = rng.choice(["between", "between", "during"])
        acts.append((when, kind, a))
    if k % 7 == 3 and args.scenario not in ("fast",):
        acts.append(("between", "linkdown", 0))
    return acts


def apply(kind, a):
    with truth.lock:  # decide and act at once (a timer may race the reader)
        if not nk_done.is_set():  # not a timer that fired after the sweep ended
            apply_locked(kind, a)


def apply_locked(kind, a):
    if kind == "addr":
        (truth.delete if a in truth.present else truth.add)(a)
    elif kind == "drop":
        truth.drop(a, a not in truth.dropped)
    elif kind == "linkdown":
        truth.set_link(False)
    elif kind == "linkup":
        truth.set_link(True)


peers = []
stop_peers = threading.Event()
nk_done = threading.Event()


def peer_loop(name, argv, parse):
    """Runs argv every --every s (on the grid) until stopped; records (t0, t1, alive set)."""
    out = []
    t_start = time.monotonic()
    k = 0
    while not stop_peers.is_set():
        t0 = time.monotonic()
        r = subprocess.run(["timeout", "60", "ip", "netns", "exec", lab.scanner] + argv,
                           capture_output=True, text=True)
        t1 = time.monotonic()
        out.append((t0, t1, parse(r.stdout)))
        k += 1
        nxt = t_start + k * args.every
        while time.monotonic() < nxt and not stop_peers.is_set():
            time.sleep(0.01)
    peers.append((name, out))


def fping_parse(s):
    return {int(l.split(".")[3]) for l in s.split() if l.startswith(NET + ".")}


def nmap_parse(s):
    return {int(m.group(1)) for m in re.finditer(r"Host: 198\.18\.1\.(\d+) \(\)\s+Status: Up", s)}


threads = []
if args.peers:
    threads.append(threading.Thread(target=peer_loop, args=(
        "fping -a -r 3 -t 500", ["fping", "-a", "-q", "-r", "3", "-t", "500", "-g", TARGET],
        fping_parse)))
    threads.append(threading.Thread(target=peer_loop, args=(
        "nmap -sn -PE -n", ["nmap", "-sn", "-PE", "-n", "-T4", "-oG", "-", TARGET], nmap_parse)))
    for t in threads:
        t.start()

argv = ["ip", "netns", "exec", lab.scanner, args.netkit, "--json", "sweep", TARGET,
        "--every", f"{args.every}s", "--rounds", str(args.rounds)]
t_launch = time.monotonic()
nk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
# the netkit process itself (ip netns exec execs it)
rounds, hosts, changes, samples = {}, {}, {}, []
pending_during = []
link_was_down = False
sig_at = None
if args.scenario == "sigint":
    sig_at = rng.randint(3, 6)


def sampler():
    while nk.poll() is None:
        try:
            rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{nk.pid}/status").read()).group(1))
            fds = len(os.listdir(f"/proc/{nk.pid}/fd"))
            samples.append((time.monotonic() - t_launch, rss, fds))
        except (OSError, AttributeError):
            pass
        time.sleep(1)


threading.Thread(target=sampler, daemon=True).start()
for line in nk.stdout:
    t = time.monotonic()
    rec = json.loads(line)
    k = rec.get("round")
    if rec["type"] == "host":
        hosts.setdefault(k, []).append(rec)
    elif rec["type"] == "change":
        changes.setdefault(k, []).append(rec)
    elif rec["type"] == "summary":
        rounds[k] = (t - rec["elapsed_s"], t, rec)
        # the changes of the gap after this round, and those planned for the next round
        if truth.link is False:
            apply("linkup", 0)
        truth.change(lambda: None)
        if FLIP:
            truth.drop(FLIP, k % 2 == 1)  # dropped in even rounds
        for when, kind, a in plan(k):
            if when == "between":
                apply(kind, a)
            else:
                start = rounds[1][0] + k * args.every
                threading.Timer(max(0, start + rng.uniform(0.1, 0.4) - time.monotonic()),
                                apply, (kind, a)).start()
        if sig_at and k == sig_at - 1:
            start = rounds[1][0] + k * args.every
            delay = start + rng.uniform(0.1, 0.5) - time.monotonic()
            threading.Timer(max(0, delay), lambda: os.kill(nk.pid, signal.SIGINT)).start()
rc = nk.wait()
nk_done.set()
err = nk.stderr.read()
stop_peers.set()
for th in threads:
    th.join()
time.sleep(0.5)

# ---- judge
report = {"scenario": args.scenario, "seed": args.seed, "rc": rc, "rounds_seen": len(rounds)}
finds = []
nums = sorted(rounds)
if nums != list(range(1, len(nums) + 1)):
    finds.append(f"round numbers {nums}")
if args.scenario != "sigint" and len(nums) != args.rounds:
    finds.append(f"--rounds {args.rounds} gave {len(nums)} rounds")
wrong, judged = 0, 0
for k in nums:
    t0, t1, s = rounds[k]
    got = {int(h["addr"].split(".")[3]): h["alive"] for h in hosts.get(k, [])}
    dup_hosts = len(hosts.get(k, [])) - len(got)
    if dup_hosts:
        finds.append(f"round {k}: {dup_hosts} duplicate host records")
    if not s.get("interrupted") and len(got) != N_HOSTS:
        finds.append(f"round {k}: {len(got)} host records for {N_HOSTS} targets")
    if s["alive"] + s["dead"] + s["unreachable"] + s.get("unsettled", 0) != N_HOSTS:
        finds.append(f"round {k}: summary does not add up {s}")
    if s["alive"] != sum(got.values()):
        finds.append(f"round {k}: summary alive {s['alive']} != {sum(got.values())} records")
    for a, alive in got.items():
        st = truth.state(a, t0, t1, margin)
        if st is None:
            continue
        judged += 1
        if st != alive:
            wrong += 1
            finds.append(f"round {k}: .{a} reported {'alive' if alive else 'inactive'}, truth "
                         f"{'up' if st else 'down'} ({t0 - t_launch:.2f}-{t1 - t_launch:.2f})")
    if k > 1 and not s.get("interrupted"):
        prev = {int(h["addr"].split(".")[3]) for h in hosts.get(k - 1, []) if h["alive"]}
        now = {a for a, v in got.items() if v}
        want = {(a, True) for a in now - prev} | {(a, False) for a in prev - now}
        ch = [(int(c["addr"].split(".")[3]), c["alive"]) for c in changes.get(k, [])]
        if len(ch) != len(set(ch)):
            finds.append(f"round {k}: duplicate change records {ch}")
        if set(ch) != want:
            finds.append(f"round {k}: changes {sorted(set(ch))} want {sorted(want)}")
    if k == 1 and changes.get(1):
        finds.append("change records in round 1")
report["per_round"] = [
    f"{k}: {rounds[k][2]['elapsed_s']:.2f}s alive {rounds[k][2]['alive']} unreach "
    f"{rounds[k][2]['unreachable']} probes {rounds[k][2]['probes']} timeout "
    f"{rounds[k][2]['timeout_ms']} loss {rounds[k][2]['loss_pct']}" for k in nums]
drift = [rounds[k][0] - rounds[1][0] - (k - 1) * args.every for k in nums]
report.update(judged=judged, wrong=wrong,
              drift_ms=[round(d * 1000) for d in drift],
              elapsed_s=[round(rounds[k][2]["elapsed_s"], 2) for k in nums],
              last=rounds[nums[-1]][2] if nums else None)
if samples:
    report["rss_kb_first_last_max"] = (samples[min(2, len(samples) - 1)][1], samples[-1][1],
                                       max(s[1] for s in samples))
    report["fds_first_last_max"] = (samples[min(2, len(samples) - 1)][2], samples[-1][2],
                                    max(s[2] for s in samples))
for name, out in peers:
    pw, pj = 0, 0
    for (t0, t1, alive) in out:
        for a in range(N_HOSTS):
            st = truth.state(a, t0, t1, margin)
            if st is None:
                continue
            pj += 1
            pw += (a in alive) != st
    report[name] = {"rounds": len(out), "judged": pj, "wrong": pw,
                    "round_s": [round(t1 - t0, 2) for t0, t1, _ in out][:25]}
report["findings"] = finds
report["stderr"] = err[-500:]
print(json.dumps(report, indent=1))
lab.close()
