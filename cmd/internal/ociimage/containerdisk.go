package ociimage

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/distrotest/distrotest/cmd/internal/atomicfile"
	"github.com/distrotest/distrotest/cmd/internal/cache"
	"github.com/distrotest/distrotest/cmd/internal/ctxio"
	"github.com/distrotest/distrotest/cmd/internal/diskimage"
)

// DiskPath is where a containerDisk keeps its disk, inside its one layer.
const DiskPath = "disk/disk.img"

// sourceFile records, in a cache entry, where its disk came from.
const sourceFile = "source.json"

// Disk is a disk image pulled from a containerDisk.
type Disk struct {
	Path        string `json:"-"`            // the disk file
	Format      string `json:"format"`       // "qcow2" or "raw"
	Ref         string `json:"ref"`          // the reference as given
	Digest      string `json:"digest"`       // manifest digest the reference resolved to (an index's for a multi-architecture image)
	ImageDigest string `json:"image_digest"` // the manifest digest of the image for the system
	LayerDigest string `json:"layer_digest"` // digest of the blob holding disk/disk.img
	Size        int64  `json:"size"`         // bytes of the disk file
	// SHA256 is the hex sha256 of the disk file: what a Nix fixed-output
	// derivation of this disk pins (and, for a containerDisk that wraps an
	// upstream cloud image unchanged, the upstream image's checksum).
	SHA256 string `json:"sha256"`
	System string `json:"system"`
}

// DiskCacheDir is the directory of the cache entry for a containerDisk
// whose reference resolved to digest (sha256:...), for system.
func DiskCacheDir(cacheDir, digest, system string) string {
	return filepath.Join(cache.OCIDisks(cacheDir), strings.ReplaceAll(digest, ":", "-")+"-"+system)
}

// PullDisk downloads the disk of the containerDisk ref into the cache under
// cacheDir (<cacheDir>/oci/disks/...), unless it is there already, and
// returns it (cacheDir is the cache root, see package cache). A reference pinned by digest (ref@sha256:...) is found in
// the cache without asking the registry; a tag is resolved first. The
// manifest digest and the layer's blob digest are verified, and the file
// must be a qcow2 or a raw disk with a partition table. On error nothing
// is left in the cache.
func PullDisk(ctx context.Context, ref, cacheDir string, opts Options) (*Disk, error) {
	r, err := parseRef(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	if d, ok := r.(name.Digest); ok {
		if disk, err := loadCachedDisk(DiskCacheDir(cacheDir, d.DigestStr(), opts.system())); err == nil {
			opts.logger().Debug("containerDisk in the cache", "ref", ref, "path", disk.Path)
			return disk, nil
		}
	}
	desc, img, err := resolveImage(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	final := DiskCacheDir(cacheDir, desc.Digest.String(), opts.system())
	if disk, err := loadCachedDisk(final); err == nil {
		return disk, nil
	}
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	defer os.RemoveAll(tmp) // nothing left after the rename
	disk, err := fetchDisk(ctx, r, desc.Digest, img, tmp, opts)
	if err != nil {
		return nil, err
	}
	disk.Ref = ref
	name := "disk." + disk.Format
	if err := os.Rename(disk.Path, filepath.Join(tmp, name)); err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	data, err := json.MarshalIndent(disk, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, sourceFile), append(data, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if disk, lerr := loadCachedDisk(final); lerr == nil { // another pull won
			return disk, nil
		}
		return nil, fmt.Errorf("pulling %s: moving into the cache: %w", ref, err)
	}
	disk.Path = filepath.Join(final, name)
	opts.logger().Info("pulled containerDisk", "ref", ref, "digest", disk.Digest, "path", disk.Path, "size", disk.Size)
	return disk, nil
}

// WriteDisk downloads the disk of the containerDisk ref to the file out
// (replaced atomically; nothing is left on error), bypassing the cache:
// for Nix fixed-output derivations. The checks are those of [PullDisk].
func WriteDisk(ctx context.Context, ref, out string, opts Options) (*Disk, error) {
	r, err := parseRef(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	desc, img, err := resolveImage(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	// Beside out, so that a rename puts it in place; where that directory
	// takes no new entries (a Nix builder's $out in /nix/store), in $TMPDIR
	// and copied.
	tmp, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		if tmp, err = os.MkdirTemp("", "distrotest-pull-"); err != nil {
			return nil, fmt.Errorf("pulling %s: %w", ref, err)
		}
	}
	defer os.RemoveAll(tmp)
	disk, err := fetchDisk(ctx, r, desc.Digest, img, tmp, opts)
	if err != nil {
		return nil, err
	}
	disk.Ref = ref
	if err := moveFile(disk.Path, out); err != nil {
		return nil, fmt.Errorf("pulling %s: writing %s: %w", ref, out, err)
	}
	disk.Path = out
	return disk, nil
}

// moveFile renames src to dst, or copies it across filesystems (removing
// a partial dst on error).
func moveFile(src, dst string) error {
	err := os.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, in)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

func loadCachedDisk(dir string) (*Disk, error) {
	data, err := os.ReadFile(filepath.Join(dir, sourceFile))
	if err != nil {
		return nil, err
	}
	var d Disk
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, sourceFile), err)
	}
	d.Path = filepath.Join(dir, "disk."+d.Format)
	if _, err := os.Stat(d.Path); err != nil {
		return nil, err
	}
	return &d, nil
}

