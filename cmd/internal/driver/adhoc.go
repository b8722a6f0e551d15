package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// AdHoc is a one-machine test given on the command line
// (`distrotest run --image DIR script.py`).
type AdHoc struct {
	Script string
	// Image is a prepared image directory.
	Image string
	// Name is the machine's name (default "machine").
	Name string
	// MemoryMiB and CPUs size the machine (0: the defaults).
	MemoryMiB, CPUs int
	// Shares are TAG=SOURCE:TARGET[:ro] specifications.
	Shares []string
	// NixStore, when set, is mounted read-only over /nix/store.
	NixStore string
}

// Config returns the test as a validated Config with absolute paths. The
// test is named after the script ("hello" for hello.py).
func (a AdHoc) Config() (*Config, error) {
	name := a.Name
	if name == "" {
		name = "machine"
	}
	m := MachineConfig{Name: name, Image: a.Image, MemorySize: a.MemoryMiB, CPUs: a.CPUs, NixStore: a.NixStore}
	for _, s := range a.Shares {
		tag, d, err := ParseShare(s)
		if err != nil {
			return nil, err
		}
		if m.SharedDirs == nil {
			m.SharedDirs = map[string]SharedDir{}
		}
		if _, dup := m.SharedDirs[tag]; dup {
			return nil, fmt.Errorf("--share %q: tag %s is used twice", s, tag)
		}
		m.SharedDirs[tag] = d
	}
	testName := strings.TrimSuffix(filepath.Base(a.Script), filepath.Ext(a.Script))
	testName = regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(testName, "-")
	if testName == "" || testName == "-" {
		testName = DefaultName
	}
	c := &Config{Version: ConfigVersion, Name: testName, TestScript: a.Script, Machines: []MachineConfig{m}}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.setDefaults()
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	c.resolve(cwd)
	return c, nil
}

// ParseShare parses TAG=SOURCE:TARGET[:ro] (TARGET has no ':', SOURCE
// may; ":ro" exports it read-only).
func ParseShare(s string) (tag string, d SharedDir, err error) {
	tag, rest, ok := strings.Cut(s, "=")
	readOnly := false
	if r, found := strings.CutSuffix(rest, ":ro"); found && strings.Contains(r, ":") {
		rest, readOnly = r, true
	}
	i := strings.LastIndexByte(rest, ':')
	if !ok || tag == "" || i <= 0 || i == len(rest)-1 {
		return "", SharedDir{}, fmt.Errorf("--share %q: want TAG=SOURCE:TARGET[:ro], e.g. data=./dir:/mnt/data", s)
	}
	return tag, SharedDir{Source: rest[:i], Target: rest[i+1:], ReadOnly: readOnly}, nil
}

var releaseRef = regexp.MustCompile(`^[a-z][a-z0-9-]*/[0-9A-Za-z][0-9A-Za-z._-]*$`)

// GenBinary is the build-time tool the runner asks to prepare images, so
// that the runner does not link the image tooling.
const GenBinary = "distrotest-gen"

// ResolveImage returns the prepared image directory for ref: ref itself
// when it is a directory, otherwise, for "distro/release" or a disk image
// file (qcow2 or raw, whose /etc/os-release names its release), the
// directory `distrotest-gen image prepare` prints after building and
// patching the image through the cache. Its progress goes to stderr.
//
// prepareArgs are extra arguments for `distrotest-gen image prepare` (e.g.
// --no-instrument for a disk image file).
func ResolveImage(ctx context.Context, ref, cacheDir string, stderr io.Writer, prepareArgs ...string) (string, error) {
	fi, err := os.Stat(ref)
	if err == nil && fi.IsDir() {
		return filepath.Abs(ref)
	}
	if err == nil && fi.Mode().IsRegular() {
		// a disk image: distrotest-gen identifies and patches it
		if ref, err = filepath.Abs(ref); err != nil {
			return "", err
		}
	} else if !releaseRef.MatchString(ref) {
		return "", fmt.Errorf("--image %q: not a prepared image directory, a disk image file, nor DISTRO/RELEASE (e.g. debian/13)", ref)
	}
	gen, err := findGen()
	if err != nil {
		return "", fmt.Errorf("preparing %s: %w", ref, err)
	}
	args := []string{"image", "prepare", ref}
	if cacheDir != "" {
		args = append(args, "--cache-dir", cacheDir)
	}
	args = append(args, prepareArgs...)
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, gen, args...)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		return "", fmt.Errorf("preparing %s: %s %s: %w", ref, gen, strings.Join(args, " "), err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if fi, err := os.Stat(dir); dir == "" || err != nil || !fi.IsDir() {
		return "", fmt.Errorf("preparing %s: %s printed %q, not a directory", ref, gen, stdout.String())
	}
	return dir, nil
}

// findGen looks for distrotest-gen next to the running binary, then in
// PATH.
func findGen() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), GenBinary)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(GenBinary)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("%s is needed to build and patch images: not found next to distrotest nor in PATH (make build)", GenBinary)
		}
		return "", err
	}
	return p, nil
}
