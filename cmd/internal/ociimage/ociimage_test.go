package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qcow2"
)

// newRegistry starts go-containerregistry's in-memory registry on a
// loopback port and returns its host:port. tamper, when set, may change
// the body of blob downloads.
func newRegistry(t *testing.T, tamper func([]byte) []byte) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if tamper != nil {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
				inner.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(tamper(rec.Body.Bytes()))
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func testOptions() Options {
	return Options{Keychain: authn.NewMultiKeychain()} // no credentials from the host
}

// testDisk returns a small qcow2 disk with a GPT and one partition.
func testDisk(t *testing.T) string {
	t.Helper()
	imagetest.Need(t, "sgdisk", "qemu-img")
	d := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 2})
	return imagetest.Qcow2(t, d.Raw)
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// entries lists everything under dir (relative paths), for "nothing left
// behind" checks.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestContainerDiskRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, nil)
	disk := testDisk(t)
	opts := testOptions()

	pushed, err := PushContainerDisk(ctx, disk, reg+"/containerdisks/test:1", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256File(t, disk); pushed.DiskSHA256 != want {
		t.Errorf("DiskSHA256 = %s, want %s", pushed.DiskSHA256, want)
	}
	again, err := PushContainerDisk(ctx, disk, reg+"/containerdisks/test:2", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != pushed.Digest {
		t.Errorf("pushing the same disk twice gave digests %s and %s", pushed.Digest, again.Digest)
	}

	// The image has the KubeVirt containerDisk shape.
	ref, _ := name.ParseReference(pushed.Ref)
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	cfg, _ := img.ConfigFile()
	layers, _ := img.Layers()
	if mt != "application/vnd.docker.distribution.manifest.v2+json" || cfg.OS != "linux" || cfg.Architecture != "amd64" ||
		len(layers) != 1 || cfg.Config.Labels["shasum"] != pushed.DiskSHA256 || strings.Join(cfg.Config.Entrypoint, " ") != "no-entrypoint" {
		t.Errorf("image: media type %s, config %+v, %d layers", mt, cfg, len(layers))
	}
	rc, _ := layers[0].Uncompressed()
	tr := tar.NewReader(rc)
	var got []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		got = append(got, h.Name+" "+fs.FileMode(h.Mode).String())
		if h.Uid != 107 || h.Gid != 107 {
			t.Errorf("%s owned by %d:%d, want 107:107", h.Name, h.Uid, h.Gid)
		}
	}
	rc.Close()
	if len(got) != 2 || !strings.HasPrefix(got[0], "disk/ -r-xr-xr-x") || !strings.HasPrefix(got[1], "disk/disk.img -r--r--r--") {
		t.Errorf("layer holds %q", got)
	}

	cache := t.TempDir()
	pinned := reg + "/containerdisks/test@" + pushed.Digest
	d, err := PullDisk(ctx, pinned, cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != "qcow2" || d.SHA256 != pushed.DiskSHA256 || d.Digest != pushed.Digest || d.ImageDigest != pushed.Digest {
		t.Errorf("pulled %+v", d)
	}
	if got := sha256File(t, d.Path); got != pushed.DiskSHA256 {
		t.Errorf("pulled disk sha256 %s, want %s", got, pushed.DiskSHA256)
	}
	// A tag resolves to the same cache entry.
	byTag, err := PullDisk(ctx, reg+"/containerdisks/test:1", cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	if byTag.Path != d.Path {
		t.Errorf("by tag: %s, by digest: %s", byTag.Path, d.Path)
	}
	// A pinned reference is served from the cache without the registry.
	down := Options{Keychain: opts.Keychain, Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("the registry must not be asked")
	})}
	if cached, err := PullDisk(ctx, pinned, cache, down); err != nil || cached.Path != d.Path {
		t.Errorf("cached pull: %v, %v", cached, err)
	}

	// WriteDisk (the Nix fixed-output path) writes the same bytes.
	out := filepath.Join(t.TempDir(), "disk.img")
	if _, err := WriteDisk(ctx, pinned, out, opts); err != nil {
		t.Fatal(err)
	}
	if got := sha256File(t, out); got != pushed.DiskSHA256 {
		t.Errorf("WriteDisk sha256 %s", got)
	}
	if e := entries(t, filepath.Dir(out)); len(e) != 1 {
		t.Errorf("WriteDisk left %v", e)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestPullDiskFromIndex(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, nil)
	opts := testOptions()
	disk := testDisk(t)
	amd, err := PushContainerDisk(ctx, disk, reg+"/cd/multi:amd64", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	arm, err := PushContainerDisk(ctx, disk, reg+"/cd/multi:arm64", "", Options{Keychain: opts.Keychain, System: "aarch64-linux"})
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.ImageIndex = empty.Index
	for _, p := range []struct {
		ref  string
		arch string
	}{{amd.Ref, "amd64"}, {arm.Ref, "arm64"}} {
		r, _ := name.ParseReference(p.ref)
		img, err := remote.Image(r)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: p.arch}}})
	}
	ir, _ := name.ParseReference(reg + "/cd/multi:latest")
	if err := remote.WriteIndex(ir, idx); err != nil {
		t.Fatal(err)
	}
	id, _ := idx.Digest()

	tests := []struct {
		system, want string
	}{{"x86_64-linux", amd.Digest}, {"aarch64-linux", arm.Digest}}
	for _, tt := range tests {
		t.Run(tt.system, func(t *testing.T) {
			o := opts
			o.System = tt.system
			d, err := PullDisk(ctx, reg+"/cd/multi@"+id.String(), t.TempDir(), o)
			if err != nil {
				t.Fatal(err)
			}
			if d.Digest != id.String() || d.ImageDigest != tt.want {
				t.Errorf("digest %s, image %s; want %s, %s", d.Digest, d.ImageDigest, id, tt.want)
			}
		})
	}

	// An index without the system's platform.
	one := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: mustImage(t, arm.Ref), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	or, _ := name.ParseReference(reg + "/cd/armonly:latest")
	if err := remote.WriteIndex(or, one); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	_, err = PullDisk(ctx, reg+"/cd/armonly:latest", cache, opts)
	if err == nil || !strings.Contains(err.Error(), "no image for x86_64-linux (linux/amd64); it has: linux/arm64") {
		t.Errorf("err = %v", err)
	}
	if e := entries(t, cache); len(e) > 0 {
		t.Errorf("left in the cache: %v", e)
	}
}

func mustImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, _ := name.ParseReference(ref)
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pushLayerImage pushes an image with one layer holding files.
func pushLayerImage(t *testing.T, ref string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		tw.Write([]byte(c))
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

func TestPullDiskErrors(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, nil)
	opts := testOptions()
	disk := testDisk(t)
	if _, err := PushContainerDisk(ctx, disk, reg+"/cd/good:1", "", opts); err != nil {
		t.Fatal(err)
	}
	random1, _ := random.Image(1024, 2)
	rr, _ := name.ParseReference(reg + "/cd/random:1")
	if err := remote.Write(rr, random1); err != nil {
		t.Fatal(err)
	}
	pushLayerImage(t, reg+"/cd/notdisk:1", map[string]string{"disk/disk.img": strings.Repeat("not a disk ", 10000)})
	pushLayerImage(t, reg+"/cd/app:1", map[string]string{"usr/bin/app": "#!/bin/sh\n", "etc/app.conf": ""})

	prepDir := testPreparedDir(t)
	prep, err := PushPrepared(ctx, prepDir, reg+"/distrotest/prepared:k1", "k1", "", opts)
	if err != nil {
		t.Fatal(err)
	}

	tampered := newRegistry(t, func(b []byte) []byte {
		if len(b) > 100 {
			b = bytes.Clone(b)
			b[len(b)/2] ^= 0xff
		}
		return b
	})
	tp, err := PushContainerDisk(ctx, disk, tampered+"/cd/good:1", "", opts)
	if err != nil {
		t.Fatal(err)
	}

	downSrv := httptest.NewServer(http.NotFoundHandler())
	down := strings.TrimPrefix(downSrv.URL, "http://")
	downSrv.Close()

	wrong := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name, ref, want string
	}{
		{"wrong digest", reg + "/cd/good@" + wrong, "no manifest with digest " + wrong},
		{"missing tag", reg + "/cd/good:nope", `has no tag "nope"`},
		{"missing repository", reg + "/cd/none:1", "cd/none"},
		{"registry down", down + "/cd/good:1", "registry " + down + " is unreachable"},
		{"no disk in the layers", reg + "/cd/random:1", "no layer holds disk/disk.img: not a containerDisk (2 layers"},
		{"an application image", reg + "/cd/app:1", "not a containerDisk (1 layer, holding "},
		{"a disk.img that is not a disk", reg + "/cd/notdisk:1", "disk/disk.img is not a disk image"},
		{"tampered blob", tampered + "/cd/good@" + tp.Digest, "digest verification failed"},
		{"a prepared image", prep.Ref, "is a distrotest prepared image, not a containerDisk"},
		{"bad reference", "Not A Ref@@", "parsing image reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			_, err := PullDisk(ctx, tt.ref, cache, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			t.Log(err)
			if e := entries(t, cache); len(e) > 0 {
				t.Errorf("left in the cache: %v", e)
			}
		})
	}
}

