#!/usr/bin/env bash
# The appliance end to end on one machine, no hardware: the seed article's RAID 10.
#
#   scripts/demo.sh [--keep] [--span BYTES]     (AOERAID_BIN=path skips the build)
#
# Builds aoeraid (release), creates a network namespace with ten vblade blades on
# sparse files (shelves 0 and 1, slots 0-4) on a back-end bridge, the appliance
# between that and a front-end bridge, writes the example appliance.yaml (RAID 10
# over e0.0-e0.3/e1.0-e1.3, mirror halves on different shelves, spare group
# e0.4/e1.4, exported as e7.0), runs `aoeraid create` and `aoeraid run`, then a
# verifying client workload from a front-end port, and prints `aoeraid status` and
# where /metrics is. Everything is torn down on exit unless --keep.
set -euo pipefail

KEEP=0
SPAN=$((256 << 20))
BLADE_BYTES=$((256 << 20))
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) KEEP=1 ;;
        --span) SPAN="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "demo: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: run as root (network namespaces and raw AoE sockets need it)" >&2
    exit 1
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NS="aoedemo-$$"
DIR="/dev/shm/aoedemo-$$"          # tmpfs: vblade -s is one sync write per frame
PIDS=()

cleanup() {
    local rc=$?
    if [ "$KEEP" -eq 1 ] && [ $rc -eq 0 ]; then
        echo
        echo "demo: kept namespace $NS and $DIR (daemon pid ${DAEMON_PID:-?})."
        echo "      status:  ip netns exec $NS $BIN status --config $DIR/appliance.yaml"
        echo "      metrics: ip netns exec $NS bash -c 'exec 3<>/dev/tcp/127.0.0.1/9720; printf \"GET /metrics HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3'"
        echo "      remove:  kill ${PIDS[*]:-}; ip netns del $NS; rm -rf $DIR"
        return
    fi
    set +e
    if [ -n "${DAEMON_PID:-}" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID"
        for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$DAEMON_PID" 2>/dev/null
    fi
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$DIR"
    [ $rc -eq 0 ] || echo "demo: failed (exit $rc); logs were in $DIR" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
# in_ns, ns_bridges_up, port.
. "$ROOT/scripts/lib/netns.sh"

step "installing what the demo needs"
"$ROOT/scripts/install-deps.sh" demo

# Run through sudo from a user's checkout, the build runs as that user (with their
# cargo), so target/ stays theirs instead of becoming root's.
as_owner=()
if [ -n "${SUDO_UID:-}" ] && [ "$SUDO_UID" != 0 ] && [ "$(stat -c %u "$ROOT")" = "$SUDO_UID" ]; then
    owner_home="$(getent passwd "$SUDO_UID" | cut -d: -f6)"
    as_owner=(setpriv --reuid="$SUDO_UID" --regid="${SUDO_GID:-$SUDO_UID}" --init-groups
              env HOME="$owner_home" PATH="$owner_home/.cargo/bin:$PATH")
fi

if [ -n "${AOERAID_BIN:-}" ]; then
    BIN="$AOERAID_BIN"          # a binary built already (e.g. by CI)
else
    "${as_owner[@]}" sh -c 'command -v cargo' >/dev/null ||
        { echo "demo: needs Rust >= 1.95 (cargo on PATH, e.g. from rustup)" >&2; exit 1; }
    step "building aoeraid (release)"
    (cd "$ROOT" && "${as_owner[@]}" cargo build --release --bin aoeraid)
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/aoeraid"
fi

step "namespace $NS: back-end and front-end bridges, ten blades"
mkdir -p "$DIR/state"
ns_bridges_up
for shelf in 0 1; do
    for slot in 0 1 2 3 4; do
        n="e$shelf-$slot"
        port "$n" back0
        truncate -s "$BLADE_BYTES" "$DIR/blade-$n.img"
        ip netns exec "$NS" vblade -s "$shelf" "$slot" "$n" "$DIR/blade-$n.img" >"$DIR/vblade-$n.log" 2>&1 &
        PIDS+=($!)
    done
done
port ini0 back0      # the appliance's back-end port
port tgt0 front0     # the appliance's front-end port
port cli0 front0     # a cluster node

step "appliance.yaml (the seed article's RAID 10)"
cat >"$DIR/appliance.yaml" <<EOF
appliance:
  name: rb1
  state_dir: $DIR/state
  control_socket: $DIR/control.sock
  metrics_listen: "127.0.0.1:9720"
backend:  {interfaces: [ini0], dead_after: 5s}
frontend: {interfaces: [tgt0]}
spare_groups:
  shelfspares: [e0.4, e1.4]
arrays:
  - name: data
    level: raid10
    chunk: 256KiB
    # mirror pairs (e0.N, e1.N): a whole shelf can fail
    members: [e0.0, e1.0, e0.1, e1.1, e0.2, e1.2, e0.3, e1.3]
    spare_group: shelfspares
    rebuild: {min: 10MB/s, max: 200MB/s}
volumes:
  - {name: gfs, arrays: [data], export: {shelf: 7, slot: 0}}
EOF
cat "$DIR/appliance.yaml"
"$BIN" check-config "$DIR/appliance.yaml"

step "aoeraid create"
# Fresh sparse blades are zero: mirrors already agree, no initial resync needed.
in_ns "$BIN" create --config "$DIR/appliance.yaml" --assume-clean

step "aoeraid run"
ip netns exec "$NS" "$BIN" run --config "$DIR/appliance.yaml" >"$DIR/aoeraid.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do
    in_ns "$BIN" status --config "$DIR/appliance.yaml" >/dev/null 2>&1 && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$DIR/aoeraid.log"; exit 1; }
    sleep 0.2
done
cat "$DIR/aoeraid.log"

step "client workload: aoeraid bench --rw verify over $((SPAN >> 20)) MiB of e7.0 from cli0"
in_ns "$BIN" bench --iface cli0 --device e7.0 --rw verify --span "$SPAN" --bs 64K --qd 32

step "aoeraid status"
in_ns "$BIN" status --config "$DIR/appliance.yaml"

step "metrics"
echo "Prometheus text format on http://127.0.0.1:9720/metrics inside namespace $NS, e.g.:"
in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/9720; printf "GET /metrics HTTP/1.0\r\n\r\n" >&3; cat <&3' \
    | grep -E '^aoeraid_(array_state|array_degraded|volume_io_bytes_total)' | head -12 || true

echo
echo "demo: done."
