#!/usr/bin/env bash
# Benchmark of `netkit forward` against direct loopback, HAProxy (tcp mode, splice), socat and
# rinetd:
# iperf3 throughput, wrk request rate (100 keep-alive connections to nginx) and new-connection
# rate (wrk with `Connection: close`: one connection per request), in interleaved rounds;
# prints medians and ratios. Each round runs the tools in an order rotated by one from the
# round before (no tool always follows the same neighbour or runs first), and the rates each
# round measured of a tool are also set beside HAProxy's of that round: the median of those
# paired ratios and their range, which a load drifting between rounds moves less than the
# ratio of two medians. Loopback only (as root: in a network namespace of its own, so its
# ports are free whatever else runs).
#
#   bench/forward.sh              # ROUNDS=5 SECONDS_PER_RUN=5 by default
#   ROUNDS=9 bench/forward.sh
#   NETKIT_BASE=/tmp/netkit-main bench/forward.sh   # also another netkit binary, row "base" (A/B)
#   MEASURES=cps bench/forward.sh # only some of the measures (gbits, rps, cps)
#   PIN=1 bench/forward.sh        # the proxies alone on the last CPU (one thread each: netkit's
#                                 # workers follow the CPUs it may use, HAProxy nbthread 1),
#                                 # clients and upstreams on the others: what one core of
#                                 # forwarder sustains, not what the shared CPUs allowed
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-5}
MEASURES=${MEASURES:-gbits rps cps}

# Ports: upstreams, then one listener per proxy for iperf3 (16xxx) and for HTTP (17xxx).
IPERF=15201 NGINX=18080
declare -A TCP_PORT=([direct]=$IPERF [netkit]=16001 [haproxy]=16002 [socat]=16003 [base]=16004
    [rinetd]=16005)
declare -A HTTP_PORT=([direct]=$NGINX [netkit]=17001 [haproxy]=17002 [socat]=17003 [base]=17004
    [rinetd]=17005)
NAMES=(direct netkit haproxy socat rinetd)
BASE=${NETKIT_BASE:-}
[ -n "$BASE" ] && NAMES=(direct base netkit haproxy socat rinetd)
# CPU sets: PROXY_CPUS runs the proxies, LOAD_CPUS the clients and upstreams.
PROXY_CPUS="0-$(($(nproc) - 1))" LOAD_CPUS="0-$(($(nproc) - 1))"
if [ -n "${PIN:-}" ]; then
    PROXY_CPUS=$(($(nproc) - 1)) LOAD_CPUS="0-$(($(nproc) - 2))"
    export HAPROXY_THREADS=1
fi

# Runs `$@` (a function that starts servers, or a client) with this shell on CPUS, which what
# it starts inherits; then the shell's own set is restored.
on_cpus() {
    local cpus=$1 own
    shift
    own=$(taskset -p -c $$ | awk '{print $NF}')
    taskset -p -c "$cpus" $$ >/dev/null
    "$@"
    taskset -p -c "$own" $$ >/dev/null
}

