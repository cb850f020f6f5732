#!/usr/bin/env bash
# netkit scan vs nmap: every TCP port (1-65535) of 127.0.0.1 inside a throw-away network
# namespace holding only our own listeners (so other processes cannot disturb either tool).
# Interleaved rounds: netkit, nmap -sT -T5, nmap -sS -T5; medians and ratios; and a check that
# every tool found exactly the listeners (same open-port set). Run as root.
# Usage: bench/scan.sh [ROUNDS]   (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
LISTENERS=5

need=()
command -v nmap >/dev/null || need+=(nmap)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p netkit-cli
NETKIT=$PWD/target/release/netkit

NS=nkbench-$$
WORK=$(mktemp -d)
cleanup() {
  # Only our own namespace's processes: the listener started below.
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
inns() { ip netns exec "$NS" "$@"; }

# Listeners on random ports (port 0, read back), held open for the whole benchmark.
inns python3 -c "
import socket, sys, time
held = []
for _ in range($LISTENERS):
    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(64); held.append(s)
print('\n'.join(str(s.getsockname()[1]) for s in held), flush=True)
time.sleep(3600)" >"$WORK/expected.raw" 2>"$WORK/listener.err" </dev/null &
for _ in $(seq 50); do [[ $(wc -l <"$WORK/expected.raw") -ge $LISTENERS ]] && break; sleep 0.1; done
sort -n "$WORK/expected.raw" >"$WORK/expected"

now() { date +%s.%N; }
# run NAME CMD...: times CMD, stores its open ports (one per line, sorted) in $WORK/NAME.open
run() {
  local name=$1; shift
  local t0 t1
  t0=$(now)
  inns "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  t1=$(now)
  echo "$t1 - $t0" | bc -l >>"$WORK/$name.times"
  case $name in
    netkit) grep -o '"port":[0-9]*' "$WORK/$name.out" | cut -d: -f2 ;;
    *) grep -o '[0-9]*/open/' "$WORK/$name.out" | cut -d/ -f1 ;;
  esac | sort -n >"$WORK/$name.open"
  if ! cmp -s "$WORK/$name.open" "$WORK/expected"; then
    echo "MISMATCH: $name found [$(paste -sd, "$WORK/$name.open")]," \
      "listeners are [$(paste -sd, "$WORK/expected")]" >&2
    MISMATCH=1
  fi
}
MISMATCH=0
TOOLS=(netkit nmap-sT nmap-sS)
for round in $(seq "$ROUNDS"); do
  run netkit "$NETKIT" --json scan 127.0.0.1 -p all
  run nmap-sT nmap -n -Pn -sT -p- -T5 -oG - 127.0.0.1
  run nmap-sS nmap -n -Pn -sS -p- -T5 -oG - 127.0.0.1
  echo "round $round: netkit $(tail -1 "$WORK/netkit.times" | cut -c1-5) s," \
    "nmap -sT $(tail -1 "$WORK/nmap-sT.times" | cut -c1-5) s," \
    "nmap -sS $(tail -1 "$WORK/nmap-sS.times" | cut -c1-5) s"
done

median() { sort -n "$1" | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.3f", m}'; }
base=$(median "$WORK/nmap-sT.times")
echo
echo "all 65535 TCP ports of 127.0.0.1, $LISTENERS listeners, $ROUNDS interleaved rounds ($(nproc) CPUs)"
printf '%-34s %10s %16s\n' tool "median s" "vs nmap -sT"
for t in "${TOOLS[@]}"; do
  m=$(median "$WORK/$t.times")
  case $t in
    netkit) label="netkit scan -p all" ;;
    nmap-sT) label="nmap -sT -p- -T5 ($(nmap --version | awk 'NR==1{print $3}'))" ;;
    nmap-sS) label="nmap -sS -p- -T5" ;;
  esac
  printf '%-34s %10s %15.2fx\n' "$label" "$m" "$(echo "$m / $base" | bc -l)"
done
if ((MISMATCH)); then
  echo "open-port sets: MISMATCH (see above)"
  exit 1
fi
echo "open-port sets: identical for every tool and round, equal to the listeners ($(paste -sd, "$WORK/expected"))"
