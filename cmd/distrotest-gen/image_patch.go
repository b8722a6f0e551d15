package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/distro"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/imagepatch"
	"github.com/distrotest/distrotest/distros"
)

func newImagePatchCommand() *cobra.Command {
	var ref, specFile, out, system, dir, exportPlan string
	var standalone, noInstrument bool
	var rootPartition int
	cmd := &cobra.Command{
		Use:   "patch [--distro DISTRO/RELEASE | --spec FILE] IMAGE -o DIR",
		Short: "Prepare a qcow2 or raw image for distrotest offline (backdoor, mounts, network)",
		Long: `Put distrotest's guest assets (backdoor and setup units, masks) into the
image — no VM, no root, no loop device — the way the release's strategy says:

  disk    written into the ext4 root with go-diskfs (Debian, Ubuntu)
  initrd  appended as a small cpio to the distro's initrd, which hands them
          to the booted system in /run; the disk is not written at all
          (Fedora's btrfs, the EL family's xfs, any root filesystem)

and write the prepared directory DIR:

  disk.qcow2     the patched disk
  vmlinuz        the kernel, initrd the initramfs (for direct kernel boot)
  manifest.json  root device, kernel parameters, strategy, versions

The input is opened read-only and never modified. disk.qcow2 is a small
overlay whose backing file is the input's absolute path (the input must stay
where it is, unchanged); --standalone writes a self-contained image instead.
DIR is written beside itself and renamed into place: it must be missing,
empty or an earlier prepared directory, which is replaced. On error nothing
is left behind.

The release's facts come from --distro (the built-in descriptions, or
--distros DIR), from --spec, a JSON file as gen/<distro>.nix carries it per
release (patchSpec: what the Nix library passes, so that a prepared image
depends on its own release's facts only), or, without either, from the
release the image's /etc/os-release names (ID/VERSION_ID, e.g. debian/13,
read from its ext4 root).

An image that brings its own NixOS-style backdoor (a service enabled at boot
that prints "Spawning backdoor root shell..." and runs a root shell on
/dev/hvc0, as nixpkgs' test-instrumentation.nix) is not patched: it is
prepared to be driven as it is, through that shell (manifest strategy
"own-backdoor"), with or without --no-instrument.
--log-level debug lists every edit.`,
		Example: "  distrotest-gen image patch --distro debian/13 debian-13-generic-amd64.qcow2 -o prepared/\n  distrotest-gen image patch --spec rocky-9.6.json Rocky-9-GenericCloud-Base.qcow2 -o prepared/",
		Args: func(cmd *cobra.Command, args []string) error {
			if exportPlan != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if exportPlan != "" {
				return exportPlanTree(guest.NewPlan(), exportPlan)
			}
			if out == "" {
				return fmt.Errorf("-o is required")
			}
			if ref != "" && specFile != "" {
				return fmt.Errorf("give one of --distro and --spec")
			}
			// A --distro that names no described release is refused
			// before the image is opened.
			if ref != "" {
				if _, err := lookupRelease(dir, ref); err != nil {
					return err
				}
			}
			own, err := imagepatch.FindOwnBackdoorIn(args[0], rootPartition)
			if err != nil {
				return err
			}
			if own != nil {
				spec, err := asIsSpec(dir, ref, system)
				if err != nil {
					return err
				}
				m, err := imagepatch.AsIsOwnBackdoor(cmd.Context(), args[0], out, spec, own,
					imagepatch.Options{Standalone: standalone, Logger: slog.Default()})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "prepared %s to be driven as it is: it has its own NixOS-style backdoor (%s, shell on hvc0); nothing patched (direct kernel boot: %v)\n",
					args[0], ownBackdoorName(own), m.Kernel != "")
				fmt.Fprintln(cmd.OutOrStdout(), out)
				return nil
			}
			if noInstrument {
				spec, err := asIsSpec(dir, ref, system)
				if err != nil {
					return err
				}
				m, err := imagepatch.AsIs(cmd.Context(), args[0], out, spec, "asked for with --no-instrument",
					imagepatch.Options{Standalone: standalone, Logger: slog.Default()})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "prepared %s to boot as it is (uninstrumented; direct kernel boot: %v)\n", args[0], m.Kernel != "")
				fmt.Fprintln(cmd.OutOrStdout(), out)
				return nil
			}
			var spec imagepatch.Spec
			if specFile != "" {
				data, err := os.ReadFile(specFile)
				if err != nil {
					return fmt.Errorf("reading the distro spec: %w", err)
				}
				ds, err := distro.DecodeSpec(specFile, data)
				if err != nil {
					return err
				}
				spec = imagepatch.Spec{Spec: ds, System: system}
			} else {
				rel, err := releaseOf(dir, ref, args[0], cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				spec = specFor(rel, system)
			}
			if rootPartition > 0 {
				spec.RootPartition = rootPartition
			}
			plan, err := imagepatch.PlanFor(spec.Spec)
			if err != nil {
				return err
			}
			m, rep, err := imagepatch.Patch(cmd.Context(), args[0], out, spec, plan,
				imagepatch.Options{Standalone: standalone, Logger: slog.Default()})
			if err != nil {
				return err
			}
			if rep.Strategy == distro.StrategyInitrd {
				fmt.Fprintf(cmd.ErrOrStderr(), "patched %s (initrd strategy, disk untouched): root %s (%s), kernel %s from partition %d, %d entries appended to the initrd; %s\n",
					args[0], m.RootDevice, m.Filesystem, m.KernelVersion, rep.Boot.Partition, len(rep.InitrdEntries), rep.Duration.Round(time.Millisecond))
				fmt.Fprintln(cmd.OutOrStdout(), out)
				return nil
			}
			counts := map[imagepatch.Op]int{}
			for _, c := range rep.Changes {
				counts[c.Op]++
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "patched %s: root %s, kernel %s, systemd %d; %d files, %d links, %d directories created, %d entries already present; %s\n",
				args[0], m.RootDevice, m.KernelVersion, m.SystemdVersion, counts[imagepatch.OpWrite], counts[imagepatch.OpLink],
				counts[imagepatch.OpMkdir], counts[imagepatch.OpPresent], rep.Duration.Round(time.Millisecond))
			if len(rep.CommandLineMasks) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "unit names taken in the image, masked on the kernel command line instead: %s\n", strings.Join(rep.CommandLineMasks, " "))
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&ref, "distro", "", "distro release, e.g. debian/13 (default: from the image's /etc/os-release)")
	cmd.Flags().StringVar(&specFile, "spec", "", "the release's facts as JSON (gen/<distro>.nix patchSpec), instead of --distro")
	cmd.Flags().StringVarP(&out, "output", "o", "", "output directory (written beside itself and renamed into place)")
	cmd.Flags().StringVar(&system, "system", "x86_64-linux", "Nix system of the image")
	cmd.Flags().StringVar(&dir, "distros", "", "directory of distro descriptions (default: the built-in ones)")
	cmd.Flags().BoolVar(&noInstrument, "no-instrument", false, "change nothing: prepare the image to boot as it is, without the backdoor (console-only tests)")
	cmd.Flags().BoolVar(&standalone, "standalone", false, "write a self-contained disk.qcow2 (slower, larger) instead of an overlay of the input")
	cmd.Flags().IntVar(&rootPartition, "root-partition", 0, "root partition number (default: the distro's, else automatic)")
	cmd.Flags().StringVar(&exportPlan, "export-plan", "", "write the planned edits to `DIR` (files/, dirs, symlinks) and exit; for bench/patch-vs-virt-customize.sh")
	_ = cmd.Flags().MarkHidden("export-plan")
	_ = cmd.RegisterFlagCompletionFunc("distro", completeReleases)
	_ = cmd.MarkFlagDirname("output")
	return cmd
}

