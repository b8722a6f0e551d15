// Package atomicfile writes files so that readers see the old content or the
// new content, never a partial file: data goes to a temporary file in the
// destination's directory, is synced, and is renamed over the destination.
// (The same idea as tailscale's atomicfile.)
//
// It is for files the project writes itself. Files that another program
// writes (qemu-img, QEMU's screendump) are written by that program to a
// temporary name and renamed by the caller.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile writes data to path with permissions perm, atomically.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := New(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}

// WriteFrom copies r to path with permissions perm, atomically.
func WriteFrom(path string, r io.Reader, perm os.FileMode) error {
	f, err := New(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}

// File is a temporary file that replaces its destination on Commit. Write
// to it as to an *os.File; call Abort (usually deferred) to drop it when
// Commit is not reached. Abort after Commit does nothing.
type File struct {
	*os.File
	path string
	perm os.FileMode
	done bool
}

// New creates the temporary file for path, in path's directory.
func New(path string, perm os.FileMode) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return &File{File: f, path: path, perm: perm}, nil
}

// Commit syncs the temporary file, sets its permissions and renames it over
// the destination.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("writing %s: already committed or aborted", f.path)
	}
	f.done = true
	tmp := f.File.Name()
	err := errors.Join(f.File.Chmod(f.perm), f.File.Sync())
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	// Make the rename durable; failing to sync the directory is not worth
	// failing a write that has already replaced the file.
	if d, err := os.Open(filepath.Dir(f.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Abort closes and removes the temporary file unless it was committed.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.File.Name())
}

// Name is the destination path (not the temporary file's).
func (f *File) Name() string { return f.path }
