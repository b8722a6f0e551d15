// Package ctxio makes long copies stop when their context ends: a reader
// that fails with the context's error once it is done. It is for copies of
// disk images and layers (io.Copy has no context); not for network
// connections, whose deadlines do this better.
package ctxio

import (
	"context"
	"io"
)

// Reader returns a reader of r that fails with ctx.Err() once ctx is done
// (checked before every Read).
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
