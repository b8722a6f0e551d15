package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// lseek whence values for sparse files (not in package syscall).
const (
	seekData = 3 // SEEK_DATA
	seekHole = 4 // SEEK_HOLE
)

// sparseChunk is the granularity at which zero runs inside data extents are
// skipped rather than written.
const sparseChunk = 64 << 10

// copySparse copies src into dst at offset off, keeping holes: it visits
// only src's data extents (SEEK_DATA/SEEK_HOLE) and skips chunks of zeros
// inside them. dst must be zero in the target range (a fresh sparse file).
func copySparse(ctx context.Context, dst *os.File, off int64, src *os.File) error {
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	fd := int(src.Fd())
	buf := make([]byte, 1<<20)
	for pos := int64(0); pos < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := syscall.Seek(fd, pos, seekData)
		if errors.Is(err, syscall.ENXIO) {
			return nil // only a hole remains
		}
		if err != nil {
			return fmt.Errorf("seeking data in %s: %w", src.Name(), err)
		}
		hole, err := syscall.Seek(fd, data, seekHole)
		if err != nil {
			return fmt.Errorf("seeking hole in %s: %w", src.Name(), err)
		}
		if err := copyExtent(dst, off, src, data, hole, buf); err != nil {
			return err
		}
		pos = hole
	}
	return nil
}

// copyExtent copies src[from:to) to dst at off+from, skipping zero chunks.
func copyExtent(dst *os.File, off int64, src *os.File, from, to int64, buf []byte) error {
	for from < to {
		n := int(min(int64(len(buf)), to-from))
		if m, err := src.ReadAt(buf[:n], from); m < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading %s: %w", src.Name(), err)
		}
		for c := 0; c < n; c += sparseChunk {
			chunk := buf[c:min(c+sparseChunk, n)]
			if isZero(chunk) {
				continue
			}
			if _, err := dst.WriteAt(chunk, off+from+int64(c)); err != nil {
				return fmt.Errorf("writing %s: %w", dst.Name(), err)
			}
		}
		from += int64(n)
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
