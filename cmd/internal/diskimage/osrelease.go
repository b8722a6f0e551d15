package diskimage

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// osReleasePaths are where os-release(5) says to look, in order.
var osReleasePaths = []string{"etc/os-release", "usr/lib/os-release"}

// OSRelease reads the root filesystem's os-release(5) (/etc/os-release,
// else /usr/lib/os-release) and returns its variables (ID, VERSION_ID,
// ID_LIKE, ...), with quotes and escapes removed.
func (f *FS) OSRelease() (map[string]string, error) { return OSRelease(f) }

// OSRelease is [FS.OSRelease] for any root filesystem distrotest reads
// ([Readers]). A symbolic link /etc/os-release is followed within the
// filesystem; where the reader cannot tell its target (go-xfs-filesystem
// does not read link targets) /usr/lib/os-release is read, which is what
// the link names on the distros that have one (Fedora, the EL family).
func OSRelease(f Files) (map[string]string, error) {
	for _, p := range osReleasePaths {
		p = "/" + p
		info, err := f.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		if info.Mode&fs.ModeSymlink != 0 {
			if info.Target == "" {
				continue
			}
			if p = info.Target; !path.IsAbs(p) {
				p = path.Join("/etc", p)
			}
		}
		data, err := f.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		return ParseOSRelease(data), nil
	}
	return nil, fmt.Errorf("no /etc/os-release nor /usr/lib/os-release: %w", fs.ErrNotExist)
}

// ParseOSRelease parses os-release(5) content: VAR=value lines, values
// optionally in single or double quotes with shell-style backslash
// escapes in double quotes; comments and malformed lines are skipped.
func ParseOSRelease(data []byte) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'") {
			continue
		}
		switch {
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			var b strings.Builder
			inner := v[1 : len(v)-1]
			for i := 0; i < len(inner); i++ {
				if inner[i] == '\\' && i+1 < len(inner) && strings.IndexByte("\"\\`$", inner[i+1]) >= 0 {
					i++
				}
				b.WriteByte(inner[i])
			}
			v = b.String()
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = v[1 : len(v)-1]
		}
		vars[k] = v
	}
	return vars
}
