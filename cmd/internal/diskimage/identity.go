package diskimage

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Superblock facts of xfs and btrfs (Documentation/filesystems/xfs and
// btrfs' ctree.h): distrotest needs only their UUID and label, for root=,
// so they are read by hand rather than through a filesystem reader.
const (
	xfsMagic   = "XFSB"
	xfsUUIDAt  = 32  // sb_uuid[16]
	xfsLabelAt = 108 // sb_fname[12]

	btrfsSuperOffset = 0x10000 // the primary superblock is at 64 KiB
	btrfsFSIDAt      = 0x20    // fsid[16], relative to the superblock
	btrfsMagicAt     = 0x40    // "_BHRfS_M"
	btrfsLabelAt     = 0x12b   // label[256]
	btrfsMagic       = "_BHRfS_M"
)

// Identity is what a kernel command line can name a filesystem by.
type Identity struct {
	UUID  string
	Label string
}

// readIdentity reads the UUID and label of the filesystem fs (as
// detectFS named it) from the start of its partition; other filesystems
// have none.
func readIdentity(r io.ReaderAt, fs string) (Identity, error) {
	switch fs {
	case "ext4", "ext3", "ext2":
		b := make([]byte, 1024)
		if _, err := r.ReadAt(b, sbOffset); err != nil {
			return Identity{}, err
		}
		sb, err := parseSuperblock(b)
		if err != nil {
			return Identity{}, err
		}
		return Identity{UUID: sb.UUID, Label: sb.Label}, nil
	case "xfs":
		b := make([]byte, 512)
		if _, err := r.ReadAt(b, 0); err != nil {
			return Identity{}, err
		}
		return parseXFSIdentity(b)
	case "btrfs":
		b := make([]byte, 4096)
		if _, err := r.ReadAt(b, btrfsSuperOffset); err != nil {
			return Identity{}, err
		}
		return parseBtrfsIdentity(b)
	}
	return Identity{}, nil
}

func parseXFSIdentity(b []byte) (Identity, error) {
	if len(b) < xfsLabelAt+12 || string(b[:4]) != xfsMagic {
		return Identity{}, fmt.Errorf("no xfs superblock")
	}
	return Identity{UUID: formatUUID(b[xfsUUIDAt : xfsUUIDAt+16]), Label: cString(b[xfsLabelAt : xfsLabelAt+12])}, nil
}

// parseBtrfsIdentity reads a btrfs superblock (b starts at its 64 KiB
// offset).
func parseBtrfsIdentity(b []byte) (Identity, error) {
	if len(b) < btrfsLabelAt+256 || string(b[btrfsMagicAt:btrfsMagicAt+8]) != btrfsMagic {
		return Identity{}, fmt.Errorf("no btrfs superblock")
	}
	// bytenr, the superblock's own offset, guards against a stale copy.
	if at := binary.LittleEndian.Uint64(b[0x30:]); at != btrfsSuperOffset {
		return Identity{}, fmt.Errorf("btrfs superblock says it is at byte %d, not %d", at, btrfsSuperOffset)
	}
	return Identity{UUID: formatUUID(b[btrfsFSIDAt : btrfsFSIDAt+16]), Label: cString(b[btrfsLabelAt : btrfsLabelAt+256])}, nil
}

func formatUUID(u []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
