#!/usr/bin/env bash
# aoeraid serve vs vblade on the same RAM-backed store, driven by aoeraid bench.
#
# Store: a file on tmpfs behind a loop device (io_uring on tmpfs itself is
# punted to kernel workers; through the loop device it is a block device).
# Network: one veth pair in a private namespace. Target pinned to CPU 0,
# client to CPU 1 (taskset). Matrix: MTU 1500/9000 x read/write x QD 1/16,
# REPS repetitions of SECS seconds each; medians printed, then ratios.
# Writes are compared against `vblade -s` (O_SYNC: durable before the
# reply), since aoeraid acknowledges only durable writes.
# Target CPU per request = (utime+stime delta of the target pid) / requests;
# client CPU per request is the bench's own (`cpu_us_per_req`). On veth each
# side's sends run the other side's receive path in the sender's context, so
# each figure includes the peer's receive.
#
# Usage: sudo benches/target_vs_vblade.sh [REPS] [SECS]   (root; vblade, taskset, python3)
# Env: AOERAID=path/to/aoeraid (default target/release/aoeraid), SIZE_MB (default 256),
#      SERVE_ARGS (extra `aoeraid serve` options, e.g. "--buffered" or "--threads 2"),
#      STORE=ext4: serve a regular file on an ext4 file system (itself on the loop
#      device) instead of the loop device: page-cached, as a new user runs it
#      (`aoeraid serve`'s default is then buffered, O_DIRECT being its default for
#      block devices only)
#      MTUS, RWS, QDS: a part of the matrix (default "1500 9000", "read write", "1 16")
#      PATTERN=seq: sequential requests instead of random ones (default rand)
#      BASE=path/to/other/aoeraid: also serve with that build ("base"), interleaved with
#      the other two in every repetition, for before/after comparisons in one run (the
#      client is always $AOERAID, unless BASE_CLIENT=1: then the base cells' client is
#      $BASE too, so "base" is the old build on both sides, for changes to the client)
#      PERF_DIR=dir: during every QD 16 cell, `perf record -g` both CPUs (target on 0,
#      client on 1) into dir/KIND-MTU-RW.data and print the top symbols of the
#      server and of the client (veth runs each side's receive inside the other's
#      send, so a side's profile holds its peer's receive path)
#      TRACE_DIR=dir: during every QD 1 cell, trace transmits, wake-ups, switches and
#      syscalls on both CPUs for 1 s into dir/KIND-MTU-RW.data and print the median
#      per-request timeline of the server (benches/qd1_timeline.py): where a lone
#      request's time goes between the client's transmit and the reply's
set -euo pipefail

REPS=${1:-3}
SECS=${2:-4}
SIZE_MB=${SIZE_MB:-256}
HERE=$(cd "$(dirname "$0")/.." && pwd)
AOERAID=${AOERAID:-$HERE/target/release/aoeraid}
[ -x "$AOERAID" ] || { echo "build first: cargo build --release --bin aoeraid (or set AOERAID)"; exit 1; }
for t in vblade taskset python3 losetup ip; do command -v $t >/dev/null || { echo "missing $t"; exit 1; }; done

