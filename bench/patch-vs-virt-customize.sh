#!/usr/bin/env bash
# Usage: bench/patch-vs-virt-customize.sh [IMAGE]
#
# Times `distrotest-gen image patch` against `virt-customize --no-network`
# making the same edits to the same image in one run, and prints both times
# and their ratio. The edits are distrotest's guest plan (exported with the
# hidden `image patch --export-plan`): the same directories, the same files
# uploaded with the same modes, the same symbolic links (units enabled and
# masked). Each tool works on an overlay of IMAGE; IMAGE is not modified.
# `image patch` also extracts the kernel and initrd; virt-customize does not.
#
# IMAGE is a qcow2 or raw disk with an ext4 root, e.g. a Debian cloud image
# or what `distrotest-gen image build debian/13` prints. Without IMAGE a small
# test image is built: GPT, ext4 root made by mkfs.ext4 with this host's
# kernel and initrd from /boot (needs sgdisk, mkfs.ext4).
#
# Environment: DISTRO (default debian/13), RUNS (patch runs, default 5; the
# median is printed), VIRT_RUNS (default 1: virt-customize takes ~25 s).
# virt-customize runs with LIBGUESTFS_BACKEND=direct
# LIBGUESTFS_BACKEND_SETTINGS=force_tcg: /dev/kvm on these machines hangs
# the libguestfs appliance. Needs go, qemu-img and virt-customize
# (Debian package libguestfs-tools).
set -euo pipefail

distro=${DISTRO:-debian/13}
runs=${RUNS:-5}
virt_runs=${VIRT_RUNS:-1}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/distrotest-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

for tool in go qemu-img virt-customize; do
  command -v "$tool" >/dev/null || { echo "$0: $tool not found (virt-customize: apt-get install libguestfs-tools)" >&2; exit 1; }
done

# build_test_image PATH: a GPT disk whose partition 1 is an ext4 root with
# enough of a Debian system for libguestfs' inspection and for the patcher.
build_test_image() {
  local out=$1 tree=$work/tree kernel version
  for tool in sgdisk mkfs.ext4; do
    command -v "$tool" >/dev/null || { echo "$0: $tool not found (apt-get install gdisk e2fsprogs)" >&2; exit 1; }
  done
  kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
  mkdir -p "$tree"/{boot,etc/systemd/system/multi-user.target.wants,etc/systemd/network,opt,usr/bin,usr/sbin,usr/lib/systemd/system,usr/lib/x86_64-linux-gnu/systemd,tmp,var,root}
  ln -s usr/bin "$tree/bin"; ln -s usr/sbin "$tree/sbin"; ln -s usr/lib "$tree/lib"
  if [ -n "$kernel" ] && [ -r "$kernel" ]; then
    version=${kernel#/boot/vmlinuz-}
    cp "$kernel" "$tree/boot/"
    cp "/boot/initrd.img-$version" "$tree/boot/" 2>/dev/null || head -c 32M /dev/urandom >"$tree/boot/initrd.img-$version"
  else
    version=6.12.48+deb13-amd64
    head -c 12M /dev/urandom >"$tree/boot/vmlinuz-$version"
    head -c 32M /dev/urandom >"$tree/boot/initrd.img-$version"
  fi
  printf 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\nID=debian\n' >"$tree/etc/os-release"
  echo 13.1 >"$tree/etc/debian_version"
  echo 'LABEL=root / ext4 rw 0 1' >"$tree/etc/fstab"
  echo bench >"$tree/etc/hostname"
  : >"$tree/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so"
  cp /bin/sh "$tree/usr/bin/sh" 2>/dev/null || true
  local fs=$work/root.ext4
  mkfs.ext4 -q -F -L root -b 4096 -d "$tree" "$fs" 256M >/dev/null
  truncate -s 258M "$work/test.raw"
  sgdisk -n 1:1M:+256M -t 1:8300 "$work/test.raw" >/dev/null
  dd if="$fs" of="$work/test.raw" bs=1M seek=1 conv=notrunc,sparse status=none
  qemu-img convert -f raw -O qcow2 "$work/test.raw" "$out"
  rm -f "$fs" "$work/test.raw"
}

image=${1:-}
if [ -z "$image" ]; then
  image=$work/test.qcow2
  echo "building a test image (no IMAGE given)..." >&2
  build_test_image "$image"
fi
image=$(realpath "$image")
format=$(qemu-img info --output=json "$image" | sed -n 's/^ *"format": "\([a-z0-9]*\)".*/\1/p' | head -n1)

echo "building distrotest-gen..." >&2
(cd "$repo" && go build -o "$work/distrotest-gen" ./cmd/distrotest-gen)
gen=$work/distrotest-gen
"$gen" image patch --export-plan "$work/plan"

now() { date +%s%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# distrotest-gen image patch: RUNS runs, median.
times=()
for i in $(seq "$runs"); do
  rm -rf "$work/out"
  t0=$(now)
  "$gen" --log-level error image patch --distro "$distro" "$image" -o "$work/out" >/dev/null 2>"$work/patch.log" ||
    { cat "$work/patch.log" >&2; exit 1; }
  t1=$(now)
  times+=("$(seconds "$t0" "$t1")")
done
patch=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')

# virt-customize: the same edits on an overlay of the same image.
args=(--no-network -q)
while read -r mode dir; do
  args+=(--mkdir "$dir" --chmod "$mode:$dir")
done <"$work/plan/dirs"
while IFS= read -r -d '' f; do
  dst=${f#"$work/plan/files"}
  args+=(--upload "$f:$dst" --chmod "0$(stat -c %a "$f"):$dst")
done < <(find "$work/plan/files" -type f -print0 | sort -z)
while read -r link target; do
  args+=(--link "$target:$link")
done <"$work/plan/symlinks"
vtimes=()
for i in $(seq "$virt_runs"); do
  rm -f "$work/virt.qcow2"
  qemu-img create -q -f qcow2 -b "$image" -F "$format" "$work/virt.qcow2"
  t0=$(now)
  LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg \
    virt-customize -a "$work/virt.qcow2" "${args[@]}" >"$work/virt.log" 2>&1 ||
    { cat "$work/virt.log" >&2; exit 1; }
  t1=$(now)
  vtimes+=("$(seconds "$t0" "$t1")")
done
virt=$(printf '%s\n' "${vtimes[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')

edits=$(( $(wc -l <"$work/plan/dirs") + $(find "$work/plan/files" -type f | wc -l) + $(wc -l <"$work/plan/symlinks") ))
echo "image:                        $image ($format)"
echo "edits:                        $edits (directories, files, symbolic links)"
echo "distrotest-gen image patch:   ${patch} s (median of $runs: ${times[*]}; includes kernel+initrd extraction)"
echo "virt-customize --no-network:  ${virt} s (median of $virt_runs: ${vtimes[*]})"
awk -v p="$patch" -v v="$virt" 'BEGIN { printf "ratio:                        %.0fx faster\n", v / p }'
