package diskimage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/filesystem/ext4"
)

// FS is the ext4 filesystem on a partition of an [Image]. Paths are
// absolute paths inside the filesystem ("/etc/hostname"); symbolic links in
// them resolve inside the filesystem, never on the host.
type FS struct {
	Partition  Partition
	Superblock Superblock

	img       *Image
	fs        *ext4.FileSystem
	writeErr  error
	writeDone bool
}

// Ext4 opens the ext4 filesystem on partition p.
func (img *Image) Ext4(p Partition) (*FS, error) {
	if p.Filesystem != "ext4" {
		return nil, fmt.Errorf("partition %d is %s, not ext4", p.Number, p.FilesystemName())
	}
	b := make([]byte, 1024)
	if _, err := img.overlay.ReadAt(b, p.Start+sbOffset); err != nil {
		return nil, fmt.Errorf("reading the ext4 superblock of partition %d: %w", p.Number, err)
	}
	sb, err := parseSuperblock(b)
	if err != nil {
		return nil, fmt.Errorf("partition %d: %w", p.Number, err)
	}
	if sb.ChecksumType != 1 {
		return nil, fmt.Errorf("the ext4 filesystem on partition %d has no metadata_csum feature (checksum type %d); go-diskfs v1.9.4 reads only ext4 with crc32c checksums (the mkfs.ext4 default since e2fsprogs 1.43, 2016)", p.Number, sb.ChecksumType)
	}
	if sb.InodeSize < 256 {
		return nil, fmt.Errorf("the ext4 filesystem on partition %d has %d-byte inodes; go-diskfs v1.9.4 reads only 256-byte (or larger) inodes, the mkfs.ext4 default", p.Number, sb.InodeSize)
	}
	if sb.Incompat&incompatInlineData != 0 {
		return nil, fmt.Errorf("the ext4 filesystem on partition %d has the inline_data feature; go-diskfs v1.9.4 cannot read directories stored inline", p.Number)
	}
	var fsys *ext4.FileSystem
	err = guard(func() (err error) {
		fsys, err = ext4.Read(img.overlay, p.Size, p.Start, 512)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the ext4 filesystem on partition %d: %w", p.Number, err)
	}
	return &FS{Partition: p, Superblock: sb, img: img, fs: fsys}, nil
}

// Info describes an entry of the filesystem.
type Info struct {
	Path       string      // absolute, with the symbolic links of its directories resolved
	Mode       fs.FileMode // type and permission bits
	Size       int64
	Target     string // symbolic links: the target
	Inode      uint32
	Links      uint16
	Htree      bool // a directory with a hashed index (EXT4_INDEX_FL)
	InlineData bool // data stored in the inode (EXT4_INLINE_DATA_FL)
	Encrypted  bool // EXT4_ENCRYPT_FL
}

// rel turns a guest path into a go-diskfs path: no leading slash, "." for
// the root.
func rel(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

var errNotDir = errors.New("not a directory")

// statEntry asks go-diskfs about p (lstat semantics) and converts the
// answer. Call it only when p's parent is known to be a real directory:
// go-diskfs's errors do not tell a missing entry from a broken walk.
func (f *FS) statEntry(p string) (*Info, error) {
	var fi fs.FileInfo
	err := guard(func() (err error) {
		fi, err = f.fs.Stat(rel(p))
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	info := &Info{Path: p, Mode: fi.Mode(), Size: fi.Size()}
	if st, ok := fi.Sys().(*ext4.StatT); ok {
		info.Inode, info.Links = st.Ino, st.Nlink
		info.Htree, info.InlineData, info.Encrypted = st.Flags.HashedIndexes, st.Flags.InlineData, st.Flags.Encrypted
		if info.Mode&fs.ModeSymlink != 0 {
			info.Target = st.LinkTarget
		}
	}
	return info, nil
}

// maxLinks bounds symbolic link resolution, as the kernel does.
const maxLinks = 40

// resolve returns the real path of p: symbolic links in its directories,
// and the final one when follow is set, are resolved inside the
// filesystem. The final entry need not exist (its parent must); its Info
// is returned when it does.
func (f *FS) resolve(p string, follow bool) (string, *Info, error) {
	// Fast path: one go-diskfs walk when nothing needs resolving.
	if info, err := f.statEntry(path.Clean("/" + p)); err == nil && (!follow || info.Mode&fs.ModeSymlink == 0) {
		return info.Path, info, nil
	}
	todo := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := "/"
	var last *Info
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur, last = path.Dir(cur), nil
			continue
		}
		next := path.Join(cur, name)
		info, err := f.statEntry(next)
		if errors.Is(err, fs.ErrNotExist) && len(todo) == 0 {
			return next, nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		if info.Mode&fs.ModeSymlink != 0 && (len(todo) > 0 || follow) {
			if links++; links > maxLinks {
				return "", nil, fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			target := info.Target
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			cur, last = "/", nil
			todo = append(strings.Split(strings.Trim(path.Clean(target), "/"), "/"), todo...)
			continue
		}
		if len(todo) > 0 && !info.Mode.IsDir() {
			return "", nil, fmt.Errorf("%s: %w", next, errNotDir)
		}
		cur, last = next, info
	}
	if last == nil { // p resolved to "/" (or through "..")
		info, err := f.statEntry(cur)
		if err != nil {
			return "", nil, err
		}
		last = info
	}
	return cur, last, nil
}

// Lstat describes p without following a final symbolic link.
func (f *FS) Lstat(p string) (*Info, error) {
	return f.stat(p, false)
}

// Stat describes p, following symbolic links.
func (f *FS) Stat(p string) (*Info, error) {
	return f.stat(p, true)
}

func (f *FS) stat(p string, follow bool) (*Info, error) {
	real, info, err := f.resolve(p, follow)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, fmt.Errorf("%s: %w", real, fs.ErrNotExist)
	}
	return info, nil
}

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name string
	Type fs.FileMode // fs.ModeDir, fs.ModeSymlink, 0 for regular files, ...
}

// ReadDir lists directory p (symbolic links followed), sorted by name,
// without "." and "..".
func (f *FS) ReadDir(p string) ([]DirEntry, error) {
	info, err := f.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.Mode.IsDir() {
		return nil, fmt.Errorf("%s: %w", p, errNotDir)
	}
	var entries []fs.DirEntry
	err = guard(func() (err error) {
		entries, err = f.fs.ReadDir(rel(info.Path))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", p, err)
	}
	out := make([]DirEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, DirEntry{Name: e.Name(), Type: e.Type()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Open opens regular file p (symbolic links followed) for reading.
func (f *FS) Open(p string) (io.ReadCloser, *Info, error) {
	info, err := f.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if !info.Mode.IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file (%s)", p, info.Mode.Type())
	}
	if info.InlineData {
		return nil, nil, fmt.Errorf("%s: reading files with inline data is not supported", p)
	}
	var r io.ReadCloser
	err = guard(func() (err error) {
		r, err = f.fs.OpenFile(rel(info.Path), os.O_RDONLY)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s: %w", p, err)
	}
	return &reader{r: r, lib: "go-diskfs", left: info.Size, path: p}, info, nil
}

// reader hides a library file's other methods (a plain io.Reader lets
// io.Copy use a large buffer), checks that the file reads to its size and
// turns a panic of the library (go-diskfs, go-xfs-filesystem) into an error.
type reader struct {
	r    io.ReadCloser
	lib  string // the filesystem library behind r, for guardLib
	left int64
	path string
}

func (r *reader) Read(p []byte) (int, error) {
	var n int
	err := guardLib(r.lib, func() (err error) {
		n, err = r.r.Read(p)
		return err
	})
	r.left -= int64(n)
	if err == io.EOF && r.left > 0 {
		return n, fmt.Errorf("reading %s: %w (%d bytes missing)", r.path, io.ErrUnexpectedEOF, r.left)
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("reading %s: %w", r.path, err)
	}
	return n, err
}

func (r *reader) Close() error { return r.r.Close() }

// ReadFile returns the content of regular file p.
func (f *FS) ReadFile(p string) ([]byte, error) {
	r, info, err := f.Open(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return readAll(r, info.Size)
}

// guard runs fn, turning a panic of go-diskfs (it has some on filesystems
// it does not expect) into an error.
func guard(fn func() error) error { return guardLib("go-diskfs", fn) }
