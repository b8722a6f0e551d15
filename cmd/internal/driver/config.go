package driver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/jsonpos"
	"github.com/distrotest/distrotest/cmd/internal/machine"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/pybridge"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// ConfigVersion is the driver.json format version this package reads.
const ConfigVersion = 1

// Defaults for fields left out of driver.json (the Nix library's defaults).
const (
	DefaultName          = "distrotest"
	DefaultGlobalTimeout = time.Hour
	DefaultMemoryMiB     = qemu.DefaultMemoryMiB
	DefaultCPUs          = qemu.DefaultCPUs
)

// Config is driver.json: one test, written by the Nix library (or by hand),
// decoded strictly (unknown keys are errors). Relative paths in it are
// relative to the file's directory.
type Config struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	// TestScript is the Python test script.
	TestScript string `json:"test_script"`
	// GlobalTimeout bounds the whole run, in seconds (0: an hour).
	GlobalTimeout int `json:"global_timeout"`
	// Accel is "auto" (default), "kvm" or "tcg".
	Accel string `json:"accel"`
	// VLANs lists the test's VLANs; every machine's VLANs must be in it.
	// Empty means the union of the machines' VLANs.
	VLANs    []int           `json:"vlans"`
	Machines []MachineConfig `json:"machines"`
	// NoRestore boots every machine cold instead of restoring it from the
	// snapshot of its shape (the Nix library's restore = false).
	NoRestore bool `json:"no_restore,omitempty"`
}

// MachineConfig is one node of the test.
type MachineConfig struct {
	Name string `json:"name"`
	// Image is a prepared image directory (with manifest.json).
	Image string `json:"image"`
	// MemorySize is in MiB (0: 1024).
	MemorySize int `json:"memory_size"`
	// CPUs is the number of virtual CPUs (0: 2).
	CPUs int `json:"cpus"`
	// DiskSize grows the machine's disk to this many MiB in total (null:
	// the image's size).
	DiskSize *int `json:"disk_size"`
	// DiskGrow grows the machine's disk by this many MiB over the image's
	// size (null: not at all); at most one of DiskSize and DiskGrow. With
	// either, the guest grows its root partition and file system at boot.
	DiskGrow *int `json:"disk_grow"`
	// VLANs the machine has a network card on (addresses guest.IPv4 and
	// guest.IPv6, numbered by guest.NodeNumbers).
	VLANs []int `json:"vlans"`
	// SharedDirs are host directories mounted in the guest at boot, by
	// mount tag.
	SharedDirs map[string]SharedDir `json:"shared_dirs"`
	// NixStore, when set, is mounted read-only over /nix/store.
	NixStore string `json:"nix_store"`
	// SELinuxEnforcing boots SELinux enforcing on SELinux distros, which
	// boot permissive by default (nix-vm-test's selinuxEnforcing).
	SELinuxEnforcing bool `json:"selinux_enforcing"`
	// ExtraPathsToRegister are store paths whose closure the guest's Nix
	// database gets (through NixRegistration).
	ExtraPathsToRegister []string `json:"extra_paths_to_register"`
	// NixRegistration is a file inside NixStore in the format of
	// `nix-store --dump-db` (nixpkgs' closureInfo registration) for the
	// closure of ExtraPathsToRegister; the guest loads it at boot with
	// nix-store --load-db. It travels with the store share.
	NixRegistration string `json:"nix_registration,omitempty"`
	// ShareTransport carries the store and the shares: "9p" or
	// "virtiofs"; empty means the image's choice (its manifest), else the
	// runner's default (DefaultShareTransport).
	ShareTransport string `json:"share_transport,omitempty"`
}

// SharedDir is a host directory mounted in the guest.
type SharedDir struct {
	Source string `json:"source"`
	Target string `json:"target"`
	// ReadOnly exports the directory read-only (the host refuses writes)
	// and mounts it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Timeout returns the global timeout.
func (c *Config) Timeout() time.Duration {
	if c.GlobalTimeout <= 0 {
		return DefaultGlobalTimeout
	}
	return time.Duration(c.GlobalTimeout) * time.Second
}

// Load reads, decodes and validates driver.json at path, resolves relative
// paths against its directory and fills in defaults. Errors name the file
// and, for decoding errors, line and column ("driver.json:9:7: unknown key
// \"memory\" in machines[0]").
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading driver config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.resolve(dir)
	return c, nil
}

