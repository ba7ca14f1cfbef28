#!/usr/bin/env bash
# Debian packages the lab, the real-client tests and the tools need.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: run as root (network namespaces, vblade and qemu need it)" >&2
    exit 1
fi
pkgs=(vblade aoetools iproute2 ethtool qemu-system-x86 linux-image-amd64 busybox-static
      e2fsprogs cpio kmod xz-utils zstd tshark util-linux procps prometheus systemd)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
