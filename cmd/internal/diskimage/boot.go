package diskimage

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

// DefaultKernel is the kernel pattern FindBoot uses by default. A separate
// /boot partition is searched with "/boot" removed.
const DefaultKernel = "/boot/vmlinuz-*"

// defaultInitrds are the initrd names of Debian/Ubuntu, Fedora/EL and
// SUSE/Arch; VERSION stands for the kernel version.
var defaultInitrds = []string{"initrd.img-VERSION", "initramfs-VERSION.img", "initrd-VERSION", "initrd-VERSION.img"}

// Boot is the kernel and initrd for a direct kernel boot.
type Boot struct {
	Partition     int    `json:"partition"`      // the partition holding both files
	Kernel        string `json:"kernel"`         // absolute path in that partition's filesystem
	Initrd        string `json:"initrd"`         // same
	KernelVersion string `json:"kernel_version"` // from the kernel's file name: vmlinuz-VERSION
	// Entry is the Boot Loader Specification entry the files come from
	// ("/loader/entries/….conf"), "" when they were found by pattern.
	Entry string `json:"entry,omitempty"`
	// Options are the entry's kernel options (grub variables such as
	// $kernelopts dropped).
	Options []string `json:"options,omitempty"`
}

// FindBoot finds the kernel and initrd the way the image's boot loader
// does. It searches, in this order: partitions typed XBOOTLDR ("Linux
// extended boot", Ubuntu ≥ 23.10) or whose filesystem is labelled "boot"
// (EL's xfs /boot), then the root filesystem, then every other ext4 or xfs
// partition (Fedora's unlabelled ext4 /boot). kernelGlob ("" for
// DefaultKernel; wildcards in the last element only, as in
// "/boot/vmlinuz-*") applies to the root; on another partition it is used
// without its "/boot" prefix. In each filesystem the Boot Loader
// Specification entries (loader/entries/*.conf beside the kernels' parent
// directory) win; without them the newest kernel matching kernelGlob that
// has an initrd does. initrdGlob ("" for the usual names) selects the
// initrd; of its matches the one whose name carries the kernel version
// wins.
//
// rootFiles is the root filesystem when the caller has it open (nil: it
// is opened here if distrotest reads its filesystem, see [Readers]).
func (img *Image) FindBoot(root Partition, rootFiles Files, kernelGlob, initrdGlob string) (Boot, Files, error) {
	if kernelGlob == "" {
		kernelGlob = DefaultKernel
	}
	kernelGlob = path.Clean("/" + kernelGlob)
	if initrdGlob != "" {
		initrdGlob = path.Clean("/" + initrdGlob)
	}
	bootGlob := strings.TrimPrefix(kernelGlob, "/boot")
	bootInitrd := strings.TrimPrefix(initrdGlob, "/boot")
	separate := strings.HasPrefix(kernelGlob, "/boot/")

	var first error // the root's answer, or the first boot partition's
	try := func(f Files, kg, ig string) (Boot, bool) {
		b, err := findBoot(f, kg, ig)
		if err == nil {
			return b, true
		}
		if first == nil || (!errors.Is(err, errNoKernel) && errors.Is(first, errNoKernel)) {
			first = err
		}
		return Boot{}, false
	}
	open := func(p Partition) Files {
		if p.Number == root.Number && rootFiles != nil {
			return rootFiles
		}
		f, err := img.Files(p)
		if err != nil {
			return nil
		}
		return f
	}
	tried := map[int]bool{}
	if separate {
		for _, p := range img.Partitions {
			if !bootPartition(p) || p.Number == root.Number {
				continue
			}
			tried[p.Number] = true
			if f := open(p); f != nil {
				if b, ok := try(f, bootGlob, bootInitrd); ok {
					return b, f, nil
				}
			}
		}
	}
	tried[root.Number] = true
	rf := open(root)
	if rf != nil {
		first = nil // the root's own error is the most telling
		if b, ok := try(rf, kernelGlob, initrdGlob); ok {
			return b, rf, nil
		}
	}
	if separate {
		for _, p := range img.Partitions {
			if tried[p.Number] || !slices.Contains(Readers, p.Filesystem) {
				continue
			}
			if f := open(p); f != nil {
				if b, ok := try(f, bootGlob, bootInitrd); ok {
					return b, f, nil
				}
			}
		}
	}
	if rf == nil {
		more := ""
		if first != nil && !errors.Is(first, errNoKernel) {
			more = "; " + first.Error()
		}
		return Boot{}, nil, fmt.Errorf("%w: the root filesystem (partition %d) is %s, which distrotest does not read files from, and no partition it reads holds a kernel matching %s (partitions: %s)%s",
			errNoKernel, root.Number, root.FilesystemName(), bootGlob, img.describe(), more)
	}
	return Boot{}, nil, first
}

