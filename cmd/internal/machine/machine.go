package machine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/backdoor"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
	"github.com/distrotest/distrotest/cmd/internal/qmp"
)

// Share is a host directory mounted in the guest over 9p or virtiofs (the
// machine's ShareTransport).
type Share struct {
	Tag      string // mount tag (letters, digits, '-', '_'; at most 31)
	Source   string // host directory
	Target   string // absolute mount point in the guest
	ReadOnly bool
}

// NIC is the machine's network card on a VLAN.
type NIC struct {
	VLAN         int
	SwitchSocket string // the vlan.Switch's socket
}

// Config describes one machine.
type Config struct {
	// Name is the machine's name (and the guest's host name).
	Name string
	// N is the node number (1-based, machines sorted by name); it makes
	// the VLAN MAC and IP addresses.
	N int
	// ImageDir is the prepared image directory; Manifest is its manifest
	// (loaded from ImageDir when nil).
	ImageDir string
	Manifest *manifest.Manifest
	// StateDir holds the disk overlay; it is private to the machine: New
	// removes and recreates it (mode 0700) unless KeepState, and Close
	// removes it unless KeepState. Empty means a temporary directory.
	StateDir string
	// SocketDir holds the unix sockets; it must be short (socket paths are
	// limited to 108 bytes). Empty means a private temporary directory
	// under /tmp, removed by Close.
	SocketDir string
	// OutDir receives <Name>/console.log; empty means no console file.
	OutDir string
	// MemoryMiB and CPUs size the guest (zero: qemu.DefaultMemoryMiB,
	// qemu.DefaultCPUs).
	MemoryMiB, CPUs int
	// DiskSize grows the overlay beyond the image's disk (zero: same
	// size); the guest then grows its root partition and file system at
	// boot.
	DiskSize DiskSize
	// Internet gives the guest a default route through QEMU's user-mode
	// NAT; without it only the test's VLANs are reachable.
	Internet bool
	// CPU overrides QEMU's -cpu model (see qemu.Config.CPU).
	CPU string
	// ShellPort puts the guest's shell on the virtio serial port of this
	// name instead of the virtconsole hvc0 (see qemu.Config.ShellPort).
	// Empty means what the image's manifest says: qemu.ShellPortName for
	// manifest.BackdoorVirtioPort, hvc0 otherwise.
	ShellPort string
	// Host is the result of qemu.Probe.
	Host qemu.Host
	// Shares are host directories to mount in the guest.
	Shares []Share
	// NixStore, when not empty, is exported read-only and mounted over
	// /nix/store in the guest.
	NixStore string
	// NixRegistration, when not empty, is a file in NixStore in the format
	// of `nix-store --dump-db` (nixpkgs' closureInfo "registration"); the
	// guest loads it into its Nix database at boot (nix-store --load-db),
	// when it has Nix.
	NixRegistration string
	// ShareTransport carries the store and the shares: qemu.Transport9P
	// (also when empty) or qemu.TransportVirtiofs, which starts one
	// Virtiofsd per directory before QEMU, stopped when QEMU exits.
	ShareTransport string
	// Virtiofsd is the virtiofsd binary (the Rust one, which runs
	// unprivileged with --sandbox=none); needed for virtiofs.
	Virtiofsd string
	// SELinuxEnforcing boots SELinux enforcing (enforcing=1 after the
	// image's enforcing=0); see guest.Identity.
	SELinuxEnforcing bool
	// NICs are the machine's VLAN network cards.
	NICs []NIC
	// Hosts are all nodes of the test, for the guest's /etc/hosts.
	Hosts []guest.Host
	// ExtraKernelParams are appended to the kernel command line.
	ExtraKernelParams []string
	// ExtraQEMUArgs are appended to QEMU's command line.
	ExtraQEMUArgs []string
	// KeepState keeps the state directory: an existing overlay is reused
	// and Close does not remove it.
	KeepState bool
	// Logger receives the machine's log (nil discards).
	Logger *slog.Logger
	// Console, when not nil, also receives the serial console output.
	Console io.Writer
}

