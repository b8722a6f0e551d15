package backdoor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// Result is what a command left behind.
type Result struct {
	// Status is the command's exit status (128+N when signal N killed it),
	// or TimeoutStatus when the guest killed it for exceeding its timeout.
	Status int
	// Stdout is everything the command and its children wrote to stdout
	// until the command ended (byte for byte).
	Stdout []byte
	// TimedOut is set when the guest killed the command's process group
	// because it ran longer than its timeout.
	TimedOut bool
}

var (
	// ErrDisconnected means the connection to the guest shell is gone (EOF
	// or a read or write error: QEMU died). It is permanent.
	ErrDisconnected = errors.New("backdoor connection lost")
	// ErrNotReady means Run was called before WaitReady succeeded, or after
	// the shell was found broken or restarted; WaitReady must succeed first.
	ErrNotReady = errors.New("backdoor shell not ready")
	// ErrRestarted means the guest printed the marker again while a command
	// was running: the guest rebooted or the backdoor restarted.
	ErrRestarted = errors.New("backdoor shell restarted")
	// ErrUnresponsive means a command's reply did not arrive within its
	// timeout plus the grace period.
	ErrUnresponsive = errors.New("backdoor shell did not answer in time")
	// ErrClosed means Close was called.
	ErrClosed = errors.New("backdoor shell closed")
	// ErrBadReply means a reply failed its checks: its length, checksum or
	// framing did not match (output lost or corrupted on the way), or the
	// guest could not checksum or send it. The output is not returned.
	ErrBadReply = errors.New("backdoor reply failed its checks")
	// ErrOutputSpace means the file system holding the command's output in
	// the guest was full, so the output may be incomplete; it is not
	// returned.
	ErrOutputSpace = errors.New("no space for the command's output in the guest")
)

// readAhead is how many chunks the reader takes from the connection before
// a reply is consumed, so that the guest (and QEMU) can keep sending while
// the host checks what arrived.
const readAhead = 32

// DefaultGrace is how long past a command's own timeout the host waits for
// its reply before it declares the shell unresponsive.
const DefaultGrace = 30 * time.Second

// readyTimeout bounds the preamble round trip in WaitReady (it runs a few
// small programs in the guest).
const readyTimeout = 2 * time.Minute

// pageSize is the allocation unit of a tmpfs: an output within a page of
// the tmpfs's capacity may have been cut off by ENOSPC.
const pageSize = 4096

var (
	// errDeadline is the internal result of a host-side deadline.
	errDeadline = errors.New("deadline exceeded")
	// errStalled is the internal result of a read that waited stallProbe.
	errStalled = errors.New("no data")
	// errInStep marks a failed reply that was read to its end: the shell
	// is still in step.
	errInStep = errors.New("reply read to its end")
)

// Shell is the host end of one guest's backdoor shell. Its methods may be
// called from several goroutines; commands run one at a time.
type Shell struct {
	// Grace is how long past a command's timeout Run waits for the reply
	// before giving up on the shell, and how long a resynchronisation may
	// take; zero means DefaultGrace. Set it before the first call.
	Grace time.Duration
	// Encoding is how the guest sends large or binary outputs: Raw on a
	// flow-controlled 8-bit clean channel (a virtio serial port), Base64 on
	// a terminal (hvc0, the NixOS-compatible mode). Zero means Base64. Set
	// it before WaitReady.
	Encoding Encoding

	w      io.Writer
	log    *slog.Logger
	chunks chan []byte   // filled by readLoop, closed when reading fails
	rerr   error         // why readLoop stopped; valid once chunks is closed
	done   chan struct{} // closed by Close
	once   sync.Once

	mu       sync.Mutex // held by WaitReady and Run for their whole duration
	buf      []byte     // bytes read but not yet consumed
	dead     error      // permanent failure (disconnected or closed)
	ready    bool       // preamble installed in the current shell
	broken   error      // why the shell is unusable until the next WaitReady
	unsynced error      // a reply was cut off or garbled: resynchronise before the next command
	info     readyInfo  // from the ready line
	probe    string     // id of a stall probe whose answer may still come
	marker   bool       // Run consumed a marker that WaitReady has not seen
	inflight chan error // a write that did not finish before its deadline
	nonce    string
	seq      uint64
}

