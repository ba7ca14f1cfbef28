#!/bin/sh
# halves - several initiators, one device, cross-checked.
#
# The device minus its last MiB is cut into AOE_GUEST_COUNT equal shares
# (whole MiB). Guest i writes a per-sector-unique pattern over share i with
# O_DIRECT and verifies it, then writes its "done" marker into sector
# (last MiB + i) with a one-sector O_DIRECT write: the markers share one 4 KiB
# page, so the target sees initiators write adjacent sectors. Once every other
# guest's marker is there (polled with one-sector O_DIRECT reads: a barrier
# through the device itself), it verifies every other share against the
# pattern that guest must have written.
#
# Env: HALVES_SEED (host-chosen per run; the marker names it, so stale data of
#      an earlier run never satisfies the barrier), HALVES_MB (cap per share),
#      HALVES_WAIT (barrier timeout s, default 180)
. /lib/realclient/common.sh
set -u
SEED=${HALVES_SEED:-777}
WAIT=${HALVES_WAIT:-180}
IDX=${AOE_GUEST_INDEX:-0}
CNT=${AOE_GUEST_COUNT:-1}
TOTAL_MB=$((AOE_SECTORS / 2048))
[ "$TOTAL_MB" -ge $((CNT + 1)) ] || fail "device of ${TOTAL_MB}MiB too small for $CNT shares"
SHARE=$(((TOTAL_MB - 1) / CNT))
[ -n "${HALVES_MB:-}" ] && [ "$HALVES_MB" -lt "$SHARE" ] && SHARE=$HALVES_MB
MARK_BASE=$(((TOTAL_MB - 1) * 2048))
info "guest $IDX/$CNT share ${SHARE}MiB at $((IDX * SHARE))MiB, markers at sector $MARK_BASE"
metric share_MB "$SHARE"

# expected_md5 GUEST: md5 of the pattern guest GUEST writes over its share
expected_md5() {
    pattern $((SHARE * 2048)) $(($1 * SHARE * 2048)) "$1" "$SEED" | md5sum | cut -d' ' -f1
}
share_md5() {
    dd if="$AOE_DEV" bs=1M skip=$(($1 * SHARE)) count="$SHARE" iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1
}
marker() { printf 'HALVES-DONE guest=%04d seed=%010d' "$1" "$SEED"; }

PAT=/tmp/halves.pat
pattern $((SHARE * 2048)) $((IDX * SHARE * 2048)) "$IDX" "$SEED" > "$PAT" || fail "pattern"
want=$(md5sum < "$PAT" | cut -d' ' -f1)
t0=$(now)
dd if="$PAT" of="$AOE_DEV" bs=1M seek=$((IDX * SHARE)) oflag=direct conv=fsync,notrunc 2>/tmp/dd.err ||
    { cat /tmp/dd.err; fail "O_DIRECT write of own share failed"; }
t1=$(now)
metric write_MBps "$(mbps $((SHARE * 1048576)) "$t0" "$t1")"
rm -f "$PAT"
drop_caches
got=$(share_md5 "$IDX")
[ "$got" = "$want" ] || fail "own share reads back md5 $got, wrote $want"
info "own share verified"

marker "$IDX" > /tmp/mark
dd if=/tmp/mark of=/tmp/mark.sect bs=512 count=1 conv=sync 2>/dev/null
sector_write "$AOE_DEV" $((MARK_BASE + IDX)) /tmp/mark.sect || fail "writing the done marker failed"
event "halves-written guest=$IDX"

t0=$(now)
j=0
checked=0
while [ $j -lt "$CNT" ]; do
    if [ $j -ne "$IDX" ]; then
        m=$(marker "$j")
        t=0
        until [ "$(sector_head "$AOE_DEV" $((MARK_BASE + j)) ${#m})" = "$m" ]; do
            [ $t -ge $((WAIT * 2)) ] && fail "guest $j did not finish its share within ${WAIT}s"
            sleep 0.5
            t=$((t + 1))
        done
        drop_caches
        got=$(share_md5 "$j")
        exp=$(expected_md5 "$j")
        [ "$got" = "$exp" ] || fail "share of guest $j reads md5 $got, expected $exp"
        info "share of guest $j verified"
        checked=$((checked + 1))
    fi
    j=$((j + 1))
done
metric other_shares_verified "$checked"
metric cross_s "$(elapsed "$t0" "$(now)")"
exit 0
