// Package guest holds the files distrotest puts into a guest image, once, as
// the single source of truth: the backdoor unit and script, the per-boot setup
// unit and script, the unit and script that grow the root file system when the
// disk is larger than the image's, the network file for QEMU's user-mode NIC, the units masked
// for speed, and the kernel command-line parameters that give one prepared
// image its per-machine identity.
//
// Family holds what differs between distro families (masks that exist
// there, the SSH unit, SELinux, NetworkManager, virtio_console as a module);
// PlanFor(family) is the plan the disk strategy writes, RuntimePlan the same
// under /run for the initrd strategy, NewPlan the Debian one.
// What the guest can find out itself at boot, the setup script finds out,
// so the assets stay one set of files.
//
// The package is pure: Plan describes the edits, the patcher
// (cmd/internal/imagepatch) applies them, and KernelParams builds the
// distrotest.* parameters the guest's setup script reads at boot.
package guest

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed assets
var assets embed.FS

// Marker is the line the backdoor prints on its shell device when the shell
// is ready (the NixOS test driver's).
const Marker = "Spawning backdoor root shell..."

// ShellPort is the name of the virtio serial port the backdoor script
// listens on (manifest.BackdoorVirtioPort); the guest finds it as the
// /dev/vport* whose /sys/class/virtio-ports/*/name is this.
const ShellPort = "org.distrotest.shell"

// UserMAC is the MAC address of the user-mode (NAT) NIC; the setup script
// gives it QEMU's fixed address 10.0.2.15.
const UserMAC = "52:54:00:12:34:56"

// Dir is a directory to create (with its parents) when missing.
type Dir struct {
	Path string
	Mode fs.FileMode
}

// File is a regular file to create.
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
}

// Symlink is a symbolic link to create; masks are links to /dev/null.
type Symlink struct {
	Path   string
	Target string
}

// Plan is the complete set of edits for a disk-strategy image. Paths are
// absolute paths in the guest; every parent of a file or link is in Dirs.
type Plan struct {
	Dirs     []Dir
	Files    []File
	Symlinks []Symlink
}

const (
	unitDir   = "/etc/systemd/system"
	scriptDir = "/opt/distrotest"
)

func asset(name string) []byte {
	data, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic(fmt.Sprintf("guest: embedded asset %s missing: %v", name, err))
	}
	return data
}

// NewPlan is PlanFor(Debian()).
func NewPlan() Plan { return PlanFor(Debian()) }

// PlanFor returns the edits that install the backdoor and setup units and
// mask the family's units (Family.Masked): serial gettys on the consoles
// the driver uses, remote logins, periodic jobs and first-boot provisioning
// that only cost time or make runs nondeterministic. Networking needs no network manager: the setup
// script gives every NIC a static address (QEMU's user-mode network always
// uses 10.0.2.15), which is deterministic and boots faster. It touches only small directories (/opt, /etc/systemd/...), never
// one that is likely to be hash-indexed.
func PlanFor(f Family) Plan {
	wants := unitDir + "/multi-user.target.wants"
	p := Plan{
		Dirs: []Dir{
			{Path: "/etc", Mode: 0o755},
			{Path: "/etc/systemd", Mode: 0o755},
			{Path: unitDir, Mode: 0o755},
			{Path: wants, Mode: 0o755},
			{Path: "/opt", Mode: 0o755},
			{Path: scriptDir, Mode: 0o755},
		},
		Files: []File{
			{Path: unitDir + "/distrotest-backdoor.service", Mode: 0o644, Data: asset("distrotest-backdoor.service")},
			{Path: unitDir + "/distrotest-setup.service", Mode: 0o644, Data: asset("distrotest-setup.service")},
			{Path: unitDir + "/distrotest-growfs.service", Mode: 0o644, Data: asset("distrotest-growfs.service")},
			{Path: scriptDir + "/backdoor", Mode: 0o755, Data: asset("backdoor")},
			{Path: scriptDir + "/setup", Mode: 0o755, Data: asset("setup")},
			{Path: RestorePath, Mode: 0o755, Data: asset("restore")},
			{Path: scriptDir + "/growfs", Mode: 0o755, Data: asset("growfs")},
		},
		Symlinks: []Symlink{
			{Path: wants + "/distrotest-backdoor.service", Target: unitDir + "/distrotest-backdoor.service"},
			{Path: wants + "/distrotest-setup.service", Target: unitDir + "/distrotest-setup.service"},
			{Path: wants + "/distrotest-growfs.service", Target: unitDir + "/distrotest-growfs.service"},
		},
	}
	for _, u := range f.Masked() {
		p.Symlinks = append(p.Symlinks, Symlink{Path: unitDir + "/" + u, Target: "/dev/null"})
	}
	return p
}

