package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/internal/testenv"
)

func TestWantedAccel(t *testing.T) {
	tests := []struct {
		name, want, env string
		got             string
		wantErr         bool
	}{
		{name: "default", want: "", env: "", got: "auto"},
		{name: "auto", want: "auto", env: "", got: "auto"},
		{name: "env overrides auto", want: "auto", env: "tcg", got: "tcg"},
		{name: "env overrides empty", want: "", env: "KVM", got: "kvm"},
		{name: "explicit beats env", want: "kvm", env: "tcg", got: "kvm"},
		{name: "explicit tcg", want: "TCG", env: "", got: "tcg"},
		{name: "bad", want: "hvf", env: "", wantErr: true},
		{name: "bad env", want: "auto", env: "xen", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Accel(tt.want, tt.env)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.got {
				t.Errorf("got %q, want %q", got, tt.got)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	works := verdict{OK: true, Reason: "booted", Verified: true}
	broken := verdict{Reason: "hangs", Verified: true}
	unopenable := verdict{Reason: "cannot open /dev/kvm", Hard: true}
	untested := verdict{Reason: "no kernel"}
	tests := []struct {
		name      string
		want      string
		v         verdict
		accel     string
		wantError bool
	}{
		{name: "auto, kvm works", want: "auto", v: works, accel: AccelKVM},
		{name: "auto, kvm broken", want: "auto", v: broken, accel: AccelTCG},
		{name: "auto, no /dev/kvm", want: "auto", v: unopenable, accel: AccelTCG},
		{name: "auto, nothing to test with", want: "auto", v: untested, accel: AccelTCG},
		{name: "kvm, works", want: AccelKVM, v: works, accel: AccelKVM},
		{name: "kvm, broken", want: AccelKVM, v: broken, wantError: true},
		{name: "kvm, no /dev/kvm", want: AccelKVM, v: unopenable, wantError: true},
		{name: "kvm, trusted untested", want: AccelKVM, v: untested, accel: AccelKVM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accel, reason, err := decide(tt.want, tt.v)
			if (err != nil) != tt.wantError {
				t.Fatalf("error = %v, want error %v", err, tt.wantError)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.v.Reason) {
					t.Errorf("error %q does not say why", err)
				}
				return
			}
			if accel != tt.accel || reason != tt.v.Reason {
				t.Errorf("got %s (%s), want %s (%s)", accel, reason, tt.accel, tt.v.Reason)
			}
		})
	}
}

func TestVerdictCache(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "qemu", "kvm.json")
	key := probeKey{Recipe: probeRecipe, Binary: "/usr/bin/qemu-system-x86_64", BinarySize: 1, BinaryMtime: 2,
		Version: "7.2.22", System: "x86_64-linux", HostKernel: "6.1.0", KVMDevice: "10:232"}
	if _, ok := readVerdict(file, key); ok {
		t.Fatal("hit in an empty cache")
	}
	if err := writeVerdict(file, key, verdict{Reason: "a test kernel did not boot"}, "/boot/vmlinuz"); err != nil {
		t.Fatal(err)
	}
	v, ok := readVerdict(file, key)
	if !ok {
		t.Fatal("miss after write")
	}
	if d := cmp.Diff(verdict{Reason: "a test kernel did not boot (cached)", Verified: true}, v); d != "" {
		t.Errorf("cached verdict (-want +got):\n%s", d)
	}
	changes := map[string]func(*probeKey){
		"qemu upgraded":      func(k *probeKey) { k.Version = "8.2.0" },
		"binary rebuilt":     func(k *probeKey) { k.BinaryMtime++ },
		"host kernel":        func(k *probeKey) { k.HostKernel = "6.12.0" },
		"/dev/kvm gone":      func(k *probeKey) { k.KVMDevice = "absent" },
		"probe recipe":       func(k *probeKey) { k.Recipe++ },
		"other guest system": func(k *probeKey) { k.System = "aarch64-linux" },
	}
	for name, change := range changes {
		k := key
		change(&k)
		if k.hash() == key.hash() {
			t.Errorf("%s: same cache key", name)
		}
		if _, ok := readVerdict(file, k); ok {
			t.Errorf("%s: cache hit with a changed key", name)
		}
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("cache file mode: %v, %v", st.Mode(), err)
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct{ out, want string }{
		{"QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022", "7.2.22"},
		{"QEMU emulator version 9.1.0\n", "9.1.0"},
		{"QEMU emulator version 10.0 (v10.0.0)\n", "10.0"},
	}
	for _, tt := range tests {
		got, err := parseVersion(tt.out)
		if err != nil || got != tt.want {
			t.Errorf("parseVersion(%q) = %q, %v; want %q", tt.out, got, err, tt.want)
		}
	}
	if _, err := parseVersion("command not found"); err == nil {
		t.Error("no error without a version")
	}
}

func TestPickKernel(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	good := filepath.Join(dir, "vmlinuz")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(good, []byte("kernel"), 0o644)
	got := pickKernel([]string{"", filepath.Join(dir, "missing"), empty, dir}, []string{good})
	if got != good {
		t.Errorf("pickKernel = %q, want %q", got, good)
	}
	if got := pickKernel(nil); got != "" {
		t.Errorf("pickKernel(nil) = %q", got)
	}
	if k := hostKernels("6.1.0-test"); len(k) == 0 || k[0] != "/boot/vmlinuz-6.1.0-test" {
		t.Errorf("hostKernels does not try the running release first: %v", k)
	}
}

// fakeQEMU writes a shell script that stands in for QEMU in the KVM test
// boot.
func fakeQEMU(t *testing.T, script string) Host {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Host{Binary: p, System: "x86_64-linux"}
}

func TestBootTest(t *testing.T) {
	tests := []struct {
		name   string
		script string
		ok     bool
		reason string
		// timeout is the boot test's; only the hang waits for it. The
		// others end on their own and get a long one, so a slow start
		// under load is not taken for a hang.
		timeout time.Duration
	}{
		{name: "boots to the panic", ok: true, reason: "booted under KVM",
			script: `echo "[    0.000000] Linux version 6.1.0"; echo "Kernel panic - not syncing: VFS"; exit 0`},
		{name: "hangs", reason: "did not boot under KVM within 2s (Probing EDD (edd=off to disable)... ok)",
			script: `echo "Probing EDD (edd=off to disable)... ok"; exec sleep 30`, timeout: 2 * time.Second},
		{name: "aborts", reason: "qemu signal: aborted: qemu-system-x86_64: error: failed to set MSR 0x10a",
			script: `echo "qemu-system-x86_64: error: failed to set MSR 0x10a" >&2; kill -ABRT $$`},
		{name: "internal error", reason: "qemu exit status 1: KVM internal error. Suberror: 1",
			script: `echo "KVM internal error. Suberror: 1" >&2; exit 1`},
		{name: "exits without booting", reason: "qemu exit status 0: no output", script: `exit 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fakeQEMU(t, tt.script)
			start := time.Now()
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 30 * time.Second
			}
			v, err := bootTest(context.Background(), h, "/boot/vmlinuz", timeout)
			if err != nil {
				t.Fatal(err)
			}
			if v.OK != tt.ok || !strings.Contains(v.Reason, tt.reason) {
				t.Errorf("verdict = %+v, want ok=%v and reason containing %q", v, tt.ok, tt.reason)
			}
			if d := time.Since(start); d > 60*time.Second { // bounded, not timed: the probe must not hang
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestBootTestArgs(t *testing.T) {
	got := strings.Join(bootTestArgs("x86_64-linux", "/k"), " ")
	for _, want := range []string{"-accel kvm -cpu host", "-no-reboot", "-kernel /k", "console=ttyS0 panic=-1"} {
		if !strings.Contains(got, want) {
			t.Errorf("boot test args %q lack %q", got, want)
		}
	}
}

func TestProbeTCG(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		testenv.Missing(t, "qemu-system-x86_64 is not installed (install qemu-system-x86)")
	}
	h, err := Probe(context.Background(), ProbeConfig{Want: "tcg", System: "x86_64-linux"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Accel != AccelTCG || h.Version == "" || !filepath.IsAbs(h.Binary) {
		t.Errorf("Probe = %+v", h)
	}
}

func TestProbeAuto(t *testing.T) {
	testenv.NeedVM(t)
	// The VM stage gives the prepared image under test: its kernel is the
	// one KVM has to boot, so the verdict comes from a real test boot.
	var kernels []string
	if dir := os.Getenv("DISTROTEST_TEST_IMAGE"); dir != "" {
		kernels = []string{filepath.Join(dir, "vmlinuz")}
	}
	cache := t.TempDir()
	start := time.Now()
	h, err := Probe(context.Background(), ProbeConfig{CacheDir: cache, Kernels: kernels})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first probe: %s in %v", h, time.Since(start))
	start = time.Now()
	h2, err := Probe(context.Background(), ProbeConfig{CacheDir: cache, Kernels: kernels})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second probe: %s in %v", h2, time.Since(start))
	if h.Accel != h2.Accel {
		t.Errorf("cached probe chose %s, first %s", h2.Accel, h.Accel)
	}
	if len(kernels) > 0 && strings.Contains(h.String(), "no kernel to test it with") {
		t.Errorf("probe did not test KVM with the image's kernel %s: %s", kernels[0], h)
	}
}
