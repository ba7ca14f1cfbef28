#!/bin/sh
# cluster - this guest becomes node AOE_GUEST_INDEX+1 of a corosync (knet)
# cluster of all AOE_GUEST_COUNT guests and starts dlm_controld (DLM over
# TCP), ready for a GFS2 mount with lock_dlm. Needs the cluster layer
# (ClientSpec::cluster_node). What it took in a busybox guest is written down
# in docs/cluster.md (section 8 of the shared notes).
#
# Cluster network: an address on eth0, 10.88.0.(index+1)/24. The lab
# namespace has no other IP, so that subnet exists only among the guests.
#
# Env: CLUSTER_NAME (aoelab; mkfs.gfs2 -t must name it), CLUSTER_WAIT (s for
#      every node to join, 180), CLUSTER_TOKEN_MS (totem token, 10000: TCG
#      guests stall for seconds, a short token splits the cluster),
#      DLM_CONF_EXTRA (lines appended to /etc/dlm/dlm.conf; fencing stays
#      off unless they turn it on), CLUSTER_EXPECT_FENCED (1: on a later
#      boot, before dlm_controld may unfence it, a raw write must fail).
. /lib/realclient/common.sh
set -u
NAME=${CLUSTER_NAME:-aoelab}
WAIT=${CLUSTER_WAIT:-180}
TOKEN=${CLUSTER_TOKEN_MS:-10000}
IDX=$AOE_GUEST_INDEX
CNT=$AOE_GUEST_COUNT
NODEID=$((IDX + 1))
t0=$(now)

[ -f /lib/modules/cluster.list ] || fail "no cluster layer in the image (ClientSpec::cluster_node)"
while read -r ko; do
    [ -n "$ko" ] || continue
    # crc32c-intel needs SSE4.2, which a TCG CPU may lack: crc32c_generic serves then.
    insmod "/lib/modules/$ko" 2>/tmp/insmod.err ||
        grep -q 'File exists' /tmp/insmod.err ||
        info "insmod $ko: $(cat /tmp/insmod.err)"
done < /lib/modules/cluster.list
grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs none /sys/kernel/config ||
    fail "cannot mount configfs"
mkdir -p /dev/shm /dev/misc /var/lib/corosync /var/log/cluster /run/dlm /etc/corosync /etc/dlm
grep -q ' /dev/shm ' /proc/mounts || mount -t tmpfs tmpfs /dev/shm || fail "cannot mount /dev/shm"
# dlm_controld opens the udev names; devtmpfs puts the nodes elsewhere.
for dev in dlm-control dlm-monitor dlm_plock; do
    minor=$(awk -v d="$dev" '$2 == d { print $1 }' /proc/misc)
    [ -n "$minor" ] || fail "$dev missing from /proc/misc (dlm not loaded?)"
    [ -c "/dev/misc/$dev" ] || mknod "/dev/misc/$dev" c 10 "$minor" || fail "mknod $dev"
done
# dlm and gfs2 report membership changes and journal recovery at KERN_INFO.
echo "7 4 1 7" > /proc/sys/kernel/printk

ip addr add "10.88.0.$NODEID/24" dev eth0 || fail "cannot add the cluster address"
hostname "node$NODEID"

{
    cat <<CONF
totem {
    version: 2
    cluster_name: $NAME
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: $TOKEN
    interface {
        linknumber: 0
        knet_ping_interval: 500
        knet_ping_timeout: 5000
        knet_pong_count: 2
    }
}
logging {
    to_syslog: yes
    to_stderr: no
    to_logfile: no
    timestamp: off
}
quorum {
    provider: corosync_votequorum
CONF
    [ "$CNT" -eq 2 ] && echo "    two_node: 1"
    echo "}"
    echo "nodelist {"
    n=1
    while [ $n -le "$CNT" ]; do
        printf '    node {\n        ring0_addr: 10.88.0.%d\n        name: node%d\n        nodeid: %d\n    }\n' $n $n $n
        n=$((n + 1))
    done
    echo "}"
} > /etc/corosync/corosync.conf
{
    echo "protocol=tcp"
    echo "enable_fencing=0"
    [ -n "${DLM_CONF_EXTRA:-}" ] && printf '%s\n' "$DLM_CONF_EXTRA"
} > /etc/dlm/dlm.conf

# Both daemons log to syslog; its lines reach the console as REALCLIENT-LOG
# (the host times membership, fencing and recovery from them).
(syslogd -n -O - | while read -r l; do echo "REALCLIENT-LOG $l"; done) &
i=0
while [ ! -S /dev/log ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -S /dev/log ] || fail "syslogd did not start"

corosync || fail "corosync did not start"
ticks=0
until corosync-quorumtool -s 2>/dev/null > /tmp/quorum &&
    grep -q '^Quorate: *Yes' /tmp/quorum &&
    [ "$(awk '/^Nodes:/ { print $2 }' /tmp/quorum)" = "$CNT" ]; do
    [ $ticks -ge $((WAIT * 2)) ] && { cat /tmp/quorum; fail "not all $CNT nodes joined within ${WAIT}s"; }
    sleep 0.5
    ticks=$((ticks + 1))
done
metric join_s "$(elapsed "$t0" "$(now)")"
info "corosync: $CNT nodes, quorate"

if [ "${CLUSTER_EXPECT_FENCED:-0}" = 1 ] && [ "$RC_BOOT" -gt 1 ]; then
    # The node was fenced while it was away: the target must refuse its
    # writes (EIO at once, not a retry for minutes) until it is unfenced.
    sector=$(((AOE_SECTORS / 2048 - 1) * 2048 + 2047))
    t=$(now)
    dd if=/dev/zero of="$AOE_DEV" bs=512 seek="$sector" count=1 oflag=direct conv=notrunc 2>/tmp/dd.err &&
        fail "a raw write of the fenced node succeeded"
    info "fenced node's raw write refused after $(elapsed "$t" "$(now)")s: $(tr '\n' ' ' < /tmp/dd.err)"
    grep -q 'Input/output error' /tmp/dd.err || fail "fenced write failed without EIO: $(cat /tmp/dd.err)"
    metric fenced_write_refused 1
fi

dlm_controld || fail "dlm_controld did not start"
ticks=0
until dlm_tool status > /tmp/dlm.status 2>&1; do
    [ $ticks -ge $((WAIT * 2)) ] && { cat /tmp/dlm.status; fail "dlm_controld not ready within ${WAIT}s"; }
    sleep 0.5
    ticks=$((ticks + 1))
done
metric ready_s "$(elapsed "$t0" "$(now)")"
: > /run/cluster.ready
event "cluster-ready node=$NODEID"
exit 0
