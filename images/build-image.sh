#!/usr/bin/env bash
# Assembles a Facility Edge GPT disk image from Debian arm64 packages and our
# aarch64 binaries, without root-only tools, loop devices or Docker:
# packages are unpacked with dpkg-deb (no maintainer scripts run), file
# systems are made with `mkfs.ext4 -d` and mtools, and the GPT is written by
# sfdisk into a plain file. `cargo xtask image` calls this and then makes the
# release artefacts (bundle, .img.zst, .bmap, SHA256SUMS) from what it leaves.
#
# Usage: build-image.sh KIND BIN_DIR OUT_DIR CACHE_DIR VERSION
#   KIND      edge (the facility's edge box) or tablet (a resident tablet or
#             wall kiosk running the kiosk shell full screen)
#   BIN_DIR   directory holding the aarch64 edge-agent (edge) or tablet-shell (tablet)
#   OUT_DIR   receives disk.img, rootfs.ext4, vmlinuz, initrd.img, data-empty.ext4
#   CACHE_DIR apt lists and downloaded .debs (reused between builds)
#   VERSION   X.Y.Z, written to os-release and the boot entry
# Environment:
#   UPDATE_KEY  the release public key update bundles must be signed with
#   COMPATIBLE  the hardware string bundles must name (facility-edge-aarch64)
set -euo pipefail
: "${UPDATE_KEY:?UPDATE_KEY must name the release public key}" "${COMPATIBLE:?COMPATIBLE must be set}"

KIND=$1 BIN_DIR=$(realpath "$2") OUT=$3 CACHE=$4 VERSION=$5
HERE=$(dirname "$(realpath "$0")")
mkdir -p "$OUT" "$CACHE"
OUT=$(realpath "$OUT") CACHE=$(realpath "$CACHE")

# Partition sizes in MiB. The ESP holds two uncompressed kernels (~32 MiB
# each: the arm64 EFI stub cannot boot a gzip image) and their initrds.
ESP_MIB=160 ROOT_MIB=320 DATA_MIB=256

# tzdata: calling hours are decided in the facility's time zone.
# systemd-boot: systemd-bless-boot and its generator, which confirm a slot on trial.
ROOT_PACKAGES="systemd systemd-sysv systemd-boot udev mount e2fsprogs kmod tzdata"
BOOT_PACKAGES="linux-image-arm64 systemd-boot-efi busybox-static"
# Modules loaded by the initramfs (disk, root and data file systems, watchdog)
# and later by the root (network, ESP, EFI variables for boot counting).
INITRD_MODULES="virtio_pci virtio_blk crc32c_generic ext4 i6300esb softdog"
ROOT_MODULES="$INITRD_MODULES virtio_net virtio_rng vfat nls_cp437 nls_ascii efivarfs"
case $KIND in
  edge)
    BINARY=edge-agent SERVICE_USER=edge
    UNITS="edge-agent.service facility-firstboot.service facility-health.service facility-update.path"
    ;;
  tablet)
    BINARY=tablet-shell SERVICE_USER=kiosk
    UNITS="facility-kiosk.service facility-kiosk-firstboot.service facility-tablet-health.service"
    # The kiosk's C libraries: Slint's linuxkms backend (libinput, udev,
    # xkbcommon and its keymaps, fontconfig) and the call media (GStreamer:
    # the v4l2 camera and VP8 in -good, x264 in -ugly, the H.264 decoder in -libav).
    # coreutils: install and echo for the first-boot and health units.
    ROOT_PACKAGES="$ROOT_PACKAGES coreutils libinput10 libxkbcommon0 xkb-data libfontconfig1 libgstreamer1.0-0
      libgstreamer-plugins-base1.0-0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good
      gstreamer1.0-plugins-ugly gstreamer1.0-libav"
    # The display (DRM/KMS) and the touch screen and keys (evdev).
    ROOT_MODULES="$ROOT_MODULES virtio_gpu virtio_input evdev"
    ROOT_MIB=640
    ;;
  *) echo "build-image.sh: unknown image kind '$KIND' (edge or tablet)" >&2; exit 2 ;;
esac

log() { echo "build-image: $*" >&2; }

