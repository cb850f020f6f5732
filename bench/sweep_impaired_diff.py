#!/usr/bin/env python3
"""Audit of `netkit sweep` on impaired links against the truth, beside fping and nmap -sn doing
the same job in the same lab: for each scenario a netkit-lab with its impairment and its live
hosts, then ROUNDS interleaved rounds of netkit (and a "before" binary), fping and nmap -sn, each
judged by the lab's truth: live hosts found of those expected, hosts called alive that are not,
seconds. Every tool runs with its defaults (netkit --retries 10, fping -r 3, nmap's own), unless
--retries N is given to all three; --netkit-args adds arguments to netkit's alone.

Run (root, from the repository):
  bench/sweep_impaired_diff.py [--scenarios A,B] [--rounds N] [--seed S] \
      [--netkit target/release/netkit] [--base OLD_NETKIT] [--lab target/release/netkit-lab] \
      [--tools netkit,base,fping,nmap] [--retries N] [--netkit-args ARGS] [--tag T]
  bench/sweep_impaired_diff.py --list
Sparse ranges draw their live hosts with --seed. One JSON line per round on stdout; the last
line sums each tool's misses and false finds per scenario. Exit 1 when netkit (or the base)
called alive a host that is not, or missed a host that fping or nmap found in the same round
(on a link with random loss: only when it also missed more than the peer that missed most;
with --retries 0 each tool misses a few there by chance, not the same ones).
Sends only inside the lab's namespaces (198.18.0.0/15, 2001:db8::/32). Needs root.

Scenarios (`--list`): v6 ranges (a whole /120, a sparse /118), loss with duplication and
reordering (v4 and v6), jitter wider than the delay (round trips 0.1-1.5 s), hosts answering
late (1-2 s round trips, over fping's 500 ms timeout and netkit's 1 s), the router's ICMP
unreachable answers (host unreachable, admin prohibited) beside live hosts (v4 and v6), an echo
policer with duplicates (v4 and v6), and `--method tcp:80` with some hosts rejecting :80 with
ICMP host unreachable from themselves (fping has no TCP probe: not run there; nmap -sn -PS80).

Results on main 9899287, seed 9730 (found/expected, seconds; see docs/benchmarks.md, stop 53).
"""
import argparse
import ipaddress
import json
import os
import random
import re
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--scenarios", default="all")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--seed", type=int, default=9730)
ap.add_argument("--netkit", default="target/release/netkit")
ap.add_argument("--base", default="", help="a second netkit binary (e.g. main's)")
ap.add_argument("--lab", default="target/release/netkit-lab")
ap.add_argument("--tools", default="netkit,base,fping,nmap")
ap.add_argument("--retries", type=int, help="given to every tool (--retries, -r, --max-retries)")
ap.add_argument("--netkit-args", default="", help="more arguments of netkit's (and the base's)")
ap.add_argument("--tag", default="swimp", help="the lab's tag (namespace names)")
ap.add_argument("--list", action="store_true")
args = ap.parse_args()


def block(net):
    """Every address of a `--hosts` block (AnyIP: the first and last are hosts too)."""
    return [str(a) for a in ipaddress.ip_network(net)]


def sparse(net, share, rng):
    """A share of the usable addresses of `net`, drawn with `rng`."""
    n = ipaddress.ip_network(net)
    pool = [str(a) for a in (n.hosts() if n.version == 4 else list(n)[1:])]
    return sorted(rng.sample(pool, max(1, int(len(pool) * share))), key=ipaddress.ip_address)


def hosts_flags(live):
    return [f for h in live for f in ("--host", h)]


def scenarios(seed):
    rng = random.Random(seed)
    s = {}

    def add(name, rng_range, live, lab, flags=None, method="icmp"):
        s[name] = {"range": rng_range, "live": live, "lab": (flags or hosts_flags(live)) + lab,
                   "method": method}

    add("v6-block-loss", "2001:db8:1::/120", block("2001:db8:1::/120"),
        ["--delay", "10ms", "--loss", "5%"], ["--hosts", "2001:db8:1::/120"])
    add("v6-sparse-loss", "2001:db8:2::/118", sparse("2001:db8:2::/118", 0.04, rng),
        ["--delay", "20ms", "--jitter", "5ms", "--loss", "10%"])
    ldr = ["--delay", "20ms", "--jitter", "10ms", "--loss", "10%", "--dup", "20%",
           "--reorder", "25%", "--seed", str(seed)]
    add("loss-dup-reorder", "198.18.3.0/24", sparse("198.18.3.0/24", 0.3, rng), ldr)
    add("v6-loss-dup-reorder", "2001:db8:4::/120", sparse("2001:db8:4::/120", 0.3, rng), ldr)
    add("jitter-over-delay", "198.18.2.0/26", block("198.18.2.0/26"),
        ["--delay", "400ms", "--jitter", "350ms", "--seed", str(seed)], ["--hosts", "198.18.2.0/26"])
    add("late-1-2s", "198.18.2.0/26", block("198.18.2.0/26"),
        ["--delay", "750ms", "--jitter", "250ms", "--seed", str(seed)], ["--hosts", "198.18.2.0/26"])
    add("unreachable", "198.18.4.0/23", sparse("198.18.4.0/24", 0.2, rng),
        ["--unroutable", "198.18.5.0/25=host", "--unroutable", "198.18.5.128/25=prohibit",
         "--delay", "5ms", "--loss", "3%"])
    add("v6-unreachable", "2001:db8:3::/119", sparse("2001:db8:3::/120", 0.25, rng),
        ["--unroutable", "2001:db8:3::100/121=host", "--unroutable", "2001:db8:3::180/121=prohibit",
         "--loss", "3%"])
    pol = ["--icmp-police", "100", "--dup", "10%", "--delay", "10ms", "--seed", str(seed)]
    add("police-dup", "198.18.6.0/24", sparse("198.18.6.0/24", 0.2, rng), pol)
    add("v6-police-dup", "2001:db8:6::/120", sparse("2001:db8:6::/120", 0.2, rng), pol)
    tcp = sparse("198.18.7.0/25", 0.3, rng)
    rejecting = tcp[::3]
    add("tcp-reject", "198.18.7.0/25", [h for h in tcp if h not in rejecting],
        ["--open-all", "80", "--loss", "5%", "--delay", "10ms"]
        + [f for h in rejecting for f in ("--reject", h + ":80=host-unreachable")],
        hosts_flags(tcp), "tcp:80")
    return s


