package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// magic starts every qcow2 file.
const magic = "QFI\xfb"

// Header extension types.
const (
	extEnd           = 0x00000000
	extBackingFormat = 0xe2792aca
	extFeatureNames  = 0x6803f857
	extDataFile      = 0x44415441
)

// Incompatible feature bits.
const (
	incompatDirty       = 1 << 0
	incompatCorrupt     = 1 << 1
	incompatDataFile    = 1 << 2
	incompatCompression = 1 << 3
	incompatExtendedL2  = 1 << 4
)

// Table entry bits.
const (
	// offsetMask selects bits 9-55: the host offset of an L2 table, a
	// refcount block or a standard data cluster.
	offsetMask     = 0x00ff_ffff_ffff_fe00
	flagCopied     = 1 << 63
	flagCompressed = 1 << 62
	flagZero       = 1 << 0
)

const (
	v2HeaderLength = 72
	v3HeaderLength = 104
	// ourHeaderLength is what WriteQcow2 writes: v3 plus the compression
	// type byte, padded to 8.
	ourHeaderLength = 112
	minClusterBits  = 9
	maxClusterBits  = 21
	// maxBackingName is the qcow2 limit on the backing file name length.
	maxBackingName = 1023
)

// header is the decoded qcow2 header with its extensions.
type header struct {
	version               uint32
	backingOffset         uint64
	backingSize           uint32
	clusterBits           uint32
	size                  uint64
	cryptMethod           uint32
	l1Size                uint32
	l1Offset              uint64
	refcountTableOffset   uint64
	refcountTableClusters uint32
	incompatible          uint64
	refcountOrder         uint32
	headerLength          uint32
	compressionType       uint8

	backingFile   string
	backingFormat string
	// featureNames maps incompatible feature bits to the names the image
	// gives them, for error messages.
	featureNames map[int]string
}

var errNotQcow2 = errors.New("not a qcow2 image")

// parseHeader decodes the header, its extensions and the backing file name
// from the start of the file. buf holds the first cluster of the file, or
// the whole file if it is shorter.
func parseHeader(buf []byte) (header, error) {
	var h header
	be := binary.BigEndian
	if len(buf) < 4 || string(buf[:4]) != magic {
		return h, errNotQcow2
	}
	if len(buf) < 8 {
		return h, fmt.Errorf("truncated header: file has %d bytes", len(buf))
	}
	h.version = be.Uint32(buf[4:])
	switch h.version {
	case 2:
		h.headerLength = v2HeaderLength
		h.refcountOrder = 4
	case 3:
		if len(buf) < v3HeaderLength {
			return h, fmt.Errorf("truncated header: file has %d bytes, a version 3 header needs %d", len(buf), v3HeaderLength)
		}
		h.headerLength = be.Uint32(buf[100:])
		h.refcountOrder = be.Uint32(buf[96:])
	default:
		return h, fmt.Errorf("unsupported qcow2 version %d (want 2 or 3)", h.version)
	}
	if len(buf) < v2HeaderLength {
		return h, fmt.Errorf("truncated header: file has %d bytes, a version %d header needs %d", len(buf), h.version, v2HeaderLength)
	}
	h.backingOffset = be.Uint64(buf[8:])
	h.backingSize = be.Uint32(buf[16:])
	h.clusterBits = be.Uint32(buf[20:])
	h.size = be.Uint64(buf[24:])
	h.cryptMethod = be.Uint32(buf[32:])
	h.l1Size = be.Uint32(buf[36:])
	h.l1Offset = be.Uint64(buf[40:])
	h.refcountTableOffset = be.Uint64(buf[48:])
	h.refcountTableClusters = be.Uint32(buf[56:])

	if h.clusterBits < minClusterBits || h.clusterBits > maxClusterBits {
		return h, fmt.Errorf("unsupported cluster size: cluster_bits %d (want %d..%d)", h.clusterBits, minClusterBits, maxClusterBits)
	}
	clusterSize := uint64(1) << h.clusterBits
	if h.size >= 1<<62 {
		return h, fmt.Errorf("virtual size %d too large", h.size)
	}

	if h.version == 3 {
		if h.headerLength < v3HeaderLength || h.headerLength%8 != 0 || uint64(h.headerLength) > clusterSize {
			return h, fmt.Errorf("invalid header length %d", h.headerLength)
		}
		if uint64(len(buf)) < uint64(h.headerLength) {
			return h, fmt.Errorf("truncated header: file has %d bytes, header_length is %d", len(buf), h.headerLength)
		}
		h.incompatible = be.Uint64(buf[72:])
		if h.headerLength > 104 {
			h.compressionType = buf[104]
		}
	}

	if err := h.parseExtensions(buf); err != nil {
		return h, err
	}
	if err := h.checkFeatures(); err != nil {
		return h, err
	}

	if h.backingOffset != 0 {
		if h.backingSize == 0 || h.backingSize > maxBackingName {
			return h, fmt.Errorf("invalid backing file name length %d", h.backingSize)
		}
		end := h.backingOffset + uint64(h.backingSize)
		if end > uint64(len(buf)) {
			return h, fmt.Errorf("backing file name at offset %d (%d bytes) is past the end of the header cluster", h.backingOffset, h.backingSize)
		}
		h.backingFile = string(buf[h.backingOffset:end])
	}
	return h, nil
}

