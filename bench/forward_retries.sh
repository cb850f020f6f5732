#!/usr/bin/env bash
# `netkit forward --retries` beside HAProxy (`retries 3`, `option redispatch`) on the audit's
# impaired link (the lab, run as root): 10 ms, 25 % loss each way; two targets, the first drops
# SYNs, the second echoes; connect timeout 2 s; 15 concurrent clients each send a line and
# read it back. Forwarders and clients in the scanner namespace, targets in the far one.
# Rounds interleave HAProxy, netkit (default --retries 3) and netkit --retries 0.
#
#   bench/forward_retries.sh          # ROUNDS=3 SEED=1 by default
set -uo pipefail
cd "$(dirname "$0")/.."
source bench/lab.sh
NETKIT=${NETKIT:-$PWD/target/debug/netkit}
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d)
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null; sleep 1; kill "${PIDS[@]}" 2>/dev/null; rm -rf "$WORK"; lab_down; }
lab_up fwretry --delay 10ms --loss 25% --host 198.18.1.5 --host 198.18.1.6 \
  --drop 198.18.1.5:9000 --echo 198.18.1.6:9000 --seed "${SEED:-1}" || exit 1
trap cleanup EXIT
cat > "$WORK/clients.py" <<'PY'
import socket, sys, threading
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = [False] * n
def one(i):
    line = f"client {i}\n".encode()
    try:
        s = socket.create_connection((host, port), timeout=25)
        s.sendall(line)
        got = b""
        while len(got) < len(line):
            d = s.recv(100)
            if not d:
                break
            got += d
        ok[i] = got == line
        s.close()
    except OSError:
        pass
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in threads]
[t.join() for t in threads]
print(sum(ok))
PY
cat > "$WORK/haproxy.cfg" <<CFG
global
  maxconn 1000
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  retries 3
  option redispatch
listen l
  bind 127.0.0.1:7001
  balance roundrobin
  server a 198.18.1.5:9000
  server b 198.18.1.6:9000
CFG
TARGETS=198.18.1.5:9000,198.18.1.6:9000
# `ip netns exec` execs the program: $! is its pid.
ip netns exec "$LAB_SCANNER" ip link set lo up
ip netns exec "$LAB_SCANNER" haproxy -db -q -f "$WORK/haproxy.cfg" & PIDS+=($!)
ip netns exec "$LAB_SCANNER" "$NETKIT" forward 127.0.0.1:7000 $TARGETS \
  --connect-timeout 2s 2>"$WORK/retries3.log" & PIDS+=($!)
ip netns exec "$LAB_SCANNER" "$NETKIT" forward 127.0.0.1:7002 $TARGETS \
  --connect-timeout 2s --retries 0 2>"$WORK/retries0.log" & PIDS+=($!)
sleep 1
uptime
clients() { lab_exec python3 "$WORK/clients.py" 127.0.0.1 "$1" 15; }
for round in $(seq "$ROUNDS"); do
  echo "round $round: haproxy $(clients 7001)/15, netkit $(clients 7000)/15," \
    "netkit --retries 0 $(clients 7002)/15"
done
for log in retries3 retries0; do
  echo "netkit $log: $(grep -c ' done' "$WORK/$log.log") done," \
    "$(grep -c 'connect-failed' "$WORK/$log.log") connect-failed"
done