// New starts reading conn, the host end of the guest's hvc0 (usually the
// unix socket of QEMU's virtconsole chardev). The shell does not own conn:
// the caller closes it (which ends the reader) after Close. A nil log
// discards.
func New(conn io.ReadWriter, log *slog.Logger) *Shell {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var n [4]byte
	_, _ = rand.Read(n[:])
	s := &Shell{
		w:      conn,
		log:    log,
		chunks: make(chan []byte, readAhead),
		done:   make(chan struct{}),
		nonce:  hex.EncodeToString(n[:]),
	}
	go s.readLoop(conn)
	return s
}

func (s *Shell) readLoop(r io.Reader) {
	defer close(s.chunks)
	for {
		b := make([]byte, 64<<10)
		n, err := r.Read(b)
		if n > 0 {
			select {
			case s.chunks <- b[:n]:
			case <-s.done:
				s.rerr = ErrClosed
				return
			}
		}
		if err != nil {
			s.rerr = err
			return
		}
	}
}

// Close makes every pending and later call fail with ErrClosed. It does not
// close the connection.
func (s *Shell) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// WaitReady waits for a fresh marker line from the guest (skipping anything
// before it), sends the preamble and checks it with a round trip. Call it
// after starting the machine and again after every reboot; it blocks until
// the guest prints the marker or ctx ends. A marker that Run already ran
// into (ErrRestarted) counts as fresh.
func (s *Shell) WaitReady(ctx context.Context) error { return s.waitReady(ctx, true) }

// Resume sets up a shell that printed its marker to an earlier host
// connection and now waits for its next command: the shell of a machine
// restored from a snapshot, whose guest side is the saved one and whose
// host side is a new connection. The shell has the preamble and its output
// directory from the earlier connection: Resume asks it for its ready reply
// (__dt_resume) and checks it, as WaitReady does after the marker; anything
// the guest sent before that reply is skipped.
func (s *Shell) Resume(ctx context.Context) error { return s.waitReady(ctx, false) }

func (s *Shell) waitReady(ctx context.Context, marker bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead != nil {
		return s.dead
	}
	if s.inflight != nil {
		select {
		case err := <-s.inflight:
			s.inflight = nil
			if err != nil {
				return s.disconnected("writing", err)
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for a stuck write to the backdoor shell: %w", ctx.Err())
		case <-s.done:
			return ErrClosed
		}
	}
	start := time.Now()
	if marker && !s.marker {
		if err := s.skipToMarker(ctx); err != nil {
			return fmt.Errorf("waiting for the backdoor shell: %w", err)
		}
	}
	s.marker, s.ready = false, false
	s.log.Debug("backdoor marker seen", "waited", time.Since(start))

	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	id := s.nextID()
	enc := s.Encoding
	if enc != Raw {
		enc = Base64
	}
	setup := Preamble + initLine(id, enc)
	if !marker {
		setup = resumeLine(id)
	}
	if err := s.send(ctx, timer.C, []byte(setup)); err != nil {
		return fmt.Errorf("sending the backdoor preamble: %w", s.deadlineErr(err, "the preamble"))
	}
	line, err := s.replyLine(ctx, timer.C, id)
	if err != nil {
		return fmt.Errorf("setting up the backdoor shell: %w", s.deadlineErr(err, "the preamble"))
	}
	word, rest, _ := strings.Cut(line, " ")
	switch word {
	case "ready":
	case "fail":
		return fmt.Errorf("setting up the backdoor shell: %s", rest)
	default:
		return fmt.Errorf("setting up the backdoor shell: unexpected reply %q", line)
	}
	info, err := parseReady(rest)
	if err != nil {
		return fmt.Errorf("setting up the backdoor shell: %w", err)
	}
	s.ready, s.broken, s.unsynced, s.info = true, nil, nil, info
	s.log.Debug("backdoor shell ready", "bash", info.bash, "output_dir", info.dir, "tmpfs_bytes", info.capacity,
		"encoding", string(enc), "took", time.Since(start))
	return nil
}

// Run runs command in the guest shell and returns its exit status and
// stdout. The command runs in a subshell with `set -euo pipefail`, stdin from
// /dev/null and stderr on the guest's serial console; what it leaves running
// in the background keeps running and does not delay the reply.
//
// With timeout > 0 the guest kills the command's process group after timeout
// (Result.TimedOut, Status TimeoutStatus, nil error), and the host gives up
// waiting after timeout plus Grace (ErrUnresponsive). timeout <= 0 means no
// limit but ctx. A host-side deadline or a cancelled ctx leave the shell
// unusable (ErrNotReady) until the next successful WaitReady.
func (s *Shell) Run(ctx context.Context, command string, timeout time.Duration) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return Result{}, err
	}
	if err := s.resync(ctx); err != nil {
		return Result{}, err
	}
	id := s.nextID()
	line, err := runLine(id, command, timeout)
	if err != nil {
		return Result{}, err
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		grace := s.Grace
		if grace <= 0 {
			grace = DefaultGrace
		}
		t := time.NewTimer(timeout + grace)
		defer t.Stop()
		deadline = t.C
	}
	start := time.Now()
	if err := s.send(ctx, deadline, []byte(line)); err != nil {
		return Result{}, s.fail(ctx, err, timeout)
	}
	res, err := s.readRun(ctx, deadline, id)
	if err != nil {
		return Result{}, s.fail(ctx, err, timeout)
	}
	s.log.Debug("backdoor command done", "id", id, "status", res.Status, "timed_out", res.TimedOut,
		"stdout_bytes", len(res.Stdout), "took", time.Since(start))
	return res, nil
}

