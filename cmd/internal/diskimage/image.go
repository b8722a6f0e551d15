package diskimage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/distrotest/distrotest/cmd/internal/qcow2"
)

// minSize is the smallest virtual disk that can hold a partition table and
// a partition.
const minSize = 64 << 10

// Image is a disk image opened read-only. Writes made through [FS] go to
// an in-memory overlay; [Image.WriteQcow2] saves them.
type Image struct {
	Path       string // absolute path of the image file
	Format     string // "qcow2" or "raw"
	Size       int64  // virtual size in bytes
	Table      string // "gpt" or "mbr"
	Partitions []Partition
	// Notes are findings that do not stop the image from being used, e.g.
	// a damaged primary GPT that was read from its backup.
	Notes []string

	base    qcow2.Reader
	overlay *qcow2.Overlay
}

// Open opens the qcow2 or raw disk image at path read-only and reads its
// partition table and the filesystem type of every partition. Errors do not
// repeat path; callers add it ("patching %s: %w").
func Open(path string) (*Image, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, unwrapPath(err)
	}
	if fi.IsDir() {
		return nil, errors.New("is a directory, not a disk image")
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("is not a regular file (mode %s)", fi.Mode())
	}
	base, err := qcow2.OpenAny(abs)
	if err != nil {
		return nil, unwrapPath(err)
	}
	img := &Image{Path: abs, Format: "raw", Size: base.Size(), base: base}
	if _, ok := base.(*qcow2.Image); ok {
		img.Format = "qcow2"
	}
	if img.Size < minSize {
		base.Close()
		return nil, fmt.Errorf("not a disk image: %d bytes is too small to hold a partition table and a filesystem", img.Size)
	}
	img.overlay = qcow2.NewOverlay(base, img.Size)
	if err := img.readPartitions(); err != nil {
		base.Close()
		return nil, err
	}
	return img, nil
}

// unwrapPath drops the path from an *fs.PathError: the caller names the
// file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Close releases the image file. Unsaved writes are lost.
func (img *Image) Close() error { return img.base.Close() }

// Dirty returns the number of 64 KiB clusters changed in memory.
func (img *Image) Dirty() int { return img.overlay.Dirty() }

// WriteQcow2 saves the image with the changes made through [FS] as a qcow2
// file at path. By default the file is an overlay holding only the changed
// clusters, with the input image (by absolute path) as its backing file: a
// few hundred KiB, written in milliseconds, valid as long as the input
// stays where it is, unchanged. With standalone the file holds the whole
// disk and needs nothing else.
func (img *Image) WriteQcow2(path string, standalone bool) error {
	backing, format := img.Path, img.Format
	if standalone {
		backing, format = "", ""
	}
	return img.overlay.WriteQcow2(path, backing, format)
}
