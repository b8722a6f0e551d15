package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/cache"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/machine"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/pybridge"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
	"github.com/distrotest/distrotest/cmd/internal/report"
	"github.com/distrotest/distrotest/cmd/internal/vlan"
)

// Machine is what a run needs from a machine: the bridge's method set plus
// the VLAN socket to register with a switch and Close. *machine.Machine
// has it; tests use pybridgetest.Machine.
type Machine interface {
	pybridge.Machine
	NICSocket(vlan int) string
	Close() error
}

// Options are the runner's choices for one run (the CLI's flags).
type Options struct {
	// OutDir receives <machine>/console.log, screenshots, copies from
	// machines and the JUnit file; "" means DefaultOutDir.
	OutDir string
	// JUnit, when set, is where the JUnit XML goes (relative to OutDir).
	JUnit string
	// Interactive starts a Python shell with the script's globals; there is
	// no global timeout then.
	Interactive bool
	// KeepState keeps the machines' disks in CacheDir/state/<test>/<machine>
	// and reuses them next run.
	KeepState bool
	// Accel overrides the config's accelerator when set.
	Accel string
	// ShareTransport, when set ("9p" or "virtiofs"), carries every
	// machine's store and shares, whatever the config and images say.
	ShareTransport string
	// Virtiofsd is the virtiofsd binary ("": none, so virtiofs only when
	// something asks for it explicitly fails, and the default falls back
	// to 9p). The CLI finds it (FindVirtiofsd).
	Virtiofsd string
	// GlobalTimeout overrides the config's when > 0.
	GlobalTimeout time.Duration
	// Python is the interpreter ("" : python3; the CLI passes
	// $DISTROTEST_PYTHON).
	Python string
	// CacheDir is distrotest's cache ("" : cache.DefaultDir()).
	CacheDir string
	// Stdin, Stdout and Stderr are the terminal; the log goes to Stderr.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Color colours the log.
	Color bool
	// LogLevel selects which records of the machines and the runner
	// appear in the log (default info).
	LogLevel slog.Level
	// Internet gives every guest a default route through QEMU's user-mode
	// NAT (the `driver` default, as in nix-vm-test); without it guests
	// reach only the test's VLANs.
	Internet bool
	// ExtraQEMUArgs are appended to every machine's QEMU command line
	// (the CLI fills them from $QEMU_OPTS).
	ExtraQEMUArgs []string
	// NoRestore boots every machine cold; otherwise a machine's first boot
	// restores the snapshot of its shape from CacheDir/snapshots (made by
	// the first machine of that shape), and falls back to a cold boot.
	NoRestore bool
	// SnapshotDir holds the snapshots instead of CacheDir/snapshots; it
	// may be read-only (a snapshot derivation in the Nix store).
	SnapshotDir string
	// SnapshotOnly makes the snapshots of the machines' shapes in the
	// snapshot directory and returns, without running the script.
	SnapshotOnly bool

	// Host, when set, is used instead of probing QEMU (tests).
	Host *qemu.Host
	// NewMachine, when set, replaces machine.New (tests).
	NewMachine func(machine.Config) (Machine, error)
}

// DefaultOutDir is the out dir when Options.OutDir is empty (the CLI uses
// $out inside a Nix build).
const DefaultOutDir = "distrotest-out"

// TimeoutError is the cause of a run's end by its global timeout.
type TimeoutError struct{ Timeout time.Duration }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("global timeout of %s reached", e.Timeout)
}

