#!/usr/bin/env bash
# Benchmark of `netkit forward` with two targets (--balance round-robin) against HAProxy
# (tcp mode, balance roundrobin, splice) in front of the same two nginx backends: the request
# rate on 100 keep-alive connections, and the new-connection rate (wrk with `Connection:
# close`: every request is a new connection through the balancer, picked by round-robin); the
# share each backend got is counted from nginx's access logs, and one round with a dead third
# target (nothing listening) shows what a failed connect costs each. Interleaved rounds,
# medians and ratios. Loopback only.
#
#   bench/forward_balance.sh          # ROUNDS=5 SECONDS_PER_RUN=5 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-5}

# Two backends, a port nothing listens on, then each balancer: two targets, and three with
# the dead one.
BACK_A=19081 BACK_B=19082 DEAD=19089
declare -A PORT=([netkit]=19101 [haproxy]=19102)
declare -A PORT3=([netkit]=19111 [haproxy]=19112)
NAMES=(netkit haproxy)

start_backends() {
    start_nginx "    log_format port \$server_port;
    server { listen 127.0.0.1:$BACK_A; access_log $WORK/a.log port buffer=64k;
             location / { return 200 \"backend a\n\"; } }
    server { listen 127.0.0.1:$BACK_B; access_log $WORK/b.log port buffer=64k;
             location / { return 200 \"backend b\n\"; } }"
}

start_balancers() {
    local nk="$ROOT/target/release/netkit"
    local two="127.0.0.1:$BACK_A,127.0.0.1:$BACK_B"
    start "$nk" -q forward "${PORT[netkit]}" "$two" --balance round-robin
    start "$nk" -q forward "${PORT3[netkit]}" "$two,127.0.0.1:$DEAD" --balance round-robin
    start_haproxy_tcp "listen two
    bind 127.0.0.1:${PORT[haproxy]}
    balance roundrobin
    server a 127.0.0.1:$BACK_A
    server b 127.0.0.1:$BACK_B
listen three
    bind 127.0.0.1:${PORT3[haproxy]}
    balance roundrobin
    # What HAProxy needs to get past a dead server: a retry on another server (redispatch);
    # without checks it keeps choosing the dead one in its turn.
    retries 1
    option redispatch 1
    server a 127.0.0.1:$BACK_A
    server b 127.0.0.1:$BACK_B
    server dead 127.0.0.1:$DEAD"
    sleep 1
}

# Requests per second: keep-alive (100 connections), or one connection per request.
rps() {
    local extra=()
    [ "$2" = close ] && extra=(-H "Connection: close")
    wrk -t2 -c100 -d"${SECS}s" "${extra[@]}" "http://127.0.0.1:$1/" |
        awk '/Requests\/sec/ {print $2} /Non-2xx|Socket errors/ {print "wrk: " $0 > "/dev/stderr"}'
}

# Requests each backend logged so far (nginx flushes its buffered logs on USR1).
logged() {
    kill -USR1 "$(cat "$WORK/nginx.pid")"
    sleep 0.3
    echo "$(wc -l <"$WORK/a.log") $(wc -l <"$WORK/b.log")"
}

main() {
    need_tools wrk nginx:nginx-light haproxy
    (cd "$ROOT" && cargo build --release -q -p netkit-cli)
    check_ports_free $BACK_A $BACK_B $DEAD "${PORT[@]}" "${PORT3[@]}"
    : >"$WORK/a.log"
    : >"$WORK/b.log"
    start_backends
    start_balancers
    check_alive
    for round in $(seq "$ROUNDS"); do
        for name in "${NAMES[@]}"; do
            rps "${PORT[$name]}" keep >>"$WORK/$name.keep"
            read -r a0 b0 < <(logged)
            rps "${PORT[$name]}" close >>"$WORK/$name.close"
            read -r a1 b1 < <(logged)
            echo "$((a1 - a0)) $((b1 - b0))" >>"$WORK/$name.share"
            rps "${PORT3[$name]}" close >>"$WORK/$name.dead"
        done
        echo "round $round/$ROUNDS done" >&2
    done
    report
}

report() {
    local hk hc hd
    hk=$(median <"$WORK/haproxy.keep")
    hc=$(median <"$WORK/haproxy.close")
    hd=$(median <"$WORK/haproxy.dead")
    printf '%-8s %12s %8s %12s %8s %14s %14s %8s\n' tool keepalive/s xhaproxy newconn/s \
        xhaproxy "a:b (newconn)" "+dead target/s" xhaproxy
    for name in "${NAMES[@]}"; do
        local k c d share
        k=$(median <"$WORK/$name.keep")
        c=$(median <"$WORK/$name.close")
        d=$(median <"$WORK/$name.dead")
        share=$(awk '{a += $1; b += $2} END {printf "%.3f", (b ? a / b : 0)}' "$WORK/$name.share")
        awk -v n="$name" -v k="$k" -v c="$c" -v d="$d" -v s="$share" -v hk="$hk" -v hc="$hc" \
            -v hd="$hd" 'BEGIN {printf "%-8s %12.0f %8.2f %12.0f %8.2f %14s %14.0f %8.2f\n",
                n, k, k/hk, c, c/hc, s, d, d/hd}'
    done
    echo "medians of $ROUNDS interleaved rounds, ${SECS}s each, wrk -t2 -c100; $(nproc) cores"
}

main
