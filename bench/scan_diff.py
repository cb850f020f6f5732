#!/usr/bin/env python3
"""Randomized differential audit of `netkit scan` beside nmap on impaired netkit-lab labs.

Each lab is drawn at random: delay 0-600 ms with jitter, loss 0-25 %, duplication, reordering,
a rate limit (200 kbit/s - 10 Mbit/s), a SYN policer (--syn-limit), IPv4 hosts (a /29) and IPv6
hosts, each with its own mix of open ports, DROPped ports and REJECTed ones (ICMP port
unreachable, admin prohibited, host unreachable or a TCP reset), sometimes a host whose every
port is dropped, and unroutable prefixes of a random kind (v4 and v6). In each lab several
scenarios are drawn (connect scan or --syn; one host, several, a v6 host, an absent or
unroutable one; port lists, ranges, --top N with nmap's ranking; --concurrency 1..1000;
--timeout; --retries; -Pn or host discovery; the output as text, JSON Lines, -oX -, -oG -,
-o FILE, -oA BASE, --all-ports), each run by netkit and by nmap (-sT for a connect scan, -sS for
--syn; the same ports, --max-rtt-timeout for --timeout, --max-retries for --retries,
--max-parallelism for --concurrency, nmap's default timing otherwise) back to back inside the
lab's scanner namespace. Both are judged against the lab's truth (what it was built to answer:
open, closed = a reset, filtered = dropped or an ICMP REJECT; nmap -sT may call a REJECT whose
ICMP port unreachable got through closed, as connect() sees ECONNREFUSED):

  wrong-open     an open port missed or a closed/filtered one called open
  wrong-state    a host's closed/filtered counts differ from the truth
  exit           netkit's exit status is not what its help says (0: every target answered;
                 1: a target silent or unreachable)
  malformed      an output that does not parse (XML, JSON Lines, grepable lines) or misses a host
  slower         netkit took more than 3x nmap's time (and 10 s more)
  hang           netkit stopped at the time limit

A finding is "hard" when the lab has no random impairment (no loss, dup, reorder, jitter,
rate or SYN policer), or when nmap got it right in the same lab. Findings go to
OUT/findings.jsonl, every scenario to OUT/scenarios.jsonl. Needs root. From the repository root:

  bench/scan_diff.py [--minutes M] [--seed S] [--out DIR] [--netkit BIN] [--lab BIN]
                     [--per-lab N] [--limit SECS] [--tag T]
"""
import argparse
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

ap = argparse.ArgumentParser()
ap.add_argument("--minutes", type=float, default=30)
ap.add_argument("--seed", type=int, default=int(time.time()))
ap.add_argument("--out", default="/tmp/scan_diff")
ap.add_argument("--netkit", default="target/release/netkit")
ap.add_argument("--lab", default="target/release/netkit-lab")
ap.add_argument("--tag", default="scandiff")
ap.add_argument("--per-lab", type=int, default=6)
ap.add_argument("--limit", type=int, default=180, help="seconds each run may take")
ap.add_argument("--no-nmap", action="store_true", help="judge netkit alone (faster)")
args = ap.parse_args()
os.makedirs(args.out, exist_ok=True)
rng = random.Random(args.seed)
DEADLINE = time.time() + args.minutes * 60
SCEN = open(os.path.join(args.out, "scenarios.jsonl"), "a")
FIND = open(os.path.join(args.out, "findings.jsonl"), "a")
NK = os.path.abspath(args.netkit)

V4 = [str(a) for a in ipaddress.ip_network("198.18.1.0/29")]
V6 = ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
NOHOST4, NOHOST6 = "198.18.1.20", "2001:db8::99"
UNR4, UNR6 = "198.18.200.0/24", "2001:db8:9::/64"
COMMON = [21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1723, 3306,
          3389, 5900, 8080]
REJECT_KINDS = ["port-unreachable", "admin-prohibited", "host-unreachable", "tcp-reset"]


# ---------------------------------------------------------------- the lab
def draw_ranges(lo, hi, n, maxlen):
    out = []
    for _ in range(n):
        a = rng.randrange(lo, hi)
        out.append((a, min(hi, a + rng.randrange(0, maxlen))))
    return out


