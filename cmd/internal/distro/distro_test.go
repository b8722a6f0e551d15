package distro

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestDiagnosticsGolden loads every testdata/<case>.hcl, all of them bad
// inputs, and compares the rendered diagnostics with <case>.diag.golden.
func TestDiagnosticsGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no test cases in testdata/")
	}
	for _, file := range cases {
		name := strings.TrimSuffix(filepath.Base(file), ".hcl")
		t.Run(name, func(t *testing.T) {
			_, err := LoadFiles(file)
			var de *DiagnosticsError
			if !errors.As(err, &de) {
				t.Fatalf("LoadFiles(%s) error = %v, want diagnostics", file, err)
			}
			var got bytes.Buffer
			if err := de.Write(&got, 0, false); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(file, ".hcl") + ".diag.golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("diagnostics differ from %s (-want +got):\n%s", golden, diff)
			}
			for _, d := range de.Diagnostics {
				if d.Subject == nil {
					t.Errorf("diagnostic %q has no position", d.Summary)
				}
			}
		})
	}
}

const debianHCL = `
distro "debian" {
  strategy         = "disk"
  rootfs           = "ext4"
  root_partition   = 1
  kernel           = "boot/vmlinuz-*"
  initrd           = "boot/initrd.img-*"
  boot_filesystem  = "ext4"
  initrd_generator = "initramfs-tools"
  network          = "networkd"
  guest_family     = "debian"
  ssh_unit         = "ssh.service"
  share_transport  = "9p"

  release "9" {
    build { suite = "stretch" }
  }
  release "13" {
    codename              = "trixie"
    strategy              = "initrd"
    rootfs                = "btrfs"
    root_subvolume        = "root"
    root_partition        = 2
    kernel                = "vmlinuz"
    initrd                = "initrd.img"
    boot_filesystem       = "xfs"
    initrd_generator      = "dracut"
    network               = "networkmanager"
    guest_family          = "el"
    ssh_unit              = "sshd.service"
    selinux               = true
    virtio_console_module = true
    share_transport       = "virtiofs"
    build { suite = "trixie" }
    image "x86_64-linux" {
      url    = "https://example.org/amd64.qcow2"
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
    }
    image "aarch64-linux" {
      url    = "https://example.org/arm64.qcow2"
      sha512 = "7ae53e9dbee282bfc16f289dec483dde3a8598769c38a267948310f7a2a52c662620198603bc52c142627efba379863d16079698a10b34102d55bcedd40e8d32"
    }
  }
  release "10" {
    root_device = "label"
    not_offered = "test: withdrawn"
    image "x86_64-linux" {
      url    = "https://example.org/buster.qcow2"
      sha256 = "sha256-hGV0yKl80tjcHyMQYtcxB8yFy7vaVjNeJkpG46bIqy8="
    }
  }
}
`

func TestLoadDefaultsAndOverrides(t *testing.T) {
	cat, err := LoadFS(fstest.MapFS{
		"distros/debian.hcl": {Data: []byte(debianHCL)},
		"distros/README.md":  {Data: []byte("not a description")},
	}, "distros")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Spec      Spec
		Codename  string
		Build     string
		Images    map[string]string
		Supported bool
		Offered   bool
		Systems   []string
	}
	var got []row
	for _, r := range cat.Releases() {
		images := map[string]string{}
		for _, img := range r.Images {
			images[img.System] = img.URL + " " + img.Hash.SRI()
		}
		build := ""
		if r.Build != nil {
			build = r.Build.Suite
		}
		got = append(got, row{r.Spec(), r.Codename, build, images, r.Supported(), r.Offered(), r.Systems()})
	}
	base := Spec{
		Distro: "debian", Strategy: StrategyDisk, Rootfs: Ext4, RootPartition: 1, RootDevice: RootByDevice,
		Kernel: "boot/vmlinuz-*", Initrd: "boot/initrd.img-*", BootFilesystem: Ext4, InitrdGenerator: InitramfsTools,
		Network: NetworkNetworkd, GuestFamily: "debian", SSHUnit: "ssh.service", ShareTransport: Share9P,
	}
	with := func(release string, edit func(*Spec)) Spec {
		s := base
		s.Release = release
		if edit != nil {
			edit(&s)
		}
		return s
	}
	want := []row{
		{Spec: with("9", nil), Build: "stretch", Images: map[string]string{}, Supported: true, Offered: true, Systems: []string{}},
		{Spec: with("10", func(s *Spec) { s.RootDevice = RootByLabel }), Supported: true, Offered: false, Systems: []string{"x86_64-linux"},
			Images: map[string]string{"x86_64-linux": "https://example.org/buster.qcow2 sha256-hGV0yKl80tjcHyMQYtcxB8yFy7vaVjNeJkpG46bIqy8="}},
		{
			Spec: Spec{
				Distro: "debian", Release: "13", Strategy: StrategyInitrd, Rootfs: Btrfs, RootPartition: 2, RootDevice: RootByUUID,
				RootSubvolume: "root", Kernel: "vmlinuz", Initrd: "initrd.img", BootFilesystem: XFS, InitrdGenerator: Dracut,
				Network: NetworkNetworkManager, GuestFamily: "el", SSHUnit: "sshd.service", SELinux: true, VirtioConsoleModule: true,
				ShareTransport: ShareVirtiofs,
			},
			Codename: "trixie", Build: "trixie", Supported: true, Offered: true, Systems: []string{"aarch64-linux", "x86_64-linux"},
			Images: map[string]string{
				"x86_64-linux":  "https://example.org/amd64.qcow2 sha256-4vw22UxPsV9BLpIUOes4D7M7iREYkoLtU3H9Oorcmls=",
				"aarch64-linux": "https://example.org/arm64.qcow2 sha512-euU+nb7igr/Bbyid7Eg93jqFmHacOKJnlIMQ96KlLGYmIBmGA7xSwUJifvujeYY9FgeWmKELNBAtVbzt1A6NMg==",
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("releases mismatch (-want +got):\n%s", diff)
	}
}

// TestSpecRoundTrip: the spec of every release decodes back to itself, a
// changed fact changes its hash, and bad specs are refused with the field.
func TestSpecRoundTrip(t *testing.T) {
	cat, err := LoadFS(fstest.MapFS{"d/debian.hcl": {Data: []byte(debianHCL)}}, "d")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cat.Releases() {
		s := r.Spec()
		back, err := DecodeSpec("spec.json", s.JSON())
		if err != nil {
			t.Fatalf("%s: %v", r.Ref(), err)
		}
		if diff := cmp.Diff(s, back); diff != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", r.Ref(), diff)
		}
		changed := s
		changed.SELinux = !changed.SELinux
		if changed.Hash() == s.Hash() {
			t.Errorf("%s: flipping selinux keeps the hash", r.Ref())
		}
	}
	for data, want := range map[string]string{
		`{"distro":"debian"`:                           "unexpected EOF",
		`{"distro":"debian","release":"13","bogus":1}`: `unknown field "bogus"`,
		`{"distro":"debian","release":"13"}`:           `strategy "": want "disk" or "initrd"`,
		`{"distro":"debian","release":"13"} {}`:        "more than one JSON value",
	} {
		if _, err := DecodeSpec("spec.json", []byte(data)); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "spec.json") {
			t.Errorf("DecodeSpec(%s) error %v, want %q", data, err, want)
		}
	}
}

func TestDuplicateDistroAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.hcl", "b.hcl"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(debianHCL), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := LoadDir(dir)
	var de *DiagnosticsError
	if !errors.As(err, &de) {
		t.Fatalf("LoadDir error = %v, want diagnostics", err)
	}
	if len(de.Diagnostics) != 1 {
		t.Fatalf("got %d diagnostics, want 1: %v", len(de.Diagnostics), de.Diagnostics)
	}
	d := de.Diagnostics[0]
	if d.Summary != "Duplicate distro" || d.Subject.Filename != filepath.Join(dir, "b.hcl") ||
		!strings.Contains(d.Detail, filepath.Join(dir, "a.hcl")+":2,1-16") {
		t.Errorf("diagnostic = %q at %s: %q; want Duplicate distro at b.hcl pointing at a.hcl:2,1-16", d.Summary, d.Subject, d.Detail)
	}
}

func TestLoadDirErrors(t *testing.T) {
	if _, err := LoadDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no *.hcl files") {
		t.Errorf("empty dir: error = %v, want no *.hcl files", err)
	}
	if _, err := LoadDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing dir: no error")
	}
}

func TestLookup(t *testing.T) {
	cat, err := LoadFS(fstest.MapFS{"d/debian.hcl": {Data: []byte(debianHCL)}}, "d")
	if err != nil {
		t.Fatal(err)
	}
	r, err := cat.Lookup("debian/13")
	if err != nil || r.Codename != "trixie" {
		t.Fatalf("Lookup(debian/13) = %v, %v", r, err)
	}
	if img, ok := r.Image("aarch64-linux"); !ok || img.Hash.Algorithm != "sha512" {
		t.Errorf("Image(aarch64-linux) = %v, %v", img, ok)
	}
	for ref, wantErr := range map[string]string{
		"debian":     "want distro/release",
		"fedora/41":  `no distro "fedora" (have debian)`,
		"debian/11":  `debian has no release "11" (have 9, 10, 13)`,
		"debian/13/": `no release "13/"`,
	} {
		if _, err := cat.Lookup(ref); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("Lookup(%q) error = %v, want one containing %q", ref, err, wantErr)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"9", "10", -1},
		{"9.6", "10.1", -1},
		{"24.04", "24.10", -1},
		{"24.10", "24.04", 1},
		{"8.10", "8.9", 1},
		{"13", "13", 0},
		{"9", "9.0", -1},
		{"a", "b", -1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSupported(t *testing.T) {
	tests := []struct {
		name     string
		strategy Strategy
		rootfs   Filesystem
		bootFS   Filesystem
		want     bool
	}{
		{"disk on ext4", StrategyDisk, Ext4, Ext4, true},
		{"disk on xfs", StrategyDisk, XFS, XFS, false},
		{"disk on btrfs", StrategyDisk, Btrfs, Ext4, false},
		{"initrd on xfs", StrategyInitrd, XFS, XFS, true},
		{"initrd on btrfs, kernel on ext4", StrategyInitrd, Btrfs, Ext4, true},
		{"initrd, kernel on btrfs", StrategyInitrd, Btrfs, Btrfs, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Release{Strategy: tt.strategy, Rootfs: tt.rootfs, BootFilesystem: tt.bootFS, InitrdGenerator: Dracut}
			if got := r.Supported(); got != tt.want {
				t.Errorf("Supported() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestReadmeExample keeps the schema example in distros/README.md valid.
func TestReadmeExample(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "distros", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```hcl\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("distros/README.md has no ```hcl example")
	}
	cat, err := LoadFS(fstest.MapFS{"distros/example.hcl": {Data: []byte(example)}}, "distros")
	if err != nil {
		t.Fatalf("README example: %v", err)
	}
	if r, err := cat.Lookup("debian/13"); err != nil || !r.Supported() || r.Build == nil || len(r.Images) != 1 {
		t.Errorf("README example: Lookup(debian/13) = %+v, %v", r, err)
	}
}
