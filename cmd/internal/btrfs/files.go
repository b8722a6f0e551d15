package btrfs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Subvolume is one file tree of the filesystem.
type Subvolume struct {
	fs    *FS
	ID    uint64
	Name  string // its name in its parent directory ("" for the top level)
	root  uint64 // logical address of the tree's root block
	level uint8
}

// Info describes a file.
type Info struct {
	Name   string
	Mode   fs.FileMode // type and permission bits
	Size   int64
	Target string // symbolic links: the target
	inode  uint64
	sub    *Subvolume
}

// DirEntry is one entry of a directory.
type DirEntry struct {
	Name string
	Type fs.FileMode // fs.ModeDir, fs.ModeSymlink, 0 for regular files, ...
}

// TopLevel is the top-level subvolume (id 5).
func (f *FS) TopLevel() (*Subvolume, error) { return f.subvolume(fsTreeID, "") }

// Default is the default subvolume (btrfs subvolume set-default): the one
// mounted when no subvol= is given.
func (f *FS) Default() (*Subvolume, error) {
	data, err := f.first(f.rootTree, f.rootLvl, key{rootTreeDirID, typeDirItem, 0}, key{rootTreeDirID, typeDirItem, ^uint64(0)})
	if err != nil {
		return nil, fmt.Errorf("reading the default subvolume: %w", err)
	}
	if data == nil {
		return f.TopLevel()
	}
	d, err := parseDirItem(data)
	if err != nil {
		return nil, fmt.Errorf("the root tree's default entry: %w", err)
	}
	return f.subvolume(d.location.objectid, d.name)
}

// subvolume opens the tree of subvolume id.
func (f *FS) subvolume(id uint64, name string) (*Subvolume, error) {
	data, err := f.first(f.rootTree, f.rootLvl, key{id, typeRootItem, 0}, key{id, typeRootItem, ^uint64(0)})
	if err != nil {
		return nil, fmt.Errorf("reading the root item of subvolume %d: %w", id, err)
	}
	if len(data) < 239 {
		return nil, fmt.Errorf("subvolume %d has no root item", id)
	}
	return &Subvolume{fs: f, ID: id, Name: name, root: binary.LittleEndian.Uint64(data[176:]), level: data[238]}, nil
}

// Subvolumes lists the subvolumes directly below s's root directory, as
// ReadDir shows them (directories).
func (s *Subvolume) Subvolumes() ([]*Subvolume, error) {
	var out []*Subvolume
	var errs []error
	err := s.dirItems(firstFreeID, func(d dirItem) bool {
		if d.location.typ == typeRootItem {
			sub, err := s.fs.subvolume(d.location.objectid, d.name)
			if err != nil {
				errs = append(errs, err)
				return false
			}
			out = append(out, sub)
		}
		return true
	})
	if err == nil && len(errs) > 0 {
		err = errs[0]
	}
	return out, err
}

// dirItem is a btrfs_dir_item: a directory entry.
type dirItem struct {
	location key // the inode (INODE_ITEM) or subvolume (ROOT_ITEM) named
	ftype    uint8
	name     string
}

func parseDirItem(b []byte) (dirItem, error) {
	if len(b) < 30 {
		return dirItem{}, fmt.Errorf("a directory item of %d bytes", len(b))
	}
	n := int(binary.LittleEndian.Uint16(b[27:]))
	if len(b) < 30+n {
		return dirItem{}, fmt.Errorf("a directory item whose name runs past its end")
	}
	return dirItem{location: readKey(b), ftype: b[29], name: string(b[30 : 30+n])}, nil
}

// dirItems calls fn with each entry of directory inode dir, in index
// order, until fn returns false.
func (s *Subvolume) dirItems(dir uint64, fn func(dirItem) bool) error {
	var perr error
	err := s.fs.walk(s.root, s.level, key{dir, typeDirIndex, 0}, key{dir, typeDirIndex, ^uint64(0)}, func(_ key, data []byte) (bool, error) {
		d, err := parseDirItem(data)
		if err != nil {
			perr = err
			return false, nil
		}
		return fn(d), nil
	})
	if err == nil {
		err = perr
	}
	return err
}

