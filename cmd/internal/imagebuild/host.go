package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// tool is a host program the build runs and the Debian package providing it.
type tool struct{ name, pkg string }

var buildTools = []tool{
	{"mmdebstrap", "mmdebstrap"},
	{"mkfs.ext4", "e2fsprogs"},
	{"mkfs.vfat", "dosfstools"},
	{"sgdisk", "gdisk"},
	{"qemu-img", "qemu-utils"},
}

// findTools resolves every build tool with look and reports all missing
// ones at once, with an install hint.
func findTools(needed []tool, look func(string) (string, error)) (map[string]string, error) {
	paths := map[string]string{}
	var names, pkgs []string
	for _, t := range needed {
		p, err := look(t.name)
		if err != nil {
			names = append(names, t.name)
			pkgs = append(pkgs, t.pkg)
			continue
		}
		paths[t.name] = p
	}
	switch len(names) {
	case 0:
		return paths, nil
	case 1:
		return nil, fmt.Errorf("missing host tool %s: install %s (apt-get install %s) or run make setup", names[0], pkgs[0], pkgs[0])
	default:
		return nil, fmt.Errorf("missing host tools %s: install them (apt-get install %s) or run make setup",
			strings.Join(names, ", "), strings.Join(pkgs, " "))
	}
}

// lookPath is exec.LookPath that also searches the sbin directories, which
// are often not on a user's PATH but hold mkfs and sgdisk.
func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		q := filepath.Join(dir, name)
		if fi, serr := os.Stat(q); serr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return q, nil
		}
	}
	return "", err
}

// command describes one process the build runs.
type command struct {
	path string
	args []string
	env  []string // added to the inherited environment
	// privateMounts runs the process in its own mount namespace (needs
	// root), so any mount it leaves behind, even when killed, vanishes
	// with it and never shows in the directories we later delete.
	privateMounts bool
}

// run runs c and returns its combined output. On failure the error carries
// the tail of the output. When ctx is cancelled the process group gets
// SIGTERM, then SIGKILL.
func run(ctx context.Context, log *slog.Logger, c command) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.path, c.args...)
	cmd.Env = append(os.Environ(), c.env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.privateMounts {
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	name := filepath.Base(c.path)
	log.Debug("running", "cmd", name, "args", c.args)
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil && ctx.Err() != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of the group; ESRCH when none
	}
	log.Debug("finished", "cmd", name, "duration", time.Since(start).Round(time.Millisecond), "output", out.String())
	if ctx.Err() != nil {
		return out.Bytes(), ctx.Err()
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w%s", name, err, tail(out.Bytes(), 20))
	}
	return out.Bytes(), nil
}

// tail formats the last n lines of out for an error message.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}

// toolVersions asks each tool for its version (first line of the output),
// for build.json. Tools that do not answer are left out.
func toolVersions(ctx context.Context, log *slog.Logger, paths map[string]string) map[string]string {
	flags := map[string]string{
		"mmdebstrap": "--version",
		"mkfs.ext4":  "-V",
		"mkfs.vfat":  "--version",
		"sgdisk":     "--version",
		"qemu-img":   "--version",
		"mkfs.xfs":   "-V",
	}
	versions := map[string]string{}
	for name, p := range paths {
		out, err := exec.CommandContext(ctx, p, flags[name]).CombinedOutput()
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if first == "" {
			log.Debug("no tool version", "tool", name, "err", err)
			continue
		}
		versions[name] = strings.TrimSpace(first)
	}
	return versions
}

// mountsUnder lists the mount points at or below dir in this process's
// mount namespace.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountsUnder(data, dir), nil
}

func parseMountsUnder(mountinfo []byte, dir string) []string {
	var found []string
	for line := range strings.SplitSeq(string(mountinfo), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			found = append(found, mp)
		}
	}
	return found
}

// unescapeMountinfo decodes the octal escapes (\040 for space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return len(s) == 3
}

// removeTree deletes dir, refusing when something is mounted below it
// (deleting through a bind mount would delete the host's files).
func removeTree(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("removing %s: checking mounts: %w", dir, err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("not removing %s: %s is mounted there; unmount it first", dir, strings.Join(mounts, ", "))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

var errNotRoot = errors.New("building images needs root (mmdebstrap --mode=root and files owned by root in the image): run as root, or use a downloaded or cached image")
