package imagepatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
	"github.com/distrotest/distrotest/cmd/internal/distro"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

var spec = Spec{Spec: distro.Spec{Distro: "debian", Release: "13", Strategy: "disk", Rootfs: "ext4"}, System: "x86_64-linux"}

// debianFiles is a root filesystem with what the patcher reads and what a
// Debian cloud image has where the plan writes.
func debianFiles() map[string]string {
	return map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":                                "old kernel",
		"boot/initrd.img-6.1.0-9-amd64":                             "old initrd",
		"boot/vmlinuz-6.1.0-10-amd64":                               "kernel",
		"boot/initrd.img-6.1.0-10-amd64":                            "initrd",
		"usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so": "",
		"usr/lib/systemd/system/systemd-networkd.service":           "[Unit]\n",
		"etc/systemd/system/multi-user.target.wants/cron.service":   "->/usr/lib/systemd/system/cron.service",
		"etc/systemd/system/getty.target.wants/getty@tty1.service":  "->/usr/lib/systemd/system/getty@.service",
		"etc/systemd/network/":                                      "",
		"etc/hostname":                                              "debian\n",
		"lib":                                                       "->usr/lib",
	}
}

func patchOK(t *testing.T, in string, s Spec, plan guest.Plan, opts Options) (string, *manifest.Manifest, Report) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "prepared")
	before := imagetest.FileSum(t, in)
	m, rep, err := Patch(context.Background(), in, out, s, plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	if imagetest.FileSum(t, in) != before {
		t.Fatal("the input image was modified")
	}
	if _, err := manifest.Load(out); err != nil {
		t.Fatal(err)
	}
	return out, m, rep
}

// checkPlan checks with debugfs that the root filesystem fsImg holds plan.
func checkPlan(t *testing.T, fsImg string, plan guest.Plan) {
	t.Helper()
	for _, f := range plan.Files {
		if got := imagetest.Debugfs(t, fsImg, "cat "+f.Path); got != string(f.Data) {
			t.Errorf("%s reads back as %q, want %q", f.Path, got, f.Data)
		}
		stat := imagetest.Debugfs(t, fsImg, "stat "+f.Path)
		if want := fmt.Sprintf("Type: regular    Mode:  %04o", f.Mode.Perm()); !strings.Contains(stat, want) {
			t.Errorf("%s: want %q in\n%s", f.Path, want, stat)
		}
	}
	for _, d := range plan.Dirs {
		stat := imagetest.Debugfs(t, fsImg, "stat "+d.Path)
		if !strings.Contains(stat, "Type: directory") {
			t.Errorf("%s is not a directory:\n%s", d.Path, stat)
		}
	}
	for _, s := range plan.Symlinks {
		stat := imagetest.Debugfs(t, fsImg, "stat "+s.Path)
		if !strings.Contains(stat, "Type: symlink") || !strings.Contains(stat, fmt.Sprintf("Fast link dest: %q", s.Target)) {
			t.Errorf("%s is not a link to %s:\n%s", s.Path, s.Target, stat)
		}
	}
}

