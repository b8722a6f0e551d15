// Command testimage derives the disk images the VM tests need from a built
// base image, offline (go-diskfs edits through package diskimage, no root,
// no VM), as a qcow2 overlay of the base:
//
//	testimage nixos-backdoor BASE OUT.qcow2
//
// nixos-backdoor adds a NixOS-style backdoor to an ext4 root (a Debian
// image from `distrotest-gen image build`): the backdoor.service that
// nixpkgs' nixos/modules/testing/test-instrumentation.nix generates, its
// script in a file of its own as NixOS keeps it (ExecStart= a
// unit-script), enabled by multi-user.target, gettys on hvc0 and ttyS0
// masked and the manager's slow-start timeouts as that module sets them.
// distrotest must then find that backdoor and drive the image as it is.
//
// It is for tests only (tests/e2e TestOwnBackdoor).
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/distrotest/distrotest/cmd/internal/diskimage"
)

func main() {
	if len(os.Args) != 4 || os.Args[1] != "nixos-backdoor" {
		fmt.Fprintln(os.Stderr, "usage: testimage nixos-backdoor BASE OUT.qcow2")
		os.Exit(2)
	}
	if err := nixOSBackdoor(os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "testimage:", err)
		os.Exit(1)
	}
}

// Paths of the backdoor in the derived image.
const (
	backdoorUnit   = "/etc/systemd/system/backdoor.service"
	backdoorScript = "/usr/local/lib/nixos-test/backdoor-start"
)

// backdoorScriptText is test-instrumentation.nix's backdoor script (with
// the prelude NixOS's unit scripts get: a bash shebang and `set -e`), its
// store paths replaced by Debian's.
const backdoorScriptText = `#!/bin/bash
set -e
export USER=root
export HOME=/root
export DISPLAY=:0.0

if [[ -e /etc/profile ]]; then
    set +o nounset
    source /etc/profile
fi

# Don't use a pager when executing backdoor actions.
export PAGER=

cd /tmp
exec < /dev/hvc0 > /dev/hvc0
while ! exec 2> /dev/ttyS0; do sleep 0.1; done
echo "connecting to host..." >&2
stty -F /dev/hvc0 raw -echo # prevent nl -> cr/nl conversion
# The following line is essential since it signals to
# the test driver that the shell is ready.
echo "Spawning backdoor root shell..."
PS1="" exec /bin/bash --norc /dev/hvc0
`

// files are what nixos-backdoor writes, in order (directories first).
var files = []struct {
	path string
	data string // file content; "" with link set, or a directory
	link string
	dir  bool
	mode fs.FileMode
}{
	{path: "/usr/local/lib/nixos-test", dir: true, mode: 0o755},
	{path: backdoorScript, data: backdoorScriptText, mode: 0o755},
	{path: backdoorUnit, mode: 0o644, data: `[Unit]
Description=NixOS-style test backdoor (nixpkgs' test-instrumentation.nix)
Requires=dev-hvc0.device dev-ttyS0.device
After=dev-hvc0.device dev-ttyS0.device

[Service]
ExecStart=` + backdoorScript + `
KillSignal=SIGHUP

[Install]
WantedBy=multi-user.target
`},
	{path: "/etc/systemd/system/multi-user.target.wants/backdoor.service", link: backdoorUnit},
	{path: "/etc/systemd/system/serial-getty@hvc0.service", link: "/dev/null"},
	{path: "/etc/systemd/system/serial-getty@ttyS0.service", link: "/dev/null"},
	{path: "/etc/systemd/system.conf.d", dir: true, mode: 0o755},
	{path: "/etc/systemd/system.conf.d/nixos-test.conf", mode: 0o644, data: `[Manager]
ShowStatus=no
DefaultTimeoutStartSec=300
DefaultDeviceTimeoutSec=300
`},
}

// nixOSBackdoor writes out, a qcow2 overlay of base with files added to
// its ext4 root. base is only read.
func nixOSBackdoor(base, out string) error {
	img, err := diskimage.Open(base)
	if err != nil {
		return err
	}
	defer img.Close()
	root, err := img.Root(0)
	if err != nil {
		return err
	}
	fsys, err := img.Ext4(root)
	if err != nil {
		return err
	}
	if err := fsys.Writable(); err != nil {
		return err
	}
	for _, f := range files {
		switch {
		case f.dir:
			if _, err := fsys.Stat(f.path); err == nil {
				continue
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			err = fsys.Mkdir(f.path, f.mode)
		case f.link != "":
			err = fsys.Symlink(f.link, f.path)
		default:
			err = fsys.WriteFile(f.path, []byte(f.data), f.mode)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path.Join(base, f.path), err)
		}
	}
	tmp := out + ".tmp"
	if err := img.WriteQcow2(tmp, false); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}
