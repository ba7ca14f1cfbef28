#!/bin/sh
# revalidate - the export grows while the guest runs.
#
# Announces "REALCLIENT-EVENT revalidate-ready" (the host hook then grows the
# export), then asks the driver to re-identify the target once a second
# (aoe-revalidate, i.e. "eS.L" written to /dev/etherd/revalidate) until the
# capacity changes. Passes when sysfs and the block device agree on the new
# size (REVALIDATE_EXPECT_SECTORS if given, else anything larger) and a sector
# beyond the old end can be written and read back with O_DIRECT.
#
# Env: REVALIDATE_EXPECT_SECTORS, REVALIDATE_WAIT (seconds, default 60)
. /lib/realclient/common.sh
set -u
WAIT=${REVALIDATE_WAIT:-60}
EXPECT=${REVALIDATE_EXPECT_SECTORS:-}
old=$(cat "$AOE_SYSBLK/size")
metric old_sectors "$old"
event "revalidate-ready target=$AOE_TARGET sectors=$old"
t0=$(now)
t=0
new=$old
while [ "$t" -lt "$WAIT" ]; do
    if [ -f /usr/sbin/aoe-revalidate ]; then
        sh /usr/sbin/aoe-revalidate "$AOE_TARGET" 2>/dev/null
    else
        echo "$AOE_TARGET" > /dev/etherd/revalidate 2>/dev/null
    fi
    sleep 1
    t=$((t + 1))
    new=$(cat "$AOE_SYSBLK/size")
    if [ -n "$EXPECT" ]; then
        [ "$new" = "$EXPECT" ] && break
    else
        [ "$new" -gt "$old" ] && break
    fi
done
t1=$(now)
metric new_sectors "$new"
metric wait_s "$(elapsed "$t0" "$t1")"
if [ -n "$EXPECT" ]; then
    [ "$new" = "$EXPECT" ] || fail "size is $new sectors after ${WAIT}s, expected $EXPECT"
else
    [ "$new" -gt "$old" ] || fail "size still $new sectors after ${WAIT}s"
fi
bdev=$(blockdev --getsz "$AOE_DEV")
[ "$bdev" = "$new" ] || fail "sysfs says $new sectors, the block device $bdev"
last=$((new - 1))
printf 'REVALIDATED lba=%d' "$last" > /tmp/mark
dd if=/tmp/mark of=/tmp/mark.sect bs=512 count=1 conv=sync 2>/dev/null
sector_write "$AOE_DEV" "$last" /tmp/mark.sect || fail "write of the new last sector $last failed"
got=$(sector_head "$AOE_DEV" "$last" "$(wc -c < /tmp/mark)")
[ "$got" = "$(cat /tmp/mark)" ] || fail "new last sector $last reads back '$got'"
info "grew $old -> $new sectors; last sector writable"
exit 0
