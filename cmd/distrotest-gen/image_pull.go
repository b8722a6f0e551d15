package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/cache"
	"github.com/distrotest/distrotest/cmd/internal/ociimage"
	"github.com/distrotest/distrotest/cmd/internal/term"
)

func newImagePullCommand() *cobra.Command {
	var o registryFlags
	var out, cacheDir string
	var preparedImage bool
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull a KubeVirt containerDisk (or, with --prepared, a prepared image) from an OCI registry",
		Long: `Pull the disk of a KubeVirt containerDisk (an image whose one layer holds
disk/disk.img, qcow2 or raw) into the image cache and print its path. REF is
best pinned by digest (quay.io/containerdisks/debian:13@sha256:...): the
manifest digest and the layer's blob digest are verified, and a pinned
reference is found in the cache without asking the registry. A
multi-architecture index gives the image for --system. The sha256 of the
disk (the hash a Nix fixed-output derivation pins) is printed on stderr.
With -o the disk is written to FILE instead of the cache.

With --prepared, REF is a prepared image pushed by 'distrotest-gen image push'
(or 'image prepare --push'); it is written to -o DIR, or into the cache, and
the directory is printed.

On any error (wrong digest, missing tag, registry down, an image that holds
no disk) nothing is left in the cache. Credentials come from the Docker
config (docker login); plain HTTP is used only for loopback registries
unless --insecure is given.`,
		Example: `  distrotest-gen image pull quay.io/containerdisks/debian:13@sha256:...
  distrotest-gen image pull 127.0.0.1:5000/cd/debian:13 -o disk.img
  distrotest-gen image pull --prepared 127.0.0.1:5000/distrotest/prepared:debian-13-x86_64-linux-0123456789abcdef`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := o.options(cmd.ErrOrStderr())
			if cacheDir == "" && out == "" {
				var err error
				if cacheDir, err = cache.DefaultDir(); err != nil {
					return err
				}
			}
			if preparedImage {
				dir := out
				if dir == "" {
					dir = filepath.Join(cache.PreparedPulled(cacheDir), refDirName(args[0]))
				}
				p, err := ociimage.PullPrepared(cmd.Context(), args[0], dir, opts)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "pulled %s (%s/%s, key %s) as %s\n", args[0], p.Config.Distro, p.Config.Release, p.Config.Key, p.Digest)
				fmt.Fprintln(cmd.OutOrStdout(), p.Dir)
				return nil
			}
			var d *ociimage.Disk
			var err error
			if out != "" {
				d, err = ociimage.WriteDisk(cmd.Context(), args[0], out, opts)
			} else {
				d, err = ociimage.PullDisk(cmd.Context(), args[0], cacheDir, opts)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "containerDisk %s: %s disk, %s, sha256 %s\n", args[0], d.Format, humanSize(d.Size), d.SHA256)
			fmt.Fprintln(cmd.OutOrStdout(), d.Path)
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the disk to `FILE` (with --prepared: the directory) instead of the cache")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "cache directory (default $XDG_CACHE_HOME/distrotest)")
	cmd.Flags().BoolVar(&preparedImage, "prepared", false, "REF is a prepared image (disk, kernel, initrd, manifest), not a containerDisk")
	return cmd
}

// registryFlags are the flags of the commands that talk to registries.
type registryFlags struct {
	insecure bool
	system   string
}

func (f *registryFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.insecure, "insecure", false, "allow plain HTTP to a registry that is not on a loopback address")
	cmd.Flags().StringVar(&f.system, "system", "x86_64-linux", "Nix system of the image")
}

// options are the registry options; progress bars go to stderr when it is
// an interactive terminal.
func (f *registryFlags) options(stderr io.Writer) ociimage.Options {
	o := ociimage.Options{Insecure: f.insecure, System: f.system, Logger: slog.Default()}
	if term.Progress(stderr) {
		o.Progress = stderr
	}
	return o
}

// refDirName turns an image reference into a directory name.
func refDirName(ref string) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(ref)
}
