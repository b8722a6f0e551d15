package backdoor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// stallProbe is how long the host waits for more of a reply before it sends
// a sync probe. The shell answers the probe only after the current reply,
// so when the probe's answer shows up before the reply is complete, bytes of
// the reply were lost (a virtconsole drops output) and waiting longer would
// hang. A probe during a reply that is merely slow costs nothing.
const stallProbe = 2 * time.Second

// maxPrealloc bounds the buffer payload allocates ahead.
const maxPrealloc = 256 << 20

var (
	// errShort means the trailer of the reply arrived before its payload
	// was complete; the trailer is still to be read.
	errShort = errors.New("the reply was cut short (output lost on the way)")
	// errLost means the probe's answer arrived before the reply was
	// complete: the rest of the reply, trailer included, was lost, and
	// the stream is in step after the answer.
	errLost = errors.New("the end of the reply was lost on the way")
)

// frame reads the rest of one reply after its header, watching for the
// reply's trailer arriving early and probing the shell when the stream
// stalls.
type frame struct {
	s        *Shell
	ctx      context.Context
	deadline <-chan time.Time
	trailer  []byte // "DT ID end "
	probe    []byte // "\nDT P sync\n" once a probe was sent
	probeID  string // P
	answered bool   // the probe's answer was consumed
	crc      uint32 // cksum of the payload, computed by payload as it arrives
}

// more appends the next chunk to the shell's buffer; when nothing comes
// for stallProbe it sends a probe (once) and waits on.
func (f *frame) more() error {
	if f.probe != nil {
		return f.s.fill(f.ctx, f.deadline)
	}
	t := time.NewTimer(stallProbe)
	defer t.Stop()
	err := f.s.fillOrStall(f.ctx, f.deadline, t.C)
	if !errors.Is(err, errStalled) {
		return err
	}
	id := f.s.nextID()
	if err := f.s.send(f.ctx, f.deadline, []byte(syncLine(id))); err != nil {
		return err
	}
	f.probe, f.probeID = []byte("\nDT "+id+" sync\n"), id
	f.s.log.Debug("backdoor reply stalled, probing", "probe", id)
	return f.s.fill(f.ctx, f.deadline)
}

// probeAt returns where the probe's answer starts in the shell's buffer,
// searching from from, or -1.
func (f *frame) probeAt(from int) int {
	if f.probe == nil {
		return -1
	}
	if i := bytes.Index(f.s.buf[from:], f.probe); i >= 0 {
		return from + i
	}
	return -1
}

// payload consumes n raw bytes and the newline after them, and sets f.crc
// to their cksum. When the
// trailer or the probe's answer comes first it consumes up to the trailer
// (or past the answer) and returns errShort with what it got.
func (f *frame) payload(n int) ([]byte, error) {
	s := f.s
	if want := min(n+1, maxPrealloc); cap(s.buf) < want {
		// Room for the whole payload at once, not many copies while it
		// grows (up to a bound: the length comes from the guest).
		b := make([]byte, len(s.buf), want)
		copy(b, s.buf)
		s.buf = b
	}
	nl := append([]byte{'\n'}, f.trailer...)
	from, summed := 0, 0
	var reg uint32
	for {
		if i := bytes.Index(s.buf[from:], nl); i >= 0 && from+i < n {
			got := bytes.Clone(s.buf[:from+i])
			s.buf = s.buf[from+i+1:]
			return got, fmt.Errorf("%w: %d of %d bytes", errShort, len(got), n)
		}
		if j := f.probeAt(from); j >= 0 && j < n {
			// The answer came where the payload should be.
			s.buf = s.buf[j+len(f.probe):]
			f.answered = true
			return nil, fmt.Errorf("%w: %d of %d bytes arrived", errLost, j, n)
		}
		// Checksum what arrived while waiting for the rest.
		if end := min(len(s.buf), n); end > summed {
			reg = cksumUpdate(reg, s.buf[summed:end])
			summed = end
		}
		if len(s.buf) >= n+1 {
			if s.buf[n] != '\n' {
				return nil, fmt.Errorf("reply payload of %d bytes not followed by a newline (output lost or garbled on the way)", n)
			}
			out := s.buf[:n:n]
			s.buf = s.buf[n+1:]
			f.crc = cksumFinish(reg, n)
			return out, nil
		}
		from = max(0, len(s.buf)-len(nl)-len(f.probe))
		if err := f.more(); err != nil {
			return nil, err
		}
	}
}

// line consumes and returns the bytes up to the next newline. When the
// probe's answer ends the line, the rest of the reply was lost: it consumes
// the answer and returns errLost.
func (f *frame) line() ([]byte, error) {
	s := f.s
	from := 0
	for {
		if i := bytes.IndexByte(s.buf[from:], '\n'); i >= 0 {
			i += from
			if f.probe != nil && len(s.buf)-i < len(f.probe) && bytes.HasPrefix(f.probe, s.buf[i:]) {
				// Maybe the start of the probe's answer: wait for all of it.
				from = i
				if err := f.more(); err != nil {
					return nil, err
				}
				from = i
				continue
			}
			if f.probe != nil && bytes.HasPrefix(s.buf[i:], f.probe) {
				s.buf = s.buf[i+len(f.probe):]
				f.answered = true
				return nil, errLost
			}
			line := s.buf[:i]
			s.buf = s.buf[i+1:]
			return line, nil
		}
		from = len(s.buf)
		if err := f.more(); err != nil {
			return nil, err
		}
	}
}
