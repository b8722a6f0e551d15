package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// globalOptions are the root command's persistent flags.
type globalOptions struct {
	logLevel slog.Level
}

func newRootCommand() *cobra.Command {
	var level string
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "distrotest",
		Short: "Run NixOS-style VM tests on Debian, Ubuntu, Fedora and other distro images",
		Long: `distrotest boots prepared distro images under QEMU and runs a Python test
script with the NixOS test driver's API (start_all(), machine.succeed(...),
wait_for_unit(...), subtest(...)). Images are prepared by distrotest-gen or by
the Nix library; driver.json is written by the Nix library.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if env := os.Getenv("logLevel"); env != "" && !cmd.Flags().Changed("log-level") {
				level = env // nixpkgs' driver reads its default from $logLevel
			}
			var err error
			if g.logLevel, err = parseLogLevel(level); err != nil {
				return err
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: g.logLevel})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&level, "log-level", "info", "what the machines and the runner log: debug, info, warning (or warn), error; default $logLevel, else info")
	root.AddCommand(newRunCommand(g), newVersionCommand())
	return root
}

// parseLogLevel accepts slog's level names and nixpkgs' ("warning"), in
// any case.
func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	name := strings.ToLower(strings.TrimSpace(s))
	if name == "warning" {
		name = "warn"
	}
	if err := l.UnmarshalText([]byte(name)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warning or error", s)
	}
	return l, nil
}
