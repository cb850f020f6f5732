#!/usr/bin/env bash
# Host discovery: netkit sweep vs fping (and nmap -sn where it really sends), interleaved
# rounds, medians and ratios; then a sweep of 2^20 addresses with its time and peak RSS.
#
#   1. 198.18.0.0/24 on a veth link, 10 hosts alive (the sweeper and 9 in a second namespace),
#      246 silent (nothing answers their ARP). fping with its defaults (-r 3) and with -r 1
#      (netkit's default retries), nmap -sn -n --send-ip -PE (ICMP echo only, no ARP ping),
#      netkit sweep with its defaults (timeout 1s, retries 1, 10000 probes/s).
#   2. 4094 loopback addresses (127.0.0.1-127.0.15.254, what fping -g 127.0.0.0/20 sweeps)
#      inside a namespace with lo up: fping -i 1 vs netkit sweep. nmap is left out: it marks
#      127.x up as "localhost-response" without sending anything.
#   3. 127.0.0.0/12 (1048576 addresses, all answer inside the namespace): netkit sweep
#      --rate RATE_1M under /usr/bin/time -v; every address must be reported alive.
#   4. The impaired-link lab (bench/lab.sh, docs/lab.md), LAB_ROUNDS interleaved rounds each:
#      198.18.0.0/22 with 270 pingable hosts behind 30±10 ms, clean, with 2% and with 10% loss
#      each way; 198.18.8.0/21 with 2000 pingable hosts behind 30±10 ms whose far side polices ICMP echo
#      to 1000/s. netkit (defaults) vs fping (defaults: -r 3 -i 10; and -i 1) vs
#      nmap -sn -n -PE --send-ip; and on the 10% loss link, netkit --every 1s --rounds 5,
#      where every change reported is a false one. These runs are not checked against an expected count:
#      each tool's answer is compared with the lab's ground truth, and the table shows the
#      live hosts it missed and the silent ones it reported alive.
#   5. Several methods at once (part "multi"): the lab's 198.18.0.0/22 with the 270 hosts
#      behind 30±10 ms, a third of them dropping ICMP echo (they answer TCP: a reset);
#      netkit --method icmp,tcp:80,tcp:443 vs nmap -sn -n -PE -PS80,443 (and netkit's and
#      nmap's ICMP echo alone, which miss that third), and nmap's privileged default set
#      (nmap -sn: -PE -PS443 -PA80 -PP) vs netkit --method icmp,tcp:443,ack:80,timestamp,
#      against the lab's ground truth.
#   6. On-link discovery (part "arp"): a bridge in the sweeper's namespace, 24 hosts in
#      namespaces of their own (a veth each, the kernel's MAC address), 6 in each /24 of
#      198.18.0.0/22. arp-scan
#      with its defaults (256 kbit/s: about 530 requests/s, 2 retries, 500 ms timeout), arp-scan
#      -i 100u (10000 requests/s, netkit's default rate) and netkit sweep --method arp
#      (defaults), on the /24 and on the /22.
#   7. A small range on a link losing half the echo replies (part "small"): 198.18.1.0/29, 6
#      hosts live, 5 ms each way, 50% loss towards the scanner; SMALL_ROUNDS interleaved rounds
#      (default 10) of fping (defaults: -r 3), fping -r 10, nmap -sn -PE --send-ip and netkit
#      sweep (defaults), each against the lab's ground truth.
#
# Parts 1-3 and 6 check every run: each tool must find the expected number of live hosts.
# Sends only inside the namespaces it creates (removed on exit). Needs root.
#
#   bench/sweep.sh [ROUNDS] [RATE_1M] [LAB_ROUNDS]   defaults: 5, 100000 probes/s, 3
#   PARTS="lab" bench/sweep.sh ...                   only some parts (veth lab multi arp small)
#   NETKIT=/tmp/netkit-before bench/sweep.sh ...     another netkit binary (an A/B by hand)
set -euo pipefail

