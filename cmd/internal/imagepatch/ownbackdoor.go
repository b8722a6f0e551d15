package imagepatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"

	"github.com/distrotest/distrotest/cmd/internal/diskimage"
	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// unitDirs are where an image keeps the system units systemd starts, in
// the order systemd reads them. The last is NixOS's layout: its /etc is
// made at boot from the system profile, so a NixOS disk has the units
// only under /nix/var/nix/profiles/system (symbolic links into the store,
// which diskimage follows inside the image on ext4).
var unitDirs = []string{
	"/etc/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
	"/nix/var/nix/profiles/system/etc/systemd/system",
}

// bootTargets are the targets whose .wants directories start a backdoor
// at boot: NixOS's backdoor.service is wanted by multi-user.target (and
// by sysinit.target in its initrd variant).
var bootTargets = []string{"multi-user.target", "sysinit.target", "default.target", "graphical.target"}

// maxScript bounds the size of a unit's ExecStart program read to look
// for the marker: a backdoor script is a few KiB; binaries are skipped.
const maxScript = 256 << 10

// OwnBackdoor is an image's own NixOS-style backdoor.
type OwnBackdoor struct {
	Unit   string // the unit file, as the image names it ("/etc/systemd/system/backdoor.service")
	Script string // the file that prints the marker: Unit itself or its ExecStart program
}

// FindOwnBackdoor looks in the root filesystem f for a NixOS-style
// backdoor (nixpkgs' nixos/modules/testing/test-instrumentation.nix): a
// systemd service enabled at boot (linked from a boot target's .wants
// directory) whose unit file or ExecStart program prints guest.Marker and
// puts the shell on /dev/hvc0. It returns nil when there is none: a unit
// that is masked, not enabled, or whose shell is elsewhere (distrotest's
// own, on its virtio port) does not count. Directories it cannot list
// count as empty: this is a search, not a check of the image.
func FindOwnBackdoor(f diskimage.Files) *OwnBackdoor {
	l := lister{f: f, dirs: map[string]map[string]bool{}}
	for _, dir := range unitDirs {
		for _, target := range bootTargets {
			wants := path.Join(dir, target+".wants")
			entries, _ := f.ReadDir(wants)
			for _, e := range entries {
				if !strings.HasSuffix(e.Name, ".service") {
					continue
				}
				if b := l.backdoorUnit(wants, e.Name); b != nil {
					return b
				}
			}
		}
	}
	return nil
}

// backdoorUnit checks the unit name enabled in the .wants directory
// wants. The unit file is the one systemd loads: the first of unitDirs
// that has the name (a mask in /etc/systemd/system hides /usr/lib's unit),
// else what the link in wants leads to. Unreadable units (masks, links
// out of the filesystem, links the reader cannot follow) are not
// backdoors.
func (l *lister) backdoorUnit(wants, name string) *OwnBackdoor {
	f := l.f
	for _, dir := range append(unitDirs[:len(unitDirs):len(unitDirs)], wants) {
		if !l.has(dir, name) {
			continue
		}
		unit := path.Join(dir, name)
		data := readSmall(f, unit)
		if printsMarkerOnHVC0(data) {
			return &OwnBackdoor{Unit: unit, Script: unit}
		}
		for _, prog := range execStarts(data) {
			if printsMarkerOnHVC0(readSmall(f, prog)) {
				return &OwnBackdoor{Unit: unit, Script: prog}
			}
		}
		return nil
	}
	return nil
}

// lister tells whether a directory has an entry (of any type: a mask is a
// link to /dev/null, which the image does not have), listing each
// directory once.
type lister struct {
	f    diskimage.Files
	dirs map[string]map[string]bool
}

func (l *lister) has(dir, name string) bool {
	names, ok := l.dirs[dir]
	if !ok {
		names = map[string]bool{}
		entries, _ := l.f.ReadDir(dir) // a missing directory has nothing
		for _, e := range entries {
			names[e.Name] = true
		}
		l.dirs[dir] = names
	}
	return names[name]
}

// readSmall reads regular file p when it is at most maxScript bytes; nil
// for anything else (missing, a link to /dev/null, a directory, a binary).
func readSmall(f diskimage.Files, p string) []byte {
	info, err := f.Stat(p)
	if err != nil || !info.Mode.IsRegular() || info.Size > maxScript {
		return nil
	}
	data, err := f.ReadFile(p)
	if err != nil {
		return nil
	}
	return data
}

// printsMarkerOnHVC0 reports whether a unit or script prints the marker
// and runs its shell on /dev/hvc0, as NixOS's backdoor does.
func printsMarkerOnHVC0(b []byte) bool {
	return bytes.Contains(b, []byte(guest.Marker)) && bytes.Contains(b, []byte("/dev/hvc0"))
}

// execStarts returns the absolute paths named by a unit's ExecStart=
// lines: the program and its absolute-path arguments (a script run by
// an interpreter), without systemd's prefixes (-, @, +, !, :).
func execStarts(unit []byte) []string {
	var out []string
	for _, line := range strings.Split(string(unit), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.TrimSpace(k) != "ExecStart" {
			continue
		}
		for i, w := range strings.Fields(v) {
			if i == 0 {
				w = strings.TrimLeft(w, "-@+!:")
			}
			w = strings.Trim(w, `"'`)
			if strings.HasPrefix(w, "/") {
				out = append(out, w)
			}
		}
	}
	return out
}

// FindOwnBackdoorIn opens the disk image at input and looks for its own
// NixOS-style backdoor (FindOwnBackdoor) on its root filesystem (the
// partition rootPartition, 0: the one diskimage picks). A root that
// diskimage cannot read (btrfs, LUKS, none) has none as far as distrotest
// can tell: nil, nil.
func FindOwnBackdoorIn(input string, rootPartition int) (*OwnBackdoor, error) {
	img, err := diskimage.Open(input)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", input, err)
	}
	defer img.Close()
	root, err := img.Root(rootPartition)
	if err != nil {
		return nil, nil
	}
	f, err := img.Files(root)
	if err != nil {
		return nil, nil
	}
	return FindOwnBackdoor(f), nil
}

// AsIsOwnBackdoor prepares input (qcow2 or raw), whose own NixOS-style
// backdoor b FindOwnBackdoor found, to be driven as it is: as [AsIs], no
// file of the image changes, but the manifest has strategy
// manifest.StrategyOwnBackdoor and the shell on hvc0, where the runner
// speaks to the image's backdoor in the compatibility mode (base64
// replies, each with its length and CRC checked).
func AsIsOwnBackdoor(ctx context.Context, input, outDir string, spec Spec, b *OwnBackdoor, opts Options) (*manifest.Manifest, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if b == nil {
		return nil, errors.New("preparing an image with its own backdoor: no backdoor given")
	}
	m := asIsManifest(spec)
	m.Strategy, m.Backdoor, m.OwnBackdoor = manifest.StrategyOwnBackdoor, manifest.BackdoorHVC0, b.Unit
	if err := asIs(ctx, input, outDir, spec, m, opts.Standalone, log); err != nil {
		return nil, fmt.Errorf("preparing %s to be driven as it is through its own backdoor: %w", input, err)
	}
	return m, nil
}
