package diskimage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
)

// ErrHtree is wrapped by the error of a write whose parent directory has a
// hashed index. go-diskfs adds an entry by rewriting the whole directory as
// a linear one while the inode keeps its index flag, which corrupts the
// directory; distrotest never adds entries to such directories.
var ErrHtree = errors.New("has a hashed index (htree)")

// Writable returns an error when the filesystem must not be written: its
// journal needs recovery, it is not clean, or it uses features the
// go-diskfs writer does not keep consistent (quota, bigalloc, meta_bg,
// mmp, ...). Every write checks it first.
func (f *FS) Writable() error {
	if !f.writeDone {
		f.writeDone = true
		if msg := f.Superblock.writeProblem(); msg != "" {
			f.writeErr = fmt.Errorf("the ext4 filesystem on partition %d cannot be written: %s", f.Partition.Number, msg)
		}
	}
	return f.writeErr
}

// prepare checks that a new entry p may be created and returns its real
// path and its parent directory: the filesystem is writable, the parent
// exists and is a directory go-diskfs can safely add an entry to, and
// nothing exists at p.
func (f *FS) prepare(p string) (string, *Info, error) {
	if err := f.Writable(); err != nil {
		return "", nil, err
	}
	p = path.Clean("/" + p)
	name := path.Base(p)
	if p == "/" || len(name) > 255 {
		return "", nil, fmt.Errorf("creating %q: invalid name", p)
	}
	dir, err := f.Stat(path.Dir(p))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil, fmt.Errorf("creating %s: parent directory %s does not exist", p, path.Dir(p))
	case err != nil:
		return "", nil, fmt.Errorf("creating %s: %w", p, err)
	case !dir.Mode.IsDir():
		return "", nil, fmt.Errorf("creating %s: %s is not a directory", p, path.Dir(p))
	case dir.Htree:
		return "", nil, fmt.Errorf("creating %s: directory %s %w: go-diskfs would rewrite it without its index and corrupt it, so distrotest does not add entries to it", p, dir.Path, ErrHtree)
	case dir.InlineData:
		return "", nil, fmt.Errorf("creating %s: directory %s stores its entries inline (inline_data), which go-diskfs cannot extend", p, dir.Path)
	case dir.Encrypted:
		return "", nil, fmt.Errorf("creating %s: directory %s is encrypted", p, dir.Path)
	}
	real := path.Join(dir.Path, name)
	if _, err := f.statEntry(real); err == nil {
		return "", nil, fmt.Errorf("creating %s: %w", p, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("creating %s: %w", p, err)
	}
	return real, dir, nil
}

// Mkdir creates directory p with permissions mode. Its parent must exist;
// p must not.
func (f *FS) Mkdir(p string, mode fs.FileMode) error {
	real, parent, err := f.prepare(p)
	if err != nil {
		return err
	}
	// go-diskfs increments the parent's link count; with dir_nlink a count
	// of 1 means "too many to count" and must stay 1.
	if parent.Links <= 1 || parent.Links >= 65000 {
		return fmt.Errorf("creating %s: directory %s has %d links, too many subdirectories for go-diskfs to count", p, parent.Path, parent.Links)
	}
	if err := guard(func() error { return f.fs.Mkdir(rel(real)) }); err != nil {
		return fmt.Errorf("creating directory %s: %w", p, err)
	}
	if err := guard(func() error { return f.fs.Chmod(rel(real), mode.Perm()) }); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", p, err)
	}
	info, err := f.statEntry(real)
	if err != nil || !info.Mode.IsDir() || info.Mode.Perm() != mode.Perm() {
		return fmt.Errorf("creating directory %s: it does not read back as a %04o directory (%v)", p, mode.Perm(), err)
	}
	return nil
}

// WriteFile creates regular file p with data and permissions mode. p must
// not exist. The file is read back and compared.
func (f *FS) WriteFile(p string, data []byte, mode fs.FileMode) error {
	real, _, err := f.prepare(p)
	if err != nil {
		return err
	}
	err = guard(func() error {
		w, err := f.fs.OpenFile(rel(real), os.O_CREATE|os.O_RDWR)
		if err != nil {
			return err
		}
		if len(data) > 0 {
			if _, err := w.Write(data); err != nil {
				w.Close()
				return err
			}
		}
		return w.Close()
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := guard(func() error { return f.fs.Chmod(rel(real), mode.Perm()) }); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", p, err)
	}
	back, err := f.ReadFile(real)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", p, err)
	}
	if !bytes.Equal(back, data) {
		return fmt.Errorf("writing %s: the file reads back differently (%d bytes written, %d read)", p, len(data), len(back))
	}
	return nil
}

// Symlink creates symbolic link p pointing to target. p must not exist.
func (f *FS) Symlink(target, p string) error {
	if target == "" || len(target) >= 4096 {
		return fmt.Errorf("creating symbolic link %s: invalid target %q", p, target)
	}
	real, _, err := f.prepare(p)
	if err != nil {
		return err
	}
	if err := guard(func() error { return f.fs.Symlink(target, rel(real)) }); err != nil {
		return fmt.Errorf("creating symbolic link %s -> %s: %w", p, target, err)
	}
	info, err := f.statEntry(real)
	if err != nil || info.Mode&fs.ModeSymlink == 0 || info.Target != target {
		return fmt.Errorf("creating symbolic link %s -> %s: it does not read back (%v)", p, target, err)
	}
	return nil
}