func TestHTTPGuard(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"http://127.0.0.1:5000/v2/", false, true},
		{"http://[::1]:5000/v2/", false, true},
		{"http://localhost:5000/v2/", false, true},
		{"http://192.168.1.5:5000/v2/", false, false},
		{"http://registry.local/v2/", false, false},
		{"http://192.168.1.5:5000/v2/", true, true},
		{"https://quay.io/v2/", false, true},
	}
	for _, tt := range tests {
		g := httpGuard{insecure: tt.insecure, base: roundTripFunc(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		})}
		req, _ := http.NewRequest("GET", tt.url, nil)
		_, err := g.RoundTrip(req)
		if (err == nil) != tt.ok {
			t.Errorf("%s insecure=%v: err = %v", tt.url, tt.insecure, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("error %q does not say how to allow it", err)
		}
	}
}

// testPreparedDir writes a prepared directory whose disk is a qcow2
// overlay of a raw base, as image patch writes it.
func testPreparedDir(t *testing.T) string {
	t.Helper()
	imagetest.Need(t, "sgdisk")
	base := imagetest.Build(t, "gpt", imagetest.Part{SizeMiB: 2}).Raw
	dir := filepath.Join(t.TempDir(), "prepared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := qcow2.OpenAny(base)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o := qcow2.NewOverlay(r, r.Size())
	if _, err := o.WriteAt([]byte("patched by the test"), 1<<20+4096); err != nil {
		t.Fatal(err)
	}
	if err := o.WriteQcow2(filepath.Join(dir, "disk.qcow2"), base, "raw"); err != nil {
		t.Fatal(err)
	}
	for n, c := range map[string]string{"vmlinuz": "kernel bytes", "initrd": "initrd bytes"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &manifest.Manifest{
		Version: manifest.CurrentVersion, Distro: "debian", Release: "13", System: "x86_64-linux",
		Disk: "disk.qcow2", DiskFormat: "qcow2", Kernel: "vmlinuz", Initrd: "initrd",
		RootDevice: "/dev/vda1", Filesystem: "ext4", KernelParams: []string{"root=/dev/vda1"}, Strategy: "disk",
	}
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// virtualContent reads the whole virtual disk of a qcow2 or raw image.
func virtualContent(t *testing.T, p string) []byte {
	t.Helper()
	r, err := qcow2.OpenAny(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, r.Size())
	if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return buf
}

func TestPreparedRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, nil)
	opts := testOptions()
	dir := testPreparedDir(t)

	pushed, err := PushPrepared(ctx, dir, reg+"/distrotest/prepared:debian-13-abc", "abc", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := PushPrepared(ctx, dir, reg+"/distrotest/prepared:again", "abc", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != pushed.Digest {
		t.Errorf("pushing twice gave %s and %s", pushed.Digest, again.Digest)
	}
	out := filepath.Join(t.TempDir(), "pulled")
	p, err := PullPrepared(ctx, reg+"/distrotest/prepared:debian-13-abc", out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest != pushed.Digest || p.Config.Key != "abc" || p.Config.Distro != "debian" || p.Manifest.Kernel != "vmlinuz" {
		t.Errorf("pulled %+v", p)
	}
	for _, f := range []string{"vmlinuz", "initrd", manifest.FileName} {
		if a, b := sha256File(t, filepath.Join(dir, f)), sha256File(t, filepath.Join(out, f)); a != b {
			t.Errorf("%s differs after the round trip", f)
		}
	}
	// The pulled disk is self-contained with the overlay's content.
	img, err := qcow2.Open(filepath.Join(out, "disk.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := img.BackingFile(); b != "" {
		t.Errorf("pulled disk has backing file %q", b)
	}
	img.Close()
	if !bytes.Equal(virtualContent(t, filepath.Join(dir, "disk.qcow2")), virtualContent(t, filepath.Join(out, "disk.qcow2"))) {
		t.Error("the pulled disk's content differs from the prepared one")
	}
	if e := entries(t, filepath.Dir(out)); len(e) != 4 {
		t.Errorf("pull left %v", e)
	}
}

func TestPullPreparedErrors(t *testing.T) {
	ctx := context.Background()
	opts := testOptions()
	reg := newRegistry(t, nil)
	tampered := newRegistry(t, func(b []byte) []byte {
		if len(b) > 10 && bytes.Contains(b, []byte("kernel bytes")) {
			return bytes.ReplaceAll(b, []byte("kernel bytes"), []byte("kernel BYTES"))
		}
		return b
	})
	dir := testPreparedDir(t)
	for _, r := range []string{reg, tampered} {
		if _, err := PushPrepared(ctx, dir, r+"/distrotest/prepared:k", "k", "", opts); err != nil {
			t.Fatal(err)
		}
	}
	cd, err := PushContainerDisk(ctx, filepath.Join(dir, "disk.qcow2"), reg+"/cd/disk:1", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)

	tests := []struct {
		name, ref, out, want string
	}{
		{"a containerDisk", cd.Ref, "", "is not a distrotest prepared image"},
		{"missing tag", reg + "/distrotest/prepared:other", "", `has no tag "other"`},
		{"tampered blob", tampered + "/distrotest/prepared:k", "", "digest mismatch"},
		{"output not empty", reg + "/distrotest/prepared:k", full, "exists and is not empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			out := tt.out
			if out == "" {
				out = filepath.Join(parent, "out")
			}
			_, err := PullPrepared(ctx, tt.ref, out, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if e := entries(t, parent); len(e) > 0 {
				t.Errorf("left behind: %v", e)
			}
		})
	}
}

func TestErrNotFound(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, nil)
	opts := testOptions()
	if _, err := PushContainerDisk(ctx, testDisk(t), reg+"/cd/x:1", "", opts); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{reg + "/cd/x:2", reg + "/cd/y:1", reg + "/cd/x@sha256:" + strings.Repeat("1", 64)} {
		if _, err := PullPrepared(ctx, ref, filepath.Join(t.TempDir(), "out"), opts); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", ref, err)
		}
	}
	if _, err := PullPrepared(ctx, reg+"/cd/x:1", filepath.Join(t.TempDir(), "out"), opts); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("a containerDisk pulled as a prepared image: err = %v, want another error", err)
	}
}
