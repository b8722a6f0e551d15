package machine

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// testVirtiofsd returns the virtiofsd the VM tests use: $DISTROTEST_VIRTIOFSD,
// virtiofsd in PATH, or one of VirtiofsdPaths. A selected virtiofs VM test
// fails (it does not skip) without one.
func testVirtiofsd(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DISTROTEST_VIRTIOFSD"); p != "" {
		return p
	}
	if p, err := exec.LookPath("virtiofsd"); err == nil {
		return p
	}
	for _, p := range VirtiofsdPaths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("no virtiofsd: run scripts/install-virtiofsd.sh or set DISTROTEST_VIRTIOFSD")
	return ""
}

// TestVMShares boots the test image once per transport with a Nix store and
// two shares (one read-write, one read-only under /tmp, where Debian 13
// mounts a tmpfs) and checks the same semantics over both: reading,
// listing, a file the host writes during the test, writes refused by the
// host on the read-only share even after the guest remounts it read-write,
// and a writable store overlay that leaves the host's store alone. newVM's
// cleanup checks that no QEMU, virtiofsd, socket or memfd is left.
func TestVMShares(t *testing.T) {
	dir := vmImage(t)
	for _, transport := range []string{qemu.Transport9P, qemu.TransportVirtiofs} {
		t.Run(transport, func(t *testing.T) { checkShares(t, dir, transport) })
	}
}

// TestVMSharesNo9P is the hook for the EL family's shape, whose kernel has
// no 9p: DISTROTEST_TEST_NO9P_IMAGE names a prepared image of it (the
// distro helpers' stand-in); its manifest must ask for virtiofs, and the
// same checks as TestVMShares run over virtiofs.
func TestVMSharesNo9P(t *testing.T) {
	vmImage(t)
	dir := os.Getenv("DISTROTEST_TEST_NO9P_IMAGE")
	if dir == "" {
		t.Skip("DISTROTEST_TEST_NO9P_IMAGE is not set: no prepared image of a kernel without 9p (the EL stand-in) to test")
	}
	man, err := loadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if man.ShareTransport != qemu.TransportVirtiofs {
		t.Fatalf("%s: manifest share_transport %q, want virtiofs for a kernel without 9p", dir, man.ShareTransport)
	}
	checkShares(t, dir, qemu.TransportVirtiofs)
}

// checkShares boots the image in dir with the store and two shares over
// transport and checks their semantics.
func checkShares(t *testing.T, dir, transport string) {
	store, rw, ro := t.TempDir(), t.TempDir(), t.TempDir()
	writeFiles(t, store, map[string]fileSpec{
		"aaaa-hello/bin/hello": {data: "#!/bin/sh\necho hello from the store\n", mode: 0o755},
	})
	writeFiles(t, rw, map[string]fileSpec{
		"one":        {data: "1\n", mode: 0o644},
		"sub/two":    {data: "2\n", mode: 0o644},
		"run/script": {data: "#!/bin/sh\necho ran from the share\n", mode: 0o755},
	})
	writeFiles(t, ro, map[string]fileSpec{"readme": {data: "read only\n", mode: 0o644}})

	m := newVMOn(t, dir, "sh"+strings.ReplaceAll(transport, "9p", "9"), func(c *Config) {
		c.ShareTransport = transport
		if transport == qemu.TransportVirtiofs {
			c.Virtiofsd = testVirtiofsd(t)
		}
		c.NixStore = store
		c.Shares = []Share{
			{Tag: "rw", Source: rw, Target: "/mnt/rw"},
			{Tag: "ro", Source: ro, Target: "/tmp/ro", ReadOnly: true},
		}
	})
	ctx := vmContext(t)
	if err := m.WaitForShell(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"/nix/.ro-store": transport, "/mnt/rw": transport, "/tmp/ro": transport, "/nix/store": "overlay"}
	for target, fstype := range want {
		if got := strings.TrimSpace(mustExec(t, ctx, m, "findmnt -no FSTYPE "+target)); got != fstype {
			t.Errorf("%s is mounted as %q, want %s", target, got, fstype)
		}
	}
	t.Logf("/tmp in the guest: %s", strings.TrimSpace(mustExec(t, ctx, m, "findmnt -no FSTYPE /tmp || echo 'not a mount point'")))

	t.Run("read and list", func(t *testing.T) {
		if got := mustExec(t, ctx, m, "cat /mnt/rw/one /mnt/rw/sub/two /tmp/ro/readme"); got != "1\n2\nread only\n" {
			t.Errorf("contents = %q", got)
		}
		if got := mustExec(t, ctx, m, "cd /mnt/rw && find . -mindepth 1 | sort"); got != "./one\n./run\n./run/script\n./sub\n./sub/two\n" {
			t.Errorf("listing = %q", got)
		}
		if got := mustExec(t, ctx, m, "/mnt/rw/run/script && /nix/store/aaaa-hello/bin/hello"); got != "ran from the share\nhello from the store\n" {
			t.Errorf("programs on the share and in the store: %q", got)
		}
	})

	t.Run("host writes during the test", func(t *testing.T) {
		mustExec(t, ctx, m, "ls /mnt/rw >/dev/null; cat /mnt/rw/one >/dev/null") // the guest has looked before
		if err := os.WriteFile(filepath.Join(rw, "late"), []byte("written by the host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rw, "one"), []byte("changed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got := mustExec(t, ctx, m, "for i in $(seq 300); do [ -e /mnt/rw/late ] && grep -q changed /mnt/rw/one && break; sleep 0.1; done; cat /mnt/rw/late /mnt/rw/one")
		if got != "written by the host\nchanged\n" {
			t.Errorf("after the host wrote: %q", got)
		}
		t.Logf("seen by the guest after %v", time.Since(start).Round(time.Millisecond))
	})

	t.Run("guest writes", func(t *testing.T) {
		mustExec(t, ctx, m, "echo from the guest >/mnt/rw/guest")
		if data, err := os.ReadFile(filepath.Join(rw, "guest")); err != nil || string(data) != "from the guest\n" {
			t.Errorf("host sees %q, %v", data, err)
		}
	})

	t.Run("read-only share refuses writes", func(t *testing.T) {
		if status, _, err := m.Execute(ctx, "echo x >/tmp/ro/new", 0); err != nil || status == 0 {
			t.Errorf("writing to the read-only share: status %d, %v", status, err)
		}
		// The host refuses too, not only the guest's mount.
		mustExec(t, ctx, m, "mount -o remount,rw /tmp/ro")
		if status, _, err := m.Execute(ctx, "echo x >/tmp/ro/new2", 0); err != nil || status == 0 {
			t.Errorf("writing after a read-write remount: status %d, %v", status, err)
		}
		if got := listDir(t, ro); strings.Join(got, " ") != "readme" {
			t.Errorf("host's read-only dir now holds %v", got)
		}
	})

	t.Run("store overlay", func(t *testing.T) {
		mustExec(t, ctx, m, "echo built in the guest >/nix/store/bbbb-new")
		if got := listDir(t, store); strings.Join(got, " ") != "aaaa-hello" {
			t.Errorf("host store now holds %v", got)
		}
		if status, _, err := m.Execute(ctx, "echo x >/nix/.ro-store/cccc", 0); err != nil || status == 0 {
			t.Errorf("writing to the read-only store: status %d, %v", status, err)
		}
	})
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}
