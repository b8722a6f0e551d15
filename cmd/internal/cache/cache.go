// Package cache names the layout of distrotest's cache directory and owns
// its locking. Everything the project keeps between runs lives under one
// root (DefaultDir, or a directory the user names):
//
//	<root>/images/<name>/      base images built from packages (imagebuild)
//	<root>/prepared/<name>/    prepared images: disk, kernel, initrd, manifest
//	<root>/state/<test>/       machine disks kept between runs (--keep-vm-state)
//	<root>/qemu/               accelerator verdicts of the KVM probe
//	<root>/oci/disks/<name>/   disks pulled from containerDisks (ociimage)
//	<root>/snapshots/<key>/    booted machines saved for restoring (machine)
//
// Entries are created under a lock (Lock) and appear atomically; what is in
// an entry belongs to the package that makes it. This package only names
// places: it creates nothing but lock files.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// DefaultDir is $XDG_CACHE_HOME/distrotest, or ~/.cache/distrotest.
func DefaultDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache directory: %w", err)
	}
	return filepath.Join(dir, "distrotest"), nil
}

// Images is where base images are built.
func Images(root string) string { return filepath.Join(root, "images") }

// Prepared is where prepared images are kept.
func Prepared(root string) string { return filepath.Join(root, "prepared") }

// PreparedPulled is where prepared images pulled from a registry are kept
// (self-contained, found by their key alone).
func PreparedPulled(root string) string { return filepath.Join(root, "prepared", "pulled") }

// OCIDisks is where the disks of containerDisks pulled from registries are
// kept.
func OCIDisks(root string) string { return filepath.Join(root, "oci", "disks") }

// State is where machine state of the test named test is kept between runs.
func State(root, test string) string { return filepath.Join(root, "state", test) }

// Snapshots is where machines saved after their boot are kept, one entry
// per shape key (package machine: boot once, restore many).
func Snapshots(root string) string { return filepath.Join(root, "snapshots") }

// QEMU is where the accelerator verdicts are remembered.
func QEMU(root string) string { return filepath.Join(root, "qemu") }

// Lock takes an exclusive flock on path (creating the file), waiting until
// ctx is done; the logger hears once that it waits. The lock file stays in
// place: removing it would race with other waiters. Call unlock to release.
func Lock(ctx context.Context, path string, log *slog.Logger) (unlock func(), err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock: %w", err)
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !waiting {
			log.Info("waiting for another process working on the same cache entry", "lock", path)
			waiting = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
