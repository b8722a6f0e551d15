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
	a := &applier{fsys: fsys, log: log, dirs: map[string]bool{}}
	err := a.apply(plan)
	return a.changes, a.masks, err
}

type applier struct {
	fsys    *diskimage.FS
	log     *slog.Logger
	dirs    map[string]bool // directories known to exist
	changes []Change
	masks   []string
}

func (a *applier) did(c Change) {
	a.changes = append(a.changes, c)
	a.log.Debug("image edit", "op", c.Op, "path", c.Path, "detail", c.Detail)
}

func (a *applier) apply(plan guest.Plan) error {
	dirs := append([]guest.Dir(nil), plan.Dirs...)
	sort.SliceStable(dirs, func(i, j int) bool { return depth(dirs[i].Path) < depth(dirs[j].Path) })
	for _, d := range dirs {
		if err := checkEntry(d.Path, d.Mode); err != nil {
			return err
		}
		if err := a.mkdirAll(d.Path, d.Mode); err != nil {
			return err
		}
	}
	for _, f := range plan.Files {
		if err := checkEntry(f.Path, f.Mode); err != nil {
			return err
		}
		if err := a.file(f); err != nil {
			return err
		}
	}
	for _, s := range plan.Symlinks {
		if err := checkPath(s.Path); err != nil {
			return err
		}
		if err := a.symlink(s); err != nil {
			return err
		}
	}
	return nil
}

func (a *applier) file(f guest.File) error {
	if err := a.mkdirAll(path.Dir(f.Path), dirMode); err != nil {
		return err
	}
	info, err := a.fsys.Lstat(f.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := a.fsys.WriteFile(f.Path, f.Data, f.Mode); err != nil {
			return err
		}
		a.did(Change{OpWrite, f.Path, fmt.Sprintf("%04o, %d bytes", f.Mode.Perm(), len(f.Data))})
		return nil
	case err != nil:
		return err
	case info.Mode.IsRegular() && info.Mode.Perm() == f.Mode.Perm() && info.Size == int64(len(f.Data)):
		old, err := a.fsys.ReadFile(f.Path)
		if err != nil {
			return err
		}
		if !bytes.Equal(old, f.Data) {
			return overwriteError(f.Path, "with different content")
		}
		a.did(Change{OpPresent, f.Path, "same content and mode"})
		return nil
	}
	return overwriteError(f.Path, fmt.Sprintf("as %s %d bytes", describeMode(info.Mode), info.Size))
}

func (a *applier) symlink(s guest.Symlink) error {
	if err := a.mkdirAll(path.Dir(s.Path), dirMode); err != nil {
		return err
	}
	info, err := a.fsys.Lstat(s.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := a.fsys.Symlink(s.Target, s.Path); err != nil {
			return err
		}
		a.did(Change{OpLink, s.Path, "-> " + s.Target})
		return nil
	case err != nil:
		return err
	case info.Mode&fs.ModeSymlink != 0 && info.Target == s.Target:
		a.did(Change{OpPresent, s.Path, "-> " + s.Target})
		return nil
	}
	what := describeMode(info.Mode)
	if info.Target != "" {
		what += " -> " + info.Target
	}
	if s.Target == "/dev/null" && strings.Contains(path.Base(s.Path), ".") {
		// A unit name taken by the image (an alias link, an admin's
		// unit): masking it in the image would need a remove.
		unit := path.Base(s.Path)
		a.masks = append(a.masks, unit)
		a.did(Change{OpCmdline, s.Path, "exists as " + what + "; systemd.mask=" + unit})
		a.log.Info("unit name taken in the image; masking it on the kernel command line", "unit", unit, "path", s.Path)
		return nil
	}
	return fmt.Errorf("refusing to replace %s (%s) with a link to %s: distrotest never removes files from an image", s.Path, what, s.Target)
}

func overwriteError(p, how string) error {
	return fmt.Errorf("refusing to overwrite %s, which exists in the image %s: distrotest never overwrites files (was the image patched by another distrotest version? patch the original image)", p, how)
}

// mkdirAll creates dir and its missing parents; dir gets mode, parents
// dirMode. Existing directories (or links to them) are left alone.
func (a *applier) mkdirAll(dir string, mode fs.FileMode) error {
	if a.dirs[dir] {
		return nil
	}
	info, err := a.fsys.Stat(dir)
	switch {
	case err == nil && info.Mode.IsDir():
		a.dirs[dir] = true
		return nil
	case err == nil:
		return fmt.Errorf("%s exists in the image as %s, not a directory", dir, describeMode(info.Mode))
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if parent := path.Dir(dir); parent != dir {
		if err := a.mkdirAll(parent, dirMode); err != nil {
			return err
		}
	}
	if err := a.fsys.Mkdir(dir, mode); err != nil {
		return err
	}
	a.dirs[dir] = true
	a.did(Change{OpMkdir, dir, fmt.Sprintf("%04o", mode.Perm())})
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
