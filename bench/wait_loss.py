#!/usr/bin/env python3
"""How long `netkit wait http://...` takes to see a server that is up all along, across a lossy
link, beside a curl loop (bench/wait.sh's: `curl -sf --max-time 5`, sleep 0.25) and wait-for-it
(TCP, 1 s polling). A netkit-lab with --loss on the far link (both directions) and one far host,
198.18.0.2, running Python's threaded http.server on port 8080; each tool runs alone, RUNS times
per seed, one after the other, in the scanner namespace; the time is from its start to its exit
(ready), or the --timeout (30 s) when it gave up. Several netkit binaries may be compared (e.g.
main's and a branch's).

With --tcp, the wait is for the port (`netkit wait 198.18.0.2:8080`), beside wait-for-it and
a `ncat -z -w 1` loop (sleep 0.25). With --exponential-syn, the scanner namespace re-sends a
SYN at 1, 3, 7 s as kernels before 6.5 do (tcp_syn_linear_timeouts 0; later kernels re-send
the first four a second apart).

Sends only inside the lab's namespaces (198.18.0.2). Needs root.

  bench/wait_loss.py [--loss 35%] [--delay 300ms] [--jitter 100ms] [--seeds 1,2,3] [--runs 8]
                     [--lab BIN] [--tag T] [--tcp] [--exponential-syn]
                     NAME=NETKIT_BIN...
"""
import argparse
import statistics
import subprocess
import sys
import time

URL = "http://198.18.0.2:8080/"
CURL_LOOP = "until curl -sf -o /dev/null --max-time 5 \"$0\"; do sleep 0.25; done"
NCAT_LOOP = "until ncat -z -w 1 198.18.0.2 8080; do sleep 0.25; done"


def lab_up(args, seed):
    cmd = [args.lab, "up", "--tag", args.tag, "--loss", args.loss, "--delay", args.delay,
           "--jitter", args.jitter, "--seed", str(seed), "--host", "198.18.0.2"]
    lab = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = lab.stdout.readline()
    names = dict(kv.split("=", 1) for kv in line.split())
    return lab, names


def timed(cmd, limit):
    start = time.monotonic()
    try:
        code = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=limit).returncode
    except subprocess.TimeoutExpired:
        code = None
    return time.monotonic() - start, code


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loss", default="35%")
    ap.add_argument("--delay", default="300ms")
    ap.add_argument("--jitter", default="100ms")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--lab", default="target/release/netkit-lab")
    ap.add_argument("--tag", default="wls")
    ap.add_argument("--tcp", action="store_true", help="wait for the port, not the URL")
    ap.add_argument("--exponential-syn", action="store_true",
                    help="SYN retransmissions at 1, 3, 7 s in the scanner namespace")
    ap.add_argument("netkits", nargs="+", help="NAME=BIN")
    args = ap.parse_args()
    netkits = [n.split("=", 1) for n in args.netkits]
    results = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        lab, ns = lab_up(args, seed)
        server = None
        try:
            scanner, far = ns["scanner"], ns["far"]
            server = subprocess.Popen(["ip", "netns", "exec", far, "timeout", "900", "python3",
                                       "-m", "http.server", "--bind", "198.18.0.2", "8080"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
            inns = ["ip", "netns", "exec", scanner]
            if args.exponential_syn:
                subprocess.run(inns + ["sysctl", "-qw", "net.ipv4.tcp_syn_linear_timeouts=0"],
                               check=True)
            target = "198.18.0.2:8080" if args.tcp else URL
            tools = [(name, inns + [binary, "wait", target, "--timeout", "30s"])
                     for name, binary in netkits]
            if args.tcp:
                tools.append(("ncat -z -w 1 loop (sleep 0.25)",
                              inns + ["timeout", "30", "sh", "-c", NCAT_LOOP]))
            else:
                tools.append(("curl loop (--max-time 5, sleep 0.25)",
                              inns + ["timeout", "30", "sh", "-c", CURL_LOOP, URL]))
            tools.append(("wait-for-it (TCP, 1 s)",
                          inns + ["wait-for-it", "-q", "-t", "30", "198.18.0.2:8080"]))
            for run in range(args.runs):
                for name, cmd in tools:
                    took, code = timed(cmd, 40)
                    ok = code == 0
                    results.setdefault(name, []).append((took, ok))
                    print(f"seed {seed} run {run + 1} {name}: {took:.2f} s"
                          f"{'' if ok else ' (gave up)'}", flush=True)
        finally:
            if server:
                server.terminate()
                server.wait()
            lab.terminate()
            lab.wait()
    print()
    print(f"| tool | runs | ready | median s | mean s | p90 s | max s |")
    print("|---|---|---|---|---|---|---|")
    for name, got in results.items():
        times = sorted(t for t, _ in got)
        ready = sum(ok for _, ok in got)
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        print(f"| {name} | {len(got)} | {ready} | {statistics.median(times):.2f} | "
              f"{statistics.mean(times):.2f} | {p90:.2f} | {times[-1]:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
