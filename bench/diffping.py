#!/usr/bin/env python3
"""Randomized differential audit of `netkit ping` / `netkit sweep` against iputils ping, fping and
nmap -sn on impaired netkit-lab labs.

Each lab is drawn at random (delay, jitter, loss, dup, reorder, rate, ICMP policer, direction,
hosts that drop echo, unroutable prefixes, v6 hosts); in it several scenarios are drawn (ping or
sweep, random flags, several hosts). netkit and the peer run back to back with the same
parameters, each under its own tcpdump in the scanner namespace: every tool is judged against
the packets that really reached it (requests sent, replies and duplicates received before it
exited) and the lab's truth (which addresses are hosts, answer echo, have a route), then the two
are compared (exit codes, error kinds, exit time against -w). Findings go to OUT/findings.jsonl,
every scenario to OUT/scenarios.jsonl.

Sends only inside the lab's namespaces (198.18.0.0/15, 2001:db8::/32). Needs root.

  bench/diffping.py [--minutes M] [--seed S] [--out DIR] [--netkit BIN] [--lab BIN]
"""
import argparse
import ipaddress
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--minutes", type=float, default=30)
ap.add_argument("--seed", type=int, default=int(time.time()))
ap.add_argument("--out", default="/tmp/diffping")
ap.add_argument("--netkit", default="target/release/netkit")
ap.add_argument("--lab", default="target/release/netkit-lab")
ap.add_argument("--tag", default="dpg")
ap.add_argument("--per-lab", type=int, default=6)
ap.add_argument("--only", choices=["ping", "sweep"], default=None)
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
rng = random.Random(args.seed)
DEADLINE = time.time() + args.minutes * 60
SCEN = open(os.path.join(args.out, "scenarios.jsonl"), "a")
FIND = open(os.path.join(args.out, "findings.jsonl"), "a")
NK = os.path.abspath(args.netkit)

BLOCK = ipaddress.ip_network("198.18.0.0/28")  # every address a host
V6HOSTS = [f"2001:db8::{i}" for i in range(1, 5)]
NOHOST4 = "198.18.0.200"  # routed to the far side, no host there
NOHOST6 = "2001:db8::99"
UNROUTABLE = "198.18.9.0/24"
UNROUTABLE6 = "2001:db8:9::/64"


def draw_lab():
    lab = {}
    delay = rng.choice([0, 0, 1, 10, 40, 200, 700])
    if delay:
        lab["delay"] = f"{delay}ms"
        if rng.random() < 0.4:
            lab["jitter"] = f"{max(1, delay // rng.choice([2, 4]))}ms"
        if rng.random() < 0.3:
            lab["reorder"] = f"{rng.choice([10, 25])}%"
    if rng.random() < 0.6:
        lab["loss"] = f"{rng.choice([2, 5, 10, 20, 35])}%"
    if rng.random() < 0.35:
        lab["dup"] = f"{rng.choice([5, 20, 50])}%"
    if rng.random() < 0.15:
        lab["rate"] = rng.choice(["200kbit", "1mbit"])
    if rng.random() < 0.2:
        lab["icmp-police"] = str(rng.choice([3, 10, 50]))
    if rng.random() < 0.3:
        lab["direction"] = rng.choice(["to-far", "to-scanner"])
    noecho = rng.sample([str(a) for a in BLOCK][1:], rng.choice([0, 1, 2]))
    if rng.random() < 0.3:
        noecho.append(V6HOSTS[3])
    lab["no-echo"] = noecho
    lab["unroutable"] = [
        UNROUTABLE + "=" + rng.choice(["net", "host", "prohibit", "local"]),
        UNROUTABLE6 + "=" + rng.choice(["net", "host", "prohibit"]),
    ]
    lab["icmp-ratelimit"] = rng.choice(["default", "off"])
    lab["seed"] = str(rng.randrange(1, 10**6))
    # not a netkit-lab flag: set on the router's far link once the lab is up
    lab["_mtu"] = rng.choice([None, None, None, 1280, 1000])
    return lab


def lab_argv(lab):
    argv = [args.lab, "up", "--tag", args.tag, "--hosts", str(BLOCK)]
    for h in V6HOSTS:
        argv += ["--host", h]
    for k, v in lab.items():
        if k.startswith("_"):
            continue
        if isinstance(v, list):
            for x in v:
                argv += [f"--{k}", x]
        else:
            argv += [f"--{k}", v]
    return argv


def truth_echo(lab, addr):
    """'answers', 'ignores', 'nohost' or 'unroutable:KIND' for an ICMP echo to addr."""
    a = ipaddress.ip_address(addr)
    for u in lab["unroutable"]:
        net, kind = u.split("=")
        if a in ipaddress.ip_network(net):
            return "unroutable:" + kind
    if a.version == 6 and (lab.get("_mtu") or 1500) < 1280 and a not in ipaddress.ip_network(
            UNROUTABLE6):
        # an MTU below IPv6's minimum takes IPv6 off the router's far link: its route to the
        # far hosts goes with it, and it answers no route
        return "unroutable:net"
    if addr in lab["no-echo"]:
        return "ignores"
    if a in BLOCK or addr in V6HOSTS:
        return "answers"
    return "nohost"


def truth_tcp(lab, addr):
    t = truth_echo(lab, addr)
    return "answers" if t == "ignores" else t


