package machine

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/backdoor"
)

// copyChunk is how many bytes CopyFromHost sends per shell command (before
// base64); a multiple of 3 so that every chunk decodes on its own.
const copyChunk = 384 << 10

// CopyFromHost copies the host file or directory src into the guest at the
// absolute path dst, through the shell (tar, in base64 chunks). Modes and
// modification times are kept, owners become root. A directory is merged
// into an existing dst; a file replaces it. src itself may be a symbolic
// link (it is followed); links inside a directory are copied as links.
func (m *Machine) CopyFromHost(ctx context.Context, src, dst string) error {
	fail := func(err error) error {
		return fmt.Errorf("machine %s: copying %s to %s: %w", m.cfg.Name, src, dst, err)
	}
	if !path.IsAbs(dst) || path.Clean(dst) == "/" {
		return fail(errors.New("the guest path must be absolute and not /"))
	}
	dst = path.Clean(dst)
	var archive bytes.Buffer
	if err := writeTar(&archive, src, path.Base(dst)); err != nil {
		return fail(err)
	}
	tmp, err := m.succeed(ctx, "mktemp -d /tmp/distrotest-copy.XXXXXX")
	if err != nil {
		return fail(err)
	}
	tmpDir := strings.TrimSpace(string(tmp))
	defer func() {
		_, _, _ = m.Execute(context.WithoutCancel(ctx), "rm -rf -- "+backdoor.Quote(tmpDir), time.Minute)
	}()
	tarFile := tmpDir + "/a.tar"
	data := archive.Bytes()
	for off := 0; off < len(data); off += copyChunk {
		chunk := data[off:min(off+copyChunk, len(data))]
		cmd := "printf %s " + backdoor.Quote(base64.StdEncoding.EncodeToString(chunk)) + " | base64 -d >>" + backdoor.Quote(tarFile)
		if _, err := m.succeed(ctx, cmd); err != nil {
			return fail(err)
		}
	}
	parent := path.Dir(dst)
	if _, err := m.succeed(ctx, fmt.Sprintf("mkdir -p -- %s && tar -x -f %s -C %s", backdoor.Quote(parent), backdoor.Quote(tarFile), backdoor.Quote(parent))); err != nil {
		return fail(err)
	}
	return nil
}

// CopyFromMachine copies the guest file or directory src (absolute) into the
// host directory dstDir (created if needed) as dstDir/<base name of src>,
// through the shell. Modes and modification times are kept; nothing is
// written outside dstDir.
func (m *Machine) CopyFromMachine(ctx context.Context, src, dstDir string) error {
	fail := func(err error) error {
		return fmt.Errorf("machine %s: copying %s to %s: %w", m.cfg.Name, src, dstDir, err)
	}
	if !path.IsAbs(src) || path.Clean(src) == "/" {
		return fail(errors.New("the guest path must be absolute and not /"))
	}
	src = path.Clean(src)
	out, err := m.succeed(ctx, fmt.Sprintf("tar -c -f - -C %s %s", backdoor.Quote(path.Dir(src)), backdoor.Quote(path.Base(src))))
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return fail(err)
	}
	if err := extractTar(bytes.NewReader(out), dstDir); err != nil {
		return fail(err)
	}
	return nil
}

// succeed runs command and fails unless its status is 0.
func (m *Machine) succeed(ctx context.Context, command string) ([]byte, error) {
	status, out, err := m.Execute(ctx, command, 0)
	if err != nil {
		return nil, err
	}
	if status != 0 {
		cmd := command
		if len(cmd) > 80 {
			cmd = cmd[:80] + "..."
		}
		return nil, fmt.Errorf("guest command %q failed with status %d (its stderr is on the console)", cmd, status)
	}
	return out, nil
}

// writeTar writes src (followed if it is a link) as a tar archive whose
// top entry is called name.
func writeTar(w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		if err := addFile(tw, src, name, st); err != nil {
			return err
		}
		return tw.Close()
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		entry := name
		if rel != "." {
			entry = name + "/" + filepath.ToSlash(rel)
		}
		info, err := d.Info()
		if p == src {
			info, err = st, nil
		}
		if err != nil {
			return err
		}
		return addFile(tw, p, entry, info)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, p, name string, info fs.FileInfo) error {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(info.Mode().Perm()),
		ModTime: info.ModTime().Truncate(time.Second),
		Uname:   "root",
		Gname:   "root",
	}
	if info.Mode()&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if info.Mode()&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if info.Mode()&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	switch {
	case info.Mode().IsRegular():
		hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
	case info.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	default:
		return fmt.Errorf("%s: cannot copy a %s", p, info.Mode().Type())
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if n, err := io.Copy(tw, f); err != nil {
		return err
	} else if n != hdr.Size {
		return fmt.Errorf("%s changed size while being copied", p)
	}
	return nil
}

// extractTar unpacks r into dir. Entries may not leave dir, not even through
// symbolic links they create (os.Root enforces it). Directory modes and times
// are set last, deepest first, so read-only directories can be filled.
func extractTar(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	type dirMeta struct {
		name  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dirMeta
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if name == "." || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("archive entry %q leaves the target directory", hdr.Name)
		}
		mode := fs.FileMode(hdr.Mode & 0o777)
		if hdr.Mode&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if hdr.Mode&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		if hdr.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o700); err != nil {
				return err
			}
			if err := root.Chmod(name, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirMeta{name, mode, hdr.ModTime})
		case tar.TypeReg:
			if err := removeNonDir(root, name); err != nil {
				return err
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("writing %s: %w", name, err)
			}
			if err := root.Chmod(name, mode); err != nil {
				return err
			}
			if err := root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := removeNonDir(root, name); err != nil {
				return err
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := removeNonDir(root, name); err != nil {
				return err
			}
			if err := root.Link(path.Clean(hdr.Linkname), name); err != nil {
				return err
			}
		default:
			// Devices, fifos and the like are not copied.
		}
	}
	sort.SliceStable(dirs, func(i, j int) bool { return len(dirs[i].name) > len(dirs[j].name) })
	for _, d := range dirs {
		if err := root.Chmod(d.name, d.mode); err != nil {
			return err
		}
		if err := root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// removeNonDir removes name unless it does not exist; a directory in the
// way is an error.
func removeNonDir(root *os.Root, name string) error {
	st, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s: a directory is in the way", name)
	}
	return root.Remove(name)
}
