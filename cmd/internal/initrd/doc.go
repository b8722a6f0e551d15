// Package initrd gets distrotest's guest units into a booted system
// without writing its disk: it appends a small uncompressed newc cpio
// archive to the distro's own initrd (the kernel unpacks concatenated
// archives in order, later files win, and a TRAILER!!! resets its state,
// Documentation/driver-api/early-userspace/buffer-format.rst). The archive
// holds the guest payload (a guest.Plan whose paths are all under /run)
// and a generated /bin/sh script, /distrotest/install, that writes it into
// /run, which the initrd hands over to the real root:
//
//   - systemd initrds (dracut: Fedora, EL8–10, Ubuntu ≥ 25.10): an initrd
//     unit, enabled through etc/systemd/system/initrd.target.wants and
//     limited to the initrd by ConditionPathExists=/etc/initrd-release,
//     runs the script before initrd-switch-root.target; systemd moves /run
//     into the new root and its PID 1 loads the units from
//     /run/systemd/system.
//   - initramfs-tools (Debian, Ubuntu ≤ 24.10): scripts/init-bottom/distrotest
//     runs the script, listed in a scripts/init-bottom/ORDER that is the
//     original's (read from the decompressed initrd) plus one entry; init
//     then moves /run into the new root.
//
// Units in /run/systemd/system rank below /etc/systemd/system and above
// /usr/lib/systemd/system (systemd.unit(5)): a mask placed there hides a
// distro's unit, not one an administrator put in /etc (none of the cloud
// images does).
//
// Reading an initrd ([Inspect]) walks its members: uncompressed cpio
// archives (early microcode) and one compressed archive (gzip, zstd, xz,
// lzma, lz4 legacy or bzip2). Input that is none of these is an error.
// The package is pure: bytes in, bytes out, no files, no processes.
//
// Tests read the overlay back with the cpio library and with cpio(1):
//
//	go test ./cmd/internal/initrd
package initrd
