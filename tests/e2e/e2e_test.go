// Package e2e runs the distrotest binaries end to end against real VMs:
// Debian images built from packages, patched, booted under QEMU, driven by
// the Python test scripts in tests/vm.
//
// These tests boot VMs and take minutes under TCG. They run only with
// DISTROTEST_VM_TESTS=1 (CI sets it through `make test`); otherwise each test
// says it was skipped and why.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distrotest/distrotest/tests/testbin"
)

// binaries skips unless VM tests are selected, then builds distrotest and
// distrotest-gen once per test process.
func binaries(t *testing.T) string {
	t.Helper()
	testbin.RequireVM(t)
	return testbin.Binaries(t)
}

func TestMain(m *testing.M) { testbin.Main(m) }

type result struct {
	exit   int
	output string
	outDir string
	tmp    string
}

// run runs `distrotest run` with args in a private TMPDIR and checks that no
// QEMU process or temporary file outlives it.
func run(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	return runEnv(t, ctx, nil, args...)
}

// runEnv is run with env added to the environment of distrotest (and so of
// the test script).
func runEnv(t *testing.T, ctx context.Context, env []string, args ...string) result {
	t.Helper()
	bin := binaries(t)
	tmp := t.TempDir()
	outDir := filepath.Join(t.TempDir(), "out")
	full := append([]string{"run", "--out-dir", outDir}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "distrotest"), full...)
	cmd.Dir = testbin.RepoRoot()
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp, "DT_HOST_DIR="+hostDir(t)), env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	res := result{output: buf.String(), outDir: outDir, tmp: tmp}
	if ee, ok := err.(*exec.ExitError); ok {
		res.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running distrotest: %v\n%s", err, res.output)
	}
	t.Logf("distrotest %s → exit %d\n%s", strings.Join(full, " "), res.exit, res.output)
	testbin.AssertNothingLeft(t, tmp, hostDir(t))
	return res
}

var hostDirs sync.Map

// hostDir is the host side of the "data" share of a test.
func hostDir(t *testing.T) string {
	if d, ok := hostDirs.Load(t.Name()); ok {
		return d.(string)
	}
	d := t.TempDir()
	hostDirs.Store(t.Name(), d)
	return d
}

