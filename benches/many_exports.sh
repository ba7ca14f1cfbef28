#!/usr/bin/env bash
# 128 exports in one `aoeraid serve --config` process against 128 vblade
# processes (one per export, as vblade serves one): memory and idle CPU.
#
# Each export is a sparse 64 MiB file on tmpfs, all on one veth interface in a
# private namespace; nothing sends requests (broadcast announcements only).
# After a settling second, CPU is the utime+stime ticks all server processes
# use over IDLE seconds; memory is the sum of VmRSS and of Pss (RSS counts a
# shared page once per process, Pss divides it among them).
#
# Usage: sudo benches/many_exports.sh [COUNT] [IDLE]   (root; vblade, python3)
# Env: AOERAID=path/to/aoeraid (default target/release/aoeraid)
set -euo pipefail

COUNT=${1:-128}
IDLE=${2:-10}
HERE=$(cd "$(dirname "$0")/.." && pwd)
AOERAID=${AOERAID:-$HERE/target/release/aoeraid}
[ -x "$AOERAID" ] || { echo "build first: cargo build --release --bin aoeraid (or set AOERAID)"; exit 1; }
command -v vblade >/dev/null || { echo "missing vblade"; exit 1; }

NS=aoemany-$$
WORK=$(mktemp -d /tmp/aoemany.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    umount "$WORK/ram" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

mkdir -p "$WORK/ram"
mount -t tmpfs -o size=64m tmpfs "$WORK/ram"
for i in $(seq 0 $((COUNT - 1))); do truncate -s 64M "$WORK/ram/d$i"; done
ip netns add "$NS"
ip -n "$NS" link add tgt0 type veth peer name cli0
ip -n "$NS" link set tgt0 up
ip -n "$NS" link set cli0 up
NSX="ip netns exec $NS"

# usage PID... → "rss_kib pss_kib ticks" summed over the processes.
usage() {
    local rss=0 pss=0 ticks=0 p
    for p in "$@"; do
        rss=$((rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")))
        pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
        ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$rss $pss $ticks"
}

# measure NAME PID... → one line: total RSS, total Pss, CPU % of one core idle.
measure() {
    local name=$1 a b
    shift
    sleep 1
    a=$(usage "$@")
    sleep "$IDLE"
    b=$(usage "$@")
    python3 - "$name" "$#" "$a" "$b" "$IDLE" "$(getconf CLK_TCK)" <<'PY'
import sys
name, n, a, b, idle, clk = sys.argv[1:]
a, b = [list(map(int, x.split())) for x in (a, b)]
cpu = (b[2] - a[2]) / int(clk) / float(idle) * 100
print(f"{name:28} {int(n):4} processes  RSS {b[0]/1024:8.1f} MiB  Pss {b[1]/1024:8.1f} MiB  idle CPU {cpu:5.2f} % of a core")
PY
}

# real_pid WRAPPER → the process `ip netns exec` started (its child, or itself).
real_pid() { local c; c=$(pgrep -P "$1" | head -1 || true); echo "${c:-$1}"; }

{
    echo "state_dir: $WORK/state"
    echo "exports:"
    for i in $(seq 0 $((COUNT - 1))); do
        echo "  - {file: $WORK/ram/d$i, shelf: $((i / 16 + 1)), slot: $((i % 16)), interfaces: [tgt0]}"
    done
} >"$WORK/serve.yaml"
$NSX "$AOERAID" serve --config "$WORK/serve.yaml" >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
sleep 1
measure "aoeraid serve --config" "$(real_pid "${PIDS[0]}")"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
PIDS=()

VB=()
for i in $(seq 0 $((COUNT - 1))); do
    $NSX vblade $((i / 16 + 1)) $((i % 16)) tgt0 "$WORK/ram/d$i" >/dev/null 2>&1 &
    PIDS+=($!)
done
sleep 1
for p in "${PIDS[@]}"; do VB+=("$(real_pid "$p")"); done
measure "vblade (one per export)" "${VB[@]}"
