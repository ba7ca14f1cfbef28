#!/usr/bin/env bash
# The seed's experiment: blades each limited to B MB/s with tc tbf (both
# directions), MTU 9000; sequential write then read through the appliance with
# `aoeraid bench` from a front-end port, against the model (stripe elements × B).
#
#   sudo benches/appliance_raid.sh [--rate MBps] [--span MiB] [--runs N]
#        [--policies "ppl resync"] [--small-bs 8K] [LEVEL...]
#
# LEVEL: raid10 (8 blades, 4 mirrored stripe elements), raid0 (8 blades),
# raid5 (5 blades), raid6 (6 blades), pass (RAID 0 over one blade vs the blade directly),
# rebuild (RAID 10 of 8 blades plus a spare: a member is failed, the spare
# rebuilds; its rate idle and under a saturating client write load, and the
# client's throughput under rebuild against its unloaded throughput).
# Default: raid10 raid0 raid5 raid6 pass rebuild. Prints one line per level with
# medians over --runs runs (default 3). AOERAID_BIN=path uses a prebuilt binary.
#
# RAID 5/6 run once per consistency policy in --policies (default "ppl resync":
# the partial-parity log on, then off), each also with random --small-bs writes
# (5 s per run) against the read-modify-write model: every small write moves its
# bytes twice each way on RAID 5 (data and P), three times on RAID 6 (and Q), so
# N·B/2 (RAID 5) or N·B/3 (RAID 6) of client writes; with the log, P's member also
# takes the entry (4 KiB header + the write's partial parity), which the line's
# "log model" counts: N·B·s/(3s + 4 KiB) on RAID 5, N·B·s/(4s + 4 KiB) on RAID 6.
#
# Chunks: RAID 0/10 64 KiB, RAID 5/6 16 KiB (CHUNK_RAID10=256KiB etc. override).
# A client keeps at most 64 frames in flight per target (Linux: aoe_maxout),
# about 550 KiB at MTU 9000: the chunk must be small enough that this window
# spans every stripe element, or some blades idle while others queue.
set -euo pipefail

RATE=20
SPAN_MIB=128
RUNS=3
LEVELS=()
POLICIES="ppl resync"
SMALL_BS=8K
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) RATE="$2"; shift ;;
        --policies) POLICIES="$2"; shift ;;
        --small-bs) SMALL_BS="$2"; shift ;;
        --span) SPAN_MIB="$2"; shift ;;
        --runs) RUNS="$2"; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) LEVELS+=("$1") ;;
    esac
    shift