// inode reads the inode item ino of s.
func (s *Subvolume) inode(ino uint64, name string) (*Info, error) {
	data, err := s.fs.first(s.root, s.level, key{ino, typeInodeItem, 0}, key{ino, typeInodeItem, 0})
	if err != nil {
		return nil, err
	}
	if len(data) < 160 {
		return nil, fmt.Errorf("inode %d of subvolume %d is missing", ino, s.ID)
	}
	le := binary.LittleEndian
	info := &Info{Name: name, Size: int64(le.Uint64(data[16:])), Mode: unixMode(le.Uint32(data[52:])), inode: ino, sub: s}
	if info.Mode&fs.ModeSymlink != 0 {
		t, err := s.fileData(ino, info.Size)
		if err != nil {
			return nil, fmt.Errorf("reading the symbolic link %s: %w", name, err)
		}
		info.Target = string(t)
	}
	return info, nil
}

func unixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	case 0o020000:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0o060000:
		mode |= fs.ModeDevice
	case 0o010000:
		mode |= fs.ModeNamedPipe
	case 0o140000:
		mode |= fs.ModeSocket
	}
	return mode
}

// maxLinks bounds the symbolic links followed while resolving a path, as
// the kernel's MAXSYMLINKS does.
const maxLinks = 40

// Lstat describes the file at p (absolute inside s; a last component that
// is a symbolic link is described, not followed). Directories that are
// symbolic links are followed within s; nested subvolumes are entered.
func (s *Subvolume) Lstat(p string) (*Info, error) { return s.resolve(p, false, 0) }

// Stat is [Subvolume.Lstat] that follows a final symbolic link.
func (s *Subvolume) Stat(p string) (*Info, error) { return s.resolve(p, true, 0) }

func (s *Subvolume) resolve(p string, follow bool, links int) (*Info, error) {
	p = path.Clean("/" + p)
	cur, err := s.inode(firstFreeID, "/")
	if err != nil {
		return nil, err
	}
	dir := "/"
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, name := range parts {
		if name == "" {
			continue
		}
		if !cur.Mode.IsDir() {
			return nil, fmt.Errorf("%s: not a directory: %w", dir, fs.ErrNotExist)
		}
		next, err := cur.sub.lookup(cur.inode, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path.Join(dir, name), err)
		}
		last := i == len(parts)-1
		if next.Mode&fs.ModeSymlink != 0 && (!last || follow) {
			if links++; links > maxLinks {
				return nil, fmt.Errorf("%s: too many levels of symbolic links", p)
			}
			target := next.Target
			if !path.IsAbs(target) {
				target = path.Join(dir, target)
			}
			rest := path.Join(append([]string{target}, parts[i+1:]...)...)
			return s.resolve(rest, follow, links)
		}
		cur, dir = next, path.Join(dir, name)
	}
	cur.Name = path.Base(p)
	return cur, nil
}

