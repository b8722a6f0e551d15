package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFamilies(t *testing.T) {
	tests := []struct {
		name       string
		ssh        string
		nm, selinx bool
		vconsole   bool
		masks      []string // must be masked
		notMasked  []string // must not be: absent from that family's images
		bootParams []string
	}{
		{name: "debian", ssh: "ssh.service", masks: []string{"ssh.service", "apt-daily.timer", "systemd-networkd.service"},
			notMasked: []string{"snapd.service", "NetworkManager-wait-online.service", "dnf-makecache.timer"}},
		{name: "ubuntu", ssh: "ssh.service", masks: []string{"ssh.service", "snapd.service", "systemd-networkd.service"},
			notMasked: []string{"dnf-makecache.timer", "NetworkManager-wait-online.service"}},
		{name: "fedora", ssh: "sshd.service", nm: true, selinx: true, bootParams: []string{"enforcing=0"},
			masks:     []string{"sshd.service", "dnf5-makecache.timer", "NetworkManager-wait-online.service", "cloud-init-main.service"},
			notMasked: []string{"ssh.service", "apt-daily.timer", "systemd-networkd.service", "snapd.service"}},
		{name: "el", ssh: "sshd.service", nm: true, selinx: true, vconsole: true, bootParams: []string{"enforcing=0"},
			masks:     []string{"sshd.service", "dnf-makecache.timer", "NetworkManager-wait-online.service", "cloud-init.service"},
			notMasked: []string{"ssh.service", "apt-daily.timer", "systemd-networkd.service", "dnf5-makecache.timer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := FamilyFor(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if f.SSHUnit != tt.ssh || f.NetworkManager != tt.nm || f.SELinux != tt.selinx || f.VirtioConsoleModule != tt.vconsole {
				t.Errorf("family %+v", f)
			}
			for _, u := range append(tt.masks, consoleMasks...) {
				if !slices.Contains(f.Masked, u) {
					t.Errorf("%s is not masked", u)
				}
			}
			for _, u := range tt.notMasked {
				if slices.Contains(f.Masked, u) {
					t.Errorf("%s is masked but does not exist on %s", u, tt.name)
				}
			}
			sorted := slices.Clone(f.Masked)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != len(f.Masked) {
				t.Errorf("duplicate masks: %v", f.Masked)
			}
			if d := cmp.Diff(tt.bootParams, f.BootParams()); d != "" {
				t.Errorf("BootParams (-want +got):\n%s", d)
			}
			p := PlanFor(f)
			var masked []string
			for _, s := range p.Symlinks {
				if s.Target == "/dev/null" {
					masked = append(masked, strings.TrimPrefix(s.Path, unitDir+"/"))
				}
			}
			if d := cmp.Diff(f.Masked, masked); d != "" {
				t.Errorf("plan masks (-want +got):\n%s", d)
			}
		})
	}
	if _, err := FamilyFor("arch"); err == nil || !strings.Contains(err.Error(), "known: debian, el, fedora, ubuntu") {
		t.Errorf("FamilyFor(arch) error = %v", err)
	}
	if NewPlan().Hash() != PlanFor(Debian()).Hash() {
		t.Error("NewPlan is not the Debian plan")
	}
	el, err := FamilyFor("el")
	if err != nil {
		t.Fatal(err)
	}
	if PlanFor(Debian()).Hash() == PlanFor(el).Hash() {
		t.Error("the EL plan hashes like Debian's: prepared-image cache keys would collide")
	}
	fs := Families()
	fs[0].Masked[0] = "changed"
	if Families()[0].Masked[0] == "changed" {
		t.Error("Families exposes the package's table")
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
		t.Skip("bash not installed")
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
		script := "ip() { :; }\nmodprobe() { echo \"modprobe $*\" >>" + root + "/modprobe.log; }\n" + string(asset("setup"))
		for _, r := range []struct{ from, to string }{
			{"/usr/lib/NetworkManager", root + "/nm-lib"},
			{"/usr/sbin/NetworkManager", root + "/nm-bin"},
			{"/run/NetworkManager", root + "/run-nm"},
			{"/sys/class/net", root + "/net"},
			{"/etc/resolv.conf", root + "/resolv.conf"},
			{"/proc/cmdline", root + "/cmdline"},
			{"/proc/sys/kernel/hostname", root + "/hostname"},
			{"/etc/hosts", root + "/hosts"},
			{"passwd -d root", "true"},
			{"sleep 0.05", "true"}, // no NICs here: do not wait for them
		} {
			script = strings.ReplaceAll(script, r.from, r.to)
		}
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
		want := "[keyfile]\nunmanaged-devices=mac:52:54:00:12:34:56;mac:" + MAC(1, 2) + ";mac:" + MAC(12, 2) + "\n"
		if d := cmp.Diff(want, string(data)); d != "" {
			t.Errorf("NetworkManager configuration (-want +got):\n%s", d)
		}
		log, err := os.ReadFile(filepath.Join(root, "modprobe.log"))
		if err != nil || !strings.HasPrefix(string(log), "modprobe -q virtio_console\n") {
			t.Errorf("virtio_console is not loaded first: %q, %v", log, err)
		}
	}
}
