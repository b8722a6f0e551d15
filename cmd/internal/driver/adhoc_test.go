package driver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseShare(t *testing.T) {
	tests := []struct {
		in      string
		tag     string
		want    SharedDir
		wantErr bool
	}{
		{in: "data=./dir:/mnt/data", tag: "data", want: SharedDir{Source: "./dir", Target: "/mnt/data"}},
		{in: "x=/a:b/c:/t", tag: "x", want: SharedDir{Source: "/a:b/c", Target: "/t"}},
		{in: "data", wantErr: true},
		{in: "=/a:/b", wantErr: true},
		{in: "d=/a", wantErr: true},
		{in: "d=/a:", wantErr: true},
		{in: "d=:/t", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tag, d, err := ParseShare(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (tag != tt.tag || d != tt.want) {
				t.Errorf("got %s %+v, want %s %+v", tag, d, tt.tag, tt.want)
			}
		})
	}
}

func TestAdHocConfig(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c, err := AdHoc{Script: "tests/my test.py", Image: "/img", Shares: []string{"data=dir:/mnt/data"}, MemoryMiB: 512}.Config()
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Version: 1, Name: "my-test", TestScript: filepath.Join(cwd, "tests/my test.py"), GlobalTimeout: 3600, Accel: "auto",
		Machines: []MachineConfig{{Name: "machine", Image: "/img", MemorySize: 512, CPUs: DefaultCPUs,
			SharedDirs: map[string]SharedDir{"data": {Source: filepath.Join(cwd, "dir"), Target: "/mnt/data"}}}},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}

	for _, bad := range []AdHoc{
		{Script: "t.py", Image: "/img", Shares: []string{"d=/a:/b", "d=/c:/e"}},
		{Script: "t.py", Image: "/img", Shares: []string{"d=/a:relative"}},
		{Script: "t.py", Image: "/img", Name: "no spaces"},
	} {
		if _, err := bad.Config(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestResolveImage(t *testing.T) {
	dir := t.TempDir()
	got, err := ResolveImage(context.Background(), dir, "", nil)
	if err != nil || got != dir {
		t.Errorf("a directory: got %q, %v", got, err)
	}
	if _, err := ResolveImage(context.Background(), "not an image", "", nil); err == nil || !strings.Contains(err.Error(), "DISTRO/RELEASE") {
		t.Errorf("a bad reference: %v", err)
	}

	// No distrotest-gen anywhere.
	t.Setenv("PATH", t.TempDir())
	if _, err := ResolveImage(context.Background(), "debian/13", "", nil); err == nil || !strings.Contains(err.Error(), "distrotest-gen is needed") {
		t.Errorf("without distrotest-gen: %v", err)
	}

	// A distrotest-gen that prepares (prints a directory) and one that fails.
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	prepared := filepath.Join(dir, "prepared")
	os.MkdirAll(prepared, 0o755)
	gen := "#!/bin/sh\necho \"args: $*\" >&2\n[ \"$3\" = debian/13 ] || exit 3\necho " + prepared + "\n"
	if err := os.WriteFile(filepath.Join(bin, GenBinary), []byte(gen), 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	got, err = ResolveImage(context.Background(), "debian/13", "/cache", &stderr)
	if err != nil || got != prepared {
		t.Errorf("prepare: got %q, %v", got, err)
	}
	if want := "args: image prepare debian/13 --cache-dir /cache"; !strings.Contains(stderr.String(), want) {
		t.Errorf("distrotest-gen was called with %q, want %q", stderr.String(), want)
	}
	if _, err := ResolveImage(context.Background(), "debian/99", "", &stderr); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failed prepare: %v", err)
	}

	// A disk image file goes to distrotest-gen by its absolute path.
	disk := filepath.Join(dir, "some.qcow2")
	if err := os.WriteFile(disk, []byte("disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	stderr.Reset()
	gen = "#!/bin/sh\necho \"args: $*\" >&2\necho " + prepared + "\n"
	if err := os.WriteFile(filepath.Join(bin, GenBinary), []byte(gen), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err = ResolveImage(context.Background(), "some.qcow2", "/cache", &stderr)
	if err != nil || got != prepared {
		t.Errorf("a disk file: got %q, %v", got, err)
	}
	if want := "args: image prepare " + disk + " --cache-dir /cache"; !strings.Contains(stderr.String(), want) {
		t.Errorf("distrotest-gen was called with %q, want %q", stderr.String(), want)
	}
}
