package imagepatch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qcow2"
)

func TestAsIs(t *testing.T) {
	tests := []struct {
		name       string
		part       imagetest.Part
		wantKernel bool
	}{
		{"ext4 root with a kernel: direct kernel boot", imagetest.Part{SizeMiB: 64, FS: "ext4", Tree: imagetest.Tree(t, debianFiles())}, true},
		{"no filesystem distrotest reads: firmware boot", imagetest.Part{SizeMiB: 4}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := imagetest.Build(t, "gpt", tt.part)
			in := imagetest.Qcow2(t, d.Raw)
			before := imagetest.FileSum(t, in)
			out := filepath.Join(t.TempDir(), "asis")
			m, err := AsIs(context.Background(), in, out, Spec{System: "x86_64-linux"}, "asked with --no-instrument", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if imagetest.FileSum(t, in) != before {
				t.Error("the input changed")
			}
			loaded, err := manifest.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			if loaded.Strategy != manifest.StrategyNone || loaded.Uninstrumented != "asked with --no-instrument" || (loaded.Kernel != "") != tt.wantKernel {
				t.Errorf("manifest %+v", loaded)
			}
			if tt.wantKernel {
				if k, _ := os.ReadFile(filepath.Join(out, "vmlinuz")); string(k) != "kernel" {
					t.Errorf("kernel %q", k)
				}
				if m.KernelParams[0] != "root=/dev/vda1" {
					t.Errorf("params %v", m.KernelParams)
				}
			}
			// the disk is an overlay of the input with nothing changed
			img, err := qcow2.Open(filepath.Join(out, "disk.qcow2"))
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if b, _ := img.BackingFile(); b != in {
				t.Errorf("backing file %q, want %q", b, in)
			}
			raw, _ := os.ReadFile(d.Raw)
			got := make([]byte, len(raw))
			if _, err := img.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, raw) {
				t.Error("the overlay's content differs from the input")
			}
		})
	}
	if _, err := AsIs(context.Background(), "x", filepath.Join(t.TempDir(), "o"), Spec{}, "", Options{}); err == nil {
		t.Error("an empty reason was accepted")
	}
}
