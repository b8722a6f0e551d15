package diskimage

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// Partition is one partition of an image and the filesystem on it.
type Partition struct {
	Number     int    `json:"number"`               // 1-based, as in /dev/vdaN
	Type       string `json:"type"`                 // GPT type GUID, or MBR type as 0xNN
	TypeName   string `json:"type_name,omitempty"`  // e.g. "Linux filesystem", "EFI System"
	Start      int64  `json:"start"`                // bytes from the start of the disk
	Size       int64  `json:"size"`                 // bytes
	Name       string `json:"name,omitempty"`       // GPT partition name
	Filesystem string `json:"filesystem,omitempty"` // ext4, ext3, ext2, xfs, btrfs, vfat or "" (unknown)
	// PartUUID is the GPT partition GUID (root=PARTUUID=…), lower case.
	PartUUID string `json:"partuuid,omitempty"`
	// FSUUID and FSLabel are the filesystem's UUID and label
	// (root=UUID=…, root=LABEL=…) for ext2/3/4, xfs and btrfs.
	FSUUID  string `json:"fs_uuid,omitempty"`
	FSLabel string `json:"fs_label,omitempty"`
}

// FilesystemName is Filesystem for messages: "not a known filesystem"
// when none was recognised.
func (p Partition) FilesystemName() string {
	if p.Filesystem == "" {
		return "not a known filesystem"
	}
	return p.Filesystem
}

// Device is the partition's device name in a guest with one virtio disk.
func (p Partition) Device() string { return fmt.Sprintf("/dev/vda%d", p.Number) }

var gptTypeNames = map[gpt.Type]string{
	gpt.EFISystemPartition: "EFI System",
	gpt.BIOSBoot:           "BIOS boot",
	gpt.LinuxFilesystem:    "Linux filesystem",
	gpt.LinuxRootX86:       "Linux root (x86)",
	gpt.LinuxRootX86_64:    "Linux root (x86-64)",
	gpt.LinuxRootArm:       "Linux root (ARM)",
	gpt.LinuxRootArm64:     "Linux root (ARM64)",
	gpt.LinuxExtendedBoot:  "Linux extended boot",
	gpt.LinuxSwap:          "Linux swap",
	gpt.LinuxLVM:           "Linux LVM",
	gpt.LinuxHome:          "Linux home",
	gpt.LinuxLUKS:          "Linux LUKS",
	gpt.LinuxRAID:          "Linux RAID",
}

// rootTypes are the Discoverable Partitions Specification root types.
var rootTypes = map[gpt.Type]bool{
	gpt.LinuxRootX86: true, gpt.LinuxRootX86_64: true, gpt.LinuxRootArm: true, gpt.LinuxRootArm64: true,
}

var mbrTypeNames = map[mbr.Type]string{
	mbr.Linux:         "Linux",
	mbr.LinuxSwap:     "Linux swap",
	mbr.LinuxLVM:      "Linux LVM",
	mbr.EFISystem:     "EFI System",
	0xee:              "GPT protective",
	0x0c:              "W95 FAT32 (LBA)",
	0x0b:              "W95 FAT32",
	0x05:              "Extended",
	0x0f:              "W95 Extended (LBA)",
	mbr.LinuxExtended: "Linux extended",
}