// TestPatchFilesystems patches ext4 roots made with the mke2fs defaults of
// Debian 12 (this host) and Debian 13 and with go-diskfs, with the real
// guest plan, and checks the result with debugfs and e2fsck.
func TestPatchFilesystems(t *testing.T) {
	tests := []struct {
		name string
		fs   string
		mkfs []string
		raw  bool
	}{
		{name: "debian 12 mke2fs defaults", fs: "ext4", mkfs: []string{"-b", "4096"}},
		{name: "debian 13 mke2fs defaults (orphan_file, metadata_csum_seed)", fs: "ext4", mkfs: []string{"-b", "4096", "-O", "orphan_file,metadata_csum_seed"}},
		{name: "small filesystem defaults (1 KiB blocks), raw input", fs: "ext4", raw: true},
		{name: "no flex_bg", fs: "ext4", mkfs: []string{"-O", "^flex_bg"}},
		{name: "no huge_file, no dir_nlink, no extra_isize", fs: "ext4", mkfs: []string{"-b", "4096", "-O", "^huge_file,^dir_nlink,^extra_isize"}},
		{name: "no journal", fs: "ext4", mkfs: []string{"-b", "4096", "-O", "^has_journal"}},
		{name: "made by go-diskfs", fs: "ext4-diskfs"},
		{name: "made by go-diskfs with metadata_csum", fs: "ext4-diskfs", mkfs: []string{"-O", "metadata_csum"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tree := imagetest.Tree(t, debianFiles())
			d := imagetest.Build(t, "gpt",
				imagetest.Part{Number: 1, SizeMiB: 64, FS: tt.fs, Tree: tree, Mkfs: tt.mkfs},
				imagetest.Part{Number: 15, SizeMiB: 40, Code: "ef00", FS: "vfat"},
			)
			in := d.Raw
			if !tt.raw {
				in = imagetest.Qcow2(t, d.Raw)
			}
			if tt.fs == "ext4-diskfs" {
				// what go-diskfs makes is the baseline: it must be clean too
				imagetest.Fsck(t, d.Parts[1])
			}
			plan := guest.NewPlan()
			out, m, rep := patchOK(t, in, spec, plan, Options{})
			want := &manifest.Manifest{
				Version: 1, Distro: "debian", Release: "13", System: "x86_64-linux",
				Disk: "disk.qcow2", DiskFormat: "qcow2", Kernel: "vmlinuz", Initrd: "initrd",
				RootDevice: "/dev/vda1", Filesystem: "ext4",
				KernelParams: []string{"root=/dev/vda1", "rw", "console=ttyS0"},
				Strategy:     "disk", SystemdVersion: 257, KernelVersion: "6.1.0-10-amd64",
				Backdoor: manifest.BackdoorVirtioPort,
			}
			if diff := cmp.Diff(want, m); diff != "" {
				t.Errorf("manifest (-want +got):\n%s", diff)
			}
			for name, content := range map[string]string{"vmlinuz": "kernel", "initrd": "initrd"} {
				if b, _ := os.ReadFile(filepath.Join(out, name)); string(b) != content {
					t.Errorf("%s = %q, want %q (the newest)", name, b, content)
				}
			}
			if len(rep.Changes) != len(plan.Files)+len(plan.Symlinks)+2 { // + /opt/distrotest, sockets.target.wants
				for _, c := range rep.Changes {
					t.Log(c)
				}
				t.Errorf("%d changes", len(rep.Changes))
			}
			p1 := imagetest.Partition(t, filepath.Join(out, "disk.qcow2"), 1)
			imagetest.Fsck(t, p1)
			checkPlan(t, p1, plan)
			// what was there is still there
			if got := imagetest.Debugfs(t, p1, "cat /etc/hostname"); got != "debian\n" {
				t.Errorf("/etc/hostname = %q", got)
			}
		})
	}
}

// TestPatchRealKernel extracts this host's kernel and initrd byte for byte
// from a 4 KiB-block filesystem, into a standalone disk.qcow2.
func TestPatchRealKernel(t *testing.T) {
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		t.Skip("no kernel in /boot on this host")
	}
	kernel := kernels[len(kernels)-1]
	version := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	initrd := "/boot/initrd.img-" + version
	tree := imagetest.Tree(t, debianFiles())
	for _, f := range []string{kernel, initrd} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Skipf("cannot read %s: %v", f, err)
		}
		if err := os.WriteFile(filepath.Join(tree, "boot", filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 160, FS: "ext4", Tree: tree, Mkfs: []string{"-b", "4096"}})
	in := imagetest.Qcow2(t, d.Raw)
	out, m, _ := patchOK(t, in, spec, guest.NewPlan(), Options{Standalone: true})
	if m.KernelVersion != version {
		t.Errorf("kernel version %q, want %q", m.KernelVersion, version)
	}
	for name, src := range map[string]string{"vmlinuz": kernel, "initrd": initrd} {
		if imagetest.FileSum(t, filepath.Join(out, name)) != imagetest.FileSum(t, src) {
			t.Errorf("%s differs from %s", name, src)
		}
	}
	info := imagetest.Run(t, "qemu-img", "info", filepath.Join(out, "disk.qcow2"))
	if strings.Contains(info, "backing file") {
		t.Errorf("--standalone output has a backing file:\n%s", info)
	}
	os.Remove(in) // the standalone image must not need it
	os.Remove(d.Raw)
	imagetest.Fsck(t, imagetest.Partition(t, filepath.Join(out, "disk.qcow2"), 1))
}

