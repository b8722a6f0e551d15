package machine

// Boot once, restore many: a machine of a shape (image, memory, CPUs,
// devices, accelerator, QEMU) is booted once to its shell without any
// identity and saved (QEMU migration to a file, with its disk frozen); the
// first Start of every machine of that shape restores it into an overlay
// of its own and applies the machine's identity through the shell.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/atomicfile"
	"github.com/distrotest/distrotest/cmd/internal/backdoor"
	"github.com/distrotest/distrotest/cmd/internal/cache"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
	"github.com/distrotest/distrotest/cmd/internal/qmp"
)

// snapshotFormat is the version of the snapshot's layout and of its
// shape's rules; a change makes every key new.
const snapshotFormat = 1

// hotplugPorts is how many empty PCIe root ports the shape has for the
// virtiofs devices added after a restore (the store and the shares).
const hotplugPorts = 8

// Files of a snapshot entry (cache.Snapshots(root)/<key>/).
const (
	snapshotState = "state"         // QEMU's migration stream
	snapshotDisk  = "disk.qcow2"    // the disk as it was at the save, never written again
	snapshotMeta  = "snapshot.json" // what made the key, for people and a check
)

// snapshotTimeouts bound the save and the restore (TCG on a loaded host).
const (
	saveTimeout    = 5 * time.Minute
	restoreTimeout = 3 * time.Minute
)

// snapshotMetadata is snapshot.json.
type snapshotMetadata struct {
	Format  int      `json:"format"`
	Key     string   `json:"key"`
	QEMU    string   `json:"qemu"`
	Binary  string   `json:"binary"`
	Accel   string   `json:"accel"`
	Image   []string `json:"image"`
	Cmdline []string `json:"cmdline"`
}

// shapeIdentity is the identity a snapshot boots with: only what shapes
// the booted machine (the grown disk, SELinux), nothing of one machine.
func shapeIdentity(cfg Config) guest.Identity {
	return guest.Identity{GrowFS: cfg.DiskSize.IsSet(), SELinuxEnforcing: cfg.SELinuxEnforcing}
}

// snapshotMAC is the MAC of the NIC on vlan in a snapshot, replaced by the
// machine's after the restore.
func snapshotMAC(vlan int) string { return guest.MAC(vlan, 0) }

// shapeQEMU turns a machine's QEMU configuration into its shape's: the
// snapshot's kernel parameters, no shares (vhost-user-fs cannot migrate;
// 9p cannot be added later), shared memory and empty ports for the
// virtiofs devices added after the restore, a VM generation ID, VLAN NICs
// with the snapshot's MACs, and -no-reboot (a restored machine's next boot
// is a cold one, in a new QEMU with the machine's own command line).
func shapeQEMU(c qemu.Config, params []string) qemu.Config {
	c.KernelParams = params
	c.Shares = nil
	c.SharedMemory = true
	c.HotplugPorts = hotplugPorts
	c.VMGenID = true
	c.NoReboot = true
	c.NICs = append([]qemu.NIC(nil), c.NICs...)
	for i := range c.NICs {
		c.NICs[i].MAC = snapshotMAC(c.NICs[i].VLAN)
	}
	return c
}

// canonicalShape is qc without what differs between machines of one
// shape: the name, and the paths of the disk, sockets and switches.
func canonicalShape(qc qemu.Config) qemu.Config {
	qc.Name = ""
	qc.Disk = "disk"
	qc.QMPSocket, qc.ShellSocket, qc.SerialSocket = "qmp", "shell", "serial"
	qc.NoReboot = true
	qc.Incoming = ""
	qc.NICs = append([]qemu.NIC(nil), qc.NICs...)
	for i := range qc.NICs {
		qc.NICs[i].Socket, qc.NICs[i].SwitchSocket = "nic", "switch"
	}
	return qc
}

// snapshotKey is the key of the shape of qc (a shapeQEMU result) on host
// for the image in imageDir: a digest of the command line with the
// machine's own paths replaced, QEMU's binary and version, the accelerator,
// the image's files and the snapshot format.
func snapshotKey(qc qemu.Config, host qemu.Host, imageDir string, man *manifest.Manifest) (string, snapshotMetadata, error) {
	qc = canonicalShape(qc)
	meta := snapshotMetadata{Format: snapshotFormat, QEMU: host.Version, Binary: host.Binary, Accel: host.Accel,
		Cmdline: qemu.Cmdline(qc, host)}
	img, err := imageIdentity(imageDir, man)
	if err != nil {
		return "", meta, err
	}
	meta.Image = img
	h := sha256.New()
	fmt.Fprintf(h, "format %d\nqemu %s\nbinary %s\naccel %s\n", meta.Format, meta.QEMU, meta.Binary, meta.Accel)
	for _, s := range meta.Image {
		fmt.Fprintf(h, "image %s\n", s)
	}
	for _, a := range meta.Cmdline {
		fmt.Fprintf(h, "arg %q\n", a)
	}
	meta.Key = hex.EncodeToString(h.Sum(nil))[:20]
	return meta.Key, meta, nil
}