// usable reports why Run cannot proceed.
func (s *Shell) usable() error {
	switch {
	case s.dead != nil:
		return s.dead
	case s.broken != nil:
		return fmt.Errorf("%w: %w", ErrNotReady, s.broken)
	case !s.ready:
		return fmt.Errorf("%w: WaitReady has not succeeded yet", ErrNotReady)
	}
	return nil
}

// fail records what a failed Run means for the shell and returns the error
// to report.
func (s *Shell) fail(ctx context.Context, err error, timeout time.Duration) error {
	switch {
	case s.dead != nil:
		return s.dead
	case errors.Is(err, errInStep):
		return err // the reply was complete: the shell is still in step
	case errors.Is(err, ErrRestarted):
		s.broken = err
	case errors.Is(err, errDeadline):
		s.unsynced = fmt.Errorf("%w: no reply within the %v timeout plus %v", ErrUnresponsive, timeout, s.graceOrDefault())
		return s.unsynced
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.unsynced = fmt.Errorf("command interrupted: %w", err)
		return s.unsynced
	default:
		// The reply was cut off or garbled: find its end now, so that the
		// next command starts in step.
		s.unsynced = fmt.Errorf("%w: %w", ErrBadReply, err)
		bad := s.unsynced
		if rerr := s.resync(ctx); rerr != nil {
			return fmt.Errorf("%w; then %w", bad, rerr)
		}
		return bad
	}
	return s.broken
}

// resync brings the host back in step with the shell after a reply that was
// not read to its end: it asks for a sync reply and skips everything before
// it. It waits at most the grace period (the shell may still be sending the
// rest of the bad reply, or still be running the interrupted command); when
// that fails the shell stays out of step and the next call tries again.
func (s *Shell) resync(ctx context.Context) error {
	if s.unsynced == nil {
		return nil
	}
	why := s.unsynced
	t := time.NewTimer(s.graceOrDefault())
	defer t.Stop()
	id := s.nextID()
	start := time.Now()
	err := s.send(ctx, t.C, []byte(syncLine(id)))
	var line string
	if err == nil {
		line, err = s.replyLine(ctx, t.C, id)
	}
	if err == nil && line != "sync" {
		err = fmt.Errorf("unexpected sync reply %q", line)
	}
	switch {
	case err == nil:
		s.unsynced = nil
		s.log.Debug("backdoor shell resynchronised", "after", why, "took", time.Since(start))
		return nil
	case s.dead != nil:
		return s.dead
	case errors.Is(err, ErrRestarted):
		s.broken = err
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	case errors.Is(err, errDeadline):
		err = fmt.Errorf("no answer to a resynchronisation within %v", s.graceOrDefault())
	}
	return fmt.Errorf("%w: the shell is out of step (%w) and %w", ErrNotReady, why, err)
}

