package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/distro"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/imagepatch"
	"github.com/distrotest/distrotest/distros"
)

func newImagePatchCommand() *cobra.Command {
	var ref, out, system, dir string
	var standalone bool
	cmd := &cobra.Command{
		Use:   "patch --distro DISTRO/RELEASE IMAGE -o DIR",
		Short: "Prepare a qcow2 or raw image for distrotest offline (backdoor, mounts, network)",
		Long: `Writes the guest assets into the image's ext4 root with go-diskfs (no VM, no root,
no loop device) and writes DIR/{disk.qcow2,vmlinuz,initrd,manifest.json}.
The input is never modified. disk.qcow2 is an overlay whose backing file is the
input's absolute path, unless --standalone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ref == "" || out == "" {
				return fmt.Errorf("--distro and -o are required")
			}
			rel, err := lookupRelease(dir, ref)
			if err != nil {
				return err
			}
			m, st, err := imagepatch.Patch(cmd.Context(), args[0], out, specFor(rel, system), guest.NewPlan(),
				imagepatch.Options{Standalone: standalone, Logger: slog.Default()})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "patched %s (%s, kernel %s, systemd %d) in %s\n",
				args[0], m.RootDevice, m.KernelVersion, m.SystemdVersion, st.Duration.Round(time.Millisecond))
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&ref, "distro", "", "distro release, e.g. debian/13")
	cmd.Flags().StringVarP(&out, "output", "o", "", "output directory (replaced atomically)")
	cmd.Flags().StringVar(&system, "system", "x86_64-linux", "Nix system of the image")
	cmd.Flags().StringVar(&dir, "distros", "", "directory of distro descriptions (default: the built-in ones)")
	cmd.Flags().BoolVar(&standalone, "standalone", false, "write a self-contained disk.qcow2 (slower) instead of an overlay of the input")
	cmd.RegisterFlagCompletionFunc("distro", completeReleases)
	return cmd
}

// loadCatalog loads distro descriptions from dir, or the built-in ones.
func loadCatalog(dir string) (*distro.Catalog, error) {
	if dir != "" {
		return distro.LoadDir(dir)
	}
	return distro.LoadFS(distros.FS, ".")
}

func lookupRelease(dir, ref string) (*distro.Release, error) {
	cat, err := loadCatalog(dir)
	if err != nil {
		return nil, err
	}
	return cat.Lookup(ref)
}

func specFor(rel *distro.Release, system string) imagepatch.Spec {
	return imagepatch.Spec{
		Distro: rel.Distro, Release: rel.Version, System: system,
		Strategy: string(rel.Strategy), Rootfs: string(rel.Rootfs), RootPartition: rel.RootPartition,
		Kernel: rel.Kernel, Initrd: rel.Initrd,
	}
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
