// Package imagetest builds real disk images for the tests of diskimage and
// imagepatch: GPT or MBR disks (sgdisk, sfdisk) holding filesystems made by
// mkfs.ext4 (from a host directory with -d), mkfs.vfat, mkfs.xfs or
// go-diskfs, as raw or qcow2 (qemu-img) files; and it checks filesystems
// with e2fsck and debugfs. Missing tools skip the test with a message.
//
// It is for tests only.
package imagetest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"

	"github.com/distrotest/distrotest/internal/testenv"
)

// Need skips the test when a tool is missing.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s is not installed (make setup installs e2fsprogs, gdisk, dosfstools, xfsprogs, qemu-utils)", tool)
		}
	}
}

// Run runs a command and returns its combined output; failure fails the
// test.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Part is a partition to build.
type Part struct {
	Number  int // GPT partition number; 0: one more than the previous
	SizeMiB int
	// Code is the sgdisk type code (8300 Linux filesystem, 8304 Linux
	// root x86-64, ef00 ESP, ef02 BIOS boot) or, on MBR, the sfdisk type
	// (83, ef). Default 8300 / 83.
	Code string
	Name string // GPT partition name
	// FS is "ext4" (mkfs.ext4), "ext4-diskfs" (go-diskfs), "vfat",
	// "xfs" (mkfs.xfs, Tree through a protofile), "btrfs" (mkfs.btrfs
	// --rootdir) or "" (left empty).
	FS string
	// Mkfs are extra mkfs arguments; for ext4-diskfs only
	// "-O metadata_csum" is understood.
	Mkfs []string
	// Tree is copied into the filesystem (mkfs.ext4 -d, go-diskfs,
	// mkfs.xfs -p, mkfs.btrfs --rootdir).
	Tree string
	// Index builds hashed indexes for large directories (e2fsck -fD;
	// mkfs.ext4 -d writes linear directories).
	Index bool
	// Debugfs requests are run with debugfs -w on the new ext4
	// filesystem, e.g. "feature needs_recovery".
	Debugfs []string
}

// Disk is a disk image built by Build.
type Disk struct {
	Raw   string         // the raw image
	Parts map[int]string // partition number → its filesystem image, as built
	Dir   string
}

