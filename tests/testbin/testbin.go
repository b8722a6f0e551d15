// Package testbin is what the end-to-end test packages (tests/e2e,
// tests/compat) share: the repository's root, the distrotest binaries built
// once per test process, the gate that keeps VM tests out of plain
// `go test`, and the check that a run left no QEMU, virtiofsd or temporary
// file behind. It has no tests of its own and boots nothing.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distrotest/distrotest/internal/testenv"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// RequireVM skips the test unless VM tests are selected
// (DISTROTEST_VM_TESTS=1, which CI sets through `make test`).
func RequireVM(t *testing.T) {
	t.Helper()
	testenv.NeedVM(t)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds distrotest and distrotest-gen once per test process and
// returns the directory that holds them (Main removes it).
func Binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "distrotest-test-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/distrotest", "./cmd/distrotest-gen")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Main runs the tests and removes the binaries Binaries built; call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// AssertNothingLeft fails the test when a QEMU or virtiofsd process whose
// command line names tmp or one of also is still alive after a grace of ten
// seconds, or when tmp still holds files.
func AssertNothingLeft(t *testing.T, tmp string, also ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-af", "qemu-system|virtiofsd").Output()
		var ours []string
		for _, l := range strings.Split(string(out), "\n") {
			for _, s := range append([]string{tmp}, also...) {
				if strings.Contains(l, s) {
					ours = append(ours, l)
					break
				}
			}
		}
		if len(ours) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("QEMU or virtiofsd still running after the run:\n%s", strings.Join(ours, "\n"))
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("temporary files left in TMPDIR: %v", names)
	}
}
