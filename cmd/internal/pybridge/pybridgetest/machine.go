// Package pybridgetest provides a machine for tests of the Python bridge and
// the runner that needs no VM: its guest is a local bash speaking the real
// backdoor protocol (backdoor/backdoortest), and its commands go through the
// real host side, backdoor.Shell, as machine.Machine's do.
//
// Machine implements pybridge.Machine (and Close/NICSocket, like
// machine.Machine) with the same semantics where they can be had locally:
// Start boots the fake guest and waits for its shell; commands run as the
// backdoor runs them (a subshell with `set -euo pipefail`, stdin from
// /dev/null, in /tmp, stdout through a file so that a background process
// does not hang the call, a timeout kills the command's process group and
// returns 124), the guest's stderr is the "serial console", Execute starts a
// stopped machine, and copies go through the host file system. Monitor
// commands, keys, port forwards and link changes are recorded for tests to
// inspect. QMP knows query-status (other commands fail with
// CommandNotFound) and emits RESUME on start, SHUTDOWN on stop and what
// AddQMPEvent adds.
package pybridgetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/backdoor"
	"github.com/distrotest/distrotest/cmd/internal/backdoor/backdoortest"
	"github.com/distrotest/distrotest/cmd/internal/qmp"
)

// Machine is a fake machine backed by a local bash.
type Machine struct {
	name string
	dir  string   // working directory of commands
	env  []string // added to the commands' environment

	mu       sync.Mutex
	up       bool
	closed   bool
	starts   int
	console  bytes.Buffer
	monitor  []string
	keys     []string
	forwards [][2]int
	linksUp  bool
	stopped  chan struct{} // closed when the machine stops
	sink     io.Writer     // also receives the console, like machine.Config.Console
	events   chan qmp.Event

	allowReboot bool
	disconnects int

	startMu sync.Mutex          // one Start at a time
	guest   *backdoortest.Guest // the running guest
	shell   *backdoor.Shell     // its shell, ready
}

// New returns a stopped machine whose commands run in dir with env added
// to their environment.
func New(name, dir string, env ...string) *Machine {
	return &Machine{name: name, dir: dir, env: env, linksUp: true, stopped: closedChan(), events: make(chan qmp.Event, qmp.EventBuffer)}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// SetConsole makes w receive everything printed on the console from now
// on, like machine.Config.Console.
func (m *Machine) SetConsole(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sink = w
}

// Name returns the machine's name.
func (m *Machine) Name() string { return m.name }

// Start boots the machine: it starts the fake guest and waits for its
// shell, and its console says so.
func (m *Machine) Start(ctx context.Context) error {
	m.startMu.Lock()
	defer m.startMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("machine %s: closed", m.name)
	}
	if m.up {
		m.mu.Unlock()
		return nil
	}
	m.starts++
	m.console.Reset()
	m.appendConsoleLocked(fmt.Sprintf("boot %d of %s\r\nSpawning backdoor root shell...\r\n", m.starts, m.name))
	m.mu.Unlock()

	// The guest writes its stderr to the console (m.mu): start it unlocked.
	tmp, err := os.MkdirTemp("", "pybridgetest-guest-")
	if err != nil {
		return fmt.Errorf("machine %s: %w", m.name, err)
	}
	g, err := backdoortest.Start(backdoortest.Options{TmpDir: tmp, Dir: m.dir, Env: m.env, Console: consoleWriter{m}})
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("machine %s: %w", m.name, err)
	}
	sh := backdoor.New(g.Conn, nil)
	sh.Encoding = backdoor.Raw
	if err := sh.WaitReady(ctx); err != nil {
		sh.Close()
		g.Close()
		os.RemoveAll(tmp)
		return fmt.Errorf("machine %s: waiting for the shell: %w", m.name, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.guest, m.shell = g, sh
	m.up = true
	m.addEventLocked("RESUME", nil)
	m.stopped = make(chan struct{})
	return nil
}

// consoleWriter appends the guest's stderr to the machine's console.
type consoleWriter struct{ m *Machine }

func (w consoleWriter) Write(p []byte) (int, error) {
	w.m.AppendConsole(string(p))
	return len(p), nil
}

// Starts returns how many times the machine was started.
func (m *Machine) Starts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.starts
}