// TestRepatch patches a prepared disk.qcow2 again: everything is present,
// nothing changes, and the overlay of an overlay is valid.
func TestRepatch(t *testing.T) {
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, debianFiles())})
	in := imagetest.Qcow2(t, d.Raw)
	first, _, _ := patchOK(t, in, spec, guest.NewPlan(), Options{})
	_, _, rep := patchOK(t, filepath.Join(first, "disk.qcow2"), spec, guest.NewPlan(), Options{})
	for _, c := range rep.Changes {
		if c.Op != OpPresent {
			t.Errorf("second patch: %s", c)
		}
	}
	if rep.DirtyClusters != 0 {
		t.Errorf("second patch dirtied %d clusters", rep.DirtyClusters)
	}
}

// TestTakenUnitNames: Debian's openssh enables an sshd.service alias link
// in /etc; the mask of sshd.service goes to the kernel command line.
func TestTakenUnitNames(t *testing.T) {
	files := debianFiles()
	files["etc/systemd/system/sshd.service"] = "->/lib/systemd/system/ssh.service"
	files["etc/systemd/system/apt-daily.timer"] = "[Timer]\n" // an admin's unit file
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, files)})
	out, m, rep := patchOK(t, d.Raw, spec, guest.NewPlan(), Options{})
	if diff := cmp.Diff([]string{"sshd.service", "apt-daily.timer"}, rep.CommandLineMasks); diff != "" {
		t.Errorf("command-line masks (-want +got):\n%s", diff)
	}
	want := []string{"root=/dev/vda1", "rw", "console=ttyS0", "systemd.mask=sshd.service", "systemd.mask=apt-daily.timer"}
	if diff := cmp.Diff(want, m.KernelParams); diff != "" {
		t.Errorf("kernel params (-want +got):\n%s", diff)
	}
	p1 := imagetest.Partition(t, filepath.Join(out, "disk.qcow2"), 1)
	imagetest.Fsck(t, p1)
	if got := imagetest.Debugfs(t, p1, "stat /etc/systemd/system/sshd.service"); !strings.Contains(got, `"/lib/systemd/system/ssh.service"`) {
		t.Errorf("the sshd.service alias changed:\n%s", got)
	}
}

