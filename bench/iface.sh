#!/usr/bin/env bash
# Time to list every interface of a namespace holding 1000 addresses: `netkit iface` against
# `ip -d -s addr` (iproute2), JSON and text, the whole namespace and one interface. Both run
# under `nsenter --net` (no /sys remount, so neither pays for one). Interleaved rounds;
# medians, p90 and ratios. Usage: bench/iface.sh [ROUNDS] [ADDRESSES] [PAIRS] (default 30,
# 1000, 0): PAIRS more veth pairs beside v0 (a host of containers), which a query of one
# interface should not pay for.
# Builds only a namespace of its own (removed on exit); sends nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-30}
count=${2:-1000}
pairs=${3:-0}
cargo build --release -q -p netkit-cli
ns=iface-bench-$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip -n "$ns" link add v0 type veth peer name v1
ip -n "$ns" link set lo up
python3 - "$count" > "/tmp/$ns.batch" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"addr add 198.18.{i // 250}.{i % 250 + 1}/16 dev v0")
PY
ip -n "$ns" -batch "/tmp/$ns.batch"
for i in $(seq 1 "$pairs"); do echo "link add a$i type veth peer name b$i"; done > "/tmp/$ns.batch"
ip -n "$ns" -batch "/tmp/$ns.batch"
rm -f "/tmp/$ns.batch"
NETKIT=$PWD/target/release/netkit NS=$ns python3 - "$rounds" "$count" "$pairs" <<'PY'
import json, os, statistics, subprocess, sys, time

rounds, count, pairs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
netkit = os.environ["NETKIT"]
enter = ["nsenter", f"--net=/run/netns/{os.environ['NS']}"]
tools = {
    "netkit --json iface": [netkit, "--json", "iface"],
    "ip -j -d -s addr": ["ip", "-j", "-d", "-s", "addr"],
    "netkit iface": [netkit, "iface"],
    "ip -d -s addr": ["ip", "-d", "-s", "addr"],
    "netkit --json iface show v0": [netkit, "--json", "iface", "show", "v0"],
    "ip -j -d -s addr show dev v0": ["ip", "-j", "-d", "-s", "addr", "show", "dev", "v0"],
    "netkit iface status v0": [netkit, "iface", "status", "v0"],
    "ip -br link show dev v0": ["ip", "-br", "link", "show", "dev", "v0"],
    "netkit --version (start-up)": [netkit, "--version"],
    "ip -V (start-up)": ["ip", "-V"],
}
peer = {
    "netkit --json iface": "ip -j -d -s addr",
    "netkit iface": "ip -d -s addr",
    "netkit --json iface show v0": "ip -j -d -s addr show dev v0",
    "netkit iface status v0": "ip -br link show dev v0",
    "netkit --version (start-up)": "ip -V (start-up)",
}

# Both see the same addresses before anything is timed.
ours = [json.loads(l) for l in subprocess.run(enter + tools["netkit --json iface"], check=True,
        capture_output=True, text=True).stdout.splitlines()]
theirs = json.loads(subprocess.run(enter + tools["ip -j -d -s addr"], check=True,
        capture_output=True, text=True).stdout)
v0 = lambda records, key: next(r for r in records if r[key] == "v0")
assert len(v0(ours, "name")["addrs"]) == len(v0(theirs, "ifname")["addr_info"]) == count

def once(argv):
    t0 = time.perf_counter()
    # `iface status` exits 1 for a link that is down (v0 is): timed all the same.
    subprocess.run(enter + argv, check=argv[-2:] != ["status", "v0"], stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000

times = {name: [] for name in tools}
for _ in range(rounds):
    for name, argv in tools.items():
        times[name].append(once(argv))
print(f"{count} addresses, {pairs} more veth pairs, {rounds} rounds")
print(f"{'command':32} {'median ms':>10} {'p90 ms':>8} {'vs ip':>8}")
for name, xs in times.items():
    xs.sort()
    med = statistics.median(xs); p90 = xs[int(len(xs) * 0.9) - 1]
    ratio = f"{med / statistics.median(times[peer[name]]):7.2f}x" if name in peer else ""
    print(f"{name:32} {med:10.2f} {p90:8.2f} {ratio:>8}")
PY
