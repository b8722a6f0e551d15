package machine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DiskSize is the size of a machine's disk. The zero value keeps the
// image's size; otherwise the disk is MiB in total, or with Grow the
// image's size plus MiB (nix-vm-test's diskSize = "+2G"). A disk larger than
// the image's has its root partition and file system grown at boot.
type DiskSize struct {
	MiB  int
	Grow bool
}

// IsSet reports whether the disk differs from the image's.
func (s DiskSize) IsSet() bool { return s.MiB > 0 }

// String is the size as qemu-img resize takes it: "4096M" or "+2048M".
func (s DiskSize) String() string {
	if !s.IsSet() {
		return ""
	}
	if s.Grow {
		return fmt.Sprintf("+%dM", s.MiB)
	}
	return fmt.Sprintf("%dM", s.MiB)
}

// CreateOverlay creates path as a qcow2 overlay backed by base (format
// baseFormat, "qcow2" when empty), with qemu-img at img, then resizes it to
// size (qemu-img resize; a total smaller than the image's disk is an
// error, nothing is shrunk). The file appears atomically: an existing path
// is replaced only once the new overlay is complete.
func CreateOverlay(ctx context.Context, img, base, baseFormat, path string, size DiskSize) error {
	if img == "" {
		return errors.New("creating disk overlay: qemu-img not found (install qemu-utils)")
	}
	if baseFormat == "" {
		baseFormat = "qcow2"
	}
	base, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("creating disk overlay: %w", err)
	}
	if _, err := os.Stat(base); err != nil {
		return fmt.Errorf("creating disk overlay: image disk: %w", err)
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	qemuImg := func(args []string) error {
		out, err := exec.CommandContext(ctx, img, args...).CombinedOutput()
		if err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("creating disk overlay: qemu-img %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := qemuImg(overlayArgs(base, baseFormat, tmp)); err != nil {
		return err
	}
	if size.IsSet() {
		if err := qemuImg(resizeArgs(tmp, size)); err != nil {
			return fmt.Errorf("disk size %s: %w", size, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("creating disk overlay: %w", err)
	}
	return nil
}

// overlayArgs are qemu-img's arguments that create the overlay.
func overlayArgs(base, baseFormat, path string) []string {
	return []string{"create", "-q", "-f", "qcow2", "-b", base, "-F", baseFormat, path}
}

// resizeArgs are qemu-img's arguments that resize the overlay to size.
func resizeArgs(path string, size DiskSize) []string {
	return []string{"resize", "-q", "-f", "qcow2", path, size.String()}
}
