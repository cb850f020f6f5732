#!/usr/bin/env bash
# Detection latency of `netkit wait` against wait-for-it (1 s polling): each round starts the
# waiter on a free loopback port, opens a listener there after a random delay, and measures
# from the listener's bind to the waiter's exit. Interleaved rounds; medians and ratios.
# Usage: bench/wait.sh [ROUNDS]   (default 15). Sends only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-15}
if ! command -v wait-for-it >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wait-for-it >/dev/null
fi
cargo build --release -q -p netkit-cli
NETKIT=$PWD/target/release/netkit python3 - "$rounds" <<'PY'
import os, random, socket, statistics, subprocess, sys, time

rounds = int(sys.argv[1])
netkit = os.environ["NETKIT"]
tools = {
    "netkit --interval 50ms": lambda hp: [netkit, "wait", hp, "-q", "--interval", "50ms", "--timeout", "30s"],
    "netkit (default 250ms)": lambda hp: [netkit, "wait", hp, "-q", "--timeout", "30s"],
    "wait-for-it": lambda hp: ["wait-for-it", "-q", "-t", "30", hp],
}

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def one(argv):
    port = free_port()
    proc = subprocess.Popen(argv(f"127.0.0.1:{port}"))
    time.sleep(random.uniform(0.3, 1.3))
    listener = socket.socket(); listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port)); listener.listen(16)
    t0 = time.monotonic()
    proc.wait(timeout=60)
    latency = time.monotonic() - t0
    listener.close()
    assert proc.returncode == 0, (argv, proc.returncode)
    return latency * 1000

results = {name: [] for name in tools}
for _ in range(rounds):
    for name, argv in tools.items():
        results[name].append(one(argv))
base = statistics.median(results["wait-for-it"])
print(f"{'tool':26} {'median ms':>10} {'p90 ms':>8} {'vs wait-for-it':>15}")
for name, xs in results.items():
    xs.sort()
    med = statistics.median(xs); p90 = xs[int(len(xs) * 0.9) - 1]
    print(f"{name:26} {med:10.1f} {p90:8.1f} {med / base:14.2f}x")
PY
