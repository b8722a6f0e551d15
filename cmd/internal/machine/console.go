package machine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// consoleBuffer is the serial console output of the current run (carriage
// returns removed). Waiting for text on it is the Python driver's
// (wait_for_console_text over pybridge's console_read), not this package's.
type consoleBuffer struct {
	mu   sync.Mutex
	text []byte
}

func newConsoleBuffer() *consoleBuffer { return &consoleBuffer{} }

func (c *consoleBuffer) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.text = nil
}

func (c *consoleBuffer) append(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range p {
		if b != '\r' {
			c.text = append(c.text, b)
		}
	}
}

func (c *consoleBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.text)
}

// readSerial copies the serial console to console.log, the Console writer
// and the in-memory buffer until EOF.
func (m *Machine) readSerial(r *run) {
	defer close(r.serialEnd)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.serialConn.Read(buf)
		if n > 0 {
			m.consoleOutput(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// consoleOutput is p from the serial console: to console.log, the Console
// writer and the in-memory buffer.
func (m *Machine) consoleOutput(p []byte) {
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

// ConsoleLog returns everything the guest printed on its serial console
// since the machine was last started.
func (m *Machine) ConsoleLog() string { return m.console.String() }

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