// maxSocketPath is the usable length of a unix socket path (sun_path is 108
// bytes with the terminating NUL).
const maxSocketPath = 107

// Machine is one virtual machine. Its methods may be called from several
// goroutines.
type Machine struct {
	cfg          Config
	log          *slog.Logger
	manifest     *manifest.Manifest
	stateDir     string
	ownStateDir  bool
	sockDir      string
	ownSockDir   bool
	disk         string
	kernelParams []string
	consoleFile  *os.File
	console      *consoleBuffer

	mu     sync.Mutex // guards run and closed; held by Start
	run    *run
	closed bool

	noReboot atomic.Bool // see SetAllowReboot
}

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

	readyMu sync.Mutex // serialises WaitReady

	rebooting atomic.Bool // Disconnect was called: QEMU may exit (-no-reboot)
	ready     atomic.Bool

	serialEnd chan struct{} // closed when the serial console reached EOF
	ended     chan struct{} // closed once the run is cleaned up after QEMU exited
}

// New checks cfg, creates the state directory and the disk overlay, and
// opens the console log. It does not start QEMU.
func New(cfg Config) (*Machine, error) {
	if cfg.Name == "" {
		return nil, errors.New("creating machine: empty name")
	}
	fail := func(err error) (*Machine, error) { return nil, fmt.Errorf("creating machine %s: %w", cfg.Name, err) }
	if cfg.Host.Binary == "" {
		return fail(errors.New("no QEMU binary (run qemu.Probe)"))
	}
	switch cfg.ShareTransport {
	case "", qemu.Transport9P:
	case qemu.TransportVirtiofs:
		if cfg.Virtiofsd == "" && (cfg.NixStore != "" || len(cfg.Shares) > 0) {
			return fail(errors.New("virtiofs shares need virtiofsd: none given (scripts/install-virtiofsd.sh installs one)"))
		}
	default:
		return fail(fmt.Errorf("share transport %q: want %s or %s", cfg.ShareTransport, qemu.Transport9P, qemu.TransportVirtiofs))
	}
	if cfg.NixRegistration != "" && cfg.NixStore == "" {
		return fail(errors.New("a Nix registration needs the Nix store share"))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Machine{cfg: cfg, log: log.With("machine", cfg.Name), console: newConsoleBuffer()}
	ok := false
	defer func() {
		if !ok {
			if m.consoleFile != nil {
				m.consoleFile.Close()
			}
			m.removeDirs()
		}
	}()

	var err error
	m.manifest = cfg.Manifest
	if m.manifest == nil {
		if m.manifest, err = manifest.Load(cfg.ImageDir); err != nil {
			return fail(err)
		}
	}
	imageDir, err := filepath.Abs(cfg.ImageDir)
	if err != nil {
		return fail(err)
	}
	if m.kernelParams, err = kernelParams(cfg, m.manifest); err != nil {
		return fail(err)
	}

	if cfg.StateDir == "" {
		if m.stateDir, err = os.MkdirTemp("", "distrotest-"+cfg.Name+"-"); err != nil {
			return fail(err)
		}
		m.ownStateDir = true
	} else {
		if m.stateDir, err = filepath.Abs(cfg.StateDir); err != nil {
			return fail(err)
		}
		if !cfg.KeepState {
			if err := os.RemoveAll(m.stateDir); err != nil {
				return fail(fmt.Errorf("removing old state: %w", err))
			}
		}
		if err := os.MkdirAll(m.stateDir, 0o700); err != nil {
			return fail(err)
		}
		if err := os.Chmod(m.stateDir, 0o700); err != nil {
			return fail(err)
		}
	}

	if cfg.SocketDir == "" {
		if m.sockDir, err = os.MkdirTemp("/tmp", "dt-"); err != nil {
			return fail(err)
		}
		m.ownSockDir = true
	} else {
		if m.sockDir, err = filepath.Abs(cfg.SocketDir); err != nil {
			return fail(err)
		}
		if err := os.MkdirAll(m.sockDir, 0o700); err != nil {
			return fail(err)
		}
	}
	for _, p := range m.socketPaths() {
		if len(p) > maxSocketPath {
			return fail(fmt.Errorf("socket path %s is longer than %d bytes (use a shorter socket directory or machine name)", p, maxSocketPath))
		}
	}

	m.disk = filepath.Join(m.stateDir, "disk.qcow2")
	if _, err := os.Stat(m.disk); err != nil || !cfg.KeepState {
		base := manifest.Path(imageDir, m.manifest.Disk)
		if err := CreateOverlay(context.Background(), cfg.Host.Img, base, m.manifest.DiskFormat, m.disk, cfg.DiskSize); err != nil {
			return fail(err)
		}
	} else {
		m.log.Info("reusing kept disk state", "disk", m.disk)
	}

	if cfg.OutDir != "" {
		dir := filepath.Join(cfg.OutDir, cfg.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
		if m.consoleFile, err = os.Create(filepath.Join(dir, "console.log")); err != nil {
			return fail(err)
		}
	}
	ok = true
	return m, nil
}

// kernelParams is the machine's kernel command line: the image's
// parameters, guest.RuntimeParams, the machine's identity, then the extra
// ones.
func kernelParams(cfg Config, man *manifest.Manifest) ([]string, error) {
	id := guest.Identity{Hostname: cfg.Name, NixStore: cfg.NixStore != "", N: cfg.N, Hosts: cfg.Hosts,
		Internet: cfg.Internet, GrowFS: cfg.DiskSize.IsSet(),
		Virtiofs: cfg.ShareTransport == qemu.TransportVirtiofs, NixRegistration: guestStorePath(cfg.NixStore, cfg.NixRegistration),
		SELinuxEnforcing: cfg.SELinuxEnforcing}
	for _, s := range cfg.Shares {
		id.Shares = append(id.Shares, guest.Share{Tag: s.Tag, Target: s.Target, ReadOnly: s.ReadOnly})
	}
	for _, n := range cfg.NICs {
		id.VLANs = append(id.VLANs, n.VLAN)
	}
	ident, err := guest.KernelParams(id)
	if err != nil {
		return nil, err
	}
	out := append([]string(nil), man.KernelParams...)
	out = append(out, guest.RuntimeParams...)
	out = append(out, ident...)
	return append(out, cfg.ExtraKernelParams...), nil
}

// guestStorePath maps a file in the host's store directory to its path
// under the guest's /nix/store ("" for "").
func guestStorePath(store, file string) string {
	if file == "" {
		return ""
	}
	rel, err := filepath.Rel(store, file)
	if err != nil || strings.HasPrefix(rel, "..") {
		return file // New's caller checked it; keep it visible in errors
	}
	return path.Join("/nix/store", filepath.ToSlash(rel))
}

// Name returns the machine's name.
func (m *Machine) Name() string { return m.cfg.Name }

// StateDir returns the machine's state directory.
func (m *Machine) StateDir() string { return m.stateDir }

func (m *Machine) sock(kind string) string {
	return filepath.Join(m.sockDir, m.cfg.Name+"."+kind)
}

// NICSocket returns the unix socket the machine's NIC on vlan receives
// frames on (QEMU binds it): the path to register with the VLAN switch
// (vlan.Switch.AddPeer).
func (m *Machine) NICSocket(vlan int) string {
	return m.sock(fmt.Sprintf("vlan%d", vlan))
}

func (m *Machine) socketPaths() []string {
	p := []string{m.sock("qmp"), m.sock("shell"), m.sock("serial")}
	for _, n := range m.cfg.NICs {
		p = append(p, m.NICSocket(n.VLAN))
	}
	for _, d := range m.daemons() {
		p = append(p, d.Socket, d.Socket+".pid") // virtiofsd writes SOCKET.pid
	}
	return p
}

// QEMUConfig returns the qemu.Config Start uses.
func (m *Machine) QEMUConfig() qemu.Config {
	man := m.manifest
	imageDir, _ := filepath.Abs(m.cfg.ImageDir)
	c := qemu.Config{
		Name:         m.cfg.Name,
		System:       man.System,
		MemoryMiB:    m.cfg.MemoryMiB,
		CPUs:         m.cfg.CPUs,
		CPU:          m.cfg.CPU,
		Kernel:       manifest.Path(imageDir, man.Kernel),
		Initrd:       manifest.Path(imageDir, man.Initrd),
		KernelParams: m.kernelParams,
		Disk:         m.disk,
		DiskFormat:   "qcow2",
		QMPSocket:    m.sock("qmp"),
		ShellSocket:  m.sock("shell"),
		SerialSocket: m.sock("serial"),
		ShellPort:    m.shellPort(),
		NoReboot:     m.noReboot.Load(),
		ExtraArgs:    m.cfg.ExtraQEMUArgs,
	}
	if m.cfg.NixStore != "" {
		c.Shares = append(c.Shares, qemu.Share{Tag: qemu.StoreTag, Path: m.cfg.NixStore, ReadOnly: true})
	}
	for _, s := range m.cfg.Shares {
		c.Shares = append(c.Shares, qemu.Share{Tag: s.Tag, Path: s.Source, ReadOnly: s.ReadOnly})
	}
	for i, d := range m.daemons() {
		c.Shares[i].Transport, c.Shares[i].Socket = qemu.TransportVirtiofs, d.Socket
	}
	for _, n := range m.cfg.NICs {
		c.NICs = append(c.NICs, qemu.NIC{
			VLAN: n.VLAN, MAC: guest.MAC(n.VLAN, m.cfg.N),
			Socket: m.NICSocket(n.VLAN), SwitchSocket: n.SwitchSocket,
		})
	}
	return c
}

// shellPort is the virtio serial port of the guest's shell, "" for hvc0.
func (m *Machine) shellPort() string {
	if m.cfg.ShellPort != "" {
		return m.cfg.ShellPort
	}
	if m.manifest.BackdoorTransport() == manifest.BackdoorVirtioPort {
		return qemu.ShellPortName
	}
	return ""
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
	r, err := m.start(ctx)
	if err != nil {
		return fmt.Errorf("machine %s: starting: %w", m.cfg.Name, err)
	}
	m.run = r
	go m.watch(r)
	return nil
}

func (m *Machine) start(ctx context.Context) (*run, error) {
	for _, p := range m.socketPaths() {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	cfg := m.QEMUConfig()
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
	proc, err := qemu.Start(m.cfg.Host.Binary, args, m.stateDir, m.log.With("source", "qemu"))
	if err != nil {
		_ = stopDaemons(daemons)
		return nil, err
	}
	r := &run{proc: proc, daemons: daemons, started: time.Now(), sockets: m.socketPaths(), serialEnd: make(chan struct{}), ended: make(chan struct{})}
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

// bind returns a context that also ends when QEMU exits.
func (r *run) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-r.proc.Done():
			cancel(errQEMUExited)
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
	close(r.ended)
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
	msg := fmt.Sprintf("machine %s: qemu exited (%s) while %s", m.cfg.Name, r.proc.Status(), doing)
	if out := r.proc.Output(); out != "" {
		msg += ": " + lastLine(out)
	}
	return errors.New(msg)
}

// diedDuring reports whether QEMU exited (or exits within a short grace,
// the connection may drop before the process is reaped) after err.
func diedDuring(r *run, err error) bool {
	if r.proc.Exited() {
		return true
	}
	if errors.Is(err, backdoor.ErrDisconnected) || errors.Is(err, qmp.ErrDisconnected) || errors.Is(err, errQEMUExited) {
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

// WaitForShell starts the machine if needed and waits until the guest's
// shell is ready.
func (m *Machine) WaitForShell(ctx context.Context) error {
	_, err := m.shell(ctx)
	return err
}

// shell returns the current run with a ready shell, starting the machine
// and waiting for the shell as needed.
func (m *Machine) shell(ctx context.Context) (*run, error) {
	if err := m.uninstrumented(); err != nil {
		return nil, err
	}
	if err := m.Start(ctx); err != nil {
		return nil, err
	}
	r := m.current()
	if r == nil {
		return nil, fmt.Errorf("machine %s is not running", m.cfg.Name)
	}
	if r.ready.Load() {
		return r, nil
	}
	r.readyMu.Lock()
	defer r.readyMu.Unlock()
	if r.ready.Load() {
		return r, nil
	}
	m.log.Info("waiting for the guest shell")
	start := time.Now()
	bctx, stop := r.bind(ctx)
	defer stop()
	if err := r.shell.WaitReady(bctx); err != nil {
		if diedDuring(r, err) {
			if r.rebooting.Load() {
				// The guest rebooted under -no-reboot: boot it again,
				// from the same disk, as a fresh start would.
				m.log.Info("qemu ended at the guest's reboot; starting it again")
				<-r.ended
				r.readyMu.Unlock()
				defer r.readyMu.Lock()
				return m.shell(ctx)
			}
			return nil, m.exitedErr(r, "waiting for the guest shell")
		}
		return nil, fmt.Errorf("machine %s: waiting for the guest shell: %w", m.cfg.Name, err)
	}
	r.ready.Store(true)
	m.log.Info("guest shell ready", "waited", time.Since(start).Round(time.Millisecond), "since_start", time.Since(r.started).Round(time.Millisecond))
	return r, nil
}

// uninstrumented is the error of a shell call on an image booted as it
// is (manifest strategy "none"), nil otherwise.
func (m *Machine) uninstrumented() error {
	if m.manifest.Uninstrumented == "" {
		return nil
	}
	return fmt.Errorf("machine %s: the image is not instrumented, so it has no shell (%s): only the console (wait_for_console_text, send_console), the screen (screenshot, wait_for_text), keys (send_key, send_chars) and power (start, shutdown, crash) work", m.cfg.Name, m.manifest.Uninstrumented)
}

// Execute runs command in the guest's root shell (starting the machine and
// waiting for the shell first) and returns its exit status and stdout.
// With timeout > 0 the guest kills the command after timeout (status 124).
func (m *Machine) Execute(ctx context.Context, command string, timeout time.Duration) (int, []byte, error) {
	r, err := m.shell(ctx)
	if err != nil {
		return 0, nil, err
	}
	bctx, stop := r.bind(ctx)
	defer stop()
	res, err := r.shell.Run(bctx, command, timeout)
	if err != nil {
		if errors.Is(err, backdoor.ErrRestarted) {
			r.ready.Store(false)
		}
		if diedDuring(r, err) {
			return 0, nil, m.exitedErr(r, fmt.Sprintf("running %q", command))
		}
		return 0, nil, fmt.Errorf("machine %s: running %q: %w", m.cfg.Name, command, err)
	}
	return res.Status, res.Stdout, nil
}

// Shutdown powers the guest off through its shell and waits for QEMU to
// exit. A machine that is not running is left alone.
func (m *Machine) Shutdown(ctx context.Context) error {
	if !m.IsRunning() {
		return nil
	}
	if m.uninstrumented() != nil {
		return m.powerButton(ctx)
	}
	r, err := m.shell(ctx)
	if err != nil {
		return err
	}
	m.log.Info("shutting down")
	bctx, stop := r.bind(ctx)
	defer stop()
	go func() {
		// The reply may never come: the guest powers off under the shell.
		_, _ = r.shell.Run(bctx, "poweroff", 0)
	}()
	return m.waitExit(ctx, r, "waiting for the guest to power off")
}

// powerButton presses the ACPI power button (QMP system_powerdown), for a
// guest without a shell, and waits for QEMU to exit.
func (m *Machine) powerButton(ctx context.Context) error {
	r := m.current()
	if r == nil {
		return nil
	}
	m.log.Info("shutting down with the ACPI power button")
	if err := r.qmp.Execute(ctx, "system_powerdown", nil, nil); err != nil && !diedDuring(r, err) {
		return fmt.Errorf("machine %s: pressing the power button: %w", m.cfg.Name, err)
	}
	return m.waitExit(ctx, r, "waiting for the guest to power off")
}

// Reboot reboots the guest through its shell and waits for the shell of
// the next boot. QEMU keeps running.
func (m *Machine) Reboot(ctx context.Context) error {
	r, err := m.shell(ctx)
	if err != nil {
		return err
	}
	m.log.Info("rebooting")
	r.ready.Store(false)
	bctx, stop := r.bind(ctx)
	_, err = r.shell.Run(bctx, "reboot", 0)
	stop()
	if err != nil && !errors.Is(err, backdoor.ErrRestarted) {
		if diedDuring(r, err) {
			return m.exitedErr(r, "rebooting")
		}
		return fmt.Errorf("machine %s: rebooting: %w", m.cfg.Name, err)
	}
	_, err = m.shell(ctx)
	return err
}

// Crash ends QEMU at once (QMP quit), like pulling the plug; the disk keeps
// what the guest wrote to it, and Start boots it again.
func (m *Machine) Crash(ctx context.Context) error {
	r := m.current()
	if r == nil || r.proc.Exited() {
		return nil
	}
	m.log.Info("crashing")
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := r.qmp.Raw(qctx).Quit()
	cancel()
	if err == nil || diedDuring(r, err) {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		werr := m.waitExit(wctx, r, "crashing")
		cancel()
		if werr == nil {
			return nil
		}
	}
	m.log.Warn("qmp quit did not end qemu, killing it", "err", err)
	if err := r.proc.Kill(); err != nil {
		return fmt.Errorf("machine %s: %w", m.cfg.Name, err)
	}
	<-r.ended
	return nil
}

// WaitForShutdown waits until QEMU exits (it does not ask the guest to).
func (m *Machine) WaitForShutdown(ctx context.Context) error {
	r := m.current()
	if r == nil {
		return nil
	}
	return m.waitExit(ctx, r, "waiting for the machine to power off")
}

func (m *Machine) waitExit(ctx context.Context, r *run, doing string) error {
	select {
	case <-r.ended:
		m.mu.Lock()
		if m.run == r {
			m.run = nil
		}
		m.mu.Unlock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("machine %s: %s: %w", m.cfg.Name, doing, ctx.Err())
	}
}

// Close kills QEMU if it runs, waits for it, and removes the sockets and,
// unless KeepState, the state directory. The machine cannot be started
// again.
func (m *Machine) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	r := m.run
	m.run = nil
	m.mu.Unlock()
	var errs []error
	if r != nil {
		if err := r.proc.Kill(); err != nil {
			errs = append(errs, err)
		}
		<-r.ended
	}
	if m.consoleFile != nil {
		if err := m.consoleFile.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.removeDirs(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing machine %s: %w", m.cfg.Name, err)
	}
	return nil
}

func (m *Machine) removeDirs() error {
	var errs []error
	if m.sockDir != "" {
		if m.ownSockDir {
			errs = append(errs, os.RemoveAll(m.sockDir))
		} else {
			for _, p := range m.socketPaths() {
				if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	if m.stateDir != "" && (!m.cfg.KeepState || m.ownStateDir) {
		errs = append(errs, os.RemoveAll(m.stateDir))
	}
	return errors.Join(errs...)
}