func (s *Shell) graceOrDefault() time.Duration {
	if s.Grace > 0 {
		return s.Grace
	}
	return DefaultGrace
}

func (s *Shell) deadlineErr(err error, what string) error {
	if errors.Is(err, errDeadline) {
		return fmt.Errorf("%w: no reply to %s within %v", ErrUnresponsive, what, readyTimeout)
	}
	return err
}

func (s *Shell) disconnected(op string, err error) error {
	if s.dead == nil {
		s.dead = fmt.Errorf("%w: %s: %w", ErrDisconnected, op, err)
	}
	return s.dead
}

func (s *Shell) nextID() string {
	s.seq++
	return s.nonce + "." + strconv.FormatUint(s.seq, 10)
}

// send writes p, giving up (but leaving the write in flight) at ctx's end or
// the deadline.
func (s *Shell) send(ctx context.Context, deadline <-chan time.Time, p []byte) error {
	if s.inflight != nil {
		select {
		case err := <-s.inflight:
			s.inflight = nil
			if err != nil {
				return s.disconnected("writing", err)
			}
		default:
			return errors.New("an earlier write to the shell is still pending")
		}
	}
	ch := make(chan error, 1)
	go func() {
		_, err := s.w.Write(p)
		ch <- err
	}()
	select {
	case err := <-ch:
		if err != nil {
			return s.disconnected("writing", err)
		}
		return nil
	case <-ctx.Done():
		s.inflight = ch
		return ctx.Err()
	case <-deadline:
		s.inflight = ch
		return errDeadline
	case <-s.done:
		s.inflight = ch
		s.dead = ErrClosed
		return ErrClosed
	}
}

// fill appends the next chunk from the connection to s.buf.
func (s *Shell) fill(ctx context.Context, deadline <-chan time.Time) error {
	return s.fillOrStall(ctx, deadline, nil)
}

// fillOrStall is fill that also gives up with errStalled when stall fires.
func (s *Shell) fillOrStall(ctx context.Context, deadline, stall <-chan time.Time) error {
	if s.dead != nil {
		return s.dead
	}
	select {
	case b, ok := <-s.chunks:
		if !ok {
			if errors.Is(s.rerr, ErrClosed) {
				s.dead = ErrClosed
				return s.dead
			}
			return s.disconnected("reading", s.rerr)
		}
		s.buf = append(s.buf, b...)
		return nil
	case <-s.done:
		s.dead = ErrClosed
		return s.dead
	case <-ctx.Done():
		return ctx.Err()
	case <-deadline:
		return errDeadline
	case <-stall:
		return errStalled
	}
}

var markerBytes = []byte(guest.Marker)

// skipToMarker consumes the stream up to and including the next marker.
func (s *Shell) skipToMarker(ctx context.Context) error {
	for {
		if i := bytes.Index(s.buf, markerBytes); i >= 0 {
			if i > 0 {
				s.log.Debug("guest shell says", "text", snippet(s.buf[:i]))
			}
			s.buf = s.buf[i+len(markerBytes):]
			return nil
		}
		s.discard(len(markerBytes))
		if err := s.fill(ctx, nil); err != nil {
			return err
		}
	}
}

// discard drops the buffer but for a tail that may hold the start of a
// needle of length n.
func (s *Shell) discard(n int) {
	keep := lastIndexTail(s.buf, n)
	if drop := s.buf[:len(s.buf)-keep]; len(bytes.Trim(drop, "\n")) > 0 {
		s.log.Debug("guest shell says", "text", snippet(drop))
	}
	s.buf = append([]byte(nil), s.buf[len(s.buf)-keep:]...)
}

