package backdoor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// faultConn is the fake guest's connection with one fault injected into the
// guest-to-host stream: once armed, the first read that holds a byte 'Q'
// (the payload the tests print) is damaged by hit.
type faultConn struct {
	io.ReadWriter
	mu      sync.Mutex
	armed   bool
	skip    int                          // reads with a 'Q' to let through first
	hit     func(p []byte, i int) []byte // i: index of the first 'Q'
	pending []byte                       // damaged bytes that did not fit the caller's buffer
}

func (c *faultConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	n, err := c.ReadWriter.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed && n > 0 {
		if i := bytes.IndexByte(p[:n], 'Q'); i >= 0 && c.skip > 0 {
			c.skip--
		} else if i >= 0 {
			c.armed = false
			b := c.hit(append([]byte(nil), p[:n]...), i)
			// A damage that lengthens the read (repeat) must not be cut
			// off at the caller's buffer: the rest comes next read.
			n = copy(p, b)
			c.pending = append(c.pending, b[n:]...)
		}
	}
	return n, err
}

func (c *faultConn) arm() {
	c.mu.Lock()
	c.armed = true
	c.mu.Unlock()
}

// flip changes the byte at i.
func flip(p []byte, i int) []byte { p[i] ^= 0x01; return p }

// drop removes up to n bytes from i on.
func drop(n int) func([]byte, int) []byte {
	return func(p []byte, i int) []byte {
		end := min(i+n, len(p))
		return append(p[:i], p[end:]...)
	}
}

// repeat repeats up to n bytes from i on.
func repeat(n int) func([]byte, int) []byte {
	return func(p []byte, i int) []byte {
		end := min(i+n, len(p))
		out := append([]byte(nil), p[:end]...)
		out = append(out, p[i:end]...)
		return append(out, p[end:]...)
	}
}

func TestDamagedReplies(t *testing.T) {
	tests := []struct {
		name    string
		tr      transport
		command string
		hit     func([]byte, int) []byte
	}{
		{"raw small, one bit flipped", pipes, "printf 'QQQQ'", flip},
		{"raw small, bytes lost", pipes, "printf 'QQQQQQQQ'", drop(3)},
		{"raw small, bytes repeated", pipes, "printf 'QQQQ'", repeat(2)},
		{"raw large, one bit flipped", pipes, "head -c 1048576 /dev/zero | tr '\\0' Q", flip},
		{"raw large, bytes lost", pipes, "head -c 1048576 /dev/zero | tr '\\0' Q", drop(7680)},
		{"raw large, bytes repeated", pipes, "head -c 1048576 /dev/zero | tr '\\0' Q", repeat(100)},
		// base64 of "QQQ..." is "UVFR...": it holds a Q too.
		{"base64, one bit flipped", pty, "head -c 1048576 /dev/zero | tr '\\0' Q", flip},
		{"base64, bytes lost", pty, "head -c 1048576 /dev/zero | tr '\\0' Q", drop(4096)},
		{"base64, 4 bytes lost", pty, "head -c 1048576 /dev/zero | tr '\\0' Q", drop(4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := startGuest(t, tt.tr, "")
			fc := &faultConn{ReadWriter: g.conn, hit: tt.hit}
			s := New(fc, nil)
			s.Encoding = encoding(tt.tr)
			s.Grace = 20 * time.Second
			t.Cleanup(func() { s.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := s.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			allQ := func(b []byte) bool { return len(b) > 0 && len(bytes.Trim(b, "Q")) == 0 }
			// An undamaged reply first, as a control.
			if got := run(t, s, tt.command, 0); !allQ(got.Stdout) {
				t.Fatalf("undamaged reply: %d bytes, not all Q", len(got.Stdout))
			}
			fc.arm()
			res, err := s.Run(ctx, tt.command, 0)
			if !errors.Is(err, ErrBadReply) {
				t.Fatalf("damaged reply: %d bytes, error %v; want ErrBadReply", len(res.Stdout), err)
			}
			if res.Stdout != nil {
				t.Errorf("a failed call returned %d bytes of output", len(res.Stdout))
			}
			t.Logf("error: %v", err)
			// The shell is back in step: the next commands work.
			for _, want := range []string{"one", "two"} {
				if got := run(t, s, "echo "+want, 0); string(got.Stdout) != want+"\n" {
					t.Errorf("after the damaged reply: %q, want %q", got.Stdout, want+"\n")
				}
			}
			if got := run(t, s, tt.command, 0); !allQ(got.Stdout) {
				t.Errorf("the same command again: %d bytes, not all Q", len(got.Stdout))
			}
		})
	}
}

// TestSlowReplyProbed: a reply that stalls longer than stallProbe makes the
// host probe the shell; the reply still arrives whole, and the probe's late
// answer disturbs neither the next command nor the baseline framing.
func TestSlowReplyProbed(t *testing.T) {
	g := startGuest(t, pipes, "")
	fc := &faultConn{ReadWriter: g.conn, skip: 1, hit: func(p []byte, _ int) []byte {
		time.Sleep(stallProbe + 500*time.Millisecond)
		return p
	}}
	s := New(fc, nil)
	s.Encoding = Raw
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	fc.arm()
	want := bytes.Repeat([]byte("Q"), 1<<20)
	if got := run(t, s, "head -c 1048576 /dev/zero | tr '\\0' Q", 0); !bytes.Equal(got.Stdout, want) {
		t.Fatalf("slow reply: %d bytes", len(got.Stdout))
	}
	if s.probe == "" {
		t.Error("no probe was sent during a reply that stalled")
	}
	res, err := s.RunNixOSFraming(ctx, "echo baseline")
	if err != nil || string(res.Stdout) != "baseline\n" {
		t.Errorf("baseline framing after a probe: %q, %v", res.Stdout, err)
	}
	if got := run(t, s, "echo next", 0); string(got.Stdout) != "next\n" {
		t.Errorf("after the probe: %q", got.Stdout)
	}
}
