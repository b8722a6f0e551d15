package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	var level string
	root := &cobra.Command{
		Use:           "distrotest-gen",
		Short:         "Build-time tool of distrotest: distro descriptions to Nix, offline image build and patch",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			var l slog.Level
			if err := l.UnmarshalText([]byte(level)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
			return nil
		},
	}
	root.PersistentFlags().StringVar(&level, "log-level", "warn", "log level: debug, info, warn, error")
	root.AddCommand(newImageCommand(), newGenCommand(), newValidateCommand(), newListCommand())
	return root
}

func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build, inspect and patch distro disk images offline (no VM, no root, no loop device); pull and push them through OCI registries",
	}
	cmd.AddCommand(newImageBuildCommand(), newImagePrepareCommand(), newImageInspectCommand(), newImagePatchCommand(),
		newImagePullCommand(), newImagePushCommand())
	return cmd
}
