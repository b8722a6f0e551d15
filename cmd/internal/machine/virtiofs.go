package machine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// VirtiofsdPaths are where distrotest looks for virtiofsd when it is not in
// PATH: scripts/install-virtiofsd.sh's wrapper (trixie's Rust virtiofsd on
// Debian 12), then the Rust daemon's place in Debian 13 and Fedora. QEMU's
// old C daemon (/usr/lib/qemu/virtiofsd) is left out: it needs root.
var VirtiofsdPaths = []string{
	"/opt/distrotest/virtiofsd/bin/virtiofsd",
	"/usr/libexec/virtiofsd",
}

// virtiofsd cache modes: the read-only store never changes under the
// guest, so the guest may cache everything (like 9p's cache=loose); shares
// the host may change during a test use "auto", which revalidates entries
// and attributes after 1 s. ("never" would be closer to 9p's default, but
// it opens files with direct I/O and programs on the share could not be
// mapped or executed.)
const (
	storeCache = "always"
	shareCache = "auto"
)

// daemon is one virtiofsd serving one directory to one QEMU.
type daemon struct {
	Tag, Dir, Socket string
	ReadOnly         bool
	Cache            string
}

// virtiofsdArgs returns virtiofsd's arguments for d. It runs without a
// sandbox (no namespaces: it must work as an unprivileged user and in the
// Nix build sandbox) and without seccomp filtering, which is part of the
// sandboxing it cannot have here anyway.
func virtiofsdArgs(d daemon) []string {
	a := []string{
		"--socket-path=" + d.Socket,
		"--shared-dir=" + d.Dir,
		"--tag=" + d.Tag,
		"--sandbox=none",
		"--seccomp=none",
		"--cache=" + d.Cache,
		"--log-level=warn",
	}
	if d.ReadOnly {
		a = append(a, "--readonly")
	}
	return a
}

// daemons lists the virtiofsd processes the machine needs, in the order of
// the QEMU shares.
func (m *Machine) daemons() []daemon {
	if m.cfg.ShareTransport != qemu.TransportVirtiofs {
		return nil
	}
	var ds []daemon
	if m.cfg.NixStore != "" {
		ds = append(ds, daemon{Tag: qemu.StoreTag, Dir: m.cfg.NixStore, Socket: m.sock("vfs-store"), ReadOnly: true, Cache: storeCache})
	}
	for i, s := range m.cfg.Shares {
		ds = append(ds, daemon{Tag: s.Tag, Dir: s.Source, Socket: m.sock(fmt.Sprintf("vfs%d", i)), ReadOnly: s.ReadOnly, Cache: shareCache})
	}
	return ds
}

// socketWait bounds how long a virtiofsd may take to create its socket.
const socketWait = 30 * time.Second

// startDaemons starts one virtiofsd per exported directory and waits until
// each listens on its socket. On error, those already started are killed.
// Each daemon serves one QEMU connection and exits when QEMU goes away;
// the run kills them anyway when QEMU exits.
func (m *Machine) startDaemons(ctx context.Context) ([]*qemu.Process, error) {
	var procs []*qemu.Process
	ok := false
	defer func() {
		if !ok {
			stopDaemons(procs)
		}
	}()
	for _, d := range m.daemons() {
		if err := os.Remove(d.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("virtiofsd for %s: %w", d.Tag, err)
		}
		args := virtiofsdArgs(d)
		m.log.Info("starting virtiofsd", "tag", d.Tag, "dir", d.Dir, "cmd", m.cfg.Virtiofsd+" "+qemu.Quote(args))
		p, err := qemu.StartHelper("virtiofsd", m.cfg.Virtiofsd, args, m.stateDir, m.log.With("source", "virtiofsd", "tag", d.Tag))
		if err != nil {
			return nil, fmt.Errorf("virtiofsd for %s: %w", d.Tag, err)
		}
		procs = append(procs, p)
		if err := waitSocket(ctx, p, d.Socket); err != nil {
			return nil, fmt.Errorf("virtiofsd for %s (%s): %w", d.Tag, d.Dir, err)
		}
	}
	ok = true
	return procs, nil
}

// waitSocket waits until path exists as a socket, p exits, or ctx ends.
func waitSocket(ctx context.Context, p *qemu.Process, path string) error {
	ctx, cancel := context.WithTimeout(ctx, socketWait)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
		select {
		case <-p.Done():
			msg := fmt.Sprintf("exited (%s) before creating its socket", p.Status())
			if out := p.Output(); out != "" {
				msg += ": " + out
			}
			return errors.New(msg)
		case <-ctx.Done():
			return fmt.Errorf("waiting for its socket %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}

// stopDaemons kills the daemons and waits for them.
func stopDaemons(procs []*qemu.Process) error {
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.Kill())
	}
	return errors.Join(errs...)
}
