#!/usr/bin/env bash
# `--retries 0` behind an ICMP echo policer: a /26 of live hosts, the far side policing echo
# requests to POLICE/s (burst POLICE/10); ROUNDS interleaved rounds of netkit sweep --retries 0,
# fping -r 0 and nmap -sn -PE --max-retries 0, each: hosts found and seconds.
#
#   bench/sweep_policed.sh [ROUNDS] [POLICE]      defaults: 7, 100
#   NETKIT=/path/to/netkit NETKIT_LAB=/path/to/netkit-lab bench/sweep_policed.sh
set -euo pipefail
ROUNDS=${1:-7}
POLICE=${2:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETKIT=${NETKIT:-"$ROOT/target/release/netkit"}
RANGE=198.18.0.0/26
cd "$ROOT"
source bench/lab.sh
lab_up "swf$$" --hosts "$RANGE" --icmp-police "$POLICE"
timed() { # timed PATTERN CMD...: "found seconds", found = output lines matching PATTERN
  local t0 t1 n pat=$1
  shift
  t0=$(date +%s.%N)
  n=$(timeout 120 ip netns exec "$LAB_SCANNER" "$@" 2>/dev/null | grep -c -E "$pat" || true)
  t1=$(date +%s.%N)
  printf '%s %.2f' "$n" "$(echo "$t1 - $t0" | bc)"
}
printf '%-6s %-16s %-16s %-16s\n' round netkit fping nmap
for r in $(seq "$ROUNDS"); do
  sleep 1
  a=$(timed ' is alive$' "$NETKIT" sweep "$RANGE" --retries 0 --alive)
  sleep 1
  b=$(timed '^198' fping -r 0 -a -g "$RANGE")
  sleep 1
  c=$(timed 'Status: Up$' nmap -sn -n -PE --send-ip --max-retries 0 -oG - "$RANGE")
  printf '%-6s %-16s %-16s %-16s\n' "$r" "$a" "$b" "$c"
done
