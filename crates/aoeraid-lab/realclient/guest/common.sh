# common.sh - helpers sourced by the guest workloads (busybox sh).
# WORKLOAD_NAME is exported by /init before each workload runs.

W=${WORKLOAD_NAME:-workload}
metric() { echo "REALCLIENT-METRIC $W $1=$2"; }
info() { echo "REALCLIENT-INFO [$W] $*"; }
event() { echo "REALCLIENT-EVENT $*"; }
fail() { info "FAIL: $*"; exit 1; }
skip() { info "SKIP: $*"; exit 77; }
now() { read -r up _ < /proc/uptime; echo "$up"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# mbps BYTES T0 T1
mbps() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; if (d <= 0) d = 0.01; printf "%.1f", n / 1048576 / d }'; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# max_gap FILE: "GAP START", the longest gap between consecutive times (s of
# uptime, one a line) in FILE and the time it began.
max_gap() {
    awk 'NR > 1 && $1 - p > m { m = $1 - p; at = p } { p = $1 } END { printf "%.2f %s\n", m, (at == "" ? p : at) }' "$1"
}
# long_gaps FILE MIN T0: every gap of more than MIN s between consecutive
# times in FILE, as GAP@START with START in s after T0, comma-separated.
long_gaps() {
    awk -v min="$2" -v t0="$3" 'NR > 1 && $1 - p > min { printf "%s%.2f@%.2f", (n++ ? "," : ""), $1 - p, p - t0 } { p = $1 } END { print "" }' "$1"
}

# pattern COUNT FIRST_LBA TAG SEED: COUNT 512-byte sectors on stdout, each one
# unique: a 64-byte header naming its LBA, the writer tag and the seed, then
# 448 bytes of seed-dependent filler. A misplaced, stale or torn sector shows
# up as a checksum mismatch and its header says where it came from.
pattern() {
    awk -v n="$1" -v base="$2" -v tag="$3" -v seed="$4" 'BEGIN {
        fill = ""
        for (k = 0; k < 7; k++)
            fill = fill sprintf("%-63s\n", "aoeraid lab filler " k " seed " seed " tag " tag)
        for (k = 0; k < n; k++)
            printf "%-63s\n%s", sprintf("AOELAB lba=%014d tag=%04d seed=%010d", base + k, tag, seed), fill
    }'
}

# One sector with O_DIRECT, really. busybox dd takes its buffer from malloc
# below bs=4096 (16-byte aligned); the kernel refuses O_DIRECT from memory
# that is not 512-byte aligned (EINVAL), and dd then quietly drops O_DIRECT
# and goes through the page cache: a one-sector write becomes a read and a
# write of its whole 4 KiB page, which loses a neighbour's write made in
# between by another initiator. With bs=4096 the buffer is mmapped (page
# aligned) and count_bytes/seek_bytes/skip_bytes move 512 bytes only.

# sector_read DEV SECTOR: the 512 bytes of one sector on stdout (O_DIRECT).
sector_read() {
    dd if="$1" bs=4096 skip=$(($2 * 512)) count=512 iflag=skip_bytes,count_bytes,direct 2>/dev/null
}

# sector_write DEV SECTOR FILE: the first 512 bytes of FILE to one sector
# with O_DIRECT. For the AoE device it also checks, in the device's I/O
# statistics, that exactly one sector went out (no page-cache fallback);
# call it only while nothing else in this guest writes to the device.
sector_write() {
    before=$(sectors_written "$1")
    dd if="$3" of="$1" bs=4096 count=512 iflag=count_bytes seek=$(($2 * 512)) \
        oflag=seek_bytes,direct conv=notrunc 2>/tmp/sector_write.err ||
        { cat /tmp/sector_write.err; return 1; }
    [ -n "$before" ] || return 0
    moved=$(($(sectors_written "$1") - before))
    [ "$moved" = 1 ] || { info "sector_write $2: $moved sectors went out for one (no O_DIRECT?)"; return 1; }
}

# sectors_written DEV: sectors written so far (/sys/block/*/stat field 7) when
# DEV is the AoE device, else nothing.
sectors_written() {
    [ "$1" = "${AOE_DEV:-}" ] && [ -n "${AOE_SYSBLK:-}" ] && awk '{ print $7 }' "$AOE_SYSBLK/stat"
}

