package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/ociimage"
)

func newImagePushCommand() *cobra.Command {
	var o registryFlags
	var containerDisk bool
	var tmpDir string
	cmd := &cobra.Command{
		Use:   "push SOURCE REF",
		Short: "Push a prepared image (or, with --containerdisk, a KubeVirt containerDisk) to an OCI registry",
		Long: `Push SOURCE to the OCI registry at REF and print the pushed reference with
its digest.

SOURCE is a prepared image directory, DISTRO/RELEASE (prepared through the
cache first, as 'image prepare' does), or with --containerdisk also a qcow2
or raw disk file.

By default a prepared image is pushed as an OCI artifact, one blob per file
(disk.qcow2, vmlinuz, initrd, manifest.json); 'image pull --prepared' and
'image prepare --registry' get it back. For DISTRO/RELEASE, REF may be a
repository without a tag: the tag is then the prepared-image cache key,
<distro>-<release>-<system>-<key>, which is what 'image prepare --registry'
looks for. A disk that is an overlay of its base image is made
self-contained first.

With --containerdisk the disk is pushed as a KubeVirt containerDisk (one
layer with disk/disk.img) that KubeVirt, crun-vm and 'image pull' can use.

Credentials come from the Docker config (docker login); plain HTTP is used
only for loopback registries unless --insecure is given.`,
		Example: `  distrotest-gen image push debian/13 127.0.0.1:5000/distrotest/prepared
  distrotest-gen image push --containerdisk ~/.cache/distrotest/images/debian-13-*/disk.qcow2 127.0.0.1:5000/cd/debian:13`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, ref := args[0], args[1]
			opts := o.options(cmd.ErrOrStderr())
			dir, key := src, ""
			if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) && strings.Count(src, "/") == 1 {
				p, err := prepareRelease(ctx, src, prepareOptions{system: o.system, oci: opts}, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				dir, key = p.dir, p.key
				if !containerDisk && !hasTagOrDigest(ref) {
					ref += ":" + p.tag
				}
			} else if err != nil {
				return fmt.Errorf("pushing %s: %w", src, err)
			}
			var pushed *ociimage.Pushed
			var err error
			if containerDisk {
				disk := dir
				if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
					m, err := manifest.Load(dir)
					if err != nil {
						return err
					}
					disk = manifest.Path(dir, m.Disk)
				}
				pushed, err = ociimage.PushContainerDisk(ctx, disk, ref, tmpDir, opts)
			} else {
				if !hasTagOrDigest(ref) {
					return fmt.Errorf("pushing %s: give REF with a tag (repository:tag), or push DISTRO/RELEASE to tag it with its cache key", src)
				}
				pushed, err = ociimage.PushPrepared(ctx, dir, ref, key, tmpDir, opts)
			}
			if err != nil {
				return err
			}
			if pushed.DiskSHA256 != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "disk sha256 %s\n", pushed.DiskSHA256)
			}
			fmt.Fprintln(cmd.OutOrStdout(), pushed.Ref)
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&containerDisk, "containerdisk", false, "push a KubeVirt containerDisk of the disk")
	cmd.Flags().StringVar(&tmpDir, "tmp-dir", "", "directory for the temporary self-contained disk and layer (default $TMPDIR)")
	return cmd
}

// hasTagOrDigest reports whether ref names a tag or digest, not only a
// repository.
func hasTagOrDigest(ref string) bool {
	return strings.ContainsAny(ref[strings.LastIndex(ref, "/")+1:], ":@")
}
