package qcow2

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/distrotest/distrotest/cmd/internal/atomicfile"
)

// l2Entries is the number of entries in an L2 table of an image we write.
const l2Entries = ClusterSize / 8

// refcountBlockEntries is the number of 16-bit refcounts in a refcount block.
const refcountBlockEntries = ClusterSize / 2

// WriteQcow2 writes the overlay as a new qcow2 v3 image at path, replacing
// any file there atomically.
//
// With a backingFile, the image holds only the clusters written to the
// overlay (all-zero ones as zero clusters, taking no space) and names
// backingFile, whose format backingFormat must be "qcow2" or "raw", as its
// backing file. qemu resolves a relative backingFile against the directory
// of path. The backing file must have the content of the overlay's base.
//
// With backingFile == "" (and backingFormat == ""), the image is
// standalone: it holds every cluster of base and overlay that is not all
// zeros. This reads the whole base except the parts a qcow2 base knows to
// be empty.
func (o *Overlay) WriteQcow2(path, backingFile, backingFormat string) error {
	if err := o.writeQcow2(path, backingFile, backingFormat); err != nil {
		return fmt.Errorf("writing qcow2 image %q: %w", path, err)
	}
	return nil
}

func (o *Overlay) writeQcow2(path, backingFile, backingFormat string) (err error) {
	switch {
	case backingFile == "" && backingFormat != "":
		return fmt.Errorf("backing format %q given without a backing file", backingFormat)
	case backingFile != "" && backingFormat != "qcow2" && backingFormat != "raw":
		return fmt.Errorf("backing format %q: want qcow2 or raw", backingFormat)
	case len(backingFile) > maxBackingName:
		return fmt.Errorf("backing file name is %d bytes long, qcow2 allows %d", len(backingFile), maxBackingName)
	}

	o.mu.Lock()
	defer o.mu.Unlock()

	f, err := atomicfile.New(path, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()

	w := &imageWriter{
		w:        bufio.NewWriterSize(f, 1<<20),
		l2:       map[int64][]uint64{},
		clusters: 1, // the header cluster, written last
	}
	if _, err := w.w.Write(make([]byte, ClusterSize)); err != nil {
		return err
	}
	if backingFile != "" {
		err = o.writeDirty(w)
	} else {
		err = o.writeAll(w)
	}
	if err != nil {
		return err
	}
	hdr, err := w.finish(o.size, backingFile, backingFormat)
	if err != nil {
		return err
	}
	if err := w.w.Flush(); err != nil {
		return err
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return err
	}
	return f.Commit()
}

// writeDirty writes the dirty clusters, in guest order.
func (o *Overlay) writeDirty(w *imageWriter) error {
	idxs := make([]int64, 0, len(o.dirty))
	for idx := range o.dirty {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	for _, idx := range idxs {
		c := o.dirty[idx]
		if isZero(c) {
			w.setL2(idx, flagZero)
			continue
		}
		if err := w.data(idx, c); err != nil {
			return err
		}
	}
	return nil
}

// writeAll writes every non-zero cluster of base and overlay.
func (o *Overlay) writeAll(w *imageWriter) error {
	buf := make([]byte, ClusterSize)
	clusters := (o.size + ClusterSize - 1) >> clusterBits
	for idx := range clusters {
		c, ok := o.dirty[idx]
		if !ok {
			start := idx << clusterBits
			n := min(ClusterSize, o.size-start)
			has, err := mayHaveData(o.base, start, n)
			if err != nil {
				return err
			}
			if !has {
				continue
			}
			clear(buf[n:])
			if err := o.readBase(buf[:n], start); err != nil {
				return err
			}
			c = buf
		}
		if isZero(c) {
			continue
		}
		if err := w.data(idx, c); err != nil {
			return err
		}
	}
	return nil
}

var zeroCluster = make([]byte, ClusterSize)

func isZero(c []byte) bool { return bytes.Equal(c, zeroCluster[:len(c)]) }

// imageWriter lays out a qcow2 image sequentially: the header cluster
// (written last), the data clusters, then L2 tables, the L1 table,
// refcount blocks and the refcount table. Every cluster is used exactly
// once, so every refcount is 1.
type imageWriter struct {
	w        *bufio.Writer
	l2       map[int64][]uint64 // L1 index → L2 table
	clusters int64              // host clusters written so far
}

func (w *imageWriter) setL2(idx int64, entry uint64) {
	t := w.l2[idx/l2Entries]
	if t == nil {
		t = make([]uint64, l2Entries)
		w.l2[idx/l2Entries] = t
	}
	t[idx%l2Entries] = entry
}

// data appends a data cluster for guest cluster idx.
func (w *imageWriter) data(idx int64, c []byte) error {
	if _, err := w.w.Write(c); err != nil {
		return err
	}
	w.setL2(idx, uint64(w.clusters<<clusterBits)|flagCopied)
	w.clusters++
	return nil
}

// table appends entries as big-endian 64-bit values padded to whole
// clusters, and returns the host offset of the first.
func (w *imageWriter) table(entries []uint64) (uint64, error) {
	off := uint64(w.clusters << clusterBits)
	n := (int64(len(entries))*8 + ClusterSize - 1) >> clusterBits
	buf := make([]byte, n<<clusterBits)
	for i, e := range entries {
		binary.BigEndian.PutUint64(buf[i*8:], e)
	}
	if _, err := w.w.Write(buf); err != nil {
		return 0, err
	}
	w.clusters += n
	return off, nil
}

// finish appends the metadata and returns the header cluster.
func (w *imageWriter) finish(size int64, backingFile, backingFormat string) ([]byte, error) {
	// L2 tables, in guest order.
	l1Size := ((size+ClusterSize-1)>>clusterBits + l2Entries - 1) / l2Entries
	l1 := make([]uint64, l1Size)
	l1Idxs := make([]int64, 0, len(w.l2))
	for i := range w.l2 {
		l1Idxs = append(l1Idxs, i)
	}
	slices.Sort(l1Idxs)
	for _, i := range l1Idxs {
		off, err := w.table(w.l2[i])
		if err != nil {
			return nil, err
		}
		l1[i] = off | flagCopied
	}
	var l1Offset uint64
	if l1Size > 0 {
		var err error
		if l1Offset, err = w.table(l1); err != nil {
			return nil, err
		}
	}

	// Refcounts: the blocks and the table also need refcounts, so find
	// the fixed point of their sizes.
	var blocks, tableClusters int64
	for {
		total := w.clusters + blocks + tableClusters
		b := (total + refcountBlockEntries - 1) / refcountBlockEntries
		t := (b*8 + ClusterSize - 1) >> clusterBits
		if b == blocks && t == tableClusters {
			break
		}
		blocks, tableClusters = b, t
	}
	total := w.clusters + blocks + tableClusters
	firstBlock := w.clusters
	block := make([]byte, ClusterSize)
	for b := range blocks {
		clear(block)
		for i := range min(refcountBlockEntries, total-b*refcountBlockEntries) {
			binary.BigEndian.PutUint16(block[i*2:], 1)
		}
		if _, err := w.w.Write(block); err != nil {
			return nil, err
		}
		w.clusters++
	}
	rt := make([]uint64, blocks)
	for b := range rt {
		rt[b] = uint64((firstBlock + int64(b)) << clusterBits)
	}
	rtOffset, err := w.table(rt)
	if err != nil {
		return nil, err
	}
	if w.clusters != total {
		return nil, errors.New("internal error: refcounts do not cover the image")
	}

	// Header, extensions, backing file name.
	hdr := make([]byte, ClusterSize)
	be := binary.BigEndian
	copy(hdr, magic)
	be.PutUint32(hdr[4:], 3)
	be.PutUint32(hdr[20:], clusterBits)
	be.PutUint64(hdr[24:], uint64(size))
	be.PutUint32(hdr[36:], uint32(l1Size))
	be.PutUint64(hdr[40:], l1Offset)
	be.PutUint64(hdr[48:], rtOffset)
	be.PutUint32(hdr[56:], uint32(tableClusters))
	be.PutUint32(hdr[96:], 4) // refcount_order: 16-bit refcounts
	be.PutUint32(hdr[100:], ourHeaderLength)
	off := ourHeaderLength
	if backingFile != "" {
		be.PutUint32(hdr[off:], extBackingFormat)
		be.PutUint32(hdr[off+4:], uint32(len(backingFormat)))
		copy(hdr[off+8:], backingFormat)
		off += 8 + (len(backingFormat)+7)&^7
	}
	off += 8 // end of extensions: type 0, length 0
	if backingFile != "" {
		be.PutUint64(hdr[8:], uint64(off))
		be.PutUint32(hdr[16:], uint32(len(backingFile)))
		copy(hdr[off:], backingFile)
	}
	return hdr, nil
}
