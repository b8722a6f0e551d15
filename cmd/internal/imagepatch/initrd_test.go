package imagepatch

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
	"github.com/distrotest/distrotest/cmd/internal/distro"
	"github.com/distrotest/distrotest/cmd/internal/initrd"
)

// dracutInitrd is a small dracut-like initrd made with cpio(1) and gzip:
// an uncompressed early-microcode archive, then the compressed main one.
func dracutInitrd(t testing.TB) string {
	t.Helper()
	imagetest.Need(t, "cpio", "gzip")
	dir := t.TempDir()
	tree := imagetest.Tree(t, map[string]string{
		"early/kernel/x86/microcode/GenuineIntel.bin": "ucode",
		"main/usr/lib/dracut/modules.txt":             "systemd\n",
		"main/etc/initrd-release":                     "NAME=dracut\n",
		"main/usr/lib/systemd/systemd":                "ELF",
	})
	out := filepath.Join(dir, "initramfs.img")
	script := "set -e; cd " + tree + "/early && find . | cpio -o -H newc --quiet > " + out +
		"; cd " + tree + "/main && find . | cpio -o -H newc --quiet | gzip -c >> " + out
	if b, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("building a dracut-like initrd: %v\n%s", err, b)
	}
	return out
}

// initramfsToolsInitrd is a small initramfs-tools-like initrd made with
// cpio(1) and zstd: scripts/, conf/initramfs.conf and an init-bottom ORDER.
func initramfsToolsInitrd(t testing.TB) string {
	t.Helper()
	imagetest.Need(t, "cpio", "zstd")
	tree := imagetest.Tree(t, map[string]string{
		"init":                      "#!/bin/sh\n",
		"conf/initramfs.conf":       "MODULES=most\n",
		"scripts/functions":         "run_scripts() { :; }\n",
		"scripts/init-bottom/udev":  "#!/bin/sh\n",
		"scripts/init-bottom/ORDER": "/scripts/init-bottom/udev \"$@\"\n[ -e /conf/param.conf ] && . /conf/param.conf\n",
	})
	out := filepath.Join(t.TempDir(), "initrd.img")
	if b, err := exec.Command("sh", "-c", "cd "+tree+" && find . | cpio -o -H newc --quiet | zstd -q -c > "+out).CombinedOutput(); err != nil {
		t.Fatalf("building an initramfs-tools-like initrd: %v\n%s", err, b)
	}
	return out
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var elSpec = distro.Spec{
	Distro: "rocky", Release: "9.6", Strategy: distro.StrategyInitrd, Rootfs: distro.XFS, RootDevice: distro.RootByUUID,
	Kernel: "boot/vmlinuz-*", Initrd: "boot/initramfs-*.img", BootFilesystem: distro.XFS, InitrdGenerator: distro.Dracut,
	Network: distro.NetworkNetworkManager, GuestFamily: "el", SSHUnit: "sshd.service", SELinux: true, VirtioConsoleModule: true,
	ShareTransport: distro.ShareVirtiofs,
}

var fedoraSpec = distro.Spec{
	Distro: "fedora", Release: "42", Strategy: distro.StrategyInitrd, Rootfs: distro.Btrfs, RootDevice: distro.RootByUUID,
	RootSubvolume: "root", Kernel: "boot/vmlinuz-*", Initrd: "boot/initramfs-*.img", BootFilesystem: distro.Ext4,
	InitrdGenerator: distro.Dracut, Network: distro.NetworkNetworkManager, GuestFamily: "fedora", SSHUnit: "sshd.service",
	SELinux: true, ShareTransport: distro.Share9P,
}

// fedoraTopLevel is Fedora with its root in the top-level subvolume.
var fedoraTopLevel = func() distro.Spec { s := fedoraSpec; s.RootSubvolume = ""; return s }()

var ubuntuSpec = distro.Spec{
	Distro: "shape", Release: "ubuntu", Strategy: distro.StrategyInitrd, Rootfs: distro.Ext4, RootDevice: distro.RootByLabel,
	Kernel: "boot/vmlinuz-*", Initrd: "boot/initrd.img-*", BootFilesystem: distro.Ext4, InitrdGenerator: distro.InitramfsTools,
	Network: distro.NetworkNetplan, GuestFamily: "ubuntu", SSHUnit: "ssh.service", ShareTransport: distro.Share9P,
}

func bls(v, initrdName string) string {
	return "title T\nversion " + v + "\nlinux /vmlinuz-" + v + "\ninitrd /" + initrdName + "\noptions root=UUID=from-bls ro\n"
}

// shapeParts builds each family's partitions with the initrd file in its
// /boot.
func shapeParts(t testing.TB, name, initrdFile string) []imagetest.Part {
	data := readFile(t, initrdFile)
	switch name {
	case "el":
		v := "5.14.0-503.el9.x86_64"
		return []imagetest.Part{
			{SizeMiB: 20, Code: "ef00", FS: "vfat"},
			{SizeMiB: 300, FS: "xfs", Mkfs: []string{"-L", "boot"}, Tree: imagetest.Tree(t, map[string]string{
				"vmlinuz-" + v: "kernel", "initramfs-" + v + ".img": data,
				"loader/entries/x-" + v + ".conf": bls(v, "initramfs-"+v+".img"),
			})},
			{SizeMiB: 1, Code: "ef02"},
			{SizeMiB: 320, FS: "xfs", Mkfs: []string{"-m", "bigtime=0,inobtcount=0", "-L", "root"}, Tree: imagetest.Tree(t, map[string]string{
				"boot/": "", "etc/os-release": "ID=rocky\n", "usr/lib64/systemd/libsystemd-shared-252.so": "",
			})},
		}
	case "fedora":
		v := "6.14.0-63.fc42.x86_64"
		return []imagetest.Part{
			{SizeMiB: 1, Code: "ef02"},
			{SizeMiB: 20, Code: "ef00", FS: "vfat"},
			{SizeMiB: 128, FS: "ext4", Tree: imagetest.Tree(t, map[string]string{
				"vmlinuz-" + v: "kernel", "initramfs-" + v + ".img": data,
				"loader/entries/x-" + v + ".conf": bls(v, "initramfs-"+v+".img"),
			})},
			{SizeMiB: 256, FS: "btrfs", Mkfs: []string{"-L", "fedora"}},
		}
	case "ubuntu":
		v := "6.8.0-45-generic"
		return []imagetest.Part{
			{Number: 1, SizeMiB: 64, FS: "ext4", Mkfs: []string{"-L", "cloudimg-rootfs"}, Tree: imagetest.Tree(t, map[string]string{"boot/": "", "etc/hostname": "ubuntu"})},
			{Number: 14, SizeMiB: 1, Code: "ef02"},
			{Number: 15, SizeMiB: 20, Code: "ef00", FS: "vfat"},
			{Number: 16, SizeMiB: 128, Code: "ea00", FS: "ext4", Mkfs: []string{"-L", "BOOT"}, Tree: imagetest.Tree(t, map[string]string{
				"vmlinuz-" + v: "kernel", "initrd.img-" + v: data,
			})},
		}
	}
	t.Fatalf("no shape %s", name)
	return nil
}

// TestPatchInitrdStrategy prepares the three shapes with the initrd
// strategy: the disk stays untouched (no dirty cluster, the input's bytes
// unchanged), the initrd is the original, padded, plus an overlay that
// cpio(1) lists, and the kernel parameters name the root as described.
func TestPatchInitrdStrategy(t *testing.T) {
	for _, tt := range []struct {
		name       string
		spec       distro.Spec
		initrd     func(t testing.TB) string
		rootPart   int
		wantParams func(rootUUID, rootLabel string) []string
		hook       string
	}{
		{"el", elSpec, dracutInitrd, 4, func(u, _ string) []string {
			return []string{"root=UUID=" + u, "rw", "console=ttyS0", "enforcing=0", "rd.driver.pre=virtio_console"}
		}, "etc/systemd/system/initrd.target.wants/distrotest-install.service"},
		// The host's mkfs.btrfs (6.2) makes no subvolumes: this root is the
		// top level (tests/e2e TestShapes boots the stand-in's subvolume).
		{"fedora", fedoraTopLevel, dracutInitrd, 4, func(u, _ string) []string {
			return []string{"root=UUID=" + u, "rw", "console=ttyS0", "enforcing=0"}
		}, "etc/systemd/system/distrotest-install.service"},
		{"ubuntu", ubuntuSpec, initramfsToolsInitrd, 1, func(_, l string) []string {
			return []string{"root=LABEL=" + l, "rw", "console=ttyS0"}
		}, "scripts/init-bottom/ORDER"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			initrdFile := tt.initrd(t)
			d := imagetest.Build(t, "gpt", shapeParts(t, tt.name, initrdFile)...)
			in := imagetest.Qcow2(t, d.Raw)
			before := imagetest.FileSum(t, in)
			plan, err := PlanFor(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			out, m, rep := patchOK(t, in, Spec{Spec: tt.spec, System: "x86_64-linux"}, plan, Options{})
			if imagetest.FileSum(t, in) != before {
				t.Error("the input changed")
			}
			if rep.DirtyClusters != 0 || len(rep.Changes) != 0 {
				t.Errorf("initrd strategy wrote the disk: %d dirty clusters, %d changes", rep.DirtyClusters, len(rep.Changes))
			}
			img := imagetest.Blkid(t, d.Parts[tt.rootPart])
			if diff := cmp.Diff(tt.wantParams(img.UUID, img.Label), m.KernelParams); diff != "" {
				t.Errorf("kernel params (-want +got):\n%s", diff)
			}
			if m.Strategy != "initrd" || m.ShareTransport != manifestTransport(tt.spec.ShareTransport) || m.Filesystem != string(tt.spec.Rootfs) {
				t.Errorf("manifest strategy %q share %q filesystem %q", m.Strategy, m.ShareTransport, m.Filesystem)
			}
			orig := readFile(t, initrdFile)
			patched := readFile(t, filepath.Join(out, "initrd"))
			if !strings.HasPrefix(patched, orig) {
				t.Fatal("the patched initrd does not start with the original")
			}
			at := len(orig) + (4-len(orig)%4)%4
			overlay := patched[at:]
			cmd := exec.Command("cpio", "-t", "--quiet")
			cmd.Stdin = strings.NewReader(overlay)
			list, err := cmd.Output()
			if err != nil {
				t.Fatalf("cpio -t of the overlay: %v", err)
			}
			if !strings.Contains(string(list), tt.hook+"\n") || !strings.Contains(string(list), "distrotest/install\n") {
				t.Errorf("overlay lacks %s or the install script:\n%s", tt.hook, list)
			}
			if diff := cmp.Diff(strings.Fields(string(list)), rep.InitrdEntries); diff != "" {
				t.Errorf("reported entries (-cpio +report):\n%s", diff)
			}
			if info, err := initrd.Inspect([]byte(orig)); err == nil && info.Order != nil {
				f := filepath.Join(t.TempDir(), "overlay.cpio")
				if err := os.WriteFile(f, []byte(overlay), 0o644); err != nil {
					t.Fatal(err)
				}
				ord := imagetest.Run(t, "sh", "-c", "cpio -i --quiet --to-stdout scripts/init-bottom/ORDER < "+f)
				if !strings.HasPrefix(ord, string(info.Order)) || !strings.Contains(ord, "/scripts/init-bottom/distrotest") {
					t.Errorf("ORDER in the overlay:\n%s\noriginal:\n%s", ord, info.Order)
				}
			}
			if k := readFile(t, filepath.Join(out, "vmlinuz")); k != "kernel" {
				t.Errorf("vmlinuz = %q", k)
			}
		})
	}
}

// TestPatchInitrdErrors: unsupported layouts and bad initrds give errors
// that name the partition, the filesystem and what would work, and leave
// nothing behind.
func TestPatchInitrdErrors(t *testing.T) {
	good := dracutInitrd(t)
	notCpio := filepath.Join(t.TempDir(), "initramfs.img")
	if err := os.WriteFile(notCpio, bytes.Repeat([]byte("not an initrd "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	btrfsOnly := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 20, Code: "ef00", FS: "vfat"}, imagetest.Part{SizeMiB: 160, FS: "btrfs"})
	elBad := imagetest.Build(t, "gpt", shapeParts(t, "el", notCpio)...)
	elGood := imagetest.Build(t, "gpt", shapeParts(t, "el", good)...)
	wrongGen := elSpec
	wrongGen.InitrdGenerator = distro.InitramfsTools
	wrongBoot := elSpec
	wrongBoot.BootFilesystem = distro.Ext4
	fedoraGood := imagetest.Build(t, "gpt", shapeParts(t, "fedora", good)...)
	for _, tt := range []struct {
		name, input string
		spec        distro.Spec
		want        string
	}{
		{"no kernel on btrfs", btrfsOnly.Raw, fedoraTopLevel, "no kernel: /boot does not exist in the filesystem of partition 2"},
		{"root subvolume missing", fedoraGood.Raw, fedoraSpec, `reading the btrfs filesystem on partition 4: no top-level subvolume "root" (have [])`},
		{"initrd not a cpio", elBad.Raw, elSpec, "initrd /initramfs-5.14.0-503.el9.x86_64.img on partition 2: byte 0 (\"not an i\"): not an initrd"},
		{"generator mismatch", elGood.Raw, wrongGen, "initrd /initramfs-5.14.0-503.el9.x86_64.img on partition 2: the initrd was built by dracut, not initramfs-tools"},
		{"boot filesystem mismatch", elGood.Raw, wrongBoot, `the kernel is on partition 2 (xfs), but rocky/9.6 is described with boot_filesystem "ext4"`},
		{"disk strategy on xfs", elGood.Raw, func() distro.Spec { s := elSpec; s.Strategy = distro.StrategyDisk; return s }(),
			`root filesystem (partition 4) is xfs; the disk strategy writes ext4 only: describe rocky/9.6 with strategy = "initrd"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "prepared")
			plan, err := PlanFor(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = Patch(context.Background(), tt.input, out, Spec{Spec: tt.spec, System: "x86_64-linux"}, plan, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant it to contain %s", err, tt.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}
