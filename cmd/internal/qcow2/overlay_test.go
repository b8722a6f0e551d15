package qcow2

import (
	"bytes"
	"io"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"
)

// write is one WriteAt on an overlay.
type write struct {
	off  int64
	data []byte
}

func fill(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func TestOverlayReadWrite(t *testing.T) {
	const size = 5*ClusterSize + 1234 // last cluster partial
	tests := []struct {
		name   string
		writes []write
		dirty  int
	}{
		{name: "no writes"},
		{name: "one byte", writes: []write{{100, []byte{1}}}, dirty: 1},
		{name: "whole cluster", writes: []write{{ClusterSize, fill(2, ClusterSize)}}, dirty: 1},
		{name: "across clusters", writes: []write{{ClusterSize - 10, fill(3, ClusterSize+20)}}, dirty: 3},
		{name: "last partial cluster", writes: []write{{size - 5, fill(4, 5)}}, dirty: 1},
		{name: "overwrite", writes: []write{{10, fill(5, 100)}, {50, fill(6, 10)}, {0, fill(7, 20)}}, dirty: 1},
		{name: "zeros", writes: []write{{2 * ClusterSize, make([]byte, ClusterSize)}}, dirty: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := pattern(size, 11)
			want := bytes.Clone(base)
			o := NewOverlay(bytes.NewReader(base), size)
			for _, w := range tt.writes {
				n, err := o.WriteAt(w.data, w.off)
				if n != len(w.data) || err != nil {
					t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", len(w.data), w.off, n, err)
				}
				copy(want[w.off:], w.data)
			}
			if got := o.Dirty(); got != tt.dirty {
				t.Errorf("Dirty() = %d, want %d", got, tt.dirty)
			}
			got := make([]byte, size)
			if n, err := o.ReadAt(got, 0); n != size || err != nil {
				t.Fatalf("ReadAt(all) = %d, %v", n, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("content differs at byte %d", firstDiff(got, want))
			}
			if !bytes.Equal(base, pattern(size, 11)) {
				t.Fatal("base was modified")
			}
			rng := rand.New(rand.NewPCG(3, 4))
			for range 100 {
				off := rng.Int64N(size)
				buf := make([]byte, rng.IntN(3*ClusterSize))
				n, err := o.ReadAt(buf, off)
				wantN := min(len(buf), int(size-off))
				if n != wantN || (wantN < len(buf) && err != io.EOF) || (wantN == len(buf) && err != nil) {
					t.Fatalf("ReadAt(%d at %d) = %d, %v", len(buf), off, n, err)
				}
				if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
					t.Fatalf("ReadAt(%d at %d) differs", len(buf), off)
				}
			}
		})
	}
}

func TestOverlayShortBase(t *testing.T) {
	// A base shorter than the overlay reads as zeros past its end.
	base := fill(9, 1000)
	o := NewOverlay(bytes.NewReader(base), 3*ClusterSize)
	if _, err := o.WriteAt([]byte{1}, 2*ClusterSize); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 3*ClusterSize)
	if _, err := o.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3*ClusterSize)
	copy(want, base)
	want[2*ClusterSize] = 1
	if !bytes.Equal(got, want) {
		t.Fatalf("content differs at byte %d", firstDiff(got, want))
	}
}

func TestOverlayWritePastEnd(t *testing.T) {
	o := NewOverlay(bytes.NewReader(make([]byte, 1000)), 1000)
	n, err := o.WriteAt(fill(1, 10), 995)
	if n != 5 || err == nil || !strings.Contains(err.Error(), "past the end of the disk") {
		t.Fatalf("WriteAt = %d, %v; want 5 and an error", n, err)
	}
	if n, err := o.WriteAt([]byte{1}, 1000); n != 0 || err == nil {
		t.Fatalf("WriteAt at the end = %d, %v; want 0 and an error", n, err)
	}
	if n, err := o.ReadAt(make([]byte, 1), 1000); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
	}
}

func TestOverlayFile(t *testing.T) {
	data := pattern(2*ClusterSize, 12)
	o := NewOverlay(bytes.NewReader(data), int64(len(data)))

	fi, err := o.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != int64(len(data)) {
		t.Errorf("Stat() = mode %v size %d, want a regular file of %d bytes", fi.Mode(), fi.Size(), len(data))
	}
	if _, err := o.Sys(); err == nil {
		t.Error("Sys() succeeded, want an error")
	}
	if w, err := o.Writable(); err != nil || w != o {
		t.Errorf("Writable() = %v, %v; want the overlay", w, err)
	}

	if pos, err := o.Seek(-10, io.SeekEnd); pos != int64(len(data))-10 || err != nil {
		t.Fatalf("Seek(-10, end) = %d, %v", pos, err)
	}
	rest, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(rest, data[len(data)-10:]) {
		t.Fatalf("ReadAll after Seek = %x, %v", rest, err)
	}
	if _, err := o.Seek(5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if pos, _ := o.Seek(5, io.SeekCurrent); pos != 10 {
		t.Fatalf("Seek(5, current) = %d, want 10", pos)
	}
	if _, err := o.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to -1 succeeded")
	}
	var _ fs.File = o
}
