package imagebuild

import (
	"context"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/cache"
)

// Options say where and how to build; they do not change the result.
type Options struct {
	CacheDir string       // "" means cache.DefaultDir()
	Logger   *slog.Logger // nil discards
	// Progress receives one line when a step starts and one with its
	// duration when it ends; nil for none.
	Progress io.Writer
}

// mke2fsConf pins Debian's ext4 defaults, so the root filesystem does not
// depend on the host's /etc/mke2fs.conf and both bookworm's and trixie's
// e2fsck accept it.
//
//go:embed mke2fs.conf
var mke2fsConf []byte

// Build returns the path of the cached qcow2 for req, building it first
// when it is not cached. Concurrent builds of one image wait for each
// other; a failed or cancelled build leaves nothing behind.
func Build(ctx context.Context, req Request, opts Options) (string, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	recipe, err := recipeFor(req)
	if err != nil {
		return "", err
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		if cacheDir, err = cache.DefaultDir(); err != nil {
			return "", err
		}
	}
	name := recipe.Name()
	imagesDir := cache.Images(cacheDir)
	target := filepath.Join(imagesDir, name)
	if complete(target) {
		log.Debug("image cached", "dir", target)
		return filepath.Join(target, DiskFile), nil
	}

	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return "", fmt.Errorf("building %s: needs an x86_64 Linux host (this is %s/%s)", name, runtime.GOOS, runtime.GOARCH)
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("building %s: %w", name, errNotRoot)
	}
	needed := buildTools
	if recipe.Shape != "" {
		needed = append(slices.Clone(buildTools), shapeTools...)
	}
	tools, err := findTools(needed, lookPath)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	// Mount points in /proc/self/mountinfo are resolved paths.
	if imagesDir, err = filepath.EvalSymlinks(imagesDir); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	target = filepath.Join(imagesDir, name)

	unlock, err := cache.Lock(ctx, filepath.Join(imagesDir, name+".lock"), log)
	if err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	defer unlock()
	if complete(target) { // built by whoever held the lock before us
		return filepath.Join(target, DiskFile), nil
	}
	// Holding the lock, any temp dir of this image is a leftover of a killed build.
	stale, _ := filepath.Glob(filepath.Join(imagesDir, ".build-"+name+"-*"))
	if _, err := os.Lstat(target); err == nil {
		stale = append(stale, target) // incomplete entry, edited by hand
	}
	for _, dir := range stale {
		log.Info("removing leftover build directory", "dir", dir)
		if err := removeTree(dir); err != nil {
			return "", fmt.Errorf("building %s: %w", name, err)
		}
	}

	tmp, err := os.MkdirTemp(imagesDir, ".build-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	defer func() {
		if err := removeTree(tmp); err != nil {
			log.Warn("cleaning up", "err", err)
		}
	}()
	// apt downloads as the unprivileged _apt user when it can reach the tree.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}

	log.Info("building image", "image", name, "suite", recipe.Suite, "mirror", recipe.Mirror)
	b := &builder{recipe: recipe, tools: tools, tmp: tmp, log: log, progress: opts.Progress}
	if err := b.build(ctx); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("building %s: cancelled: %w", name, ctx.Err())
		}
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	if err := os.Rename(b.out(), target); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	if err := syncPath(imagesDir); err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	log.Info("image built", "path", filepath.Join(target, DiskFile), "duration", time.Since(b.start).Round(time.Millisecond))
	return filepath.Join(target, DiskFile), nil
}

// builder holds the state of one build in its temp directory tmp:
// rootfs/, root.img, esp.img, disk.raw and out/ (the future cache entry).
type builder struct {
	recipe   Recipe
	tools    map[string]string
	tmp      string
	log      *slog.Logger
	progress io.Writer

	start    time.Time
	step     int
	rootUUID string
	info     BuildInfo
}

func (b *builder) path(name string) string { return filepath.Join(b.tmp, name) }
func (b *builder) out() string             { return b.path("out") }

func (b *builder) build(ctx context.Context) error {
	b.start = time.Now()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{fmt.Sprintf("bootstrapping %s %s with mmdebstrap", b.recipe.Distro, b.recipe.Suite), b.bootstrap},
		{"configuring the root and making filesystems (ext4 root, vfat ESP)", b.filesystems},
		{"assembling the GPT disk", b.disk},
		{"converting to qcow2", b.convert},
	}
	if b.recipe.Shape != "" {
		steps[1].name, steps[1].fn = "configuring the "+b.recipe.Shape+" shape and making its filesystems", b.shapeFilesystems
	}
	for i, s := range steps {
		b.printf("[%d/%d] %s ...\n", i+1, len(steps), s.name)
		t := time.Now()
		if err := s.fn(ctx); err != nil {
			return err
		}
		b.printf("[%d/%d] done in %s\n", i+1, len(steps), time.Since(t).Round(100*time.Millisecond))
	}
	b.info.Tools = toolVersions(ctx, b.log, b.tools)
	b.info.BuiltAt = b.start.UTC().Truncate(time.Second)
	b.info.BuildSeconds = time.Since(b.start).Round(100 * time.Millisecond).Seconds()
	if err := writeInfo(b.out(), &b.info); err != nil {
		return fmt.Errorf("writing %s: %w", InfoFile, err)
	}
	return nil
}