// bootPartition reports whether p is a dedicated /boot: GPT type XBOOTLDR
// or a filesystem labelled "boot" (any case).
func bootPartition(p Partition) bool {
	return strings.EqualFold(p.Type, string(gpt.LinuxExtendedBoot)) || strings.EqualFold(p.FSLabel, "boot")
}

var errNoKernel = errors.New("no kernel")

func findBoot(f Files, kernelGlob, initrdGlob string) (Boot, error) {
	where := fmt.Sprintf("the filesystem of partition %d", f.Part().Number)
	if b, ok, err := findBLS(f, path.Join(path.Dir(path.Dir(kernelGlob)), "loader/entries")); err != nil || ok {
		return b, err
	}
	kernels, err := glob(f, kernelGlob)
	if errors.Is(err, fs.ErrNotExist) {
		return Boot{}, fmt.Errorf("%w: %s does not exist in %s", errNoKernel, path.Dir(kernelGlob), where)
	}
	if err != nil {
		return Boot{}, err
	}
	var usable []string
	for _, k := range kernels {
		base := path.Base(k)
		if strings.Contains(base, "rescue") || strings.HasSuffix(base, ".old") || strings.Contains(base, ".dpkg-") {
			continue
		}
		usable = append(usable, k)
	}
	if len(usable) == 0 {
		return Boot{}, fmt.Errorf("%w matching %s in %s", errNoKernel, kernelGlob, where)
	}
	sortVersions(usable)
	var candidates []string
	if initrdGlob != "" {
		if candidates, err = glob(f, initrdGlob); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Boot{}, err
		}
	} else {
		entries, err := f.ReadDir(path.Dir(kernelGlob))
		if err != nil {
			return Boot{}, err
		}
		for _, e := range entries {
			if e.Type.IsRegular() {
				candidates = append(candidates, path.Join(path.Dir(kernelGlob), e.Name))
			}
		}
	}
	for i := len(usable) - 1; i >= 0; i-- {
		kernel := usable[i]
		version := kernelVersion(kernel)
		if initrd := matchInitrd(candidates, version, initrdGlob != ""); initrd != "" {
			return Boot{Partition: f.Part().Number, Kernel: kernel, Initrd: initrd, KernelVersion: version}, nil
		}
	}
	return Boot{}, fmt.Errorf("no initrd for kernel %s in %s (looked for %s)", usable[len(usable)-1], where, initrdDescription(initrdGlob))
}

func initrdDescription(glob string) string {
	if glob != "" {
		return glob
	}
	return strings.Join(defaultInitrds, ", ")
}

// kernelVersion is the version in a kernel file name: vmlinuz-VERSION.
func kernelVersion(kernel string) string {
	base := path.Base(kernel)
	if i := strings.IndexByte(base, '-'); i >= 0 {
		return base[i+1:]
	}
	return ""
}

// matchInitrd picks the initrd for version among candidates: a file named
// by one of defaultInitrds, or with a glob, a match whose name contains the
// version (the only match when there is one and no version).
func matchInitrd(candidates []string, version string, fromGlob bool) string {
	if !fromGlob {
		for _, pattern := range defaultInitrds {
			want := strings.ReplaceAll(pattern, "VERSION", version)
			for _, c := range candidates {
				if path.Base(c) == want {
					return c
				}
			}
		}
		return ""
	}
	if version == "" {
		if len(candidates) == 1 {
			return candidates[0]
		}
		return ""
	}
	var best string
	for _, c := range candidates {
		base := path.Base(c)
		i := strings.Index(base, version)
		if i < 0 {
			continue
		}
		// prefer an exact end (initrd.img-V) over a longer version (V-rt)
		rest := strings.TrimPrefix(base[i+len(version):], ".img")
		if rest == "" {
			return c
		}
		if best == "" {
			best = c
		}
	}
	return best
}

