package guest

import (
	"fmt"
	"slices"
	"strings"
)

// Family is what the guest assets depend on in a distro family. The
// assets themselves are the same everywhere: the setup script finds out at
// boot what it must (NetworkManager present, virtio_console a module) so
// that one script serves every strategy; what cannot be found out in the
// guest before it matters is here.
type Family struct {
	Name string // "debian", "ubuntu", "el", "fedora"
	// NetworkManager: the stock images configure the network with
	// NetworkManager and have no systemd-networkd. The setup script then
	// tells NetworkManager to leave the NICs distrotest configures alone.
	NetworkManager bool
	// SSHUnit is the OpenSSH server unit: ssh.service on Debian and
	// Ubuntu, sshd.service on Fedora and EL.
	SSHUnit string
	// Masked are the units masked at boot, only ones that exist in the
	// family's cloud images (or in some release of it, see the comments in
	// family.go).
	Masked []string
	// SELinux: the family boots SELinux enforcing. distrotest boots it
	// permissive (enforcing=0 on the kernel command line, as nix-vm-test
	// does, without editing the image) unless the test asks for enforcing.
	SELinux bool
	// VirtioConsoleModule: virtio_console is a module (RHEL kernels), so
	// hvc0 and the virtio serial ports appear only once it is loaded; the
	// setup script loads it.
	VirtioConsoleModule bool
}

// consoleMasks are the serial gettys on the consoles the driver uses; every
// systemd distro has the serial-getty@ template.
var consoleMasks = []string{"serial-getty@ttyS0.service", "serial-getty@hvc0.service"}

// cloudInitMasks are cloud-init's units (all cloud images ship cloud-init);
// cloud-init-main and cloud-init-network exist from cloud-init 24.3 on
// (Debian 13, Ubuntu 24.10+, Fedora 41+).
var cloudInitMasks = []string{
	"cloud-init-local.service", "cloud-init.service", "cloud-config.service", "cloud-final.service",
}

var cloudInitNewMasks = []string{"cloud-init-main.service", "cloud-init-network.service"}

// debianMasks are the Debian-family units besides consoles and cloud-init.
var debianMasks = []string{
	// sshd.service is the Alias= of ssh.service that Debian's openssh
	// enables as a link in /etc: it exists there too.
	"ssh.service", "ssh.socket", "sshd.service",
	"apt-daily.timer", "apt-daily-upgrade.timer", "apt-daily.service", "apt-daily-upgrade.service",
	"e2scrub_all.timer", "e2scrub_reap.service",
	// networkd would take the NICs the setup script configures statically.
	"systemd-networkd.service", "systemd-networkd.socket", "systemd-networkd-varlink.socket",
	"systemd-networkd-wait-online.service",
	"man-db.timer", "fstrim.timer",
}

// redHatMasks are the Fedora/EL units besides consoles and cloud-init.
var redHatMasks = []string{
	"sshd.service", "sshd.socket",
	// dnf-makecache on dnf 4 (EL, Fedora ≤ 40), dnf5-makecache on Fedora 41+.
	"dnf-makecache.timer", "dnf-makecache.service",
	"NetworkManager-wait-online.service",
	"fstrim.timer",
}

var families = []Family{
	{
		Name: "debian", SSHUnit: "ssh.service",
		Masked: concat(consoleMasks, debianMasks, cloudInitMasks, cloudInitNewMasks),
	},
	{
		Name: "ubuntu", SSHUnit: "ssh.service",
		Masked: concat(consoleMasks, debianMasks, cloudInitMasks, cloudInitNewMasks,
			[]string{"snapd.service", "snapd.socket", "snapd.seeded.service"}),
	},
	{
		Name: "fedora", SSHUnit: "sshd.service", NetworkManager: true, SELinux: true,
		Masked: concat(consoleMasks, redHatMasks, []string{"dnf5-makecache.timer", "dnf5-makecache.service"},
			cloudInitMasks, cloudInitNewMasks),
	},
	{
		Name: "el", SSHUnit: "sshd.service", NetworkManager: true, SELinux: true, VirtioConsoleModule: true,
		Masked: concat(consoleMasks, redHatMasks, cloudInitMasks),
	},
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Families lists the known families, by name.
func Families() []Family {
	out := make([]Family, len(families))
	for i, f := range families {
		f.Masked = slices.Clone(f.Masked)
		out[i] = f
	}
	slices.SortFunc(out, func(a, b Family) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// FamilyFor returns the family called name ("debian", "ubuntu", "fedora",
// "el"); the error lists the known ones.
func FamilyFor(name string) (Family, error) {
	var names []string
	for _, f := range Families() {
		if f.Name == name {
			return f, nil
		}
		names = append(names, f.Name)
	}
	return Family{}, fmt.Errorf("guest family %q is not known (known: %s)", name, strings.Join(names, ", "))
}

// Debian is the family of Debian's images, the default.
func Debian() Family {
	f, err := FamilyFor("debian")
	if err != nil {
		panic(err) // the table has it
	}
	return f
}

// BootParams are the family's kernel parameters for the manifest: SELinux
// permissive on SELinux families. A machine that wants enforcing adds
// Identity.SELinuxEnforcing, whose enforcing=1 comes later on the command
// line and wins (the kernel and libselinux both take the last enforcing=).
func (f Family) BootParams() []string {
	if f.SELinux {
		return []string{"enforcing=0"}
	}
	return nil
}
