#!/usr/bin/env bash
# A GFS2 cluster of qemu guests on the appliance, measured through the test
# harness (tests/realclient_gfs2.rs; root, qemu, corosync/dlm-controld/
# gfs2-utils installed; AOERAID_QEMU_ACCEL=kvm where KVM works):
#
#   failover    a node killed under load (the fencing test): each survivor
#               console line about membership (corosync), fencing
#               (dlm_controld running fence_aoeraid) and journal recovery
#               (gfs2), with its time after the kill as the host read it
#               (consoles polled every 100 ms)
#   throughput  clusters of 1, 2 and 3 nodes on one export, every node
#               writing then reading GFS2_BENCH_MB (32) at once: per-node and
#               summed MB/s as the guests measured them
#
#   sudo benches/gfs2_cluster.sh [failover] [throughput]     (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
what=("$@")
[ ${#what[@]} -gt 0 ] || what=(failover throughput)
for w in "${what[@]}"; do
    case "$w" in
        failover)
            cargo test --test realclient_gfs2 gfs2_node_killed_fenced_and_back -- --exact --nocapture 2>&1 |
                grep -E '^GFS2-TIMELINE|^test result' ;;
        throughput)
            cargo test --test realclient_gfs2 gfs2_throughput_by_nodes -- --ignored --exact --nocapture 2>&1 |
                grep -E '^GFS2-THROUGHPUT|^test result' ;;
        *) echo "gfs2_cluster.sh: unknown measurement '$w' (failover, throughput)" >&2; exit 2 ;;
    esac
done
