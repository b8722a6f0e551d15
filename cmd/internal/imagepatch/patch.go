package imagepatch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem/ext4"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qcow2"
)

// Spec is what the patcher needs to know about the distro release.
type Spec struct {
	Distro, Release, System string
	Strategy                string // only "disk" is supported
	Rootfs                  string // expected root filesystem, e.g. "ext4"
	RootPartition           int    // 0: the largest Linux filesystem partition
	Kernel, Initrd          string // globs relative to the root, e.g. "boot/vmlinuz-*"
}

// Options tune a patch.
type Options struct {
	// Standalone writes a self-contained disk.qcow2 instead of an overlay
	// whose backing file is the input image.
	Standalone bool
	Logger     *slog.Logger
}

// Stats reports what a patch did.
type Stats struct {
	Duration      time.Duration
	DirtyClusters int
	SkippedMasks  []string // masks that could not be linked (an entry existed) and went to the kernel command line
}

// Patch prepares input (qcow2 or raw) as a distrotest image in outDir.
func Patch(ctx context.Context, input, outDir string, spec Spec, plan guest.Plan, opts Options) (*manifest.Manifest, Stats, error) {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var st Stats
	if spec.Strategy != "disk" {
		return nil, st, fmt.Errorf("patching %s: %s/%s uses strategy %q; the patcher supports only \"disk\" (ext4 roots) so far", input, spec.Distro, spec.Release, spec.Strategy)
	}
	abs, err := filepath.Abs(input)
	if err != nil {
		return nil, st, fmt.Errorf("patching %s: %w", input, err)
	}
	img, err := Open(abs)
	if err != nil {
		return nil, st, fmt.Errorf("patching %s: %w", input, err)
	}
	defer img.Close()
	root, err := img.Root(spec.RootPartition)
	if err != nil {
		return nil, st, fmt.Errorf("patching %s: %w", input, err)
	}
	if root.FS != "ext4" {
		return nil, st, fmt.Errorf("patching %s: root filesystem (partition %d) is %s; %s/%s needs strategy credentials or cloud-init, which the patcher does not support yet", input, root.Index, root.FS, spec.Distro, spec.Release)
	}
	if err := ctx.Err(); err != nil {
		return nil, st, err
	}
	fsys, err := img.ext4(root)
	if err != nil {
		return nil, st, fmt.Errorf("patching %s: %w", input, err)
	}
	kernel, initrd, err := findBoot(fsys, spec)
	if err != nil {
		return nil, st, fmt.Errorf("patching %s: %w", input, err)
	}
	skipped, err := apply(fsys, plan, log)
	if err != nil {
		return nil, st, fmt.Errorf("patching %s: %w", input, err)
	}
	st.SkippedMasks = skipped
	m := &manifest.Manifest{
		Version: manifest.CurrentVersion, Distro: spec.Distro, Release: spec.Release, System: spec.System,
		Disk: "disk.qcow2", DiskFormat: "qcow2", Kernel: "vmlinuz", Initrd: "initrd",
		RootDevice: fmt.Sprintf("/dev/vda%d", root.Index), Filesystem: root.FS, Strategy: spec.Strategy,
		SystemdVersion: systemdVersion(fsys),
		KernelVersion:  strings.TrimPrefix(path.Base(kernel), "vmlinuz-"),
	}
	m.KernelParams = []string{"root=" + m.RootDevice, "rw", "console=ttyS0"}
	for _, u := range skipped {
		m.KernelParams = append(m.KernelParams, "systemd.mask="+u)
	}
	if err := ctx.Err(); err != nil {
		return nil, st, err
	}
	backing, format := abs, img.Format
	if opts.Standalone {
		backing, format = "", ""
	}
	st.DirtyClusters = img.overlay.Dirty()
	err = writeDir(outDir, func(tmp string) error {
		if err := copyOut(fsys, kernel, filepath.Join(tmp, "vmlinuz")); err != nil {
			return err
		}
		if err := copyOut(fsys, initrd, filepath.Join(tmp, "initrd")); err != nil {
			return err
		}
		if err := img.overlay.WriteQcow2(filepath.Join(tmp, "disk.qcow2"), backing, format); err != nil {
			return err
		}
		return m.Write(tmp)
	})
	if err != nil {
		return nil, st, fmt.Errorf("patching %s: %w", input, err)
	}
	st.Duration = time.Since(start)
	log.Info("patched image", "input", input, "out", outDir, "duration", st.Duration, "dirty_clusters", st.DirtyClusters)
	return m, st, nil
}

