package imagebuild

import (
	"fmt"
	"strconv"
)

const (
	sectorSize = 512
	// align is the partition alignment in sectors (1 MiB).
	align = 2048
	// gptBackupSectors is what the backup GPT takes at the end of the disk:
	// 32 sectors of partition entries and the header.
	gptBackupSectors = 33
	// minRootSize is the smallest root partition NewLayout accepts.
	minRootSize = 256 << 20
)

// Partition types as sgdisk codes and GPT type GUIDs.
const (
	TypeLinux    = "8300" // Linux filesystem, 0FC63DAF-8483-4772-8E79-3D69D8477DE4
	TypeBIOSBoot = "EF02" // BIOS boot, 21686148-6449-6E6F-744E-656564454649
	TypeESP      = "EF00" // EFI system partition, C12A7328-F81F-11D2-BA4B-00A0C93EC93B
)

// Partition is one GPT partition. First and Last are inclusive sector numbers.
type Partition struct {
	Number     int    `json:"number"`
	Type       string `json:"type"` // sgdisk code, TypeLinux etc.
	Filesystem string `json:"filesystem,omitempty"`
	Label      string `json:"label,omitempty"` // filesystem label
	// Mount is where the guest mounts it ("/", "/boot"); empty for the
	// Debian layout, whose fstab is written by hand.
	Mount       string   `json:"mount,omitempty"`
	MkfsOptions []string `json:"mkfs_options,omitempty"`
	// Subvolumes (btrfs) are made at the top level; the first holds the
	// tree mounted at Mount.
	Subvolumes []string `json:"subvolumes,omitempty"`
	Fstab      string   `json:"fstab,omitempty"` // fstab options, dump and pass
	First      int64    `json:"first_sector"`
	Last       int64    `json:"last_sector"`
}

// Offset is the partition's start in bytes.
func (p Partition) Offset() int64 { return p.First * sectorSize }

// Size is the partition's size in bytes.
func (p Partition) Size() int64 { return (p.Last - p.First + 1) * sectorSize }

// Layout is a GPT disk layout.
type Layout struct {
	DiskSize   int64       `json:"disk_size"`
	Partitions []Partition `json:"partitions"`
}

// NewLayout returns the layout of Debian's cloud images for a disk of size
// bytes: p14 BIOS boot at 1–4 MiB, p15 ESP at 4–128 MiB, and p1 the ext4
// root from 128 MiB to the last aligned sector before the backup GPT.
func NewLayout(size int64) (Layout, error) {
	if size%sectorSize != 0 {
		return Layout{}, fmt.Errorf("disk size %d is not a multiple of %d", size, sectorSize)
	}
	const rootFirst = 128 << 20 / sectorSize
	// The root ends on an alignment boundary that leaves room for the backup GPT.
	rootEnd := (size/sectorSize - gptBackupSectors - 1) / align * align
	if (rootEnd-rootFirst)*sectorSize < minRootSize {
		return Layout{}, fmt.Errorf("disk size %d is too small: need at least %d MiB", size, (rootFirst*sectorSize+minRootSize)>>20+2)
	}
	return Layout{
		DiskSize: size,
		Partitions: []Partition{
			{Number: 14, Type: TypeBIOSBoot, First: 1 << 20 / sectorSize, Last: 4<<20/sectorSize - 1},
			{Number: 15, Type: TypeESP, Filesystem: "vfat", Label: "UEFI", First: 4 << 20 / sectorSize, Last: rootFirst - 1},
			{Number: 1, Type: TypeLinux, Filesystem: "ext4", Label: "root", First: rootFirst, Last: rootEnd - 1},
		},
	}, nil
}

// Partition returns the partition numbered n.
func (l Layout) Partition(n int) (Partition, bool) {
	for _, p := range l.Partitions {
		if p.Number == n {
			return p, true
		}
	}
	return Partition{}, false
}

// sgdiskArgs returns the sgdisk arguments that write l's partition table
// to the (zeroed) disk file path.
func sgdiskArgs(l Layout, path string) []string {
	args := []string{"--clear"}
	for _, p := range l.Partitions {
		n := strconv.Itoa(p.Number)
		args = append(args,
			"--new="+n+":"+strconv.FormatInt(p.First, 10)+":"+strconv.FormatInt(p.Last, 10),
			"--typecode="+n+":"+p.Type)
	}
	return append(args, path)
}
