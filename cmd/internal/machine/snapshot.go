package machine

// Boot once, restore many: a machine of a shape (image, memory, CPUs,
// devices, accelerator, QEMU) is booted once to its shell without any
// identity and saved (QEMU's migration stream of its devices, its RAM as
// the runner's file, ramfile.go, and its disk frozen); the
// first Start of every machine of that shape restores it into an overlay
// of its own and applies the machine's identity through the shell.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/backdoor"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// snapshotFormat is the version of the snapshot's layout and of its
// shape's rules; a change makes every key new.
const snapshotFormat = 3

// hotplugPorts is how many empty PCIe root ports the shape has for the
// virtiofs devices added after a restore (the store and the shares).
const hotplugPorts = 8

// Files of a snapshot entry (cache.Snapshots(root)/<key>/).
const (
	snapshotState = "state"         // QEMU's migration stream, without the RAM
	snapshotRAM   = "memory"        // the guest's RAM (ramfile.go)
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
	c.MemoryFile = qemu.FD(0) // the runner's memfd (Machine.start)
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
// the image's files, the shell's preamble and the snapshot format.
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
	// The saved shell has the preamble of the runner that made it, and a
	// restore asks it for its functions.
	fmt.Fprintf(h, "preamble %x\n", sha256.Sum256([]byte(backdoor.Preamble)))
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

// sameShape reports whether a and b are the same shape.
func sameShape(a, b qemu.Config, host qemu.Host) bool {
	return slices.Equal(qemu.Cmdline(canonicalShape(a), host), qemu.Cmdline(canonicalShape(b), host))
}
