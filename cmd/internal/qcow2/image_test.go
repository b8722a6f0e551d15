package qcow2

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeRaw writes a raw image file.
func writeRaw(tb testing.TB, path string, data []byte) {
	tb.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestOpenMatchesQemu(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	tests := []struct {
		name string
		// make creates the image in dir and returns its path.
		make func(t *testing.T, dir string) string
	}{
		{
			name: "v3 empty",
			make: func(t *testing.T, dir string) string {
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "4M")
				return img
			},
		},
		{
			name: "v3 data",
			make: func(t *testing.T, dir string) string {
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "8M")
				qemuIO(t, img, "write -P 0xab 0 64k", "write -P 0x11 100k 5k", "write -P 0x22 1M 300k", "write -P 0x33 8388096 512")
				return img
			},
		},
		{
			name: "v2 data",
			make: func(t *testing.T, dir string) string {
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", img, "8M")
				qemuIO(t, img, "write -P 0xab 0 64k", "write -P 0x22 1M 300k")
				return img
			},
		},
		{
			name: "small clusters, several L2 tables",
			make: func(t *testing.T, dir string) string {
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "16M")
				qemuIO(t, img, "write -P 0x01 0 6k", "write -P 0x02 3M 9k", "write -P 0x03 9M 1k", "write -P 0x04 16773120 4k")
				return img
			},
		},
		{
			name: "large clusters",
			make: func(t *testing.T, dir string) string {
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", img, "8M")
				qemuIO(t, img, "write -P 0x01 1000k 2000k")
				return img
			},
		},
		{
			name: "size not cluster aligned",
			make: func(t *testing.T, dir string) string {
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "1000448")
				qemuIO(t, img, "write -P 0x5a 999936 512")
				return img
			},
		},
		{
			name: "zero clusters over backing",
			make: func(t *testing.T, dir string) string {
				base := filepath.Join(dir, "base.raw")
				writeRaw(t, base, pattern(2<<20, 1))
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", img, "2M")
				qemuIO(t, img, "write -z 64k 128k", "write -P 0x77 512k 4k", "write -z 520k 4k")
				return img
			},
		},
		{
			name: "compressed",
			make: func(t *testing.T, dir string) string {
				raw := filepath.Join(dir, "src.raw")
				data := pattern(3<<20, 2)
				clear(data[1<<20 : 2<<20]) // an empty stretch
				writeRaw(t, raw, data)
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, img)
				return img
			},
		},
		{
			name: "compressed v2 small clusters",
			make: func(t *testing.T, dir string) string {
				raw := filepath.Join(dir, "src.raw")
				writeRaw(t, raw, pattern(1<<20, 3))
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10,cluster_size=4096", raw, img)
				return img
			},
		},
		{
			name: "backing chain raw, qcow2, qcow2",
			make: func(t *testing.T, dir string) string {
				if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
					t.Fatal(err)
				}
				writeRaw(t, filepath.Join(dir, "sub", "base.raw"), pattern(4<<20, 4))
				mid := filepath.Join(dir, "sub", "mid.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", mid, "4M")
				qemuIO(t, mid, "write -P 0x10 0 100k", "write -P 0x11 2M 64k")
				top := filepath.Join(dir, "top.qcow2")
				// relative to top's directory
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "sub/mid.qcow2", "-F", "qcow2", top, "4M")
				qemuIO(t, top, "write -P 0x20 50k 100k", "write -P 0x21 3M 1k")
				return top
			},
		},
		{
			name: "backing smaller than image",
			make: func(t *testing.T, dir string) string {
				base := filepath.Join(dir, "base.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "1M")
				qemuIO(t, base, "write -P 0x42 0 1M")
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", img, "3M")
				qemuIO(t, img, "write -P 0x43 2M 4k")
				return img
			},
		},
		{
			name: "backing format probed",
			make: func(t *testing.T, dir string) string {
				base := filepath.Join(dir, "base.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "1M")
				qemuIO(t, base, "write -P 0x42 0 64k")
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", img, "1M")
				// Drop the backing format extension: rewrite its type
				// to an unknown one, which readers must ignore.
				h := readHeader(t, img)
				if h.backingFormat != "qcow2" {
					t.Fatalf("setup: backing format %q", h.backingFormat)
				}
				off := findExtension(t, img, extBackingFormat)
				patchFile(t, img, off, be32(0x12345678))
				return img
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.make(t, t.TempDir())
			want := qemuRaw(t, img)

			r, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Size() != int64(len(want)) {
				t.Fatalf("Size() = %d, qemu-img says %d", r.Size(), len(want))
			}
			got := make([]byte, len(want))
			if n, err := r.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt(all) = %d, %v", n, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("content differs from qemu-img convert at byte %d", firstDiff(got, want))
			}

			// Unaligned reads, including ones crossing the end.
			rng := rand.New(rand.NewPCG(1, 2))
			for range 200 {
				off := rng.Int64N(int64(len(want)))
				n := rng.IntN(200 << 10)
				buf := make([]byte, n)
				m, err := r.ReadAt(buf, off)
				wantN := min(n, len(want)-int(off))
				if m != wantN {
					t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d bytes", n, off, m, err, wantN)
				}
				if wantN < n && err != io.EOF {
					t.Fatalf("ReadAt past the end: err = %v, want io.EOF", err)
				}
				if wantN == n && err != nil {
					t.Fatalf("ReadAt(%d bytes at %d): %v", n, off, err)
				}
				if !bytes.Equal(buf[:m], want[off:off+int64(m)]) {
					t.Fatalf("ReadAt(%d bytes at %d): content differs at byte %d", n, off, firstDiff(buf[:m], want[off:]))
				}
			}
			if n, err := r.ReadAt(make([]byte, 1), r.Size()); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func readHeader(t *testing.T, img string) header {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(data[:min(len(data), 1<<16)])
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// findExtension returns the file offset of the header extension of type typ.
func findExtension(t *testing.T, img string, typ uint32) int64 {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	h := readHeader(t, img)
	off := int(h.headerLength)
	for off+8 <= len(data) {
		ty := binary.BigEndian.Uint32(data[off:])
		l := int(binary.BigEndian.Uint32(data[off+4:]))
		if ty == typ {
			return int64(off)
		}
		if ty == 0 {
			break
		}
		off += 8 + (l+7)&^7
	}
	t.Fatalf("no header extension %#x in %s", typ, img)
	return 0
}

func TestOpenAny(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	data := pattern(1<<20+512, 9)
	writeRaw(t, raw, data)
	img := filepath.Join(dir, "disk.qcow2")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, img)
	tests := []struct {
		name   string
		path   string
		qcow2  bool
		wantSz int64
	}{
		{"raw", raw, false, int64(len(data))},
		{"qcow2", img, true, int64(len(data))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := OpenAny(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, ok := r.(*Image); ok != tt.qcow2 {
				t.Errorf("OpenAny returned %T, want qcow2 %v", r, tt.qcow2)
			}
			if r.Size() != tt.wantSz {
				t.Errorf("Size() = %d, want %d", r.Size(), tt.wantSz)
			}
			got := make([]byte, r.Size())
			if _, err := r.ReadAt(got, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("content differs at byte %d", firstDiff(got, data))
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	// plain makes a valid image with some data.
	plain := func(t *testing.T, dir string) string {
		img := filepath.Join(dir, "a.qcow2")
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "4M")
		qemuIO(t, img, "write -P 0xab 0 64k")
		return img
	}
	tests := []struct {
		name string
		make func(t *testing.T, dir string) string
		// want are substrings of the error, besides the file name.
		want []string
	}{
		{
			name: "empty file",
			make: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.qcow2")
				writeRaw(t, p, nil)
				return p
			},
			want: []string{"not a qcow2 image"},
		},
		{
			name: "garbage",
			make: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.qcow2")
				writeRaw(t, p, pattern(100000, 5))
				return p
			},
			want: []string{"not a qcow2 image"},
		},
		{
			name: "truncated header",
			make: func(t *testing.T, dir string) string {
				img := plain(t, dir)
				if err := os.Truncate(img, 60); err != nil {
					t.Fatal(err)
				}
				return img
			},
			want: []string{"truncated header"},
		},
		{
			name: "magic only",
			make: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "a.qcow2")
				writeRaw(t, p, []byte(magic))
				return p
			},
			want: []string{"truncated header"},
		},
		{
			name: "version 4",
			make: func(t *testing.T, dir string) string {
				img := plain(t, dir)
				patchFile(t, img, 4, be32(4))
				return img
			},
			want: []string{"unsupported qcow2 version 4"},
		},
		{
			name: "L1 table past EOF",
			make: func(t *testing.T, dir string) string {
				img := plain(t, dir)
				patchFile(t, img, 40, be64(1<<40))
				return img
			},
			want: []string{"L1 table", "past the end of the file"},
		},
		{
			name: "L1 table too small",
			make: func(t *testing.T, dir string) string {
				img := plain(t, dir)
				patchFile(t, img, 24, be64(1<<40)) // virtual size 1 TiB
				return img
			},
			want: []string{"L1 table has 1 entries"},
		},
		{
			name: "bad cluster size",
			make: func(t *testing.T, dir string) string {
				img := plain(t, dir)
				patchFile(t, img, 20, be32(30))
				return img
			},
			want: []string{"cluster_bits 30"},
		},
		{
			name: "aes encryption",
			make: func(t *testing.T, dir string) string {
				img := plain(t, dir)
				patchFile(t, img, 32, be32(1))
				return img
			},
			want: []string{"encrypted images are unsupported"},
		},
		{
			name: "luks encryption",
			make: func(t *testing.T, dir string) string {
				img := filepath.Join(dir, "a.qcow2")
				args := []string{"create", "-q", "--object", "secret,id=sec0,data=123456",
					"-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", img, "4M"}
				// qemu-img times its PBKDF with the thread's CPU time and
				// gives up when a round measured 0 ms ("Unable to get
				// accurate CPU usage"), which tick-based accounting does
				// now and then on a loaded host: try again a few times.
				needTools(t, "qemu-img")
				for i := 0; i < 4; i++ {
					out, err := exec.Command("qemu-img", args...).CombinedOutput()
					if err == nil {
						return img
					}
					if !strings.Contains(string(out), "Unable to get accurate CPU usage") {
						break
					}
				}
				run(t, "qemu-img", args...) // the last try, failing with its output
				return img
			},
			want: []string{"encrypted images are unsupported"},
		},
		{
			name: "zstd",
			make: func(t *testing.T, dir string) string {
				img := plain(t, dir)
				patchFile(t, img, 72, be64(incompatCompression))
				patchFile(t, img, 104, []byte{1})
				return img
			},
			want: []string{"zstd compression is unsupported"},
		},
		{
			name: "extended L2",
			make: func(t *testing.T, dir string) string {
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", img, "4M")
				return img
			},
			want: []string{"extended L2 entries"},
		},
		{
			name: "external data file",
			make: func(t *testing.T, dir string) string {
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "data.raw"), img, "4M")
				return img
			},
			want: []string{"external data files are unsupported"},
		},
		{
			name: "corrupt bit",
			make: func(t *testing.T, dir string) string {
				img := plain(t, dir)
				patchFile(t, img, 72, be64(incompatCorrupt))
				return img
			},
			want: []string{"marked corrupt"},
		},
		{
			name: "unknown incompatible feature",
			make: func(t *testing.T, dir string) string {
				img := plain(t, dir)
				patchFile(t, img, 72, be64(1<<40))
				return img
			},
			want: []string{"unsupported incompatible features: bit 40"},
		},
		{
			name: "missing backing file",
			make: func(t *testing.T, dir string) string {
				base := filepath.Join(dir, "base.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "4M")
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", img, "4M")
				if err := os.Remove(base); err != nil {
					t.Fatal(err)
				}
				return img
			},
			want: []string{"opening backing file", "base.qcow2", "no such file"},
		},
		{
			name: "backing loop",
			make: func(t *testing.T, dir string) string {
				a := filepath.Join(dir, "a.qcow2")
				b := filepath.Join(dir, "b.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", b, "4M")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", a, "4M")
				run(t, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b)
				return a
			},
			want: []string{"backing chain longer than"},
		},
		{
			name: "unsupported backing format",
			make: func(t *testing.T, dir string) string {
				base := filepath.Join(dir, "base.vmdk")
				run(t, "qemu-img", "create", "-q", "-f", "vmdk", base, "4M")
				img := filepath.Join(dir, "a.qcow2")
				run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.vmdk", "-F", "vmdk", img, "4M")
				return img
			},
			want: []string{`unsupported image format "vmdk"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := tt.make(t, t.TempDir())
			r, err := Open(img)
			if err == nil {
				r.Close()
				t.Fatal("Open succeeded, want an error")
			}
			msg := err.Error()
			for _, w := range append([]string{img}, tt.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// TestReadErrors covers corruption that Open cannot see: it only shows up
// when the damaged table is read.
func TestReadErrors(t *testing.T) {
	needTools(t, "qemu-img", "qemu-io")
	tests := []struct {
		name  string
		patch func(t *testing.T, img string, h header)
		want  string
	}{
		{
			name: "L2 table past EOF",
			patch: func(t *testing.T, img string, h header) {
				patchFile(t, img, int64(h.l1Offset), be64(1<<40|flagCopied))
			},
			want: "L2 table at offset 0x10000000000 is past the end of the file",
		},
		{
			name: "L2 table unaligned",
			patch: func(t *testing.T, img string, h header) {
				patchFile(t, img, int64(h.l1Offset), be64(0x10200))
			},
			want: "not cluster aligned",
		},
		{
			name: "data cluster past EOF",
			patch: func(t *testing.T, img string, h header) {
				l1 := make([]byte, 8)
				f, err := os.Open(img)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.ReadAt(l1, int64(h.l1Offset)); err != nil {
					t.Fatal(err)
				}
				l2 := binary.BigEndian.Uint64(l1) & offsetMask
				patchFile(t, img, int64(l2), be64(1<<40|flagCopied))
			},
			want: "data cluster at offset 0x10000000000 is past the end of the file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "a.qcow2")
			run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "4M")
			qemuIO(t, img, "write -P 0xab 0 64k")
			tt.patch(t, img, readHeader(t, img))
			r, err := Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = r.ReadAt(make([]byte, 4096), 0)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), img) {
				t.Fatalf("ReadAt error = %v, want one naming %s and containing %q", err, img, tt.want)
			}
		})
	}
}

// TestCompressedCorrupt checks that a damaged deflate stream is an error,
// not garbage.
func TestCompressedCorrupt(t *testing.T) {
	needTools(t, "qemu-img")
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, pattern(1<<20, 7))
	img := filepath.Join(dir, "a.qcow2")
	run(t, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, img)

	r, err := Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t1, err := r.l2Table(r.l1[0] & offsetMask)
	if err != nil {
		t.Fatal(err)
	}
	x := 62 - (r.h.clusterBits - 8)
	host := int64(t1[0] & (1<<x - 1))
	r.Close()
	patchFile(t, img, host, bytes.Repeat([]byte{0xff}, 64))

	r, err = Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.ReadAt(make([]byte, 512), 0)
	if err == nil || !strings.Contains(err.Error(), "decompressing cluster") {
		t.Fatalf("ReadAt error = %v, want a decompression error", err)
	}
}
