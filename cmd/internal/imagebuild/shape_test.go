package imagebuild

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/internal/testenv"
)

func TestShapeRecipes(t *testing.T) {
	tests := []struct {
		shape     string
		wantParts []string // number:type:fs:label:mount in disk order
		wantPkgs  []string
		noPkgs    []string
	}{
		{ShapeEL, []string{"1:EF02:::", "2:EF00:vfat:EFI:/boot/efi", "3:8300:xfs:boot:/boot", "4:8300:xfs:root:/"},
			[]string{"dracut", "network-manager", "xfsprogs"}, []string{"initramfs-tools"}},
		{ShapeFedora, []string{"1:EF02:::", "2:EF00:vfat:EFI:/boot/efi", "3:8300:ext4:boot:/boot", "4:8300:btrfs:fedora:/"},
			[]string{"btrfs-progs", "dracut", "network-manager"}, []string{"initramfs-tools"}},
		{ShapeUbuntu, []string{"14:EF02:::", "15:EF00:vfat:UEFI:/boot/efi", "16:EA00:ext4:BOOT:/boot", "1:8300:ext4:cloudimg-rootfs:/"},
			[]string{"initramfs-tools"}, []string{"dracut"}},
	}
	for _, tt := range tests {
		t.Run(tt.shape, func(t *testing.T) {
			r, err := recipeFor(Request{Distro: ShapeDistro, Release: tt.shape, Arch: "x86_64-linux"})
			if err != nil {
				t.Fatal(err)
			}
			if r.Shape != tt.shape || r.Suite != "trixie" || r.Hostname != "shape-"+tt.shape {
				t.Errorf("recipe shape %q suite %q hostname %q", r.Shape, r.Suite, r.Hostname)
			}
			var got []string
			prevLast := int64(align - 1)
			for _, p := range r.Layout.Partitions {
				got = append(got, strings.Join([]string{strconv.Itoa(p.Number), p.Type, p.Filesystem, p.Label, p.Mount}, ":"))
				if p.First != prevLast+1 || p.First%align != 0 || p.Last < p.First {
					t.Errorf("partition %d: sectors %d-%d after %d: not contiguous and aligned", p.Number, p.First, p.Last, prevLast)
				}
				prevLast = p.Last
			}
			if diff := cmp.Diff(tt.wantParts, got); diff != "" {
				t.Errorf("partitions (-want +got):\n%s", diff)
			}
			if end := (r.Layout.DiskSize/sectorSize - gptBackupSectors - 1) / align * align; prevLast != end-1 {
				t.Errorf("last partition ends at %d, want %d (the rest of the disk)", prevLast, end-1)
			}
			for _, p := range tt.wantPkgs {
				if !slices.Contains(r.Packages, p) {
					t.Errorf("packages %v lack %s", r.Packages, p)
				}
			}
			for _, p := range tt.noPkgs {
				if slices.Contains(r.Packages, p) {
					t.Errorf("packages %v have %s", r.Packages, p)
				}
			}
			args := strings.Join(mmdebstrapArgs(r, "/x"), "\n")
			if n := strings.Count(args, "--customize-hook="); n != len(r.CustomizeHooks) || n == 0 {
				t.Errorf("mmdebstrap has %d customize hooks, recipe %d", n, len(r.CustomizeHooks))
			}
		})
	}
	el, _ := recipeFor(Request{Distro: ShapeDistro, Release: ShapeEL, Arch: "x86_64-linux"})
	if root, _ := el.Layout.RootPartition(); strings.Join(root.MkfsOptions, " ") != "-m bigtime=0,inobtcount=0" {
		t.Errorf("EL root mkfs options %q, want EL's -m bigtime=0,inobtcount=0", root.MkfsOptions)
	}
	if !strings.Contains(strings.Join(el.CustomizeHooks, ""), "kernel/fs/9p") {
		t.Errorf("EL hooks do not remove the 9p modules: %q", el.CustomizeHooks)
	}
	deb, _ := recipeFor(debian13)
	if deb.Shape != "" || len(deb.CustomizeHooks) != 0 {
		t.Errorf("debian recipe has shape fields: %q %q", deb.Shape, deb.CustomizeHooks)
	}
}

func TestShapeLayoutTooSmall(t *testing.T) {
	s, _ := shapeFor(ShapeEL)
	if _, err := shapeLayout(1<<30, s.parts); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("shapeLayout(1 GiB) error = %v, want too small", err)
	}
}

