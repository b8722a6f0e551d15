package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nothing", []string{"run"}, "give --config driver.json, or --image IMAGE and a script"},
		{"both", []string{"run", "--config", "d.json", "--image", "x", "t.py"}, "not both"},
		{"script with config", []string{"run", "--config", "d.json", "t.py"}, `unexpected argument "t.py"`},
		{"no script", []string{"run", "--image", "x"}, "exactly one script"},
		{"ad hoc flag with config", []string{"run", "--config", "d.json", "--memory", "2048"}, "--memory goes with --image"},
		{"bad accel", []string{"run", "--config", "d.json", "--accel", "hvf"}, `--accel "hvf"`},
		{"bad timeout", []string{"run", "--config", "d.json", "--global-timeout", "soon"}, "want a positive duration"},
		{"bad log level", []string{"--log-level", "loud", "version"}, `--log-level "loud"`},
		{"missing config", []string{"run", "--config", "/nonexistent/driver.json"}, "reading driver config"},
		{"bad image", []string{"run", "--image", "not an image", "t.py"}, "not a prepared image directory"},
		{"bad share transport", []string{"run", "--config", "d.json", "--share-transport", "nfs"}, `--share-transport "nfs": want 9p or virtiofs`},
		{"empty share transport", []string{"run", "--config", "d.json", "--share-transport", ""}, "--share-transport: want 9p or virtiofs"},
		{"missing virtiofsd", []string{"run", "--config", "d.json", "--virtiofsd", "/nonexistent/virtiofsd"}, "virtiofsd /nonexistent/virtiofsd"},
		{"no-instrument with config", []string{"run", "--config", "d.json", "--no-instrument"}, "--no-instrument goes with --image"},
		{"no-instrument with a release", []string{"run", "--image", "debian/13", "--no-instrument", "t.py"}, "--no-instrument goes with --image FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newRootCommand()
			cmd.SetArgs(tt.args)
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestQEMUOpts(t *testing.T) {
	tests := []struct {
		env  string
		want []string
	}{
		{"", nil},
		{"  ", nil},
		{"-smbios type=1,serial=abc", []string{"-smbios", "type=1,serial=abc"}},
		{" -m 2048\t-cpu\nmax ", []string{"-m", "2048", "-cpu", "max"}},
		// as an unquoted shell expansion: quotes stay
		{`-name "a b"`, []string{"-name", `"a`, `b"`}},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, qemuOpts(tt.env)); d != "" {
			t.Errorf("qemuOpts(%q) (-want +got):\n%s", tt.env, d)
		}
	}
}

func TestSecondsOrDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3600", time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"0", 0, false},
		{"-5s", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		var d secondsOrDuration
		err := d.Set(tt.in)
		if (err == nil) != tt.ok || time.Duration(d) != tt.want {
			t.Errorf("Set(%q) = %v, %v; want %v, ok %v", tt.in, time.Duration(d), err, tt.want, tt.ok)
		}
	}
}

func TestVersion(t *testing.T) {
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetArgs([]string{"version"})
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "distrotest ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("version output %q", out.String())
	}
}

// TestDependencies keeps the runner's closure small: it must not link the
// image tooling (go-diskfs, go-containerregistry, HCL).
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/diskfs/go-diskfs", "github.com/google/go-containerregistry", "github.com/hashicorp/hcl"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("distrotest links %s", dep)
			}
		}
	}
}

// TestNixpkgsFlagSpellings checks that nixpkgs' nixos-test-driver spellings
// parse into the same settings as ours.
func TestNixpkgsFlagSpellings(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		outDir      string
		junit       string
		keep        bool
		interactive bool
	}{
		{"ours", []string{"--config", "d.json", "--out-dir", "o", "--junit", "j.xml", "--keep-vm-state", "--interactive"}, "o", "j.xml", true, true},
		{"nixpkgs long", []string{"--config", "d.json", "--output_directory", "o", "--junit-xml", "j.xml", "--keep-machine-state", "--interactive"}, "o", "j.xml", true, true},
		{"nixpkgs short", []string{"-c", "d.json", "-o", "o", "-K", "-I"}, "o", "", true, true},
		{"no-interactive after -I", []string{"--config", "d.json", "-I", "--no-interactive"}, "", "", false, false},
		{"-I after no-interactive", []string{"--config", "d.json", "--no-interactive", "-I"}, "", "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newRunCommand(&globalOptions{})
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			fl := cmd.Flags()
			out, _ := fl.GetString("out-dir")
			junit, _ := fl.GetString("junit")
			keep, _ := fl.GetBool("keep-vm-state")
			inter, _ := fl.GetBool("interactive")
			config, _ := fl.GetString("config")
			if out != tt.outDir || junit != tt.junit || keep != tt.keep || inter != tt.interactive || config != "d.json" {
				t.Errorf("got config=%q out-dir=%q junit=%q keep=%v interactive=%v", config, out, junit, keep, inter)
			}
		})
	}
}

func TestParseLogLevel(t *testing.T) {
	for in, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "warning": "WARN", "WARNING": "WARN", "warn": "WARN", "error": "ERROR"} {
		got, err := parseLogLevel(in)
		if err != nil || got.String() != want {
			t.Errorf("parseLogLevel(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := parseLogLevel("loud"); err == nil {
		t.Error("parseLogLevel accepted loud")
	}
}
