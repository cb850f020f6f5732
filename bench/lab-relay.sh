#!/usr/bin/env bash
# Capacity and accuracy of the lab's user-space relay (docs/lab.md "Limits").
# 1. Capacity: UDP datagrams (64 bytes) from the scanner to a far host at offered rates of
#    10k-200k packets/s for 3 s each, through the relay (delay 20 ms: ~1000-4000 packets held)
#    at real-time and at normal priority, and through a clean lab (no relay) for comparison;
#    prints delivered packets/s, the relay thread's CPU per packet and its counters.
# 2. Delay accuracy: iputils ping RTT through delay D (each way) minus 2·D, vs a clean lab,
#    at both priorities.
# 3. Idle cost: CPU time the relay thread uses in 5 s without traffic.
# Usage: bench/lab-relay.sh [SECONDS_PER_RATE]   (default 3). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-3}
source bench/lab.sh

# send RATE SECS: paced sender (bursts every millisecond), prints packets sent.
SENDER='
import socket, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
payload, dst = b"x" * 64, ("198.18.1.5", 9000)
start, sent = time.monotonic(), 0
while True:
    now = time.monotonic() - start
    if now >= secs: break
    due = int(rate * now) - sent
    for _ in range(due):
        try: s.sendto(payload, dst); sent += 1
        except BlockingIOError: pass
    if due <= 0: time.sleep(0.0005)
print(sent)
'
# receive SECS: counts datagrams until SECS of silence after the first, prints the count.
RECEIVER='
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE (root)
s.bind(("198.18.1.5", 9000)); s.settimeout(30)
n = 0
try:
    s.recv(2048); n = 1; s.settimeout(1.0)
    while True: s.recv(2048); n += 1
except socket.timeout: pass
print(n)
'

measure() { # measure LABEL RATE: one sender/receiver run in the current lab
  local label=$1 rate=$2 out
  out=$(mktemp)
  ip netns exec "$LAB_FAR" python3 -c "$RECEIVER" >"$out" &
  local rpid=$!
  sleep 0.3
  local sent
  sent=$(ip netns exec "$LAB_SCANNER" python3 -c "$SENDER" "$rate" "$SECS")
  wait "$rpid"
  local got
  got=$(cat "$out")
  LAST_GOT=$got
  rm -f "$out"
  # Where the rest went: the receiver's socket buffer, or the kernel's backlog (softnet).
  local rcvbuf
  rcvbuf=$(ip netns exec "$LAB_FAR" nstat -az UdpRcvbufErrors | awk '/UdpRcvbufErrors/ {print $2}')
  printf '%-22s offered %7d/s  sent %8d  delivered %8d  (%5.1f%%)  %8.0f pkt/s  rcvbuf-drops %s\n' \
    "$label" "$rate" "$sent" "$got" "$(echo "100 * $got / $sent" | bc -l)" \
    "$(echo "$got / $SECS" | bc -l)" "${rcvbuf:-?}"
}

relay_tid() { grep -l '^lab-relay$' /proc/"$LAB_PID"/task/*/comm | head -1 | cut -d/ -f5; }
relay_ticks() { awk '{print $14 + $15}' /proc/"$LAB_PID"/task/"$1"/stat; }
HZ=$(getconf CLK_TCK)
STATS=$(mktemp)

echo "== capacity (64-byte UDP, $SECS s per rate, $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg))"
for rate in 10000 25000 50000 100000 200000; do
  for mode in realtime normal; do
    flags=(--delay 20ms --hosts 198.18.1.0/24 --max-held 65536)
    [[ $mode == normal ]] && flags+=(--no-realtime)
    lab_up relaycap "${flags[@]}"
    tid=$(relay_tid)
    t0=$(relay_ticks "$tid")
    measure "relay $mode, 20ms" "$rate"
    t1=$(relay_ticks "$tid")
    printf '%-22s relay thread CPU %.2f s: %.1f us per delivered packet\n' "" \
      "$(echo "($t1 - $t0) / $HZ" | bc -l)" "$(echo "1000000 * ($t1 - $t0) / $HZ / $LAST_GOT" | bc -l)"
    lab_down 2>"$STATS"
    sed -n 's/.*RelayStats/                       RelayStats/p' "$STATS"
  done
  lab_up cleancap --hosts 198.18.1.0/24
  measure "clean (no relay)" "$rate"
  lab_down
done

echo
echo "== delay accuracy (200 pings, 10 ms apart): RTT minus 2 x delay"
for mode in realtime normal; do
  for delay in 0 1 10 50; do
    flags=(--hosts 198.18.1.0/24)
    ((delay)) && flags+=(--delay "${delay}ms")
    [[ $mode == normal ]] && flags+=(--no-realtime)
    lab_up acc "${flags[@]}"
    rtt=$(lab_exec ping -q -c 200 -i 0.01 198.18.1.5 | awk -F'[=/ ]+' '/^rtt/ {print $6, $7, $8}')
    read -r min avg max <<<"$rtt"
    printf '%-8s delay %2d ms each way (%s): min %+.3f  avg %+.3f  max %+.3f ms\n' "$mode" \
      "$delay" "$LAB_BACKEND" "$(echo "$min - 2 * $delay" | bc -l)" \
      "$(echo "$avg - 2 * $delay" | bc -l)" "$(echo "$max - 2 * $delay" | bc -l)"
    lab_down 2>/dev/null
  done
done

echo
echo "== idle cost of the relay thread (5 s, no traffic)"
lab_up idle --delay 10ms --hosts 198.18.1.0/24
tid=$(relay_tid)
t0=$(relay_ticks "$tid"); sleep 5; t1=$(relay_ticks "$tid")
printf 'relay thread CPU: %.1f%% of one core\n' "$(echo "100 * ($t1 - $t0) / $HZ / 5" | bc -l)"
lab_down 2>/dev/null