func (b *builder) printf(format string, args ...any) {
	if b.progress != nil {
		fmt.Fprintf(b.progress, format, args...)
	}
}

// mmdebstrapArgs is the mmdebstrap command line for r into dir.
func mmdebstrapArgs(r Recipe, dir string) []string {
	args := []string{
		"--mode=root",
		"--variant=" + r.Variant,
		"--arch=" + r.DebianArch,
		"--include=" + strings.Join(r.Packages, ","),
		`--aptopt=Acquire::Languages "none"`,
	}
	for _, o := range r.DpkgOptions {
		args = append(args, "--dpkgopt="+o)
	}
	for _, h := range r.CustomizeHooks {
		args = append(args, "--customize-hook="+h)
	}
	return append(args, r.Suite, dir, r.Mirror)
}

func (b *builder) bootstrap(ctx context.Context) error {
	_, err := run(ctx, b.log, command{
		path:          b.tools["mmdebstrap"],
		args:          mmdebstrapArgs(b.recipe, b.path("rootfs")),
		privateMounts: true,
	})
	return err
}

func (b *builder) filesystems(ctx context.Context) error {
	uuid, err := newUUID()
	if err != nil {
		return err
	}
	b.rootUUID = uuid
	if err := b.configureRoot(); err != nil {
		return fmt.Errorf("configuring the root filesystem: %w", err)
	}
	rootPart, _ := b.recipe.Layout.Partition(1)
	espPart, _ := b.recipe.Layout.Partition(15)

	conf := b.path("mke2fs.conf")
	if err := os.WriteFile(conf, mke2fsConf, 0o644); err != nil {
		return err
	}
	if err := sizedFile(b.path("root.img"), rootPart.Size()); err != nil {
		return err
	}
	if _, err := run(ctx, b.log, command{
		path: b.tools["mkfs.ext4"],
		args: []string{"-F", "-q", "-t", "ext4", "-L", rootPart.Label, "-U", uuid, "-d", b.path("rootfs"), b.path("root.img")},
		env:  []string{"MKE2FS_CONFIG=" + conf},
	}); err != nil {
		return err
	}
	// The tree is in root.img now; free the space early.
	if err := removeTree(b.path("rootfs")); err != nil {
		return err
	}
	if err := sizedFile(b.path("esp.img"), espPart.Size()); err != nil {
		return err
	}
	_, err = run(ctx, b.log, command{
		path: b.tools["mkfs.vfat"],
		args: []string{"-n", espPart.Label, b.path("esp.img")},
	})
	return err
}

// configureRoot writes the files that make the tree a bootable cloud-like
// root and records what went in. All access goes through an os.Root, so a
// symlink in the tree can never redirect a write to the host.
func (b *builder) configureRoot() error {
	root, err := os.OpenRoot(b.path("rootfs"))
	if err != nil {
		return err
	}
	defer root.Close()
	host := b.recipe.Hostname
	files := []struct {
		path, data string
	}{
		{"etc/hostname", host + "\n"},
		{"etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\t" + host + "\n\n" +
			"::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"},
		{"etc/fstab", "# <file system> <mount point> <type> <options> <dump> <pass>\n" +
			"UUID=" + b.rootUUID + "\t/\text4\trw,discard,errors=remount-ro\t0\t1\n"},
	}
	if err := writeRootFiles(root, files); err != nil {
		return err
	}
	if _, err := root.Stat("usr/lib/systemd/systemd-networkd"); err != nil {
		return fmt.Errorf("systemd-networkd is missing from the image: %w", err)
	}
	kernel, initrd, version, err := findKernel(root, "initrd.img-%s")
	if err != nil {
		return err
	}
	pkgs, systemd, err := b.checkPackages(root)
	if err != nil {
		return err
	}
	b.info = BuildInfo{
		Version:        1,
		Key:            b.recipe.Key(),
		Recipe:         b.recipe,
		Disk:           DiskFile,
		DiskFormat:     "qcow2",
		RootDevice:     "/dev/vda1",
		RootUUID:       b.rootUUID,
		Filesystem:     "ext4",
		Bootloader:     "none",
		Kernel:         kernel,
		Initrd:         initrd,
		KernelVersion:  version,
		SystemdVersion: systemd,
		Packages:       pkgs,
	}
	b.log.Debug("root configured", "kernel", version, "systemd", systemd, "packages", len(pkgs))
	return nil
}

