package qcow2

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Reader is a read-only disk image: a qcow2 [Image] or a raw file.
type Reader interface {
	io.ReaderAt
	// Size is the virtual disk size in bytes.
	Size() int64
	Close() error
}

// maxBackingDepth bounds backing chains, which also catches loops.
const maxBackingDepth = 16

// Cache sizes, in entries. An L2 table maps cluster_size/8 clusters
// (512 MiB with 64 KiB clusters), so a few of them cover a whole image.
const (
	l2CacheEntries         = 32
	decompressCacheEntries = 64
)

// Image is an open qcow2 image. It reads the active layer and its backing
// chain; it never writes. It is safe for concurrent use.
type Image struct {
	path        string
	f           *os.File
	fileSize    int64
	h           header
	clusterSize int64
	l2Entries   int64
	l1          []uint64
	backing     Reader // nil without a backing file

	mu         sync.Mutex
	l2Cache    *lru[[]uint64]
	zlibCache  *lru[[]byte]
	inflater   io.ReadCloser
	compressed []byte
}

// rawFile is a raw disk image.
type rawFile struct {
	f    *os.File
	size int64
}

func (r *rawFile) ReadAt(p []byte, off int64) (int, error) { return r.f.ReadAt(p, off) }
func (r *rawFile) Size() int64                             { return r.size }
func (r *rawFile) Close() error                            { return r.f.Close() }

// Open opens the qcow2 image at path, and its backing chain, for reading.
func Open(path string) (*Image, error) {
	return open(path, 0)
}

// OpenAny opens the disk image at path: a qcow2 image (detected by its
// magic) with [Open], anything else as a raw image.
func OpenAny(path string) (Reader, error) {
	return openAny(path, "", 0)
}

// openAny opens a qcow2 or raw image; format "" probes by magic.
func openAny(path, format string, depth int) (Reader, error) {
	if format == "" {
		var err error
		if format, err = probe(path); err != nil {
			return nil, err
		}
	}
	switch format {
	case "qcow2":
		img, err := open(path, depth)
		if err != nil {
			return nil, err
		}
		return img, nil
	case "raw":
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("opening raw image: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("opening raw image: %w", err)
		}
		return &rawFile{f: f, size: fi.Size()}, nil
	default:
		return nil, fmt.Errorf("opening %q: unsupported image format %q (want qcow2 or raw)", path, format)
	}
}

// probe returns "qcow2" if the file starts with the qcow2 magic, else "raw".
func probe(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening image: %w", err)
	}
	defer f.Close()
	buf := make([]byte, len(magic))
	if _, err := io.ReadFull(f, buf); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading %q: %w", path, err)
	}
	if string(buf) == magic {
		return "qcow2", nil
	}
	return "raw", nil
}

func open(path string, depth int) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening qcow2 image: %w", err)
	}
	img, err := load(path, f, depth)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening qcow2 image %q: %w", path, err)
	}
	return img, nil
}

func load(path string, f *os.File, depth int) (*Image, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	img := &Image{
		path:      path,
		f:         f,
		fileSize:  fi.Size(),
		l2Cache:   newLRU[[]uint64](l2CacheEntries),
		zlibCache: newLRU[[]byte](decompressCacheEntries),
	}

	// Read the header cluster: peek at cluster_bits first to know its
	// size (parseHeader validates it).
	n := int64(4096)
	peek := make([]byte, 24)
	if _, err := f.ReadAt(peek, 0); err == nil {
		if cb := binary.BigEndian.Uint32(peek[20:]); cb >= minClusterBits && cb <= maxClusterBits {
			n = 1 << cb
		}
	}
	buf := make([]byte, min(img.fileSize, n))
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	h, err := parseHeader(buf)
	if err != nil {
		return nil, err
	}
	img.h = h
	img.clusterSize = 1 << h.clusterBits
	img.l2Entries = img.clusterSize / 8

	// L1 table.
	clusters := (int64(h.size) + img.clusterSize - 1) >> h.clusterBits
	need := (clusters + img.l2Entries - 1) / img.l2Entries
	if int64(h.l1Size) < need {
		return nil, fmt.Errorf("L1 table has %d entries, virtual size %d needs %d", h.l1Size, h.size, need)
	}
	if h.l1Size > 0 {
		if h.l1Offset%uint64(img.clusterSize) != 0 {
			return nil, fmt.Errorf("L1 table offset %#x is not cluster aligned", h.l1Offset)
		}
		l1Bytes := int64(h.l1Size) * 8
		if h.l1Offset > uint64(img.fileSize) || int64(h.l1Offset)+l1Bytes > img.fileSize {
			return nil, fmt.Errorf("L1 table at offset %#x (%d bytes) is past the end of the file (%d bytes)", h.l1Offset, l1Bytes, img.fileSize)
		}
		raw := make([]byte, l1Bytes)
		if _, err := f.ReadAt(raw, int64(h.l1Offset)); err != nil {
			return nil, fmt.Errorf("reading L1 table: %w", err)
		}
		img.l1 = make([]uint64, h.l1Size)
		for i := range img.l1 {
			img.l1[i] = binary.BigEndian.Uint64(raw[i*8:])
		}
	}

	if h.backingFile != "" {
		if depth+1 >= maxBackingDepth {
			return nil, fmt.Errorf("backing chain longer than %d images (a loop?)", maxBackingDepth)
		}
		name := h.backingFile
		if strings.HasPrefix(name, "json:") || strings.Contains(name, "://") {
			return nil, fmt.Errorf("backing file %q: only plain file names are supported", name)
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(filepath.Dir(path), name)
		}
		b, err := openAny(name, h.backingFormat, depth+1)
		if err != nil {
			return nil, fmt.Errorf("opening backing file: %w", err)
		}
		img.backing = b
	}
	return img, nil
}

