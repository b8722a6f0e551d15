package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/google/go-cmp/cmp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/diskimage"
	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
	"github.com/distrotest/distrotest/cmd/internal/distro"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/distros"
)

func run(cmd *cobra.Command, args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func testImage(t *testing.T) string {
	t.Helper()
	tree := imagetest.Tree(t, map[string]string{
		"boot/vmlinuz-6.12.48+deb13-amd64":                          "kernel",
		"boot/initrd.img-6.12.48+deb13-amd64":                       "initrd",
		"usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so": "",
		"etc/systemd/system/":                                       "",
	})
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: tree})
	return imagetest.Qcow2(t, d.Raw)
}

func TestImagePatchCommand(t *testing.T) {
	img := testImage(t)
	out := filepath.Join(t.TempDir(), "prepared")
	stdout, stderr, err := run(newImagePatchCommand(), "--distro", "debian/13", img, "-o", out)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != out+"\n" {
		t.Errorf("stdout = %q, want the output directory", stdout)
	}
	if !strings.Contains(stderr, "root /dev/vda1, kernel 6.12.48+deb13-amd64, systemd 257") {
		t.Errorf("stderr = %q", stderr)
	}
	m, err := manifest.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Strategy != "disk" || m.KernelVersion != "6.12.48+deb13-amd64" {
		t.Errorf("manifest %+v", m)
	}

	bad := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(bad, []byte(strings.Repeat("text\n", 1<<16)), 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "prepared")
	_, _, err = run(newImagePatchCommand(), "--distro", "debian/13", bad, "-o", out2)
	if err == nil || !strings.Contains(err.Error(), bad+": not a disk image") {
		t.Errorf("error %v, want one naming %s", err, bad)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Error("output left behind")
	}
	_, _, err = run(newImagePatchCommand(), "--distro", "rocky/9.6", img, "-o", out2)
	if err == nil || !strings.Contains(err.Error(), `root filesystem (partition 1) is ext4, but rocky/9.6 is described with rootfs "xfs"`) {
		t.Errorf("error %v, want the described root filesystem named", err)
	}

	// --spec: the route Nix takes; the same result as --distro.
	cat, err := loadCatalog("")
	if err != nil {
		t.Fatal(err)
	}
	rel, err := cat.Lookup("debian/13")
	if err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(specFile, rel.Spec().JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	out3 := filepath.Join(t.TempDir(), "prepared")
	if _, _, err := run(newImagePatchCommand(), "--spec", specFile, img, "-o", out3); err != nil {
		t.Fatalf("--spec: %v", err)
	}
	m3, err := manifest.Load(out3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, m3); diff != "" {
		t.Errorf("--spec and --distro differ (-distro +spec):\n%s", diff)
	}
	if err := os.WriteFile(specFile, []byte(`{"distro":"debian","release":"13","strategy":"credentials"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = run(newImagePatchCommand(), "--spec", specFile, img, "-o", out2)
	if err == nil || !strings.Contains(err.Error(), "distro spec "+specFile+": strategy \"credentials\": want \"disk\" or \"initrd\"") {
		t.Errorf("bad spec: error %v", err)
	}
	if _, _, err = run(newImagePatchCommand(), "--spec", specFile, "--distro", "debian/13", img, "-o", out2); err == nil {
		t.Error("--spec with --distro accepted")
	}
}

func TestImageInspectCommand(t *testing.T) {
	img := testImage(t)
	stdout, _, err := run(newImageInspectCommand(), "--json", img)
	if err != nil {
		t.Fatal(err)
	}
	var r diskimage.Report
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.RootPartition != 1 || r.Boot == nil || r.Boot.KernelVersion != "6.12.48+deb13-amd64" || r.SystemdVersion != 257 {
		t.Errorf("report %+v", r)
	}
	stdout, _, err = run(newImageInspectCommand(), img)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"partition table:  gpt", "root:", "/dev/vda1, ext4", "kernel:           /boot/vmlinuz-6.12.48+deb13-amd64", "systemd version:  257"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("want %q in\n%s", want, stdout)
		}
	}
	if _, _, err := run(newImageInspectCommand(), filepath.Join(t.TempDir(), "missing.qcow2")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error %v", err)
	}
}

func TestExportPlan(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := run(newImagePatchCommand(), "--export-plan", dir); err != nil {
		t.Fatal(err)
	}
	plan := guest.NewPlan()
	for _, f := range plan.Files {
		fi, err := os.Stat(filepath.Join(dir, "files", f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != f.Mode.Perm() {
			t.Errorf("%s: mode %v, want %v", f.Path, fi.Mode().Perm(), f.Mode.Perm())
		}
	}
	links, err := os.ReadFile(filepath.Join(dir, "symlinks"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(links), "\n"); n != len(plan.Symlinks) {
		t.Errorf("%d links exported, want %d", n, len(plan.Symlinks))
	}
}

// TestSpecShareTransport: the patch spec carries the release's
// share_transport (virtiofs for the EL family, whose kernels build no 9p),
// which goes into the manifest for the runner.
func TestSpecShareTransport(t *testing.T) {
	cat, err := distro.LoadFS(distros.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	virtiofs := 0
	for _, r := range cat.Releases() {
		got := specFor(r, "x86_64-linux").ShareTransport
		if got != r.ShareTransport {
			t.Errorf("%s: spec share transport %q, described %q", r.Ref(), got, r.ShareTransport)
		}
		el := r.Distro == "rocky" || r.Distro == "almalinux" || r.Distro == "centos-stream"
		if el && got != distro.ShareVirtiofs {
			t.Errorf("%s: share transport %q, want virtiofs (RHEL kernels have no 9p)", r.Ref(), got)
		}
		if got == distro.ShareVirtiofs {
			virtiofs++
		}
	}
	if virtiofs == 0 {
		t.Error("no release uses virtiofs: the test checks nothing")
	}
}
