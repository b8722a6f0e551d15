package diskimage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
)

// TestWrites adds entries of every kind, saves the overlay and checks the
// result with e2fsck and debugfs; the input image stays unchanged.
func TestWrites(t *testing.T) {
	for _, standalone := range []bool{false, true} {
		name := "overlay"
		if standalone {
			name = "standalone"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tree := imagetest.Tree(t, map[string]string{"etc/hostname": "x", "usr/lib/": ""})
			imagetest.Fill(t, tree, "etc/linear", 500) // several blocks, no index
			d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: tree, Mkfs: []string{"-O", "orphan_file,metadata_csum_seed"}})
			in := imagetest.Qcow2(t, d.Raw)
			before := imagetest.FileSum(t, in)
			img := open(t, in)
			root, _ := img.Root(0)
			fsys, err := img.Ext4(root)
			if err != nil {
				t.Fatal(err)
			}
			long := "/usr/lib/systemd/system/" + strings.Repeat("a-very-long-unit-name-", 4) + ".service"
			steps := []struct {
				name string
				do   func() error
			}{
				{"mkdir", func() error { return fsys.Mkdir("/opt", 0o755) }},
				{"mkdir nested", func() error { return fsys.Mkdir("/opt/distrotest", 0o700) }},
				{"write script", func() error { return fsys.WriteFile("/opt/distrotest/setup", []byte("#!/bin/sh\necho hi\n"), 0o755) }},
				{"write empty", func() error { return fsys.WriteFile("/etc/empty", nil, 0o644) }},
				{"write 3 MiB", func() error { return fsys.WriteFile("/etc/big", make([]byte, 3<<20), 0o644) }},
				{"short link", func() error { return fsys.Symlink("/dev/null", "/etc/masked.service") }},
				{"long link", func() error { return fsys.Symlink(long, "/etc/long.service") }},
				{"through a link to a directory", func() error {
					if err := fsys.Symlink("usr/lib", "/lib"); err != nil {
						return err
					}
					return fsys.WriteFile("/lib/os-release", []byte("ID=test\n"), 0o644)
				}},
				{"into a large linear directory", func() error { return fsys.WriteFile("/etc/linear/new", []byte("x"), 0o644) }},
			}
			for _, s := range steps {
				if err := s.do(); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
			}
			out := filepath.Join(t.TempDir(), "out.qcow2")
			if err := img.WriteQcow2(out, standalone); err != nil {
				t.Fatal(err)
			}
			img.Close()
			if imagetest.FileSum(t, in) != before {
				t.Fatal("the input image changed")
			}
			if standalone {
				os.Remove(in) // must not be needed
				os.Remove(d.Raw)
			}
			p1 := imagetest.Partition(t, out, 1)
			imagetest.Fsck(t, p1)
			checks := []struct{ request, want string }{
				{"cat /opt/distrotest/setup", "#!/bin/sh\necho hi\n"},
				{"stat /opt/distrotest/setup", "Mode:  0755"},
				{"stat /opt/distrotest", "Mode:  0700"},
				{"stat /etc/empty", "Size: 0"},
				{"stat /etc/big", "Size: 3145728"},
				{"stat /etc/masked.service", `Fast link dest: "/dev/null"`},
				{"cat /usr/lib/os-release", "ID=test\n"},
				{"stat /lib", `Fast link dest: "usr/lib"`},
				{"cat /etc/linear/new", "x"},
				{"ls /etc/linear", "a-rather-long-file-name-to-fill-directory-blocks-0499"},
			}
			for _, c := range checks {
				if got := imagetest.Debugfs(t, p1, c.request); !strings.Contains(got, c.want) {
					t.Errorf("debugfs %q: want %q in\n%s", c.request, c.want, got)
				}
			}
			if got := imagetest.Debugfs(t, p1, "stat /etc/long.service"); !strings.Contains(got, "Type: symlink") {
				t.Errorf("long link:\n%s", got)
			}
			// debugfs cat follows nothing; read the slow link's block instead
			if got := imagetest.Debugfs(t, p1, "cat /etc/long.service"); got != long {
				t.Errorf("long link target = %q, want %q", got, long)
			}
		})
	}
}