// Run runs one test: it checks the script's syntax, boots nothing until the
// script asks, runs the script, and tears everything down whatever the
// outcome (pass, failure, timeout, signal, panic): machines are closed in
// parallel, switches and sockets removed, state directories deleted unless
// KeepState. It returns nil only when the script passed; a failed script
// is a *pybridge.ScriptError, the global timeout a *TimeoutError (as the
// context's cause).
func Run(ctx context.Context, cfg *Config, opt Options) (err error) {
	if opt.Stderr == nil {
		opt.Stderr = os.Stderr
	}
	rep := report.New(opt.Stderr, report.Options{Color: opt.Color, Serial: true, Debug: opt.LogLevel <= slog.LevelDebug})
	logger := slog.New(rep.Handler(opt.LogLevel))
	root := rep.Root()

	outDir := opt.OutDir
	if outDir == "" {
		outDir = DefaultOutDir
	}
	if outDir, err = filepath.Abs(outDir); err != nil {
		return fmt.Errorf("out dir: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("creating the out dir: %w", err)
	}
	cacheDir := opt.CacheDir
	if cacheDir == "" {
		if cacheDir, err = cache.DefaultDir(); err != nil {
			return err
		}
	}
	junitPath := ""
	if opt.JUnit != "" {
		junitPath = opt.JUnit
		if !filepath.IsAbs(junitPath) {
			junitPath = filepath.Join(outDir, junitPath)
		}
	}

	// The JUnit file is written whatever happens after this point.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v", r)
			root.Error(err.Error())
		}
		if junitPath == "" {
			return
		}
		failure := ""
		if err != nil {
			var se *pybridge.ScriptError
			if errors.As(err, &se) {
				failure = se.Report()
			} else {
				failure = err.Error()
			}
		}
		if jerr := rep.WriteJUnit(junitPath, cfg.Name, failure); jerr != nil {
			root.Error(jerr.Error())
			if err == nil {
				err = jerr
			}
		}
	}()

	// A syntax error is reported before anything starts.
	if err := pybridge.Check(ctx, opt.Python, cfg.TestScript); err != nil {
		var se *pybridge.ScriptError
		if errors.As(err, &se) {
			root.Error(se.Report())
		}
		return err
	}

	timeout := cfg.Timeout()
	if opt.GlobalTimeout > 0 {
		timeout = opt.GlobalTimeout
	}
	if !opt.Interactive {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, &TimeoutError{Timeout: timeout})
		defer cancel()
		root.Log("", fmt.Sprintf("test %s: will time out and terminate in %s", cfg.Name, timeout))
	}

	manifests := make([]*manifest.Manifest, len(cfg.Machines))
	for i, mc := range cfg.Machines {
		if manifests[i], err = manifest.Load(mc.Image); err != nil {
			return fmt.Errorf("machine %s: image %s: %w", mc.Name, mc.Image, err)
		}
	}
	if err := checkSources(cfg); err != nil {
		return err
	}
	transports := make([]string, len(cfg.Machines))
	for i, mc := range cfg.Machines {
		t, why, err := shareTransport(opt.ShareTransport, mc, manifests[i], opt.Virtiofsd != "")
		if err != nil {
			return fmt.Errorf("machine %s: %w", mc.Name, err)
		}
		transports[i] = t
		root.Log(mc.Name, fmt.Sprintf("store and shares over %s (%s)", t, why))
		if len(mc.ExtraPathsToRegister) > 0 && mc.NixRegistration == "" {
			root.Log(mc.Name, "warning: extra_paths_to_register without nix_registration: the paths are readable in /nix/store but not registered in the guest's Nix database (the Nix library writes nix_registration)")
		}
	}

	host := qemu.Host{}
	if opt.Host != nil {
		host = *opt.Host
	} else {
		accel := cfg.Accel
		if opt.Accel != "" {
			accel = opt.Accel
		}
		var kernels []string
		for i, m := range manifests {
			if m != nil && m.Kernel != "" {
				kernels = append(kernels, manifest.Path(cfg.Machines[i].Image, m.Kernel))
				break
			}
		}
		quiet := slog.New(rep.Handler(max(opt.LogLevel, slog.LevelWarn)))
		host, err = qemu.Probe(ctx, qemu.ProbeConfig{Want: accel, CacheDir: cacheDir, Kernels: kernels, Logger: quiet})
		if err != nil {
			return fmt.Errorf("probing qemu: %w", err)
		}
		root.Log("", fmt.Sprintf("qemu %s (%s), accelerator %s: %s", host.Version, host.Binary, host.Accel, host.KVMReason))
	}

	// Runtime directories: sockets in a short one under /tmp, machine
	// state in a private one (or the cache when kept).
	sockDir, err := os.MkdirTemp("/tmp", "dt-")
	if err != nil {
		if sockDir, err = os.MkdirTemp("", "dt-"); err != nil {
			return fmt.Errorf("creating the socket directory: %w", err)
		}
	}
	defer os.RemoveAll(sockDir)
	var stateRoot string
	if opt.KeepState {
		stateRoot = cache.State(cacheDir, cfg.Name)
		if err := os.MkdirAll(stateRoot, 0o700); err != nil {
			return fmt.Errorf("creating the state directory: %w", err)
		}
		root.Log("", "keeping machine state in "+stateRoot)
	} else {
		if stateRoot, err = os.MkdirTemp("", "distrotest-state-"); err != nil {
			return fmt.Errorf("creating the state directory: %w", err)
		}
		defer os.RemoveAll(stateRoot)
	}

	// nixpkgs' VMs have /tmp/shared (one host directory for every machine:
	// the script's machine.shared_dir) and /tmp/xchg (one per machine).
	xchgRoot, err := os.MkdirTemp("", "distrotest-xchg-")
	if err != nil {
		return fmt.Errorf("creating the shared directories: %w", err)
	}
	defer os.RemoveAll(xchgRoot)
	sharedDir := filepath.Join(xchgRoot, "shared")
	if err := os.Mkdir(sharedDir, 0o700); err != nil {
		return fmt.Errorf("creating the shared directories: %w", err)
	}

	var switches []*vlan.Switch
	var bridgeVLANs []pybridge.VLAN
	byID := map[int]*vlan.Switch{}
	defer func() {
		for _, sw := range switches {
			if cerr := sw.Close(); cerr != nil {
				logger.Warn("closing vlan switch", "vlan", sw.ID(), "err", cerr)
			}
		}
	}()
	for _, id := range cfg.VLANs {
		sw, err := vlan.NewSwitch(sockDir, id, logger)
		if err != nil {
			return err
		}
		switches = append(switches, sw)
		bridgeVLANs = append(bridgeVLANs, sw)
		byID[id] = sw
	}

	snapshotDir := ""
	switch {
	case opt.NoRestore || cfg.NoRestore:
		root.Log("", "machines boot cold (restoring from snapshots is off)")
	case opt.SnapshotDir != "":
		snapshotDir = opt.SnapshotDir
		root.Log("", "machines are restored from snapshots in "+snapshotDir+" where they can be (--no-restore boots them cold)")
	default:
		snapshotDir = cache.Snapshots(cacheDir)
		root.Log("", "machines are restored from snapshots in "+snapshotDir+" where they can be (--no-restore boots them cold)")
	}

	hosts := testHosts(cfg)

	newMachine := opt.NewMachine
	if newMachine == nil {
		newMachine = func(c machine.Config) (Machine, error) {
			m, err := machine.New(c)
			if err != nil {
				return nil, err
			}
			return m, nil
		}
	}
	var (
		mu       sync.Mutex // guards machines and hosts once the script runs
		machines []Machine
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		closeAll(machines, logger)
	}()
	sharedDirs := map[string]string{} // machines that have /tmp/shared
	// add makes machine mc, number n, with its xchg directory, shares and
	// NICs, and registers it with its switches and for the cleanup; the
	// declared machines and create_machine's share it. stateDir and keep
	// say where its disk lives; shared says whether it has /tmp/shared.
	add := func(mc MachineConfig, man *manifest.Manifest, transport string, n int, hosts []guest.Host, stateDir string, keep bool) (m Machine, shared bool, err error) {
		xchg := filepath.Join(xchgRoot, "xchg-"+mc.Name)
		if err := os.Mkdir(xchg, 0o700); err != nil {
			return nil, false, fmt.Errorf("machine %s: creating its xchg directory: %w", mc.Name, err)
		}
		mcfg, shared := machineConfig(mc, n, hosts, sharedDir, xchg)
		mcfg.ImageDir = mc.Image
		mcfg.Manifest = man
		mcfg.StateDir = stateDir
		mcfg.SocketDir = sockDir
		mcfg.OutDir = outDir
		mcfg.Host = host
		mcfg.ShareTransport = transport
		mcfg.Virtiofsd = opt.Virtiofsd
		mcfg.KeepState = keep
		mcfg.Logger = logger.With(report.MachineKey, mc.Name)
		mcfg.Console = rep.SerialWriter(mc.Name)
		mcfg.Internet = opt.Internet
		// QEMU_OPTS: after the runner's own arguments, so they win
		mcfg.ExtraQEMUArgs = opt.ExtraQEMUArgs
		mcfg.SnapshotDir = snapshotDir
		for j := range mcfg.NICs {
			mcfg.NICs[j].SwitchSocket = byID[mcfg.NICs[j].VLAN].Path()
		}
		if m, err = newMachine(mcfg); err != nil {
			return nil, false, err
		}
		mu.Lock()
		machines = append(machines, m)
		mu.Unlock()
		for _, v := range mc.VLANs {
			if err := byID[v].AddPeer(mc.Name, m.NICSocket(v)); err != nil {
				return nil, false, err
			}
		}
		return m, shared, nil
	}
	for i, mc := range cfg.Machines {
		_, shared, err := add(mc, manifests[i], transports[i], hosts[i].N, hosts, filepath.Join(stateRoot, mc.Name), opt.KeepState)
		if err != nil {
			return err
		}
		if shared {
			sharedDirs[mc.Name] = sharedDir
		}
	}
	// create_machine: a machine the script asks for, numbered after the
	// declared ones (and those made before it), built like them.
	createMachine := func(ctx context.Context, spec pybridge.MachineSpec) (pybridge.CreatedMachine, error) {
		mc, err := cfg.created(spec)
		if err != nil {
			return pybridge.CreatedMachine{}, err
		}
		man, err := manifest.Load(mc.Image)
		if err != nil {
			return pybridge.CreatedMachine{}, fmt.Errorf("image %s: %w", mc.Image, err)
		}
		transport, why, err := shareTransport(opt.ShareTransport, mc, man, opt.Virtiofsd != "")
		if err != nil {
			return pybridge.CreatedMachine{}, err
		}
		stateDir, keep := filepath.Join(stateRoot, mc.Name), opt.KeepState
		if spec.KeepState && !opt.KeepState {
			stateDir, keep = filepath.Join(cache.State(cacheDir, cfg.Name), mc.Name), true
			if err := os.MkdirAll(filepath.Dir(stateDir), 0o700); err != nil {
				return pybridge.CreatedMachine{}, fmt.Errorf("creating the state directory: %w", err)
			}
		}
		mu.Lock()
		n := 1
		for _, h := range hosts {
			n = max(n, h.N+1)
		}
		if err := guest.CheckNodeNumber(n); err != nil {
			mu.Unlock()
			return pybridge.CreatedMachine{}, fmt.Errorf("no node number left: %w", err)
		}
		hosts = append(hosts, guest.Host{Name: mc.Name, N: n, VLANs: mc.VLANs})
		own := slices.Clone(hosts)
		mu.Unlock()
		m, shared, err := add(mc, man, transport, n, own, stateDir, keep)
		if err != nil {
			return pybridge.CreatedMachine{}, err
		}
		root.Log(mc.Name, fmt.Sprintf("created by the script: image %s, node number %d, vlans %v, store and shares over %s (%s)", mc.Image, n, mc.VLANs, transport, why))
		c := pybridge.CreatedMachine{Machine: m}
		if shared {
			c.SharedDir = sharedDir
		}
		return c, nil
	}
	if opt.SnapshotOnly {
		return makeSnapshots(ctx, machines, snapshotDir, root)
	}
	bridgeMachines := make([]pybridge.Machine, len(machines))
	for i, m := range machines {
		bridgeMachines[i] = m
	}
	if !opt.KeepState && !opt.Interactive {
		root.Log("", "machine state will be reset; to keep it, pass --keep-vm-state")
	}

	start := time.Now()
	err = pybridge.Run(ctx, pybridge.Config{
		Python:      opt.Python,
		Script:      cfg.TestScript,
		Machines:    bridgeMachines,
		VLANs:       bridgeVLANs,
		OutDir:      outDir,
		SharedDirs:  sharedDirs,
		Interactive: opt.Interactive,
		Log:         rep,
		Stdin:       opt.Stdin,
		Stdout:      opt.Stdout,
		Stderr:      opt.Stderr,
		Logger:      logger,
		// nixpkgs' create_machine
		CreateMachine: createMachine,
	})
	var te *TimeoutError
	switch {
	case err == nil && opt.Interactive:
		root.Log("", fmt.Sprintf("interactive session ended after %.2fs", time.Since(start).Seconds()))
	case err == nil:
		root.Log("", fmt.Sprintf("test script finished in %.2fs", time.Since(start).Seconds()))
	case errors.As(err, &te):
		root.Error(err.Error() + "; stopping the machines")
	case ctx.Err() != nil:
		root.Error(fmt.Sprintf("interrupted (%v); stopping the machines", err))
		err = fmt.Errorf("interrupted: %w", err)
	}
	return err
}

