package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/internal/testenv"
)

// Facts as the HCL gives them (distros/*.hcl).
var (
	testDebian = Debian()
	testUbuntu = Family{Name: "ubuntu", SSHUnit: "ssh.service"}
	testFedora = Family{Name: "fedora", SSHUnit: "sshd.service", NetworkManager: true, SELinux: true}
	testEL     = Family{Name: "el", SSHUnit: "sshd.service", NetworkManager: true, SELinux: true, VirtioConsoleModule: true}
)

func TestFamilies(t *testing.T) {
	tests := []struct {
		f          Family
		masks      []string // must be masked
		notMasked  []string // must not be: absent from that family's images
		bootParams []string
	}{
		{f: testDebian, masks: []string{"ssh.service", "ssh.socket", "sshd.service", "apt-daily.timer", "systemd-networkd.service"},
			notMasked: []string{"snapd.service", "NetworkManager-wait-online.service", "dnf-makecache.timer"}},
		{f: testUbuntu, masks: []string{"ssh.service", "snapd.service", "systemd-networkd.service"},
			notMasked: []string{"dnf-makecache.timer", "NetworkManager-wait-online.service"}},
		{f: testFedora, bootParams: []string{"enforcing=0"},
			masks:     []string{"sshd.service", "sshd.socket", "dnf5-makecache.timer", "NetworkManager-wait-online.service", "cloud-init-main.service"},
			notMasked: []string{"ssh.service", "apt-daily.timer", "systemd-networkd.service", "snapd.service"}},
		{f: testEL, bootParams: []string{"enforcing=0"},
			masks:     []string{"sshd.service", "dnf-makecache.timer", "NetworkManager-wait-online.service", "cloud-init.service"},
			notMasked: []string{"ssh.service", "apt-daily.timer", "systemd-networkd.service", "dnf5-makecache.timer"}},
	}
	for _, tt := range tests {
		t.Run(tt.f.Name, func(t *testing.T) {
			if _, err := FamilyFor(tt.f.Name); err != nil {
				t.Fatal(err)
			}
			masked := tt.f.Masked()
			for _, u := range append(tt.masks, consoleMasks...) {
				if !slices.Contains(masked, u) {
					t.Errorf("%s is not masked", u)
				}
			}
			for _, u := range tt.notMasked {
				if slices.Contains(masked, u) {
					t.Errorf("%s is masked but does not exist on %s", u, tt.f.Name)
				}
			}
			sorted := slices.Clone(masked)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != len(masked) {
				t.Errorf("duplicate masks: %v", masked)
			}
			if d := cmp.Diff(tt.bootParams, tt.f.BootParams()); d != "" {
				t.Errorf("BootParams (-want +got):\n%s", d)
			}
			var planMasks []string
			for _, s := range PlanFor(tt.f).Symlinks {
				if s.Target == "/dev/null" {
					planMasks = append(planMasks, strings.TrimPrefix(s.Path, unitDir+"/"))
				}
			}
			if d := cmp.Diff(masked, planMasks); d != "" {
				t.Errorf("plan masks (-want +got):\n%s", d)
			}
		})
	}
	if _, err := FamilyFor("arch"); err == nil || !strings.Contains(err.Error(), "known: debian, el, fedora, ubuntu") {
		t.Errorf("FamilyFor(arch) error = %v", err)
	}
	if f, _ := FamilyFor("el"); f != (Family{Name: "el"}) {
		t.Errorf("FamilyFor(el) = %+v: facts come from the HCL, not from here", f)
	}
	if NewPlan().Hash() != PlanFor(Debian()).Hash() {
		t.Error("NewPlan is not the Debian plan")
	}
	if PlanFor(testDebian).Hash() == PlanFor(testEL).Hash() {
		t.Error("the EL plan hashes like Debian's: prepared-image cache keys would collide")
	}
}

