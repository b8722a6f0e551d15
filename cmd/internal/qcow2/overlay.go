package qcow2

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/diskfs/go-diskfs/backend"
)

const clusterBits = 16

// ClusterSize is the granularity at which an Overlay tracks writes, and the
// cluster size of the images WriteQcow2 writes.
const ClusterSize = 1 << clusterBits

// Overlay is an in-memory copy-on-write layer over a read-only disk image.
// Reads fall through to the base except for clusters written to; the first
// write to a cluster copies it from the base. Only written clusters use
// memory (ClusterSize bytes each).
//
// Overlay implements go-diskfs' backend.Storage: pass it to
// diskfs.OpenBackend with diskfs.WithOpenMode(diskfs.ReadWrite). It looks
// like a regular file of the base's size; Sys fails (there is no file
// descriptor) and Writable returns the overlay itself. Close does nothing:
// the overlay stays usable so that WriteQcow2 can be called after the
// go-diskfs disk is closed, and the caller closes the base.
//
// An Overlay is safe for concurrent use.
type Overlay struct {
	base io.ReaderAt
	size int64

	mu    sync.Mutex
	dirty map[int64][]byte // cluster index → ClusterSize bytes
	pos   int64            // for Read and Seek
}

var _ backend.Storage = (*Overlay)(nil)
var _ backend.WritableFile = (*Overlay)(nil)

// NewOverlay returns an empty overlay over the first size bytes of base.
// Bytes that base cannot provide (it is shorter than size) read as zeros.
func NewOverlay(base io.ReaderAt, size int64) *Overlay {
	return &Overlay{base: base, size: size, dirty: map[int64][]byte{}}
}

// Size returns the virtual disk size in bytes.
func (o *Overlay) Size() int64 { return o.size }

// Dirty returns the number of clusters written to.
func (o *Overlay) Dirty() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.dirty)
}

// ReadAt reads the disk as modified by the overlay.
func (o *Overlay) ReadAt(p []byte, off int64) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.readAt(p, off)
}

func (o *Overlay) readAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("overlay: negative offset %d", off)
	}
	if off >= o.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > o.size-off {
		n = int(o.size - off)
		eof = io.EOF
	}
	end := off + int64(n)
	for vo := off; vo < end; {
		idx := vo >> clusterBits
		if c, ok := o.dirty[idx]; ok {
			k := copy(p[vo-off:end-off], c[vo&(ClusterSize-1):])
			vo += int64(k)
			continue
		}
		// Read the whole run of clean clusters from the base at once.
		runEnd := (idx + 1) << clusterBits
		for runEnd < end && o.dirty[runEnd>>clusterBits] == nil {
			runEnd += ClusterSize
		}
		runEnd = min(runEnd, end)
		if err := o.readBase(p[vo-off:runEnd-off], vo); err != nil {
			return int(vo - off), err
		}
		vo = runEnd
	}
	return n, eof
}

// readBase reads from the base; what the base does not have reads as zeros.
func (o *Overlay) readBase(p []byte, off int64) error {
	n, err := o.base.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if errors.Is(err, io.EOF) {
		clear(p[n:])
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("overlay: reading base at offset %d: %w", off+int64(n), err)
}

// WriteAt writes to the overlay; the base is never modified. Writes past
// the end of the disk fail.
func (o *Overlay) WriteAt(p []byte, off int64) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if off < 0 {
		return 0, fmt.Errorf("overlay: negative offset %d", off)
	}
	n := len(p)
	var short error
	if off+int64(n) > o.size {
		n = int(max(0, o.size-off))
		short = fmt.Errorf("overlay: write of %d bytes at offset %d is past the end of the disk (%d bytes)", len(p), off, o.size)
	}
	end := off + int64(n)
	for vo := off; vo < end; {
		idx := vo >> clusterBits
		in := vo & (ClusterSize - 1)
		k := min(ClusterSize-in, end-vo)
		c, ok := o.dirty[idx]
		if !ok {
			c = make([]byte, ClusterSize)
			if in != 0 || k != ClusterSize {
				start := idx << clusterBits
				if err := o.readBase(c[:min(ClusterSize, o.size-start)], start); err != nil {
					return int(vo - off), err
				}
			}
			o.dirty[idx] = c
		}
		copy(c[in:], p[vo-off:vo-off+k])
		vo += k
	}
	return n, short
}

// Read reads at the current position (io.Reader, for fs.File).
func (o *Overlay) Read(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.readAt(p, o.pos)
	o.pos += int64(n)
	return n, err
}

// Seek sets the position for Read.
func (o *Overlay) Seek(offset int64, whence int) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var pos int64
	switch whence {
	case io.SeekStart:
		pos = offset
	case io.SeekCurrent:
		pos = o.pos + offset
	case io.SeekEnd:
		pos = o.size + offset
	default:
		return o.pos, fmt.Errorf("overlay: invalid whence %d", whence)
	}
	if pos < 0 {
		return o.pos, fmt.Errorf("overlay: seek to negative position %d", pos)
	}
	o.pos = pos
	return pos, nil
}

// Stat describes the overlay as a regular file of the disk's size, which
// is what go-diskfs expects of an image file.
func (o *Overlay) Stat() (fs.FileInfo, error) { return overlayInfo{size: o.size}, nil }

// Close does nothing; see [Overlay].
func (o *Overlay) Close() error { return nil }

// Sys always fails: an overlay has no file descriptor to run ioctls on.
func (o *Overlay) Sys() (*os.File, error) { return nil, backend.ErrNotSuitable }

// Writable returns the overlay itself.
func (o *Overlay) Writable() (backend.WritableFile, error) { return o, nil }

// Path returns "": the overlay is not a file.
func (o *Overlay) Path() string { return "" }

type overlayInfo struct{ size int64 }

func (i overlayInfo) Name() string       { return "qcow2-overlay" }
func (i overlayInfo) Size() int64        { return i.size }
func (i overlayInfo) Mode() fs.FileMode  { return 0o644 }
func (i overlayInfo) ModTime() time.Time { return time.Time{} }
func (i overlayInfo) IsDir() bool        { return false }
func (i overlayInfo) Sys() any           { return nil }
