#!/usr/bin/env bash
# A sweep behind an ICMP echo policer: a /26 (RANGE) of live hosts, the far side policing echo
# requests to POLICE/s (burst POLICE/10); ROUNDS interleaved rounds of netkit sweep, fping and
# nmap -sn -PE, each: hosts found and seconds. RETRIES (default 0) is given to every tool
# (`--retries`, `-r`, `--max-retries`); RETRIES=default gives none, each tool's own default.
# NETKIT_BASE (a second netkit binary, e.g. main's) adds a "before" column in the same run.
#
#   bench/sweep_policed.sh [ROUNDS] [POLICE] [RETRIES]     defaults: 7, 100, 0
#   NETKIT=/path/to/netkit NETKIT_LAB=/path/to/netkit-lab NETKIT_BASE=/path/to/old/netkit \
#     RANGE=198.18.0.0/24 LAB_TAG=mine bench/sweep_policed.sh
# LAB_EXTRA adds netkit-lab flags, e.g. LAB_EXTRA="--delay 225ms --jitter 75ms" (far round trips).
# HOSTS, when set, are the live hosts instead of every address of RANGE (netkit-lab flags, e.g.
# HOSTS="--host 198.18.4.7 --host 198.18.4.90": a sparse range).
set -euo pipefail
ROUNDS=${1:-7}
POLICE=${2:-100}
RETRIES=${3:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETKIT=${NETKIT:-"$ROOT/target/release/netkit"}
NETKIT_BASE=${NETKIT_BASE:-}
RANGE=${RANGE:-198.18.0.0/26}
cd "$ROOT"
source bench/lab.sh
# shellcheck disable=SC2086 # LAB_EXTRA and HOSTS are lists of flags
lab_up "${LAB_TAG:-swf$$}" ${HOSTS:---hosts $RANGE} --icmp-police "$POLICE" ${LAB_EXTRA:-}
timed() { # timed PATTERN CMD...: "found seconds", found = output lines matching PATTERN
  local t0 t1 n pat=$1
  shift
  t0=$(date +%s.%N)
  n=$(timeout 120 ip netns exec "$LAB_SCANNER" "$@" 2>/dev/null | grep -c -E "$pat" || true)
  t1=$(date +%s.%N)
  printf '%s %.2f' "$n" "$(echo "$t1 - $t0" | bc)"
}
nk=(--retries "$RETRIES") fp=(-r "$RETRIES") nm=(--max-retries "$RETRIES")
if [[ $RETRIES == default ]]; then
  nk=() fp=() nm=()
fi
printf '%-6s %-16s %-16s %-16s %-16s\n' round netkit before fping nmap
for r in $(seq "$ROUNDS"); do
  sleep 1
  a=$(timed ' is alive$' "$NETKIT" sweep "$RANGE" "${nk[@]}" --alive)
  b=-
  if [[ -n $NETKIT_BASE ]]; then
    sleep 1
    b=$(timed ' is alive$' "$NETKIT_BASE" sweep "$RANGE" "${nk[@]}" --alive)
  fi
  sleep 1
  c=$(timed '^198' fping "${fp[@]}" -a -g "$RANGE")
  sleep 1
  d=$(timed 'Status: Up$' nmap -sn -n -PE --send-ip "${nm[@]}" -oG - "$RANGE")
  printf '%-6s %-16s %-16s %-16s %-16s\n' "$r" "$a" "$b" "$c" "$d"
done
