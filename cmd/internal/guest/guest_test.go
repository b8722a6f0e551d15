package guest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/internal/testenv"
)

func TestPlanParentsListed(t *testing.T) {
	p := NewPlan()
	dirs := map[string]bool{"/": true}
	for _, d := range p.Dirs {
		if !dirs[path.Dir(d.Path)] {
			t.Errorf("dir %s listed before its parent", d.Path)
		}
		dirs[d.Path] = true
	}
	for _, f := range p.Files {
		if !dirs[path.Dir(f.Path)] {
			t.Errorf("file %s: parent not in Dirs", f.Path)
		}
		if len(f.Data) == 0 {
			t.Errorf("file %s is empty", f.Path)
		}
		if f.Mode != 0o644 && f.Mode != 0o755 {
			t.Errorf("file %s has mode %o", f.Path, f.Mode)
		}
	}
	for _, s := range p.Symlinks {
		if !dirs[path.Dir(s.Path)] {
			t.Errorf("symlink %s: parent not in Dirs", s.Path)
		}
	}
}

func TestBackdoorPrintsMarker(t *testing.T) {
	if !strings.Contains(string(asset("backdoor")), `echo "`+Marker+`"`) {
		t.Fatalf("backdoor script does not print %q", Marker)
	}
}

func TestHostName(t *testing.T) {
	for node, want := range map[string]string{"machine": "machine", "one_two": "onetwo", "Web-1": "Web-1", "a_-b": "a-b", "_x_": "x", "x-": "x"} {
		if got := HostName(node); got != want {
			t.Errorf("HostName(%q) = %q, want %q", node, got, want)
		}
	}
}

func TestBackdoorListensOnShellPort(t *testing.T) {
	if !strings.Contains(string(asset("backdoor")), `= `+ShellPort+` ]`) {
		t.Fatalf("backdoor script does not look for the port %q", ShellPort)
	}
}

