package imagepatch

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (run make setup)", tool)
		}
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

const partStart = 1 << 20 // p1 at 1 MiB

// makeImage builds a GPT disk (qcow2) whose p1 is an ext4 filesystem made by
// mkfs.ext4 with the given features from the tree in root.
func makeImage(t *testing.T, root string, mkfsArgs ...string) (qcow, fsImg string) {
	t.Helper()
	return makeIndexedImage(t, root, false, mkfsArgs...)
}

// makeIndexedImage is makeImage; with index, e2fsck -D builds hashed
// indexes for large directories (mkfs.ext4 -d does not).
func makeIndexedImage(t *testing.T, root string, index bool, mkfsArgs ...string) (qcow, fsImg string) {
	t.Helper()
	need(t, "mkfs.ext4", "sgdisk", "qemu-img", "e2fsck", "debugfs")
	dir := t.TempDir()
	fsImg = filepath.Join(dir, "root.ext4")
	args := append([]string{"-q", "-F", "-L", "root", "-d", root}, mkfsArgs...)
	args = append(args, fsImg, "64M")
	sh(t, "mkfs.ext4", args...)
	if index {
		exec.Command("e2fsck", "-fyD", fsImg).Run() // exit 1: "file system was modified"
	}
	raw := filepath.Join(dir, "disk.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(partStart + 64<<20 + 1<<20)
	f.Close()
	sh(t, "sgdisk", "-n", "1:2048:+64M", "-t", "1:8300", raw)
	sh(t, "dd", "if="+fsImg, "of="+raw, fmt.Sprintf("seek=%d", partStart), "oflag=seek_bytes", "conv=notrunc,sparse", "status=none")
	qcow = filepath.Join(dir, "disk.qcow2")
	sh(t, "qemu-img", "convert", "-O", "qcow2", raw, qcow)
	return qcow, fsImg
}

func bootTree(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"boot", "etc/systemd/system/multi-user.target.wants", "usr/lib/x86_64-linux-gnu/systemd"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-6.1.0-9-amd64"), []byte("old kernel"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/initrd.img-6.1.0-9-amd64"), []byte("old initrd"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/vmlinuz-6.1.0-10-amd64"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(root, "boot/initrd.img-6.1.0-10-amd64"), []byte("initrd"), 0o644)
	os.WriteFile(filepath.Join(root, "usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so"), nil, 0o644)
	os.Symlink("/usr/lib/systemd/system/ssh.service", filepath.Join(root, "etc/systemd/system/sshd.service"))
	return root
}

func sum(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

var spec = Spec{Distro: "debian", Release: "13", System: "x86_64-linux", Strategy: "disk"}

// extractRoot converts the patched qcow2 to raw and cuts out p1.
func extractRoot(t *testing.T, qcow string) string {
	dir := t.TempDir()
	raw := filepath.Join(dir, "out.raw")
	sh(t, "qemu-img", "convert", "-O", "raw", qcow, raw)
	p1 := filepath.Join(dir, "p1.ext4")
	sh(t, "dd", "if="+raw, "of="+p1, fmt.Sprintf("skip=%d", partStart), "iflag=skip_bytes", "bs=1M", "count=64", "status=none")
	return p1
}

func TestPatchFilesystems(t *testing.T) {
	tests := []struct {
		name string
		mkfs []string
	}{
		{"debian 12 mke2fs defaults", nil},
		{"debian 13 features (orphan_file, metadata_csum_seed)", []string{"-O", "orphan_file,metadata_csum_seed"}},
		{"no flex_bg, 1 KiB blocks", []string{"-O", "^flex_bg", "-b", "1024"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, _ := makeImage(t, bootTree(t), tt.mkfs...)
			before := sum(t, in)
			out := filepath.Join(t.TempDir(), "prepared")
			m, st, err := Patch(context.Background(), in, out, spec, guest.NewPlan(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if sum(t, in) != before {
				t.Fatal("the input image was modified")
			}
			if m.RootDevice != "/dev/vda1" || m.SystemdVersion != 257 || m.KernelVersion != "6.1.0-10-amd64" {
				t.Errorf("manifest = %+v", m)
			}
			if !contains(m.KernelParams, "systemd.mask=sshd.service") || len(st.SkippedMasks) != 1 {
				t.Errorf("an existing sshd.service link should be masked on the command line: %v", m.KernelParams)
			}
			if _, err := manifest.Load(out); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(out, "vmlinuz")); string(b) != "kernel" {
				t.Errorf("vmlinuz = %q, want the newest kernel", b)
			}
			p1 := extractRoot(t, filepath.Join(out, "disk.qcow2"))
			if out, err := exec.Command("e2fsck", "-fn", p1).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn after patch: %v\n%s", err, out)
			}
			for _, f := range guest.NewPlan().Files {
				got, err := exec.Command("debugfs", "-R", "cat "+f.Path, p1).Output()
				if err != nil || string(got) != string(f.Data) {
					t.Errorf("%s reads back differently", f.Path)
				}
				stat := sh(t, "debugfs", "-R", "stat "+f.Path, p1)
				if !strings.Contains(stat, fmt.Sprintf("Mode:  %04o", f.Mode)) {
					t.Errorf("%s mode: %s", f.Path, strings.SplitN(stat, "\n", 2)[0])
				}
			}
			link := sh(t, "debugfs", "-R", "stat /etc/systemd/system/ssh.service", p1)
			if !strings.Contains(link, `Fast link dest: "/dev/null"`) {
				t.Errorf("ssh.service is not masked:\n%s", link)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestRefusesHtree: a plan that adds an entry to a hash-indexed directory is
// refused and nothing is written.
func TestRefusesHtree(t *testing.T) {
	root := bootTree(t)
	big := filepath.Join(root, "big")
	os.MkdirAll(big, 0o755)
	for i := 0; i < 500; i++ {
		os.WriteFile(filepath.Join(big, fmt.Sprintf("a-rather-long-file-name-to-fill-blocks-%04d", i)), nil, 0o644)
	}
	in, fsImg := makeIndexedImage(t, root, true)
	if !strings.Contains(sh(t, "debugfs", "-R", "stat /big", fsImg), "Flags: 0x81000") {
		t.Skip("mkfs.ext4 did not index /big; cannot test the guard")
	}
	plan := guest.Plan{Files: []guest.File{{Path: "/big/new", Mode: 0o644, Data: []byte("x")}}}
	out := filepath.Join(t.TempDir(), "prepared")
	_, _, err := Patch(context.Background(), in, out, spec, plan, Options{})
	if err == nil || !strings.Contains(err.Error(), "hash-indexed") || !strings.Contains(err.Error(), "/big") {
		t.Fatalf("error = %v, want a refusal naming /big", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output left behind: %v", err)
	}
}

func TestBadInputs(t *testing.T) {
	need(t, "qemu-img")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		return p
	}
	good, _ := makeImage(t, bootTree(t))
	goodBytes, _ := os.ReadFile(good)
	noKernelRoot := t.TempDir()
	os.MkdirAll(filepath.Join(noKernelRoot, "boot"), 0o755)
	noKernel, _ := makeImage(t, noKernelRoot)
	xfs := make([]byte, 4<<20)
	copy(xfs[512:], []byte("EFI PART"))
	tests := []struct {
		name, input, out, want string
		spec                   Spec
	}{
		{"not a disk image", write("text", []byte(strings.Repeat("hello\n", 1<<18))), "", "no partition table", spec},
		{"too small", write("tiny", []byte("x")), "", "too small", spec},
		{"truncated qcow2", write("trunc.qcow2", goodBytes[:len(goodBytes)/3]), "", "", spec},
		{"zeros", write("zeros", make([]byte, 4<<20)), "", "no partition table", spec},
		{"missing", filepath.Join(dir, "nope"), "", "no such file", spec},
		{"no kernel", noKernel, "", "no kernel matching /boot/vmlinuz-*", spec},
		{"unsupported strategy", good, "", `strategy "cloud-init"`, Spec{Distro: "rocky", Release: "9", Strategy: "cloud-init"}},
		{"output not writable", good, "/proc/distrotest-out", "", spec},
		{"output is a file", good, write("afile", []byte("x")), "not a directory", spec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.out
			if out == "" {
				out = filepath.Join(t.TempDir(), "prepared")
			}
			_, _, err := Patch(context.Background(), tt.input, out, tt.spec, guest.NewPlan(), Options{})
			if err == nil {
				t.Fatal("Patch succeeded")
			}
			if !strings.Contains(err.Error(), tt.input) {
				t.Errorf("error %q does not name the input", err)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if tt.out == "" {
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Errorf("output left behind")
				}
				leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".prepared*"))
				if len(leftovers) > 0 {
					t.Errorf("temp dirs left: %v", leftovers)
				}
			}
		})
	}
}

func TestVersionLess(t *testing.T) {
	tests := []struct{ a, b string }{
		{"vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-10-amd64"},
		{"vmlinuz-5.15.0", "vmlinuz-6.1.0"},
		{"vmlinuz-6.1", "vmlinuz-6.1.1"},
	}
	for _, tt := range tests {
		if !versionLess(tt.a, tt.b) || versionLess(tt.b, tt.a) {
			t.Errorf("versionLess(%q, %q) wrong", tt.a, tt.b)
		}
	}
}
