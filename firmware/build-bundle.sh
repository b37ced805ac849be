#!/usr/bin/env bash
# Builds the userland bundle laid on the appliance image: /opt/mlsd (compiled code,
# production node_modules with the smtp-server patch applied, board files) plus the
# rootfs overlay, as one tarball. Usage: firmware/build-bundle.sh [OUT.tar.gz]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/firmware/out/mlsd-bundle.tar.gz}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

cd "$root"
make build >/dev/null
mkdir -p "$stage/opt/mlsd"
cp -a dist board patches package.json package-lock.json README.md "$stage/opt/mlsd/"
(cd "$stage/opt/mlsd" && npm ci --omit=dev --no-audit --no-fund >/dev/null)
cp -a rootfs-overlay/. "$stage/"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -czf "$out" .
echo "bundle: $out ($(du -h "$out" | cut -f1))"