// TestWriteRefusals: the guard rails of the writer.
func TestWriteRefusals(t *testing.T) {
	big := imagetest.Tree(t, map[string]string{"etc/hostname": "x", "etc/systemd/system/": ""})
	imagetest.Fill(t, big, "big", 500)
	crowded := imagetest.Tree(t, map[string]string{"etc/": ""})
	imagetest.Fill(t, crowded, ".", 500)
	small := imagetest.Tree(t, map[string]string{"etc/hostname": "x", "etc/systemd/system/": ""})
	type write func(*FS) error
	mkfile := func(p string) write {
		return func(f *FS) error { return f.WriteFile(p, []byte("x"), 0o644) }
	}
	tests := []struct {
		name    string
		part    imagetest.Part
		flags   map[string]uint32 // inode flags the test relies on, checked with debugfs
		do      write
		want    string
		wantIs  error
		openErr bool
	}{
		{
			name:  "htree directory",
			part:  imagetest.Part{Tree: big, Index: true},
			flags: map[string]uint32{"/big": 0x1000},
			do:    mkfile("/big/new"), want: "creating /big/new: directory /big has a hashed index (htree)", wantIs: ErrHtree,
		},
		{
			name:  "htree root directory",
			part:  imagetest.Part{Tree: crowded, Index: true},
			flags: map[string]uint32{"/": 0x1000},
			do:    func(f *FS) error { return f.Mkdir("/opt", 0o755) }, want: "directory / has a hashed index", wantIs: ErrHtree,
		},
		{
			name: "htree directory through a link",
			part: imagetest.Part{Tree: big, Index: true},
			do: func(f *FS) error {
				if err := f.Symlink("/big", "/etc/big"); err != nil {
					return err
				}
				return f.WriteFile("/etc/big/new", nil, 0o644)
			},
			want: "directory /big has a hashed index", wantIs: ErrHtree,
		},
		{
			name: "existing file", part: imagetest.Part{Tree: small},
			do: mkfile("/etc/hostname"), want: "creating /etc/hostname: file already exists", wantIs: fs.ErrExist,
		},
		{
			name: "existing link target is not followed", part: imagetest.Part{Tree: imagetest.Tree(t, map[string]string{"etc/dangling": "->/nowhere"})},
			do: mkfile("/etc/dangling"), wantIs: fs.ErrExist,
		},
		{
			name: "missing parent", part: imagetest.Part{Tree: small},
			do: mkfile("/opt/distrotest/setup"), want: "creating /opt/distrotest/setup: parent directory /opt/distrotest does not exist",
		},
		{
			name: "parent is a file", part: imagetest.Part{Tree: small},
			do: mkfile("/etc/hostname/x"), want: "not a directory",
		},
		{
			name:  "inline_data",
			part:  imagetest.Part{Tree: small, Mkfs: []string{"-O", "inline_data"}},
			flags: map[string]uint32{"/etc/systemd/system": 0x10000000},
			want:  "has the inline_data feature", openErr: true,
		},
		{
			name: "journal needs recovery",
			part: imagetest.Part{Tree: small, Debugfs: []string{"feature needs_recovery"}},
			do:   mkfile("/etc/x"), want: "cannot be written: its journal needs recovery",
		},
		{
			name: "errors recorded",
			part: imagetest.Part{Tree: small, Debugfs: []string{"ssv state 3"}},
			do:   mkfile("/etc/x"), want: "the kernel recorded errors on it",
		},
		{
			name: "not clean",
			part: imagetest.Part{Tree: small, Debugfs: []string{"ssv state 0"}},
			do:   mkfile("/etc/x"), want: "it is not marked clean",
		},
		{
			name: "quota",
			part: imagetest.Part{Tree: small, Mkfs: []string{"-O", "quota"}},
			do:   mkfile("/etc/x"), want: "features the go-diskfs ext4 writer does not maintain: quota",
		},
		{
			name: "no 64bit",
			part: imagetest.Part{Tree: small, Mkfs: []string{"-O", "^64bit"}},
			do:   mkfile("/etc/x"), want: "it lacks the 64bit feature",
		},
		{
			name: "128-byte inodes",
			part: imagetest.Part{Tree: small, Mkfs: []string{"-I", "128"}},
			want: "has 128-byte inodes", openErr: true,
		},
		{
			name: "no metadata_csum",
			part: imagetest.Part{Tree: small, Mkfs: []string{"-O", "^metadata_csum"}},
			want: "has no metadata_csum feature", openErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.part.FS, tt.part.SizeMiB = "ext4", 64
			d := imagetest.Build(t, "gpt", tt.part)
			for p, flag := range tt.flags {
				if got := imagetest.InodeFlags(t, d.Parts[1], p); got&flag == 0 {
					t.Fatalf("setup: %s has inode flags %#x, want %#x set", p, got, flag)
				}
			}
			img := open(t, d.Raw)
			root, _ := img.Root(0)
			fsys, err := img.Ext4(root)
			if tt.openErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Ext4: error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = tt.do(fsys)
			if err == nil {
				t.Fatal("the write succeeded")
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
		})
	}
}