// readPartitions reads the GPT, or failing that the MBR, and the
// filesystem type of each partition.
func (img *Image) readPartitions() error {
	// An unreadable disk (truncated or corrupt qcow2) must not pass for
	// "no partition table".
	head := make([]byte, 34*512)
	if _, err := img.overlay.ReadAt(head, 0); err != nil {
		return fmt.Errorf("reading the partition table: %w (truncated or damaged image?)", err)
	}
	g, gptErr := gpt.Read(img.overlay, 512, 512)
	switch {
	case gptErr == nil:
		img.Table = "gpt"
		if g.RecoveredFromBackup {
			img.Notes = append(img.Notes, "the primary GPT is damaged; the partitions were read from the backup GPT")
		}
		for _, p := range g.Partitions {
			if p == nil || p.Type == gpt.Unused || p.Size == 0 {
				continue
			}
			name := gptTypeNames[p.Type]
			img.Partitions = append(img.Partitions, Partition{
				Number: p.Index, Type: string(p.Type), TypeName: name,
				Start: p.GetStart(), Size: p.GetSize(), Name: p.Name, PartUUID: strings.ToLower(p.GUID),
			})
		}
	default:
		m, mbrErr := mbr.Read(img.overlay, 512, 512)
		if mbrErr != nil {
			if fs, _ := detectFS(img.overlay, 0); fs != "" {
				return fmt.Errorf("not a partitioned disk image: it holds a bare %s filesystem (want a disk with a GPT or MBR partition table)", fs)
			}
			return errors.New("not a disk image: no GPT or MBR partition table found")
		}
		img.Table = "mbr"
		for _, p := range m.Partitions {
			if p == nil || p.Type == mbr.Empty || p.Size == 0 {
				continue
			}
			if p.Type == 0xee {
				return fmt.Errorf("damaged GPT: the MBR is a GPT protective MBR but the GPT cannot be read: %v", gptErr)
			}
			img.Partitions = append(img.Partitions, Partition{
				Number: p.Index, Type: fmt.Sprintf("0x%02x", byte(p.Type)), TypeName: mbrTypeNames[p.Type],
				Start: p.GetStart(), Size: p.GetSize(),
			})
		}
	}
	if len(img.Partitions) == 0 {
		return fmt.Errorf("the %s partition table has no partitions", strings.ToUpper(img.Table))
	}
	sort.Slice(img.Partitions, func(i, j int) bool { return img.Partitions[i].Number < img.Partitions[j].Number })
	for i := range img.Partitions {
		p := &img.Partitions[i]
		if end := p.Start + p.Size; end > img.Size {
			return fmt.Errorf("partition %d ends at byte %d, past the end of the %d-byte disk (truncated image?)", p.Number, end, img.Size)
		}
		fs, err := detectFS(io.NewSectionReader(img.overlay, p.Start, p.Size), 0)
		if err != nil {
			return fmt.Errorf("reading partition %d: %w (truncated or damaged image?)", p.Number, err)
		}
		p.Filesystem = fs
		id, err := readIdentity(io.NewSectionReader(img.overlay, p.Start, p.Size), fs)
		if err != nil {
			return fmt.Errorf("reading the %s superblock of partition %d: %w (truncated or damaged image?)", fs, p.Number, err)
		}
		p.FSUUID, p.FSLabel = id.UUID, id.Label
	}
	return nil
}

// Partition returns partition n.
func (img *Image) Partition(n int) (Partition, error) {
	for _, p := range img.Partitions {
		if p.Number == n {
			return p, nil
		}
	}
	return Partition{}, fmt.Errorf("partition %d not found (partitions: %s)", n, img.describe())
}

// describe lists the partitions for error messages: "1 (ext4), 15 (vfat)".
func (img *Image) describe() string {
	var parts []string
	for _, p := range img.Partitions {
		fs := p.Filesystem
		if fs == "" {
			fs = "unknown filesystem"
		}
		parts = append(parts, fmt.Sprintf("%d (%s)", p.Number, fs))
	}
	return strings.Join(parts, ", ")
}

// linuxRoot reports whether fs can be a Linux root filesystem.
func linuxRoot(fs string) bool {
	switch fs {
	case "ext4", "ext3", "ext2", "xfs", "btrfs":
		return true
	}
	return false
}

func countLinux(parts []Partition) int {
	n := 0
	for _, p := range parts {
		if linuxRoot(p.Filesystem) {
			n++
		}
	}
	return n
}

// Root returns the root partition: partition n when n > 0; otherwise the
// partition typed "Linux root" (Discoverable Partitions Specification) if
// exactly one holds a Linux filesystem, else the largest partition holding
// one (ext2/3/4, xfs or btrfs) that is not a /boot partition (typed
// XBOOTLDR or labelled boot). Debian, Ubuntu, Fedora and EL cloud images
// all resolve to their root this way.
func (img *Image) Root(n int) (Partition, error) {
	if n > 0 {
		return img.Partition(n)
	}
	var typed, best []Partition
	boots := 0
	for _, p := range img.Partitions {
		if linuxRoot(p.Filesystem) && bootPartition(p) {
			boots++
		}
	}
	for _, p := range img.Partitions {
		if !linuxRoot(p.Filesystem) {
			continue
		}
		// A /boot partition (XBOOTLDR, or labelled boot) is no root,
		// however large, unless it is the only Linux filesystem.
		if bootPartition(p) && boots < countLinux(img.Partitions) {
			continue
		}
		if rootTypes[gpt.Type(p.Type)] {
			typed = append(typed, p)
		}
		if len(best) == 0 || p.Size > best[0].Size {
			best = []Partition{p}
		}
	}
	if len(typed) == 1 {
		return typed[0], nil
	}
	if len(best) == 0 {
		return Partition{}, fmt.Errorf("no partition holds a Linux root filesystem (ext4, xfs or btrfs); partitions: %s", img.describe())
	}
	return best[0], nil
}
