package diskimage

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

// ext4 feature flags (Documentation/filesystems/ext4/super.rst).
const (
	compatDirPrealloc  = 0x1
	compatImagicInodes = 0x2
	compatHasJournal   = 0x4
	compatExtAttr      = 0x8
	compatResizeInode  = 0x10
	compatDirIndex     = 0x20
	compatLazyBG       = 0x40
	compatExcludeBmap  = 0x100
	compatSparseSuper2 = 0x200
	compatFastCommit   = 0x400
	compatStableInodes = 0x800
	compatOrphanFile   = 0x1000

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	roCompatSparseSuper   = 0x1
	roCompatLargeFile     = 0x2
	roCompatBtreeDir      = 0x4
	roCompatHugeFile      = 0x8
	roCompatGdtCsum       = 0x10
	roCompatDirNlink      = 0x20
	roCompatExtraIsize    = 0x40
	roCompatHasSnapshot   = 0x80
	roCompatQuota         = 0x100
	roCompatBigalloc      = 0x200
	roCompatMetadataCsum  = 0x400
	roCompatReplica       = 0x800
	roCompatReadonly      = 0x1000
	roCompatProject       = 0x2000
	roCompatSharedBlocks  = 0x4000
	roCompatVerity        = 0x8000
	roCompatOrphanPresent = 0x10000
)

var compatNames = map[uint32]string{
	compatDirPrealloc: "dir_prealloc", compatImagicInodes: "imagic_inodes", compatHasJournal: "has_journal",
	compatExtAttr: "ext_attr", compatResizeInode: "resize_inode", compatDirIndex: "dir_index",
	compatLazyBG: "lazy_bg", compatExcludeBmap: "snapshot_bitmap", compatSparseSuper2: "sparse_super2",
	compatFastCommit: "fast_commit", compatStableInodes: "stable_inodes", compatOrphanFile: "orphan_file",
}

var incompatNames = map[uint32]string{
	incompatCompression: "compression", incompatFiletype: "filetype", incompatRecover: "needs_recovery",
	incompatJournalDev: "journal_dev", incompatMetaBG: "meta_bg", incompatExtents: "extent",
	incompat64bit: "64bit", incompatMMP: "mmp", incompatFlexBG: "flex_bg", incompatEAInode: "ea_inode",
	incompatDirData: "dirdata", incompatCsumSeed: "metadata_csum_seed", incompatLargeDir: "large_dir",
	incompatInlineData: "inline_data", incompatEncrypt: "encrypt", incompatCasefold: "casefold",
}

var roCompatNames = map[uint32]string{
	roCompatSparseSuper: "sparse_super", roCompatLargeFile: "large_file", roCompatBtreeDir: "btree_dir",
	roCompatHugeFile: "huge_file", roCompatGdtCsum: "uninit_bg", roCompatDirNlink: "dir_nlink",
	roCompatExtraIsize: "extra_isize", roCompatHasSnapshot: "snapshot", roCompatQuota: "quota",
	roCompatBigalloc: "bigalloc", roCompatMetadataCsum: "metadata_csum", roCompatReplica: "replica",
	roCompatReadonly: "read-only", roCompatProject: "project", roCompatSharedBlocks: "shared_blocks",
	roCompatVerity: "verity", roCompatOrphanPresent: "orphan_present",
}

// Features the writer (go-diskfs plus the checks in this package) keeps
// consistent. Anything else makes [FS.Writable] refuse.
const (
	writableCompat = compatDirPrealloc | compatHasJournal | compatExtAttr | compatResizeInode |
		compatDirIndex | compatSparseSuper2 | compatFastCommit | compatStableInodes | compatOrphanFile
	// inline_data, encrypt and casefold are per directory: the writer
	// refuses such parent directories.
	writableIncompat = incompatFiletype | incompatExtents | incompat64bit | incompatFlexBG |
		incompatCsumSeed | incompatLargeDir | incompatInlineData | incompatEncrypt | incompatCasefold
	writableROCompat = roCompatSparseSuper | roCompatLargeFile | roCompatHugeFile |
		roCompatDirNlink | roCompatExtraIsize | roCompatMetadataCsum | roCompatProject | roCompatVerity
)

// ext4 s_state bits.
const (
	stateValid   = 0x1 // cleanly unmounted
	stateErrors  = 0x2 // errors detected
	stateOrphans = 0x4 // orphans being recovered
)

