package initrd

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cavaliergopher/cpio"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// Generator is the tool that built an initrd, which decides how the
// overlay hooks into its boot.
type Generator string

// The initrd generators the overlay supports.
const (
	Dracut         Generator = "dracut"          // systemd in the initrd
	InitramfsTools Generator = "initramfs-tools" // busybox /init and shell scripts
)

// Generators lists the supported generators.
var Generators = []Generator{Dracut, InitramfsTools}

// Member is one archive of an initrd.
type Member struct {
	Offset      int64  // byte offset in the initrd
	Compression string // "none", "gzip", "zstd", "xz", "lzma", "lz4", "bzip2"
	Files       int    // entries read (TRAILER!!! not counted): all, unless Inspect had read enough
}

// Info is what Inspect found in an initrd.
type Info struct {
	Members []Member
	// Generator is the one whose marks the initrd carries (dracut:
	// usr/lib/dracut or etc/initrd-release with systemd; initramfs-tools:
	// scripts/ and conf/initramfs.conf), "" when neither.
	Generator Generator
	// Order is the content of scripts/init-bottom/ORDER, nil when absent.
	Order []byte
}

// orderFile is initramfs-tools' list of init-bottom scripts.
const orderFile = "scripts/init-bottom/ORDER"

type magic struct {
	name   string
	prefix string
}

var compressions = []magic{
	{"gzip", "\x1f\x8b"},
	{"zstd", "\x28\xb5\x2f\xfd"},
	{"xz", "\xfd7zXZ\x00"},
	{"lz4", "\x02\x21\x4c\x18"},
	{"bzip2", "BZh"},
	{"lzma", "\x5d\x00\x00"},
}

// Inspect reads the initrd in data, up to where it knows the generator
// and, for initramfs-tools, the init-bottom ORDER: the rest is left
// undecompressed. Errors say what was found where; callers add the file
// name.
func Inspect(data []byte) (*Info, error) {
	info := &Info{}
	seen := map[string]bool{}
	off := int64(0)
	for {
		for off < int64(len(data)) && data[off] == 0 {
			off++
		}
		if off >= int64(len(data)) {
			break
		}
		rest := data[off:]
		if bytes.HasPrefix(rest, []byte("07070")) {
			n, files, err := readArchive(bytes.NewReader(rest), info, seen)
			if errors.Is(err, errEnough) {
				info.Members = append(info.Members, Member{Offset: off, Compression: "none", Files: files})
				break
			}
			if err != nil {
				return nil, fmt.Errorf("cpio archive at byte %d: %w", off, err)
			}
			info.Members = append(info.Members, Member{Offset: off, Compression: "none", Files: files})
			off += n
			continue
		}
		name := ""
		for _, m := range compressions {
			if bytes.HasPrefix(rest, []byte(m.prefix)) {
				name = m.name
				break
			}
		}
		if name == "" {
			what := "not a cpio archive nor a compression format the kernel unpacks (gzip, zstd, xz, lzma, lz4, bzip2)"
			if off == 0 {
				what = "not an initrd: " + what
			}
			return nil, fmt.Errorf("byte %d (%q): %s", off, head(rest), what)
		}
		r, closeFn, err := decompressor(name, bytes.NewReader(rest))
		if err != nil {
			return nil, fmt.Errorf("%s data at byte %d: %w", name, off, err)
		}
		defer closeFn()
		// A compressed member runs to the end: the kernel's decompressors
		// do not tell where it stops, and generators put it last.
		files, complete := 0, false
		for {
			_, n, err := readArchiveCount(r, info, seen)
			files += n
			if errors.Is(err, errEnough) {
				break // Files counts the entries read, not all
			}
			if errors.Is(err, io.EOF) && n == 0 {
				break
			}
			if err != nil && complete && n == 0 {
				// Past the compressed stream: data appended after it
				// (an earlier overlay) that the decompressor does not
				// understand. The kernel goes on there; so do we not.
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s-compressed cpio archive at byte %d: %w", name, off, err)
			}
			complete = true
		}
		info.Members = append(info.Members, Member{Offset: off, Compression: name, Files: files})
		break
	}
	if len(info.Members) == 0 {
		return nil, errors.New("empty: no cpio archive")
	}
	info.Generator = generator(seen)
	return info, nil
}

