package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/imagebuild"
	"github.com/distrotest/distrotest/cmd/internal/term"
)

func newImageBuildCommand() *cobra.Command {
	var arch, out, mirror string
	var packages []string
	var refs []string
	for _, r := range imagebuild.Releases() {
		refs = append(refs, r.Ref()+" ("+strings.Join(r.Arches, ", ")+")")
	}
	cmd := &cobra.Command{
		Use:   "build DISTRO/RELEASE",
		Short: "Build a cloud-like qcow2 from distro packages into the image cache",
		Long: `Build a cloud-like qcow2 image (GPT: p1 ext4 root, p14 BIOS boot, p15 ESP;
kernel and initrd in /boot, for direct kernel boot) from the distro's packages
with mmdebstrap, without loop devices or mounts. Needs root.

shape/el, shape/fedora and shape/ubuntu are stand-in test shapes built from
Debian (trixie) packages with those families' disk and boot layout (EL: xfs
/boot and root, dracut, no 9p; Fedora: ext4 /boot with BLS entries, btrfs
root in subvolume root; Ubuntu 24.04: ext4 BOOT partition, initramfs-tools).
They are not those distros.

The image is cached under $XDG_CACHE_HOME/distrotest/images (default
~/.cache/distrotest/images); a second call returns it at once. The path of the
image is printed on stdout (the copy's with -o), progress goes to stderr.

Supported: ` + strings.Join(refs, ", "),
		Example: "  distrotest-gen image build debian/13\n  distrotest-gen image build debian/12 -o out/",
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []string
			for _, r := range imagebuild.Releases() {
				out = append(out, r.Ref())
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := imagebuild.ParseRef(args[0], arch)
			if err != nil {
				return err
			}
			req.Mirror = mirror
			req.ExtraPackages = packages
			stderr := cmd.ErrOrStderr()
			opts := imagebuild.Options{Logger: slog.Default()}
			if term.Progress(stderr) {
				opts.Progress = stderr
			}
			_, cached, err := imagebuild.Lookup(req, "")
			if err != nil {
				return err
			}
			start := time.Now()
			path, err := imagebuild.Build(cmd.Context(), req, opts)
			if err != nil {
				return err
			}
			if cached {
				fmt.Fprintf(stderr, "image %s: cached\n", req)
			} else {
				fmt.Fprintf(stderr, "image %s: built in %s\n", req, time.Since(start).Round(time.Second))
			}
			if out != "" {
				if path, err = imagebuild.Export(path, out); err != nil {
					return err
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&arch, "arch", "x86_64-linux", "system to build for (Nix system name)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "also copy the image to `DIR`/disk.qcow2")
	cmd.Flags().StringSliceVar(&packages, "packages", nil, "extra packages to install, e.g. nix-bin for a guest with Nix (part of the cache key)")
	cmd.Flags().StringVar(&mirror, "mirror", "", "package mirror URL (default "+imagebuild.DefaultMirror+"; part of the cache key)")
	_ = cmd.RegisterFlagCompletionFunc("arch", cobra.FixedCompletions([]string{"x86_64-linux"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.MarkFlagDirname("output")
	return cmd
}
