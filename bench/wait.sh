#!/usr/bin/env bash
# Detection latency of `netkit wait` against the peers, from the moment a service becomes ready
# to the moment the waiter exits. Each round starts the waiter, makes the service ready after a
# random 0.3-1.3 s, and measures; tools are interleaved round by round. Scenarios:
#   tcp       a listener appears on a reserved port (bound first, listen() at t0)
#             peers: wait-for-it (1 s polling), wait-on tcp: (npm, 250 ms)
#   http      an HTTP server starts listening on a reserved port at t0
#   http-503  an HTTP server answers 503 until t0, then 200 (the app is up but not ready)
#             peers: wait-on http-get: (250 ms), a curl -f loop with sleep 0.25, and
#             curl --retry-connrefused (1 s retry delay) for the http scenario
# Medians, p90 and ratios to the first peer of each scenario. wait4x and dockerize are Go
# binaries that no package registry reachable here ships, so they are not in the race.
# Usage: bench/wait.sh [ROUNDS]   (default 10). Sends only to 127.0.0.1.
# NETKIT_BEFORE=/path/to/older/netkit adds that binary to the tcp scenario.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
if ! command -v wait-for-it >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wait-for-it >/dev/null
fi
command -v wait-on >/dev/null || npm install -g --silent wait-on@9 >/dev/null
cargo build --release -q -p netkit-cli
NETKIT=$PWD/target/release/netkit python3 - "$rounds" <<'PY'
import os, random, socket, statistics, subprocess, sys, threading, time

rounds = int(sys.argv[1])
netkit = os.environ["NETKIT"]
before = os.environ.get("NETKIT_BEFORE")

def nk(*extra):
    return lambda target: [netkit, "wait", target, "-q", "--timeout", "30s", *extra]

curl_loop = "until curl -sf -o /dev/null --max-time 5 \"$0\"; do sleep 0.25; done"
scenarios = {
    "tcp": {
        "wait-for-it (1 s)": lambda hp: ["wait-for-it", "-q", "-t", "30", hp],
        "wait-on tcp: (250 ms)": lambda hp: ["wait-on", "-t", "30000", f"tcp:{hp}"],
        "netkit --interval 50ms": nk("--interval", "50ms"),
        "netkit (default 250ms)": nk(),
        **({"netkit before": lambda hp: [before, "wait", hp, "-q", "--timeout", "30s"]} if before else {}),
    },
    "http": {
        "wait-on http-get: (250 ms)": lambda hp: ["wait-on", "-t", "30000", f"http-get://{hp}/"],
        "curl -f loop, sleep 0.25": lambda hp: ["sh", "-c", curl_loop, f"http://{hp}/"],
        "curl --retry-connrefused": lambda hp: ["curl", "-sf", "-o", "/dev/null", "--retry", "60",
                                                "--retry-connrefused", "--retry-delay", "1", f"http://{hp}/"],
        "netkit --interval 50ms": lambda hp: nk("--interval", "50ms")(f"http://{hp}/"),
        "netkit (default 250ms)": lambda hp: nk()(f"http://{hp}/"),
    },
    "http-503": {
        "wait-on http-get: (250 ms)": lambda hp: ["wait-on", "-t", "30000", f"http-get://{hp}/"],
        "curl -f loop, sleep 0.25": lambda hp: ["sh", "-c", curl_loop, f"http://{hp}/"],
        "netkit --interval 50ms": lambda hp: nk("--interval", "50ms")(f"http://{hp}/"),
        "netkit (default 250ms)": lambda hp: nk()(f"http://{hp}/"),
    },
}

class Service:
    """A loopback port reserved at once (bound, not listening); `ready()` makes it ready."""
    def __init__(self, kind):
        self.kind, self.ok, self.stop = kind, kind != "http-503", False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.hp = "127.0.0.1:%d" % self.sock.getsockname()[1]
        if kind == "http-503":
            self.listen()

    def listen(self):
        self.sock.listen(128)
        if self.kind != "tcp":
            threading.Thread(target=self.serve, daemon=True).start()

    def ready(self):
        if self.kind == "http-503":
            self.ok = True
        else:
            self.listen()

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn):
        conn.settimeout(5)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            status = b"200 OK" if self.ok else b"503 Service Unavailable"
            conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop = True
        self.sock.close()

def one(kind, argv):
    service = Service(kind)
    proc = subprocess.Popen(argv(service.hp), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(random.uniform(0.3, 1.3))
    t0 = time.monotonic()
    service.ready()
    proc.wait(timeout=60)
    latency = time.monotonic() - t0
    service.close()
    assert proc.returncode == 0, (argv(service.hp), proc.returncode)
    return latency * 1000

for kind, tools in scenarios.items():
    results = {name: [] for name in tools}
    for _ in range(rounds):
        for name, argv in tools.items():
            results[name].append(one(kind, argv))
    base_name = next(iter(tools))
    base = statistics.median(results[base_name])
    print(f"\n== {kind}")
    print(f"{'tool':28} {'median ms':>10} {'p90 ms':>8} {'vs first':>9}")
    for name, xs in results.items():
        xs.sort()
        med = statistics.median(xs); p90 = xs[max(0, int(len(xs) * 0.9) - 1)]
        print(f"{name:28} {med:10.1f} {p90:8.1f} {med / base:8.2f}x")
PY
