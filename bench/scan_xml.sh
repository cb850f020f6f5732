#!/usr/bin/env bash
# netkit scan -oX vs nmap -sT -T5 -oX on loopback, in a throw-away namespace with 5 listeners.
# Run as root.
#
#   bench/scan_xml.sh [ROUNDS]     (default: 3 rounds)
#
# Scenarios: every port of 127.0.0.1; 127.0.0.0/24 x ports 1-1000 (nmap with -Pn, as netkit
# scans every target). Each round runs both tools once per scenario, one after the other; the
# table gives median wall times, the ratio netkit/nmap, and what ndiff finds between the two
# documents of the last round: the open ports must be the same ("open ports agree"), service
# names may differ (netkit's table is not nmap's); both list a host's closed ports while it has
# at most 25 and count them in <extraports> beyond (nmap's rule).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
for tool in nmap ndiff python3; do
  command -v "$tool" >/dev/null || { echo "bench/scan_xml.sh needs $tool" >&2; exit 3; }
done
cargo build --release -q -p netkit-cli
NETKIT=$PWD/target/release/netkit
WORK=$(mktemp -d)
NS=nkbench-scanxml-$$
cleanup() {
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
# 5 listeners on ports the kernel picks, held for the whole run.
ip netns exec "$NS" python3 -c '
import socket, sys, time
held = []
for _ in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); held.append(s)
print(",".join(str(s.getsockname()[1]) for s in held), flush=True)
time.sleep(3600)' >"$WORK/ports" &
for _ in $(seq 50); do [[ -s $WORK/ports ]] && break; sleep 0.1; done

# secs CMD...: wall time of one run inside the namespace, output discarded.
secs() {
  local start end
  start=$(date +%s.%N)
  ip netns exec "$NS" "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-28s %10s %10s %7s  %s\n' scenario "netkit s" "nmap s" ratio ndiff
for scenario in "127.0.0.1 -p all" "127.0.0.0/24 -p 1-1000"; do
  read -r target _ ports <<<"$scenario"
  : >"$WORK/n" ; : >"$WORK/m"
  for _ in $(seq "$ROUNDS"); do
    secs "$NETKIT" scan "$target" -p "$ports" -oX "$WORK/netkit.xml" >>"$WORK/n"
    secs nmap -n -Pn -sT -T5 -p "${ports/all/-}" "$target" -oX "$WORK/nmap.xml" >>"$WORK/m"
  done
  n=$(median <"$WORK/n"); m=$(median <"$WORK/m")
  changed=$(ndiff "$WORK/nmap.xml" "$WORK/netkit.xml" | grep -E '^[-+]' | grep -v ' scan initiated ' || true)
  theirs=$(grep -E '^-[0-9]+/tcp +open' <<<"$changed" | cut -d/ -f1 | tr -d - | sort -u | paste -sd, || true)
  ours=$(grep -E '^\+[0-9]+/tcp +open' <<<"$changed" | cut -d/ -f1 | tr -d + | sort -u | paste -sd, || true)
  verdict="open ports agree"
  [[ $theirs == "$ours" ]] || verdict="OPEN PORTS DIFFER: nmap $theirs, netkit $ours"
  printf '%-28s %10.3f %10.3f %6.2fx  %s (%d lines differ)\n' "$target $ports" "$n" "$m" \
    "$(echo "$n / $m" | bc -l)" "$verdict" "$(grep -c . <<<"$changed" || true)"
done