// testHosts is every node of the test as the others see it: its name,
// number (guest.NodeNumbers) and VLANs, in cfg's order (by name).
func testHosts(cfg *Config) []guest.Host {
	names := make([]string, len(cfg.Machines))
	for i, mc := range cfg.Machines {
		names[i] = mc.Name
	}
	numbers := guest.NodeNumbers(names)
	hosts := make([]guest.Host, len(cfg.Machines))
	for i, mc := range cfg.Machines {
		hosts[i] = guest.Host{Name: mc.Name, N: numbers[mc.Name], VLANs: mc.VLANs}
	}
	return hosts
}

// machineConfig is what driver.json says of machine mc, as a
// machine.Config: its identity (name, number n, the other hosts, VLANs,
// shares, store, disk, SELinux), with the shared and xchg shares added
// unless mc has its own at their tag or target (shared says whether the
// shared one was). Run adds the run's paths and options.
func machineConfig(mc MachineConfig, n int, hosts []guest.Host, sharedDir, xchg string) (mcfg machine.Config, shared bool) {
	mcfg = machine.Config{
		Name:            mc.Name,
		N:               n,
		MemoryMiB:       mc.MemorySize,
		CPUs:            mc.CPUs,
		NixStore:        mc.NixStore,
		NixRegistration: mc.NixRegistration,
		Hosts:           hosts,
		DiskSize:        mc.diskSize(),
		// enforcing=1 after the image's enforcing=0 (guest.Family.BootParams)
		SELinuxEnforcing: mc.SELinuxEnforcing,
	}
	for _, tag := range sortedKeys(mc.SharedDirs) {
		d := mc.SharedDirs[tag]
		mcfg.Shares = append(mcfg.Shares, machine.Share{Tag: tag, Source: d.Source, Target: d.Target, ReadOnly: d.ReadOnly})
	}
	mcfg.Shares, shared = appendShare(mcfg.Shares, machine.Share{Tag: SharedTag, Source: sharedDir, Target: SharedTarget})
	mcfg.Shares, _ = appendShare(mcfg.Shares, machine.Share{Tag: XchgTag, Source: xchg, Target: XchgTarget})
	for _, v := range mc.VLANs {
		mcfg.NICs = append(mcfg.NICs, machine.NIC{VLAN: v})
	}
	return mcfg, shared
}

