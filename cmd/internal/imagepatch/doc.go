// Package imagepatch prepares a distro cloud image for distrotest without a
// helper VM, root or loop devices (`distrotest-gen image patch`): it opens
// the image (qcow2 or raw) with package diskimage, writes the guest assets
// of a guest.Plan into its ext4 root filesystem through go-diskfs, extracts
// the kernel and initrd for direct kernel boot, and writes a prepared
// directory atomically:
//
//	out/disk.qcow2     overlay of the input (or standalone with Options.Standalone)
//	out/vmlinuz        kernel
//	out/initrd         initramfs
//	out/manifest.json  root device, kernel parameters, strategy, versions
//
// The input is opened read-only and never modified; the edits live in an
// in-memory copy-on-write overlay until disk.qcow2 is written, so a patch
// writes a few hundred KiB instead of converting gigabytes.
//
// Guard rails, because go-diskfs's ext4 writer has sharp edges: entries are
// only ever added (diskimage.FS has no remove, rename or overwrite), never
// to a hash-indexed (htree), inline-data or encrypted directory; missing
// parent directories are created one level at a time; a file that already
// exists is left alone when its content and mode are what the plan wants
// and refused otherwise; a mask whose unit name is already taken (e.g.
// Debian's sshd.service alias) is applied with systemd.mask= on the kernel
// command line instead; a filesystem whose journal needs recovery, that is
// not clean, or that uses features go-diskfs does not maintain (quota,
// bigalloc, meta_bg, ...) is refused. Only the "disk" strategy on ext4 is
// implemented.
//
// Tests build ext4 filesystems with mkfs.ext4 (Debian 12 and Debian 13
// defaults, htree directories through e2fsck -D) and with go-diskfs, patch
// them and check the result with debugfs and e2fsck -fn; they need
// e2fsprogs, gdisk and qemu-utils and skip with a message otherwise:
//
//	go test ./cmd/internal/imagepatch
//
// bench/patch-vs-virt-customize.sh compares a patch with virt-customize
// making the same edits.
package imagepatch