ROUNDS=${1:-5}
RATE_1M=${2:-100000}
LAB_ROUNDS=${3:-3}
PARTS=${PARTS:-"veth lab multi arp small"}
SMALL_ROUNDS=${SMALL_ROUNDS:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NETKIT=${NETKIT:-"$ROOT/target/release/netkit"}
TAG="nkb$$"
A="$TAG-a" B="$TAG-b" L="$TAG-l"
OUT=$(mktemp -d)

if ! command -v fping >/dev/null || ! command -v nmap >/dev/null || ! [ -x /usr/bin/time ] ||
    ! command -v arp-scan >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fping nmap time arp-scan >/dev/null
fi
(cd "$ROOT" && cargo build --release -q -p netkit-cli -p netkit-lab)
export NETKIT_LAB="$ROOT/target/release/netkit-lab"

cleanup() {
    lab_down 2>/dev/null || true
    for ns in "$A" "$B" "$L" $(ip netns list | awk -v t="$TAG-" 'index($1, t) == 1 { print $1 }'); do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$OUT"
}
# shellcheck source=bench/lab.sh
source "$ROOT/bench/lab.sh"
trap cleanup EXIT

# $A: the sweeper, 198.18.0.1/24 on nk0; $B: 9 live hosts on the far end of the veth pair.
# $L: only lo, up: every 127.x address answers.
lab() {
    for ns in "$A" "$B" "$L"; do ip netns add "$ns"; done
    ip -n "$A" link add nk0 type veth peer name nk1
    ip -n "$A" link set nk1 netns "$B"
    ip -n "$A" addr add 198.18.0.1/24 dev nk0
    ip -n "$A" link set nk0 up
    ip -n "$A" link set lo up
    ip -n "$B" addr add 198.18.0.200/24 dev nk1
    for host in 10 20 30 40 50 60 70 80; do
        ip -n "$B" addr add "198.18.0.$host/24" dev nk1
    done
    ip -n "$B" link set nk1 up
    ip -n "$L" link set lo up
}

# run NAME NS EXPECTED CMD...: times CMD in NS (live-host lines on stdout), checks the count,
# appends the seconds to $OUT/NAME.
run() {
    local name=$1 ns=$2 expected=$3
    shift 3
    ip -n "$ns" neigh flush all 2>/dev/null || true
    local start end found
    start=$(date +%s.%N)
    found=$(ip netns exec "$ns" "$@" 2>/dev/null | wc -l || true)
    end=$(date +%s.%N)
    if [ "$found" -ne "$expected" ]; then
        echo "$name: found $found live hosts, expected $expected" >&2
        exit 1
    fi
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }' >>"$OUT/$name"
}

nmap_up() { nmap -sn -n --send-ip -PE -oG - "$@" | grep -c 'Status: Up' || true; }
export -f nmap_up

median() { sort -g "$OUT/$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

row() { # row LABEL NAME REFERENCE_NAME
    local m r
    m=$(median "$2")
    r=$(median "$3")
    awk -v l="$1" -v m="$m" -v r="$r" 'BEGIN { printf "  %-34s %8.3f s %8.2fx\n", l, m, m / r }'
}

printf '%s; %s; %s\n' "$("$NETKIT" --version)" "$(fping -v 2>&1 | head -1)" "$(nmap --version | head -1)"

veth_parts() {
lab
printf '%d interleaved rounds; medians; ratio = tool / fping default\n\n' "$ROUNDS"

for _ in $(seq "$ROUNDS"); do
    run fping24 "$A" 10 fping -a -q -g 198.18.0.0/24
    run fping24r1 "$A" 10 fping -a -q -r 1 -g 198.18.0.0/24
    run netkit24 "$A" 10 "$NETKIT" sweep --alive 198.18.0.0/24
    run nmap24 "$A" 1 bash -c 'nmap_up 198.18.0.0/24 | grep -x 10'
    run fping20 "$L" 4094 fping -a -q -i 1 -g 127.0.0.0/20
    run netkit20 "$L" 4094 "$NETKIT" sweep --alive 127.0.0.1-127.0.15.254
done

echo "198.18.0.0/24 on a veth link, 10 alive, 246 silent"
row "fping -g (defaults: -r 3)" fping24 fping24
row "fping -r 1 -g" fping24r1 fping24
row "nmap -sn --send-ip -PE" nmap24 fping24
row "netkit sweep (defaults)" netkit24 fping24
echo "127.0.0.1-127.0.15.254 (4094 loopback addresses, all alive)"
row "fping -i 1 -g 127.0.0.0/20" fping20 fping20
row "netkit sweep (defaults)" netkit20 fping20

echo "127.0.0.0/12 (1048576 loopback addresses, all alive), netkit sweep --rate $RATE_1M"
ip netns exec "$L" /usr/bin/time -v -o "$OUT/time1m" \
    "$NETKIT" --json sweep 127.0.0.0/12 --dead --rate "$RATE_1M" >"$OUT/out1m" || true
summary=$(tail -1 "$OUT/out1m")
alive=$(sed -n 's/.*"alive":\([0-9]*\).*/\1/p' <<<"$summary")
awk -F': ' '/Elapsed \(wall clock\)/ { printf "  wall clock %s", $2 } /Maximum resident/ { printf ", peak RSS %.1f MiB", $2 / 1024 }' "$OUT/time1m"
printf ', %s of 1048576 alive (%s)\n' "$alive" "$([ "$alive" = 1048576 ] && echo 'none missed' || echo MISSED)"
}

# --- 4. the impaired-link lab -------------------------------------------------------------

# pick N SEED A B SPAN: N distinct addresses A.B.(k/256).(k%256) for k in 1..SPAN-2 (no
# network or broadcast address of the block), seeded; one per line.
pick() {
    python3 - "$@" <<'PY'
import random, sys
n, seed, a, b, span = map(int, sys.argv[1:])
for k in sorted(random.Random(seed).sample(range(1, span - 1), n)):
    print(f"{a}.{b}.{k // 256}.{k % 256}")
PY
}

# lab_time NAME TRUTH CMD: runs the shell command CMD in the lab's scanner namespace (it prints
# live addresses, one per line); appends its seconds, missed and false-alive counts.
lab_time() {
    local name=$1 truth=$2 cmd=$3 start end
    start=$(date +%s.%N)
    lab_exec bash -c "$cmd" 2>/dev/null | sort -u >"$OUT/found" || true
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }' >>"$OUT/$name"
    comm -23 "$truth" "$OUT/found" | wc -l >>"$OUT/$name.miss"
    comm -13 "$truth" "$OUT/found" | wc -l >>"$OUT/$name.false"
}

