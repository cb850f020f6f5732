#!/usr/bin/env bash
# Round-trip time on loopback (IPv4 and IPv6): netkit ping vs iputils ping vs fping, same count
# and interval, interleaved rounds. Prints the median of each tool's per-round average RTT, the
# ratio to iputils, and whether netkit meets the goal (avg <= 1.5 x iputils + 0.02 ms).
# Sends only to 127.0.0.1 and ::1. Needs root (raw sockets, apt-get).
#
#   bench/ping.sh [ROUNDS] [COUNT] [INTERVAL_MS]     defaults: 7 rounds of 200 probes, 10 ms apart
set -euo pipefail

ROUNDS=${1:-7}
COUNT=${2:-200}
INTERVAL_MS=${3:-10}
INTERVAL_S=$(awk -v ms="$INTERVAL_MS" 'BEGIN { printf "%.3f", ms / 1000 }')
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETKIT="$ROOT/target/release/netkit"

if ! command -v ping >/dev/null || ! command -v fping >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iputils-ping fping >/dev/null
fi
(cd "$ROOT" && cargo build --release -q -p netkit-cli)

# Average RTT (ms) of one run, from each tool's own summary.
avg_netkit() { "$NETKIT" -q ping -c "$COUNT" -i "$INTERVAL_S" "$1" | awk -F'[/ ]' '/^rtt/ { print $8 }'; }
avg_iputils() { ping -q -c "$COUNT" -i "$INTERVAL_S" "$1" | awk -F'[/ ]' '/^rtt/ { print $8 }'; }
avg_fping() { fping -q -c "$COUNT" -p "$INTERVAL_MS" "$1" 2>&1 | awk -F'/' '/min\/avg\/max/ { print $(NF-1) }'; }

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf 'netkit %s; %s; %s\n' "$("$NETKIT" --version)" "$(ping -V | head -1)" "$(fping -v 2>&1 | head -1)"
printf '%d rounds x %d probes, %d ms apart\n\n' "$ROUNDS" "$COUNT" "$INTERVAL_MS"
printf '%-10s %12s %12s %12s %10s %10s %6s\n' host netkit_ms iputils_ms fping_ms vs_iputils vs_fping goal
for host in 127.0.0.1 ::1; do
    : >/tmp/bench-ping-netkit; : >/tmp/bench-ping-iputils; : >/tmp/bench-ping-fping
    for _ in $(seq "$ROUNDS"); do
        avg_netkit "$host" >>/tmp/bench-ping-netkit
        avg_iputils "$host" >>/tmp/bench-ping-iputils
        avg_fping "$host" >>/tmp/bench-ping-fping
    done
    n=$(median </tmp/bench-ping-netkit)
    i=$(median </tmp/bench-ping-iputils)
    f=$(median </tmp/bench-ping-fping)
    awk -v h="$host" -v n="$n" -v i="$i" -v f="$f" 'BEGIN {
        goal = (n <= 1.5 * i + 0.02) ? "met" : "MISSED"
        printf "%-10s %12.3f %12.3f %12.3f %9.2fx %9.2fx %6s\n", h, n, i, f, n / i, n / f, goal
    }'
done
rm -f /tmp/bench-ping-netkit /tmp/bench-ping-iputils /tmp/bench-ping-fping