def draw_host(addr):
    """One far host: its open ports, its dropped and rejected ranges (later rules lose)."""
    h = {"open": sorted(set(rng.sample(COMMON, rng.choice([0, 1, 2, 3]))
                            + [rng.randrange(1, 1200) for _ in range(rng.choice([0, 1, 2]))])),
         "drop": [], "reject": [], "drop_all": False}
    r = rng.random()
    if r < 0.08:
        h["drop_all"] = True
    else:
        if rng.random() < 0.6:
            h["drop"] = draw_ranges(1, 1200, rng.choice([1, 2]), rng.choice([5, 40, 150]))
        if rng.random() < 0.5:
            h["reject"] = [(a, b, rng.choice(REJECT_KINDS))
                           for a, b in draw_ranges(1, 1200, rng.choice([1, 2]),
                                                   rng.choice([5, 40, 150]))]
    return h


def draw_lab():
    lab = {}
    delay = rng.choice([0, 0, 0, 1, 5, 20, 50, 150, 300, 600])
    if delay:
        lab["delay"] = f"{delay}ms"
        if rng.random() < 0.4:
            lab["jitter"] = f"{max(1, delay // rng.choice([2, 4, 10]))}ms"
        if rng.random() < 0.2:
            lab["reorder"] = f"{rng.choice([5, 25])}%"
    if rng.random() < 0.45:
        lab["loss"] = f"{rng.choice([1, 2, 5, 10, 20, 25])}%"
    if rng.random() < 0.15:
        lab["dup"] = f"{rng.choice([5, 20, 50])}%"
    if rng.random() < 0.15:
        lab["rate"] = rng.choice(["200kbit", "500kbit", "2mbit", "10mbit"])
    if rng.random() < 0.2:
        lab["syn-limit"] = str(rng.choice([10, 50, 200, 1000]))
    if rng.random() < 0.15:
        lab["icmp-ratelimit"] = "off"
    lab["seed"] = str(rng.randrange(1, 10**6))
    lab["hosts"] = {a: draw_host(a) for a in V4 + V6}
    lab["unr4"] = rng.choice(["net", "host", "prohibit", "local"])
    lab["unr6"] = rng.choice(["net", "host", "prohibit", "local"])
    return lab


def impaired(lab):
    return any(k in lab for k in ["loss", "dup", "rate", "syn-limit", "reorder", "jitter"])


def fmt_addr(a):
    return f"[{a}]" if ":" in a else a


def lab_argv(lab):
    argv = [os.path.abspath(args.lab), "up", "--tag", args.tag, "--hosts", "198.18.1.0/29"]
    for a in V6:
        argv += ["--host", a]
    for a, h in lab["hosts"].items():
        if h["open"]:
            argv += ["--open", f"{fmt_addr(a)}:{','.join(map(str, h['open']))}"]
        if h["drop_all"]:
            argv += ["--drop", a]
        for lo, hi in h["drop"]:
            argv += ["--drop", f"{fmt_addr(a)}:{lo}-{hi}"]
        for lo, hi, kind in h["reject"]:
            argv += ["--reject", f"{fmt_addr(a)}:{lo}-{hi}={kind}"]
    argv += ["--unroutable", f"{UNR4}={lab['unr4']}", "--unroutable", f"{UNR6}={lab['unr6']}"]
    for k in ["delay", "jitter", "reorder", "loss", "dup", "rate", "syn-limit", "icmp-ratelimit",
              "seed"]:
        if k in lab:
            argv += [f"--{k}", lab[k]]
    return argv


def truth(lab, addr, port):
    """open, closed, filtered (dropped, ICMP REJECT), rejected-pu (nmap -sT may say closed),
    nohost, unroutable."""
    a = ipaddress.ip_address(addr)
    if a in ipaddress.ip_network(UNR4) or a in ipaddress.ip_network(UNR6):
        return "unroutable"
    h = lab["hosts"].get(addr)
    if h is None:
        return "nohost"
    # the lab's rules, first match wins (drops are given before rejects), then its listeners
    if h["drop_all"]:
        return "filtered"
    for lo, hi in h["drop"]:
        if lo <= port <= hi:
            return "filtered"
    for lo, hi, kind in h["reject"]:
        if lo <= port <= hi:
            return "closed" if kind == "tcp-reset" else ("filtered-pu" if kind ==
                                                         "port-unreachable" else "filtered")
    return "open" if port in h["open"] else "closed"


