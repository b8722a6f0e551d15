package imagebuild

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/internal/testenv"
)

// integration skips unless the slow tests are selected, and fails when
// the host cannot run them.
func integration(t *testing.T) {
	t.Helper()
	testenv.NeedVM(t)
	if os.Geteuid() != 0 {
		t.Skip("image build test: needs root (mmdebstrap --mode=root)")
	}
	for _, tool := range []string{"sgdisk", "e2fsck", "debugfs", "dd"} {
		if _, err := lookPath(tool); err != nil {
			t.Fatalf("the integration test needs %s: run make setup", tool)
		}
	}
}

func testOptions(t *testing.T, cache string) Options {
	return Options{
		CacheDir: cache,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Progress: t.Output(),
	}
}

// TestIntegrationBuild builds debian/13 into a fresh cache and checks the
// disk without booting it: qcow2 header, GPT layout, a clean ext4 root with
// a kernel and initrd, and that a second call is served from the cache.
func TestIntegrationBuild(t *testing.T) {
	integration(t)
	cache := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()

	start := time.Now()
	path, err := Build(ctx, debian13, testOptions(t, cache))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %s", path, time.Since(start).Round(time.Second))

	start = time.Now()
	again, err := Build(ctx, debian13, testOptions(t, cache))
	if err != nil || again != path {
		t.Fatalf("second Build = %q, %v; want %q", again, err, path)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cached Build took %s", d)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "images", ".build-*"))
	if len(entries) > 0 {
		t.Errorf("temporary directories left behind: %v", entries)
	}

	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
	}
	decode(t, output(t, "qemu-img", "info", "--output=json", path), &info)
	if info.Format != "qcow2" || info.VirtualSize != 3<<30 {
		t.Errorf("qemu-img info: format %q, virtual size %d; want qcow2, %d", info.Format, info.VirtualSize, 3<<30)
	}

	work := t.TempDir()
	raw := filepath.Join(work, "disk.raw")
	output(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, raw)
	parts := sgdiskPartitions(t, output(t, "sgdisk", "-p", raw))
	types := map[int]string{}
	for n, p := range parts {
		types[n] = p.code
	}
	if diff := cmp.Diff(map[int]string{1: "8300", 14: "EF02", 15: "EF00"}, types); diff != "" {
		t.Errorf("partition types (-want +got):\n%s", diff)
	}

	root := filepath.Join(work, "root.img")
	p1 := parts[1]
	output(t, "dd", "if="+raw, "of="+root, "bs=4M", "iflag=skip_bytes,count_bytes", "conv=sparse", "status=none",
		fmt.Sprintf("skip=%d", p1.first*512), fmt.Sprintf("count=%d", (p1.last-p1.first+1)*512))
	output(t, "e2fsck", "-fn", root)

	boot := output(t, "debugfs", "-R", "ls -l /boot", root)
	for _, want := range []string{"vmlinuz-", "initrd.img-"} {
		if !strings.Contains(boot, want) {
			t.Errorf("/boot lacks %s*:\n%s", want, boot)
		}
	}
	if out := output(t, "debugfs", "-R", "stat /usr/lib/systemd/systemd-networkd", root); !strings.Contains(out, "Type: regular") {
		t.Errorf("systemd-networkd is not a regular file:\n%s", out)
	}

	bi, err := LoadInfo(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(boot, filepath.Base(bi.Kernel)) || !strings.Contains(boot, filepath.Base(bi.Initrd)) {
		t.Errorf("build.json kernel %s / initrd %s not in /boot:\n%s", bi.Kernel, bi.Initrd, boot)
	}
	if bi.SystemdVersion < 257 || bi.Recipe.Suite != "trixie" || bi.Packages["linux-image-amd64"] == "" {
		t.Errorf("build.json: systemd %d, suite %q, linux-image-amd64 %q", bi.SystemdVersion, bi.Recipe.Suite, bi.Packages["linux-image-amd64"])
	}
	fstab := output(t, "debugfs", "-R", "cat /etc/fstab", root)
	if !strings.Contains(fstab, "UUID="+bi.RootUUID+"\t/\t") {
		t.Errorf("fstab does not mount the root by UUID %s:\n%s", bi.RootUUID, fstab)
	}
	if label := strings.TrimSpace(output(t, "e2label", root)); label != "root" {
		t.Errorf("root filesystem label = %q, want root", label)
	}
}

// TestIntegrationBuildCancel cancels a build in mmdebstrap and checks that
// it stops promptly and leaves no temporary directory behind.
func TestIntegrationBuildCancel(t *testing.T) {
	integration(t)
	cache := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Build(ctx, debian13, testOptions(t, cache))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Build error = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Build returned %s after the start, %s after cancellation", d, d-8*time.Second)
	}
	left, _ := filepath.Glob(filepath.Join(cache, "images", ".build-*"))
	if len(left) > 0 {
		t.Errorf("temporary directories left behind: %v", left)
	}
	if _, ok, _ := Lookup(debian13, cache); ok {
		t.Error("a cancelled build left a cache entry")
	}
}

func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	p, err := lookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), p, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func decode(t *testing.T, data string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
}

type gptEntry struct {
	first, last int64
	code        string
}

// sgdiskPartitions parses the table of `sgdisk -p`:
//
//	Number  Start (sector)    End (sector)  Size       Code  Name
//	   1          262144         6289407   2.9 GiB     8300
func sgdiskPartitions(t *testing.T, out string) map[int]gptEntry {
	t.Helper()
	parts := map[int]gptEntry{}
	inTable := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[0] == "Number" {
			inTable = true
			continue
		}
		if !inTable || len(f) < 6 {
			continue
		}
		n, err1 := strconv.Atoi(f[0])
		first, err2 := strconv.ParseInt(f[1], 10, 64)
		last, err3 := strconv.ParseInt(f[2], 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("parsing sgdisk line %q: %v", sc.Text(), err)
		}
		parts[n] = gptEntry{first: first, last: last, code: f[5]}
	}
	return parts
}