// Parse decodes and validates data (named name in errors) and fills in
// defaults; relative paths stay relative.
func Parse(name string, data []byte) (*Config, error) {
	var c Config
	if err := jsonpos.Decode(name, data, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		// One line per problem, each naming the file.
		var lines []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				lines = append(lines, fmt.Errorf("%s: %w", name, e))
			}
		}
		if len(lines) == 0 {
			lines = append(lines, fmt.Errorf("%s: %w", name, err))
		}
		return nil, errors.Join(lines...)
	}
	c.setDefaults()
	return &c, nil
}

// Validate checks everything the runner relies on; it reports all problems.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Version != ConfigVersion {
		add("version %d is not supported (want %d)", c.Version, ConfigVersion)
	}
	if c.TestScript == "" {
		add("test_script is missing")
	}
	if c.GlobalTimeout < 0 {
		add("global_timeout %d is negative", c.GlobalTimeout)
	}
	if _, err := qemu.Accel(c.Accel, ""); err != nil {
		add("accel %v", err)
	}
	declared := map[int]bool{}
	for _, v := range c.VLANs {
		if err := guest.CheckVLAN(v); err != nil {
			add("vlans: %v", err)
		}
		if declared[v] {
			add("vlans: vlan %d is listed twice", v)
		}
		declared[v] = true
	}
	if len(c.Machines) == 0 {
		add("machines: no machine (a test needs at least one)")
	}
	names := map[string]bool{}
	for i, m := range c.Machines {
		where := fmt.Sprintf("machines[%d]", i)
		if m.Name != "" {
			where += " (" + m.Name + ")"
		}
		switch nameErr := guest.CheckNodeName(m.Name); {
		case m.Name == "":
			add("%s: name is missing", where)
		case nameErr != nil:
			add("%s: %v", where, nameErr)
		case names[m.Name]:
			add("%s: name %q is used twice", where, m.Name)
		}
		names[m.Name] = true
		if m.Image == "" {
			add("%s: image is missing", where)
		}
		if m.MemorySize < 0 {
			add("%s: memory_size %d is negative", where, m.MemorySize)
		}
		if m.CPUs < 0 {
			add("%s: cpus %d is negative", where, m.CPUs)
		}
		if m.DiskSize != nil && *m.DiskSize <= 0 {
			add("%s: disk_size %d: want a size in MiB, or null", where, *m.DiskSize)
		}
		if m.DiskGrow != nil && *m.DiskGrow <= 0 {
			add("%s: disk_grow %d: want a size in MiB, or null", where, *m.DiskGrow)
		}
		if m.DiskSize != nil && m.DiskGrow != nil {
			add("%s: disk_size and disk_grow are both set: give a total or an increase, not both", where)
		}
		seen := map[int]bool{}
		for _, v := range m.VLANs {
			switch vlanErr := guest.CheckVLAN(v); {
			case vlanErr != nil:
				add("%s: %v", where, vlanErr)
			case len(c.VLANs) > 0 && !declared[v]:
				add("%s: vlan %d is not in the test's vlans %v", where, v, c.VLANs)
			case seen[v]:
				add("%s: vlan %d is listed twice", where, v)
			}
			seen[v] = true
		}
		for _, tag := range sortedKeys(m.SharedDirs) {
			d := m.SharedDirs[tag]
			if err := guest.CheckShareTag(tag); err != nil {
				add("%s: shared_dirs: %v", where, err)
			}
			if d.Source == "" {
				add("%s: shared_dirs %q: source is missing", where, tag)
			}
			if err := guest.CheckMountTarget(d.Target); err != nil {
				add("%s: shared_dirs %q: %v", where, tag, err)
			}
		}
		for _, p := range m.ExtraPathsToRegister {
			if !strings.HasPrefix(p, "/") {
				add("%s: extra_paths_to_register: %q is not an absolute path", where, p)
			}
		}
		if err := CheckShareTransport(m.ShareTransport); err != nil {
			add("%s: share_transport: %v", where, err)
		}
		if m.NixRegistration != "" && m.NixStore == "" {
			add("%s: nix_registration %q needs nix_store: it travels with the store share", where, m.NixRegistration)
		}
	}
	return errors.Join(errs...)
}

