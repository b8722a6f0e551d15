package guest

import (
	"fmt"
	"slices"
	"strings"
)

// Family is what the guest assets depend on in a distro family. The
// assets themselves are the same everywhere: the setup script finds out at
// boot what it can (NetworkManager present, virtio_console a module) so
// that one script serves every strategy.
//
// The facts (SSHUnit, NetworkManager, SELinux, VirtioConsoleModule) come
// from the distro's HCL description through the patcher's spec; Name
// selects the package-manager units to mask (FamilyFor). Debian() holds
// the facts of the Debian images that NewPlan serves.
type Family struct {
	Name string // "debian", "ubuntu", "el", "fedora"
	// SSHUnit is the OpenSSH server unit: ssh.service on Debian and
	// Ubuntu, sshd.service on Fedora and EL. It and its .socket are masked.
	SSHUnit string
	// NetworkManager: the images configure the network with
	// NetworkManager and have no systemd-networkd (its wait-online unit is
	// masked; the setup script tells NetworkManager to leave the NICs it
	// configures alone). Otherwise systemd-networkd's units are masked.
	NetworkManager bool
	// SELinux: the family boots SELinux enforcing. distrotest boots it
	// permissive (enforcing=0 on the kernel command line, as nix-vm-test
	// does, without editing the image) unless the test asks for enforcing.
	SELinux bool
	// VirtioConsoleModule: virtio_console is a module (RHEL kernels), so
	// hvc0 and the virtio serial ports appear only once it is loaded; the
	// setup script loads it, and dracut initrds can with
	// rd.driver.pre=virtio_console.
	VirtioConsoleModule bool
}

// consoleMasks are the serial gettys on the consoles the driver uses; every
// systemd distro has the serial-getty@ template.
var consoleMasks = []string{"serial-getty@ttyS0.service", "serial-getty@hvc0.service"}

// cloudInitMasks are cloud-init's units (all the cloud images ship
// cloud-init); cloud-init-main and cloud-init-network exist from
// cloud-init 24.3 on (Debian 13, Ubuntu 24.10+, Fedora 41+, EL10), and
// masking a unit that a release lacks is harmless.
var cloudInitMasks = []string{
	"cloud-init-local.service", "cloud-init.service", "cloud-config.service", "cloud-final.service",
	"cloud-init-main.service", "cloud-init-network.service",
}

var networkdMasks = []string{
	"systemd-networkd.service", "systemd-networkd.socket", "systemd-networkd-varlink.socket",
	"systemd-networkd-wait-online.service",
}

// familyMasks are the units of each family's package manager and base
// system that cost boot time or make runs nondeterministic.
var familyMasks = map[string][]string{
	"debian": {
		// Debian's openssh enables the sshd.service Alias= as a link in /etc.
		"sshd.service",
		"apt-daily.timer", "apt-daily-upgrade.timer", "apt-daily.service", "apt-daily-upgrade.service",
		"e2scrub_all.timer", "e2scrub_reap.service", "man-db.timer", "fstrim.timer",
	},
	"ubuntu": {
		"sshd.service",
		"apt-daily.timer", "apt-daily-upgrade.timer", "apt-daily.service", "apt-daily-upgrade.service",
		"e2scrub_all.timer", "e2scrub_reap.service", "man-db.timer", "fstrim.timer",
		"snapd.service", "snapd.socket", "snapd.seeded.service",
	},
	// dnf 4 (EL, Fedora ≤ 40) has dnf-makecache, dnf5 (Fedora 41+) dnf5-makecache.
	"fedora": {"dnf-makecache.timer", "dnf-makecache.service", "dnf5-makecache.timer", "dnf5-makecache.service", "fstrim.timer"},
	"el":     {"dnf-makecache.timer", "dnf-makecache.service", "fstrim.timer"},
}

// FamilyNames lists the known families, sorted.
func FamilyNames() []string {
	names := make([]string, 0, len(familyMasks))
	for n := range familyMasks {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// FamilyFor returns the family called name with its facts unset (the
// caller fills them from the distro description); the error lists the
// known names.
func FamilyFor(name string) (Family, error) {
	if _, ok := familyMasks[name]; !ok {
		return Family{}, fmt.Errorf("guest family %q is not known (known: %s)", name, strings.Join(FamilyNames(), ", "))
	}
	return Family{Name: name}, nil
}

// Debian is the family of the Debian images (distros/debian.hcl).
func Debian() Family {
	return Family{Name: "debian", SSHUnit: "ssh.service"}
}

// Masked lists the units f masks, without duplicates, in a stable order.
func (f Family) Masked() []string {
	out := slices.Clone(consoleMasks)
	if f.SSHUnit != "" {
		out = append(out, f.SSHUnit, strings.TrimSuffix(f.SSHUnit, ".service")+".socket")
	}
	out = append(out, familyMasks[f.Name]...)
	if f.NetworkManager {
		out = append(out, "NetworkManager-wait-online.service")
	} else {
		out = append(out, networkdMasks...)
	}
	out = append(out, cloudInitMasks...)
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(u string) bool {
		dup := seen[u]
		seen[u] = true
		return dup
	})
}

// RuntimeParams are kernel parameters for every boot of every image, added
// by the runner: systemd's default start-job timeout (90 s) is too short
// under TCG on a loaded host (measured here: the ext4 /boot mount of the
// Fedora shape, which loads the ext4 module first, failed after 90 s at a
// load average of 20, and the boot ended in emergency mode). Ten minutes;
// the test's own timeouts bound the rest. The wait for a device (a
// partition's /dev/disk/by-uuid link, systemd's DefaultDeviceTimeoutSec,
// also 90 s) is a separate limit and gets the same ten minutes: the
// Fedora shape's peer, starved at a load average over 10, timed out
// waiting for its /boot partition and failed local-fs.target (trixie's
// systemd 257 reads the parameter; bookworm's 252 has no such parameter
// and ignores it). no_timer_check (as Fedora's and
// EL's cloud images boot): a starved vCPU made the kernel's IO-APIC timer
// check fail ("IO-APIC + timer doesn't work!", a panic) at load 36.
// panic=-1: a guest kernel that panics restarts at once instead of hanging
// (under -no-reboot QEMU then exits), so a panic while booting (seen once
// under TCG at load ~10, in get_random_u32) is noticed and the machine is
// booted again (machine.Machine.shell) instead of waiting for a shell that
// never comes.
var RuntimeParams = []string{"systemd.default_timeout_start_sec=600", "systemd.default_device_timeout_sec=600", "no_timer_check", "panic=-1"}

// BootParams are the family's kernel parameters for the manifest: SELinux
// permissive on SELinux families. A machine that wants enforcing sets
// Identity.SELinuxEnforcing, whose enforcing=1 comes later on the command
// line and wins (the kernel and libselinux both take the last enforcing=).
func (f Family) BootParams() []string {
	if f.SELinux {
		return []string{"enforcing=0"}
	}
	return nil
}
