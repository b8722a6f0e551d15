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

// CreateOverlay creates path as a qcow2 overlay backed by base (format
// baseFormat, "qcow2" when empty), sized sizeMiB (zero: the size of base),
// with qemu-img at img. The file appears atomically: an existing path is
// replaced only once the new overlay is complete.
func CreateOverlay(ctx context.Context, img, base, baseFormat, path string, sizeMiB int) error {
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
	args := overlayArgs(base, baseFormat, tmp, sizeMiB)
	out, err := exec.CommandContext(ctx, img, args...).CombinedOutput()
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("creating disk overlay: qemu-img %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("creating disk overlay: %w", err)
	}
	return nil
}

// overlayArgs are qemu-img's arguments for CreateOverlay.
func overlayArgs(base, baseFormat, path string, sizeMiB int) []string {
	args := []string{"create", "-q", "-f", "qcow2", "-b", base, "-F", baseFormat, path}
	if sizeMiB > 0 {
		args = append(args, fmt.Sprintf("%dM", sizeMiB))
	}
	return args
}
