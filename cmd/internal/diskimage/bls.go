package diskimage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// BLSEntry is one Boot Loader Specification entry
// (uapi-group.org/specifications/specs/boot_loader_specification, "Type
// #1"): loader/entries/*.conf on Fedora and the EL family.
type BLSEntry struct {
	File    string   // the entry's path in its filesystem
	Title   string   // title
	Version string   // version
	Linux   string   // linux: the kernel, relative to the filesystem's root
	Initrd  []string // initrd lines, in order (early microcode first)
	Options []string // options, split on white space
}

// ParseBLS parses the entry in data, read from file (named in errors).
// Unknown keys are ignored, as the specification asks; a missing linux
// key is an error.
func ParseBLS(file string, data []byte) (BLSEntry, error) {
	e := BLSEntry{File: file}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		if i := strings.IndexAny(key, "\t"); i >= 0 {
			key, value = line[:i], line[i+1:]
		}
		value = strings.TrimSpace(value)
		switch key {
		case "title":
			e.Title = value
		case "version":
			e.Version = value
		case "linux":
			e.Linux = value
		case "initrd":
			e.Initrd = append(e.Initrd, strings.Fields(value)...)
		case "options":
			e.Options = append(e.Options, strings.Fields(value)...)
		}
		if (key == "linux" || key == "initrd") && value == "" {
			return BLSEntry{}, fmt.Errorf("%s:%d: %s has no path", file, n, key)
		}
	}
	if err := sc.Err(); err != nil {
		return BLSEntry{}, fmt.Errorf("%s: %w", file, err)
	}
	if e.Linux == "" {
		return BLSEntry{}, fmt.Errorf("%s: no linux line (not a Boot Loader Specification type #1 entry)", file)
	}
	return e, nil
}

// KernelOptions are the entry's options without grub variables
// ($kernelopts, $tuned_params: EL8 keeps the real options in grubenv).
func (e BLSEntry) KernelOptions() []string {
	var out []string
	for _, o := range e.Options {
		if !strings.HasPrefix(o, "$") {
			out = append(out, o)
		}
	}
	return out
}

func (e BLSEntry) rescue() bool {
	return strings.Contains(path.Base(e.File), "rescue") || strings.Contains(strings.ToLower(e.Title), "rescue") || strings.Contains(e.Linux, "rescue")
}

// findBLS picks the newest non-rescue entry in dir of f whose kernel and
// initrd exist; ok is false when dir has no entries.
func findBLS(f Files, dir string) (Boot, bool, error) {
	list, err := f.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || (err != nil && strings.Contains(err.Error(), "not a directory")) {
		return Boot{}, false, nil
	}
	if err != nil {
		return Boot{}, false, err
	}
	var entries []BLSEntry
	for _, d := range list {
		if !d.Type.IsRegular() || !strings.HasSuffix(d.Name, ".conf") {
			continue
		}
		file := path.Join(dir, d.Name)
		data, err := f.ReadFile(file)
		if err != nil {
			return Boot{}, false, fmt.Errorf("reading boot entry %s in partition %d: %w", file, f.Part().Number, err)
		}
		e, err := ParseBLS(file, data)
		if err != nil {
			return Boot{}, false, fmt.Errorf("boot entry in partition %d: %w", f.Part().Number, err)
		}
		if !e.rescue() {
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return Boot{}, false, nil
	}
	// Newest first, as boot loaders sort: by version, then file name.
	slices.SortStableFunc(entries, func(a, b BLSEntry) int {
		va, vb := a.Version, b.Version
		if va == "" {
			va = path.Base(a.File)
		}
		if vb == "" {
			vb = path.Base(b.File)
		}
		switch {
		case versionLess(va, vb):
			return 1
		case versionLess(vb, va):
			return -1
		}
		return strings.Compare(b.File, a.File)
	})
	var problems []string
	for _, e := range entries {
		kernel, kerr := existing(f, e.Linux)
		if kerr != nil {
			problems = append(problems, fmt.Sprintf("%s: kernel %s: %v", e.File, e.Linux, kerr))
			continue
		}
		if len(e.Initrd) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no initrd line", e.File))
			continue
		}
		// The last initrd is the distro's; earlier ones are microcode.
		initrd, ierr := existing(f, e.Initrd[len(e.Initrd)-1])
		if ierr != nil {
			problems = append(problems, fmt.Sprintf("%s: initrd %s: %v", e.File, e.Initrd[len(e.Initrd)-1], ierr))
			continue
		}
		version := e.Version
		if version == "" {
			version = kernelVersion(kernel)
		}
		return Boot{Partition: f.Part().Number, Kernel: kernel, Initrd: initrd, KernelVersion: version, Entry: e.File, Options: e.KernelOptions()}, true, nil
	}
	return Boot{}, false, fmt.Errorf("no usable boot entry in %s of partition %d: %s", dir, f.Part().Number, strings.Join(problems, "; "))
}

// existing resolves a BLS path: relative to the filesystem holding the
// entries; when /boot is a directory of the root, entries may name
// /vmlinuz-… for /boot/vmlinuz-….
func existing(f Files, p string) (string, error) {
	p = path.Clean("/" + p)
	info, err := f.Stat(p)
	if err != nil && errors.Is(err, fs.ErrNotExist) && !strings.HasPrefix(p, "/boot/") {
		if i, berr := f.Stat("/boot" + p); berr == nil {
			info, err, p = i, nil, "/boot"+p
		}
	}
	if err != nil {
		return "", err
	}
	if !info.Mode.IsRegular() {
		return "", fmt.Errorf("not a regular file (%s)", info.Mode.Type())
	}
	return p, nil
}
