package imagepatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/distrotest/distrotest/cmd/internal/diskimage"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// AsIs prepares input (qcow2 or raw) to boot as it is, uninstrumented: no
// file of the image changes and no backdoor is installed, so tests can use
// only the console, the screen, keys and power (reason says why, and is
// what a shell call reports). outDir gets an empty qcow2 overlay of input
// (or, with opts.Standalone, a self-contained copy)
// and a manifest with strategy "none"; when the root is ext4 and holds a
// kernel and initrd they are extracted for a direct kernel boot (root=,
// console=ttyS0), otherwise the machine boots through its firmware and
// boot loader. spec names the release when it is known (Distro may be
// empty). The rules for outDir and opts are those of [Patch].
func AsIs(ctx context.Context, input, outDir string, spec Spec, reason string, opts Options) (*manifest.Manifest, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if reason == "" {
		return nil, errors.New("preparing an uninstrumented image: the reason is empty")
	}
	m := asIsManifest(spec)
	m.Strategy, m.Uninstrumented = manifest.StrategyNone, reason
	if err := asIs(ctx, input, outDir, spec, m, opts.Standalone, log); err != nil {
		return nil, fmt.Errorf("preparing %s to boot as it is: %w", input, err)
	}
	return m, nil
}

// asIsManifest is the manifest of an image booted as it is, without its
// strategy.
func asIsManifest(spec Spec) *manifest.Manifest {
	return &manifest.Manifest{
		Version: manifest.CurrentVersion, Distro: spec.Distro, Release: spec.Release, System: spec.System,
		Disk: "disk.qcow2", DiskFormat: "qcow2", KernelParams: []string{},
	}
}

// asIs writes outDir for m, an image booted as it is: the kernel and
// initrd found for a direct kernel boot (ext4 roots) and an overlay of
// input with nothing changed.
func asIs(ctx context.Context, input, outDir string, spec Spec, m *manifest.Manifest, standalone bool, log *slog.Logger) error {
	img, err := diskimage.Open(input)
	if err != nil {
		return err
	}
	defer img.Close()
	var boot diskimage.Boot
	var bootFS diskimage.Files
	if root, err := img.Root(spec.RootPartition); err == nil {
		m.RootDevice, m.Filesystem = root.Device(), root.Filesystem
		if root.Filesystem == "ext4" {
			if fsys, err := img.Ext4(root); err == nil {
				if b, bfs, err := img.FindBoot(root, fsys, spec.Kernel, spec.Initrd); err == nil {
					boot, bootFS = b, bfs
				} else {
					log.Info("no kernel for a direct kernel boot: booting through the firmware", "err", err)
				}
			}
		}
	}
	if bootFS != nil {
		m.Kernel, m.Initrd, m.KernelVersion = "vmlinuz", "initrd", boot.KernelVersion
		m.KernelParams = append([]string{"root=" + m.RootDevice}, baseParams...)
	}
	err = writeDir(outDir, func(tmp string) error {
		if bootFS != nil {
			if err := copyOut(ctx, bootFS, boot.Kernel, filepath.Join(tmp, m.Kernel)); err != nil {
				return err
			}
			if err := copyOut(ctx, bootFS, boot.Initrd, filepath.Join(tmp, m.Initrd)); err != nil {
				return err
			}
		}
		if err := img.WriteQcow2(filepath.Join(tmp, m.Disk), standalone); err != nil {
			return err
		}
		return m.Write(tmp)
	})
	if err != nil {
		return err
	}
	log.Info("prepared to boot as it is", "input", input, "out", outDir, "strategy", m.Strategy, "reason", m.Uninstrumented,
		"own_backdoor", m.OwnBackdoor, "direct_kernel_boot", bootFS != nil)
	return nil
}
