#!/usr/bin/env bash
# netkit scan vs nmap, on loopback and in the impaired-link lab (docs/lab.md). Run as root.
#
#   bench/scan.sh [ROUNDS] [SCENARIO...]     (default: 3 rounds, every scenario)
#
# TOOLS (environment) picks the lab scenarios' tools (default: netkit netkit-syn nmap-sS-T4
# nmap-sT-T4 nmap-sS-T5; with NETKIT_BASE=<a netkit binary>, also base and base-syn: that binary
# the same two ways, for a before/after in one run). Every run is stopped after LIMIT seconds (environment, default 300): nmap can take many
# minutes where ICMP errors are rate limited; such runs count as LIMIT seconds (the table says
# ">=") and their accuracy as unknown.
#
# Scenarios (SCENARIO names):
#   loopback  every port of 127.0.0.1 in a throw-away namespace, 5 listeners;
#             netkit vs nmap -sT -T5 and -sS -T5 (the figure issue 6 set: <= 0.5x nmap -sT -T5),
#             netkit --syn vs nmap -sS -T4 and -T5 (issue 16: <= 0.8x nmap -sS -T4)
#   clean     every port of one far host, no impairment (8 open, 1000 dropped)
#   lossy30   /24 x the top 100 ports, 30±10 ms round trip, 2% loss each way
#   loss5     one host, ports 1-5000, 5% loss each way (2 ms round trip)
#   slow      every port of one host through 2 Mbit/s, 30 ms round trip (8 open, 1000 dropped)
#   reject    one host, ports 1-5000, 1000 REJECTed with ICMP port unreachable, the far
#             kernel's ICMP rate limit at its default (1/s per peer, burst 6)
#   synlimit  one host, ports 1-5000, a firewall dropping SYNs over 1000/s per source
#   synlimit10 one host, ports 1-200 (5 open), a firewall dropping SYNs over 10/s per source,
#             5 ms each way
#   synlimit10x8 198.18.1.0/29, ports 20-50 (4 open on 3 hosts), all behind one firewall
#             dropping SYNs over 10/s per source, 5 ms each way
#   firewalled one host as most are: 3 open ports, 1000 dropped, 30±10 ms round trip, 2% loss
#             each way (ports 22,80,443,1001-2000)
#   sparse    198.18.1.0/24 x the top 100 ports with 8 live hosts (2 of them drop ICMP echo),
#             248 silent addresses, 30±10 ms: host discovery first. netkit (its default
#             discovery) vs netkit -Pn vs nmap -sS -T4 (its default discovery) vs nmap -Pn
# Lab scenarios compare netkit (its defaults: a connect scan) and netkit --syn (raw SYNs), both
# with -Pn as nmap runs (every target is scanned), with nmap -Pn -sS -T4, -sT -T4 and -sS -T5.
#
# Each round runs every tool once, one after the other (interleaved rounds); the table gives
# median times, the ratio to the scenario's reference peer (nmap -sT -T5 on loopback, nmap -sS
# -T4 elsewhere), to nmap -sS -T4 everywhere and to NETKIT_BASE's binary, and accuracy against the
# lab's ground truth summed over the rounds: false open, missed open, and closed<->filtered
# mistakes (|closed found - closed true|). Truth follows nmap -sS: REJECTed ports are filtered
# (nmap -sT calls those whose ICMP error got through closed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
LIMIT=${LIMIT:-300}
shift || true
ALL=(loopback clean lossy30 loss5 slow reject synlimit synlimit10 synlimit10x8 firewalled sparse)
SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=("${ALL[@]}")

