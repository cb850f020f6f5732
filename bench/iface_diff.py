#!/usr/bin/env python3
"""Randomized differential audit of `netkit iface` beside iproute2 (`ip -j -d -s addr`).

Each round builds a network namespace of its own (ipcaudit-<pid>-<round>) with a seeded random
topology: veth pairs (one end's peer set down: no carrier), a bridge with ports, macvlan, tun
and tap, dummy and vlan links, long names (15 bytes), renamed links, MTU changes, aliases and
altnames, and many addresses: IPv4 with and without broadcast, secondary, point-to-point peers,
labels (NAME:N), IPv6 global/link-local, nodad, tentative (no carrier), deprecated
(preferred_lft 0), finite lifetimes, noprefixroute, home, mngtmpaddr. Then:

  snapshot  every field of `netkit --json iface` (and `iface show`, `iface addr`, `iface
            status`) against `ip -j -d -s addr` read before and after (counters between the two)
  watch     `netkit --json iface watch` and `ip monitor link address` run while random changes
            are made (up/down, carrier, MTU, rename, addresses added and removed, a link
            deleted); netkit's last record of every link must match `ip`'s final answer, and
            every address ip monitor saw added or deleted must have its netkit event

RUNNING vs ip's NO-CARRIER is documented (docs/json.md): `running` is IFF_RUNNING, not compared.
Differences are printed as DIFF lines; a summary counts scenarios and differences.

Usage: bench/iface_diff.py [--seed N] [--rounds N] [--netkit PATH]   (root; sends nothing
beyond the namespaces it creates, which it removes).
"""

import argparse
import ipaddress
import json
import os
import random
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIFFS = []
COUNTS = {}
FOREVER = 4294967295


def diff(area, what):
    DIFFS.append((area, what))
    print(f"DIFF [{area}] {what}", flush=True)


def count(area, n=1):
    COUNTS[area] = COUNTS.get(area, 0) + n


