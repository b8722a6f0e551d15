package qcow2

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// toolHints tells how to install the external tools the tests use.
var toolHints = map[string]string{
	"qemu-img":  "install qemu-utils",
	"qemu-io":   "install qemu-utils",
	"sgdisk":    "install gdisk",
	"mkfs.ext4": "install e2fsprogs",
	"e2fsck":    "install e2fsprogs",
	"debugfs":   "install e2fsprogs",
}

// needTools skips the test, saying why, when a tool is missing.
func needTools(tb testing.TB, names ...string) {
	tb.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			tb.Skipf("%s not found (%s): %v", name, toolHints[name], err)
		}
	}
}

// run runs a command and fails the test if it fails; it returns stdout.
func run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	needTools(tb, name)
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// qemuIO runs qemu-io commands (e.g. "write -P 0xab 0 64k") on a qcow2 image.
func qemuIO(tb testing.TB, img string, cmds ...string) {
	tb.Helper()
	args := []string{"-f", "qcow2"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	run(tb, "qemu-io", append(args, img)...)
}

// qemuRaw returns the virtual disk content of img as qemu-img sees it.
func qemuRaw(tb testing.TB, img string) []byte {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "raw")
	run(tb, "qemu-img", "convert", "-O", "raw", img, out)
	data, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// qemuCheck runs qemu-img check, which exits non-zero on errors or leaks.
func qemuCheck(tb testing.TB, img string) {
	tb.Helper()
	out := run(tb, "qemu-img", "check", img)
	if !strings.Contains(out, "No errors were found") {
		tb.Fatalf("qemu-img check %s:\n%s", img, out)
	}
}

// patchFile overwrites bytes of a file at off.
func patchFile(tb testing.TB, path string, off int64, data []byte) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		tb.Fatal(err)
	}
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// pattern returns n bytes of deterministic, partly compressible data.
func pattern(n int, seed uint32) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 1
	for i := range b {
		if i%4096 < 2048 {
			b[i] = byte(i/4096) + byte(seed)
			continue
		}
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
