package diskimage

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
)

// xfsTree is a /boot-like tree: a kernel-sized file (several extents'
// worth of blocks), a directory large enough for leaf/node format, a
// symbolic link and nested BLS entries.
func xfsTree(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{
		"vmlinuz-6.12.0-55.el10.x86_64":                 random(t, 3<<20+123),
		"initramfs-6.12.0-55.el10.x86_64.img":           random(t, 1<<20),
		"loader/entries/abc-6.12.0-55.el10.x86_64.conf": []byte("title Rocky\nversion 6.12.0-55.el10.x86_64\nlinux /vmlinuz-6.12.0-55.el10.x86_64\ninitrd /initramfs-6.12.0-55.el10.x86_64.img\noptions root=UUID=x ro\n"),
		"empty": {},
	}
	for i := 0; i < 400; i++ {
		files[fmt.Sprintf("many/file-with-a-long-name-%04d", i)] = []byte(fmt.Sprint(i))
	}
	root := t.TempDir()
	for p, data := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("vmlinuz-6.12.0-55.el10.x86_64", filepath.Join(root, "vmlinuz")); err != nil {
		t.Fatal(err)
	}
	return root, files
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestXFS reads xfs filesystems made by mkfs.xfs with EL's root options
// (bigtime and inobtcount off, as the Rocky/Alma/CentOS kickstarts) and
// with xfsprogs' defaults (EL's /boot).
func TestXFS(t *testing.T) {
	for _, tt := range []struct {
		name string
		mkfs []string
	}{
		{"EL root options", []string{"-m", "bigtime=0,inobtcount=0", "-L", "root"}},
		{"defaults", []string{"-L", "boot"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tree, files := xfsTree(t)
			d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 300, FS: "xfs", Tree: tree, Mkfs: tt.mkfs})
			img := open(t, imagetest.Qcow2(t, d.Raw))
			x, err := img.XFS(img.Partitions[0])
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range files {
				got, err := x.ReadFile("/" + p)
				if err != nil {
					t.Errorf("ReadFile(/%s): %v", p, err)
					continue
				}
				if !bytes.Equal(got, want) {
					t.Errorf("ReadFile(/%s): %d bytes differ from the %d written", p, len(got), len(want))
				}
			}
			many, err := x.ReadDir("/many")
			if err != nil || len(many) != 400 {
				t.Errorf("ReadDir(/many) = %d entries, %v; want 400", len(many), err)
			}
			top, err := x.ReadDir("/")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range top {
				names = append(names, fmt.Sprintf("%s %v", e.Name, e.Type))
			}
			want := []string{"empty ----------", "initramfs-6.12.0-55.el10.x86_64.img ----------", "loader d---------", "many d---------", "vmlinuz L---------", "vmlinuz-6.12.0-55.el10.x86_64 ----------"}
			if diff := cmp.Diff(want, names); diff != "" {
				t.Errorf("ReadDir(/) (-want +got):\n%s", diff)
			}
			info, err := x.Stat("/vmlinuz")
			if err != nil || info.Mode&fs.ModeSymlink == 0 {
				t.Errorf("Stat(/vmlinuz) = %+v, %v; want a symbolic link", info, err)
			}
			if _, _, err := x.Open("/vmlinuz"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Open(symlink) error %v, want not a regular file", err)
			}
			if _, err := x.ReadFile("/missing"); err == nil || !strings.Contains(err.Error(), "/missing: file does not exist") {
				t.Errorf("ReadFile(/missing) error %v", err)
			}
			if _, err := x.ReadDir("/nodir/sub"); err == nil {
				t.Error("ReadDir(/nodir/sub) succeeded")
			}
		})
	}
}

