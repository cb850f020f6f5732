#!/usr/bin/env bash
# Benchmark of `netkit forward --http-host` (requests rewritten, responses followed) against
# HAProxy in HTTP mode (`http-request set-header Host`) and against netkit without the
# rewrite: wrk request rate (100 keep-alive connections, 17-byte bodies) and the download
# rate of one 256 MiB response (curl), to nginx-light, in interleaved rounds; prints medians
# and ratios. Loopback only.
#
#   bench/forward_http.sh              # ROUNDS=5 SECONDS_PER_RUN=4 by default
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_PER_RUN:-4}

NGINX=18180
declare -A PORT=([netkit-http]=17101 [haproxy-http]=17102 [netkit-plain]=17103)
NAMES=(netkit-http haproxy-http netkit-plain)

start_servers() {
    truncate -s 256M "$WORK/big"
    start_nginx "    access_log off;
    sendfile on;
    server {
        listen 127.0.0.1:$NGINX;
        location / { return 200 \"hello from nginx\n\"; }
        location = /big { alias $WORK/big; }
    }"
    local nk="$ROOT/target/release/netkit"
    start "$nk" -q forward "${PORT[netkit-http]}" "127.0.0.1:$NGINX" --http-host bench.test
    start "$nk" -q forward "${PORT[netkit-plain]}" "127.0.0.1:$NGINX"
    cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 4000
    nbthread 2
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen http
    bind 127.0.0.1:${PORT[haproxy-http]}
    http-request set-header Host bench.test
    server up 127.0.0.1:$NGINX
EOF
    start haproxy -q -f "$WORK/haproxy.cfg"
    sleep 1
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "a server failed to start" >&2; exit 3; }
    done
}

rps() {
    wrk -t2 -c100 -d"${SECS}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'
}

# MiB/s of one 256 MiB download.
download() {
    curl -s -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$1/big" |
        awk '{print $1 / 1048576}'
}

report() {
    local hr hd
    hr=$(median <"$WORK/haproxy-http.rps")
    hd=$(median <"$WORK/haproxy-http.mib")
    printf '%-13s %10s %9s %10s %9s\n' tool req/s xhaproxy MiB/s xhaproxy
    for name in "${NAMES[@]}"; do
        local r d
        r=$(median <"$WORK/$name.rps")
        d=$(median <"$WORK/$name.mib")
        awk -v n="$name" -v r="$r" -v d="$d" -v hr="$hr" -v hd="$hd" \
            'BEGIN {printf "%-13s %10.0f %9.2f %10.0f %9.2f\n", n, r, r/hr, d, d/hd}'
    done
    echo "medians of $ROUNDS interleaved rounds, ${SECS}s each; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
}

main() {
    (cd "$ROOT" && cargo build --release -q -p netkit-cli)
    check_ports_free "$NGINX" "${PORT[@]}"
    start_servers
    for round in $(seq "$ROUNDS"); do
        for name in "${NAMES[@]}"; do
            rps "${PORT[$name]}" >>"$WORK/$name.rps"
            download "${PORT[$name]}" >>"$WORK/$name.mib"
        done
        echo "round $round/$ROUNDS done" >&2
    done
    report
}

main
