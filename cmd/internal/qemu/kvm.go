package qemu

// The KVM check: a /dev/kvm that opens is not one that boots. Probe boots a
// kernel under KVM once per host configuration and remembers the verdict.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/atomicfile"
	"github.com/distrotest/distrotest/cmd/internal/cache"
)

// verdict is the answer to "does KVM boot a kernel here".
type verdict struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
	// Verified is false when no test boot was possible (nothing cached).
	Verified bool `json:"verified"`
	// Hard is set when KVM cannot even be opened: an explicit "kvm" must
	// fail too.
	Hard bool `json:"-"`
}

// decide maps the wanted accelerator and the KVM verdict to the choice.
func decide(want string, v verdict) (accel, reason string, err error) {
	switch {
	case v.OK:
		return AccelKVM, v.Reason, nil
	case want == AccelKVM && !v.Hard && !v.Verified:
		// Nothing to test with: trust an explicit request.
		return AccelKVM, v.Reason, nil
	case want == AccelKVM:
		return "", "", fmt.Errorf("kvm requested but unusable: %s (use --accel tcg or auto)", v.Reason)
	default:
		return AccelTCG, v.Reason, nil
	}
}

// kvmUsable answers whether KVM runs guests of h.System here, from the
// cache or by a test boot.
func kvmUsable(ctx context.Context, cfg ProbeConfig, h Host, hostSystem string, log *slog.Logger) (verdict, error) {
	if h.System != hostSystem {
		return verdict{Reason: fmt.Sprintf("KVM cannot run %s guests on a %s host", h.System, hostSystem), Hard: true}, nil
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return verdict{Reason: fmt.Sprintf("cannot open /dev/kvm: %v", errors.Unwrap(err)), Hard: true}, nil
	}
	f.Close()

	key, err := newProbeKey(h)
	if err != nil {
		return verdict{}, err
	}
	cacheFile := ""
	if cfg.CacheDir != "" {
		cacheFile = filepath.Join(cache.QEMU(cfg.CacheDir), "kvm-"+key.hash()[:16]+".json")
		if v, ok := readVerdict(cacheFile, key); ok {
			log.Debug("kvm verdict from cache", "file", cacheFile, "ok", v.OK, "reason", v.Reason)
			return v, nil
		}
	}

	kernel := pickKernel(cfg.Kernels, hostKernels(key.HostKernel))
	if kernel == "" {
		return verdict{Reason: "/dev/kvm opens but there is no kernel to test it with"}, nil
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultKVMProbeTimeout
	}
	log.Info("testing KVM with a kernel boot", "kernel", kernel, "timeout", timeout)
	start := time.Now()
	v, err := bootTest(ctx, h, kernel, timeout)
	if err != nil {
		return verdict{}, err
	}
	v.Verified = true
	log.Info("KVM test boot done", "ok", v.OK, "took", time.Since(start).Round(time.Millisecond), "reason", v.Reason)
	if cacheFile != "" {
		if err := writeVerdict(cacheFile, key, v, kernel); err != nil {
			log.Warn("cannot cache the KVM verdict", "err", err)
		}
	}
	return v, nil
}

// probeKey is what the KVM verdict depends on.
type probeKey struct {
	Recipe      int    `json:"recipe"`
	Binary      string `json:"binary"`
	BinarySize  int64  `json:"binary_size"`
	BinaryMtime int64  `json:"binary_mtime"`
	Version     string `json:"version"`
	System      string `json:"system"`
	HostKernel  string `json:"host_kernel"`
	KVMDevice   string `json:"kvm_device"`
}

func newProbeKey(h Host) (probeKey, error) {
	k := probeKey{Recipe: probeRecipe, Binary: h.Binary, Version: h.Version, System: h.System}
	if real, err := filepath.EvalSymlinks(h.Binary); err == nil {
		k.Binary = real
	}
	st, err := os.Stat(k.Binary)
	if err != nil {
		return probeKey{}, fmt.Errorf("probing qemu: %w", err)
	}
	k.BinarySize, k.BinaryMtime = st.Size(), st.ModTime().UnixNano()
	k.HostKernel = hostRelease()
	k.KVMDevice = deviceID("/dev/kvm")
	return k, nil
}