func TestKernelParams(t *testing.T) {
	tests := []struct {
		name    string
		id      Identity
		want    []string
		wantErr string
	}{
		{name: "empty", id: Identity{}, want: nil},
		{name: "single machine", id: Identity{Hostname: "machine", NixStore: true, Shares: []Share{{Tag: "data", Target: "/mnt/data/"}}},
			want: []string{"distrotest.hostname=machine", "distrotest.store=1", "distrotest.share=data:/mnt/data"}},
		{name: "vlans and hosts", id: Identity{Hostname: "b", N: 2, VLANs: []int{2, 1}, Hosts: []Host{{Name: "a", N: 1, VLANs: []int{1}}, {Name: "b", N: 2, VLANs: []int{1, 2}}}},
			want: []string{"distrotest.hostname=b", "distrotest.net=1:2", "distrotest.net=2:2", "distrotest.hosts=a:1:1,b:2:1.2"}},
		{name: "internet and growfs", id: Identity{Hostname: "vm", Internet: true, GrowFS: true},
			want: []string{"distrotest.hostname=vm", "distrotest.internet=1", "distrotest.growfs=1"}},
		{name: "virtiofs, read-only share, registration",
			id: Identity{Hostname: "m", NixStore: true, Virtiofs: true, NixRegistration: "/nix/store/abc-closure-info/registration",
				Shares: []Share{{Tag: "ro", Target: "/mnt/ro", ReadOnly: true}, {Tag: "tmp", Target: "/tmp/share"}}},
			want: []string{"distrotest.hostname=m", "distrotest.fs=virtiofs", "distrotest.store=1",
				"distrotest.register=/nix/store/abc-closure-info/registration",
				"distrotest.share=ro:/mnt/ro:ro", "distrotest.share=tmp:/tmp/share"}},
		{name: "virtiofs without anything to mount says nothing", id: Identity{Hostname: "m", Virtiofs: true},
			want: []string{"distrotest.hostname=m"}},
		{name: "registration without store", id: Identity{NixRegistration: "/nix/store/x-r/registration"}, wantErr: "needs the Nix store"},
		{name: "registration outside the store", id: Identity{NixStore: true, NixRegistration: "/tmp/registration"}, wantErr: "under /nix/store"},
		{name: "bad host name", id: Identity{Hostname: "a b"}, wantErr: `node name "a b"`},
		// the driver refused a leading digit and this package accepted it
		{name: "name starting with a digit", id: Identity{Hostname: "1node"}, wantErr: `node name "1node"`},
		{name: "host names derived as nixpkgs", id: Identity{Hostname: "one_two", N: 1, VLANs: []int{1}, Hosts: []Host{{Name: "one_two", N: 1, VLANs: []int{1}}, {Name: "web-1_", N: 2, VLANs: []int{1}}}},
			want: []string{"distrotest.hostname=onetwo", "distrotest.net=1:1", "distrotest.hosts=onetwo:1:1,web-1:2:1"}},
		{name: "nothing left of the name", id: Identity{Hostname: "__"}, wantErr: `node name "__"`},
		{name: "the store's tag", id: Identity{Shares: []Share{{Tag: "nix-store", Target: "/mnt"}}}, wantErr: "reserved for the Nix store"},
		{name: "root as target", id: Identity{Shares: []Share{{Tag: "x", Target: "/"}}}, wantErr: "(not /)"},
		{name: "relative target", id: Identity{Shares: []Share{{Tag: "x", Target: "mnt"}}}, wantErr: "absolute path"},
		{name: "colon in target", id: Identity{Shares: []Share{{Tag: "x", Target: "/a:b"}}}, wantErr: "absolute path"},
		{name: "vlan out of range", id: Identity{N: 1, VLANs: []int{300}}, wantErr: "vlan 300"},
		{name: "node zero", id: Identity{N: 0, VLANs: []int{1}}, wantErr: "node number 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := KernelParams(tt.id)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestSetupScript runs the guest setup script with bash against a fake
// /proc/cmdline, with file system paths redirected into a temp dir, and
// checks the network files and /etc/hosts it writes.
func TestSetupScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.Missing(t, "bash not installed")
	}
	// After a restore from a snapshot the parameters come in
	// $DISTROTEST_PARAMS and /proc/cmdline is the snapshot's: same result.
	for _, restored := range []bool{false, true} {
		t.Run(map[bool]string{false: "kernel command line", true: "after a restore"}[restored], func(t *testing.T) {
			checkSetupScript(t, restored)
		})
	}
}

func checkSetupScript(t *testing.T, restored bool) {
	root := t.TempDir()
	params, err := KernelParams(Identity{Hostname: "b", N: 2, VLANs: []int{1, 2},
		Hosts: []Host{{Name: "a", N: 1, VLANs: []int{1}}, {Name: "b", N: 2, VLANs: []int{1, 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	cmdline, env := "root=/dev/vda1 rw "+strings.Join(params, " ")+"\n", os.Environ()
	if restored {
		cmdline, env = "root=/dev/vda1 rw\n", append(env, "DISTROTEST_PARAMS="+strings.Join(params, " "))
	}
	if err := os.WriteFile(filepath.Join(root, "cmdline"), []byte(cmdline), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, mac := range map[string]string{"ens2": UserMAC, "ens3": MAC(1, 2), "ens4": MAC(2, 2)} {
		if err := os.MkdirAll(filepath.Join(root, "net", name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "net", name, "address"), []byte(mac+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// ip(8) is replaced by a function that records its arguments.
	script := setupScript(root, "ip() { echo \"ip $*\" >>"+root+"/ip.log; }\n")
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("setup failed: %v\n%s", err, out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("hostname"); got != "b\n" {
		t.Errorf("hostname = %q", got)
	}
	wantHosts := "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n" +
		"192.168.1.1 a\n2001:db8:1::1 a\n192.168.1.2 b\n192.168.2.2 b\n2001:db8:1::2 b\n2001:db8:2::2 b\n"
	if d := cmp.Diff(wantHosts, read("hosts")); d != "" {
		t.Errorf("/etc/hosts (-want +got):\n%s", d)
	}
	wantIP := `ip link set lo up
ip link set ens2 up
ip addr replace 10.0.2.15/24 dev ens2
ip link set ens3 up
ip addr replace 192.168.1.2/24 dev ens3
ip -6 addr replace 2001:db8:1::2/64 dev ens3 nodad
ip link set ens4 up
ip addr replace 192.168.2.2/24 dev ens4
ip -6 addr replace 2001:db8:2::2/64 dev ens4 nodad
`
	if d := cmp.Diff(wantIP, read("ip.log")); d != "" {
		t.Errorf("ip commands (-want +got):\n%s", d)
	}
	if got := read("resolv.conf"); got != "nameserver 10.0.2.3\n" {
		t.Errorf("resolv.conf = %q", got)
	}
}

// What the setup script runs and mounts with the store and two shares over
// virtiofs (TestSetupScriptMounts), with and without hot-plugged devices.
const (
	virtiofsWant = `modprobe -q virtio_console
modprobe -q virtiofs
modprobe -q overlay
mount -a -T /run/distrotest-fstab
mkdir -p /nix/store /nix/.rw-store/store /nix/.rw-store/work
mount -t overlay overlay -o lowerdir=/nix/.ro-store,upperdir=/nix/.rw-store/store,workdir=/nix/.rw-store/work /nix/store
nix-store --load-db < /nix/store/abc-closure-info/registration
`
	virtiofsFstab = `nix-store /nix/.ro-store virtiofs ro,X-mount.mkdir 0 0
tmpfs /nix/.rw-store tmpfs mode=0755,X-mount.mkdir 0 0
data /mnt/data virtiofs rw,X-mount.mkdir 0 0
ro /tmp/ro virtiofs ro,X-mount.mkdir 0 0
`
)

// TestSetupScriptMounts runs the setup script's mount part with mount,
// modprobe, mkdir and nix-store replaced by functions that record their
// arguments, for both transports.
func TestSetupScriptMounts(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	id := Identity{NixStore: true, NixRegistration: "/nix/store/abc-closure-info/registration",
		Shares: []Share{{Tag: "data", Target: "/mnt/data"}, {Tag: "ro", Target: "/tmp/ro", ReadOnly: true}}}
	tests := []struct {
		name     string
		virtiofs bool
		hotplug  int    // DISTROTEST_VIRTIOFS, with that many devices bound
		want     string // the commands run
		fstab    string // what mount -a mounts
	}{
		{name: "9p", want: `modprobe -q virtio_console
modprobe -q 9pnet_virtio
modprobe -q 9p
modprobe -q overlay
mount -a -T /run/distrotest-fstab
mkdir -p /nix/store /nix/.rw-store/store /nix/.rw-store/work
mount -t overlay overlay -o lowerdir=/nix/.ro-store,upperdir=/nix/.rw-store/store,workdir=/nix/.rw-store/work /nix/store
nix-store --load-db < /nix/store/abc-closure-info/registration
`, fstab: `nix-store /nix/.ro-store 9p ro,trans=virtio,version=9p2000.L,msize=131072,cache=loose,X-mount.mkdir 0 0
tmpfs /nix/.rw-store tmpfs mode=0755,X-mount.mkdir 0 0
data /mnt/data 9p rw,trans=virtio,version=9p2000.L,msize=131072,X-mount.mkdir 0 0
ro /tmp/ro 9p ro,trans=virtio,version=9p2000.L,msize=131072,X-mount.mkdir 0 0
`},
		{name: "virtiofs", virtiofs: true, want: virtiofsWant, fstab: virtiofsFstab},
		{name: "virtiofs, hot-plugged devices bound", virtiofs: true, hotplug: 3, want: virtiofsWant, fstab: virtiofsFstab},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			id := id
			id.Virtiofs = tt.virtiofs
			params, err := KernelParams(id)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "cmdline"), []byte("root=/dev/vda1 "+strings.Join(params, " ")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			log := filepath.Join(root, "log")
			fake := ""
			for _, c := range []string{"mount", "modprobe", "mkdir", "ip", "passwd"} {
				fake += c + "() { echo \"" + c + " $*\" >>" + log + "; }\n"
			}
			// nix-store shows where its stdin comes from.
			fake += "nix-store() { echo \"nix-store $* < $(readlink /proc/self/fd/0)\" >>" + log + "; }\n"
			fake += "command() { [ \"$2\" = nix-store ]; }\n"
			script := fake + string(asset("setup"))
			for _, r := range []struct{ from, to string }{
				{"/sys/class/net", root + "/net"},
				{"/etc/resolv.conf", root + "/resolv.conf"},
				{"/proc/cmdline", root + "/cmdline"},
				{"/etc/hosts", root + "/hosts"},
				{"/sys/module", root + "/module"},
				{"/proc/filesystems", root + "/filesystems"},
				{"/run/", root + "/run/"},
			} {
				script = strings.ReplaceAll(script, r.from, r.to)
			}
			if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "filesystems"), []byte("nodev\ttmpfs\n\text4\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// A user-mode NIC, so that the network part does not wait for one.
			if err := os.MkdirAll(filepath.Join(root, "net/ens2"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "net/ens2/address"), []byte(UserMAC+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// The registration file must exist for the redirection.
			script = strings.ReplaceAll(script, `<"$register"`, `<"`+root+`$register"`)
			if err := os.MkdirAll(filepath.Join(root, "nix/store/abc-closure-info"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "nix/store/abc-closure-info/registration"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			script = strings.ReplaceAll(script, "/sys/bus/virtio/drivers/virtiofs", root+"/vfs")
			for i := range tt.hotplug {
				if err := os.MkdirAll(filepath.Join(root, "vfs", fmt.Sprintf("virtio%d", 3+i)), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("bash", "-c", script)
			cmd.Env = append(os.Environ(), fmt.Sprintf("DISTROTEST_VIRTIOFS=%d", tt.hotplug))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("setup failed: %v\n%s", err, out)
			}
			data, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.SplitAfter(string(data), "\n") {
				if !strings.HasPrefix(l, "ip ") && !strings.HasPrefix(l, "passwd ") {
					got = append(got, strings.ReplaceAll(l, root, ""))
				}
			}
			if d := cmp.Diff(tt.want, strings.Join(got, "")); d != "" {
				t.Errorf("commands (-want +got):\n%s", d)
			}
			fstab, err := os.ReadFile(filepath.Join(root, "run/distrotest-fstab"))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.fstab, string(fstab)); d != "" {
				t.Errorf("fstab (-want +got):\n%s", d)
			}
		})
	}
}

// setupScript is the guest's setup script with the files it reads and
// writes moved under root and the root password left alone, after prelude
// (shell functions standing in for tools); extra are more replacements,
// made first.
func setupScript(root, prelude string, extra ...[2]string) string {
	script := prelude + string(asset("setup"))
	for _, r := range append(extra, [][2]string{
		{"/sys/class/net", root + "/net"},
		{"/etc/resolv.conf", root + "/resolv.conf"},
		{"/proc/cmdline", root + "/cmdline"},
		{"/proc/sys/kernel/hostname", root + "/hostname"},
		{"/etc/hosts", root + "/hosts"},
		{"passwd -d root", "true"},
	}...) {
		script = strings.ReplaceAll(script, r[0], r[1])
	}
	return script
}

// TestRules checks the identity rules against testdata/rules.json, the
// examples the Nix library's checks are tested with too (tests/nix/eval.nix).
func TestRules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	type cases[T any] struct {
		Valid   []T `json:"valid"`
		Invalid []T `json:"invalid"`
	}
	var rules struct {
		Comment      string        `json:"comment"`
		NodeNames    cases[string] `json:"node_names"`
		ShareTags    cases[string] `json:"share_tags"`
		MountTargets cases[string] `json:"mount_targets"`
		VLANs        cases[int]    `json:"vlans"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("testdata/rules.json: %v", err)
	}
	check := func(what string, valid bool, v any, err error) {
		t.Helper()
		if valid && err != nil {
			t.Errorf("%s %#v: %v, want valid", what, v, err)
		}
		if !valid && err == nil {
			t.Errorf("%s %#v: valid, want an error", what, v)
		}
	}
	for _, valid := range []bool{true, false} {
		pick := func(c cases[string]) []string {
			if valid {
				return c.Valid
			}
			return c.Invalid
		}
		for _, n := range pick(rules.NodeNames) {
			check("node name", valid, n, CheckNodeName(n))
			if valid && HostName(n) == "" {
				t.Errorf("node name %q has an empty host name", n)
			}
		}
		for _, s := range pick(rules.ShareTags) {
			check("share tag", valid, s, CheckShareTag(s))
		}
		for _, s := range pick(rules.MountTargets) {
			check("mount target", valid, s, CheckMountTarget(s))
		}
		vlans := rules.VLANs.Invalid
		if valid {
			vlans = rules.VLANs.Valid
		}
		for _, v := range vlans {
			check("vlan", valid, v, CheckVLAN(v))
		}
	}
}

func TestNodeNumbers(t *testing.T) {
	got := NodeNumbers([]string{"server", "client", "b"})
	if d := cmp.Diff(map[string]int{"b": 1, "client": 2, "server": 3}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