func TestRuntimePlan(t *testing.T) {
	p := RuntimePlan(testEL)
	disk := PlanFor(testEL)
	if len(p.Files) != len(disk.Files) || len(p.Symlinks) != len(disk.Symlinks) {
		t.Fatalf("runtime plan has %d files, %d links; disk plan %d, %d", len(p.Files), len(p.Symlinks), len(disk.Files), len(disk.Symlinks))
	}
	for _, d := range p.Dirs {
		if !strings.HasPrefix(d.Path, "/run/") {
			t.Errorf("dir %s is outside /run", d.Path)
		}
	}
	for _, s := range p.Symlinks {
		if !strings.HasPrefix(s.Path, "/run/systemd/system/") {
			t.Errorf("link %s is outside /run/systemd/system", s.Path)
		}
		if s.Target != "/dev/null" && !strings.HasPrefix(s.Target, "/run/systemd/system/") {
			t.Errorf("link %s points to %s, outside /run", s.Path, s.Target)
		}
	}
	units := 0
	for _, f := range p.Files {
		if !strings.HasPrefix(f.Path, "/run/") {
			t.Errorf("file %s is outside /run", f.Path)
		}
		if !strings.HasSuffix(f.Path, ".service") {
			continue
		}
		units++
		for _, line := range strings.Split(string(f.Data), "\n") {
			if v, ok := strings.CutPrefix(line, "ExecStart="); ok && !strings.HasPrefix(v, "/bin/bash /run/distrotest/") {
				t.Errorf("%s: ExecStart=%s does not run a /run script through bash (/run may be noexec)", f.Path, v)
			}
		}
	}
	diskUnits := 0
	for _, f := range disk.Files {
		if strings.HasSuffix(f.Path, ".service") {
			diskUnits++
		}
	}
	if units != diskUnits || units < 2 {
		t.Errorf("runtime plan has %d units, the disk plan %d (at least the backdoor and setup)", units, diskUnits)
	}
}

func TestSELinuxEnforcingParam(t *testing.T) {
	got, err := KernelParams(Identity{Hostname: "a", SELinuxEnforcing: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"distrotest.hostname=a", "enforcing=1"}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestSetupScriptNetworkManager runs the setup script where NetworkManager
// is installed and checks that it leaves distrotest's NICs unmanaged, and
// that it writes nothing where NetworkManager is not.
func TestSetupScriptNetworkManager(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.Missing(t, "bash not installed")
	}
	for _, installed := range []bool{true, false} {
		root := t.TempDir()
		params, err := KernelParams(Identity{Hostname: "b", N: 2, VLANs: []int{1, 12}})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "cmdline"), []byte("root=/dev/vda4 "+strings.Join(params, " ")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if installed {
			if err := os.Mkdir(filepath.Join(root, "nm-lib"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		script := setupScript(root, "ip() { :; }\nmodprobe() { echo \"modprobe $*\" >>"+root+"/modprobe.log; }\n",
			[2]string{"/usr/lib/NetworkManager", root + "/nm-lib"},
			[2]string{"/usr/sbin/NetworkManager", root + "/nm-bin"},
			[2]string{"/run/NetworkManager", root + "/run-nm"},
			[2]string{"sleep 0.05", "true"}, // no NICs here: do not wait for them
		)
		out, _ := exec.Command("bash", "-c", script).CombinedOutput() // fails: no NICs
		conf := filepath.Join(root, "run-nm/conf.d/90-distrotest.conf")
		data, err := os.ReadFile(conf)
		if !installed {
			if err == nil {
				t.Errorf("without NetworkManager the script wrote %s", conf)
			}
			continue
		}
		if err != nil {
			t.Fatalf("NetworkManager configuration: %v\n%s", err, out)
		}
		want := "[main]\nhostname-mode=none\n[keyfile]\nunmanaged-devices=mac:52:54:00:12:34:56;mac:" + MAC(1, 2) + ";mac:" + MAC(12, 2) + "\n"
		if d := cmp.Diff(want, string(data)); d != "" {
			t.Errorf("NetworkManager configuration (-want +got):\n%s", d)
		}
		log, err := os.ReadFile(filepath.Join(root, "modprobe.log"))
		if err != nil || !strings.HasPrefix(string(log), "modprobe -q virtio_console\n") {
			t.Errorf("virtio_console is not loaded first: %q, %v", log, err)
		}
	}
}
