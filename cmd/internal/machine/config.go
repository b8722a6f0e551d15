package machine

// A machine's configuration and its translation into the guest's kernel
// command line and QEMU's (qemu.Config).

import (
	"io"
	"log/slog"
	"path"
	"path/filepath"
	"strings"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// Share is a host directory mounted in the guest over 9p or virtiofs (the
// machine's ShareTransport).
type Share struct {
	Tag      string // mount tag (letters, digits, '-', '_'; at most 31)
	Source   string // host directory
	Target   string // absolute mount point in the guest
	ReadOnly bool
}

// NIC is the machine's network card on a VLAN.
type NIC struct {
	VLAN         int
	SwitchSocket string // the vlan.Switch's socket
}

// Config describes one machine.
type Config struct {
	// Name is the machine's name (and the guest's host name).
	Name string
	// N is the node number (1-based, machines sorted by name); it makes
	// the VLAN MAC and IP addresses.
	N int
	// ImageDir is the prepared image directory; Manifest is its manifest
	// (loaded from ImageDir when nil).
	ImageDir string
	Manifest *manifest.Manifest
	// StateDir holds the disk overlay; it is private to the machine: New
	// removes and recreates it (mode 0700) unless KeepState, and Close
	// removes it unless KeepState. Empty means a temporary directory.
	StateDir string
	// SocketDir holds the unix sockets; it must be short (socket paths are
	// limited to 108 bytes). Empty means a private temporary directory
	// under /tmp, removed by Close.
	SocketDir string
	// OutDir receives <Name>/console.log; empty means no console file.
	OutDir string
	// MemoryMiB and CPUs size the guest (zero: qemu.DefaultMemoryMiB,
	// qemu.DefaultCPUs).
	MemoryMiB, CPUs int
	// DiskSize grows the overlay beyond the image's disk (zero: same
	// size); the guest then grows its root partition and file system at
	// boot.
	DiskSize DiskSize
	// Internet gives the guest a default route through QEMU's user-mode
	// NAT; without it only the test's VLANs are reachable.
	Internet bool
	// CPU overrides QEMU's -cpu model (see qemu.Config.CPU).
	CPU string
	// ShellPort puts the guest's shell on the virtio serial port of this
	// name instead of the virtconsole hvc0 (see qemu.Config.ShellPort).
	// Empty means what the image's manifest says: qemu.ShellPortName for
	// manifest.BackdoorVirtioPort, hvc0 otherwise.
	ShellPort string
	// Host is the result of qemu.Probe.
	Host qemu.Host
	// Shares are host directories to mount in the guest.
	Shares []Share
	// NixStore, when not empty, is exported read-only and mounted over
	// /nix/store in the guest.
	NixStore string
	// NixRegistration, when not empty, is a file in NixStore in the format
	// of `nix-store --dump-db` (nixpkgs' closureInfo "registration"); the
	// guest loads it into its Nix database at boot (nix-store --load-db),
	// when it has Nix.
	NixRegistration string
	// ShareTransport carries the store and the shares: qemu.Transport9P
	// (also when empty) or qemu.TransportVirtiofs, which starts one
	// Virtiofsd per directory before QEMU, stopped when QEMU exits.
	ShareTransport string
	// Virtiofsd is the virtiofsd binary (the Rust one, which runs
	// unprivileged with --sandbox=none); needed for virtiofs.
	Virtiofsd string
	// SELinuxEnforcing boots SELinux enforcing (enforcing=1 after the
	// image's enforcing=0); see guest.Identity.
	SELinuxEnforcing bool
	// NICs are the machine's VLAN network cards.
	NICs []NIC
	// Hosts are all nodes of the test, for the guest's /etc/hosts.
	Hosts []guest.Host
	// ExtraKernelParams are appended to the kernel command line.
	ExtraKernelParams []string
	// ExtraQEMUArgs are appended to QEMU's command line.
	ExtraQEMUArgs []string
	// KeepState keeps the state directory: an existing overlay is reused
	// and Close does not remove it.
	KeepState bool
	// Logger receives the machine's log (nil discards).
	Logger *slog.Logger
	// Console, when not nil, also receives the serial console output.
	Console io.Writer
	// SnapshotDir, when set, is where snapshots of booted machines are
	// kept (cache.Snapshots): the machine's first Start restores it from
	// the snapshot of its shape (made there first when missing) and then
	// applies its identity; it boots cold when it cannot be restored, with
	// the reason in the log. Empty: every boot is cold.
	SnapshotDir string

	// snapshotShape makes the machine the snapshot of its shape: no
	// identity, the shape's devices (shapeQEMU).
	snapshotShape bool
}

// Identity is what makes the machine this node of the test (host name,
// number, VLANs, the other hosts, shares, store, disk growth, SELinux), as
// the guest gets it (guest.KernelParams on the kernel command line).
func (cfg Config) Identity() guest.Identity {
	if cfg.snapshotShape {
		return shapeIdentity(cfg)
	}
	id := guest.Identity{Hostname: cfg.Name, NixStore: cfg.NixStore != "", N: cfg.N, Hosts: cfg.Hosts,
		Internet: cfg.Internet, GrowFS: cfg.DiskSize.IsSet(),
		Virtiofs: cfg.ShareTransport == qemu.TransportVirtiofs, NixRegistration: guestStorePath(cfg.NixStore, cfg.NixRegistration),
		SELinuxEnforcing: cfg.SELinuxEnforcing}
	for _, s := range cfg.Shares {
		id.Shares = append(id.Shares, guest.Share{Tag: s.Tag, Target: s.Target, ReadOnly: s.ReadOnly})
	}
	for _, n := range cfg.NICs {
		id.VLANs = append(id.VLANs, n.VLAN)
	}
	return id
}

// kernelParams is the kernel command line of a machine with identity id:
// the image's parameters, guest.RuntimeParams, the identity, then the
// extra ones.
func kernelParams(cfg Config, man *manifest.Manifest, id guest.Identity) ([]string, error) {
	ident, err := guest.KernelParams(id)
	if err != nil {
		return nil, err
	}
	out := append([]string(nil), man.KernelParams...)
	out = append(out, guest.RuntimeParams...)
	out = append(out, ident...)
	return append(out, cfg.ExtraKernelParams...), nil
}

// guestStorePath maps a file in the host's store directory to its path
// under the guest's /nix/store ("" for "").
func guestStorePath(store, file string) string {
	if file == "" {
		return ""
	}
	rel, err := filepath.Rel(store, file)
	if err != nil || strings.HasPrefix(rel, "..") {
		return file // New's caller checked it; keep it visible in errors
	}
	return path.Join("/nix/store", filepath.ToSlash(rel))
}

// QEMUConfig returns the qemu.Config Start uses.
func (m *Machine) QEMUConfig() (c qemu.Config) {
	man := m.manifest
	imageDir, _ := filepath.Abs(m.cfg.ImageDir)
	c = qemu.Config{
		Name:         m.cfg.Name,
		System:       man.System,
		MemoryMiB:    m.cfg.MemoryMiB,
		CPUs:         m.cfg.CPUs,
		CPU:          m.cfg.CPU,
		Kernel:       manifest.Path(imageDir, man.Kernel),
		Initrd:       manifest.Path(imageDir, man.Initrd),
		KernelParams: m.kernelParams,
		Disk:         m.disk,
		DiskFormat:   "qcow2",
		QMPSocket:    m.sock("qmp"),
		ShellSocket:  m.sock("shell"),
		SerialSocket: m.sock("serial"),
		ShellPort:    m.shellPort(),
		NoReboot:     m.noReboot.Load(),
		ExtraArgs:    m.cfg.ExtraQEMUArgs,
	}
	defer func() {
		if m.cfg.snapshotShape {
			c = shapeQEMU(c, m.kernelParams)
		}
	}()
	if m.cfg.NixStore != "" {
		c.Shares = append(c.Shares, qemu.Share{Tag: qemu.StoreTag, Path: m.cfg.NixStore, ReadOnly: true})
	}
	for _, s := range m.cfg.Shares {
		c.Shares = append(c.Shares, qemu.Share{Tag: s.Tag, Path: s.Source, ReadOnly: s.ReadOnly})
	}
	for i, d := range m.daemons() {
		c.Shares[i].Transport, c.Shares[i].Socket = qemu.TransportVirtiofs, d.Socket
	}
	for _, n := range m.cfg.NICs {
		c.NICs = append(c.NICs, qemu.NIC{
			VLAN: n.VLAN, MAC: guest.MAC(n.VLAN, m.cfg.N),
			Socket: m.NICSocket(n.VLAN), SwitchSocket: n.SwitchSocket,
		})
	}
	return c
}

// shellPort is the virtio serial port of the guest's shell, "" for hvc0.
func (m *Machine) shellPort() string {
	if m.cfg.ShellPort != "" {
		return m.cfg.ShellPort
	}
	if m.manifest.BackdoorTransport() == manifest.BackdoorVirtioPort {
		return qemu.ShellPortName
	}
	return ""
}
