package diskimage

import (
	"encoding/binary"
	"errors"
	"io"
)

// ext superblock fields (offsets inside the superblock, which starts 1024
// bytes into the filesystem).
const (
	sbOffset       = 1024
	sbMagic        = 0x38
	sbState        = 0x3a
	sbCompat       = 0x5c
	sbIncompat     = 0x60
	sbROCompat     = 0x64
	sbLogBlockSize = 0x18
	sbUUID         = 0x68
	sbVolumeName   = 0x78
	sbChecksumType = 0x175
	sbInodeSize    = 0x58
	extMagic       = 0xef53
)

// probeSize covers every magic detectFS looks at (btrfs is at 64 KiB).
const probeSize = 0x10048

// detectFS names the filesystem at offset off of r by its superblock magic,
// in blkid's words: ext4, ext3, ext2, xfs, btrfs, vfat, swap, crypto_LUKS,
// LVM2_member; "" when none matches.
func detectFS(r io.ReaderAt, off int64) (string, error) {
	b := make([]byte, probeSize)
	n, err := r.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	b = b[:n]
	has := func(at int, magic string) bool {
		return len(b) >= at+len(magic) && string(b[at:at+len(magic)]) == magic
	}
	switch {
	case len(b) >= sbOffset+sbROCompat+4 && binary.LittleEndian.Uint16(b[sbOffset+sbMagic:]) == extMagic:
		return extVariant(b[sbOffset:]), nil
	case has(0, xfsMagic):
		return "xfs", nil
	case has(btrfsSuperOffset+btrfsMagicAt, btrfsMagic):
		return "btrfs", nil
	case has(0, "LUKS\xba\xbe"):
		return "crypto_LUKS", nil
	case has(512+24, "LVM2 001"):
		return "LVM2_member", nil
	case has(4086, "SWAPSPACE2"), has(4086, "SWAP-SPACE"):
		return "swap", nil
	case has(510, "\x55\xaa") && (has(0x52, "FAT32   ") || has(0x36, "FAT16   ") || has(0x36, "FAT12   ")):
		return "vfat", nil
	}
	return "", nil
}

// extVariant tells ext4 (extents, 64bit or flex_bg) from ext3 (a journal)
// and ext2, as blkid does; go-diskfs reads only extent-mapped files.
func extVariant(sb []byte) string {
	compat := binary.LittleEndian.Uint32(sb[sbCompat:])
	incompat := binary.LittleEndian.Uint32(sb[sbIncompat:])
	switch {
	case incompat&(incompatExtents|incompat64bit|incompatFlexBG) != 0:
		return "ext4"
	case compat&compatHasJournal != 0:
		return "ext3"
	}
	return "ext2"
}
