package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	if err == nil || !strings.Contains(err.Error(), `strategy "cloud-init"`) {
		t.Errorf("error %v, want the strategy named", err)
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

// TestSpecShareTransport: a release whose kernel has no 9p gets a manifest
// that asks for virtiofs (the hook for the EL family); others leave the
// choice to the runner.
func TestSpecShareTransport(t *testing.T) {
	cat, err := distro.LoadFS(distros.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	no9p := 0
	for _, r := range cat.Releases() {
		want := ""
		if r.HasQuirk(distro.QuirkNo9P) {
			want = manifest.ShareTransportVirtiofs
			no9p++
		}
		if got := specFor(r, "x86_64-linux").ShareTransport; got != want {
			t.Errorf("%s: share transport %q, want %q", r.Ref(), got, want)
		}
	}
	if no9p == 0 {
		t.Error("no release has the no-9p quirk: the test checks nothing")
	}
}