// Image is a disk image opened for patching: writes stay in memory.
type Image struct {
	Path    string
	Format  string // qcow2 or raw
	Size    int64
	base    qcow2.Reader
	overlay *qcow2.Overlay
	disk    *disk.Disk
	Table   string // gpt, mbr
	Parts   []Partition
}

// Partition is one partition and the filesystem found on it.
type Partition struct {
	Index int    `json:"number"`
	Start int64  `json:"start"`
	Size  int64  `json:"size"`
	Label string `json:"name,omitempty"`
	FS    string `json:"filesystem"`
}

// Open opens a qcow2 or raw image read-only and reads its partition table.
func Open(p string) (*Image, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("opening image: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("opening image %s: is a directory", p)
	}
	if st.Size() < 1024*1024 {
		return nil, fmt.Errorf("opening image %s: %d bytes is too small to be a disk image (truncated?)", p, st.Size())
	}
	base, err := qcow2.OpenAny(p)
	if err != nil {
		return nil, fmt.Errorf("opening image: %w", err)
	}
	img := &Image{Path: p, Format: "raw", Size: base.Size(), base: base}
	if _, ok := base.(*qcow2.Image); ok {
		img.Format = "qcow2"
	}
	img.overlay = qcow2.NewOverlay(base, base.Size())
	d, err := diskfs.OpenBackend(img.overlay, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		base.Close()
		return nil, fmt.Errorf("opening image %s: %w", p, err)
	}
	img.disk = d
	table, err := d.GetPartitionTable()
	if err != nil || table == nil {
		base.Close()
		return nil, fmt.Errorf("opening image %s: no partition table found (want GPT or MBR; is it a disk image?)", p)
	}
	img.Table = table.Type()
	for _, pt := range table.GetPartitions() {
		if pt.GetSize() == 0 {
			continue
		}
		part := Partition{Index: pt.GetIndex(), Start: pt.GetStart(), Size: pt.GetSize(), Label: pt.Label()}
		if part.Start+part.Size > img.Size {
			base.Close()
			return nil, fmt.Errorf("opening image %s: partition %d ends at byte %d, past the end of the %d-byte disk (truncated image?)", p, part.Index, part.Start+part.Size, img.Size)
		}
		part.FS, err = detectFS(img.overlay, part.Start)
		if err != nil {
			base.Close()
			return nil, fmt.Errorf("opening image %s: partition %d: %w", p, part.Index, err)
		}
		img.Parts = append(img.Parts, part)
	}
	if len(img.Parts) == 0 {
		base.Close()
		return nil, fmt.Errorf("opening image %s: the partition table has no partitions", p)
	}
	return img, nil
}

// Close releases the input image.
func (img *Image) Close() error { return img.base.Close() }

// Root returns partition n, or when n is 0 the largest partition holding a
// Linux root filesystem (ext4, xfs or btrfs).
func (img *Image) Root(n int) (Partition, error) {
	if n > 0 {
		for _, p := range img.Parts {
			if p.Index == n {
				return p, nil
			}
		}
		return Partition{}, fmt.Errorf("root partition %d not found", n)
	}
	var best Partition
	for _, p := range img.Parts {
		switch p.FS {
		case "ext4", "xfs", "btrfs":
			if p.Size > best.Size {
				best = p
			}
		}
	}
	if best.Index == 0 {
		return Partition{}, errors.New("no partition holds a Linux root filesystem (ext4, xfs or btrfs)")
	}
	return best, nil
}

