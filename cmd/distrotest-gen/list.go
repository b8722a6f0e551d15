package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// listEntry is one release in `list --json`.
type listEntry struct {
	Distro     string   `json:"distro"`
	Release    string   `json:"release"`
	Codename   string   `json:"codename,omitempty"`
	Systems    []string `json:"systems"`
	Strategy   string   `json:"strategy"`
	Rootfs     string   `json:"rootfs"`
	Supported  bool     `json:"supported"`
	BuildSuite string   `json:"build_suite,omitempty"`
}

func newListCommand() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the distro releases, their systems and whether the patcher supports them",
		Long: `List every release described in distros/*.hcl: the Nix systems it has images
for, how the backdoor gets in (strategy), the root filesystem, and whether
the image patcher supports it today (strategy "disk" on ext4). A release that
can be built from packages lists its suite (--json: build_suite).`,
		Example: "  distrotest-gen list\n  distrotest-gen list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := loadDistros(cmd, dir)
			if err != nil {
				return err
			}
			entries := []listEntry{}
			for _, r := range cat.Releases() {
				e := listEntry{
					Distro:    r.Distro,
					Release:   r.Version,
					Codename:  r.Codename,
					Systems:   r.Systems(),
					Strategy:  string(r.Strategy),
					Rootfs:    string(r.Rootfs),
					Supported: r.Supported(),
				}
				if r.Build != nil {
					e.BuildSuite = r.Build.Suite
				}
				entries = append(entries, e)
			}
			stdout := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "DISTRO\tRELEASE\tCODENAME\tSYSTEMS\tSTRATEGY\tROOTFS\tSUPPORTED\tBUILD")
			for _, e := range entries {
				supported := "no"
				if e.Supported {
					supported = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Distro, e.Release, dash(e.Codename),
					dash(strings.Join(e.Systems, ",")), e.Strategy, e.Rootfs, supported, dash(e.BuildSuite))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "distros", "directory of the distro descriptions (*.hcl)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