// Size returns the virtual disk size in bytes.
func (img *Image) Size() int64 { return int64(img.h.size) }

// BackingFile returns the backing file name as stored in the image
// (relative names are relative to the image's directory) and its format
// ("" when the image does not say); name is "" without a backing file.
func (img *Image) BackingFile() (name, format string) {
	return img.h.backingFile, img.h.backingFormat
}

// Close closes the image and its backing chain.
func (img *Image) Close() error {
	var errs []error
	if img.backing != nil {
		errs = append(errs, img.backing.Close())
	}
	errs = append(errs, img.f.Close())
	return errors.Join(errs...)
}

// ReadAt reads virtual disk content. Reads past the virtual size return
// io.EOF, as io.ReaderAt requires.
func (img *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading %q: negative offset %d", img.path, off)
	}
	size := img.Size()
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	var eof error
	if int64(n) > size-off {
		n = int(size - off)
		eof = io.EOF
	}
	done := 0
	for done < n {
		vo := off + int64(done)
		in := vo & (img.clusterSize - 1)
		k := int(min(img.clusterSize-in, int64(n-done)))
		if err := img.readCluster(p[done:done+k], vo); err != nil {
			return done, fmt.Errorf("reading %q at offset %d: %w", img.path, vo, err)
		}
		done += k
	}
	return n, eof
}

// readCluster fills dst with virtual disk content starting at vo; dst
// does not cross a cluster boundary.
func (img *Image) readCluster(dst []byte, vo int64) error {
	idx := vo >> img.h.clusterBits
	in := vo & (img.clusterSize - 1)
	l1i := idx / img.l2Entries
	l2i := idx % img.l2Entries

	var entry uint64
	if l1i < int64(len(img.l1)) {
		if l2Off := img.l1[l1i] & offsetMask; l2Off != 0 {
			table, err := img.l2Table(l2Off)
			if err != nil {
				return err
			}
			entry = table[l2i]
		}
	}

	switch {
	case entry&flagCompressed != 0:
		data, err := img.decompress(entry)
		if err != nil {
			return err
		}
		copy(dst, data[in:])
		return nil
	case img.h.version >= 3 && entry&flagZero != 0:
		clear(dst)
		return nil
	}
	host := int64(entry & offsetMask)
	if host == 0 {
		return img.readBacking(dst, vo)
	}
	if host&(img.clusterSize-1) != 0 {
		return fmt.Errorf("data cluster offset %#x is not cluster aligned (corrupt image)", host)
	}
	n, err := img.f.ReadAt(dst, host+in)
	if n == len(dst) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		// qemu allows the file to end inside the last data cluster
		// (e.g. after a truncation at a sector boundary); the rest reads
		// as zeros. A cluster that starts past the end is corruption.
		if host >= img.fileSize {
			return fmt.Errorf("data cluster at offset %#x is past the end of the file (%d bytes)", host, img.fileSize)
		}
		clear(dst[n:])
		return nil
	}
	return err
}

// readBacking reads unallocated clusters: from the backing file where it
// has data, zeros elsewhere.
func (img *Image) readBacking(dst []byte, vo int64) error {
	if img.backing == nil {
		clear(dst)
		return nil
	}
	bsize := img.backing.Size()
	n := 0
	if vo < bsize {
		want := int(min(int64(len(dst)), bsize-vo))
		var err error
		n, err = img.backing.ReadAt(dst[:want], vo)
		if n < want {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("reading backing file: %w", err)
		}
	}
	clear(dst[n:])
	return nil
}

