#!/usr/bin/env bash
# Builds the clinic node's Debian package from a built binary:
#   packaging/deb/build.sh [--binary PATH] [--out DIR] [--compression xz|gzip|none]
# Defaults: target/release/healsync-node, target/deb, xz. Prints the package's path.
#
# The package installs /usr/bin/healsync-node, the systemd unit (packaging/
# healsync-node.service, hardened), /etc/healsync/node.toml and node.env (conffiles:
# an upgrade keeps the clinic's edits), and makes the `healsync` system account whose
# data directory is /var/lib/healsync (0700, made by systemd's StateDirectory). Purging
# the package keeps /var/lib/healsync: it holds patients' records.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

binary=$root/target/release/healsync-node
out=$root/target/deb
compression=xz
while [ $# -gt 0 ]; do
    case $1 in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --compression) compression=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--out DIR] [--compression xz|gzip|none]" >&2; exit 2 ;;
    esac
done
[ -x "$binary" ] || { echo "no executable at $binary (cargo build --release -p healsync-node)" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is required" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)
arch=$(dpkg --print-architecture)
[ -n "$version" ] || { echo "no workspace version in Cargo.toml" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/healsync-node
install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" \
    "$pkg/etc/healsync" "$pkg/usr/share/doc/healsync-node"
install -m 0755 "$binary" "$pkg/usr/bin/healsync-node"
# Debian ships binaries without debug symbols.
strip --strip-unneeded "$pkg/usr/bin/healsync-node"
install -m 0644 "$root/packaging/healsync-node.service" "$pkg/lib/systemd/system/healsync-node.service"
install -m 0644 "$root/packaging/deb/node.toml" "$pkg/etc/healsync/node.toml"
install -m 0640 "$root/packaging/deb/node.env" "$pkg/etc/healsync/node.env"
install -m 0644 "$root/packaging/deb/copyright" "$pkg/usr/share/doc/healsync-node/copyright"
for script in postinst prerm postrm; do
    install -m 0755 "$root/packaging/deb/$script" "$pkg/DEBIAN/$script"
done
printf '/etc/healsync/node.toml\n/etc/healsync/node.env\n' >"$pkg/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: healsync-node
Version: $version
Architecture: $arch
Maintainer: HealSync <maintainers@healsync.invalid>
Installed-Size: $size
Depends: libc6 (>= 2.34), adduser
Section: misc
Priority: optional
Description: HealSync clinic node
 Runs a clinic's patient management (patients, doctors and schedules,
 appointments, medical records, billing, notifications) on the clinic's own
 network, with or without internet, and syncs with the clinic group's hub.
CONTROL

mkdir -p "$out"
deb=$out/healsync-node_${version}_${arch}.deb
dpkg-deb --root-owner-group -Z"$compression" --build "$pkg" "$deb" >/dev/null
echo "$deb"
