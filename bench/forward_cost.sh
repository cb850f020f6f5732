#!/usr/bin/env bash
# What `netkit forward` costs per request and per new connection, against HAProxy (tcp mode,
# the config of bench/forward.sh): the forwarder's CPU time (perf's task-clock), context
# switches and system calls (every one, and the most frequent by name), counted by `perf stat
# -p` over fixed wrk runs, divided by the requests wrk completed (CPU and context switches in
# one run, system calls in another); proc_cpu_us is the same CPU time from /proc/PID/stat
# (user+system ticks), as a cross-check; nginx_cpu_us and wrk_cpu_us are what the upstream's
# worker (/proc ticks) and the client (perf's task-clock) spent per request through it, and
# all_cpu_us the three together: on shared cores the rate follows that sum, not the forwarder's
# share alone (a forwarder that sends fewer segments makes nginx's side cheaper too). Robust on
# a loaded machine:
# it counts work done, not the rate the shared CPUs allowed. It runs in a network namespace of
# its own (as root), so `segments` (TCP segments per request, both legs and both ends: the
# client's, the forwarder's and nginx's, from the namespace's counters) counts the bench's
# traffic alone. Loopback only.
#
#   bench/forward_cost.sh                            # netkit of target/release vs HAProxy
#   NETKIT_BASE=/tmp/netkit-main bench/forward_cost.sh   # and another netkit binary beside it
#   NETKIT_BASE=target/release/netkit BASE_ARGS="--keepalive off" bench/forward_cost.sh
#   ROUNDS=3 SECONDS_PER_RUN=5 bench/forward_cost.sh
#   LOGGED=1 bench/forward_cost.sh   # each logs a line per connection (netkit without -q,
#                                    # HAProxy `option tcplog` to stdout), into files
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
SECS=${SECONDS_PER_RUN:-5}
NGINX=18180
declare -A PORT=([netkit]=17101 [base]=17102 [haproxy]=17103)
declare -A PID=()
NAMES=(netkit haproxy)
[ -n "${NETKIT_BASE:-}" ] && NAMES=(base netkit haproxy)
CALLS=(read write recvfrom sendto epoll_wait epoll_ctl futex accept4 connect socket close
    shutdown setsockopt getsockopt getpeername getsockname splice sched_yield)