# lab_rounds TAG TRUTH ROUNDS CMDS NAME...: ROUNDS interleaved rounds of the commands named, from
# CMDS (the name of an associative array, NAME -> shell command), each timed by lab_time.
lab_rounds() {
    local tag=$1 truth=$2 rounds=$3 name
    local -n commands=$4
    shift 4
    for _ in $(seq "$rounds"); do
        for name in "$@"; do
            lab_time "$tag-$name" "$truth" "${commands[$name]}"
        done
    done
}

# lab_row LABEL NAME REFERENCE: median time, ratio, and accuracy over the rounds.
lab_row() {
    local m r miss false
    m=$(median "$2")
    r=$(median "$3")
    miss=$(paste -sd' ' "$OUT/$2.miss")
    false=$(paste -sd' ' "$OUT/$2.false")
    awk -v l="$1" -v m="$m" -v r="$r" -v mi="$miss" -v fa="$false" \
        'BEGIN { printf "  %-30s %8.3f s %6.2fx   missed %-12s false alive %s\n", l, m, m / r, mi, fa }'
}

# lab_scenario TAG TITLE RANGE TRUTH LAB-FLAGS...: one lab, the tools in interleaved rounds.
lab_scenario() {
    local tag=$1 title=$2 range=$3 truth=$4
    shift 4
    lab_up "$tag" "$@" >/dev/null
    trap cleanup EXIT # lab_up sets its own
    local fping="fping -a -q -g $range"
    local -a names=(fping fpingi1 nmap netkit)
    local -A cmds=(
        [fping]="$fping"
        [fpingi1]="fping -a -q -i 1 -g $range"
        [nmap]="nmap -sn -n -PE --send-ip -oG - $range | awk '/Status: Up/ { print \$2 }'"
        [netkit]="$NETKIT sweep --alive $range | awk '{ print \$1 }'"
    )
    lab_rounds "$tag" "$truth" "$LAB_ROUNDS" cmds "${names[@]}"
    { lab_exec "$NETKIT" --json sweep "$range" || true; } | tail -1 >"$OUT/$tag.summary"
    if [[ $tag == swloss10 ]]; then
        # Periodic mode, nothing changing: every change record is a false one.
        { lab_exec "$NETKIT" --json sweep "$range" --every 1s --rounds 5 || true; } >"$OUT/every"
        local changes
        changes=$(grep -c '"type":"change"' "$OUT/every" || true)
    fi
    lab_down 2>/dev/null
    echo "$title ($(wc -l <"$truth") live; $LAB_ROUNDS rounds; missed/false per round)"
    lab_row "fping -g (defaults)" "$tag-fping" "$tag-fping"
    lab_row "fping -i 1 -g" "$tag-fpingi1" "$tag-fping"
    lab_row "nmap -sn -PE --send-ip" "$tag-nmap" "$tag-fping"
    lab_row "netkit sweep (defaults)" "$tag-netkit" "$tag-fping"
    echo "  netkit's last summary: $(cat "$OUT/$tag.summary")"
    if [[ -n ${changes:-} ]]; then
        echo "  netkit sweep --every 1s --rounds 5: $changes change records (nothing changed)"
    fi
}