// CheckShareTransport accepts "" (no choice), "9p" and "virtiofs".
func CheckShareTransport(s string) error {
	switch s {
	case "", manifest.ShareTransport9P, manifest.ShareTransportVirtiofs:
		return nil
	}
	return fmt.Errorf("%q: want %s or %s", s, manifest.ShareTransport9P, manifest.ShareTransportVirtiofs)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.GlobalTimeout == 0 {
		c.GlobalTimeout = int(DefaultGlobalTimeout / time.Second)
	}
	if c.Accel == "" {
		c.Accel = "auto"
	}
	if len(c.VLANs) == 0 {
		set := map[int]bool{}
		for _, m := range c.Machines {
			for _, v := range m.VLANs {
				set[v] = true
			}
		}
		for v := range set {
			c.VLANs = append(c.VLANs, v)
		}
	}
	sort.Ints(c.VLANs)
	sort.Slice(c.Machines, func(i, j int) bool { return c.Machines[i].Name < c.Machines[j].Name })
	for i := range c.Machines {
		m := &c.Machines[i]
		if m.MemorySize == 0 {
			m.MemorySize = DefaultMemoryMiB
		}
		if m.CPUs == 0 {
			m.CPUs = DefaultCPUs
		}
		sort.Ints(m.VLANs)
	}
}

// resolve makes relative paths absolute against dir.
func (c *Config) resolve(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.TestScript = abs(c.TestScript)
	for i := range c.Machines {
		m := &c.Machines[i]
		m.Image = abs(m.Image)
		m.NixStore = abs(m.NixStore)
		m.NixRegistration = abs(m.NixRegistration)
		for tag, d := range m.SharedDirs {
			d.Source = abs(d.Source)
			m.SharedDirs[tag] = d
		}
	}
}

// diskSize is the machine's disk size for machine.Config.
func (m *MachineConfig) diskSize() machine.DiskSize {
	switch {
	case m.DiskSize != nil:
		return machine.DiskSize{MiB: *m.DiskSize}
	case m.DiskGrow != nil:
		return machine.DiskSize{MiB: *m.DiskGrow, Grow: true}
	}
	return machine.DiskSize{}
}

// created is the MachineConfig of a machine the script creates
// (create_machine): the model machine's (spec.Like, else the first by
// name) with spec's changes, validated as driver.json's machines are.
func (c *Config) created(spec pybridge.MachineSpec) (MachineConfig, error) {
	if len(c.Machines) == 0 {
		return MachineConfig{}, errors.New("the test has no machine to take the image from")
	}
	model := c.Machines[0]
	for _, m := range c.Machines {
		if m.Name == spec.Like {
			model = m
		}
	}
	mc := MachineConfig{
		Name:           spec.Name,
		Image:          model.Image,
		MemorySize:     model.MemorySize,
		CPUs:           model.CPUs,
		VLANs:          slices.Clone(model.VLANs),
		NixStore:       model.NixStore,
		ShareTransport: model.ShareTransport,
	}
	if spec.Image != "" {
		mc.Image = spec.Image
	}
	if spec.VLANs != nil {
		mc.VLANs = slices.Clone(*spec.VLANs)
		sort.Ints(mc.VLANs)
	}
	if spec.MemorySize > 0 {
		mc.MemorySize = spec.MemorySize
	}
	if spec.CPUs > 0 {
		mc.CPUs = spec.CPUs
	}
	one := Config{Version: ConfigVersion, TestScript: c.TestScript, VLANs: c.VLANs, Machines: []MachineConfig{mc}}
	if err := one.Validate(); err != nil {
		// Validate names the machine as driver.json's machines[0].
		msg := strings.ReplaceAll(err.Error(), fmt.Sprintf("machines[0] (%s): ", mc.Name), "")
		return MachineConfig{}, errors.New(strings.ReplaceAll(msg, "machines[0]: ", ""))
	}
	for _, v := range mc.VLANs {
		if !slices.Contains(c.VLANs, v) {
			return MachineConfig{}, fmt.Errorf("vlan %d is not in the test's vlans %v", v, c.VLANs)
		}
	}
	return mc, nil
}
