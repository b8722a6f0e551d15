package machine

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// consoleBuffer is the serial console output of the current run (carriage
// returns removed), with a cursor for WaitForConsoleText.
type consoleBuffer struct {
	mu      sync.Mutex
	text    []byte
	mark    int           // WaitForConsoleText searches text[mark:]
	changed chan struct{} // closed and replaced on every append and reset
}

func newConsoleBuffer() *consoleBuffer {
	return &consoleBuffer{changed: make(chan struct{})}
}

func (c *consoleBuffer) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.text, c.mark = nil, 0
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *consoleBuffer) append(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p {
		if b != '\r' {
			c.text = append(c.text, b)
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *consoleBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.text)
}

// find looks for re after the cursor. On a match it moves the cursor past
// the line the match ends in (past the match when that line is not complete
// yet) and returns the match; otherwise it returns a channel that is closed
// when there is more to search.
func (c *consoleBuffer) find(re *regexp.Regexp) (match string, found bool, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := c.text[c.mark:]
	loc := re.FindIndex(rest)
	if loc == nil {
		return "", false, c.changed
	}
	match = string(rest[loc[0]:loc[1]])
	end := c.mark + loc[1]
	if i := bytes.IndexByte(c.text[end:], '\n'); i >= 0 && (loc[1] == 0 || rest[loc[1]-1] != '\n') {
		end += i + 1
	}
	c.mark = end
	return match, true, nil
}

// readSerial copies the serial console to console.log, the Console writer
// and the in-memory buffer until EOF.
func (m *Machine) readSerial(r *run) {
	defer close(r.serialEnd)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.serialConn.Read(buf)
		if n > 0 {
			p := buf[:n]
			if m.consoleFile != nil {
				if _, werr := m.consoleFile.Write(p); werr != nil {
					m.log.Warn("writing console.log", "err", werr)
				}
			}
			if m.cfg.Console != nil {
				_, _ = m.cfg.Console.Write(p)
			}
			m.console.append(p)
		}
		if err != nil {
			return
		}
	}
}

// ConsoleLog returns everything the guest printed on its serial console
// since the machine was last started.
func (m *Machine) ConsoleLog() string { return m.console.String() }

// WaitForConsoleText waits until re matches the serial console output that
// previous waits have not consumed yet, and returns the match. Output from
// the start of the current run counts, also when it arrived before the call.
// It does not start the machine.
func (m *Machine) WaitForConsoleText(ctx context.Context, re *regexp.Regexp) (string, error) {
	for {
		match, ok, changed := m.console.find(re)
		if ok {
			return match, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("machine %s: waiting for %q on the console: %w", m.cfg.Name, re.String(), ctx.Err())
		}
	}
}

// SendConsole writes chars to the guest's serial console input (ttyS0).
func (m *Machine) SendConsole(ctx context.Context, chars string) error {
	r, err := m.running()
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = r.serialConn.SetWriteDeadline(dl)
		defer r.serialConn.SetWriteDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = r.serialConn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := r.serialConn.Write([]byte(chars)); err != nil {
		if diedDuring(r, err) {
			return m.exitedErr(r, "writing to the serial console")
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("machine %s: writing to the serial console: %w", m.cfg.Name, err)
	}
	return nil
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