func (k probeKey) hash() string {
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// cacheEntry is the file the verdict is cached in.
type cacheEntry struct {
	Key      probeKey  `json:"key"`
	OK       bool      `json:"ok"`
	Reason   string    `json:"reason"`
	Kernel   string    `json:"kernel"`
	ProbedAt time.Time `json:"probed_at"`
}

func readVerdict(path string, key probeKey) (verdict, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return verdict{}, false
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil || e.Key != key {
		return verdict{}, false
	}
	return verdict{OK: e.OK, Reason: e.Reason + " (cached)", Verified: true}, true
}

func writeVerdict(path string, key probeKey, v verdict, kernel string) error {
	data, err := json.MarshalIndent(cacheEntry{Key: key, OK: v.OK, Reason: v.Reason, Kernel: kernel, ProbedAt: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// hostKernels lists the host's kernels, the running release first.
func hostKernels(release string) []string {
	all, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Strings(all)
	var out []string
	if release != "" {
		out = append(out, "/boot/vmlinuz-"+release)
	}
	for i := len(all) - 1; i >= 0; i-- {
		out = append(out, all[i])
	}
	return out
}

// pickKernel returns the first candidate that is a readable regular file.
func pickKernel(lists ...[]string) string {
	for _, l := range lists {
		for _, k := range l {
			if k == "" {
				continue
			}
			f, err := os.Open(k)
			if err != nil {
				continue
			}
			st, err := f.Stat()
			f.Close()
			if err == nil && st.Mode().IsRegular() && st.Size() > 0 {
				return k
			}
		}
	}
	return ""
}

// bootTest boots kernel under KVM with no root file system: a working KVM
// gets it through the whole kernel start to its panic, which with
// panic=-1 and -no-reboot ends QEMU with status 0.
func bootTest(ctx context.Context, h Host, kernel string, timeout time.Duration) (verdict, error) {
	args := bootTestArgs(h.System, kernel)
	ctx2, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr limitedBuffer
	cmd := exec.Command(h.Binary, args...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return verdict{}, fmt.Errorf("testing KVM: starting %s: %w", h.Binary, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	timedOut := false
	select {
	case werr = <-done:
	case <-ctx2.Done():
		killGroup(cmd.Process.Pid)
		werr = <-done
		if ctx.Err() != nil {
			return verdict{}, fmt.Errorf("testing KVM: %w", ctx.Err())
		}
		timedOut = true
	}
	out := stdout.String()
	booted := strings.Contains(out, "Linux version")
	switch {
	case werr == nil && booted:
		return verdict{OK: true, Reason: "a test kernel booted under KVM"}, nil
	case timedOut:
		return verdict{Reason: fmt.Sprintf("a test kernel did not boot under KVM within %v (%s)", timeout, lastLine(out, "no kernel output"))}, nil
	default:
		what := lastLine(stderr.String(), lastLine(out, "no output"))
		if werr == nil {
			werr = errors.New("exit status 0")
		}
		return verdict{Reason: fmt.Sprintf("a test kernel failed under KVM: qemu %v: %s", werr, what)}, nil
	}
}

// bootTestArgs boots kernel with the machine model the tests boot
// (Cmdline, on KVM), small, with its console on stdout, and no reboot on a
// panic.
func bootTestArgs(system, kernel string) []string {
	console := "ttyS0"
	if system == "aarch64-linux" {
		console = "ttyAMA0"
	}
	args := Cmdline(Config{
		System:       system,
		MemoryMiB:    256,
		CPUs:         1,
		Kernel:       kernel,
		KernelParams: []string{"console=" + console, "panic=-1", "loglevel=5"},
	}, Host{Accel: AccelKVM, System: system})
	// The panic ends QEMU also through pvpanic (a kernel with the driver
	// built in), where Cmdline pauses the guest for the runner.
	return append(args, "-serial", "stdio", "-no-reboot", "-action", "panic=shutdown")
}

// lastLine returns the last non-empty line of s, or def.
func lastLine(s, def string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r", ""), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			if len(l) > 200 {
				l = l[:200] + "..."
			}
			return l
		}
	}
	return def
}

// limitedBuffer keeps the last 64 KiB written to it.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.b.Write(p)
	if over := l.b.Len() - 64<<10; over > 0 {
		l.b.Next(over)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }
