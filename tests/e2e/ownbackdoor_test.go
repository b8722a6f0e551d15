package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distrotest/distrotest/tests/testbin"
)

// TestOwnBackdoor: a Debian 13 image that brings its own NixOS-style
// backdoor (cmd/internal/testimage nixos-backdoor: test-instrumentation.nix's
// backdoor.service) is found by `run --image` and driven as it is, on hvc0,
// without patching; its outputs come back byte-exact or fail their checks.
func TestOwnBackdoor(t *testing.T) {
	binaries(t)
	t.Parallel()
	ctx := withTimeout(t, 25*time.Minute)
	base := mustGen(t, ctx, "", "image", "build", "debian/13")
	img := filepath.Join(t.TempDir(), "nixos-style.qcow2")
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/internal/testimage", "nixos-backdoor", base, img)
	cmd.Dir = testbin.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testimage nixos-backdoor: %v\n%s", err, out)
	}
	// The decision, without a VM: found with and without --no-instrument,
	// the plain image has none (it is patched).
	for _, noInstrument := range []bool{false, true} {
		args := []string{"image", "patch", img, "-o", filepath.Join(t.TempDir(), "prepared")}
		if noInstrument {
			args = append(args, "--no-instrument")
		}
		dir := mustGen(t, ctx, "", args...)
		data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Strategy    string `json:"strategy"`
			Backdoor    string `json:"backdoor"`
			OwnBackdoor string `json:"own_backdoor"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Strategy != "own-backdoor" || m.Backdoor != "hvc0" || m.OwnBackdoor != "/etc/systemd/system/backdoor.service" {
			t.Errorf("image patch (no-instrument %v): manifest %s", noInstrument, data)
		}
	}
	res := run(t, ctx, "--image", img, script(t, "own_backdoor.py"))
	if res.exit != 0 {
		t.Fatalf("own_backdoor.py failed (exit %d)", res.exit)
	}
	if want := "has its own NixOS-style backdoor (/etc/systemd/system/backdoor.service, which runs /usr/local/lib/nixos-test/backdoor-start, shell on hvc0): driving it as it is, without patching"; !strings.Contains(res.output, want) {
		t.Errorf("the run does not say %q", want)
	}
}
