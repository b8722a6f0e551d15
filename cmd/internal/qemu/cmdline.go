package qemu

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// Accelerators.
const (
	AccelKVM = "kvm"
	AccelTCG = "tcg"
)

// Device and netdev identifiers the command line assigns, for QMP and HMP
// commands that name them.
const (
	// UserNetdev is the id of the user-mode (NAT) netdev, the one HMP
	// hostfwd_add takes.
	UserNetdev = "user0"
	// UserNIC is the id of the NIC on the user-mode network.
	UserNIC = "nic-user"
	// StoreTag is the mount tag (9p or virtiofs) of the Nix store share
	// (guest's: no share may take it).
	StoreTag = guest.StoreTag
	// MemoryBackend is the id of the shared memory backend that guests
	// with virtiofs shares get (vhost-user needs guest RAM the daemon can
	// map).
	MemoryBackend = "mem"
	// ShellPortName is the name of the virtio serial port for the guest's
	// shell when Config.ShellPort is used: the one our images' backdoor
	// listens on.
	ShellPortName = guest.ShellPort
)

// VLANNIC returns the device id of the NIC on vlan, the name QMP set_link
// takes.
func VLANNIC(vlan int) string { return "nic-vlan" + strconv.Itoa(vlan) }

// VLANNetdev returns the netdev id of the NIC on vlan.
func VLANNetdev(vlan int) string { return "vlan" + strconv.Itoa(vlan) }

// Share transports: how a host directory reaches the guest.
const (
	// Transport9P is QEMU's built-in 9p server (-virtfs).
	Transport9P = manifest.ShareTransport9P
	// TransportVirtiofs is a vhost-user-fs device served by a virtiofsd
	// process that the caller starts before QEMU.
	TransportVirtiofs = manifest.ShareTransportVirtiofs
)

// Share is a host directory exported to the guest over 9p or virtiofs.
type Share struct {
	Tag      string // mount tag
	Path     string // host directory (9p; virtiofsd serves it otherwise)
	ReadOnly bool   // 9p; virtiofsd enforces it itself otherwise
	// Transport is Transport9P (also when empty) or TransportVirtiofs.
	Transport string
	// Socket is virtiofsd's vhost-user socket (virtiofs only).
	Socket string
}

// VirtiofsChardev returns the id of the chardev joining the virtiofs share
// with tag to its virtiofsd.
func VirtiofsChardev(tag string) string { return "vfs-" + tag }

// HotplugPort returns the id of the i-th empty PCIe root port of
// Config.HotplugPorts, the bus a hot-plugged device goes on.
func HotplugPort(i int) string { return "hp" + strconv.Itoa(i) }

// hasVirtiofs reports whether any share needs virtiofs.
func hasVirtiofs(shares []Share) bool {
	for _, s := range shares {
		if s.Transport == TransportVirtiofs {
			return true
		}
	}
	return false
}

// NIC is a network card on a VLAN: a dgram netdev between a unix socket of
// its own (Socket, which QEMU binds) and the VLAN switch (SwitchSocket).
type NIC struct {
	VLAN         int
	MAC          string
	Socket       string
	SwitchSocket string
}