need=()
command -v nmap >/dev/null || need+=(nmap)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release -q -p netkit-cli -p netkit-lab
NETKIT=$PWD/target/release/netkit
source bench/lab.sh
WORK=$(mktemp -d)
LO_NS=
cleanup() {
  lab_down
  if [[ -n $LO_NS ]]; then
    for pid in $(ip netns pids "$LO_NS" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del "$LO_NS" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# awk stops by itself: `head` closing the pipe early could kill it with SIGPIPE (pipefail).
TOP100=$(awk '!/^#/ && NF && n++ < 100 {print $1}' crates/netkit/src/ports/data/top_ports.txt | paste -sd,)

# tally SCEN TOOL FILE: the open set and the counts of a tool's output, one JSON line.
tally() {
  python3 - "$2" "$3" <<'PY'
import json, re, sys
tool, path = sys.argv[1], sys.argv[2]
opened, counts = set(), {"open": 0, "closed": 0, "filtered": 0}
text = open(path).read()
if tool.startswith(("netkit", "base")):
    for line in text.splitlines():
        rec = json.loads(line)
        if rec["type"] == "port":
            opened.add(f'{rec["addr"]}:{rec["port"]}')
        elif rec["type"] == "summary":
            for k in counts:
                counts[k] = rec[k]
else:
    # nmap's normal output: "Nmap scan report for ADDR", port lines "22/tcp open ssh", and
    # "Not shown: 64527 closed tcp ports (reset), 1000 filtered tcp ports (no-response)".
    host = None
    for line in text.splitlines():
        m = re.match(r"Nmap scan report for (\S+)", line)
        if m:
            host = m.group(1)
            continue
        m = re.match(r"(\d+)/tcp\s+(\S+)", line)
        if m and host:
            port, state = m.groups()
            counts[state] = counts.get(state, 0) + 1
            if state == "open":
                opened.add(f"{host}:{port}")
            continue
        if line.startswith("Not shown:"):
            for n, state in re.findall(r"(\d+) (\S+) tcp ports", line):
                counts[state] = counts.get(state, 0) + int(n)
print(json.dumps({"open": sorted(opened), "counts": counts}))
PY
}

now() { date +%s.%N; }
# measure SCEN TOOL ROUND NS CMD...: runs CMD in namespace NS (at most LIMIT seconds),
# records its time and its tally.
measure() {
  local scen=$1 tool=$2 round=$3 ns=$4 t0 t1 code=0 data
  shift 4
  t0=$(now)
  timeout --signal=INT --kill-after=10 "$LIMIT" ip netns exec "$ns" "$@" >"$WORK/out" 2>"$WORK/err" || code=$?
  t1=$(now)
  if ((code == 124)); then
    data='{"stopped": true}'
  else
    data=$(tally "$scen" "$tool" "$WORK/out")
  fi
  echo "$scen $tool $(echo "$t1 - $t0" | bc -l) $data" >>"$WORK/results"
  printf '  %-10s round %d: %6.2f s%s\n' "$tool" "$round" "$(echo "$t1 - $t0" | bc -l)" \
    "$( ((code == 124)) && echo " (stopped at the limit)")"
}

# run_tools SCEN NS TARGETS PORTS TOOL...: the interleaved rounds of one scenario.
run_tools() {
  local scen=$1 ns=$2 targets=$3 ports=$4 round tool tlist
  shift 4
  read -ra tlist <<<"${targets//,/ }"
  for round in $(seq "$ROUNDS"); do
    for tool in "$@"; do
      case $tool in
        netkit) measure "$scen" "$tool" "$round" "$ns" "$NETKIT" --json scan -Pn "$targets" -p "$ports" ;;
        netkit-discovery) measure "$scen" "$tool" "$round" "$ns" "$NETKIT" --json scan "$targets" -p "$ports" ;;
        nmap-sS-T4-discovery) measure "$scen" "$tool" "$round" "$ns" nmap -n -sS -T4 -p "$ports" "${tlist[@]}" ;;
        netkit-syn) measure "$scen" "$tool" "$round" "$ns" "$NETKIT" --json scan -Pn "$targets" -p "$ports" --syn ;;
        base) measure "$scen" "$tool" "$round" "$ns" "$NETKIT_BASE" --json scan -Pn "$targets" -p "$ports" ;;
        base-syn) measure "$scen" "$tool" "$round" "$ns" "$NETKIT_BASE" --json scan -Pn "$targets" -p "$ports" --syn ;;
        nmap-sS-T4) measure "$scen" "$tool" "$round" "$ns" nmap -n -Pn -sS -T4 -p "$ports" "${tlist[@]}" ;;
        nmap-sT-T4) measure "$scen" "$tool" "$round" "$ns" nmap -n -Pn -sT -T4 -p "$ports" "${tlist[@]}" ;;
        nmap-sS-T5) measure "$scen" "$tool" "$round" "$ns" nmap -n -Pn -sS -T5 -p "$ports" "${tlist[@]}" ;;
        nmap-sT-T5) measure "$scen" "$tool" "$round" "$ns" nmap -n -Pn -sT -T5 -p "$ports" "${tlist[@]}" ;;
      esac
    done
  done
}

# truth SCEN OPEN FILTERED TOTAL: the ground truth (OPEN: addr:port list, comma separated).
truth() { echo "$1 $2 $3 $4" >>"$WORK/truth"; }