func (img *Image) ext4(p Partition) (*ext4.FileSystem, error) {
	sb := make([]byte, 1024)
	if _, err := img.overlay.ReadAt(sb, p.Start+1024); err != nil {
		return nil, fmt.Errorf("reading ext4 superblock: %w", err)
	}
	incompat := binary.LittleEndian.Uint32(sb[0x60:])
	if incompat&0x4 != 0 {
		return nil, fmt.Errorf("the ext4 root (partition %d) has a journal that needs recovery: run e2fsck on the image first", p.Index)
	}
	fsys, err := ext4.Read(img.overlay, p.Size, p.Start, 512)
	if err != nil {
		return nil, fmt.Errorf("reading ext4 root (partition %d): %w", p.Index, err)
	}
	return fsys, nil
}

// detectFS names the filesystem at off by its superblock magic.
func detectFS(r io.ReaderAt, off int64) (string, error) {
	b := make([]byte, 0x10048)
	n, err := r.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading superblock: %w", err)
	}
	b = b[:n]
	switch {
	case len(b) >= 0x43a && binary.LittleEndian.Uint16(b[0x438:]) == 0xEF53:
		return "ext4", nil
	case len(b) >= 4 && string(b[:4]) == "XFSB":
		return "xfs", nil
	case len(b) >= 0x10048 && string(b[0x10040:0x10048]) == "_BHRfS_M":
		return "btrfs", nil
	case len(b) >= 0x5a && (string(b[0x52:0x57]) == "FAT32" || string(b[0x36:0x39]) == "FAT"):
		return "vfat", nil
	}
	return "", nil
}

func rel(p string) string { return strings.TrimPrefix(path.Clean(p), "/") }

// exists reports whether p exists and its file info.
func exists(fsys *ext4.FileSystem, p string) (fs.FileInfo, bool, error) {
	fi, err := fsys.Stat(rel(p))
	if err == nil {
		return fi, true, nil
	}
	if errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "does not exist") {
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("stat %s: %w", p, err)
}

// lexists is exists without following a final symlink.
func lexists(fsys *ext4.FileSystem, p string) (bool, string, error) {
	parent := rel(path.Dir(p))
	entries, err := fsys.ReadDir(parent)
	if err != nil {
		return false, "", fmt.Errorf("reading directory /%s: %w", parent, err)
	}
	for _, e := range entries {
		if e.Name() == path.Base(p) {
			if e.Type()&fs.ModeSymlink != 0 {
				target, err := fsys.ReadLink(rel(p))
				return true, target, err
			}
			return true, "", nil
		}
	}
	return false, "", nil
}

// checkParent refuses to add an entry to a hash-indexed directory.
func checkParent(fsys *ext4.FileSystem, p string) error {
	dir := path.Dir(p)
	if dir == "/" {
		fi, err := fsys.Stat(".")
		if err != nil {
			return nil
		}
		return htree(fi, dir)
	}
	fi, ok, err := exists(fsys, dir)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("parent directory %s of %s does not exist", dir, p)
	}
	return htree(fi, dir)
}

func htree(fi fs.FileInfo, dir string) error {
	if st, ok := fi.Sys().(*ext4.StatT); ok && st.Flags.HashedIndexes {
		return fmt.Errorf("directory %s is hash-indexed (htree): distrotest does not add entries to such directories with go-diskfs", dir)
	}
	return nil
}