# --- packages --------------------------------------------------------------
# shellcheck source=cross/arm64-apt.sh
. "$HERE/../cross/arm64-apt.sh"
arm64_apt_init "$CACHE"
deb_of() { arm64_deb_of "$1"; }
# shellcheck disable=SC2086
ROOT_CLOSURE=$(arm64_closure $ROOT_PACKAGES)
# shellcheck disable=SC2086
BOOT_CLOSURE=$(arm64_closure $BOOT_PACKAGES | grep -E '^(linux-image-[0-9].*|systemd-boot-efi|busybox-static)$')
# shellcheck disable=SC2086
arm64_download $ROOT_PACKAGES $BOOT_PACKAGES

WORK=$OUT/work
rm -rf "$WORK"
mkdir -p "$WORK"
{
  echo "# Debian arm64 packages in root (version $VERSION)"
  for p in $ROOT_CLOSURE; do basename "$(deb_of "$p")"; done
  echo "# boot"
  for p in $BOOT_CLOSURE; do basename "$(deb_of "$p")"; done
} > "$OUT/packages.txt"

# --- kernel and modules ------------------------------------------------------
KERNEL_PKG=$(echo "$BOOT_CLOSURE" | grep '^linux-image-[0-9]')
mkdir -p "$WORK/kernel"
dpkg-deb -x "$(deb_of "$KERNEL_PKG")" "$WORK/kernel"
KVER=$(ls "$WORK/kernel/lib/modules")
depmod -b "$WORK/kernel" "$KVER"
cp "$WORK/kernel/boot/vmlinuz-$KVER" "$OUT/vmlinuz"

