package btrfs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
)

// build makes a btrfs filesystem image (mkfs.btrfs --rootdir) of files
// (imagetest.Tree's notation) plus extra, and opens it.
func build(t *testing.T, files map[string]string, extra func(tree string)) (*FS, string) {
	t.Helper()
	tree := imagetest.Tree(t, files)
	if extra != nil {
		extra(tree)
	}
	img := filepath.Join(t.TempDir(), "btrfs.img")
	imagetest.MakeFS(t, img, imagetest.Part{SizeMiB: 200, FS: "btrfs", Tree: tree})
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fsys, err := Open(f)
	if err != nil {
		t.Fatal(err)
	}
	return fsys, img
}

func TestReadFiles(t *testing.T) {
	big := make([]byte, 3<<20+17) // regular extents, several of them
	for i := range big {
		big[i] = byte(rand.IntN(256))
	}
	fsys, _ := build(t, map[string]string{
		"usr/lib/os-release":  "ID=fedora\nVERSION_ID=42\n",
		"etc/os-release":      "->../usr/lib/os-release",
		"etc/abs-link":        "->/usr/lib/os-release",
		"etc/dir-link":        "->../usr/lib",
		"etc/loop":            "->loop",
		"boot/empty":          "",
		"var/log/":            "",
		"usr/share/doc/a.txt": strings.Repeat("inline?", 300), // 2100 bytes: inline
	}, func(tree string) {
		if err := os.WriteFile(filepath.Join(tree, "usr/big.bin"), big, 0o600); err != nil {
			t.Fatal(err)
		}
		imagetest.Fill(t, tree, "usr/many", 3000) // several leaves: a tree of level ≥ 1
	})
	root, err := fsys.Default()
	if err != nil {
		t.Fatal(err)
	}
	if root.ID != fsTreeID {
		t.Errorf("default subvolume %d, want the top level (5)", root.ID)
	}
	for _, tt := range []struct{ path, want string }{
		{"/usr/lib/os-release", "ID=fedora\nVERSION_ID=42\n"},
		{"/etc/os-release", "ID=fedora\nVERSION_ID=42\n"},
		{"etc/abs-link", "ID=fedora\nVERSION_ID=42\n"},
		{"/etc/dir-link/os-release", "ID=fedora\nVERSION_ID=42\n"},
		{"/boot/empty", ""},
		{"/usr/share/doc/a.txt", strings.Repeat("inline?", 300)},
		{"/usr/big.bin", string(big)},
	} {
		got, err := root.ReadFile(tt.path)
		if err != nil {
			t.Errorf("ReadFile(%s): %v", tt.path, err)
			continue
		}
		if !bytes.Equal(got, []byte(tt.want)) {
			t.Errorf("ReadFile(%s): %d bytes, want %d (content differs)", tt.path, len(got), len(tt.want))
		}
	}
	info, err := root.Lstat("/etc/os-release")
	if err != nil || info.Mode&fs.ModeSymlink == 0 || info.Target != "../usr/lib/os-release" {
		t.Errorf("Lstat(/etc/os-release) = %+v, %v; want a link to ../usr/lib/os-release", info, err)
	}
	if info, err := root.Stat("/usr/big.bin"); err != nil || info.Size != int64(len(big)) || info.Mode != 0o600 {
		t.Errorf("Stat(/usr/big.bin) = %+v, %v", info, err)
	}
	entries, err := root.ReadDir("/usr/many")
	if err != nil || len(entries) != 3000 || entries[0].Name != "a-rather-long-file-name-to-fill-directory-blocks-0000" {
		t.Fatalf("ReadDir(/usr/many): %d entries, %v", len(entries), err)
	}
	if _, err := root.ReadFile("/usr/many/a-rather-long-file-name-to-fill-directory-blocks-2999"); err != nil {
		t.Error(err)
	}
	entries, err = root.ReadDir("/etc")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, fmt.Sprintf("%s:%v", e.Name, e.Type))
	}
	if got, want := strings.Join(names, " "), "abs-link:L--------- dir-link:L--------- loop:L--------- os-release:L---------"; got != want {
		t.Errorf("ReadDir(/etc) = %s, want %s", got, want)
	}
	for _, tt := range []struct{ path, want string }{
		{"/nope", "/nope: file does not exist"},
		{"/usr/lib/os-release/x", "not a directory"},
		{"/etc/loop", "too many levels of symbolic links"},
		{"/var/log", "is not a regular file"},
	} {
		_, err := root.ReadFile(tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadFile(%s) = %v, want an error containing %q", tt.path, err, tt.want)
		}
	}
	if _, err := root.Stat("/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(/nope) = %v, want fs.ErrNotExist", err)
	}
}

