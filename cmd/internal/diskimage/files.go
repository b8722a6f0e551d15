package diskimage

import (
	"fmt"
	"io"
	"strings"
)

// Files is read access to the filesystem on one partition: ext4 ([FS],
// through go-diskfs), xfs ([XFS], through go-xfs-filesystem) or btrfs
// ([Btrfs], distrotest's own reader). Paths are
// absolute paths inside that filesystem ("/vmlinuz-6.12.0" on a separate
// /boot partition, "/boot/vmlinuz-6.12.0" on a root filesystem).
type Files interface {
	// Part is the partition the filesystem is on.
	Part() Partition
	// Stat describes p; symbolic links are followed where the
	// filesystem's reader can (ext4), else reported as links.
	Stat(p string) (*Info, error)
	// ReadDir lists directory p, sorted by name, without "." and "..".
	ReadDir(p string) ([]DirEntry, error)
	// Open opens regular file p for reading.
	Open(p string) (io.ReadCloser, *Info, error)
	// ReadFile returns the content of regular file p.
	ReadFile(p string) ([]byte, error)
}

var (
	_ Files = (*FS)(nil)
	_ Files = (*XFS)(nil)
	_ Files = (*Btrfs)(nil)
)

// Part is the partition the filesystem is on.
func (f *FS) Part() Partition { return f.Partition }

// Readers lists the filesystems distrotest can read files from.
var Readers = []string{"ext4", "xfs", "btrfs"}

// Files opens the filesystem on partition p read-only: ext4, xfs or btrfs
// (the subvolume [Image.Btrfs] picks). Other filesystems (vfat, ...) give
// an error naming the partition and its filesystem.
func (img *Image) Files(p Partition) (Files, error) {
	switch p.Filesystem {
	case "ext4":
		return img.Ext4(p)
	case "xfs":
		return img.XFS(p)
	case "btrfs":
		return img.Btrfs(p, "")
	}
	return nil, fmt.Errorf("partition %d holds %s; distrotest reads files from %s only", p.Number, p.FilesystemName(), strings.Join(Readers, ", "))
}

// readAll reads r to the end, sized by the file's size.
func readAll(r io.Reader, size int64) ([]byte, error) {
	b := make([]byte, 0, size)
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		b = append(b, buf[:n]...)
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
