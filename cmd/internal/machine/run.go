package machine

// One boot of a machine: QEMU started, its sockets accepted, watched until
// it exits.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/backdoor"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
	"github.com/distrotest/distrotest/cmd/internal/qmp"
)

// run is one QEMU process of the machine, from Start to its exit.
type run struct {
	proc       *qemu.Process
	qmp        *qmp.Client
	shellConn  net.Conn
	serialConn net.Conn
	shell      *backdoor.Shell
	started    time.Time
	sockets    []string        // files to remove when the run ends
	daemons    []*qemu.Process // virtiofsd, stopped when QEMU exits
	ram        *os.File        // the guest's RAM when QEMU maps the runner's (qemu.Config.MemoryFile)

	readyMu sync.Mutex // serialises WaitReady

	rebooting atomic.Bool // Disconnect was called: QEMU may exit (-no-reboot)
	ready     atomic.Bool

	// restored: restored from a snapshot (-no-reboot); when the guest
	// reboots and the machine allows reboots, its next boot is a cold one
	// in a new QEMU (coldReboot, set before ended closes).
	restored   bool
	coldReboot atomic.Bool

	serialEnd chan struct{} // closed when the serial console reached EOF
	panicked  chan struct{} // closed when the guest kernel panicked (pvpanic's GUEST_PANICKED)
	ended     chan struct{} // closed once the run is cleaned up after QEMU exited
}

// startTimeout bounds how long QEMU may take to connect its sockets.
const startTimeout = 60 * time.Second

// Start launches QEMU and returns once it runs and its sockets are
// connected; it does not wait for the guest. Starting a running machine
// does nothing.
func (m *Machine) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("machine %s: closed", m.cfg.Name)
	}
	if m.run != nil {
		if !m.run.proc.Exited() {
			return nil
		}
		<-m.run.ended
		m.run = nil
	}
	r, err := m.boot(ctx)
	if err != nil {
		return fmt.Errorf("machine %s: starting: %w", m.cfg.Name, err)
	}
	m.run = r
	return nil
}

// start starts QEMU with cfg and connects to it; the caller watches the
// run (go m.watch(r)).
//
// When cfg's RAM is the runner's (MemoryFile), ram is it (a new memfd
// when nil); the run owns ram from the call on, also when it fails.
func (m *Machine) start(ctx context.Context, cfg qemu.Config, ram *os.File) (_ *run, err error) {
	var files []*os.File
	if cfg.MemoryFile != "" {
		if ram == nil {
			if ram, err = newRAM(m.cfg.Name, int64(cfg.Memory())<<20); err != nil {
				return nil, err
			}
		}
		files = append(files, ram)
		cfg.MemoryFile = qemu.FD(0)
	}
	defer func() {
		if err != nil && ram != nil {
			ram.Close()
		}
	}()
	for _, p := range m.socketPaths() {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	shellLn, err := net.Listen("unix", cfg.ShellSocket)
	if err != nil {
		return nil, err
	}
	defer shellLn.Close()
	serialLn, err := net.Listen("unix", cfg.SerialSocket)
	if err != nil {
		return nil, err
	}
	defer serialLn.Close()

	daemons, err := m.startDaemons(ctx)
	if err != nil {
		return nil, err
	}
	args := qemu.Cmdline(cfg, m.cfg.Host)
	m.log.Info("starting qemu", "accel", m.cfg.Host.Accel, "cmd", m.cfg.Host.Binary+" "+qemu.Quote(args))
	proc, err := qemu.Start(m.cfg.Host.Binary, args, m.stateDir, m.log.With("source", "qemu"), files...)
	if err != nil {
		_ = stopDaemons(daemons)
		return nil, err
	}
	r := &run{proc: proc, daemons: daemons, ram: ram, started: time.Now(), sockets: m.socketPaths(),
		serialEnd: make(chan struct{}), panicked: make(chan struct{}), ended: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			_ = proc.Kill()
			_ = stopDaemons(daemons)
			r.close()
			r.removeSockets()
		}
	}()

	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	sctx, stop := r.bind(sctx)
	defer stop()
	if r.serialConn, err = accept(sctx, serialLn); err != nil {
		return nil, m.startErr(r, "waiting for qemu to connect the serial console", err)
	}
	if r.shellConn, err = accept(sctx, shellLn); err != nil {
		return nil, m.startErr(r, "waiting for qemu to connect the shell", err)
	}
	if r.qmp, err = qmp.Dial(sctx, cfg.QMPSocket); err != nil {
		return nil, m.startErr(r, "connecting to qmp", err)
	}
	m.console.reset()
	go m.readSerial(r)
	go m.watchPanic(r)
	for _, d := range daemons {
		go m.watchDaemon(r, d)
	}
	r.shell = backdoor.New(r.shellConn, m.log.With("source", "shell"))
	if cfg.ShellPort != "" {
		r.shell.Encoding = backdoor.Raw // flow-controlled and 8-bit clean
	} else {
		r.shell.Encoding = backdoor.Base64 // a terminal a command may reconfigure
	}
	m.log.Info("qemu running", "pid", proc.Pid())
	ok = true
	return r, nil
}

