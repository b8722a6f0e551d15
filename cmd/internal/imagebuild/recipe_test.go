package imagebuild

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		name    string
		ref     string
		want    Request
		wantErr string
	}{
		{name: "debian 13", ref: "debian/13", want: Request{Distro: "debian", Release: "13", Arch: "x86_64-linux"}},
		{name: "unknown release parses", ref: "debian/99", want: Request{Distro: "debian", Release: "99", Arch: "x86_64-linux"}},
		{name: "no slash", ref: "debian", wantErr: `want DISTRO/RELEASE`},
		{name: "empty release", ref: "debian/", wantErr: `want DISTRO/RELEASE`},
		{name: "empty distro", ref: "/13", wantErr: `want DISTRO/RELEASE`},
		{name: "two slashes", ref: "debian/13/x", wantErr: `want DISTRO/RELEASE`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRef(tt.ref, "x86_64-linux")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRef(%q) error = %v, want containing %q", tt.ref, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "debian/13 (x86_64-linux)") {
					t.Errorf("error %q does not list the supported releases", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseRef(%q) (-want +got):\n%s", tt.ref, diff)
			}
		})
	}
}

func TestRecipeFor(t *testing.T) {
	tests := []struct {
		name      string
		req       Request
		wantSuite string
		wantErr   string
	}{
		{name: "debian 13", req: Request{Distro: "debian", Release: "13", Arch: "x86_64-linux"}, wantSuite: "trixie"},
		{name: "debian 12", req: Request{Distro: "debian", Release: "12", Arch: "x86_64-linux"}, wantSuite: "bookworm"},
		{name: "unknown release", req: Request{Distro: "debian", Release: "11", Arch: "x86_64-linux"},
			wantErr: "building debian/11: not supported (supported: debian/12 (x86_64-linux), debian/13 (x86_64-linux), shape/el (x86_64-linux), shape/fedora (x86_64-linux), shape/ubuntu (x86_64-linux))"},
		{name: "unknown distro", req: Request{Distro: "fedora", Release: "41", Arch: "x86_64-linux"},
			wantErr: "building fedora/41: not supported"},
		{name: "unknown arch", req: Request{Distro: "debian", Release: "13", Arch: "aarch64-linux"},
			wantErr: `building debian/13 for "aarch64-linux": architecture not supported (supported: x86_64-linux)`},
		{name: "empty arch", req: Request{Distro: "debian", Release: "13"},
			wantErr: `architecture not supported`},
		{name: "extra package", req: Request{Distro: "debian", Release: "13", Arch: "x86_64-linux", ExtraPackages: []string{"nix-bin"}}, wantSuite: "trixie"},
		{name: "bad extra package", req: Request{Distro: "debian", Release: "13", Arch: "x86_64-linux", ExtraPackages: []string{"nix-bin; rm"}},
			wantErr: `extra package "nix-bin; rm" is not a Debian package name`},
		{name: "bad mirror", req: Request{Distro: "debian", Release: "13", Arch: "x86_64-linux", Mirror: "deb.debian.org"},
			wantErr: `mirror "deb.debian.org": want an http://, https:// or file:// URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := recipeFor(tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("recipeFor(%v) error = %v, want containing %q", tt.req, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Suite != tt.wantSuite {
				t.Errorf("suite = %q, want %q", r.Suite, tt.wantSuite)
			}
			for _, p := range []string{"linux-image-amd64", "systemd", "udev", "initramfs-tools"} {
				if !strings.Contains(strings.Join(r.Packages, " "), p) {
					t.Errorf("packages %v lack %s", r.Packages, p)
				}
			}
		})
	}
}

func TestKey(t *testing.T) {
	key := func(t *testing.T, req Request) string {
		t.Helper()
		r, err := recipeFor(req)
		if err != nil {
			t.Fatal(err)
		}
		return r.Key()
	}
	base := Request{Distro: "debian", Release: "13", Arch: "x86_64-linux"}
	tests := []struct {
		name string
		req  Request
		same bool // same key as base
	}{
		{name: "identical", req: base, same: true},
		{name: "default mirror spelled out", req: Request{Distro: "debian", Release: "13", Arch: "x86_64-linux", Mirror: DefaultMirror + "/"}, same: true},
		{name: "other mirror", req: Request{Distro: "debian", Release: "13", Arch: "x86_64-linux", Mirror: "http://ftp.de.debian.org/debian"}},
		{name: "other release", req: Request{Distro: "debian", Release: "12", Arch: "x86_64-linux"}},
	}
	want := key(t, base)
	if len(want) != 64 {
		t.Fatalf("key %q is not a hex sha256", want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := key(t, tt.req)
			if (got == want) != tt.same {
				t.Errorf("key = %s, base key = %s, want same: %v", got, want, tt.same)
			}
		})
	}

	t.Run("extra packages change the key, in any order", func(t *testing.T) {
		r, _ := recipeFor(base)
		a, b := base, base
		a.ExtraPackages = []string{"nix-bin", "jq"}
		b.ExtraPackages = []string{"jq", "nix-bin", "jq"}
		ra, err := recipeFor(a)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := recipeFor(b)
		if ra.Key() == r.Key() || ra.Key() != rb.Key() {
			t.Errorf("keys: base %s, +nix-bin,jq %s, +jq,nix-bin,jq %s", r.Key()[:12], ra.Key()[:12], rb.Key()[:12])
		}
		if !slices.Contains(ra.Packages, "nix-bin") {
			t.Errorf("packages %v lack nix-bin", ra.Packages)
		}
	})

	t.Run("recipe fields change the key", func(t *testing.T) {
		r, _ := recipeFor(base)
		edits := map[string]func(*Recipe){
			"recipe version": func(r *Recipe) { r.RecipeVersion++ },
			"packages":       func(r *Recipe) { r.Packages = append(r.Packages, "vim") },
			"suite":          func(r *Recipe) { r.Suite = "sid" },
			"layout":         func(r *Recipe) { r.Layout.Partitions[0].Last++ },
		}
		for name, edit := range edits {
			c, _ := recipeFor(base)
			edit(&c)
			if c.Key() == r.Key() {
				t.Errorf("changing the %s keeps the key", name)
			}
		}
	})
}

func TestName(t *testing.T) {
	r, err := recipeFor(Request{Distro: "debian", Release: "13", Arch: "x86_64-linux"})
	if err != nil {
		t.Fatal(err)
	}
	want := "debian-13-x86_64-linux-" + r.Key()[:12]
	if got := r.Name(); got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
}

func TestReleases(t *testing.T) {
	got := Releases()
	want := []Release{
		{Distro: "debian", Release: "12", Suite: "bookworm", Arches: []string{"x86_64-linux"}},
		{Distro: "debian", Release: "13", Suite: "trixie", Arches: []string{"x86_64-linux"}},
		{Distro: "shape", Release: "el", Suite: "trixie", Arches: []string{"x86_64-linux"}},
		{Distro: "shape", Release: "fedora", Suite: "trixie", Arches: []string{"x86_64-linux"}},
		{Distro: "shape", Release: "ubuntu", Suite: "trixie", Arches: []string{"x86_64-linux"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Releases() (-want +got):\n%s", diff)
	}
	got[0].Arches[0] = "changed"
	if Releases()[0].Arches[0] != "x86_64-linux" {
		t.Error("Releases() exposes the package's table")
	}
	for _, r := range got {
		if _, err := recipeFor(Request{Distro: r.Distro, Release: r.Release, Arch: "x86_64-linux"}); err != nil {
			t.Errorf("listed release %s does not build: %v", r.Ref(), err)
		}
	}
}

func TestMmdebstrapArgs(t *testing.T) {
	r, err := recipeFor(Request{Distro: "debian", Release: "13", Arch: "x86_64-linux"})
	if err != nil {
		t.Fatal(err)
	}
	got := mmdebstrapArgs(r, "/tmp/x/rootfs")
	want := []string{
		"--mode=root", "--variant=minbase", "--arch=amd64",
		"--include=bash,coreutils,dbus,e2fsprogs,fdisk,initramfs-tools,iproute2,iputils-ping,kmod,linux-image-amd64,netcat-openbsd,procps,systemd,systemd-sysv,udev,util-linux",
		`--aptopt=Acquire::Languages "none"`,
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-include=/usr/share/doc/*/copyright",
		"--dpkgopt=path-exclude=/usr/share/info/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"trixie", "/tmp/x/rootfs", "http://deb.debian.org/debian",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mmdebstrapArgs (-want +got):\n%s", diff)
	}
}
