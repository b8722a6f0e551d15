package qcow2

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/filesystem"
)

// TestRealImage checks the reader and a go-diskfs patch against a real
// image, which it never modifies:
//
//	DISTROTEST_QCOW2_IMAGE=~/.cache/distrotest/images/debian-13-.../disk.qcow2 \
//	  go test -run TestRealImage -v ./cmd/internal/qcow2/
func TestRealImage(t *testing.T) {
	path := os.Getenv("DISTROTEST_QCOW2_IMAGE")
	if path == "" {
		t.Skip("set DISTROTEST_QCOW2_IMAGE to a qcow2 disk image to run this test")
	}
	needTools(t, "qemu-img", "e2fsck", "debugfs")
	dir := t.TempDir()

	// The whole disk reads as qemu-img sees it.
	img, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	start := time.Now()
	ours := sha256.New()
	if _, err := io.Copy(ours, io.NewSectionReader(img, 0, img.Size())); err != nil {
		t.Fatal(err)
	}
	t.Logf("read %d bytes in %v", img.Size(), time.Since(start))
	raw := filepath.Join(dir, "disk.raw")
	run(t, "qemu-img", "convert", "-O", "raw", path, raw)
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	theirs := sha256.New()
	_, err = io.Copy(theirs, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours.Sum(nil), theirs.Sum(nil)) {
		t.Fatal("content differs from qemu-img convert")
	}
	os.Remove(raw)

	// Patch the largest ext4 partition through go-diskfs.
	start = time.Now()
	o := NewOverlay(img, img.Size())
	d, err := diskfs.OpenBackend(o, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		t.Fatal(err)
	}
	if d.Table == nil {
		t.Fatal("no partition table")
	}
	var part int
	var partStart, partSize int64
	for i, p := range d.Table.GetPartitions() {
		if p.GetSize() <= partSize {
			continue
		}
		fsys, err := d.GetFilesystem(i + 1)
		if err != nil || fsys.Type() != filesystem.TypeExt4 {
			continue
		}
		part, partStart, partSize = i+1, p.GetStart(), p.GetSize()
	}
	if part == 0 {
		t.Fatal("no ext4 partition")
	}
	fsys, err := d.GetFilesystem(part)
	if err != nil {
		t.Fatal(err)
	}
	osRelease, err := fsys.ReadFile("etc/os-release")
	if err != nil {
		t.Fatalf("reading etc/os-release: %v", err)
	}
	t.Logf("partition %d: %s", part, bytes.SplitN(osRelease, []byte("\n"), 2)[0])
	if err := fsys.Mkdir("etc/distrotest-test"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		f, err := fsys.OpenFile(fmt.Sprintf("etc/distrotest-test/file%02d", i), os.O_CREATE|os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(f, "file %d\n", i); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := fsys.Symlink("/dev/null", "etc/distrotest-test/masked.service"); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.qcow2")
	if err := o.WriteQcow2(out, path, "qcow2"); err != nil {
		t.Fatal(err)
	}
	t.Logf("patched in %v, %d dirty clusters", time.Since(start), o.Dirty())
	qemuCheck(t, out)

	// e2fsck and debugfs on the patched partition.
	run(t, "qemu-img", "convert", "-O", "raw", out, raw)
	fsImg := filepath.Join(dir, "part.img")
	run(t, "dd", "if="+raw, "of="+fsImg, "bs=1M", fmt.Sprintf("skip=%d", partStart), fmt.Sprintf("count=%d", partSize), "iflag=skip_bytes,count_bytes", "status=none")
	os.Remove(raw)
	if out, err := exec.Command("e2fsck", "-f", "-n", fsImg).CombinedOutput(); err != nil {
		t.Errorf("e2fsck: %v\n%s", err, out)
	}
	if got := run(t, "debugfs", "-R", "cat etc/distrotest-test/file07", fsImg); got != "file 7\n" {
		t.Errorf("debugfs cat file07 = %q", got)
	}
}