// apply writes the plan. It returns the masks it could not link because an
// entry already exists (those go to the kernel command line instead).
func apply(fsys *ext4.FileSystem, plan guest.Plan, log *slog.Logger) ([]string, error) {
	for _, d := range plan.Dirs {
		fi, ok, err := exists(fsys, d.Path)
		if err != nil {
			return nil, err
		}
		if ok {
			if !fi.IsDir() {
				return nil, fmt.Errorf("%s exists and is not a directory", d.Path)
			}
			continue
		}
		if err := checkParent(fsys, d.Path); err != nil {
			return nil, err
		}
		if err := fsys.Mkdir(rel(d.Path)); err != nil {
			return nil, fmt.Errorf("creating directory %s: %w", d.Path, err)
		}
		if err := fsys.Chmod(rel(d.Path), d.Mode|fs.ModeDir); err != nil {
			return nil, fmt.Errorf("setting mode of %s: %w", d.Path, err)
		}
	}
	for _, f := range plan.Files {
		ok, _, err := lexists(fsys, f.Path)
		if err != nil {
			return nil, err
		}
		if ok {
			return nil, fmt.Errorf("refusing to overwrite %s, which already exists in the image (was it patched before? patch the original image)", f.Path)
		}
		if err := checkParent(fsys, f.Path); err != nil {
			return nil, err
		}
		w, err := fsys.OpenFile(rel(f.Path), os.O_CREATE|os.O_RDWR)
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", f.Path, err)
		}
		if _, err := w.Write(f.Data); err != nil {
			w.Close()
			return nil, fmt.Errorf("writing %s: %w", f.Path, err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("writing %s: %w", f.Path, err)
		}
		if err := fsys.Chmod(rel(f.Path), f.Mode); err != nil {
			return nil, fmt.Errorf("setting mode of %s: %w", f.Path, err)
		}
	}
	var skipped []string
	for _, s := range plan.Symlinks {
		ok, target, err := lexists(fsys, s.Path)
		if err != nil {
			return nil, err
		}
		if ok {
			switch {
			case target == s.Target:
				continue
			case s.Target == "/dev/null":
				log.Info("unit already present, masking it on the kernel command line", "unit", path.Base(s.Path))
				skipped = append(skipped, path.Base(s.Path))
				continue
			default:
				return nil, fmt.Errorf("refusing to replace %s (-> %q) with a link to %s", s.Path, target, s.Target)
			}
		}
		if err := checkParent(fsys, s.Path); err != nil {
			return nil, err
		}
		if err := fsys.Symlink(s.Target, rel(s.Path)); err != nil {
			return nil, fmt.Errorf("creating symlink %s -> %s: %w", s.Path, s.Target, err)
		}
	}
	return skipped, nil
}

// findBoot finds the newest kernel and initrd matching the spec's globs.
func findBoot(fsys *ext4.FileSystem, spec Spec) (kernel, initrd string, err error) {
	kg, ig := spec.Kernel, spec.Initrd
	if kg == "" {
		kg = "boot/vmlinuz-*"
	}
	if ig == "" {
		ig = "boot/initrd.img-*"
	}
	kernels, err := glob(fsys, kg)
	if err != nil {
		return "", "", err
	}
	if len(kernels) == 0 {
		return "", "", fmt.Errorf("no kernel matching /%s in the root filesystem", kg)
	}
	kernel = kernels[len(kernels)-1]
	version := strings.TrimPrefix(path.Base(kernel), "vmlinuz-")
	initrds, err := glob(fsys, ig)
	if err != nil {
		return "", "", err
	}
	for _, i := range initrds {
		if strings.HasSuffix(i, version) || strings.Contains(path.Base(i), version+".") {
			initrd = i
		}
	}
	if initrd == "" {
		return "", "", fmt.Errorf("no initrd for kernel %s matching /%s in the root filesystem", kernel, ig)
	}
	return kernel, initrd, nil
}

// glob matches one directory level pattern like "boot/vmlinuz-*"; regular
// files only, sorted by version.
func glob(fsys *ext4.FileSystem, pattern string) ([]string, error) {
	dir, pat := path.Split(strings.TrimPrefix(pattern, "/"))
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading /%s: %w", dir, err)
	}
	var out []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if ok, _ := path.Match(pat, e.Name()); ok {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	sort.Slice(out, func(i, j int) bool { return versionLess(out[i], out[j]) })
	return out, nil
}

var numRE = regexp.MustCompile(`\d+|\D+`)

