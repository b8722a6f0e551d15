package distro

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Strategy is how the test backdoor gets into an image.
type Strategy string

const (
	// StrategyDisk writes the guest assets into the ext4 root filesystem
	// (go-diskfs).
	StrategyDisk Strategy = "disk"
	// StrategyInitrd leaves the disk alone and appends the guest assets to
	// the distro's initrd, which hands them to the booted system in /run
	// (package initrd): any root filesystem.
	StrategyInitrd Strategy = "initrd"
)

// Strategies lists the valid strategies. Others (systemd credentials, a
// cloud-init seed) are not implemented and so not accepted.
var Strategies = []Strategy{StrategyDisk, StrategyInitrd}

// Filesystem is the type of a filesystem in an image.
type Filesystem string

// Root filesystems found in the distros' cloud images.
const (
	Ext4  Filesystem = "ext4"
	XFS   Filesystem = "xfs"
	Btrfs Filesystem = "btrfs"
)

// Filesystems lists the valid root filesystems.
var Filesystems = []Filesystem{Ext4, XFS, Btrfs}

// BootFilesystems lists the filesystems the kernel and initrd can be read
// from. package diskimage also reads btrfs, but only os-release and small
// files were verified there, not a boot partition: it is not offered.
var BootFilesystems = []Filesystem{Ext4, XFS}

// RootDevice is how the kernel command line names the root filesystem.
type RootDevice string

const (
	RootByDevice   RootDevice = "device"   // root=/dev/vdaN (no initrd needed)
	RootByUUID     RootDevice = "uuid"     // root=UUID=<filesystem UUID>
	RootByLabel    RootDevice = "label"    // root=LABEL=<filesystem label>
	RootByPartUUID RootDevice = "partuuid" // root=PARTUUID=<GPT partition GUID>
)

// RootDevices lists the valid root device kinds.
var RootDevices = []RootDevice{RootByDevice, RootByUUID, RootByLabel, RootByPartUUID}

// InitrdGenerator is the tool that builds the distro's initrd.
type InitrdGenerator string

const (
	Dracut         InitrdGenerator = "dracut"          // systemd in the initrd
	InitramfsTools InitrdGenerator = "initramfs-tools" // busybox /init and scripts
)

// InitrdGenerators lists the valid initrd generators.
var InitrdGenerators = []InitrdGenerator{Dracut, InitramfsTools}

// Network is the stack that configures the network in the stock image.
type Network string

const (
	// NetworkNetworkd is plain systemd-networkd.
	NetworkNetworkd Network = "networkd"
	// NetworkNetplan is netplan rendering systemd-networkd configuration.
	NetworkNetplan Network = "netplan"
	// NetworkNetworkManager is NetworkManager.
	NetworkNetworkManager Network = "networkmanager"
)

// Networks lists the valid network stacks.
var Networks = []Network{NetworkNetworkd, NetworkNetplan, NetworkNetworkManager}

// ShareTransport is how the guest kernel can mount the Nix store and shared
// directories: Share9P where its 9p works (virtiofs does too, and the
// runner's default picks between them), ShareVirtiofs where it must be
// virtiofs (no 9p, or a buggy one); only the latter reaches the manifest.
type ShareTransport string

const (
	Share9P       ShareTransport = "9p"
	ShareVirtiofs ShareTransport = "virtiofs" // EL kernels build no 9p
)

// ShareTransports lists the valid share transports.
var ShareTransports = []ShareTransport{Share9P, ShareVirtiofs}

// Systems lists the Nix systems images can be given for.
var Systems = []string{"x86_64-linux", "aarch64-linux"}

// Distro is one distribution family, as described by one file.
type Distro struct {
	Name     string     // "debian"
	File     string     // the file it was read from, as given to the loader
	Releases []*Release // sorted by version, oldest first
}

// Release looks up a release by version.
func (d *Distro) Release(version string) (*Release, bool) {
	for _, r := range d.Releases {
		if r.Version == version {
			return r, true
		}
	}
	return nil, false
}

