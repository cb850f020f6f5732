#!/usr/bin/env python3
"""`netkit ping` beside iputils ping on impaired netkit-lab labs, line by line against a capture.

Each run goes under its own tcpdump in the scanner namespace; the tool is judged against the
packets that reached it: the requests of its ICMP id sent before it exited, the replies to
them (and their duplicates) that arrived before it exited. Checked for each run:

- transmitted, received and +duplicates of the summary against the capture (a reply that came
  after the tool was done, its count reached or its wait over, and before its process was
  reaped, is a `late-edge`, not a finding);
- every reply line (`icmp_seq=N`, `(DUP!)`) against the capture's replies in order of arrival:
  a late reply is a reply line (iputils prints it, whatever `-W` said), a duplicate a DUP!;
- with `-O`, a `no answer yet for icmp_seq=N` only for a request with no reply by the next
  request (within the capture's clock, 20 ms of slack);
- the exit code by iputils' rule (0 when a reply came, with `-w` and `-c` when the count was
  reached).

Scenarios: jitter larger than the interval with duplication and reordering (late replies
overtake later ones; a duplicate can come after the original's `-W`), loss bursts (the far
side drops echo for a while, `iptables` in the far namespace), an IPv6 host behind an ICMP
echo policer, a round trip of 0.4-1.6 s beside `-i 0.2` (the last replies come after the
count is sent; `-q`, `-D`, `-W` past the interval, `-w` ending with replies in flight, `-A`),
`-f`, `-A` and `-i 0.01` on a lossy link with duplicates and reordering (a flood is judged by
its counts, as `-q`). `--user` runs both tools as uid 65534 (ICMP datagram sockets:
`ping_group_range` opened in the scanner namespace, iputils copied without its file
capabilities), leaving out the floods and preloads neither takes unprivileged.
Both tools run back to back in the same lab, alternating which goes first.

Sends only inside the lab's namespaces (198.18.0.0/15, 2001:db8::/32). Needs root.

  bench/ping_lines.py [--seed S] [--rounds N] [--netkit BIN] [--lab BIN] [--tag TAG]
                      [--only NAME,...] [--user]
"""
import argparse
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
V4, V6 = "198.18.0.2", "2001:db8::2"

# name: (lab flags, [(ping args, target)], burst: (period, drop) in seconds or None)
SCENARIOS = {
    "jitter-dup-reorder": (["--delay", "300ms", "--jitter", "250ms", "--dup", "20%",
                            "--reorder", "20%", "--loss", "5%"],
                           [(["-i", "0.2", "-c", "30"], V4),
                            (["-i", "0.2", "-c", "30", "-W", "0.3", "-O"], V4),
                            (["-i", "0.2", "-c", "20", "-W", "0.2"], V6),
                            (["-i", "0.2", "-w", "4", "-O"], V6),
                            (["-i", "0.2", "-c", "10", "-w", "6"], V4)], None),
    "loss-bursts": (["--delay", "20ms", "--jitter", "5ms"],
                    [(["-i", "0.2", "-c", "40"], V4),
                     (["-i", "0.2", "-c", "40", "-O", "-W", "0.5"], V4),
                     (["-i", "0.2", "-w", "6"], V6),
                     (["-i", "0.2", "-c", "15", "-w", "8"], V4)], (1.6, 0.8)),
    "late-tail": (["--delay", "500ms", "--jitter", "300ms", "--dup", "10%", "--reorder", "10%",
                   "--loss", "5%"],
                  [(["-i", "0.2", "-c", "5"], V4),
                   (["-i", "0.2", "-c", "5", "-q"], V6),
                   (["-i", "0.2", "-c", "6", "-D"], V4),
                   (["-i", "0.2", "-c", "4", "-W", "3"], V6),
                   (["-i", "0.2", "-w", "2"], V4),
                   (["-i", "0.2", "-c", "20", "-w", "3", "-q"], V4),
                   (["-A", "-c", "10"], V6)], None),
    "v6-policer": (["--delay", "30ms", "--jitter", "10ms", "--icmp-police", "3"],
                   [(["-i", "0.2", "-c", "30"], V6),
                    (["-i", "0.2", "-c", "30", "-O", "-W", "0.4"], V6),
                    (["-i", "0.2", "-c", "10", "-w", "5"], V6),
                    (["-l", "5", "-i", "0.2", "-c", "20"], V6)], None),
    "lossy-fast": (["--delay", "5ms", "--jitter", "3ms", "--loss", "10%", "--dup", "5%",
                    "--reorder", "5%"],
                   [(["-f", "-c", "200"], V4),
                    (["-f", "-c", "150", "-W", "0.05"], V6),
                    (["-A", "-c", "60"], V4),
                    (["-A", "-c", "60", "-O"], V6),
                    (["-i", "0.01", "-c", "200"], V4),
                    (["-i", "0.01", "-c", "150", "-W", "0.02", "-O"], V6),
                    (["-i", "0.01", "-w", "2", "-q"], V4)], None),
}


