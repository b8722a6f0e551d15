package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/distro"
	"github.com/distrotest/distrotest/cmd/internal/term"
)

func newValidateCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the distro descriptions (distros/*.hcl) without generating anything",
		Long: `Check the distro descriptions: HCL syntax, unknown or missing attributes,
hashes (sha256: hex, Nix base-32 or SRI; sha512: hex, Nix base-32 or SRI),
duplicate releases and images, and the values of strategy, rootfs, network,
quirks and image systems. Problems are printed on stderr with their position
(file:line:column) and source line; the exit status is non-zero when there
are any.`,
		Example: "  distrotest-gen validate\n  distrotest-gen validate --dir path/to/distros",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := loadDistros(cmd, dir)
			if err != nil {
				return err
			}
			releases := cat.Releases()
			images := 0
			for _, r := range releases {
				images += len(r.Images)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d distros, %d releases, %d images: ok\n", dir, len(cat.Distros), len(releases), images)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "distros", "directory of the distro descriptions (*.hcl)")
	return cmd
}

// loadDistros loads the descriptions in dir. Diagnostics are rendered on
// the command's stderr and summed up in the returned error.
func loadDistros(cmd *cobra.Command, dir string) (*distro.Catalog, error) {
	cat, err := distro.LoadDir(dir)
	var de *distro.DiagnosticsError
	if errors.As(err, &de) {
		stderr := cmd.ErrOrStderr()
		if werr := de.Write(stderr, 0, term.Color(stderr)); werr != nil {
			return nil, fmt.Errorf("writing diagnostics: %w", werr)
		}
		n := len(de.Diagnostics.Errs())
		return nil, fmt.Errorf("%s: %d %s in the distro descriptions", dir, n, plural(n, "error", "errors"))
	}
	return cat, err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
