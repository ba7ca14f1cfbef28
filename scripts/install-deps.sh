#!/usr/bin/env bash
# Installs the Debian packages a task needs, and nothing more:
#   install-deps.sh demo    the demo (scripts/demo.sh): blades and namespaces
#   install-deps.sh soak    the chaos soak (benches/soak.sh): blades, namespaces and
#                           aoetools (the lab sets each blade's config string)
#   install-deps.sh         the whole test suite: the lab, the real Linux client in
#                           qemu, the packaging test, aoetools and tshark as checks,
#                           fence-agents for its metadata schema (fence_aoeraid),
#                           resource-agents for ocf-tester and ocf-shellfuncs
#                           (the OCF agent deploy/ocf/appliance), pacemaker and
#                           pcs for the two-node Pacemaker test (tests/ha_pacemaker.rs)
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (network namespaces, vblade and qemu need it)" >&2
    exit 1
fi
demo=(vblade iproute2 procps util-linux)
soak=("${demo[@]}" aoetools)
tests=("${soak[@]}" ethtool qemu-system-x86 linux-image-amd64 busybox-static
       e2fsprogs cpio kmod xz-utils zstd tshark prometheus systemd
       corosync dlm-controld gfs2-utils pacemaker pacemaker-cli-utils pcs
       dpkg-dev lintian man-db groff-base libxml2-utils fence-agents resource-agents)
case "${1:-tests}" in
    demo) pkgs=("${demo[@]}") ;;
    soak) pkgs=("${soak[@]}") ;;
    tests) pkgs=("${tests[@]}") ;;
    *) echo "install-deps: unknown set '$1' (demo, soak or tests)" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
# The cluster packages are only copied into the qemu guests' images or run
# inside the namespaces of a test's own nodes: a host running corosync,
# dlm_controld, Pacemaker or pcsd (their packages enable them) would be no
# part of any test, and would hold the DLM and corosync ports.
if [ "${1:-tests}" = tests ] && command -v systemctl >/dev/null; then
    systemctl disable --now corosync.service dlm.service pacemaker.service \
        pcsd.service pcsd-ruby.service >/dev/null 2>&1 || true
fi
