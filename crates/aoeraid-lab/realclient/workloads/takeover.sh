#!/bin/sh
# takeover - a client riding through the takeover of its export by the other
# appliance of an HA pair.
#
# mkfs.ext4 and mount; then for TAKEOVER_S seconds a stream of files, each
# written and fsynced (acknowledged by the appliance), then read back with
# O_DIRECT (from the appliance, not the page cache) and compared. After the
# first TAKEOVER_QUIET_S seconds it says `REALCLIENT-EVENT takeover-writing`:
# the host then kills the active appliance and starts the other one. The
# longest gap between two acknowledged files is the stall the client saw
# (metric max_gap_s, when it began: gap_at_s after the event; every gap over
# 5 s as GAP@START, START in s after the event: long_gaps). At the end
# every file must read back whole after a remount with caches dropped,
# e2fsck -fn must be clean, and the kernel must have logged no I/O error.
#
# Env: TAKEOVER_S (default 60), TAKEOVER_QUIET_S (default 5),
#      TAKEOVER_FILE_KB (default 128), TAKEOVER_MAX_FILES (default 600)
. /lib/realclient/common.sh
set -u
[ "${AOE_GUEST_COUNT:-1}" -gt 1 ] && skip "takeover needs the device alone"
: "${TAKEOVER_S:=60}" "${TAKEOVER_QUIET_S:=5}" "${TAKEOVER_FILE_KB:=128}" "${TAKEOVER_MAX_FILES:=600}"
MNT=/mnt/aoe
mkdir -p "$MNT"
cleanup_fail() { umount "$MNT" 2>/dev/null; fail "$@"; }
io_errors() {
    dmesg | grep -iE 'I/O error|EXT4-fs (error|warning)|aoe: .*(error|fail)' | tail -n 10
}

mkfs.ext4 -F -q -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$AOE_DEV" \
    > /tmp/mkfs.log 2>&1 || { cat /tmp/mkfs.log; fail "mkfs.ext4 failed"; }
mount -t ext4 "$AOE_DEV" "$MNT" || fail "mount after mkfs failed"
mkdir -p "$MNT/w"
dd if=/dev/urandom of=/tmp/block bs=1K count="$TAKEOVER_FILE_KB" 2>/dev/null

: > /tmp/sums
start=$(now)
echo "$start" > /tmp/acks
said=""
event_at=""
i=0
while [ "$i" -lt "$TAKEOVER_MAX_FILES" ]; do
    t=$(now)
    [ "$(elapsed "$start" "$t" | cut -d. -f1)" -ge "$TAKEOVER_S" ] && break
    if [ -z "$said" ] && [ "$(elapsed "$start" "$t" | cut -d. -f1)" -ge "$TAKEOVER_QUIET_S" ]; then
        event "takeover-writing"
        said=1
        event_at=$t
    fi
    f=$(printf '%s/w/f%05d' "$MNT" "$i")
    { printf 'file %05d written at %s\n' "$i" "$t"; cat /tmp/block; } | head -c $((TAKEOVER_FILE_KB * 1024)) > /tmp/next
    dd if=/tmp/next of="$f" bs=64K conv=fsync 2>/tmp/dd.err ||
        { cat /tmp/dd.err; cleanup_fail "writing file $i failed"; }
    sum=$(md5sum < /tmp/next | cut -d' ' -f1)
    echo "$sum  $f" >> /tmp/sums
    back=$(dd if="$f" bs=64K iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1)
    [ "$back" = "$sum" ] || { cat /tmp/dd.err; cleanup_fail "file $i read back wrong"; }
    now >> /tmp/acks
    i=$((i + 1))
done
[ -n "$said" ] || cleanup_fail "the stream ended before the takeover event"
# shellcheck disable=SC2046
set -- $(max_gap /tmp/acks)
gap=$1 gap_at=$2
metric files "$i"
metric max_gap_s "$gap"
metric gap_at_s "$(elapsed "$event_at" "$gap_at")"
metric long_gaps "$(long_gaps /tmp/acks 5 "$event_at")"
info "$i files of ${TAKEOVER_FILE_KB} KiB; longest gap ${gap}s, $(elapsed "$event_at" "$gap_at")s after the event"
e=$(io_errors)
[ -z "$e" ] || { echo "$e"; cleanup_fail "the kernel logged I/O errors"; }

umount "$MNT" || fail "umount failed"
t0=$(now)
e2fsck -fn "$AOE_DEV" > /tmp/fsck.log 2>&1 || { cat /tmp/fsck.log; fail "e2fsck -fn not clean"; }
metric fsck_s "$(elapsed "$t0" "$(now)")"
drop_caches
mount -t ext4 -o ro "$AOE_DEV" "$MNT" || fail "read-only remount failed"
md5sum -c /tmp/sums > /tmp/verify.log 2>&1 ||
    { grep -v ': OK$' /tmp/verify.log | head -n 20; cleanup_fail "files differ after remount"; }
umount "$MNT" || fail "final umount failed"
e=$(io_errors)
[ -z "$e" ] || { echo "$e"; fail "the kernel logged I/O errors"; }
dmesg | grep -E 'aoe: ' | tail -n 8 | sed 's/^/aoe log: /' | while read -r l; do info "$l"; done
info "takeover ridden through: $i files verified, e2fsck clean, no I/O error"
exit 0