// TestIdentity compares the UUIDs and labels read from the superblocks
// and the GPT with blkid's.
func TestIdentity(t *testing.T) {
	imagetest.Need(t, "blkid", "mkfs.xfs", "mkfs.btrfs")
	d := imagetest.Build(t, "gpt",
		imagetest.Part{SizeMiB: 64, FS: "ext4"},
		imagetest.Part{SizeMiB: 300, FS: "xfs", Mkfs: []string{"-L", "boot"}},
		imagetest.Part{SizeMiB: 128, FS: "btrfs", Mkfs: []string{"-L", "fedora"}},
	)
	img := open(t, d.Raw)
	for _, p := range img.Partitions {
		uuid := strings.TrimSpace(imagetest.Run(t, "blkid", "-p", "-o", "value", "-s", "UUID", d.Parts[p.Number]))
		label := strings.TrimSpace(imagetest.Run(t, "blkid", "-p", "-o", "value", "-s", "LABEL", d.Parts[p.Number]))
		if p.FSUUID != uuid || p.FSLabel != label {
			t.Errorf("partition %d (%s): uuid %q label %q; blkid says %q %q", p.Number, p.Filesystem, p.FSUUID, p.FSLabel, uuid, label)
		}
		info := imagetest.Run(t, "sgdisk", "-i", fmt.Sprint(p.Number), d.Raw)
		if !strings.Contains(strings.ToLower(info), "partition unique guid: "+p.PartUUID) || p.PartUUID == "" {
			t.Errorf("partition %d: PARTUUID %q not in sgdisk -i:\n%s", p.Number, p.PartUUID, info)
		}
	}
	if got := []string{img.Partitions[0].Filesystem, img.Partitions[1].Filesystem, img.Partitions[2].Filesystem}; !cmp.Equal(got, []string{"ext4", "xfs", "btrfs"}) {
		t.Errorf("filesystems %v", got)
	}
}

