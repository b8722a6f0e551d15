package ociimage

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/distrotest/distrotest/cmd/internal/ctxio"
	"github.com/distrotest/distrotest/cmd/internal/qcow2"
)

// qemuUID is the owner KubeVirt gives disk/ and disk/disk.img (the qemu
// user of its launcher pods).
const qemuUID = 107

// Pushed says what a push wrote.
type Pushed struct {
	Ref    string // the reference pushed to, with the digest: repo:tag@sha256:...
	Digest string // the manifest digest
	Size   int64  // bytes of the blobs
	// DiskSHA256 is the hex sha256 of the disk as stored (for a
	// containerDisk: of disk/disk.img, the Nix fixed-output hash).
	DiskSHA256 string
}

// PushContainerDisk publishes the qcow2 or raw disk at disk as a KubeVirt
// containerDisk at ref: one gzip layer holding disk/ (0555) and
// disk/disk.img (0444), both owned by 107:107, a Docker schema 2 manifest,
// a config for linux and the architecture of the system with the
// "no-entrypoint" entry point KubeVirt uses and the disk's sha256 as its
// "shasum" label. A qcow2 with a backing file (a prepared overlay) is made
// self-contained first. The image has no timestamps: the same disk gives
// the same digest. Temporary files go to tmpDir ("" for the default).
func PushContainerDisk(ctx context.Context, disk, ref, tmpDir string, opts Options) (*Pushed, error) {
	r, err := parseRef(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	plat, err := platform(opts.system())
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Pushed, error) {
		return nil, fmt.Errorf("pushing %s as a containerDisk to %s: %w", disk, ref, err)
	}
	if _, err := checkDisk(disk); err != nil {
		return fail(err)
	}
	work, err := os.MkdirTemp(tmpDir, "distrotest-push-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(work)
	src, err := selfContained(ctx, disk, work)
	if err != nil {
		return fail(err)
	}
	layer, diskSum, err := containerDiskLayer(ctx, src, filepath.Join(work, "layer.tar.gz"))
	if err != nil {
		return fail(err)
	}
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		OS: plat.OS, Architecture: plat.Architecture,
		Config: v1.Config{Entrypoint: []string{"no-entrypoint"}, Labels: map[string]string{"shasum": diskSum}},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return fail(err)
	}
	img = mutate.MediaType(img, types.DockerManifestSchema2)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "distrotest-gen image push --containerdisk"}})
	if err != nil {
		return fail(err)
	}
	p, err := write(ctx, r, img, "upload", opts)
	if err != nil {
		return fail(err)
	}
	p.DiskSHA256 = diskSum
	opts.logger().Info("pushed containerDisk", "ref", p.Ref, "disk", disk)
	return p, nil
}

// write uploads img to r and returns where it went.
func write(ctx context.Context, r name.Reference, img v1.Image, what string, opts Options) (*Pushed, error) {
	ro := opts.remoteOptions(ctx)
	var done chan struct{}
	if opts.Progress != nil {
		updates := make(chan v1.Update, 64)
		done = make(chan struct{})
		go uploadProgress(opts.Progress, what, updates, done)
		ro = append(ro, remote.WithProgress(updates))
	}
	err := remote.Write(r, img, ro...)
	if done != nil {
		<-done
	}
	if err != nil {
		return nil, explain(r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	size, err := blobBytes(img)
	if err != nil {
		return nil, err
	}
	at := r.Context().String()
	if t, ok := r.(name.Tag); ok {
		at = t.String()
	}
	return &Pushed{Ref: at + "@" + d.String(), Digest: d.String(), Size: size}, nil
}

func blobBytes(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// selfContained returns disk itself, or, for a qcow2 with a backing file,
// a standalone copy written into dir.
func selfContained(ctx context.Context, disk, dir string) (string, error) {
	img, err := qcow2.OpenAny(disk)
	if err != nil {
		return "", err
	}
	defer img.Close()
	q, ok := img.(*qcow2.Image)
	if !ok {
		return disk, nil
	}
	if backing, _ := q.BackingFile(); backing == "" {
		return disk, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "disk.qcow2")
	if err := qcow2.NewOverlay(img, img.Size()).WriteQcow2(out, "", ""); err != nil {
		return "", fmt.Errorf("making %s self-contained: %w", disk, err)
	}
	return out, nil
}

// containerDiskLayer writes the gzip tar of a containerDisk holding disk
// to out, in one pass, and returns it as a layer with the disk's sha256.
func containerDiskLayer(ctx context.Context, disk, out string) (*fileLayer, string, error) {
	in, err := os.Open(disk)
	if err != nil {
		return nil, "", err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, "", err
	}
	f, err := os.Create(out)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	blob, uncompressed, diskHash := sha256.New(), sha256.New(), sha256.New()
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, blob), gzip.BestSpeed)
	if err != nil {
		return nil, "", err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, uncompressed))
	hdr := func(name string, mode int64, typ byte, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Typeflag: typ, Size: size, Uid: qemuUID, Gid: qemuUID, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr("disk/", 0o555, tar.TypeDir, 0)); err != nil {
		return nil, "", err
	}
	if err := tw.WriteHeader(hdr(DiskPath, 0o444, tar.TypeReg, fi.Size())); err != nil {
		return nil, "", err
	}
	if _, err := io.Copy(io.MultiWriter(tw, diskHash), ctxio.Reader(ctx, in)); err != nil {
		return nil, "", fmt.Errorf("writing the layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, "", err
	}
	return &fileLayer{
		path: out, mediaType: types.DockerLayer, gzipped: true, size: st.Size(),
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(blob.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(uncompressed.Sum(nil))},
	}, hex.EncodeToString(diskHash.Sum(nil)), nil
}
