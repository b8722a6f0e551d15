package imagepatch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/diskimage"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// Spec is what the patcher needs to know about the distro release.
type Spec struct {
	Distro, Release, System string
	Strategy                string // only "disk" is implemented
	Rootfs                  string // expected root filesystem ("ext4"); "" accepts what is found
	RootPartition           int    // 0: automatic (diskimage.Image.Root)
	Kernel, Initrd          string // patterns in the root, e.g. "boot/vmlinuz-*"; "" for the defaults
	// ShareTransport goes into the manifest: "virtiofs" for kernels
	// without 9p, "" to leave the choice to the runner.
	ShareTransport string
}

// Options tune a patch.
type Options struct {
	// Standalone writes a self-contained disk.qcow2 instead of an overlay
	// whose backing file is the input image's absolute path.
	Standalone bool
	Logger     *slog.Logger // nil: discard
}

// Report says what a patch did.
type Report struct {
	Changes []Change
	// CommandLineMasks are units the plan masks whose names are taken in
	// the image; they are masked with systemd.mask= in the manifest's
	// kernel parameters instead.
	CommandLineMasks []string
	DirtyClusters    int // 64 KiB clusters in the overlay
	Duration         time.Duration
}

// baseParams are the manifest's kernel parameters besides root= and the
// masks: read-write root, and the serial console the runner logs.
var baseParams = []string{"rw", "console=ttyS0"}

// Patch prepares input (qcow2 or raw) as a distrotest image in outDir,
// which must be missing, empty or an earlier prepared directory (it is
// replaced). Errors name input; on error nothing is left at outDir.
func Patch(ctx context.Context, input, outDir string, spec Spec, plan guest.Plan, opts Options) (*manifest.Manifest, Report, error) {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, rep, err := patch(ctx, input, outDir, spec, plan, opts, log)
	if err != nil {
		return nil, rep, fmt.Errorf("patching %s: %w", input, err)
	}
	rep.Duration = time.Since(start)
	log.Info("patched image", "input", input, "out", outDir, "duration", rep.Duration,
		"changes", len(rep.Changes), "dirty_clusters", rep.DirtyClusters)
	return m, rep, nil
}

func patch(ctx context.Context, input, outDir string, spec Spec, plan guest.Plan, opts Options, log *slog.Logger) (*manifest.Manifest, Report, error) {
	var rep Report
	if spec.Strategy != "disk" {
		return nil, rep, fmt.Errorf("%s/%s uses strategy %q; the patcher implements only \"disk\" (guest assets written into an ext4 root)", spec.Distro, spec.Release, spec.Strategy)
	}
	img, err := diskimage.Open(input)
	if err != nil {
		return nil, rep, err
	}
	defer img.Close()
	for _, n := range img.Notes {
		log.Warn("image: "+n, "image", input)
	}
	root, err := img.Root(spec.RootPartition)
	if err != nil {
		return nil, rep, err
	}
	if root.Filesystem != "ext4" {
		return nil, rep, fmt.Errorf("root filesystem (partition %d) is %s; the disk strategy writes ext4 only: describe %s/%s with strategy \"credentials\" (systemd 256 or newer) or \"cloud-init\"", root.Number, orUnknown(root.Filesystem), spec.Distro, spec.Release)
	}
	if spec.Rootfs != "" && spec.Rootfs != root.Filesystem {
		return nil, rep, fmt.Errorf("root filesystem (partition %d) is %s, but %s/%s is described with rootfs %q", root.Number, root.Filesystem, spec.Distro, spec.Release, spec.Rootfs)
	}
	fsys, err := img.Ext4(root)
	if err != nil {
		return nil, rep, err
	}
	if err := fsys.Writable(); err != nil {
		return nil, rep, err
	}
	boot, bootFS, err := img.FindBoot(root, fsys, spec.Kernel, spec.Initrd)
	if err != nil {
		return nil, rep, err
	}
	systemd, _, err := fsys.SystemdVersion()
	if err != nil {
		return nil, rep, fmt.Errorf("reading the systemd version: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, rep, err
	}
	start := time.Now()
	log.Debug("image read", "root", root.Device(), "kernel", boot.Kernel, "initrd", boot.Initrd, "systemd", systemd)
	changes, masks, err := apply(fsys, plan, log)
	rep.Changes, rep.CommandLineMasks = changes, masks
	if err != nil {
		return nil, rep, err
	}
	rep.DirtyClusters = img.Dirty()
	log.Debug("plan applied in memory", "changes", len(changes), "dirty_clusters", rep.DirtyClusters, "took", time.Since(start))

	m := &manifest.Manifest{
		Version: manifest.CurrentVersion, Distro: spec.Distro, Release: spec.Release, System: spec.System,
		Disk: "disk.qcow2", DiskFormat: "qcow2", Kernel: "vmlinuz", Initrd: "initrd",
		RootDevice: root.Device(), Filesystem: root.Filesystem, Strategy: spec.Strategy,
		SystemdVersion: systemd, KernelVersion: boot.KernelVersion,
		Backdoor:       manifest.BackdoorVirtioPort, // guest.NewPlan's backdoor
		ShareTransport: spec.ShareTransport,
	}
	m.KernelParams = append([]string{"root=" + m.RootDevice}, baseParams...)
	for _, u := range masks {
		m.KernelParams = append(m.KernelParams, "systemd.mask="+u)
	}
	err = writeDir(outDir, func(tmp string) error {
		if err := copyOut(ctx, bootFS, boot.Kernel, filepath.Join(tmp, m.Kernel)); err != nil {
			return err
		}
		if err := copyOut(ctx, bootFS, boot.Initrd, filepath.Join(tmp, m.Initrd)); err != nil {
			return err
		}
		log.Debug("kernel and initrd extracted", "took", time.Since(start))
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := img.WriteQcow2(filepath.Join(tmp, m.Disk), opts.Standalone); err != nil {
			return err
		}
		log.Debug("disk written", "standalone", opts.Standalone, "took", time.Since(start))
		return m.Write(tmp)
	})
	if err != nil {
		return nil, rep, err
	}
	return m, rep, nil
}

func orUnknown(fs string) string {
	if fs == "" {
		return "not a known filesystem"
	}
	return fs
}

// copyOut copies file src of fsys to the new host file dst.
func copyOut(ctx context.Context, fsys diskimage.Files, src, dst string) error {
	r, _, err := fsys.Open(src)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", src, err)
	}
	defer r.Close()
	name := filepath.Base(dst)
	w, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("extracting %s to %s: %w", src, name, unwrapPath(err))
	}
	if _, err := io.CopyBuffer(w, ctxReader{ctx, r}, make([]byte, 4<<20)); err != nil {
		w.Close()
		return fmt.Errorf("extracting %s to %s: %w", src, name, unwrapPath(err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("extracting %s to %s: %w", src, name, unwrapPath(err))
	}
	return nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
