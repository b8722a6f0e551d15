// Package imagepatch prepares a distro cloud image for distrotest without a
// helper VM, root or loop devices (`distrotest-gen image patch`): it opens
// the image (qcow2 or raw) with package diskimage, finds the root and the
// kernel and initrd the way the image's boot loader does (XBOOTLDR or
// "boot"-labelled partitions, Boot Loader Specification entries, kernel
// patterns), gets the guest assets of a guest.Plan in by the release's
// strategy, and writes a prepared directory atomically:
//
//	out/disk.qcow2     overlay of the input (or standalone with Options.Standalone)
//	out/vmlinuz        kernel
//	out/initrd         initramfs (with the overlay appended: initrd strategy)
//	out/manifest.json  root device, kernel parameters, strategy, share transport, versions
//
// Strategies (distro.Spec.Strategy):
//
//   - disk: the plan is written into the ext4 root through go-diskfs.
//   - initrd: the disk is not written at all (disk.qcow2 is an overlay with
//     no changed cluster); package initrd appends the plan, placed under
//     /run (guest.RuntimePlan), to the distro's own initrd. Any root
//     filesystem; the kernel and initrd must be on ext4 or xfs. root= names
//     the root by UUID, LABEL or PARTUUID from its superblock or GPT entry,
//     with rootflags=subvol= for a btrfs subvolume.
//
// The facts come from one distro.Spec (the descriptions, or the JSON spec
// gen/ carries per release): nothing else about the distro is read.
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
// bigalloc, meta_bg, ...) is refused. Errors for layouts a strategy cannot
// handle name the partition, its filesystem and the strategy that would
// work.
//
// Tests build ext4, xfs and btrfs filesystems with mkfs (Debian 12 and 13
// defaults, EL's xfs options, htree directories through e2fsck -D), the
// three families' layouts with dracut- and initramfs-tools-like initrds
// made by cpio(1), patch them and check the result with debugfs, e2fsck
// -fn, blkid and cpio -t; they need e2fsprogs, xfsprogs, btrfs-progs,
// gdisk, cpio and qemu-utils and skip with a message otherwise:
//
//	go test ./cmd/internal/imagepatch
//	go test -run '^$' -bench PatchShapes ./cmd/internal/imagepatch
//
// bench/patch-vs-virt-customize.sh compares a patch with virt-customize
// making the same edits.
package imagepatch
