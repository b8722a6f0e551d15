// Package testenv decides, for tests, whether what a test needs from the
// host is there: VM tests run only when selected, and a missing host tool
// skips a test on a developer's machine but fails it where the tools are
// required (CI sets DISTROTEST_REQUIRE_TOOLS=1 through scripts/test.sh), so
// a test can never pass in CI by skipping. (After Go's internal/testenv.)
//
// It is imported by _test.go files only.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// VMEnv is the variable that selects the VM tests (scripts/test.sh sets it).
const VMEnv = "DISTROTEST_VM_TESTS"

// RequireToolsEnv is the variable that turns missing-tool skips into
// failures.
const RequireToolsEnv = "DISTROTEST_REQUIRE_TOOLS"

// VMTests reports whether VM tests are selected.
func VMTests() bool { return os.Getenv(VMEnv) == "1" }

// NeedVM skips t unless VM tests are selected.
func NeedVM(t testing.TB) {
	t.Helper()
	if !VMTests() {
		t.Skipf("VM test: set %s=1 (CI does, through make test)", VMEnv)
	}
}

// Missing skips t with the reason, or fails it when tools are required (or
// VM tests are selected: a selected VM test never skips for a missing tool).
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireToolsEnv) == "1" || VMTests() {
		t.Fatalf(format+" (required here: %s=1 or %s=1)", append(args, RequireToolsEnv, VMEnv)...)
	}
	t.Skipf(format, args...)
}

// NeedTool makes t need each tool on PATH; hint says how to install them
// (e.g. "make setup installs qemu-utils").
func NeedTool(t testing.TB, hint string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			Missing(t, "%s is not installed (%s)", tool, hint)
		}
	}
}
