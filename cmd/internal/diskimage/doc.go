// Package diskimage opens distro disk images and reads what distrotest
// needs to know about them: the partition table (GPT or MBR), the
// filesystem on each partition (ext4, xfs, btrfs or vfat, by superblock
// magic), which partition is the root, and from an ext4 root the kernel,
// the initrd and the systemd version.
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
// LUKS and files on xfs or btrfs are out of scope.
//
// Tests build real images (package imagetest) with mkfs.ext4, mkfs.vfat,
// mkfs.xfs, sgdisk, sfdisk and qemu-img and check them with debugfs and
// e2fsck; they skip with a message when a tool is missing:
//
//	go test ./cmd/internal/diskimage/...
package diskimage