func (m *Machine) startErr(r *run, doing string, err error) error {
	if r.proc.Exited() {
		msg := fmt.Sprintf("qemu exited (%s) while %s", r.proc.Status(), doing)
		if out := r.proc.Output(); out != "" {
			msg += ": " + out
		}
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// accept accepts one connection on ln, bounded by ctx.
func accept(ctx context.Context, ln net.Listener) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		ln.Close()
		if r := <-ch; r.c != nil {
			r.c.Close()
		}
		return nil, context.Cause(ctx)
	}
}

// errQEMUExited is the cause of contexts that end because QEMU exited.
var errQEMUExited = errors.New("qemu exited")

// ErrGuestPanicked is the error of a call that a guest kernel panic
// interrupted, as QEMU's pvpanic device reported it (QMP GUEST_PANICKED).
// A guest without the pvpanic driver ends QEMU through panic=-1 instead,
// and the call fails as for any end of QEMU.
var ErrGuestPanicked = errors.New("the guest kernel panicked")

// watchPanic ends QEMU when the guest kernel panics: QEMU has paused the
// guest (-action panic=pause) and the console already has the panic's
// text, printed before the kernel's panic notifiers run. Pending calls
// fail with ErrGuestPanicked.
func (m *Machine) watchPanic(r *run) {
	select {
	case <-r.qmp.GuestPanicked():
	case <-r.proc.Done():
		return
	}
	close(r.panicked)
	m.log.Warn("the guest kernel panicked (QMP GUEST_PANICKED from the pvpanic device): stopping qemu; the panic is in the console log",
		"event", string(r.qmp.PanicInfo()))
	if err := r.proc.Kill(); err != nil {
		m.log.Warn("stopping qemu after the guest's panic", "err", err)
	}
}

// hasPanicked reports whether the guest kernel of r panicked.
func (r *run) hasPanicked() bool {
	select {
	case <-r.panicked:
		return true
	default:
		return false
	}
}

// bind returns a context that also ends when QEMU exits.
func (r *run) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-r.proc.Done():
			cancel(errQEMUExited)
		case <-r.panicked:
			cancel(ErrGuestPanicked)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}

// close releases the run's connections.
func (r *run) close() {
	if r.shell != nil {
		r.shell.Close()
	}
	if r.qmp != nil {
		r.qmp.Close()
	}
	if r.shellConn != nil {
		r.shellConn.Close()
	}
	if r.serialConn != nil {
		r.serialConn.Close()
	}
	if r.ram != nil {
		r.ram.Close()
	}
}

func (r *run) removeSockets() {
	for _, p := range r.sockets {
		_ = os.Remove(p)
	}
}

