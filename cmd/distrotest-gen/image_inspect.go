package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/imagepatch"
)

func newImageInspectCommand() *cobra.Command {
	var asJSON bool
	var root int
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show partitions, root filesystem, kernel, initrd and systemd version of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := imagepatch.Inspect(args[0], imagepatch.Spec{RootPartition: root})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			fmt.Fprintf(w, "image:            %s (%s, %d MiB virtual)\n", info.Path, info.Format, info.VirtualSize>>20)
			fmt.Fprintf(w, "partition table:  %s\n", info.PartitionTable)
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  #\tstart\tsize\tfilesystem\tname")
			for _, p := range info.Partitions {
				fs := p.FS
				if fs == "" {
					fs = "-"
				}
				fmt.Fprintf(tw, "  %d\t%d MiB\t%d MiB\t%s\t%s\n", p.Index, p.Start>>20, p.Size>>20, fs, p.Label)
			}
			tw.Flush()
			fmt.Fprintf(w, "root:             partition %d (%s)\n", info.RootPartition, info.RootFilesystem)
			fmt.Fprintf(w, "kernel:           %s\n", info.Kernel)
			fmt.Fprintf(w, "initrd:           %s\n", info.Initrd)
			fmt.Fprintf(w, "kernel version:   %s\n", info.KernelVersion)
			fmt.Fprintf(w, "systemd version:  %d\n", info.SystemdVersion)
			for _, p := range info.Problems {
				fmt.Fprintf(w, "problem:          %s\n", p)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&root, "root-partition", 0, "root partition number (default: the largest Linux filesystem)")
	return cmd
}