// imageIdentity describes the prepared image's files without reading
// them whole: the manifest's digest, and path, size and modification time
// of the disk, the kernel and the initrd (a prepared image is written once
// and never changed in place; a new one has new files).
func imageIdentity(imageDir string, man *manifest.Manifest) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(imageDir, "manifest.json"))
	if err != nil && man == nil {
		return nil, fmt.Errorf("image identity: %w", err)
	}
	sum := sha256.Sum256(data)
	out := []string{"manifest " + hex.EncodeToString(sum[:])}
	for _, rel := range []string{man.Disk, man.Kernel, man.Initrd} {
		if rel == "" {
			continue
		}
		p := manifest.Path(imageDir, rel)
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("image identity: %w", err)
		}
		out = append(out, fmt.Sprintf("%s %d %d", p, fi.Size(), fi.ModTime().UnixNano()))
	}
	return out, nil
}

// restorePlan is what restoring this machine needs, or why it cannot be
// restored.
type restorePlan struct {
	key  string
	meta snapshotMetadata
	dir  string // the snapshot entry
	qemu qemu.Config
}

// planRestore decides whether the machine's next Start restores it, and
// from what. A nil plan with a reason means a cold boot for that reason; a
// nil plan without one, a cold boot that needs no word (restores are off,
// or this is not the machine's first boot).
func (m *Machine) planRestore() (*restorePlan, string) {
	if m.cfg.SnapshotDir == "" || m.booted {
		return nil, ""
	}
	switch {
	case m.manifest.Uninstrumented != "":
		return nil, "the image has no shell"
	case m.manifest.Strategy != manifest.StrategyDisk:
		// The initrd strategy's families (EL, Fedora) run NetworkManager,
		// which the snapshot's VLAN NICs (placeholder MACs, no addresses)
		// would meet unmanaged by nothing: not verified, so not done.
		return nil, "restoring is verified only on images patched on their disk (Debian, Ubuntu), not yet with the " + m.manifest.Strategy + " strategy's families"
	case m.reusedDisk:
		return nil, "its disk was kept from an earlier run"
	case m.cfg.KeepState:
		return nil, "its disk is kept for later runs (--keep-vm-state), and must not depend on a snapshot that may be removed"
	}
	vfs := len(m.daemons())
	if m.cfg.ShareTransport != qemu.TransportVirtiofs && (m.cfg.NixStore != "" || len(m.cfg.Shares) > 0) {
		return nil, "its store and shares go over 9p, which QEMU cannot add to a running machine (virtiofs can)"
	}
	if vfs > hotplugPorts {
		return nil, fmt.Sprintf("it has %d virtiofs shares, the snapshot shape has room for %d", vfs, hotplugPorts)
	}
	qc := shapeQEMU(m.QEMUConfig(), m.shapeParams)
	imageDir, _ := filepath.Abs(m.cfg.ImageDir)
	key, meta, err := snapshotKey(qc, m.cfg.Host, imageDir, m.manifest)
	if err != nil {
		return nil, err.Error()
	}
	return &restorePlan{key: key, meta: meta, dir: filepath.Join(m.cfg.SnapshotDir, key), qemu: qc}, ""
}

// boot starts QEMU for Start: restored from the shape's snapshot on the
// machine's first boot when it can be, cold otherwise or when the restore
// fails (the reason goes to the log).
func (m *Machine) boot(ctx context.Context) (*run, error) {
	plan, why := m.planRestore()
	first := !m.booted
	m.booted = true
	if plan != nil {
		r, err := m.restore(ctx, plan)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		m.log.Warn("restoring from the snapshot failed, booting cold", "snapshot", plan.dir, "reason", err.Error())
		if cerr := m.createDisk(ctx); cerr != nil {
			return nil, cerr
		}
	} else if why != "" && first {
		m.log.Info("booting cold, not restored from a snapshot", "reason", why)
	}
	r, err := m.start(ctx, m.QEMUConfig())
	if err != nil {
		return nil, err
	}
	go m.watch(r)
	return r, nil
}

