#!/usr/bin/env bash
# Builds the Debian package dist/aoeraid_<version>_amd64.deb with dpkg-deb:
#
#   scripts/package.sh            (AOERAID_BIN=path packages a binary built already)
#
# Contents: /usr/sbin/aoeraid; the systemd units (pointing at /usr/sbin) with the
# network examples; /etc/aoeraid/appliance.yaml as a conffile (the commented
# example); /var/lib/aoeraid; the man pages aoeraid(8) (generated from the command
# line definition) and appliance.yaml(5); bash, zsh and fish completions; the
# Prometheus alert rules, Grafana dashboard and event-program example under
# /usr/share/aoeraid; the fence and resource agents when the tree has them; the
# licenses in /usr/share/doc/aoeraid/copyright.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
arch="$(dpkg --print-architecture)"
out="${DIST_DIR:-$ROOT/dist}"
stage="$out/stage"

if [ -n "${AOERAID_BIN:-}" ]; then
    bin="$AOERAID_BIN"
else
    cargo build --release --locked --bin aoeraid
    bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/aoeraid"
fi

rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$out"
# Files are root-owned in the archive whoever builds it (--root-owner-group below).
umask 022

install -D -m 0755 "$bin" "$stage/usr/sbin/aoeraid"
# Debian ships binaries without debug sections (they belong in a -dbgsym package).
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/sbin/aoeraid"

units="$stage/lib/systemd/system"
mkdir -p "$units"
for u in systemd/*.service systemd/*.target; do
    sed -e 's#/usr/local/bin/aoeraid#/usr/sbin/aoeraid#g' \
        -e 's#file:///usr/local/share/doc/aoeraid/README.md#man:aoeraid(8)#' \
        -e '/^# Install:/,/^#.*systemctl enable --now aoeraid$/d' \
        "$u" >"$units/$(basename "$u")"
    chmod 0644 "$units/$(basename "$u")"
done

install -D -m 0600 appliance.yaml.example "$stage/etc/aoeraid/appliance.yaml"
install -d -m 0700 "$stage/var/lib/aoeraid"

share="$stage/usr/share/aoeraid"
install -D -m 0644 deploy/prometheus/alerts.yaml "$share/prometheus/alerts.yaml"
install -D -m 0644 deploy/grafana/aoeraid.json "$share/grafana/aoeraid.json"
install -D -m 0755 deploy/on-event.example "$share/on-event.example"
for n in systemd/network/*.network; do
    install -D -m 0644 "$n" "$share/network/$(basename "$n")"
done
# Cluster agents, where Pacemaker and dlm_controld look for them.
if [ -f deploy/fence/fence_aoeraid ]; then
    install -D -m 0755 deploy/fence/fence_aoeraid "$stage/usr/sbin/fence_aoeraid"
fi
if [ -f deploy/ocf/appliance ]; then
    install -D -m 0755 deploy/ocf/appliance "$stage/usr/lib/ocf/resource.d/aoeraid/appliance"
fi

# Deliberate departures from lintian's defaults, each with its reason.
install -D -m 0644 /dev/stdin "$stage/usr/share/lintian/overrides/aoeraid" <<'EOF'
# The YAML parser (serde_norway) builds on unsafe-libyaml, a Rust translation of
# libyaml compiled into the binary like every other Rust dependency.
aoeraid: embedded-library libyaml [usr/sbin/aoeraid]
# Export state and the configuration are the appliance's alone (the unit runs
# with UMask=0077 and StateDirectoryMode=0700 for the same reason).
aoeraid: non-standard-dir-perm 0700 != 0755 [var/lib/aoeraid/]
aoeraid: non-standard-file-perm 0600 != 0644 [etc/aoeraid/appliance.yaml]
# The interface units order themselves before the appliance's own target.
aoeraid: systemd-service-file-refers-to-unusual-wantedby-target aoeraid-interfaces.target [lib/systemd/system/aoeraid-iface@.service]
EOF

man="$stage/usr/share/man"
mkdir -p "$man/man8" "$man/man5"
"$bin" manpage --section 8 | gzip -9n >"$man/man8/aoeraid.8.gz"
"$bin" manpage --section 5 | gzip -9n >"$man/man5/appliance.yaml.5.gz"

"$bin" completions bash | install -D -m 0644 /dev/stdin "$stage/usr/share/bash-completion/completions/aoeraid"
"$bin" completions zsh | install -D -m 0644 /dev/stdin "$stage/usr/share/zsh/vendor-completions/_aoeraid"
"$bin" completions fish | install -D -m 0644 /dev/stdin "$stage/usr/share/fish/vendor_completions.d/aoeraid.fish"

doc="$stage/usr/share/doc/aoeraid"
install -d -m 0755 "$doc/examples"
install -m 0644 appliance.yaml.example "$doc/examples/appliance.yaml.example"
install -m 0644 README.md "$doc/README.md"
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: aoeraid"
    echo
    echo "Files: *"
    echo "Copyright: 2026 The aoeraid developers"
    echo "License: MIT or Apache-2.0"
    echo
    echo "License: MIT"
    sed -e 's/^$/./' -e 's/^/ /' LICENSE-MIT
    echo
    echo "License: Apache-2.0"
    echo " On Debian systems, the complete text of the Apache License, Version 2.0"
    echo " can be found in /usr/share/common-licenses/Apache-2.0."
} >"$doc/copyright"
chmod 0644 "$doc/copyright"
# Whoever made the packaged commit, unless DEB_MAINTAINER says otherwise.
maintainer="${DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || true)}"
maintainer="${maintainer:-aoeraid developers <aoeraid@example.org>}"
date_r="$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")"
cat <<EOF | gzip -9n >"$doc/changelog.gz"
aoeraid ($version) unstable; urgency=medium

  * Built from $(git rev-parse --short HEAD 2>/dev/null || echo "a source tree").

 -- $maintainer  $date_r
EOF
chmod 0644 "$doc/changelog.gz"

# The C library is the binary's only shared dependency: require the newest
# symbol version it uses.
glibc="$(objdump -T "$stage/usr/sbin/aoeraid" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' |
    sort -t. -k1,1n -k2,2n | tail -n 1)"
size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
cat >"$stage/DEBIAN/control" <<EOF
Package: aoeraid
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: libc6 (>= $glibc), iproute2
Recommends: vblade, aoetools
Suggests: prometheus, fence-agents, pacemaker
Section: admin
Priority: optional
Description: software RAID appliance for ATA over Ethernet
 aoeraid sits between two Ethernet segments. Behind it, AoE blades
 (EtherDrive shelves, or vblade exporting disks and files) are discovered
 and driven over raw Ethernet; inside it, RAID 0, 1, 10 and 5 arrays and
 concatenations of arrays keep superblocks, write-intent bitmaps and shared
 hot spares, with automatic rebuild, bitmap re-add and scrubbing; in front
 of it, an io_uring AoE target exports each volume as one shelf.slot that
 the Linux aoe driver of several cluster nodes mounts at once.
 .
 Arrays are declared in /etc/aoeraid/appliance.yaml; health goes to
 Prometheus, events to a program of the operator's choice.
EOF
echo "/etc/aoeraid/appliance.yaml" >"$stage/DEBIAN/conffiles"
# The service is not enabled on install: it needs the operator's interfaces and
# arrays first (aoeraid(8), appliance.yaml(5)). Maintainer scripts honour
# DPKG_ROOT, so the package also installs into a scratch root.
cat >"$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
EOF
cat >"$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -rf "${DPKG_ROOT:-}/var/lib/aoeraid"
fi
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"

deb="$out/aoeraid_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