// generator names the generator whose marks were seen, or "".
func generator(seen map[string]bool) Generator {
	switch {
	case seen["usr/lib/dracut"] || (seen["etc/initrd-release"] && seen["systemd"]):
		return Dracut
	case seen["scripts"] && seen["conf/initramfs.conf"]:
		return InitramfsTools
	}
	return ""
}

// enough reports whether the rest of an initrd can be left unread: its
// generator is known and, for initramfs-tools, its ORDER was read.
// Decompressing a whole 100 MiB initrd costs about a second.
func enough(info *Info, seen map[string]bool) bool {
	switch generator(seen) {
	case Dracut:
		return true
	case InitramfsTools:
		return info.Order != nil
	}
	return false
}

// errEnough stops reading a compressed member early.
var errEnough = errors.New("read enough")

func head(b []byte) string {
	if len(b) > 8 {
		b = b[:8]
	}
	return string(b)
}

func decompressor(name string, r io.Reader) (io.Reader, func(), error) {
	none := func() {}
	switch name {
	case "gzip":
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, none, err
		}
		z.Multistream(true)
		return z, none, nil
	case "zstd":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, none, err
		}
		return z, z.Close, nil
	case "xz":
		z, err := xz.NewReader(r)
		return z, none, err
	case "lzma":
		z, err := lzma.NewReader(r)
		return z, none, err
	case "lz4":
		return lz4.NewReader(r), none, nil
	case "bzip2":
		return bzip2.NewReader(r), none, nil
	}
	return nil, none, fmt.Errorf("unknown compression %q", name)
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readArchive reads one uncompressed archive up to its trailer and
// returns its length in bytes.
func readArchive(r io.Reader, info *Info, seen map[string]bool) (int64, int, error) {
	c := &counter{r: r}
	files, err := readEntries(c, info, seen)
	if errors.Is(err, errEnough) {
		return c.n, files, err
	}
	if err != nil {
		return 0, files, err
	}
	return c.n, files, nil
}

// readArchiveCount reads the next archive of a decompressed stream; io.EOF
// with no files means the stream ended (zero padding skipped).
func readArchiveCount(r io.Reader, info *Info, seen map[string]bool) (int64, int, error) {
	// skip the zero padding between archives
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 && b[0] != 0 {
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, 0, io.EOF
			}
			return 0, 0, err
		}
	}
	return readArchive(io.MultiReader(bytes.NewReader(b[:]), r), info, seen)
}

func readEntries(r io.Reader, info *Info, seen map[string]bool) (int, error) {
	cr := cpio.NewReader(r)
	files := 0
	for {
		h, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil // the trailer
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return files, fmt.Errorf("truncated after %d entries (no TRAILER!!!)", files)
			}
			return files, fmt.Errorf("entry %d: %w", files+1, err)
		}
		files++
		name := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
		switch {
		case name == orderFile && h.Mode.IsRegular():
			data, err := io.ReadAll(cr)
			if err != nil {
				return files, fmt.Errorf("reading %s: %w", name, err)
			}
			info.Order = data
		case name == "usr/lib/dracut", name == "etc/initrd-release", name == "scripts", name == "conf/initramfs.conf":
			seen[name] = true
		case name == "usr/lib/systemd/systemd", name == "lib/systemd/systemd":
			seen["systemd"] = true
		case name == "init" && strings.Contains(h.Linkname, "systemd"):
			seen["systemd"] = true // dracut's /init -> usr/lib/systemd/systemd
		}
		if enough(info, seen) {
			return files, errEnough
		}
	}
}