// resolveImage fetches the manifest of r, checks its digest when r is
// pinned, and returns the image for the system (from an index if r names
// one).
func resolveImage(ctx context.Context, r name.Reference, opts Options) (*remote.Descriptor, v1.Image, error) {
	plat, err := platform(opts.system())
	if err != nil {
		return nil, nil, err
	}
	desc, err := remote.Get(r, opts.remoteOptions(ctx)...)
	if err != nil {
		return nil, nil, explain(r, err)
	}
	if d, ok := r.(name.Digest); ok && desc.Digest.String() != d.DigestStr() {
		return nil, nil, fmt.Errorf("%s: the registry returned a manifest with digest %s", r, desc.Digest)
	}
	switch {
	case desc.MediaType.IsIndex():
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, nil, explain(r, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, nil, explain(r, err)
		}
		var have []string
		for _, m := range im.Manifests {
			if m.Platform == nil {
				continue
			}
			if m.Platform.OS == plat.OS && m.Platform.Architecture == plat.Architecture {
				img, err := idx.Image(m.Digest)
				if err != nil {
					return nil, nil, explain(r, err)
				}
				return desc, img, nil
			}
			have = append(have, m.Platform.String())
		}
		return nil, nil, fmt.Errorf("%s: the index has no image for %s (%s); it has: %s", r, opts.system(), plat.String(), orNone(have))
	case desc.MediaType.IsImage():
		img, err := desc.Image()
		if err != nil {
			return nil, nil, explain(r, err)
		}
		return desc, img, nil
	}
	return nil, nil, fmt.Errorf("%s: is a %s, not an image", r, desc.MediaType)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// fetchDisk finds disk/disk.img in the layers of img and writes it to
// dir/disk.img, verifying each blob's digest, then checks that it is a
// disk image.
func fetchDisk(ctx context.Context, r name.Reference, digest v1.Hash, img v1.Image, dir string, opts Options) (*Disk, error) {
	fail := func(err error) (*Disk, error) { return nil, fmt.Errorf("pulling %s: %w", r, err) }
	imgDigest, err := img.Digest()
	if err != nil {
		return nil, explain(r, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, explain(r, err)
	}
	mt, err := img.Manifest()
	if err != nil {
		return nil, explain(r, err)
	}
	if mt.Config.MediaType == preparedConfigType {
		return fail(fmt.Errorf("is a distrotest prepared image, not a containerDisk (pull it with --prepared)"))
	}
	plat, _ := platform(opts.system())
	if cfg.Architecture != "" && cfg.Architecture != plat.Architecture {
		return fail(fmt.Errorf("the image is for %s/%s, not for %s (%s): pick another image or --system", cfg.OS, cfg.Architecture, opts.system(), plat.Architecture))
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, explain(r, err)
	}
	out := filepath.Join(dir, "disk.img")
	var seen []string
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			return nil, explain(r, err)
		}
		sum, size, names, err := extractDisk(ctx, l, ld, out, opts)
		if err != nil {
			return fail(fmt.Errorf("layer %s: %w", ld, err))
		}
		if sum == "" {
			seen = append(seen, names...)
			continue
		}
		format, err := checkDisk(out)
		if err != nil {
			return fail(fmt.Errorf("layer %s: %s is not a disk image: %w", ld, DiskPath, err))
		}
		return &Disk{
			Path: out, Format: format, Digest: digest.String(), ImageDigest: imgDigest.String(),
			LayerDigest: ld.String(), Size: size, SHA256: sum, System: opts.system(),
		}, nil
	}
	if len(seen) > 5 {
		seen = append(seen[:5], "...")
	}
	return fail(fmt.Errorf("no layer holds %s: not a containerDisk (%d %s, holding %s)", DiskPath, len(layers), plural(len(layers), "layer", "layers"), orNone(seen)))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// extractDisk reads layer l to its end (so its digest is verified) and
// writes its disk/disk.img, if it has one, to out. It returns the hex
// sha256 and size of the disk ("" when the layer has none) and otherwise
// the first names in the layer.
func extractDisk(ctx context.Context, l v1.Layer, want v1.Hash, out string, opts Options) (sum string, size int64, names []string, err error) {
	rc, err := l.Compressed()
	if err != nil {
		return "", 0, nil, err
	}
	defer rc.Close()
	blob := sha256.New()
	tr, closeTar, err := tarReader(ctxio.Reader(ctx, io.TeeReader(rc, blob)))
	if err != nil {
		return "", 0, nil, err
	}
	defer closeTar()
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", 0, nil, fmt.Errorf("reading the layer as a tar archive: %w", err)
		}
		p := path.Clean("/" + h.Name)[1:]
		if p != DiskPath {
			if len(names) < 6 {
				names = append(names, p)
			}
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return "", 0, nil, fmt.Errorf("%s is not a regular file (tar type %q)", DiskPath, h.Typeflag)
		}
		if sum, err = writeFile(out, tr, h.Size, "disk", opts.Progress); err != nil {
			return "", 0, nil, err
		}
		size = h.Size
	}
	// Drain padding after the tar end so that the whole blob is hashed.
	if _, err := io.Copy(io.Discard, ctxio.Reader(ctx, io.TeeReader(rc, blob))); err != nil {
		return "", 0, nil, fmt.Errorf("reading the layer: %w", err)
	}
	if got := "sha256:" + hex.EncodeToString(blob.Sum(nil)); want.Algorithm == "sha256" && got != want.String() {
		os.Remove(out)
		return "", 0, nil, fmt.Errorf("blob digest mismatch: the registry sent %s", got)
	}
	return sum, size, names, nil
}

