#!/usr/bin/env bash
# netkit scan --banner vs nmap -sV (its NULL probe: what a service says first), in the
# impaired-link lab (docs/lab.md). Run as root.
#
#   bench/scan_banner.sh [RUNS] [LOSS]      (default: 20 runs, 30% loss each way)
#
# One far host, 75 ms each way, LOSS each way, an SSH-like service on port 2222 that speaks
# first (ncat). Each run scans that one port with each tool, one after the other: netkit
# (connect scan), netkit --syn, nmap -sV --version-intensity 0 (SYN scan, then the NULL probe;
# -sT for the connect scan's peer). The table gives, per tool, the runs that found the port
# open, the runs that read the banner, and the median time. With NETKIT_BASE=<a netkit
# binary>, that binary runs too (base, base-syn): a before/after in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
LOSS=${2:-30%}
HOST=198.18.0.5
PORT=2222
BANNER="SSH-2.0-OpenSSH_9.2p1 Debian-2"

need=()
command -v nmap >/dev/null || need+=(nmap)
command -v ncat >/dev/null || need+=(ncat)
command -v bc >/dev/null || need+=(bc)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p netkit-cli -p netkit-lab
NETKIT=$PWD/target/release/netkit
source bench/lab.sh
WORK=$(mktemp -d)
cleanup() {
  [[ -n ${SERVER:-} ]] && kill "$SERVER" 2>/dev/null
  lab_down
  rm -rf "$WORK"
}
lab_up banner --host $HOST --delay 75ms --loss "$LOSS"
trap cleanup EXIT
# Not through lab_far_exec: a function sent to the background is a subshell, and $! its pid.
ip netns exec "$LAB_FAR" timeout 3600 ncat -lk $HOST $PORT --sh-exec "echo $BANNER" >/dev/null 2>&1 &
SERVER=$!
sleep 1

TOOLS=(netkit netkit-syn nmap-sV nmap-sT-sV)
[[ -n ${NETKIT_BASE:-} ]] && TOOLS+=(base base-syn)

# run TOOL: scans once; prints "open banner seconds" (1 or 0 for the first two).
run() {
  local tool=$1 out start end open banner
  start=$(date +%s.%N)
  case $tool in
    netkit) out=$(lab_exec timeout 60 "$NETKIT" --json scan $HOST -p $PORT --banner 2>&1) ;;
    netkit-syn) out=$(lab_exec timeout 60 "$NETKIT" --json scan $HOST -p $PORT --banner --syn 2>&1) ;;
    base) out=$(lab_exec timeout 60 "$NETKIT_BASE" --json scan $HOST -p $PORT --banner 2>&1) ;;
    base-syn) out=$(lab_exec timeout 60 "$NETKIT_BASE" --json scan $HOST -p $PORT --banner --syn 2>&1) ;;
    nmap-sV) out=$(lab_exec timeout 120 nmap -sV --version-intensity 0 -n -Pn -p $PORT $HOST 2>&1) ;;
    nmap-sT-sV) out=$(lab_exec timeout 120 nmap -sT -sV --version-intensity 0 -n -Pn -p $PORT $HOST 2>&1) ;;
  esac
  end=$(date +%s.%N)
  open=0 banner=0
  case $tool in
    nmap*)
      grep -q "^$PORT/tcp open" <<<"$out" && open=1
      grep -q "OpenSSH 9.2p1" <<<"$out" && banner=1
      ;;
    *)
      grep -q '"state":"open"' <<<"$out" && open=1
      grep -q "\"banner\":\"$BANNER\"" <<<"$out" && banner=1
      ;;
  esac
  echo "$open $banner $(echo "$end - $start" | bc -l)"
}

for ((i = 1; i <= RUNS; i++)); do
  for tool in "${TOOLS[@]}"; do
    echo "$tool $(run "$tool")" >>"$WORK/results"
  done
done

echo "scan --banner, 75 ms each way, $LOSS loss each way, $RUNS runs (backend $LAB_BACKEND)"
python3 - "$WORK/results" "${TOOLS[@]}" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
print(f"{'tool':<12} {'open':>7} {'banner':>7} {'median_s':>9}")
for tool in sys.argv[2:]:
    mine = [r for r in rows if r[0] == tool]
    opened = sum(int(r[1]) for r in mine)
    read = sum(int(r[2]) for r in mine)
    median = statistics.median(float(r[3]) for r in mine)
    print(f"{tool:<12} {opened:>3}/{len(mine):<3} {read:>3}/{len(mine):<3} {median:>9.2f}")
PY
