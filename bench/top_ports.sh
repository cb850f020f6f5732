#!/usr/bin/env bash
# Coverage of netkit's top-ports ranking against nmap's: how many of nmap's top-N TCP ports
# (as nmap itself lists them: `nmap -sT --top-ports N -oX -`, scaninfo line, run on 127.0.0.1)
# are in netkit's top-M (crates/netkit/src/ports/data/top_ports.txt, the list the binary embeds).
# nmap's data is only read here, at bench time, from the local nmap install; it is never copied
# into the project. Optional REV compares netkit's list at that git revision too.
# Usage: bench/top_ports.sh [REV]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=crates/netkit/src/ports/data/top_ports.txt
command -v nmap >/dev/null || { echo "needs nmap" >&2; exit 3; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

netkit_list() { grep -v '^[[:space:]]*#' | awk 'NF { print $1 }'; }
netkit_list <"$DATA" >"$WORK/now"
if [[ -n ${1:-} ]]; then git show "$1:$DATA" | netkit_list >"$WORK/then"; fi

for n in 10 100 1000; do
  nmap -sT -Pn -n --max-retries 0 --top-ports "$n" -oX - 127.0.0.1 2>/dev/null |
    python3 -c '
import re, sys
services = re.search(r" services=\"([^\"]*)\"", sys.stdin.read()).group(1)
for item in services.split(","):
    lo, _, hi = item.partition("-")
    for port in range(int(lo), int(hi or lo) + 1):
        print(port)' >"$WORK/nmap$n"
done

overlap() { comm -12 <(head -n "$1" "$2" | sort) <(sort "$3") | wc -l; }
printf '%-24s %12s %12s %13s\n' list "nmap top10" "nmap top100" "nmap top1000"
for which in then now; do
  [[ -f $WORK/$which ]] || continue
  label="netkit ($which)"
  [[ $which == then ]] && label="netkit ($1)"
  for m in 10 100 1000; do
    printf '%-24s %9s/10 %8s/100 %8s/1000\n' "$label top$m" \
      "$(overlap "$m" "$WORK/$which" "$WORK/nmap10")" \
      "$(overlap "$m" "$WORK/$which" "$WORK/nmap100")" \
      "$(overlap "$m" "$WORK/$which" "$WORK/nmap1000")"
  done
done
echo "(--top-source nmap ranks exactly as nmap does: 10/10, 100/100, 1000/1000, checked by"
echo " crates/netkit-cli/tests/cli/scan_top.rs against nmap in the same run)"
