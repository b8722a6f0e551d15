package machine

// Saving: the shape boots once to its shell, without any identity, and is
// saved (QEMU migration of the devices to a file, the RAM from the
// runner's memfd to another, the disk frozen beside them).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/atomicfile"
	"github.com/distrotest/distrotest/cmd/internal/cache"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
	"github.com/distrotest/distrotest/cmd/internal/qmp"
)

// ensureSnapshot makes plan's snapshot unless it exists, under the entry's
// lock: one machine of the shape boots and is saved, the others wait and
// use it.
func (m *Machine) ensureSnapshot(ctx context.Context, plan *restorePlan) error {
	// Entries are complete when they appear and never change: one that is
	// there needs no lock (the snapshot directory may be read-only, a
	// snapshot in the Nix store).
	if snapshotValid(plan) {
		return nil
	}
	if why, err := os.ReadFile(plan.dir + ".refused"); err == nil {
		return fmt.Errorf("qemu refused to save this shape before (remove %s to try again): %s", plan.dir+".refused", strings.TrimSpace(string(why)))
	}
	if err := os.MkdirAll(m.cfg.SnapshotDir, 0o755); err != nil {
		return err
	}
	unlock, err := cache.Lock(ctx, plan.dir+".lock", m.log)
	if err != nil {
		return fmt.Errorf("%s has no snapshot of this shape (key %s) and none can be made there: %w", m.cfg.SnapshotDir, plan.key, err)
	}
	defer unlock()
	if snapshotValid(plan) {
		return nil
	}
	if _, err := os.Stat(plan.dir); err == nil {
		m.log.Warn("snapshot metadata does not match its key: making it again", "snapshot", plan.dir)
	}
	if err := os.RemoveAll(plan.dir); err != nil {
		return err
	}
	m.log.Info("making the snapshot of this machine's shape: booting it once", "snapshot", plan.dir)
	start := time.Now()
	tmp, err := os.MkdirTemp(m.cfg.SnapshotDir, plan.key+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := m.makeSnapshot(ctx, plan, tmp); err != nil {
		var refused *saveRefused
		if errors.As(err, &refused) {
			// QEMU will refuse it next time too: say so then without
			// booting the shape again.
			_ = atomicfile.WriteFile(plan.dir+".refused", []byte(refused.Error()+"\n"), 0o644)
		}
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp's is 0700
		return err
	}
	if err := os.Rename(tmp, plan.dir); err != nil {
		return err
	}
	m.log.Info("snapshot made", "snapshot", plan.dir, "took", time.Since(start).Round(time.Millisecond))
	if removed, err := pruneSnapshots(m.cfg.SnapshotDir, keepSnapshots); err != nil {
		m.log.Warn("removing old snapshots", "err", err)
	} else if len(removed) > 0 {
		m.log.Info("removed the least recently used snapshots", "keep", keepSnapshots, "removed", strings.Join(removed, " "))
	}
	return nil
}

// ErrNotRestorable is MakeSnapshot's error for a machine that boots cold
// whatever the snapshots.
var ErrNotRestorable = errors.New("cannot be restored from a snapshot")

// MakeSnapshot makes the snapshot of the machine's shape in its
// SnapshotDir unless it is there, without starting the machine; it fails
// when the machine cannot be restored, saying why.
func (m *Machine) MakeSnapshot(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.SnapshotDir == "" {
		return fmt.Errorf("machine %s: no snapshot directory", m.cfg.Name)
	}
	plan, why := m.planRestore()
	if plan == nil {
		return fmt.Errorf("machine %s: %w: %s", m.cfg.Name, ErrNotRestorable, why)
	}
	if err := m.ensureSnapshot(ctx, plan); err != nil {
		return fmt.Errorf("machine %s: making the snapshot: %w", m.cfg.Name, err)
	}
	return nil
}

// makeSnapshot boots the shape in dir, waits for its shell, and saves it
// there.
func (m *Machine) makeSnapshot(ctx context.Context, plan *restorePlan, dir string) error {
	c := m.cfg
	shape := Config{
		Name: "snapshot", ImageDir: c.ImageDir, Manifest: m.manifest, StateDir: dir, KeepState: true, OutDir: dir,
		MemoryMiB: c.MemoryMiB, CPUs: c.CPUs, DiskSize: c.DiskSize, CPU: c.CPU, ShellPort: c.ShellPort, Host: c.Host,
		SELinuxEnforcing: c.SELinuxEnforcing, ExtraKernelParams: c.ExtraKernelParams, ExtraQEMUArgs: c.ExtraQEMUArgs,
		Logger: cfgLogger(c).With("snapshot", plan.key), snapshotShape: true,
	}
	for _, n := range c.NICs {
		// Nothing listens there: the snapshot's NICs send nothing (no
		// addresses) and QEMU drops what it cannot deliver.
		shape.NICs = append(shape.NICs, NIC{VLAN: n.VLAN, SwitchSocket: filepath.Join(os.TempDir(), "distrotest-no-switch")})
	}
	sm, err := New(shape)
	if err != nil {
		return err
	}
	defer sm.Close()
	if got := shapeQEMU(sm.QEMUConfig(), sm.kernelParams); !sameShape(got, plan.qemu, c.Host) {
		return errors.New("internal error: the snapshot machine's shape differs from the restored machine's")
	}
	if err := sm.WaitForShell(ctx); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, saveTimeout)
	defer cancel()
	// What the restore would otherwise start programs for is done before
	// the save (programs started after a restore cost most: TCG
	// translates them anew): the modules it needs are loaded, and the
	// tmpfs of a Nix store's writable layer is mounted with its upper
	// and work directories, for the setup script to bind (its restored
	// machines' store is one mount -a). Then the disk is synced: it must be
	// what the saved memory expects.
	prepare := "modprobe -qa virtiofs overlay vmgenid || true; " +
		"mkdir -p " + rwStore + " && mount -t tmpfs -o mode=0755 tmpfs " + rwStore + " && mkdir " + rwStore + "/store " + rwStore + "/work"
	if st, _, err := sm.Execute(sctx, prepare, 0); err != nil || st != 0 {
		return fmt.Errorf("preparing the guest for the save: status %d, %w", st, err)
	}
	if st, _, err := sm.Execute(sctx, "sync", 0); err != nil || st != 0 {
		return fmt.Errorf("sync in the guest before the save: status %d, %w", st, err)
	}
	r, err := sm.running()
	if err != nil {
		return err
	}
	if err := r.qmp.Execute(sctx, "stop", nil, nil); err != nil {
		return fmt.Errorf("stopping the guest: %w", err)
	}
	// QEMU sends the stream to a socket the host writes to the file: the
	// file is complete when QEMU closes the connection (exec:cat >FILE may
	// lose its end: QEMU kills the command when it closes the channel).
	sock := sm.sock("migrate")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("saving the guest: %w", err)
	}
	defer ln.Close()
	received := make(chan error, 1)
	go func() { received <- receiveFile(sctx, ln, filepath.Join(dir, snapshotState)) }()
	if err := r.qmp.Execute(sctx, "migrate-set-capabilities", qemu.IgnoreSharedCapability, nil); err != nil {
		return &saveRefused{err}
	}
	if err := r.qmp.Execute(sctx, "migrate", map[string]any{"uri": "unix:" + sock}, nil); err != nil {
		var qerr *qmp.Error
		if errors.As(err, &qerr) {
			return &saveRefused{err}
		}
		return fmt.Errorf("saving the guest: %w", err)
	}
	for {
		var st struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		if err := r.qmp.Execute(sctx, "query-migrate", nil, &st); err != nil {
			return fmt.Errorf("saving the guest: %w", err)
		}
		if st.Status == "completed" {
			break
		}
		if st.Status == "failed" || st.Status == "cancelled" {
			return fmt.Errorf("saving the guest: migration %s: %s", st.Status, st.ErrorDesc)
		}
		select {
		case <-sctx.Done():
			return fmt.Errorf("saving the guest: %w", sctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case err := <-received:
		if err != nil {
			return fmt.Errorf("saving the guest: %w", err)
		}
	case <-sctx.Done():
		return fmt.Errorf("saving the guest: %w", sctx.Err())
	}
	// The stream has the devices; the RAM (left out of it) is the
	// runner's memfd, unchanged while the guest is stopped.
	if r.ram == nil {
		return errors.New("internal error: the snapshot machine's memory is not the runner's")
	}
	t := time.Now()
	if err := saveRAM(filepath.Join(dir, snapshotRAM), r.ram, int64(plan.qemu.Memory())<<20); err != nil {
		return fmt.Errorf("saving the guest's memory: %w", err)
	}
	sm.log.Debug("memory saved", "took", time.Since(t).Round(time.Millisecond))
	if err := sm.Crash(sctx); err != nil {
		return err
	}
	if err := sm.Close(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(plan.meta, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, snapshotMeta), append(data, '\n'), 0o644)
}

// rwStore is where the snapshot's guest mounts the tmpfs of a Nix store's
// writable layer (guest/assets/setup binds it to /nix/.rw-store in a
// restored machine with a store).
const rwStore = "/run/distrotest-rw-store"

// saveRefused is QEMU refusing to save the shape (a device that cannot
// migrate, say): it would refuse every time.
type saveRefused struct{ err error }

func (e *saveRefused) Error() string { return "qemu refused to save the guest: " + e.err.Error() }
func (e *saveRefused) Unwrap() error { return e.err }

// receiveFile accepts one connection on ln and writes what comes until
// its end into the new file path, synced.
func receiveFile(ctx context.Context, ln net.Listener, path string) error {
	c, err := accept(ctx, ln)
	if err != nil {
		return err
	}
	defer c.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, c); err != nil {
		f.Close()
		return fmt.Errorf("receiving the migration stream: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sendFile connects to the unix socket sock (waiting for it to appear)
// and sends the file path, then closes the connection.
func sendFile(ctx context.Context, sock, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening the snapshot: %w", err)
	}
	defer f.Close()
	var c net.Conn
	for {
		var d net.Dialer
		if c, err = d.DialContext(ctx, "unix", sock); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connecting to qemu's migration socket: %w (%w)", ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := io.Copy(c, f); err != nil {
		return fmt.Errorf("sending the snapshot to qemu: %w", err)
	}
	return nil
}
