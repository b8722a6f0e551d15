package imagepatch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
	"github.com/distrotest/distrotest/cmd/internal/distro"
	"github.com/distrotest/distrotest/cmd/internal/guest"
)

func guestPlan() guest.Plan { return guest.NewPlan() }

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

// BenchmarkPatchShapes prepares each family's layout (small stand-ins
// built with mkfs, as in TestPatchInitrdStrategy, with a 12 MiB kernel and
// a ~32 MiB gzip initrd of incompressible data, the size of a generic
// dracut initrd) and, in the same run, a Debian-like ext4 image with the
// disk strategy as the baseline:
//
//	go test -run '^$' -bench PatchShapes ./cmd/internal/imagepatch
func BenchmarkPatchShapes(b *testing.B) {
	kernel := strings.Repeat("k", 12<<20)
	for _, sh := range []struct {
		name string
		spec distro.Spec
		gen  string
	}{
		{"el-xfs-initrd", elSpec, "dracut"},
		{"fedora-btrfs-initrd", fedoraSpec, "dracut"},
		{"ubuntu-boot-partition-initrd", ubuntuSpec, "initramfs-tools"},
		{"debian-ext4-disk", spec.Spec, "initramfs-tools"},
	} {
		b.Run(sh.name, func(b *testing.B) {
			initrdFile := bigInitrd(b, sh.gen)
			var parts []imagetest.Part
			if sh.name == "debian-ext4-disk" {
				files := debianFiles()
				files["boot/vmlinuz-6.1.0-10-amd64"] = kernel
				files["boot/initrd.img-6.1.0-10-amd64"] = readFile(b, initrdFile)
				parts = []imagetest.Part{{Number: 1, SizeMiB: 160, FS: "ext4", Tree: imagetest.Tree(b, files)}, {Number: 15, SizeMiB: 20, Code: "ef00", FS: "vfat"}}
			} else {
				parts = shapeParts(b, strings.SplitN(sh.name, "-", 2)[0], initrdFile)
				replaceKernel(b, parts, kernel)
			}
			d := imagetest.Build(b, "gpt", parts...)
			in := imagetest.Qcow2(b, d.Raw)
			s := Spec{Spec: sh.spec, System: "x86_64-linux"}
			plan, err := PlanFor(sh.spec)
			if sh.name == "debian-ext4-disk" {
				plan, err = guestPlan(), nil
			}
			if err != nil {
				b.Fatal(err)
			}
			out := filepath.Join(b.TempDir(), "prepared")
			for b.Loop() {
				if _, _, err := Patch(context.Background(), in, out, s, plan, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// bigInitrd is an initrd of gen's kind around a 32 MiB incompressible file.
func bigInitrd(b *testing.B, gen string) string {
	b.Helper()
	imagetest.Need(b, "cpio", "gzip", "head")
	files := map[string]string{"usr/lib/dracut/modules.txt": "x", "etc/initrd-release": "x", "usr/lib/systemd/systemd": "x"}
	if gen == "initramfs-tools" {
		files = map[string]string{"conf/initramfs.conf": "x", "scripts/init-bottom/ORDER": "/scripts/init-bottom/udev \"$@\"\n", "scripts/functions": "x"}
	}
	tree := imagetest.Tree(b, files)
	out := filepath.Join(b.TempDir(), "initrd.img")
	script := "set -e; cd " + tree + " && head -c 33554432 /dev/urandom > usr-blob && find . | cpio -o -H newc --quiet | gzip -1 -c > " + out
	if o, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, o)
	}
	return out
}

// replaceKernel makes the shapes' kernel files kernel-sized.
func replaceKernel(b *testing.B, parts []imagetest.Part, kernel string) {
	b.Helper()
	for _, p := range parts {
		if p.Tree == "" {
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(p.Tree, "vmlinuz-*"))
		for _, m := range matches {
			if err := os.WriteFile(m, []byte(kernel), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}