// Config is everything that makes the command line of one machine. Paths
// should be absolute: QEMU runs in a directory of its own choosing.
type Config struct {
	// Name names the guest (-name); it shows in ps and QEMU's messages.
	Name string
	// System is the Nix system of the guest, "x86_64-linux" (the default)
	// or "aarch64-linux".
	System string
	// MemoryMiB and CPUs size the guest; zero means 1024 and 1.
	MemoryMiB int
	CPUs      int
	// CPU is the -cpu model; empty means "host" under KVM and QEMU's
	// default model under TCG ("max" measured ~1.1x slower; images that
	// need x86-64-v2 or newer ask for it here).
	CPU string

	// Kernel and Initrd boot the guest directly (-kernel, -initrd) with the
	// command line KernelParams followed by ExtraKernelParams. Without a
	// kernel the guest boots from its disk through the firmware.
	Kernel            string
	Initrd            string
	KernelParams      []string
	ExtraKernelParams []string

	// Disk is the machine's disk (its private overlay), DiskFormat its
	// format ("qcow2" when empty). It is opened with cache=unsafe: the
	// disk lives as long as the run and flushes are not worth their cost.
	Disk       string
	DiskFormat string

	// QMPSocket is the unix socket QEMU listens on for QMP.
	QMPSocket string
	// ShellSocket is a unix socket the caller listens on; QEMU connects to
	// it and joins it to the guest's virtconsole (/dev/hvc0).
	ShellSocket string
	// SerialSocket is a unix socket the caller listens on; QEMU connects to
	// it and joins it to the guest's first serial port (ttyS0).
	SerialSocket string
	// ShellPort, when not empty, joins ShellSocket to a virtio serial port
	// of that name (in the guest /dev/virtio-ports/NAME, or the vport*
	// device whose /sys/class/virtio-ports/*/name is NAME) instead of a
	// virtconsole (/dev/hvc0). A port has flow control; a virtconsole
	// drops what the guest writes while the host's socket is full (QEMU's
	// virtio-console.c: "silently dropping console data on EAGAIN").
	ShellPort string

	// Shares are exported over 9p or virtiofs; the Nix store is a share
	// with StoreTag. A virtiofs share puts the guest's RAM in a shared
	// memfd backend of the same size (-object memory-backend-memfd).
	Shares []Share
	// NICs are the machine's VLAN network cards, after the user-mode NIC
	// (MAC guest.UserMAC) that every machine has.
	NICs []NIC

	// NoReboot makes a guest reboot end QEMU (-no-reboot), as nixpkgs'
	// driver starts machines unless start(allow_reboot=True).
	NoReboot bool

	// The snapshot shape (package machine's boot-once-restore-many): a
	// machine saved to a file and restored from it needs its devices
	// fixed at boot, and what cannot migrate (vhost-user-fs) added after
	// the restore.
	//
	// SharedMemory puts guest RAM in a shared memfd backend even without
	// virtiofs shares, so that vhost-user-fs devices can be hot-plugged.
	SharedMemory bool
	// MemoryFile, with SharedMemory, is the file guest RAM is mapped
	// from (memory-backend-file share=on), e.g. /proc/self/fd/N for a
	// memfd of the runner's that QEMU inherits, instead of a memfd of
	// QEMU's own, so that the runner can save and restore it apart from
	// QEMU's migration stream (with the x-ignore-shared capability, which
	// QEMU 7.2 has only in QMP: IgnoreSharedCapability).
	MemoryFile string
	// HotplugPorts adds that many empty PCIe root ports (ids HotplugPort(i))
	// for devices added later with device_add.
	HotplugPorts int
	// VMGenID adds a VM generation ID device with a GUID of its own per
	// QEMU process (guid=auto): a guest kernel with its driver (Linux 5.18
	// and later) reseeds its random number generator when a restored
	// machine sees a new one.
	VMGenID bool
	// Incoming starts QEMU waiting for a migration stream from this URI
	// (-incoming, e.g. "exec:cat FILE") instead of booting.
	Incoming string

	// ExtraArgs are appended verbatim.
	ExtraArgs []string
}

// Guest sizes when Config leaves them at zero; the driver's defaults for
// driver.json (and the Nix library's, tied to these by the golden
// driver.json test) are the same values.
const (
	DefaultMemoryMiB = 1024
	DefaultCPUs      = 2
)

// EnvOpts names the environment variable whose words are appended to every
// machine's command line, as in nixpkgs' and nix-vm-test's VM scripts; the
// CLI reads it (Config.ExtraArgs).
const EnvOpts = "QEMU_OPTS"

// opts renders a QEMU option list: key=value pairs joined by commas, with
// commas in values doubled as QEMU's option parser wants.
func opts(first string, kv ...string) string {
	parts := []string{first}
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+strings.ReplaceAll(kv[i+1], ",", ",,"))
	}
	return strings.Join(parts, ",")
}

// IgnoreSharedCapability is the argument of QMP's migrate-set-capabilities
// that leaves shared RAM (MemoryFile) out of a migration stream, on the
// sending and the receiving side.
var IgnoreSharedCapability = map[string]any{"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": true}}}

// Memory is the guest's RAM in MiB: MemoryMiB, or DefaultMemoryMiB.
func (cfg Config) Memory() int {
	if cfg.MemoryMiB <= 0 {
		return DefaultMemoryMiB
	}
	return cfg.MemoryMiB
}

