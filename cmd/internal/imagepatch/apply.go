package imagepatch

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"

	"github.com/distrotest/distrotest/cmd/internal/diskimage"
	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// Op is the kind of a Change.
type Op string

// The things a patch does to an entry of the plan.
const (
	OpMkdir   Op = "mkdir"   // directory created
	OpWrite   Op = "write"   // file created
	OpLink    Op = "symlink" // symbolic link created
	OpPresent Op = "present" // already as planned: left alone
	OpCmdline Op = "cmdline" // mask whose name is taken: masked on the kernel command line
)

// Change is one thing a patch did.
type Change struct {
	Op     Op
	Path   string
	Detail string // mode, link target, or why it was left alone
}

func (c Change) String() string {
	if c.Detail == "" {
		return fmt.Sprintf("%-8s %s", c.Op, c.Path)
	}
	return fmt.Sprintf("%-8s %s (%s)", c.Op, c.Path, c.Detail)
}

// dirMode is the mode of parent directories the plan does not list.
const dirMode fs.FileMode = 0o755

// apply writes plan into fsys: directories (parents first), then files,
// then symbolic links. It returns what it did and the masks it could not
// link because the unit name is taken.
func apply(fsys *diskimage.FS, plan guest.Plan, log *slog.Logger) ([]Change, []string, error) {
	var changes []Change
	did := func(c Change) {
		changes = append(changes, c)
		log.Debug("image edit", "op", c.Op, "path", c.Path, "detail", c.Detail)
	}
	dirs := append([]guest.Dir(nil), plan.Dirs...)
	sort.SliceStable(dirs, func(i, j int) bool { return depth(dirs[i].Path) < depth(dirs[j].Path) })
	for _, d := range dirs {
		if err := checkEntry(d.Path, d.Mode); err != nil {
			return changes, nil, err
		}
		if err := mkdirAll(fsys, d.Path, d.Mode, did); err != nil {
			return changes, nil, err
		}
	}
	for _, f := range plan.Files {
		if err := checkEntry(f.Path, f.Mode); err != nil {
			return changes, nil, err
		}
		if err := mkdirAll(fsys, path.Dir(f.Path), dirMode, did); err != nil {
			return changes, nil, err
		}
		info, err := fsys.Lstat(f.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := fsys.WriteFile(f.Path, f.Data, f.Mode); err != nil {
				return changes, nil, err
			}
			did(Change{OpWrite, f.Path, fmt.Sprintf("%04o, %d bytes", f.Mode.Perm(), len(f.Data))})
		case err != nil:
			return changes, nil, err
		case info.Mode.IsRegular() && info.Mode.Perm() == f.Mode.Perm() && info.Size == int64(len(f.Data)):
			old, err := fsys.ReadFile(f.Path)
			if err != nil {
				return changes, nil, err
			}
			if !bytes.Equal(old, f.Data) {
				return changes, nil, overwriteError(f.Path, "with different content")
			}
			did(Change{OpPresent, f.Path, "same content and mode"})
		default:
			return changes, nil, overwriteError(f.Path, fmt.Sprintf("as %s %d bytes", describeMode(info.Mode), info.Size))
		}
	}
	var masks []string
	for _, s := range plan.Symlinks {
		if err := checkPath(s.Path); err != nil {
			return changes, nil, err
		}
		if err := mkdirAll(fsys, path.Dir(s.Path), dirMode, did); err != nil {
			return changes, nil, err
		}
		info, err := fsys.Lstat(s.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := fsys.Symlink(s.Target, s.Path); err != nil {
				return changes, nil, err
			}
			did(Change{OpLink, s.Path, "-> " + s.Target})
		case err != nil:
			return changes, nil, err
		case info.Mode&fs.ModeSymlink != 0 && info.Target == s.Target:
			did(Change{OpPresent, s.Path, "-> " + s.Target})
		case s.Target == "/dev/null" && strings.Contains(path.Base(s.Path), "."):
			// A unit name taken by the image (an alias link, an admin's
			// unit): masking it in the image would need a remove.
			unit := path.Base(s.Path)
			masks = append(masks, unit)
			detail := "exists as " + describeMode(info.Mode)
			if info.Target != "" {
				detail += " -> " + info.Target
			}
			did(Change{OpCmdline, s.Path, detail + "; systemd.mask=" + unit})
			log.Info("unit name taken in the image; masking it on the kernel command line", "unit", unit, "path", s.Path)
		default:
			what := describeMode(info.Mode)
			if info.Target != "" {
				what += " -> " + info.Target
			}
			return changes, nil, fmt.Errorf("refusing to replace %s (%s) with a link to %s: distrotest never removes files from an image", s.Path, what, s.Target)
		}
	}
	return changes, masks, nil
}

func overwriteError(p, how string) error {
	return fmt.Errorf("refusing to overwrite %s, which exists in the image %s: distrotest never overwrites files (was the image patched by another distrotest version? patch the original image)", p, how)
}

// mkdirAll creates dir and its missing parents; dir gets mode, parents
// dirMode. Existing directories (or links to them) are left alone.
func mkdirAll(fsys *diskimage.FS, dir string, mode fs.FileMode, did func(Change)) error {
	info, err := fsys.Stat(dir)
	switch {
	case err == nil && info.Mode.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s exists in the image as %s, not a directory", dir, describeMode(info.Mode))
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if parent := path.Dir(dir); parent != dir {
		if err := mkdirAll(fsys, parent, dirMode, did); err != nil {
			return err
		}
	}
	if err := fsys.Mkdir(dir, mode); err != nil {
		return err
	}
	did(Change{OpMkdir, dir, fmt.Sprintf("%04o", mode.Perm())})
	return nil
}

func checkPath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("plan: path %q is not a clean absolute path", p)
	}
	return nil
}

// checkEntry checks a planned file or directory: a clean absolute path, and
// plain permissions nobody but the owner may write (0644, 0755).
func checkEntry(p string, mode fs.FileMode) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if m := mode &^ fs.ModeDir; m&^fs.ModePerm != 0 || m&0o022 != 0 {
		return fmt.Errorf("plan: %s has mode %v; want plain permissions writable by the owner only, like 0644 or 0755", p, mode)
	}
	return nil
}

func depth(p string) int { return strings.Count(path.Clean(p), "/") }

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}
