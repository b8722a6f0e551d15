package imagepatch

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// nixosScript is the heart of test-instrumentation.nix's backdoor script.
const nixosScript = `#!/bin/bash
exec < /dev/hvc0 > /dev/hvc0
stty -F /dev/hvc0 raw -echo
echo "Spawning backdoor root shell..."
PS1="" exec /bin/bash --norc /dev/hvc0
`

func TestFindOwnBackdoor(t *testing.T) {
	const (
		sys   = "etc/systemd/system/"
		wants = sys + "multi-user.target.wants/"
	)
	unit := func(execStart string) string {
		return "[Unit]\nRequires=dev-hvc0.device\n[Service]\nExecStart=" + execStart + "\n"
	}
	tests := []struct {
		name       string
		files      map[string]string
		fs         string
		wantUnit   string
		wantScript string
	}{
		{
			name: "unit script, enabled (test-instrumentation.nix on Debian)",
			files: map[string]string{
				sys + "backdoor.service":                  unit("/usr/local/lib/nixos-test/backdoor-start"),
				wants + "backdoor.service":                "->/etc/systemd/system/backdoor.service",
				"usr/local/lib/nixos-test/backdoor-start": nixosScript,
			},
			wantUnit: "/" + sys + "backdoor.service", wantScript: "/usr/local/lib/nixos-test/backdoor-start",
		},
		{
			name: "inline script run by an interpreter, any unit name, relative link",
			files: map[string]string{
				"usr/lib/systemd/system/test-shell.service":                      unit("-/bin/bash /opt/shell.sh"),
				"usr/lib/systemd/system/sysinit.target.wants/test-shell.service": "->../test-shell.service",
				"opt/shell.sh": nixosScript,
			},
			wantUnit: "/usr/lib/systemd/system/test-shell.service", wantScript: "/opt/shell.sh",
		},
		{
			name: "the marker in the unit itself",
			files: map[string]string{
				wants + "bd.service": unit(`/bin/bash -c 'exec </dev/hvc0 >/dev/hvc0; echo "Spawning backdoor root shell..."; exec bash'`),
			},
			wantUnit: "/" + wants + "bd.service", wantScript: "/" + wants + "bd.service",
		},
		{
			name: "NixOS's layout: units only in the system profile, absolute links into the store",
			files: map[string]string{
				"nix/var/nix/profiles/system":                                                    "->system-1-link",
				"nix/var/nix/profiles/system-1-link":                                             "->/nix/store/aaaa-nixos-system-machine",
				"nix/store/aaaa-nixos-system-machine/etc":                                        "->/nix/store/bbbb-etc/etc",
				"nix/store/bbbb-etc/etc/systemd/system/backdoor.service":                         "->/nix/store/cccc-unit-backdoor.service/backdoor.service",
				"nix/store/bbbb-etc/etc/systemd/system/multi-user.target.wants/backdoor.service": "->../backdoor.service",
				"nix/store/cccc-unit-backdoor.service/backdoor.service":                          unit("/nix/store/dddd-unit-script-backdoor-start/bin/backdoor-start"),
				"nix/store/dddd-unit-script-backdoor-start/bin/backdoor-start":                   nixosScript,
			},
			wantUnit:   "/nix/var/nix/profiles/system/etc/systemd/system/backdoor.service",
			wantScript: "/nix/store/dddd-unit-script-backdoor-start/bin/backdoor-start",
		},
		{
			name: "xfs: links not followed, the unit found by name",
			fs:   "xfs",
			files: map[string]string{
				sys + "backdoor.service":   unit("/opt/backdoor-start"),
				wants + "backdoor.service": "->/etc/systemd/system/backdoor.service",
				"opt/backdoor-start":       nixosScript,
			},
			wantUnit: "/" + sys + "backdoor.service", wantScript: "/opt/backdoor-start",
		},
		{
			name: "not enabled",
			files: map[string]string{
				sys + "backdoor.service": unit("/opt/backdoor-start"),
				"opt/backdoor-start":     nixosScript,
			},
		},
		{
			name: "masked",
			files: map[string]string{
				"usr/lib/systemd/system/backdoor.service":                         unit("/opt/backdoor-start"),
				"usr/lib/systemd/system/multi-user.target.wants/backdoor.service": "->../backdoor.service",
				sys + "backdoor.service":                                          "->/dev/null",
				"opt/backdoor-start":                                              nixosScript,
			},
		},
		{
			name: "a marker on another device (distrotest's own backdoor, on its virtio port)",
			files: map[string]string{
				wants + "distrotest-backdoor.service": unit("/usr/lib/distrotest/backdoor"),
				"usr/lib/distrotest/backdoor":         "#!/bin/bash\nexec 0<>\"$port\" 1>&0\necho \"Spawning backdoor root shell...\"\nexec /bin/bash --norc\n",
			},
		},
		{
			name: "a shell on hvc0 without the marker",
			files: map[string]string{
				wants + "getty.service": unit("/opt/getty"),
				"opt/getty":             "#!/bin/sh\nexec agetty hvc0 </dev/hvc0\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := tt.fs
			if fs == "" {
				fs = "ext4"
			}
			size := 16
			if fs == "xfs" {
				size = 300
			}
			d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: size, FS: fs, Tree: imagetest.Tree(t, tt.files)})
			b, err := FindOwnBackdoorIn(d.Raw, 0)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.wantUnit == "" && b != nil:
				t.Fatalf("found a backdoor %+v, want none", *b)
			case tt.wantUnit != "" && b == nil:
				t.Fatal("found no backdoor")
			case b != nil && (b.Unit != tt.wantUnit || b.Script != tt.wantScript):
				t.Errorf("found %+v, want unit %s, script %s", *b, tt.wantUnit, tt.wantScript)
			}
		})
	}
}

func TestAsIsOwnBackdoor(t *testing.T) {
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, debianFiles())})
	in := imagetest.Qcow2(t, d.Raw)
	before := imagetest.FileSum(t, in)
	out := filepath.Join(t.TempDir(), "own")
	b := &OwnBackdoor{Unit: "/etc/systemd/system/multi-user.target.wants/backdoor.service", Script: "/opt/backdoor-start"}
	if _, err := AsIsOwnBackdoor(context.Background(), in, out, Spec{System: "x86_64-linux"}, b, Options{}); err != nil {
		t.Fatal(err)
	}
	if imagetest.FileSum(t, in) != before {
		t.Error("the input changed")
	}
	m, err := manifest.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Strategy != manifest.StrategyOwnBackdoor || m.Backdoor != manifest.BackdoorHVC0 || m.OwnBackdoor != b.Unit ||
		m.Uninstrumented != "" || m.Kernel == "" {
		t.Errorf("manifest %+v", m)
	}
}