// watch cleans up after QEMU exits, however that happens.
func (m *Machine) watch(r *run) {
	<-r.proc.Done()
	r.ready.Store(false)
	m.log.Info("qemu exited", "status", r.proc.Status(), "ran", time.Since(r.started).Round(time.Millisecond))
	// Each virtiofsd ends with its QEMU connection; kill them in case
	// one hangs.
	if err := stopDaemons(r.daemons); err != nil {
		m.log.Warn("stopping virtiofsd", "err", err)
	}
	// The serial reader ends at EOF, which QEMU's exit causes; give it a
	// moment so that console.log has the guest's last words.
	select {
	case <-r.serialEnd:
	case <-time.After(2 * time.Second):
	}
	r.close()
	r.removeSockets()
	cold := r.restored && r.qmp != nil && r.qmp.ShutdownReason() == "guest-reset" && !m.noReboot.Load()
	if cold {
		r.coldReboot.Store(true)
	}
	// An uninstrumented guest has no shell to say when its boot is over:
	// a kernel panic in its first boot is taken for one while booting
	// (TCG on a loaded host, as panickedBooting) and booted once more.
	again := !cold && m.manifest.Uninstrumented != "" && m.panickedBooting()
	close(r.ended)
	if again {
		m.log.Warn("the guest kernel of this uninstrumented image panicked in its first boot: booting it once more (the panic is in the console log)")
		if err := m.Start(context.Background()); err != nil {
			m.log.Warn("booting again after the guest's panic", "err", err)
		}
		return
	}
	if cold {
		// The guest of a restored machine rebooted: QEMU ended
		// (-no-reboot); boot the machine cold from its disk, as a reboot
		// in place would have.
		m.log.Info("the restored guest rebooted: booting it cold")
		if err := m.Start(context.Background()); err != nil {
			m.log.Warn("booting cold after the restored guest's reboot", "err", err)
		}
	}
}

// watchDaemon warns when a virtiofsd dies while its QEMU runs: the guest's
// file system on it stops answering.
func (m *Machine) watchDaemon(r *run, d *qemu.Process) {
	select {
	case <-d.Done():
		if !r.proc.Exited() {
			select {
			case <-r.proc.Done():
			case <-time.After(10 * time.Second): // QEMU quitting closes the socket before it exits
				m.log.Warn("virtiofsd exited while qemu runs: its share no longer answers", "status", d.Status(), "output", d.Output())
			}
		}
	case <-r.proc.Done():
	}
}

// current returns the running (or just exited) run, or nil.
func (m *Machine) current() *run {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.run
}

// running returns the current run if QEMU is running.
func (m *Machine) running() (*run, error) {
	r := m.current()
	if r == nil || r.proc.Exited() {
		return nil, fmt.Errorf("machine %s is not running", m.cfg.Name)
	}
	return r, nil
}

// exitedErr is the error of a call that QEMU's exit interrupted.
func (m *Machine) exitedErr(r *run, doing string) error {
	if r.hasPanicked() {
		return fmt.Errorf("machine %s: %w while %s (QEMU's pvpanic device reported it; qemu was stopped): %s",
			m.cfg.Name, ErrGuestPanicked, doing, panicLine(m.ConsoleLog()))
	}
	msg := fmt.Sprintf("machine %s: qemu exited (%s) while %s", m.cfg.Name, r.proc.Status(), doing)
	if out := r.proc.Output(); out != "" {
		msg += ": " + lastLine(out)
	}
	return errors.New(msg)
}

// rebootedCold reports whether r ended because its restored guest
// rebooted, after which the machine boots cold in a new QEMU; it waits for
// the end of r, which diedDuring saw.
func rebootedCold(r *run) bool {
	if !r.restored {
		return false
	}
	<-r.ended
	return r.coldReboot.Load()
}

// diedDuring reports whether QEMU exited (or exits within a short grace,
// the connection may drop before the process is reaped) after err.
func diedDuring(r *run, err error) bool {
	if r.proc.Exited() {
		return true
	}
	if r.hasPanicked() || errors.Is(err, backdoor.ErrDisconnected) || errors.Is(err, qmp.ErrDisconnected) || errors.Is(err, errQEMUExited) {
		select {
		case <-r.proc.Done():
			return true
		case <-time.After(5 * time.Second):
		}
	}
	return false
}

// IsUp reports whether QEMU runs and the guest's shell is connected.
func (m *Machine) IsUp() bool {
	r := m.current()
	return r != nil && !r.proc.Exited() && r.ready.Load()
}

// IsRunning reports whether QEMU runs.
func (m *Machine) IsRunning() bool {
	r := m.current()
	return r != nil && !r.proc.Exited()
}
