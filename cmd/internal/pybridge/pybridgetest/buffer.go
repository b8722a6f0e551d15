package pybridgetest

import (
	"bytes"
	"sync"
)

// Buffer is a buffer several goroutines may write to, for a run's output.
// (A bytes.Buffer will not do: os/exec copies a child's output into it with
// ReadFrom, which holds its internal slice across a blocking read.)
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
