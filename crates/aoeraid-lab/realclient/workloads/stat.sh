#!/bin/sh
# stat - the device as the aoe driver sees it: sysfs state must be "up",
# aoe-stat (aoetools, run with busybox sh) must list it as up, and the
# driver's view (payload, interfaces, firmware, size) is reported as metrics.
. /lib/realclient/common.sh
set -u
state=$(cat "$AOE_SYSBLK/state" 2>/dev/null) || fail "no $AOE_SYSBLK/state"
metric state "$state"
metric payload "$(cat "$AOE_SYSBLK/payload" 2>/dev/null)"
metric netif "$(cat "$AOE_SYSBLK/netif" 2>/dev/null)"
metric firmware "$(cat "$AOE_SYSBLK/firmware-version" 2>/dev/null)"
metric mac "$(cat "$AOE_SYSBLK/mac" 2>/dev/null)"
metric sectors "$(cat "$AOE_SYSBLK/size" 2>/dev/null)"
[ "$state" = up ] || fail "state is '$state', expected 'up'"
if [ -f /usr/sbin/aoe-stat ]; then
    line=$(sh /usr/sbin/aoe-stat 2>&1 | grep -w "$AOE_TARGET")
    info "aoe-stat: $line"
    echo "$line" | awk '{ print $NF }' | grep -qx up || fail "aoe-stat does not show $AOE_TARGET up: '$line'"
    metric aoe_stat "ok"
else
    info "aoe-stat not in the image (aoetools missing on the host); sysfs check only"
fi
exit 0