// tarReader decompresses r by its magic (gzip, zstd or none).
func tarReader(r io.Reader) (*tar.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("reading the layer: %w", err)
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the gzip layer: %w", err)
		}
		return tar.NewReader(zr), func() { zr.Close() }, nil
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the zstd layer: %w", err)
		}
		return tar.NewReader(zr), zr.Close, nil
	}
	return tar.NewReader(br), func() {}, nil
}

// checkDisk returns the format of the disk image at p ("qcow2" or "raw")
// if it is one: a qcow2, or a raw file with a GPT or MBR partition table.
func checkDisk(p string) (string, error) {
	img, err := diskimage.Open(p)
	if err != nil {
		return "", err
	}
	defer img.Close()
	return img.Format, nil
}

// writeFile copies n bytes of r to the new file p (synced), with a
// progress bar on progress, and returns their hex sha256.
func writeFile(p string, r io.Reader, n int64, what string, progress io.Writer) (string, error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var w io.Writer = io.MultiWriter(f, h)
	bar := newBar(progress, n, what)
	if bar != nil {
		w = io.MultiWriter(w, bar)
	}
	_, err = io.CopyN(w, r, n)
	if bar != nil {
		bar.Finish()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashFile returns the sha256 and size of the file at p.
func hashFile(p string) (v1.Hash, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	defer f.Close()
	return hashReader(f, sha256.New())
}

func hashReader(r io.Reader, h hash.Hash) (v1.Hash, int64, error) {
	n, err := io.Copy(h, r)
	if err != nil {
		return v1.Hash{}, 0, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, n, nil
}
