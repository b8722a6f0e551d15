package ociimage

import (
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// fileLayer is a blob stored in a file, uploaded as it is. Its digest is
// computed once, when it is made; the file must not change afterwards.
type fileLayer struct {
	path      string
	mediaType types.MediaType
	digest    v1.Hash
	diffID    v1.Hash // the digest of the uncompressed content
	size      int64
	gzipped   bool // the file is gzip-compressed (a containerDisk tar.gz)
}

// newFileLayer hashes the file at p and returns it as an uncompressed
// layer (its diff ID is its digest).
func newFileLayer(p string, mt types.MediaType) (*fileLayer, error) {
	h, n, err := hashFile(p)
	if err != nil {
		return nil, err
	}
	return &fileLayer{path: p, mediaType: mt, digest: h, diffID: h, size: n}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil || !l.gzipped {
		return f, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

var _ v1.Layer = (*fileLayer)(nil)