// findHeader consumes the stream up to and including "DT ID ". A marker
// before it means the shell restarted.
func (s *Shell) findHeader(ctx context.Context, deadline <-chan time.Time, id string) error {
	needle := []byte("DT " + id + " ")
	for {
		i := bytes.Index(s.buf, needle)
		end := len(s.buf)
		if i >= 0 {
			end = i
		}
		if j := bytes.Index(s.buf[:end], markerBytes); j >= 0 {
			s.buf = s.buf[j+len(markerBytes):]
			s.marker, s.ready = true, false
			return fmt.Errorf("%w (the guest rebooted or the backdoor restarted)", ErrRestarted)
		}
		if i >= 0 {
			if len(bytes.Trim(s.buf[:i], "\n")) > 0 {
				s.log.Debug("guest shell says", "text", snippet(s.buf[:i]))
			}
			s.buf = s.buf[i+len(needle):]
			return nil
		}
		s.discard(max(len(needle), len(markerBytes)))
		if err := s.fill(ctx, deadline); err != nil {
			return err
		}
	}
}

// readLine returns the bytes up to the next newline and consumes them with
// the newline.
func (s *Shell) readLine(ctx context.Context, deadline <-chan time.Time) ([]byte, error) {
	from := 0
	for {
		if i := bytes.IndexByte(s.buf[from:], '\n'); i >= 0 {
			line := s.buf[:from+i]
			s.buf = s.buf[from+i+1:]
			return line, nil
		}
		from = len(s.buf)
		if err := s.fill(ctx, deadline); err != nil {
			return nil, err
		}
	}
}

// readN returns and consumes the next n bytes.
func (s *Shell) readN(ctx context.Context, deadline <-chan time.Time, n int) ([]byte, error) {
	for len(s.buf) < n {
		if err := s.fill(ctx, deadline); err != nil {
			return nil, err
		}
	}
	b := s.buf[:n:n]
	s.buf = s.buf[n:]
	return b, nil
}

// replyLine reads the rest of the line starting with "DT ID ".
func (s *Shell) replyLine(ctx context.Context, deadline <-chan time.Time, id string) (string, error) {
	if err := s.findHeader(ctx, deadline, id); err != nil {
		return "", err
	}
	line, err := s.readLine(ctx, deadline)
	return string(line), err
}

