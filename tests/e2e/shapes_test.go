package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distrotest/distrotest/tests/testbin"
)

// shapes are the stand-in family shapes (imagebuild: shape/<name>), built
// from Debian packages with each family's disk and boot layout. They are
// test shapes, not those distros.
var shapes = []struct {
	name string
	no9p bool // the kernel has no 9p, as RHEL's
}{
	{name: "ubuntu"},
	{name: "fedora"},
	{name: "el", no9p: true},
}

// preparedShape builds shape/<name> through the image cache, then
// prepares its disk as any local image, with no distro named: the release
// is read from the disk's /etc/os-release (on xfs for el, btrfs for
// fedora, ext4 for ubuntu), and the patcher takes the strategy its
// description gives. It returns the prepared directory.
func preparedShape(t *testing.T, name string) string {
	t.Helper()
	bin := binaries(t)
	gen := func(args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "distrotest-gen"), args...)
		cmd.Dir = testbin.RepoRoot()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("distrotest-gen %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out)), stderr.String()
	}
	disk, _ := gen("image", "build", "shape/"+name)
	dir, stderr := gen("image", "prepare", disk)
	if want := "shape/" + name + " (from its os-release)"; !strings.Contains(stderr, want) {
		t.Fatalf("image prepare %s: stderr lacks %q:\n%s", disk, want, stderr)
	}
	return dir
}

// TestShapes boots each stand-in shape as two machines on a VLAN and runs
// tests/vm/shape.py: the shape's boot layout and family guest side as the
// guest sees them, the VLAN between the two, then tests/vm/api.py (every
// API group, a reboot that keeps state) on one of them. The shapes run one
// after the other (two VMs at a time); on the EL shape, which has no 9p,
// no share or store is given and api.py asserts that instead. The peer's
// disk is grown by 2 GiB, so each boot of it also proves the growth path of
// its family's root file system (xfs on el, btrfs on fedora, ext4 on
// ubuntu): tests/nix/root-grown.py.
func TestShapes(t *testing.T) {
	t.Parallel()
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			img := preparedShape(t, s.name)
			dir := hostDir(t)
			type shared struct {
				Source string `json:"source"`
				Target string `json:"target"`
			}
			type machine struct {
				Name       string            `json:"name"`
				Image      string            `json:"image"`
				MemorySize int               `json:"memory_size,omitempty"`
				CPUs       int               `json:"cpus,omitempty"`
				VLANs      []int             `json:"vlans"`
				SharedDirs map[string]shared `json:"shared_dirs,omitempty"`
				NixStore   string            `json:"nix_store,omitempty"`
				DiskGrow   int               `json:"disk_grow,omitempty"`
			}
			main := machine{Name: "machine", Image: img, VLANs: []int{1}}
			env := []string{"DT_SHAPE=" + s.name}
			if s.no9p {
				env = append(env, "DT_NO_9P=1")
			} else {
				main.SharedDirs = map[string]shared{"data": {Source: dir, Target: "/mnt/data"}}
				main.NixStore = "/nix/store"
			}
			cfg := map[string]any{
				"version": 1, "name": "shape-" + s.name, "test_script": script(t, "shape.py"), "global_timeout": 1800,
				"vlans": []int{1},
				// The peer's disk is 2 GiB larger than the image (nix-vm-test's
				// diskSize = "+2G"): its boot grows the root partition and
				// the family's root file system (xfs, btrfs, ext4).
				"machines": []machine{main, {Name: "peer", Image: img, MemorySize: 512, CPUs: 1, VLANs: []int{1}, DiskGrow: 2048}},
			}
			data, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "driver.json")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			res := runEnv(t, withTimeout(t, 30*time.Minute), env, "--config", p)
			if res.exit != 0 {
				t.Fatalf("shape.py failed on shape/%s (exit %d)", s.name, res.exit)
			}
			for _, want := range []string{s.name + " shape: booted as the family boots", s.name + " shape: the root file system grown at boot", "two machines on a VLAN", "reboot keeps state"} {
				if !strings.Contains(res.output, want) {
					t.Errorf("output lacks subtest %q", want)
				}
			}
			if s.no9p && !strings.Contains(res.output, "no 9p on this machine's kernel") {
				t.Errorf("the EL shape run does not say that it has no 9p")
			}
		})
	}
}

// TestUbuntuDiskStrategyOnBOOT prepares the Ubuntu shape as the real
// Ubuntu 24.04 is prepared (the disk strategy, ubuntu.hcl) and checks,
// without booting, that the kernel and initrd come from the separate ext4
// BOOT partition: the root's /boot is empty on this layout.
func TestUbuntuDiskStrategyOnBOOT(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	build := exec.Command(filepath.Join(bin, "distrotest-gen"), "image", "build", "shape/ubuntu")
	disk, err := build.Output()
	if err != nil {
		t.Fatalf("image build shape/ubuntu: %v", err)
	}
	diskPath := strings.TrimSpace(string(disk))
	var info struct {
		KernelVersion string `json:"kernel_version"`
		BootPartition int    `json:"boot_partition"`
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(diskPath), "build.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &info); err != nil {
		t.Fatal(err)
	}
	if info.BootPartition != 16 {
		t.Fatalf("shape/ubuntu build.json: boot partition %d, want 16", info.BootPartition)
	}
	out := filepath.Join(t.TempDir(), "prepared")
	patch := exec.Command(filepath.Join(bin, "distrotest-gen"), "image", "patch", "--distro", "ubuntu/24.04", diskPath, "-o", out)
	if b, err := patch.CombinedOutput(); err != nil {
		t.Fatalf("image patch --distro ubuntu/24.04: %v\n%s", err, b)
	}
	var m struct {
		Strategy      string `json:"strategy"`
		RootDevice    string `json:"root_device"`
		KernelVersion string `json:"kernel_version"`
	}
	data, err = os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Strategy != "disk" || m.RootDevice != "/dev/vda1" || m.KernelVersion != info.KernelVersion {
		t.Errorf("manifest: strategy %q, root %q, kernel %q; want disk, /dev/vda1, %q (from BOOT)", m.Strategy, m.RootDevice, m.KernelVersion, info.KernelVersion)
	}
	for _, f := range []string{"vmlinuz", "initrd"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() < 1<<20 {
			t.Errorf("%s not extracted: %v", f, err)
		}
	}
}