func TestParseBLS(t *testing.T) {
	tests := []struct {
		name, data string
		want       BLSEntry
		wantOpts   []string
		wantErr    string
	}{
		{
			name: "fedora",
			data: "title Fedora Linux (6.11.4-301.fc41.x86_64) 41 (Cloud Edition)\nversion 6.11.4-301.fc41.x86_64\nlinux /vmlinuz-6.11.4-301.fc41.x86_64\ninitrd /initramfs-6.11.4-301.fc41.x86_64.img\noptions root=UUID=0c1f rootflags=subvol=root no_timer_check console=tty1\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n",
			want: BLSEntry{File: "e.conf", Title: "Fedora Linux (6.11.4-301.fc41.x86_64) 41 (Cloud Edition)", Version: "6.11.4-301.fc41.x86_64",
				Linux: "/vmlinuz-6.11.4-301.fc41.x86_64", Initrd: []string{"/initramfs-6.11.4-301.fc41.x86_64.img"},
				Options: []string{"root=UUID=0c1f", "rootflags=subvol=root", "no_timer_check", "console=tty1"}},
			wantOpts: []string{"root=UUID=0c1f", "rootflags=subvol=root", "no_timer_check", "console=tty1"},
		},
		{
			name: "el8 kernelopts, tabs, comments, microcode",
			data: "# comment\ntitle\tRocky\nlinux\t/vmlinuz-4.18.0\ninitrd /early.img /initramfs-4.18.0.img\noptions $kernelopts $tuned_params\n",
			want: BLSEntry{File: "e.conf", Title: "Rocky", Linux: "/vmlinuz-4.18.0", Initrd: []string{"/early.img", "/initramfs-4.18.0.img"},
				Options: []string{"$kernelopts", "$tuned_params"}},
		},
		{name: "no linux", data: "title x\n", wantErr: "e.conf: no linux line (not a Boot Loader Specification type #1 entry)"},
		{name: "empty initrd", data: "linux /v\ninitrd\n", wantErr: "e.conf:2: initrd has no path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBLS("e.conf", []byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("entry (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOpts, got.KernelOptions()); diff != "" {
				t.Errorf("KernelOptions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFindBootShapes finds the boot files of the three families' layouts
// (distro-shapes.md §1): EL (xfs /boot labelled boot, BLS, xfs root),
// Fedora 40–43 (ext4 /boot with BLS beside a btrfs root) and Ubuntu ≥
// 23.10 (ext4 root, kernel on the XBOOTLDR partition labelled BOOT).
func TestFindBootShapes(t *testing.T) {
	bls := func(v, extra string) string {
		return "title T\nversion " + v + "\nlinux /vmlinuz-" + v + "\ninitrd /initramfs-" + v + ".img\noptions root=UUID=r ro " + extra + "\n"
	}
	el := map[string]string{
		"vmlinuz-5.14.0-70.el9.x86_64": "old", "initramfs-5.14.0-70.el9.x86_64.img": "i",
		"vmlinuz-5.14.0-503.el9.x86_64": "k", "initramfs-5.14.0-503.el9.x86_64.img": "i",
		"vmlinuz-0-rescue-abc": "r", "initramfs-0-rescue-abc.img": "r",
		"loader/entries/abc-5.14.0-70.el9.x86_64.conf":  bls("5.14.0-70.el9.x86_64", ""),
		"loader/entries/abc-5.14.0-503.el9.x86_64.conf": bls("5.14.0-503.el9.x86_64", "net.ifnames=0"),
		"loader/entries/abc-0-rescue.conf":              "title Rescue\nlinux /vmlinuz-0-rescue-abc\ninitrd /initramfs-0-rescue-abc.img\n",
	}
	fedora := map[string]string{
		"vmlinuz-6.11.4-301.fc41.x86_64": "k", "initramfs-6.11.4-301.fc41.x86_64.img": "i",
		"loader/entries/m-6.11.4-301.fc41.x86_64.conf": bls("6.11.4-301.fc41.x86_64", "rootflags=subvol=root"),
	}
	tests := []struct {
		name  string
		parts func(t *testing.T) []imagetest.Part
		want  Boot
		root  int
	}{
		{
			name: "EL: xfs /boot labelled boot, xfs root",
			parts: func(t *testing.T) []imagetest.Part {
				return []imagetest.Part{
					{SizeMiB: 20, Code: "ef00", FS: "vfat"},
					{SizeMiB: 300, FS: "xfs", Mkfs: []string{"-L", "boot"}, Tree: imagetest.Tree(t, el)},
					{SizeMiB: 2},
					{SizeMiB: 1, Code: "ef02"},
					{SizeMiB: 320, FS: "xfs", Mkfs: []string{"-m", "bigtime=0,inobtcount=0", "-L", "root"}, Tree: imagetest.Tree(t, map[string]string{"boot/": "", "etc/os-release": "ID=rocky"})},
				}
			},
			root: 5,
			want: Boot{Partition: 2, Kernel: "/vmlinuz-5.14.0-503.el9.x86_64", Initrd: "/initramfs-5.14.0-503.el9.x86_64.img", KernelVersion: "5.14.0-503.el9.x86_64",
				Entry: "/loader/entries/abc-5.14.0-503.el9.x86_64.conf", Options: []string{"root=UUID=r", "ro", "net.ifnames=0"}},
		},
		{
			name: "Fedora: unlabelled ext4 /boot, btrfs root",
			parts: func(t *testing.T) []imagetest.Part {
				return []imagetest.Part{
					{SizeMiB: 1, Code: "ef02"},
					{SizeMiB: 20, Code: "ef00", FS: "vfat"},
					{SizeMiB: 32, FS: "ext4", Tree: imagetest.Tree(t, fedora)},
					{SizeMiB: 160, FS: "btrfs", Mkfs: []string{"-L", "fedora"}},
				}
			},
			root: 4,
			want: Boot{Partition: 3, Kernel: "/vmlinuz-6.11.4-301.fc41.x86_64", Initrd: "/initramfs-6.11.4-301.fc41.x86_64.img", KernelVersion: "6.11.4-301.fc41.x86_64",
				Entry: "/loader/entries/m-6.11.4-301.fc41.x86_64.conf", Options: []string{"root=UUID=r", "ro", "rootflags=subvol=root"}},
		},
		{
			name: "Ubuntu 24.04: XBOOTLDR p16 BOOT wins over stale kernels in the root's /boot",
			parts: func(t *testing.T) []imagetest.Part {
				return []imagetest.Part{
					{Number: 1, SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, map[string]string{"boot/vmlinuz-5.15.0-1-generic": "stale", "boot/initrd.img-5.15.0-1-generic": "stale"})},
					{Number: 14, SizeMiB: 1, Code: "ef02"},
					{Number: 15, SizeMiB: 20, Code: "ef00", FS: "vfat"},
					{Number: 16, SizeMiB: 16, Code: "ea00", FS: "ext4", Mkfs: []string{"-L", "BOOT"}, Tree: imagetest.Tree(t, map[string]string{"vmlinuz-6.8.0-45-generic": "k", "initrd.img-6.8.0-45-generic": "i", "vmlinuz": "->vmlinuz-6.8.0-45-generic"})},
				}
			},
			root: 1,
			want: Boot{Partition: 16, Kernel: "/vmlinuz-6.8.0-45-generic", Initrd: "/initrd.img-6.8.0-45-generic", KernelVersion: "6.8.0-45-generic"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := imagetest.Build(t, "gpt", tt.parts(t)...)
			img := open(t, d.Raw)
			root, err := img.Root(0)
			if err != nil {
				t.Fatal(err)
			}
			if root.Number != tt.root {
				t.Errorf("root partition %d, want %d", root.Number, tt.root)
			}
			got, files, err := img.FindBoot(root, nil, "", "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("boot (-want +got):\n%s", diff)
			}
			if data, err := files.ReadFile(got.Kernel); err != nil || len(data) == 0 {
				t.Errorf("reading the kernel: %d bytes, %v", len(data), err)
			}
		})
	}
}

func TestFindBootErrors(t *testing.T) {
	d := imagetest.Build(t, "gpt",
		imagetest.Part{SizeMiB: 20, Code: "ef00", FS: "vfat"},
		imagetest.Part{SizeMiB: 160, FS: "btrfs"},
	)
	img := open(t, d.Raw)
	root, _ := img.Root(0)
	_, _, err := img.FindBoot(root, nil, "", "")
	want := "no kernel: /boot does not exist in the filesystem of partition 2"
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
	if _, err := img.Files(img.Partitions[0]); err == nil || err.Error() != "partition 1 holds vfat; distrotest reads files from ext4, xfs, btrfs only" {
		t.Errorf("Files(vfat) error %v", err)
	}
}

// TestFindBootBtrfs: a kernel and initrd in /boot of a btrfs root (Arch's
// layout) are found and read.
func TestFindBootBtrfs(t *testing.T) {
	d := imagetest.Build(t, "gpt",
		imagetest.Part{SizeMiB: 20, Code: "ef00", FS: "vfat"},
		imagetest.Part{SizeMiB: 160, FS: "btrfs", Tree: imagetest.Tree(t, map[string]string{
			"boot/vmlinuz-6.17.9-arch1-1": "kernel", "boot/initrd.img-6.17.9-arch1-1": "initrd",
		})},
	)
	img := open(t, d.Raw)
	root, _ := img.Root(0)
	boot, fsys, err := img.FindBoot(root, nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if boot.Kernel != "/boot/vmlinuz-6.17.9-arch1-1" || fsys.Part().Number != 2 {
		t.Fatalf("found %+v on partition %d", boot, fsys.Part().Number)
	}
	if data, err := fsys.ReadFile(boot.Kernel); err != nil || string(data) != "kernel" {
		t.Errorf("reading the kernel: %q, %v", data, err)
	}
}
