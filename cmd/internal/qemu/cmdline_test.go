package qemu

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCmdline(t *testing.T) {
	tcg := Host{Binary: "/usr/bin/qemu-system-x86_64", Accel: AccelTCG}
	kvm := Host{Binary: "/usr/bin/qemu-system-x86_64", Accel: AccelKVM}
	common := func(accel string, cpu ...string) []string {
		a := []string{"-nodefaults", "-no-user-config", "-machine", "q35", "-accel", accel}
		a = append(a, cpu...)
		return a
	}
	userNet := []string{
		"-netdev", "user,id=user0",
		"-device", "virtio-net-pci,netdev=user0,mac=52:54:00:12:34:56,id=nic-user",
	}
	machine := Config{
		Name: "server", MemoryMiB: 2048, CPUs: 2,
		Kernel: "/img/vmlinuz", Initrd: "/img/initrd",
		KernelParams:      []string{"root=/dev/vda1", "console=ttyS0"},
		ExtraKernelParams: []string{"distrotest.hostname=server"},
		Disk:              "/state/disk.qcow2",
		QMPSocket:         "/s/server.qmp", ShellSocket: "/s/server.shell", SerialSocket: "/s/server.serial",
	}
	machineArgs := []string{
		"-m", "2048", "-smp", "2", "-rtc", "base=utc", "-display", "none", "-vga", "std",
		"-kernel", "/img/vmlinuz", "-initrd", "/img/initrd",
		"-append", "root=/dev/vda1 console=ttyS0 distrotest.hostname=server",
		"-drive", "if=none,id=disk0,file=/state/disk.qcow2,format=qcow2,cache=unsafe,discard=unmap",
		"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
		"-chardev", "socket,id=qmp,path=/s/server.qmp,server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "socket,id=serial0,path=/s/server.serial",
		"-serial", "chardev:serial0",
		"-chardev", "socket,id=shell,path=/s/server.shell",
		"-device", "virtio-serial-pci,id=virtio-serial0",
		"-device", "virtconsole,chardev=shell,id=shell0",
		"-device", "virtio-rng-pci",
		"-device", "pvpanic", "-action", "panic=pause",
	}
	with := func(c Config, edit func(*Config)) Config { edit(&c); return c }
	join := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}

	replace := func(args []string, old, new string) []string {
		out := append([]string(nil), args...)
		for i := range out {
			if out[i] == old {
				out[i] = new
			}
		}
		return out
	}

	tests := []struct {
		name string
		cfg  Config
		host Host
		want []string
	}{
		{
			name: "minimal",
			cfg:  Config{},
			host: Host{},
			want: join(common("tcg"), []string{
				"-m", "1024", "-smp", "2", "-rtc", "base=utc", "-display", "none", "-vga", "std",
				"-device", "virtio-rng-pci",
				"-device", "pvpanic", "-action", "panic=pause",
			}, userNet),
		},
		{
			name: "tcg machine",
			cfg:  machine,
			host: tcg,
			want: join([]string{"-name", "guest=server"}, common("tcg"), machineArgs, userNet),
		},
		{
			name: "kvm uses the host cpu",
			cfg:  machine,
			host: kvm,
			want: join([]string{"-name", "guest=server"}, common("kvm", "-cpu", "host"), machineArgs, userNet),
		},
		{
			name: "cpu model override",
			cfg:  with(machine, func(c *Config) { c.CPU = "max" }),
			host: kvm,
			want: join([]string{"-name", "guest=server"}, common("kvm", "-cpu", "max"), machineArgs, userNet),
		},
		{
			name: "shares and store",
			cfg: with(machine, func(c *Config) {
				c.Shares = []Share{
					{Tag: StoreTag, Path: "/nix/store", ReadOnly: true},
					{Tag: "data", Path: "/home/me/data,with comma"},
				}
			}),
			host: tcg,
			want: join([]string{"-name", "guest=server"}, common("tcg"), machineArgs, []string{
				"-virtfs", "local,path=/nix/store,mount_tag=nix-store,security_model=none,readonly=on",
				"-virtfs", "local,path=/home/me/data,,with comma,mount_tag=data,security_model=none",
			}, userNet),
		},
		{
			name: "virtiofs store and shares with shared memory",
			cfg: with(machine, func(c *Config) {
				c.Shares = []Share{
					{Tag: StoreTag, Path: "/nix/store", ReadOnly: true, Transport: TransportVirtiofs, Socket: "/s/server.vfs0"},
					{Tag: "data", Path: "/home/me/data", Transport: TransportVirtiofs, Socket: "/s/server,vfs1"},
				}
			}),
			host: tcg,
			want: join([]string{"-name", "guest=server"}, common("tcg"),
				machineArgs[:4],
				[]string{
					"-object", "memory-backend-memfd,id=mem,size=2048M,share=on",
					"-machine", "memory-backend=mem",
				},
				machineArgs[4:],
				[]string{
					"-chardev", "socket,id=vfs-nix-store,path=/s/server.vfs0",
					"-device", "vhost-user-fs-pci,chardev=vfs-nix-store,tag=nix-store,queue-size=1024",
					"-chardev", "socket,id=vfs-data,path=/s/server,,vfs1",
					"-device", "vhost-user-fs-pci,chardev=vfs-data,tag=data,queue-size=1024",
				}, userNet),
		},
		{
			name: "9p and virtiofs side by side, default memory",
			cfg: Config{Shares: []Share{
				{Tag: "a", Path: "/a", Transport: Transport9P},
				{Tag: "b", Path: "/b", Transport: TransportVirtiofs, Socket: "/s/b"},
			}},
			host: tcg,
			want: join(common("tcg"), []string{
				"-m", "1024", "-smp", "2",
				"-object", "memory-backend-memfd,id=mem,size=1024M,share=on",
				"-machine", "memory-backend=mem",
				"-rtc", "base=utc", "-display", "none", "-vga", "std",
				"-device", "virtio-rng-pci",
				"-device", "pvpanic", "-action", "panic=pause",
				"-virtfs", "local,path=/a,mount_tag=a,security_model=none",
				"-chardev", "socket,id=vfs-b,path=/s/b",
				"-device", "vhost-user-fs-pci,chardev=vfs-b,tag=b,queue-size=1024",
			}, userNet),
		},
		{
			name: "vlans",
			cfg: with(machine, func(c *Config) {
				c.NICs = []NIC{
					{VLAN: 1, MAC: "52:54:00:12:01:02", Socket: "/s/server.vlan1", SwitchSocket: "/sw/vlan1.sock"},
					{VLAN: 12, MAC: "52:54:00:12:0c:02", Socket: "/s/server.vlan12", SwitchSocket: "/sw/vlan12.sock"},
				}
			}),
			host: tcg,
			want: join([]string{"-name", "guest=server"}, common("tcg"), machineArgs, userNet, []string{
				"-netdev", "dgram,id=vlan1,local.type=unix,local.path=/s/server.vlan1,remote.type=unix,remote.path=/sw/vlan1.sock",
				"-device", "virtio-net-pci,netdev=vlan1,mac=52:54:00:12:01:02,id=nic-vlan1",
				"-netdev", "dgram,id=vlan12,local.type=unix,local.path=/s/server.vlan12,remote.type=unix,remote.path=/sw/vlan12.sock",
				"-device", "virtio-net-pci,netdev=vlan12,mac=52:54:00:12:0c:02,id=nic-vlan12",
			}),
		},
		{
			name: "shell on a virtio serial port",
			cfg:  with(machine, func(c *Config) { c.ShellPort = ShellPortName }),
			host: tcg,
			want: join([]string{"-name", "guest=server"}, common("tcg"),
				replace(machineArgs, "virtconsole,chardev=shell,id=shell0", "virtserialport,chardev=shell,id=shell0,name=org.distrotest.shell"),
				userNet),
		},
		{
			name: "firmware boot from a raw disk",
			cfg:  Config{Disk: "/state/disk.raw", DiskFormat: "raw", ExtraArgs: []string{"-snapshot"}},
			host: tcg,
			want: join(common("tcg"), []string{
				"-m", "1024", "-smp", "2", "-rtc", "base=utc", "-display", "none", "-vga", "std",
				"-drive", "if=none,id=disk0,file=/state/disk.raw,format=raw,cache=unsafe,discard=unmap",
				"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
				"-device", "virtio-rng-pci",
				"-device", "pvpanic", "-action", "panic=pause",
			}, userNet, []string{"-snapshot"}),
		},
		{
			name: "snapshot shape: shared memory, generation id, hot-plug ports, incoming",
			cfg: Config{SharedMemory: true, VMGenID: true, HotplugPorts: 2, NoReboot: true,
				Incoming: "exec:cat /c/state", ExtraArgs: []string{"-S"}},
			host: tcg,
			want: join(common("tcg"), []string{
				"-m", "1024", "-smp", "2",
				"-object", "memory-backend-memfd,id=mem,size=1024M,share=on",
				"-machine", "memory-backend=mem",
				"-rtc", "base=utc", "-display", "none", "-vga", "std",
				"-device", "virtio-rng-pci",
				"-device", "pvpanic", "-action", "panic=pause",
				"-device", "vmgenid,id=vmgenid0,guid=auto",
				"-device", "pcie-root-port,id=hp0,chassis=100,io-reserve=0",
				"-device", "pcie-root-port,id=hp1,chassis=101,io-reserve=0",
			}, userNet, []string{"-no-reboot", "-incoming", "exec:cat /c/state", "-S"}),
		},
		{
			name: "aarch64",
			cfg:  Config{System: "aarch64-linux"},
			host: tcg,
			want: join([]string{"-nodefaults", "-no-user-config", "-machine", "virt", "-accel", "tcg", "-cpu", "max",
				"-m", "1024", "-smp", "2", "-rtc", "base=utc", "-display", "none", "-device", "virtio-gpu-pci",
				"-device", "virtio-rng-pci",
				"-device", "pvpanic-pci", "-action", "panic=pause",
			}, userNet),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Cmdline(tt.cfg, tt.host)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Cmdline (-want +got):\n%s", d)
			}
		})
	}
}

func TestCmdlineDoesNotAliasParams(t *testing.T) {
	params := make([]string, 1, 8)
	params[0] = "console=ttyS0"
	cfg := Config{Kernel: "k", KernelParams: params, ExtraKernelParams: []string{"a=1"}}
	Cmdline(cfg, Host{})
	if got := params[:2][1]; got != "" {
		t.Errorf("Cmdline wrote %q into the caller's KernelParams", got)
	}
}

func TestQuote(t *testing.T) {
	got := Quote([]string{"-append", "console=ttyS0 quiet", "it's", "plain,path=/a/b", ""})
	want := `-append 'console=ttyS0 quiet' 'it'\''s' plain,path=/a/b ''`
	if got != want {
		t.Errorf("Quote = %s, want %s", got, want)
	}
	if !strings.Contains(Host{Binary: "q", Version: "7.2.22", Accel: "tcg", KVMReason: "r"}.String(), "accel tcg (r)") {
		t.Error("Host.String lacks the accelerator")
	}
}
