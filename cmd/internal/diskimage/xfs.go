package diskimage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/masahiro331/go-xfs-filesystem/xfs"
)

// XFS is the xfs filesystem on a partition of an [Image], read-only: a
// narrow adapter over github.com/masahiro331/go-xfs-filesystem (the reader
// trivy uses for VM images). Paths are absolute inside the filesystem.
// Symbolic links are listed but not followed: the library does not
// resolve them, and the boot files distrotest reads are regular files.
type XFS struct {
	Partition Partition
	fs        *xfs.FileSystem
}

// XFS opens the xfs filesystem on partition p.
func (img *Image) XFS(p Partition) (*XFS, error) {
	if p.Filesystem != "xfs" {
		return nil, fmt.Errorf("partition %d is %s, not xfs", p.Number, p.FilesystemName())
	}
	var fsys *xfs.FileSystem
	err := guardLib("go-xfs-filesystem", func() (err error) {
		fsys, err = xfs.NewFS(*io.NewSectionReader(newReadAhead(io.NewSectionReader(img.overlay, p.Start, p.Size), p.Size), 0, p.Size), nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the xfs filesystem on partition %d: %w", p.Number, err)
	}
	return &XFS{Partition: p, fs: fsys}, nil
}

// Part is the partition the filesystem is on.
func (x *XFS) Part() Partition { return x.Partition }

// lib turns an absolute path into the library's io/fs form.
func (x *XFS) lib(p string) string { return rel(p) }

// ReadDir lists directory p, sorted by name.
func (x *XFS) ReadDir(p string) ([]DirEntry, error) {
	p = path.Clean("/" + p)
	var entries []fs.DirEntry
	err := guardLib("go-xfs-filesystem", func() (err error) {
		name := x.lib(p)
		if name == "." {
			name = "/"
		}
		entries, err = x.fs.ReadDir(name)
		return err
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("reading directory %s: %w", p, err)
	}
	out := make([]DirEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, DirEntry{Name: e.Name(), Type: e.Type()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Stat describes p (a symbolic link is described, not followed).
func (x *XFS) Stat(p string) (*Info, error) {
	p = path.Clean("/" + p)
	if p == "/" {
		return &Info{Path: p, Mode: fs.ModeDir | 0o755}, nil
	}
	entries, err := x.rawDir(path.Dir(p))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Name() != path.Base(p) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return &Info{Path: p, Mode: fi.Mode(), Size: fi.Size()}, nil
	}
	return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
}

func (x *XFS) rawDir(dir string) ([]fs.DirEntry, error) {
	var entries []fs.DirEntry
	err := guardLib("go-xfs-filesystem", func() (err error) {
		name := x.lib(dir)
		if name == "." {
			name = "/"
		}
		entries, err = x.fs.ReadDir(name)
		return err
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "not found") {
			return nil, fmt.Errorf("%s: %w", dir, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("reading directory %s: %w", dir, err)
	}
	return entries, nil
}

// Open opens regular file p for reading.
func (x *XFS) Open(p string) (io.ReadCloser, *Info, error) {
	info, err := x.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode.IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file (%s)", info.Path, info.Mode.Type())
	}
	var f fs.File
	err = guardLib("go-xfs-filesystem", func() (err error) {
		f, err = x.fs.Open(x.lib(info.Path))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", info.Path, err)
	}
	return &reader{r: f, lib: "go-xfs-filesystem", left: info.Size, path: info.Path}, info, nil
}

// ReadFile returns the content of regular file p.
func (x *XFS) ReadFile(p string) ([]byte, error) {
	r, info, err := x.Open(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readAll(r, info.Size)
}

// guardLib runs fn, turning a panic of a filesystem library into an error.
func guardLib(lib string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s failed: %v", lib, r)
		}
	}()
	return fn()
}
