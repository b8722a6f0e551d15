package machine

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testRAM is a guest memory of pages pages where the pages in data hold
// random bytes and the others are zero.
func testRAM(t *testing.T, pages int, data ...int) (*os.File, []byte) {
	t.Helper()
	size := int64(pages * ramPage)
	ram, err := newRAM("test", size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ram.Close() })
	want := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, uint64(pages)))
	for _, p := range data {
		for i := p * ramPage; i < (p+1)*ramPage; i++ {
			want[i] = byte(rng.Uint32())
		}
	}
	if _, err := ram.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	return ram, want
}

func TestRAMRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pages int
		data  []int
	}{
		{"all zero", 16, nil},
		{"first and last page", 16, []int{0, 15}},
		{"runs", 600, []int{1, 2, 3, 255, 256, 257, 400}}, // runs across the save's 1 MiB chunks
		{"all data", 8, []int{0, 1, 2, 3, 4, 5, 6, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ram, want := testRAM(t, tc.pages, tc.data...)
			path := filepath.Join(t.TempDir(), "memory")
			if err := saveRAM(path, ram, int64(len(want))); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if max := int64(len(tc.data)*(ramPage+16) + 24 + 20); fi.Size() > max {
				t.Errorf("the file has %d bytes for %d pages of data (at most %d)", fi.Size(), len(tc.data), max)
			}
			got, err := newRAM("restored", int64(len(want)))
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if err := loadRAM(path, got, int64(len(want))); err != nil {
				t.Fatal(err)
			}
			data := make([]byte, len(want))
			if _, err := got.ReadAt(data, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, want) {
				t.Error("the restored memory differs from the saved one")
			}
		})
	}
}

func TestRAMDamaged(t *testing.T) {
	ram, want := testRAM(t, 32, 3, 4, 20)
	path := filepath.Join(t.TempDir(), "memory")
	if err := saveRAM(path, ram, int64(len(want))); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		size   int64 // the guest's; 0: the saved one
		change func([]byte) []byte
		err    string
	}{
		{"a data byte", 0, func(b []byte) []byte { b[24+16+100] ^= 1; return b }, "checksum"},
		{"the checksum", 0, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "checksum"},
		{"truncated in a run", 0, func(b []byte) []byte { return b[:24+16+10] }, "truncated in run 0"},
		{"truncated at the end", 0, func(b []byte) []byte { return b[:len(b)-4] }, "no checksum"},
		{"empty", 0, func([]byte) []byte { return nil }, "no header"},
		{"foreign", 0, func(b []byte) []byte { return append([]byte("QEVM"), b[4:]...) }, "wrong magic"},
		{"trailing bytes", 0, func(b []byte) []byte { return append(b, 0) }, "after its checksum"},
		{"a run out of place", 0, func(b []byte) []byte { b[24] = 1; return b }, "out of place"},
		{"another guest size", 64 * ramPage, func(b []byte) []byte { return b }, "the guest has 262144"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "memory")
			if err := os.WriteFile(p, tc.change(bytes.Clone(good)), 0o644); err != nil {
				t.Fatal(err)
			}
			size := tc.size
			if size == 0 {
				size = int64(len(want))
			}
			dst, err := newRAM("restored", size)
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			err = loadRAM(p, dst, size)
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), p) {
				t.Errorf("loadRAM: %v, want an error naming the file and %q", err, tc.err)
			}
		})
	}
}
