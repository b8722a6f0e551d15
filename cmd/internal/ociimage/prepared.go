package ociimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/distrotest/distrotest/cmd/internal/ctxio"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// Media types and annotations of a prepared-image artifact.
const (
	PreparedArtifactType = "application/vnd.distrotest.prepared.v1"
	preparedConfigType   = "application/vnd.distrotest.prepared.config.v1+json"
	titleAnnotation      = "org.opencontainers.image.title"
	// KeyAnnotation holds the prepared-image cache key on the manifest.
	KeyAnnotation = "dev.distrotest.prepared.key"
)

// fileTypes are the media types of the files of a prepared directory.
var fileTypes = map[string]types.MediaType{
	"disk.qcow2":      "application/vnd.distrotest.disk.qcow2",
	"disk.raw":        "application/vnd.distrotest.disk.raw",
	"kernel":          "application/vnd.distrotest.kernel",
	"initrd":          "application/vnd.distrotest.initrd",
	manifest.FileName: "application/vnd.distrotest.manifest.v1+json",
}

// PreparedConfig is the config blob of a prepared-image artifact.
type PreparedConfig struct {
	Key     string `json:"key"` // the prepared-image cache key: what went into the image
	Distro  string `json:"distro"`
	Release string `json:"release"`
	System  string `json:"system"`
}

// Prepared is a prepared image pulled from a registry.
type Prepared struct {
	Dir      string
	Digest   string // manifest digest
	Config   PreparedConfig
	Manifest *manifest.Manifest
}

// PushPrepared publishes the prepared image directory dir (its manifest,
// disk, kernel and initrd) at ref as an OCI artifact: one uncompressed blob
// per file, titled with its file name, and a config naming key, the
// prepared-image cache key. A disk that is an overlay of a base image is
// made self-contained first (in tmpDir, "" for the default), so the
// artifact needs nothing else.
func PushPrepared(ctx context.Context, dir, ref, key, tmpDir string, opts Options) (*Pushed, error) {
	r, err := parseRef(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Pushed, error) {
		return nil, fmt.Errorf("pushing prepared image %s to %s: %w", dir, ref, err)
	}
	m, err := manifest.Load(dir)
	if err != nil {
		return fail(err)
	}
	work, err := os.MkdirTemp(tmpDir, "distrotest-push-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	disk, err := selfContained(ctx, manifest.Path(dir, m.Disk), work)
	if err != nil {
		return fail(err)
	}
	files := []struct{ title, path string }{
		{"disk." + m.DiskFormat, disk},
		{manifest.FileName, filepath.Join(dir, manifest.FileName)},
	}
	if m.Kernel != "" {
		files = append(files, struct{ title, path string }{"kernel", manifest.Path(dir, m.Kernel)},
			struct{ title, path string }{"initrd", manifest.Path(dir, m.Initrd)})
	}
	// The pulled directory holds the files under the manifest's names.
	names := map[string]string{"disk." + m.DiskFormat: m.Disk, "kernel": m.Kernel, "initrd": m.Initrd, manifest.FileName: manifest.FileName}
	for name, rel := range names {
		if rel != "" && (filepath.IsAbs(rel) || filepath.Base(rel) != rel) {
			return fail(fmt.Errorf("%s: %s %q is not a file name in the directory", filepath.Join(dir, manifest.FileName), name, rel))
		}
	}
	a := &artifact{layers: map[v1.Hash]*fileLayer{}}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		l, err := newFileLayer(f.path, fileTypes[f.title])
		if err != nil {
			return fail(err)
		}
		a.layers[l.digest] = l
		a.m.Layers = append(a.m.Layers, v1.Descriptor{
			MediaType: l.mediaType, Size: l.size, Digest: l.digest,
			Annotations: map[string]string{titleAnnotation: names[f.title]},
		})
	}
	if a.config, err = json.Marshal(PreparedConfig{Key: key, Distro: m.Distro, Release: m.Release, System: m.System}); err != nil {
		return fail(err)
	}
	cd, n, err := hashReader(bytes.NewReader(a.config), sha256.New())
	if err != nil {
		return fail(err)
	}
	a.m.SchemaVersion = 2
	a.m.MediaType = types.OCIManifestSchema1
	a.m.Config = v1.Descriptor{MediaType: preparedConfigType, Size: n, Digest: cd}
	a.m.Annotations = map[string]string{KeyAnnotation: key}
	a.m.ArtifactType = PreparedArtifactType
	if a.raw, err = json.Marshal(&a.m); err != nil {
		return fail(err)
	}
	img, err := partial.CompressedToImage(a)
	if err != nil {
		return fail(err)
	}
	p, err := write(ctx, r, img, "upload", opts)
	if err != nil {
		return fail(err)
	}
	opts.logger().Info("pushed prepared image", "ref", p.Ref, "dir", dir, "key", key)
	return p, nil
}

