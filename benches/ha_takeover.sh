#!/usr/bin/env bash
# Takeover of an HA pair under a Linux client, measured through the test
# harness (tests/realclient_ha.rs; root, qemu, vblade, aoetools,
# resource-agents): two appliances on one RAID 1 of vblade blades, an ext4
# guest writing fsynced files and reading each back with O_DIRECT; the active
# appliance is SIGKILLed 3 s into the stream, the standby is started through
# the resource agent (deploy/ocf/appliance start = aoeraid run --takeover).
#
# For each monitor interval given (seconds; default "0 5 10") the run prints:
#   detection   the emulated monitor interval: the host waits that long after
#               the kill before it calls start (Pacemaker finds the dead
#               process at its next monitor, at worst one interval later)
#   start-up    B's own split, from its log: discovery, blade claim (the
#               reservation Force Set), assembly (superblocks, bitmaps), exports
#               (export state read from the members, front end up); the
#               resync of dirty regions runs after that, under the client
#   serving     from A's SIGKILL to the agent's start returning (B answers its
#               control socket with every volume exported and announced)
#   stall       the longest gap between two acknowledged files in the guest,
#               and when it began relative to the kill
#
#   sudo benches/ha_takeover.sh [INTERVAL...]
set -euo pipefail
cd "$(dirname "$0")/.."
intervals=("$@")
[ ${#intervals[@]} -gt 0 ] || intervals=(0 5 10)
cargo test --test realclient_ha --no-run >/dev/null 2>&1
for m in "${intervals[@]}"; do
    echo "== monitor interval ${m} s"
    HA_MONITOR_S="$m" cargo test --test realclient_ha ext4_client_rides_through_a_takeover \
        -- --exact --nocapture 2>&1 | grep -E '^takeover:|^test result'
done