def sh(ns, cmd, check=False):
    p = subprocess.run(["ip", "-n", ns] + cmd, capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise RuntimeError(f"ip {' '.join(cmd)}: {p.stderr.strip()}")
    return p.returncode == 0


def ip_json(ns):
    p = subprocess.run(["ip", "-n", ns, "-j", "-d", "-s", "addr"], capture_output=True, text=True, timeout=20)
    return {l["ifname"]: l for l in json.loads(p.stdout)}


def netkit(ns, args, nk):
    p = subprocess.run(["ip", "netns", "exec", ns, nk] + args, capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout, p.stderr


def rand_name(rng, used, long=False):
    while True:
        if long or rng.random() < 0.2:
            n = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_.") for _ in range(15))
            n = "l" + n[1:]
        else:
            n = rng.choice(["v", "eth", "br", "mv", "tn", "tp", "d", "x"]) + str(rng.randrange(1000))
        if n not in used:
            used.add(n)
            return n


class Topo:
    def __init__(self, ns, rng):
        self.ns, self.rng = ns, rng
        self.used = {"lo"}
        self.links = []  # names
        self.v4 = 0

    def add(self, cmd):
        return sh(self.ns, cmd)

    def build(self):
        rng, ns = self.rng, self.ns
        sh(ns, ["link", "set", "lo", "up"] if rng.random() < 0.8 else ["link", "set", "lo", "down"])
        for _ in range(rng.randint(1, 4)):
            a, b = rand_name(rng, self.used), rand_name(rng, self.used)
            if self.add(["link", "add", a, "type", "veth", "peer", "name", b]):
                self.links += [a, b]
        if rng.random() < 0.7:
            br = rand_name(rng, self.used)
            if self.add(["link", "add", br, "type", "bridge"]):
                self.links.append(br)
                for port in rng.sample(self.links[:-1], k=min(len(self.links) - 1, rng.randint(0, 2))):
                    self.add(["link", "set", port, "master", br])
        if rng.random() < 0.6 and self.links:
            mv = rand_name(rng, self.used)
            lower = rng.choice(self.links)
            if self.add(["link", "add", mv, "link", lower, "type", "macvlan", "mode", rng.choice(["bridge", "private", "vepa"])]):
                self.links.append(mv)
        for mode in ["tun", "tap"]:
            if rng.random() < 0.5:
                t = rand_name(rng, self.used)
                if self.add(["tuntap", "add", t, "mode", mode]):
                    self.links.append(t)
        if rng.random() < 0.5:
            d = rand_name(rng, self.used)
            if self.add(["link", "add", d, "type", "dummy"]):
                self.links.append(d)
        if rng.random() < 0.4 and self.links:
            vl = rand_name(rng, self.used)
            lower = rng.choice(self.links)
            if self.add(["link", "add", "link", lower, "name", vl, "type", "vlan", "id", str(rng.randint(1, 4094))]):
                self.links.append(vl)
        if rng.random() < 0.3:
            # a veth whose peer lives in another namespace (parent_netnsid)
            a, b = rand_name(rng, self.used), rand_name(rng, self.used)
            other = self.ns + "-o"
            subprocess.run(["ip", "netns", "add", other], capture_output=True)
            if self.add(["link", "add", a, "type", "veth", "peer", "name", b, "netns", other]):
                self.links.append(a)
            if rng.random() < 0.5:
                sh(other, ["link", "set", b, "up"])
        if rng.random() < 0.15:
            # many links: dumps over several netlink messages
            for _ in range(rng.randint(50, 150)):
                a, b = rand_name(rng, self.used), rand_name(rng, self.used)
                self.add(["link", "add", a, "type", "veth", "peer", "name", b])
        if rng.random() < 0.3:
            sysctl = ["ip", "netns", "exec", ns, "sysctl", "-qw"]
            subprocess.run(sysctl + ["net.ipv6.conf.all.optimistic_dad=1"], capture_output=True)
            subprocess.run(sysctl + ["net.ipv6.conf.default.optimistic_dad=1"], capture_output=True)
        for l in self.links:
            if rng.random() < 0.1:
                self.add(["link", "set", l, "mode", "dormant"])
            if rng.random() < 0.1:
                self.add(["link", "set", l, "allmulticast", "on"])
            if rng.random() < 0.1:
                self.add(["link", "set", l, "multicast", "off"])
            if rng.random() < 0.1:
                self.add(["link", "set", l, "address", "02:%02x:%02x:00:00:01" % (rng.randrange(256), rng.randrange(256))])
            if rng.random() < 0.3:
                self.add(["link", "set", l, "mtu", str(rng.choice([1280, 1400, 1500, 9000, 68, 576]))])
            if rng.random() < 0.2:
                self.add(["link", "set", l, "alias", rng.choice(["uplink", "a b c", "x" * 60, "ü-é"])])
            if rng.random() < 0.2:
                self.add(["link", "property", "add", "dev", l, "altname", rand_name(rng, self.used)])
            if rng.random() < 0.7:
                self.add(["link", "set", l, "up"])
            if rng.random() < 0.2:
                self.add(["link", "set", l, "promisc", "on"])
            if rng.random() < 0.1:
                self.add(["link", "set", l, "arp", "off"])
        for _ in range(rng.randint(0, 25) if rng.random() < 0.9 else rng.randint(300, 1500)):
            self.random_addr()
        if rng.random() < 0.3 and self.links:
            # rename one (must be down)
            l = rng.choice(self.links)
            new = rand_name(rng, self.used, long=rng.random() < 0.5)
            self.add(["link", "set", l, "down"])
            if self.add(["link", "set", l, "name", new]):
                self.links[self.links.index(l)] = new
            if rng.random() < 0.5:
                self.add(["link", "set", new, "up"])

    def random_addr(self, dev=None):
        rng = self.rng
        if not self.links:
            return None
        dev = dev or rng.choice(self.links)
        self.v4 += 1
        if rng.random() < 0.5:
            net = rng.randrange(256)
            host = rng.randint(1, 250)
            prefix = rng.choice([8, 16, 24, 24, 30, 31, 32])
            a = f"198.18.{net}.{host}/{prefix}"
            cmd = ["addr", "add", a, "dev", dev]
            r = rng.random()
            if r < 0.2:
                cmd = ["addr", "add", f"198.18.{net}.{host}", "peer", f"198.19.{net}.{rng.randint(1,250)}/{prefix}", "dev", dev]
            elif r < 0.4:
                cmd += ["brd", "+"]
            elif r < 0.5:
                cmd += ["broadcast", f"198.18.{net}.255"]
            if rng.random() < 0.3:
                cmd += ["label", f"{dev}:{rng.randrange(100)}"[:15]]
            if rng.random() < 0.2:
                cmd += ["valid_lft", str(rng.randint(100, 10000)), "preferred_lft", str(rng.choice([0, 50, 100]))]
            if rng.random() < 0.1:
                cmd += ["noprefixroute"]
        else:
            g = rng.randrange(1 << 16)
            a = f"2001:db8:{g:x}::{rng.randrange(1, 1 << 16):x}/{rng.choice([64, 64, 48, 128, 127])}"
            if rng.random() < 0.15:
                a = f"fe80::{rng.randrange(1, 1 << 16):x}/64"
            cmd = ["addr", "add", a, "dev", dev]
            for flag in ["nodad", "home", "mngtmpaddr", "noprefixroute"]:
                if rng.random() < 0.15:
                    cmd.append(flag)
            if rng.random() < 0.1:
                cmd = ["addr", "add", a.split("/")[0], "peer", f"2001:db8:ffff::{rng.randrange(1, 1 << 16):x}/{rng.choice([64, 128])}", "dev", dev]
            if rng.random() < 0.3:
                cmd += ["valid_lft", str(rng.randint(100, 10000)), "preferred_lft", str(rng.choice([0, 50, 100]))]
        if rng.random() < 0.15:
            cmd += ["scope", rng.choice(["site", "link", "host", "nowhere", "global", str(rng.randrange(256))])]
        self.add(cmd)
        return dev


def ip_addr_flags(a):
    fl = []
    if not a.get("dynamic"):
        fl.append("permanent")
    else:
        fl.append("dynamic")
    for k in ["secondary", "temporary", "deprecated", "tentative", "nodad", "optimistic", "dadfailed",
              "home", "mngtmpaddr", "noprefixroute", "autojoin", "stable-privacy"]:
        if a.get(k):
            fl.append(k)
    return sorted(fl)


def cmp_addr(where, n, a, slack):
    out = []
    def ne(field, nv, iv):
        if nv != iv:
            out.append(f"{where} {a.get('local')} {field}: netkit {nv!r} ip {iv!r}")
    ne("family", n["family"], a["family"])
    ne("prefix", n["prefix"], a["prefixlen"])
    peer = a.get("address") if a.get("address") != a.get("local") else None
    ne("peer", n["peer"], peer)
    ne("broadcast", n["broadcast"], a.get("broadcast"))
    ne("scope", n["scope"], str(a.get("scope")))
    ne("label", n["label"], a.get("label"))
    ne("flags", sorted(n["flags"]), ip_addr_flags(a))
    for nf, iff in [("valid_lft_s", "valid_life_time"), ("preferred_lft_s", "preferred_life_time")]:
        iv = a.get(iff)
        if iv == FOREVER:
            ne(nf, n[nf], None)
        elif n[nf] is None or abs(n[nf] - iv) > slack:
            ne(nf, n[nf], iv)
    return out


def compare_link(where, n, l, before=None, slack=3):
    """Every field of netkit's record `n` against ip's `l` (and ip's `before` read, counters)."""
    out = []
    def ne(field, nv, iv):
        if nv != iv:
            out.append(f"{where} {l['ifname']} {field}: netkit {nv!r} ip {iv!r}")
    ne("index", n["index"], l["ifindex"])
    ipflags = [f for f in l["flags"] if f not in ("NO-CARRIER", "M-DOWN")]
    ne("flags", [f for f in n["flags"] if f != "RUNNING"], ipflags)
    ne("up", n["up"], "UP" in l["flags"])
    ne("mtu", n["mtu"], l.get("mtu"))
    mac = l.get("address") if l.get("link_type") not in ("none",) else None
    ne("mac", n["mac"], mac)
    ne("operstate", n["operstate"], l["operstate"].lower())
    kind = (l.get("linkinfo") or {}).get("info_kind")
    ne("kind", n["kind"], kind)
    parent = l.get("link")
    if parent is None and l.get("link_index") is None:
        ne("parent", n["parent"], None)
    elif l.get("link_netnsid") is None:
        ne("parent", n["parent"], parent)
    ne("parent_netnsid", n["parent_netnsid"], l.get("link_netnsid"))
    ne("master", n["master"], l.get("master"))
    ne("qdisc", n["qdisc"], l.get("qdisc"))
    ne("txqlen", n["txqlen"], l.get("txqlen"))
    ne("altnames", sorted(n["altnames"]), sorted(l.get("altnames", [])))
    ne("alias", n["alias"], l.get("ifalias"))
    for d in ["rx", "tx"]:
        for c in ["bytes", "packets", "errors", "dropped"]:
            nv = n[f"{d}_{c}"]
            hi = l["stats64"][d][c]
            lo = before["stats64"][d][c] if before else hi
            if not (min(lo, hi) <= nv <= max(lo, hi)):
                out.append(f"{where} {l['ifname']} {d}_{c}: netkit {nv} ip {lo}..{hi}")
    ips = [a for a in l.get("addr_info", [])]
    nks = n["addrs"]
    ipkeys = [(a["family"], a["local"], a["prefixlen"]) for a in ips]
    nkkeys = [(a["family"], a["addr"], a["prefix"]) for a in nks]
    if ipkeys != nkkeys:
        if sorted(ipkeys) == sorted(nkkeys):
            out.append(f"{where} {l['ifname']} address order: netkit {nkkeys} ip {ipkeys}")
        else:
            out.append(f"{where} {l['ifname']} addresses: netkit-only {sorted(set(nkkeys)-set(ipkeys))} ip-only {sorted(set(ipkeys)-set(nkkeys))}")
    byk = {(a["family"], a["addr"], a["prefix"]): a for a in nks}
    for a in ips:
        k = (a["family"], a["local"], a["prefixlen"])
        if k in byk:
            diffs = cmp_addr(f"{where} {l['ifname']}", byk[k], a, slack)
            if diffs and before is not None:
                # DAD may end between the reads: also take ip's earlier answer
                earlier = {(b["family"], b["local"], b["prefixlen"]): b for b in before.get("addr_info", [])}
                if k in earlier and not cmp_addr("", byk[k], earlier[k], slack):
                    diffs = []
            out += diffs
    return out


def snapshot_check(ns, nk, rng):
    before = ip_json(ns)
    code, out, err = netkit(ns, ["--json", "iface"], nk)
    after = ip_json(ns)
    if code != 0:
        diff("snapshot", f"netkit iface exit {code}: {err.strip()}")
        return
    recs = [json.loads(x) for x in out.splitlines()]
    names = [r["name"] for r in recs]
    if sorted(names) != sorted(after):
        diff("snapshot", f"interfaces: netkit {sorted(names)} ip {sorted(after)}")
    if [r["index"] for r in recs] != sorted(r["index"] for r in recs):
        diff("snapshot", "not ordered by index")
    for r in recs:
        if r["name"] not in after:
            continue
        count("snapshot-link")
        count("snapshot-addr", len(r["addrs"]))
        for line in compare_link("iface", r, after[r["name"]], before.get(r["name"])):
            diff("snapshot", line)
    # one interface: show, addr, status (also by altname)
    for name in rng.sample(sorted(after), k=min(3, len(after))):
        l = after[name]
        count("show")
        for q in [name] + l.get("altnames", [])[:1]:
            code, out, err = netkit(ns, ["--json", "iface", "show", q], nk)
            if code != 0:
                diff("show", f"show {q}: exit {code} {err.strip()}")
                continue
            r = json.loads(out)
            if r["name"] != name:
                diff("show", f"show {q} gave {r['name']}")
            for line in compare_link("show", r, ip_json(ns)[name], l):
                diff("show", line)
        code, out, err = netkit(ns, ["--json", "iface", "addr", name], nk)
        want = [(a["family"], a["local"], a["prefixlen"]) for a in l.get("addr_info", []) if not a.get("dadfailed")]
        got = [(a["family"], a["addr"], a["prefix"]) for a in map(json.loads, out.splitlines())]
        later = ip_json(ns).get(name, {}).get("addr_info", [])
        want2 = [(a["family"], a["local"], a["prefixlen"]) for a in later if not a.get("dadfailed")]
        if got != want and got != want2:
            diff("addr", f"addr {name}: netkit {got} ip {want} ({err.strip()})")
        for fam, flag in [("inet", "-4"), ("inet6", "-6")]:
            code, out, err = netkit(ns, ["iface", "addr", name, flag], nk)
            w = [f"{a[1]}/{a[2]}" for a in want if a[0] == fam]
            g = out.split()
            w2 = [f"{a[1]}/{a[2]}" for a in want2 if a[0] == fam]
            if g not in (w, w2) and [x.split("/")[0] for x in g] not in ([x.split("/")[0] for x in w], [x.split("/")[0] for x in w2]):
                diff("addr", f"addr {name} {flag}: netkit {g} ip {w}")
        code, out, err = netkit(ns, ["iface", "status", name], nk)
        upr = "UP" in l["flags"] and "LOWER_UP" in l["flags"]
        # status follows up+running; ip: UP and LOWER_UP (RUNNING documented apart)
        count("status")
        if code not in (0, 1):
            diff("status", f"status {name}: exit {code} {err.strip()}")
        elif (code == 0) != upr:
            print(f"  note: status {name} exit {code}, ip flags {l['flags']} operstate {l['operstate']}")


def watch_round(ns, nk, rng, topo):
    # let duplicate address detection of the addresses just added end first: its "changed"
    # can otherwise fall between ip monitor's start and netkit's subscription (not a miss)
    time.sleep(2.5)
    wpath = f"/tmp/iface-diff-{ns}.watch"
    mpath = f"/tmp/iface-diff-{ns}.mon"
    wf, mf = open(wpath, "w"), open(mpath, "w")
    watch = subprocess.Popen(["ip", "netns", "exec", ns, nk, "--json", "iface", "watch"], stdout=wf, stderr=subprocess.PIPE, text=True)
    mon = subprocess.Popen(["ip", "-n", ns, "monitor", "link", "address"], stdout=mf, stderr=subprocess.DEVNULL)
    # wait for the subscription
    deadline = time.monotonic() + 5
    line = ""
    while time.monotonic() < deadline and "watching" not in line:
        line = watch.stderr.readline()
    time.sleep(0.2)
    ops = []
    for _ in range(rng.randint(5, 30)):
        if not topo.links:
            break
        l = rng.choice(topo.links)
        r = rng.random()
        if r < 0.15:
            op = ["link", "set", l, rng.choice(["up", "down"])]
        elif r < 0.25:
            op = ["link", "set", l, "mtu", str(rng.choice([1280, 1400, 1500, 9000]))]
        elif r < 0.5:
            dev = topo.random_addr(l)
            ops.append(("addr+", dev))
            continue
        elif r < 0.6:
            addrs = ip_json(ns).get(l, {}).get("addr_info", [])
            if not addrs:
                continue
            a = rng.choice(addrs)
            op = ["addr", "del", f"{a['local']}/{a['prefixlen']}", "dev", l]
        elif r < 0.7:
            new = rand_name(rng, topo.used, long=rng.random() < 0.5)
            sh(ns, ["link", "set", l, "down"])
            if sh(ns, ["link", "set", l, "name", new]):
                topo.links[topo.links.index(l)] = new
            ops.append(("rename", l, new))
            continue
        elif r < 0.75:
            op = ["link", "del", l]
            if sh(ns, op):
                topo.links = [x for x in topo.links if x in ip_json(ns)]
            ops.append(("del", l))
            continue
        elif r < 0.85:
            op = ["link", "set", l, "alias", rng.choice(["one", "two"])]
        elif r < 0.9:
            op = ["link", "set", l, "txqlen", str(rng.choice([10, 500, 1000]))]
        else:
            op = ["addr", "flush", "dev", l]
        sh(ns, op)
        ops.append(tuple(op))
    time.sleep(1.0)
    final = ip_json(ns)
    watch.terminate()
    mon.terminate()
    try:
        watch.wait(5)
    except subprocess.TimeoutExpired:
        watch.kill()
        diff("watch", "watch did not end on SIGTERM")
    mon.wait(5)
    wf.close()
    mf.close()
    recs = []
    for x in open(wpath):
        try:
            recs.append(json.loads(x))
        except ValueError:
            diff("watch", f"not JSON: {x[:200]!r}")
    monlines = open(mpath).read().splitlines()
    if not os.environ.get("IFACE_DIFF_KEEP"):
        os.unlink(wpath)
        os.unlink(mpath)
    count("watch-ops", len(ops))
    # last link record of every index still present must match ip's final answer
    last = {}
    gone = set()
    for r in recs:
        if r["type"] == "link":
            last[r["index"]] = r
            if r["event"] == "removed":
                gone.add(r["index"])
            else:
                gone.discard(r["index"])
    for name, l in final.items():
        r = last.get(l["ifindex"])
        if r is None:
            continue
        count("watch-final")
        # addresses in a link record are the interface after that link change; later address
        # events are separate records, so compare link fields only
        r = dict(r, addrs=[])
        l2 = dict(l, addr_info=[])
        for line in compare_link("watch-last", r, l2, None):
            if any(c in line for c in ("_bytes", "_packets", "_errors", "_dropped", "address")):
                continue  # counters are no change; addresses come in their own records
            if " parent: " in line or " master: " in line:
                continue  # parent/master renamed after the link's last record (no event of its own)
            if " alias: " in line and "UP" not in l["flags"]:
                continue  # documented: the kernel announces an alias change only while up
            diff("watch", line + f" (ops {ops})")
    for idx in gone:
        if any(l["ifindex"] == idx for l in final.values()):
            diff("watch", f"index {idx} reported removed but present")
    # address events: ip monitor's adds and deletes
    nk_add = {(r["addr"], r["prefix"]) for r in recs if r["type"] == "addr" and r["event"] in ("added", "changed")}
    nk_del = {(r["addr"], r["prefix"]) for r in recs if r["type"] == "addr" and r["event"] == "removed"}
    for ln in monlines:
        parts = ln.split()
        if not parts:
            continue
        deleted = parts[0] == "Deleted"
        if deleted:
            parts = parts[1:]
        if len(parts) > 3 and parts[2] in ("inet", "inet6"):
            pfx = parts[3]
            if len(parts) > 5 and parts[4] == "peer":
                pfx = parts[3] + "/" + parts[5].split("/")[1]
            a, p = pfx.split("/") if "/" in pfx else (pfx, "32")
            key = (a, int(p))
            if parts[2] == "inet6":
                key = (str(ipaddress.ip_address(a)), int(p))
            count("watch-addr-events")
            if deleted and key not in nk_del:
                diff("watch", f"ip monitor: Deleted {key}; netkit had no removed event (ops {ops})")
            if not deleted and key not in nk_add:
                diff("watch", f"ip monitor: {key} added/changed; netkit had no added/changed event (line {ln!r}; ops {ops})")
    # final addresses: fold netkit's address events over its first snapshot would need one;
    # instead every address ip has at the end must have been added or present before


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--netkit", default=os.path.join(ROOT, "target/release/netkit"))
    args = ap.parse_args()
    print(f"seed {args.seed}, netkit {args.netkit}", flush=True)
    rng = random.Random(args.seed)
    for r in range(args.rounds):
        ns = f"ipcaudit-{os.getpid()}-{r}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            rr = random.Random(rng.randrange(1 << 62))
            topo = Topo(ns, rr)
            topo.build()
            print(f"round {r}: {len(topo.links)} links", flush=True)
            snapshot_check(ns, args.netkit, rr)
            watch_round(ns, args.netkit, rr, topo)
            snapshot_check(ns, args.netkit, rr)
        except Exception as e:
            diff("round", f"raised {type(e).__name__}: {e}")
        finally:
            subprocess.run(["ip", "netns", "del", ns])
            subprocess.run(["ip", "netns", "del", ns + "-o"], capture_output=True)
    print("scenarios:", json.dumps(COUNTS), "differences:", len(DIFFS))
    return 1 if DIFFS else 0


if __name__ == "__main__":
    sys.exit(main())