// lookup finds name in directory inode dir of s.
func (s *Subvolume) lookup(dir uint64, name string) (*Info, error) {
	var found *dirItem
	err := s.dirItems(dir, func(d dirItem) bool {
		if d.name == name {
			found = &d
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fs.ErrNotExist
	}
	if found.location.typ == typeRootItem {
		sub, err := s.fs.subvolume(found.location.objectid, name)
		if err != nil {
			return nil, err
		}
		return sub.inode(firstFreeID, name)
	}
	return s.inode(found.location.objectid, name)
}

// ReadDir lists directory p (symbolic links followed), sorted by name.
func (s *Subvolume) ReadDir(p string) ([]DirEntry, error) {
	info, err := s.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.Mode.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", p)
	}
	var out []DirEntry
	err = info.sub.dirItems(info.inode, func(d dirItem) bool {
		out = append(out, DirEntry{Name: d.name, Type: fileType(d.ftype)})
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", p, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// fileType turns a directory entry's BTRFS_FT_* into a file mode type.
func fileType(t uint8) fs.FileMode {
	switch t {
	case 2:
		return fs.ModeDir
	case 3:
		return fs.ModeDevice | fs.ModeCharDevice
	case 4:
		return fs.ModeDevice
	case 5:
		return fs.ModeNamedPipe
	case 6:
		return fs.ModeSocket
	case 7:
		return fs.ModeSymlink
	}
	return 0
}

// ReadFile returns the content of the regular file at p (symbolic links
// followed).
func (s *Subvolume) ReadFile(p string) ([]byte, error) {
	info, err := s.Stat(p)
	if err != nil {
		return nil, err
	}
	if !info.Mode.IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", p, info.Mode.Type())
	}
	b, err := info.sub.fileData(info.inode, info.Size)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return b, nil
}

// Compression types of a file extent.
const (
	compressNone = 0
	compressZlib = 1
	compressLZO  = 2
	compressZstd = 3
)

var zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1)) // nil options: cannot fail

// zstdFrameSize returns the length of the zstd frame data starts with
// (RFC 8878 §3.1.1: the header, blocks of a 3-byte header each, an
// optional 4-byte checksum).
func zstdFrameSize(data []byte) (int, error) {
	var h zstd.Header
	if err := h.Decode(data); err != nil {
		return 0, err
	}
	at := h.HeaderSize
	for {
		if at+3 > len(data) {
			return 0, fmt.Errorf("the frame ends inside a block header at byte %d of %d", at, len(data))
		}
		bh := uint32(data[at]) | uint32(data[at+1])<<8 | uint32(data[at+2])<<16
		last, typ, size := bh&1 != 0, (bh>>1)&3, int(bh>>3)
		switch typ {
		case 1: // RLE: one byte, repeated
			size = 1
		case 3:
			return 0, fmt.Errorf("a reserved block type at byte %d", at)
		}
		at += 3 + size
		if at > len(data) {
			return 0, fmt.Errorf("a block runs past the data (%d > %d bytes)", at, len(data))
		}
		if last {
			break
		}
	}
	if h.HasCheckSum {
		at += 4
	}
	if at > len(data) {
		return 0, fmt.Errorf("the frame's checksum runs past the data")
	}
	return at, nil
}

// fileData assembles the size bytes of inode ino from its extents; holes
// read as zeros.
func (s *Subvolume) fileData(ino uint64, size int64) ([]byte, error) {
	out := make([]byte, size)
	var perr error
	err := s.fs.walk(s.root, s.level, key{ino, typeExtentData, 0}, key{ino, typeExtentData, ^uint64(0)}, func(k key, e []byte) (bool, error) {
		if k.offset >= uint64(size) {
			return false, nil
		}
		b, err := s.fs.extent(e)
		if err != nil {
			perr = fmt.Errorf("the extent at file offset %d: %w", k.offset, err)
			return false, nil
		}
		copy(out[k.offset:], b)
		return true, nil
	})
	if err == nil {
		err = perr
	}
	return out, err
}

// extent returns the file bytes a btrfs_file_extent_item describes.
func (f *FS) extent(e []byte) ([]byte, error) {
	if len(e) < 21 {
		return nil, fmt.Errorf("a file extent item of %d bytes", len(e))
	}
	le := binary.LittleEndian
	ramBytes, compression, typ := le.Uint64(e[8:]), e[16], e[20]
	if e[17] != 0 || le.Uint16(e[18:]) != 0 {
		return nil, fmt.Errorf("the extent is encrypted or encoded, which distrotest cannot read")
	}
	if typ == 0 { // inline: the data follows the header
		return decompress(compression, e[21:], ramBytes)
	}
	if len(e) < 53 {
		return nil, fmt.Errorf("a file extent item of %d bytes", len(e))
	}
	diskBytenr, diskBytes, offset, numBytes := le.Uint64(e[21:]), le.Uint64(e[29:]), le.Uint64(e[37:]), le.Uint64(e[45:])
	if typ == 2 || diskBytenr == 0 { // preallocated or a hole
		return make([]byte, numBytes), nil
	}
	if compression == compressNone {
		return f.read(diskBytenr+offset, int(numBytes))
	}
	raw, err := f.read(diskBytenr, int(diskBytes))
	if err != nil {
		return nil, err
	}
	b, err := decompress(compression, raw, ramBytes)
	if err != nil {
		return nil, err
	}
	if offset+numBytes > uint64(len(b)) {
		return nil, fmt.Errorf("the extent takes bytes %d–%d of %d decompressed", offset, offset+numBytes, len(b))
	}
	return b[offset : offset+numBytes], nil
}

// decompress returns the n bytes data holds in the given compression.
func decompress(compression uint8, data []byte, n uint64) ([]byte, error) {
	switch compression {
	case compressNone:
		return data, nil
	case compressZlib:
		r, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		out := make([]byte, n)
		if _, err := io.ReadFull(r, out); err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		return out, nil
	case compressZstd:
		// btrfs writes one frame, padded to a sector, and ram_bytes is the
		// sector-rounded size (the kernel zero-fills what the frame does
		// not hold): decode exactly the frame, then pad.
		size, err := zstdFrameSize(data)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		out, err := zstdDecoder.DecodeAll(data[:size], make([]byte, 0, n))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if uint64(len(out)) > n {
			return nil, fmt.Errorf("zstd: the frame holds %d bytes, the extent %d", len(out), n)
		}
		return append(out, make([]byte, n-uint64(len(out)))...), nil
	case compressLZO:
		return nil, fmt.Errorf("the extent is LZO-compressed, which distrotest does not read (zlib and zstd only)")
	}
	return nil, fmt.Errorf("unknown compression type %d", compression)
}