// versionLess compares strings with embedded numbers numerically.
func versionLess(a, b string) bool {
	pa, pb := numRE.FindAllString(a, -1), numRE.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

var systemdDirs = []string{
	"usr/lib/x86_64-linux-gnu/systemd", "usr/lib/aarch64-linux-gnu/systemd",
	"usr/lib/systemd", "lib/systemd", "usr/lib64/systemd",
}

var sharedRE = regexp.MustCompile(`^libsystemd-shared-(\d+)`)

// systemdVersion reads the systemd version from the name of its shared
// library; 0 when not found.
func systemdVersion(fsys *ext4.FileSystem) int {
	for _, d := range systemdDirs {
		entries, err := fsys.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if m := sharedRE.FindStringSubmatch(e.Name()); m != nil {
				v, _ := strconv.Atoi(m[1])
				return v
			}
		}
	}
	return 0
}

func copyOut(fsys *ext4.FileSystem, src, dst string) error {
	in, err := fsys.OpenFile(rel(src), os.O_RDONLY)
	if err != nil {
		return fmt.Errorf("reading /%s from the image: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if _, err := io.CopyBuffer(out, struct{ io.Reader }{in}, make([]byte, 4<<20)); err != nil {
		out.Close()
		return fmt.Errorf("copying /%s from the image to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

// writeDir fills a temporary directory beside out with fill and renames it
// into place. An existing prepared directory (one with a manifest) is
// replaced; anything else at out is an error. Nothing is left on failure.
func writeDir(out string, fill func(tmp string) error) error {
	out = filepath.Clean(out)
	if fi, err := os.Stat(out); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("output %s exists and is not a directory", out)
		}
		entries, _ := os.ReadDir(out)
		if len(entries) > 0 {
			if _, err := os.Stat(filepath.Join(out, manifest.FileName)); err != nil {
				return fmt.Errorf("output %s exists, is not empty and is not a prepared image directory", out)
			}
		}
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating output directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fmt.Errorf("creating output in %s: %w", parent, err)
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("creating output: %w", err)
	}
	old := ""
	if _, err := os.Stat(out); err == nil {
		old = tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("replacing %s: %w", out, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if old != "" {
			os.Rename(old, out)
		}
		os.RemoveAll(tmp)
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

// Info is what `distrotest-gen image inspect` prints.
type Info struct {
	Path           string      `json:"path"`
	Format         string      `json:"format"`
	VirtualSize    int64       `json:"virtual_size"`
	PartitionTable string      `json:"partition_table"`
	Partitions     []Partition `json:"partitions"`
	RootPartition  int         `json:"root_partition"`
	RootFilesystem string      `json:"root_filesystem"`
	Kernel         string      `json:"kernel,omitempty"`
	Initrd         string      `json:"initrd,omitempty"`
	KernelVersion  string      `json:"kernel_version,omitempty"`
	SystemdVersion int         `json:"systemd_version,omitempty"`
	Problems       []string    `json:"problems,omitempty"`
}

// Inspect reads what the patcher needs to know about an image, without
// changing it. Kernel, initrd and systemd are read from ext4 roots only.
func Inspect(p string, spec Spec) (*Info, error) {
	img, err := Open(p)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	info := &Info{Path: p, Format: img.Format, VirtualSize: img.Size, PartitionTable: img.Table, Partitions: img.Parts}
	root, err := img.Root(spec.RootPartition)
	if err != nil {
		info.Problems = append(info.Problems, err.Error())
		return info, nil
	}
	info.RootPartition, info.RootFilesystem = root.Index, root.FS
	if root.FS != "ext4" {
		info.Problems = append(info.Problems, fmt.Sprintf("root filesystem %s: files are read from ext4 roots only", root.FS))
		return info, nil
	}
	fsys, err := img.ext4(root)
	if err != nil {
		info.Problems = append(info.Problems, err.Error())
		return info, nil
	}
	kernel, initrd, err := findBoot(fsys, spec)
	if err != nil {
		info.Problems = append(info.Problems, err.Error())
	} else {
		info.Kernel, info.Initrd = "/"+kernel, "/"+initrd
		info.KernelVersion = strings.TrimPrefix(path.Base(kernel), "vmlinuz-")
	}
	info.SystemdVersion = systemdVersion(fsys)
	return info, nil
}