# Runs an unprivileged tool cannot make (iputils and netkit both refuse a flood and a preload
# above 3 without CAP_NET_RAW: iputils exit 2, netkit 3): left out with --user.
def privileged_only(args):
    return "-f" in args or ("-l" in args and int(args[args.index("-l") + 1]) > 3)


# Seconds before a quiet run's exit in which a reply the tool did not count is a late-edge.
QUIET_EDGE = 0.15
USER = "65534"
USER_PING = "/tmp/ping_lines-user-ping"

REPLY = re.compile(r"bytes from .*icmp_seq=(\d+)")
NOANS = re.compile(r"no answer yet for icmp_seq=(\d+)")
SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?")
CAP = re.compile(r"^(\d+\.\d+) IP6? (\S+) > (\S+): ICMP6?,? echo (request|reply), id (\d+), "
                 r"seq (\d+)")

FINDINGS = []


def finding(kind, **what):
    FINDINGS.append((kind, what))
    print(f"FINDING {kind} {what}", flush=True)


class Lab:
    def __init__(self, lab, tag, flags, seed):
        cmd = [lab, "up", "--tag", tag, "--seed", str(seed), "--hosts", "198.18.0.0/24",
               "--hosts", "2001:db8::/120"] + flags
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        m = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if "scanner" not in m:
            self.proc.kill()
            raise RuntimeError(f"lab: {line!r} {self.proc.stderr.read()[-400:]}")
        self.scanner, self.far = m["scanner"], m["far"]

    def down(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bursts(lab, period, drop, stop):
    """Drops echo requests at the far side for `drop` s of every `period` s until `stop`."""
    rules = [["iptables", "-p", "icmp", "--icmp-type", "echo-request", "-j", "DROP"],
             ["ip6tables", "-p", "icmpv6", "--icmpv6-type", "echo-request", "-j", "DROP"]]
    ns = ["ip", "netns", "exec", lab.far]
    while not stop.wait(period - drop):
        for r in rules:
            subprocess.run(ns + [r[0], "-I", "INPUT"] + r[1:], capture_output=True)
        stop.wait(drop)
        for r in rules:
            subprocess.run(ns + [r[0], "-D", "INPUT"] + r[1:], capture_output=True)


def unprivileged(lab):
    """Lets uid 65534 open ICMP datagram sockets in the scanner namespace, and copies iputils
    without its file capabilities, so both tools run as an ordinary user would run them."""
    subprocess.run(["ip", "netns", "exec", lab.scanner, "sysctl", "-qw",
                    "net.ipv4.ping_group_range=0 2147483647"], check=True)
    if not os.path.exists(USER_PING):
        subprocess.run(["cp", subprocess.check_output(["which", "ping"], text=True).strip(),
                        USER_PING], check=True)
        os.chmod(USER_PING, 0o755)


def run_one(lab, tool, bin_, args, target, cap_file, user=False):
    v6 = ":" in target
    tcpdump = subprocess.Popen(["ip", "netns", "exec", lab.scanner, "tcpdump", "-i", "lab0",
                                "-n", "-tt", "-l", "-U", "icmp6" if v6 else "icmp"],
                               stdout=open(cap_file, "w"), stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    cmd = [bin_, "ping"] if tool == "netkit" else [USER_PING if user else "ping"]
    if user:
        cmd = ["setpriv", "--reuid", USER, "--regid", USER, "--clear-groups"] + cmd
    start = time.time()
    p = subprocess.run(["ip", "netns", "exec", lab.scanner, "timeout", "40"] + cmd + args
                       + [target], capture_output=True, text=True)
    end = time.time()
    time.sleep(0.3)
    tcpdump.send_signal(signal.SIGINT)
    tcpdump.wait(timeout=10)
    return p, start, end


def judge(name, tool, args, target, p, start, end, cap_file):
    caps = []
    for line in open(cap_file):
        m = CAP.match(line)
        if m:
            caps.append((float(m[1]), m[4], int(m[5]), int(m[6])))
    reqs = [c for c in caps if c[1] == "request" and start <= c[0] <= end]
    ids = {c[2] for c in reqs}
    where = f"{name} {tool} {' '.join(args)} {target}"
    if len(ids) != 1:
        finding("capture-ids", where=where, ids=sorted(ids))
        return None
    rid = ids.pop()
    sent = {}
    for t, _, _, seq in reqs:
        sent.setdefault(seq, t)
    replies = [(t, seq) for t, kind, i, seq in caps if kind == "reply" and i == rid
               and t <= end and seq in sent]
    seen, cap_lines = set(), []
    for t, seq in replies:
        cap_lines.append((seq, seq in seen, t))
        seen.add(seq)
    out = p.stdout
    lines = []
    for l in out.splitlines():
        m = REPLY.search(l)
        if m:
            lines.append((int(m[1]), "(DUP!)" in l))
    noans = [int(m[1]) for m in NOANS.finditer(out)]
    if "-D" in args:
        bare = [l for l in out.splitlines() if ("bytes from" in l or "no answer" in l)
                and not re.match(r"^\[\d{10}\.\d{6}\] ", l)]
        if bare:
            finding("timestamp-missing", where=where, lines=bare[:5])
    s = SUMMARY.search(out)
    if not s:
        finding("no-summary", where=where, out=out[-300:], err=p.stderr[-300:])
        return None
    tx, rx, dup = int(s[1]), int(s[2]), int(s[3] or 0)
    ctx, crx = len(sent), len(seen)
    cdup = len(replies) - crx
    printed = [(seq, d) for seq, d, _ in cap_lines]
    # replies after the tool was done: the capture's tail beyond the lines printed
    edge = len(lines) < len(printed) and printed[:len(lines)] == lines
    if "-q" in args or "-f" in args:
        # no reply lines (a flood draws dots): the counts alone, against the capture up to
        # the exit; a reply or duplicate the capture holds in the last QUIET_EDGE s before the
        # process was reaped may have come after the tool was done (its count reached, its
        # -w deadline over): a late-edge when only those are missing
        if lines:
            finding("quiet-printed", where=where, lines=lines[:10])
        lines = printed
        early = [seq for t, seq in replies if t <= end - QUIET_EDGE]
        crx_early = len(set(early))
        cdup_early = len(early) - crx_early
        edge = ((tx, rx, dup) != (ctx, crx, cdup) and tx == ctx
                and crx_early <= rx <= crx and cdup_early <= dup <= cdup)
    if (tx, rx, dup) != (ctx, crx, cdup) and not edge:
        finding("counts", where=where, tool_says=(tx, rx, dup), capture=(ctx, crx, cdup))
    if lines != printed and not edge:
        finding("reply-lines", where=where, tool=lines[:60], capture=printed[:60])
    # -O: a request is "no answer yet" only if no reply came before the next request went
    nxt = {seq: sent.get(seq + 1) for seq in sent}
    first_reply = {}
    for t, seq in replies:
        first_reply.setdefault(seq, t)
    for seq in noans:
        fr, n = first_reply.get(seq), nxt.get(seq)
        if fr is not None and n is not None and fr < n - 0.02:
            finding("noanswer-but-replied", where=where, seq=seq, reply=fr - start,
                    next=n - start)
    if "-O" in args:
        for seq in sorted(sent):
            n = nxt.get(seq)
            fr = first_reply.get(seq)
            if n is not None and (fr is None or fr > n + 0.02) and seq not in noans:
                finding("noanswer-missing", where=where, seq=seq)
    count = int(args[args.index("-c") + 1]) if "-c" in args else None
    if "-w" in args and count is not None:
        want = 0 if rx >= count else 1
    else:
        want = 0 if rx > 0 else 1
    if p.returncode != want:
        finding("exit", where=where, code=p.returncode, want=want, rx=rx)
    bound = float(args[args.index("-W") + 1]) if "-W" in args else None
    late = sum(1 for seq, d, t in cap_lines
               if bound is not None and not d and t - sent[seq] > bound)
    # the capture's own count of requests with no reply before the next went (no slack): -O's
    # lines should be near it; the checks above allow 20 ms either way
    unanswered = sum(1 for seq, n in nxt.items() if n is not None
                     and (first_reply.get(seq) is None or first_reply[seq] > n))
    return {"tx": tx, "rx": rx, "dup": dup, "code": p.returncode, "lines": len(lines),
            "late": late, "noans": len(noans), "noans_cap": unanswered, "edge": edge}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--netkit", default=os.path.join(ROOT, "target/release/netkit"))
    ap.add_argument("--lab", default=os.path.join(ROOT, "target/release/netkit-lab"))
    ap.add_argument("--tag", default="pln")
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--user", action="store_true",
                    help="run both tools as uid 65534 (ICMP datagram sockets, no flood)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    cap = f"/tmp/ping_lines-{os.getpid()}.txt"
    rows = []
    for name in a.only.split(","):
        flags, runs, burst = SCENARIOS[name]
        for rnd in range(a.rounds):
            lab = Lab(a.lab, a.tag, flags, rng.randrange(1, 1 << 30))
            if a.user:
                unprivileged(lab)
            stop = threading.Event()
            th = None
            if burst:
                th = threading.Thread(target=bursts, args=(lab, *burst, stop), daemon=True)
                th.start()
            try:
                for args, target in runs:
                    if a.user and privileged_only(args):
                        continue
                    order = ["iputils", "netkit"] if rng.random() < 0.5 else ["netkit", "iputils"]
                    for tool in order:
                        p, s, e = run_one(lab, tool, a.netkit, args, target, cap, a.user)
                        r = judge(name, tool, args, target, p, s, e, cap)
                        rows.append((name, " ".join(args), target, tool, r))
                        print(name, tool, " ".join(args), target, r, flush=True)
            finally:
                stop.set()
                if th:
                    th.join(timeout=5)
                lab.down()
    for path in (cap, USER_PING):
        if os.path.exists(path):
            os.remove(path)
    print(f"\n{len(rows)} runs, {len(FINDINGS)} findings")
    for kind, what in FINDINGS:
        print(" ", kind, what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
