#!/usr/bin/env bash
# Installs the host tools distrotest needs from Debian packages, when missing.
# Idempotent and quiet when everything is there. Usage: scripts/setup.sh [--bench]
set -euo pipefail

packages=(
  qemu-system-x86   # the VMs
  qemu-utils        # qemu-img: overlays, conversions
  mmdebstrap        # image build from Debian packages
  e2fsprogs         # mkfs.ext4 -d, e2fsck, debugfs (tests)
  dosfstools        # mkfs.vfat for the ESP
  mtools
  gdisk             # sgdisk (tests)
  fdisk             # sfdisk (tests)
  xfsprogs          # mkfs.xfs (tests)
  python3           # runs test scripts
  tesseract-ocr     # get_screen_text / wait_for_text
  nix-bin           # tests of the Nix layer
  socat
  tmux              # tests/compat: the interactive driver in a real terminal
  ca-certificates
  docker-registry   # a real OCI registry on 127.0.0.1 for the OCI tests
  btrfs-progs       # btrfs inspect-internal, btrfs check (shape image tests)
  cpio              # initrd overlay tests: cpio -t / -i, test initrds
  zstd              # test initrds (zstd, as Debian's and Ubuntu's)
  xz-utils          # test initrds (xz)
  lz4               # test initrds (lz4 legacy)
  bzip2             # test initrds (bzip2)
)
if [ "${1:-}" = "--bench" ]; then
  packages+=(libguestfs-tools linux-image-amd64)  # virt-customize baseline for the patch benchmark
fi

missing=()
for p in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
sudo=
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The VM tests share the host's Nix store into guests; nix creates it on
# first use, the tests may come first.
[ -d /nix/store ] || $sudo mkdir -p /nix/store
# virtiofs: trixie's Rust virtiofsd in /opt/distrotest/virtiofsd (Debian 12
# has none that runs unprivileged); does nothing when it is there.
$sudo bash "$(dirname "$0")/install-virtiofsd.sh"