// restore restores the machine from plan's snapshot, making the snapshot
// first when it is missing, and applies the machine's identity. On error
// no QEMU of it runs and the disk must be created anew.
func (m *Machine) restore(ctx context.Context, plan *restorePlan) (*run, error) {
	if err := m.ensureSnapshot(ctx, plan); err != nil {
		return nil, fmt.Errorf("making the snapshot: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, restoreTimeout)
	defer cancel()
	start := time.Now()
	if err := CreateOverlay(rctx, m.cfg.Host.Img, filepath.Join(plan.dir, snapshotDisk), "qcow2", m.disk, DiskSize{}); err != nil {
		return nil, err
	}
	qc := plan.qemu
	// QEMU listens for the stream on a socket; the host sends the file
	// and closes, so that QEMU sees all of it and then its end.
	qc.Incoming = "unix:" + m.sock("migrate")
	r, err := m.start(rctx, qc)
	if err != nil {
		return nil, m.loadFailed(plan, err)
	}
	sent := make(chan error, 1)
	go func() { sent <- sendFile(rctx, m.sock("migrate"), filepath.Join(plan.dir, snapshotState)) }()
	r.restored = true
	go m.watch(r)
	// The console starts with the snapshot's boot, as a cold boot's
	// would (wait_for_console_text of a boot message works the same); the
	// guest prints nothing before cont.
	if boot, err := os.ReadFile(filepath.Join(plan.dir, "snapshot", "console.log")); err == nil {
		m.consoleOutput(boot)
	}
	ok := false
	defer func() {
		if !ok {
			_ = r.proc.Kill()
			<-r.ended
		}
	}()
	bctx, stop := r.bind(rctx)
	defer stop()
	status, err := m.waitIncoming(bctx, r)
	if err != nil {
		if diedDuring(r, err) {
			<-r.ended
			return nil, m.loadFailed(plan, m.exitedErr(r, "loading the snapshot"))
		}
		return nil, err
	}
	if err := <-sent; err != nil {
		// QEMU has loaded the guest: it read all it needed.
		m.log.Debug("sending the snapshot ended with an error after qemu loaded it", "err", err)
	}
	m.log.Debug("snapshot loaded", "took", time.Since(start).Round(time.Millisecond))
	// The virtiofs devices go in before the guest runs, so that it finds
	// them while the shell is resumed.
	for i, d := range m.daemons() {
		if err := m.hotplugVirtiofs(bctx, r, i, d); err != nil {
			return nil, err
		}
	}
	if status != "running" {
		// The guest was stopped for the save, and the stream says so.
		if err := r.qmp.Execute(bctx, "cont", nil, nil); err != nil {
			return nil, fmt.Errorf("running the restored guest: %w", err)
		}
	}
	if err := r.shell.Resume(bctx); err != nil {
		return nil, fmt.Errorf("resuming the shell: %w", err)
	}
	m.log.Debug("shell resumed", "took", time.Since(start).Round(time.Millisecond))
	if err := m.applyIdentity(bctx, r); err != nil {
		return nil, err
	}
	r.ready.Store(true)
	m.panicMu.Lock()
	m.bootPanics, m.retriedPanic = kernelPanics(m.ConsoleLog()), false
	m.panicMu.Unlock()
	ok = true
	now := time.Now()
	_ = os.Chtimes(filepath.Join(plan.dir, snapshotMeta), now, now) // last used (fails in a read-only directory)
	m.log.Info("restored from a snapshot", "snapshot", plan.dir, "took", time.Since(start).Round(time.Millisecond))
	return r, nil
}

// loadFailed is the error of a restore whose QEMU could not load the
// snapshot: the entry is removed (a corrupted or incompatible file), so
// that the next run makes it again.
func (m *Machine) loadFailed(plan *restorePlan, err error) error {
	if rerr := os.RemoveAll(plan.dir); rerr != nil {
		return fmt.Errorf("qemu could not load the snapshot: %w (removing it: %w)", err, rerr)
	}
	return fmt.Errorf("qemu could not load the snapshot (removed; the next run makes it again): %w", err)
}

// waitIncoming waits until QEMU has loaded the migration stream and
// returns its status then: "paused" (the guest was stopped for the save,
// and QEMU does not start it by itself) or "running".
func (m *Machine) waitIncoming(ctx context.Context, r *run) (string, error) {
	for {
		var st struct {
			Status string `json:"status"`
		}
		if err := r.qmp.Execute(ctx, "query-status", nil, &st); err != nil {
			return "", fmt.Errorf("waiting for qemu to load the snapshot: %w", err)
		}
		switch st.Status {
		case "inmigrate":
		case "paused", "prelaunch", "running":
			return st.Status, nil
		default:
			return "", fmt.Errorf("qemu is %s after loading the snapshot", st.Status)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for qemu to load the snapshot: %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// hotplugVirtiofs adds the virtiofs device of daemon d to the running
// machine, on the i-th hot-plug port.
func (m *Machine) hotplugVirtiofs(ctx context.Context, r *run, i int, d daemon) error {
	chardev := map[string]any{
		"id": qemu.VirtiofsChardev(d.Tag),
		"backend": map[string]any{"type": "socket", "data": map[string]any{
			"server": false,
			"addr":   map[string]any{"type": "unix", "data": map[string]any{"path": d.Socket}},
		}},
	}
	if err := r.qmp.Execute(ctx, "chardev-add", chardev, nil); err != nil {
		return fmt.Errorf("adding virtiofs share %s after the restore: %w", d.Tag, err)
	}
	dev := map[string]any{"driver": "vhost-user-fs-pci", "id": "vfsdev-" + d.Tag, "chardev": qemu.VirtiofsChardev(d.Tag),
		"tag": d.Tag, "queue-size": 1024, "bus": qemu.HotplugPort(i)}
	if err := r.qmp.Execute(ctx, "device_add", dev, nil); err != nil {
		return fmt.Errorf("adding virtiofs share %s after the restore: %w", d.Tag, err)
	}
	return nil
}

// applyIdentity gives the restored guest the machine's identity, clock
// and fresh randomness (guest.Restore).
func (m *Machine) applyIdentity(ctx context.Context, r *run) error {
	id, err := guest.KernelParams(m.cfg.Identity())
	if err != nil {
		return err
	}
	rest := guest.Restore{Params: id, Seed: randomBytes(64), BootID: uuid(), MachineID: hex.EncodeToString(randomBytes(16)),
		MACs: map[string]string{}, Virtiofs: len(m.daemons())}
	for _, n := range m.cfg.NICs {
		rest.MACs[snapshotMAC(n.VLAN)] = guest.MAC(n.VLAN, m.cfg.N)
	}
	rest.Now = time.Now()
	cmd := "env"
	for _, kv := range guest.RestoreEnv(rest) {
		cmd += " " + backdoor.Quote(kv)
	}
	cmd += " bash -c " + backdoor.Quote(guest.RestoreScript()) + " distrotest-restore"
	res, err := r.shell.Run(ctx, cmd, 0)
	if err != nil {
		return fmt.Errorf("applying the machine's identity: %w", err)
	}
	m.log.Debug("identity applied", "steps", strings.Join(strings.Fields(string(res.Stdout)), " "))
	if res.Status != 0 {
		return fmt.Errorf("applying the machine's identity failed (status %d; the console log has the guest's messages): %s",
			res.Status, lastLine(grepLines(m.ConsoleLog(), "distrotest-")))
	}
	return nil
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// uuid is a random (version 4) UUID as the kernel writes boot_id.
func uuid() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

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

// keepSnapshots is how many snapshots a snapshot directory keeps (each is
// about as large as the guest memory in use; a new one removes the least
// recently used beyond this).
const keepSnapshots = 8

// pruneSnapshots removes the entries of dir beyond the keep most recently
// used (snapshot.json's modification time, which a restore renews) and
// returns their keys. An entry in use by a restore that has not opened its
// files yet makes that restore fail, and its machine boot cold.
func pruneSnapshots(dir string, keep int) ([]string, error) {
	metas, err := filepath.Glob(filepath.Join(dir, "*", snapshotMeta))
	if err != nil || len(metas) <= keep {
		return nil, err
	}
	type entry struct {
		dir  string
		used time.Time
	}
	var es []entry
	for _, p := range metas {
		if fi, err := os.Stat(p); err == nil {
			es = append(es, entry{filepath.Dir(p), fi.ModTime()})
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return b.used.Compare(a.used) })
	var removed []string
	var errs []error
	for _, e := range es[min(keep, len(es)):] {
		if err := os.RemoveAll(e.dir); err != nil {
			errs = append(errs, err)
			continue
		}
		_ = os.Remove(e.dir + ".lock")
		removed = append(removed, filepath.Base(e.dir))
	}
	return removed, errors.Join(errs...)
}

// cfgLogger is cfg's logger, never nil.
func cfgLogger(cfg Config) *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}

// snapshotValid reports whether plan's entry is there, for plan's key.
func snapshotValid(plan *restorePlan) bool {
	data, err := os.ReadFile(filepath.Join(plan.dir, snapshotMeta))
	if err != nil {
		return false
	}
	var meta snapshotMetadata
	return json.Unmarshal(data, &meta) == nil && meta.Key == plan.key && meta.Format == snapshotFormat
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
	// The modules the restore needs are loaded before the save (cheaper
	// than after it), then the disk is synced: it must be what the saved
	// memory expects.
	if _, _, err := sm.Execute(sctx, "modprobe -qa virtiofs overlay vmgenid || true", 0); err != nil {
		return fmt.Errorf("loading modules before the save: %w", err)
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

// sameShape reports whether a and b are the same shape.
func sameShape(a, b qemu.Config, host qemu.Host) bool {
	return slices.Equal(qemu.Cmdline(canonicalShape(a), host), qemu.Cmdline(canonicalShape(b), host))
}