// glob returns the regular files matching pattern, whose wildcards may
// only be in the last element. Its directory must exist.
func glob(f Files, pattern string) ([]string, error) {
	dir, pat := path.Split(path.Clean("/" + pattern))
	if _, err := path.Match(pat, ""); err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pattern, err)
	}
	entries, err := f.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.Type.IsRegular() {
			continue
		}
		if ok, _ := path.Match(pat, e.Name); ok {
			out = append(out, path.Join(dir, e.Name))
		}
	}
	return out, nil
}

var numRE = regexp.MustCompile(`\d+|\D+`)

// versionLess compares strings with embedded numbers numerically:
// vmlinuz-6.1.0-9 < vmlinuz-6.1.0-10.
func versionLess(a, b string) bool {
	pa, pb := numRE.FindAllString(a, -1), numRE.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil && na != nb {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

func sortVersions(s []string) {
	sort.SliceStable(s, func(i, j int) bool { return versionLess(s[i], s[j]) })
}

// systemdDirs hold libsystemd-shared-NNN.so on Debian/Ubuntu (multiarch),
// Arch, Fedora/EL (lib64) and older merged or split /usr layouts.
var systemdDirs = []string{
	"/usr/lib/x86_64-linux-gnu/systemd", "/usr/lib/aarch64-linux-gnu/systemd",
	"/usr/lib/systemd", "/usr/lib64/systemd", "/lib/systemd", "/lib64/systemd",
}

// systemdBinaries are read when no shared library is found (systemd before
// 231 linked it statically).
var systemdBinaries = []string{"/usr/lib/systemd/systemd", "/lib/systemd/systemd"}

var (
	sharedRE = regexp.MustCompile(`^libsystemd-shared-(\d+)`)
	binaryRE = regexp.MustCompile(`libsystemd-shared-(\d+)|systemd (\d+)[^ \x00]* running in`)
)

// maxBinary bounds how much of the systemd binary is read.
const maxBinary = 16 << 20

// SystemdVersion returns systemd's major version (257) and the file it was
// read from, or 0 and "" when the filesystem has no systemd. On
// filesystems other than ext4 only real directories are searched (the xfs
// reader follows no links) and only the shared library's name counts.
func SystemdVersion(f Files) (int, string, error) {
	if e, ok := f.(*FS); ok {
		return e.SystemdVersion()
	}
	best, from := 0, ""
	for _, d := range systemdDirs {
		entries, err := f.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if m := sharedRE.FindStringSubmatch(e.Name); m != nil {
				if v, _ := strconv.Atoi(m[1]); v > best {
					best, from = v, path.Join(d, e.Name)
				}
			}
		}
	}
	return best, from, nil
}

// SystemdVersion returns systemd's major version (257) and the file it was
// read from, or 0 and "" when the filesystem has no systemd.
func (f *FS) SystemdVersion() (int, string, error) {
	best, from := 0, ""
	seen := map[string]bool{}
	for _, d := range systemdDirs {
		real, _, err := f.resolve(d, true)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		entries, err := f.ReadDir(real)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			continue
		}
		if err != nil {
			return 0, "", err
		}
		for _, e := range entries {
			if m := sharedRE.FindStringSubmatch(e.Name); m != nil {
				if v, _ := strconv.Atoi(m[1]); v > best {
					best, from = v, path.Join(d, e.Name)
				}
			}
		}
	}
	if best > 0 {
		return best, from, nil
	}
	for _, b := range systemdBinaries {
		info, err := f.Stat(b)
		if err != nil || !info.Mode.IsRegular() || info.Size > maxBinary {
			continue
		}
		data, err := f.ReadFile(b)
		if err != nil {
			return 0, "", err
		}
		if m := binaryRE.FindSubmatch(data); m != nil {
			v, _ := strconv.Atoi(string(m[1]) + string(m[2]))
			return v, b, nil
		}
	}
	return 0, "", nil
}
