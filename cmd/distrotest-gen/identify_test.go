package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// osImage is a qcow2 with an ext4 root holding a Debian-like boot and the
// given os-release ("" for none).
func osImage(t *testing.T, osRelease string) string {
	t.Helper()
	files := map[string]string{
		"boot/vmlinuz-6.12.48+deb13-amd64":                          "kernel",
		"boot/initrd.img-6.12.48+deb13-amd64":                       "initrd",
		"usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so": "",
		"etc/systemd/system/":                                       "",
	}
	if osRelease != "" {
		files["usr/lib/os-release"] = osRelease
		files["etc/os-release"] = "->../usr/lib/os-release"
	}
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, files)})
	return imagetest.Qcow2(t, d.Raw)
}

func TestIdentifyImage(t *testing.T) {
	cat, err := loadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, osRelease, want, wantErr string
	}{
		{"debian 13", "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\n", "debian/13", ""},
		{"ubuntu 24.04", "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n", "ubuntu/24.04", ""},
		{"unknown release", "PRETTY_NAME=\"Debian GNU/Linux 99\"\nID=debian\nVERSION_ID=99\n", "", `os-release says "Debian GNU/Linux 99" (ID=debian VERSION_ID=99), which no distro description has`},
		{"no VERSION_ID (sid)", "ID=debian\n", "", `os-release has ID="debian" VERSION_ID="": both are needed`},
		{"no os-release", "", "", "no /etc/os-release nor /usr/lib/os-release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := osImage(t, tt.osRelease)
			rel, err := identifyImage(cat, img)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "--distro DISTRO/RELEASE") || !strings.Contains(err.Error(), img) {
					t.Fatalf("err = %v, want it to contain %q, the image and the hint", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rel.Ref() != tt.want {
				t.Errorf("identified %s, want %s", rel.Ref(), tt.want)
			}
		})
	}
}

// TestIdentifyRootFilesystems: os-release is read from ext4, xfs and btrfs
// roots (Fedora's and EL's /etc/os-release is a link to
// ../usr/lib/os-release).
func TestIdentifyRootFilesystems(t *testing.T) {
	cat, err := loadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	tree := imagetest.Tree(t, map[string]string{
		"usr/lib/os-release": "ID=rocky\nVERSION_ID=\"9.6\"\n",
		"etc/os-release":     "->../usr/lib/os-release",
	})
	for _, fs := range []string{"ext4", "xfs", "btrfs"} {
		t.Run(fs, func(t *testing.T) {
			d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 300, FS: fs, Tree: tree})
			img := imagetest.Qcow2(t, d.Raw)
			rel, err := identifyImage(cat, img)
			if err != nil {
				t.Fatal(err)
			}
			if rel.Ref() != "rocky/9.6" {
				t.Errorf("identified %s, want rocky/9.6", rel.Ref())
			}
		})
	}
}

func TestPrepareImageFile(t *testing.T) {
	img := osImage(t, "ID=debian\nVERSION_ID=13\n")
	cache := t.TempDir()
	stdout, stderr, err := run(newImagePrepareCommand(), "--cache-dir", cache, img)
	if err != nil {
		t.Fatal(err)
	}
	dir := strings.TrimSpace(stdout)
	if !strings.HasPrefix(dir, filepath.Join(cache, "prepared", "debian-13-x86_64-linux-file-")) || !strings.Contains(stderr, "debian/13 (from its os-release)") {
		t.Fatalf("stdout %q, stderr %q", stdout, stderr)
	}
	if m, err := manifest.Load(dir); err != nil || m.Release != "13" {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	// cached the second time; --distro overrides the os-release
	again, _, err := run(newImagePrepareCommand(), "--cache-dir", cache, img)
	if err != nil || again != stdout {
		t.Errorf("second prepare: %q, %v", again, err)
	}
	other, _, err := run(newImagePrepareCommand(), "--cache-dir", cache, "--distro", "debian/12", img)
	if err != nil || !strings.Contains(other, "debian-12-x86_64-linux-file-") {
		t.Errorf("--distro debian/12: %q, %v", other, err)
	}
	if _, _, err := run(newImagePrepareCommand(), "--distro", "debian/12", "debian/13"); err == nil || !strings.Contains(err.Error(), "--distro and --no-instrument go with an image file") {
		t.Errorf("--distro with a release: %v", err)
	}
}

func TestImageInspectOSRelease(t *testing.T) {
	img := osImage(t, "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\n")
	stdout, _, err := run(newImageInspectCommand(), img)
	if err != nil {
		t.Fatal(err)
	}
	if want := "os-release:       Debian GNU/Linux 13 (trixie) (ID=debian VERSION_ID=13)"; !strings.Contains(stdout, want) {
		t.Errorf("want %q in\n%s", want, stdout)
	}
	stdout, _, err = run(newImageInspectCommand(), "--json", img)
	if err != nil || !strings.Contains(stdout, `"VERSION_ID": "13"`) || !strings.Contains(stdout, `"root_partition": 1`) {
		t.Errorf("--json: %v\n%s", err, stdout)
	}
}

func TestPrepareImageFileAsIs(t *testing.T) {
	cache := t.TempDir()
	tests := []struct {
		name, osRelease string
		args            []string
		wantDir, reason string
	}{
		{"asked", "ID=debian\nVERSION_ID=13\n", []string{"--no-instrument"}, "debian-13-x86_64-linux-asis-", "asked for with --no-instrument"},
		{"unknown release", "ID=debian\nVERSION_ID=99\n", nil, "image-x86_64-linux-asis-", "which no distro description has"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := osImage(t, tt.osRelease)
			stdout, stderr, err := run(newImagePrepareCommand(), append(append([]string{"--cache-dir", cache}, tt.args...), img)...)
			if err != nil {
				t.Fatal(err)
			}
			dir := strings.TrimSpace(stdout)
			if !strings.Contains(filepath.Base(dir), tt.wantDir) || !strings.Contains(stderr, "booting it as it is, uninstrumented") {
				t.Fatalf("stdout %q, stderr %q", stdout, stderr)
			}
			m, err := manifest.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Strategy != manifest.StrategyNone || !strings.Contains(m.Uninstrumented, tt.reason) || m.Kernel == "" {
				t.Errorf("manifest %+v", m)
			}
		})
	}
}

func TestImagePatchNoInstrument(t *testing.T) {
	img := osImage(t, "")
	out := filepath.Join(t.TempDir(), "asis")
	stdout, stderr, err := run(newImagePatchCommand(), "--no-instrument", "--standalone", img, "-o", out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(stdout) != out || !strings.Contains(stderr, "to boot as it is (uninstrumented; direct kernel boot: true)") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	if m, err := manifest.Load(out); err != nil || m.Strategy != manifest.StrategyNone || m.Uninstrumented != "asked for with --no-instrument" {
		t.Errorf("manifest %+v, %v", m, err)
	}
}
