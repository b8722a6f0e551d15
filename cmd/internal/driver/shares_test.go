package driver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/google/go-cmp/cmp"
)

func TestShareTransport(t *testing.T) {
	shares := MachineConfig{Name: "m", NixStore: "/nix/store"}
	with := func(transport string) MachineConfig { m := shares; m.ShareTransport = transport; return m }
	image := func(transport string) *manifest.Manifest { return &manifest.Manifest{ShareTransport: transport} }
	tests := []struct {
		name      string
		override  string
		mc        MachineConfig
		man       *manifest.Manifest
		virtiofsd bool
		want      string
		wantWhy   string
		wantErr   string
	}{
		{name: "nothing of the test's shared: /tmp/shared and /tmp/xchg are", mc: MachineConfig{Name: "m"}, virtiofsd: true, want: DefaultShareTransport},
		{name: "default with virtiofsd", mc: shares, man: image(""), virtiofsd: true, want: DefaultShareTransport, wantWhy: "the default"},
		{name: "default virtiofs falls back to 9p", mc: shares, man: image(""), want: "9p", wantWhy: "no virtiofsd found"},
		{name: "image says 9p", mc: shares, man: image("9p"), virtiofsd: true, want: "9p", wantWhy: "manifest"},
		{name: "image says virtiofs, none found", mc: shares, man: image("virtiofs"), wantErr: "virtiofs (from the image's manifest) needs virtiofsd"},
		{name: "config beats image", mc: with("9p"), man: image("virtiofs"), want: "9p", wantWhy: "config"},
		{name: "config asks virtiofs, none found", mc: with("virtiofs"), wantErr: "from share_transport in the config) needs virtiofsd"},
		{name: "override beats all", override: "virtiofs", mc: with("9p"), man: image("9p"), virtiofsd: true, want: "virtiofs", wantWhy: "--share-transport"},
		{name: "override 9p needs no virtiofsd", override: "9p", mc: with("virtiofs"), man: image("virtiofs"), want: "9p"},
		{name: "shares alone count", mc: MachineConfig{SharedDirs: map[string]SharedDir{"a": {}}}, override: "9p", want: "9p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why, err := shareTransport(tt.override, tt.mc, tt.man, tt.virtiofsd)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || !strings.Contains(why, tt.wantWhy) {
				t.Errorf("= %q (%s), want %q (%s)", got, why, tt.want, tt.wantWhy)
			}
		})
	}
}

func TestCheckSources(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	file := filepath.Join(dir, "file")
	locked := filepath.Join(dir, "locked")
	store := filepath.Join(dir, "store")
	for _, d := range []string{good, locked, filepath.Join(store, "abc-info")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{file, filepath.Join(store, "abc-info", "registration")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	root := os.Geteuid() == 0

	machine := func(name string, dirs map[string]string) MachineConfig {
		m := MachineConfig{Name: name, SharedDirs: map[string]SharedDir{}}
		for tag, src := range dirs {
			m.SharedDirs[tag] = SharedDir{Source: src, Target: "/mnt/" + tag}
		}
		return m
	}
	tests := []struct {
		name     string
		machines []MachineConfig
		want     []string // one line per problem
		asRoot   []string // when it differs for root, who reads everything
	}{
		{name: "good", machines: []MachineConfig{machine("a", map[string]string{"data": good})}},
		{name: "missing", machines: []MachineConfig{machine("a", map[string]string{"data": filepath.Join(dir, "nope")})},
			want: []string{"machine a: shared_dirs data: source " + dir + "/nope does not exist"}},
		{name: "a file", machines: []MachineConfig{machine("a", map[string]string{"data": file})},
			want: []string{"machine a: shared_dirs data: source " + file + " is not a directory"}},
		{name: "unreadable", machines: []MachineConfig{machine("b", map[string]string{"secret": locked})},
			want:   []string{"machine b: shared_dirs secret: source " + locked + " is not readable and searchable by this user: permission denied"},
			asRoot: []string{}},
		{name: "every problem, sorted by share", machines: []MachineConfig{
			machine("a", map[string]string{"z": file, "b": filepath.Join(dir, "nope"), "ok": good}),
			{Name: "c", NixStore: filepath.Join(dir, "nostore")},
		}, want: []string{
			"machine a: shared_dirs b: source " + dir + "/nope does not exist",
			"machine a: shared_dirs z: source " + file + " is not a directory",
			"machine c: nix_store: source " + dir + "/nostore does not exist",
		}},
		{name: "registration in the store", machines: []MachineConfig{{Name: "a", NixStore: store, NixRegistration: filepath.Join(store, "abc-info", "registration")}}},
		{name: "registration outside the store", machines: []MachineConfig{{Name: "a", NixStore: store, NixRegistration: file}},
			want: []string{"machine a: nix_registration " + file + " is not inside nix_store " + store + " (it travels with the store share)"}},
		{name: "registration missing", machines: []MachineConfig{{Name: "a", NixStore: store, NixRegistration: filepath.Join(store, "x")}},
			want: []string{"machine a: nix_registration: stat " + store + "/x: no such file or directory"}},
		{name: "registration is a directory", machines: []MachineConfig{{Name: "a", NixStore: store, NixRegistration: filepath.Join(store, "abc-info")}},
			want: []string{"machine a: nix_registration " + store + "/abc-info is not a file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if root && tt.asRoot != nil {
				t.Log("running as root, who may read any directory: expecting no error")
				want = tt.asRoot
			}
			err := checkSources(&Config{Machines: tt.machines})
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if d := cmp.Diff(want, got, cmpEmpty); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.FilterValues(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Comparer(func(a, b []string) bool { return true }))

func TestParseShareReadOnly(t *testing.T) {
	tests := []struct {
		in      string
		tag     string
		want    SharedDir
		wantErr bool
	}{
		{in: "data=./d:/mnt/data", tag: "data", want: SharedDir{Source: "./d", Target: "/mnt/data"}},
		{in: "data=./d:/mnt/data:ro", tag: "data", want: SharedDir{Source: "./d", Target: "/mnt/data", ReadOnly: true}},
		{in: "data=/a:b:/mnt/x:ro", tag: "data", want: SharedDir{Source: "/a:b", Target: "/mnt/x", ReadOnly: true}},
		// a target "ro", which Validate rejects as not absolute
		{in: "data=./d:ro", tag: "data", want: SharedDir{Source: "./d", Target: "ro"}},
		{in: "data=./d", wantErr: true},
	}
	for _, tt := range tests {
		tag, d, err := ParseShare(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseShare(%q) error = %v", tt.in, err)
			continue
		}
		if err == nil && (tag != tt.tag || d != tt.want) {
			t.Errorf("ParseShare(%q) = %q, %+v; want %q, %+v", tt.in, tag, d, tt.tag, tt.want)
		}
	}
}

func TestFindVirtiofsd(t *testing.T) {
	notFound := func(string) (string, error) { return "", errors.New("not found") }
	found := func(p string) func(string) (string, error) {
		return func(string) (string, error) { return p, nil }
	}
	if got, err := FindVirtiofsd("", found("/x/bin/virtiofsd")); err != nil || got != "/x/bin/virtiofsd" {
		t.Errorf("from PATH: %q, %v", got, err)
	}
	if _, err := FindVirtiofsd("/no/such/virtiofsd", notFound); err == nil || !strings.Contains(err.Error(), "/no/such/virtiofsd") {
		t.Errorf("explicit missing: %v", err)
	}
	got, err := FindVirtiofsd("", notFound)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("without PATH: %q (the first existing of the fixed paths, or none)", got)
}