// WaitForShell starts the machine if needed.
func (m *Machine) WaitForShell(ctx context.Context) error { return m.Start(ctx) }

// IsUp reports whether the machine runs.
func (m *Machine) IsUp() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up
}

// Execute runs command through the backdoor shell (starting the machine
// first). The command "poweroff" stops the machine.
func (m *Machine) Execute(ctx context.Context, command string, timeout time.Duration) (int, []byte, error) {
	if err := m.Start(ctx); err != nil {
		return 0, nil, err
	}
	if strings.TrimSpace(command) == "poweroff" {
		m.stop("powered off")
		return 0, nil, nil
	}
	m.mu.Lock()
	sh := m.shell
	m.mu.Unlock()
	if sh == nil {
		return 0, nil, fmt.Errorf("machine %s is not running", m.name)
	}
	res, err := sh.Run(ctx, command, timeout)
	if err != nil {
		return 0, nil, fmt.Errorf("machine %s: running %q: %w", m.name, command, err)
	}
	return res.Status, res.Stdout, nil
}

func (m *Machine) stop(why string) {
	m.mu.Lock()
	g, sh := m.guest, m.shell
	m.guest, m.shell = nil, nil
	m.mu.Unlock()
	if g != nil {
		// outside the lock: the guest's last stderr reaches the console
		sh.Close()
		g.Close()
		os.RemoveAll(g.TmpDir)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.up {
		m.up = false
		m.addEventLocked("SHUTDOWN", []byte(`{"guest":true,"reason":"guest-shutdown"}`))
		m.appendConsoleLocked(why + "\n")
		close(m.stopped)
	}
}

// Shutdown stops the machine.
func (m *Machine) Shutdown(ctx context.Context) error {
	m.stop("powered off")
	return nil
}

// Reboot logs a reboot on the console; the machine stays up.
func (m *Machine) Reboot(ctx context.Context) error {
	if err := m.Start(ctx); err != nil {
		return err
	}
	m.AppendConsole("reboot: Restarting system\nSpawning backdoor root shell...\n")
	return nil
}

// Crash stops the machine at once.
func (m *Machine) Crash(ctx context.Context) error {
	m.stop("crashed")
	return nil
}

// WaitForShutdown waits until the machine is stopped.
func (m *Machine) WaitForShutdown(ctx context.Context) error {
	m.mu.Lock()
	stopped := m.stopped
	m.mu.Unlock()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("machine %s: waiting for shutdown: %w", m.name, ctx.Err())
	}
}

// AppendConsole adds text to the serial console.
func (m *Machine) AppendConsole(text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appendConsoleLocked(text)
}

func (m *Machine) appendConsoleLocked(text string) {
	m.console.WriteString(text)
	if m.sink != nil {
		_, _ = io.WriteString(m.sink, text)
	}
}

// ConsoleLog returns the console since the last start.
func (m *Machine) ConsoleLog() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.console.String()
}

// Screenshot writes a small PNG.
func (m *Machine) Screenshot(ctx context.Context, path string) error {
	img := image.NewRGBA(image.Rect(0, 0, 4, 3))
	img.Set(1, 1, color.White)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// SendMonitorCommand records command; "info status" answers like QEMU.
func (m *Machine) SendMonitorCommand(ctx context.Context, command string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.monitor = append(m.monitor, command)
	if command == "info status" {
		if m.up {
			return "VM status: running\r\n", nil
		}
		return "VM status: shutdown\r\n", nil
	}
	return "", nil
}

// Monitor returns the monitor commands received.
func (m *Machine) Monitor() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.monitor...)
}

// SendKey records key.
func (m *Machine) SendKey(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, key)
	return nil
}

// Keys returns the keys pressed.
func (m *Machine) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.keys...)
}

