package machine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

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
	shapeParams  []string // the kernel parameters of the machine's snapshot
	reusedDisk   bool     // the disk was kept from an earlier run
	booted       bool     // Start ran once: later boots are cold
	consoleFile  *os.File
	console      *consoleBuffer

	mu     sync.Mutex // guards run and closed; held by Start
	run    *run
	closed bool

	noReboot atomic.Bool // see SetAllowReboot

	// A kernel panic while booting is retried once (panickedBooting).
	panicMu      sync.Mutex
	bootPanics   int  // panics in the console log at the last shell or retry
	retriedPanic bool // the current boot is a retry after a panic
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
	if _, err := filepath.Abs(cfg.ImageDir); err != nil {
		return fail(err)
	}
	if m.kernelParams, err = kernelParams(cfg, m.manifest, cfg.Identity()); err != nil {
		return fail(err)
	}
	if m.shapeParams, err = kernelParams(cfg, m.manifest, shapeIdentity(cfg)); err != nil {
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
		if err := m.createDisk(context.Background()); err != nil {
			return fail(err)
		}
	} else {
		m.reusedDisk = true
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

// createDisk creates the machine's disk: an overlay over the image's.
func (m *Machine) createDisk(ctx context.Context) error {
	imageDir, err := filepath.Abs(m.cfg.ImageDir)
	if err != nil {
		return err
	}
	base := manifest.Path(imageDir, m.manifest.Disk)
	return CreateOverlay(ctx, m.cfg.Host.Img, base, m.manifest.DiskFormat, m.disk, m.cfg.DiskSize)
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
	p := []string{m.sock("qmp"), m.sock("shell"), m.sock("serial"), m.sock("migrate")}
	for _, n := range m.cfg.NICs {
		p = append(p, m.NICSocket(n.VLAN))
	}
	for _, d := range m.daemons() {
		p = append(p, d.Socket, d.Socket+".pid") // virtiofsd writes SOCKET.pid
	}
	return p
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
