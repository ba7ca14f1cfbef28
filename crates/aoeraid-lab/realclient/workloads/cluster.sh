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
#      CLUSTER_FENCING (1: dlm_controld fences through fence_aoeraid, which
#      the host put in /usr/local/sbin with aoeraid: device/connect/unfence
#      lines for the export on eth0, nodes named nodeN with their MACs from
#      RC_GUEST_MACS; otherwise fencing is off). On a later boot (rc.boot>1)
#      with fencing on, the node expects to come back fenced: a raw write
#      must fail with EIO, then it waits (CLUSTER_WAIT) until a survivor
#      has put it back on the reserve list before dlm_controld starts.
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
FENCING=${CLUSTER_FENCING:-0}
if [ "$FENCING" = 1 ]; then
    # dlm_controld keeps nothing of what its agent prints: this shim runs
    # fence_aoeraid with the same stdin and hands its options, output, exit
    # status and duration to syslog (a REALCLIENT-LOG line).
    cat > /usr/local/sbin/fence_aoeraid_logged <<'SHIM'
#!/bin/sh
export PATH=/usr/local/sbin:/sbin:/bin:/usr/sbin:/usr/bin
cat > /tmp/fence.in.$$
read -r t0 _ < /proc/uptime
/usr/local/sbin/fence_aoeraid "$@" < /tmp/fence.in.$$ > /tmp/fence.out.$$ 2>&1
rc=$?
read -r t1 _ < /proc/uptime
logger -t fence_aoeraid "rc=$rc in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s: $(grep -v '^hosts=' /tmp/fence.in.$$ | tr '\n' ' ')| $(tr '\n' ' ' < /tmp/fence.out.$$)"
rm -f /tmp/fence.in.$$ /tmp/fence.out.$$
exit $rc
SHIM
    chmod 755 /usr/local/sbin/fence_aoeraid_logged
fi
{
    echo "protocol=tcp"
    if [ "$FENCING" = 1 ]; then
        # Every node starts at once: no node may fence another for not
        # having joined yet.
        echo "enable_fencing=1"
        echo "enable_startup_fencing=0"
        echo "device aoe /usr/local/sbin/fence_aoeraid_logged $(fence_options)"
        n=1
        while [ $n -le "$CNT" ]; do
            echo "connect aoe node=$n plug=node$n"
            n=$((n + 1))
        done
        echo "unfence aoe"
    else
        echo "enable_fencing=0"
    fi
} > /etc/dlm/dlm.conf

if [ "$FENCING" = 1 ] && [ "$RC_BOOT" -gt 1 ]; then
    # Fenced while it was away: the target must refuse its writes (EIO at
    # once, not a retry for minutes) until it is unfenced.
    sector=$(((AOE_SECTORS / 2048 - 1) * 2048 + 2040))
    t=$(now)
    dd if=/dev/zero of="$AOE_DEV" bs=4096 seek=$((sector / 8)) count=1 oflag=direct conv=notrunc 2>/tmp/dd.err &&
        fail "a raw write of the fenced node succeeded"
    info "fenced node's raw write refused after $(elapsed "$t" "$(now)")s: $(tr '\n' ' ' < /tmp/dd.err)"
    grep -q 'Input/output error' /tmp/dd.err || fail "fenced write failed without EIO: $(cat /tmp/dd.err)"
    metric fenced_write_refused 1
fi

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

if [ "$FENCING" = 1 ] && [ "$RC_BOOT" -gt 1 ]; then
    # dlm_controld's unfence runs `on` from this node, which the target
    # refuses while it is off the list: a survivor puts it back (gfs2.sh).
    ticks=0
    until fence_action status "$NODEID" > /dev/null 2>&1; do
        [ $ticks -ge $((WAIT * 2)) ] && fail "no survivor unfenced node $NODEID within ${WAIT}s"
        sleep 0.5
        ticks=$((ticks + 1))
    done
    info "unfenced by a survivor"
fi

if [ "$FENCING" = 1 ]; then
    # The agent as dlm_controld will run it, once, where its stderr shows.
    fence_action monitor "$NODEID" > /tmp/fence.out 2>&1 ||
        fail "fence_aoeraid monitor: $(tr '\n' ' ' < /tmp/fence.out)"
    info "fence_aoeraid monitor: ok"
fi
dlm_controld || fail "dlm_controld did not start"
ticks=0
until dlm_tool status > /tmp/dlm.status 2>&1; do
    [ $ticks -ge $((WAIT * 2)) ] && { cat /tmp/dlm.status; fail "dlm_controld not ready within ${WAIT}s"; }
    sleep 0.5
    ticks=$((ticks + 1))
done
# dlm_controld answers before it has given the kernel this node's address
# (a mount right after it starts fails: "no local IP address has been set").
poll_until "$WAIT" "dlm_controld configuring node $NODEID" \
    test -e "/sys/kernel/config/dlm/cluster/comms/$NODEID/addr"
metric ready_s "$(elapsed "$t0" "$(now)")"
: > /run/cluster.ready
event "cluster-ready node=$NODEID"
exit 0