// Cmdline returns QEMU's arguments (without the binary) for cfg on host.
// It is pure: it neither checks that files exist nor touches the host.
func Cmdline(cfg Config, host Host) []string {
	arm := cfg.System == "aarch64-linux"
	mem := cfg.Memory()
	cpus := cfg.CPUs
	if cpus <= 0 {
		cpus = DefaultCPUs
	}
	accel := host.Accel
	if accel == "" {
		accel = AccelTCG
	}

	var a []string
	add := func(args ...string) { a = append(a, args...) }

	if cfg.Name != "" {
		add("-name", "guest="+strings.ReplaceAll(cfg.Name, ",", ",,"))
	}
	add("-nodefaults", "-no-user-config")
	if arm {
		add("-machine", "virt")
	} else {
		add("-machine", "q35")
	}
	add("-accel", accel)
	switch {
	case cfg.CPU != "":
		add("-cpu", cfg.CPU)
	case accel == AccelKVM:
		add("-cpu", "host")
	case arm:
		add("-cpu", "max") // virt has no usable default CPU model
	}
	add("-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus))
	switch {
	case cfg.SharedMemory && cfg.MemoryFile != "":
		add("-object", opts("memory-backend-file", "id", MemoryBackend, "size", strconv.Itoa(mem)+"M", "share", "on", "mem-path", cfg.MemoryFile))
		add("-machine", "memory-backend="+MemoryBackend)
	case hasVirtiofs(cfg.Shares) || cfg.SharedMemory:
		add("-object", opts("memory-backend-memfd", "id", MemoryBackend, "size", strconv.Itoa(mem)+"M", "share", "on"))
		add("-machine", "memory-backend="+MemoryBackend)
	}
	add("-rtc", "base=utc")
	add("-display", "none")
	if arm {
		add("-device", "virtio-gpu-pci")
	} else {
		add("-vga", "std") // needed by screendump
	}

	if cfg.Kernel != "" {
		add("-kernel", cfg.Kernel)
		if cfg.Initrd != "" {
			add("-initrd", cfg.Initrd)
		}
		params := append(append([]string(nil), cfg.KernelParams...), cfg.ExtraKernelParams...)
		if len(params) > 0 {
			add("-append", strings.Join(params, " "))
		}
	}

	if cfg.Disk != "" {
		format := cfg.DiskFormat
		if format == "" {
			format = "qcow2"
		}
		add("-drive", opts("if=none,id=disk0", "file", cfg.Disk, "format", format, "cache", "unsafe", "discard", "unmap"))
		add("-device", "virtio-blk-pci,drive=disk0,bootindex=1")
	}

	if cfg.QMPSocket != "" {
		add("-chardev", opts("socket", "id", "qmp", "path", cfg.QMPSocket, "server", "on", "wait", "off"))
		add("-mon", "chardev=qmp,mode=control")
	}
	if cfg.SerialSocket != "" {
		add("-chardev", opts("socket", "id", "serial0", "path", cfg.SerialSocket))
		add("-serial", "chardev:serial0")
	}
	if cfg.ShellSocket != "" {
		add("-chardev", opts("socket", "id", "shell", "path", cfg.ShellSocket))
		add("-device", "virtio-serial-pci,id=virtio-serial0")
		if cfg.ShellPort != "" {
			add("-device", opts("virtserialport,chardev=shell,id=shell0", "name", cfg.ShellPort))
		} else {
			add("-device", "virtconsole,chardev=shell,id=shell0")
		}
	}
	add("-device", "virtio-rng-pci")
	// A guest kernel panic is reported by the pvpanic device (Linux's
	// pvpanic driver, loaded for the ACPI id QEMU0001 on x86_64 or the
	// PCI device on aarch64) as the QMP event GUEST_PANICKED; QEMU then
	// pauses the guest rather than powering it off, so that the runner
	// sees the event (qmp.Client.GuestPanicked) before QEMU ends. A guest
	// without the driver falls back on panic=-1 (guest.RuntimeParams).
	if arm {
		add("-device", "pvpanic-pci")
	} else {
		add("-device", "pvpanic")
	}
	add("-action", "panic=pause")
	if cfg.VMGenID {
		add("-device", "vmgenid,id=vmgenid0,guid=auto")
	}
	for i := range cfg.HotplugPorts {
		// No I/O window: hot-plugged virtio devices need none, and sixteen
		// 4 KiB windows would exhaust the I/O space.
		add("-device", fmt.Sprintf("pcie-root-port,id=%s,chassis=%d,io-reserve=0", HotplugPort(i), 100+i))
	}

	for _, s := range cfg.Shares {
		if s.Transport == TransportVirtiofs {
			add("-chardev", opts("socket", "id", VirtiofsChardev(s.Tag), "path", s.Socket))
			add("-device", opts("vhost-user-fs-pci", "chardev", VirtiofsChardev(s.Tag), "tag", s.Tag, "queue-size", "1024"))
			continue
		}
		kv := []string{"path", s.Path, "mount_tag", s.Tag, "security_model", "none"}
		if s.ReadOnly {
			kv = append(kv, "readonly", "on")
		}
		add("-virtfs", opts("local", kv...))
	}

	add("-netdev", "user,id="+UserNetdev)
	add("-device", opts("virtio-net-pci", "netdev", UserNetdev, "mac", guest.UserMAC, "id", UserNIC))
	for _, n := range cfg.NICs {
		add("-netdev", opts("dgram", "id", VLANNetdev(n.VLAN),
			"local.type", "unix", "local.path", n.Socket,
			"remote.type", "unix", "remote.path", n.SwitchSocket))
		add("-device", opts("virtio-net-pci", "netdev", VLANNetdev(n.VLAN), "mac", n.MAC, "id", VLANNIC(n.VLAN)))
	}

	if cfg.NoReboot {
		add("-no-reboot")
	}
	if cfg.Incoming != "" {
		add("-incoming", cfg.Incoming)
	}
	add(cfg.ExtraArgs...)
	return a
}

// Quote renders args as one shell-safe line, for logs and for people who
// want to rerun a machine by hand.
func Quote(args []string) string {
	out := make([]string, len(args))
	for i, s := range args {
		if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=/.,:@+%") == "" {
			out[i] = s
			continue
		}
		out[i] = "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// String describes the host in one line.
func (h Host) String() string {
	s := fmt.Sprintf("%s %s, accel %s", h.Binary, h.Version, h.Accel)
	if h.KVMReason != "" {
		s += " (" + h.KVMReason + ")"
	}
	return s
}
