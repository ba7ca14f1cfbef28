#!/bin/sh
# smoke - raw block round trip on the AoE device.
#
# 1. SMOKE_MB MiB (default 64) of a per-sector-unique pattern written with
#    O_DIRECT, caches dropped, read back with O_DIRECT and compared.
# 2. Sub-sector writes: short buffered writes at odd byte offsets inside eight
#    sectors (the kernel turns them into read-modify-write of whole sectors),
#    then each sector is read back with O_DIRECT: the patch must be there and
#    the bytes around it must still be the pattern.
# With several guests each one uses its own region (guest index * SMOKE_MB).
#
# Env: SMOKE_MB (64), SMOKE_SEED (host-chosen), SMOKE_BS (1M)
. /lib/realclient/common.sh
set -u
MB=${SMOKE_MB:-64}
SEED=${SMOKE_SEED:-4242}
BS=${SMOKE_BS:-1M}
IDX=${AOE_GUEST_INDEX:-0}
OFF_MB=$((IDX * MB))
FIRST=$((OFF_MB * 2048))
NSECT=$((MB * 2048))
[ "$AOE_SECTORS" -ge $((FIRST + NSECT)) ] ||
    fail "device has $AOE_SECTORS sectors, region needs $((FIRST + NSECT))"
info "region ${OFF_MB}MiB+${MB}MiB seed=$SEED"

PAT=/tmp/smoke.pat
t0=$(now)
pattern "$NSECT" "$FIRST" "$IDX" "$SEED" > "$PAT" || fail "pattern generation"
t1=$(now)
[ "$(wc -c < "$PAT")" -eq $((MB * 1048576)) ] || fail "pattern has the wrong size"
metric pattern_s "$(elapsed "$t0" "$t1")"
want=$(md5sum < "$PAT" | cut -d' ' -f1)

t0=$(now)
dd if="$PAT" of="$AOE_DEV" bs="$BS" seek="$OFF_MB" oflag=direct conv=fsync,notrunc 2>/tmp/dd.err ||
    { cat /tmp/dd.err; fail "O_DIRECT write failed"; }
t1=$(now)
metric write_MBps "$(mbps $((MB * 1048576)) "$t0" "$t1")"

drop_caches
t0=$(now)
got=$(dd if="$AOE_DEV" bs="$BS" skip="$OFF_MB" count="$MB" iflag=direct 2>/tmp/dd.err | md5sum | cut -d' ' -f1)
t1=$(now)
metric read_MBps "$(mbps $((MB * 1048576)) "$t0" "$t1")"
if [ "$got" != "$want" ]; then
    dd if="$AOE_DEV" of=/tmp/smoke.rb bs="$BS" skip="$OFF_MB" count="$MB" iflag=direct 2>/dev/null
    s=$(first_diff_sector "$PAT" /tmp/smoke.rb)
    if [ -n "$s" ]; then
        info "first bad sector $((FIRST + s)): want '$(sector_head "$PAT" "$s" 40)'"
        info "first bad sector $((FIRST + s)): got  '$(sector_head /tmp/smoke.rb "$s" 40 | tr -c '[:print:]' '?')'"
    fi
    cat /tmp/dd.err
    fail "read-back md5 $got != written $want"
fi
info "O_DIRECT round trip of ${MB}MiB ok (md5 $got)"

# ---- sub-sector writes -----------------------------------------------------
n=0
for rel in 3 17 255 256 1023 2049 $((NSECT / 2 + 1)) $((NSECT - 1)); do
    lba=$((FIRST + rel))
    off=$((5 + n * 37))
    printf 'PATCH lba=%d g=%d n=%d' "$lba" "$IDX" "$n" > /tmp/patch
    dd if=/tmp/patch of="$AOE_DEV" bs=1 seek=$((lba * 512 + off)) conv=notrunc 2>/dev/null ||
        fail "sub-sector write at lba $lba failed"
    n=$((n + 1))
done
sync
blockdev --flushbufs "$AOE_DEV"
drop_caches
n=0
for rel in 3 17 255 256 1023 2049 $((NSECT / 2 + 1)) $((NSECT - 1)); do
    lba=$((FIRST + rel))
    off=$((5 + n * 37))
    patch=$(printf 'PATCH lba=%d g=%d n=%d' "$lba" "$IDX" "$n")
    sector_read "$AOE_DEV" "$lba" > /tmp/sect || fail "O_DIRECT read of lba $lba failed"
    dd if="$PAT" of=/tmp/orig bs=512 skip="$rel" count=1 2>/dev/null
    got=$(dd if=/tmp/sect bs=1 skip="$off" count=${#patch} 2>/dev/null)
    [ "$got" = "$patch" ] || fail "lba $lba: patch missing (got '$got')"
    # everything outside the patch must be untouched
    printf '%s' "$patch" | dd of=/tmp/orig bs=1 seek="$off" conv=notrunc 2>/dev/null
    cmp -s /tmp/sect /tmp/orig || fail "lba $lba: bytes around the patch changed"
    n=$((n + 1))
done
info "sub-sector writes ok ($n sectors)"
rm -f "$PAT" /tmp/smoke.rb
exit 0
