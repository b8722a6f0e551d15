package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/diskimage"
)

func newImageInspectCommand() *cobra.Command {
	var asJSON bool
	var q diskimage.Query
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show the partitions, root filesystem, kernel, initrd and systemd version of a disk image",
		Long: `Read a qcow2 or raw disk image (never changing it) and print its partition
table (GPT or MBR), each partition's type, position, size, name and
filesystem (by superblock magic), the root partition, and from an ext4 root
its features, the kernel and initrd a direct kernel boot would use, the
systemd version and the os-release (whose ID/VERSION_ID 'image prepare IMAGE'
and 'image patch' without --distro take as the release).

Problems that would stop 'distrotest-gen image patch' (no ext4 root, no
kernel, a journal that needs recovery) are listed; the exit status is
non-zero only when the file is not a readable disk image.`,
		Example: "  distrotest-gen image inspect debian-13-generic-amd64.qcow2\n  distrotest-gen image inspect --json disk.qcow2",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := diskimage.Inspect(args[0], q)
			if err != nil {
				return fmt.Errorf("inspecting %s: %w", args[0], err)
			}
			// the release, as image prepare/patch would identify it
			osr, _ := osReleaseOf(args[0])
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					*diskimage.Report
					OSRelease map[string]string `json:"os_release,omitempty"`
				}{r, osr})
			}
			if err := printReport(w, r); err != nil {
				return err
			}
			if osr != nil {
				fmt.Fprintf(w, "os-release:       %s (ID=%s VERSION_ID=%s)\n", osr["PRETTY_NAME"], osr["ID"], osr["VERSION_ID"])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&q.RootPartition, "root-partition", 0, "root partition number (default: automatic)")
	cmd.Flags().StringVar(&q.Kernel, "kernel", "", "kernel pattern in the root (default "+diskimage.DefaultKernel+")")
	cmd.Flags().StringVar(&q.Initrd, "initrd", "", "initrd pattern in the root (default: initrd.img-VERSION, initramfs-VERSION.img, ... beside the kernel)")
	return cmd
}

func printReport(w io.Writer, r *diskimage.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "image:\t%s (%s, %s virtual)\n", r.Path, r.Format, humanSize(r.VirtualSize))
	fmt.Fprintf(tw, "partition table:\t%s\n", r.PartitionTable)
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tstart\tsize\ttype\tfilesystem\tlabel\tuuid\tname")
	for _, p := range r.Partitions {
		typ := p.TypeName
		if typ == "" {
			typ = p.Type
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Number, humanSize(p.Start), humanSize(p.Size), typ, dash(p.Filesystem), dash(p.FSLabel), dash(p.FSUUID), dash(p.Name))
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.RootPartition > 0 {
		fmt.Fprintf(tw, "root:\tpartition %d (%s, %s)\n", r.RootPartition, r.RootDevice, r.RootFilesystem)
	}
	if len(r.Ext4Features) > 0 {
		fmt.Fprintf(tw, "ext4 features:\t%s\n", strings.Join(r.Ext4Features, " "))
	}
	if b := r.Boot; b != nil {
		where := ""
		if b.Partition != r.RootPartition {
			where = fmt.Sprintf(" (partition %d)", b.Partition)
		}
		fmt.Fprintf(tw, "kernel:\t%s%s\n", b.Kernel, where)
		fmt.Fprintf(tw, "initrd:\t%s%s\n", b.Initrd, where)
		fmt.Fprintf(tw, "kernel version:\t%s\n", dash(b.KernelVersion))
		if b.Entry != "" {
			fmt.Fprintf(tw, "boot entry:\t%s: %s\n", b.Entry, strings.Join(b.Options, " "))
		}
	}
	if r.RootFilesystem == "ext4" || r.RootFilesystem == "xfs" {
		if r.SystemdVersion > 0 {
			fmt.Fprintf(tw, "systemd version:\t%d (%s)\n", r.SystemdVersion, r.SystemdFrom)
		} else {
			fmt.Fprintf(tw, "systemd version:\tnone found\n")
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note:\t%s\n", n)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(tw, "problem:\t%s\n", p)
	}
	return tw.Flush()
}

// humanSize prints a byte count in binary units: 512 B, 3 MiB, 2.9 GiB.
func humanSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f == float64(int64(f)) || i == 0 {
		return fmt.Sprintf("%d %s", int64(f), units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