lab_parts() {
    local h270="$OUT/h270" h2000="$OUT/h2000"
    pick 270 12 198 18 1024 | sort >"$h270"
    pick 2000 3 198 18 2048 | awk -F. '{ printf "%s.%s.%d.%s\n", $1, $2, $3 + 8, $4 }' | sort >"$h2000"
    local -a hosts270 hosts2000
    mapfile -t hosts270 < <(sed 's/^/--host=/' "$h270")
    mapfile -t hosts2000 < <(sed 's/^/--host=/' "$h2000")
    local wan=(--delay 15ms --jitter 5ms --seed 5)
    printf '\nImpaired-link lab (%s rounds, interleaved; medians; ratio = tool / fping default)\n' "$LAB_ROUNDS"
    lab_scenario swclean "198.18.0.0/22, 30±10 ms" 198.18.0.0/22 "$h270" "${wan[@]}" "${hosts270[@]}"
    lab_scenario swloss2 "198.18.0.0/22, 30±10 ms, 2% loss each way" 198.18.0.0/22 "$h270" \
        "${wan[@]}" --loss 2% "${hosts270[@]}"
    lab_scenario swloss10 "198.18.0.0/22, 30±10 ms, 10% loss each way" 198.18.0.0/22 "$h270" \
        "${wan[@]}" --loss 10% "${hosts270[@]}"
    lab_scenario swpolice "198.18.8.0/21, 30±10 ms, ICMP echo policed to 1000/s" 198.18.8.0/21 \
        "$h2000" "${wan[@]}" --icmp-police 1000 "${hosts2000[@]}"
}

multi_parts() {
    local h270="$OUT/h270m" tag=swmulti range=198.18.0.0/22
    pick 270 12 198 18 1024 | sort >"$h270"
    local -a flags
    mapfile -t flags < <(sed 's/^/--host=/' "$h270"; awk 'NR % 3 == 0 { print "--no-echo=" $1 }' "$h270")
    lab_up "$tag" --delay 15ms --jitter 5ms --seed 5 "${flags[@]}" >/dev/null
    trap cleanup EXIT
    local -a names=(nmap netkit nmapPE netkitPE nmapSN netkitSN)
    local -A cmds=(
        [nmap]="nmap -sn -n -PE -PS80,443 -oG - $range | awk '/Status: Up/ { print \$2 }'"
        [netkit]="$NETKIT sweep --alive --method icmp,tcp:80,tcp:443 $range | awk '{ print \$1 }'"
        [nmapPE]="nmap -sn -n -PE --send-ip -oG - $range | awk '/Status: Up/ { print \$2 }'"
        [netkitPE]="$NETKIT sweep --alive $range | awk '{ print \$1 }'"
        [nmapSN]="nmap -sn -n -oG - $range | awk '/Status: Up/ { print \$2 }'"
        [netkitSN]="$NETKIT sweep --alive --method icmp,tcp:443,ack:80,timestamp $range | awk '{ print \$1 }'"
    )
    lab_rounds "$tag" "$h270" "$LAB_ROUNDS" cmds "${names[@]}"
    { lab_exec "$NETKIT" --json sweep --method icmp,tcp:80,tcp:443 "$range" || true; } | tail -1 >"$OUT/$tag.summary"
    lab_down 2>/dev/null
    printf '\nSeveral methods: %s, 30±10 ms, 270 live, 90 of them dropping ICMP echo (%s rounds; ratio = tool / nmap -PE -PS80,443)\n' "$range" "$LAB_ROUNDS"
    lab_row "nmap -sn -PE -PS80,443" "$tag-nmap" "$tag-nmap"
    lab_row "netkit --method icmp,tcp:80,tcp:443" "$tag-netkit" "$tag-nmap"
    lab_row "nmap -sn -PE --send-ip" "$tag-nmapPE" "$tag-nmap"
    lab_row "netkit sweep (icmp)" "$tag-netkitPE" "$tag-nmap"
    lab_row "nmap -sn (root default: -PE -PS443 -PA80 -PP)" "$tag-nmapSN" "$tag-nmap"
    lab_row "netkit --method icmp,tcp:443,ack:80,timestamp" "$tag-netkitSN" "$tag-nmap"
    echo "  netkit's last summary: $(cat "$OUT/$tag.summary")"
}