# ---------------------------------------------------------------- running
def ns_run(ns, argv, limit):
    t0 = time.time()
    pre = ["ip", "netns", "exec", ns, "timeout", "-s", "INT", "-k", "10", str(limit)]
    try:
        p = subprocess.run(pre + argv, capture_output=True, timeout=limit + 30)
        code, out, err = p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(
            errors="replace")
    except subprocess.TimeoutExpired:
        code, out, err = -9, "", "hard timeout"
    return {"code": code, "out": out, "err": err, "secs": round(time.time() - t0, 2)}


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def finding(kind, scen, detail, hard):
    rec = {"kind": kind, "hard": hard, "scenario": scen["id"], "argv": scen["netkit_argv"],
           "nmap_argv": scen.get("nmap_argv"), "lab": scen["lab_argv"], "detail": detail}
    FIND.write(json.dumps(rec) + "\n")
    FIND.flush()
    print("  FINDING", "HARD" if hard else "soft", kind, json.dumps(detail)[:300], flush=True)


# ---------------------------------------------------------------- parsing
class Malformed(Exception):
    pass


def parse_xml(text):
    """{addr: {"ports": {port: state}, "extra": {state: count}}}, the scanned port list."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise Malformed(f"xml: {e}")
    hosts, services = {}, None
    si = root.find("scaninfo")
    if si is not None:
        services = si.get("services")
    for h in root.findall("host"):
        addr = h.find("address").get("addr")
        st = h.find("status").get("state")
        ports, extra = {}, {}
        pe = h.find("ports")
        if pe is not None:
            for p in pe.findall("port"):
                ports[int(p.get("portid"))] = p.find("state").get("state")
            for x in pe.findall("extraports"):
                extra[x.get("state")] = extra.get(x.get("state"), 0) + int(x.get("count"))
        hosts.setdefault(addr, []).append({"ports": ports, "extra": extra, "status": st})
    return hosts, services


def parse_json(text):
    hosts = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise Malformed(f"json: {e}: {line[:100]}")
        t = rec.get("type")
        if t == "port":
            hosts.setdefault(rec["addr"], {"ports": {}, "counts": None})["ports"][rec["port"]] = \
                rec["state"]
        elif t == "host":
            e = hosts.setdefault(rec["addr"], {"ports": {}, "counts": None})
            e["counts"] = {k: rec.get(k, 0) for k in ["open", "closed", "filtered"]}
            e["status"] = rec.get("status")
    return hosts


def parse_grepable(text):
    hosts = {}
    for line in text.splitlines():
        m = re.match(r"Host: (\S+) \(\)\tPorts: (.*?)(?:\tIgnored State: (\w+) \((\d+)\))?$", line)
        if m:
            ports = {}
            for ent in filter(None, m[2].strip().split(", ")):
                f = ent.split("/")
                if len(f) < 3 or not f[0].isdigit():
                    raise Malformed(f"grepable entry {ent!r}")
                ports[int(f[0])] = f[1]
            extra = {m[3]: int(m[4])} if m[3] else {}
            hosts.setdefault(m[1], []).append({"ports": ports, "extra": extra})
        elif line.startswith("Host: ") and "Status:" not in line:
            raise Malformed(f"grepable line {line[:120]!r}")
    return hosts


def parse_text(text):
    hosts, summary = {}, None
    for line in text.splitlines():
        m = re.match(r"^(\S+)\s+(\d+)/tcp\s+(open|closed|filtered)\b", line)
        if m:
            hosts.setdefault(m[1], {})[int(m[2])] = m[3]
        m = re.search(r"(\d+) open, (\d+) closed, (\d+) filtered", line)
        if m and line.startswith(("Scanned", "Interrupted")):
            summary = dict(open=int(m[1]), closed=int(m[2]), filtered=int(m[3]))
    return hosts, summary


def states_from(entries, nports):
    """Per-host counts from XML/grepable entries (one host may be listed more than once)."""
    out = []
    for e in entries:
        c = {"open": 0, "closed": 0, "filtered": 0}
        for s in e["ports"].values():
            c[s.split("|")[0]] = c.get(s.split("|")[0], 0) + 1
        for s, n in e["extra"].items():
            c[s] = c.get(s, 0) + n
        out.append((set(p for p, s in e["ports"].items() if s == "open"), c))
    return out


# ---------------------------------------------------------------- scenarios
def pick_ports(lab):
    delay = int(lab.get("delay", "0ms")[:-2])
    slow = delay >= 150 or "rate" in lab and lab["rate"] in ("200kbit", "500kbit")
    kind = rng.choice(["list", "range", "range", "top", "mixed"])
    if kind == "list":
        ps = sorted(set(rng.sample(range(1, 1201), rng.choice([3, 10, 30]))
                        + rng.sample(COMMON, 5)))
        return ",".join(map(str, ps)), ps, None
    if kind == "top":
        n = rng.choice([10, 20, 100] if slow else [10, 100, 300])
        return None, None, n
    if kind == "mixed":
        a = rng.randrange(1, 1000)
        b = a + rng.choice([10, 50, 150])
        ps = sorted(set(COMMON[:8] + list(range(a, b + 1))))
        return f"{','.join(map(str, COMMON[:8]))},{a}-{b}", ps, None
    a = rng.randrange(1, 1000)
    n = rng.choice([20, 100] if slow else [20, 100, 200, 400])
    return f"{a}-{a + n - 1}", list(range(a, a + n)), None


def pick_targets():
    kind = rng.choice(["v4", "v4", "v4", "v4block", "v6", "v6", "multi", "nohost", "unr", "mix"])
    if kind == "v4":
        return kind, [rng.choice(V4)]
    if kind == "v4block":
        return kind, ["198.18.1.0/29"]
    if kind == "v6":
        return kind, [rng.choice(V6)]
    if kind == "multi":
        return kind, sorted(rng.sample(V4, rng.choice([2, 3])), key=ipaddress.ip_address)
    if kind == "nohost":
        return kind, [rng.choice([NOHOST4, NOHOST6])]
    if kind == "unr":
        return kind, [rng.choice(["198.18.200.7", "2001:db8:9::7"])]
    return kind, [rng.choice(V4), "198.18.200.9"]


def expand(targets):
    out = []
    for t in targets:
        if "/" in t:
            out += [str(a) for a in ipaddress.ip_network(t)]
        else:
            out.append(t)
    return out


def nmap_top(n):
    """The n TCP ports nmap-services ranks first (what --top-ports and --top-source nmap take)."""
    ranked = []
    for line in open("/usr/share/nmap/nmap-services"):
        f = line.split()
        if len(f) >= 3 and not line.startswith("#") and f[1].endswith("/tcp"):
            ranked.append((-float(f[2]), int(f[1].split("/")[0])))
    return sorted(p for _, p in sorted(ranked)[:n])


def scan_scenario(lab, lab_args, ns, sid):
    tkind, targets = pick_targets()
    fam6 = any(":" in t for t in targets)
    if fam6 and any(":" not in t for t in targets):
        targets = [t for t in targets if ":" in t]
    pspec, ports, top = pick_ports(lab)
    syn = rng.random() < 0.5
    flags, nflags = [], []
    if syn:
        flags.append("--syn")
    nflags.append("-sS" if syn else "-sT")
    if top:
        flags += ["--top", str(top), "--top-source", "nmap"]
        nflags += ["--top-ports", str(top)]
    else:
        flags += ["-p", pspec]
        nflags += ["-p", pspec]
    if rng.random() < 0.8 or len(expand(targets)) == 1:
        flags.append("-Pn")
        nflags.append("-Pn")
    if rng.random() < 0.3:
        c = rng.choice([1, 1, 2, 10, 100, 1000])
        flags += ["--concurrency", str(c)]
        nflags += ["--max-parallelism", str(c)]
    if rng.random() < 0.25:
        t = rng.choice(["300ms", "1s", "3s"])
        flags += ["--timeout", t]
        nflags += ["--max-rtt-timeout", t]
    if rng.random() < 0.25:
        r = rng.choice([0, 1, 2, 5])
        flags += ["--retries", str(r)]
        nflags += ["--max-retries", str(r)]
    if rng.random() < 0.2:
        flags.append("--all-ports")
    fmt = rng.choice(["json", "json", "xml", "xml", "grepable", "text", "ofile", "oA"])
    outfile = os.path.join(args.out, f"out-{sid}")
    pre = []
    if fmt == "json":
        pre = ["--json"]
    elif fmt == "xml":
        flags += ["-oX", "-", "-q"]
    elif fmt == "grepable":
        flags += ["-oG", "-", "-q"]
    elif fmt == "ofile":
        if rng.random() < 0.5:
            pre = ["--json"]
        flags += ["-o", outfile]
    elif fmt == "oA":
        flags += ["-oA", outfile]
    nk_argv = [NK] + pre + ["scan"] + flags + targets
    nm_argv = ["nmap", "-n"] + (["-6"] if fam6 else []) + nflags + ["-oX", "-"] + targets
    scen = {"id": sid, "lab": lab, "lab_argv": lab_args, "netkit_argv": nk_argv[1:],
            "nmap_argv": None if args.no_nmap else nm_argv, "targets": targets, "fmt": fmt,
            "syn": syn}
    nk = ns_run(ns, nk_argv, args.limit)
    nm = None if args.no_nmap else ns_run(ns, nm_argv, args.limit)
    scen["secs"] = {"netkit": nk["secs"], "nmap": nm and nm["secs"]}
    scen["codes"] = {"netkit": nk["code"], "nmap": nm and nm["code"]}
    hard_lab = not impaired(lab)
    print(f"#{sid} {' '.join(nk_argv[1:])[:150]}: netkit {nk['secs']} s rc {nk['code']}"
          + (f", nmap {nm['secs']} s" if nm else ""), flush=True)

    # nmap's result (and the port list --top chose)
    nm_hosts, services = {}, None
    if nm and nm["code"] == 0:
        try:
            nm_hosts, services = parse_xml(nm["out"])
        except Malformed:
            pass
    if ports is None and services is None:
        ports = nmap_top(top)
    elif ports is None:
        ports = []
        for part in services.split(","):
            a, _, b = part.partition("-")
            ports += range(int(a), int(b or a) + 1)
    scen["nports"] = len(ports)

    # netkit's result, from the output chosen
    if nk["code"] in (124, -9) or nk["code"] == 130 and "interrupted" in nk["err"].lower():
        # stopped at the limit: a finding unless nmap was stopped too
        if not nm or nm["code"] not in (124, -9):
            finding("hang", scen, {"secs": nk["secs"], "nmap_secs": nm and nm["secs"]}, True)
        return scen
    per_host = {}  # addr -> (open set, counts or None)
    try:
        if fmt == "json" or fmt == "ofile" and pre:
            text = nk["out"] if fmt == "json" else open(outfile).read()
            if fmt == "ofile" and text != nk["out"]:
                finding("malformed", scen, {"why": "-o file differs from stdout"}, True)
            for a, e in parse_json(text).items():
                per_host[a] = (set(p for p, s in e["ports"].items() if s == "open"), e["counts"])
        elif fmt in ("xml", "oA"):
            text = nk["out"] if fmt == "xml" else open(outfile + ".xml").read()
            hx, _ = parse_xml(text)
            for a, es in hx.items():
                for o, c in states_from(es, len(ports)):
                    per_host[a] = (o, c)
            if fmt == "oA":
                hg = parse_grepable(open(outfile + ".gnmap").read())
                for a, es in hg.items():
                    for o, c in states_from(es, len(ports)):
                        if a in per_host and per_host[a][0] != o:
                            finding("malformed", scen, {"why": "gnmap and xml disagree",
                                                        "addr": a}, True)
        elif fmt == "grepable":
            for a, es in parse_grepable(nk["out"]).items():
                for o, c in states_from(es, len(ports)):
                    per_host[a] = (o, c if sum(c.values()) == len(ports) else None)
        else:
            text = nk["out"] if fmt == "text" else open(outfile).read()
            if fmt == "ofile" and text != nk["out"]:
                finding("malformed", scen, {"why": "-o file differs from stdout"}, True)
            hs, summ = parse_text(text)
            for a in expand(targets):
                per_host[a] = (set(p for p, s in hs.get(a, {}).items() if s == "open"), None)
            scen["summary"] = summ
    except Malformed as e:
        finding("malformed", scen, {"why": str(e), "fmt": fmt, "out": nk["out"][-400:]}, True)
        return scen
    except FileNotFoundError as e:
        finding("malformed", scen, {"why": f"no output file: {e}", "fmt": fmt}, True)
        return scen

    # judge both
    silent_or_unr = False
    either = False  # a router's admin prohibited for every port: an answer (exit 0) or not (1)
    wrong = {}
    for a in expand(targets):
        tr = {p: truth(lab, a, p) for p in ports}
        kinds = set(tr.values())
        if kinds <= {"nohost", "unroutable"}:
            silent_or_unr = True
            if "unroutable" in kinds and lab["unr6" if ":" in a else "unr4"] == "prohibit":
                either = True
            got = per_host.get(a)
            if got and got[0]:
                wrong[a] = {"false_open": sorted(got[0])}
            continue
        if kinds <= {"filtered", "filtered-pu"} and not any(
                s == "filtered-pu" for s in tr.values()) and "-Pn" in flags:
            # every port dropped (or an ICMP REJECT other than port-unr.); with discovery the
            # host answered its echo, which counts as an answer (exit 0)
            silent_or_unr = True
        want_open = {p for p, s in tr.items() if s == "open"}
        want = {"open": len(want_open), "closed": sum(s == "closed" for s in tr.values()),
                "filtered": sum(s.startswith("filtered") for s in tr.values())}
        got = per_host.get(a)
        nmg = None
        if nm_hosts.get(a):
            nmo, nmc = states_from(nm_hosts[a], len(ports))[-1]
            nmg = {"open_missed": sorted(want_open - nmo), "false_open": sorted(nmo - want_open),
                   "counts": nmc}
            pu = sum(s == "filtered-pu" for s in tr.values())
            nm_ok = not (want_open ^ nmo) and (nmc == want or bool(
                not syn and pu and nmc["closed"] + nmc["filtered"] == want["closed"]
                + want["filtered"]))
        else:
            nm_ok = False
        if got is None:
            if not silent_or_unr or want_open:
                wrong[a] = {"missing_host": True, "want": want, "nmap": nmg}
            continue
        o, c = got
        w = {}
        if want_open - o:
            w["open_missed"] = sorted(want_open - o)
        if o - want_open:
            w["false_open"] = sorted(o - want_open)
        if c is not None and c != want:
            w["counts"] = c
            w["want"] = want
        if w:
            w["nmap"] = nmg
            w["nmap_ok"] = nm_ok
            wrong[a] = w
    scen["wrong"] = wrong
    for a, w in wrong.items():
        kind = "wrong-open" if ("open_missed" in w or "false_open" in w) else "wrong-state"
        finding(kind, scen, dict(w, addr=a, err=nk["err"][-300:]), hard_lab or w.get("nmap_ok",
                                                                                     False))
    want_code = 1 if silent_or_unr else 0
    if nk["code"] != want_code and not (nk["code"] == 1 and impaired(lab)) and not either:
        finding("exit", scen, {"code": nk["code"], "want": want_code, "err": nk["err"][-300:]},
                hard_lab)
    if nm and nk["secs"] > 3 * nm["secs"] and nk["secs"] > nm["secs"] + 10:
        finding("slower", scen, {"netkit": nk["secs"], "nmap": nm["secs"]}, True)
    return scen


# ---------------------------------------------------------------- main
def main():
    sid = 0
    print(f"seed {args.seed}, out {args.out}", flush=True)
    while time.time() < DEADLINE:
        lab = draw_lab()
        lab_args = lab_argv(lab)
        log = open(os.path.join(args.out, "lab.log"), "w")
        labp = subprocess.Popen(lab_args, stdout=subprocess.PIPE, stderr=log,
                                start_new_session=True, text=True)
        line = labp.stdout.readline()
        m = re.search(r"scanner=(\S+) router=(\S+) far=(\S+)", line)
        if not m:
            print("lab failed:", line, open(os.path.join(args.out, "lab.log")).read()[-500:])
            stop(labp)
            break
        ns = m[1]
        try:
            show = {k: v for k, v in lab.items() if k != "hosts"}
            print(f"lab {json.dumps(show)}", flush=True)
            for _ in range(args.per_lab):
                if time.time() > DEADLINE:
                    break
                sid += 1
                scen = scan_scenario(lab, lab_args[1:], ns, sid)
                SCEN.write(json.dumps(scen, default=sorted) + "\n")
                SCEN.flush()
        finally:
            stop(labp)
    print(f"scenarios: {sid}", flush=True)


if __name__ == "__main__":
    main()
