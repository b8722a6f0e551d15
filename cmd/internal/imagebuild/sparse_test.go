package imagebuild

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCopySparse(t *testing.T) {
	const size = 8 << 20
	chunk := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	tests := []struct {
		name   string
		writes map[int64][]byte // offset → data in the source
		off    int64            // where the source goes in the destination
	}{
		{name: "all hole"},
		{name: "data at start and end", writes: map[int64][]byte{0: chunk('a', 4096), size - 4096: chunk('z', 4096)}, off: 1 << 20},
		{name: "unaligned data", writes: map[int64][]byte{12345: []byte("hello"), 3<<20 + 7: chunk('q', 70000)}},
		{name: "zeros written explicitly", writes: map[int64][]byte{1 << 20: make([]byte, 2<<20), 5 << 20: []byte("x")}, off: 512},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := create(t, filepath.Join(dir, "src"), size)
			for off, data := range tt.writes {
				if _, err := src.WriteAt(data, off); err != nil {
					t.Fatal(err)
				}
			}
			dst := create(t, filepath.Join(dir, "dst"), tt.off+size+(1<<20))
			if err := copySparse(t.Context(), dst, tt.off, src); err != nil {
				t.Fatal(err)
			}
			want := make([]byte, tt.off+size+(1<<20))
			for off, data := range tt.writes {
				copy(want[tt.off+off:], data)
			}
			got, err := os.ReadFile(dst.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want, got) {
				t.Fatal("destination content differs from the source")
			}
			// Zeros are never written, so the destination stays sparse:
			// at most the data plus a 64 KiB chunk per write is allocated.
			var written int64
			for _, data := range tt.writes {
				if !isZero(data) {
					written += int64(len(data)) + 2*sparseChunk
				}
			}
			fi, err := dst.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if allocated := fi.Sys().(*syscall.Stat_t).Blocks * 512; allocated > written {
				t.Errorf("destination has %d bytes allocated, want at most %d", allocated, written)
			}
		})
	}
}

func create(t *testing.T, path string, size int64) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return f
}