// Release is one release of a distro, with distro-level defaults applied.
type Release struct {
	Distro   string // "debian"
	Version  string // "13", "24.04", "9.6"
	Codename string // "trixie"; may be empty

	Strategy Strategy
	Rootfs   Filesystem
	// Kernel and Initrd are path globs relative to the guest's root
	// directory ("boot/vmlinuz-*"), matching the kernel and initrd to use
	// for direct kernel boot; on a separate /boot partition they are
	// looked up without "boot/".
	Kernel, Initrd string
	// BootFilesystem is the filesystem holding the kernel and initrd
	// (ext4 or xfs).
	BootFilesystem Filesystem
	// RootPartition is the number of the partition holding the root
	// filesystem (1 = first); 0 (the default) lets the patcher find it by
	// type and filesystem, as it should be.
	RootPartition int
	// RootDevice is how root= names the root; RootSubvolume the btrfs
	// subvolume mounted as / (rootflags=subvol=…), "" for none.
	RootDevice    RootDevice
	RootSubvolume string
	// InitrdGenerator built the distro's initrd.
	InitrdGenerator InitrdGenerator
	Network         Network
	// GuestFamily selects the guest assets' per-family content (package
	// guest: the units to mask).
	GuestFamily string
	// SSHUnit is the OpenSSH server unit ("ssh.service", "sshd.service").
	SSHUnit string
	// SELinux: the image enforces SELinux; distrotest boots it permissive
	// unless a test asks for enforcing.
	SELinux bool
	// VirtioConsoleModule: virtio_console is a module (RHEL kernels), so
	// hvc0 appears late.
	VirtioConsoleModule bool
	// ShareTransport is how the Nix store and shares reach the guest.
	ShareTransport ShareTransport
	// NotOffered, when set, says why lib does not offer the release
	// although the patcher could prepare it.
	NotOffered string

	// Build says how to build the image from packages; nil when it cannot.
	Build *Build
	// Images are the upstream images, sorted by system.
	Images []*Image
}

// Ref returns "distro/version", the name users pass on the command line.
func (r *Release) Ref() string { return r.Distro + "/" + r.Version }

// Supported reports whether the image patcher can prepare this release:
// the disk strategy needs an ext4 root; the initrd strategy takes any root
// filesystem, with the kernel on ext4 or xfs (BootFilesystems).
func (r *Release) Supported() bool {
	switch r.Strategy {
	case StrategyDisk:
		return r.Rootfs == Ext4
	case StrategyInitrd:
		return slices.Contains(BootFilesystems, r.BootFilesystem) && slices.Contains(InitrdGenerators, r.InitrdGenerator)
	}
	return false
}

// Offered reports whether lib offers the release: supported and not
// withdrawn with not_offered.
func (r *Release) Offered() bool { return r.Supported() && r.NotOffered == "" }

// Systems returns the Nix systems the release has images for, sorted.
func (r *Release) Systems() []string {
	systems := make([]string, len(r.Images))
	for i, img := range r.Images {
		systems[i] = img.System
	}
	return systems
}

// Image returns the upstream image for a Nix system.
func (r *Release) Image(system string) (*Image, bool) {
	for _, img := range r.Images {
		if img.System == system {
			return img, true
		}
	}
	return nil, false
}

// Image is an upstream cloud image for one Nix system.
type Image struct {
	System string // "x86_64-linux"
	URL    string // the image file, or
	// OCI is a KubeVirt containerDisk reference pinned by digest
	// (registry/repository@sha256:…); Hash is then the hash of its
	// disk/disk.img, which a Nix fixed-output derivation pins.
	OCI  string
	Hash Hash
}

// Build describes how to build a release's image from packages.
type Build struct {
	Suite string // the distro's suite name, as mmdebstrap wants it: "trixie"
}

// Catalog is every distro read from a set of files.
type Catalog struct {
	Distros []*Distro // sorted by name
}

// Distro looks up a distro by name.
func (c *Catalog) Distro(name string) (*Distro, bool) {
	for _, d := range c.Distros {
		if d.Name == name {
			return d, true
		}
	}
	return nil, false
}

// Releases returns every release of every distro, by distro then version.
func (c *Catalog) Releases() []*Release {
	var all []*Release
	for _, d := range c.Distros {
		all = append(all, d.Releases...)
	}
	return all
}

// Lookup finds a release by reference, "debian/13".
func (c *Catalog) Lookup(ref string) (*Release, error) {
	name, version, ok := strings.Cut(ref, "/")
	if !ok {
		return nil, fmt.Errorf("distro reference %q: want distro/release, like debian/13", ref)
	}
	d, ok := c.Distro(name)
	if !ok {
		names := make([]string, len(c.Distros))
		for i, d := range c.Distros {
			names[i] = d.Name
		}
		return nil, fmt.Errorf("distro reference %q: no distro %q (have %s)", ref, name, strings.Join(names, ", "))
	}
	r, ok := d.Release(version)
	if !ok {
		versions := make([]string, len(d.Releases))
		for i, r := range d.Releases {
			versions[i] = r.Version
		}
		return nil, fmt.Errorf("distro reference %q: %s has no release %q (have %s)", ref, name, version, strings.Join(versions, ", "))
	}
	return r, nil
}

// CompareVersions orders release versions numerically component by
// component ("9.6" < "10.1", "24.04" < "24.10"), falling back to string
// order for components that are not numbers.
func CompareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		an, aerr := strconv.Atoi(as[i])
		bn, berr := strconv.Atoi(bs[i])
		var c int
		if aerr == nil && berr == nil {
			c = an - bn
		} else {
			c = strings.Compare(as[i], bs[i])
		}
		if c != 0 {
			if c < 0 {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(as) < len(bs):
		return -1
	case len(as) > len(bs):
		return 1
	}
	return 0
}
