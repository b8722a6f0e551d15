package machine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// nixImage returns the prepared image with Nix in it that the registration
// test boots (DISTROTEST_TEST_NIX_IMAGE: `distrotest-gen image prepare
// debian/13 --packages nix-bin`). Selected VM tests fail without it.
func nixImage(t *testing.T) string {
	t.Helper()
	vmImage(t)
	dir := os.Getenv("DISTROTEST_TEST_NIX_IMAGE")
	if dir == "" {
		t.Fatal("DISTROTEST_VM_TESTS=1 but DISTROTEST_TEST_NIX_IMAGE is not set: point it at a prepared image with Nix " +
			"(distrotest-gen image prepare debian/13 --packages nix-bin)")
	}
	return dir
}

// hostNix builds, with the host's Nix, a store path that references another
// one, and writes the registration of its closure (nix-store --dump-db, the
// format of nixpkgs' closureInfo) into the store. It needs a Nix that can
// write /nix/store (root, or a nix-daemon).
func hostNix(t *testing.T) (path, dep, registration string) {
	t.Helper()
	for _, tool := range []string{"nix-build", "nix-store"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the registration test builds a store path on the host (scripts/setup.sh installs nix-bin)", tool)
		}
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, msg)
		}
		return strings.TrimSpace(string(out))
	}
	// The nonce makes a new path each run, never one a previous run
	// registered somewhere.
	nonce := time.Now().Format("20060102150405.000000000")
	expr := `let dep = builtins.toFile "distrotest-dep" "a dependency\n"; in derivation {
  name = "distrotest-registered"; system = builtins.currentSystem; builder = "/bin/sh";
  nonce = "` + nonce + `"; args = [ "-c" "echo ${dep} > $out" ]; }`
	path = run("nix-build", "--no-out-link", "--option", "sandbox", "false", "-E", expr)
	dep = strings.TrimSpace(run("cat", path))
	closure := strings.Fields(run("nix-store", "-qR", path))
	reg := filepath.Join(t.TempDir(), "registration")
	if err := os.WriteFile(reg, []byte(run("nix-store", append([]string{"--dump-db"}, closure...)...)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	registration = run("nix-store", "--add", reg)
	return path, dep, registration
}

// TestVMNixRegistration boots a guest with Nix once per transport, with the
// host's /nix/store as its store and the registration of a closure built
// on the host, and checks that the guest's Nix knows the closure:
// references, validity, path-info; and that a store path outside the
// closure stays unknown.
func TestVMNixRegistration(t *testing.T) {
	dir := nixImage(t)
	path, dep, registration := hostNix(t)
	t.Logf("registered closure of %s (%s) through %s", path, dep, registration)
	for _, transport := range []string{qemu.Transport9P, qemu.TransportVirtiofs} {
		t.Run(transport, func(t *testing.T) {
			m := newVMOn(t, dir, "nix"+strings.ReplaceAll(transport, "9p", "9"), func(c *Config) {
				c.ShareTransport = transport
				if transport == qemu.TransportVirtiofs {
					c.Virtiofsd = testVirtiofsd(t)
				}
				c.NixStore = "/nix/store"
				c.NixRegistration = registration
			})
			ctx := vmContext(t)
			if err := m.WaitForShell(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("guest: %s", strings.TrimSpace(mustExec(t, ctx, m, "nix-store --version")))
			if got := strings.TrimSpace(mustExec(t, ctx, m, "nix-store -q --references "+path)); got != dep {
				t.Errorf("nix-store -q --references %s = %q, want %s", path, got, dep)
			}
			mustExec(t, ctx, m, "nix-store --verify-path "+path+" && nix-store --verify-path "+dep)
			info := mustExec(t, ctx, m, "nix --extra-experimental-features nix-command path-info -r "+path)
			if !strings.Contains(info, path) || !strings.Contains(info, dep) {
				t.Errorf("nix path-info -r = %q, want %s and %s", info, path, dep)
			}
			// The registration file is in the store but not in the closure.
			if status, _, err := m.Execute(ctx, "nix-store --verify-path "+registration, 0); err != nil || status == 0 {
				t.Errorf("verify-path of a path outside the closure: status %d, %v (want a failure)", status, err)
			}
		})
	}
}
