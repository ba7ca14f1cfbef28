#!/bin/sh
# ext4 - filesystem round trip on the AoE device.
#
# mkfs.ext4 (inode tables and journal written now, no discard), mount, write a
# tree (text, a random big file that differs per MiB, many small files, a
# sparse file, symlink, hard link), record SHA-256 sums, umount, e2fsck -fn
# must be clean, drop caches, remount, sums must match; then modify (delete,
# append, rename), umount, e2fsck -fn clean again, read-only remount, sums.
# Needs the whole device: skipped (77) when several guests share it.
#
# Env: EXT4_BIG_MB (default 24), EXT4_FILES (default 150)
. /lib/realclient/common.sh
set -u
BIG=${EXT4_BIG_MB:-24}
FILES=${EXT4_FILES:-150}
MNT=/mnt/aoe
[ "${AOE_GUEST_COUNT:-1}" -gt 1 ] && skip "ext4 needs the device alone ($AOE_GUEST_COUNT guests)"
grep -qw ext4 /proc/filesystems || fail "kernel has no ext4"
mkdir -p "$MNT"
cleanup_fail() { umount "$MNT" 2>/dev/null; fail "$@"; }
fsck_clean() {
    t0=$(now)
    e2fsck -fn "$AOE_DEV" > /tmp/fsck.log 2>&1
    rc=$?
    metric "$1_s" "$(elapsed "$t0" "$(now)")"
    [ $rc -eq 0 ] || { cat /tmp/fsck.log; fail "e2fsck -fn ($1) returned $rc"; }
}

t0=$(now)
mkfs.ext4 -F -q -L aoelab -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$AOE_DEV" \
    > /tmp/mkfs.log 2>&1 || { cat /tmp/mkfs.log; fail "mkfs.ext4 failed"; }
metric mkfs_s "$(elapsed "$t0" "$(now)")"
mount -t ext4 "$AOE_DEV" "$MNT" || fail "mount after mkfs failed"

t0=$(now)
echo "written by the aoeraid lab guest $AOE_GUEST_INDEX" > "$MNT/hello.txt"
dd if=/dev/urandom of=/tmp/mib bs=1M count=1 2>/dev/null
: > "$MNT/big.bin"
i=0
while [ $i -lt "$BIG" ]; do
    { printf 'MiB %06d of big.bin\n' "$i"; cat /tmp/mib; } | head -c 1048576 >> "$MNT/big.bin" ||
        cleanup_fail "writing big.bin"
    i=$((i + 1))
done
mkdir -p "$MNT/tree/a/b" "$MNT/tree/c"
i=0
while [ $i -lt "$FILES" ]; do
    d=a; [ $((i % 3)) -eq 0 ] && d=c; [ $((i % 5)) -eq 0 ] && d=a/b
    head -c $((100 + i * 13)) /dev/urandom > "$MNT/tree/$d/f$i" || cleanup_fail "small file $i"
    i=$((i + 1))
done
dd if=/dev/urandom of="$MNT/sparse.bin" bs=4096 count=2 seek=5000 2>/dev/null || cleanup_fail "sparse file"
ln -s hello.txt "$MNT/link" || cleanup_fail "symlink"
ln "$MNT/hello.txt" "$MNT/hard" || cleanup_fail "hard link"
sync
t1=$(now)
metric populate_s "$(elapsed "$t0" "$t1")"
metric populate_MBps "$(mbps $(((BIG + 1) * 1048576)) "$t0" "$t1")"
(cd "$MNT" && find . -type f | sort | xargs sha256sum) > /tmp/sums || cleanup_fail "sha256sum"
info "$(wc -l < /tmp/sums) files, big.bin ${BIG}MiB"
umount "$MNT" || fail "umount failed"
fsck_clean fsck1

drop_caches
mount -t ext4 "$AOE_DEV" "$MNT" || fail "remount failed"
t0=$(now)
(cd "$MNT" && sha256sum -c /tmp/sums > /tmp/verify.log 2>&1) ||
    { grep -v ': OK$' /tmp/verify.log | head -n 20; cleanup_fail "checksums differ after remount"; }
metric verify_s "$(elapsed "$t0" "$(now)")"
[ "$(readlink "$MNT/link")" = hello.txt ] || cleanup_fail "symlink target changed"
[ "$(stat -c %h "$MNT/hello.txt")" = 2 ] || cleanup_fail "hard link count changed"

rm -f "$MNT"/tree/a/f1* || cleanup_fail "delete"
echo "appended after remount" >> "$MNT/hello.txt" || cleanup_fail "append"
mv "$MNT/tree/c" "$MNT/moved" || cleanup_fail "rename"
(cd "$MNT" && find . -type f | sort | xargs sha256sum) > /tmp/sums2 || cleanup_fail "sha256sum 2"
umount "$MNT" || fail "umount 2 failed"
fsck_clean fsck2
drop_caches
mount -t ext4 -o ro "$AOE_DEV" "$MNT" || fail "read-only remount failed"
(cd "$MNT" && sha256sum -c /tmp/sums2 > /tmp/verify.log 2>&1) ||
    { grep -v ': OK$' /tmp/verify.log | head -n 20; cleanup_fail "checksums differ after modify"; }
umount "$MNT" || fail "final umount failed"
info "ext4 round trip ok, e2fsck clean twice"
exit 0