// SendConsole echoes chars to the console, like a terminal would.
func (m *Machine) SendConsole(ctx context.Context, chars string) error {
	m.AppendConsole(chars)
	return nil
}

// ForwardPort records the forward.
func (m *Machine) ForwardPort(ctx context.Context, hostPort, guestPort int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forwards = append(m.forwards, [2]int{hostPort, guestPort})
	return nil
}

// Forwards returns the port forwards asked for.
func (m *Machine) Forwards() [][2]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][2]int(nil), m.forwards...)
}

// CopyFromHost copies src to dst (both host paths here).
func (m *Machine) CopyFromHost(ctx context.Context, src, dst string) error {
	if !filepath.IsAbs(dst) {
		return fmt.Errorf("machine %s: copying %s to %s: the guest path must be absolute", m.name, src, dst)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", "--", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("machine %s: copying %s to %s: %w: %s", m.name, src, dst, err, out)
	}
	return nil
}

// CopyFromMachine copies src into dstDir.
func (m *Machine) CopyFromMachine(ctx context.Context, src, dstDir string) error {
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", "--", src, dstDir+"/").CombinedOutput(); err != nil {
		return fmt.Errorf("machine %s: copying %s to %s: %w: %s", m.name, src, dstDir, err, out)
	}
	return nil
}

// SetLinks records the link state.
func (m *Machine) SetLinks(ctx context.Context, up bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.linksUp = up
	return nil
}

// LinksUp reports the link state.
func (m *Machine) LinksUp() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.linksUp
}

// NICSocket returns a socket path for vlan (nothing listens on it).
func (m *Machine) NICSocket(vlan int) string {
	return filepath.Join(m.dir, fmt.Sprintf("%s.vlan%d", m.name, vlan))
}

// Close stops the machine for good.
func (m *Machine) Close() error {
	m.stop("closed")
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

// Closed reports whether Close was called.
func (m *Machine) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// StateDir returns the machine's working directory (it has no disk).
func (m *Machine) StateDir() string { return m.dir }

// IsRunning reports whether the machine runs (it has no separate shell).
func (m *Machine) IsRunning() bool { return m.IsUp() }

// QMP answers query-status; other commands fail like QEMU's unknown ones.
func (m *Machine) QMP(ctx context.Context, command string, args, reply any) error {
	if command != "query-status" {
		return &qmp.Error{Command: command, Class: "CommandNotFound", Desc: fmt.Sprintf("The command %s has not been found", command)}
	}
	status := "shutdown"
	if m.IsUp() {
		status = "running"
	}
	if r, ok := reply.(*json.RawMessage); ok {
		*r = json.RawMessage(fmt.Sprintf(`{"status":%q,"running":%t}`, status, status == "running"))
	}
	return nil
}

// AddQMPEvent queues a QMP event, as if QEMU had sent it.
func (m *Machine) AddQMPEvent(name string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addEventLocked(name, data)
}

func (m *Machine) addEventLocked(name string, data []byte) {
	select {
	case m.events <- qmp.Event{Name: name, Data: data, Time: time.Now()}:
	default: // full: dropped, like qmp.Client drops the oldest
	}
}

// NextQMPEvent returns the oldest queued event, waiting until ctx's
// deadline.
func (m *Machine) NextQMPEvent(ctx context.Context) (qmp.Event, bool, error) {
	select {
	case ev := <-m.events:
		return ev, true, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return qmp.Event{}, false, nil
		}
		return qmp.Event{}, false, ctx.Err()
	}
}

// SetAllowReboot records the choice; AllowReboot returns it.
func (m *Machine) SetAllowReboot(allow bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.allowReboot = allow
}

// AllowReboot reports the last SetAllowReboot.
func (m *Machine) AllowReboot() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.allowReboot
}

// Disconnect counts the calls; the local "guest" has no shell to lose.
func (m *Machine) Disconnect() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.disconnects++
}

// Disconnects returns how many times Disconnect was called.
func (m *Machine) Disconnects() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.disconnects
}
