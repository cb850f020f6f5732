#!/usr/bin/env python3
"""Attempt spacing at a 300 ms round trip (150 ms each way, no loss), --interval 100ms: SYNs
to a closed port (refused) seen in the far namespace over a 6 s wait, each tool alone; then a
listener started 3.0 s into the wait: time from its start to each tool's exit."""
import os, subprocess, sys, time, statistics
NEW = os.environ.get("NETKIT", "target/release/netkit")  # the build under test
MAIN = os.environ.get("NETKIT_BASE", NEW)  # the build to compare with
LAB = os.environ.get("NETKIT_LAB", "target/release/netkit-lab")
runs = int(sys.argv[1])
lab = subprocess.Popen([LAB, "up", "--tag", "wtps", "--delay", "150ms", "--seed", "2",
                        "--host", "198.18.0.2"], stdout=subprocess.PIPE, text=True)
ns = dict(kv.split("=", 1) for kv in lab.stdout.readline().split())
S, F = ["ip", "netns", "exec", ns["scanner"]], ["ip", "netns", "exec", ns["far"]]
def tools(port, t):
    return {
        "netkit main": S + [MAIN, "wait", f"198.18.0.2:{port}", "--interval", "100ms", "--timeout", f"{t}s"],
        "netkit new": S + [NEW, "wait", f"198.18.0.2:{port}", "--interval", "100ms", "--timeout", f"{t}s"],
        "ncat loop (sleep 0.1)": S + ["timeout", str(t), "sh", "-c", f"until ncat -z -w 1 198.18.0.2 {port}; do sleep 0.1; done"],
    }
try:
    syns = {}
    for r in range(runs):
        for name, cmd in tools(9, 6).items():
            cap = subprocess.Popen(F + ["timeout", "8", "tcpdump", "-l", "-n", "-i", "any",
                                         "tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0 and dst port 9"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(1)
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5); cap.terminate(); n = len(cap.stdout.read().splitlines()); cap.wait()
            syns.setdefault(name, []).append(n)
            print(f"refused run {r+1} {name}: {n} SYNs in 6 s", flush=True)
    lat = {}
    for r in range(runs):
        for name, cmd in tools(8000 + r, 10).items():
            port = 8000 + r
            t0 = time.monotonic()
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(3.0)
            srv = subprocess.Popen(F + ["timeout", "12", "python3", "-c",
                f"import socket,time;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('198.18.0.2',{port}));s.listen(64);time.sleep(11)"])
            ts = time.monotonic()
            code = p.wait()
            took = time.monotonic() - ts
            srv.terminate(); srv.wait()
            lat.setdefault(name, []).append(took if code == 0 else None)
            print(f"up run {r+1} {name}: {'%.2f' % took if code == 0 else 'missed'}", flush=True)
            time.sleep(0.3)
    print("| tool | SYNs in 6 s (runs) | median | ready after the listener, median (runs) |")
    print("|---|---|---|---|")
    for name in syns:
        l = [x for x in lat[name] if x is not None]
        print(f"| {name} | {syns[name]} | {statistics.median(syns[name])} | {statistics.median(l) if l else 'nan':.2f} ({len(l)} of {len(lat[name])}) |")
finally:
    lab.terminate(); lab.wait()
