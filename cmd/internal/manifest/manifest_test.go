package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func valid() *Manifest {
	return &Manifest{
		Version: CurrentVersion, Distro: "debian", Release: "13", System: "x86_64-linux",
		Disk: "disk.qcow2", DiskFormat: "qcow2", Kernel: "vmlinuz", Initrd: "initrd",
		RootDevice: "/dev/vda1", Filesystem: "ext4",
		KernelParams: []string{"root=/dev/vda1", "rw"}, Strategy: "disk", SystemdVersion: 257,
		Backdoor:       BackdoorVirtioPort,
		ShareTransport: ShareTransportVirtiofs,
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := valid()
	if err := want.Write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("want only %s in dir, got %v", FileName, entries)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"unknown key", `{"version":1,"disk":"d","disk_format":"qcow2","strategy":"disk","bogus":1}`, `manifest.json:1:65: unknown key "bogus"`},
		{"bad version", `{"version":7,"disk":"d","disk_format":"qcow2","strategy":"disk"}`, "version 7 is not supported"},
		{"bad format", `{"version":1,"disk":"d","disk_format":"vmdk","strategy":"disk"}`, `disk_format "vmdk"`},
		{"kernel without initrd", `{"version":1,"disk":"d","disk_format":"raw","strategy":"disk","kernel":"k"}`, "kernel and initrd"},
		{"bad share transport", `{"version":1,"disk":"d","disk_format":"raw","strategy":"disk","share_transport":"nfs"}`, `share_transport "nfs"`},
		{"not json", `hello`, "decoding"},
		{"unknown backdoor", `{"version":1,"disk":"d","disk_format":"raw","strategy":"disk","backdoor":"ttyS1"}`, `backdoor "ttyS1"`},
		{"none without a reason", `{"version":1,"disk":"d","disk_format":"raw","strategy":"none"}`, `strategy "none" goes with uninstrumented`},
		{"a reason without none", `{"version":1,"disk":"d","disk_format":"raw","strategy":"disk","uninstrumented":"asked"}`, `strategy "none" goes with uninstrumented`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load() error = %v, want containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestPath(t *testing.T) {
	if got := Path("/a", "b"); got != "/a/b" {
		t.Errorf("Path relative = %q", got)
	}
	if got := Path("/a", "/x/y"); got != "/x/y" {
		t.Errorf("Path absolute = %q", got)
	}
}

func TestBackdoorTransport(t *testing.T) {
	for _, tt := range []struct{ field, want string }{
		{"", BackdoorHVC0}, // manifests written before the field existed
		{BackdoorHVC0, BackdoorHVC0},
		{BackdoorVirtioPort, BackdoorVirtioPort},
	} {
		m := valid()
		m.Backdoor = tt.field
		if err := m.Validate(); err != nil {
			t.Errorf("Validate with backdoor %q: %v", tt.field, err)
		}
		if got := m.BackdoorTransport(); got != tt.want {
			t.Errorf("BackdoorTransport() with %q = %q, want %q", tt.field, got, tt.want)
		}
	}
}
