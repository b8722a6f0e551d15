package imagepatch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// Benchmarks on a real image: DISTROTEST_BENCH_IMAGE=path/to/disk.qcow2
// (scripts/bench.sh sets it to the cached Debian 13 build and prints the
// ratio of the two).

func benchImage(b *testing.B) string {
	img := os.Getenv("DISTROTEST_BENCH_IMAGE")
	if img == "" {
		b.Skip("set DISTROTEST_BENCH_IMAGE to a Debian qcow2 (scripts/bench.sh does)")
	}
	return img
}

// BenchmarkPatch is `distrotest-gen image patch`: guest assets written,
// kernel and initrd extracted, overlay and manifest written.
func BenchmarkPatch(b *testing.B) {
	img := benchImage(b)
	dir := b.TempDir()
	plan := guest.NewPlan()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := Patch(context.Background(), img, filepath.Join(dir, "out"), spec, plan, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVirtCustomize makes the same edits with virt-customize (libguestfs
// appliance under TCG) on an overlay of the same image, as nix-vm-test does.
// It does not extract the kernel and initrd, which the patcher also does.
func BenchmarkVirtCustomize(b *testing.B) {
	img := benchImage(b)
	if _, err := exec.LookPath("virt-customize"); err != nil {
		b.Skip("virt-customize not installed: scripts/setup.sh --bench")
	}
	dir := b.TempDir()
	plan := guest.NewPlan()
	var args []string
	for _, d := range plan.Dirs {
		args = append(args, "--mkdir", d.Path)
	}
	for i, f := range plan.Files {
		src := filepath.Join(dir, "f"+string(rune('a'+i)))
		if err := os.WriteFile(src, f.Data, 0o644); err != nil {
			b.Fatal(err)
		}
		args = append(args, "--upload", src+":"+f.Path, "--chmod", "0"+modeString(f.Mode)+":"+f.Path)
	}
	for _, s := range plan.Symlinks {
		args = append(args, "--link", s.Target+":"+s.Path)
	}
	env := append(os.Environ(), "LIBGUESTFS_BACKEND=direct", "LIBGUESTFS_BACKEND_SETTINGS=force_tcg")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		overlay := filepath.Join(dir, "overlay.qcow2")
		os.Remove(overlay)
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", img, "-F", "qcow2", overlay).CombinedOutput(); err != nil {
			b.Fatalf("qemu-img: %v\n%s", err, out)
		}
		b.StartTimer()
		cmd := exec.Command("virt-customize", append([]string{"--no-network", "-q", "-a", overlay}, args...)...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("virt-customize: %v\n%s", err, out)
		}
	}
}

func modeString(m os.FileMode) string {
	const digits = "01234567"
	p := m.Perm()
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}