start_upstreams() {
    start iperf3 -s -B 127.0.0.1 -p "$IPERF" >/dev/null
    start_nginx "    access_log off;
    server { listen 127.0.0.1:$NGINX; location / { return 200 \"hello from nginx\n\"; } }"
}

start_proxies() {
    local nk="$ROOT/target/release/netkit"
    start "$nk" -q forward "${TCP_PORT[netkit]}" "127.0.0.1:$IPERF"
    start "$nk" -q forward "${HTTP_PORT[netkit]}" "127.0.0.1:$NGINX"
    if [ -n "$BASE" ]; then
        start "$BASE" -q forward "${TCP_PORT[base]}" "127.0.0.1:$IPERF"
        start "$BASE" -q forward "${HTTP_PORT[base]}" "127.0.0.1:$NGINX"
    fi
    start_haproxy_tcp "listen iperf
    bind 127.0.0.1:${TCP_PORT[haproxy]}
    server up 127.0.0.1:$IPERF
listen http
    bind 127.0.0.1:${HTTP_PORT[haproxy]}
    server up 127.0.0.1:$NGINX"
    for kind in TCP HTTP; do
        local -n ports="${kind}_PORT"
        local up=$IPERF
        [ "$kind" = HTTP ] && up=$NGINX
        start socat "TCP-LISTEN:${ports[socat]},bind=127.0.0.1,fork,reuseaddr" "TCP:127.0.0.1:$up"
        echo "127.0.0.1 ${ports[rinetd]} 127.0.0.1 $up" >>"$WORK/rinetd.conf"
    done
    start rinetd -f -c "$WORK/rinetd.conf"
    sleep 1
}

gbits() {
    taskset -c "$LOAD_CPUS" iperf3 -c 127.0.0.1 -p "$1" -t "$SECS" -J |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)'
}

rps() {
    taskset -c "$LOAD_CPUS" wrk -t2 -c100 -d"${SECS}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'
}

# New connections per second: every request on a connection of its own.
cps() {
    taskset -c "$LOAD_CPUS" wrk -t2 -c50 -d"${SECS}s" -H "Connection: close" "http://127.0.0.1:$1/" |
        awk '/Requests\/sec/ {print $2}'
}

main() {
    need_tools iperf3 wrk nginx:nginx-light haproxy socat rinetd
    (cd "$ROOT" && cargo build --release -q -p netkit-cli)
    in_private_netns "$@"
    check_ports_free "${TCP_PORT[@]}" "${HTTP_PORT[@]}"
    on_cpus "$LOAD_CPUS" start_upstreams
    on_cpus "$PROXY_CPUS" start_proxies
    check_alive
    local count=${#NAMES[@]}
    for round in $(seq "$ROUNDS"); do
        local order=("${NAMES[@]:$(((round - 1) % count))}" "${NAMES[@]:0:$(((round - 1) % count))}")
        for name in "${order[@]}"; do
            for measure in $MEASURES; do
                local port=${HTTP_PORT[$name]}
                [ "$measure" = gbits ] && port=${TCP_PORT[$name]}
                echo "$("$measure" "$port")" >>"$WORK/$name.$measure"
            done
        done
        echo "round $round/$ROUNDS done" >&2
    done
    report
}

# The median of a tool's measure, 0 when it was not measured (MEASURES).
measured() {
    if [ -s "$WORK/$1.$2" ]; then median <"$WORK/$1.$2"; else echo 0; fi
}

report() {
    local direct_g haproxy_g haproxy_r haproxy_c
    direct_g=$(measured direct gbits)
    haproxy_g=$(measured haproxy gbits)
    haproxy_r=$(measured haproxy rps)
    haproxy_c=$(measured haproxy cps)
    printf '%-8s %10s %9s %10s %12s %10s %10s %10s\n' \
        tool Gbit/s xdirect xhaproxy req/s xhaproxy conn/s xhaproxy
    for name in "${NAMES[@]}"; do
        local g r c
        g=$(measured "$name" gbits)
        r=$(measured "$name" rps)
        c=$(measured "$name" cps)
        awk -v n="$name" -v g="$g" -v r="$r" -v c="$c" -v d="$direct_g" -v hg="$haproxy_g" \
            -v hr="$haproxy_r" -v hc="$haproxy_c" '
            function ratio(a, b) { return b > 0 ? a / b : 0 }
            BEGIN {printf "%-8s %10.2f %9.2f %10.2f %12.0f %10.2f %10.0f %10.2f\n",
                n, g, ratio(g, d), ratio(g, hg), r, ratio(r, hr), c, ratio(c, hc)}'
    done
    echo "medians of $ROUNDS interleaved rounds, ${SECS}s each; $(nproc) cores${PIN:+, the proxies alone on CPU $PROXY_CPUS}; $(uptime)"
    for measure in $MEASURES; do paired "$measure"; done
}

# Per measure: each tool's range over the rounds, and its rate of each round divided by
# HAProxy's of the same round: the median of those ratios, and their range.
paired() {
    local measure=$1 name
    [ -s "$WORK/haproxy.$measure" ] || return 0
    echo "$measure per round: tool min max, then xhaproxy paired by round: median min max"
    for name in "${NAMES[@]}"; do
        paste "$WORK/$name.$measure" "$WORK/haproxy.$measure" | python3 -c '
import statistics, sys
rows = [[float(x) for x in line.split()] for line in sys.stdin if line.strip()]
own = [r[0] for r in rows]
ratios = [r[0] / r[1] for r in rows if r[1] > 0]
print("%-8s %10.2f %10.2f   %6.2f %6.2f %6.2f" % (sys.argv[1], min(own), max(own),
      statistics.median(ratios), min(ratios), max(ratios)))' "$name"
    done
}

main
