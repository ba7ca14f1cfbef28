# The namespace lab of the shell scripts (scripts/demo.sh, benches/appliance_raid.sh),
# sourced by them: one network namespace $NS with a back-end and a front-end bridge at
# MTU 9000, and veth ports on them.
#
# Background jobs start with `ip netns exec` itself, not through in_ns: a backgrounded
# function runs in a subshell, so $! would name the subshell and killing it would leave
# the daemon or blade running.

in_ns() { ip netns exec "$NS" "$@"; }

# Creates $NS with lo up and the bridges back0 and front0 (STP off, MTU 9000).
ns_bridges_up() {
    ip netns add "$NS"
    in_ns ip link set lo up
    local br
    for br in back0 front0; do
        in_ns ip link add "$br" type bridge
        in_ns ip link set "$br" type bridge stp_state 0 forward_delay 0
        in_ns ip link set "$br" mtu 9000 up
    done
}

# port NAME BRIDGE: a veth NAME (MTU 9000, up) whose peer pNAME is on BRIDGE.
port() {
    in_ns ip link add "$1" mtu 9000 type veth peer name "p$1" mtu 9000
    in_ns ip link set "p$1" master "$2" up
    in_ns ip link set "$1" up
}