// parseExtensions decodes the header extensions that follow the header.
func (h *header) parseExtensions(buf []byte) error {
	// Version 2 images have extensions too (qemu writes the backing
	// format there), starting at byte 72.
	be := binary.BigEndian
	off := uint64(h.headerLength)
	end := uint64(len(buf))
	if h.backingOffset != 0 && h.backingOffset < end && h.backingOffset >= off {
		end = h.backingOffset
	}
	for off+8 <= end {
		typ := be.Uint32(buf[off:])
		length := uint64(be.Uint32(buf[off+4:]))
		off += 8
		if typ == extEnd {
			return nil
		}
		if off+length > end {
			return fmt.Errorf("header extension %#x of %d bytes at offset %d is truncated", typ, length, off-8)
		}
		data := buf[off : off+length]
		switch typ {
		case extBackingFormat:
			h.backingFormat = string(data)
		case extDataFile:
			return errors.New("external data files are unsupported")
		case extFeatureNames:
			h.featureNames = map[int]string{}
			for i := 0; i+48 <= len(data); i += 48 {
				if data[i] == 0 { // incompatible feature
					h.featureNames[int(data[i+1])] = strings.TrimRight(string(data[i+2:i+48]), "\x00")
				}
			}
		}
		off += (length + 7) &^ 7
	}
	// No end marker before the end of the cluster: qemu tolerates this
	// for images whose extensions fill the cluster; so do we.
	return nil
}

// checkFeatures rejects images this reader cannot read correctly.
func (h *header) checkFeatures() error {
	switch h.cryptMethod {
	case 0:
	case 1, 2:
		return fmt.Errorf("encrypted images are unsupported (crypt_method %d)", h.cryptMethod)
	default:
		return fmt.Errorf("unknown crypt_method %d", h.cryptMethod)
	}
	inc := h.incompatible
	if inc&incompatCorrupt != 0 {
		return errors.New("image is marked corrupt (run qemu-img check -r all)")
	}
	if inc&incompatDataFile != 0 {
		return errors.New("external data files are unsupported")
	}
	if inc&incompatExtendedL2 != 0 {
		return errors.New("extended L2 entries (subclusters) are unsupported")
	}
	if inc&incompatCompression != 0 || h.compressionType != 0 {
		if h.compressionType == 1 {
			return errors.New("zstd compression is unsupported (convert with qemu-img convert -O qcow2 -o compression_type=zlib)")
		}
		return fmt.Errorf("compression type %d is unsupported", h.compressionType)
	}
	// The dirty bit only means refcounts may be stale; the L1/L2 tables
	// a reader needs are still valid.
	unknown := inc &^ (incompatDirty | incompatCorrupt | incompatDataFile | incompatCompression | incompatExtendedL2)
	if unknown != 0 {
		var names []string
		for unknown != 0 {
			bit := bits.TrailingZeros64(unknown)
			unknown &^= 1 << bit
			if n := h.featureNames[bit]; n != "" {
				names = append(names, fmt.Sprintf("%d (%s)", bit, n))
			} else {
				names = append(names, fmt.Sprint(bit))
			}
		}
		return fmt.Errorf("unsupported incompatible features: bit %s", strings.Join(names, ", "))
	}
	if h.refcountOrder > 6 {
		return fmt.Errorf("invalid refcount_order %d", h.refcountOrder)
	}
	return nil
}
