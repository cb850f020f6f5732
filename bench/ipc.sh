#!/usr/bin/env bash
# Bulk throughput of netkit's IPC paths against socat, in one run with interleaved rounds:
#  - exec: `netkit send exec:cat` vs `socat - EXEC:cat` (a child on a socketpair, data in and
#    back out through it),
#    (socat -b 262144, netkit's buffer size, deadlocks here: it blocks writing to cat while cat
#    blocks writing back to it, so only socat's default is measured),
#  - echo: a Unix-socket echo server, `netkit echo` vs `socat UNIX-LISTEN:...,fork EXEC:cat`,
#    both driven by the same client (`netkit send`, the faster of the two clients). (socat's
#    `PIPE` echo deadlocks under a full-duplex client: it blocks writing 8 KiB into its own pipe
#    when select said only 4 KiB were free.)
# Every reply is checked against the data's SHA-256.
# Usage: bench/ipc.sh [ROUNDS] [MIB]   (default 9 rounds of 64 MiB). Local sockets only.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-9}
mib=${2:-64}
if ! command -v socat >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat >/dev/null
fi
cargo build --release -q -p netkit-cli
NETKIT=$PWD/target/release/netkit python3 - "$rounds" "$mib" <<'PY'
import hashlib, os, statistics, subprocess, sys, tempfile, time

rounds, mib = int(sys.argv[1]), int(sys.argv[2])
netkit = os.environ["NETKIT"]
work = tempfile.mkdtemp(prefix="netkit-bench-")
data = os.path.join(work, "data")
with open(data, "wb") as f:
    f.write(os.urandom(mib << 20))
digest = hashlib.sha256(open(data, "rb").read()).hexdigest()

def start(argv, path):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        if os.path.exists(path):
            return proc
        time.sleep(0.01)
    raise SystemExit(f"{argv} did not start")

servers = {
    "netkit echo": (lambda p: [netkit, "echo", f"unix:{p}"]),
    "socat EXEC:cat (fork)": (lambda p: ["socat", f"UNIX-LISTEN:{p},fork", "EXEC:cat"]),
}
running = {}
for name, argv in servers.items():
    path = os.path.join(work, name.split()[0] + ".sock")
    running[name] = (start(argv(path), path), path)

cases = {
    "exec: netkit send exec:cat": [netkit, "send", "exec:cat", "--timeout", "600s"],
    "exec: socat - EXEC:cat": ["socat", "-", "EXEC:cat"],
}
for name, (_, path) in running.items():
    cases[f"echo: {name}"] = [netkit, "send", f"unix:{path}", "--timeout", "600s"]

def one(argv):
    with open(data, "rb") as src:
        t0 = time.monotonic()
        out = subprocess.run(argv, stdin=src, capture_output=True, check=True, timeout=300).stdout
        elapsed = time.monotonic() - t0
    assert hashlib.sha256(out).hexdigest() == digest, argv
    return mib / elapsed

results = {name: [] for name in cases}
try:
    for _ in range(rounds):
        for name, argv in cases.items():
            results[name].append(one(argv))
finally:
    for proc, _ in running.values():
        proc.terminate(); proc.wait()
print(f"{'case':34} {'median MiB/s':>13} {'ratio':>7}")
groups = [("exec: socat - EXEC:cat", ["exec: netkit send exec:cat", "exec: socat - EXEC:cat"]),
          ("echo: socat EXEC:cat (fork)", ["echo: netkit echo", "echo: socat EXEC:cat (fork)"])]
for base_name, names in groups:
    base = statistics.median(results[base_name])
    for name in names:
        med = statistics.median(results[name])
        print(f"{name:34} {med:13.0f} {med / base:6.2f}x")
PY
