// Package imagepatch prepares a distro cloud image for distrotest without a
// helper VM, root or loop devices: it opens the image (qcow2 or raw) through
// an in-memory copy-on-write overlay, writes the guest assets of a
// guest.Plan into the ext4 root filesystem with go-diskfs, extracts the
// kernel and initrd for direct kernel boot, and writes a prepared directory
// (disk.qcow2, vmlinuz, initrd, manifest.json) atomically.
//
// go-diskfs's ext4 writer has sharp edges, so the patcher keeps to guard
// rails: it never adds entries to hash-indexed (htree) directories, never
// removes or renames, never overwrites an existing file, creates parents
// explicitly, and refuses a filesystem whose journal needs recovery.
//
// The input image is never modified. Tests: go test ./cmd/internal/imagepatch
// (needs mkfs.ext4, sgdisk, qemu-img, e2fsck, debugfs from e2fsprogs,
// gdisk and qemu-utils).
package imagepatch
