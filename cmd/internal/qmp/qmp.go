// Package qmp is the transport for the QEMU Machine Protocol over a unix
// socket: it negotiates capabilities, runs commands (several may be in
// flight; replies are matched by id), and delivers asynchronous events on a
// channel. It has no message size limit.
//
// The commands themselves come from go-qemu (github.com/digitalocean/go-qemu):
// Client.Monitor is its qmp.Monitor interface implemented over this
// transport (go-qemu's own socket monitor gives up on replies over 64 KiB,
// go-qemu issue #159), and Client.Raw its generated qmp/raw commands
// (SetLink, Screendump, SendKey, Quit, Stop, Cont, HumanMonitorCommand,
// ...), each bounded by a context. Client.Execute remains for commands by
// name.
//
// The tests use a fake QMP server and, when qemu-system-x86_64 is installed,
// a real QEMU started with `-machine none` (no guest, fast).
package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// EventGuestPanicked is the event QEMU sends when the guest reports a
// kernel panic through a pvpanic device (see Client.GuestPanicked).
const EventGuestPanicked = "GUEST_PANICKED"

// EventBuffer is how many events Events holds before the oldest is dropped.
const EventBuffer = 256

var (
	// ErrDisconnected means QEMU closed the socket (it exited) or reading
	// from it failed.
	ErrDisconnected = errors.New("qmp connection lost")
	// ErrClosed means Close was called.
	ErrClosed = errors.New("qmp client closed")
)

// Error is an error reply from QEMU: {"error": {"class": ..., "desc": ...}}.
type Error struct {
	Command string // the command that failed
	Class   string // e.g. "GenericError", "CommandNotFound", "DeviceNotFound"
	Desc    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Event is an asynchronous QMP event.
type Event struct {
	Name string          // e.g. "SHUTDOWN", "RESET", "STOP"
	Data json.RawMessage // the event's "data" member; nil when absent
	Time time.Time       // QEMU's timestamp
}

// Version is QEMU's version from the greeting.
type Version struct {
	Major, Minor, Micro int
	Package             string
}

func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro)
	if v.Package != "" {
		s += " (" + v.Package + ")"
	}
	return s
}

// Client is a QMP connection. Its methods may be called concurrently.
type Client struct {
	conn    net.Conn
	dec     *json.Decoder
	version Version
	events  chan Event
	done    chan struct{} // closed when the read loop has ended

	panicked  chan struct{} // closed at the first EventGuestPanicked
	panicData json.RawMessage

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	pending map[string]chan response
	err     error // why the read loop ended; set before done is closed
	closing bool
	dropped int
	seq     uint64

	shutdownReason string // of the last SHUTDOWN event
}

type response struct {
	ret json.RawMessage
	err *Error
}

