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
