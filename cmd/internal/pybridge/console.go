package pybridge

import (
	"context"
	"encoding/base64"
	"strings"
	"time"
)

// consoleCursor marks how far a reader got in a machine's console log: a
// byte offset and the bytes just before it, so that a log that started
// over (the machine was restarted) is noticed.
type consoleCursor struct {
	Off  int    `json:"off"`
	Mark string `json:"mark"` // base64
}

const cursorMark = 32

func makeCursor(log string, off int) *consoleCursor {
	return &consoleCursor{Off: off, Mark: base64.StdEncoding.EncodeToString([]byte(log[max(0, off-cursorMark):off]))}
}

// valid reports whether c still points into log.
func (c *consoleCursor) valid(log string) bool {
	mark, err := base64.StdEncoding.DecodeString(c.Mark)
	if err != nil || c.Off < 0 || c.Off > len(log) || len(mark) > c.Off {
		return false
	}
	return log[c.Off-len(mark):c.Off] == string(mark)
}

// consolePoll is how often console_read looks for new output.
const consolePoll = 50 * time.Millisecond

// consoleRead returns the complete lines of the console log after the
// cursor, waiting up to Wait seconds for at least one.
func consoleRead(ctx context.Context, m Machine, p struct {
	Cursor *consoleCursor `json:"cursor"`
	Wait   float64        `json:"wait"`
}) (any, error) {
	deadline := time.Now().Add(time.Duration(p.Wait * float64(time.Second)))
	reset := false
	for {
		log := m.ConsoleLog()
		off := 0
		if p.Cursor != nil {
			if p.Cursor.valid(log) {
				off = p.Cursor.Off
			} else {
				reset = true
				p.Cursor = nil
			}
		}
		if i := strings.LastIndexByte(log[off:], '\n'); i >= 0 || !time.Now().Before(deadline) {
			end := off + i + 1
			if i < 0 {
				end = off
			}
			return map[string]any{"text": log[off:end], "cursor": makeCursor(log, end), "reset": reset}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(consolePoll, time.Until(deadline))):
		}
	}
}
