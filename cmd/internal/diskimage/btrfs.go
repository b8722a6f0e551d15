package diskimage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/distrotest/distrotest/cmd/internal/btrfs"
)

// Btrfs is one subvolume of the btrfs filesystem on a partition of an
// [Image], read-only, through distrotest's own reader (package btrfs).
// Paths are absolute inside the subvolume; directories that are symbolic
// links are followed, a final link is described.
type Btrfs struct {
	Partition Partition
	Subvolume string // the subvolume's name ("" for the top level)
	sub       *btrfs.Subvolume
}

// Btrfs opens subvolume subvol of the btrfs filesystem on partition p.
// An empty subvol picks the one holding the operating system: the
// default subvolume if it has /usr, else the first top-level subvolume
// that has (Fedora's root, openSUSE's @), else the default.
func (img *Image) Btrfs(p Partition, subvol string) (*Btrfs, error) {
	if p.Filesystem != "btrfs" {
		return nil, fmt.Errorf("partition %d is %s, not btrfs", p.Number, p.FilesystemName())
	}
	fail := func(err error) (*Btrfs, error) {
		return nil, fmt.Errorf("reading the btrfs filesystem on partition %d: %w", p.Number, err)
	}
	fsys, err := btrfs.Open(newReadAhead(io.NewSectionReader(img.overlay, p.Start, p.Size), p.Size))
	if err != nil {
		return fail(err)
	}
	top, err := fsys.TopLevel()
	if err != nil {
		return fail(err)
	}
	subs, err := top.Subvolumes()
	if err != nil {
		return fail(err)
	}
	if subvol != "" {
		for _, s := range subs {
			if s.Name == subvol {
				return &Btrfs{Partition: p, Subvolume: subvol, sub: s}, nil
			}
		}
		names := []string{}
		for _, s := range subs {
			names = append(names, s.Name)
		}
		return fail(fmt.Errorf("no top-level subvolume %q (have %q)", subvol, names))
	}
	def, err := fsys.Default()
	if err != nil {
		return fail(err)
	}
	for _, s := range append([]*btrfs.Subvolume{def}, subs...) {
		if info, err := s.Stat("/usr"); err == nil && info.Mode.IsDir() {
			return &Btrfs{Partition: p, Subvolume: s.Name, sub: s}, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail(err)
		}
	}
	return &Btrfs{Partition: p, Subvolume: def.Name, sub: def}, nil
}

// Part is the partition the filesystem is on.
func (b *Btrfs) Part() Partition { return b.Partition }

// Stat describes p (a final symbolic link is described, not followed).
func (b *Btrfs) Stat(p string) (*Info, error) {
	p = path.Clean("/" + p)
	fi, err := b.sub.Lstat(p)
	if err != nil {
		return nil, err
	}
	return &Info{Path: p, Mode: fi.Mode, Size: fi.Size, Target: fi.Target}, nil
}

// ReadDir lists directory p, sorted by name.
func (b *Btrfs) ReadDir(p string) ([]DirEntry, error) {
	entries, err := b.sub.ReadDir(p)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, len(entries))
	for i, e := range entries {
		out[i] = DirEntry{Name: e.Name, Type: e.Type}
	}
	return out, nil
}

// Open opens regular file p (symbolic links followed) for reading. The reader reads the whole file
// first: distrotest reads small files and kernels from btrfs.
func (b *Btrfs) Open(p string) (io.ReadCloser, *Info, error) {
	p = path.Clean("/" + p)
	fi, err := b.sub.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	data, err := b.ReadFile(p)
	if err != nil {
		return nil, nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), &Info{Path: p, Mode: fi.Mode, Size: fi.Size}, nil
}

// ReadFile returns the content of regular file p.
func (b *Btrfs) ReadFile(p string) ([]byte, error) { return b.sub.ReadFile(p) }
