#!/usr/bin/env bash
# What an idle connection costs a TCP forwarder: N connections through `netkit forward` and
# through HAProxy (tcp mode, splice) to a Python echo upstream, left idle (after a bulk
# transfer each way on every one, and without), then the forwarder's resident memory and open
# descriptors per connection; every connection is used once more afterwards and its echo
# checked (sha256). A fresh forwarder for each measurement. Loopback only; run as root (the
# open-files limits are raised to fit).
#
#   bench/forward_idle.sh              # CONNS=5000 BULK=262144 by default
#   CONNS=2000 bench/forward_idle.sh
#   NETKIT=/tmp/netkit-main bench/forward_idle.sh   # another netkit binary than target/release
#   NETKIT_BASE=/tmp/netkit-main bench/forward_idle.sh   # that binary too, as `base`, same run
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CONNS=${CONNS:-5000}
BULK=${BULK:-262144}
IDLE="$ROOT/bench/forward_idle.py"
UPSTREAM=15301 PROXY=16301

wait_listening() {
    local i
    for i in $(seq 100); do
        ss -Htln "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    exit 3
}

haproxy_cfg() {
    cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn $((CONNS + 500))
    nbthread 2
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    option splice-request
    option splice-response
listen idle
    bind 127.0.0.1:$PROXY
    server up 127.0.0.1:$UPSTREAM
CFG
}

# Starts one forwarder on $PROXY; its pid in PROXY_PID.
start_proxy() {
    case $1 in
        netkit) "${NETKIT:-$ROOT/target/release/netkit}" -q forward "$PROXY" "127.0.0.1:$UPSTREAM" \
            </dev/null >/dev/null & ;;
        base) "$NETKIT_BASE" -q forward "$PROXY" "127.0.0.1:$UPSTREAM" </dev/null >/dev/null & ;;
        haproxy) haproxy -q -f "$WORK/haproxy.cfg" </dev/null >/dev/null & ;;
    esac
    PROXY_PID=$!
}

# One measurement: a fresh forwarder, CONNS idle connections (after BULK bytes each way when
# $2 is nonzero); one JSON line.
measure() {
    local pid
    start_proxy "$1"
    pid=$PROXY_PID
    wait_listening $PROXY
    python3 "$IDLE" hold $PROXY "$pid" "$CONNS" --bulk "$2" | sed "s/^{/{\"tool\": \"$1\", /"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    sleep 1
}

report() {
    python3 - "$WORK/results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'tool':8} {'bulk':>8} {'conns':>6} {'B RSS/conn':>11} {'fds/conn':>9} {'intact':>7}")
for r in rows:
    print(f"{r['tool']:8} {r['bulk']:>8} {r['conns']:>6} {r['rss_per_conn_b']:>11}"
          f" {r['fds_per_conn']:>9} {r['intact']:>7}")
for bulk in sorted({r['bulk'] for r in rows}):
    by = {r['tool']: r for r in rows if r['bulk'] == bulk}
    for tool in ('netkit', 'base'):
        if tool in by and 'haproxy' in by and by['haproxy']['rss_per_conn_b'] > 0:
            ratio = by[tool]['rss_per_conn_b'] / by['haproxy']['rss_per_conn_b']
            print(f"bulk {bulk}: {tool} RSS/conn = {ratio:.2f}x HAProxy's")
PY
}

main() {
    command -v haproxy >/dev/null || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
    }
    # A netkit given by NETKIT is measured as it is.
    [ -n "${NETKIT:-}" ] || (cd "$ROOT" && cargo build --release -q -p netkit-cli)
    local need=$((CONNS * 4 + 2000)) hard
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ] || need=$hard
    ulimit -n "$need"
    check_ports_free $UPSTREAM $PROXY
    haproxy_cfg
    python3 "$IDLE" upstream $UPSTREAM >/dev/null &
    PIDS+=($!)
    wait_listening $UPSTREAM
    for bulk in 0 "$BULK"; do
        for tool in netkit ${NETKIT_BASE:+base} haproxy; do
            measure "$tool" "$bulk" | tee -a "$WORK/results" >&2
        done
    done
    report
    echo "$CONNS connections; $(nproc) cores; $(haproxy -v | head -1)"
}

main
