// Package qcow2 reads qcow2 disk images and writes small qcow2 overlays, so
// that the image patcher can edit a multi-gigabyte cloud image without
// converting it to raw.
//
// It has three parts:
//
//   - [Open] is a pure-Go, read-only qcow2 (version 2 and 3) reader: L1/L2
//     lookup, zero clusters, zlib-compressed clusters and backing-file chains
//     (qcow2 or raw). [OpenAny] also accepts raw images.
//   - [Overlay] is an in-memory copy-on-write layer over any [io.ReaderAt]
//     that implements go-diskfs' backend.Storage, so diskfs.OpenBackend can
//     read the partition table and read and write ext4 through it.
//   - [Overlay.WriteQcow2] writes the clusters changed in the overlay as a
//     new qcow2 v3 image that uses the original image as its backing file
//     (or, without a backing file, a standalone image).
//
// It is not a general qcow2 implementation: it never modifies an existing
// image in place, ignores internal snapshots and bitmaps, and rejects
// encryption, external data files, extended L2 entries and zstd
// compression with an error.
//
// The tests need qemu-img and qemu-io (Debian package qemu-utils) and, for
// the go-diskfs test, sgdisk, mkfs.ext4, e2fsck and debugfs; they skip with
// a message when a tool is missing. TestRealImage also checks a real image
// (never modifying it) when DISTROTEST_QCOW2_IMAGE names one. The
// benchmarks compare patching through an Overlay with a qemu-img
// qcow2→raw→qcow2 round trip of a 3 GiB image:
//
//	go test -run '^$' -bench . -benchtime 5x ./cmd/internal/qcow2/
package qcow2