done
[ ${#LEVELS[@]} -gt 0 ] || LEVELS=(raid10 raid0 raid5 raid6 pass rebuild)
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${AOERAID_BIN:-}" ]; then
    BIN="$AOERAID_BIN"
else
    (cd "$ROOT" && cargo build --release --bin aoeraid >&2)
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/aoeraid"
fi

NS="aoebench-$$"
DIR="/dev/shm/aoebench-$$"
PIDS=()
DAEMON=""
cleanup() {
    set +e
    [ -n "$DAEMON" ] && kill -TERM "$DAEMON" 2>/dev/null && sleep 1 && kill -KILL "$DAEMON" 2>/dev/null
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$DIR" "$DIR".*
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# in_ns, ns_bridges_up, port.
. "$ROOT/scripts/lib/netns.sh"

# Bytes per second → tbf with a 20 ms bucket (at least a few jumbo frames).
tbf() { # tbf DEV MBps
    local bits=$(($2 * 8))mbit burst=$(( $2 * 1000000 / 50 ))
    [ "$burst" -ge 40000 ] || burst=40000
    in_ns tc qdisc replace dev "$1" root tbf rate "$bits" burst "$burst" latency 50ms
}

lab_up() { # lab_up NBLADES(shelf 0..1 spread) BLADE_MIB
    mkdir -p "$DIR/state"
    ns_bridges_up
    local i shelf slot n
    for i in $(seq 0 $(($1 - 1))); do
        shelf=$((i % 2)); slot=$((i / 2)); n="e$shelf-$slot"
        port "$n" back0
        tbf "$n" "$RATE"        # blade → appliance (reads)
        tbf "p$n" "$RATE"       # appliance → blade (writes)
        truncate -s "$(($2 << 20))" "$DIR/$n.img"
        ip netns exec "$NS" vblade "$shelf" "$slot" "$n" "$DIR/$n.img" >"$DIR/$n.log" 2>&1 &
        PIDS+=($!)
    done
    port ini0 back0; port tgt0 front0; port cli0 front0
    port bcl0 back0     # a client on the back segment: the blades directly
}

lab_down() {
    [ -n "$DAEMON" ] && { kill -TERM "$DAEMON"; wait "$DAEMON" 2>/dev/null || true; DAEMON=""; }
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DIR"
}

appliance() { # appliance LEVEL "MEMBERS" CHUNK [EXTRA_ARRAY_KEYS [SPARE_GROUPS_LINE]]
    cat >"$DIR/a.yaml" <<EOF
appliance: {name: bench, state_dir: $DIR/state, control_socket: $DIR/ctl.sock, metrics_listen: "127.0.0.1:9721"}
backend: {interfaces: [ini0], dead_after: 10s}
frontend: {interfaces: [tgt0]}
${5:-}
arrays:
  - {name: a, level: $1, chunk: $3, members: [$2], allow_same_shelf_mirrors: true${4:+, $4}}
volumes:
  - {name: v, arrays: [a], export: {shelf: 7, slot: 0}}
EOF
    in_ns "$BIN" create --config "$DIR/a.yaml" --assume-clean >/dev/null
    ip netns exec "$NS" "$BIN" run --config "$DIR/a.yaml" >"$DIR/daemon.log" 2>&1 &
    DAEMON=$!
    for _ in $(seq 100); do
        in_ns "$BIN" status --config "$DIR/a.yaml" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    cat "$DIR/daemon.log" >&2
    return 1
}

# CPU ticks (user + system) the appliance daemon has used so far.
daemon_ticks() {
    local p
    p=$(pgrep -P "$DAEMON" | head -1 || true)
    awk '{print $14 + $15}' "/proc/${p:-$DAEMON}/stat" 2>/dev/null || echo 0
}

mbps() { # mbps DEVICE RW [IFACE [KEY [BENCH ARGS...]]] → MB/s of one run
    local dev="$1" rw="$2" iface="${3:-cli0}" key="${4:-$2}" t0 t1 out
    shift $(($# < 4 ? $# : 4))
    [ $# -gt 0 ] || set -- --bs 256K --qd 32 --bytes "$((SPAN_MIB << 20))"
    [ -n "$DAEMON" ] && t0=$(daemon_ticks)
    out=$(in_ns "$BIN" bench --iface "$iface" --device "$dev" --rw "$rw" --span "$((SPAN_MIB << 20))" \
        "$@" --json 2>/dev/null)
    if [ -n "$DAEMON" ] && [ "$dev" = e7.0 ]; then
        # The daemon's CPU seconds per GB the client moved (front end + engine +
        # back end, one data-path thread) and µs per client request (AoE frame
        # of 8 KiB + 512 B at MTU 9000).
        t1=$(daemon_ticks)
        awk -v t="$((t1 - t0))" -v clk="$(getconf CLK_TCK)" \
            -v b="$(echo "$out" | sed -n 's/.*"bytes": *\([0-9]*\).*/\1/p' | head -1)" \
            'BEGIN { s = t / clk; if (b > 0) printf "%.2f %.1f\n", s / (b / 1e9), s * 1e6 / (b / 8704) }' \
            >>"$DIR.cpu.$key"
    fi
    echo "$out" | sed -n 's/.*"mb_per_s": *\([0-9.]*\).*/\1/p' | head -1
}

# "CPU s/GB, µs/request" medians of the daemon over the runs of RW, then forgets them.
cpu_of() {
    [ -f "$DIR.cpu.$1" ] || { echo "n/a"; return; }
    echo "$(awk '{print $1}' "$DIR.cpu.$1" | median) s/GB $(awk '{print $2}' "$DIR.cpu.$1" | median) us/req"
    rm -f "$DIR.cpu.$1"
}

# "SECONDS BYTES": a timestamp and the bytes the rebuild has read so far from
# the surviving half of the failed member's mirror pair (e0.3 for e1.3). The
# client load is write-only, so every read of that member is a rebuild read;
# the status's done ratio is no measure (it counts array units, and the units
# of the other pairs are passed over at no cost).
rebuilt_at() {
    local b
    b=$(in_ns python3 -c '
import urllib.request
for line in urllib.request.urlopen("http://127.0.0.1:9721/metrics").read().decode().splitlines():
    if line.startswith("aoeraid_member_io_bytes_total{member=\"e0.3\",op=\"read\"}"):
        print(int(float(line.split()[-1])))' 2>/dev/null)
    echo "$(date +%s.%N) ${b:-0}"
}

# Is a rebuild running? (status JSON)
rebuilding() {
    in_ns "$BIN" status --config "$DIR/a.yaml" --json 2>/dev/null | python3 -c '
import json, sys
print(json.load(sys.stdin)["arrays"][0]["rebuild"]["action"])' | grep -q rebuild
}

rate_between() { # rate_between "T0 B0" "T1 B1" → MB/s
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
        if (y[1] > x[1]) printf "%.1f", (y[2] - x[2]) / (y[1] - x[1]) / 1e6; else print 0 }'
}

# rebuild_run: fails one member of a RAID 10 with a spare, then measures the
# rebuild rate under a client write load (bench for SECS) and idle (SECS).
# Under load the engine holds the rebuild to its minimum rate, which the
# operator chooses: here 0.35 × B (MINPCT=35, percent of B). The new member's link carries client writes
# plus rebuild writes (at most B together), and sequential client writes go
# at the pace of the slowest mirror pair, so the client keeps about
# 1 − (rebuild rate / B) of its unloaded throughput.
# Prints "loaded_rebuild_MBps client_MBps idle_rebuild_MBps".
rebuild_run() {
    local bs=$((SPAN_MIB << 20)) s0 s1 s2 client bench_pid
    lab_up 9 400
    appliance raid10 "$members8" "${CHUNK_RAID10:-64KiB}" \
        "spare_group: sg, rebuild: {min: $((RATE * ${MINPCT:-35} / 100))MB/s, max: $((RATE * 10))MB/s}" \
        "spare_groups: {sg: [e0.4]}"
    in_ns "$BIN" fail --config "$DIR/a.yaml" a e1.3 >/dev/null
    for _ in $(seq 50); do rebuilding && break; sleep 0.1; done
    # Under load: a 6 s client write bench; the rebuild is sampled over its
    # middle 3 s, once the client is past discovery and at full rate.
    ip netns exec "$NS" "$BIN" bench --iface cli0 --device e7.0 --rw write --span "$bs" --bs 256K \
        --qd 32 --seconds 6 --json >"$DIR/loaded.json" 2>/dev/null &
    bench_pid=$!
    sleep 2
    s0=$(rebuilt_at)
    sleep 3
    s1=$(rebuilt_at)
    wait "$bench_pid" || true
    client=$(sed -n 's/.*"mb_per_s": *\([0-9.]*\).*/\1/p' "$DIR/loaded.json" | head -1)
    # Idle: the engine goes back to its maximum rate 100 ms after the last client I/O.
    sleep 0.5
    s1=${s1:-0 0}
    local i0; i0=$(rebuilt_at)
    sleep 4
    s2=$(rebuilt_at)
    echo "$(rate_between "$s0" "$s1") ${client:-0} $(rate_between "$i0" "$s2")"
    lab_down
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }

measure() { # measure DEVICE RW [IFACE] → median MB/s
    local i
    for i in $(seq "$RUNS"); do mbps "$1" "$2" "${3:-cli0}"; done | median
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

runs_of() { awk '{ printf "%s%.1f", (NR > 1 ? " " : ""), $1 }' "$1"; }

# parity_run LEVEL NBLADES MEMBERS CHUNK PARITY: one line per policy, written and
# read sequentially (full stripes) and with random small writes, policies
# interleaved run by run so the box's load falls on both alike.
parity_run() {
    local level="$1" n="$2" members="$3" chunk="$4" np="$5" pol i sbytes
    sbytes=$(numfmt --from=iec "${SMALL_BS%B}" 2>/dev/null || echo 8192)
    for i in $(seq "$RUNS"); do
        for pol in $POLICIES; do
            lab_up "$n" $((SPAN_MIB / 2 + 64))
            appliance "$level" "$members" "$chunk" "consistency_policy: $pol"
            mbps e7.0 write cli0 "$pol.write" >>"$DIR.$pol.w"
            mbps e7.0 read cli0 "$pol.read" >>"$DIR.$pol.r"
            mbps e7.0 write cli0 "$pol.small" --pattern rand --bs "$SMALL_BS" --qd 32 --seconds 5 >>"$DIR.$pol.s"
            lab_down
        done
    done
    local mw=$(((n - np) * RATE)) mr=$((n * RATE))
    local ms; ms=$(awk -v n="$n" -v b="$RATE" -v p="$np" 'BEGIN { printf "%.1f", n * b / (p + 1) }')
    local ml; ml=$(awk -v n="$n" -v b="$RATE" -v p="$np" -v s="$sbytes" \
        'BEGIN { printf "%.1f", n * b * s / ((p + 2) * s + 4096) }')
    for pol in $POLICIES; do
        local w r sm
        w=$(median <"$DIR.$pol.w"); r=$(median <"$DIR.$pol.r"); sm=$(median <"$DIR.$pol.s")
        printf '%-7s write %7.1f MB/s (model %4s, ratio %s)   read %7.1f MB/s (model %4s, ratio %s)\n' \
            "$level/$pol" "$w" "$mw" "$(ratio "$w" "$mw")" "$r" "$mr" "$(ratio "$r" "$mr")"
        printf '%-7s random %s writes %6.1f MB/s (RMW model %s, ratio %s%s)\n' \
            "" "$SMALL_BS" "$sm" "$ms" "$(ratio "$sm" "$ms")" \
            "$([ "$pol" = ppl ] && echo "; with the log's bytes $ml, ratio $(ratio "$sm" "$ml")")"
        printf '%-7s runs: write %s  read %s  small %s (MB/s)\n' "" \
            "$(runs_of "$DIR.$pol.w")" "$(runs_of "$DIR.$pol.r")" "$(runs_of "$DIR.$pol.s")"
        printf '%-7s daemon CPU: write %s   read %s   small writes %s\n' "" \
            "$(cpu_of "$pol.write")" "$(cpu_of "$pol.read")" "$(cpu_of "$pol.small")"
        rm -f "$DIR.$pol.w" "$DIR.$pol.r" "$DIR.$pol.s"
    done
}

members8="e0.0, e1.0, e0.1, e1.1, e0.2, e1.2, e0.3, e1.3"
echo "blades limited to $RATE MB/s each way (tbf), MTU 9000, span $SPAN_MIB MiB, bs 256K qd 32, median of $RUNS"
for level in "${LEVELS[@]}"; do
    case "$level" in
        raid10) lab_up 8 $((SPAN_MIB / 2 + 64)); appliance raid10 "$members8" "${CHUNK_RAID10:-64KiB}"
                mw=$((4 * RATE)); mr=$((4 * RATE)) ;;
        raid0)  lab_up 8 $((SPAN_MIB / 4 + 64)); appliance raid0 "$members8" "${CHUNK_RAID0:-64KiB}"
                mw=$((8 * RATE)); mr=$((8 * RATE)) ;;
        # Parity rotates: reads use every blade; writes carry N − parity data columns.
        raid5)  parity_run raid5 5 "e0.0, e1.0, e0.1, e1.1, e0.2" "${CHUNK_RAID5:-16KiB}" 1
                continue ;;
        raid6)  parity_run raid6 6 "e0.0, e1.0, e0.1, e1.1, e0.2, e1.2" "${CHUNK_RAID6:-16KiB}" 2
                continue ;;
        pass)   lab_up 2 $((SPAN_MIB + 64)); appliance raid0 "e0.0" 256KiB
                direct_w=$(measure e1.0 write bcl0); direct_r=$(measure e1.0 read bcl0)
                mw=${direct_w%.*}; mr=${direct_r%.*} ;;
        rebuild)
            # Unloaded client throughput first, on a healthy array of the same shape.
            lab_up 9 400
            appliance raid10 "$members8" "${CHUNK_RAID10:-64KiB}" "spare_group: sg" "spare_groups: {sg: [e0.4]}"
            unloaded=$(measure e7.0 write)
            lab_down
            : >"$DIR.rebuild"
            for _ in $(seq "$RUNS"); do rebuild_run >>"$DIR.rebuild"; done
            loaded=$(awk '{print $1}' "$DIR.rebuild" | median)
            client=$(awk '{print $2}' "$DIR.rebuild" | median)
            idle=$(awk '{print $3}' "$DIR.rebuild" | median)
            rm -f "$DIR.rebuild"
            printf '%-7s idle %6s MB/s (%s x B)   under load %6s MB/s (%s x B) with the client at %s MB/s (%s x its unloaded %s)\n' \
                rebuild "$idle" "$(ratio "$idle" "$RATE")" "$loaded" "$(ratio "$loaded" "$RATE")" \
                "$client" "$(ratio "$client" "$unloaded")" "$unloaded"
            continue ;;
        *) echo "bench: unknown level $level" >&2; continue ;;
    esac
    w=$(measure e7.0 write)
    r=$(measure e7.0 read)
    printf '%-7s write %7.1f MB/s (model %4s, ratio %s)   read %7.1f MB/s (model %4s, ratio %s)\n' \
        "$level" "$w" "$mw" "$(ratio "$w" "$mw")" "$r" "$mr" "$(ratio "$r" "$mr")"
    printf '%-7s daemon CPU: write %s   read %s\n' "" "$(cpu_of write)" "$(cpu_of read)"
    lab_down
done
