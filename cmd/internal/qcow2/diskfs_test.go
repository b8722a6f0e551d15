package qcow2

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// TestDiskfs opens a GPT disk with an ext4 partition, stored as qcow2,
// through go-diskfs on an Overlay: it reads a file, writes files, and
// checks the written overlay with qemu-img, e2fsck and debugfs.
func TestDiskfs(t *testing.T) {
	needTools(t, "qemu-img", "sgdisk", "mkfs.ext4", "e2fsck", "debugfs")
	dir := t.TempDir()

	// A 64 MiB disk with one 48 MiB Linux partition at 1 MiB.
	const partStart, partSize = 1 << 20, 48 << 20
	raw := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(raw, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(raw, 64<<20); err != nil {
		t.Fatal(err)
	}
	run(t, "sgdisk", "-n", "1:2048:+48M", "-t", "1:8300", raw)

	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc", "hello"), []byte("hello from mkfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, "part.img")
	run(t, "mkfs.ext4", "-q", "-F", "-d", src, part, "48M")
	partData, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	patchFile(t, raw, partStart, partData)
	base := filepath.Join(dir, "base.qcow2")
	run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, base)

	img, err := Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	o := NewOverlay(img, img.Size())
	d, err := diskfs.OpenBackend(o, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		t.Fatalf("diskfs.OpenBackend: %v", err)
	}
	table, ok := d.Table.(*gpt.Table)
	if !ok {
		t.Fatalf("partition table is %T, want GPT", d.Table)
	}
	if p := table.Partitions[0]; p.Start*512 != partStart || p.Size != partSize {
		t.Fatalf("partition 1 at %d, %d bytes; want %d, %d bytes", p.Start*512, p.Size, partStart, partSize)
	}
	fsys, err := d.GetFilesystem(1)
	if err != nil {
		t.Fatalf("GetFilesystem(1): %v", err)
	}
	if fsys.Type() != filesystem.TypeExt4 {
		t.Fatalf("filesystem type %v, want ext4", fsys.Type())
	}
	got, err := fsys.ReadFile("etc/hello")
	if err != nil {
		t.Fatalf("reading /etc/hello: %v", err)
	}
	if string(got) != "hello from mkfs\n" {
		t.Fatalf("/etc/hello = %q", got)
	}

	// Write through ext4.
	const script = "#!/bin/sh\necho patched\n"
	if err := fsys.Mkdir("usr/lib/distrotest"); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	f, err := fsys.OpenFile("usr/lib/distrotest/setup", os.O_CREATE|os.O_RDWR)
	if err != nil {
		t.Fatalf("creating setup: %v", err)
	}
	if _, err := f.Write([]byte(script)); err != nil {
		t.Fatalf("writing setup: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Symlink("/dev/null", "etc/masked.service"); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d dirty clusters", o.Dirty())

	out := filepath.Join(dir, "out.qcow2")
	if err := o.WriteQcow2(out, "base.qcow2", "qcow2"); err != nil {
		t.Fatal(err)
	}
	qemuCheck(t, out)

	// Check the filesystem with e2fsprogs.
	disk := qemuRaw(t, out)
	fsImg := filepath.Join(dir, "patched-part.img")
	if err := os.WriteFile(fsImg, disk[partStart:partStart+partSize], 0o644); err != nil {
		t.Fatal(err)
	}
	fsck := run(t, "e2fsck", "-f", "-n", fsImg)
	t.Logf("e2fsck:\n%s", fsck)
	cat := run(t, "debugfs", "-R", "cat /usr/lib/distrotest/setup", fsImg)
	if cat != script {
		t.Errorf("debugfs cat setup = %q, want %q", cat, script)
	}
	link := run(t, "debugfs", "-R", "stat /etc/masked.service", fsImg)
	if !strings.Contains(link, `Fast link dest: "/dev/null"`) {
		t.Errorf("debugfs stat /etc/masked.service:\n%s", link)
	}
	if hello := run(t, "debugfs", "-R", "cat /etc/hello", fsImg); hello != "hello from mkfs\n" {
		t.Errorf("debugfs cat /etc/hello = %q", hello)
	}
}
