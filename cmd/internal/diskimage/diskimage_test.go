package diskimage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
)

const (
	gptLinux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	gptRoot  = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
	gptESP   = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	gptBIOS  = "21686148-6449-6E6F-744E-656564454649"
	mib      = 1 << 20
)

// debianTree is a root filesystem as far as the image code looks at it.
func debianTree(t *testing.T) string {
	return imagetest.Tree(t, map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":                                "old kernel",
		"boot/initrd.img-6.1.0-9-amd64":                             "old initrd",
		"boot/vmlinuz-6.1.0-10-amd64":                               "kernel",
		"boot/initrd.img-6.1.0-10-amd64":                            "initrd",
		"boot/config-6.1.0-10-amd64":                                "config",
		"vmlinuz":                                                   "->boot/vmlinuz-6.1.0-10-amd64",
		"usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so": "",
		"usr/lib/systemd/system/":                                   "",
		"lib":                                                       "->usr/lib",
		"etc/systemd/system/multi-user.target.wants/":               "",
	})
}

func open(t *testing.T, path string) *Image {
	t.Helper()
	img, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func TestOpenPartitions(t *testing.T) {
	tree := debianTree(t)
	tests := []struct {
		name     string
		table    string
		parts    []imagetest.Part
		qcow2    bool
		want     []Partition
		wantRoot int
	}{
		{
			name:  "debian cloud layout, qcow2",
			table: "gpt",
			parts: []imagetest.Part{
				{Number: 14, SizeMiB: 3, Code: "ef02"},
				{Number: 15, SizeMiB: 40, Code: "ef00", FS: "vfat"},
				{Number: 1, SizeMiB: 64, FS: "ext4", Tree: tree},
			},
			qcow2: true,
			want: []Partition{
				{Number: 1, Type: gptLinux, TypeName: "Linux filesystem", Start: 44 * mib, Size: 64 * mib, Filesystem: "ext4", FSLabel: "root"},
				{Number: 14, Type: gptBIOS, TypeName: "BIOS boot", Start: 1 * mib, Size: 3 * mib},
				{Number: 15, Type: gptESP, TypeName: "EFI System", Start: 4 * mib, Size: 40 * mib, Filesystem: "vfat"},
			},
			wantRoot: 1,
		},
		{
			name:  "discoverable root type wins over a larger linux partition, raw",
			table: "gpt",
			parts: []imagetest.Part{
				{SizeMiB: 40, Code: "8304", Name: "root", FS: "ext4", Tree: tree},
				{SizeMiB: 64, Name: "data", FS: "ext4"},
			},
			want: []Partition{
				{Number: 1, Type: gptRoot, TypeName: "Linux root (x86-64)", Start: 1 * mib, Size: 40 * mib, Name: "root", Filesystem: "ext4", FSLabel: "root"},
				{Number: 2, Type: gptLinux, TypeName: "Linux filesystem", Start: 41 * mib, Size: 64 * mib, Name: "data", Filesystem: "ext4", FSLabel: "root"},
			},
			wantRoot: 1,
		},
		{
			name:  "mbr",
			table: "mbr",
			parts: []imagetest.Part{
				{SizeMiB: 40, Code: "ef", FS: "vfat"},
				{SizeMiB: 64, FS: "ext4", Tree: tree},
			},
			qcow2: true,
			want: []Partition{
				{Number: 1, Type: "0xef", TypeName: "EFI System", Start: 1 * mib, Size: 40 * mib, Filesystem: "vfat"},
				{Number: 2, Type: "0x83", TypeName: "Linux", Start: 41 * mib, Size: 64 * mib, Filesystem: "ext4", FSLabel: "root"},
			},
			wantRoot: 2,
		},
		{
			name:  "xfs root (EL)",
			table: "gpt",
			parts: []imagetest.Part{
				{SizeMiB: 40, Code: "ef00", FS: "vfat"},
				{SizeMiB: 320, FS: "xfs"},
			},
			want: []Partition{
				{Number: 1, Type: gptESP, TypeName: "EFI System", Start: 1 * mib, Size: 40 * mib, Filesystem: "vfat"},
				{Number: 2, Type: gptLinux, TypeName: "Linux filesystem", Start: 41 * mib, Size: 320 * mib, Filesystem: "xfs"},
			},
			wantRoot: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := imagetest.Build(t, tt.table, tt.parts...)
			path, format := d.Raw, "raw"
			if tt.qcow2 {
				path, format = imagetest.Qcow2(t, d.Raw), "qcow2"
			}
			img := open(t, path)
			if img.Format != format || img.Table != tt.table {
				t.Errorf("format, table = %s, %s; want %s, %s", img.Format, img.Table, format, tt.table)
			}
			// UUIDs are random: compared with blkid's in TestIdentity.
			if diff := cmp.Diff(tt.want, img.Partitions, cmpopts.IgnoreFields(Partition{}, "PartUUID", "FSUUID")); diff != "" {
				t.Errorf("partitions (-want +got):\n%s", diff)
			}
			root, err := img.Root(0)
			if err != nil {
				t.Fatal(err)
			}
			if root.Number != tt.wantRoot {
				t.Errorf("root = %d, want %d", root.Number, tt.wantRoot)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: debianTree(t)})
	raw, err := os.ReadFile(d.Raw)
	if err != nil {
		t.Fatal(err)
	}
	qcow, err := os.ReadFile(imagetest.Qcow2(t, d.Raw))
	if err != nil {
		t.Fatal(err)
	}
	// Both GPT headers damaged: the protective MBR remains.
	damaged := append([]byte(nil), raw...)
	copy(damaged[512:], "NOT PART")
	copy(damaged[len(damaged)-512:], "NOT PART")
	empty := filepath.Join(dir, "empty-gpt.raw")
	if err := os.WriteFile(empty, make([]byte, 8*mib), 0o644); err != nil {
		t.Fatal(err)
	}
	imagetest.Run(t, "sgdisk", "-o", empty)

	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.qcow2"), "no such file or directory"},
		{"directory", dir, "is a directory"},
		{"text file", write("notes.txt", []byte(strings.Repeat("not a disk image\n", 1<<14))), "not a disk image: no GPT or MBR partition table"},
		{"zeros", write("zeros.raw", make([]byte, 4*mib)), "no GPT or MBR partition table"},
		{"tiny", write("tiny.raw", []byte("x")), "too small"},
		{"bare filesystem", d.Parts[1], "bare ext4 filesystem"},
		{"truncated raw", write("trunc.raw", raw[:40*mib]), "partition 1 ends at byte 68157440, past the end of the 41943040-byte disk (truncated image?)"},
		{"truncated qcow2", write("trunc.qcow2", qcow[:320<<10]), "past the end of the file"},
		{"damaged gpt", write("damaged.raw", damaged), "damaged GPT"},
		{"no partitions", empty, "has no partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Open(tt.path)
			if err == nil {
				// a truncated qcow2 may open; reading it must fail
				root, rerr := img.Root(0)
				if rerr == nil {
					_, rerr = img.Ext4(root)
				}
				img.Close()
				if rerr == nil {
					t.Fatal("Open and reading the root succeeded")
				}
				err = rerr
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.path) && tt.name != "truncated qcow2" { // the qcow2 reader names its file
				t.Errorf("error %q names the file; callers do", err)
			}
		})
	}
}

