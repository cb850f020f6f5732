#!/usr/bin/env python3
"""wait --invert at 20% loss, 150+-75 ms each way: HTTP server up, all tools start together,
at 2.0 s the far firewall rejects port 8080 (icmp-host-unreachable; established connections
stay, their resends rejected). Time from the reject to each tool's exit (gone), or missed.

  bench/wait_invert_loss.py RUNS [LOSS] [RATELIMIT]
  env: NETKIT (the build under test), NETKIT_BASE (to compare with), NETKIT_LAB, TAG (the lab's
  tag, default wtpi), REJECT_AT (seconds into each run, default 2.0; "never": the server stays
  all along, and any "gone" is wrong: counted as such)."""
import os, subprocess, sys, time, threading, statistics
NEW = os.environ.get("NETKIT", "target/release/netkit")  # the build under test
MAIN = os.environ.get("NETKIT_BASE", NEW)  # the build to compare with
LAB = os.environ.get("NETKIT_LAB", "target/release/netkit-lab")
URL = "http://198.18.0.2:8080/"
TAG = os.environ.get("TAG", "wtpi")
NEVER = os.environ.get("REJECT_AT", "2.0") == "never"
REJECT_AT = 15.0 if NEVER else float(os.environ.get("REJECT_AT", "2.0"))
runs = int(sys.argv[1]); loss = sys.argv[2] if len(sys.argv) > 2 else "20%"
ratelimit = sys.argv[3] if len(sys.argv) > 3 else "off"
lab = subprocess.Popen([LAB, "up", "--tag", TAG, "--loss", loss, "--delay", "150ms", "--jitter", "75ms",
                        "--seed", "50", "--host", "198.18.0.2", "--icmp-ratelimit", ratelimit], stdout=subprocess.PIPE, text=True)
ns = dict(kv.split("=", 1) for kv in lab.stdout.readline().split())
S, F = ["ip", "netns", "exec", ns["scanner"]], ["ip", "netns", "exec", ns["far"]]
server = subprocess.Popen(F + ["timeout", "900", "python3", "-m", "http.server", "--bind", "198.18.0.2", "8080"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.5)
tools = {
    "netkit main": S + ["timeout", "20", MAIN, "wait", "--invert", URL, "--timeout", "15s"],
    "netkit new": S + ["timeout", "20", NEW, "wait", "--invert", URL, "--timeout", "15s"],
    "curl loop": S + ["timeout", "15", "sh", "-c", f"while curl -s -o /dev/null --max-time 5 {URL}; do sleep 0.25; done"],
    "ncat loop": S + ["timeout", "15", "sh", "-c", "while ncat -z -w 1 198.18.0.2 8080; do sleep 0.25; done"],
}
rule = ["-p", "tcp", "--dport", "8080", "-j", "REJECT", "--reject-with", "icmp-host-unreachable"]
res = {k: [] for k in tools}
try:
    for r in range(runs):
        t0 = time.monotonic(); out = {}
        def go(name, cmd):
            p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out[name] = (p.returncode, time.monotonic() - t0)
        th = [threading.Thread(target=go, args=kv) for kv in tools.items()]
        for t in th: t.start()
        if not NEVER:
            time.sleep(max(0, REJECT_AT - (time.monotonic() - t0)))
            subprocess.run(F + ["iptables", "-I", "INPUT"] + rule, check=True)
        for t in th: t.join()
        if not NEVER:
            subprocess.run(F + ["iptables", "-D", "INPUT"] + rule, check=True)
        line = []
        for k in tools:
            code, at = out[k]
            ok = code == 0
            res[k].append(at - REJECT_AT if ok else None)
            line.append(f"{k}: {'%.2f' % (at - REJECT_AT) if ok else 'missed(%s)' % code}")
        print(f"run {r+1}: " + ", ".join(line), flush=True)
        time.sleep(1)
finally:
    server.terminate(); server.wait(); lab.terminate(); lab.wait()
if NEVER:  # the server never went: every "gone" is wrong (at < 0: before the 15 s)
    print("| tool | runs | wrong gone |")
    print("|---|---|---|")
    for k, v in res.items():
        print(f"| {k} | {len(v)} | {sum(x is not None for x in v)} |")
    sys.exit(0)
print(f"| tool | runs | gone by 13 s | median s after the reject | max s |")
print("|---|---|---|---|---|")
for k, v in res.items():
    got = sorted(x for x in v if x is not None)
    med = statistics.median(got) if got else float('nan')
    print(f"| {k} | {len(v)} | {len(got)} | {med:.2f} | {got[-1] if got else float('nan'):.2f} |")
