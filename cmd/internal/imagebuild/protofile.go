package imagebuild

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// ProtoStats counts what writeProtofile could not carry over: xfsprogs'
// protofile has no hard links (each link becomes its own copy) and no sticky
// bit (systemd-tmpfiles restores it on /tmp and /var/tmp at boot).
type ProtoStats struct {
	Entries   int      `json:"entries"`
	HardLinks int      `json:"hard_links_copied"`
	Sticky    []string `json:"sticky_bit_dropped,omitempty"`
}

// writeProtofile writes an xfsprogs protofile (mkfs.xfs -p, see
// mkfs.xfs(8)) describing the tree at dir, so that mkfs.xfs populates a new
// filesystem from it without a mount. Regular files are named by their host
// path under dir. Names that the format cannot express (whitespace, a
// leading ':' which starts a comment, '$' alone which ends a directory) are
// errors naming the file.
func writeProtofile(w io.Writer, dir string) (ProtoStats, error) {
	var st ProtoStats
	bw := bufio.NewWriter(w)
	root, err := os.Lstat(dir)
	if err != nil {
		return st, err
	}
	if !root.IsDir() {
		return st, fmt.Errorf("protofile: %s is not a directory", dir)
	}
	// Line 1 is ignored, line 2 holds two ignored numbers.
	fmt.Fprintf(bw, "/distrotest-imagebuild\n0 0\n")
	mode, err := protoMode(dir, root, &st)
	if err != nil {
		return st, err
	}
	fmt.Fprintf(bw, "%s %d %d\n", mode, owner(root).uid, owner(root).gid)
	if err := protoDir(bw, dir, 1, &st); err != nil {
		return st, err
	}
	fmt.Fprintln(bw, "$")
	return st, bw.Flush()
}

// protoDir writes the entries of directory path, then the closing "$" is
// written by the caller.
func protoDir(w *bufio.Writer, path string, depth int, st *ProtoStats) error {
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	slices.Sort(names)
	indent := strings.Repeat("  ", depth)
	for _, name := range names {
		p := filepath.Join(path, name)
		if strings.ContainsAny(name, " \t\n\r\v\f") || strings.HasPrefix(name, ":") || name == "$" {
			return fmt.Errorf("protofile: %s: the name cannot be written in an xfs protofile (whitespace, a leading ':' or '$')", p)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		mode, err := protoMode(p, fi, st)
		if err != nil {
			return err
		}
		o := owner(fi)
		st.Entries++
		switch t := fi.Mode().Type(); {
		case t == 0:
			if strings.ContainsAny(p, " \t\n") {
				return fmt.Errorf("protofile: %s: host path contains whitespace", p)
			}
			if o.nlink > 1 {
				st.HardLinks++
			}
			fmt.Fprintf(w, "%s%s %s %d %d %s\n", indent, name, mode, o.uid, o.gid, p)
		case t == fs.ModeDir:
			fmt.Fprintf(w, "%s%s %s %d %d\n", indent, name, mode, o.uid, o.gid)
			if err := protoDir(w, p, depth+1, st); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s$\n", indent)
		case t == fs.ModeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if target == "" || strings.ContainsAny(target, " \t\n") || strings.HasPrefix(target, ":") {
				return fmt.Errorf("protofile: %s: symlink target %q cannot be written in an xfs protofile", p, target)
			}
			fmt.Fprintf(w, "%s%s %s %d %d %s\n", indent, name, mode, o.uid, o.gid, target)
		case t&fs.ModeDevice != 0:
			fmt.Fprintf(w, "%s%s %s %d %d %d %d\n", indent, name, mode, o.uid, o.gid, o.rdev>>8&0xfff, o.rdev&0xff|o.rdev>>12&0xfff00)
		case t == fs.ModeNamedPipe:
			fmt.Fprintf(w, "%s%s %s %d %d\n", indent, name, mode, o.uid, o.gid)
		default:
			return fmt.Errorf("protofile: %s: file type %s cannot be written in an xfs protofile", p, t)
		}
	}
	return nil
}

// protoMode is the 6-character mode token: type, setuid, setgid, octal
// permissions.
func protoMode(path string, fi fs.FileInfo, st *ProtoStats) (string, error) {
	m := fi.Mode()
	var typ byte
	switch t := m.Type(); {
	case t == 0:
		typ = '-'
	case t == fs.ModeDir:
		typ = 'd'
	case t == fs.ModeSymlink:
		typ = 'l'
	case t&fs.ModeCharDevice != 0:
		typ = 'c'
	case t == fs.ModeDevice:
		typ = 'b'
	case t == fs.ModeNamedPipe:
		typ = 'p'
	default:
		return "", fmt.Errorf("protofile: %s: file type %s cannot be written in an xfs protofile", path, t)
	}
	suid, sgid := byte('-'), byte('-')
	if m&fs.ModeSetuid != 0 {
		suid = 'u'
	}
	if m&fs.ModeSetgid != 0 {
		sgid = 'g'
	}
	if m&fs.ModeSticky != 0 {
		st.Sticky = append(st.Sticky, path)
	}
	return fmt.Sprintf("%c%c%c%03o", typ, suid, sgid, m.Perm()), nil
}

type ownerInfo struct {
	uid, gid uint32
	nlink    uint64
	rdev     uint64
}

func owner(fi fs.FileInfo) ownerInfo {
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		return ownerInfo{uid: s.Uid, gid: s.Gid, nlink: uint64(s.Nlink), rdev: uint64(s.Rdev)}
	}
	return ownerInfo{nlink: 1}
}
