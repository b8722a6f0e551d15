package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/cache"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/imagebuild"
	"github.com/distrotest/distrotest/cmd/internal/imagepatch"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/term"
)

// patchRecipe changes whenever the patcher's output changes for the same
// input, so cached prepared images are rebuilt.
const patchRecipe = "imagepatch-1"

func newImagePrepareCommand() *cobra.Command {
	var system, cacheDir string
	var packages []string
	cmd := &cobra.Command{
		Use:   "prepare DISTRO/RELEASE",
		Short: "Build (from packages) and patch an image through the cache; print the prepared directory",
		Long: `Builds the base image from packages (cached), patches it (cached) and prints the
prepared directory: what 'distrotest run --image debian/13' uses without Nix.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeReleases,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rel, err := lookupRelease("", args[0])
			if err != nil {
				return err
			}
			if rel.Build == nil {
				return fmt.Errorf("%s has no build recipe: let Nix fetch its image (lib.<system>.%s.\"%s\") or patch a downloaded image with 'distrotest-gen image patch'", rel.Ref(), rel.Distro, rel.Version)
			}
			if cacheDir == "" {
				if cacheDir, err = cache.DefaultDir(); err != nil {
					return err
				}
			}
			opts := imagebuild.Options{CacheDir: cacheDir, Logger: slog.Default()}
			if !term.CI() {
				opts.Progress = os.Stderr
			}
			base, err := imagebuild.Build(ctx, imagebuild.Request{Distro: rel.Distro, Release: rel.Version, Arch: system, ExtraPackages: packages}, opts)
			if err != nil {
				return err
			}
			st, err := os.Stat(base)
			if err != nil {
				return fmt.Errorf("preparing %s: %w", rel.Ref(), err)
			}
			h := sha256.New()
			fmt.Fprintf(h, "%s\n%s\n%d\n%d\n%s\n", patchRecipe, base, st.Size(), st.ModTime().UnixNano(), guest.NewPlan().Hash())
			key := hex.EncodeToString(h.Sum(nil))[:12]
			out := filepath.Join(cache.Prepared(cacheDir), fmt.Sprintf("%s-%s-%s-%s", rel.Distro, rel.Version, system, key))
			if _, err := manifest.Load(out); err == nil {
				fmt.Fprintln(cmd.OutOrStdout(), out)
				return nil
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return fmt.Errorf("preparing %s: %w", rel.Ref(), err)
			}
			unlock, err := cache.Lock(ctx, out+".lock", slog.Default())
			if err != nil {
				return err
			}
			defer unlock()
			if _, err := manifest.Load(out); err == nil { // prepared while we waited
				fmt.Fprintln(cmd.OutOrStdout(), out)
				return nil
			}
			start := time.Now()
			if _, _, err := imagepatch.Patch(ctx, base, out, specFor(rel, system), guest.NewPlan(), imagepatch.Options{Logger: slog.Default()}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "image %s (%s): patched in %s\n", rel.Ref(), system, time.Since(start).Round(time.Millisecond))
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&system, "system", "x86_64-linux", "Nix system")
	cmd.Flags().StringSliceVar(&packages, "packages", nil, "build the base image with these extra packages, e.g. nix-bin (see image build)")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "cache directory (default $XDG_CACHE_HOME/distrotest)")
	return cmd
}
