// Package diskimage opens distro disk images and reads what distrotest
// needs to know about them: the partition table (GPT or MBR, with each
// partition's PARTUUID), the filesystem on each partition (ext4, xfs, btrfs
// or vfat, by superblock magic) with its UUID and label (read from the
// superblock by hand: xfs and btrfs need no reader for that), which
// partition is the root, the kernel and initrd found as the image's boot
// loader finds them ([Image.FindBoot]: XBOOTLDR or "boot"-labelled
// partitions, Boot Loader Specification entries, kernel patterns), and
// the systemd version.
//
// Files are read from ext4 ([FS], go-diskfs) and xfs ([XFS], a read-only
// adapter over github.com/masahiro331/go-xfs-filesystem, the reader trivy
// uses); both satisfy [Files]. btrfs is not read: Fedora 40–43 keep the
// kernel on an ext4 /boot, and the root's UUID comes from its superblock.
//
// An [Image] reads a qcow2 or raw file through an in-memory copy-on-write
// overlay (package qcow2): the input file is opened read-only and never
// written. Changes made through [FS] stay in memory until
// [Image.WriteQcow2] writes them as a qcow2 overlay of the input (only the
// changed clusters) or as a standalone image.
//
// [FS] is a narrow adapter over go-diskfs' ext4 driver (v1.9.4). It reads
// anything but writes only new entries (Mkdir, WriteFile, Symlink) and has
// no remove, rename or overwrite: go-diskfs rewrites a whole directory when
// it adds an entry, which would destroy a hash-indexed (htree) directory,
// so every write first checks its parent directory and refuses htree,
// inline-data and encrypted directories, and [FS.Writable] refuses
// filesystems whose journal needs recovery, that are not clean, that lack
// 64bit (go-diskfs panics on 32-byte group descriptors) or that use
// features go-diskfs does not maintain (quota, bigalloc, meta_bg, mmp,
// ...). [Image.Ext4] refuses what go-diskfs cannot read: no crc32c
// checksums (metadata_csum), inodes under 256 bytes, inline_data. Panics in
// go-diskfs become errors. Every write is read back. Policy (what to
// write, what to leave alone) belongs to package imagepatch.
//
// It is not a general disk tool: logical (extended) MBR partitions, LVM,
// LUKS, writing xfs and reading files on btrfs are out of scope.
//
// Tests build real images (package imagetest) with mkfs.ext4, mkfs.vfat,
// mkfs.xfs (populated through a protofile, with EL's and default options),
// mkfs.btrfs, sgdisk, sfdisk and qemu-img and check them with debugfs,
// e2fsck and blkid; they skip with a message when a tool is missing:
//
//	go test ./cmd/internal/diskimage/...
package diskimage