func TestPatchRefusals(t *testing.T) {
	plan := guest.NewPlan()
	tests := []struct {
		name  string
		files map[string]string
		fill  string // a directory to fill and index
		want  string
	}{
		{
			name:  "file with other content",
			files: map[string]string{"opt/distrotest/setup": "#!/bin/sh\n"},
			want:  "refusing to overwrite /opt/distrotest/setup, which exists in the image as a file",
		},
		{
			name:  "link to somewhere else",
			files: map[string]string{"etc/systemd/system/multi-user.target.wants/distrotest-backdoor.service": "->/elsewhere"},
			want:  "refusing to replace /etc/systemd/system/multi-user.target.wants/distrotest-backdoor.service (a symbolic link -> /elsewhere)",
		},
		{
			name:  "a file where a directory goes",
			files: map[string]string{"opt": "not a directory"},
			want:  "/opt exists in the image as a file, not a directory",
		},
		{
			name: "hash-indexed unit directory",
			fill: "etc/systemd/system",
			want: "directory /etc/systemd/system has a hashed index (htree)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := debianFiles()
			for k, v := range tt.files {
				files[k] = v
			}
			tree := imagetest.Tree(t, files)
			if tt.fill != "" {
				imagetest.Fill(t, tree, tt.fill, 500)
			}
			d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: tree, Index: tt.fill != ""})
			if tt.fill != "" {
				if imagetest.InodeFlags(t, d.Parts[1], "/"+tt.fill)&0x1000 == 0 {
					t.Fatalf("setup: /%s has no hashed index", tt.fill)
				}
			}
			parent := t.TempDir()
			out := filepath.Join(parent, "prepared")
			_, _, err := Patch(context.Background(), d.Raw, out, spec, plan, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), d.Raw) {
				t.Fatalf("error %v, want %q naming %s", err, tt.want, d.Raw)
			}
			if left, _ := os.ReadDir(parent); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestBadPlans(t *testing.T) {
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, debianFiles())})
	tests := []struct {
		name string
		plan guest.Plan
		want string
	}{
		{"world-writable file", guest.Plan{Files: []guest.File{{Path: "/etc/x", Mode: 0o666}}}, "plan: /etc/x has mode -rw-rw-rw-"},
		{"setuid script", guest.Plan{Files: []guest.File{{Path: "/etc/x", Mode: 0o755 | os.ModeSetuid}}}, "plan: /etc/x has mode"},
		{"relative path", guest.Plan{Dirs: []guest.Dir{{Path: "opt/x", Mode: 0o755}}}, `plan: path "opt/x" is not a clean absolute path`},
		{"unclean link path", guest.Plan{Symlinks: []guest.Symlink{{Path: "/etc/../x", Target: "/dev/null"}}}, "is not a clean absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Patch(context.Background(), d.Raw, filepath.Join(t.TempDir(), "out"), spec, tt.plan, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// mountTmpfs mounts a 1 MiB tmpfs (for the disk-full case), read-only
// with flags syscall.MS_RDONLY, or skips.
func mountTmpfs(t *testing.T, flags uintptr) string {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, "size=1m"); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	files := debianFiles()
	files["boot/vmlinuz-6.1.0-10-amd64"] = strings.Repeat("k", 2<<20) // does not fit the tiny tmpfs
	good := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, files)})
	goodQcow := imagetest.Qcow2(t, good.Raw)
	qcowBytes, err := os.ReadFile(goodQcow)
	if err != nil {
		t.Fatal(err)
	}
	rawBytes, err := os.ReadFile(good.Raw)
	if err != nil {
		t.Fatal(err)
	}
	noKernel := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, map[string]string{"boot/": "", "etc/hostname": "x"})})
	xfsRoot := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 40, Code: "ef00", FS: "vfat"}, imagetest.Part{SizeMiB: 320, FS: "xfs"})
	espOnly := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 40, Code: "ef00", FS: "vfat"})
	recovery := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, debianFiles()), Debugfs: []string{"feature needs_recovery"}})
	nonEmpty := filepath.Join(dir, "nonempty")
	if err := os.MkdirAll(filepath.Join(nonEmpty, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	cloudInit := Spec{Spec: distro.Spec{Distro: "rocky", Release: "9", Strategy: "cloud-init"}}

	tests := []struct {
		name, input, out, want string
		spec                   Spec
	}{
		{"missing", filepath.Join(dir, "nope.qcow2"), "", "no such file or directory", spec},
		{"not a disk image", write("notes.txt", bytes.Repeat([]byte("hello\n"), 1<<18)), "", "not a disk image: no GPT or MBR partition table", spec},
		{"bare filesystem", good.Parts[1], "", "bare ext4 filesystem", spec},
		{"truncated raw", write("trunc.raw", rawBytes[:32<<20]), "", "past the end of the", spec},
		{"truncated qcow2", write("trunc.qcow2", qcowBytes[:320<<10]), "", "past the end of the file", spec},
		{"no partition table", write("zeros.raw", make([]byte, 4<<20)), "", "no GPT or MBR partition table", spec},
		{"xfs root", xfsRoot.Raw, "", `root filesystem (partition 2) is xfs; the disk strategy writes ext4 only: describe debian/13 with strategy = "initrd" (the disk is left alone, any root filesystem)`, spec},
		{"no linux root", espOnly.Raw, "", "no partition holds a Linux root filesystem", spec},
		{"root partition not found", good.Raw, "", "partition 3 not found", Spec{Spec: distro.Spec{Distro: "debian", Release: "13", Strategy: "disk", RootPartition: 3}}},
		{"rootfs mismatch", good.Raw, "", `described with rootfs "btrfs"`, Spec{Spec: distro.Spec{Distro: "fedora", Release: "41", Strategy: "disk", Rootfs: "btrfs"}}},
		{"no kernel", noKernel.Raw, "", "no kernel matching /boot/vmlinuz-* in the filesystem of partition 1", spec},
		{"journal needs recovery", recovery.Raw, "", "its journal needs recovery", spec},
		{"strategy not implemented", good.Raw, "", `rocky/9 uses strategy "cloud-init"; the patcher implements "disk" (guest assets written into an ext4 root) and "initrd"`, cloudInit},
		{"output not writable", good.Raw, "/proc/distrotest-out", "writing output /proc/distrotest-out: cannot create a directory in /proc", spec},
		{"output on a read-only filesystem", good.Raw, "READONLY", "read-only file system", spec},
		{"output is a file", good.Raw, write("afile", []byte("x")), "exists and is not a directory", spec},
		{"output is a non-empty directory", good.Raw, nonEmpty, "is not a prepared image directory", spec},
		{"disk full", goodQcow, "TINY", "extracting /boot/vmlinuz-6.1.0-10-amd64 to vmlinuz: no space left on device (the filesystem of", spec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.out
			switch out {
			case "":
				out = filepath.Join(t.TempDir(), "prepared")
			case "TINY":
				out = filepath.Join(mountTmpfs(t, 0), "prepared")
			case "READONLY":
				out = filepath.Join(mountTmpfs(t, syscall.MS_RDONLY), "prepared")
			}
			var before []os.DirEntry
			if fi, err := os.Stat(tt.input); err == nil && !fi.IsDir() {
				defer func(sum [32]byte) {
					if imagetest.FileSum(t, tt.input) != sum {
						t.Error("the input changed")
					}
				}(imagetest.FileSum(t, tt.input))
			}
			before, _ = os.ReadDir(filepath.Dir(out))
			_, _, err := Patch(context.Background(), tt.input, out, tt.spec, guest.NewPlan(), Options{})
			if err == nil {
				t.Fatal("Patch succeeded")
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "patching "+tt.input+": ") {
				t.Errorf("error %q does not start by naming the input", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			after, _ := os.ReadDir(filepath.Dir(out))
			if filepath.Dir(out) == "/proc" {
				return // its listing changes as processes come and go
			}
			if diff := cmp.Diff(names(before), names(after)); diff != "" {
				t.Errorf("the output's directory changed (-before +after):\n%s", diff)
			}
		})
	}
}

func names(entries []os.DirEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestReplacePrepared: an earlier prepared directory is replaced; a failed
// patch leaves it as it was.
func TestReplacePrepared(t *testing.T) {
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, debianFiles())})
	out := filepath.Join(t.TempDir(), "prepared")
	for i := 0; i < 2; i++ {
		if _, _, err := Patch(context.Background(), d.Raw, out, spec, guest.NewPlan(), Options{}); err != nil {
			t.Fatalf("patch %d: %v", i+1, err)
		}
	}
	before := imagetest.FileSum(t, filepath.Join(out, "manifest.json"))
	bad := Spec{Spec: distro.Spec{Distro: "debian", Release: "13", Strategy: "disk", Kernel: "/boot/nothing-*"}}
	if _, _, err := Patch(context.Background(), d.Raw, out, bad, guest.NewPlan(), Options{}); err == nil {
		t.Fatal("patch with a bad kernel pattern succeeded")
	}
	if imagetest.FileSum(t, filepath.Join(out, "manifest.json")) != before {
		t.Error("a failed patch changed the earlier output")
	}
	left, _ := os.ReadDir(filepath.Dir(out))
	if diff := cmp.Diff([]string{"prepared"}, names(left)); diff != "" {
		t.Errorf("output directory (-want +got):\n%s", diff)
	}
}

func TestCanceled(t *testing.T) {
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, debianFiles())})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "prepared")
	_, _, err := Patch(ctx, d.Raw, out, spec, guest.NewPlan(), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output left behind")
	}
}
