#!/bin/sh
# pid 1 of one Pacemaker node of the lab (src/pacemaker.rs), started by
#   unshare --net --mount --uts --ipc --pid --fork --kill-child --propagation private
# so that everything below is the node's alone: NAME is its hostname (the name
# corosync and Pacemaker know it by), DIR on the host holds its files.
#   DIR/var/lib/pacemaker … DIR/usr/lib/ocf/resource.d  bound over the same paths
#   DIR/node                                            bound on /run/node
# /run (pidfiles, the appliance's control socket) and /dev/shm (libqb's IPC
# rings) are fresh tmpfs. Writes DIR/node/ready when done, then reaps orphans
# (daemons that an agent detached end up here) until killed: the kernel then
# kills every process of the node.
set -eu
name=$1
dir=$2
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for d in var/lib/pacemaker var/lib/corosync etc/corosync var/log/pacemaker \
    usr/lib/ocf/resource.d; do
    mount --bind "$dir/$d" "/$d"
done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock /run/node
mount --bind "$dir/node" /run/node
# Last: DIR itself may be under /dev/shm (the lab's files are).
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
hostname "$name"
ip link set lo up
echo ready >/run/node/ready
exec perl -e '$SIG{TERM} = sub { exit 0 }; while (1) { sleep 1 if wait < 0 }'