start_servers() {
    local quiet=(-q) haproxy_log=""
    if [ -n "${LOGGED:-}" ]; then
        quiet=()
        haproxy_log="
    log stdout format raw local0
    option tcplog"
    fi
    start_nginx "    access_log off;
    server { listen 127.0.0.1:$NGINX; location / { return 200 \"hello from nginx\n\"; } }"
    start "$ROOT/target/release/netkit" "${quiet[@]}" forward "${PORT[netkit]}" "127.0.0.1:$NGINX" \
        2>"$WORK/netkit.log"
    PID[netkit]=$!
    if [ -n "${NETKIT_BASE:-}" ]; then
        local base_args
        read -ra base_args <<<"${BASE_ARGS:-}"
        start "$NETKIT_BASE" "${quiet[@]}" forward "${PORT[base]}" "127.0.0.1:$NGINX" "${base_args[@]}" \
            2>"$WORK/base.log"
        PID[base]=$!
    fi
    start_haproxy_tcp "listen http
    bind 127.0.0.1:${PORT[haproxy]}$haproxy_log
    server up 127.0.0.1:$NGINX" >"$WORK/haproxy.log"
    PID[haproxy]=$!
    sleep 1
}

syscall_events() {
    local list="raw_syscalls:sys_enter" call
    for call in "${CALLS[@]}"; do list+=",syscalls:sys_enter_$call"; done
    echo "$list"
}

# One wrk run against NAME in MODE (`keep` or `close`) while `perf stat -e EVENTS` counts;
# appends "requests ticks=N segments=N nginx_ticks=N wrk_ms=N event=count..." (the
# forwarder's ticks, nginx's worker's, wrk's CPU time) to $WORK/NAME.MODE.KIND.
run_counted() {
    local name=$1 mode=$2 kind=$3 events=$4 out="$WORK/perf.$1.$2.$3" wrk_out before after
    local segs_before segs_after nginx_before nginx_after
    local client=(perf stat -x, -e task-clock -o "$out.wrk")
    segs_before=$(tcp_out_segments)
    nginx_before=$(ticks_of "$NGINX_WORKER")
    before=$(ticks_of "${PID[$name]}")
    perf stat -x, -e "$events" -p "${PID[$name]}" -o "$out" &
    local perf=$!
    sleep 0.2
    if [ "$mode" = keep ]; then
        wrk_out=$("${client[@]}" wrk -t2 -c100 -d"${SECS}s" "http://127.0.0.1:${PORT[$name]}/")
    else
        wrk_out=$("${client[@]}" wrk -t2 -c50 -d"${SECS}s" -H "Connection: close" \
            "http://127.0.0.1:${PORT[$name]}/")
    fi
    kill -INT "$perf"
    wait "$perf" || true
    after=$(ticks_of "${PID[$name]}")
    nginx_after=$(ticks_of "$NGINX_WORKER")
    segs_after=$(tcp_out_segments)
    if grep -q "Socket errors\|Non-2xx" <<<"$wrk_out"; then
        echo "$name $mode: $(grep "Socket errors\|Non-2xx" <<<"$wrk_out")" >&2
    fi
    local requests
    requests=$(awk '/requests in/ {print $1}' <<<"$wrk_out")
    local wrk_ms
    wrk_ms=$(awk -F, '/task-clock/ {print $1}' "$out.wrk")
    awk -F, -v n="$requests" -v ticks=$((after - before)) -v segs=$((segs_after - segs_before)) \
        -v nginx=$((nginx_after - nginx_before)) -v wrk="${wrk_ms:-0}" '
        /^[0-9]/ { sub(/^syscalls:sys_enter_/, "", $3); sub(/^raw_syscalls:sys_enter/, "syscalls", $3)
                   line = line " " $3 "=" $1 }
        END { print n " ticks=" ticks " segments=" segs " nginx_ticks=" nginx " wrk_ms=" wrk line }' \
        "$out" >>"$WORK/$name.$mode.$kind"
}

# The user and system CPU ticks a process has used (/proc/PID/stat).
ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The CPU time is counted in a run of its own: tracing every system call costs CPU too (more
# to the tool that makes more calls).
measure() {
    run_counted "$1" "$2" cpu task-clock,context-switches
    run_counted "$1" "$2" sys "$(syscall_events)"
}

# Medians per request of the rounds of NAME in MODE: "requests cpu_us proc_cpu_us
# nginx_cpu_us wrk_cpu_us all_cpu_us ctxsw segments syscalls call..."
per_request() {
    python3 - "$WORK/$1.$2" "${CALLS[@]}" <<'EOF'
import os, statistics, sys
def load(path):
    rows = []
    for line in open(path):
        n, *pairs = line.split()
        counts = dict(p.split("=") for p in pairs)
        rows.append((int(n), {k: float(v) for k, v in counts.items()}))
    return rows
cpu, sys_rows = load(sys.argv[1] + ".cpu"), load(sys.argv[1] + ".sys")
def med(rows, key, scale=1.0):
    return statistics.median(c.get(key, 0.0) * scale / n for n, c in rows)
hz = float(os.sysconf("SC_CLK_TCK"))
# The forwarder's, nginx's and wrk's CPU together, per request, summed round by round.
every = [(c.get("task-clock", 0.0) * 1000.0 + c.get("nginx_ticks", 0.0) * 1e6 / hz
          + c.get("wrk_ms", 0.0) * 1000.0) / n for n, c in cpu]
out = [str(int(statistics.median(n for n, _ in cpu))), "%.2f" % med(cpu, "task-clock", 1000.0),
       "%.2f" % med(cpu, "ticks", 1e6 / hz), "%.2f" % med(cpu, "nginx_ticks", 1e6 / hz),
       "%.2f" % med(cpu, "wrk_ms", 1000.0), "%.2f" % statistics.median(every),
       "%.3f" % med(cpu, "context-switches"),
       "%.2f" % med(cpu, "segments"), "%.2f" % med(sys_rows, "syscalls")]
out += ["%.3f" % med(sys_rows, call) for call in sys.argv[2:]]
print(" ".join(out))
EOF
}

report() {
    local mode
    for mode in keep close; do
        echo
        [ "$mode" = keep ] && echo "keep-alive (wrk -t2 -c100), per request:"
        [ "$mode" = close ] && echo "Connection: close (wrk -t2 -c50), per request = per connection:"
        {
            echo "tool requests cpu_us proc_cpu_us nginx_cpu_us wrk_cpu_us all_cpu_us ctxsw segments" \
                "syscalls ${CALLS[*]}"
            for name in "${NAMES[@]}"; do echo "$name $(per_request "$name" "$mode")"; done
        } | python3 -c '
import sys
rows = [l.split() for l in sys.stdin]
for col in range(len(rows[0])):
    print("%-12s" % rows[0][col], " ".join("%12s" % r[col] for r in rows[1:]))'
    done
    echo "medians of $ROUNDS interleaved rounds, ${SECS}s each; $(nproc) cores; $(uptime)"
}

main() {
    need_tools wrk nginx:nginx-light haproxy perf:linux-perf
    in_private_netns "$@"
    check_ports_free "$NGINX" "${PORT[@]}"
    start_servers
    check_alive
    NGINX_WORKER=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)
    echo "start: $(uptime)" >&2
    for round in $(seq "$ROUNDS"); do
        for name in "${NAMES[@]}"; do
            measure "$name" keep
            measure "$name" close
        done
        echo "round $round/$ROUNDS done" >&2
    done
    report
}

main
