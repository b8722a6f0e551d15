package nixgen

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/cmd/internal/distro"
	"github.com/distrotest/distrotest/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("output differs from %s (-want +got):\n%s", file, diff)
	}
}

func load(t *testing.T, files ...string) *distro.Catalog {
	t.Helper()
	cat, err := distro.LoadFiles(files...)
	if err != nil {
		var de *distro.DiagnosticsError
		if errors.As(err, &de) {
			var b bytes.Buffer
			de.Write(&b, 0, false)
			t.Fatalf("loading %v:\n%s", files, b.String())
		}
		t.Fatal(err)
	}
	return cat
}

func testCases(t *testing.T) []string {
	t.Helper()
	cases, err := filepath.Glob("testdata/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no test cases in testdata/")
	}
	return cases
}

// TestGolden renders testdata/<case>.hcl into <case>.nix.golden.
func TestGolden(t *testing.T) {
	for _, file := range testCases(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".hcl")
		t.Run(name, func(t *testing.T) {
			cat := load(t, file)
			got, err := Distro(cat.Distros[0])
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".nix.golden", got)
		})
	}
}

// TestIndexGolden renders default.nix for all test cases together.
func TestIndexGolden(t *testing.T) {
	got, err := Index(load(t, testCases(t)...))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "default.nix.golden", got)
}

// TestDeterministic loads and generates twice (gohcl decodes attributes in
// map order, and Go randomises map iteration) and expects identical bytes,
// both from Files and on disk.
func TestDeterministic(t *testing.T) {
	gen := func() map[string][]byte {
		files, err := Files(load(t, testCases(t)...))
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	first := gen()
	for range 5 {
		if diff := cmp.Diff(first, gen()); diff != "" {
			t.Fatalf("second generation differs (-first +second):\n%s", diff)
		}
	}
	dir := t.TempDir()
	if _, err := Write(dir, first); err != nil {
		t.Fatal(err)
	}
	before := readDir(t, dir)
	changes, err := Write(dir, gen())
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("writing the same files again changed %v", changes)
	}
	if diff := cmp.Diff(before, readDir(t, dir)); diff != "" {
		t.Errorf("directory changed (-before +after):\n%s", diff)
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

func TestWriteAndDiff(t *testing.T) {
	dir := t.TempDir()
	want := map[string][]byte{
		"a.nix":       []byte(Header("distros/a.hcl") + "{ }\n"),
		"default.nix": []byte(Header("distros/*.hcl") + "{ a = import ./a.nix; }\n"),
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("default.nix", Header("distros/*.hcl")+"{ old = true; }\n")
	write("old.nix", Header("distros/old.hcl")+"{ }\n")
	write("hand-written.nix", "# mine\n{ }\n")
	write("notes.txt", Header("distros/x.hcl"))
	write("empty.nix", "")

	changes, err := Diff(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges := []Change{{"a.nix", Missing}, {"default.nix", Stale}, {"old.nix", Orphaned}}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Fatalf("Diff mismatch (-want +got):\n%s", diff)
	}
	changes, err = Write(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Errorf("Write changes mismatch (-want +got):\n%s", diff)
	}
	wantDir := map[string]string{
		"a.nix":            string(want["a.nix"]),
		"default.nix":      string(want["default.nix"]),
		"hand-written.nix": "# mine\n{ }\n",
		"notes.txt":        Header("distros/x.hcl"),
		"empty.nix":        "",
	}
	if diff := cmp.Diff(wantDir, readDir(t, dir)); diff != "" {
		t.Errorf("directory after Write mismatch (-want +got):\n%s", diff)
	}
	if changes, err := Diff(dir, want); err != nil || len(changes) != 0 {
		t.Errorf("Diff after Write = %v, %v; want no changes", changes, err)
	}
	info, err := os.Stat(filepath.Join(dir, "a.nix"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o644 {
		t.Errorf("a.nix mode = %v, want 0644", info.Mode().Perm())
	}
}

func TestWriteRefusesHandWrittenFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "debian.nix")
	if err := os.WriteFile(target, []byte("{ mine = true; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Write(dir, map[string][]byte{"debian.nix": []byte(Header("distros/debian.hcl") + "{ }\n")})
	if err == nil || !strings.Contains(err.Error(), "not generated by distrotest-gen") {
		t.Fatalf("Write error = %v, want a refusal", err)
	}
	if data, _ := os.ReadFile(target); string(data) != "{ mine = true; }\n" {
		t.Errorf("hand-written file was changed to %q", data)
	}
}

func TestWriteCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gen")
	files := map[string][]byte{"default.nix": []byte(Header("distros/*.hcl") + "{ }\n")}
	if _, err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	if changes, err := Diff(dir, files); err != nil || len(changes) != 0 {
		t.Errorf("Diff = %v, %v; want no changes", changes, err)
	}
}

func TestIsGenerated(t *testing.T) {
	tests := []struct {
		name string
		data string
		want bool
	}{
		{"header", Header("distros/debian.hcl") + "{ }\n", true},
		{"header only, no newline", strings.TrimSuffix(Header("distros/*.hcl"), "\n"), true},
		{"other generator", "# Code generated by other-tool from x. DO NOT EDIT.\n", false},
		{"header on second line", "\n" + Header("distros/debian.hcl"), false},
		{"empty", "", false},
		{"hand-written", "# mine\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsGenerated([]byte(tt.data)); got != tt.want {
				t.Errorf("IsGenerated(%q) = %v, want %v", tt.data, got, tt.want)
			}
		})
	}
}

// TestNixEvaluates checks that the generated files parse and evaluate with
// the real Nix, and that the values come out as written.
func TestNixEvaluates(t *testing.T) {
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		testenv.Missing(t, "nix-instantiate not on PATH (install nix-bin): cannot evaluate generated files")
	}
	files, err := Files(load(t, testCases(t)...))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nix, "--eval", "--strict", "--json", "--expr",
		`let g = import `+filepath.Join(dir, "default.nix")+`; in [
			g.escaping.releases."1.0".kernel
			g.escaping.releases."1.0".images.x86_64-linux.url
			g.debian.releases."13".images.aarch64-linux.hash
			g.overrides.releases."1".rootPartition
		]`).CombinedOutput()
	if err != nil {
		t.Fatalf("nix-instantiate: %v\n%s", err, out)
	}
	want := `["boot/vmlinuz-${version}-\"quoted\"-\\*","https://example.org/images/${name}/a\\b?q=\"x\"&r=''",` +
		`"sha512-hUPXlfL95jDrZsSS8kWowdoZ3txjbgqOez0PlZIOGgWqkR7y2C0XfUHMU87V/MvSo5RdB/peFQGJFMTYZLsH7Q==",null]`
	if diff := cmp.Diff(want, strings.TrimSpace(string(out))); diff != "" {
		t.Errorf("evaluated values mismatch (-want +got):\n%s", diff)
	}
}

// TestRepoGenUpToDate is a repository invariant: gen/ is exactly what
// distros/ generates.
func TestRepoGenUpToDate(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	cat, err := distro.LoadDir(filepath.Join(root, "distros"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files(cat)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := Diff(filepath.Join(root, "gen"), files)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		t.Errorf("gen/%s is %s", c.Name, c.Kind)
	}
	if len(changes) > 0 {
		t.Log(`run "go run ./cmd/distrotest-gen gen" and commit gen/`)
	}
}
