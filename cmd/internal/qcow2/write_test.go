package qcow2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// imageInfo is the part of `qemu-img info --output=json` the tests check.
type imageInfo struct {
	Format             string `json:"format"`
	VirtualSize        int64  `json:"virtual-size"`
	ClusterSize        int64  `json:"cluster-size"`
	BackingFilename    string `json:"backing-filename,omitempty"`
	BackingFilenameFmt string `json:"backing-filename-format,omitempty"`
}

func qemuInfo(t *testing.T, img string) imageInfo {
	t.Helper()
	var info imageInfo
	if err := json.Unmarshal([]byte(run(t, "qemu-img", "info", "--output=json", img)), &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func TestWriteQcow2(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	// Base images, made in dir; they return the path and format.
	qcow2Base := func(t *testing.T, dir string) (string, string) {
		img := filepath.Join(dir, "base.qcow2")
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "8M")
		qemuIO(t, img, "write -P 0xab 0 64k", "write -P 0x11 1M 300k", "write -P 0x22 7M 1M")
		return img, "qcow2"
	}
	rawBase := func(t *testing.T, dir string) (string, string) {
		img := filepath.Join(dir, "base.raw")
		data := pattern(8<<20-512, 21) // not cluster aligned
		clear(data[2<<20 : 5<<20])
		writeRaw(t, img, data)
		return img, "raw"
	}
	compressedBase := func(t *testing.T, dir string) (string, string) {
		raw := filepath.Join(dir, "src.raw")
		writeRaw(t, raw, pattern(8<<20, 22))
		img := filepath.Join(dir, "base.qcow2")
		run(t, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, img)
		return img, "qcow2"
	}
	someWrites := []write{
		{0, []byte("hello")},                        // partial cluster over data
		{ClusterSize*3 - 100, fill(0xcd, 300)},      // across clusters
		{2 << 20, fill(0xee, 3*ClusterSize)},        // whole clusters over zeros
		{7 << 20, make([]byte, ClusterSize)},        // zeros over data
		{1<<20 + 4096, make([]byte, 2*ClusterSize)}, // partly zeros
	}

	tests := []struct {
		name   string
		base   func(t *testing.T, dir string) (string, string)
		writes []write
		// backing is how the output names its backing file: "rel",
		// "abs", or "" for a standalone image.
		backing string
	}{
		{"qcow2 base, relative backing", qcow2Base, someWrites, "rel"},
		{"qcow2 base, absolute backing", qcow2Base, someWrites, "abs"},
		{"raw base, backing", rawBase, someWrites, "rel"},
		{"compressed base, backing", compressedBase, someWrites, "rel"},
		{"no writes, backing", qcow2Base, nil, "rel"},
		{"qcow2 base, standalone", qcow2Base, someWrites, ""},
		{"raw base, standalone", rawBase, someWrites, ""},
		{"compressed base, standalone", compressedBase, someWrites, ""},
		{"no writes, standalone", qcow2Base, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			basePath, format := tt.base(t, dir)
			want := qemuRaw(t, basePath)

			base, err := OpenAny(basePath)
			if err != nil {
				t.Fatal(err)
			}
			defer base.Close()
			o := NewOverlay(base, base.Size())
			for _, w := range tt.writes {
				if _, err := o.WriteAt(w.data, w.off); err != nil {
					t.Fatal(err)
				}
				copy(want[w.off:], w.data)
			}

			var backingFile, backingFormat string
			switch tt.backing {
			case "rel":
				backingFile, backingFormat = filepath.Base(basePath), format
			case "abs":
				backingFile, backingFormat = basePath, format
			}
			out := filepath.Join(dir, "out.qcow2")
			if err := o.WriteQcow2(out, backingFile, backingFormat); err != nil {
				t.Fatal(err)
			}

			qemuCheck(t, out)
			gotInfo := qemuInfo(t, out)
			wantInfo := imageInfo{
				Format:             "qcow2",
				VirtualSize:        base.Size(),
				ClusterSize:        ClusterSize,
				BackingFilename:    backingFile,
				BackingFilenameFmt: backingFormat,
			}
			if diff := cmp.Diff(wantInfo, gotInfo); diff != "" {
				t.Errorf("qemu-img info (-want +got):\n%s", diff)
			}
			if got := qemuRaw(t, out); !bytes.Equal(got, want) {
				t.Fatalf("qemu-img convert of the result differs from the expected content at byte %d", firstDiff(got, want))
			}

			// Our reader reads what we wrote.
			r, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if name, format := r.BackingFile(); name != backingFile || format != backingFormat {
				t.Errorf("BackingFile() = %q, %q; want %q, %q", name, format, backingFile, backingFormat)
			}
			got := make([]byte, r.Size())
			if _, err := r.ReadAt(got, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Open of the result differs from the expected content at byte %d", firstDiff(got, want))
			}

			if tt.backing != "" {
				// Only the dirty clusters take space, plus the header, one
				// L2 table, the L1 table and the refcounts.
				fi, err := os.Stat(out)
				if err != nil {
					t.Fatal(err)
				}
				if max := int64(o.Dirty()+5) * ClusterSize; fi.Size() > max {
					t.Errorf("output is %d bytes, want at most %d for %d dirty clusters", fi.Size(), max, o.Dirty())
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

// TestWriteQcow2Large uses a 3 GiB image so that the output has several L2
// tables, and compares it with the same writes done by qemu-io.
func TestWriteQcow2Large(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "3G")
	qemuIO(t, base, "write -P 0x01 0 1M", "write -P 0x02 1G 64k", "write -P 0x03 3221159936 64k")

	writes := []struct {
		pattern byte
		off     int64
		n       int64
	}{
		{0x10, 4096, 8192},
		{0x11, 512<<20 - 4096, 3 * 4096}, // crosses an L2 boundary
		{0x00, 1 << 30, ClusterSize},     // zeros over data
		{0x12, 2<<30 + 12345, 100000},
		{0x13, 3<<30 - 4096, 4096}, // the last bytes
	}
	ref := filepath.Join(dir, "ref.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", ref, "3G")

	r, err := Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o := NewOverlay(r, r.Size())
	var cmds []string
	for _, w := range writes {
		if _, err := o.WriteAt(fill(w.pattern, int(w.n)), w.off); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, fmt.Sprintf("write -P %#x %d %d", w.pattern, w.off, w.n))
	}
	qemuIO(t, ref, cmds...)

	for _, tc := range []struct{ name, backing, format string }{
		{"backing", "base.qcow2", "qcow2"},
		{"standalone", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".qcow2")
			if err := o.WriteQcow2(out, tc.backing, tc.format); err != nil {
				t.Fatal(err)
			}
			qemuCheck(t, out)
			cmd := exec.Command("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", ref, out)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("qemu-img compare: %v\n%s", err, b)
			}
		})
	}
}

// failingReader fails every read past 1 MiB.
type failingReader struct{}

func (failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > 1<<20 {
		return 0, errors.New("disk on fire")
	}
	clear(p)
	p[0] = 1
	return len(p), nil
}

func TestWriteQcow2Errors(t *testing.T) {
	tests := []struct {
		name          string
		base          io.ReaderAt
		dir           string // relative to the test's temp dir
		backingFile   string
		backingFormat string
		want          string
	}{
		{"format without backing", bytes.NewReader(nil), "", "", "qcow2", `backing format "qcow2" given without a backing file`},
		{"bad backing format", bytes.NewReader(nil), "", "base.vmdk", "vmdk", `backing format "vmdk": want qcow2 or raw`},
		{"missing backing format", bytes.NewReader(nil), "", "base.qcow2", "", `backing format "": want qcow2 or raw`},
		{"backing name too long", bytes.NewReader(nil), "", strings.Repeat("x", 1024), "raw", "backing file name is 1024 bytes long"},
		{"missing directory", bytes.NewReader(nil), "nope", "", "", "no such file or directory"},
		{"base read fails", failingReader{}, "", "", "", "disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, tt.dir, "out.qcow2")
			o := NewOverlay(tt.base, 4<<20)
			err := o.WriteQcow2(out, tt.backingFile, tt.backingFormat)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), out) {
				t.Fatalf("WriteQcow2 error = %v, want one naming %s and containing %q", err, out, tt.want)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Errorf("files left behind: %v", entries)
			}
		})
	}
}
