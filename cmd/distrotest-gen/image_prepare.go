package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/distrotest/distrotest/cmd/internal/cache"
	"github.com/distrotest/distrotest/cmd/internal/imagebuild"
	"github.com/distrotest/distrotest/cmd/internal/imagepatch"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/ociimage"
	"github.com/distrotest/distrotest/cmd/internal/term"
)

// patchRecipe changes whenever the patcher's output changes for the same
// input, so cached prepared images are rebuilt.
const patchRecipe = "imagepatch-3" // 3: the manifest names a share transport only where the kernel needs it

func newImagePrepareCommand() *cobra.Command {
	var o prepareOptions
	var distroRef string
	var noInstrument bool
	cmd := &cobra.Command{
		Use:   "prepare DISTRO/RELEASE | IMAGE",
		Short: "Build (from packages) and patch an image through the cache; print the prepared directory",
		Long: `Builds the base image from packages (cached), patches it (cached) and prints the
prepared directory: what 'distrotest run --image debian/13' uses without Nix.

Given an IMAGE file (qcow2 or raw) instead, it patches that image through the
cache (what 'distrotest run --image ./disk.qcow2' uses): the release is the
one its /etc/os-release names (ID/VERSION_ID), or --distro's. The prepared
disk is an overlay of IMAGE, which must stay where it is, unchanged (a
changed file gets a new entry). An image that cannot be instrumented (its
release unknown, a root filesystem or strategy the patcher does not
handle), or any image with --no-instrument, is prepared to boot as it is:
no backdoor, so tests can use only the console, the screen, keys and power,
and a shell call fails with the reason.

With --registry REPO the prepared image is first looked up in the registry,
tagged with its cache key (REPO:<distro>-<release>-<system>-<key>, the key
a hash of the build recipe, the patcher's recipe and the guest assets, the
same on every machine); when it is there it is pulled instead of built. With
--push an image prepared here is pushed there, so a fleet of CI machines
prepares each image once. A registry that is down or lacks the tag, or a
push that fails, only costs a warning: the image is prepared locally.`,
		Example:           "  distrotest-gen image prepare debian/13\n  distrotest-gen image prepare --registry 127.0.0.1:5000/distrotest/prepared --push debian/13",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeReleases,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.push && o.registry == "" {
				return errors.New("--push needs --registry")
			}
			o.oci.System = o.system
			var p *prepared
			var err error
			if fi, serr := os.Stat(args[0]); serr == nil && fi.Mode().IsRegular() {
				if o.registry != "" {
					return errors.New("--registry goes with DISTRO/RELEASE, not with an image file")
				}
				p, err = prepareFile(cmd.Context(), args[0], distroRef, noInstrument, o, cmd.ErrOrStderr())
			} else {
				if distroRef != "" || noInstrument {
					return errors.New("--distro and --no-instrument go with an image file")
				}
				p, err = prepareRelease(cmd.Context(), args[0], o, cmd.ErrOrStderr())
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), p.dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.system, "system", "x86_64-linux", "Nix system")
	cmd.Flags().StringVar(&o.cacheDir, "cache-dir", "", "cache directory (default $XDG_CACHE_HOME/distrotest)")
	cmd.Flags().StringVar(&o.registry, "registry", "", "repository of prepared images to pull from (e.g. 127.0.0.1:5000/distrotest/prepared)")
	cmd.Flags().BoolVar(&o.push, "push", false, "push an image prepared here to --registry")
	cmd.Flags().StringVar(&distroRef, "distro", "", "with an IMAGE file: its release (default: from its /etc/os-release)")
	_ = cmd.RegisterFlagCompletionFunc("distro", completeReleases)
	cmd.Flags().BoolVar(&noInstrument, "no-instrument", false, "with an IMAGE file: boot it as it is, without the backdoor (console-only tests)")
	cmd.Flags().BoolVar(&o.oci.Insecure, "insecure", false, "allow plain HTTP to a registry that is not on a loopback address")
	cmd.Flags().StringSliceVar(&o.packages, "packages", nil, "build the base image with these extra packages, e.g. nix-bin (see image build)")
	return cmd
}

// prepareOptions are the settings of prepareRelease.
type prepareOptions struct {
	system, cacheDir string
	packages         []string // extra packages for the base image build
	registry         string   // repository of prepared images, "" for none
	push             bool     // push a locally prepared image to registry
	oci              ociimage.Options
}

// prepared is a prepared image directory in the cache.
type prepared struct {
	dir string
	key string // the prepared-image cache key
	tag string // the registry tag for it: <distro>-<release>-<system>-<key>
}