// Hash is a stable digest of the plan, for cache keys of prepared images.
func (p Plan) Hash() string {
	h := sha256.New()
	for _, d := range p.Dirs {
		fmt.Fprintf(h, "d %s %o\n", d.Path, d.Mode)
	}
	for _, f := range p.Files {
		fmt.Fprintf(h, "f %s %o %d\n", f.Path, f.Mode, len(f.Data))
		h.Write(f.Data)
	}
	for _, s := range p.Symlinks {
		fmt.Fprintf(h, "l %s %s\n", s.Path, s.Target)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Share is a host directory exported to the guest (9p or virtiofs, the
// machine's transport), mounted at Target, read-only when ReadOnly.
type Share struct {
	Tag      string
	Target   string
	ReadOnly bool
}

// Host is one node of a test as the others see it.
type Host struct {
	Name  string
	N     int
	VLANs []int
}

// Identity is what makes a booted prepared image a particular machine.
// Hostname and Hosts[].Name are node names; the guest sees the host names
// HostName derives from them.
type Identity struct {
	Hostname string
	NixStore bool
	// Virtiofs mounts the store and the shares over virtiofs instead of 9p.
	Virtiofs bool
	// NixRegistration is the guest path (under /nix/store) of a
	// `nix-store --dump-db` file to load into the guest's Nix database.
	NixRegistration string
	Shares          []Share
	N               int   // the node number (1-based), for VLAN addresses
	VLANs           []int // the VLANs this machine has a NIC on
	Hosts           []Host
	// Internet gives the guest a default route through QEMU's user-mode
	// NIC (otherwise only the test's VLANs are reachable).
	Internet bool
	// GrowFS grows the root partition and file system to the end of the
	// disk at boot (the disk is larger than the image's).
	GrowFS bool
	// SELinuxEnforcing boots SELinux enforcing (enforcing=1, after the
	// image's enforcing=0 from Family.BootParams).
	SELinuxEnforcing bool
}

// maxCmdline is the x86 kernel command line limit (COMMAND_LINE_SIZE).
const maxCmdline = 2048

// KernelParams returns the distrotest.* kernel parameters for id, or an
// error naming the field that cannot be expressed on a kernel command line.
func KernelParams(id Identity) ([]string, error) {
	var out []string
	if id.Hostname != "" {
		h, err := hostName(id.Hostname)
		if err != nil {
			return nil, err
		}
		out = append(out, "distrotest.hostname="+h)
	}
	if id.Virtiofs && (id.NixStore || len(id.Shares) > 0) {
		out = append(out, "distrotest.fs=virtiofs")
	}
	if id.NixStore {
		out = append(out, "distrotest.store=1")
	}
	if id.NixRegistration != "" {
		if !id.NixStore {
			return nil, fmt.Errorf("nix registration %s: needs the Nix store", id.NixRegistration)
		}
		if !strings.HasPrefix(id.NixRegistration, "/nix/store/") || strings.ContainsAny(id.NixRegistration, " \t\n\"'\\") {
			return nil, fmt.Errorf("nix registration %q: must be a path under /nix/store without spaces or quotes", id.NixRegistration)
		}
		out = append(out, "distrotest.register="+path.Clean(id.NixRegistration))
	}
	if id.SELinuxEnforcing {
		out = append(out, "enforcing=1")
	}
	for _, s := range id.Shares {
		if err := CheckShareTag(s.Tag); err != nil {
			return nil, fmt.Errorf("share %w", err)
		}
		if err := CheckMountTarget(s.Target); err != nil {
			return nil, fmt.Errorf("share %s: %w", s.Tag, err)
		}
		p := "distrotest.share=" + s.Tag + ":" + path.Clean(s.Target)
		if s.ReadOnly {
			p += ":ro"
		}
		out = append(out, p)
	}
	if len(id.VLANs) > 0 {
		if err := CheckNodeNumber(id.N); err != nil {
			return nil, err
		}
	}
	for _, v := range sortedInts(id.VLANs) {
		if err := CheckVLAN(v); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("distrotest.net=%d:%d", v, id.N))
	}
	if id.Internet {
		out = append(out, "distrotest.internet=1")
	}
	if id.GrowFS {
		out = append(out, "distrotest.growfs=1")
	}
	if len(id.Hosts) > 0 {
		var entries []string
		for _, h := range id.Hosts {
			name, err := hostName(h.Name)
			if err != nil {
				return nil, err
			}
			if err := CheckNodeNumber(h.N); err != nil {
				return nil, fmt.Errorf("host %s: %w", h.Name, err)
			}
			var vs []string
			for _, v := range sortedInts(h.VLANs) {
				if err := CheckVLAN(v); err != nil {
					return nil, fmt.Errorf("host %s: %w", h.Name, err)
				}
				vs = append(vs, strconv.Itoa(v))
			}
			if len(vs) == 0 {
				continue
			}
			entries = append(entries, fmt.Sprintf("%s:%d:%s", name, h.N, strings.Join(vs, ".")))
		}
		if len(entries) > 0 {
			out = append(out, "distrotest.hosts="+strings.Join(entries, ","))
		}
	}
	if n := len(strings.Join(out, " ")); n > maxCmdline/2 {
		return nil, fmt.Errorf("machine identity needs %d bytes of kernel command line, more than the %d distrotest allows itself (fewer nodes, shares or VLANs)", n, maxCmdline/2)
	}
	return out, nil
}

func sortedInts(in []int) []int {
	out := append([]int(nil), in...)
	sort.Ints(out)
	return out
}
