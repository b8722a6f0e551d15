package imagebuild

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// installedPackages parses a dpkg status file and returns the installed
// packages with their versions. Names are not architecture-qualified: the
// images are single-architecture.
func installedPackages(status []byte) (map[string]string, error) {
	pkgs := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(status))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var name, version, state string
	flush := func() {
		if name != "" && strings.HasSuffix(state, " installed") {
			pkgs[name] = version
		}
		name, version, state = "", "", ""
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("parsing dpkg status: malformed line %q", line)
		}
		value = strings.TrimSpace(value)
		switch key {
		case "Package":
			name = value
		case "Version":
			version = value
		case "Status":
			state = value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing dpkg status: %w", err)
	}
	flush()
	return pkgs, nil
}

// upstreamMajor returns the leading number of a Debian version:
// "257.8-1~deb13u2" → 257, "1:2.3-1" → 2.
func upstreamMajor(version string) (int, error) {
	v := version
	if _, rest, ok := strings.Cut(v, ":"); ok {
		v = rest
	}
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end == -1 {
		end = len(v)
	}
	n, err := strconv.Atoi(v[:end])
	if err != nil {
		return 0, fmt.Errorf("version %q has no leading number", version)
	}
	return n, nil
}