// writeRootFiles replaces files in the tree (never through a symlink) and
// removes the host's resolver configuration, which mmdebstrap copies in and
// which means nothing in a VM.
func writeRootFiles(root *os.Root, files []struct{ path, data string }) error {
	for _, f := range files {
		if err := root.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := root.WriteFile(f.path, []byte(f.data), 0o644); err != nil {
			return err
		}
	}
	if err := root.Remove("etc/resolv.conf"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// checkPackages returns the installed packages and systemd's major
// version, and fails when a package of the recipe is missing.
func (b *builder) checkPackages(root *os.Root) (map[string]string, int, error) {
	status, err := root.ReadFile("var/lib/dpkg/status")
	if err != nil {
		return nil, 0, err
	}
	pkgs, err := installedPackages(status)
	if err != nil {
		return nil, 0, err
	}
	var missing []string
	for _, p := range b.recipe.Packages {
		if _, ok := pkgs[p]; !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, 0, fmt.Errorf("packages not installed: %s", strings.Join(missing, ", "))
	}
	systemd, err := upstreamMajor(pkgs["systemd"])
	if err != nil {
		return nil, 0, fmt.Errorf("systemd version: %w", err)
	}
	return pkgs, systemd, nil
}

// findKernel finds the one kernel in /boot and its initrd, named by
// initrdName with %s for the kernel version ("initrd.img-%s").
func findKernel(root *os.Root, initrdName string) (kernel, initrd, version string, err error) {
	dir, err := root.Open("boot")
	if err != nil {
		return "", "", "", err
	}
	names, err := dir.Readdirnames(-1)
	dir.Close()
	if err != nil {
		return "", "", "", err
	}
	slices.Sort(names)
	var versions []string
	for _, n := range names {
		if v, ok := strings.CutPrefix(n, "vmlinuz-"); ok {
			versions = append(versions, v)
		}
	}
	if len(versions) != 1 {
		return "", "", "", fmt.Errorf("want one kernel in /boot, found %d (%s)", len(versions), strings.Join(names, " "))
	}
	version = versions[0]
	kernel, initrd = "boot/vmlinuz-"+version, "boot/"+fmt.Sprintf(initrdName, version)
	if fi, err := root.Stat(initrd); err != nil || fi.Size() == 0 {
		return "", "", "", fmt.Errorf("no initrd for kernel %s in /boot (%s)", version, strings.Join(names, " "))
	}
	return kernel, initrd, version, nil
}

// diskImage is a filesystem image made for one partition of the disk.
type diskImage struct {
	partition int
	file      string // in the build directory
}

// diskImages are the filesystem images the filesystems step made: the
// Debian layout's ext4 root and ESP, or a shape's part<N>.img for every
// mounted partition.
func (b *builder) diskImages() []diskImage {
	if b.recipe.Shape == "" {
		return []diskImage{{1, "root.img"}, {15, "esp.img"}}
	}
	var out []diskImage
	for _, p := range b.recipe.Layout.Mounted() {
		out = append(out, diskImage{p.Number, fmt.Sprintf("part%d.img", p.Number)})
	}
	return out
}

// disk writes the GPT and copies every filesystem image into place.
func (b *builder) disk(ctx context.Context) error {
	l := b.recipe.Layout
	raw := b.path("disk.raw")
	if err := sizedFile(raw, l.DiskSize); err != nil {
		return err
	}
	if _, err := run(ctx, b.log, command{path: b.tools["sgdisk"], args: sgdiskArgs(l, raw)}); err != nil {
		return err
	}
	f, err := os.OpenFile(raw, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, img := range b.diskImages() {
		p, ok := l.Partition(img.partition)
		if !ok {
			return fmt.Errorf("the layout has no partition %d for %s", img.partition, img.file)
		}
		if err := copyImage(ctx, f, p, b.path(img.file)); err != nil {
			return fmt.Errorf("copying %s into partition %d: %w", img.file, p.Number, err)
		}
		if err := os.Remove(b.path(img.file)); err != nil {
			return err
		}
	}
	return f.Close()
}

func copyImage(ctx context.Context, disk *os.File, p Partition, path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != p.Size() {
		return fmt.Errorf("image is %d bytes, partition %d bytes", fi.Size(), p.Size())
	}
	return copySparse(ctx, disk, p.Offset(), src)
}

func (b *builder) convert(ctx context.Context) error {
	if err := os.Mkdir(b.out(), 0o755); err != nil {
		return err
	}
	dst := filepath.Join(b.out(), DiskFile)
	if _, err := run(ctx, b.log, command{
		path: b.tools["qemu-img"],
		args: []string{"convert", "-f", "raw", "-O", "qcow2", b.path("disk.raw"), dst},
	}); err != nil {
		return err
	}
	if err := os.Remove(b.path("disk.raw")); err != nil {
		return err
	}
	return syncPath(dst)
}

// sizedFile creates an empty sparse file of size bytes.
func sizedFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}