// preparedKey is the prepared-image cache key: a hash of what goes into a
// prepared image — the patcher's recipe, every fact of the release (the
// distro spec), the system, the guest plan for that spec and baseID, the
// identity of the base image (its build recipe key). It does not depend on
// the machine, so it tags prepared images in registries.
func preparedKey(baseID string, spec imagepatch.Spec) string {
	h := sha256.New()
	planHash := "no plan"
	if plan, err := imagepatch.PlanFor(spec.Spec); err == nil {
		planHash = plan.Hash()
	}
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s\n", patchRecipe, baseID, spec.Spec.Hash(), spec.System, planHash)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// prepareRelease returns the prepared image of the distro release ref from
// the cache, pulling it from o.registry or building and patching it there
// first. Progress goes to stderr.
func prepareRelease(ctx context.Context, ref string, o prepareOptions, stderr io.Writer) (*prepared, error) {
	rel, err := lookupRelease("", ref)
	if err != nil {
		return nil, err
	}
	if rel.Build == nil {
		return nil, fmt.Errorf("%s has no build recipe: let Nix fetch its image (lib.<system>.%s.\"%s\") or patch a downloaded image with 'distrotest-gen image patch'", rel.Ref(), rel.Distro, rel.Version)
	}
	cacheDir := o.cacheDir
	if cacheDir == "" {
		if cacheDir, err = cache.DefaultDir(); err != nil {
			return nil, err
		}
	}
	req := imagebuild.Request{Distro: rel.Distro, Release: rel.Version, Arch: o.system, ExtraPackages: o.packages}
	recipeKey, err := imagebuild.RecipeKey(req)
	if err != nil {
		return nil, err
	}
	spec := specFor(rel, o.system)
	name := fmt.Sprintf("%s-%s-%s", rel.Distro, rel.Version, o.system)
	p := &prepared{key: preparedKey("build:"+recipeKey, spec)}
	p.tag = name + "-" + p.key

	// A prepared image pulled from a registry is self-contained: it is
	// found by its key alone.
	pulled := filepath.Join(cache.PreparedPulled(cacheDir), p.tag)
	if _, err := manifest.Load(pulled); err == nil {
		p.dir = pulled
		return p, nil
	}
	if o.registry != "" {
		if err := os.MkdirAll(filepath.Dir(pulled), 0o755); err != nil {
			return nil, fmt.Errorf("preparing %s: %w", rel.Ref(), err)
		}
		unlock, err := cache.Lock(ctx, pulled+".lock", slog.Default())
		if err != nil {
			return nil, err
		}
		if _, err := manifest.Load(pulled); err == nil { // pulled while we waited
			unlock()
			p.dir = pulled
			return p, nil
		}
		start := time.Now()
		_, err = ociimage.PullPrepared(ctx, o.registry+":"+p.tag, pulled, o.oci)
		unlock()
		if err == nil {
			fmt.Fprintf(stderr, "image %s (%s): pulled %s:%s in %s\n", rel.Ref(), o.system, o.registry, p.tag, time.Since(start).Round(time.Millisecond))
			p.dir = pulled
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if errors.Is(err, ociimage.ErrNotFound) {
			fmt.Fprintf(stderr, "image %s (%s): %s:%s is not in the registry yet; preparing it here\n", rel.Ref(), o.system, o.registry, p.tag)
		} else {
			fmt.Fprintf(stderr, "image %s (%s): not pulled, preparing it here: %v\n", rel.Ref(), o.system, err)
		}
	}

	bopts := imagebuild.Options{CacheDir: cacheDir, Logger: slog.Default()}
	if !term.CI() {
		bopts.Progress = stderr
	}
	base, err := imagebuild.Build(ctx, req, bopts)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(base)
	if err != nil {
		return nil, fmt.Errorf("preparing %s: %w", rel.Ref(), err)
	}
	// The local directory's disk is an overlay of base by its path: its
	// name also depends on that file, so a rebuilt base is never used
	// under an old overlay.
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%d\n%d\n", p.key, base, st.Size(), st.ModTime().UnixNano())
	p.dir = filepath.Join(cache.Prepared(cacheDir), name+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	if _, err := manifest.Load(p.dir); err != nil {
		if err := patchLocked(ctx, rel.Ref(), base, p.dir, spec, stderr); err != nil {
			return nil, err
		}
	}
	if o.push {
		start := time.Now()
		pushed, err := ociimage.PushPrepared(ctx, p.dir, o.registry+":"+p.tag, p.key, "", o.oci)
		switch {
		case ctx.Err() != nil:
			return nil, err
		case err != nil: // the registry is a cache: the image is ready anyway
			fmt.Fprintf(stderr, "image %s (%s): warning: not pushed: %v\n", rel.Ref(), o.system, err)
		default:
			fmt.Fprintf(stderr, "image %s (%s): pushed %s in %s\n", rel.Ref(), o.system, pushed.Ref, time.Since(start).Round(time.Millisecond))
		}
	}
	return p, nil
}

// prepareFile prepares the disk image at path through the cache, as the
// release ref ("" for the one its os-release names). An image that cannot
// be instrumented (its release unknown, a root filesystem or strategy the
// patcher does not handle), or any image with noInstrument, is prepared to
// boot as it is (imagepatch.AsIs), saying why on stderr.
func prepareFile(ctx context.Context, path, ref string, noInstrument bool, o prepareOptions, stderr io.Writer) (*prepared, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("preparing %s: %w", path, err)
	}
	cacheDir := o.cacheDir
	if cacheDir == "" {
		if cacheDir, err = cache.DefaultDir(); err != nil {
			return nil, err
		}
	}
	file := fmt.Sprintf("file:%s:%d:%d", abs, st.Size(), st.ModTime().UnixNano())
	own, err := imagepatch.FindOwnBackdoorIn(abs, 0)
	if err != nil {
		return nil, err
	}
	if own != nil {
		return prepareOwnBackdoor(ctx, path, abs, file, ref, own, o, cacheDir, stderr)
	}
	var reason string
	rel, err := releaseOf("", ref, abs, stderr)
	switch {
	case noInstrument:
		reason = "asked for with --no-instrument"
	case err != nil:
		reason = err.Error()
	default:
		spec := specFor(rel, o.system)
		p := &prepared{key: preparedKey(file, spec)}
		p.dir = filepath.Join(cache.Prepared(cacheDir), fmt.Sprintf("%s-%s-%s-file-%s", rel.Distro, rel.Version, o.system, p.key))
		if _, err := manifest.Load(p.dir); err == nil {
			return p, nil
		}
		err := patchLocked(ctx, rel.Ref(), abs, p.dir, spec, stderr)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		reason = err.Error()
	}

	fmt.Fprintf(stderr, "%s: booting it as it is, uninstrumented (console, screen, keys and power only): %s\n", path, reason)
	spec, name := imagepatch.Spec{System: o.system}, "image-"+o.system
	if rel != nil {
		spec, name = specFor(rel, o.system), fmt.Sprintf("%s-%s-%s", rel.Distro, rel.Version, o.system)
	}
	p := &prepared{key: preparedKey("as-is:"+file+":"+reason, spec)}
	p.dir = filepath.Join(cache.Prepared(cacheDir), name+"-asis-"+p.key)
	return p, prepareOnce(ctx, path, p.dir, func() error {
		_, err := imagepatch.AsIs(ctx, abs, p.dir, spec, reason, imagepatch.Options{Logger: slog.Default()})
		return err
	})
}

// prepareOnce runs prepare to write the prepared directory dir (of the
// image at path) under the cache's lock, unless it is there already.
func prepareOnce(ctx context.Context, path, dir string, prepare func() error) error {
	if _, err := manifest.Load(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("preparing %s: %w", path, err)
	}
	unlock, err := cache.Lock(ctx, dir+".lock", slog.Default())
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := manifest.Load(dir); err == nil { // prepared while we waited
		return nil
	}
	return prepare()
}

// prepareOwnBackdoor prepares the image at abs, which has its own
// NixOS-style backdoor, to be driven as it is (imagepatch.AsIsOwnBackdoor):
// nothing is patched, whatever release it is.
func prepareOwnBackdoor(ctx context.Context, path, abs, file, ref string, own *imagepatch.OwnBackdoor, o prepareOptions, cacheDir string, stderr io.Writer) (*prepared, error) {
	spec, err := asIsSpec("", ref, o.system)
	if err != nil {
		return nil, err
	}
	name := "image-" + o.system
	if spec.Distro != "" {
		name = fmt.Sprintf("%s-%s-%s", spec.Distro, spec.Release, o.system)
	}
	fmt.Fprintf(stderr, "%s: has its own NixOS-style backdoor (%s, shell on hvc0): driving it as it is, without patching\n", path, ownBackdoorName(own))
	p := &prepared{key: preparedKey("own-backdoor:"+file+":"+own.Unit, spec)}
	p.dir = filepath.Join(cache.Prepared(cacheDir), name+"-own-"+p.key)
	return p, prepareOnce(ctx, path, p.dir, func() error {
		_, err := imagepatch.AsIsOwnBackdoor(ctx, abs, p.dir, spec, own, imagepatch.Options{Logger: slog.Default()})
		return err
	})
}

// ownBackdoorName names an image's own backdoor for messages: its unit,
// and the script that prints the marker when that is another file.
func ownBackdoorName(b *imagepatch.OwnBackdoor) string {
	if b.Script == b.Unit {
		return b.Unit
	}
	return b.Unit + ", which runs " + b.Script
}

// patchLocked patches base into out under a lock, unless another process
// did it while we waited.
func patchLocked(ctx context.Context, ref, base, out string, spec imagepatch.Spec, stderr io.Writer) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("preparing %s: %w", ref, err)
	}
	unlock, err := cache.Lock(ctx, out+".lock", slog.Default())
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := manifest.Load(out); err == nil { // prepared while we waited
		return nil
	}
	plan, err := imagepatch.PlanFor(spec.Spec)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, _, err := imagepatch.Patch(ctx, base, out, spec, plan, imagepatch.Options{Logger: slog.Default()}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "image %s (%s): patched in %s\n", ref, spec.System, time.Since(start).Round(time.Millisecond))
	return nil
}
