package qcow2

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
)

// The benchmarks patch a 3 GiB cloud-like image (GPT, one ext4 partition
// holding 256 MiB of files) three ways, so the ratio is visible:
//
//	go test -run '^$' -bench . -benchtime 3x ./cmd/internal/qcow2/
//
// BenchmarkPatchExt4 is what the image patcher does: open the qcow2, write
// 20 small files with go-diskfs through an Overlay, write the overlay as a
// qcow2 backed by the original. BenchmarkPatchClusters does the same
// amount of raw cluster writes without go-diskfs. BenchmarkQemuImgRoundTrip
// is the baseline it replaces: qemu-img convert qcow2→raw and raw→qcow2
// (the edit itself not counted).

const (
	benchDiskSize = 3 << 30
	benchFiles    = 20
	benchPartOff  = 1 << 20
)

// benchImage makes the 3 GiB qcow2 image in dir.
func benchImage(b *testing.B, dir string) string {
	b.Helper()
	needTools(b, "qemu-img", "sgdisk", "mkfs.ext4")
	src := filepath.Join(dir, "src")
	for i := range 64 {
		d := filepath.Join(src, "usr", "lib", fmt.Sprintf("pkg%02d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "lib.so"), pattern(4<<20, uint32(i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		b.Fatal(err)
	}
	raw := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(raw, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(raw, benchDiskSize); err != nil {
		b.Fatal(err)
	}
	run(b, "sgdisk", "-n", "1:2048:0", "-t", "1:8300", raw)
	partBlocks := (benchDiskSize - benchPartOff - 1<<20) / 4096 // leave room for the backup GPT
	run(b, "mkfs.ext4", "-q", "-F", "-b", "4096", "-E", fmt.Sprintf("offset=%d", benchPartOff), "-d", src, raw, fmt.Sprint(partBlocks))
	img := filepath.Join(dir, "base.qcow2")
	run(b, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, img)
	for _, p := range []string{raw, src} {
		if err := os.RemoveAll(p); err != nil {
			b.Fatal(err)
		}
	}
	return img
}

func BenchmarkPatchExt4(b *testing.B) {
	dir := b.TempDir()
	base := benchImage(b, dir)
	out := filepath.Join(dir, "out.qcow2")
	content := pattern(2048, 99)
	var dirty int
	for b.Loop() {
		img, err := Open(base)
		if err != nil {
			b.Fatal(err)
		}
		o := NewOverlay(img, img.Size())
		d, err := diskfs.OpenBackend(o, diskfs.WithOpenMode(diskfs.ReadWrite))
		if err != nil {
			b.Fatal(err)
		}
		fsys, err := d.GetFilesystem(1)
		if err != nil {
			b.Fatal(err)
		}
		if err := fsys.Mkdir("etc/distrotest"); err != nil {
			b.Fatal(err)
		}
		for i := range benchFiles {
			f, err := fsys.OpenFile(fmt.Sprintf("etc/distrotest/file%02d", i), os.O_CREATE|os.O_RDWR)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(content); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
		if err := fsys.Close(); err != nil {
			b.Fatal(err)
		}
		if err := d.Close(); err != nil {
			b.Fatal(err)
		}
		if err := o.WriteQcow2(out, "base.qcow2", "qcow2"); err != nil {
			b.Fatal(err)
		}
		dirty = o.Dirty()
		if err := img.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(dirty), "dirty-clusters")
	qemuCheck(b, out)
}

func BenchmarkPatchClusters(b *testing.B) {
	dir := b.TempDir()
	base := benchImage(b, dir)
	out := filepath.Join(dir, "out.qcow2")
	block := pattern(4096, 98)
	for b.Loop() {
		img, err := Open(base)
		if err != nil {
			b.Fatal(err)
		}
		o := NewOverlay(img, img.Size())
		// Per file: a data block, its inode, its directory entry and a
		// bitmap, spread over the disk.
		for i := range benchFiles {
			for j := range 4 {
				off := benchPartOff + int64(i*4+j)*(benchDiskSize/100) + 12345
				if _, err := o.WriteAt(block, off&^4095); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := o.WriteQcow2(out, "base.qcow2", "qcow2"); err != nil {
			b.Fatal(err)
		}
		if err := img.Close(); err != nil {
			b.Fatal(err)
		}
	}
	qemuCheck(b, out)
}

func BenchmarkQemuImgRoundTrip(b *testing.B) {
	dir := b.TempDir()
	base := benchImage(b, dir)
	raw := filepath.Join(dir, "work.raw")
	out := filepath.Join(dir, "out.qcow2")
	for b.Loop() {
		run(b, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", base, raw)
		run(b, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out)
	}
}
