package machine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// TestRestorePlan checks which machines may be restored and which share a
// snapshot: machines of one test differ in name, number, identity and
// paths but not in their key; anything that shapes the booted machine
// gives another key; and what cannot be restored says why.
func TestRestorePlan(t *testing.T) {
	imageDir, img := testImage(t)
	snaps := t.TempDir()
	tcg := qemu.Host{Binary: "/usr/bin/qemu-system-x86_64", Img: img, Version: "7.2.22", Accel: qemu.AccelTCG}
	hosts := []guest.Host{{Name: "a", N: 1, VLANs: []int{1}}, {Name: "b", N: 2, VLANs: []int{1}}}
	base := func(name string, n int) Config {
		return Config{Name: name, N: n, ImageDir: imageDir, Host: tcg, SnapshotDir: snaps, Hosts: hosts,
			NICs:           []NIC{{VLAN: 1, SwitchSocket: "/sw/" + name}},
			ShareTransport: qemu.TransportVirtiofs, Virtiofsd: "/bin/virtiofsd", NixStore: "/store/" + name,
			Shares: []Share{{Tag: "xchg", Source: "/x/" + name, Target: "/tmp/xchg"}}}
	}
	plan := func(t *testing.T, cfg Config) (*restorePlan, string) {
		t.Helper()
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m.planRestore()
	}
	a, why := plan(t, base("a", 1))
	if a == nil {
		t.Fatalf("machine a cannot be restored: %s", why)
	}
	b, _ := plan(t, base("b", 2))
	if b == nil || b.key != a.key {
		t.Fatalf("two machines of one test have different snapshots: %v, %v", a, b)
	}
	if !strings.HasPrefix(a.dir, snaps+"/") {
		t.Errorf("snapshot dir %s is not in %s", a.dir, snaps)
	}
	for _, p := range a.qemu.KernelParams {
		if strings.HasPrefix(p, "distrotest.") {
			t.Errorf("the snapshot boots with identity parameter %s", p)
		}
	}
	if len(a.qemu.Shares) != 0 || !a.qemu.VMGenID || a.qemu.HotplugPorts == 0 || !a.qemu.SharedMemory {
		t.Errorf("snapshot shape: %+v", a.qemu)
	}
	if a.qemu.NICs[0].MAC != snapshotMAC(1) {
		t.Errorf("snapshot NIC MAC %s, want %s", a.qemu.NICs[0].MAC, snapshotMAC(1))
	}

	t.Run("other keys", func(t *testing.T) {
		keys := map[string]string{"": a.key}
		for _, tt := range []struct {
			name string
			edit func(*Config)
		}{
			{"memory", func(c *Config) { c.MemoryMiB = 2048 }},
			{"cpus", func(c *Config) { c.CPUs = 1 }},
			{"cpu model", func(c *Config) { c.CPU = "max" }},
			{"disk size", func(c *Config) { c.DiskSize = DiskSize{MiB: 512, Grow: true} }},
			{"vlans", func(c *Config) { c.NICs = append(c.NICs, NIC{VLAN: 2, SwitchSocket: "/sw/2"}) }},
			{"qemu version", func(c *Config) { c.Host.Version = "8.2.0" }},
			{"qemu binary", func(c *Config) { c.Host.Binary = "/opt/qemu/bin/qemu-system-x86_64" }},
			{"accelerator", func(c *Config) { c.Host.Accel = qemu.AccelKVM }},
			{"kernel parameters", func(c *Config) { c.ExtraKernelParams = []string{"quiet"} }},
			{"qemu arguments", func(c *Config) { c.ExtraQEMUArgs = []string{"-device", "virtio-balloon"} }},
			{"selinux", func(c *Config) { c.SELinuxEnforcing = true }},
		} {
			cfg := base("a", 1)
			tt.edit(&cfg)
			p, why := plan(t, cfg)
			if p == nil {
				t.Errorf("%s: not restorable: %s", tt.name, why)
				continue
			}
			for other, k := range keys {
				if k == p.key {
					t.Errorf("%s has the key of %q", tt.name, other)
				}
			}
			keys[tt.name] = p.key
		}
		// A new image file (rebuilt) is a new key too.
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(filepath.Join(imageDir, "disk.qcow2"), later, later); err != nil {
			t.Fatal(err)
		}
		if p, _ := plan(t, base("a", 1)); p == nil || slices.Contains(mapValues(keys), p.key) {
			t.Errorf("a rebuilt image disk kept an old key")
		}
	})

	t.Run("cold", func(t *testing.T) {
		for _, tt := range []struct {
			name, why string
			edit      func(*Config)
		}{
			{"9p", "9p", func(c *Config) { c.ShareTransport = qemu.Transport9P }},
			{"kept disk", "keep-vm-state", func(c *Config) { c.KeepState, c.StateDir = true, t.TempDir() }},
			{"initrd strategy", "initrd strategy", func(c *Config) {
				man, err := manifest.Load(imageDir)
				if err != nil {
					t.Fatal(err)
				}
				man.Strategy = "initrd"
				c.Manifest = man
			}},
			{"too many shares", "room for", func(c *Config) {
				for i := range hotplugPorts {
					c.Shares = append(c.Shares, Share{Tag: "s" + string(rune('a'+i)), Source: "/s", Target: "/mnt/s" + string(rune('a'+i))})
				}
			}},
		} {
			cfg := base("a", 1)
			tt.edit(&cfg)
			if p, why := plan(t, cfg); p != nil || !strings.Contains(why, tt.why) {
				t.Errorf("%s: plan %v, reason %q, want a cold boot because of %q", tt.name, p, why, tt.why)
			}
		}
		cfg := base("a", 1)
		cfg.SnapshotDir = ""
		if p, why := plan(t, cfg); p != nil || why != "" {
			t.Errorf("without a snapshot dir: plan %v, reason %q", p, why)
		}
	})
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestUUID checks the boot id format the kernel uses.
func TestUUID(t *testing.T) {
	u := uuid()
	if len(u) != 36 || u[14] != '4' || strings.Count(u, "-") != 4 || u == uuid() {
		t.Errorf("uuid() = %q", u)
	}
}

// TestSnapshotValid checks that an entry is used only for its own key and
// format: an entry whose metadata names another key (a copy, a rename, an
// older format) is not, and the snapshot is made again.
func TestSnapshotValid(t *testing.T) {
	dir := t.TempDir()
	plan := &restorePlan{key: "abc", dir: filepath.Join(dir, "abc")}
	if snapshotValid(plan) {
		t.Error("a missing entry is valid")
	}
	if err := os.Mkdir(plan.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		meta string
		want bool
	}{
		{fmt.Sprintf(`{"format": %d, "key": "abc"}`, snapshotFormat), true},
		{fmt.Sprintf(`{"format": %d, "key": "def"}`, snapshotFormat), false},
		{fmt.Sprintf(`{"format": %d, "key": "abc"}`, snapshotFormat-1), false},
		{`not json`, false},
	} {
		if err := os.WriteFile(filepath.Join(plan.dir, snapshotMeta), []byte(tt.meta), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := snapshotValid(plan); got != tt.want {
			t.Errorf("metadata %s: valid = %v, want %v", tt.meta, got, tt.want)
		}
	}
}

// TestPruneSnapshots keeps the most recently used entries.
func TestPruneSnapshots(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i, key := range []string{"old", "mid", "new"} {
		if err := os.MkdirAll(filepath.Join(dir, key), 0o755); err != nil {
			t.Fatal(err)
		}
		meta := filepath.Join(dir, key, snapshotMeta)
		if err := os.WriteFile(meta, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		used := base.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(meta, used, used); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := pruneSnapshots(dir, 2)
	if err != nil || !slices.Equal(removed, []string{"old"}) {
		t.Fatalf("removed %v, %v; want [old]", removed, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 2 {
		t.Errorf("left: %v", left)
	}
}

// TestSnapshotRefused checks that a shape QEMU refused to save (a device
// that cannot migrate) is not booted again to be refused again.
func TestSnapshotRefused(t *testing.T) {
	imageDir, img := testImage(t)
	snaps := t.TempDir()
	m, err := New(Config{Name: "a", ImageDir: imageDir, SnapshotDir: snaps,
		Host: qemu.Host{Binary: "/nonexistent/qemu", Img: img, Version: "7.2.22", Accel: qemu.AccelTCG}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	plan, why := m.planRestore()
	if plan == nil {
		t.Fatal(why)
	}
	if err := os.WriteFile(plan.dir+".refused", []byte("qemu refused to save the guest: device x is not migratable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = m.ensureSnapshot(t.Context(), plan)
	if err == nil || !strings.Contains(err.Error(), "device x is not migratable") || !strings.Contains(err.Error(), "remove ") {
		t.Errorf("ensureSnapshot: %v, want the earlier refusal", err)
	}
}