// Build makes a raw disk with a "gpt" or "mbr" table and parts, the first
// at 1 MiB, each following the previous.
func Build(t testing.TB, table string, parts ...Part) *Disk {
	t.Helper()
	Need(t, "qemu-img", "mkfs.ext4", "e2fsck", "debugfs", "sgdisk", "sfdisk")
	d := &Disk{Dir: t.TempDir(), Parts: map[int]string{}}
	d.Raw = filepath.Join(d.Dir, "disk.raw")
	total := 2
	for _, p := range parts {
		total += p.SizeMiB
	}
	if err := os.WriteFile(d.Raw, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(d.Raw, int64(total)<<20); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	if table == "mbr" {
		script.WriteString("label: dos\n")
	}
	start, n := 1, 0
	for _, p := range parts {
		n++
		if p.Number > 0 {
			n = p.Number
		}
		switch table {
		case "gpt":
			code := p.Code
			if code == "" {
				code = "8300"
			}
			args := []string{"-n", fmt.Sprintf("%d:%dM:+%dM", n, start, p.SizeMiB), "-t", fmt.Sprintf("%d:%s", n, code)}
			if p.Name != "" {
				args = append(args, "-c", fmt.Sprintf("%d:%s", n, p.Name))
			}
			Run(t, "sgdisk", append(args, d.Raw)...)
		case "mbr":
			code := p.Code
			if code == "" {
				code = "83"
			}
			fmt.Fprintf(&script, "start=%d, size=%d, type=%s\n", start*2048, p.SizeMiB*2048, code)
		default:
			t.Fatalf("table %q: want gpt or mbr", table)
		}
		fsImg := ""
		if p.FS != "" {
			fsImg = filepath.Join(d.Dir, fmt.Sprintf("p%d.%s", n, p.FS))
			MakeFS(t, fsImg, p)
			Run(t, "dd", "if="+fsImg, "of="+d.Raw, fmt.Sprintf("seek=%d", start), "bs=1M", "conv=notrunc,sparse", "status=none")
		}
		d.Parts[n] = fsImg
		start += p.SizeMiB
	}
	if table == "mbr" {
		cmd := exec.Command("sfdisk", "-q", d.Raw)
		cmd.Stdin = strings.NewReader(script.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v\n%s", err, out)
		}
	}
	return d
}

// MakeFS makes the filesystem of p in the file fsImg.
func MakeFS(t testing.TB, fsImg string, p Part) {
	t.Helper()
	size := fmt.Sprintf("%dM", p.SizeMiB)
	switch p.FS {
	case "ext4":
		args := []string{"-q", "-F", "-L", "root"}
		if p.Tree != "" {
			args = append(args, "-d", p.Tree)
		}
		Run(t, "mkfs.ext4", append(append(args, p.Mkfs...), fsImg, size)...)
		if p.Index {
			// exit status 1 means "file system was modified"
			if out, err := exec.Command("e2fsck", "-fyD", fsImg).CombinedOutput(); err != nil {
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 {
					t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
				}
			}
		}
		for _, req := range p.Debugfs {
			Run(t, "debugfs", "-w", "-R", req, fsImg)
		}
	case "ext4-diskfs":
		diskfsExt4(t, fsImg, int64(p.SizeMiB)<<20, p.Tree, strings.Join(p.Mkfs, " ") == "-O metadata_csum")
	case "vfat":
		Need(t, "mkfs.vfat")
		Run(t, "mkfs.vfat", append(append([]string{"-C"}, p.Mkfs...), fsImg, fmt.Sprint(p.SizeMiB*1024))...)
	case "xfs":
		Need(t, "mkfs.xfs")
		if err := os.WriteFile(fsImg, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(fsImg, int64(p.SizeMiB)<<20); err != nil {
			t.Fatal(err)
		}
		args := []string{"-q", "-f"}
		if p.Tree != "" {
			proto := filepath.Join(t.TempDir(), "proto")
			if err := os.WriteFile(proto, []byte(Protofile(t, p.Tree)), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "-p", proto)
		}
		Run(t, "mkfs.xfs", append(append(args, p.Mkfs...), fsImg)...)
	case "btrfs":
		Need(t, "mkfs.btrfs")
		args := []string{"-q", "-f"}
		if p.Tree != "" {
			args = append(args, "--rootdir", p.Tree)
		}
		if err := os.WriteFile(fsImg, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(fsImg, int64(p.SizeMiB)<<20); err != nil {
			t.Fatal(err)
		}
		Run(t, "mkfs.btrfs", append(append(args, p.Mkfs...), fsImg)...)
	default:
		t.Fatalf("filesystem %q: not supported by imagetest", p.FS)
	}
}

// diskfsExt4 makes an ext4 filesystem with go-diskfs (its defaults, or
// with metadata_csum) and copies tree into it (directories, regular files,
// symbolic links).
func diskfsExt4(t testing.TB, fsImg string, size int64, tree string, csum bool) {
	t.Helper()
	b, err := file.CreateFromPath(fsImg, size)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	params := &ext4.Params{VolumeName: "root"}
	if csum {
		params.Features = append(params.Features, ext4.WithFeatureMetadataChecksums(true))
	}
	fsys, err := ext4.Create(b, size, 0, 512, params)
	if err != nil {
		t.Fatalf("go-diskfs ext4.Create: %v", err)
	}
	if tree == "" {
		return
	}
	err = filepath.WalkDir(tree, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == tree {
			return err
		}
		r, _ := filepath.Rel(tree, p)
		r = filepath.ToSlash(r)
		fi, err := e.Info()
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			if err := fsys.Mkdir(r); err != nil {
				return fmt.Errorf("mkdir %s: %w", r, err)
			}
			return fsys.Chmod(r, fi.Mode().Perm())
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return fsys.Symlink(target, r)
		case e.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			f, err := fsys.OpenFile(r, os.O_CREATE|os.O_RDWR)
			if err != nil {
				return fmt.Errorf("create %s: %w", r, err)
			}
			if len(data) > 0 {
				if _, err := f.Write(data); err != nil {
					return fmt.Errorf("write %s: %w", r, err)
				}
			}
			if err := f.Close(); err != nil {
				return err
			}
			return fsys.Chmod(r, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copying %s into a go-diskfs ext4: %v", tree, err)
	}
}

// Identity is a filesystem's UUID and label as blkid reports them.
type Identity struct{ UUID, Label string }

// Blkid probes the filesystem image fsImg with blkid -p.
func Blkid(t testing.TB, fsImg string) Identity {
	t.Helper()
	Need(t, "blkid")
	get := func(tag string) string {
		return strings.TrimSpace(Run(t, "blkid", "-p", "-o", "value", "-s", tag, fsImg))
	}
	return Identity{UUID: get("UUID"), Label: get("LABEL")}
}

// Protofile renders an mkfs.xfs -p prototype file that copies tree
// (directories, regular files, symbolic links; names without white space)
// into a new xfs filesystem without mounting it.
func Protofile(t testing.TB, tree string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		indent := strings.Repeat(" ", depth)
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if strings.ContainsAny(e.Name(), " \t\n") {
				t.Fatalf("protofile: %s has white space in its name", p)
			}
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			perm := fi.Mode().Perm()
			switch {
			case fi.IsDir():
				fmt.Fprintf(&b, "%s%s d--%03o 0 0\n", indent, e.Name(), perm)
				walk(p, depth+1)
				fmt.Fprintf(&b, "%s$\n", indent)
			case fi.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%s%s l--777 0 0 %s\n", indent, e.Name(), target)
			case fi.Mode().IsRegular():
				fmt.Fprintf(&b, "%s%s ---%03o 0 0 %s\n", indent, e.Name(), perm, p)
			}
		}
	}
	walk(tree, 1)
	b.WriteString("$\n")
	return b.String()
}

// Qcow2 converts a raw image to qcow2 (uncompressed) beside it.
func Qcow2(t testing.TB, raw string) string {
	t.Helper()
	q := strings.TrimSuffix(raw, filepath.Ext(raw)) + ".qcow2"
	Run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, q)
	return q
}

// Partition copies partition n (1-based) of a raw or qcow2 disk image into
// a file of its own, for debugfs and e2fsck; offsets come from sfdisk.
func Partition(t testing.TB, image string, n int) string {
	t.Helper()
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	Run(t, "qemu-img", "convert", "-O", "raw", image, raw)
	var table struct {
		PartitionTable struct {
			Partitions []struct {
				Node  string `json:"node"`
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(Run(t, "sfdisk", "-J", raw)), &table); err != nil {
		t.Fatal(err)
	}
	for _, p := range table.PartitionTable.Partitions {
		if p.Node == fmt.Sprintf("%s%d", raw, n) {
			out := filepath.Join(dir, fmt.Sprintf("p%d.img", n))
			Run(t, "dd", "if="+raw, "of="+out, fmt.Sprintf("skip=%d", p.Start), fmt.Sprintf("count=%d", p.Size), "conv=sparse", "status=none")
			os.Remove(raw)
			return out
		}
	}
	t.Fatalf("partition %d not found in %s", n, image)
	return ""
}

// Fsck runs e2fsck -fn on an ext4 filesystem image and fails the test with
// its report unless the filesystem is clean.
func Fsck(t testing.TB, fsImg string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", fsImg).CombinedOutput()
	if err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
}

// Debugfs runs one read-only debugfs request and returns its output.
func Debugfs(t testing.TB, fsImg, request string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", request, fsImg).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", request, err)
	}
	return string(out)
}

// InodeFlags returns the inode flags of p as debugfs reports them.
func InodeFlags(t testing.TB, fsImg, p string) uint32 {
	t.Helper()
	out := Debugfs(t, fsImg, "stat "+p)
	var flags uint32
	i := strings.Index(out, "Flags: 0x")
	if i < 0 {
		t.Fatalf("debugfs stat %s: no flags in\n%s", p, out)
	}
	fmt.Sscanf(out[i+len("Flags: 0x"):], "%x", &flags)
	return flags
}

// Tree writes files (path → content; a content starting with "->" makes a
// symbolic link, a path ending in "/" a directory) into a new directory.
func Tree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// Fill adds n empty files with long names to directory dir of tree, enough
// (with n around 500) to span several blocks and, after e2fsck -D, to get
// a hashed index.
func Fill(t testing.TB, tree, dir string, n int) {
	t.Helper()
	full := filepath.Join(tree, filepath.FromSlash(dir))
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("a-rather-long-file-name-to-fill-directory-blocks-%04d", i)
		if err := os.WriteFile(filepath.Join(full, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FileSum returns the SHA-256 of the file at p (to show that an input was
// not modified).
func FileSum(t testing.TB, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}
