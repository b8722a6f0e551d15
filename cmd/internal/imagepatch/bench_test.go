package imagepatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// BenchmarkPatch patches DISTROTEST_BENCH_IMAGE (a Debian qcow2 or raw
// image): guest plan written, kernel and initrd extracted, overlay and
// manifest written. bench/patch-vs-virt-customize.sh compares the CLI with
// virt-customize making the same edits.
func BenchmarkPatch(b *testing.B) {
	img := os.Getenv("DISTROTEST_BENCH_IMAGE")
	if img == "" {
		b.Skip("set DISTROTEST_BENCH_IMAGE to a Debian qcow2 or raw image")
	}
	out := filepath.Join(b.TempDir(), "prepared")
	plan := guest.NewPlan()
	for b.Loop() {
		if _, _, err := Patch(context.Background(), img, out, spec, plan, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