func TestRoot(t *testing.T) {
	d := imagetest.Build(t, "gpt",
		imagetest.Part{SizeMiB: 40, Code: "ef00", FS: "vfat"},
		imagetest.Part{SizeMiB: 40, FS: "ext4"},
	)
	img := open(t, d.Raw)
	tests := []struct {
		name    string
		n       int
		want    int
		wantErr string
	}{
		{"auto", 0, 2, ""},
		{"explicit", 1, 1, ""},
		{"missing", 7, 0, "partition 7 not found (partitions: 1 (vfat), 2 (ext4))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := img.Root(tt.n)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || p.Number != tt.want {
				t.Fatalf("Root(%d) = %d, %v; want %d", tt.n, p.Number, err, tt.want)
			}
		})
	}
	d = imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 40, Code: "ef00", FS: "vfat"}, imagetest.Part{SizeMiB: 8})
	img = open(t, d.Raw)
	_, err := img.Root(0)
	if want := "no partition holds a Linux root filesystem (ext4, xfs or btrfs); partitions: 1 (vfat), 2 (unknown filesystem)"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// ext4Of builds a GPT disk whose partition 1 is an ext4 filesystem of tree
// and opens it.
func ext4Of(t *testing.T, tree string, parts ...imagetest.Part) (*Image, *FS) {
	t.Helper()
	all := append([]imagetest.Part{{SizeMiB: 64, FS: "ext4", Tree: tree}}, parts...)
	img := open(t, imagetest.Build(t, "gpt", all...).Raw)
	p, err := img.Partition(1)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := img.Ext4(p)
	if err != nil {
		t.Fatal(err)
	}
	return img, fsys
}