def norm(a):
    return str(ipaddress.ip_address(a.split("%")[0]))


def run(ns, cmd):
    t0 = time.time()
    p = subprocess.run(["timeout", "180", "ip", "netns", "exec", ns] + cmd,
                       capture_output=True, text=True)
    return p, time.time() - t0


def probe(tool, sc, ns, listf):
    """Runs one tool over the scenario's range: (found addresses, seconds, exit status)."""
    v6 = ":" in sc["range"]
    tcp = sc["method"].startswith("tcp")
    if tool in ("netkit", "base"):
        binary = args.netkit if tool == "netkit" else args.base
        cmd = [binary, "sweep", sc["range"], "--alive", "--method", sc["method"]]
        retries = [] if args.retries is None else ["--retries", str(args.retries)]
        p, dt = run(ns, cmd + retries + args.netkit_args.split())
        found = {norm(ln.split()[0]) for ln in p.stdout.splitlines() if ln.endswith(" is alive")}
    elif tool == "fping":
        if tcp:
            return None
        retries = [] if args.retries is None else ["-r", str(args.retries)]
        p, dt = run(ns, ["fping", "-a", "-f", listf] + retries + (["-6"] if v6 else []))
        found = {norm(ln.split()[0]) for ln in p.stdout.splitlines() if ln.strip()}
    else:
        how = ["-PS" + sc["method"].split(":")[1]] if tcp else ["-PE"]
        fam = ["-6"] if v6 else ["--send-ip"]
        retries = [] if args.retries is None else ["--max-retries", str(args.retries)]
        cmd = ["nmap", "-sn", "-n", "-oG", "-"] + fam + how + retries
        p, dt = run(ns, cmd + [sc["range"]])
        found = {norm(m.group(1)) for m in re.finditer(r"Host: (\S+) .*Status: Up", p.stdout)}
    return found, dt, p.returncode


def main():
    table = scenarios(args.seed)
    if args.list:
        print(" ".join(table))
        return 0
    names = list(table) if args.scenarios == "all" else args.scenarios.split(",")
    tools = [t for t in args.tools.split(",") if t != "base" or args.base]
    totals, bad = {}, False
    for name in names:
        sc = table[name]
        live = {norm(h) for h in sc["live"]}
        lab = subprocess.Popen([args.lab, "up", "--tag", args.tag] + sc["lab"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        m = re.search(r"scanner=(\S+)", lab.stdout.readline())
        if not m:
            lab.kill()
            print(name, "netkit-lab did not come up:", lab.communicate()[1][-2000:], file=sys.stderr)
            return 2
        ns = m.group(1)
        net = ipaddress.ip_network(sc["range"])
        listf = f"/tmp/sweep_impaired_{args.tag}_{name}.list"
        with open(listf, "w") as f:
            f.writelines(f"{a}\n" for a in (net if net.version == 6 else net.hosts()))
        try:
            for r in range(args.rounds):
                row, peers_found = {"scenario": name, "round": r + 1, "expected": len(live)}, set()
                for tool in tools:
                    time.sleep(1)
                    got = probe(tool, sc, ns, listf)
                    if got is None:
                        continue
                    found, dt, rc = got
                    missed = sorted(live - found, key=ipaddress.ip_address)
                    false = sorted(found - live, key=ipaddress.ip_address)
                    row[tool] = {"found": len(found & live), "missed": missed, "false": false,
                                 "s": round(dt, 2), "exit": rc}
                    t = totals.setdefault(name, {}).setdefault(tool, [0, 0, 0, []])
                    t[0] += len(missed)
                    t[1] += len(false)
                    t[2] += 1
                    t[3].append(round(dt, 2))
                    if tool in ("fping", "nmap"):
                        peers_found |= found & live
                lossy = "--loss" in sc["lab"]
                most = max((len(row[t]["missed"]) for t in ("fping", "nmap") if t in row), default=0)
                for tool in ("netkit", "base"):
                    if tool not in row:
                        continue
                    missed = set(row[tool]["missed"]) & peers_found
                    if lossy and len(row[tool]["missed"]) <= most:
                        missed = set()
                    if missed or row[tool]["false"]:
                        row[tool]["wrong"] = True
                        bad = True
                print(json.dumps(row), flush=True)
        finally:
            os.remove(listf)
            lab.terminate()
            try:
                lab.wait(15)
            except subprocess.TimeoutExpired:
                lab.kill()
                lab.wait()
    summary = {n: {t: {"missed": v[0], "false": v[1], "runs": v[2], "s": [min(v[3]), max(v[3])]}
                   for t, v in tools_.items()} for n, tools_ in totals.items()}
    print(json.dumps({"totals": summary}), flush=True)
    return 1 if bad else 0


sys.exit(main())