DEFAULT_TOOLS="netkit netkit-syn${NETKIT_BASE:+ base base-syn} nmap-sS-T4 nmap-sT-T4 nmap-sS-T5"
read -ra LAB_TOOLS <<<"${TOOLS:-$DEFAULT_TOOLS}"
OPEN8=22,80,443,3306,8080,20000,50000,65000
open_list() { local host=$1 ports=$2 p out=(); for p in ${ports//,/ }; do out+=("$host:$p"); done; (IFS=,; echo "${out[*]}"); }

scenario_loopback() {
  LO_NS=nkbench-$$
  ip netns add "$LO_NS"
  ip -n "$LO_NS" link set lo up
  ip netns exec "$LO_NS" python3 -c "
import socket, time
held = []
for _ in range(5):
    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(64); held.append(s)
print(','.join(str(s.getsockname()[1]) for s in held), flush=True)
time.sleep(3600)" >"$WORK/listeners" </dev/null &
  for _ in $(seq 50); do [[ -s $WORK/listeners ]] && break; sleep 0.1; done
  truth loopback "$(open_list 127.0.0.1 "$(cat "$WORK/listeners")")" 0 65535
  run_tools loopback "$LO_NS" 127.0.0.1 1-65535 netkit netkit-syn nmap-sT-T5 nmap-sS-T4 nmap-sS-T5
  for pid in $(ip netns pids "$LO_NS"); do kill "$pid" 2>/dev/null || true; done
  ip netns del "$LO_NS"
  LO_NS=
}

# lab_scenario SCEN TARGETS PORTS OPEN FILTERED TOTAL LAB-FLAGS...
lab_scenario() {
  local scen=$1 targets=$2 ports=$3 open=$4 filtered=$5 total=$6
  shift 6
  lab_up "b$scen" "$@"
  truth "$scen" "$open" "$filtered" "$total"
  local tools=("${LAB_TOOLS[@]}")
  [[ $scen == sparse ]] && tools=(netkit-discovery netkit nmap-sS-T4-discovery nmap-sS-T4)
  run_tools "$scen" "$LAB_SCANNER" "$targets" "$ports" "${tools[@]}"
  lab_down
}

# The sparse scenario's live hosts: open ports on three, two that drop ICMP echo (one refuses
# everything, one listens on 443).
SPARSE=(5 17 33 77 101 150 200 250)
sparse_flags() {
  local n
  for n in "${SPARSE[@]}"; do echo "--host=198.18.1.$n"; done
  echo --open=198.18.1.5:22,80 --open=198.18.1.77:443 --open=198.18.1.200:3389
  echo --no-echo=198.18.1.150 --no-echo=198.18.1.77
}

H=198.18.1.5
for scen in "${SCENARIOS[@]}"; do
  echo "== $scen"
  case $scen in
    loopback) scenario_loopback ;;
    clean) lab_scenario clean $H 1-65535 "$(open_list $H $OPEN8)" 1000 65535 \
      --hosts 198.18.1.0/29 --open $H:$OPEN8 --drop $H:40001-41000 ;;
    lossy30) lab_scenario lossy30 198.18.1.0/24 "$TOP100" \
      "$(open_list 198.18.1.5 22,80),$(open_list 198.18.1.77 443),$(open_list 198.18.1.200 3389)" \
      200 25600 --delay 15ms --jitter 5ms --loss 2% --seed 30 --hosts 198.18.1.0/24 \
      --open 198.18.1.5:22,80 --open 198.18.1.77:443 --open 198.18.1.200:3389 \
      --drop 198.18.1.9 --drop 198.18.1.10 ;;
    loss5) lab_scenario loss5 $H 1-5000 "$(open_list $H 22,80,443,3306,4999)" 100 5000 \
      --delay 1ms --loss 5% --seed 5 --hosts 198.18.1.0/29 --open $H:22,80,443,3306,4999 \
      --drop $H:4001-4100 ;;
    slow) lab_scenario slow $H 1-65535 "$(open_list $H $OPEN8)" 1000 65535 \
      --delay 15ms --rate 2mbit --hosts 198.18.1.0/29 --open $H:$OPEN8 --drop $H:40001-41000 ;;
    reject) lab_scenario reject $H 1-5000 "$(open_list $H 22,80,443)" 1000 5000 \
      --delay 1ms --hosts 198.18.1.0/29 --open $H:22,80,443 \
      --reject $H:1001-2000=port-unreachable --icmp-ratelimit default ;;
    synlimit) lab_scenario synlimit $H 1-5000 "$(open_list $H 22,80,443,3306,4999)" 100 5000 \
      --hosts 198.18.1.0/29 --open $H:22,80,443,3306,4999 --drop $H:4001-4100 --syn-limit 1000 ;;
    synlimit10) lab_scenario synlimit10 $H 1-200 "$(open_list $H 22,80,111,143,199)" 0 200 \
      --delay 5ms --hosts 198.18.1.0/29 --open $H:22,80,111,143,199 --syn-limit 10 ;;
    synlimit10x8) lab_scenario synlimit10x8 198.18.1.0/29 20-50 \
      "198.18.1.1:22,198.18.1.3:22,198.18.1.3:25,198.18.1.6:50" 0 248 --delay 5ms \
      --hosts 198.18.1.0/29 --open 198.18.1.1:22 --open 198.18.1.3:22,25 --open 198.18.1.6:50 \
      --syn-limit 10 ;;
    firewalled) lab_scenario firewalled $H 22,80,443,1001-2000 "$(open_list $H 22,80,443)" 1000 1003 \
      --delay 15ms --jitter 5ms --loss 2% --seed 12 --hosts 198.18.1.0/29 --open $H:22,80,443 \
      --drop $H:1001-2000 ;;
    sparse) # Truth over the live hosts (down ones have no ports): 8 x 100 ports, 4 open.
      # shellcheck disable=SC2046
      lab_scenario sparse 198.18.1.0/24 "$TOP100" \
      "$(open_list 198.18.1.5 22,80),$(open_list 198.18.1.77 443),$(open_list 198.18.1.200 3389)" \
      0 800 --delay 15ms --jitter 5ms --seed 8 $(sparse_flags) ;;
    *) echo "unknown scenario $scen (one of ${ALL[*]})" >&2; exit 2 ;;
  esac