func TestFstab(t *testing.T) {
	uuids := map[int]string{2: "ABCD-0123", 3: "boot-uuid", 4: "root-uuid"}
	fedora, _ := recipeFor(Request{Distro: ShapeDistro, Release: ShapeFedora, Arch: "x86_64-linux"})
	want := "# <file system> <mount point> <type> <options> <dump> <pass>\n" +
		"UUID=root-uuid\t/\tbtrfs\tsubvol=root,compress=zstd:1\t0 0\n" +
		"UUID=root-uuid\t/home\tbtrfs\tsubvol=home,compress=zstd:1\t0 0\n" +
		"UUID=boot-uuid\t/boot\text4\tdefaults\t1 2\n" +
		"UUID=ABCD-0123\t/boot/efi\tvfat\tumask=0077,shortname=winnt\t0 2\n"
	if diff := cmp.Diff(want, fstab(fedora.Layout, uuids, false)); diff != "" {
		t.Errorf("fedora fstab (-want +got):\n%s", diff)
	}
	ubuntu, _ := recipeFor(Request{Distro: ShapeDistro, Release: ShapeUbuntu, Arch: "x86_64-linux"})
	want = "# <file system> <mount point> <type> <options> <dump> <pass>\n" +
		"LABEL=cloudimg-rootfs\t/\text4\tdiscard,errors=remount-ro\t0 1\n" +
		"LABEL=BOOT\t/boot\text4\tdefaults\t0 2\n" +
		"LABEL=UEFI\t/boot/efi\tvfat\tumask=0077\t0 1\n"
	if diff := cmp.Diff(want, fstab(ubuntu.Layout, nil, true)); diff != "" {
		t.Errorf("ubuntu fstab (-want +got):\n%s", diff)
	}
}

func TestWriteProtofile(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string, mode os.FileMode, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("etc/hostname", 0o644, "el\n")
	mk("usr/bin/su", 0o755, "#!/bin/sh\n")
	mk("var/lib/dpkg/info/libc6:amd64.list", 0o644, "/.\n") // ':' inside a name is not a comment
	if err := os.Symlink("usr/bin", filepath.Join(dir, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "etc/hostname"), filepath.Join(dir, "etc/hostname.copy")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	// Nix's build sandbox forbids setuid bits (the go-test check runs
	// there): check a plain su then.
	suMode, suXFS := "-u-755", "0104755"
	if err := os.Chmod(filepath.Join(dir, "usr/bin/su"), 0o755|os.ModeSetuid); errors.Is(err, fs.ErrPermission) {
		t.Logf("setting a setuid bit is not allowed here (%v): su is checked without one", err)
		suMode, suXFS = "---755", "0100755"
	} else if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	st, err := writeProtofile(&buf, dir)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Getuid(), os.Getgid()
	ids := strconv.Itoa(uid) + " " + strconv.Itoa(gid)
	want := "/distrotest-imagebuild\n0 0\n" +
		"d--" + permOf(t, dir) + " " + ids + "\n" +
		"  bin l--777 " + ids + " usr/bin\n" +
		"  etc d--755 " + ids + "\n" +
		"    hostname ---644 " + ids + " " + filepath.Join(dir, "etc/hostname") + "\n" +
		"    hostname.copy ---644 " + ids + " " + filepath.Join(dir, "etc/hostname.copy") + "\n" +
		"  $\n" +
		"  tmp d--777 " + ids + "\n" +
		"  $\n" +
		"  usr d--755 " + ids + "\n" +
		"    bin d--755 " + ids + "\n" +
		"      su " + suMode + " " + ids + " " + filepath.Join(dir, "usr/bin/su") + "\n" +
		"    $\n" +
		"  $\n" +
		"  var d--755 " + ids + "\n" +
		"    lib d--755 " + ids + "\n" +
		"      dpkg d--755 " + ids + "\n" +
		"        info d--755 " + ids + "\n" +
		"          libc6:amd64.list ---644 " + ids + " " + filepath.Join(dir, "var/lib/dpkg/info/libc6:amd64.list") + "\n" +
		"        $\n" +
		"      $\n" +
		"    $\n" +
		"  $\n" +
		"$\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("protofile (-want +got):\n%s", diff)
	}
	if st.HardLinks != 2 || len(st.Sticky) != 1 || st.Entries != 13 {
		t.Errorf("stats = %+v, want 2 hard links copied, 1 sticky bit dropped, 13 entries", st)
	}

	// The real mkfs.xfs accepts it with EL's options, and xfs_db sees the files.
	mkfs, err := lookPath("mkfs.xfs")
	if err != nil {
		testenv.Missing(t, "mkfs.xfs is not installed (make setup installs xfsprogs): the protofile was checked as text only")
	}
	img := filepath.Join(t.TempDir(), "root.img")
	proto := filepath.Join(t.TempDir(), "proto")
	if err := os.WriteFile(proto, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sizedFile(img, 300<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-f", "-L", "root", "-m", "bigtime=0,inobtcount=0", "-p", proto, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	xfsDB, err := lookPath("xfs_db")
	if err != nil {
		t.Fatalf("mkfs.xfs without xfs_db: %v", err)
	}
	out, err := exec.Command(xfsDB, "-r", "-c", "path /var/lib/dpkg/info", "-c", "ls", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "libc6:amd64.list") {
		t.Errorf("xfs_db ls: %v\n%s", err, out)
	}
	out, err = exec.Command(xfsDB, "-r", "-c", "path /usr/bin/su", "-c", "print core.mode", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "core.mode = "+suXFS) {
		t.Errorf("su mode: %v\n%s", err, out)
	}
}

func permOf(t *testing.T, p string) string {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%03o", fi.Mode().Perm())
}

func TestWriteProtofileBadNames(t *testing.T) {
	for _, name := range []string{"with space", ":comment", "$"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := writeProtofile(&bytes.Buffer{}, dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, name)) || !strings.Contains(err.Error(), "cannot be written") {
			t.Errorf("name %q: error = %v, want one naming the file", name, err)
		}
	}
}
