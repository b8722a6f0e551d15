package qemu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
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