// exportPlanTree writes plan as plain files so other tools can make the
// same edits: dir/files/<guest path> with the planned modes, dir/dirs
// ("MODE PATH" lines) and dir/symlinks ("PATH TARGET" lines).
func exportPlanTree(plan guest.Plan, dir string) error {
	var dirs, links strings.Builder
	for _, d := range plan.Dirs {
		fmt.Fprintf(&dirs, "%04o %s\n", d.Mode.Perm(), d.Path)
	}
	for _, f := range plan.Files {
		p := filepath.Join(dir, "files", filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("exporting the plan: %w", err)
		}
		if err := os.WriteFile(p, f.Data, f.Mode.Perm()); err != nil {
			return fmt.Errorf("exporting the plan: %w", err)
		}
		if err := os.Chmod(p, f.Mode.Perm()); err != nil {
			return fmt.Errorf("exporting the plan: %w", err)
		}
	}
	for _, s := range plan.Symlinks {
		fmt.Fprintf(&links, "%s %s\n", s.Path, s.Target)
	}
	if err := os.WriteFile(filepath.Join(dir, "dirs"), []byte(dirs.String()), 0o644); err != nil {
		return fmt.Errorf("exporting the plan: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "symlinks"), []byte(links.String()), 0o644); err != nil {
		return fmt.Errorf("exporting the plan: %w", err)
	}
	return nil
}

// asIsSpec is the spec of an image prepared as it is: the release ref
// names, or none.
func asIsSpec(dir, ref, system string) (imagepatch.Spec, error) {
	if ref == "" {
		return imagepatch.Spec{System: system}, nil
	}
	rel, err := lookupRelease(dir, ref)
	if err != nil {
		return imagepatch.Spec{}, err
	}
	return specFor(rel, system), nil
}

// loadCatalog loads distro descriptions from dir, or the built-in ones.
func loadCatalog(dir string) (*distro.Catalog, error) {
	if dir != "" {
		return distro.LoadDir(dir)
	}
	return distro.LoadFS(distros.FS, ".")
}

// releaseOf returns the release ref names, or when ref is "" the one the
// image's os-release names (saying so on stderr).
func releaseOf(dir, ref, image string, stderr io.Writer) (*distro.Release, error) {
	if ref != "" {
		return lookupRelease(dir, ref)
	}
	cat, err := loadCatalog(dir)
	if err != nil {
		return nil, err
	}
	rel, err := identifyImage(cat, image)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "%s: %s (from its os-release)\n", image, rel.Ref())
	return rel, nil
}

func lookupRelease(dir, ref string) (*distro.Release, error) {
	cat, err := loadCatalog(dir)
	if err != nil {
		return nil, err
	}
	return cat.Lookup(ref)
}

// specFor is what the patcher needs for rel on system: every fact of the
// release (distro.Spec; share_transport included) and the system.
func specFor(rel *distro.Release, system string) imagepatch.Spec {
	return imagepatch.Spec{Spec: rel.Spec(), System: system}
}

func completeReleases(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cat, err := distro.LoadFS(distros.FS, ".")
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []string
	for _, r := range cat.Releases() {
		out = append(out, r.Ref())
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
