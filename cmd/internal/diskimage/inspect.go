package diskimage

import "fmt"

// Report is what `distrotest-gen image inspect` prints about an image.
type Report struct {
	Path           string      `json:"path"`
	Format         string      `json:"format"`
	VirtualSize    int64       `json:"virtual_size"`
	PartitionTable string      `json:"partition_table"`
	Partitions     []Partition `json:"partitions"`
	RootPartition  int         `json:"root_partition,omitempty"`
	RootFilesystem string      `json:"root_filesystem,omitempty"`
	RootDevice     string      `json:"root_device,omitempty"`
	// Ext4Features of the root filesystem, as dumpe2fs names them.
	Ext4Features   []string `json:"ext4_features,omitempty"`
	Boot           *Boot    `json:"boot,omitempty"`
	SystemdVersion int      `json:"systemd_version,omitempty"`
	SystemdFrom    string   `json:"systemd_from,omitempty"`
	// Notes are findings that do not stop a patch; Problems would.
	Notes    []string `json:"notes,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// Query selects what Inspect looks for; the zero value uses the defaults.
type Query struct {
	RootPartition int    // 0: automatic (see Image.Root)
	Kernel        string // kernel pattern, "" for DefaultKernel
	Initrd        string // initrd pattern, "" for the usual names
}

// Inspect describes the image at path without changing it. It fails only
// when the file is not a readable disk image; what a patch would trip
// over (no ext4 root, no kernel, a journal to recover) is listed in
// Problems.
func Inspect(path string, q Query) (*Report, error) {
	img, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	r := &Report{
		Path: img.Path, Format: img.Format, VirtualSize: img.Size,
		PartitionTable: img.Table, Partitions: img.Partitions, Notes: img.Notes,
	}
	root, err := img.Root(q.RootPartition)
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		return r, nil
	}
	r.RootPartition, r.RootFilesystem, r.RootDevice = root.Number, root.Filesystem, root.Device()
	var rootFiles Files
	switch root.Filesystem {
	case "ext4":
		fsys, err := img.Ext4(root)
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
			return r, nil
		}
		r.Ext4Features = fsys.Superblock.Features()
		if err := fsys.Writable(); err != nil {
			r.Problems = append(r.Problems, "disk strategy: "+err.Error())
		}
		rootFiles = fsys
	case "xfs":
		x, err := img.XFS(root)
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
		} else {
			rootFiles = x
		}
		r.Notes = append(r.Notes, "root filesystem is xfs: only the initrd strategy can prepare this image")
	default:
		r.Notes = append(r.Notes, fmt.Sprintf("root filesystem is %s: distrotest does not read it; only the initrd strategy can prepare this image, with the kernel on another partition", root.FilesystemName()))
	}
	boot, _, err := img.FindBoot(root, rootFiles, q.Kernel, q.Initrd)
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
	} else {
		r.Boot = &boot
	}
	if rootFiles != nil {
		v, from, err := SystemdVersion(rootFiles)
		if err != nil {
			r.Problems = append(r.Problems, "reading the systemd version: "+err.Error())
		}
		r.SystemdVersion, r.SystemdFrom = v, from
	}
	return r, nil
}
