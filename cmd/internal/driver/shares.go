package driver

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/distrotest/distrotest/cmd/internal/machine"
	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// DefaultShareTransport carries the store and the shares when neither the
// run, the config nor the image chooses: the faster of the two where both
// work, measured with bench/shares.sh (figures in the README).
const DefaultShareTransport = manifest.ShareTransportVirtiofs

// shareTransport picks how machine mc's store and shares reach the guest:
// the run's override, else the machine's share_transport, else the image's
// manifest, else DefaultShareTransport; and why it chose what it chose.
// Every machine shares something (/tmp/shared and /tmp/xchg at least).
// Virtiofs without a virtiofsd is an error when asked for, and 9p when it
// is only the default.
func shareTransport(override string, mc MachineConfig, man *manifest.Manifest, haveVirtiofsd bool) (transport, why string, err error) {
	imageChoice := ""
	if man != nil {
		imageChoice = man.ShareTransport
	}
	switch {
	case override != "":
		transport, why = override, "--share-transport"
	case mc.ShareTransport != "":
		transport, why = mc.ShareTransport, "share_transport in the config"
	case imageChoice != "":
		transport, why = imageChoice, "the image's manifest"
	default:
		transport, why = DefaultShareTransport, "the default"
		if transport == manifest.ShareTransportVirtiofs && !haveVirtiofsd {
			return manifest.ShareTransport9P, "no virtiofsd found for the default virtiofs (scripts/install-virtiofsd.sh installs one)", nil
		}
	}
	if err := CheckShareTransport(transport); err != nil {
		return "", "", fmt.Errorf("share transport from %s: %w", why, err)
	}
	if transport == manifest.ShareTransportVirtiofs && !haveVirtiofsd {
		return "", "", fmt.Errorf("share transport virtiofs (from %s) needs virtiofsd: none found in PATH or %s (scripts/install-virtiofsd.sh installs one; --virtiofsd PATH)",
			why, strings.Join(machine.VirtiofsdPaths, ", "))
	}
	return transport, why, nil
}

// checkSources checks, before any machine starts, that every directory the
// machines export can be exported: it exists, is a directory and can be
// read and searched by this user; and that a Nix registration is a file in
// the exported store. It reports every problem, each naming its machine
// and share.
func checkSources(cfg *Config) error {
	var errs []error
	for _, mc := range cfg.Machines {
		for _, tag := range sortedKeys(mc.SharedDirs) {
			if err := checkDir(mc.SharedDirs[tag].Source); err != nil {
				errs = append(errs, fmt.Errorf("machine %s: shared_dirs %s: %w", mc.Name, tag, err))
			}
		}
		if mc.NixStore != "" {
			if err := checkDir(mc.NixStore); err != nil {
				errs = append(errs, fmt.Errorf("machine %s: nix_store: %w", mc.Name, err))
			}
		}
		if r := mc.NixRegistration; r != "" {
			rel, err := filepath.Rel(mc.NixStore, r)
			switch {
			case err != nil || rel == "." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || rel == "..":
				errs = append(errs, fmt.Errorf("machine %s: nix_registration %s is not inside nix_store %s (it travels with the store share)", mc.Name, r, mc.NixStore))
			default:
				if fi, err := os.Stat(r); err != nil {
					errs = append(errs, fmt.Errorf("machine %s: nix_registration: %w", mc.Name, err))
				} else if !fi.Mode().IsRegular() {
					errs = append(errs, fmt.Errorf("machine %s: nix_registration %s is not a file", mc.Name, r))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// checkDir says why dir cannot be exported, or returns nil.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("source %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("source %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("source %s is not a directory", dir)
	}
	const rx = 0x4 | 0x1 // R_OK | X_OK
	if err := syscall.Access(dir, rx); err != nil {
		return fmt.Errorf("source %s is not readable and searchable by this user: %w", dir, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("source %s is not readable: %w", dir, err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("source %s is not readable: %w", dir, err)
	}
	return nil
}

// FindVirtiofsd returns the virtiofsd to use: explicit when set (it must
// exist), else virtiofsd in PATH (as lookPath finds it), else the first of
// machine.VirtiofsdPaths that exists; "" when there is none. The CLI
// calls it (exec.LookPath reads PATH).
func FindVirtiofsd(explicit string, lookPath func(string) (string, error)) (string, error) {
	if explicit != "" {
		p, err := lookPath(explicit)
		if err != nil {
			return "", fmt.Errorf("virtiofsd %s: %w", explicit, err)
		}
		return filepath.Abs(p)
	}
	if p, err := lookPath("virtiofsd"); err == nil {
		return filepath.Abs(p)
	}
	for _, p := range machine.VirtiofsdPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", nil
}