class Capture:
    def __init__(self, ns, path):
        self.path = path
        self.f = open(path, "w")
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", ns, "tcpdump", "-i", "any", "-nn", "-tt", "-l",
             "icmp or icmp6 or tcp"],
            stdout=self.f, stderr=subprocess.PIPE, start_new_session=True)
        # wait until it listens
        line = self.p.stderr.readline().decode()
        while "listening on" not in line and line:
            line = self.p.stderr.readline().decode()

    def stop(self, linger=0.3):
        time.sleep(linger)
        self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.f.close()
        pk = []
        for line in open(self.path):
            m = re.match(r"(\d+\.\d+) \S+\s+(In|Out)\s+IP6? (\S+) > (\S+): (.*)", line)
            if m:
                pk.append((float(m[1]), m[2], m[3].rstrip(":"), m[4].rstrip(":"), m[5]))
        return pk


def icmp_truth(pk, t_end):
    """Per destination: requests sent, replies (unique seqs, dups) by t_end and overall, errors."""
    ids = set()
    res = {}
    for t, d, src, dst, rest in pk:
        m = re.search(r"echo request, id (\d+), seq (\d+)", rest)
        if d == "Out" and m:
            ids.add(m[1])
            r = res.setdefault(dst, {"sent": 0, "seqs": set(), "dups": 0, "seqs_all": set(),
                                     "errors": 0, "first_sent": t, "reply_times": []})
            r["sent"] += 1
    for t, d, src, dst, rest in pk:
        m = re.search(r"echo reply, id (\d+), seq (\d+)", rest)
        if d == "In" and m and m[1] in ids and src in res:
            r = res[src]
            if t <= t_end:
                if m[2] in r["seqs"]:
                    r["dups"] += 1
                else:
                    r["seqs"].add(m[2])
                    r["reply_times"].append(t)
            r["seqs_all"].add(m[2])
        elif d == "In" and ("unreachable" in rest or "time exceeded" in rest or "too big" in rest):
            m2 = re.search(r"(?:host|net|for|address) ([0-9a-f.:]+)", rest)
            key = m2[1].rstrip(",") if m2 else None
            if key in res:
                res[key]["errors"] += 1
            elif len(res) == 1:
                next(iter(res.values()))["errors"] += 1
    return res


def run(ns, argv, timeout, sigs=()):
    """Runs argv in ns; sigs: (seconds after start, signal) sent while it runs."""
    t0 = time.time()
    if not sigs:
        try:
            p = subprocess.run(["ip", "netns", "exec", ns, "timeout", "-s", "INT", str(timeout)]
                               + argv, capture_output=True, timeout=timeout + 10)
            code = p.returncode
            out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            code, out, err = -9, "", "hard timeout"
        return code, out, err, t0, time.time(), []
    fo = open(os.path.join(args.out, "run.out"), "w+b")
    fe = open(os.path.join(args.out, "run.err"), "w+b")
    p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdout=fo, stderr=fe,
                         start_new_session=True)
    sent = []
    for at, sig in sorted(sigs):
        while p.poll() is None and time.time() < t0 + at:
            time.sleep(0.005)
        if p.poll() is None:
            p.send_signal(sig)
            sent.append((time.time(), sig))
    try:
        code = p.wait(max(1, timeout - (time.time() - t0)))
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
        try:
            code = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            code = -9
    t1 = time.time()
    fo.seek(0)
    fe.seek(0)
    out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
    fo.close()
    fe.close()
    return code, out, err, t0, t1, sent


STAT = re.compile(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?"
                  r"(?:, \+(\d+) errors)?, ([\d.]+)% packet loss")


def parse_iputils(out):
    """Per host (netkit names each summary): transmitted, received, dups, errors, loss."""
    res = {}
    host = None
    for line in out.splitlines():
        m = re.match(r"--- (\S+) ping statistics ---", line)
        if m:
            host = m[1]
        m = STAT.search(line)
        if m and host:
            res[host] = dict(tx=int(m[1]), rx=int(m[2]), dup=int(m[3] or 0), err=int(m[4] or 0),
                             loss=float(m[5]))
    return res


def parse_fping(err):
    res = {}
    for line in err.splitlines():
        m = re.match(r"(\S+)\s+: xmt/rcv/%loss = (\d+)/(\d+)/(\d+)%", line)
        if m:
            res[m[1]] = dict(tx=int(m[2]), rx=int(m[3]), loss=float(m[4]))
    return res


ERRKINDS = ["Destination Host Unreachable", "Destination Net Unreachable", "Packet filtered",
            "Time to live exceeded", "Time exceeded", "Frag needed", "Destination unreachable",
            "Address unreachable", "No route", "Administratively prohibited",
            "Beyond scope", "Unreachable", "Packet too big", "local error", "message too long",
            "Network is unreachable", "Invalid argument", "Permission denied", "Message too long",
            "Network unreachable", "Communication prohibited", "Host Prohibited", "Net Prohibited"]


def err_kinds(text):
    ks = set()
    for line in text.splitlines():
        for k in ERRKINDS:
            if k.lower() in line.lower():
                ks.add(k)
                break
    return sorted(ks)


def finding(kind, scen, detail):
    rec = {"kind": kind, "scenario": scen["id"], "detail": detail}
    FIND.write(json.dumps(rec) + "\n")
    FIND.flush()
    print("  FINDING", kind, json.dumps(detail)[:400], flush=True)