done

echo
echo "netkit scan vs nmap $(nmap --version | awk 'NR==1{print $3}'), $ROUNDS interleaved rounds, $(nproc) CPUs, $(uname -r)"
python3 - "$WORK/results" "$WORK/truth" "$ROUNDS" <<'PY'
import json, statistics, sys
results, truths, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
truth = {}
for line in open(truths):
    scen, opened, filtered, total = line.split()
    opened = set(filter(None, opened.split(",")))
    filtered, total = int(filtered), int(total)
    truth[scen] = (opened, total - len(opened) - filtered, filtered)
runs = {}
for line in open(results):
    scen, tool, secs, data = line.split(" ", 3)
    runs.setdefault(scen, {}).setdefault(tool, []).append((float(secs), json.loads(data)))
# "vs ref": the scenario's reference peer (nmap -sT -T5 on loopback, nmap with its host discovery
# on sparse, nmap -sS -T4 elsewhere); "vs before": netkit against NETKIT_BASE's binary run the
# same way (base, base-syn), when it ran.
print("| scenario | tool | median s | vs ref | vs nmap -sS -T4 | vs before | false open | missed open | closed<->filtered | exact rounds |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for scen, tools in runs.items():
    opened, closed, filtered = truth[scen]
    base = {"loopback": "nmap-sT-T5", "sparse": "nmap-sS-T4-discovery"}.get(scen, "nmap-sS-T4")
    medians = {t: statistics.median(s for s, _ in r) for t, r in tools.items()}
    for tool, rs in tools.items():
        fo = mo = cf = exact = 0
        stopped = any(d.get("stopped") for _, d in rs)
        if stopped:
            print(f"| {scen} | {tool} | >= {medians[tool]:.0f} | stopped | | | | | | |")
            continue
        for _, d in rs:
            found = set(d["open"])
            f, m = len(found - opened), len(opened - found)
            c = abs(d["counts"].get("closed", 0) - closed)
            fo, mo, cf = fo + f, mo + m, cf + c
            exact += (f, m, c) == (0, 0, 0)
        ratio = medians[tool] / medians[base] if base in medians else float("nan")
        syn = "nmap-sS-T4"
        vs_syn = medians[tool] / medians[syn] if syn in medians else float("nan")
        before = {"netkit": "base", "netkit-syn": "base-syn"}.get(tool)
        vs_before = f"{medians[tool] / medians[before]:.2f}x" if before in medians else ""
        print(f"| {scen} | {tool} | {medians[tool]:.2f} | {ratio:.2f}x | {vs_syn:.2f}x | {vs_before} | {fo} | {mo} | {cf} | {exact}/{len(rs)} |")
PY