// message is any message QEMU sends.
type message struct {
	QMP    *greeting       `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
	ID json.RawMessage `json:"id"`
}

type greeting struct {
	Version struct {
		QEMU struct {
			Major int `json:"major"`
			Minor int `json:"minor"`
			Micro int `json:"micro"`
		} `json:"qemu"`
		Package string `json:"package"`
	} `json:"version"`
}

// Dial connects to the QMP socket, reads the greeting and leaves
// capabilities negotiation mode. While the socket does not exist yet or
// refuses connections (QEMU still starting) it keeps trying until ctx ends.
func Dial(ctx context.Context, socket string) (*Client, error) {
	conn, err := dialRetry(ctx, socket)
	if err != nil {
		return nil, fmt.Errorf("connecting to qmp socket %s: %w", socket, err)
	}
	c := &Client{
		conn:     conn,
		dec:      json.NewDecoder(conn),
		events:   make(chan Event, EventBuffer),
		done:     make(chan struct{}),
		pending:  map[string]chan response{},
		panicked: make(chan struct{}),
	}
	if err := c.readGreeting(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("reading the qmp greeting from %s: %w", socket, err)
	}
	go c.readLoop()
	if err := c.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("negotiating qmp capabilities on %s: %w", socket, err)
	}
	return c, nil
}

func dialRetry(ctx context.Context, socket string) (net.Conn, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", socket)
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *Client) readGreeting(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var m message
	err := c.dec.Decode(&m)
	if !stop() {
		return ctx.Err()
	}
	if err != nil {
		return err
	}
	if m.QMP == nil {
		return errors.New("first message is not a QMP greeting")
	}
	q := m.QMP.Version
	c.version = Version{Major: q.QEMU.Major, Minor: q.QEMU.Minor, Micro: q.QEMU.Micro, Package: q.Package}
	return nil
}

// Version is QEMU's version as announced in the greeting.
func (c *Client) Version() Version { return c.version }

// Events delivers asynchronous events in order. When more than EventBuffer
// events are waiting, the oldest are dropped (the reader never blocks on a
// slow consumer). The channel is closed when the connection ends.
func (c *Client) Events() <-chan Event { return c.events }

// GuestPanicked is closed when QEMU reported EventGuestPanicked, the
// guest kernel's panic (the event is also delivered on Events, in order).
// It does not depend on anyone reading Events, so a full or unread event
// buffer cannot hide a panic.
func (c *Client) GuestPanicked() <-chan struct{} { return c.panicked }

// PanicInfo is the data of the EventGuestPanicked event (QEMU's "action"
// and, where the guest says, "info"), nil before one arrived.
func (c *Client) PanicInfo() json.RawMessage {
	select {
	case <-c.panicked:
		return c.panicData
	default:
		return nil
	}
}

// Dropped is how many events were dropped because nobody read them in time.
func (c *Client) Dropped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// ShutdownReason is the reason of the last SHUTDOWN event QEMU sent
// ("guest-shutdown", "guest-reset" under -no-reboot, "host-qmp-quit", ...),
// "" before one came. Events read from Events do not affect it.
func (c *Client) ShutdownReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shutdownReason
}

// Done is closed when the connection has ended (QEMU exited or Close).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended, nil while it is up.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

func (c *Client) readLoop() {
	err := c.readMessages()
	c.mu.Lock()
	if c.closing {
		err = ErrClosed
	} else {
		err = fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, ch := range pending {
		close(ch)
	}
	// done before events: whoever saw the event stream end sees Err too.
	close(c.done)
	close(c.events)
	c.conn.Close()
}

func (c *Client) readMessages() error {
	for {
		var m message
		if err := c.dec.Decode(&m); err != nil {
			return err
		}
		switch {
		case m.Event != "":
			ev := Event{Name: m.Event, Data: m.Data}
			if m.Timestamp != nil {
				ev.Time = time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000)
			}
			if ev.Name == EventGuestPanicked {
				select {
				case <-c.panicked:
				default:
					c.panicData = ev.Data
					close(c.panicked)
				}
			}
			if ev.Name == "SHUTDOWN" {
				var d struct {
					Reason string `json:"reason"`
				}
				_ = json.Unmarshal(ev.Data, &d)
				c.mu.Lock()
				c.shutdownReason = d.Reason
				c.mu.Unlock()
			}
			c.deliver(ev)
		case m.Return != nil || m.Error != nil:
			r := response{ret: m.Return}
			if m.Error != nil {
				r.err = &Error{Class: m.Error.Class, Desc: m.Error.Desc}
			}
			c.mu.Lock()
			ch, ok := c.pending[string(m.ID)]
			delete(c.pending, string(m.ID))
			c.mu.Unlock()
			if !ok {
				continue // its caller gave up (context ended)
			}
			ch <- r
		}
	}
}

// deliver queues ev, dropping the oldest queued event when the buffer is full.
func (c *Client) deliver(ev Event) {
	for {
		select {
		case c.events <- ev:
			return
		default:
		}
		select {
		case <-c.events:
			c.mu.Lock()
			c.dropped++
			c.mu.Unlock()
		default:
		}
	}
}

// Execute runs a QMP command. args (may be nil) is marshalled as the
// command's "arguments"; the "return" member is unmarshalled into reply
// unless reply is nil. An error reply is returned as *Error. Replies of any
// size are fine.
func (c *Client) Execute(ctx context.Context, command string, args, reply any) error {
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	c.seq++
	id := "dt-" + strconv.FormatUint(c.seq, 10)
	ch := make(chan response, 1)
	c.pending[strconv.Quote(id)] = ch
	c.mu.Unlock()

	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
		ID        string `json:"id"`
	}{command, args, id}
	data, err := json.Marshal(req)
	if err != nil {
		c.forget(id)
		return fmt.Errorf("qmp %s: encoding arguments: %w", command, err)
	}
	if err := c.write(ctx, append(data, '\n')); err != nil {
		c.forget(id)
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("qmp %s: %w", command, c.err)
		}
		if r.err != nil {
			r.err.Command = command
			return r.err
		}
		if reply != nil {
			if err := json.Unmarshal(r.ret, reply); err != nil {
				return fmt.Errorf("qmp %s: decoding the reply: %w", command, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
}

func (c *Client) forget(id string) {
	c.mu.Lock()
	delete(c.pending, strconv.Quote(id))
	c.mu.Unlock()
}

func (c *Client) write(ctx context.Context, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := c.conn.Write(data)
	if !stop() {
		_ = c.conn.SetWriteDeadline(time.Time{})
		return ctx.Err()
	}
	if err != nil {
		if c.Err() != nil {
			return c.Err()
		}
		return err
	}
	return nil
}

// HumanMonitorCommand runs a human monitor (HMP) command line such as
// "info version" and returns its output.
func (c *Client) HumanMonitorCommand(ctx context.Context, cmd string) (string, error) {
	var out string
	args := struct {
		CommandLine string `json:"command-line"`
	}{cmd}
	if err := c.Execute(ctx, "human-monitor-command", args, &out); err != nil {
		return "", err
	}
	return out, nil
}

// Close closes the connection. Pending and later Execute calls fail with
// ErrClosed and the Events channel is closed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	err := c.conn.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
