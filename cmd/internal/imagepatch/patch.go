package imagepatch

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/ctxio"
	"github.com/distrotest/distrotest/cmd/internal/diskimage"
	"github.com/distrotest/distrotest/cmd/internal/distro"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/initrd"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// Spec is what the patcher needs: the release's facts (from the
// descriptions, or a spec file generated from them) and the Nix system.
type Spec struct {
	distro.Spec
	System string
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
	Strategy distro.Strategy
	// Changes are the disk edits (disk strategy).
	Changes []Change
	// CommandLineMasks are units the plan masks whose names are taken in
	// the image; they are masked with systemd.mask= in the manifest's
	// kernel parameters instead.
	CommandLineMasks []string
	DirtyClusters    int // 64 KiB clusters in the overlay
	// InitrdEntries are the entries of the archive appended to the
	// initrd (initrd strategy).
	InitrdEntries []string
	Boot          diskimage.Boot
	Duration      time.Duration
}

// baseParams are the manifest's kernel parameters besides root= and the
// masks: read-write root, and the serial console the runner logs.
var baseParams = []string{"rw", "console=ttyS0"}

// Family is the guest family of spec, its facts filled from the spec.
func Family(spec distro.Spec) (guest.Family, error) {
	f, err := guest.FamilyFor(spec.GuestFamily)
	if err != nil {
		return guest.Family{}, err
	}
	f.SSHUnit = spec.SSHUnit
	f.NetworkManager = spec.Network == distro.NetworkNetworkManager
	f.SELinux = spec.SELinux
	f.VirtioConsoleModule = spec.VirtioConsoleModule
	return f, nil
}

// PlanFor is the guest plan for spec's strategy: written into the root
// filesystem (disk) or handed over in /run by the initrd (initrd).
func PlanFor(spec distro.Spec) (guest.Plan, error) {
	f, err := Family(spec)
	if err != nil {
		return guest.Plan{}, err
	}
	if spec.Strategy == distro.StrategyInitrd {
		return guest.RuntimePlan(f), nil
	}
	return guest.PlanFor(f), nil
}

// Patch prepares input (qcow2 or raw) as a distrotest image in outDir,
// which must be missing, empty or an earlier prepared directory (it is
// replaced). plan is what PlanFor(spec.Spec) returns, unless a test wants
// another. Errors name input; on error nothing is left at outDir.
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
	log.Info("patched image", "input", input, "out", outDir, "strategy", spec.Strategy, "duration", rep.Duration,
		"changes", len(rep.Changes), "dirty_clusters", rep.DirtyClusters, "initrd_entries", len(rep.InitrdEntries))
	return m, rep, nil
}

