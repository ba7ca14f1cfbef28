#!/usr/bin/env bash
# aoeraid bench against one vblade on a tmpfs file, in a private network
# namespace: req/s and MB/s at QD 1 and 16, MTU 1500 and 9000, reads and
# writes, median of several runs; CPU per request of the bench (getrusage,
# reported by the bench itself) next to vblade's (utime+stime deltas from
# /proc/<pid>/stat). vblade is pinned to CPU 0, the bench to CPU 1.
#
# One request = one frame's worth of data (bs = sectors per frame × 512:
# 1024 B at MTU 1500, 8704 B at MTU 9000), so both sides count the same unit.
#
# Usage (root): benches/initiator_vs_vblade.sh [REPS] [SECONDS]
#   AOERAID=path/to/aoeraid to skip the release build.
set -euo pipefail

REPS=${1:-3}
SECS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${AOERAID:-}" ]]; then
    (cd "$ROOT" && cargo build --release -q --bin aoeraid)
    AOERAID="${CARGO_TARGET_DIR:-$ROOT/target}/release/aoeraid"
fi
[[ $(id -u) == 0 ]] || { echo "needs root (network namespace, AF_PACKET)" >&2; exit 1; }
command -v vblade >/dev/null || { echo "vblade not installed" >&2; exit 1; }

NS="aoebench-$$"
IMG="/dev/shm/aoebench-$$.img"
OUT=$(mktemp -d)
VBPID=""
cleanup() {
    if [[ -n "$VBPID" ]]; then kill "$VBPID" 2>/dev/null || true; wait "$VBPID" 2>/dev/null || true; fi
    ip netns del "$NS" 2>/dev/null || true
    rm -f "$IMG"
    rm -rf "$OUT"
}
trap cleanup EXIT

ip netns add "$NS"
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
nsx ip link add bvb0 type veth peer name bin0
truncate -s 256M "$IMG"
# Pre-fill so reads hit real pages, not holes.
dd if=/dev/zero of="$IMG" bs=1M count=256 conv=notrunc status=none

CLK_TCK=$(getconf CLK_TCK)
vblade_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_vblade() {
    if [[ -n "$VBPID" ]]; then kill "$VBPID"; wait "$VBPID" 2>/dev/null || true; VBPID=""; fi
    # Not through the nsx function: a backgrounded function is a subshell,
    # while `ip netns exec` and taskset exec, so $! is vblade itself.
    ip netns exec "$NS" taskset -c 0 vblade 0 0 bvb0 "$IMG" >"$OUT/vblade.log" 2>&1 &
    VBPID=$!
    sleep 0.5
    kill -0 "$VBPID" || { cat "$OUT/vblade.log"; exit 1; }
    [[ $(cat "/proc/$VBPID/comm") == vblade ]] || { echo "PID $VBPID is not vblade" >&2; exit 1; }
}

printf '%-5s %-5s %-3s %6s %10s %9s %10s %12s %12s %8s\n' \
    MTU RW QD BS "req/s" "MB/s" "p50_us" "bench_us/req" "vblade_us/req" retrans
for MTU in 1500 9000; do
    for i in bvb0 bin0; do nsx ip link set "$i" mtu "$MTU" up; done
    start_vblade
    SPF=$(( (MTU - 36) / 512 ))
    BS=$(( SPF * 512 ))
    for RW in read write; do
        for QD in 1 16; do
            : >"$OUT/runs"
            for ((r = 0; r < REPS; r++)); do
                t0=$(vblade_ticks "$VBPID")
                nsx taskset -c 1 "$AOERAID" bench --iface bin0 --device 0.0 --rw "$RW" \
                    --pattern seq --bs "$BS" --qd "$QD" --seconds "$SECS" --span 128M \
                    --json >"$OUT/run.json"
                t1=$(vblade_ticks "$VBPID")
                python3 - "$OUT/run.json" "$t0" "$t1" "$CLK_TCK" >>"$OUT/runs" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ticks = int(sys.argv[3]) - int(sys.argv[2])
vb = ticks / int(sys.argv[4]) * 1e6 / max(r["ios"], 1)
print(r["iops"], r["mb_per_s"], r["lat_us"]["p50"], r["cpu_us_per_req"], vb, r["retransmits"], r["errors"])
PY
            done
            python3 - "$OUT/runs" "$MTU" "$RW" "$QD" "$BS" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
med = [statistics.median(c) for c in zip(*rows)]
errors = sum(r[6] for r in rows)
print(f"{sys.argv[2]:<5} {sys.argv[3]:<5} {sys.argv[4]:<3} {sys.argv[5]:>6} {med[0]:>10.0f} {med[1]:>9.1f} "
      f"{med[2]:>10.0f} {med[3]:>12.2f} {med[4]:>12.2f} {med[5]:>8.0f}" + (f"  ERRORS {errors:.0f}" if errors else ""))
PY
        done
    done
done
echo "(medians of $REPS runs of ${SECS}s; vblade on CPU 0, bench on CPU 1; tmpfs-backed 256 MiB file)"
