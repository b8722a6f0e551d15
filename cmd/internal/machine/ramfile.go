package machine

// The snapshot's guest RAM lives outside QEMU's migration stream: the
// snapshot shape's RAM is a memfd the runner creates and QEMU maps
// (memory-backend-file share=on on /proc/self/fd/N), and the migration
// leaves it out (x-ignore-shared). The save writes its pages that are not
// zero into the snapshot's RAM file; a restore copies them into a new
// memfd, beside QEMU's start, instead of QEMU parsing them out of a stream
// page by page (QEMU 7.2 has neither the file: migration target nor
// mapped-ram).
//
// The RAM file is
//
//	magic "distrotest-ram\x00\x01" (16 bytes), size (8 bytes, little endian)
//	runs: offset (8), length (8), length bytes of RAM
//	end:  offset 2^64-1, run count (8), CRC-32C of every byte before it (4)
//
// Runs are page aligned, in increasing order and inside size; the check
// of the whole file comes before a restore uses any of it.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

const (
	ramMagic = "distrotest-ram\x00\x01"
	ramPage  = 4096
	ramEnd   = ^uint64(0)
	// ramChunk is how much of the guest RAM the save reads at a time.
	ramChunk = 1 << 20
)

var ramCRC = crc32.MakeTable(crc32.Castagnoli)

// newRAM returns a memfd of size bytes for a guest's RAM, named name
// (for /proc/PID/fd listings).
func newRAM(name string, size int64) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating the guest's memory: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, fmt.Errorf("sizing the guest's memory: %w", err)
	}
	return f, nil
}

// saveRAM writes the pages of ram (size bytes) that are not zero into the
// new file path, synced.
func saveRAM(path string, ram *os.File, size int64) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	crc := crc32.New(ramCRC)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	var hdr [8]byte
	w.WriteString(ramMagic)
	binary.LittleEndian.PutUint64(hdr[:], uint64(size))
	w.Write(hdr[:])
	var runs uint64
	zero := make([]byte, ramPage)
	buf := make([]byte, ramChunk)
	for off := int64(0); off < size; {
		n, err := ram.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if n < ramPage && err != nil {
			return fmt.Errorf("reading the guest's memory at %#x: %w", off, err)
		}
		chunk := buf[:n-n%ramPage]
		for i := 0; i < len(chunk); {
			if bytes.Equal(chunk[i:i+ramPage], zero) {
				i += ramPage
				continue
			}
			j := i + ramPage
			for j < len(chunk) && !bytes.Equal(chunk[j:j+ramPage], zero) {
				j += ramPage
			}
			var rh [16]byte
			binary.LittleEndian.PutUint64(rh[:8], uint64(off)+uint64(i))
			binary.LittleEndian.PutUint64(rh[8:], uint64(j-i))
			w.Write(rh[:])
			w.Write(chunk[i:j])
			runs++
			i = j
		}
		off += int64(len(chunk))
	}
	var end [16]byte
	binary.LittleEndian.PutUint64(end[:8], ramEnd)
	binary.LittleEndian.PutUint64(end[8:], runs)
	w.Write(end[:])
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Sync()
}

// loadRAM copies the RAM file path into ram, a guest's memory of size
// bytes, checking the file as it goes: a damaged, truncated or foreign file
// is an error, after which ram must not be used (a restore that gets one
// never runs the guest).
func loadRAM(path string, ram *os.File, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := &crcReader{r: bufio.NewReaderSize(f, 1<<20), crc: crc32.New(ramCRC)}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("the memory file %s is damaged: %s", path, fmt.Sprintf(format, a...))
	}
	var hdr [24]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return bad("no header (%v)", err)
	}
	if string(hdr[:16]) != ramMagic {
		return bad("wrong magic")
	}
	if got := int64(binary.LittleEndian.Uint64(hdr[16:])); got != size {
		return bad("it holds %d bytes of memory, the guest has %d", got, size)
	}
	buf := make([]byte, ramChunk)
	runs, next := uint64(0), uint64(0)
	for {
		var rh [16]byte
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			return bad("truncated after %d runs (%v)", runs, err)
		}
		off, n := binary.LittleEndian.Uint64(rh[:8]), binary.LittleEndian.Uint64(rh[8:])
		if off == ramEnd {
			if n != runs {
				return bad("it ends after %d runs, saying %d", runs, n)
			}
			break
		}
		if off%ramPage != 0 || n == 0 || n%ramPage != 0 || off < next || off > uint64(size) || n > uint64(size)-off {
			return bad("run %d (%#x, %d bytes) is out of place", runs, off, n)
		}
		for done := uint64(0); done < n; {
			k, err := io.ReadFull(r, buf[:min(uint64(len(buf)), n-done)])
			if err != nil {
				return bad("truncated in run %d (%v)", runs, err)
			}
			if _, err := ram.WriteAt(buf[:k], int64(off+done)); err != nil {
				return fmt.Errorf("filling the guest's memory: %w", err)
			}
			done += uint64(k)
		}
		runs++
		next = off + n
	}
	want := r.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return bad("no checksum (%v)", err)
	}
	if got := binary.LittleEndian.Uint32(sum[:]); got != want {
		return bad("checksum %08x, its contents sum to %08x", got, want)
	}
	if k, _ := r.Read(sum[:1]); k != 0 {
		return bad("bytes after its checksum")
	}
	return nil
}

// crcReader sums what it reads.
type crcReader struct {
	r   io.Reader
	crc hash.Hash32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}
