#!/usr/bin/env bash
# Where `netkit forward` and HAProxy (tcp mode, bench/forward.sh's config) spend their time
# per new connection: `perf record -g` of each over a `wrk -H "Connection: close"` run, then
# the self time by shared object and by symbol (user space and kernel), and `strace -f -c` of
# each over a shorter run: the system calls per connection. In a network namespace of its
# own (as root); loopback only.
#
#   bench/forward_profile.sh                      # netkit of target/release vs HAProxy
#   NETKIT=target/profiling/netkit bench/forward_profile.sh   # with netkit's symbols
#                                 # (`cargo build --profile profiling`; release is stripped)
#   NETKIT=/tmp/other/netkit SECONDS_PER_RUN=5 TOP=40 bench/forward_profile.sh
#   OUT=/tmp/prof bench/forward_profile.sh        # keep perf.data and the reports there
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECS=${SECONDS_PER_RUN:-4}
TOP=${TOP:-30}
NETKIT=${NETKIT:-$ROOT/target/release/netkit}
NGINX=18180
declare -A PORT=([netkit]=17101 [haproxy]=17103)
declare -A PID=()

profile() {
    local name=$1 out=$2 requests
    perf record -q -g -o "$out/$name.data" -p "${PID[$name]}" 2>/dev/null &
    local perf=$!
    sleep 0.3
    requests=$(wrk -t2 -c50 -d"${SECS}s" -H "Connection: close" "http://127.0.0.1:${PORT[$name]}/" |
        awk '/requests in/ {print $1}')
    kill -INT "$perf"
    wait "$perf" || true
    echo "== $name: $requests connections in ${SECS}s under perf record"
    { perf report -q -i "$out/$name.data" --no-children --sort dso -g none 2>/dev/null |
        grep -v '^$' | head -8; } || true
    { perf report -q -i "$out/$name.data" --no-children --sort dso,sym -g none 2>/dev/null |
        grep -v '^$' | head -"$TOP"; } || true
}

count_calls() {
    local name=$1 out=$2 requests
    strace -f -c -o "$out/$name.strace" -p "${PID[$name]}" 2>/dev/null &
    local tracer=$!
    sleep 0.5
    requests=$(wrk -t2 -c20 -d2s -H "Connection: close" "http://127.0.0.1:${PORT[$name]}/" |
        awk '/requests in/ {print $1}')
    kill -INT "$tracer"
    wait "$tracer" || true
    echo "== $name: system calls per connection under strace ($requests connections)"
    { awk -v n="$requests" '$1 ~ /^[0-9.]+$/ && NF >= 5 { calls = $4; name = $NF
        printf "%-16s %8.3f\n", name, calls / n }' "$out/$name.strace" | sort -k2 -gr |
        head -25; } || true
}

main() {
    need_tools wrk nginx:nginx-light haproxy perf:linux-perf strace
    in_private_netns "$@"
    local out=${OUT:-$WORK}
    mkdir -p "$out"
    check_ports_free "$NGINX" "${PORT[@]}"
    start_nginx "    access_log off;
    server { listen 127.0.0.1:$NGINX; location / { return 200 \"hello from nginx\n\"; } }"
    start "$NETKIT" -q forward "${PORT[netkit]}" "127.0.0.1:$NGINX"
    PID[netkit]=$!
    start_haproxy_tcp "listen http
    bind 127.0.0.1:${PORT[haproxy]}
    server up 127.0.0.1:$NGINX" >/dev/null
    PID[haproxy]=$!
    sleep 1
    check_alive
    for name in netkit haproxy; do profile "$name" "$out"; done
    for name in netkit haproxy; do count_calls "$name" "$out"; done
    echo "$(nproc) cores; $(uptime)"
}

main