// readRun reads the reply frame of command id and checks it.
func (s *Shell) readRun(ctx context.Context, deadline <-chan time.Time, id string) (Result, error) {
	hl, err := s.replyLine(ctx, deadline, id)
	if err != nil {
		return Result{}, err
	}
	h, err := parseHeader(hl)
	if err != nil {
		return Result{}, err
	}
	s.probe = "" // the next header search skips its answer
	f := &frame{s: s, ctx: ctx, deadline: deadline, trailer: []byte("DT " + id + " end ")}
	defer func() {
		if f.probe != nil && !f.answered {
			s.probe = f.probeID
		}
	}()
	var out []byte
	if h.enc == 'b' {
		enc, err := f.line()
		if errors.Is(err, errLost) {
			return Result{}, fmt.Errorf("%w: %w (%w)", ErrBadReply, err, errInStep)
		}
		if err != nil {
			return Result{}, err
		}
		if i := bytes.Index(enc, f.trailer); i >= 0 {
			// The payload's newline was lost: the trailer is in the line.
			s.buf = append(append([]byte(nil), enc[i:]...), append([]byte{'\n'}, s.buf...)...)
			enc = enc[:i]
			err = errors.New("the reply was cut short (output lost on the way)")
		}
		out = make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
		n, derr := base64.StdEncoding.Decode(out, enc)
		out = out[:n]
		if derr != nil && err == nil {
			err = fmt.Errorf("decoding the base64 output: %w", derr)
		}
	} else {
		out, err = f.payload(int(h.length))
		if errors.Is(err, errLost) {
			return Result{}, fmt.Errorf("%w: %w (%w)", ErrBadReply, err, errInStep)
		}
		if err != nil && !errors.Is(err, errShort) {
			return Result{}, err
		}
	}
	tl, terr := f.line()
	if errors.Is(terr, errLost) {
		return Result{}, fmt.Errorf("%w: %w (%w)", ErrBadReply, terr, errInStep)
	}
	if terr != nil {
		return Result{}, terr
	}
	rc, crc, terr := parseTrailer(string(tl), id, h.crcLater)
	if terr != nil {
		return Result{}, terr
	}
	if h.crcLater {
		h.crc = crc
	}
	// In step from here on.
	inStep := func(err error) (Result, error) {
		return Result{}, fmt.Errorf("%w: %w (%w)", ErrBadReply, err, errInStep)
	}
	switch {
	case err != nil:
		return inStep(err)
	case h.enc == 'e':
		return inStep(fmt.Errorf("cksum failed in the guest (status %d)", rc))
	case h.enc == 'f':
		return Result{}, fmt.Errorf("%w: the file system holding %s is full (%w)", ErrOutputSpace, s.info.dir, errInStep)
	case rc != 0:
		return inStep(fmt.Errorf("sending the output failed in the guest (status %d)", rc))
	case int64(len(out)) != h.length:
		return inStep(fmt.Errorf("got %d bytes of output, the guest sent %d", len(out), h.length))
	}
	sum := f.crc // computed while the raw payload arrived
	if h.enc == 'b' {
		sum = Cksum(out)
	}
	if sum != h.crc {
		return inStep(fmt.Errorf("checksum of the %d bytes of output is %d, the guest computed %d", len(out), sum, h.crc))
	}
	if c := s.info.capacity; c > 0 && h.length+pageSize > c {
		return Result{}, fmt.Errorf("%w: the output (%d bytes) filled the backdoor's %d MiB tmpfs %s (%w)",
			ErrOutputSpace, h.length, c>>20, s.info.dir, errInStep)
	}
	res := Result{Status: h.status, Stdout: bytes.Clone(out), TimedOut: h.timedOut}
	if res.TimedOut {
		res.Status = TimeoutStatus
	}
	return res, nil
}

// RunNixOSFraming runs command the way the NixOS test driver does, over the
// same shell: `timeout 900 bash -c COMMAND | (base64 -w 0; echo)`, then
// `echo ${PIPESTATUS[0]}`. It exists as the baseline of the benchmarks and
// has none of Run's properties: no checks (a short reply goes unnoticed),
// no guest-side timeout, and it waits for every process holding stdout.
func (s *Shell) RunNixOSFraming(ctx context.Context, command string) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return Result{}, err
	}
	if err := s.resync(ctx); err != nil {
		return Result{}, err
	}
	if strings.IndexByte(command, 0) >= 0 {
		return Result{}, errors.New("command contains a NUL byte")
	}
	fail := func(err error) (Result, error) {
		s.unsynced = fmt.Errorf("baseline command interrupted: %w", err)
		return Result{}, err
	}
	if s.probe != "" {
		// This framing has no ids: consume the answer of the last reply's
		// stall probe first.
		t := time.NewTimer(s.graceOrDefault())
		defer t.Stop()
		if _, err := s.replyLine(ctx, t.C, s.probe); err != nil {
			return fail(err)
		}
		s.probe = ""
	}
	if err := s.send(ctx, nil, []byte("timeout 900 bash -c "+Quote(command)+" | (base64 -w 0; echo)\n")); err != nil {
		return fail(err)
	}
	enc, err := s.readLine(ctx, nil)
	if err != nil {
		return fail(err)
	}
	out, err := base64.StdEncoding.DecodeString(string(bytes.TrimLeft(enc, "\n")))
	if err != nil {
		return fail(fmt.Errorf("decoding the output: %w", err))
	}
	if err := s.send(ctx, nil, []byte("echo ${PIPESTATUS[0]}\n")); err != nil {
		return fail(err)
	}
	line, err := s.readLine(ctx, nil)
	if err != nil {
		return fail(err)
	}
	st, err := strconv.Atoi(string(line))
	if err != nil {
		return fail(fmt.Errorf("malformed status line %q", line))
	}
	return Result{Status: st, Stdout: out}, nil
}
