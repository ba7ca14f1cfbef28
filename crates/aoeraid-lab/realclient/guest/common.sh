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

# sector_head DEV_OR_FILE SECTOR [LEN]: first LEN (default 64) bytes of one
# sector, read with O_DIRECT when it is the block device.
sector_head() {
    if [ -b "$1" ]; then
        dd if="$1" bs=512 skip="$2" count=1 iflag=direct 2>/dev/null | head -c "${3:-64}"
    else
        dd if="$1" bs=512 skip="$2" count=1 2>/dev/null | head -c "${3:-64}"
    fi
}

# first_diff_sector A B: index of the first 512-byte sector where A and B differ
first_diff_sector() {
    off=$(cmp "$1" "$2" 2>/dev/null | awk '{ print $5 }' | tr -d ,)
    [ -n "$off" ] && echo $(((off - 1) / 512))
}