NS=aoebench-$$
WORK=$(mktemp -d /tmp/aoebench.XXXXXX)
LOOP=""
SRV=""
cleanup() {
    [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    umount "$WORK/fs" 2>/dev/null || true
    [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null || true
    # The loop device lets go of its file asynchronously after an ext4 unmount.
    for _ in $(seq 25); do umount "$WORK/ram" 2>/dev/null && break; sleep 0.2; done
    # Still busy on a loaded box: detach it; the kernel frees it when the loop lets go.
    mountpoint -q "$WORK/ram" && umount -l "$WORK/ram"
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

mkdir -p "$WORK/ram"
mount -t tmpfs -o size=$((SIZE_MB + 16))m tmpfs "$WORK/ram"
dd if=/dev/zero of="$WORK/ram/store" bs=1M count="$SIZE_MB" status=none
LOOP=$(losetup --find --show "$WORK/ram/store")
# What both servers export: the loop device, or a file on ext4 over it.
EXPORT=$LOOP
if [ "${STORE:-}" = ext4 ]; then
    # 4 KiB blocks as on any real disk (mkfs picks 1 KiB for a device this small,
    # and ext4 writes then walk four buffer heads per page).
    mkfs.ext4 -q -F -b 4096 "$LOOP"
    mkdir -p "$WORK/fs"
    mount "$LOOP" "$WORK/fs"
    dd if=/dev/zero of="$WORK/fs/store" bs=1M count=$((SIZE_MB - 48)) status=none
    EXPORT=$WORK/fs/store
fi
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add tgt0 type veth peer name cli0
ip -n "$NS" link set tgt0 up
ip -n "$NS" link set cli0 up
NSX="ip netns exec $NS"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
CLK=$(getconf CLK_TCK)

start_server() { # kind mtu write
    local kind=$1
    if [ "$kind" = aoeraid ] || [ "$kind" = base ]; then
        local bin=$AOERAID
        [ "$kind" = base ] && bin=$BASE
        $NSX taskset -c 0 "$bin" serve --iface tgt0 --shelf 1 --slot 1 \
            --state-dir "$WORK/state" ${SERVE_ARGS:-} "$EXPORT" >"$WORK/serve.log" 2>&1 &
    elif [ "$3" = write ]; then
        $NSX taskset -c 0 vblade -s 1 1 tgt0 "$EXPORT" >"$WORK/serve.log" 2>&1 &
    else
        $NSX taskset -c 0 vblade 1 1 tgt0 "$EXPORT" >"$WORK/serve.log" 2>&1 &
    fi
    SRV=$!
    sleep 0.5
    # ip netns exec forks: find the real server (child of the wrapper, or itself).
    local child
    child=$(pgrep -P "$SRV" | head -1 || true)
    SPID=${child:-$SRV}
}

stop_server() {
    kill "$SRV" 2>/dev/null || true
    wait "$SRV" 2>/dev/null || true
    SRV=""
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for mtu in ${MTUS:-1500 9000}; do
    ip -n "$NS" link set tgt0 mtu $mtu
    ip -n "$NS" link set cli0 mtu $mtu
    bs=$(( (mtu - 36) / 512 * 512 ))
    for rw in ${RWS:-read write}; do
        # Repetitions interleave the two servers, so load from elsewhere on the
        # box hits both alike.
        for rep in $(seq "$REPS"); do
            for kind in aoeraid ${BASE:+base} vblade; do
                start_server $kind $mtu $rw
                client=$AOERAID
                [ "$kind" = base ] && [ -n "${BASE_CLIENT:-}" ] && client=$BASE
                for qd in ${QDS:-1 16}; do
                    t0=$(cpu_ticks "$SPID")
                    PERF_PID=""
                    if [ -n "${PERF_DIR:-}" ] && [ "$qd" = 16 ]; then
                        mkdir -p "$PERF_DIR"
                        PERF_OUT=$PERF_DIR/$kind-$mtu-$rw.data
                        perf record -q -g -C 0,1 -o "$PERF_OUT" -- sleep "$SECS" 2>/dev/null &
                        PERF_PID=$!
                    fi
                    TRACE_PID=""
                    if [ -n "${TRACE_DIR:-}" ] && [ "$qd" = 1 ]; then
                        mkdir -p "$TRACE_DIR"
                        TRACE_OUT=$TRACE_DIR/$kind-$mtu-$rw.data
                        # Half a second in, for one second of the cell.
                        (sleep 0.5; perf record -q -C 0,1 -o "$TRACE_OUT" -e net:net_dev_start_xmit \
                            -e sched:sched_wakeup -e sched:sched_switch -e raw_syscalls:sys_enter \
                            -e raw_syscalls:sys_exit -- sleep 1) 2>/dev/null &
                        TRACE_PID=$!
                    fi
                    out=$($NSX taskset -c 1 "$client" bench --iface cli0 --device 1.1 --rw $rw \
                        --pattern "${PATTERN:-rand}" --bs $bs --qd $qd --seconds "$SECS" --span 128M --json 2>/dev/null || true)
                    t1=$(cpu_ticks "$SPID")
                    if [ -n "$TRACE_PID" ]; then
                        wait "$TRACE_PID" || true
                        echo "== timeline $kind mtu $mtu $rw qd 1 (median per step) =="
                        perf script --ns -i "$TRACE_OUT" -F comm,pid,tid,cpu,time,event,trace 2>/dev/null \
                            >"$TRACE_OUT.txt" || true
                        python3 "$HERE/benches/qd1_timeline.py" "$TRACE_OUT.txt" || true
                    fi
                    if [ -n "$PERF_PID" ]; then
                        wait "$PERF_PID" || true
                        # The server by its pid; the client by its name on CPU 1.
                        for sel in "--pid $SPID" "--cpu 1 --comm $(basename "$client" | cut -c1-15)"; do
                            echo "== perf $kind mtu $mtu $rw qd 16, ${sel%% *}: self % of its samples =="
                            # shellcheck disable=SC2086
                            perf report -i "$PERF_OUT" $sel --no-children --percentage relative --sort sym \
                                --percent-limit 1.5 --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25 || true
                        done
                    fi
                    python3 - "$kind" "$mtu" "$rw" "$qd" "$rep" "$((t1 - t0))" "$CLK" "$out" >>"$RESULTS" <<'PY'
import json, sys
kind, mtu, rw, qd, rep, ticks, clk, out = sys.argv[1:]
try:
    r = json.loads(out)
except Exception:
    print(f"{kind}\t{mtu}\t{rw}\t{qd}\t{rep}\tnan\tnan\tnan\tnan\tnan\tnan"); sys.exit()
ios = r["ios"] or 1
cpu_us = int(ticks) / int(clk) * 1e6 / ios
print(f'{kind}\t{mtu}\t{rw}\t{qd}\t{rep}\t{r["iops"]:.0f}\t{r["mb_per_s"]:.1f}\t{r["lat_us"]["p50"]}\t{cpu_us:.2f}\t{r["cpu_us_per_req"]:.2f}\t{r["errors"] + r["mismatches"]}')
PY
                done
                stop_server
                # What `aoeraid serve` merged (its exit line; base builds may lack it).
                if [ "$kind" != vblade ]; then
                    m=$(grep -o 'merged_ops=[0-9]* merged_requests=[0-9]*' "$WORK/serve.log" || true)
                    if [ -n "$m" ]; then echo "$kind mtu $mtu $rw rep $rep: $m"; fi
                fi
            done
        done
    done
done

echo "load average at start: $LOAD0, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RESULTS" <<'PY'
import sys, statistics as st, math
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
agg = {}
for kind, mtu, rw, qd, rep, iops, mbs, p50, cpu, ccpu, errs in rows:
    agg.setdefault((kind, mtu, rw, qd), []).append((float(iops), float(mbs), float(p50), float(cpu), float(ccpu), float(errs)))
def med(vals, i):
    v = [x[i] for x in vals if not math.isnan(x[i])]
    return st.median(v) if v else float("nan")
print(f"{'server':8} {'mtu':>5} {'rw':6} {'qd':>3} {'req/s':>9} {'MB/s':>8} {'p50 us':>7} {'cpu us/req':>10} {'client us':>9} {'errors':>6}")
for (kind, mtu, rw, qd), v in sorted(agg.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][3], kv[0][0])):
    print(f"{kind:8} {mtu:>5} {rw:6} {qd:>3} {med(v,0):9.0f} {med(v,1):8.1f} {med(v,2):7.0f} {med(v,3):10.2f} {med(v,4):9.2f} {med(v,5):6.0f}")
print()
for kind in ("aoeraid", "base"):
    if not any(k[0] == kind for k in agg):
        continue
    print(f"ratios {kind}/vblade (medians):")
    for mtu in ("1500", "9000"):
        for rw in ("read", "write"):
            for qd in ("1", "16"):
                a, b = agg.get((kind, mtu, rw, qd)), agg.get(("vblade", mtu, rw, qd))
                if a and b:
                    print(f"  mtu {mtu} {rw:5} qd {qd:>2}: req/s x{med(a,0)/max(med(b,0),1e-9):.2f}  "
                          f"MB/s x{med(a,1)/max(med(b,1),1e-9):.2f}  p50 latency x{med(a,2)/max(med(b,2),1e-9):.2f}")
print()
print("goals: mtu1500 qd16 read req/s >= 2.5x vblade; mtu9000 MB/s >= 1.6x; aoeraid cpu <= 2 us/req; qd1 latency <= vblade")
PY