func patch(ctx context.Context, input, outDir string, spec Spec, plan guest.Plan, opts Options, log *slog.Logger) (*manifest.Manifest, Report, error) {
	rep := Report{Strategy: spec.Strategy}
	ref := spec.Ref()
	switch spec.Strategy {
	case distro.StrategyDisk, distro.StrategyInitrd:
	default:
		return nil, rep, fmt.Errorf("%s uses strategy %q; the patcher implements \"disk\" (guest assets written into an ext4 root) and \"initrd\" (appended to the initrd, disk untouched)", ref, spec.Strategy)
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
	if spec.Strategy == distro.StrategyDisk && root.Filesystem != "ext4" {
		return nil, rep, fmt.Errorf("root filesystem (partition %d) is %s; the disk strategy writes ext4 only: describe %s with strategy = \"initrd\" (the disk is left alone, any root filesystem)", root.Number, root.FilesystemName(), ref)
	}
	if spec.Rootfs != "" && string(spec.Rootfs) != root.Filesystem {
		return nil, rep, fmt.Errorf("root filesystem (partition %d) is %s, but %s is described with rootfs %q", root.Number, root.FilesystemName(), ref, spec.Rootfs)
	}
	var (
		rootFiles diskimage.Files
		ext       *diskimage.FS
	)
	switch {
	case spec.Strategy == distro.StrategyDisk:
		if ext, err = img.Ext4(root); err != nil {
			return nil, rep, err
		}
		if err := ext.Writable(); err != nil {
			return nil, rep, fmt.Errorf("%w (the initrd strategy leaves the disk alone and would work: strategy = \"initrd\")", err)
		}
		rootFiles = ext
	case root.Filesystem == "btrfs":
		// the subvolume the distro mounts as /, else the one holding /usr
		if rootFiles, err = img.Btrfs(root, spec.RootSubvolume); err != nil {
			return nil, rep, err
		}
	case slices.Contains(diskimage.Readers, root.Filesystem):
		if rootFiles, err = img.Files(root); err != nil {
			return nil, rep, err
		}
	}
	boot, bootFS, err := img.FindBoot(root, rootFiles, spec.Kernel, spec.Initrd)
	if err != nil {
		return nil, rep, fmt.Errorf("%w (no strategy can prepare an image whose kernel distrotest cannot read: it reads %s)", err, strings.Join(diskimage.Readers, ", "))
	}
	rep.Boot = boot
	bootPart := bootFS.Part()
	if spec.BootFilesystem != "" && string(spec.BootFilesystem) != bootPart.Filesystem {
		return nil, rep, fmt.Errorf("the kernel is on partition %d (%s), but %s is described with boot_filesystem %q", bootPart.Number, bootPart.Filesystem, ref, spec.BootFilesystem)
	}
	systemd := 0
	if rootFiles != nil {
		if systemd, _, err = diskimage.SystemdVersion(rootFiles); err != nil {
			return nil, rep, fmt.Errorf("reading the systemd version: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, rep, err
	}
	rootArg, err := rootParam(root, spec.RootDevice)
	if err != nil {
		return nil, rep, err
	}
	start := time.Now()
	log.Debug("image read", "root", root.Device(), "boot_partition", bootPart.Number, "kernel", boot.Kernel, "initrd", boot.Initrd, "entry", boot.Entry, "systemd", systemd)

	var initrdData []byte
	switch spec.Strategy {
	case distro.StrategyDisk:
		changes, masks, err := apply(ext, plan, log)
		rep.Changes, rep.CommandLineMasks = changes, masks
		if err != nil {
			return nil, rep, err
		}
		log.Debug("plan applied in memory", "changes", len(changes), "dirty_clusters", img.Dirty(), "took", time.Since(start))
	case distro.StrategyInitrd:
		if initrdData, rep.InitrdEntries, err = patchInitrd(bootFS, boot.Initrd, spec.InitrdGenerator, plan); err != nil {
			return nil, rep, err
		}
		log.Debug("initrd overlay built", "entries", len(rep.InitrdEntries), "bytes", len(initrdData), "took", time.Since(start))
	}
	rep.DirtyClusters = img.Dirty()

	m := &manifest.Manifest{
		Version: manifest.CurrentVersion, Distro: spec.Distro, Release: spec.Release, System: spec.System,
		Disk: "disk.qcow2", DiskFormat: "qcow2", Kernel: "vmlinuz", Initrd: "initrd",
		RootDevice: root.Device(), Filesystem: root.Filesystem, Strategy: string(spec.Strategy),
		SystemdVersion: systemd, KernelVersion: boot.KernelVersion, ShareTransport: manifestTransport(spec.ShareTransport),
		Backdoor: manifest.BackdoorVirtioPort, // guest's backdoor unit
	}
	m.KernelParams = kernelParams(spec, rootArg, boot, rep.CommandLineMasks)
	err = writeDir(outDir, func(tmp string) error {
		if err := copyOut(ctx, bootFS, boot.Kernel, filepath.Join(tmp, m.Kernel)); err != nil {
			return err
		}
		if initrdData != nil {
			if err := os.WriteFile(filepath.Join(tmp, m.Initrd), initrdData, 0o644); err != nil {
				return fmt.Errorf("writing the patched initrd: %w", unwrapPath(err))
			}
		} else if err := copyOut(ctx, bootFS, boot.Initrd, filepath.Join(tmp, m.Initrd)); err != nil {
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

// patchInitrd reads the initrd at p of fsys and returns it with the
// overlay for gen appended, and the overlay's entries.
func patchInitrd(fsys diskimage.Files, p string, gen distro.InitrdGenerator, plan guest.Plan) ([]byte, []string, error) {
	where := fmt.Sprintf("initrd %s on partition %d", p, fsys.Part().Number)
	data, err := fsys.ReadFile(p)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the %s: %w", where, err)
	}
	info, err := initrd.Inspect(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w (the initrd strategy needs the distro's cpio initrd)", where, err)
	}
	o, err := initrd.Build(initrd.Generator(gen), plan, info)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", where, err)
	}
	return initrd.Append(data, o), o.Entries, nil
}

// rootParam is root= for the root partition, named the way kind says.
func rootParam(root diskimage.Partition, kind distro.RootDevice) (string, error) {
	var v, what string
	switch kind {
	case "", distro.RootByDevice:
		return "root=" + root.Device(), nil
	case distro.RootByUUID:
		v, what = root.FSUUID, "UUID"
	case distro.RootByLabel:
		v, what = root.FSLabel, "LABEL"
	case distro.RootByPartUUID:
		v, what = root.PartUUID, "PARTUUID"
	default:
		return "", fmt.Errorf("root_device %q: want device, uuid, label or partuuid", kind)
	}
	if v == "" || strings.ContainsAny(v, " \t\n\"") {
		return "", fmt.Errorf("root_device = %q, but the %s root filesystem on partition %d has no usable %s (%q): describe it with root_device = \"device\" or \"uuid\"", kind, root.FilesystemName(), root.Number, what, v)
	}
	return "root=" + what + "=" + v, nil
}

// kernelParams are the manifest's kernel parameters: root=, the btrfs
// subvolume (the spec's, else the boot entry's rootflags=), rw and the
// serial console, the family's boot parameters (SELinux permissive),
// virtio_console early in dracut initrds where it is a module, and masks.
func kernelParams(spec Spec, rootArg string, boot diskimage.Boot, masks []string) []string {
	params := []string{rootArg}
	switch {
	case spec.RootSubvolume != "":
		params = append(params, "rootflags=subvol="+spec.RootSubvolume)
	default:
		for _, o := range boot.Options {
			if strings.HasPrefix(o, "rootflags=") {
				params = append(params, o)
			}
		}
	}
	params = append(params, baseParams...)
	if f, err := Family(spec.Spec); err == nil {
		params = append(params, f.BootParams()...)
	}
	if spec.VirtioConsoleModule && spec.InitrdGenerator == distro.Dracut {
		params = append(params, "rd.driver.pre=virtio_console")
	}
	for _, u := range masks {
		params = append(params, "systemd.mask="+u)
	}
	return params
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
	if _, err := io.CopyBuffer(w, ctxio.Reader(ctx, r), make([]byte, 4<<20)); err != nil {
		w.Close()
		return fmt.Errorf("extracting %s to %s: %w", src, name, unwrapPath(err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("extracting %s to %s: %w", src, name, unwrapPath(err))
	}
	return nil
}

// manifestTransport is the share transport the manifest names: only one the
// kernel requires (virtiofs where it has no 9p, or a buggy one). Where 9p
// works too the manifest names none, and the runner's default (virtiofs,
// measured faster, with 9p when the host has no virtiofsd) decides.
func manifestTransport(t distro.ShareTransport) string {
	if t == distro.ShareVirtiofs {
		return manifest.ShareTransportVirtiofs
	}
	return ""
}
