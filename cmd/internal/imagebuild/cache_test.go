package imagebuild

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

var debian13 = Request{Distro: "debian", Release: "13", Arch: "x86_64-linux"}

// fakeEntry makes a finished cache entry for req under cache.
func fakeEntry(t *testing.T, cache string, req Request) string {
	t.Helper()
	r, err := recipeFor(req)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "images", r.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{DiskFile, InfoFile} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, DiskFile)
}

func TestBuildReturnsCachedImage(t *testing.T) {
	cache := t.TempDir()
	want := fakeEntry(t, cache, debian13)
	// No tools, no root and no network are needed for a cached image; the
	// PATH is emptied to prove it.
	t.Setenv("PATH", "")
	start := time.Now()
	got, err := Build(t.Context(), debian13, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Build = %q, want %q", got, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cached Build took %s", d)
	}
}

func TestBuildRejectsUnknownRelease(t *testing.T) {
	_, err := Build(t.Context(), Request{Distro: "debian", Release: "10", Arch: "x86_64-linux"}, Options{CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "supported: debian/12 (x86_64-linux), debian/13 (x86_64-linux)") {
		t.Errorf("Build error = %v, want the supported releases", err)
	}
}

func TestLookup(t *testing.T) {
	cache := t.TempDir()
	path, ok, err := Lookup(debian13, cache)
	if err != nil || ok {
		t.Fatalf("Lookup on an empty cache = %q, %v, %v", path, ok, err)
	}
	if !strings.HasPrefix(path, filepath.Join(cache, "images", "debian-13-x86_64-linux-")) || filepath.Base(path) != DiskFile {
		t.Errorf("Lookup path = %q", path)
	}
	want := fakeEntry(t, cache, debian13)
	if path, ok, err = Lookup(debian13, cache); err != nil || !ok || path != want {
		t.Errorf("Lookup = %q, %v, %v; want %q, true", path, ok, err, want)
	}
	// An entry without build.json is not finished.
	if err := os.Remove(filepath.Join(filepath.Dir(want), InfoFile)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ = Lookup(debian13, cache); ok {
		t.Error("Lookup reports an entry without build.json as cached")
	}
}

func TestExport(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.qcow2")
	if err := os.WriteFile(src, []byte("QFI\xfb image"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "nested")
	for range 2 { // the second export replaces the first
		got, err := Export(src, out)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(out, DiskFile); got != want {
			t.Errorf("Export = %q, want %q", got, want)
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{DiskFile}, names); diff != "" {
		t.Errorf("files in the output dir (-want +got):\n%s", diff)
	}
	data, err := os.ReadFile(filepath.Join(out, DiskFile))
	if err != nil || string(data) != "QFI\xfb image" {
		t.Errorf("exported content %q, %v", data, err)
	}
}

// fakeRoot makes the parts of an mmdebstrap tree configureRoot looks at.
func fakeRoot(t *testing.T, dir string, pkgs []string) {
	t.Helper()
	var status strings.Builder
	for _, p := range pkgs {
		v := "1.0-1"
		if p == "systemd" {
			v = "257.8-1~deb13u2"
		}
		status.WriteString("Package: " + p + "\nStatus: install ok installed\nVersion: " + v + "\n\n")
	}
	files := map[string]string{
		"boot/vmlinuz-6.12.48+deb13-amd64":    "kernel",
		"boot/initrd.img-6.12.48+deb13-amd64": "initrd",
		"boot/config-6.12.48+deb13-amd64":     "config",
		"usr/lib/systemd/systemd-networkd":    "elf",
		"var/lib/dpkg/status":                 status.String(),
		"etc/resolv.conf":                     "nameserver 10.255.255.53\n",
		"etc/fstab":                           "# UNCONFIGURED FSTAB FOR BASE SYSTEM\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigureRoot(t *testing.T) {
	recipe, err := recipeFor(debian13)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	rootfs := filepath.Join(tmp, "rootfs")
	fakeRoot(t, rootfs, recipe.Packages)
	// A symlink pointing out of the tree must not redirect the write.
	outside := filepath.Join(tmp, "host-hostname")
	if err := os.WriteFile(outside, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(rootfs, "etc/hostname")); err != nil {
		t.Fatal(err)
	}

	b := &builder{recipe: recipe, tmp: tmp, log: discardLogger(), rootUUID: "0a1b2c3d-0000-4000-8000-000000000001"}
	if err := b.configureRoot(); err != nil {
		t.Fatal(err)
	}

	read := func(p string) string {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if got := read(outside); got != "host\n" {
		t.Errorf("write through a symlink changed the outside file to %q", got)
	}
	if got := read(filepath.Join(rootfs, "etc/hostname")); got != "debian\n" {
		t.Errorf("hostname = %q", got)
	}
	if got := read(filepath.Join(rootfs, "etc/fstab")); !strings.Contains(got, "UUID=0a1b2c3d-0000-4000-8000-000000000001\t/\text4\t") {
		t.Errorf("fstab = %q", got)
	}
	if got := read(filepath.Join(rootfs, "etc/hosts")); !strings.Contains(got, "127.0.1.1\tdebian\n") {
		t.Errorf("hosts = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "etc/resolv.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("resolv.conf from the host is still there: %v", err)
	}
	got := b.info
	got.Packages, got.Recipe = nil, Recipe{}
	want := BuildInfo{
		Version: 1, Key: recipe.Key(), Disk: "disk.qcow2", DiskFormat: "qcow2",
		RootDevice: "/dev/vda1", RootUUID: "0a1b2c3d-0000-4000-8000-000000000001", Filesystem: "ext4", Bootloader: "none",
		Kernel: "boot/vmlinuz-6.12.48+deb13-amd64", Initrd: "boot/initrd.img-6.12.48+deb13-amd64",
		KernelVersion: "6.12.48+deb13-amd64", SystemdVersion: 257,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("build info (-want +got):\n%s", diff)
	}
}

func TestConfigureRootErrors(t *testing.T) {
	recipe, err := recipeFor(debian13)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(t *testing.T, rootfs string)
		wantErr string
	}{
		{name: "no networkd", edit: func(t *testing.T, rootfs string) {
			os.Remove(filepath.Join(rootfs, "usr/lib/systemd/systemd-networkd"))
		}, wantErr: "systemd-networkd is missing"},
		{name: "two kernels", edit: func(t *testing.T, rootfs string) {
			os.WriteFile(filepath.Join(rootfs, "boot/vmlinuz-6.1.0-amd64"), nil, 0o644)
		}, wantErr: "want one kernel in /boot, found 2"},
		{name: "no initrd", edit: func(t *testing.T, rootfs string) {
			os.Remove(filepath.Join(rootfs, "boot/initrd.img-6.12.48+deb13-amd64"))
		}, wantErr: "no initrd for kernel 6.12.48+deb13-amd64"},
		{name: "package missing", edit: func(t *testing.T, rootfs string) {
			fakeRoot(t, rootfs, []string{"systemd"})
		}, wantErr: "packages not installed: bash, coreutils"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			rootfs := filepath.Join(tmp, "rootfs")
			fakeRoot(t, rootfs, recipe.Packages)
			tt.edit(t, rootfs)
			b := &builder{recipe: recipe, tmp: tmp, log: discardLogger(), rootUUID: "x"}
			if err := b.configureRoot(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("configureRoot error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewUUID(t *testing.T) {
	a, err := newUUID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newUUID()
	if len(a) != 36 || a[14] != '4' || !strings.ContainsRune("89ab", rune(a[19])) || a == b {
		t.Errorf("newUUID = %q, %q", a, b)
	}
}
