package imagepatch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

// writeDir fills a new temporary directory beside out and renames it to
// out. out may be missing, an empty directory or a prepared directory (one
// with a manifest), which is replaced; anything else is an error. On error
// nothing is left behind and an existing out is untouched.
func writeDir(out string, fill func(tmp string) error) error {
	out = filepath.Clean(out)
	replace := false
	switch fi, err := os.Lstat(out); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("output %s: %w", out, err)
	case !fi.IsDir():
		return fmt.Errorf("output %s exists and is not a directory", out)
	default:
		entries, err := os.ReadDir(out)
		if err != nil {
			return fmt.Errorf("output %s: %w", out, err)
		}
		if len(entries) > 0 {
			if _, err := os.Stat(filepath.Join(out, manifest.FileName)); err != nil {
				return fmt.Errorf("output %s exists, is not empty and is not a prepared image directory (no %s): refusing to replace it", out, manifest.FileName)
			}
		}
		replace = true
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating the output's parent directory: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fmt.Errorf("writing output %s: cannot create a directory in %s: %w", out, parent, unwrapPath(err))
	}
	fail := func(err error) error {
		os.RemoveAll(tmp)
		return err
	}
	if err := fill(tmp); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w (the filesystem of %s is full)", err, parent)
		}
		return fail(fmt.Errorf("writing output %s: %w", out, err))
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fail(fmt.Errorf("creating the output: %w", err))
	}
	if !replace {
		if err := os.Rename(tmp, out); err != nil {
			return fail(fmt.Errorf("moving the output into place: %w", err))
		}
		return nil
	}
	old := tmp + ".old"
	if err := os.Rename(out, old); err != nil {
		return fail(fmt.Errorf("replacing %s: %w", out, err))
	}
	if err := os.Rename(tmp, out); err != nil {
		if rerr := os.Rename(old, out); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restoring %s from %s: %w", out, old, rerr))
		}
		return fail(fmt.Errorf("replacing %s: %w", out, err))
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("removing the previous output %s: %w", old, err)
	}
	return nil
}

// unwrapPath drops the path from an *fs.PathError whose path the message
// already gives.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
