#!/usr/bin/env bash
# Chaos soak: one `aoeraid run` appliance over vblade blades in a lab namespace
# exports RAID 10, RAID 5 and RAID 6 volumes (CRC32C integrity, spares behind each);
# three clients run `aoeraid bench --rw verify` continuously, one per volume, while
# a fault driver pauses, kills and restarts blades, flaps their links, drops,
# reorders and duplicates their frames (the lab's relay), flips bits in their
# backing files (then scrubs), and SIGKILLs the appliance every --crash-every
# seconds. The driver is examples/soak/ (it reuses crates/aoeraid-lab).
#
#   sudo benches/soak.sh [--seconds 300] [--seed 1] [--crash-every 120]
#                        [--rss-growth-mib 32] [--span-mib 24] [--no-integrity]
#
# Prints the faults injected, each client's passes/errors/mismatches/retransmits,
# rebuilds, resyncs and checksum repairs (from the appliance's events), the longest
# silence of a restart, and the daemon's RSS over time. Exits non-zero on a
# mismatch, on any client error (the clients retransmit for 90 s, far longer than a
# restart after SIGKILL, so the restart window shows as retransmits only), on an
# array not clean within 240 s of a fault or inconsistent at the end, or on RSS
# growing more than --rss-growth-mib within one daemon lifetime after it settled.
#
# Builds in the `ci` profile (SOAK_PROFILE overrides); AOERAID_BIN and SOAK_BIN
# use prebuilt binaries instead.
set -euo pipefail
case "${1:-}" in -h|--help) sed -n '2,22p' "$0"; exit 0 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "soak: run as root (namespaces, vblade)" >&2; exit 1; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PROFILE="${SOAK_PROFILE:-ci}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE"
if [ -z "${AOERAID_BIN:-}" ] || [ -z "${SOAK_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --profile "$PROFILE" --bin aoeraid --example soak >&2)
fi
exec "${SOAK_BIN:-$TARGET/examples/soak}" --aoeraid "${AOERAID_BIN:-$TARGET/aoeraid}" "$@"