func TestFindBoot(t *testing.T) {
	tests := []struct {
		name           string
		files          map[string]string
		boot           map[string]string // a separate /boot partition (2)
		kernel, initrd string
		want           Boot
		wantErr        string
	}{
		{
			name:  "debian: newest kernel",
			files: map[string]string{"boot/vmlinuz-6.1.0-9-amd64": "k", "boot/initrd.img-6.1.0-9-amd64": "i", "boot/vmlinuz-6.1.0-10-amd64": "k", "boot/initrd.img-6.1.0-10-amd64": "i", "vmlinuz": "->boot/vmlinuz-6.1.0-10-amd64"},
			want:  Boot{Partition: 1, Kernel: "/boot/vmlinuz-6.1.0-10-amd64", Initrd: "/boot/initrd.img-6.1.0-10-amd64", KernelVersion: "6.1.0-10-amd64"},
		},
		{
			name:  "fedora: initramfs names, rescue kernel skipped",
			files: map[string]string{"boot/vmlinuz-6.11.4-301.fc41.x86_64": "k", "boot/initramfs-6.11.4-301.fc41.x86_64.img": "i", "boot/vmlinuz-0-rescue-0123456789abcdef": "k", "boot/initramfs-0-rescue-0123456789abcdef.img": "i"},
			want:  Boot{Partition: 1, Kernel: "/boot/vmlinuz-6.11.4-301.fc41.x86_64", Initrd: "/boot/initramfs-6.11.4-301.fc41.x86_64.img", KernelVersion: "6.11.4-301.fc41.x86_64"},
		},
		{
			name:  "newest kernel without initrd is passed over",
			files: map[string]string{"boot/vmlinuz-6.1.0-9-amd64": "k", "boot/initrd.img-6.1.0-9-amd64": "i", "boot/vmlinuz-6.1.0-10-amd64": "k"},
			want:  Boot{Partition: 1, Kernel: "/boot/vmlinuz-6.1.0-9-amd64", Initrd: "/boot/initrd.img-6.1.0-9-amd64", KernelVersion: "6.1.0-9-amd64"},
		},
		{
			name:   "explicit patterns",
			files:  map[string]string{"boot/vmlinuz-6.8.0-45-generic": "k", "boot/initrd.img-6.8.0-45-generic": "i", "boot/initrd.img-6.8.0-45-generic.old-dkms": "i"},
			kernel: "boot/vmlinuz-*", initrd: "boot/initrd.img-*",
			want: Boot{Partition: 1, Kernel: "/boot/vmlinuz-6.8.0-45-generic", Initrd: "/boot/initrd.img-6.8.0-45-generic", KernelVersion: "6.8.0-45-generic"},
		},
		{
			name:  "ubuntu: separate /boot partition",
			files: map[string]string{"boot/": "", "etc/hostname": "x"},
			boot:  map[string]string{"vmlinuz-6.8.0-45-generic": "k", "initrd.img-6.8.0-45-generic": "i"},
			want:  Boot{Partition: 2, Kernel: "/vmlinuz-6.8.0-45-generic", Initrd: "/initrd.img-6.8.0-45-generic", KernelVersion: "6.8.0-45-generic"},
		},
		{
			name:    "no kernel",
			files:   map[string]string{"boot/config-6.1.0-10-amd64": "c"},
			wantErr: "no kernel matching /boot/vmlinuz-* in the filesystem of partition 1",
		},
		{
			name:    "no /boot",
			files:   map[string]string{"etc/hostname": "x"},
			wantErr: "no kernel: /boot does not exist in the filesystem of partition 1",
		},
		{
			name:    "no initrd",
			files:   map[string]string{"boot/vmlinuz-6.1.0-10-amd64": "k"},
			wantErr: "no initrd for kernel /boot/vmlinuz-6.1.0-10-amd64 in the filesystem of partition 1 (looked for initrd.img-VERSION, initramfs-VERSION.img, initrd-VERSION, initrd-VERSION.img)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var extra []imagetest.Part
			if tt.boot != nil {
				extra = append(extra, imagetest.Part{SizeMiB: 16, FS: "ext4", Tree: imagetest.Tree(t, tt.boot)})
			}
			img, fsys := ext4Of(t, imagetest.Tree(t, tt.files), extra...)
			got, _, err := img.FindBoot(fsys.Partition, fsys, tt.kernel, tt.initrd)
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
				t.Errorf("boot (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSystemdVersion(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		want     int
		wantFrom string
	}{
		{"debian 13 multiarch", map[string]string{"usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so": "", "usr/lib/x86_64-linux-gnu/systemd/libsystemd-core-257.so": ""}, 257, "/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so"},
		{"fedora lib64", map[string]string{"usr/lib64/systemd/libsystemd-shared-256.11-1.fc41.so": "", "usr/lib/systemd/systemd": "binary"}, 256, "/usr/lib64/systemd/libsystemd-shared-256.11-1.fc41.so"},
		{"debian 11 split /lib", map[string]string{"lib/systemd/libsystemd-shared-247.so": "", "lib/systemd/systemd": "binary"}, 247, "/lib/systemd/libsystemd-shared-247.so"},
		{"merged /usr through a /lib link", map[string]string{"lib": "->usr/lib", "usr/lib/systemd/libsystemd-shared-252.so": ""}, 252, "/usr/lib/systemd/libsystemd-shared-252.so"},
		{"version string in the binary", map[string]string{"usr/lib/systemd/systemd": "\x7fELF...\x00systemd 239 running in %ssystem mode. (+PAM +AUDIT)\x00"}, 239, "/usr/lib/systemd/systemd"},
		{"no systemd (openrc)", map[string]string{"sbin/openrc": "x"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, fsys := ext4Of(t, imagetest.Tree(t, tt.files))
			got, from, err := fsys.SystemdVersion()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || from != tt.wantFrom {
				t.Errorf("SystemdVersion() = %d, %q; want %d, %q", got, from, tt.want, tt.wantFrom)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	_, fsys := ext4Of(t, imagetest.Tree(t, map[string]string{
		"usr/lib/os-release": "ID=debian",
		"lib":                "->usr/lib",
		"etc/os-release":     "->../usr/lib/os-release",
		"etc/abs":            "->/etc/os-release",
		"loop":               "->loop",
	}))
	tests := []struct {
		path, want, wantErr string
	}{
		{"/etc/os-release", "ID=debian", ""},
		{"/etc/abs", "ID=debian", ""},
		{"/lib/os-release", "ID=debian", ""},
		{"/lib/../etc/os-release", "ID=debian", ""},
		{"/loop", "", "too many levels of symbolic links"},
		{"/etc/missing", "", "file does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := fsys.ReadFile(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("ReadFile = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	info, err := fsys.Lstat("/lib/os-release")
	if err != nil || info.Path != "/usr/lib/os-release" {
		t.Errorf("Lstat(/lib/os-release) = %+v, %v; want the real path /usr/lib/os-release", info, err)
	}
}

func TestInspect(t *testing.T) {
	d := imagetest.Build(t, "gpt",
		imagetest.Part{Number: 1, SizeMiB: 64, FS: "ext4", Tree: debianTree(t), Mkfs: []string{"-O", "orphan_file,metadata_csum_seed"}},
		imagetest.Part{Number: 15, SizeMiB: 40, Code: "ef00", FS: "vfat"},
	)
	q := imagetest.Qcow2(t, d.Raw)
	got, err := Inspect(q, Query{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Report{
		Path: q, Format: "qcow2", VirtualSize: 106 * mib, PartitionTable: "gpt",
		Partitions: []Partition{
			{Number: 1, Type: gptLinux, TypeName: "Linux filesystem", Start: 1 * mib, Size: 64 * mib, Filesystem: "ext4", FSLabel: "root"},
			{Number: 15, Type: gptESP, TypeName: "EFI System", Start: 65 * mib, Size: 40 * mib, Filesystem: "vfat"},
		},
		RootPartition: 1, RootFilesystem: "ext4", RootDevice: "/dev/vda1",
		Boot:           &Boot{Partition: 1, Kernel: "/boot/vmlinuz-6.1.0-10-amd64", Initrd: "/boot/initrd.img-6.1.0-10-amd64", KernelVersion: "6.1.0-10-amd64"},
		SystemdVersion: 257, SystemdFrom: "/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so",
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Report{}, "Ext4Features"), cmpopts.IgnoreFields(Partition{}, "PartUUID", "FSUUID")); diff != "" {
		t.Errorf("Inspect (-want +got):\n%s", diff)
	}
	if f := strings.Join(got.Ext4Features, " "); !strings.Contains(f, "orphan_file") || !strings.Contains(f, "metadata_csum_seed") {
		t.Errorf("features %v lack orphan_file or metadata_csum_seed", got.Ext4Features)
	}
}

func TestVersionLess(t *testing.T) {
	tests := []struct{ a, b string }{
		{"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64"},
		{"vmlinuz-5.15.0", "vmlinuz-6.1.0"},
		{"vmlinuz-6.1", "vmlinuz-6.1.1"},
		{"vmlinuz-6.12.48+deb13-amd64", "vmlinuz-6.12.107+deb13-amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.a+"<"+tt.b, func(t *testing.T) {
			if !versionLess(tt.a, tt.b) || versionLess(tt.b, tt.a) {
				t.Errorf("versionLess(%q, %q) is wrong", tt.a, tt.b)
			}
		})
	}
}