func TestCorrupt(t *testing.T) {
	_, img := build(t, map[string]string{"etc/os-release": "ID=x\n"}, nil)
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bytes.NewReader(make([]byte, 1<<20))); !errors.Is(err, ErrNotBtrfs) {
		t.Errorf("Open(zeros) = %v, want ErrNotBtrfs", err)
	}
	sb := bytes.Clone(data)
	sb[superOffset+sbRoot] ^= 0xff
	if _, err := Open(bytes.NewReader(sb)); err == nil || !strings.Contains(err.Error(), "superblock is corrupt") {
		t.Errorf("Open(superblock changed) = %v, want a checksum error", err)
	}
	// Damage every tree block but the chunk tree's: reading a file must
	// fail with a checksum error, never return other bytes.
	f, err := Open(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	for _, c := range f.chunks {
		for at := c.logical; at < c.logical+c.length; at += uint64(f.nodeSize) {
			p := c.physical + at - c.logical
			if p+uint64(f.nodeSize) > uint64(len(bad)) || !bytes.Equal(bad[p+0x20:p+0x30], f.fsid) || binary.LittleEndian.Uint64(bad[p+0x30:]) != at {
				continue
			}
			if binary.LittleEndian.Uint64(bad[p+0x58:]) != 3 { // owner: not the chunk tree
				bad[p+0x70] ^= 0xff
			}
		}
	}
	g, err := Open(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Default()
	if err == nil {
		var root *Subvolume
		if root, err = g.TopLevel(); err == nil {
			_, err = root.ReadFile("/etc/os-release")
		}
	}
	if err == nil || !strings.Contains(err.Error(), "the filesystem is corrupt") {
		t.Errorf("reading a damaged filesystem: %v, want a checksum error", err)
	}
}

// TestDecompress: zlib and zstd extents as btrfs writes them, padded to a
// sector after the compressed data. mkfs.btrfs here (6.2) cannot compress,
// so extent parsing of compressed files is proven by the stand-in Fedora
// image (tests/e2e TestShapes) and these streams by this test.
func TestDecompress(t *testing.T) {
	want := bytes.Repeat([]byte("ID=fedora\nVERSION_ID=42\n\x00"), 400)
	pad := func(b []byte) []byte { return append(b, make([]byte, 4096-len(b)%4096)...) }
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(want)
	w.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(want, nil)
	encCRC, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	xs := bytes.Repeat([]byte{'x'}, 300000)
	zsCRC := encCRC.EncodeAll(xs, nil) // several blocks (128 KiB of content each at most)
	for _, tt := range []struct {
		name        string
		compression uint8
		data        []byte
		extra       int // ram_bytes beyond the content: the sector-rounded size
		wantErr     string
		content     []byte // default: want
	}{
		{"zlib", compressZlib, pad(z.Bytes()), 0, "", nil},
		{"zstd", compressZstd, pad(zs), 0, "", nil},
		{"zstd sector-rounded", compressZstd, pad(zs), 4096 - len(want)%4096, "", nil},
		{"zstd with checksum, several blocks", compressZstd, pad(zsCRC), 0, "", xs},
		{"lzo", compressLZO, zs, 0, "LZO-compressed", nil},
		{"zstd truncated", compressZstd, zs[:len(zs)/2], 0, "zstd", nil},
		{"unknown", 9, zs, 0, "unknown compression type 9", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			content := want
			if tt.content != nil {
				content = tt.content
			}
			got, err := decompress(tt.compression, tt.data, uint64(len(content)+tt.extra))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, append(bytes.Clone(content), make([]byte, tt.extra)...)) {
				t.Fatalf("got %d bytes, %v", len(got), err)
			}
		})
	}
}