// Superblock is the part of an ext2/3/4 superblock distrotest looks at.
type Superblock struct {
	BlockSize int
	Label     string
	UUID      string
	State     uint16
	Compat    uint32
	Incompat  uint32
	ROCompat  uint32
	// ChecksumType is s_checksum_type: 1 (crc32c) with metadata_csum.
	ChecksumType byte
	InodeSize    int
}

func parseSuperblock(b []byte) (Superblock, error) {
	if len(b) < 1024 || binary.LittleEndian.Uint16(b[sbMagic:]) != extMagic {
		return Superblock{}, fmt.Errorf("no ext2/3/4 superblock")
	}
	log := binary.LittleEndian.Uint32(b[sbLogBlockSize:])
	if log > 6 {
		return Superblock{}, fmt.Errorf("ext4 superblock: block size 2^%d KiB is invalid", log)
	}
	u := b[sbUUID : sbUUID+16]
	return Superblock{
		BlockSize:    1024 << log,
		Label:        strings.TrimRight(string(b[sbVolumeName:sbVolumeName+16]), "\x00"),
		UUID:         fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]),
		State:        binary.LittleEndian.Uint16(b[sbState:]),
		Compat:       binary.LittleEndian.Uint32(b[sbCompat:]),
		Incompat:     binary.LittleEndian.Uint32(b[sbIncompat:]),
		ROCompat:     binary.LittleEndian.Uint32(b[sbROCompat:]),
		ChecksumType: b[sbChecksumType],
		InodeSize:    int(binary.LittleEndian.Uint16(b[sbInodeSize:])),
	}, nil
}

// Features returns the feature names, as dumpe2fs prints them, sorted.
func (s Superblock) Features() []string {
	out := append(append(flagNames(s.Compat, compatNames), flagNames(s.Incompat, incompatNames)...), flagNames(s.ROCompat, roCompatNames)...)
	sort.Strings(out)
	return out
}

func flagNames(v uint32, names map[uint32]string) []string {
	var out []string
	for v != 0 {
		bit := uint32(1) << bits.TrailingZeros32(v)
		v &^= bit
		name, ok := names[bit]
		if !ok {
			name = fmt.Sprintf("FEATURE_0x%x", bit)
		}
		out = append(out, name)
	}
	return out
}

// NeedsRecovery reports whether the journal holds transactions that were
// not replayed: the filesystem was not cleanly unmounted.
func (s Superblock) NeedsRecovery() bool { return s.Incompat&incompatRecover != 0 }

// writeProblem says why the writer must not touch this filesystem, or "".
func (s Superblock) writeProblem() string {
	switch {
	case s.NeedsRecovery():
		return "its journal needs recovery (the filesystem was not cleanly unmounted): run e2fsck -fy on the partition, or use an image that was shut down cleanly"
	case s.ROCompat&roCompatOrphanPresent != 0, s.State&stateOrphans != 0:
		return "it has orphan inodes to clean up (not cleanly unmounted): run e2fsck -fy on the partition first"
	case s.State&stateErrors != 0:
		return "the kernel recorded errors on it: run e2fsck -fy on the partition first"
	case s.State&stateValid == 0:
		return "it is not marked clean (mounted, or not cleanly unmounted): run e2fsck -fy on the partition first"
	case s.Incompat&incompatExtents == 0:
		return "it does not use extents (ext2/ext3); go-diskfs writes extent-mapped files only"
	case s.Incompat&incompat64bit == 0:
		// go-diskfs v1.9.4 panics updating 32-byte group descriptors.
		return "it lacks the 64bit feature; the go-diskfs v1.9.4 writer handles only 64-byte group descriptors (mkfs.ext4 default since e2fsprogs 1.43)"
	}
	var bad []string
	bad = append(bad, flagNames(s.Compat&^writableCompat, compatNames)...)
	bad = append(bad, flagNames(s.Incompat&^writableIncompat, incompatNames)...)
	bad = append(bad, flagNames(s.ROCompat&^writableROCompat, roCompatNames)...)
	if len(bad) > 0 {
		sort.Strings(bad)
		return "it uses features the go-diskfs ext4 writer does not maintain: " + strings.Join(bad, ", ")
	}
	return ""
}