# Copies the named modules and everything they depend on (modules.dep) into
# DEST/lib/modules/KVER and regenerates the dependency index there.
install_modules() {
  local dest=$1 mods=$2 src=$WORK/kernel/lib/modules/$KVER want=() seen=" " m f path
  for m in $mods; do want+=("$m"); done
  while [ ${#want[@]} -gt 0 ]; do
    m=${want[0]}; want=("${want[@]:1}")
    case $seen in *" $m "*) continue ;; esac
    seen="$seen$m "
    path=$(awk -F: -v m="$m" '{n=$1; sub(/.*\//,"",n); sub(/\.ko.*$/,"",n); gsub(/-/,"_",n)} n==m {print $1; exit}' "$src/modules.dep")
    if [ -z "$path" ]; then
      grep -q "/$m.ko" "$src/modules.builtin" || { log "module $m: not found"; exit 1; }
      continue
    fi
    mkdir -p "$dest/lib/modules/$KVER/$(dirname "$path")"
    cp "$src/$path" "$dest/lib/modules/$KVER/$path"
    for f in $(awk -F: -v p="$path" '$1==p {print $2}' "$src/modules.dep"); do
      f=${f##*/}; f=${f%%.ko*}; want+=("${f//-/_}")
    done
  done
  cp "$src"/modules.{builtin,builtin.modinfo,order} "$dest/lib/modules/$KVER/"
  depmod -b "$dest" "$KVER"
}

# --- initramfs ---------------------------------------------------------------
INITRD=$WORK/initrd
mkdir -p "$INITRD"/{bin,dev,proc,sys,newroot}
dpkg-deb --fsys-tarfile "$(deb_of busybox-static)" | tar -x -C "$WORK" ./bin/busybox
cp "$WORK/bin/busybox" "$INITRD/bin/busybox"
for applet in sh mount umount mkdir modprobe switch_root sleep cat echo grep ls reboot; do
  ln -s busybox "$INITRD/bin/$applet"
done
install_modules "$INITRD" "$INITRD_MODULES"
install -m 0755 "$HERE/initramfs-init" "$INITRD/init"
(cd "$INITRD" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$OUT/initrd.img"

# --- root file system ----------------------------------------------------------
ROOT=$WORK/root
mkdir -p "$ROOT"
for p in $ROOT_CLOSURE; do dpkg-deb -x "$(deb_of "$p")" "$ROOT"; done
# Merged /usr, as a Debian install ends up: packages still ship /bin, /lib, /sbin.
for d in bin sbin lib; do
  if [ -d "$ROOT/$d" ] && [ ! -L "$ROOT/$d" ]; then
    mkdir -p "$ROOT/usr/$d"
    cp -a "$ROOT/$d/." "$ROOT/usr/$d/"
    rm -rf "${ROOT:?}/$d"
  fi
  ln -sfn "usr/$d" "$ROOT/$d"
done
install_modules "$ROOT/usr" "$ROOT_MODULES"
# Documentation, translations and udev's hardware database sources (whose
# compiled form a maintainer script would build) are no use on an appliance.
rm -rf "$ROOT"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion,zsh} "$ROOT"/usr/lib/udev/hwdb.d

install -D -m 0755 "$BIN_DIR/$BINARY" "$ROOT/usr/bin/$BINARY"
# Symbols stay with the build ($BINARY.debug), not on every device.
aarch64-linux-gnu-objcopy --only-keep-debug "$ROOT/usr/bin/$BINARY" "$OUT/$BINARY.debug"
aarch64-linux-gnu-strip --strip-all "$ROOT/usr/bin/$BINARY"
install -D -m 0644 "$UPDATE_KEY" "$ROOT/usr/share/facility-edge/update-keys/release.pub"
echo "$COMPATIBLE" > "$ROOT/usr/share/facility-edge/compatible"
cp -a "$HERE/rootfs/common/." "$ROOT/"
cp -a "$HERE/rootfs/$KIND/." "$ROOT/"
mkdir -p "$ROOT"/{data,efi,proc,sys,dev,run,tmp,var,home,root,mnt,srv}
chmod 1777 "$ROOT/tmp"
: > "$ROOT/etc/machine-id"
ln -sf ../proc/self/mounts "$ROOT/etc/mtab"
cat > "$ROOT/usr/lib/os-release" <<EOF
NAME="Facility Edge"
ID=facility-edge
ID_LIKE=debian
PRETTY_NAME="Facility Edge $VERSION ($KIND)"
VERSION_ID=$VERSION
IMAGE_ID=facility-$KIND
IMAGE_VERSION=$VERSION
EOF
ln -sf ../usr/lib/os-release "$ROOT/etc/os-release"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\n' > "$ROOT/etc/group"
printf 'root:*:19000:0:99999:7:::\n' > "$ROOT/etc/shadow"
printf 'root:*::\n' > "$ROOT/etc/gshadow"
systemd-sysusers --root="$ROOT" >&2
systemctl --root="$ROOT" set-default multi-user.target >&2
# shellcheck disable=SC2086
systemctl --root="$ROOT" enable systemd-networkd.service $UNITS >&2
# No logins anywhere: no getty on the serial console or VTs, no emergency shell.
systemctl --root="$ROOT" mask getty.target serial-getty@.service getty@.service console-getty.service \
  systemd-firstboot.service emergency.service rescue.service emergency.target rescue.target \
  systemd-networkd-wait-online.service >&2

# Sized to its contents: the slot partition keeps its full size, but update
# bundles carry (and boxes download) only the file system itself.
ROOT_USED_MIB=$(du -sm "$ROOT" | cut -f1)
ROOT_FILES=$(find "$ROOT" | wc -l)
ROOTFS_MIB=$((ROOT_USED_MIB * 11 / 10 + 16))
[ "$ROOTFS_MIB" -le "$ROOT_MIB" ] || { log "root needs ${ROOTFS_MIB} MiB, slot has ${ROOT_MIB}"; exit 1; }
log "root file system: ${ROOT_USED_MIB} MiB in ${ROOT_FILES} files -> ${ROOTFS_MIB} MiB ext4"
rm -f "$OUT/rootfs.ext4"
mkfs.ext4 -q -F -L "root" -O ^has_journal -N $((ROOT_FILES + 1024)) -E root_owner=0:0 -d "$ROOT" \
  "$OUT/rootfs.ext4" "${ROOTFS_MIB}M"

# --- data partition (empty: provisioning writes its own) --------------------
DATA=$WORK/data
# The service's own directory: the agent's state on an edge box, the device
# identity and settings on a tablet.
mkdir -p "$DATA/$SERVICE_USER" "$DATA/provision"
SERVICE_UID=$(awk -F: -v u="$SERVICE_USER" '$1==u{print $3}' "$ROOT/etc/passwd")
[ -n "$SERVICE_UID" ] || { log "no $SERVICE_USER user in the root file system (sysusers.d)"; exit 1; }
chown "$SERVICE_UID:$SERVICE_UID" "$DATA/$SERVICE_USER"
chmod 0700 "$DATA/$SERVICE_USER"
mkfs.ext4 -q -F -L data -d "$DATA" "$OUT/data-empty.ext4" "${DATA_MIB}M"
echo "$SERVICE_UID" > "$OUT/$SERVICE_USER-uid"

# --- ESP ------------------------------------------------------------------------
ESP=$OUT/esp.vfat
rm -f "$ESP"
mkfs.vfat -C -F 32 -n ESP "$ESP" $((ESP_MIB * 1024)) >/dev/null
mkdir -p "$WORK/sdboot"
dpkg-deb -x "$(deb_of systemd-boot-efi)" "$WORK/sdboot"
export MTOOLS_SKIP_CHECK=1
mmd -i "$ESP" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries ::/slots ::/slots/a ::/slots/b
mcopy -i "$ESP" "$WORK/sdboot/usr/lib/systemd/boot/efi/systemd-bootaa64.efi" ::/EFI/BOOT/BOOTAA64.EFI
# `editor no`: nobody at the console may change the kernel command line.
printf 'timeout 0\neditor no\nconsole-mode keep\n' > "$WORK/loader.conf"
mcopy -i "$ESP" "$WORK/loader.conf" ::/loader/loader.conf
mcopy -i "$ESP" "$OUT/vmlinuz" ::/slots/a/vmlinuz
mcopy -i "$ESP" "$OUT/initrd.img" ::/slots/a/initrd.img
cat > "$WORK/entry.conf" <<EOF
title Facility Edge $VERSION (slot a)
version $VERSION
sort-key facility-edge
linux /slots/a/vmlinuz
initrd /slots/a/initrd.img
options root=PARTLABEL=root-a ro facility.slot=a console=ttyAMA0 quiet loglevel=3 systemd.show_status=error
EOF
mcopy -i "$ESP" "$WORK/entry.conf" ::/loader/entries/facility-edge-a.conf

# --- GPT disk ---------------------------------------------------------------------
DISK=$OUT/disk.img
rm -f "$DISK"
TOTAL_MIB=$((1 + ESP_MIB + 2 * ROOT_MIB + DATA_MIB + 1))
truncate -s "${TOTAL_MIB}M" "$DISK"
sfdisk -q "$DISK" <<EOF
label: gpt
first-lba: 2048
start=1MiB, size=${ESP_MIB}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
size=${ROOT_MIB}MiB, type=B921B045-1DF0-41C3-AF44-4C6F280D3FAE, name=root-a
size=${ROOT_MIB}MiB, type=B921B045-1DF0-41C3-AF44-4C6F280D3FAE, name=root-b
size=${DATA_MIB}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=data
EOF
put() { dd if="$1" of="$DISK" bs=1M seek="$2" conv=notrunc,sparse status=none; }
put "$ESP" 1
put "$OUT/rootfs.ext4" $((1 + ESP_MIB))
put "$OUT/data-empty.ext4" $((1 + ESP_MIB + 2 * ROOT_MIB))
cat > "$OUT/layout.env" <<EOF
ESP_OFFSET_MIB=1
ROOT_A_OFFSET_MIB=$((1 + ESP_MIB))
ROOT_B_OFFSET_MIB=$((1 + ESP_MIB + ROOT_MIB))
DATA_OFFSET_MIB=$((1 + ESP_MIB + 2 * ROOT_MIB))
DATA_MIB=$DATA_MIB
ROOT_MIB=$ROOT_MIB
KERNEL_VERSION=$KVER
IMAGE_VERSION=$VERSION
EOF
rm -rf "$WORK"
log "wrote $DISK ($(du -h --apparent-size "$DISK" | cut -f1) apparent, $(du -h "$DISK" | cut -f1) allocated)"
