package qemu

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/atomicfile"
	"github.com/distrotest/distrotest/cmd/internal/cache"
)

// Host is what Probe found out about the host: plain data, cheap to copy.
type Host struct {
	// Binary is the absolute path of qemu-system-<arch>.
	Binary string
	// Img is the absolute path of qemu-img ("" when it is not installed).
	Img string
	// Version is QEMU's version, e.g. "7.2.22".
	Version string
	// System is the Nix system of the guests Binary runs, e.g. "x86_64-linux".
	System string
	// Accel is AccelKVM or AccelTCG.
	Accel string
	// KVMReason says why KVM is or is not used, for logs.
	KVMReason string
}

// EnvAccel is the environment variable (read by the CLI) that overrides the accelerator when
// the caller asks for "auto" (or nothing).
const EnvAccel = "DISTROTEST_ACCEL"

// DefaultKVMProbeTimeout bounds the KVM test boot. A working KVM reaches the
// kernel's panic in one to three seconds; a broken one hangs.
const DefaultKVMProbeTimeout = 12 * time.Second

// probeRecipe versions how the KVM test boot is done; bump it to invalidate
// cached verdicts when the test changes.
const probeRecipe = 1

// ProbeConfig says what Probe should look for.
type ProbeConfig struct {
	// Want is "auto" (or empty), "kvm" or "tcg" (see Accel: the CLI
	// resolves the flag against $DISTROTEST_ACCEL).
	Want string
	// System is the Nix system of the guests; empty means the host's.
	System string
	// Binary overrides the QEMU binary; empty means qemu-system-<arch>
	// from PATH.
	Binary string
	// CacheDir is where the KVM verdict is remembered (in
	// CacheDir/qemu/); empty disables the cache.
	CacheDir string
	// Kernels are kernels (bzImage / Image) to test KVM with, tried before
	// the host's /boot/vmlinuz-*. Pass the kernel of the image under test:
	// it is the one that has to boot.
	Kernels []string
	// Timeout bounds the KVM test boot; zero means DefaultKVMProbeTimeout.
	Timeout time.Duration
	// Logger receives what Probe finds (nil discards).
	Logger *slog.Logger
}

// Probe finds QEMU and decides on the accelerator:
//
//   - "tcg": TCG, no question asked.
//   - "kvm": KVM; an error when /dev/kvm cannot be opened or a test boot
//     of a real kernel fails under it.
//   - "auto": KVM only when /dev/kvm opens and a real kernel boots under it
//     (to its panic on the missing root file system, with -no-reboot);
//     TCG otherwise, with the reason in Host.KVMReason.
//
// The outcome of the test boot is cached in CacheDir, keyed by the QEMU
// binary (path, size, mtime, version), the host kernel release and the
// /dev/kvm device, so it runs once per host configuration.
func Probe(ctx context.Context, cfg ProbeConfig) (Host, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	want, err := Accel(cfg.Want, "")
	if err != nil {
		return Host{}, fmt.Errorf("accelerator %w", err)
	}
	hostSystem := systemOf(runtime.GOARCH)
	system := cfg.System
	if system == "" {
		system = hostSystem
	}
	arch, ok := qemuArch(system)
	if !ok {
		return Host{}, fmt.Errorf("probing qemu: system %q is not supported (x86_64-linux, aarch64-linux)", system)
	}
	h := Host{System: system}
	h.Binary, err = findBinary(cfg.Binary, "qemu-system-"+arch)
	if err != nil {
		return Host{}, err
	}
	h.Img, _ = findImg(h.Binary)
	h.Version, err = binaryVersion(ctx, h.Binary)
	if err != nil {
		return Host{}, err
	}

	if want == AccelTCG {
		h.Accel, h.KVMReason = AccelTCG, "tcg requested"
		log.Info("qemu", "binary", h.Binary, "version", h.Version, "accel", h.Accel, "reason", h.KVMReason)
		return h, nil
	}

	v, err := kvmUsable(ctx, cfg, h, hostSystem, log)
	if err != nil {
		return Host{}, err
	}
	h.Accel, h.KVMReason, err = decide(want, v)
	if err != nil {
		return Host{}, err
	}
	log.Info("qemu", "binary", h.Binary, "version", h.Version, "accel", h.Accel, "reason", h.KVMReason)
	return h, nil
}

// Accel normalizes a requested accelerator ("auto", "kvm", "tcg", any
// case, empty for auto), letting env (the value of EnvAccel) decide when the
// request is "auto". It is the one validation of accelerator names.
func Accel(want, env string) (string, error) {
	want = strings.ToLower(strings.TrimSpace(want))
	if want == "" || want == "auto" {
		if env = strings.ToLower(strings.TrimSpace(env)); env != "" {
			want = env
		}
	}
	switch want {
	case "", "auto":
		return "auto", nil
	case AccelKVM, AccelTCG:
		return want, nil
	}
	return "", fmt.Errorf("%q: want auto, kvm or tcg", want)
}

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

func bootTestArgs(system, kernel string) []string {
	machine, console := "q35", "ttyS0"
	if system == "aarch64-linux" {
		machine, console = "virt", "ttyAMA0"
	}
	return []string{
		"-nodefaults", "-no-user-config", "-machine", machine, "-accel", AccelKVM, "-cpu", "host",
		"-m", "256", "-smp", "1", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", kernel, "-append", "console=" + console + " panic=-1 loglevel=5",
	}
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

func systemOf(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64-linux"
	case "arm64":
		return "aarch64-linux"
	}
	return goarch + "-linux"
}

func qemuArch(system string) (string, bool) {
	switch system {
	case "x86_64-linux":
		return "x86_64", true
	case "aarch64-linux":
		return "aarch64", true
	}
	return "", false
}

func findBinary(override, name string) (string, error) {
	if override != "" {
		name = override
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("finding qemu: %w (install qemu-system-x86 or put %s on PATH)", err, name)
	}
	return filepath.Abs(p)
}

// findImg looks for qemu-img beside the QEMU binary, then on PATH.
func findImg(binary string) (string, error) {
	beside := filepath.Join(filepath.Dir(binary), "qemu-img")
	if st, err := os.Stat(beside); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return beside, nil
	}
	p, err := exec.LookPath("qemu-img")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("finding qemu-img: %w (install qemu-utils)", err)
		}
		return "", err
	}
	return filepath.Abs(p)
}

var versionRE = regexp.MustCompile(`version (\d+\.\d+(?:\.\d+)?)`)

// parseVersion extracts the version from `qemu-system-* --version`.
func parseVersion(out string) (string, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no version in %q", lastLine(out, ""))
	}
	return m[1], nil
}

func binaryVersion(ctx context.Context, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("running %s --version: %w: %s", binary, err, lastLine(string(out), ""))
	}
	v, err := parseVersion(string(out))
	if err != nil {
		return "", fmt.Errorf("running %s --version: %w", binary, err)
	}
	return v, nil
}