def judge_counts(tool, scen, host, claim, tr, wdead, t0, t_end, exact_rx, big, cut=None):
    """claim vs the capture of that tool's own run."""
    if tr is None:
        # -I IFACE: the kernel takes a host with no route as on that link and queues the
        # requests behind an ARP or neighbour solicitation that nobody answers
        on_link = "-I" in scen["flags"] and scen["truth"].get(host) == "unroutable:local"
        if claim["tx"] != 0 and not scen.get("local_error") and not on_link:
            finding(f"{tool}-tx-uncaptured", scen, {"host": host, "claim": claim})
        return
    if claim["tx"] != tr["sent"]:
        finding(f"{tool}-tx", scen, {"host": host, "claim": claim["tx"], "captured": tr["sent"]})
    up = len(tr["seqs"])
    # replies in the tool's window: with -w, those after the deadline may rightly be left out
    low = up
    if wdead or not exact_rx or cut is not None:
        if cut is None:
            cut = (t0 + wdead - 0.08) if wdead else (t_end - 1.0)
        low = sum(1 for t in tr["reply_times"] if t <= cut)
    rx = claim["rx"]
    if big:
        low = 0
    count = scen.get("count")
    if count is not None and rx + claim.get("err", 0) >= count:
        # finished by its count: what came after it rightly goes uncounted (iputils exits;
        # netkit freezes that host while it pings the others)
        # but replies queued with the one that made the count (within half a millisecond
        # of it) count too: iputils reads every queued answer before it checks the count
        times = sorted(tr["reply_times"])
        if 0 < rx <= len(times):
            low = min(low, sum(1 for t in times if t <= times[rx - 1] + 0.0005))
        else:
            low = min(low, rx)
        exact_rx = False
    if not (low <= rx <= up):
        finding(f"{tool}-rx", scen, {"host": host, "claim": rx, "captured_by_exit": up,
                                     "lower": low, "all": len(tr["seqs_all"])})
    if "dup" in claim and not big:
        if claim["dup"] > tr["dups"] or (exact_rx and not wdead and cut is None
                                         and claim["dup"] < tr["dups"]):
            finding(f"{tool}-dup", scen, {"host": host, "claim": claim["dup"],
                                          "captured": tr["dups"]})
    if claim["tx"] and "loss" in claim:
        want = 100.0 * (claim["tx"] - claim["rx"]) / claim["tx"]
        if abs(int(want) - claim["loss"]) > 1 and abs(want - claim["loss"]) > 1:
            finding(f"{tool}-losspct", scen, {"host": host, "claim": claim, "want": want})


def parse_json(out):
    """netkit --json ping: the summary records as parse_iputils' claims, plus the records."""
    res = {}
    recs = []
    for line in out.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            res.setdefault("_bad", []).append(line)
            continue
        recs.append(r)
        if r.get("type") == "summary":
            res[r["host"]] = dict(tx=r["transmitted"], rx=r["received"], dup=r["duplicates"],
                                  err=r["errors"], loss=r["loss_pct"], rec=r)
    for h in res:
        if not h.startswith("_"):
            res[h]["recs"] = [r for r in recs if r.get("host") == h]
    return res


RTT = re.compile(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
REPLY = re.compile(r"^(?:\[(\d+\.\d+)\] )?(\d+) bytes from (\S+): icmp_seq=(\d+)(?: ttl=\d+)?"
                   r"(?: time=([\d.]+) ms)?(.*)$")
STATUS = re.compile(r"^\r?(\d+)/(\d+) packets, (\d+)% loss")


def tol(v):
    """How far a round trip printed with iputils' precision may be from the exact figure."""
    return 0.0011 if v < 1 else 0.011 if v < 10 else 0.11 if v < 100 else 1.1


def judge_lines(tool, scen, r, flags, host, as_json):
    """One host's run: its lines against its own summary and its capture."""
    out, err, pk = r["out"], r["err"], r["pk"]
    f = {"replies": 0, "dups": 0, "errors": 0, "bells": out.count("\a"), "outstanding": [],
         "status": 0, "times": [], "header": None, "pattern": None, "summary": None}
    req_t, rep_t = {}, {}
    # only this tool's own ids: replies to the other tool's requests (its run just before,
    # on a slow path) may still arrive during this capture
    ids = {m[1] for t, d, src, dst, rest in pk if d == "Out"
           for m in [re.search(r"echo request, id (\d+), seq", rest)] if m}
    for t, d, src, dst, rest in pk:
        m = re.search(r"echo (request|reply), id (\d+), seq (\d+)", rest)
        if not m or m[2] not in ids:
            continue
        seq = int(m[3])
        if m[1] == "request" and d == "Out":
            req_t.setdefault(seq, t)
        elif m[1] == "reply" and d == "In":
            rep_t.setdefault(seq, t)
    if as_json:
        claims = parse_json(out)
        if "_bad" in claims:
            finding(f"{tool}-json-nonjson", scen, {"lines": claims["_bad"][:3]})
        c = claims.get(host)
        if c is None:
            return f
        recs = c["recs"]
        first = [x for x in recs if x.get("type") == "reply" and not x["dup"]]
        dups = [x for x in recs if x.get("type") == "reply" and x["dup"]]
        if len(first) != c["rx"] or len(dups) != c["dup"]:
            finding(f"{tool}-json-records", scen, {"replies": len(first), "dups": len(dups),
                                                   "summary": c["rec"]})
        seqs = [x["seq"] for x in first]
        if len(set(seqs)) != len(seqs):
            finding(f"{tool}-json-seq-twice", scen, {"seqs": seqs})
        to = {x["seq"] for x in recs if x.get("type") == "timeout"}
        # Each ICMP error is an `error` record; the summary's errors also count the requests
        # refused locally as too big (stderr's `local error`).
        errs = [x for x in recs if x.get("type") == "error"]
        local = sum("local error" in line for line in err.splitlines())
        if len(errs) + local != c["err"]:
            finding(f"{tool}-json-error-records", scen, {"error_records": len(errs),
                                                         "local": local, "summary": c["rec"]})
        f["replies"], f["dups"] = len(first), len(dups)
        f["summary"] = c["rec"]
        rtts = [x["rtt_ms"] for x in first + dups if x.get("rtt_ms") is not None]
        rec = c["rec"]
        if rtts and rec.get("min_ms") is not None:
            if abs(rec["min_ms"] - min(rtts)) > 0.0011 or abs(rec["max_ms"] - max(rtts)) > 0.0011:
                finding(f"{tool}-json-rtt", scen, {"rtts": rtts, "summary": rec})
        return f
    for line in out.splitlines():
        if line.startswith("PING "):
            f["header"] = line
        if line.startswith("PATTERN: "):
            f["pattern"] = line
        m = REPLY.match(line.replace("\a", ""))
        if m:
            if m[6] and "DUP!" in m[6]:
                f["dups"] += 1
            else:
                f["replies"] += 1
                seq = int(m[4])
                if m[5] and seq in req_t and seq in rep_t:
                    wire = (rep_t[seq] - req_t[seq]) * 1000
                    tm = float(m[5])
                    if tm < wire - 0.5 or tm > wire + 30 + 0.1 * wire:
                        finding(f"{tool}-rtt-vs-wire", scen, {"seq": seq, "printed": tm,
                                                              "wire": round(wire, 3)})
            if m[5]:
                f["times"].append(float(m[5]))
            if "-D" in flags and not m[1]:
                finding(f"{tool}-no-timestamp", scen, {"line": line})
            if m[1] and not (r["t0"] - 1 <= float(m[1]) <= time.time()):
                finding(f"{tool}-bad-timestamp", scen, {"line": line, "t0": r["t0"]})
        if re.match(r"^(?:\[\d+\.\d+\] )?From \S+ icmp_seq=\d+ ", line):
            f["errors"] += 1
        m = re.match(r"^(?:\[\d+\.\d+\] )?no answer yet for icmp_seq=(\d+)", line)
        if m:
            f["outstanding"].append(int(m[1]))
        m = RTT.search(line)
        if m:
            f["summary"] = tuple(float(x) for x in m.groups())
    for line in err.splitlines():
        if STATUS.match(line):
            f["status"] += 1
        if "local error" in line:
            f["errors"] += 1
    claims = parse_iputils(out)
    claim = next(iter(claims.values()), None)
    quiet = "-q" in flags or "-f" in flags
    if claim and not quiet:
        if f["replies"] != claim["rx"] or f["dups"] != claim["dup"]:
            finding(f"{tool}-lines-vs-summary", scen, {"reply_lines": f["replies"],
                                                       "dup_lines": f["dups"], "claim": claim})
        if f["errors"] != claim["err"]:
            finding(f"{tool}-error-lines-vs-summary", scen, {"error_lines": f["errors"],
                                                             "claim": claim})
    if f["summary"] and f["times"] and not quiet and len(f["times"]) == f["replies"] + f["dups"]:
        mn, avg, mx, mdev = f["summary"]
        ts = f["times"]
        mean = sum(ts) / len(ts)
        sd = max(0.0, sum(t * t for t in ts) / len(ts) - mean * mean) ** 0.5
        bad = (abs(mn - min(ts)) > tol(min(ts)) or abs(mx - max(ts)) > tol(max(ts))
               or abs(avg - mean) > tol(mx) or abs(mdev - sd) > 2 * tol(mx) + 0.02 * sd)
        if bad:
            finding(f"{tool}-rtt-summary", scen, {"summary": f["summary"], "times": ts,
                                                  "mean": round(mean, 4), "sd": round(sd, 4)})
    # A fragmented reply shows in the capture by its first fragment; one whose later fragment
    # was lost never reaches the tool: -O rightly says no answer for it.
    if "-O" in flags and not quiet and not scen.get("big"):
        for n in sorted(req_t):
            if n + 1 not in req_t:
                continue
            nxt = req_t[n + 1]
            said = n in f["outstanding"]
            got = rep_t.get(n)
            if said and got is not None and got < nxt - 0.01:
                finding(f"{tool}-outstanding-false", scen, {"seq": n, "reply_before_next_s":
                                                            round(nxt - got, 4)})
            if not said and (got is None or got > nxt + 0.01):
                finding(f"{tool}-outstanding-missing", scen, {"seq": n})
    return f


def compare_lines(scen, facts, flags, refused=False, quit_both=True):
    """The lines of both runs. refused: netkit refused to run (unprivileged, exit 3, or no
    route, exit 2) before printing anything, where iputils prints its header or PATTERN line
    and then refuses; quit_both: SIGQUIT
    reached both tools while they ran."""
    a, b = facts["netkit"], facts["iputils"]
    if not scen.get("json"):
        for k in ("header", "pattern"):
            if a[k] != b[k] and not refused:
                finding(f"diff-{k}", scen, {"netkit": a[k], "iputils": b[k]})
        # bells: one per reply line (iputils rings for duplicates too? the same rule for both)
        ra = (a["bells"], a["replies"], a["dups"])
        rb = (b["bells"], b["replies"], b["dups"])
        rel = lambda x: ("all" if x[0] == x[1] + x[2] else "first" if x[0] == x[1]
                         else "none" if x[0] == 0 else "other")
        if "-a" in flags and "-q" not in flags and a["replies"] + a["dups"] and b["replies"] + b["dups"]:
            if rel(ra) != rel(rb):
                finding("diff-bells", scen, {"netkit": ra, "iputils": rb})
    sq = [g for t, g in scen["sigs"] if g == int(signal.SIGQUIT)]
    if sq and quit_both and a["status"] != b["status"] and not scen.get("json"):
        finding("diff-sigquit-status", scen, {"netkit": a["status"], "iputils": b["status"]})


def ping_scenario(lab, ns, sid):
    kinds = ["v4", "v4", "v4", "v6", "v6", "noecho", "nohost", "unr", "unr6", "nohost6"]
    n = rng.choice([1, 1, 1, 2, 3])
    hosts = []
    for _ in range(n):
        k = rng.choice(kinds)
        if k == "v4":
            h = str(BLOCK[rng.randrange(16)])
        elif k == "v6":
            h = rng.choice(V6HOSTS)
        elif k == "noecho":
            h = lab["no-echo"][0] if lab["no-echo"] else str(BLOCK[1])
        elif k == "nohost":
            h = NOHOST4
        elif k == "nohost6":
            h = NOHOST6
        elif k == "unr":
            h = "198.18.9." + str(rng.randrange(1, 255))
        else:
            h = "2001:db8:9::" + str(rng.randrange(1, 255))
        if h not in hosts:
            hosts.append(h)
    fam = {("6" if ":" in h else "4") for h in hosts}
    # how the tools run: root (raw sockets) or an unprivileged user (ICMP datagram sockets,
    # ping_group_range opened in the scanner namespace; no_new_privs keeps iputils' file
    # capability from applying)
    mode = rng.choice(["raw", "raw", "raw", "unpriv"])
    c = rng.choice([None, 1, 2, 3, 5, 8])
    ivals = [0.2, 0.3, 0.5, 1.0] + ([0.002, 0.01, 0.05] if mode == "raw" else [0.001, 0.002])
    i = rng.choice(ivals) if c != 1 else 1.0
    W = rng.choice([None, None, 0.1, 0.3, 0.5, 1, 2])
    w = rng.choice([None, None, 1, 2, 3, 5])
    if c is None and w is None:
        w = rng.choice([1, 2, 3])
    sizes = [None] * 6 + [0, 8, 15, 16, 100, 1000, 1472, 3000]
    if lab.get("_mtu"):
        sizes += [1200, 1300, 2000]
    s = rng.choice(sizes)
    ttl = rng.choice([None] * 6 + [1, 2, 64])
    M = rng.choice([None] * 5 + ["do", "want", "dont"])
    flood = mode == "raw" and rng.random() < 0.08
    if flood:
        c = rng.choice([5, 20, 50])
        w = rng.choice([None, 3])
    flags = []
    if c is not None:
        flags += ["-c", str(c)]
    if not flood or rng.random() < 0.3:
        flags += ["-i", f"{i:g}"]
    if flood:
        flags.append("-f")
    if W is not None:
        flags += ["-W", f"{W:g}"]
    if w is not None:
        flags += ["-w", str(w)]
    if s is not None:
        flags += ["-s", str(s)]
    if ttl is not None:
        flags += ["-t", str(ttl)]
    if M is not None:
        flags += ["-M", M]
    if rng.random() < 0.15:
        flags += ["-l", str(rng.choice([2, 3, 3, 5, 10]))]
    if rng.random() < 0.15:
        flags += ["-p", "".join(rng.choice("0123456789abcdef")
                                for _ in range(2 * rng.randrange(1, 5)))]
    for f in ["-O", "-D", "-q", "-n", "-a"]:
        if rng.random() < 0.25:
            flags.append(f)
    if len(fam) == 1 and rng.random() < 0.15:
        v6 = "6" in fam
        flags += ["-I", rng.choice(["lab0", "2001:db8:ffff::2" if v6 else "198.19.254.2"])]
    if len(fam) == 1 and rng.random() < 0.3:
        flags.append("-" + next(iter(fam)))
    # signals mid-run, the same schedule for both tools: SIGQUIT (status line, goes on),
    # SIGINT (summary, ends)
    sigs = []
    if rng.random() < 0.25:
        if rng.random() < 0.6:
            sigs.append((rng.uniform(0.2, 2.0), signal.SIGQUIT))
        if rng.random() < 0.7:
            sigs.append((rng.uniform(0.3, 3.0), signal.SIGINT))
    as_json = len(hosts) == 1 and rng.random() < 0.2
    scen = {"id": sid, "cmd": "ping", "lab": lab, "hosts": hosts, "flags": flags, "mode": mode,
            "count": c,
            "sigs": [(round(t, 3), int(g)) for t, g in sigs], "json": as_json,
            "truth": {h: truth_echo(lab, h) for h in hosts}}
    big = s is not None and s > min(1400, (lab.get("_mtu") or 1500) - 100)
    scen["local_error"] = M == "do" and big
    scen["big"] = big
    tmo = 40
    pre = []
    if mode == "unpriv":
        pre = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs"]
    nk_argv = pre + [NK] + (["--json"] if as_json else []) + ["ping"] + flags + hosts
    if len(hosts) == 1:
        peer_argv = pre + ["ping"] + flags + hosts
        peer = "iputils"
    else:
        # fping: the same count, interval, timeout, size, ttl; no -w
        pf = ["-c", str(c or max(1, int(w / i)))] + ["-p", str(max(1, int(i * 1000)))]
        if W is not None:
            pf += ["-t", str(int(W * 1000))]
        if s is not None:
            pf += ["-b", str(s)]
        if ttl is not None:
            pf += ["-H", str(ttl)]
        peer_argv = pre + ["fping", "-q"] + pf + hosts
        peer = "fping"
    order = [("netkit", nk_argv), (peer, peer_argv)]
    if rng.random() < 0.5:
        order.reverse()
    results = {}
    for tool, argv in order:
        cap = Capture(ns, os.path.join(args.out, f"s{sid}-{tool}.txt"))
        code, out, err, t0, t1, sent = run(ns, argv, tmo, sigs if peer == "iputils" else ())
        pk = cap.stop(0.2)
        results[tool] = dict(code=code, out=out, err=err, t0=t0, t1=t1, el=t1 - t0,
                             tr=icmp_truth(pk, t1), pk=pk, sent=sent)
        if sent:
            # replies captured after SIGINT may rightly be left out
            sint = [t for t, g in sent if g == signal.SIGINT]
            if sint:
                results[tool]["cut"] = sint[0] - 0.01
    scen["results"] = {k: {kk: vv for kk, vv in v.items() if kk in ("code", "out", "err", "el")}
                       for k, v in results.items()}
    nkr, pr = results["netkit"], results[peer]
    nk_claims = parse_json(nkr["out"]) if as_json else parse_iputils(nkr["out"])
    pr_claims = parse_iputils(pr["out"]) if peer == "iputils" else parse_fping(pr["err"])
    if peer == "iputils":
        # what only the lines show: replies, duplicates, errors, round trips, -O, -D, -a,
        # SIGQUIT status lines, the header; each tool against its own capture, then the two
        facts = {}
        for tool, r in (("netkit", nkr), ("iputils", pr)):
            facts[tool] = judge_lines(tool, scen, r, flags, hosts[0],
                                      (as_json and tool == "netkit"))
        # a tool that ended before the SIGQUIT was due printed no status line, rightly
        quit_both = all(any(g == signal.SIGQUIT for _, g in r["sent"]) for r in (nkr, pr))
        # netkit refuses before it prints anything: unprivileged (exit 3), or a host it has no
        # route to (exit 2), where iputils prints its PATTERN line while it reads its options,
        # then fails its connect with the same exit 2
        refused_first = ((nkr["code"] == 3 and "raw socket" in nkr["err"])
                         or (nkr["code"] == pr["code"] == 2 and not nkr["out"]))
        compare_lines(scen, facts, flags, refused_first, quit_both)
    if peer == "iputils" and hosts[0] in pr_claims:
        # iputils names the summary by what it was given; netkit by the address
        pass
    for h in hosts:
        if h not in nk_claims:
            if "network is unreachable" in nkr["err"] and (
                    h in nkr["err"] or scen["truth"][h] == "unroutable:local"):
                # documented: no route from here is bad input (exit 2); with several hosts and
                # none routed, the first one's refusal is the command's error
                continue
            if nkr["code"] == 3 and "raw socket" in nkr["err"]:
                continue  # refused unprivileged as iputils refuses it (exit 3: not permitted)
            finding("netkit-nosummary", scen, {"host": h, "out": nkr["out"][-300:],
                                               "err": nkr["err"][-300:]})
            continue
        # -s below 16 measures no round trip: iputils' wait after the last request is then
        # the interval (0 in flood mode), and replies after it are rightly left out
        untimed = s is not None and s < 16 and w is None
        judge_counts("netkit", scen, h, nk_claims[h], nkr["tr"].get(h), w, nkr["t0"], nkr["t1"],
                     not untimed, big, nkr.get("cut"))
        if h in pr_claims:
            judge_counts(peer, scen, h, pr_claims[h], pr["tr"].get(h),
                         w if peer == "iputils" else None, pr["t0"], pr["t1"],
                         peer == "iputils" and not untimed, big, pr.get("cut"))
    # exit codes
    def story(r):
        t = r["tr"].get(hosts[0]) or {}
        return (bool(t.get("seqs")), t.get("errors", 0) > 0)
    same_story = story(nkr) == story(pr)
    refused = nkr["code"] == 3 and "raw socket" in nkr["err"]
    if peer == "iputils" and same_story and not refused:
        def want(claims):
            """iputils' rule on a tool's own counts: -c with -w needs -c replies, else one."""
            rx = claims.get(hosts[0], {}).get("rx", 0)
            return 0 if rx >= (c if (w is not None and c is not None) else 1) else 1
        own = nkr["code"] == want(nk_claims) and pr["code"] == want(pr_claims)
        if nkr["code"] != pr["code"] and not own:
            a = nk_claims.get(hosts[0], {}).get("rx", 0) > 0
            b = pr_claims.get(hosts[0], {}).get("rx", 0) > 0
            finding("exit-code", scen, {"netkit": nkr["code"], "iputils": pr["code"],
                                        "nk_rx": nk_claims.get(hosts[0]),
                                        "ip_rx": pr_claims.get(hosts[0]), "same_alive": a == b})
        # iputils' `ping: sendmsg: No route to host` (Permission denied, Network is
        # unreachable) after an ICMP error is the raw socket's pending error (IP_RECVERR)
        # failing its next send, not an error kind of its own (that request never left)
        pr_err = pr["err"]
        if (pr["tr"].get(hosts[0]) or {}).get("errors", 0) > 0:
            pr_err = "\n".join(x for x in pr_err.splitlines()
                               if not x.startswith("ping: sendmsg: "))
        ek_n, ek_p = err_kinds(nkr["out"] + nkr["err"]), err_kinds(pr["out"] + pr_err)
        # both refused before sending anything (exit 2 or 3, nothing on stdout), each for the
        # first fault it checks: unprivileged `-l 10` to a host with no route is iputils'
        # preload limit and netkit's missing route (seed 9505)
        refused_both = (not nkr["out"] and not pr["out"] and nkr["code"] in (2, 3)
                        and pr["code"] in (2, 3))
        if ek_n != ek_p and not as_json and not refused_both:
            finding("error-kinds", scen, {"netkit": ek_n, "iputils": ek_p,
                                          "nk": (nkr["out"] + nkr["err"])[-600:],
                                          "ip": (pr["out"] + pr["err"])[-600:]})
    elif peer != "iputils" and not refused:
        # iputils' rule per host: silent, or with -w fewer than -c replies, is a failure
        need = c if (w is not None and c is not None) else 1
        all_n = all(nk_claims.get(h, {}).get("rx", 0) >= need for h in hosts)
        all_p = all(pr_claims.get(h, {}).get("rx", 0) > 0 for h in hosts)
        want_n = 0 if all_n else 1
        if nkr["code"] not in (want_n, 2) or (nkr["code"] == 2 and all_n):
            finding("exit-code-netkit", scen, {"netkit": nkr["code"], "all_answered": all_n})
    # exit time against -w
    if w is not None and not sigs:
        done_early = all((c is not None and nk_claims.get(h, {}).get("rx", 0) >= c)
                         or nk_claims.get(h, {}).get("err", 0) > 0 or h not in nk_claims
                         for h in hosts)
        near_peer = peer == "iputils" and abs(nkr["el"] - pr["el"]) < 0.3
        if not near_peer and (nkr["el"] > w + 0.4 or (not done_early and nkr["el"] < w - 0.1)):
            finding("netkit-exit-time", scen, {"elapsed": round(nkr["el"], 3), "w": w,
                                               "peer_elapsed": round(pr["el"], 3),
                                               "done_early": done_early})
    elif peer == "iputils" and not sigs:
        same = [{k: x.get(hosts[0], {}).get(k) for k in ("tx", "rx", "err")}
                for x in (nk_claims, pr_claims)]
        if same[0] == same[1] and abs(nkr["el"] - pr["el"]) > 0.5 + 0.25 * pr["el"]:
            finding("exit-time-vs-iputils", scen, {"netkit": round(nkr["el"], 3),
                                                   "iputils": round(pr["el"], 3),
                                                   "nk": nk_claims, "ip": pr_claims})
    if nkr["code"] in (-9, 124, 130) or "panick" in nkr["err"]:
        finding("netkit-hang-or-panic", scen, {"code": nkr["code"], "err": nkr["err"][-400:]})
    return scen


def sweep_scenario(lab, ns, sid):
    pick = rng.choice(["28", "27", "26", "25", "24", "list"])
    if pick == "list":
        v4 = rng.sample([str(BLOCK[k]) for k in range(16)], rng.randrange(1, 6))
        v4 += rng.sample([NOHOST4, "198.18.9.7", "198.18.0.77"], rng.randrange(0, 3))
        targets4 = list(v4)
        spec4 = list(v4)
    else:
        net = ipaddress.ip_network(f"198.18.0.0/{pick}")
        targets4 = [str(a) for a in net]
        spec4 = [str(net)]
    v6 = []
    if rng.random() < 0.5:
        v6 = rng.sample(V6HOSTS + [NOHOST6, "2001:db8:9::5"], rng.randrange(1, 5))
    if rng.random() < 0.2:
        targets4 += ["198.18.9.1", "198.18.9.2"]
        spec4 = spec4 + ["198.18.9.1-2"]
    method = rng.choice(["icmp", "icmp", "icmp", "tcp:80", "icmp,tcp:80", "timestamp"])
    if method == "timestamp":
        v6 = []
    flags = ["--method", method]
    if rng.random() < 0.4:
        flags += ["--retries", str(rng.choice([0, 1, 2, 5]))]
    if rng.random() < 0.4:
        flags += ["--timeout", rng.choice(["200ms", "500ms", "2s"])]
    every = rng.random() < 0.25
    if every:
        flags += ["--every", rng.choice(["1s", "2s"]), "--rounds", str(rng.choice([2, 3]))]
    targets = targets4 + v6
    # hosts that drop echo requests still answer connects and timestamp requests
    truthf = truth_echo if method == "icmp" else truth_tcp
    truth = {t: truthf(lab, t) for t in targets}
    scen = {"id": sid, "cmd": "sweep", "lab": lab, "targets": spec4 + v6, "flags": flags,
            "truth": truth}
    nk_argv = [NK, "--json", "sweep"] + flags + spec4 + v6
    retries = None
    if "--retries" in flags:
        retries = flags[flags.index("--retries") + 1]
    peers = []
    if method in ("icmp", "icmp,tcp:80", "tcp:80", "timestamp"):
        if method == "icmp":
            pf = ["fping", "-a", "-q"]
            if "--timeout" in flags:
                tmo = flags[flags.index("--timeout") + 1]
                pf += ["-t", str(int(float(tmo[:-2]) if tmo.endswith("ms") else float(tmo[:-1]) * 1000))]
            if retries is not None:
                pf += ["-r", retries]
            peers.append(("fping", pf + targets))
        nm = {"icmp": ["-PE"], "tcp:80": ["-PS80"], "icmp,tcp:80": ["-PE", "-PS80"],
              "timestamp": ["-PP"]}[method]
        if retries is not None:
            nm += ["--max-retries", retries]
        if "--timeout" in flags:
            # the same wait per probe (nmap otherwise adapts its own, up to 10 s)
            nm += ["--max-rtt-timeout", flags[flags.index("--timeout") + 1]]
        if targets4:
            peers.append(("nmap4", ["nmap", "-sn", "-n"] + nm + targets4))
        if v6 and method != "timestamp":
            peers.append(("nmap6", ["nmap", "-6", "-sn", "-n"] + [x for x in nm if x != "-PP"] + v6))
    runs = [("netkit", nk_argv)] + peers
    rng.shuffle(runs)
    res = {}
    for tool, argv in runs:
        code, out, err, t0, t1, _ = run(ns, argv, 120)
        res[tool] = dict(code=code, out=out, err=err, el=round(t1 - t0, 3))
    scen["results"] = res
    # netkit's answer
    nk = res["netkit"]
    rounds = {}
    summaries = []
    events = []
    for line in nk["out"].splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            finding("netkit-nonjson", scen, {"line": line})
            continue
        if r.get("type") == "host":
            rounds.setdefault(r.get("round", 1), {})[r["addr"]] = r
        elif r.get("type") == "summary":
            summaries.append(r)
        else:
            events.append(r)
    if not rounds:
        finding("netkit-noresult", scen, {"code": nk["code"], "err": nk["err"][-400:]})
        return scen
    # tolerated misses: a live host silent through all tries (random loss, policer) is noted;
    # none is expected when --timeout is shorter than the lab's shortest round trip (seed
    # 9981's scenario 23: --timeout 200ms at 700 ms each way, every host missed, nmap too)
    tmo = flags[flags.index("--timeout") + 1] if "--timeout" in flags else None
    tmo_s = None if tmo is None else (float(tmo[:-2]) / 1000 if tmo.endswith("ms")
                                      else float(tmo[:-1]))
    delay = float(lab.get("delay", "0ms")[:-2]) / 1000 - float(lab.get("jitter", "0ms")[:-2]) / 1000
    beyond = tmo_s is not None and tmo_s < delay * (1 if lab.get("direction") else 2)
    for rnd, hosts in rounds.items():
        if rnd != 1:
            continue
        for t in targets:
            key = str(ipaddress.ip_address(t))
            r = hosts.get(key)
            if r is None:
                finding("netkit-missing-target", scen, {"round": rnd, "addr": t})
                continue
            tr = truth[t]
            if r["alive"] and tr != "answers":
                finding("netkit-false-alive", scen, {"round": rnd, "addr": t, "truth": tr, "rec": r})
            if not r["alive"] and tr == "answers" and not beyond:
                finding("netkit-missed", scen, {"round": rnd, "addr": t, "rec": r})
            if tr.startswith("unroutable") and not r.get("error") and tr != "unroutable:local":
                pass  # the router's ICMP rate limit may leave it silent
            if r.get("error") and not tr.startswith("unroutable"):
                finding("netkit-error-on-routable", scen, {"addr": t, "truth": tr, "rec": r})
    for s in summaries:
        hosts = rounds.get(s["round"], {})
        if s["round"] == 1 and s["alive"] + s["dead"] + s["unreachable"] != len(targets):
            finding("netkit-summary-sum", scen, {"summary": s, "n": len(targets)})
    for e in events:
        if "down" in json.dumps(e) and truth.get(e.get("addr")) == "answers":
            finding("netkit-false-down", scen, {"event": e})
    last = summaries[-1] if summaries else None
    all_alive = all(truth[t] == "answers" for t in targets)
    if last is not None:
        want = 0 if last["alive"] == len(targets) else 1
        if nk["code"] != want:
            finding("netkit-exit", scen, {"code": nk["code"], "want": want, "summary": last})
    # peers: which truly live hosts each found
    found = {"netkit": {t for t in targets
                        if rounds[1].get(str(ipaddress.ip_address(t)), {}).get("alive")}}
    for tool, _ in peers:
        r = res[tool]
        if tool == "fping":
            up = set(r["out"].split())
        else:
            up = set(re.findall(r"Nmap scan report for (\S+)", r["out"]))
        found[tool] = up
        fa = [u for u in up if truth.get(u, "answers") != "answers"]
        if fa:
            finding(f"{tool}-false-alive", scen, {"addrs": fa})
    live = {t for t in targets if truth[t] == "answers"}
    scen["found"] = {k: [len(v & live), len(v - live)] for k, v in found.items()}
    scen["live"] = len(live)
    if nk["code"] in (-9, 124, 130) or "panick" in nk["err"]:
        finding("netkit-hang-or-panic", scen, {"code": nk["code"], "err": nk["err"][-400:]})
    return scen


def main():
    sid = 0
    nlab = 0
    while time.time() < DEADLINE:
        lab = draw_lab()
        argv = lab_argv(lab)
        lp = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              start_new_session=True)
        line = lp.stdout.readline().decode()
        m = re.search(r"scanner=(\S+)", line)
        if not m:
            print("lab failed:", " ".join(argv), lp.stderr.read().decode()[-500:], flush=True)
            lp.kill()
            lp.wait()
            time.sleep(1)
            continue
        ns = m[1]
        nlab += 1
        if lab.get("_mtu"):
            router = re.search(r"router=(\S+)", line)[1]
            subprocess.run(["ip", "netns", "exec", router, "ip", "link", "set", "far0", "mtu",
                            str(lab["_mtu"])], check=False)
        # unprivileged runs: the scanner's ICMP datagram sockets open to every group
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                        "net.ipv4.ping_group_range=0 2147483647"], check=False)
        print(f"lab {nlab}: {' '.join(argv[2:])} mtu={lab.get('_mtu')}", flush=True)
        try:
            for _ in range(args.per_lab):
                if time.time() > DEADLINE:
                    break
                sid += 1
                kind = args.only or rng.choice(["ping", "ping", "sweep"])
                scen = (ping_scenario if kind == "ping" else sweep_scenario)(lab, ns, sid)
                print(f" s{sid} {kind} {' '.join(scen.get('flags', []))} "
                      f"{' '.join(scen.get('hosts', scen.get('targets', [])))} "
                      f"{scen.get('found', '')}", flush=True)
                scen.pop("local_error", None)
                SCEN.write(json.dumps(scen) + "\n")
                SCEN.flush()
        finally:
            lp.send_signal(signal.SIGTERM)
            try:
                _, e = lp.communicate(timeout=10)
                print("  lab:", e.decode().strip()[-300:], flush=True)
            except subprocess.TimeoutExpired:
                lp.kill()
                lp.wait()
    print(f"done: {sid} scenarios in {nlab} labs", flush=True)


main()
