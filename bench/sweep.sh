#!/usr/bin/env bash
# Host discovery: netkit sweep vs fping (and nmap -sn where it really sends), interleaved
# rounds, medians and ratios; then a sweep of 2^20 addresses with its time and peak RSS.
#
#   1. 198.18.0.0/24 on a veth link, 10 hosts alive (the sweeper and 9 in a second namespace),
#      246 silent (nothing answers their ARP). fping with its defaults (-r 3) and with -r 1
#      (netkit's default retries), nmap -sn -n --send-ip -PE (ICMP echo only, no ARP ping),
#      netkit sweep with its defaults (timeout 1s, retries 1, 10000 probes/s).
#   2. 4094 loopback addresses (127.0.0.1-127.0.15.254, what fping -g 127.0.0.0/20 sweeps)
#      inside a namespace with lo up: fping -i 1 vs netkit sweep. nmap is left out: it marks
#      127.x up as "localhost-response" without sending anything.
#   3. 127.0.0.0/12 (1048576 addresses, all answer inside the namespace): netkit sweep
#      --rate RATE_1M under /usr/bin/time -v; every address must be reported alive.
#
# Every run is checked: each tool must find the expected number of live hosts.
# Sends only inside the namespaces it creates (removed on exit). Needs root.
#
#   bench/sweep.sh [ROUNDS] [RATE_1M]        defaults: 5 rounds, 100000 probes/s for 2^20
set -euo pipefail

ROUNDS=${1:-5}
RATE_1M=${2:-100000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETKIT="$ROOT/target/release/netkit"
TAG="nkb$$"
A="$TAG-a" B="$TAG-b" L="$TAG-l"
OUT=$(mktemp -d)

if ! command -v fping >/dev/null || ! command -v nmap >/dev/null || ! [ -x /usr/bin/time ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fping nmap time >/dev/null
fi
(cd "$ROOT" && cargo build --release -q -p netkit-cli)

cleanup() {
    for ns in "$A" "$B" "$L"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$OUT"
}
trap cleanup EXIT

# $A: the sweeper, 198.18.0.1/24 on nk0; $B: 9 live hosts on the far end of the veth pair.
# $L: only lo, up: every 127.x address answers.
lab() {
    for ns in "$A" "$B" "$L"; do ip netns add "$ns"; done
    ip -n "$A" link add nk0 type veth peer name nk1
    ip -n "$A" link set nk1 netns "$B"
    ip -n "$A" addr add 198.18.0.1/24 dev nk0
    ip -n "$A" link set nk0 up
    ip -n "$A" link set lo up
    ip -n "$B" addr add 198.18.0.200/24 dev nk1
    for host in 10 20 30 40 50 60 70 80; do
        ip -n "$B" addr add "198.18.0.$host/24" dev nk1
    done
    ip -n "$B" link set nk1 up
    ip -n "$L" link set lo up
}

# run NAME NS EXPECTED CMD...: times CMD in NS (live-host lines on stdout), checks the count,
# appends the seconds to $OUT/NAME.
run() {
    local name=$1 ns=$2 expected=$3
    shift 3
    ip -n "$ns" neigh flush all 2>/dev/null || true
    local start end found
    start=$(date +%s.%N)
    found=$(ip netns exec "$ns" "$@" 2>/dev/null | wc -l || true)
    end=$(date +%s.%N)
    if [ "$found" -ne "$expected" ]; then
        echo "$name: found $found live hosts, expected $expected" >&2
        exit 1
    fi
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }' >>"$OUT/$name"
}

nmap_up() { nmap -sn -n --send-ip -PE -oG - "$@" | grep -c 'Status: Up' || true; }
export -f nmap_up

median() { sort -g "$OUT/$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

row() { # row LABEL NAME REFERENCE_NAME
    local m r
    m=$(median "$2")
    r=$(median "$3")
    awk -v l="$1" -v m="$m" -v r="$r" 'BEGIN { printf "  %-34s %8.3f s %8.2fx\n", l, m, m / r }'
}

lab
printf '%s; %s; %s\n' "$("$NETKIT" --version)" "$(fping -v 2>&1 | head -1)" "$(nmap --version | head -1)"
printf '%d interleaved rounds; medians; ratio = tool / fping default\n\n' "$ROUNDS"

for _ in $(seq "$ROUNDS"); do
    run fping24 "$A" 10 fping -a -q -g 198.18.0.0/24
    run fping24r1 "$A" 10 fping -a -q -r 1 -g 198.18.0.0/24
    run netkit24 "$A" 10 "$NETKIT" sweep --alive 198.18.0.0/24
    run nmap24 "$A" 1 bash -c 'nmap_up 198.18.0.0/24 | grep -x 10'
    run fping20 "$L" 4094 fping -a -q -i 1 -g 127.0.0.0/20
    run netkit20 "$L" 4094 "$NETKIT" sweep --alive 127.0.0.1-127.0.15.254
done

echo "198.18.0.0/24 on a veth link, 10 alive, 246 silent"
row "fping -g (defaults: -r 3)" fping24 fping24
row "fping -r 1 -g" fping24r1 fping24
row "nmap -sn --send-ip -PE" nmap24 fping24
row "netkit sweep (defaults)" netkit24 fping24
echo "127.0.0.1-127.0.15.254 (4094 loopback addresses, all alive)"
row "fping -i 1 -g 127.0.0.0/20" fping20 fping20
row "netkit sweep (defaults)" netkit20 fping20

echo "127.0.0.0/12 (1048576 loopback addresses, all alive), netkit sweep --rate $RATE_1M"
ip netns exec "$L" /usr/bin/time -v -o "$OUT/time1m" \
    "$NETKIT" --json sweep 127.0.0.0/12 --dead --rate "$RATE_1M" >"$OUT/out1m" || true
summary=$(tail -1 "$OUT/out1m")
alive=$(sed -n 's/.*"alive":\([0-9]*\).*/\1/p' <<<"$summary")
awk -F': ' '/Elapsed \(wall clock\)/ { printf "  wall clock %s", $2 } /Maximum resident/ { printf ", peak RSS %.1f MiB", $2 / 1024 }' "$OUT/time1m"
printf ', %s of 1048576 alive (%s)\n' "$alive" "$([ "$alive" = 1048576 ] && echo 'none missed' || echo MISSED)"