// l2Table returns the L2 table at host offset off, from the cache or the
// file.
func (img *Image) l2Table(off uint64) ([]uint64, error) {
	img.mu.Lock()
	t, ok := img.l2Cache.get(off)
	img.mu.Unlock()
	if ok {
		return t, nil
	}
	if off%uint64(img.clusterSize) != 0 {
		return nil, fmt.Errorf("L2 table offset %#x is not cluster aligned (corrupt image)", off)
	}
	if off+uint64(img.clusterSize) > uint64(img.fileSize) {
		return nil, fmt.Errorf("L2 table at offset %#x is past the end of the file (%d bytes)", off, img.fileSize)
	}
	raw := make([]byte, img.clusterSize)
	if _, err := img.f.ReadAt(raw, int64(off)); err != nil {
		return nil, fmt.Errorf("reading L2 table at offset %#x: %w", off, err)
	}
	t = make([]uint64, img.l2Entries)
	for i := range t {
		t[i] = binary.BigEndian.Uint64(raw[i*8:])
	}
	img.mu.Lock()
	img.l2Cache.put(off, t)
	img.mu.Unlock()
	return t, nil
}

// decompress returns the content of the compressed cluster described by
// the L2 entry.
func (img *Image) decompress(entry uint64) ([]byte, error) {
	x := 62 - (img.h.clusterBits - 8)
	desc := entry &^ (flagCopied | flagCompressed)
	host := desc & (1<<x - 1)
	sectors := desc>>x + 1
	img.mu.Lock()
	defer img.mu.Unlock()
	if data, ok := img.zlibCache.get(host); ok {
		return data, nil
	}
	if host >= uint64(img.fileSize) {
		return nil, fmt.Errorf("compressed cluster at offset %#x is past the end of the file (%d bytes)", host, img.fileSize)
	}
	length := int64(sectors*512 - host%512)
	// The last compressed cluster may end before its last sector does.
	length = min(length, img.fileSize-int64(host))
	if int64(cap(img.compressed)) < length {
		img.compressed = make([]byte, length)
	}
	buf := img.compressed[:length]
	if _, err := img.f.ReadAt(buf, int64(host)); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading compressed cluster at offset %#x: %w", host, err)
	}
	// qcow2 stores raw deflate streams (zlib without its header).
	src := bytes.NewReader(buf)
	if img.inflater == nil {
		img.inflater = flate.NewReader(src)
	} else if err := img.inflater.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, err
	}
	data := make([]byte, img.clusterSize)
	if _, err := io.ReadFull(img.inflater, data); err != nil {
		return nil, fmt.Errorf("decompressing cluster at offset %#x: %w", host, err)
	}
	img.zlibCache.put(host, data)
	return data, nil
}

// mayHaveData reports whether any of the n bytes of virtual disk at off may
// hold data: false means they certainly read as zeros. It lets WriteQcow2
// skip the empty parts of a standalone image without reading them.
func (img *Image) mayHaveData(off, n int64) (bool, error) {
	end := min(off+n, img.Size())
	for vo := off; vo < end; {
		next := min((vo|(img.clusterSize-1))+1, end)
		idx := vo >> img.h.clusterBits
		l1i := idx / img.l2Entries
		var entry uint64
		if l1i < int64(len(img.l1)) {
			if l2Off := img.l1[l1i] & offsetMask; l2Off != 0 {
				table, err := img.l2Table(l2Off)
				if err != nil {
					return false, fmt.Errorf("reading %q: %w", img.path, err)
				}
				entry = table[idx%img.l2Entries]
			}
		}
		switch {
		case entry&flagCompressed != 0, entry&offsetMask != 0 && (img.h.version < 3 || entry&flagZero == 0):
			return true, nil
		case img.h.version >= 3 && entry&flagZero != 0:
			// reads as zeros
		case img.backing != nil:
			ok, err := mayHaveData(img.backing, vo, next-vo)
			if ok || err != nil {
				return ok, err
			}
		}
		vo = next
	}
	return false, nil
}

// mayHaveData reports whether n bytes at off of r may hold data. Only
// qcow2 images know which of their clusters are empty.
func mayHaveData(r io.ReaderAt, off, n int64) (bool, error) {
	switch r := r.(type) {
	case *Image:
		return r.mayHaveData(off, n)
	case Reader:
		return off < r.Size(), nil
	}
	return true, nil
}
