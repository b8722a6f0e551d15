package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/internal/testenv"
)

// request is a command as the fake server sees it.
type request struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
	ID        json.RawMessage `json:"id"`
}

// fakeServer is a small QMP server. handle runs in its own goroutine per
// command and answers through send (any JSON value, or a string of raw
// JSON); it may also send events.
type fakeServer struct {
	t        *testing.T
	path     string
	greeting string
	handle   func(req request, send func(any))

	mu    sync.Mutex
	conns []net.Conn
}

const testGreeting = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "fake"}, "capabilities": ["oob"]}}`

// shortDir returns a short temporary directory for unix sockets.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func newFakeServer(t *testing.T, handle func(req request, send func(any))) *fakeServer {
	s := &fakeServer{t: t, path: filepath.Join(shortDir(t), "qmp"), greeting: testGreeting, handle: handle}
	return s
}

func (s *fakeServer) listen() {
	ln, err := net.Listen("unix", s.path)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		ln.Close()
		s.closeConns()
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
			go s.serve(conn)
		}
	}()
}

func (s *fakeServer) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func (s *fakeServer) serve(conn net.Conn) {
	var wmu sync.Mutex
	send := func(v any) {
		var b []byte
		if raw, ok := v.(string); ok {
			b = []byte(raw)
		} else {
			var err error
			if b, err = json.Marshal(v); err != nil {
				panic(err)
			}
		}
		wmu.Lock()
		defer wmu.Unlock()
		_, _ = conn.Write(append(b, "\r\n"...))
	}
	if s.greeting != "" {
		send(s.greeting)
	}
	dec := json.NewDecoder(conn)
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			return
		}
		if req.Execute == "qmp_capabilities" && s.handle != nil {
			send(map[string]any{"return": map[string]any{}, "id": req.ID})
			continue
		}
		if s.handle != nil {
			go s.handle(req, send)
		}
	}
}

func ret(req request, v any) map[string]any {
	return map[string]any{"return": v, "id": req.ID}
}

func qmpErr(req request, class, desc string) map[string]any {
	return map[string]any{"error": map[string]string{"class": class, "desc": desc}, "id": req.ID}
}

func dial(t *testing.T, s *fakeServer) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// standard answers the commands the table tests use.
func standard(req request, send func(any)) {
	switch req.Execute {
	case "query-version":
		send(ret(req, map[string]any{"qemu": map[string]int{"major": 7, "minor": 2, "micro": 22}, "package": "fake"}))
	case "echo":
		send(fmt.Sprintf(`{"return": %s, "id": %s}`, req.Arguments, req.ID))
	case "big":
		send(ret(req, strings.Repeat("x", 1<<20)))
	case "human-monitor-command":
		var args struct {
			CommandLine string `json:"command-line"`
		}
		_ = json.Unmarshal(req.Arguments, &args)
		send(ret(req, "you said "+args.CommandLine+"\r\n"))
	case "with-event":
		send(`{"event": "STOP", "timestamp": {"seconds": 1700000000, "microseconds": 5}}`)
		send(ret(req, map[string]any{}))
	default:
		send(qmpErr(req, "CommandNotFound", "The command "+req.Execute+" has not been found"))
	}
}

func TestExecute(t *testing.T) {
	s := newFakeServer(t, standard)
	s.listen()
	c := dial(t, s)
	if diff := cmp.Diff(Version{Major: 7, Minor: 2, Micro: 22, Package: "fake"}, c.Version()); diff != "" {
		t.Errorf("Version (-want +got):\n%s", diff)
	}
	type version struct {
		QEMU    struct{ Major, Minor, Micro int } `json:"qemu"`
		Package string                            `json:"package"`
	}
	tests := []struct {
		name    string
		command string
		args    any
		reply   any // a pointer to decode into, or nil
		want    any // what reply points to afterwards
		wantErr error
	}{
		{
			name: "return value", command: "query-version", reply: &version{},
			want: &version{QEMU: struct{ Major, Minor, Micro int }{7, 2, 22}, Package: "fake"},
		},
		{
			name: "arguments", command: "echo", args: map[string]any{"a": 1, "b": "two"}, reply: &map[string]any{},
			want: &map[string]any{"a": 1.0, "b": "two"},
		},
		{name: "nil reply", command: "query-version"},
		{
			name: "error reply", command: "no-such-command",
			wantErr: &Error{Command: "no-such-command", Class: "CommandNotFound", Desc: "The command no-such-command has not been found"},
		},
		{
			name: "1 MiB reply", command: "big", reply: new(string),
			want: func() *string { s := strings.Repeat("x", 1<<20); return &s }(),
		},
		{
			name: "event before the reply", command: "with-event", reply: &map[string]any{},
			want: &map[string]any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := c.Execute(ctx, tt.command, tt.args, tt.reply)
			if tt.wantErr != nil {
				var qe *Error
				if !errors.As(err, &qe) {
					t.Fatalf("Execute: %v, want a *Error", err)
				}
				if diff := cmp.Diff(tt.wantErr, qe); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if tt.reply != nil {
				if diff := cmp.Diff(tt.want, tt.reply); diff != "" {
					t.Errorf("reply (-want +got):\n%s", diff)
				}
			}
		})
	}
	t.Run("undecodable reply", func(t *testing.T) {
		var n int
		if err := c.Execute(context.Background(), "query-version", nil, &n); err == nil {
			t.Error("decoding an object into an int succeeded")
		}
	})
	t.Run("human monitor command", func(t *testing.T) {
		out, err := c.HumanMonitorCommand(context.Background(), "info version")
		if err != nil || out != "you said info version\r\n" {
			t.Errorf("HumanMonitorCommand = %q, %v", out, err)
		}
	})
	select {
	case ev := <-c.Events():
		want := Event{Name: "STOP", Time: time.Unix(1700000000, 5000)}
		if diff := cmp.Diff(want, ev); diff != "" {
			t.Errorf("event (-want +got):\n%s", diff)
		}
	case <-time.After(time.Second):
		t.Error("no event delivered")
	}
}

func TestRepliesMatchedByID(t *testing.T) {
	release := make(chan struct{})
	s := newFakeServer(t, func(req request, send func(any)) {
		if req.Execute == "slow" {
			<-release
		}
		send(ret(req, req.Execute))
	})
	s.listen()
	c := dial(t, s)
	slow := make(chan string, 1)
	go func() {
		var out string
		if err := c.Execute(context.Background(), "slow", nil, &out); err != nil {
			out = err.Error()
		}
		slow <- out
	}()
	time.Sleep(50 * time.Millisecond)
	var out string
	if err := c.Execute(context.Background(), "fast", nil, &out); err != nil || out != "fast" {
		t.Errorf("fast = %q, %v", out, err)
	}
	close(release)
	if got := <-slow; got != "slow" {
		t.Errorf("slow = %q", got)
	}
}

func TestEventsDropOldest(t *testing.T) {
	const extra = 10
	s := newFakeServer(t, func(req request, send func(any)) {
		for i := range EventBuffer + extra {
			send(fmt.Sprintf(`{"event": "E%d", "data": {"i": %d}, "timestamp": {"seconds": 1, "microseconds": 0}}`, i, i))
		}
		send(ret(req, map[string]any{}))
	})
	s.listen()
	c := dial(t, s)
	// Nobody reads events: the reader must still get to the reply.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Execute(ctx, "spam", nil, nil); err != nil {
		t.Fatalf("Execute behind a full event buffer: %v", err)
	}
	if got := c.Dropped(); got != extra {
		t.Errorf("Dropped() = %d, want %d", got, extra)
	}
	first := <-c.Events()
	if diff := cmp.Diff(Event{Name: fmt.Sprintf("E%d", extra), Data: json.RawMessage(fmt.Sprintf(`{"i": %d}`, extra)), Time: time.Unix(1, 0)}, first); diff != "" {
		t.Errorf("oldest kept event (-want +got):\n%s", diff)
	}
	if n := len(c.Events()); n != EventBuffer-1 {
		t.Errorf("%d events left, want %d", n, EventBuffer-1)
	}
}

// TestGuestPanicked: the panic latch closes at GUEST_PANICKED even when
// nobody reads events and the buffer overflowed, and keeps its data.
func TestGuestPanicked(t *testing.T) {
	s := newFakeServer(t, func(req request, send func(any)) {
		send(`{"event": "GUEST_PANICKED", "data": {"action": "pause"}, "timestamp": {"seconds": 1, "microseconds": 0}}`)
		for i := range EventBuffer + 1 {
			send(fmt.Sprintf(`{"event": "E%d", "timestamp": {"seconds": 1, "microseconds": 0}}`, i))
		}
		send(ret(req, map[string]any{}))
	})
	s.listen()
	c := dial(t, s)
	if c.PanicInfo() != nil {
		t.Fatal("PanicInfo before any event")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Execute(ctx, "cont", nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.GuestPanicked():
	case <-ctx.Done():
		t.Fatal("GuestPanicked not closed")
	}
	if got := string(c.PanicInfo()); got != `{"action": "pause"}` {
		t.Errorf("PanicInfo() = %s", got)
	}
	if c.Dropped() == 0 {
		t.Error("the GUEST_PANICKED event was not the one dropped: the test does not test the unread buffer")
	}
}

func TestShutdownReason(t *testing.T) {
	s := newFakeServer(t, func(req request, send func(any)) {
		send(`{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}, "timestamp": {"seconds": 1, "microseconds": 0}}`)
		send(ret(req, map[string]any{}))
	})
	s.listen()
	c := dial(t, s)
	if got := c.ShutdownReason(); got != "" {
		t.Errorf("ShutdownReason() before any event = %q, want empty", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Execute(ctx, "system_reset", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := c.ShutdownReason(); got != "guest-reset" {
		t.Errorf("ShutdownReason() = %q, want guest-reset", got)
	}
	if ev := <-c.Events(); ev.Name != "SHUTDOWN" {
		t.Errorf("the event still reaches Events: got %q", ev.Name)
	}
}

func TestConnectionEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(*fakeServer, *Client)
		want error
	}{
		{"server closes", func(s *fakeServer, _ *Client) { s.closeConns() }, ErrDisconnected},
		{"client closes", func(_ *fakeServer, c *Client) { c.Close() }, ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, func(req request, send func(any)) {}) // never answers
			s.listen()
			c := dial(t, s)
			errc := make(chan error, 1)
			go func() { errc <- c.Execute(context.Background(), "hang", nil, nil) }()
			time.Sleep(50 * time.Millisecond)
			tt.end(s, c)
			select {
			case err := <-errc:
				if !errors.Is(err, tt.want) {
					t.Errorf("pending Execute: %v, want %v", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("pending Execute did not return")
			}
			if err := c.Execute(context.Background(), "later", nil, nil); !errors.Is(err, tt.want) {
				t.Errorf("later Execute: %v, want %v", err, tt.want)
			}
			select {
			case _, ok := <-c.Events():
				if ok {
					t.Error("unexpected event")
				}
			case <-time.After(5 * time.Second):
				t.Error("Events not closed")
			}
			if !errors.Is(c.Err(), tt.want) {
				t.Errorf("Err() = %v, want %v", c.Err(), tt.want)
			}
		})
	}
}

func TestExecuteContext(t *testing.T) {
	s := newFakeServer(t, func(req request, send func(any)) {
		if req.Execute == "slow" {
			time.Sleep(300 * time.Millisecond)
		}
		send(ret(req, req.Execute))
	})
	s.listen()
	c := dial(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Execute(ctx, "slow", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Execute past its context: %v", err)
	}
	// The late reply is dropped and the client goes on.
	time.Sleep(400 * time.Millisecond)
	var out string
	if err := c.Execute(context.Background(), "next", nil, &out); err != nil || out != "next" {
		t.Errorf("next = %q, %v", out, err)
	}
}

func TestDial(t *testing.T) {
	tests := []struct {
		name     string
		greeting string
		handle   func(request, func(any))
		wantErr  bool
	}{
		{"ok", testGreeting, standard, false},
		{"no greeting", "", nil, true},
		{"not a greeting", `{"hello": 1}`, standard, true},
		{"not json", `<html>`, standard, true},
		{"capabilities refused", testGreeting, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, tt.handle)
			s.greeting = tt.greeting
			if tt.name == "capabilities refused" {
				s.handle = nil
			}
			s.listen()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			c, err := Dial(ctx, s.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Dial: %v, wantErr %v", err, tt.wantErr)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

func TestDialWaitsForSocket(t *testing.T) {
	s := newFakeServer(t, standard)
	go func() {
		time.Sleep(200 * time.Millisecond)
		s.listen()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.path)
	if err != nil {
		t.Fatalf("Dial before the socket exists: %v", err)
	}
	c.Close()

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, filepath.Join(shortDir(t), "absent")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial of a socket that never appears: %v", err)
	}
}

// TestRealQEMU talks to a real QEMU without a guest (-machine none).
func TestRealQEMU(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		testenv.Missing(t, "qemu-system-x86_64 not found: install qemu-system-x86 to run this test")
	}
	sock := filepath.Join(shortDir(t), "qmp")
	cmd := exec.Command(bin, "-machine", "none", "-display", "none", "-nodefaults",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock)
	if err != nil {
		t.Fatalf("Dial: %v (qemu stderr: %s)", err, stderr.String())
	}
	defer c.Close()
	if c.Version().Major < 2 {
		t.Errorf("Version() = %v", c.Version())
	}

	var v struct {
		QEMU struct{ Major, Minor, Micro int } `json:"qemu"`
	}
	if err := c.Execute(ctx, "query-version", nil, &v); err != nil {
		t.Fatalf("query-version: %v", err)
	}
	if v.QEMU.Major != c.Version().Major || v.QEMU.Minor != c.Version().Minor {
		t.Errorf("query-version %+v disagrees with the greeting %v", v.QEMU, c.Version())
	}

	out, err := c.HumanMonitorCommand(ctx, "info version")
	want := fmt.Sprintf("%d.%d.%d", v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro)
	if err != nil || !strings.HasPrefix(out, want) {
		t.Errorf("info version = %q, %v; want a line starting with %s", out, err, want)
	}

	var qe *Error
	err = c.Execute(ctx, "no-such-command", nil, nil)
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Errorf("unknown command: %v, want a CommandNotFound *Error", err)
	}
	err = c.Execute(ctx, "device_del", map[string]string{"id": "nonexistent"}, nil)
	if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" && qe.Class != "GenericError" {
		t.Errorf("device_del of a missing device: %v, want a *Error", err)
	}

	// quit: the reply and a SHUTDOWN event arrive, then QEMU closes the socket.
	if err := c.Execute(ctx, "quit", nil, nil); err != nil && !errors.Is(err, ErrDisconnected) {
		t.Fatalf("quit: %v", err)
	}
	var names []string
	for ev := range c.Events() {
		names = append(names, ev.Name)
	}
	if diff := cmp.Diff([]string{"SHUTDOWN"}, names); diff != "" {
		t.Errorf("events after quit (-want +got):\n%s", diff)
	}
	if !errors.Is(c.Err(), ErrDisconnected) {
		t.Errorf("Err() after quit = %v, want ErrDisconnected", c.Err())
	}
	if err := c.Execute(ctx, "query-version", nil, nil); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Execute after quit: %v, want ErrDisconnected", err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Error("qemu did not exit after quit")
	}
}