# --- 6. on-link discovery ----------------------------------------------------------------

# segment: $S with bridge br0 (198.18.0.1/22); 24 hosts $TAG-hQ-K, 198.18.Q.(10K) for Q 0-3,
# K 1-6, each on a veth port of the bridge.
segment() {
    S="$TAG-s"
    ip netns add "$S"
    ip -n "$S" link add br0 type bridge
    ip -n "$S" addr add 198.18.0.1/22 dev br0
    ip -n "$S" link set br0 up
    local q k h
    for q in 0 1 2 3; do
        for k in 1 2 3 4 5 6; do
            h="$TAG-h$q-$k"
            ip netns add "$h"
            ip -n "$S" link add "p$q$k" type veth peer name eth0
            ip -n "$S" link set eth0 netns "$h"
            ip -n "$S" link set "p$q$k" master br0 up
            ip -n "$h" addr add "198.18.$q.$((10 * k))/22" dev eth0
            ip -n "$h" link set eth0 up
        done
    done
}

arp_parts() {
    segment
    printf '\nOn-link discovery: %d interleaved rounds; medians; ratio = tool / arp-scan default\n' "$ROUNDS"
    local range n
    for _ in $(seq "$ROUNDS"); do
        for range in 198.18.0.0/24:6 198.18.0.0/22:24; do
            n=${range#*:} range=${range%:*}
            run "arpscan$n" "$S" "$n" arp-scan -I br0 -x -q "$range"
            run "arpscani$n" "$S" "$n" arp-scan -I br0 -x -q -i 100u "$range"
            # netkit also reports the sweeper's own 198.18.0.1 alive, as nmap does.
            run "netkitarp$n" "$S" "$((n + 1))" "$NETKIT" sweep --alive --method arp "$range"
        done
    done
    for n in 6 24; do
        [ "$n" = 6 ] && echo "198.18.0.0/24 on a bridge, 6 hosts alive, 250 silent"
        [ "$n" = 24 ] && echo "198.18.0.0/22 on a bridge, 24 hosts alive, 1000 silent"
        row "arp-scan (defaults)" "arpscan$n" "arpscan$n"
        row "arp-scan -i 100u (10000/s)" "arpscani$n" "arpscan$n"
        row "netkit sweep --method arp" "netkitarp$n" "arpscan$n"
    done
}

# --- 7. a small range, half the replies lost ----------------------------------------------

small_parts() {
    local tag=swsmall range=198.18.1.0/29 truth="$OUT/h6"
    printf '198.18.1.%d\n' 1 2 3 4 5 6 >"$truth"
    local -a hosts
    mapfile -t hosts < <(sed 's/^/--host=/' "$truth")
    lab_up "$tag" --delay 5ms --direction to-scanner --loss 50% --seed 7 "${hosts[@]}" >/dev/null
    trap cleanup EXIT
    local -a names=(fping fpingr10 nmap netkit)
    local -A cmds=(
        [fping]="fping -a -q -g $range"
        [fpingr10]="fping -a -q -r 10 -g $range"
        [nmap]="nmap -sn -n -PE --send-ip -oG - $range | awk '/Status: Up/ { print \$2 }'"
        [netkit]="$NETKIT sweep --alive $range | awk '{ print \$1 }'"
    )
    lab_rounds "$tag" "$truth" "$SMALL_ROUNDS" cmds "${names[@]}"
    lab_down 2>/dev/null
    printf '\nA small range, half the replies lost: %s, 6 live, 5 ms each way, 50%% loss towards the scanner (%s rounds; ratio = tool / fping default)\n' "$range" "$SMALL_ROUNDS"
    lab_row "fping -g (defaults: -r 3)" "$tag-fping" "$tag-fping"
    lab_row "fping -r 10 -g" "$tag-fpingr10" "$tag-fping"
    lab_row "nmap -sn -PE --send-ip" "$tag-nmap" "$tag-fping"
    lab_row "netkit sweep (defaults)" "$tag-netkit" "$tag-fping"
}

for part in $PARTS; do
    "${part}_parts"
done
