# Shell helpers for bench scripts that need the impaired-link lab (source this file; run as root).
#
#   source bench/lab.sh
#   lab_up scan30 --delay 15ms --jitter 5ms --loss 2% --hosts 198.18.1.0/24 \
#          --open 198.18.1.5:22,80 --drop 198.18.1.5:1000-1999
#   lab_exec "$NETKIT" scan 198.18.1.5 -p all      # runs inside the scanner namespace
#   lab_down                                        # also runs on EXIT (trap set by lab_up)
#
# lab_up starts `netkit-lab up --tag TAG ARGS...` in the background, waits (at most 60 s) for
# its ready line and sets LAB_SCANNER, LAB_ROUTER, LAB_FAR, LAB_BACKEND and LAB_PID. One lab at
# a time per shell. NETKIT_LAB overrides the binary (default: target/release/netkit-lab, built
# on first use). LAB_TAG_PREFIX (environment) goes before every tag, so that two runs of one
# script at once build labs of their own. `netkit-lab up --help` lists every flag.

LAB_PID=
LAB_LOG=

lab_bin() {
  local bin=${NETKIT_LAB:-$PWD/target/release/netkit-lab}
  if [[ ! -x $bin ]]; then
    cargo build --release -q -p netkit-lab >&2 || return 1
  fi
  echo "$bin"
}

# lab_up TAG ARGS...: builds the lab and waits until it is ready.
lab_up() {
  local tag=${LAB_TAG_PREFIX:-}$1 bin line
  shift
  [[ -z $LAB_PID ]] || { echo "lab_up: a lab is already up (pid $LAB_PID)" >&2; return 1; }
  bin=$(lab_bin) || return 1
  LAB_LOG=$(mktemp)
  "$bin" up --tag "$tag" "$@" >"$LAB_LOG.out" 2>"$LAB_LOG" </dev/null &
  LAB_PID=$!
  trap lab_down EXIT
  for _ in $(seq 600); do
    line=$(grep -m1 '^scanner=' "$LAB_LOG.out" 2>/dev/null) && break
    kill -0 "$LAB_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z ${line:-} ]]; then
    echo "lab_up: netkit-lab did not come up:" >&2
    cat "$LAB_LOG" >&2
    lab_down
    return 1
  fi
  for field in $line; do
    case $field in
      scanner=*) LAB_SCANNER=${field#*=} ;;
      router=*) LAB_ROUTER=${field#*=} ;;
      far=*) LAB_FAR=${field#*=} ;;
      backend=*) LAB_BACKEND=${field#*=} ;;
    esac
  done
  export LAB_SCANNER LAB_ROUTER LAB_FAR LAB_BACKEND
}

# lab_exec CMD...: runs CMD inside the scanner namespace (lab_far_exec: the far namespace).
lab_exec() { ip netns exec "$LAB_SCANNER" "$@"; }
lab_far_exec() { ip netns exec "$LAB_FAR" "$@"; }

# lab_down: stops the lab (SIGTERM, then waits at most 10 s) and removes its log.
lab_down() {
  [[ -n $LAB_PID ]] || return 0
  kill -TERM "$LAB_PID" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$LAB_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$LAB_PID" 2>/dev/null; then
    kill -KILL "$LAB_PID" 2>/dev/null || true
    "$(lab_bin)" clean >/dev/null 2>&1 || true
  fi
  wait "$LAB_PID" 2>/dev/null || true
  [[ -s $LAB_LOG ]] && cat "$LAB_LOG" >&2
  rm -f "$LAB_LOG" "$LAB_LOG.out"
  LAB_PID=
}
