package machine

// Restoring: a machine's first Start restores its shape's snapshot
// (snapshot.go) into an overlay of its own, hot-plugs what cannot migrate
// and applies the machine's identity through the shell.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/backdoor"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

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
	r, err := m.start(ctx, m.QEMUConfig(), nil)
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
	m.log.Debug("disk overlay created", "took", time.Since(start).Round(time.Millisecond))
	qc := plan.qemu
	// QEMU listens for the stream on a socket (once told it leaves the
	// RAM out); the host sends the file and closes, so that QEMU sees all
	// of it and then its end.
	qc.Incoming = "defer"
	// The guest's RAM is copied into its memfd while QEMU starts (QEMU
	// only maps it, and the stream leaves it out).
	size := int64(qc.Memory()) << 20
	ram, err := newRAM(m.cfg.Name, size)
	if err != nil {
		return nil, err
	}
	loaded := make(chan error, 1)
	go func() {
		t := time.Now()
		err := loadRAM(filepath.Join(plan.dir, snapshotRAM), ram, size)
		m.log.Debug("memory loaded", "took", time.Since(t).Round(time.Millisecond), "err", err)
		loaded <- err
	}()
	waitRAM := sync.OnceValue(func() error { return <-loaded })
	defer waitRAM() // no copy into the memfd outlives the restore
	r, err := m.start(rctx, qc, ram)
	if err != nil {
		return nil, m.loadFailed(plan, err)
	}
	m.log.Debug("qemu started", "took", time.Since(start).Round(time.Millisecond))
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
	// The RAM must be in place before the stream: loading a virtio
	// device's state reads its rings' indices from guest memory.
	if err := waitRAM(); err != nil {
		return nil, m.loadFailed(plan, err)
	}
	for _, c := range []struct {
		cmd  string
		args any
	}{
		{"migrate-set-capabilities", qemu.IgnoreSharedCapability},
		{"migrate-incoming", map[string]any{"uri": "unix:" + m.sock("migrate")}},
	} {
		if err := r.qmp.Execute(bctx, c.cmd, c.args, nil); err != nil {
			return nil, m.loadFailed(plan, fmt.Errorf("%s: %w", c.cmd, err))
		}
	}
	sent := make(chan error, 1)
	go func() { sent <- sendFile(bctx, m.sock("migrate"), filepath.Join(plan.dir, snapshotState)) }()
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

// loadFailed is the error of a restore that could not load the snapshot
// (QEMU refused its stream, or its memory file is damaged): the entry is
// removed (a corrupted or incompatible file), so
// that the next run makes it again.
func (m *Machine) loadFailed(plan *restorePlan, err error) error {
	if rerr := os.RemoveAll(plan.dir); rerr != nil {
		return fmt.Errorf("the snapshot could not be loaded: %w (removing it: %w)", err, rerr)
	}
	return fmt.Errorf("the snapshot could not be loaded (removed; the next run makes it again): %w", err)
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
	var cmd strings.Builder
	for _, kv := range guest.RestoreEnv(rest) {
		name, value, _ := strings.Cut(kv, "=")
		cmd.WriteString(name + "=" + backdoor.Quote(value) + "\n")
	}
	cmd.WriteString(". " + guest.RestorePath)
	res, err := r.shell.Run(ctx, cmd.String(), 0)
	if err != nil {
		return fmt.Errorf("applying the machine's identity: %w", err)
	}
	m.log.Debug("identity applied (the console log has its steps)")
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
