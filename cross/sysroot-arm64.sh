#!/usr/bin/env bash
# Assembles an arm64 sysroot of Debian bookworm -dev packages: the C libraries
# the tablet's kiosk links against (Slint's linuxkms backend: libinput, libudev,
# xkbcommon, fontconfig; the call media: GStreamer), plus libc, so that
# `aarch64-linux-gnu-gcc --sysroot` and pkg-config find arm64 headers and
# libraries without Docker and without adding arm64 to the host's dpkg.
#
# Usage: sysroot-arm64.sh SYSROOT_DIR CACHE_DIR
# Re-running with the same package list is a no-op (a stamp file records it).
set -euo pipefail
SYSROOT=$1 CACHE=$2
HERE=$(dirname "$(realpath "$0")")
# shellcheck source=cross/arm64-apt.sh
. "$HERE/arm64-apt.sh"

DEV_PACKAGES="libc6-dev libgcc-12-dev libinput-dev libudev-dev libxkbcommon-dev libfontconfig-dev \
libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev"
STAMP=$SYSROOT/.facility-sysroot
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$DEV_PACKAGES" ]; then
  exit 0
fi

mkdir -p "$CACHE"
CACHE=$(realpath "$CACHE")
arm64_apt_init "$CACHE"
# shellcheck disable=SC2086
CLOSURE=$(arm64_closure $DEV_PACKAGES)
# shellcheck disable=SC2086
arm64_download $DEV_PACKAGES

rm -rf "$SYSROOT"
mkdir -p "$SYSROOT"
SYSROOT=$(realpath "$SYSROOT")
for p in $CLOSURE; do
  deb=$(arm64_deb_of "$p")
  [ -n "$deb" ] || { echo "sysroot-arm64: no .deb for $p" >&2; exit 1; }
  dpkg-deb -x "$deb" "$SYSROOT"
done
# -dev packages link libfoo.so to an absolute /lib/... or /usr/lib/... path,
# which would point at the host; make them relative inside the sysroot.
find "$SYSROOT" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$SYSROOT$target")" "$link"
done
# bookworm's arm64 packages still ship /lib; the linker looks in both.
echo "$DEV_PACKAGES" > "$STAMP"
echo "sysroot-arm64: $(echo "$CLOSURE" | wc -w) packages, $(du -sh "$SYSROOT" | cut -f1) in $SYSROOT" >&2
