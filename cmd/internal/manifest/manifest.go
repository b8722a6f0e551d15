// Package manifest describes a prepared image directory: the patched disk,
// the kernel and initrd extracted from it, and how to boot it.
//
// The patcher (distrotest-gen image patch) writes a manifest; the runner
// (distrotest run) reads it to build the QEMU command line. This package is
// deliberately tiny and dependency-free so that the runner does not link the
// image tooling.
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/distrotest/distrotest/cmd/internal/atomicfile"
	"github.com/distrotest/distrotest/cmd/internal/jsonpos"
)

// FileName is the name of the manifest inside a prepared image directory.
const FileName = "manifest.json"

// CurrentVersion is the manifest format version this package writes.
const CurrentVersion = 1

// Where an image's backdoor shell listens (Manifest.Backdoor).
const (
	// BackdoorVirtioPort is a virtio serial port (the guest package's
	// ShellPort name), which has flow control: what distrotest-gen's
	// prepared images use.
	BackdoorVirtioPort = "virtio-port"
	// BackdoorHVC0 is the virtconsole hvc0 with the NixOS test driver's
	// marker, for images that bring their own backdoor: a virtconsole drops
	// guest output when the host is slow, so replies there are only as
	// safe as their checks (a short reply fails the call). An empty
	// Backdoor means this.
	BackdoorHVC0 = "hvc0"
)

// Manifest is the content of manifest.json.
type Manifest struct {
	Version        int      `json:"version"`
	Distro         string   `json:"distro"`
	Release        string   `json:"release"`
	System         string   `json:"system"`
	Disk           string   `json:"disk"`
	DiskFormat     string   `json:"disk_format"`
	Kernel         string   `json:"kernel,omitempty"`
	Initrd         string   `json:"initrd,omitempty"`
	RootDevice     string   `json:"root_device"`
	Filesystem     string   `json:"filesystem"`
	KernelParams   []string `json:"kernel_params"`
	Strategy       string   `json:"strategy"`
	SystemdVersion int      `json:"systemd_version,omitempty"`
	KernelVersion  string   `json:"kernel_version,omitempty"`
	// Backdoor is where the image's backdoor shell listens:
	// BackdoorVirtioPort or BackdoorHVC0 (empty: BackdoorHVC0).
	Backdoor string `json:"backdoor,omitempty"`
	// ShareTransport is how this image's kernel takes the Nix store and
	// shares: ShareTransport9P or ShareTransportVirtiofs (EL kernels have
	// no 9p); empty leaves the choice to the runner.
	ShareTransport string `json:"share_transport,omitempty"`
	// Uninstrumented says why the image boots as it is, without the
	// backdoor (strategy "none"): tests can only use the console, the
	// screen, keys and power.
	Uninstrumented string `json:"uninstrumented,omitempty"`
	// OwnBackdoor is the unit of the image's own NixOS-style backdoor
	// (strategy "own-backdoor"), which the runner drives on hvc0.
	OwnBackdoor string `json:"own_backdoor,omitempty"`
}

// BackdoorTransport returns Backdoor with the default applied.
func (m *Manifest) BackdoorTransport() string {
	if m.Backdoor == "" {
		return BackdoorHVC0
	}
	return m.Backdoor
}

// Share transports (the same names as cmd/internal/qemu's; this package
// stays dependency-free).
const (
	ShareTransport9P       = "9p"
	ShareTransportVirtiofs = "virtiofs"
)

// Strategies of images booted as they are (the patcher's strategies are
// package distro's).
const (
	// StrategyNone: uninstrumented, no shell.
	StrategyNone = "none"
	// StrategyOwnBackdoor: not patched, driven through the image's own
	// NixOS-style backdoor on hvc0.
	StrategyOwnBackdoor = "own-backdoor"
)

// StrategyDisk is the strategy of an image whose guest assets were written
// to its disk (distro.StrategyDisk: Debian, Ubuntu).
const StrategyDisk = "disk"

// Validate checks the fields the runner depends on.
func (m *Manifest) Validate() error {
	var errs []error
	if m.Version != CurrentVersion {
		errs = append(errs, fmt.Errorf("version %d is not supported (want %d)", m.Version, CurrentVersion))
	}
	if m.Disk == "" {
		errs = append(errs, errors.New("disk is empty"))
	}
	switch m.DiskFormat {
	case "qcow2", "raw":
	default:
		errs = append(errs, fmt.Errorf("disk_format %q is not qcow2 or raw", m.DiskFormat))
	}
	if (m.Kernel == "") != (m.Initrd == "") {
		errs = append(errs, errors.New("kernel and initrd must be given together"))
	}
	if m.Strategy == "" {
		errs = append(errs, errors.New("strategy is empty"))
	}
	switch m.Backdoor {
	case "", BackdoorVirtioPort, BackdoorHVC0:
	default:
		errs = append(errs, fmt.Errorf("backdoor %q is not %q or %q", m.Backdoor, BackdoorVirtioPort, BackdoorHVC0))
	}
	switch m.ShareTransport {
	case "", ShareTransport9P, ShareTransportVirtiofs:
	default:
		errs = append(errs, fmt.Errorf("share_transport %q is not %s or %s", m.ShareTransport, ShareTransport9P, ShareTransportVirtiofs))
	}
	if (m.Strategy == StrategyNone) != (m.Uninstrumented != "") {
		errs = append(errs, fmt.Errorf("strategy %q goes with uninstrumented (the reason) and only with it", StrategyNone))
	}
	if (m.Strategy == StrategyOwnBackdoor) != (m.OwnBackdoor != "") {
		errs = append(errs, fmt.Errorf("strategy %q goes with own_backdoor (the unit) and only with it", StrategyOwnBackdoor))
	}
	if m.OwnBackdoor != "" && m.BackdoorTransport() != BackdoorHVC0 {
		errs = append(errs, fmt.Errorf("own_backdoor goes with backdoor %q (a NixOS-style backdoor is on hvc0), not %q", BackdoorHVC0, m.Backdoor))
	}
	return errors.Join(errs...)
}

// Path resolves a path from the manifest relative to the directory dir.
func Path(dir, rel string) string {
	if rel == "" || filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(dir, rel)
}

// Load reads and validates dir/manifest.json. Unknown keys are errors,
// named with their line and column.
func Load(dir string) (*Manifest, error) {
	p := filepath.Join(dir, FileName)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading prepared image manifest: %w", err)
	}
	var m Manifest
	if err := jsonpos.Decode(p, data, &m); err != nil {
		return nil, fmt.Errorf("decoding prepared image manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("validating %s: %w", p, err)
	}
	return &m, nil
}

// Write writes dir/manifest.json atomically (temporary file + rename).
func (m *Manifest) Write(dir string) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("writing manifest in %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding manifest: %w", err)
	}
	data = append(data, '\n')
	return atomicfile.WriteFile(filepath.Join(dir, FileName), data, 0o644)
}