func script(t *testing.T, name string) string {
	return filepath.Join(testbin.RepoRoot(), "tests", "vm", name)
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestImageBoots is the image pipeline proof: Debian 12 and 13 are built from
// packages, patched, booted; the backdoor answers with output and exit status,
// and the Nix store and a share are mounted at boot.
func TestImageBoots(t *testing.T) {
	for _, release := range []string{"debian/12", "debian/13"} {
		t.Run(strings.ReplaceAll(release, "/", "-"), func(t *testing.T) {
			t.Parallel()
			dir := hostDir(t)
			if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from the host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			res := run(t, withTimeout(t, 20*time.Minute), "--image", release,
				"--nix-store", "/nix/store", "--share", "data="+dir+":/mnt/data", script(t, "image.py"))
			if res.exit != 0 {
				t.Fatalf("image.py failed on %s (exit %d)", release, res.exit)
			}
		})
	}
}

// TestAPI runs tests/vm/api.py, which uses every group of the test-script API.
func TestAPI(t *testing.T) {
	t.Parallel()
	junit := filepath.Join(t.TempDir(), "junit.xml")
	res := run(t, withTimeout(t, 20*time.Minute), "--image", "debian/13", "--junit", junit,
		"--nix-store", "/nix/store", "--share", "data="+hostDir(t)+":/mnt/data", script(t, "api.py"))
	if res.exit != 0 {
		t.Fatalf("api.py failed (exit %d)", res.exit)
	}
	// The screenshot is a valid PNG in the out dir.
	f, err := os.Open(filepath.Join(res.outDir, "shot.png"))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 320 || b.Dy() < 200 {
		t.Errorf("screenshot is %v, want a VGA-sized picture", b)
	}
	// copy_from_machine put the guest's files in the out dir.
	if b, err := os.ReadFile(filepath.Join(res.outDir, "outdir", "g.txt")); err != nil || string(b) != "guest\n" {
		t.Errorf("copy_from_machine dir: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(res.outDir, "copies", "copied.txt")); err != nil || string(b) != "host content\n" {
		t.Errorf("copy_from_vm file: %q, %v", b, err)
	}
	// Each machine has a console log.
	if b, err := os.ReadFile(filepath.Join(res.outDir, "machine", "console.log")); err != nil || !bytes.Contains(b, []byte("console-marker-4711")) {
		t.Errorf("console.log lacks the marker: %v", err)
	}
	// One JUnit test case per subtest.
	var suites struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatalf("junit: %v", err)
	}
	var names []string
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			names = append(names, c.Name)
			if c.Failure != nil {
				t.Errorf("junit case %q failed", c.Name)
			}
		}
	}
	for _, want := range []string{"commands", "units", "copies both ways", "reboot keeps state", "crash then start"} {
		if !contains(names, want) {
			t.Errorf("junit lacks test case %q (has %v)", want, names)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestFailingAssertion: a failing succeed() makes the run exit non-zero and
// the report points at the script line.
func TestFailingAssertion(t *testing.T) {
	t.Parallel()
	res := run(t, withTimeout(t, 15*time.Minute), "--image", "debian/13", script(t, "failing.py"))
	if res.exit == 0 {
		t.Fatal("a failing script exited 0")
	}
	if !strings.Contains(res.output, "failing.py\", line 6") && !strings.Contains(res.output, "failing.py:6") {
		t.Errorf("output does not point at failing.py line 6")
	}
	if !strings.Contains(res.output, "about to fail") {
		t.Errorf("output does not show the failed command's output")
	}
}

// TestSyntaxError: reported with its line before any machine starts.
func TestSyntaxError(t *testing.T) {
	t.Parallel()
	res := run(t, withTimeout(t, 5*time.Minute), "--image", "debian/13", script(t, "syntax.py"))
	if res.exit == 0 {
		t.Fatal("a script with a syntax error exited 0")
	}
	if !strings.Contains(res.output, "line 4") && !strings.Contains(res.output, "syntax.py:4") {
		t.Errorf("output does not name line 4")
	}
	if _, err := os.Stat(filepath.Join(res.outDir, "machine", "console.log")); err == nil {
		t.Errorf("a machine was started despite the syntax error")
	}
}

// TestGlobalTimeout: a hanging script is ended by the global timeout, and
// nothing is left behind (checked by run).
func TestGlobalTimeout(t *testing.T) {
	t.Parallel()
	start := time.Now()
	res := run(t, withTimeout(t, 10*time.Minute), "--image", "debian/13", "--global-timeout", "40s",
		"--share-transport", "virtiofs", "--nix-store", "/nix/store", "--share", "data="+hostDir(t)+":/mnt/data", script(t, "hang.py"))
	if res.exit == 0 {
		t.Fatal("a timed-out run exited 0")
	}
	if !strings.Contains(strings.ToLower(res.output), "global timeout") {
		t.Errorf("output does not mention the global timeout")
	}
	if d := time.Since(start); d > 5*time.Minute {
		t.Errorf("run took %v", d)
	}
}

// TestSIGTERM: SIGTERM during a run stops it and leaves no QEMU or temp file.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	bin := binaries(t)
	tmp := t.TempDir()
	outDir := filepath.Join(t.TempDir(), "out")
	// The store and a share over virtiofs: no virtiofsd may outlive it either.
	cmd := exec.Command(filepath.Join(bin, "distrotest"), "run", "--out-dir", outDir, "--image", "debian/13",
		"--share-transport", "virtiofs", "--nix-store", "/nix/store", "--share", "data="+hostDir(t)+":/mnt/data", script(t, "hang.py"))
	cmd.Dir = testbin.RepoRoot()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until QEMU runs (the console log appears), then terminate.
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(outDir, "machine", "console.log")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("machine never started:\n%s", buf.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("terminated run exited 0")
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("distrotest did not exit within 60 s of SIGTERM:\n%s", buf.String())
	}
	t.Logf("output:\n%s", buf.String())
	if !strings.Contains(buf.String(), "over virtiofs") {
		t.Errorf("the run did not use virtiofs")
	}
	testbin.AssertNothingLeft(t, tmp, hostDir(t))
}

// prepared returns the prepared Debian 13 image directory (built and
// patched through the cache).
func prepared(t *testing.T) string {
	t.Helper()
	bin := binaries(t)
	out, err := exec.Command(filepath.Join(bin, "distrotest-gen"), "image", "prepare", "debian/13").Output()
	if err != nil {
		t.Fatalf("image prepare: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestVLAN boots four Debian machines on two VLANs from one prepared image
// and runs tests/vm/vlan.py through a driver.json.
func TestVLAN(t *testing.T) {
	t.Parallel()
	img := prepared(t)
	type machine struct {
		Name       string `json:"name"`
		Image      string `json:"image"`
		MemorySize int    `json:"memory_size"`
		CPUs       int    `json:"cpus"`
		VLANs      []int  `json:"vlans"`
	}
	cfg := map[string]any{
		"version": 1, "name": "vlan", "test_script": script(t, "vlan.py"), "global_timeout": 1800,
		"vlans": []int{1, 2},
		"machines": []machine{
			{"a", img, 512, 1, []int{1}}, {"b", img, 512, 1, []int{1, 2}},
			{"c", img, 512, 1, []int{1}}, {"d", img, 512, 1, []int{2}},
		},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "driver.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	res := run(t, withTimeout(t, 30*time.Minute), "--config", p)
	if res.exit != 0 {
		t.Fatalf("vlan.py failed (exit %d)", res.exit)
	}
}