# sector_head DEV_OR_FILE SECTOR [LEN]: first LEN (default 64) bytes of one
# sector, read with O_DIRECT when it is the block device.
sector_head() {
    if [ -b "$1" ]; then
        sector_read "$1" "$2" | head -c "${3:-64}"
    else
        dd if="$1" bs=512 skip="$2" count=1 2>/dev/null | head -c "${3:-64}"
    fi
}

# first_diff_sector A B: index of the first 512-byte sector where A and B differ
first_diff_sector() {
    off=$(cmp "$1" "$2" 2>/dev/null | awk '{ print $5 }' | tr -d ,)
    [ -n "$off" ] && echo $(((off - 1) / 512))
}

# barrier N [GUESTS]: this guest has reached barrier N; waits (BARRIER_WAIT s,
# default 300) until every guest in GUESTS (default all of this boot) has.
# The markers live in the device's last MiB, one 4 KiB block per guest and
# barrier (block 32 + 8N + guest of that MiB: N < 28, at most 8 guests),
# written and polled with O_DIRECT and tagged with RC_SEED, so that a marker
# of an earlier run never counts. Whole page-aligned blocks (bs=4096: real
# O_DIRECT, see sector_read), so no two guests ever write within one page.
# Workloads that use it leave that MiB alone; gfs2.sh meets in the mounted
# filesystem instead while GFS2 is mounted (with the old bs=512 reads, which
# fell back to the page cache, the markers looked stale there for minutes).
barrier() {
    _n=$1
    _all=${2:-$(seq 0 $((AOE_GUEST_COUNT - 1)))}
    _blk=$(((AOE_SECTORS / 2048 - 1) * 256 + 32 + _n * 8))
    _wait=${BARRIER_WAIT:-300}
    printf 'RC-BARRIER n=%03d guest=%04d seed=%010d' "$_n" "$AOE_GUEST_INDEX" "${RC_SEED:-0}" > /tmp/barrier.mark
    dd if=/tmp/barrier.mark of=/tmp/barrier.blk bs=4096 count=1 conv=sync 2>/dev/null
    dd if=/tmp/barrier.blk of="$AOE_DEV" bs=4096 seek=$((_blk + AOE_GUEST_INDEX)) count=1 \
        oflag=direct conv=notrunc 2>/dev/null || fail "barrier $_n: writing the marker failed"
    _t0=$(now)
    for _g in $_all; do
        _m=$(printf 'RC-BARRIER n=%03d guest=%04d seed=%010d' "$_n" "$_g" "${RC_SEED:-0}")
        poll_until "$_wait" "barrier $_n: guest $_g" sector_is $(((_blk + _g) * 8)) "$_m"
    done
    info "barrier $_n passed after $(elapsed "$_t0" "$(now)")s"
}

# sector_is SECTOR TEXT: the device's sector SECTOR starts with TEXT (O_DIRECT).
sector_is() {
    [ "$(sector_head "$AOE_DEV" "$1" ${#2})" = "$2" ]
}

# poll_until SECONDS WHAT COMMAND...: runs COMMAND four times a second until
# it succeeds; fails the workload ("WHAT: not within SECONDS s") if it never does.
poll_until() {
    _limit=$1
    _what=$2
    shift 2
    _ticks=0
    until "$@"; do
        [ $_ticks -ge $((_limit * 4)) ] && fail "$_what: not within ${_limit}s"
        sleep 0.25
        _ticks=$((_ticks + 1))
    done
}

# fence_options: fence_aoeraid's options for the export on eth0, nodes named
# as corosync names them (nodeN, N = guest index + 1) with their MACs from
# RC_GUEST_MACS. By name, not by node id: dlm_controld also passes
# nodename=, which the agent prefers to node=; plug= (in the connect lines)
# comes before both.
fence_options() {
    _h=
    _n=1
    for _m in $RC_GUEST_MACS; do
        _h="$_h${_h:+;}node$_n=$_m"
        _n=$((_n + 1))
    done
    echo "target=$AOE_TARGET interface=eth0 hosts=$_h"
}

# fence_action ACTION NODEID: runs fence_aoeraid as dlm_controld would (the
# options as key=value lines on stdin); its exit status.
fence_action() {
    fence_options | tr ' ' '\n' | { cat; echo "action=$1"; echo "plug=node$2"; } |
        /usr/local/sbin/fence_aoeraid
}
