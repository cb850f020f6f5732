#!/usr/bin/env bash
# Benchmark of `netkit forward udp:… udp:…` against direct loopback and socat
# (`UDP-LISTEN:…,fork,reuseaddr UDP:…`): iperf3 -u at full speed (-b 0) with 64 B, 1400 B and
# 8 KiB datagrams (datagrams/s and Mbit/s that reach the server, and the loss), and the
# request/reply round trip of one client (median and 99th percentile), in interleaved rounds;
# prints medians and ratios. Loopback only.
#
#   bench/forward_udp.sh              # ROUNDS=5 SECONDS_PER_RUN=4 by default
#   ROUNDS=7 bench/forward_udp.sh
#
# iperf3 -u needs its TCP control connection on the same port as its datagrams, so each
# forwarder relays both: netkit with two rules (TCP and UDP), socat with two processes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-4}

# Ports: the upstreams (iperf3 server, UDP echo), then one listener per relay.
IPERF=15301 ECHO=15302
declare -A IPERF_PORT=([direct]=$IPERF [netkit]=16101 [socat]=16102)
declare -A ECHO_PORT=([direct]=$ECHO [netkit]=16111 [socat]=16112)
NAMES=(direct netkit socat)
SIZES=(64 1400 8192)

start_upstreams() {
    start iperf3 -s -B 127.0.0.1 -p "$IPERF" >/dev/null
    start python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data, peer)
' "$ECHO"
}

start_relays() {
    local nk="$ROOT/target/release/netkit"
    cat >"$WORK/netkit.toml" <<EOF
[[rule]]
listen = "${IPERF_PORT[netkit]}"
target = "127.0.0.1:$IPERF"
[[rule]]
listen = "udp:${IPERF_PORT[netkit]}"
target = "udp:127.0.0.1:$IPERF"
[[rule]]
listen = "udp:${ECHO_PORT[netkit]}"
target = "udp:127.0.0.1:$ECHO"
EOF
    start "$nk" -q forward --config "$WORK/netkit.toml"
    start socat "TCP-LISTEN:${IPERF_PORT[socat]},bind=127.0.0.1,fork,reuseaddr" "TCP:127.0.0.1:$IPERF"
    start socat "UDP-LISTEN:${IPERF_PORT[socat]},bind=127.0.0.1,fork,reuseaddr" "UDP:127.0.0.1:$IPERF"
    start socat "UDP-LISTEN:${ECHO_PORT[socat]},bind=127.0.0.1,fork,reuseaddr" "UDP:127.0.0.1:$ECHO"
    sleep 1
}

# "datagrams/s Mbit/s loss%" as the iperf3 server received them (-b 0: as fast as the client
# can send; what a relay cannot take is lost).
flood() {
    iperf3 -u -b 0 -l "$2" -c 127.0.0.1 -p "$1" -t "$SECS" -J |
        python3 -c '
import json, sys
run = json.load(sys.stdin)
if "sum" not in run["end"]:
    sys.exit("iperf3 -u -p PORT:LEN " + sys.argv[1] + ": " + run.get("error", "no result"))
end = run["end"]["sum"]
got = end["packets"] - end["lost_packets"]
secs = end["seconds"]
lost = end["lost_percent"]
mbit = end["bits_per_second"] * (1 - lost / 100) / 1e6
print("%.0f %.1f %.2f" % (got / secs, mbit, lost))
' "$1:$2"
}

# "median_us p99_us" of 20000 request/reply exchanges of 64 bytes, one client.
latency() {
    python3 - "$1" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
to = ("127.0.0.1", int(sys.argv[1]))
data = b"x" * 64
times = []
for _ in range(20000):
    start = time.perf_counter_ns()
    s.sendto(data, to)
    s.recvfrom(2048)
    times.append(time.perf_counter_ns() - start)
times.sort()
print(f"{times[len(times) // 2] / 1000:.1f} {times[len(times) * 99 // 100] / 1000:.1f}")
EOF
}

main() {
    need_tools iperf3 socat python3
    (cd "$ROOT" && cargo build --release -q -p netkit-cli)
    check_ports_free "${IPERF_PORT[@]}" "${ECHO_PORT[@]}"
    start_upstreams
    start_relays
    check_alive
    for round in $(seq "$ROUNDS"); do
        for name in "${NAMES[@]}"; do
            for size in "${SIZES[@]}"; do
                read -r pps mbit loss < <(flood "${IPERF_PORT[$name]}" "$size")
                echo "$pps" >>"$WORK/$name.$size.pps"
                echo "$mbit" >>"$WORK/$name.$size.mbit"
                echo "$loss" >>"$WORK/$name.$size.loss"
                # A relay still empties its queue after the client stops; datagrams of this
                # run must not reach the next run's iperf3 socket first (it would connect to
                # the old client and the new one would never hear back).
                sleep 2
            done
            read -r med p99 < <(latency "${ECHO_PORT[$name]}")
            echo "$med" >>"$WORK/$name.rtt"
            echo "$p99" >>"$WORK/$name.p99"
        done
        echo "round $round/$ROUNDS done" >&2
    done
    report
}

report() {
    local size name
    for size in "${SIZES[@]}"; do
        local direct socat
        direct=$(median <"$WORK/direct.$size.pps")
        socat=$(median <"$WORK/socat.$size.pps")
        echo "iperf3 -u -b 0 -l $size"
        printf '  %-8s %12s %10s %8s %9s %9s\n' tool datagrams/s Mbit/s loss% xdirect xsocat
        for name in "${NAMES[@]}"; do
            local pps mbit loss
            pps=$(median <"$WORK/$name.$size.pps")
            mbit=$(median <"$WORK/$name.$size.mbit")
            loss=$(median <"$WORK/$name.$size.loss")
            awk -v n="$name" -v p="$pps" -v m="$mbit" -v l="$loss" -v d="$direct" -v s="$socat" \
                'BEGIN {printf "  %-8s %12.0f %10.1f %8.2f %9.2f %9.2f\n", n, p, m, l, p/d, p/s}'
        done
    done
    echo "request/reply, 64 B, one client (Python), round trip in microseconds"
    printf '  %-8s %10s %10s\n' tool median p99
    for name in "${NAMES[@]}"; do
        printf '  %-8s %10s %10s\n' "$name" "$(median <"$WORK/$name.rtt")" "$(median <"$WORK/$name.p99")"
    done
    echo "medians of $ROUNDS interleaved rounds, ${SECS}s each; $(nproc) cores"
}

main