// PullPrepared downloads the prepared-image artifact ref into the new
// directory out (it must not exist, or be empty), verifying every blob's
// digest and the manifest. The directory appears complete or not at all.
func PullPrepared(ctx context.Context, ref, out string, opts Options) (*Prepared, error) {
	r, err := parseRef(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Prepared, error) {
		return nil, fmt.Errorf("pulling prepared image %s: %w", ref, err)
	}
	if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
		return fail(fmt.Errorf("%s exists and is not empty", out))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	desc, err := remote.Get(r, opts.remoteOptions(ctx)...)
	if err != nil {
		return nil, explain(r, err)
	}
	if d, ok := r.(name.Digest); ok && desc.Digest.String() != d.DigestStr() {
		return fail(fmt.Errorf("the registry returned a manifest with digest %s", desc.Digest))
	}
	if !desc.MediaType.IsImage() {
		return fail(fmt.Errorf("is a %s, not a prepared image", desc.MediaType))
	}
	img, err := desc.Image()
	if err != nil {
		return nil, explain(r, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, explain(r, err)
	}
	if m.Config.MediaType != preparedConfigType {
		return fail(fmt.Errorf("is not a distrotest prepared image (config media type %q): pull a containerDisk without --prepared", m.Config.MediaType))
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, explain(r, err)
	}
	var cfg PreparedConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fail(fmt.Errorf("decoding the config: %w", err))
	}
	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	var seen []string
	for _, l := range m.Layers {
		title := l.Annotations[titleAnnotation]
		if title == "" || filepath.Base(title) != title || title == "." || title == ".." || slices.Contains(seen, title) {
			return fail(fmt.Errorf("blob %s has a bad or repeated title %q", l.Digest, title))
		}
		seen = append(seen, title)
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, explain(r, err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			return nil, explain(r, err)
		}
		sum, err := writeFile(filepath.Join(tmp, title), ctxio.Reader(ctx, rc), l.Size, title, opts.Progress)
		rc.Close()
		if err != nil {
			return nil, explain(r, err)
		}
		if l.Digest.Algorithm == "sha256" && sum != l.Digest.Hex {
			return fail(fmt.Errorf("blob %s (%s): digest mismatch: the registry sent sha256:%s", l.Digest, title, sum))
		}
	}
	pm, err := manifest.Load(tmp)
	if err != nil {
		return fail(err)
	}
	for _, f := range []string{pm.Disk, pm.Kernel, pm.Initrd} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(manifest.Path(tmp, f)); err != nil {
			return fail(fmt.Errorf("the artifact has no %s, which its manifest names", f))
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fail(err)
	}
	os.Remove(out) // an empty directory
	if err := os.Rename(tmp, out); err != nil {
		return fail(err)
	}
	opts.logger().Info("pulled prepared image", "ref", ref, "digest", desc.Digest, "dir", out)
	return &Prepared{Dir: out, Digest: desc.Digest.String(), Config: cfg, Manifest: pm}, nil
}

// artifact is a prepared-image artifact to upload, as
// partial.CompressedImageCore.
type artifact struct {
	m      v1.Manifest
	raw    []byte
	config []byte
	layers map[v1.Hash]*fileLayer
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return a.m.MediaType, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.raw, nil }

func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.layers[h]; ok {
		return l, nil
	}
	if h == a.m.Config.Digest {
		return partial.ConfigLayer(a)
	}
	return nil, fmt.Errorf("no blob %s in the artifact", h)
}
