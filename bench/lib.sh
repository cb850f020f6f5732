# Shared by the bench scripts that start servers (`source "$(dirname "$0")/lib.sh"` after
# `set -euo pipefail`): ROOT, a WORK directory removed on exit, servers started with `start`
# and stopped on exit (their forked children first: socat's per-client processes), the
# checks before measuring, installing missing peer tools, and the median of a column.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do pkill -P "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Runs the calling bench again inside a network namespace of its own (its loopback only), so
# that its ports are free whatever else runs on the machine and the kernel's TCP counters
# (/proc/net/snmp) count its own traffic alone: `in_private_netns "$@"` first thing in main.
# Not as root, or with NETKIT_BENCH_NETNS=0, it runs where it is.
in_private_netns() {
    [ -n "${NETKIT_BENCH_NETNS:-}" ] && return 0
    [ "$(id -u)" = 0 ] || return 0
    local ns="nkbench$$" rc=0
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    NETKIT_BENCH_NETNS=$ns ip netns exec "$ns" bash "$0" "$@" || rc=$?
    ip netns del "$ns"
    exit "$rc"
}

# The TCP segments this network namespace has sent (OutSegs of /proc/net/snmp).
tcp_out_segments() {
    awk '/^Tcp:/ { if (!col) { for (i = 1; i <= NF; i++) if ($i == "OutSegs") col = i }
                   else print $col }' /proc/net/snmp
}

# Runs a server in the background; it is stopped on exit.
start() { "$@" & PIDS+=($!); }

# Installs the Debian packages of the tools missing: `need_tools iperf3 nginx:nginx-light`
# (TOOL, or TOOL:PACKAGE when the package is named otherwise).
need_tools() {
    local spec missing=()
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null || missing+=("${spec#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
        "${missing[@]}" >/dev/null
}

# Refuses to run when a port is taken (TCP or UDP): a stale server there would be measured
# instead.
check_ports_free() {
    local port
    for port in "$@"; do
        if ss -Htuln "sport = :$port" | grep -q .; then
            echo "port $port is in use; stop what listens there first" >&2
            exit 3
        fi
    done
}

# Fails when a server started with `start` is no longer running.
check_alive() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "a server failed to start (pid $pid)" >&2; exit 3; }
    done
}

# The median of the numbers on stdin, one per line.
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Starts nginx-light with one worker, keep-alive without a request limit and every file in
# WORK; HTTP_LINES (the servers, log formats, ...) go inside its http block.
start_nginx() {
    cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
    keepalive_requests 10000000;
    client_body_temp_path $WORK;
    proxy_temp_path $WORK;
    fastcgi_temp_path $WORK;
    uwsgi_temp_path $WORK;
    scgi_temp_path $WORK;
$1
}
CONF
    start nginx -e "$WORK/nginx.err" -c "$WORK/nginx.conf"
}

# Starts HAProxy in TCP mode as the forward benches compare it (2 threads, splice both ways);
# LISTENS is its `listen` sections.
start_haproxy_tcp() {
    cat >"$WORK/haproxy.cfg" <<CONF
global
    maxconn 4000
    nbthread ${HAPROXY_THREADS:-2}
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option splice-request
    option splice-response
$1
CONF
    start haproxy -q -f "$WORK/haproxy.cfg"
}
