package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/distrotest/distrotest/tests/testbin"
)

// startRegistry starts Debian's docker-registry (distribution 2.8) on a
// free loopback port with its storage and config in a temporary directory
// and returns its host:port. The registry is stopped when the test ends.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatal("docker-registry is not installed (scripts/setup.sh installs it): the OCI tests need a real registry on 127.0.0.1")
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cfg := filepath.Join(dir, "config.yml")
		data := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n  secret: distrotest-test\n", filepath.Join(dir, "data"), addr)
		if err := os.WriteFile(cfg, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		cmd := exec.Command(bin, "serve", cfg)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/v2/")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Cleanup(stop)
					return addr
				}
			}
			select {
			case err := <-exited:
				exited <- err
			default:
				if time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
					continue
				}
			}
			break
		}
		stop()
		if attempt == 2 {
			t.Fatalf("docker-registry did not start on %s:\n%s", addr, log.String())
		}
	}
}

// gen runs distrotest-gen with the cache in cache ("" for the shared one)
// and returns its stdout; stderr is logged.
func gen(t *testing.T, ctx context.Context, cache string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(binaries(t), "distrotest-gen"), args...)
	cmd.Dir = testbin.RepoRoot()
	cmd.Env = os.Environ()
	if cache != "" {
		cmd.Env = append(cmd.Env, "XDG_CACHE_HOME="+cache)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("distrotest-gen %s (%s)\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), stderr.String())
	if err != nil {
		return "", fmt.Errorf("distrotest-gen %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

func mustGen(t *testing.T, ctx context.Context, cache string, args ...string) string {
	t.Helper()
	out, err := gen(t, ctx, cache, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// files lists the regular files under dir.
func files(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestOCIContainerDisk: the locally built Debian 13 image is pushed to a
// real registry as a containerDisk, pulled by digest into an empty cache,
// identified by its os-release, patched through the cache and booted; a
// script runs. Bad references fail clearly and
// leave nothing in the cache.
func TestOCIContainerDisk(t *testing.T) {
	binaries(t)
	t.Parallel()
	ctx := withTimeout(t, 20*time.Minute)
	reg := startRegistry(t)
	base := mustGen(t, ctx, "", "image", "build", "debian/13")
	pushed := mustGen(t, ctx, "", "image", "push", "--containerdisk", base, reg+"/containerdisks/debian:13")
	digest := pushed[strings.LastIndex(pushed, "@")+1:]

	cache := t.TempDir()
	disk := mustGen(t, ctx, cache, "image", "pull", reg+"/containerdisks/debian@"+digest)
	if !strings.HasPrefix(disk, cache) {
		t.Fatalf("pulled to %s, not into the cache %s", disk, cache)
	}
	if out, err := exec.Command("cmp", base, disk).CombinedOutput(); err != nil {
		t.Fatalf("the pulled disk differs from the pushed one: %s", out)
	}
	// No distro named: the release comes from the disk's /etc/os-release,
	// as for `distrotest run --image ./disk.qcow2` (which runs this).
	prepared := mustGen(t, ctx, cache, "image", "prepare", "--cache-dir", filepath.Join(cache, "distrotest"), disk)
	if !strings.Contains(filepath.Base(prepared), "debian-13-x86_64-linux-file-") {
		t.Fatalf("prepared %s: not identified as debian/13", prepared)
	}
	res := run(t, ctx, "--image", prepared, script(t, "oci.py"))
	if res.exit != 0 {
		t.Fatalf("oci.py failed on the pulled containerDisk (exit %d)", res.exit)
	}

	// A registry that is down: a port nothing listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	notDisk := reg + "/containerdisks/random:1"
	r, _ := name.ParseReference(notDisk)
	img, _ := random.Image(4096, 1)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, ref, want string }{
		{"wrong digest", reg + "/containerdisks/debian@sha256:" + strings.Repeat("0", 64), "no manifest with digest sha256:0000"},
		{"missing tag", reg + "/containerdisks/debian:12", `no tag "12"`},
		{"registry down", down + "/containerdisks/debian:13", "registry " + down + " is unreachable"},
		{"not a disk", notDisk, "no layer holds disk/disk.img"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			_, err := gen(t, ctx, cache, "image", "pull", tt.ref)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if f := files(cache); len(f) > 0 {
				t.Errorf("left in the cache: %v", f)
			}
		})
	}
}

// TestOCIPrepared: the prepared Debian 13 image is pushed under its cache
// key and pulled back by a machine with an empty cache; the digests and the
// bytes (kernel, initrd, manifest, the disk's content) are the same.
func TestOCIPrepared(t *testing.T) {
	binaries(t)
	t.Parallel()
	ctx := withTimeout(t, 10*time.Minute)
	reg := startRegistry(t)
	repo := reg + "/distrotest/prepared"
	local := mustGen(t, ctx, "", "image", "prepare", "debian/13")
	pushed := mustGen(t, ctx, "", "image", "push", "debian/13", repo)
	tag := strings.TrimPrefix(pushed[:strings.LastIndex(pushed, "@")], repo+":")
	digest := pushed[strings.LastIndex(pushed, "@")+1:]
	if !strings.HasPrefix(tag, "debian-13-x86_64-linux-") {
		t.Fatalf("pushed as %s, want the cache key as the tag", pushed)
	}

	cache := t.TempDir() // a fresh machine: no base image, nothing prepared
	pulled := mustGen(t, ctx, cache, "image", "prepare", "--registry", repo, "debian/13")
	if !strings.HasPrefix(pulled, cache) || !strings.HasSuffix(pulled, tag) {
		t.Fatalf("prepared at %s, want the pulled image in %s", pulled, cache)
	}
	if f := files(filepath.Join(cache, "distrotest", "images")); len(f) > 0 {
		t.Errorf("a base image was built instead of pulling: %v", f)
	}
	for _, f := range []string{"vmlinuz", "initrd", "manifest.json"} {
		if out, err := exec.Command("cmp", filepath.Join(local, f), filepath.Join(pulled, f)).CombinedOutput(); err != nil {
			t.Errorf("%s differs: %s", f, out)
		}
	}
	// The local disk is an overlay of the base, the pulled one standalone:
	// their guest-visible content must be the same.
	if out, err := exec.Command("qemu-img", "compare", filepath.Join(local, "disk.qcow2"), filepath.Join(pulled, "disk.qcow2")).CombinedOutput(); err != nil {
		t.Errorf("qemu-img compare: %v: %s", err, out)
	}
	// Pulled again by digest: the same artifact.
	again := filepath.Join(t.TempDir(), "again")
	mustGen(t, ctx, cache, "image", "pull", "--prepared", repo+"@"+digest, "-o", again)
	for _, f := range []string{"disk.qcow2", "vmlinuz", "initrd", "manifest.json"} {
		if out, err := exec.Command("cmp", filepath.Join(pulled, f), filepath.Join(again, f)).CombinedOutput(); err != nil {
			t.Errorf("%s differs between pulls: %s", f, out)
		}
	}
	// Pushing again gives the same digest (no timestamps).
	if p2 := mustGen(t, ctx, "", "image", "push", "debian/13", repo); p2 != pushed {
		t.Errorf("second push %s, first %s", p2, pushed)
	}
	// The registry is a cache: when it is down, prepare still prepares.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	down := l.Addr().String()
	l.Close()
	if dir := mustGen(t, ctx, "", "image", "prepare", "--registry", down+"/distrotest/prepared", "--push", "debian/13"); dir != local {
		t.Errorf("with the registry down: prepared %s, want the local %s", dir, local)
	}
}

// TestUninstrumented: the Debian 13 image booted as it is (no backdoor):
// a console-only script passes and a shell call fails with the reason.
func TestUninstrumented(t *testing.T) {
	binaries(t)
	t.Parallel()
	ctx := withTimeout(t, 20*time.Minute)
	base := mustGen(t, ctx, "", "image", "build", "debian/13")
	res := run(t, ctx, "--image", base, "--no-instrument", script(t, "uninstrumented.py"))
	if res.exit != 0 {
		t.Fatalf("uninstrumented.py failed (exit %d)", res.exit)
	}
	if _, err := os.Stat(filepath.Join(res.outDir, "uninstrumented.png")); err != nil {
		t.Errorf("screenshot: %v", err)
	}
}