// The shares every machine gets, as in nixpkgs' VMs.
const (
	SharedTag    = "shared"      // all machines: the host's shared dir
	SharedTarget = "/tmp/shared" //
	XchgTag      = "xchg"        // one host directory per machine
	XchgTarget   = "/tmp/xchg"   //
)

// appendShare adds s unless the test already shares something with its
// tag or at its target (the test's own share wins); added says which.
func appendShare(shares []machine.Share, s machine.Share) (out []machine.Share, added bool) {
	for _, o := range shares {
		if o.Tag == s.Tag || path.Clean(o.Target) == s.Target {
			return shares, false
		}
	}
	return append(shares, s), true
}

// snapshotter is a machine that can make the snapshot of its shape
// (*machine.Machine).
type snapshotter interface {
	MakeSnapshot(ctx context.Context) error
}

// makeSnapshots makes the snapshot of every machine's shape, one after the
// other (machines of one shape share it).
func makeSnapshots(ctx context.Context, machines []Machine, dir string, root *report.Block) error {
	if dir == "" {
		return errors.New("making snapshots: restoring is off (no_restore in the config, or --no-restore)")
	}
	for _, m := range machines {
		s, ok := m.(snapshotter)
		if !ok {
			return fmt.Errorf("machine %s: cannot make snapshots", m.Name())
		}
		start := time.Now()
		if err := s.MakeSnapshot(ctx); errors.Is(err, machine.ErrNotRestorable) {
			root.Log(m.Name(), "no snapshot: "+err.Error()+" (it boots cold)")
			continue
		} else if err != nil {
			return err
		}
		root.Log(m.Name(), fmt.Sprintf("snapshot of its shape ready in %s (%.2fs)", dir, time.Since(start).Seconds()))
	}
	return nil
}

// closeAll closes the machines in parallel, logging failures.
func closeAll(machines []Machine, logger *slog.Logger) {
	var wg sync.WaitGroup
	for _, m := range machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Close(); err != nil {
				logger.Warn("closing machine", report.MachineKey, m.Name(), "err", err)
			}
		}()
	}
	wg.Wait()
}
